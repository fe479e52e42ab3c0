//! The OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/<hex>`): the
//! on-disk store `pack` fills and `push` reads, readable by `skopeo copy oci:DIR:NAME`.
//!
//! Blobs are deduplicated by digest across images. A blob is written to a hidden
//! `blobs/sha256/.<hex>.<n>.partial` file, hashed as it is written, and renamed to its final
//! name only when size and digest match, so a final name always holds complete, verified bytes
//! and an interrupted run leaves nothing that looks complete. `index.json` is replaced via a
//! temporary file and rename.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::sync::Mutex;

use crate::client::blob::{BlobStream, file_stream, verify_stream};
use crate::digest::{Digest, Hasher};
use crate::error::Error;
use crate::manifest::{Descriptor, IndexDocument, OCI_INDEX, REF_NAME_ANNOTATION};

const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
static PARTIAL_SEQ: AtomicU64 = AtomicU64::new(0);

/// An OCI image layout directory. Cheap to clone; clones share the `index.json` lock.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
    index_lock: Arc<Mutex<()>>,
}

impl Layout {
    /// Opens `root` as a layout, creating the directory, `oci-layout`, `index.json` and
    /// `blobs/sha256` as needed. Leftover `.partial` files from an interrupted run are removed.
    pub async fn create(root: impl Into<PathBuf>) -> Result<Layout, Error> {
        let root = root.into();
        let blobs = root.join("blobs/sha256");
        tokio::fs::create_dir_all(&blobs)
            .await
            .map_err(|e| Error::io(&blobs, e))?;
        let marker = root.join("oci-layout");
        if !exists(&marker).await {
            write_atomic(&marker, OCI_LAYOUT.as_bytes()).await?;
        }
        let layout = Layout {
            root,
            index_lock: Arc::new(Mutex::new(())),
        };
        if !exists(&layout.index_path()).await {
            layout.write_index(&IndexDocument::empty()).await?;
        }
        layout.remove_partials().await?;
        Ok(layout)
    }

    /// Opens an existing layout (it must have `oci-layout`).
    pub async fn open(root: impl Into<PathBuf>) -> Result<Layout, Error> {
        let root = root.into();
        let marker = root.join("oci-layout");
        tokio::fs::metadata(&marker)
            .await
            .map_err(|e| Error::io(&marker, e))?;
        Ok(Layout {
            root,
            index_lock: Arc::new(Mutex::new(())),
        })
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Whether the blob is present (and, when `size` is given, has that size). Presence under
    /// the final name means verified: only [`BlobWriter::commit`] creates those names.
    pub async fn has_blob(&self, digest: &Digest, size: Option<u64>) -> bool {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) => m.is_file() && size.is_none_or(|s| s == m.len()),
            Err(_) => false,
        }
    }

    /// Starts writing a blob. Write the bytes into the returned writer, then
    /// [`commit`](BlobWriter::commit) it; dropping it without committing removes the partial.
    pub async fn blob_writer(
        &self,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<BlobWriter, Error> {
        let dst = self.blob_path(digest);
        let n = PARTIAL_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = dst.with_file_name(format!(
            ".{}.{}-{n}.partial",
            digest.hex(),
            std::process::id()
        ));
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| Error::io(&tmp, e))?;
        Ok(BlobWriter {
            file,
            hasher: Hasher::new(),
            verify: true,
            written: 0,
            tmp,
            dst,
            digest: digest.clone(),
            size,
            done: false,
            progress: None,
        })
    }

    /// Stores small bytes (a manifest or config) under their digest.
    pub async fn put_blob_bytes(&self, bytes: &[u8]) -> Result<Digest, Error> {
        use tokio::io::AsyncWriteExt;
        let digest = Digest::of(bytes);
        if self.has_blob(&digest, Some(bytes.len() as u64)).await {
            return Ok(digest);
        }
        let mut w = self.blob_writer(&digest, Some(bytes.len() as u64)).await?;
        w.write_all(bytes).await.map_err(|e| Error::io(&w.tmp, e))?;
        w.commit().await?;
        Ok(digest)
    }

    /// Reads a small blob whole (manifests, configs), verifying its digest.
    pub async fn read_blob(&self, digest: &Digest) -> Result<bytes::Bytes, Error> {
        let path = self.blob_path(digest);
        let bytes = tokio::fs::read(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::BlobNotFound {
                    repository: self.root.display().to_string(),
                    digest: digest.clone(),
                }
            } else {
                Error::io(&path, e)
            }
        })?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                url: path.display().to_string(),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes.into())
    }

    /// Streams a blob from disk, verified against its digest (and size) as it is read.
    pub async fn open_blob(&self, digest: &Digest, size: Option<u64>) -> Result<BlobStream, Error> {
        let path = self.blob_path(digest);
        if !exists(&path).await {
            return Err(Error::BlobNotFound {
                repository: self.root.display().to_string(),
                digest: digest.clone(),
            });
        }
        let s = file_stream(&path).await?;
        Ok(verify_stream(
            s,
            digest.clone(),
            size,
            path.display().to_string(),
        ))
    }

    /// The current `index.json`.
    pub async fn index(&self) -> Result<IndexDocument, Error> {
        let path = self.index_path();
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidManifest {
            image: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// The entry named `name` (`org.opencontainers.image.ref.name`), or the entry whose digest
    /// is `name`.
    pub async fn resolve(&self, name: &str) -> Result<Descriptor, Error> {
        let index = self.index().await?;
        index
            .manifests
            .iter()
            .find(|d| d.ref_name() == Some(name))
            .or_else(|| index.manifests.iter().find(|d| d.digest.as_str() == name))
            .cloned()
            .ok_or_else(|| Error::NotInLayout {
                path: self.root.clone(),
                name: name.to_string(),
            })
    }

    /// Names `desc` as `name` in `index.json`, replacing any entry of that name. With `name`
    /// `None` the descriptor is added unnamed unless an unnamed entry with its digest exists.
    pub async fn add_to_index(
        &self,
        name: Option<&str>,
        mut desc: Descriptor,
    ) -> Result<(), Error> {
        let _guard = self.index_lock.lock().await;
        let mut index = self.index().await?;
        match name {
            Some(name) => {
                index.manifests.retain(|d| d.ref_name() != Some(name));
                desc.annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(REF_NAME_ANNOTATION.to_string(), name.to_string());
            }
            None => {
                if index
                    .manifests
                    .iter()
                    .any(|d| d.digest == desc.digest && d.ref_name().is_none())
                {
                    return Ok(());
                }
            }
        }
        index.manifests.push(desc);
        self.write_index(&index).await
    }

    async fn write_index(&self, index: &IndexDocument) -> Result<(), Error> {
        let bytes = serde_json::to_vec(index).map_err(|e| Error::InvalidManifest {
            image: "index.json".into(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.index_path(), &bytes).await
    }

    async fn remove_partials(&self) -> Result<(), Error> {
        let dir = self.root.join("blobs/sha256");
        let mut rd = tokio::fs::read_dir(&dir)
            .await
            .map_err(|e| Error::io(&dir, e))?;
        while let Some(e) = rd.next_entry().await.map_err(|e| Error::io(&dir, e))? {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".partial") {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
        Ok(())
    }
}

impl IndexDocument {
    /// An empty OCI index.
    pub fn empty() -> IndexDocument {
        IndexDocument {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: Vec::new(),
            annotations: None,
        }
    }
}

/// A blob being written into a [`Layout`]; hashes what passes through (unless the source
/// verifies itself, see [`BlobWriter::source_verifies`]).
pub struct BlobWriter {
    file: tokio::fs::File,
    hasher: Hasher,
    /// Whether to hash here; false when the bytes come from a stream that verifies them.
    verify: bool,
    written: u64,
    tmp: PathBuf,
    dst: PathBuf,
    digest: Digest,
    size: Option<u64>,
    done: bool,
    progress: Option<Arc<AtomicU64>>,
}

impl BlobWriter {
    /// The bytes come from a verifying source (`Client::get_blob`, `Layout::open_blob`), which
    /// fails — so this writer is dropped, never committed — when they do not match the digest:
    /// hashing them a second time here would double the CPU cost of every transfer.
    pub fn source_verifies(mut self) -> BlobWriter {
        self.verify = false;
        self
    }

    /// Adds every byte written to `counter` as it is written (for progress displays).
    pub fn with_progress(mut self, counter: Arc<AtomicU64>) -> BlobWriter {
        self.progress = Some(counter);
        self
    }

    /// Flushes, checks size and digest, fsyncs and renames to the final name. On a mismatch the
    /// partial file is removed and nothing is stored.
    pub async fn commit(mut self) -> Result<u64, Error> {
        use tokio::io::AsyncWriteExt;
        self.file
            .flush()
            .await
            .map_err(|e| Error::io(&self.tmp, e))?;
        let n = self.written;
        if let Some(size) = self.size
            && size != n
        {
            return Err(Error::SizeMismatch {
                url: self.dst.display().to_string(),
                digest: self.digest.clone(),
                expected: size,
                actual: n,
            });
        }
        if self.verify {
            let actual = std::mem::take(&mut self.hasher).finish();
            if actual != self.digest {
                return Err(Error::DigestMismatch {
                    url: self.dst.display().to_string(),
                    expected: self.digest.clone(),
                    actual,
                });
            }
        }
        self.file
            .sync_all()
            .await
            .map_err(|e| Error::io(&self.tmp, e))?;
        tokio::fs::rename(&self.tmp, &self.dst)
            .await
            .map_err(|e| Error::io(&self.dst, e))?;
        self.done = true;
        Ok(n)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl AsyncWrite for BlobWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.file).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.written += n as u64;
                if this.verify {
                    this.hasher.update(&buf[..n]);
                }
                if let Some(p) = &this.progress {
                    p.fetch_add(n as u64, Ordering::Relaxed);
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_shutdown(cx)
    }
}

async fn exists(path: &Path) -> bool {
    tokio::fs::metadata(path).await.is_ok()
}

/// Writes `bytes` to a temporary sibling and renames it over `path`.
pub(crate) async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use tokio::io::AsyncWriteExt;
    let n = PARTIAL_SEQ.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()));
    let result = async {
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(bytes).await?;
        f.sync_all().await?;
        tokio::fs::rename(&tmp, path).await
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(Error::io(path, e));
    }
    Ok(())
}
