//! `airlock serve` on a real socket: plain HTTP/1.1 written by hand (the test needs to stop
//! half-way through a body, which no client library does on purpose), signals from `kill`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use oci::Digest;

use crate::airlock_process;

/// A running `airlock serve`; killed on drop. Its stderr lines are collected.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    _home: crate::Isolated<()>,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        Server::start_process(airlock_process(), args)
    }

    /// Starts the server through `wrapper` (see [`crate::airlock_process_via`]).
    pub fn start_via(wrapper: &[&str], args: &[&str]) -> Server {
        Server::start_process(crate::airlock_process_via(wrapper), args)
    }

    fn start_process(process: crate::Isolated<std::process::Command>, args: &[&str]) -> Server {
        let crate::Isolated { mut cmd, _home } = process;
        let mut child = cmd
            .arg("serve")
            .args(args)
            .args(if args.contains(&"--listen") {
                &[][..]
            } else {
                &["--listen", "127.0.0.1:0"][..]
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("airlock serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Logged before the address is handed over, so `start`'s caller sees the line.
                l.lock().unwrap().push(line.clone());
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or("");
                    let addr = url.split("://").nth(1).unwrap_or(url).to_string();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no listening line: {:?}", log.lock().unwrap()));
        Server {
            child,
            addr: addr.parse().unwrap(),
            log,
            _home: crate::Isolated { cmd: (), _home },
        }
    }

    /// The server's process id (a wrapper that execs keeps it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    pub fn wait(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let t = Instant::now();
        while t.elapsed() < within {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on a fresh connection: `(status, headers lower-cased, body)`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s)
}

pub fn read_response(s: &mut TcpStream) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (status, headers, body)
}

/// A `Transfer-Encoding: chunked` body, decoded (the server streams JSON listings that way).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size = std::str::from_utf8(&raw[..eol]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
}

/// Files under `dir/blobs`, hidden partial files included.
fn blob_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for alg in ["sha256", "sha512"] {
        if let Ok(rd) = std::fs::read_dir(dir.join("blobs").join(alg)) {
            out.extend(rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()));
        }
    }
    out.sort();
    out
}

#[test]
fn serve_push_pull_and_access_log_on_a_socket() {
    let store = tempfile::tempdir().unwrap();
    let srv = Server::start(&["--store", store.path().to_str().unwrap()]);
    let (status, _, _) = http(srv.addr, "GET", "/v2/", b"");
    assert_eq!(status, 200);
    let data = b"a layer";
    let d = Digest::of(data);
    let (status, _, _) = http(
        srv.addr,
        "POST",
        &format!("/v2/a/b/blobs/uploads/?digest={d}"),
        data,
    );
    assert_eq!(status, 201);
    let (status, _, body) = http(srv.addr, "GET", &format!("/v2/a/b/blobs/{d}"), b"");
    assert_eq!((status, &body[..]), (200, &data[..]));
    let t = Instant::now();
    while !srv
        .log()
        .iter()
        .any(|l| l.contains("method=GET") && l.contains("status=200") && l.contains("bytes_out=7"))
    {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no access log line: {:?}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        srv.log()
            .iter()
            .any(|l| l.starts_with("access method=POST") && l.contains("status=201 bytes_in=7"))
    );
    // One line per request: two POST/GET requests above, and the GET /v2/.
    let access = srv
        .log()
        .iter()
        .filter(|l| l.starts_with("access "))
        .count();
    assert_eq!(access, 3, "{:?}", srv.log());
}

#[test]
fn graceful_shutdown_finishes_the_upload_in_flight() {
    let store = tempfile::tempdir().unwrap();
    let mut srv = Server::start(&["--store", store.path().to_str().unwrap()]);
    let data = vec![7u8; 1 << 20];
    let d = Digest::of(&data);
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /v2/a/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        data.len()
    )
    .unwrap();
    s.write_all(&data[..1000]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    srv.signal("-TERM");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    // New connections are no longer accepted.
    assert!(
        TcpStream::connect_timeout(&srv.addr, Duration::from_secs(1)).is_err()
            || http_refused_or_closed(srv.addr),
        "still accepting after SIGTERM"
    );
    s.write_all(&data[1000..]).unwrap();
    let (status, _, _) = read_response(&mut s);
    assert_eq!(status, 201, "the request in flight completes");
    let exit = srv
        .wait(Duration::from_secs(10))
        .expect("exits after the request");
    assert!(exit.success(), "{exit:?}: {:?}", srv.log());
    assert_eq!(blob_files(store.path()), [d.hex().to_string()]);
}

fn http_refused_or_closed(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return true;
    };
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut buf = [0u8; 16];
    !matches!(s.read(&mut buf), Ok(n) if n > 0)
}

#[test]
fn client_disconnecting_mid_upload_leaves_nothing() {
    let store = tempfile::tempdir().unwrap();
    let srv = Server::start(&["--store", store.path().to_str().unwrap()]);
    let data = vec![1u8; 4 << 20];
    let d = Digest::of(&data);
    // Monolithic and chunked: both cut off half-way.
    for path in [format!("/v2/a/blobs/uploads/?digest={d}"), String::new()] {
        let path = if path.is_empty() {
            let (status, headers, _) = http(srv.addr, "POST", "/v2/a/blobs/uploads/", b"");
            assert_eq!(status, 202);
            let loc = headers
                .iter()
                .find(|(k, _)| k == "location")
                .unwrap()
                .1
                .clone();
            format!("{loc}?digest={d}")
        } else {
            path
        };
        let method = if path.contains("uploads/?") {
            "POST"
        } else {
            "PUT"
        };
        let mut s = TcpStream::connect(srv.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            data.len()
        )
        .unwrap();
        s.write_all(&data[..data.len() / 2]).unwrap();
        drop(s);
    }
    let t = Instant::now();
    while !blob_files(store.path()).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "left behind: {:?}",
            blob_files(store.path())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _, _) = http(srv.addr, "HEAD", &format!("/v2/a/blobs/{d}"), b"");
    assert_eq!(status, 404);
}

#[test]
fn serve_layout_read_only_in_place_refuses_writes() {
    let store = tempfile::tempdir().unwrap();
    {
        let rw = Server::start(&["--store", store.path().to_str().unwrap()]);
        let d = Digest::of(b"x");
        assert_eq!(
            http(
                rw.addr,
                "POST",
                &format!("/v2/a/blobs/uploads/?digest={d}"),
                b"x"
            )
            .0,
            201
        );
    }
    let before = blob_files(store.path());
    let index = std::fs::read(store.path().join("index.json")).unwrap();
    let ro = Server::start(&[store.path().to_str().unwrap()]);
    assert!(
        ro.log().iter().any(|l| l.contains("read-only")),
        "{:?}",
        ro.log()
    );
    let d = Digest::of(b"x");
    assert_eq!(
        http(ro.addr, "GET", &format!("/v2/a/blobs/{d}"), b"").0,
        200
    );
    for (method, path) in [
        ("POST", "/v2/a/blobs/uploads/".to_string()),
        ("DELETE", format!("/v2/a/blobs/{d}")),
        ("PUT", "/v2/a/manifests/latest".to_string()),
    ] {
        let (status, _, body) = http(ro.addr, method, &path, b"{}");
        assert_eq!(status, 405, "{method} {path}");
        assert!(String::from_utf8_lossy(&body).contains("UNSUPPORTED"));
    }
    assert_eq!(blob_files(store.path()), before);
    assert_eq!(
        std::fs::read(store.path().join("index.json")).unwrap(),
        index
    );
}

#[test]
fn kill_9_mid_upload_then_restart_serves_completed_blobs_and_no_partial() {
    let store = tempfile::tempdir().unwrap();
    let done = b"completed before the kill".to_vec();
    let dd = Digest::of(&done);
    let partial = vec![3u8; 1 << 20];
    let pd = Digest::of(&partial);
    {
        let srv = Server::start(&["--store", store.path().to_str().unwrap()]);
        assert_eq!(
            http(
                srv.addr,
                "POST",
                &format!("/v2/a/blobs/uploads/?digest={dd}"),
                &done
            )
            .0,
            201
        );
        // A chunked upload with half its bytes in, and a monolithic one mid-body.
        let (status, headers, _) = http(srv.addr, "POST", "/v2/a/blobs/uploads/", b"");
        assert_eq!(status, 202);
        let loc = headers
            .iter()
            .find(|(k, _)| k == "location")
            .unwrap()
            .1
            .clone();
        assert_eq!(http(srv.addr, "PATCH", &loc, &partial[..1 << 19]).0, 202);
        let mut s = TcpStream::connect(srv.addr).unwrap();
        write!(
            s,
            "POST /v2/a/blobs/uploads/?digest={pd} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            partial.len()
        )
        .unwrap();
        s.write_all(&partial[..1 << 19]).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            blob_files(store.path()).len() >= 2,
            "partials on disk before the kill"
        );
        srv.signal("-KILL");
        std::thread::sleep(Duration::from_millis(100));
    }
    let srv = Server::start(&["--store", store.path().to_str().unwrap()]);
    let (status, _, body) = http(srv.addr, "GET", &format!("/v2/a/blobs/{dd}"), b"");
    assert_eq!((status, body), (200, done));
    assert_eq!(
        http(srv.addr, "HEAD", &format!("/v2/a/blobs/{pd}"), b"").0,
        404
    );
    assert_eq!(
        blob_files(store.path()),
        [dd.hex().to_string()],
        "the restart removed the partials"
    );
}

#[test]
fn path_traversal_on_the_socket_is_refused() {
    let store = tempfile::tempdir().unwrap();
    let srv = Server::start(&["--store", store.path().to_str().unwrap()]);
    for path in [
        "/v2/../../etc/tags/list",
        "/v2/a/%2e%2e/%2e%2e/x/manifests/latest",
    ] {
        let (status, _, body) = http(srv.addr, "GET", path, b"");
        assert_eq!(status, 400, "{path}");
        assert!(
            String::from_utf8_lossy(&body).contains("NAME_INVALID"),
            "{path}"
        );
    }
    let (status, _, _) = http(srv.addr, "PUT", "/v2/../../etc/manifests/latest", b"{}");
    assert_eq!(status, 400);
    assert!(!store.path().parent().unwrap().join("etc").exists());
}

/// A directory holding `out` (an archive or layout named by the caller) packed by `airlock pack`
/// with `lab/app:1.0` from a throwaway registry; and the image's manifest digest.
pub fn packed(out: &str) -> (tempfile::TempDir, String) {
    let (source, _set, image_digest, _) =
        crate::lock_cli::registry_with_images(testimages::RegistryKind::PLAIN);
    let dir = crate::tempdir();
    let src = source.host();
    std::fs::write(dir.path().join("list"), format!("{src}/lab/app:1.0\n")).unwrap();
    let out = crate::airlock()
        .current_dir(dir.path())
        .args(["pack", "-f", "list", "-o", out, "--insecure", &src])
        .args(["--progress", "quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(dir.path().join("list")).unwrap();
    (dir, image_digest)
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The manifest digest skopeo reads for `lab/app:1.0` from a plain-HTTP server.
fn skopeo_digest(addr: SocketAddr) -> String {
    let raw = testimages::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{addr}/lab/app:1.0"),
    ])
    .unwrap();
    testimages::sha256_digest(&raw)
}

fn assert_writes_refused(addr: SocketAddr) {
    let d = Digest::of(b"x");
    for (method, path) in [
        ("POST", "/v2/lab/app/blobs/uploads/".to_string()),
        ("POST", format!("/v2/lab/app/blobs/uploads/?digest={d}")),
        ("DELETE", format!("/v2/lab/app/blobs/{d}")),
        ("PUT", "/v2/lab/app/manifests/2.0".to_string()),
        ("DELETE", "/v2/lab/app/manifests/1.0".to_string()),
    ] {
        let (status, _, body) = http(addr, method, &path, b"x");
        assert_eq!(status, 405, "{method} {path}");
        assert!(String::from_utf8_lossy(&body).contains("UNSUPPORTED"));
    }
}

#[test]
fn serve_tar_archive_in_place_starts_fast_and_refuses_writes() {
    let (dir, image_digest) = packed("bundle.tar");
    let archive = dir.path().join("bundle.tar");
    let before = dir_listing(dir.path());
    let archive_bytes = std::fs::read(&archive).unwrap();
    let t = Instant::now();
    let server = Server::start(&[archive.to_str().unwrap()]);
    let startup = t.elapsed();
    eprintln!("serve bundle.tar: listening after {startup:?}");
    assert!(startup < Duration::from_secs(1), "startup took {startup:?}");
    assert!(
        server.log().iter().any(|l| l.contains("read-only")),
        "{:?}",
        server.log()
    );
    assert_eq!(skopeo_digest(server.addr), image_digest);
    assert_writes_refused(server.addr);
    drop(server);
    assert_eq!(
        dir_listing(dir.path()),
        before,
        "nothing beside the archive"
    );
    assert_eq!(std::fs::read(&archive).unwrap(), archive_bytes);
}

#[test]
fn serve_tar_zst_unpacks_once_into_the_store_with_progress() {
    let (dir, image_digest) = packed("bundle.tar.zst");
    let archive = dir.path().join("bundle.tar.zst");
    let out = crate::airlock()
        .args([
            "serve",
            archive.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--store"), "{err}");

    let store = dir.path().join("store");
    let server = Server::start(&[
        archive.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ]);
    let log = server.log().join("\n");
    assert!(log.contains("loading") && log.contains("100%"), "{log}");
    assert!(store.join("oci-layout").is_file());
    assert_eq!(skopeo_digest(server.addr), image_digest);
    assert_writes_refused(server.addr);
}

#[test]
fn serve_tls_dir_ca_is_trusted_by_airlock_pack() {
    let (dir, image_digest) = packed("bundle.tar");
    let tls = dir.path().join("tls");
    let server = Server::start(&[
        dir.path().join("bundle.tar").to_str().unwrap(),
        "--tls-dir",
        tls.to_str().unwrap(),
        "--tls-san",
        "registry.airgap.local",
    ]);
    let log = server.log().join("\n");
    assert!(log.contains("listening on https://"), "{log}");
    assert!(
        log.contains("fingerprint") && log.contains("ca.pem"),
        "{log}"
    );
    let ca = tls.join("ca.pem");
    let work = crate::tempdir();
    std::fs::write(
        work.path().join("list"),
        format!("{}/lab/app:1.0\n", server.addr),
    )
    .unwrap();
    let pack = |extra: &[&str]| {
        crate::airlock()
            .current_dir(work.path())
            .args(["pack", "-f", "list", "-o", "out", "--progress", "quiet"])
            .args(extra)
            .output()
            .unwrap()
    };
    let untrusted = pack(&[]);
    assert!(!untrusted.status.success(), "a CA nobody trusts is refused");
    let out = pack(&["--ca-file", ca.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = std::fs::read_to_string(work.path().join("out/index.json")).unwrap();
    assert!(index.contains(&image_digest), "{index}");
}

#[test]
fn serve_htpasswd_write_user_pushes_anonymous_refused_and_metrics_count() {
    let (dir, _) = packed("layout");
    let htpasswd = dir.path().join("htpasswd");
    let ok = std::process::Command::new("htpasswd")
        .args(["-B", "-b", "-C", "4", "-c"])
        .arg(&htpasswd)
        .args(["ci", "s3cret"])
        .status()
        .expect("htpasswd (apache2-utils) is installed");
    assert!(ok.success());
    let store = dir.path().join("store");
    let server = Server::start(&[
        "--store",
        store.to_str().unwrap(),
        "--htpasswd-write",
        htpasswd.to_str().unwrap(),
    ]);
    let to = server.addr.to_string();
    let push = |creds: Option<&str>| {
        let mut cmd = crate::airlock();
        cmd.current_dir(dir.path())
            .args(["push", "layout", "--to", &to, "--insecure", &to])
            .args(["--progress", "quiet"]);
        if let Some(c) = creds {
            cmd.env("AIRLOCK_CREDS", c);
        }
        cmd.output().unwrap()
    };
    let anonymous = push(None);
    assert_eq!(anonymous.status.code(), Some(3), "{anonymous:?}");
    let wrong = push(Some("ci:wrong"));
    assert_eq!(wrong.status.code(), Some(3), "{wrong:?}");
    let out = push(Some("ci:s3cret"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !server.log().join("\n").contains("s3cret"),
        "the password is never logged"
    );

    // /metrics answers without credentials and counted the refusals and the accepted pushes.
    let (status, _, body) = http(server.addr, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let count = |needle: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with("airlock_http_requests_total{") && l.contains(needle))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert!(count("status=\"401\"") >= 2, "{text}");
    assert!(count("status=\"201\"") >= 1, "{text}");
    let failures: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("airlock_auth_failures_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(failures >= 1, "{text}");
}

#[test]
fn serve_print_node_config_containerd_names_the_registry() {
    let out = crate::airlock()
        .args([
            "serve",
            "--print-node-config",
            "containerd",
            "--registry",
            "registry.corp:5000",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("hosts.toml"), "{script}");
    assert!(script.contains("http://registry.corp:5000"), "{script}");
}
