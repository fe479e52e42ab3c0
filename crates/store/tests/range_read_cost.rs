//! Alone in its test binary: it measures the bytes this process reads (`rchar` in
//! /proc/self/io), which another test running alongside would add to.

use oci_store::{Layout, Store};

fn bytes_read() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .unwrap()
        .parse()
        .unwrap()
}

/// A registry serves `Range` requests from the store; re-hashing the whole blob to verify each
/// one (what `open_blob` does) would read 32 MiB per 4 KiB asked for.
#[tokio::test]
async fn range_read_does_not_rehash_the_whole_blob() {
    use futures_util::StreamExt;
    const BLOB: usize = 32 << 20;
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).await.unwrap();
    let blob: Vec<u8> = (0..BLOB).map(|i| (i % 253) as u8).collect();
    let digest = layout.put_blob_bytes(&blob).await.unwrap();
    drop(blob);

    let before = bytes_read();
    for i in 0..100u64 {
        let start = i * 300_000;
        let r = layout
            .read_blob_range(&digest, start, Some(start + 4096))
            .await
            .unwrap();
        let mut s = r.stream;
        let mut n = 0;
        while let Some(c) = s.next().await {
            n += c.unwrap().len();
        }
        assert_eq!(n, 4096);
    }
    let read = bytes_read() - before;
    // 100 ranges of 4 KiB: 400 KiB, plus a little for /proc itself; one whole-blob verification
    // alone would be 32 MiB.
    assert!(read < 1 << 20, "read {read} bytes for 100 ranges of 4 KiB");
}
