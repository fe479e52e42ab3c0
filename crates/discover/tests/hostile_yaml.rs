//! YAML written to hurt the scanner: exponential aliases ("billion laughs"), bombs split across
//! documents and embedded strings, and mappings with a hundred thousand duplicate keys. Each
//! input is generated here; each must give a positioned error or a result, in bounded time.

use std::time::{Duration, Instant};

use discover::{ALIAS_EXPANSION_LIMIT, FileReport, LineIndex, Options, scan_file};

fn scan(name: &str, text: &str) -> FileReport {
    scan_file(name, text.as_bytes(), &Options::default())
}

/// The classic bomb: `levels` anchors, each a list of nine aliases of the one before, so the
/// last expands to 9^levels leaves. `leaf` is the innermost item.
fn laughs(levels: usize, leaf: &str) -> String {
    let name = |i: usize| format!("l{i}");
    let mut text = format!("{}: &{} [{}]\n", name(0), name(0), [leaf; 9].join(", "));
    for i in 1..levels {
        let prev = format!("*{}", name(i - 1));
        text.push_str(&format!(
            "{}: &{} [{}]\n",
            name(i),
            name(i),
            [prev.as_str(); 9].join(",")
        ));
    }
    text
}

/// Each error must sit on an alias (`*name`) and name it.
fn assert_errors_name_aliases(text: &str, report: &FileReport) {
    let lines = LineIndex::new(text);
    for e in &report.errors {
        let at = &text[e.offset..];
        let alias: String = at
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']'))
            .collect();
        assert!(alias.starts_with('*'), "error not at an alias: {e:?}");
        assert!(
            e.message.contains(&alias),
            "{e:?} at {:?} does not name {alias}",
            lines.position(e.offset)
        );
    }
}

#[test]
fn yaml_billion_laughs_is_bounded() {
    let text = laughs(10, "\"lol\"");
    let started = Instant::now();
    let report = scan("laughs.yaml", &text);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_errors_name_aliases(&text, &report);
    let (line, column) = LineIndex::new(&text).position(report.errors[0].offset);
    assert!(line > 1 && column > 1, "{line}:{column}");
    assert!(report.findings.is_empty());
}

#[test]
fn yaml_alias_expansion_within_the_budget_is_still_resolved() {
    // 9^4 = 6,561 images through aliases: well inside the budget, every one reported.
    let leaf = "{image: nginx:1.25}";
    let text = laughs(4, leaf);
    let report = scan("values.yaml", &text);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // Every level lists its copies: 9 + 81 + 729 + 6561 image maps, all pointing at the leaf.
    assert_eq!(report.findings.len(), 9 + 81 + 729 + 6561);
    let first = text.find("nginx:1.25").unwrap();
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.image == "nginx:1.25" && f.span.start >= first)
    );
}

#[test]
fn yaml_bombs_split_across_documents_share_one_budget() {
    // Each document alone stays under the limit; a thousand of them must not add up to a
    // thousand limits' worth of findings.
    // 7,380 image maps per document, 23,031 nodes added by aliases: four fit in the budget.
    let one = laughs(4, "{image: nginx:1}");
    let docs = 1000;
    let text = vec![one.as_str(); docs].join("---\n");
    let started = Instant::now();
    let report = scan("many.yaml", &text);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(report.findings.len() as u64 <= 2 * ALIAS_EXPANSION_LIMIT);
    assert!(report.errors.len() >= docs - 5, "{}", report.errors.len());
    assert_errors_name_aliases(&text, &report);
}

#[test]
fn yaml_bombs_in_embedded_strings_share_the_file_budget() {
    // Helm values whose strings hold YAML of their own: each string is a bomb, reported at the
    // alias's position in the file.
    let inner = laughs(4, "{image: nginx:1}");
    let mut text = String::new();
    for i in 0..300 {
        text.push_str(&format!("s{i}: |\n"));
        for line in inner.lines() {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
    }
    let started = Instant::now();
    let report = scan("values.yaml", &text);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(report.findings.len() as u64 <= 2 * ALIAS_EXPANSION_LIMIT);
    assert!(report.errors.len() >= 295, "{}", report.errors.len());
    assert_errors_name_aliases(&text, &report);
}

#[test]
fn yaml_aliased_embedded_document_is_scanned_once() {
    // One pod spec in a string, reached through 9^4 aliases: parsed once, its image found once.
    let text = format!(
        "s: &s |\n  containers:\n  - name: a\n    image: nginx:1\n{}",
        laughs(4, "*s")
    );
    let started = Instant::now();
    let report = scan("values.yaml", &text);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let nginx: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.image == "nginx:1")
        .collect();
    assert_eq!(nginx.len(), 1, "{nginx:?}");
    assert_eq!(&text[nginx[0].span.clone()], "nginx:1");
}

/// Seconds to scan one map of `n` `image:` keys (best of three, to shed scheduler noise).
fn scan_duplicates(n: usize) -> f64 {
    let text: String = (0..n).map(|i| format!("image: nginx:{i}\n")).collect();
    (0..3)
        .map(|_| {
            let started = Instant::now();
            let report = scan("values.yaml", &text);
            let took = started.elapsed().as_secs_f64();
            assert_eq!(report.findings.len(), n);
            took
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn yaml_duplicate_keys_scan_in_linear_time() {
    // Looking up a sibling (`tag`, `imageTag`) by scanning every entry made this quadratic:
    // 8x the keys took 64x the time. Linear is 8x; allow 3x on top for noise and allocation.
    let small = scan_duplicates(12_500);
    let large = scan_duplicates(100_000);
    eprintln!("duplicate keys: 12,500 in {small:.3}s, 100,000 in {large:.3}s");
    assert!(
        large < 24.0 * small,
        "12,500 keys: {small:.3}s, 100,000 keys: {large:.3}s ({:.1}x)",
        large / small
    );
}

#[test]
fn yaml_duplicate_keys_are_all_found_and_lookups_see_the_last() {
    // Both `image:` values are written, so both are found (and rewritten); the `tag` a loader
    // would use is the last one, as with kubectl and Helm.
    let text = "app:\n  image: a/b\n  tag: '1'\n  tag: '2'\nx:\n  image: c:1\n  image: c:2\n";
    let report = scan("values.yaml", text);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let images: Vec<&str> = report.findings.iter().map(|f| f.image.as_str()).collect();
    assert_eq!(images, ["a/b:2", "c:1", "c:2"]);

    // Merge keys: the mapping's own key wins, then the first merged map.
    let text = "a: &a {image: a:1, tag: x}\nb: &b {image: b:1, pullPolicy: Always}\n\
                c:\n  <<: [*a, *b]\n  repository: own/repo\n";
    let report = scan("values.yaml", text);
    let composed: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.image.starts_with("own"))
        .map(|f| f.image.as_str())
        .collect();
    assert_eq!(composed, ["own/repo:x"]);
}
