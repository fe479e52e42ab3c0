//! The OCI distribution-spec conformance suite (`../shared/tools/oci-conformance/run`, the
//! same script the project is judged by) against `airlock serve`: read-write with every default
//! data set (sha512 included) and upload cancel, and the read-only profile against a layout
//! served in place. Debian's docker-registry is scored on the same run for comparison (printed,
//! recorded in bench/RESULTS.md). Skipped, with a message, where the suite is not beside the
//! checkout.

use std::path::{Path, PathBuf};
use std::process::Command;

use oci::Digest;

use crate::repo_root;
use crate::serve_cli::{Server, http};

fn suite() -> Option<PathBuf> {
    let run = repo_root().join("../shared/tools/oci-conformance/run");
    if run.exists() {
        Some(run)
    } else {
        eprintln!("skipped: {} is not there", run.display());
        None
    }
}

struct Score {
    passed: u32,
    failed: u32,
    /// The summary line (`N passed, N failed, N skipped, N disabled`).
    line: String,
    text: String,
}

/// One suite run at a time: the first run installs the Go toolchain and builds the suite into
/// the shared cache, and a second run started meanwhile read half-written files (seen on a clean
/// clone: "tables15.0.0.go: expected 'package', found 'EOF'").
static SUITE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_suite(run: &Path, addr: &str, env: &[(&str, &str)]) -> Score {
    let _one_at_a_time = SUITE.lock().unwrap_or_else(|e| e.into_inner());
    let results = tempfile::tempdir().unwrap();
    // Tests run with an empty HOME: the built suite and its Go toolchain are kept in target/.
    let cache = repo_root().join("target/oci-conformance");
    let out = Command::new("bash")
        .arg(run)
        .arg(addr)
        .arg(results.path())
        .env("OCI_CONFORMANCE_CACHE", &cache)
        .envs(env.iter().copied())
        .output()
        .expect("the conformance script runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("conformance: "))
        .unwrap_or_else(|| panic!("no summary line:\n{text}"))
        .to_string();
    let num = |word: &str| -> u32 {
        let w: Vec<&str> = line.split([' ', ',']).filter(|s| !s.is_empty()).collect();
        let i = w.iter().position(|x| *x == word).unwrap();
        w[i - 1].parse().unwrap()
    };
    Score {
        passed: num("passed"),
        failed: num("failed"),
        line,
        text,
    }
}

#[test]
fn oci_conformance_read_write_has_zero_failures() {
    let Some(run) = suite() else { return };
    let store = tempfile::tempdir().unwrap();
    let srv = Server::start(&["--store", store.path().to_str().unwrap()]);
    let env = [("OCI_API_BLOBS_UPLOAD_CANCEL", "true")];
    let ours = run_suite(&run, &srv.addr.to_string(), &env);
    eprintln!("airlock serve: conformance {}", ours.line);
    if testimages::Registry::available() {
        let reg = testimages::Registry::start(testimages::RegistryKind::PLAIN).unwrap();
        let theirs = run_suite(&run, &reg.host(), &env);
        eprintln!(
            "docker-registry: conformance {} ({} passed, {} failed)",
            theirs.line, theirs.passed, theirs.failed
        );
    }
    assert_eq!(ours.failed, 0, "{}", ours.text);
    // Every test of the default data sets ran (860 on the suite as vendored).
    assert!(ours.passed >= 850, "{}", ours.text);
}

/// Pushes an image and a referrer of it into `repo` of a running server: `(manifest digest,
/// blob digests)`.
fn preload(srv: &Server, repo: &str) -> (Digest, Vec<Digest>) {
    let put_blob = |data: &[u8]| {
        let d = Digest::of(data);
        let (s, _, _) = http(
            srv.addr,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            data,
        );
        assert_eq!(s, 201);
        d
    };
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = put_blob(config);
    let layer: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let ld = put_blob(&layer);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": layer.len()}],
    }))
    .unwrap();
    let md = Digest::of(&manifest);
    let (s, _, _) = put_manifest(srv, &format!("/v2/{repo}/manifests/v1"), &manifest);
    assert_eq!(s, 201);
    let empty = put_blob(b"{}");
    let referrer = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len()},
    }))
    .unwrap();
    let rd = Digest::of(&referrer);
    let (s, _, _) = put_manifest(srv, &format!("/v2/{repo}/manifests/{rd}"), &referrer);
    assert_eq!(s, 201);
    (md, vec![cd, ld, empty])
}

fn put_manifest(srv: &Server, path: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    crate::serve_cli::read_response(&mut s)
}

#[test]
fn oci_conformance_read_only_layout_in_place_has_zero_failures() {
    let Some(run) = suite() else { return };
    let store = tempfile::tempdir().unwrap();
    let (md, blobs) = {
        let rw = Server::start(&["--store", store.path().to_str().unwrap()]);
        preload(&rw, "conformance/repo1")
    };
    let ro = Server::start(&[store.path().to_str().unwrap()]);
    let blobs: Vec<String> = blobs.iter().map(|d| d.to_string()).collect();
    let env = [
        ("OCI_API_PUSH", "false"),
        ("OCI_API_BLOBS_DELETE", "false"),
        ("OCI_API_MANIFESTS_DELETE", "false"),
        ("OCI_API_TAGS_DELETE", "false"),
        ("OCI_RO_DATA_TAGS", "v1"),
        ("OCI_RO_DATA_MANIFESTS", md.as_str()),
        ("OCI_RO_DATA_BLOBS", &blobs.join(" ")),
        ("OCI_RO_DATA_REFERRERS", md.as_str()),
    ];
    let score = run_suite(&run, &ro.addr.to_string(), &env);
    eprintln!(
        "airlock serve (read-only layout): conformance {}",
        score.line
    );
    assert_eq!(score.failed, 0, "{}", score.text);
    assert!(score.passed > 0, "{}", score.text);
}
