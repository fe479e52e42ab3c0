//! Network failures name their root cause (connection refused, DNS, TLS, proxy) and fail fast
//! when no retry can help; each exits 3.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use testimages::RegistryKind;

use crate::lock_cli::registry_with_images;
use crate::{airlock, tempdir};

/// Run `airlock args` in a directory holding `images.txt` = `list`; exit code, stderr, time.
fn run(list: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, Duration) {
    let dir = tempdir();
    std::fs::write(dir.path().join("images.txt"), list).unwrap();
    let mut cmd = airlock();
    // The machine's own proxy settings would change what fails.
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    let start = Instant::now();
    let out = cmd
        .current_dir(dir.path())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

/// A plain-HTTP server on loopback that answers every request with `answer` and counts the
/// connections it accepted.
fn plain_server(answer: &'static [u8]) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(answer);
        }
    });
    (addr, accepted)
}

#[test]
fn mirror_to_a_closed_port_names_connection_refused_and_fails_in_seconds() {
    let (source, _set, _, _) = registry_with_images(RegistryKind::PLAIN);
    let src = source.host();
    let (code, stderr, took) = run(
        &format!("{src}/lab/app:1.0\n"),
        &[
            "mirror",
            "-f",
            "images.txt",
            "--to",
            "127.0.0.1:1/mirror",
            "--insecure",
            &src,
            "--insecure",
            "127.0.0.1:1",
            "--progress",
            "quiet",
        ],
        &[],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert!(
        stderr.contains("Connection refused (os error 111)"),
        "{stderr}"
    );
    assert!(stderr.contains("is the registry running"), "{stderr}");
    eprintln!("mirror to a closed port failed in {took:?}");
    // Refused is retried briefly (a registry may be starting): 3 attempts, 0.5 s and 1 s apart.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn an_unresolvable_host_names_dns_and_fails_in_seconds() {
    // .invalid never resolves (RFC 6761); what the resolver says depends on the machine
    // (no such host, or no resolver reachable), both are DNS.
    let (code, stderr, took) = run(
        "registry.airlock-test.invalid/app:1.0\n",
        &["lock", "-f", "images.txt"],
        &[],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("DNS: "), "{stderr}");
    assert!(stderr.contains("check the host name"), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn tls_against_a_plain_http_server_names_tls_and_is_not_retried() {
    let (addr, accepted) = plain_server(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let (code, stderr, _) = run(
        &format!("{addr}/app:1.0\n"),
        &["lock", "-f", "images.txt", "--attempts", "5"],
        &[],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("TLS handshake failed"), "{stderr}");
    assert!(stderr.contains("--insecure HOST:PORT"), "{stderr}");
    // One connection: a retry cannot make a plain server speak TLS.
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "{stderr}");
}

#[test]
fn a_proxy_that_refuses_the_tunnel_is_named_and_not_retried() {
    let (addr, accepted) = plain_server(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    let proxy = format!("http://{addr}");
    let (code, stderr, _) = run(
        "registry.example.com/app:1.0\n",
        &["lock", "-f", "images.txt", "--attempts", "5"],
        &[("HTTPS_PROXY", &proxy), ("NO_PROXY", "")],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("proxy failed"), "{stderr}");
    assert!(stderr.contains("HTTPS_PROXY"), "{stderr}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "{stderr}");
}
