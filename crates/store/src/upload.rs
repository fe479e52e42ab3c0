//! A blob upload whose digest is known only at its end (a registry's chunked upload): bytes go
//! to an exclusively created hidden `.partial` file beside the blobs and are hashed as they
//! arrive; [`Store::commit_upload`](crate::Store::commit_upload) renames the file to its digest
//! only once the bytes hash to it. Dropped uncommitted, the file is removed.

use std::path::{Path, PathBuf};

use oci::digest::{Digest, Hasher};
use oci::error::Error;
use tokio::io::AsyncWriteExt;

/// An upload in progress: a temporary file and the sha256 of what it holds so far.
#[derive(Debug)]
pub struct Upload {
    file: Option<tokio::fs::File>,
    path: PathBuf,
    /// sha256 as the bytes arrive (the digest nearly every client asks for); any other
    /// algorithm is hashed from the file at commit.
    hasher: HasherDebug,
    len: u64,
    done: bool,
}

#[derive(Default)]
struct HasherDebug(Hasher);

impl std::fmt::Debug for HasherDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

impl Upload {
    /// Starts an upload in a new exclusively created file in `dir`.
    pub(crate) async fn create(dir: &Path) -> Result<Upload, Error> {
        let d = dir.to_path_buf();
        let (file, path) = tokio::task::spawn_blocking(move || {
            crate::layout::create_exclusive(&d, "upload", ".partial")
        })
        .await
        .map_err(|e| Error::Config {
            reason: format!("upload file creation panicked: {e}"),
        })?
        .map_err(|e| Error::io(dir, e))?;
        Ok(Upload {
            file: Some(tokio::fs::File::from_std(file)),
            path,
            hasher: HasherDebug::default(),
            len: 0,
            done: false,
        })
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was received yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends bytes.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let file = self.file.as_mut().ok_or_else(|| Error::Config {
            reason: "upload already finished".into(),
        })?;
        if let Err(e) = file.write_all(bytes).await {
            // A short write leaves the file and the hash disagreeing: the upload is unusable.
            self.file = None;
            return Err(Error::io(&self.path, e));
        }
        self.hasher.0.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Flushes, verifies the bytes against `digest`, fsyncs and renames the file to `dst`. On a
    /// mismatch the file is removed (on drop) and nothing is stored.
    pub(crate) async fn commit_to(mut self, digest: &Digest, dst: &Path) -> Result<u64, Error> {
        let mut file = self.file.take().ok_or_else(|| Error::Config {
            reason: "upload failed earlier".into(),
        })?;
        file.flush().await.map_err(|e| Error::io(&self.path, e))?;
        let actual = if digest.algorithm() == "sha256" {
            std::mem::take(&mut self.hasher.0).finish()
        } else {
            hash_file(&self.path, digest).await?
        };
        if &actual != digest {
            return Err(Error::DigestMismatch {
                url: self.path.display().to_string(),
                expected: digest.clone(),
                actual,
            });
        }
        file.sync_all()
            .await
            .map_err(|e| Error::io(&self.path, e))?;
        if let Some(dir) = dst.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::io(dir, e))?;
        }
        tokio::fs::rename(&self.path, dst)
            .await
            .map_err(|e| Error::io(dst, e))?;
        self.done = true;
        Ok(self.len)
    }
}

async fn hash_file(path: &Path, like: &Digest) -> Result<Digest, Error> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(path, e))?;
    let mut h = Hasher::for_digest(like);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).await.map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
