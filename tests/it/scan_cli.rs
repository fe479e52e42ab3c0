//! `airlock scan` from the command line: output formats, stdin, directory walking, exit codes.

use serde_json::Value;

use crate::{airlock, repo_root, tempdir};

fn json(args: &[&str]) -> (Value, i32) {
    let out = airlock()
        .args(["scan", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).expect("JSON output");
    (v, out.status.code().unwrap())
}

#[test]
fn the_examples_scan_cleanly_and_find_the_implicit_agent() {
    let examples = repo_root().join("examples");
    let (v, code) = json(&[examples.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    let findings = v["findings"].as_array().unwrap();
    let kinds: Vec<&str> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for kind in ["literal", "composed", "implicit", "heuristic"] {
        assert!(kinds.contains(&kind), "no {kind} finding in {kinds:?}");
    }
    assert!(v["errors"].as_array().unwrap().is_empty());
}

#[test]
fn json_reports_positions_in_the_file_as_given() {
    let dir = tempdir();
    let file = dir.path().join("pod.yaml");
    std::fs::write(
        &file,
        "# ü\nkind: Pod\napiVersion: v1\nspec:\n  containers:\n  - name: a\n    image: nginx\n",
    )
    .unwrap();
    let (v, code) = json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0);
    let f = &v["findings"][0];
    assert_eq!(f["file"], file.to_str().unwrap());
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(7), Some(12))
    );
    assert_eq!(f["image"], "nginx");
    assert_eq!(f["normalized"], "docker.io/library/nginx:latest");
    assert_eq!(f["kind"], "literal");
    assert_eq!(f["source"], "kubernetes");
    assert_eq!(f["context"], "Pod › spec.containers[a].image");
    let bytes = std::fs::read(&file).unwrap();
    let (s, e) = (
        f["byte_start"].as_u64().unwrap() as usize,
        f["byte_end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&bytes[s..e], b"nginx");
}

#[test]
fn stdin_list_output_is_unique_normalised_and_pullable_only() {
    let input = "services:\n  a: {image: redis:7}\n  b: {image: 'docker.io/library/redis:7'}\n  c: {image: '${X}'}\n  d: {build: ., image: me/app}\n";
    let out = airlock()
        .args(["scan", "--format", "list", "-"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "docker.io/library/redis:7\n"
    );
}

#[test]
fn an_unparsable_file_is_reported_and_the_rest_still_scanned() {
    let dir = tempdir();
    std::fs::write(dir.path().join("bad.yaml"), "a: [1,\nb: 2\n").unwrap();
    std::fs::write(
        dir.path().join("good.yaml"),
        "kind: Pod\napiVersion: v1\nspec:\n  containers:\n  - image: busybox:1\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::write(
        dir.path().join(".git/x.yaml"),
        "kind: Pod\napiVersion: v1\nspec:\n  containers:\n  - image: hidden:1\n",
    )
    .unwrap();
    let (v, code) = json(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(v["findings"].as_array().unwrap().len(), 1);
    let err = &v["errors"][0];
    assert!(err["file"].as_str().unwrap().ends_with("bad.yaml"));
    assert!(err["line"].as_u64().unwrap() >= 2, "{err}");
}

#[test]
fn a_missing_path_and_a_bad_flag_are_usage_errors() {
    let out = airlock()
        .args(["scan", "/does/not/exist"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/does/not/exist"));
    let out = airlock()
        .args(["scan", "--jnlp-image", "Not Valid", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = airlock()
        .args(["scan", "--format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_table_groups_by_image_with_counts_and_locations() {
    let input = "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: nginx}\n  - {name: b, image: docker.io/library/nginx:latest}\n";
    let out = airlock()
        .args(["scan", "--color", "never", "-"])
        .write_stdin(input)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("docker.io/library/nginx:latest  2 places, literal\n"),
        "{text}"
    );
    assert!(text.contains("    -:6:"), "{text}");
    assert!(!text.contains('\x1b'));
}
