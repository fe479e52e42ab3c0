//! oras (PyPI `oras`, the oras-py library) against `airlock serve --store` on a socket: an
//! artifact pushed monolithically and one in chunks come back byte-identical, and a referrer
//! attached through `subject` is listed by the referrers API under its artifact type.

use std::path::PathBuf;
use std::process::Command;

use oci::Digest;
use serde_json::Value;

use crate::repo_root;
use crate::serve_cli::{Server, http};

/// Setting this (to anything) turns a missing oras into a skip instead of a failure.
const SKIP: &str = "AIRLOCK_SKIP_ORAS";

/// The venv's python with oras installed: `AIRLOCK_TOOLS_PYTHON` (scripts/test sets it), else
/// the venv scripts/test creates under target/. None only when the skip variable is set.
fn tools_python() -> Option<PathBuf> {
    let path = std::env::var_os("AIRLOCK_TOOLS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/tools/venv/bin/python"));
    let has_oras = Command::new(&path)
        .args(["-c", "import oras.provider"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_oras {
        return Some(path);
    }
    let why = format!(
        "oras (PyPI oras 0.2.43) is not importable by {} (AIRLOCK_TOOLS_PYTHON={:?}): run \
         scripts/test, or target/tools/venv/bin/python -m pip install oras==0.2.43",
        path.display(),
        std::env::var_os("AIRLOCK_TOOLS_PYTHON"),
    );
    if std::env::var_os(SKIP).is_some() {
        eprintln!("SKIPPED ({SKIP} is set): {why}");
        return None;
    }
    panic!("{why}; or set {SKIP}=1 to skip this test");
}

#[test]
fn oras_pushes_and_pulls_an_artifact_and_its_referrer_through_airlock_serve() {
    let Some(python) = tools_python() else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let srv = Server::start(&["--store", store.path().to_str().unwrap()]);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    // Several 64 KiB chunks and a short last one.
    let big: Vec<u8> = (0..300_001u32).map(|i| (i * 13 % 253) as u8).collect();
    std::fs::write(w.join("payload.bin"), &payload).unwrap();
    std::fs::write(w.join("big.bin"), &big).unwrap();
    std::fs::write(w.join("config.json"), br#"{"kind":"airlock-test"}"#).unwrap();
    std::fs::write(w.join("sig-config.json"), b"{}").unwrap();
    std::fs::write(w.join("signature.txt"), b"signed by the test").unwrap();
    std::fs::write(
        w.join("push_pull.py"),
        include_str!("oras/push_pull.py").as_bytes(),
    )
    .unwrap();
    let out = Command::new(&python)
        .arg("push_pull.py")
        .arg(srv.addr.to_string())
        .current_dir(w)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oras: {}\n{}\nserver: {:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        srv.log()
    );
    let r: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    });

    assert_eq!(
        std::fs::read(w.join("pulled/payload.bin")).unwrap(),
        payload
    );
    assert_eq!(
        std::fs::read(w.join("pulled-chunked/big.bin")).unwrap(),
        big
    );
    let mut tags: Vec<&str> = r["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["chunked", "v1"], "{r}");

    // oras's chunked upload really went through PATCH (several 64 KiB chunks).
    let t = std::time::Instant::now();
    while srv
        .log()
        .iter()
        .filter(|l| l.starts_with("access method=PATCH") && l.contains("status=202"))
        .count()
        < 4
    {
        assert!(
            t.elapsed().as_secs() < 5,
            "no chunked PATCHes: {:?}",
            srv.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // What oras pushed is what airlock serves: the manifest's digest is over its bytes, and
    // its layer is the file.
    let subject = r["subject"].as_str().unwrap();
    assert_eq!(r["pushed"].as_str(), Some(subject), "{r}");
    let (status, _, manifest) = http(
        srv.addr,
        "GET",
        &format!("/v2/lab/artifact/manifests/{subject}"),
        b"",
    );
    assert_eq!(status, 200);
    assert_eq!(Digest::of(&manifest).to_string(), subject);
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.airlock.test.config+json"
    );
    assert_eq!(m["layers"][0]["digest"], Digest::of(&payload).to_string());
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.airlock.test.payload"
    );

    // The referrer: OCI-Subject on its PUT, and listed under the subject with its artifact
    // type (the config's media type, the field oras-py sets), also through the filter.
    let referrer = r["referrer"].as_str().unwrap();
    assert_eq!(r["oci_subject"].as_str(), Some(subject), "{r}");
    let sig_type = "application/vnd.airlock.test.signature+json";
    for query in [
        "",
        "?artifactType=application/vnd.airlock.test.signature%2Bjson",
    ] {
        let (status, headers, body) = http(
            srv.addr,
            "GET",
            &format!("/v2/lab/artifact/referrers/{subject}{query}"),
            b"",
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let ct = headers.iter().find(|(k, _)| k == "content-type").unwrap();
        assert_eq!(ct.1, "application/vnd.oci.image.index.v1+json");
        let index: Value = serde_json::from_slice(&body).unwrap();
        let listed = index["manifests"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "{index}");
        assert_eq!(listed[0]["digest"], referrer);
        assert_eq!(listed[0]["artifactType"], sig_type);
    }
    // A filter that matches nothing lists nothing: the filter is applied, not ignored.
    let (_, _, body) = http(
        srv.addr,
        "GET",
        &format!("/v2/lab/artifact/referrers/{subject}?artifactType=application/vnd.other"),
        b"",
    );
    let index: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 0, "{index}");
}
