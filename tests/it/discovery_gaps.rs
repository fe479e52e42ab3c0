//! The discovery gaps a real-world check found (issue 11, item 3), each from the command line
//! on a small file written the way real projects write it.

use serde_json::Value;

use crate::{airlock, tempdir};

/// `airlock scan --format json` of files written into a fresh directory.
fn scan(files: &[(&str, &str)]) -> Value {
    let dir = tempdir();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let out = airlock()
        .args(["scan", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn images(v: &Value) -> Vec<String> {
    let mut all: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["image"].as_str().unwrap().to_string())
        .collect();
    all.sort();
    all
}

#[test]
fn quotes_in_a_dockerfile_from_are_removed_after_arg_substitution() {
    let v = scan(&[(
        "Dockerfile",
        "ARG RELEASE=bookworm\nFROM debian:\"${RELEASE}\"-slim AS base\nFROM 'alpine:3.20'\n",
    )]);
    assert_eq!(images(&v), ["alpine:3.20", "debian:bookworm-slim"], "{v}");
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");
}

#[test]
fn a_bad_from_after_substitution_is_reported_as_written() {
    let v = scan(&[(
        "Dockerfile",
        "ARG RELEASE=:bookworm\nFROM debian:\"${RELEASE}\"-slim\n",
    )]);
    let err = &v["errors"][0];
    assert_eq!(
        err["message"], "not an image reference: debian:\"${RELEASE}\"-slim",
        "{v}"
    );
    assert_eq!(
        (err["line"].as_u64(), err["column"].as_u64()),
        (Some(2), Some(6))
    );
}
