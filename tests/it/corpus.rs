//! The acceptance corpus in `../shared/corpus`: real configuration from public projects with the
//! images each file must yield. Scored with `../shared/tools/score-scan`, the same script the
//! project is judged by; skipped (with a message) where the corpus is not beside the checkout.

use std::process::Command;

use crate::repo_root;

#[test]
fn the_corpus_scores_every_must_and_templated_reference_with_no_false_positive() {
    let shared = repo_root().join("../shared");
    let script = shared.join("tools/score-scan");
    if !script.exists() {
        eprintln!("skipped: {} is not there", script.display());
        return;
    }
    let out = Command::new("python3")
        .arg(&script)
        .arg(shared.join("corpus"))
        .args(["--airlock", env!("CARGO_BIN_EXE_airlock"), "-v"])
        .output()
        .expect("python3 runs score-scan");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    let words: Vec<&str> = last.split_whitespace().collect();
    let field = |name: &str| {
        words
            .iter()
            .position(|w| *w == name)
            .map(|i| words[i + 1])
            .unwrap_or("?")
    };
    let ratio_full = |r: &str| r.split_once('/').is_some_and(|(a, b)| a == b);
    assert!(ratio_full(field("must")), "missed references:\n{text}");
    assert_eq!(field("fp"), "0", "false positives:\n{text}");
    assert!(
        ratio_full(field("templated")),
        "templated not reported:\n{text}"
    );
}
