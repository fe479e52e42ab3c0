//! The two sides of a copy as traits, [`ImageSource`] and [`ImageDestination`], and their
//! implementations for a registry repository ([`RegistryEndpoint`]) and an OCI layout
//! ([`LayoutEndpoint`]). Archives are read by unpacking them into a layout
//! ([`oci_store::read_archive`]) and written from one, so a layout endpoint serves them.
//!
//! The engine asks each side what it can do instead of matching on its kind: what only a
//! registry does (cross-repository mounts, the referrers API, a manifest that proves its whole
//! tree present) is a method with a conservative default.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::{BoxFuture, FutureExt};
use oci::manifest::Descriptor;
use oci::{BlobStream, Digest, Error, Platform};
use oci_client::{Client, MONOLITHIC_MAX, MountResult, Repo, RetryPolicy};
use oci_store::{BlobWriter, Layout};

/// A manifest as read: (media type, digest, bytes).
pub type ManifestBytes = (String, Digest, bytes::Bytes);

/// Where images are read from. Every blob and manifest it hands out is verified against its
/// digest (and size) as it is read.
pub trait ImageSource: fmt::Display + Send + Sync {
    /// The top-level manifest or index this source names.
    fn read_root(&self) -> BoxFuture<'_, Result<ManifestBytes, Error>>;

    /// The manifest a descriptor names.
    fn read_manifest<'a>(
        &'a self,
        d: &'a Descriptor,
    ) -> BoxFuture<'a, Result<ManifestBytes, Error>>;

    /// A small blob (at most [`MONOLITHIC_MAX`]) whole.
    fn read_blob<'a>(&'a self, d: &'a Descriptor) -> BoxFuture<'a, Result<bytes::Bytes, Error>>;

    /// A blob as a verifying stream.
    fn open_blob<'a>(&'a self, d: &'a Descriptor) -> BoxFuture<'a, Result<BlobStream, Error>>;

    /// Writes a blob into a layout writer (the writer does not hash again: the source
    /// verifies). A registry resumes an interrupted download with `Range`.
    fn blob_into<'a>(
        &'a self,
        d: &'a Descriptor,
        w: &'a mut BlobWriter,
        path: &'a std::path::Path,
    ) -> BoxFuture<'a, Result<(), Error>> {
        async move {
            let mut s = self.open_blob(d).await?;
            while let Some(chunk) = s.next().await {
                tokio::io::AsyncWriteExt::write_all(w, &chunk?)
                    .await
                    .map_err(|e| Error::io(path, e))?;
            }
            Ok(())
        }
        .boxed()
    }

    /// The repository on a registry this source reads (mounts, tag listing, naming).
    fn repository(&self) -> Option<&Repo> {
        None
    }

    /// The OCI referrers of `subject`; `None` when the source has no referrers API.
    fn referrers<'a>(
        &'a self,
        _subject: &'a Digest,
    ) -> BoxFuture<'a, Result<Option<Vec<Descriptor>>, Error>> {
        async { Ok(None) }.boxed()
    }

    /// The tags of the source's repository (for signatures under digest tags); `None` when it
    /// has no tags to list.
    fn list_tags(&self) -> BoxFuture<'_, Result<Option<Vec<String>>, Error>> {
        async { Ok(None) }.boxed()
    }

    /// The same repository at another tag.
    fn at_tag(&self, _tag: &str) -> Option<Box<dyn ImageSource>> {
        None
    }

    /// The time one image may take when this side is involved.
    fn budget(&self) -> Option<Duration> {
        None
    }
}

/// How a blob reached the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobOutcome {
    /// The destination had it.
    Skipped,
    /// Linked from another repository of the same registry.
    Mounted,
    /// Bytes were sent.
    Sent,
}

/// What the engine lends a destination for one blob.
pub struct BlobPut<'a> {
    /// Counter of bytes moved (progress).
    pub moved: &'a Arc<AtomicU64>,
    /// A repository of the destination's registry that received this blob earlier in the run.
    pub placed: Option<Repo>,
    /// Set once bytes are being streamed: only such an upload is restarted by the engine.
    pub streamed: &'a mut bool,
}

/// Where images are written. Nothing is named before all it references is in place.
pub trait ImageDestination: fmt::Display + Send + Sync {
    /// The tag or name to write the top-level manifest under (`None`: by digest only).
    fn target_name(&self) -> Option<&str>;

    /// Where a blob lives once stored: blobs stored once are shared within it (a whole
    /// registry, where any repository can mount from another, or a layout).
    fn blob_store(&self) -> String;

    /// Whether `reference` already names exactly `digest` here (reruns skip such images).
    fn points_at<'a>(
        &'a self,
        _reference: &'a str,
        _digest: &'a Digest,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        async { Ok(false) }.boxed()
    }

    /// Whether the manifest `digest` is here with its whole tree: a registry refuses a
    /// manifest whose blobs it lacks, so one present proves it (fast reruns). A layout answers
    /// no and is checked blob by blob (a stat each), so a damaged layout is repaired by a rerun.
    fn has_complete_manifest<'a>(
        &'a self,
        _digest: &'a Digest,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        async { Ok(false) }.boxed()
    }

    /// Stores a manifest and names it `name`; `Ok(false)` when it was already there.
    fn put_manifest<'a>(
        &'a self,
        media_type: &'a str,
        digest: &'a Digest,
        bytes: bytes::Bytes,
        name: Option<&'a str>,
        platform: Option<Platform>,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// Records a manifest copied without a name (platforms picked out of an index), where the
    /// destination would otherwise lose it.
    fn keep_unnamed(&self, _d: Descriptor) -> BoxFuture<'_, Result<(), Error>> {
        async { Ok(()) }.boxed()
    }

    /// Copies one blob from `src` unless present.
    fn put_blob<'a>(
        &'a self,
        src: &'a dyn ImageSource,
        d: &'a Descriptor,
        put: BlobPut<'a>,
    ) -> BoxFuture<'a, Result<BlobOutcome, Error>>;

    /// The repository on a registry this destination writes (mount sources for later blobs).
    fn repository(&self) -> Option<&Repo> {
        None
    }

    /// Whether the OCI referrers of copied manifests should follow them here.
    fn accepts_referrers(&self) -> bool {
        false
    }

    /// This destination at `tag` (signatures under digest tags) for images of `from`.
    fn at_tag(&self, tag: &str, from: &Repo) -> Box<dyn ImageDestination>;

    /// The retry policy under which a streamed upload that failed is started over.
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            attempts: 1,
            ..Default::default()
        }
    }

    /// The time one image may take when this side is involved.
    fn budget(&self) -> Option<Duration> {
        None
    }
}

/// A repository on a registry. As a source, `reference` is a tag or digest to read; as a
/// destination it is the tag to write (`None`: push by digest only).
#[derive(Clone)]
pub struct RegistryEndpoint {
    /// The client to use (carries credentials and TLS options).
    pub client: Client,
    /// The repository.
    pub repo: Repo,
    /// Tag or digest.
    pub reference: Option<String>,
}

impl fmt::Display for RegistryEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reference.as_deref() {
            Some(r) if r.contains(':') => write!(f, "{}@{r}", self.repo),
            Some(r) => write!(f, "{}:{r}", self.repo),
            None => write!(f, "{}", self.repo),
        }
    }
}

fn manifest_bytes(m: oci_client::Manifest) -> ManifestBytes {
    (m.media_type, m.digest, m.bytes)
}

impl ImageSource for RegistryEndpoint {
    fn read_root(&self) -> BoxFuture<'_, Result<ManifestBytes, Error>> {
        async move {
            let r = self.reference.as_deref().unwrap_or(imgref::DEFAULT_TAG);
            self.client
                .get_manifest(&self.repo, r)
                .await
                .map(manifest_bytes)
        }
        .boxed()
    }

    fn read_manifest<'a>(
        &'a self,
        d: &'a Descriptor,
    ) -> BoxFuture<'a, Result<ManifestBytes, Error>> {
        async move {
            self.client
                .get_manifest(&self.repo, d.digest.as_str())
                .await
                .map(manifest_bytes)
        }
        .boxed()
    }

    fn read_blob<'a>(&'a self, d: &'a Descriptor) -> BoxFuture<'a, Result<bytes::Bytes, Error>> {
        async move {
            let mut buf = Vec::with_capacity(d.size.min(MONOLITHIC_MAX) as usize);
            self.client
                .get_blob(&self.repo, &d.digest, Some(d.size), &mut buf)
                .await?;
            Ok(buf.into())
        }
        .boxed()
    }

    fn open_blob<'a>(&'a self, d: &'a Descriptor) -> BoxFuture<'a, Result<BlobStream, Error>> {
        async move {
            let (s, _) = self
                .client
                .open_blob(&self.repo, &d.digest, Some(d.size))
                .await?;
            Ok(s)
        }
        .boxed()
    }

    fn blob_into<'a>(
        &'a self,
        d: &'a Descriptor,
        w: &'a mut BlobWriter,
        _path: &'a std::path::Path,
    ) -> BoxFuture<'a, Result<(), Error>> {
        async move {
            self.client
                .get_blob(&self.repo, &d.digest, Some(d.size), w)
                .await
                .map(|_| ())
        }
        .boxed()
    }

    fn repository(&self) -> Option<&Repo> {
        Some(&self.repo)
    }

    fn referrers<'a>(
        &'a self,
        subject: &'a Digest,
    ) -> BoxFuture<'a, Result<Option<Vec<Descriptor>>, Error>> {
        self.client.list_referrers(&self.repo, subject).boxed()
    }

    fn list_tags(&self) -> BoxFuture<'_, Result<Option<Vec<String>>, Error>> {
        self.client.list_tags(&self.repo).boxed()
    }

    fn at_tag(&self, tag: &str) -> Option<Box<dyn ImageSource>> {
        Some(Box::new(RegistryEndpoint {
            reference: Some(tag.to_string()),
            ..self.clone()
        }))
    }

    fn budget(&self) -> Option<Duration> {
        Some(self.client.options().timeouts.image)
    }
}

/// Counts a stream's bytes into `n` as they pass.
fn counted(s: BlobStream, n: &Arc<AtomicU64>) -> BlobStream {
    let n = n.clone();
    Box::pin(s.map(move |r| {
        if let Ok(b) = &r {
            n.fetch_add(b.len() as u64, Ordering::Relaxed);
        }
        r
    }))
}

impl ImageDestination for RegistryEndpoint {
    fn target_name(&self) -> Option<&str> {
        self.reference
            .as_deref()
            .filter(|r| !r.starts_with("sha256:"))
    }

    fn blob_store(&self) -> String {
        format!("r:{}", self.repo.registry)
    }

    fn points_at<'a>(
        &'a self,
        reference: &'a str,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        async move {
            Ok(self
                .client
                .head_manifest(&self.repo, reference)
                .await?
                .is_some_and(|h| h.digest.as_ref() == Some(digest)))
        }
        .boxed()
    }

    fn has_complete_manifest<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        async move {
            Ok(self
                .client
                .head_manifest(&self.repo, digest.as_str())
                .await?
                .is_some())
        }
        .boxed()
    }

    fn put_manifest<'a>(
        &'a self,
        media_type: &'a str,
        digest: &'a Digest,
        bytes: bytes::Bytes,
        name: Option<&'a str>,
        _platform: Option<Platform>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        async move {
            let reference = name.unwrap_or(digest.as_str());
            if self.points_at(reference, digest).await? {
                return Ok(false);
            }
            self.client
                .put_manifest(&self.repo, reference, media_type, bytes)
                .await?;
            Ok(true)
        }
        .boxed()
    }

    fn put_blob<'a>(
        &'a self,
        src: &'a dyn ImageSource,
        d: &'a Descriptor,
        put: BlobPut<'a>,
    ) -> BoxFuture<'a, Result<BlobOutcome, Error>> {
        async move {
            let (client, repo, digest, size) = (&self.client, &self.repo, &d.digest, d.size);
            if client.blob_exists(repo, digest).await?.is_some() {
                return Ok(BlobOutcome::Skipped);
            }
            // Mount from the source when it is the same registry, else from a repository of
            // the target that already received this blob in this run.
            let mount_from = match src.repository() {
                Some(from) if from.registry == repo.registry && from.name != repo.name => {
                    Some(from.clone())
                }
                _ => put.placed.filter(|p| p.name != repo.name),
            };
            let session = match client
                .start_upload(repo, mount_from.as_ref().map(|f| (digest, f)))
                .await?
            {
                MountResult::Mounted => return Ok(BlobOutcome::Mounted),
                MountResult::Upload(s) => s,
            };
            if size <= MONOLITHIC_MAX {
                let bytes = src.read_blob(d).await?;
                client.upload_bytes(session, digest, bytes).await?;
                put.moved.fetch_add(size, Ordering::Relaxed);
            } else {
                let stream = counted(src.open_blob(d).await?, put.moved);
                *put.streamed = true;
                client
                    .upload_stream(session, digest, Some(size), stream)
                    .await?;
            }
            Ok(BlobOutcome::Sent)
        }
        .boxed()
    }

    fn repository(&self) -> Option<&Repo> {
        Some(&self.repo)
    }

    fn accepts_referrers(&self) -> bool {
        true
    }

    fn at_tag(&self, tag: &str, _from: &Repo) -> Box<dyn ImageDestination> {
        Box::new(RegistryEndpoint {
            reference: Some(tag.to_string()),
            ..self.clone()
        })
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.client.options().retry.clone()
    }

    fn budget(&self) -> Option<Duration> {
        Some(self.client.options().timeouts.image)
    }
}

/// An OCI layout directory; `name` is the `org.opencontainers.image.ref.name` to read, or to
/// write (`None` as a destination: store without naming).
#[derive(Clone)]
pub struct LayoutEndpoint {
    /// The layout.
    pub layout: Layout,
    /// Name in `index.json`.
    pub name: Option<String>,
}

impl fmt::Display for LayoutEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "oci:{}:{}",
            self.layout.root().display(),
            self.name.as_deref().unwrap_or("")
        )
    }
}

impl ImageSource for LayoutEndpoint {
    fn read_root(&self) -> BoxFuture<'_, Result<ManifestBytes, Error>> {
        async move {
            let name = self.name.as_deref().ok_or_else(|| Error::NotInLayout {
                path: self.layout.root().to_path_buf(),
                name: String::new(),
            })?;
            let d = self.layout.resolve(name).await?;
            let bytes = self.layout.read_blob(&d.digest, d.size).await?;
            Ok((d.media_type, d.digest, bytes))
        }
        .boxed()
    }

    /// At its declared size: a huge file behind a small descriptor is never loaded.
    fn read_manifest<'a>(
        &'a self,
        d: &'a Descriptor,
    ) -> BoxFuture<'a, Result<ManifestBytes, Error>> {
        async move {
            let bytes = self.layout.read_blob(&d.digest, d.size).await?;
            Ok((d.media_type.clone(), d.digest.clone(), bytes))
        }
        .boxed()
    }

    fn read_blob<'a>(&'a self, d: &'a Descriptor) -> BoxFuture<'a, Result<bytes::Bytes, Error>> {
        self.layout.read_blob(&d.digest, d.size).boxed()
    }

    fn open_blob<'a>(&'a self, d: &'a Descriptor) -> BoxFuture<'a, Result<BlobStream, Error>> {
        self.layout.open_blob(&d.digest, Some(d.size)).boxed()
    }
}

impl ImageDestination for LayoutEndpoint {
    fn target_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn blob_store(&self) -> String {
        format!("l:{}", self.layout.root().display())
    }

    fn put_manifest<'a>(
        &'a self,
        media_type: &'a str,
        digest: &'a Digest,
        bytes: bytes::Bytes,
        name: Option<&'a str>,
        platform: Option<Platform>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        async move {
            let size = bytes.len() as u64;
            self.layout.put_blob_bytes(&bytes).await?;
            if let Some(name) = name {
                let desc = Descriptor {
                    media_type: media_type.to_string(),
                    digest: digest.clone(),
                    size,
                    platform,
                    annotations: None,
                    artifact_type: None,
                };
                self.layout.add_to_index(Some(name), desc).await?;
            }
            Ok(true)
        }
        .boxed()
    }

    fn keep_unnamed(&self, d: Descriptor) -> BoxFuture<'_, Result<(), Error>> {
        self.layout.add_to_index(None, d).boxed()
    }

    fn put_blob<'a>(
        &'a self,
        src: &'a dyn ImageSource,
        d: &'a Descriptor,
        put: BlobPut<'a>,
    ) -> BoxFuture<'a, Result<BlobOutcome, Error>> {
        async move {
            let layout = &self.layout;
            if layout.has_blob(&d.digest, Some(d.size)).await {
                return Ok(BlobOutcome::Skipped);
            }
            let mut w = layout
                .blob_writer(&d.digest, Some(d.size))
                .await?
                .source_verifies()
                .with_progress(put.moved.clone());
            src.blob_into(d, &mut w, &layout.blob_path(&d.digest))
                .await?;
            w.commit().await?;
            Ok(BlobOutcome::Sent)
        }
        .boxed()
    }

    fn at_tag(&self, tag: &str, from: &Repo) -> Box<dyn ImageDestination> {
        Box::new(LayoutEndpoint {
            layout: self.layout.clone(),
            name: Some(format!("{from}:{tag}")),
        })
    }
}
