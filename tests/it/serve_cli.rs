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
        let crate::Isolated { mut cmd, _home } = airlock_process();
        let mut child = cmd
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
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
                // Logged before the address is announced: a test that reads the log right
                // after start must find the start-up lines.
                let addr = line
                    .split("listening on http://")
                    .nth(1)
                    .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string());
                l.lock().unwrap().push(line);
                if let Some(addr) = addr {
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

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn wait(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
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
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
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
        .any(|l| l.contains("method=GET") && l.contains("status=200") && l.contains("bytes=7"))
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
            .any(|l| l.starts_with("access method=POST") && l.contains("status=201"))
    );
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
