//! The layout as a registry would serve it: repository + tag names over full reference names,
//! verified puts, byte ranges, and writers that cannot lose each other's tags.

use oci::manifest::OCI_MANIFEST;
use oci::{Descriptor, Digest, Error};
use oci_store::{Layout, Store};
use tokio::io::AsyncWriteExt;

async fn manifest(layout: &Layout, n: u32) -> Descriptor {
    let bytes = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","n":{n}}}"#);
    let digest = layout.put_blob_bytes(bytes.as_bytes()).await.unwrap();
    Descriptor {
        media_type: OCI_MANIFEST.into(),
        digest,
        size: bytes.len() as u64,
        platform: None,
        annotations: None,
        artifact_type: None,
    }
}

async fn collect(r: oci_store::BlobRange) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    let mut s = r.stream;
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

#[tokio::test]
async fn layout_full_names_are_served_by_repository_and_tag() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).await.unwrap();
    let a = manifest(&layout, 1).await;
    let b = manifest(&layout, 2).await;
    // What `pack` writes: full references, from different registries.
    layout
        .add_to_index(Some("127.0.0.1:15500/bench/img01:1.0"), a.clone())
        .await
        .unwrap();
    layout
        .add_to_index(Some("docker.io/library/nginx:1.27"), b.clone())
        .await
        .unwrap();
    layout
        .add_to_index(Some("docker.io/library/nginx:latest"), b.clone())
        .await
        .unwrap();
    layout
        .add_to_index(Some("latest"), a.clone())
        .await
        .unwrap();

    let got = layout.resolve_tag("bench/img01", "1.0").await.unwrap();
    assert_eq!(got.digest, a.digest);
    let got = layout.resolve_tag("library/nginx", "1.27").await.unwrap();
    assert_eq!(got.digest, b.digest);
    assert!(matches!(
        layout.resolve_tag("library/nginx", "2").await,
        Err(Error::NotInLayout { name, .. }) if name == "library/nginx:2"
    ));
    assert_eq!(
        layout.tags("library/nginx").await.unwrap(),
        ["1.27", "latest"]
    );
    assert!(layout.tags("nothing/here").await.unwrap().is_empty());
    assert_eq!(
        layout.repositories().await.unwrap(),
        ["bench/img01", "library/nginx"]
    );
}

#[tokio::test]
async fn same_repository_and_tag_from_two_registries_is_ambiguous_not_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).await.unwrap();
    let a = manifest(&layout, 1).await;
    let b = manifest(&layout, 2).await;
    layout
        .add_to_index(Some("one.example/app:1"), a.clone())
        .await
        .unwrap();
    layout
        .add_to_index(Some("two.example/app:1"), b.clone())
        .await
        .unwrap();
    let e = layout.resolve_tag("app", "1").await.unwrap_err();
    assert!(
        matches!(&e, Error::AmbiguousTag { names, .. } if names.len() == 2),
        "{e}"
    );
    assert!(e.to_string().contains("one.example/app:1"), "{e}");
    // Same digest under both names is no ambiguity.
    layout
        .add_to_index(Some("two.example/app:1"), a.clone())
        .await
        .unwrap();
    assert_eq!(
        layout.resolve_tag("app", "1").await.unwrap().digest,
        a.digest
    );
    // A registry push of app:1 replaces every entry that maps to it.
    layout.set_tag("app", "1", b.clone()).await.unwrap();
    assert_eq!(
        layout.resolve_tag("app", "1").await.unwrap().digest,
        b.digest
    );
    let names: Vec<_> = layout
        .index()
        .await
        .unwrap()
        .manifests
        .iter()
        .filter_map(|d| d.ref_name().map(str::to_string))
        .collect();
    assert_eq!(names, ["app:1"]);
    // A repository whose first component reads as a host is stored under `localhost/` and
    // maps back to itself.
    layout.set_tag("team.io/app", "1", b.clone()).await.unwrap();
    assert_eq!(
        layout.resolve_tag("team.io/app", "1").await.unwrap().digest,
        b.digest
    );
}

#[tokio::test]
async fn concurrent_tag_writers_lose_no_tag() {
    let dir = tempfile::tempdir().unwrap();
    let first = Layout::create(dir.path()).await.unwrap();
    let desc = manifest(&first, 1).await;
    // Separate opens share no in-process lock: only the index.json file lock orders them.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let layout = Layout::open(dir.path()).await.unwrap();
        let desc = desc.clone();
        tasks.push(tokio::spawn(async move {
            for t in 0..25 {
                layout
                    .set_tag(&format!("repo{w}"), &format!("t{t}"), desc.clone())
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for w in 0..4 {
        assert_eq!(first.tags(&format!("repo{w}")).await.unwrap().len(), 25);
    }
    assert_eq!(first.index().await.unwrap().manifests.len(), 100);
}

#[tokio::test]
async fn put_of_bytes_not_matching_the_digest_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).await.unwrap();
    let claimed = Digest::of(b"the real blob");
    let mut w = layout.put_blob(&claimed, Some(13)).await.unwrap();
    w.write_all(b"a forged blob").await.unwrap();
    let e = w.commit().await.unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert_eq!(layout.stat_blob(&claimed).await.unwrap(), None);
    let left: Vec<_> = std::fs::read_dir(dir.path().join("blobs/sha256"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let mut w = layout.put_blob(&claimed, Some(13)).await.unwrap();
    w.write_all(b"the real blob").await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(layout.stat_blob(&claimed).await.unwrap(), Some(13));
}

#[tokio::test]
async fn range_reads_are_exact_and_out_of_bounds_ranges_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).await.unwrap();
    let blob: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = layout.put_blob_bytes(&blob).await.unwrap();
    for (start, end) in [
        (0, Some(10)),
        (999_990, None),
        (300_000, Some(700_001)),
        (5, Some(5)),
    ] {
        let r = layout.read_blob_range(&digest, start, end).await.unwrap();
        let want = &blob[start as usize..end.unwrap_or(1_000_000) as usize];
        assert_eq!(
            (r.blob_size, r.start, r.len),
            (1_000_000, start, want.len() as u64)
        );
        assert_eq!(collect(r).await, want);
    }
    for (start, end) in [(10, Some(5)), (0, Some(1_000_001)), (1_000_001, None)] {
        assert!(matches!(
            layout.read_blob_range(&digest, start, end).await,
            Err(Error::RangeNotSatisfiable {
                size: 1_000_000,
                ..
            })
        ));
    }
    let missing = Digest::of(b"missing");
    assert!(matches!(
        layout.read_blob_range(&missing, 0, None).await,
        Err(Error::BlobNotFound { .. })
    ));
}
