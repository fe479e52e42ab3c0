//! Alone in its test binary: it measures the bytes this process reads and writes (`rchar`,
//! `wchar` in /proc/self/io), which another test running alongside would add to.
//!
//! The archive is 2 GiB and costs no disk: its big blob is a hole (`set_len`), all zeros, and
//! named by the real digest of 2 GiB of zeros.

use std::io::{Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

use futures_util::StreamExt;
use oci::Digest;
use oci::digest::Hasher;
use oci_store::{Store, TarArchive};

const BIG: u64 = 2 << 30;

fn io_counter(name: &str) -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap()
        .parse()
        .unwrap()
}

fn zeros_digest(len: u64) -> Digest {
    let buf = vec![0u8; 1 << 20];
    let mut h = Hasher::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        h.update(&buf[..n]);
        left -= n as u64;
    }
    h.finish()
}

fn append(b: &mut tar::Builder<std::fs::File>, name: &str, body: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(body.len() as u64);
    h.set_mtime(0);
    b.append_data(&mut h, name, body).unwrap();
}

/// Bytes allocated on disk under `dir` (holes cost nothing).
fn allocated(dir: &std::path::Path) -> (u64, usize) {
    let mut bytes = 0;
    let mut files = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let m = e.unwrap().metadata().unwrap();
        bytes += m.blocks() * 512;
        files += 1;
    }
    (bytes, files)
}

async fn drain(r: oci_store::BlobRange) -> usize {
    let mut s = r.stream;
    let mut n = 0;
    while let Some(c) = s.next().await {
        n += c.unwrap().len();
    }
    n
}

/// Serving a 2 GB archive must start in under a second and use no extra disk: the header walk
/// seeks over blob bodies. Reading entries in sequence (what a plain `tar::Archive::entries`
/// does) would read all 2 GiB before the first request.
#[tokio::test]
async fn opening_a_2gb_archive_reads_only_headers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.tar");
    let layer = zeros_digest(BIG);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = Digest::of(config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{BIG}}}]}}"#,
        config.len()
    );
    let manifest_digest = Digest::of(manifest.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"registry.example/big/zeros:1"}}}}]}}"#,
        manifest.len()
    );

    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    append(&mut b, "index.json", index.as_bytes());
    append(
        &mut b,
        &format!("blobs/sha256/{}", manifest_digest.hex()),
        manifest.as_bytes(),
    );
    append(
        &mut b,
        &format!("blobs/sha256/{}", config_digest.hex()),
        config,
    );
    let mut f = b.into_inner().unwrap();
    // Over the end-of-archive marker `into_inner` wrote.
    f.seek(std::io::SeekFrom::End(-1024)).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path(format!("blobs/sha256/{}", layer.hex())).unwrap();
    h.set_mode(0o644);
    h.set_size(BIG);
    h.set_mtime(0);
    h.set_cksum();
    f.write_all(h.as_bytes()).unwrap();
    let body_end = f.stream_position().unwrap() + BIG;
    f.set_len(body_end).unwrap();
    f.seek(std::io::SeekFrom::End(0)).unwrap();
    f.write_all(&[0; 1024]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let archive_len = std::fs::metadata(&path).unwrap().len();
    assert!(archive_len > BIG);
    let (disk_before, files_before) = allocated(dir.path());
    assert!(disk_before < 1 << 20, "the test archive itself is sparse");

    let (read0, written0) = (io_counter("rchar"), io_counter("wchar"));
    let t = Instant::now();
    let ar = TarArchive::open(&path).unwrap();
    let opened = t.elapsed();
    let (read, written) = (io_counter("rchar") - read0, io_counter("wchar") - written0);
    eprintln!(
        "open of a {archive_len}-byte archive: {opened:?}, {read} bytes read, {written} written"
    );
    assert!(opened.as_secs_f64() < 1.0, "open took {opened:?}");
    // Five headers and index.json, plus /proc/self/io itself: a few KiB.
    assert!(
        read < 64 << 10,
        "open read {read} bytes of a {archive_len}-byte archive"
    );
    assert!(written < 4 << 10, "open wrote {written} bytes");
    assert_eq!(allocated(dir.path()), (disk_before, files_before));

    let desc = ar.resolve_tag("big/zeros", "1").await.unwrap();
    assert_eq!(desc.digest, manifest_digest);
    assert_eq!(ar.stat_blob(&layer).await.unwrap(), Some(BIG));

    // The first range read of the big blob verifies it whole, once; later ones cost their bytes.
    let t = Instant::now();
    let r = ar
        .read_blob_range(&layer, BIG - 4096, Some(BIG))
        .await
        .unwrap();
    assert_eq!(drain(r).await, 4096);
    eprintln!("first range read (verifies 2 GiB): {:?}", t.elapsed());
    let read0 = io_counter("rchar");
    for i in 0..50u64 {
        let start = i * (BIG / 50);
        let r = ar
            .read_blob_range(&layer, start, Some(start + 4096))
            .await
            .unwrap();
        assert_eq!(drain(r).await, 4096);
    }
    let read = io_counter("rchar") - read0;
    assert!(read < 1 << 20, "50 ranges of 4 KiB read {read} bytes");
    assert_eq!(
        allocated(dir.path()),
        (disk_before, files_before),
        "after reads"
    );
}
