//! Slow clients and shutdown on a real socket: a client trickling its headers is disconnected
//! after `--header-read-timeout`; after SIGTERM a download in flight finishes, and clients that
//! stall or idle cannot keep the process alive past `--shutdown-timeout`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use oci::Digest;

use crate::serve_cli::{Server, http};

/// Whether the server closed `s` (EOF or reset) within `wait`.
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A 408 or similar before the close is fine; keep reading to the close.
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn serve_disconnects_a_client_sending_headers_one_byte_a_second() {
    let store = tempfile::tempdir().unwrap();
    let srv = Server::start(&[
        "--store",
        store.path().to_str().unwrap(),
        "--header-read-timeout",
        "2",
    ]);
    let mut s = TcpStream::connect(srv.addr).unwrap();
    let head =
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let start = Instant::now();
    let mut cut = None;
    for b in head.iter() {
        if s.write_all(&[*b]).is_err() || closed_within(&mut s, Duration::from_secs(1)) {
            cut = Some(start.elapsed());
            break;
        }
    }
    let cut = cut.expect("the trickling client was never disconnected");
    assert!(
        cut >= Duration::from_millis(1500) && cut < Duration::from_secs(6),
        "disconnected after {cut:?}"
    );
    // The server still answers everyone else.
    assert_eq!(http(srv.addr, "GET", "/v2/", b"").0, 200);
}

/// A store served by a server with `--shutdown-timeout secs` and one blob of `size` bytes.
fn server_with_blob(secs: &str, size: usize) -> (tempfile::TempDir, Server, Vec<u8>, Digest) {
    let store = tempfile::tempdir().unwrap();
    let srv = Server::start(&[
        "--store",
        store.path().to_str().unwrap(),
        "--shutdown-timeout",
        secs,
        "--header-read-timeout",
        "60",
    ]);
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let d = Digest::of(&data);
    let (status, _, _) = http(
        srv.addr,
        "POST",
        &format!("/v2/a/blobs/uploads/?digest={d}"),
        &data,
    );
    assert_eq!(status, 201);
    (store, srv, data, d)
}

fn start_download(srv: &Server, d: &Digest) -> TcpStream {
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // A small receive buffer, so the server really waits on this reader.
    write!(
        s,
        "GET /v2/a/blobs/{d} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s
}

#[test]
fn sigterm_lets_a_slow_download_finish_within_the_deadline() {
    let (_store, mut srv, data, d) = server_with_blob("20", 8 << 20);
    let mut s = start_download(&srv, &d);
    let mut got = vec![0u8; 256 << 10];
    let n = s.read(&mut got).unwrap();
    got.truncate(n);
    srv.signal("-TERM");
    let t = Instant::now();
    // About 2 s more of reading: 256 KiB every 60 ms.
    let mut buf = vec![0u8; 256 << 10];
    loop {
        std::thread::sleep(Duration::from_millis(60));
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let split = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(got.starts_with(b"HTTP/1.1 200"));
    assert_eq!(Digest::of(&got[split + 4..]), d, "the download was cut");
    assert_eq!(got.len() - split - 4, data.len());
    let status = srv
        .wait(Duration::from_secs(10))
        .expect("exits once the download is done");
    assert!(status.success());
    assert!(t.elapsed() < Duration::from_secs(12));
}

#[test]
fn stalled_and_idle_clients_do_not_keep_the_server_past_the_shutdown_timeout() {
    let (_store, mut srv, _data, d) = server_with_blob("2", 8 << 20);
    // One download that never reads past its first bytes, one connection with half a request
    // head, one idle keep-alive connection.
    let mut stalled = start_download(&srv, &d);
    let mut first = [0u8; 16];
    stalled.read_exact(&mut first).unwrap();
    let mut half = TcpStream::connect(srv.addr).unwrap();
    half.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut idle = TcpStream::connect(srv.addr).unwrap();
    idle.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    srv.signal("-TERM");
    let status = srv
        .wait(Duration::from_secs(8))
        .expect("the server outlived its shutdown deadline");
    let took = t.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(5), "exited after {took:?}");
    assert!(
        srv.log().iter().any(|l| l.contains("stopped")),
        "{:?}",
        srv.log()
    );
    drop((stalled, half, idle));
}
