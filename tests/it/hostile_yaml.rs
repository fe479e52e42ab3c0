//! Hostile YAML through the real binary: a few hundred bytes of nested aliases must give a
//! positioned error in bounded memory and time, and the other files must still be scanned.

use std::time::Duration;

use serde_json::Value;

use crate::watch::{Caps, Measured, until_stdin};
use crate::{airlock_process_via, tempdir};

/// Peak resident memory allowed to one `airlock` run on a tiny hostile input.
const RSS_CAP_KB: u64 = 200 * 1024;
const TIME_CAP: Duration = Duration::from_secs(5);

/// Nine anchors, each a list of nine aliases of the one before: 9^9 "lol"s from ~350 bytes.
fn billion_laughs() -> String {
    let mut text =
        "l0: &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
            .to_string();
    for i in 1..9 {
        let aliases = vec![format!("*l{}", i - 1); 9].join(",");
        text.push_str(&format!("l{i}: &l{i} [{aliases}]\n"));
    }
    text
}

/// Runs `airlock args…` (hostile files, then `-`) under the caps, with an address-space
/// limit (2 GiB) behind the polling.
fn run_capped(args: &[&str]) -> Measured {
    let mut cmd = airlock_process_via(&["prlimit", "--as=2147483648", "--"]);
    cmd.args(args);
    until_stdin(
        cmd,
        Caps {
            rss_kib: RSS_CAP_KB,
            time: TIME_CAP,
        },
    )
}

#[test]
fn yaml_billion_laughs_is_bounded() {
    let dir = tempdir();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let bomb = billion_laughs();
    assert!(bomb.len() < 600, "{}", bomb.len());
    let bomb_path = inputs.join("laughs.yaml");
    std::fs::write(&bomb_path, &bomb).unwrap();
    let pod = inputs.join("pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: nginx:1.27\n",
    )
    .unwrap();
    let (bomb_arg, pod_arg) = (bomb_path.to_str().unwrap(), pod.to_str().unwrap());

    let Measured {
        code,
        stdout,
        peak_kib: peak,
        took,
        ..
    } = run_capped(&["scan", "--format", "json", bomb_arg, "-", pod_arg]);
    assert_eq!(code, Some(2), "{stdout}");
    assert!(peak < RSS_CAP_KB && took < TIME_CAP, "{peak} KiB, {took:?}");
    eprintln!("scan of a billion laughs: peak RSS {peak} KiB, {took:?}");

    let v: Value = serde_json::from_str(&stdout).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e["file"], bomb_path.to_str().unwrap());
    // The position is an alias, and the message names it.
    let (line, column) = (
        e["line"].as_u64().unwrap() as usize,
        e["column"].as_u64().unwrap() as usize,
    );
    let at: String = bomb.lines().nth(line - 1).unwrap()[column - 1..]
        .chars()
        .take_while(|c| *c != ',')
        .collect();
    assert!(at.starts_with("*l"), "{line}:{column} is {at:?}");
    assert!(
        e["message"].as_str().unwrap().contains(&at),
        "{e} should name {at}"
    );
    // The good file beside it is still read.
    let images: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, ["nginx:1.27"]);

    // `check` reads the same files the same way: unreadable input, not a hang.
    let m = run_capped(&["check", bomb_arg, "-", pod_arg]);
    assert_eq!(m.code, Some(2));
    assert!(
        m.peak_kib < RSS_CAP_KB && m.took < TIME_CAP,
        "{} KiB, {:?}",
        m.peak_kib,
        m.took
    );
}
