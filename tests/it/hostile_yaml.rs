//! Hostile YAML through the real binary: a few hundred bytes of nested aliases must give a
//! positioned error in bounded memory and time, and the other files must still be scanned.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::tempdir;

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

/// `Name`, `State` and `VmHWM` (peak resident set so far, KiB) from `/proc/<pid>/status`.
fn status(pid: u32) -> Option<(String, char, Option<u64>)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let peak = field("VmHWM:").and_then(|v| v.trim_end_matches("kB").trim().parse().ok());
    Some((
        field("Name:")?.to_string(),
        field("State:")?.chars().next()?,
        peak,
    ))
}

/// Run `airlock args…` where the args read the hostile files and then `-` (stdin): while the
/// child waits on stdin, every hostile file has been scanned, and its VmHWM is read at leisure
/// (a bounded run lasts milliseconds, too short to sample reliably). Memory is polled all along;
/// past the caps the child is killed and the test fails, so a regression costs the machine
/// 200 MB, not all of its memory; an address-space limit (`ulimit -v`, 2 GiB) backs the polling
/// up. Returns the exit code, stdout, the peak RSS (KiB) once the hostile files were scanned,
/// and the wall time.
fn run_capped(args: &[&str], dir: &Path) -> (i32, String, u64, Duration) {
    let out_path = dir.join("stdout");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2097152 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_airlock"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut peak = 0;
    let mut sleeping_since: Option<Instant> = None;
    let mut after_hostile = None;
    let status = loop {
        if let Some((_, state, hwm)) = status(child.id()).filter(|(n, ..)| n == "airlock") {
            peak = peak.max(hwm.unwrap_or(0));
            // Asleep for a while: blocked reading stdin, past the hostile files.
            let asleep = state == 'S' && after_hostile.is_none();
            match (asleep, sleeping_since) {
                (true, None) => sleeping_since = Some(Instant::now()),
                (true, Some(t)) if t.elapsed() > Duration::from_millis(50) => {
                    after_hostile = Some(peak);
                    drop(child.stdin.take());
                }
                (false, _) => sleeping_since = None,
                _ => {}
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let took = started.elapsed();
        if peak > RSS_CAP_KB || took > TIME_CAP {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("airlock {args:?}: killed at {peak} KiB after {took:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let took = started.elapsed();
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let after_hostile = after_hostile.expect("airlock never waited on stdin");
    (status.code().unwrap(), stdout, after_hostile, took)
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

    let (code, stdout, peak, took) = run_capped(
        &["scan", "--format", "json", bomb_arg, "-", pod_arg],
        dir.path(),
    );
    assert_eq!(code, 2, "{stdout}");
    assert!(peak > 1024, "no reading of airlock's memory: {peak} KiB");
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
    let (code, _, peak, took) = run_capped(&["check", bomb_arg, "-", pod_arg], dir.path());
    assert_eq!(code, 2);
    assert!(peak > 1024, "no reading of airlock's memory: {peak} KiB");
    assert!(peak < RSS_CAP_KB && took < TIME_CAP, "{peak} KiB, {took:?}");
}
