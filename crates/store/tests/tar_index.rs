//! `.tar` archives served in place: every blob `pack`'s writer stored reads back whole and by
//! ranges, names resolve as in the layout, and hostile archives (generated here) are refused.

use futures_util::StreamExt;
use oci::{Digest, Error};
use oci_store::{Compression, Layout, Store, TarArchive, read_archive_with_progress};
use testimages::{ImageSet, ImageSpec, LayerSpec, Media, Platform};

async fn collect(r: oci_store::BlobRange) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut s = r.stream;
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c?);
    }
    Ok(out)
}

fn images() -> ImageSet {
    let set = ImageSet::temp().unwrap();
    let amd = ImageSpec::new(
        Media::Oci,
        Platform::linux_amd64(),
        vec![LayerSpec::new(700_000, 1), LayerSpec::new(3_000, 2)],
    );
    let arm = ImageSpec::new(
        Media::Oci,
        Platform::linux_arm64(),
        vec![LayerSpec::new(300_000, 3)],
    );
    set.image("127.0.0.1:5000/team/app:1.0", &amd).unwrap();
    set.index(
        "docker.io/library/multi:2",
        &[amd.clone(), arm],
        Media::Docker,
    )
    .unwrap();
    set
}

#[tokio::test]
async fn packed_archive_is_served_in_place_byte_for_byte() {
    let set = images();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle.tar");
    let layout = Layout::open(set.path()).await.unwrap();
    oci_store::write_archive(&layout, &out, Compression::None)
        .await
        .unwrap();
    let ar = TarArchive::open(&out).unwrap();

    let digests = set.blob_digests().unwrap();
    assert_eq!(ar.blob_count(), digests.len());
    for d in &digests {
        let want = set.read_blob(d).unwrap();
        let digest = Digest::parse(d).unwrap();
        let size = want.len() as u64;
        assert_eq!(ar.stat_blob(&digest).await.unwrap(), Some(size), "{d}");
        // Ranges first: the blob is verified whole once, then each range costs its own bytes.
        for (start, end) in [
            (0, size.min(1)),
            (size / 3, size / 2),
            (size - size.min(7), size),
        ] {
            let r = ar.read_blob_range(&digest, start, Some(end)).await.unwrap();
            assert_eq!((r.blob_size, r.start, r.len), (size, start, end - start));
            let got = collect(r).await.unwrap();
            assert_eq!(
                got,
                want[start as usize..end as usize],
                "{d} {start}..{end}"
            );
        }
        let got = collect(ar.read_blob_range(&digest, 0, None).await.unwrap())
            .await
            .unwrap();
        assert_eq!(got, want, "{d}");
        assert!(matches!(
            ar.read_blob_range(&digest, 0, Some(size + 1)).await,
            Err(Error::RangeNotSatisfiable { .. })
        ));
    }
    let absent = Digest::of(b"not in the archive");
    assert_eq!(ar.stat_blob(&absent).await.unwrap(), None);
    assert!(matches!(
        ar.read_blob_range(&absent, 0, None).await,
        Err(Error::BlobNotFound { .. })
    ));

    // The same names as the layout it came from, through the same mapping.
    assert_eq!(
        ar.repositories().await.unwrap(),
        layout.repositories().await.unwrap()
    );
    assert_eq!(
        ar.repositories().await.unwrap(),
        ["library/multi", "team/app"]
    );
    for (repo, tag) in [("team/app", "1.0"), ("library/multi", "2")] {
        assert_eq!(
            ar.resolve_tag(repo, tag).await.unwrap().digest,
            layout.resolve_tag(repo, tag).await.unwrap().digest
        );
        assert_eq!(ar.tags(repo).await.unwrap(), [tag]);
    }
    assert!(matches!(
        ar.resolve_tag("team/app", "2.0").await,
        Err(Error::NotInLayout { .. })
    ));
    assert!(ar.tags("nobody").await.unwrap().is_empty());

    let d = Digest::parse(&digests[0]).unwrap();
    assert!(matches!(
        ar.put_blob(&d, None).await,
        Err(Error::ReadOnly { .. })
    ));
    let desc = ar.resolve_tag("team/app", "1.0").await.unwrap();
    assert!(matches!(
        ar.set_tag("team/app", "x", desc).await,
        Err(Error::ReadOnly { .. })
    ));
}

#[tokio::test]
async fn zstd_archive_unpacks_once_with_progress() {
    let set = images();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle.tar.zst");
    let layout = Layout::open(set.path()).await.unwrap();
    oci_store::write_archive(&layout, &out, Compression::Zstd)
        .await
        .unwrap();
    let size = std::fs::metadata(&out).unwrap().len();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let store = read_archive_with_progress(&out, dir.path().join("store"), move |done, total| {
        s.lock().unwrap().push((done, total))
    })
    .await
    .unwrap();
    assert!(matches!(
        TarArchive::open(&out),
        Err(Error::InvalidArchive { reason, .. }) if reason.starts_with("compressed")
    ));
    let seen = seen.lock().unwrap().clone();
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(seen.last(), Some(&(size, size)));
    for d in set.blob_digests().unwrap() {
        let digest = Digest::parse(&d).unwrap();
        let got = collect(store.read_blob_range(&digest, 0, None).await.unwrap())
            .await
            .unwrap();
        assert_eq!(got, set.read_blob(&d).unwrap());
    }
    assert_eq!(
        store.repositories().await.unwrap(),
        ["library/multi", "team/app"]
    );
}

// --- hostile archives, built byte by byte -------------------------------------------------

const INDEX: &[u8] = br#"{"schemaVersion":2,"manifests":[]}"#;

/// One entry: a GNU header with `name` written raw (no checks), then the body padded to 512.
fn entry(name: &[u8], ty: tar::EntryType, body: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(ty);
    h.set_mode(0o644);
    h.set_size(body.len() as u64);
    h.set_mtime(0);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn blob_name(d: &Digest) -> Vec<u8> {
    format!("blobs/sha256/{}", d.hex()).into_bytes()
}

fn end() -> Vec<u8> {
    vec![0; 1024]
}

fn archive(parts: &[Vec<u8>]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.tar");
    std::fs::write(&path, parts.concat()).unwrap();
    (dir, path)
}

fn refused(parts: &[Vec<u8>], why: &str) -> String {
    let (_dir, path) = archive(parts);
    match TarArchive::open(&path) {
        Err(e @ Error::InvalidArchive { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(why), "{msg:?} should say {why:?}");
            msg
        }
        other => panic!("expected InvalidArchive ({why}), got {other:?}"),
    }
}

#[tokio::test]
async fn blob_whose_bytes_do_not_match_its_name_is_refused() {
    let claimed = Digest::of(b"the bytes the name promises");
    let lie = b"other bytes, of other length, under that name".repeat(20_000);
    let parts = [
        entry(b"index.json", tar::EntryType::Regular, INDEX),
        entry(&blob_name(&claimed), tar::EntryType::Regular, &lie),
        end(),
    ];
    let (_dir, path) = archive(&parts);

    // A whole read streams, but never completes: the last chunk is held back and replaced by
    // the mismatch.
    let ar = TarArchive::open(&path).unwrap();
    let r = ar.read_blob_range(&claimed, 0, None).await.unwrap();
    let mut s = r.stream;
    let mut got = 0;
    let mut err = None;
    while let Some(c) = s.next().await {
        match c {
            Ok(b) => got += b.len(),
            Err(e) => err = Some(e),
        }
    }
    assert!(got < lie.len());
    assert!(matches!(err, Some(Error::DigestMismatch { .. })), "{err:?}");
    // The verdict sticks: absent for stat, refused for every read.
    assert_eq!(ar.stat_blob(&claimed).await.unwrap(), None);
    assert!(matches!(
        ar.read_blob_range(&claimed, 0, Some(10)).await,
        Err(Error::DigestMismatch { .. })
    ));

    // A range read of a blob not yet verified verifies it first.
    let ar = TarArchive::open(&path).unwrap();
    assert!(matches!(
        ar.read_blob_range(&claimed, 5, Some(10)).await,
        Err(Error::DigestMismatch { .. })
    ));
    let ar = TarArchive::open(&path).unwrap();
    assert!(matches!(
        ar.verify_all(|_, _| {}),
        Err(Error::DigestMismatch { .. })
    ));
    assert_eq!(ar.stat_blob(&claimed).await.unwrap(), None);
}

#[test]
fn truncated_archive_is_refused_at_open() {
    let body = vec![7u8; 5000];
    let d = Digest::of(&body);
    let whole = [
        entry(b"index.json", tar::EntryType::Regular, INDEX),
        entry(&blob_name(&d), tar::EntryType::Regular, &body),
        end(),
    ]
    .concat();
    let (_dir, path) = archive(std::slice::from_ref(&whole));
    TarArchive::open(&path).unwrap();
    // Cut inside the blob: its declared size runs past the end of the file.
    refused(&[whole[..2048].to_vec()], "truncated: 5000 bytes declared");
    // Cut after the last entry: no end-of-archive marker.
    refused(
        &[whole[..whole.len() - 1024].to_vec()],
        "without its end-of-archive marker",
    );
    // Cut inside a header.
    refused(&[whole[..700].to_vec()], "truncated");
}

#[test]
fn duplicate_blob_or_index_entry_is_refused() {
    let body = b"blob".to_vec();
    let d = Digest::of(&body);
    let idx = entry(b"index.json", tar::EntryType::Regular, INDEX);
    let blob = entry(&blob_name(&d), tar::EntryType::Regular, &body);
    refused(
        &[idx.clone(), blob.clone(), blob.clone(), end()],
        "the same blob appears twice",
    );
    // `./` spells the same name.
    let dotted = entry(
        format!("./blobs/sha256/{}", d.hex()).as_bytes(),
        tar::EntryType::Regular,
        &body,
    );
    refused(
        &[idx.clone(), blob, dotted, end()],
        "the same blob appears twice",
    );
    refused(&[idx.clone(), idx, end()], "index.json appears twice");
}

#[test]
fn links_and_directories_named_like_blobs_are_refused() {
    let d = Digest::of(b"x");
    let idx = entry(b"index.json", tar::EntryType::Regular, INDEX);
    for ty in [
        tar::EntryType::Symlink,
        tar::EntryType::Link,
        tar::EntryType::Directory,
        tar::EntryType::Fifo,
        tar::EntryType::GNUSparse,
    ] {
        refused(
            &[idx.clone(), entry(&blob_name(&d), ty, b""), end()],
            "where a regular file is expected",
        );
    }
    let mut dir_name = blob_name(&d);
    dir_name.push(b'/');
    refused(
        &[idx, entry(&dir_name, tar::EntryType::Directory, b""), end()],
        "Directory",
    );
    refused(
        &[entry(b"index.json", tar::EntryType::Symlink, b""), end()],
        "where a regular file is expected",
    );
}

#[test]
fn path_traversal_entry_is_refused() {
    let idx = entry(b"index.json", tar::EntryType::Regular, INDEX);
    for name in [
        &b"../index.json"[..],
        b"/etc/passwd",
        b"blobs/../../x",
        b"a/\xff/../../b",
    ] {
        let msg = refused(
            &[
                idx.clone(),
                entry(name, tar::EntryType::Regular, b"x"),
                end(),
            ],
            "escapes the archive root",
        );
        assert!(msg.contains("at byte 1024"), "{msg}");
    }
}

#[tokio::test]
async fn long_names_pax_paths_and_base256_sizes_are_read() {
    let a = b"named by a GNU long-name record".to_vec();
    let b = b"named by a PAX path record".repeat(50);
    let c = b"sized in base-256".repeat(40);
    let (da, db, dc) = (Digest::of(&a), Digest::of(&b), Digest::of(&c));

    // GNU long name (`././…` pads the name past the 100 bytes a header holds).
    let long = format!("{}blobs/sha256/{}", "./".repeat(20), da.hex());
    assert!(long.len() > 100);
    let mut long_rec = long.clone().into_bytes();
    long_rec.push(0);
    let gnu = [
        entry(b"././@LongLink", tar::EntryType::GNULongName, &long_rec),
        entry(b"truncated-short-name", tar::EntryType::Regular, &a),
    ]
    .concat();

    // PAX path and size: the header's own name and size are decoys.
    let path_rec = format!("blobs/sha256/{}", db.hex());
    let records = [
        pax_record("path", path_rec.as_bytes()),
        pax_record("size", b.len().to_string().as_bytes()),
    ]
    .concat();
    let mut decoy = entry(b"decoy", tar::EntryType::Regular, &b);
    set_size_field(&mut decoy, &octal(b.len() as u64 + 3));
    let pax = [
        entry(b"PaxHeaders/x", tar::EntryType::XHeader, &records),
        decoy,
    ]
    .concat();

    // Base-256 size field (what GNU tar writes for files over 8 GiB).
    let mut b256 = entry(&blob_name(&dc), tar::EntryType::Regular, &c);
    let mut field = [0u8; 12];
    field[0] = 0x80;
    field[4..].copy_from_slice(&(c.len() as u64).to_be_bytes());
    set_size_field(&mut b256, &field);

    let parts = [
        entry(b"index.json", tar::EntryType::Regular, INDEX),
        gnu,
        pax,
        b256,
        end(),
    ];
    let (_dir, path) = archive(&parts);
    let ar = TarArchive::open(&path).unwrap();
    assert_eq!(ar.blob_count(), 3);
    for (d, want) in [(&da, &a), (&db, &b), (&dc, &c)] {
        let got = collect(ar.read_blob_range(d, 0, None).await.unwrap())
            .await
            .unwrap();
        assert_eq!(&got, want);
    }
    ar.verify_all(|_, _| {}).unwrap();
}

#[test]
fn oversized_extension_records_are_refused() {
    let huge = vec![b'a'; 1 << 20];
    refused(
        &[
            entry(b"././@LongLink", tar::EntryType::GNULongName, &huge),
            entry(b"x", tar::EntryType::Regular, b""),
            end(),
        ],
        "extension record of 1048576 bytes",
    );
    refused(
        &[
            entry(
                b"PaxHeaders/x",
                tar::EntryType::XHeader,
                &pax_record("path", b"x"),
            ),
            end(),
        ],
        "an extension header describes no entry",
    );
}

#[test]
fn corrupt_header_checksum_is_refused() {
    let mut idx = entry(b"index.json", tar::EntryType::Regular, INDEX);
    idx[0] = b'X';
    refused(&[idx, end()], "checksum mismatch");
}

#[test]
fn archive_without_index_json_is_refused() {
    let (_dir, path) = archive(&[entry(b"oci-layout", tar::EntryType::Regular, b"{}"), end()]);
    assert!(matches!(
        TarArchive::open(&path),
        Err(Error::InvalidManifest { .. })
    ));
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    // "<len> <key>=<value>\n", where <len> counts itself.
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len.to_string().len() + rest != len {
        len += 1;
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

fn octal(n: u64) -> [u8; 12] {
    let mut f = [0u8; 12];
    f[..11].copy_from_slice(format!("{n:011o}").as_bytes());
    f
}

/// Rewrites an entry's size field and fixes its checksum.
fn set_size_field(entry: &mut [u8], field: &[u8; 12]) {
    entry[124..136].copy_from_slice(field);
    entry[148..156].fill(b' ');
    let sum: u32 = entry[..512].iter().map(|&b| u32::from(b)).sum();
    entry[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}
