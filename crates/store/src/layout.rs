//! The OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/<hex>`): the
//! on-disk store `pack` fills and `push` reads, readable by `skopeo copy oci:DIR:NAME`.
//!
//! Blobs are deduplicated by digest across images. A blob is written to a hidden
//! `blobs/sha256/.<hex>.<n>.partial` file, hashed as it is written, and renamed to its final
//! name only when size and digest match, so a final name always holds complete, verified bytes
//! and an interrupted run leaves nothing that looks complete. `index.json` is replaced via a
//! temporary file and rename.
//!
//! Hostile input: temporary files get unpredictable names and are created exclusively
//! (`O_CREAT|O_EXCL`, which also refuses a planted symlink), so whoever can write the directory
//! cannot redirect our writes. Everything read whole (`index.json`, manifests) is capped at
//! [`MAX_MANIFEST_BYTES`] and size-checked before it is read; blobs stream with their declared
//! size and digest enforced.
//!
//! Concurrency: `index.json` is read, merged and replaced under an exclusive advisory lock on
//! `oci-layout` (a file that is never replaced), so processes adding images to one layout never
//! lose each other's entries. Every open [`Layout`] holds a shared lock on `blobs/sha256`; the
//! leftover partial files of interrupted runs are removed only by a process that finds no other
//! holder, never from under a live writer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::sync::Mutex;

use oci::digest::{Digest, Hasher};
use oci::error::Error;
use oci::manifest::{
    Descriptor, IndexDocument, MAX_MANIFEST_BYTES, REF_NAME_ANNOTATION, check_manifest_size,
};
use oci::stream::{BlobStream, verify_stream};

const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
static PARTIAL_SEQ: AtomicU64 = AtomicU64::new(0);

/// An OCI image layout directory. Cheap to clone; clones share the `index.json` lock.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
    index_lock: Arc<Mutex<()>>,
    /// The shared "in use" lock on `blobs/sha256`, released when the last clone drops. `None`
    /// where the directory cannot be opened or locked (then nothing is cleaned up either).
    _in_use: Option<Arc<std::fs::File>>,
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
        let mut layout = Layout {
            root,
            index_lock: Arc::new(Mutex::new(())),
            _in_use: None,
        };
        if !exists(&layout.index_path()).await {
            layout.write_index(&IndexDocument::empty()).await?;
        }
        let (in_use, alone) = lock_in_use(blobs.clone(), true).await;
        if alone && let Some(f) = &in_use {
            layout.remove_partials().await?;
            // Back to shared: other processes may now use the layout too. We have no partial
            // files yet, so one cleaning up between these two calls costs us nothing.
            let f = f.try_clone().map_err(|e| Error::io(&blobs, e))?;
            tokio::task::spawn_blocking(move || f.unlock().and_then(|()| f.lock_shared()))
                .await
                .map_err(|e| Error::Config {
                    reason: format!("layout lock panicked: {e}"),
                })?
                .map_err(|e| Error::io(&blobs, e))?;
        }
        layout._in_use = in_use.map(Arc::new);
        Ok(layout)
    }

    /// Opens an existing layout (it must have `oci-layout`).
    pub async fn open(root: impl Into<PathBuf>) -> Result<Layout, Error> {
        let root = root.into();
        let marker = root.join("oci-layout");
        tokio::fs::metadata(&marker)
            .await
            .map_err(|e| Error::io(&marker, e))?;
        let (in_use, _) = lock_in_use(root.join("blobs/sha256"), false).await;
        Ok(Layout {
            root,
            index_lock: Arc::new(Mutex::new(())),
            _in_use: in_use.map(Arc::new),
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
        let dir = dst.parent().unwrap_or(&self.root).to_path_buf();
        let hex = digest.hex().to_string();
        if digest.algorithm() != "sha256" {
            // `create` makes only `blobs/sha256`, the algorithm nearly every blob uses.
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| Error::io(&dir, e))?;
        }
        let (file, tmp) =
            tokio::task::spawn_blocking(move || create_exclusive(&dir, &hex, ".partial"))
                .await
                .map_err(|e| Error::Config {
                    reason: format!("partial file creation panicked: {e}"),
                })?
                .map_err(|e| Error::io(self.blob_path(digest), e))?;
        Ok(BlobWriter {
            file: tokio::fs::File::from_std(file),
            hasher: Hasher::for_digest(digest),
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

    /// Reads a small blob whole (manifests, configs), checking it against the `size` its
    /// descriptor declares — before reading, so a huge file behind a small descriptor is never
    /// loaded — and against its digest. Refuses more than [`MAX_MANIFEST_BYTES`].
    pub async fn read_blob(&self, digest: &Digest, size: u64) -> Result<bytes::Bytes, Error> {
        use tokio::io::AsyncReadExt;
        let path = self.blob_path(digest);
        let url = path.display().to_string();
        check_manifest_size(&url, size)?;
        let file = tokio::fs::File::open(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::BlobNotFound {
                    repository: self.root.display().to_string(),
                    digest: digest.clone(),
                }
            } else {
                Error::io(&path, e)
            }
        })?;
        let mismatch = |actual: u64| Error::SizeMismatch {
            url: url.clone(),
            digest: digest.clone(),
            expected: size,
            actual,
        };
        let len = file
            .metadata()
            .await
            .map_err(|e| Error::io(&path, e))?
            .len();
        if len != size {
            return Err(mismatch(len));
        }
        // `take` also holds a file that grows while it is read to the declared size.
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(size + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| Error::io(&path, e))?;
        if bytes.len() as u64 != size {
            return Err(mismatch(bytes.len() as u64));
        }
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
        let Ok(meta) = tokio::fs::metadata(&path).await else {
            return Err(Error::BlobNotFound {
                repository: self.root.display().to_string(),
                digest: digest.clone(),
            });
        };
        // The stream enforces the size too; failing here says so before a byte moves.
        if let Some(size) = size
            && meta.len() != size
        {
            return Err(Error::SizeMismatch {
                url: path.display().to_string(),
                digest: digest.clone(),
                expected: size,
                actual: meta.len(),
            });
        }
        let s = file_stream(&path, meta.len()).await?;
        Ok(verify_stream(
            s,
            digest.clone(),
            size,
            path.display().to_string(),
        ))
    }

    /// The current `index.json` (at most [`MAX_MANIFEST_BYTES`]).
    pub async fn index(&self) -> Result<IndexDocument, Error> {
        use tokio::io::AsyncReadExt;
        let path = self.index_path();
        let what = path.display().to_string();
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Error::io(&path, e))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| Error::io(&path, e))?
            .len();
        check_manifest_size(&what, len)?;
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(MAX_MANIFEST_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| Error::io(&path, e))?;
        IndexDocument::parse(&what, &bytes)
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
    pub async fn add_to_index(&self, name: Option<&str>, desc: Descriptor) -> Result<(), Error> {
        self.edit_index(|index| match name {
            Some(name) => {
                index.manifests.retain(|d| d.ref_name() != Some(name));
                index.manifests.push(named(desc, name));
                true
            }
            None => {
                let known = index
                    .manifests
                    .iter()
                    .any(|d| d.digest == desc.digest && d.ref_name().is_none());
                if !known {
                    index.manifests.push(desc);
                }
                !known
            }
        })
        .await
    }

    /// Reads, edits and replaces `index.json` under both locks (this process's clones, other
    /// processes), so concurrent writers never lose each other's entries. `edit` returns
    /// whether it changed anything (nothing is written otherwise).
    pub(crate) async fn edit_index(
        &self,
        edit: impl FnOnce(&mut IndexDocument) -> bool,
    ) -> Result<(), Error> {
        let _guard = self.index_lock.lock().await;
        let _other_processes = self.lock_index().await?;
        let mut index = self.index().await?;
        if edit(&mut index) {
            self.write_index(&index).await?;
        }
        Ok(())
    }

    /// The cross-process `index.json` lock: exclusive on `oci-layout`, released on drop. A
    /// read-only descriptor suffices for an advisory lock, so a read-only `oci-layout` works.
    async fn lock_index(&self) -> Result<std::fs::File, Error> {
        let marker = self.root.join("oci-layout");
        let m = marker.clone();
        tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&m)?;
            f.lock()?;
            Ok(f)
        })
        .await
        .map_err(|e| Error::Config {
            reason: format!("layout lock panicked: {e}"),
        })?
        .map_err(|e| Error::io(&marker, e))
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

/// `desc` carrying `name` as its `org.opencontainers.image.ref.name`.
pub(crate) fn named(mut desc: Descriptor, name: &str) -> Descriptor {
    desc.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(REF_NAME_ANNOTATION.to_string(), name.to_string());
    desc
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

/// Opens `blobs` and locks it shared for the life of a [`Layout`]. With `try_alone`, first
/// tries an exclusive lock: the second value says whether it was had, i.e. no other process has
/// the layout open and its partial files are leftovers (the lock is then still exclusive).
async fn lock_in_use(blobs: PathBuf, try_alone: bool) -> (Option<std::fs::File>, bool) {
    tokio::task::spawn_blocking(move || {
        let Ok(f) = std::fs::File::open(&blobs) else {
            return (None, false);
        };
        if try_alone {
            match f.try_lock() {
                Ok(()) => return (Some(f), true),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(_)) => return (None, false),
            }
        }
        match f.lock_shared() {
            Ok(()) => (Some(f), false),
            Err(_) => (None, false),
        }
    })
    .await
    .unwrap_or((None, false))
}

/// Creates a new file in `dir` named `.{stem}.{pid}-{random}{suffix}`, exclusively: `O_EXCL`
/// fails on any existing name, a symlink included, so nobody who can write `dir` can make us
/// write through a file or link they planted, and the random part keeps them from even
/// guessing the name.
pub(crate) fn create_exclusive(
    dir: &Path,
    stem: &str,
    suffix: &str,
) -> std::io::Result<(std::fs::File, PathBuf)> {
    use std::hash::{BuildHasher, Hasher as _};
    let mut last = None;
    for _ in 0..16 {
        // RandomState is seeded from the OS once per thread and bumped per instance.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(PARTIAL_SEQ.fetch_add(1, Ordering::Relaxed));
        let path = dir.join(format!(
            ".{stem}.{}-{:016x}{suffix}",
            std::process::id(),
            h.finish()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::ErrorKind::AlreadyExists.into()))
}

/// Writes `bytes` to an exclusively created temporary sibling and renames it over `path`.
pub(crate) async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use tokio::io::AsyncWriteExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let (f, tmp) = tokio::task::spawn_blocking(move || create_exclusive(&dir, &name, ".tmp"))
        .await
        .map_err(|e| Error::Config {
            reason: format!("temporary file creation panicked: {e}"),
        })?
        .map_err(|e| Error::io(path, e))?;
    let result = async {
        let mut f = tokio::fs::File::from_std(f);
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

/// Chunk size of every blob read from disk: big enough that a multi-GB blob costs few hand-offs
/// to the blocking pool, small enough that many concurrent readers hold little memory.
const READ_CHUNK: u64 = 256 * 1024;

/// The `size` bytes of the file at `path`, streamed by [`positional_stream`].
pub async fn file_stream(path: &Path, size: u64) -> Result<BlobStream, Error> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(path, e))?
        .into_std()
        .await;
    Ok(positional_stream(
        Arc::new(file),
        path.to_path_buf(),
        0,
        size,
    ))
}

/// `len` bytes of `file` from `offset`, in chunks of at most [`READ_CHUNK`], each a positional
/// read on the blocking pool straight into the chunk sent (one copy out of the page cache;
/// concurrent streams share a descriptor without sharing a file position). A file shorter than
/// `offset + len` is an error, never a short stream.
pub(crate) fn positional_stream(
    file: Arc<std::fs::File>,
    path: PathBuf,
    offset: u64,
    len: u64,
) -> BlobStream {
    use std::os::unix::fs::FileExt;
    let s = futures_util::stream::unfold((offset, len), move |(pos, left)| {
        let (file, path) = (file.clone(), path.clone());
        async move {
            if left == 0 {
                return None;
            }
            let n = left.min(READ_CHUNK) as usize;
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                file.read_exact_at(&mut buf, pos).map(|()| buf)
            })
            .await;
            match read {
                Ok(Ok(buf)) => Some((
                    Ok(bytes::Bytes::from(buf)),
                    (pos + n as u64, left - n as u64),
                )),
                Ok(Err(e)) => Some((Err(Error::io(&path, e)), (pos, 0))),
                Err(e) => Some((
                    Err(Error::Config {
                        reason: format!("blob read panicked: {e}"),
                    }),
                    (pos, 0),
                )),
            }
        }
    });
    Box::pin(s)
}
