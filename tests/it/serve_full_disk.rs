//! `airlock serve --store` on a full disk (an 8 MiB tmpfs): a blob larger than the free space,
//! pushed whole or in chunks, and a manifest on a disk with no room left, are answered 507 with
//! the spec's error body; nothing partial is left in the store; the server goes on serving, and
//! takes pushes again once there is room.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use oci::Digest;
use serde_json::{Value, json};

use crate::serve_cli::{Server, http, read_response};

/// Setting this (to anything) turns "no tmpfs can be mounted here" into a skip.
const SKIP: &str = "AIRLOCK_SKIP_FULL_DISK";
const SIZE: &str = "size=8m";

/// Where the store lives: a tmpfs mounted by the test (root), or one the server mounts in a
/// user and mount namespace of its own (`unshare -rm`), seen from here through
/// `/proc/PID/root`.
enum Disk {
    Mounted(Tmpfs),
    Unshared(tempfile::TempDir),
}

/// A tmpfs mounted on a temporary directory; unmounted on drop, even when the test panics.
struct Tmpfs(tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.0.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Busy (a server still closing its files): detach it, the kernel frees it later.
            let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
        }
    }
}

fn runs(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

/// The store on a small tmpfs, and the server on it. None only when the skip variable is set.
fn server_on_a_small_disk() -> Option<(Server, Disk)> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    if runs(Command::new("mount").args(["-t", "tmpfs", "-o", SIZE, "tmpfs", &d])) {
        let srv = Server::start(&["--store", &d]);
        return Some((srv, Disk::Mounted(Tmpfs(dir))));
    }
    let probe = format!("mount -t tmpfs -o {SIZE} tmpfs {d}");
    if runs(Command::new("unshare").args(["-rm", "sh", "-c", &probe])) {
        let script = format!("mount -t tmpfs -o {SIZE} tmpfs \"$0\" && exec \"$@\"");
        let srv = Server::start_via(
            &["unshare", "-rm", "sh", "-c", &script, &d],
            &["--store", &d],
        );
        return Some((srv, Disk::Unshared(dir)));
    }
    let why = "cannot mount a tmpfs for the full-disk test: `mount -t tmpfs` needs root, and \
               `unshare -rm` (user namespaces) is not allowed here either";
    if std::env::var_os(SKIP).is_some() {
        eprintln!("SKIPPED ({SKIP} is set): {why}");
        return None;
    }
    panic!("{why}; set {SKIP}=1 to skip this test");
}

impl Disk {
    /// The store as this process sees it.
    fn store(&self, srv: &Server) -> PathBuf {
        match self {
            Disk::Mounted(t) => t.0.path().to_path_buf(),
            Disk::Unshared(d) => PathBuf::from(format!("/proc/{}/root", srv.pid()))
                .join(d.path().strip_prefix("/").unwrap()),
        }
    }
}

/// Every file under `dir`, relative, with its size.
fn files(dir: &Path) -> Vec<(String, u64)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, e.metadata().unwrap().len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A request whose body the server may stop reading: the body is written as far as the server
/// takes it, then the response is read. A 507 that only reached a client which had finished
/// sending would be lost on every large push.
fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    read_response(&mut s)
}

/// The spec's error body of a full store.
fn assert_storage_full(what: &str, (status, _, body): &(u16, Vec<(String, String)>, Vec<u8>)) {
    let text = String::from_utf8_lossy(body);
    assert_eq!(*status, 507, "{what}: {text}");
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    let err = &v["errors"][0];
    assert_eq!(err["code"], "UNKNOWN", "{what}: {v}");
    assert!(
        err["message"].as_str().unwrap().contains("storage is full"),
        "{what}: {v}"
    );
}

fn push_blob(addr: SocketAddr, repo: &str, data: &[u8]) -> Digest {
    let d = Digest::of(data);
    let r = send(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
        &[],
        data,
    );
    assert_eq!(r.0, 201, "{}", String::from_utf8_lossy(&r.2));
    d
}

fn manifest(config: &[u8], layer: &[u8], note: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": Digest::of(config).to_string(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": Digest::of(layer).to_string(),
            "size": layer.len(),
        }],
        "annotations": {"note": note},
    }))
    .unwrap()
}

fn put_manifest(
    addr: SocketAddr,
    reference: &str,
    m: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    send(
        addr,
        "PUT",
        &format!("/v2/lab/app/manifests/{reference}"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        m,
    )
}

#[test]
fn full_disk_is_a_507_that_leaves_nothing_and_the_server_keeps_serving() {
    let Some((srv, disk)) = server_on_a_small_disk() else {
        return;
    };
    let store = disk.store(&srv);
    let addr = srv.addr;

    // An image that fits.
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    push_blob(addr, "lab/app", config);
    let layer_d = push_blob(addr, "lab/app", &layer);
    let m = manifest(config, &layer, "1");
    let r = put_manifest(addr, "1.0", &m);
    assert_eq!(r.0, 201, "{}", String::from_utf8_lossy(&r.2));
    let before = files(&store);

    // Larger than the whole disk, whole and in chunks.
    let huge: Vec<u8> = (0..12u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let huge_d = Digest::of(&huge);
    let r = send(
        addr,
        "POST",
        &format!("/v2/lab/app/blobs/uploads/?digest={huge_d}"),
        &[],
        &huge,
    );
    assert_storage_full("monolithic POST", &r);
    assert_eq!(
        files(&store),
        before,
        "the monolithic push left something behind"
    );

    let (status, headers, _) = http(addr, "POST", "/v2/lab/app/blobs/uploads/", b"");
    assert_eq!(status, 202);
    let location = headers
        .iter()
        .find(|(k, _)| k == "location")
        .unwrap()
        .1
        .clone();
    let r = send(
        addr,
        "PATCH",
        &location,
        &[("Content-Type", "application/octet-stream")],
        &huge,
    );
    assert_storage_full("chunked PATCH", &r);
    assert_eq!(
        files(&store),
        before,
        "the chunked push left something behind"
    );
    // The session is over, not half-full: its status and its completion are unknown.
    let (status, _, _) = http(addr, "GET", &location, b"");
    assert_eq!(status, 404);
    let sep = if location.contains('?') { '&' } else { '?' };
    let (status, _, _) = http(addr, "PUT", &format!("{location}{sep}digest={huge_d}"), b"");
    assert_eq!(status, 404);

    // Still serving what it holds.
    let (status, _, body) = http(addr, "GET", "/v2/lab/app/manifests/1.0", b"");
    assert_eq!((status, body), (200, m.clone()));
    let (status, _, body) = http(addr, "GET", &format!("/v2/lab/app/blobs/{layer_d}"), b"");
    assert_eq!(status, 200);
    assert_eq!(body, layer);
    // And a push that fits succeeds, whole and in chunks.
    push_blob(addr, "lab/app", b"small enough");
    let (status, headers, _) = http(addr, "POST", "/v2/lab/app/blobs/uploads/", b"");
    assert_eq!(status, 202);
    let location = headers
        .iter()
        .find(|(k, _)| k == "location")
        .unwrap()
        .1
        .clone();
    let small = b"a small chunked blob";
    let r = send(addr, "PATCH", &location, &[], small);
    assert_eq!(r.0, 202);
    let r = send(
        addr,
        "PUT",
        &format!("{location}{sep}digest={}", Digest::of(small)),
        &[],
        b"",
    );
    assert_eq!(r.0, 201, "{}", String::from_utf8_lossy(&r.2));

    // A manifest on a disk with no room left at all.
    let filler = store.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        loop {
            if f.write_all(&block).is_err() {
                break;
            }
        }
        let one = [0u8; 1];
        while f.write_all(&one).is_ok() {}
    }
    let before = files(&store);
    let m2 = manifest(config, &layer, "2");
    let r = put_manifest(addr, "2.0", &m2);
    assert_storage_full("manifest PUT", &r);
    assert_eq!(
        files(&store),
        before,
        "the manifest PUT left something behind"
    );
    let (status, _, _) = http(addr, "GET", "/v2/lab/app/manifests/2.0", b"");
    assert_eq!(status, 404, "a manifest that was refused is not served");
    let (status, _, _) = http(
        addr,
        "GET",
        &format!("/v2/lab/app/manifests/{}", Digest::of(&m2)),
        b"",
    );
    assert_eq!(
        status, 404,
        "a manifest that was refused is not served by digest either"
    );
    let (status, _, body) = http(addr, "GET", "/v2/lab/app/manifests/1.0", b"");
    assert_eq!((status, body), (200, m.clone()));

    // Room again: the same manifest goes in.
    std::fs::remove_file(&filler).unwrap();
    let r = put_manifest(addr, "2.0", &m2);
    assert_eq!(r.0, 201, "{}", String::from_utf8_lossy(&r.2));
    let (status, _, body) = http(addr, "GET", "/v2/lab/app/manifests/2.0", b"");
    assert_eq!((status, body), (200, m2));
    assert!(
        srv.log().iter().any(|l| l.contains("store full")),
        "the operator learns why: {:?}",
        srv.log()
    );
    drop(srv);
    drop(disk);
}
