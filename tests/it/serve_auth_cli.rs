//! `airlock serve` TLS from certificate files and the read-side users, driven by airlock's own
//! client: `--tls-cert/--tls-key` trusted through `--ca-file`; `--htpasswd-read` users pull but
//! never push, strangers neither; `--anonymous-read` lets strangers pull but not push.

use std::path::Path;

use crate::serve_cli::Server;

fn htpasswd(path: &Path, user: &str, password: &str) {
    let ok = std::process::Command::new("htpasswd")
        .args(["-B", "-b", "-C", "4", "-c"])
        .arg(path)
        .args([user, password])
        .status()
        .expect("htpasswd (apache2-utils) is installed");
    assert!(ok.success());
}

/// `airlock pack` of `lab/app:1.0` from `addr` into `out` in `dir`, as `creds` when given.
fn pull(
    dir: &Path,
    addr: &str,
    out: &str,
    creds: Option<&str>,
    extra: &[&str],
) -> std::process::Output {
    std::fs::write(dir.join("pull-list"), format!("{addr}/lab/app:1.0\n")).unwrap();
    let mut cmd = crate::airlock();
    cmd.current_dir(dir)
        .args(["pack", "-f", "pull-list", "-o", out, "--progress", "quiet"])
        .args(extra);
    if let Some(c) = creds {
        cmd.env("AIRLOCK_CREDS", format!("{addr}={c}"));
    }
    cmd.output().unwrap()
}

/// `airlock push` of the layout `layout` in `dir` to `addr`, as `creds` when given.
fn push(dir: &Path, addr: &str, creds: Option<&str>) -> std::process::Output {
    let mut cmd = crate::airlock();
    cmd.current_dir(dir)
        .args(["push", "layout", "--to", addr, "--insecure", addr])
        .args(["--progress", "quiet"]);
    if let Some(c) = creds {
        cmd.env("AIRLOCK_CREDS", c);
    }
    cmd.output().unwrap()
}

#[test]
fn serve_tls_cert_and_key_files_are_trusted_with_ca_file() {
    let (dir, image_digest) = crate::serve_cli::packed("bundle.tar");
    // A CA and a server certificate for 127.0.0.1, made here and handed over as plain files.
    let certs = dir.path().join("certs");
    let made = serving::tls::self_signed(&certs, "127.0.0.1", &[]).unwrap();
    let server = Server::start(&[
        dir.path().join("bundle.tar").to_str().unwrap(),
        "--tls-cert",
        made.server_cert.to_str().unwrap(),
        "--tls-key",
        made.server_key.to_str().unwrap(),
    ]);
    assert!(server.log().join("\n").contains("listening on https://"));
    let addr = server.addr.to_string();
    let untrusted = pull(dir.path(), &addr, "a", None, &[]);
    assert!(!untrusted.status.success(), "a CA nobody trusts is refused");
    let out = pull(
        dir.path(),
        &addr,
        "b",
        None,
        &["--ca-file", made.ca_cert.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = std::fs::read_to_string(dir.path().join("b/index.json")).unwrap();
    assert!(index.contains(&image_digest), "{index}");
}

#[test]
fn serve_htpasswd_read_user_pulls_but_cannot_push_and_strangers_are_refused() {
    let (dir, image_digest) = crate::serve_cli::packed("layout");
    let (readers, writers) = (dir.path().join("readers"), dir.path().join("writers"));
    htpasswd(&readers, "viewer", "look-only");
    htpasswd(&writers, "ci", "s3cret");
    let store = dir.path().join("store");
    let server = Server::start(&[
        "--store",
        store.to_str().unwrap(),
        "--htpasswd-read",
        readers.to_str().unwrap(),
        "--htpasswd-write",
        writers.to_str().unwrap(),
    ]);
    let addr = server.addr.to_string();
    let pushed = push(dir.path(), &addr, Some("ci:s3cret"));
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    let reader = pull(
        dir.path(),
        &addr,
        "r",
        Some("viewer:look-only"),
        &["--insecure", &addr],
    );
    assert!(
        reader.status.success(),
        "{}",
        String::from_utf8_lossy(&reader.stderr)
    );
    let index = std::fs::read_to_string(dir.path().join("r/index.json")).unwrap();
    assert!(index.contains(&image_digest), "{index}");

    let anonymous = pull(dir.path(), &addr, "anon", None, &["--insecure", &addr]);
    assert_eq!(anonymous.status.code(), Some(3), "{anonymous:?}");
    let got = std::fs::read_to_string(dir.path().join("anon/index.json")).unwrap_or_default();
    assert!(!got.contains(&image_digest), "{got}");
}

#[test]
fn serve_anonymous_read_lets_strangers_pull_but_not_push() {
    let (dir, image_digest) = crate::serve_cli::packed("layout");
    let writers = dir.path().join("writers");
    htpasswd(&writers, "ci", "s3cret");
    let store = dir.path().join("store");
    let server = Server::start(&[
        "--store",
        store.to_str().unwrap(),
        "--htpasswd-write",
        writers.to_str().unwrap(),
        "--anonymous-read",
    ]);
    let addr = server.addr.to_string();
    let pushed = push(dir.path(), &addr, Some("ci:s3cret"));
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let anonymous = pull(dir.path(), &addr, "anon", None, &["--insecure", &addr]);
    assert!(
        anonymous.status.success(),
        "{}",
        String::from_utf8_lossy(&anonymous.stderr)
    );
    let index = std::fs::read_to_string(dir.path().join("anon/index.json")).unwrap();
    assert!(index.contains(&image_digest), "{index}");
}
