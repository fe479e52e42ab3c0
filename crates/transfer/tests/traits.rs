//! The engine through its traits alone: an in-memory source and destination, written here, that
//! the engine knows nothing about. The hardening (each manifest once per image, the index depth
//! bound) must hold for any implementation, not only for the registry and the layout.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use oci::manifest::{MAX_INDEX_DEPTH, OCI_INDEX, OCI_MANIFEST};
use oci::{BlobStream, Descriptor, Digest, Error, Platform};
use oci_client::Repo;
use oci_transfer::{
    BlobOutcome, BlobPut, ImageDestination, ImageSource, ManifestBytes, Transfer, TransferOptions,
};

#[derive(Default)]
struct MemSource {
    manifests: HashMap<Digest, (String, Bytes)>,
    blobs: HashMap<Digest, Bytes>,
    root: Option<Digest>,
    manifest_reads: Mutex<HashMap<Digest, usize>>,
}

impl MemSource {
    fn blob(&mut self, bytes: &[u8]) -> String {
        let d = Digest::of(bytes);
        self.blobs.insert(d.clone(), Bytes::copy_from_slice(bytes));
        format!(
            r#"{{"mediaType":"application/octet-stream","digest":"{d}","size":{}}}"#,
            bytes.len()
        )
    }

    fn manifest(&mut self, media_type: &str, json: String) -> (Digest, usize) {
        let d = Digest::of(json.as_bytes());
        let n = json.len();
        self.manifests
            .insert(d.clone(), (media_type.to_string(), json.into()));
        (d, n)
    }

    fn image(&mut self, n: u32) -> (Digest, usize) {
        let config = self.blob(format!("{{\"n\":{n}}}").as_bytes());
        let layer = self.blob(format!("layer {n}").as_bytes());
        self.manifest(
            OCI_MANIFEST,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config},"layers":[{layer}]}}"#
            ),
        )
    }

    fn index(&mut self, children: &[(Digest, usize, &str)]) -> (Digest, usize) {
        let entries: Vec<String> = children
            .iter()
            .map(|(d, n, mt)| {
                format!(
                    r#"{{"mediaType":"{mt}","digest":"{d}","size":{n},"platform":{{"architecture":"amd64","os":"linux"}}}}"#
                )
            })
            .collect();
        self.manifest(
            OCI_INDEX,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
                entries.join(",")
            ),
        )
    }

    fn get(&self, d: &Digest) -> Result<ManifestBytes, Error> {
        *self
            .manifest_reads
            .lock()
            .unwrap()
            .entry(d.clone())
            .or_default() += 1;
        let (mt, b) = self
            .manifests
            .get(d)
            .ok_or_else(|| Error::ManifestNotFound {
                image: d.to_string(),
            })?;
        Ok((mt.clone(), d.clone(), b.clone()))
    }
}

impl fmt::Display for MemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mem:source")
    }
}

impl ImageSource for MemSource {
    fn read_root(&self) -> BoxFuture<'_, Result<ManifestBytes, Error>> {
        let r = self.get(self.root.as_ref().unwrap());
        async move { r }.boxed()
    }

    fn read_manifest<'a>(
        &'a self,
        d: &'a Descriptor,
    ) -> BoxFuture<'a, Result<ManifestBytes, Error>> {
        let r = self.get(&d.digest);
        async move { r }.boxed()
    }

    fn read_blob<'a>(&'a self, d: &'a Descriptor) -> BoxFuture<'a, Result<Bytes, Error>> {
        let r = self
            .blobs
            .get(&d.digest)
            .cloned()
            .ok_or(Error::BlobNotFound {
                repository: "mem".into(),
                digest: d.digest.clone(),
            });
        async move { r }.boxed()
    }

    fn open_blob<'a>(&'a self, d: &'a Descriptor) -> BoxFuture<'a, Result<BlobStream, Error>> {
        async move {
            let b = self.read_blob(d).await?;
            let s = futures_util::stream::iter([Ok(b)]);
            Ok(oci::verify_stream(
                s,
                d.digest.clone(),
                Some(d.size),
                "mem".into(),
            ))
        }
        .boxed()
    }
}

#[derive(Clone, Default)]
struct MemDest {
    blobs: Arc<Mutex<HashMap<Digest, Bytes>>>,
    manifests: Arc<Mutex<HashMap<Digest, Bytes>>>,
    names: Arc<Mutex<HashMap<String, Digest>>>,
    manifest_puts: Arc<AtomicUsize>,
}

impl fmt::Display for MemDest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mem:dest")
    }
}

impl ImageDestination for MemDest {
    fn target_name(&self) -> Option<&str> {
        Some("copied")
    }

    fn blob_store(&self) -> String {
        "mem".into()
    }

    fn put_manifest<'a>(
        &'a self,
        _media_type: &'a str,
        digest: &'a Digest,
        bytes: Bytes,
        name: Option<&'a str>,
        _platform: Option<Platform>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.manifest_puts.fetch_add(1, Ordering::Relaxed);
        self.manifests.lock().unwrap().insert(digest.clone(), bytes);
        if let Some(n) = name {
            self.names
                .lock()
                .unwrap()
                .insert(n.to_string(), digest.clone());
        }
        async { Ok(true) }.boxed()
    }

    fn put_blob<'a>(
        &'a self,
        src: &'a dyn ImageSource,
        d: &'a Descriptor,
        _put: BlobPut<'a>,
    ) -> BoxFuture<'a, Result<BlobOutcome, Error>> {
        async move {
            if self.blobs.lock().unwrap().contains_key(&d.digest) {
                return Ok(BlobOutcome::Skipped);
            }
            let b = src.read_blob(d).await?;
            self.blobs.lock().unwrap().insert(d.digest.clone(), b);
            Ok(BlobOutcome::Sent)
        }
        .boxed()
    }

    fn at_tag(&self, _tag: &str, _from: &Repo) -> Box<dyn ImageDestination> {
        Box::new(self.clone())
    }
}

/// An index that lists one image 200 times, and another image whose index lists it again:
/// each manifest is read and written once, and the copy is complete.
#[tokio::test]
async fn engine_copies_between_foreign_implementations_reading_each_manifest_once() {
    let mut src = MemSource::default();
    let (img, n) = src.image(1);
    let (other, m) = src.image(2);
    let (inner, k) = src.index(&[
        (img.clone(), n, OCI_MANIFEST),
        (other.clone(), m, OCI_MANIFEST),
    ]);
    let mut children = vec![(img.clone(), n, OCI_MANIFEST); 200];
    children.push((inner.clone(), k, OCI_INDEX));
    let (root, _) = src.index(&children);
    src.root = Some(root.clone());

    let dst = MemDest::default();
    let engine = Transfer::new(TransferOptions::default());
    let copied = engine.copy_image(&src, &dst).await.unwrap();

    assert_eq!(copied.target_digest, Some(root.clone()));
    assert!(copied.index_preserved);
    let reads = src.manifest_reads.lock().unwrap().clone();
    for d in [&root, &img, &other, &inner] {
        assert_eq!(reads.get(d), Some(&1), "{d} read {:?} times", reads.get(d));
    }
    assert_eq!(dst.manifest_puts.load(Ordering::Relaxed), 4);
    assert_eq!(dst.blobs.lock().unwrap().len(), 4);
    assert_eq!(dst.names.lock().unwrap().get("copied"), Some(&root));
    let stats = engine.stats();
    assert_eq!((stats.blobs_sent, stats.images_ok), (4, 1));
}

/// Indexes nested past the bound are refused through any source, before the stack or the
/// request count grow with the nesting.
#[tokio::test]
async fn index_depth_bound_holds_for_any_source() {
    let mut src = MemSource::default();
    let (mut d, mut n) = src.image(1);
    let mut mt = OCI_MANIFEST;
    for _ in 0..MAX_INDEX_DEPTH + 20 {
        (d, n) = src.index(&[(d, n, mt)]);
        mt = OCI_INDEX;
    }
    src.root = Some(d);
    let dst = MemDest::default();
    let e = Transfer::new(TransferOptions::default())
        .copy_image(&src, &dst)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::IndexTooDeep { max, .. } if max == MAX_INDEX_DEPTH),
        "{e}"
    );
    let reads: usize = src.manifest_reads.lock().unwrap().values().sum();
    assert!(reads <= MAX_INDEX_DEPTH + 1, "{reads} manifests read");
    assert!(dst.manifests.lock().unwrap().is_empty());
}
