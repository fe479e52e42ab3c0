//! Layout archives: a layout directory as one `.tar` (or zstd-compressed `.tar.zst`) file to
//! carry across an air gap, readable by `skopeo copy oci-archive:FILE:NAME` — and back again.
//!
//! Writing goes to a hidden, exclusively created `.FILE.<random>.partial` beside it and is
//! renamed when complete, so an archive under its final name is always whole and a link planted
//! at a guessable name is never written through. Reading verifies every blob against its digest
//! while extracting (streaming, never buffered whole) and merges into a (possibly existing)
//! layout, skipping blobs it already holds; `index.json` is held to
//! [`MAX_MANIFEST_BYTES`] whatever its tar header claims.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::layout::{Layout, create_exclusive};
use oci::digest::{Digest, Hasher};
use oci::error::Error;
use oci::manifest::{IndexDocument, MAX_MANIFEST_BYTES, check_manifest_size};

/// Archive compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar (what `skopeo copy oci-archive:` reads).
    None,
    /// zstd-compressed tar (level 3). Layers are usually already gzip, so this mostly helps
    /// uncompressed layers and configs.
    Zstd,
}

impl Compression {
    /// `.tar.zst` / `.tzst` → zstd, anything else → plain tar.
    pub fn from_path(path: &Path) -> Compression {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if name.ends_with(".zst") || name.ends_with(".tzst") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Writes the layout at `layout` to the archive `out`. Returns the archive's size in bytes.
pub async fn write_archive(
    layout: &Layout,
    out: &Path,
    compression: Compression,
) -> Result<u64, Error> {
    let root = layout.root().to_path_buf();
    let out = out.to_path_buf();
    tokio::task::spawn_blocking(move || write_sync(&root, &out, compression))
        .await
        .map_err(|e| Error::Config {
            reason: format!("archive writer panicked: {e}"),
        })?
}

fn write_sync(root: &Path, out: &Path, compression: Compression) -> Result<u64, Error> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let (file, partial) =
        create_exclusive(dir, &name, ".partial").map_err(|e| Error::io(out, e))?;
    let result = (|| {
        let w = BufWriter::with_capacity(1 << 20, file);
        match compression {
            Compression::None => {
                let w = tar_layout(root, w, &partial)?;
                finish_file(
                    w.into_inner()
                        .map_err(|e| Error::io(&partial, e.into_error()))?,
                    &partial,
                )
            }
            Compression::Zstd => {
                let enc =
                    zstd::stream::write::Encoder::new(w, 3).map_err(|e| Error::io(&partial, e))?;
                let enc = tar_layout(root, enc, &partial)?;
                let w = enc.finish().map_err(|e| Error::io(&partial, e))?;
                finish_file(
                    w.into_inner()
                        .map_err(|e| Error::io(&partial, e.into_error()))?,
                    &partial,
                )
            }
        }
    })();
    match result {
        Ok(()) => {
            std::fs::rename(&partial, out).map_err(|e| Error::io(out, e))?;
            Ok(std::fs::metadata(out).map_err(|e| Error::io(out, e))?.len())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn finish_file(f: File, path: &Path) -> Result<(), Error> {
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// Deterministic tar: fixed order, mtime 0, mode 0644/0755, uid/gid 0.
fn tar_layout<W: Write>(root: &Path, w: W, out: &Path) -> Result<W, Error> {
    let mut b = tar::Builder::new(w);
    let io = |e: std::io::Error| Error::io(out, e);
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, dir, std::io::empty()).map_err(io)?;
    }
    let blobs_dir = root.join("blobs/sha256");
    let mut blobs: Vec<String> = std::fs::read_dir(&blobs_dir)
        .map_err(|e| Error::io(&blobs_dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| Digest::parse(&format!("sha256:{n}")).is_ok())
        .collect();
    blobs.sort();
    let files = ["oci-layout".to_string(), "index.json".to_string()]
        .into_iter()
        .chain(blobs.into_iter().map(|n| format!("blobs/sha256/{n}")));
    for rel in files {
        let path = root.join(&rel);
        let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let len = f.metadata().map_err(|e| Error::io(&path, e))?.len();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(len);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, &rel, f).map_err(io)?;
    }
    b.into_inner().map_err(io)
}

/// Extracts an archive (plain, zstd or gzip tar, detected from its first bytes) into the layout
/// at `dest` (created if needed), verifying every blob and skipping blobs already present. The
/// archive's `index.json` entries are added to `dest`'s. Returns the layout.
pub async fn read_archive(archive: &Path, dest: impl Into<PathBuf>) -> Result<Layout, Error> {
    read_archive_with_progress(archive, dest, |_, _| {}).await
}

/// [`read_archive`], calling `progress(done, total)` with the bytes of the archive file read
/// so far and its size (compressed bytes for a compressed archive), once per read of the file.
pub async fn read_archive_with_progress(
    archive: &Path,
    dest: impl Into<PathBuf>,
    progress: impl FnMut(u64, u64) + Send + 'static,
) -> Result<Layout, Error> {
    let layout = Layout::create(dest).await?;
    let (a, l) = (archive.to_path_buf(), layout.clone());
    let index = tokio::task::spawn_blocking(move || extract_sync(&a, &l, progress))
        .await
        .map_err(|e| Error::Config {
            reason: format!("archive reader panicked: {e}"),
        })??;
    for d in index.manifests {
        let name = d.ref_name().map(str::to_string);
        layout.add_to_index(name.as_deref(), d).await?;
    }
    Ok(layout)
}

/// Counts the bytes read through it for a progress callback.
struct Progress<R, F> {
    inner: R,
    done: u64,
    total: u64,
    report: F,
}

impl<R: Read, F: FnMut(u64, u64)> Read for Progress<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.report)(self.done, self.total);
        Ok(n)
    }
}

fn extract_sync(
    archive: &Path,
    layout: &Layout,
    progress: impl FnMut(u64, u64) + Send + 'static,
) -> Result<IndexDocument, Error> {
    let io = |e: std::io::Error| Error::io(archive, e);
    let mut f = File::open(archive).map_err(io)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).map_err(io)?;
    drop(f);
    let file = File::open(archive).map_err(io)?;
    let total = file.metadata().map_err(io)?.len();
    let f = std::io::BufReader::with_capacity(
        1 << 20,
        Progress {
            inner: file,
            done: 0,
            total,
            report: progress,
        },
    );
    let reader: Box<dyn Read> = match &magic[..n] {
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::new(f).map_err(io)?),
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(f)),
        _ => Box::new(f),
    };
    let mut ar = tar::Archive::new(reader);
    let mut index = None;
    for entry in ar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./");
        if path == "index.json" {
            let what = format!("{}:index.json", archive.display());
            check_manifest_size(&what, entry.header().size().map_err(io)?)?;
            // The header is the archive's word only; `take` holds the bytes to the limit too.
            let mut buf = Vec::new();
            entry
                .by_ref()
                .take(MAX_MANIFEST_BYTES as u64 + 1)
                .read_to_end(&mut buf)
                .map_err(io)?;
            index = Some(IndexDocument::parse(&what, &buf)?);
        } else if let Some(hex) = path.strip_prefix("blobs/sha256/")
            && let Ok(digest) = Digest::parse(&format!("sha256:{hex}"))
        {
            let size = entry.header().size().map_err(io)?;
            let dst = layout.blob_path(&digest);
            if std::fs::metadata(&dst).is_ok_and(|m| m.len() == size) {
                continue;
            }
            let dir = dst.parent().unwrap_or(layout.root());
            let (file, tmp) =
                create_exclusive(dir, hex, ".partial").map_err(|e| Error::io(&dst, e))?;
            let r = (|| {
                let mut out = BufWriter::new(file);
                let mut h = Hasher::new();
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = entry.read(&mut buf).map_err(io)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    out.write_all(&buf[..n]).map_err(|e| Error::io(&tmp, e))?;
                }
                let actual = h.finish();
                if actual != digest {
                    return Err(Error::DigestMismatch {
                        url: format!("{}:{path}", archive.display()),
                        expected: digest.clone(),
                        actual,
                    });
                }
                let f = out
                    .into_inner()
                    .map_err(|e| Error::io(&tmp, e.into_error()))?;
                f.sync_all().map_err(|e| Error::io(&tmp, e))?;
                std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))
            })();
            if r.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            r?;
        }
    }
    index.ok_or_else(|| Error::InvalidManifest {
        image: archive.display().to_string(),
        reason: "archive has no index.json".into(),
    })
}
