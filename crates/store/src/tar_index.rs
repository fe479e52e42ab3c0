//! A plain `.tar` layout archive (what `pack` writes) served in place: [`TarArchive::open`] walks
//! the 512-byte tar headers once, reading only headers (and the small GNU long-name and PAX
//! records), and remembers where each blob's bytes start; reads are positional reads of the one
//! file descriptor opened then. Nothing is unpacked and no disk is used, so a 2 GB archive opens
//! in the time of a few hundred small reads. A `.tar.zst` cannot be read at offsets: it goes
//! through [`read_archive_with_progress`](crate::archive::read_archive_with_progress) into a
//! store directory once.
//!
//! Integrity: a blob is served only once its bytes are known to hash to its name. The first
//! whole read of a blob is verified as it streams (its last chunk held back until the digest
//! matches, as every blob source does); a range read of a blob not yet verified first hashes the
//! whole blob once. The verdict is cached for the life of the [`TarArchive`], so later reads cost
//! only their own bytes; a blob that did not match is refused from then on and reported absent
//! by [`stat_blob`](Store::stat_blob). [`TarArchive::verify_all`] checks everything up front.
//!
//! Hostile archives are refused at open with [`Error::InvalidArchive`]: a bad header checksum,
//! an entry (or the end-of-archive marker) missing because the file was cut short, the same blob
//! or `index.json` twice (tar tools disagree on which copy wins, so serving either is a guess),
//! a link, directory or other non-file named like a blob or `index.json`, a name that escapes the
//! archive root (`/…`, `..`), long-name and PAX records over [`MAX_EXTENSION_BYTES`], more than
//! [`MAX_BLOBS`] blobs. Sizes may be octal, base-256 (GNU, for files over 8 GiB) or PAX `size`.
//! The archive must not be rewritten in place while served (a replacement by rename is harmless:
//! the open descriptor keeps the old file).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use oci::digest::{Digest, Hasher};
use oci::error::Error;
use oci::manifest::{Descriptor, IndexDocument, check_manifest_size};
use oci::stream::verify_stream;

use crate::layout::{BlobWriter, positional_stream};
use crate::store::{
    BlobRange, Store, manifests_in_index, range_end, repositories_in_index, resolve_in_index,
    tags_in_index,
};
use crate::upload::Upload;

const BLOCK: u64 = 512;

/// Largest GNU long-name or PAX extended header record read at open (a path is at most a few
/// KiB; a bigger record is an attempt on memory).
pub const MAX_EXTENSION_BYTES: u64 = 64 * 1024;

/// Most blobs an archive may hold (the in-memory index costs ~150 bytes a blob).
pub const MAX_BLOBS: usize = 1 << 20;

/// Where an entry's bytes are in the archive file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    offset: u64,
    size: u64,
}

/// A blob's check: `Ok` verified, `Err(actual)` its bytes hash to `actual` instead.
type Verdicts = Arc<Mutex<HashMap<Digest, Result<(), Digest>>>>;

/// A `.tar` layout archive opened for serving in place, read-only. See the module docs.
#[derive(Debug)]
pub struct TarArchive {
    path: PathBuf,
    file: Arc<File>,
    blobs: HashMap<Digest, Span>,
    index: IndexDocument,
    verdicts: Verdicts,
}

impl TarArchive {
    /// Opens `path` and indexes its entries (blocking: header reads only, O(entries)).
    pub fn open(path: impl Into<PathBuf>) -> Result<TarArchive, Error> {
        let path = path.into();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        let mut magic = [0u8; 4];
        if file.read_exact_at(&mut magic, 0).is_ok()
            && (magic == [0x28, 0xb5, 0x2f, 0xfd] || magic[..2] == [0x1f, 0x8b])
        {
            return Err(Error::InvalidArchive {
                path,
                entry: String::new(),
                offset: 0,
                reason:
                    "compressed: only a plain .tar is served in place; unpack this one into a store"
                        .into(),
            });
        }
        let scan = scan(&path, &file, len)?;
        let what = format!("{}:index.json", path.display());
        let Some(ix) = scan.index_json else {
            return Err(Error::InvalidManifest {
                image: path.display().to_string(),
                reason: "archive has no index.json".into(),
            });
        };
        check_manifest_size(&what, ix.size)?;
        let mut bytes = vec![0u8; ix.size as usize];
        file.read_exact_at(&mut bytes, ix.offset)
            .map_err(|e| Error::io(&path, e))?;
        let index = IndexDocument::parse(&what, &bytes)?;
        Ok(TarArchive {
            path,
            file: Arc::new(file),
            blobs: scan.blobs,
            index,
            verdicts: Arc::default(),
        })
    }

    /// The archive file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The archive's `index.json`.
    pub fn index(&self) -> &IndexDocument {
        &self.index
    }

    /// How many blobs the archive holds.
    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// Total bytes of all blobs (for progress displays).
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.values().map(|s| s.size).sum()
    }

    /// Hashes every blob not yet verified (blocking), calling `progress(done, total)` in bytes
    /// as it goes. Returns the first mismatch; every blob is checked either way, and a bad one
    /// is refused from then on.
    pub fn verify_all(&self, mut progress: impl FnMut(u64, u64)) -> Result<(), Error> {
        let total = self.blob_bytes();
        let mut done = 0;
        let mut first_err = None;
        let mut blobs: Vec<(&Digest, &Span)> = self.blobs.iter().collect();
        // In file order: one sequential pass over the archive.
        blobs.sort_by_key(|(_, s)| s.offset);
        for (digest, span) in blobs {
            let known = self.verdict(digest);
            let r = match known {
                Some(v) => self.verdict_error(digest, v),
                None => {
                    let base = done;
                    hash_span(&self.file, &self.path, *span, |n| progress(base + n, total))
                        .and_then(|actual| self.verdict_error(digest, self.record(digest, actual)))
                }
            };
            done += span.size;
            progress(done, total);
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn verdict(&self, digest: &Digest) -> Option<Result<(), Digest>> {
        lock(&self.verdicts).get(digest).cloned()
    }

    fn record(&self, digest: &Digest, actual: Digest) -> Result<(), Digest> {
        let v = if &actual == digest {
            Ok(())
        } else {
            Err(actual)
        };
        lock(&self.verdicts).insert(digest.clone(), v.clone());
        v
    }

    fn verdict_error(&self, digest: &Digest, v: Result<(), Digest>) -> Result<(), Error> {
        v.map_err(|actual| Error::DigestMismatch {
            url: self.blob_url(digest),
            expected: digest.clone(),
            actual,
        })
    }

    fn blob_url(&self, digest: &Digest) -> String {
        format!(
            "{}:blobs/{}/{}",
            self.path.display(),
            digest.algorithm(),
            digest.hex()
        )
    }

    /// Hashes the whole blob off the async threads and caches the verdict.
    async fn verify(&self, digest: &Digest, span: Span) -> Result<(), Error> {
        let (file, path) = (self.file.clone(), self.path.clone());
        let actual = tokio::task::spawn_blocking(move || hash_span(&file, &path, span, |_| {}))
            .await
            .map_err(|e| Error::Config {
                reason: format!("blob verification panicked: {e}"),
            })??;
        let v = self.record(digest, actual);
        self.verdict_error(digest, v)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the map leaves it consistent (single inserts only).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The digest of `span`'s bytes, read in 1 MiB positional reads; `progress` gets bytes done.
fn hash_span(
    file: &File,
    path: &Path,
    span: Span,
    mut progress: impl FnMut(u64),
) -> Result<Digest, Error> {
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0;
    while done < span.size {
        let n = (span.size - done).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], span.offset + done)
            .map_err(|e| Error::io(path, e))?;
        h.update(&buf[..n]);
        done += n as u64;
        progress(done);
    }
    Ok(h.finish())
}

impl Store for TarArchive {
    async fn stat_blob(&self, digest: &Digest) -> Result<Option<u64>, Error> {
        if matches!(self.verdict(digest), Some(Err(_))) {
            // Its bytes are not what its name says: not stored under that name.
            return Ok(None);
        }
        Ok(self.blobs.get(digest).map(|s| s.size))
    }

    async fn read_blob_range(
        &self,
        digest: &Digest,
        start: u64,
        end: Option<u64>,
    ) -> Result<BlobRange, Error> {
        let span = *self.blobs.get(digest).ok_or_else(|| Error::BlobNotFound {
            repository: self.path.display().to_string(),
            digest: digest.clone(),
        })?;
        let size = span.size;
        let end = range_end(digest, start, end, size)?;
        let whole = start == 0 && end == size;
        match self.verdict(digest) {
            Some(v) => self.verdict_error(digest, v)?,
            None if whole => {
                // The first whole read verifies as it streams; the verdict is kept only when
                // the stream ran to its end (a client that hangs up decides nothing).
                let raw =
                    positional_stream(self.file.clone(), self.path.clone(), span.offset, size);
                let checked = verify_stream(raw, digest.clone(), Some(size), self.blob_url(digest));
                let failed = Arc::new(AtomicBool::new(false));
                let (verdicts, d, f) = (self.verdicts.clone(), digest.clone(), failed.clone());
                let checked = checked.inspect(move |item| match item {
                    Ok(_) => {}
                    Err(Error::DigestMismatch { actual, .. }) => {
                        f.store(true, Ordering::Relaxed);
                        lock(&verdicts).insert(d.clone(), Err(actual.clone()));
                    }
                    Err(_) => f.store(true, Ordering::Relaxed),
                });
                let (verdicts, d) = (self.verdicts.clone(), digest.clone());
                let done = futures_util::stream::once(async move {
                    if !failed.load(Ordering::Relaxed) {
                        lock(&verdicts).insert(d, Ok(()));
                    }
                })
                .filter_map(|()| async { None });
                return Ok(BlobRange {
                    blob_size: size,
                    start,
                    len: size,
                    stream: Box::pin(checked.chain(done)),
                });
            }
            None => self.verify(digest, span).await?,
        }
        Ok(BlobRange {
            blob_size: size,
            start,
            len: end - start,
            stream: positional_stream(
                self.file.clone(),
                self.path.clone(),
                span.offset + start,
                end - start,
            ),
        })
    }

    async fn put_blob(&self, _digest: &Digest, _size: Option<u64>) -> Result<BlobWriter, Error> {
        Err(self.read_only())
    }

    async fn resolve_tag(&self, repository: &str, tag: &str) -> Result<Descriptor, Error> {
        resolve_in_index(&self.index, &self.path, repository, tag)
    }

    async fn set_tag(&self, _repository: &str, _tag: &str, _desc: Descriptor) -> Result<(), Error> {
        Err(self.read_only())
    }

    async fn tags(&self, repository: &str) -> Result<Vec<String>, Error> {
        Ok(tags_in_index(&self.index, repository))
    }

    async fn repositories(&self) -> Result<Vec<String>, Error> {
        Ok(repositories_in_index(&self.index))
    }

    async fn begin_upload(&self) -> Result<Upload, Error> {
        Err(self.read_only())
    }

    async fn commit_upload(&self, _upload: Upload, _digest: &Digest) -> Result<u64, Error> {
        Err(self.read_only())
    }

    async fn delete_blob(&self, _digest: &Digest) -> Result<bool, Error> {
        Err(self.read_only())
    }

    async fn add_manifest(&self, _repository: &str, _desc: Descriptor) -> Result<(), Error> {
        Err(self.read_only())
    }

    async fn manifests(&self, repository: &str) -> Result<Vec<Descriptor>, Error> {
        Ok(manifests_in_index(self.index.clone(), repository))
    }

    async fn delete_manifest(&self, _repository: &str, _digest: &Digest) -> Result<bool, Error> {
        Err(self.read_only())
    }

    async fn delete_tag(&self, _repository: &str, _tag: &str) -> Result<bool, Error> {
        Err(self.read_only())
    }
}

impl TarArchive {
    /// What every write to an archive gets: it is served as it was packed.
    fn read_only(&self) -> Error {
        Error::ReadOnly {
            what: self.path.display().to_string(),
        }
    }
}

/// What the header walk found.
struct Scan {
    blobs: HashMap<Digest, Span>,
    index_json: Option<Span>,
}

/// Walks the headers from the start of `file` (`len` bytes) to the end-of-archive marker.
fn scan(path: &Path, file: &File, len: u64) -> Result<Scan, Error> {
    let bad = |entry: &[u8], offset: u64, reason: String| Error::InvalidArchive {
        path: path.to_path_buf(),
        entry: String::from_utf8_lossy(entry).into_owned(),
        offset,
        reason,
    };
    let mut out = Scan {
        blobs: HashMap::new(),
        index_json: None,
    };
    // Extension records describe the next real entry.
    let mut long_name: Option<Vec<u8>> = None;
    let mut pax: Option<Vec<u8>> = None;
    let mut pos = 0u64;
    loop {
        if pos.checked_add(BLOCK).is_none_or(|e| e > len) {
            return Err(bad(
                b"",
                pos,
                format!(
                    "truncated: the archive ends at byte {len} without its end-of-archive marker"
                ),
            ));
        }
        let mut block = [0u8; BLOCK as usize];
        file.read_exact_at(&mut block, pos)
            .map_err(|e| Error::io(path, e))?;
        if block.iter().all(|&b| b == 0) {
            if long_name.is_some() || pax.is_some() {
                return Err(bad(
                    b"",
                    pos,
                    "an extension header describes no entry".into(),
                ));
            }
            return Ok(out);
        }
        let header = tar::Header::from_byte_slice(&block);
        let raw_name = header.path_bytes().into_owned();
        let cksum = header
            .cksum()
            .map_err(|e| bad(&raw_name, pos, format!("header checksum field: {e}")))?;
        let sum: u32 = block[..148]
            .iter()
            .chain(&block[156..])
            .map(|&b| u32::from(b))
            .sum::<u32>()
            + 8 * u32::from(b' ');
        if sum != cksum {
            return Err(bad(
                &raw_name,
                pos,
                "header checksum mismatch (corrupt archive)".into(),
            ));
        }
        let ty = header.entry_type();
        let is_extension = matches!(
            ty,
            tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
                | tar::EntryType::XHeader
                | tar::EntryType::XGlobalHeader
        );
        let mut size = header
            .entry_size()
            .map_err(|e| bad(&raw_name, pos, format!("size field: {e}")))?;
        let mut name = raw_name;
        let mut pax_path = false;
        if !is_extension {
            if let Some(records) = pax.take() {
                for ext in tar::PaxExtensions::new(&records) {
                    let ext = ext.map_err(|e| bad(&name, pos, format!("PAX header: {e}")))?;
                    match ext.key_bytes() {
                        b"size" => {
                            size = ext
                                .value()
                                .ok()
                                .and_then(|v| v.parse().ok())
                                .ok_or_else(|| bad(&name, pos, "PAX size is not a number".into()))?
                        }
                        b"path" => {
                            name = ext.value_bytes().to_vec();
                            pax_path = true;
                        }
                        _ => {}
                    }
                }
            }
            // GNU tar writes both for a long name; the PAX record is the standard one.
            if let Some(long) = long_name.take()
                && !pax_path
            {
                name = long;
            }
        }
        let data = pos + BLOCK;
        let next = data
            .checked_add(size)
            .filter(|&end| end <= len)
            .ok_or_else(|| {
                bad(
                    &name,
                    pos,
                    format!("truncated: {size} bytes declared, the archive ends at byte {len}"),
                )
            })?;
        let next = next.div_ceil(BLOCK) * BLOCK;
        match ty {
            tar::EntryType::GNULongName | tar::EntryType::XHeader => {
                if size > MAX_EXTENSION_BYTES {
                    return Err(bad(
                        &name,
                        pos,
                        format!("extension record of {size} bytes (limit {MAX_EXTENSION_BYTES})"),
                    ));
                }
                let slot = if ty == tar::EntryType::XHeader {
                    &mut pax
                } else {
                    &mut long_name
                };
                if slot.is_some() {
                    return Err(bad(
                        &name,
                        pos,
                        "two extension records for one entry".into(),
                    ));
                }
                let mut body = vec![0u8; size as usize];
                file.read_exact_at(&mut body, data)
                    .map_err(|e| Error::io(path, e))?;
                if ty == tar::EntryType::GNULongName {
                    while body.last() == Some(&0) {
                        body.pop();
                    }
                }
                *slot = Some(body);
            }
            // A link target matters only for links, which are refused where it counts; global
            // PAX records name no entry.
            tar::EntryType::GNULongLink | tar::EntryType::XGlobalHeader => {}
            _ => classify(&mut out, &name, ty, Span { offset: data, size })
                .map_err(|reason| bad(&name, pos, reason))?,
        }
        pos = next;
    }
}

/// Files a (non-extension) entry: a blob, `index.json`, or something a layout server ignores.
fn classify(out: &mut Scan, name: &[u8], ty: tar::EntryType, span: Span) -> Result<(), String> {
    let Ok(name) = std::str::from_utf8(name) else {
        return if name.split(|&b| b == b'/').any(|c| c == b"..") || name.first() == Some(&b'/') {
            Err("name escapes the archive root".into())
        } else {
            Ok(())
        };
    };
    if name.starts_with('/') || name.split('/').any(|c| c == "..") {
        return Err("name escapes the archive root".into());
    }
    let mut rel = name;
    while let Some(r) = rel.strip_prefix("./") {
        rel = r;
    }
    let rel = rel.trim_end_matches('/');
    let slot = if rel == "index.json" {
        None
    } else if let Some((alg, hex)) = rel.strip_prefix("blobs/").and_then(|r| r.split_once('/'))
        && let Ok(digest) = Digest::parse(&format!("{alg}:{hex}"))
    {
        Some(digest)
    } else {
        return Ok(());
    };
    if ty != tar::EntryType::Regular {
        return Err(format!(
            "a {ty:?} entry where a regular file is expected (links and directories named like layout files are refused)"
        ));
    }
    match slot {
        None => {
            if out.index_json.replace(span).is_some() {
                return Err("index.json appears twice".into());
            }
        }
        Some(digest) => {
            if out.blobs.len() >= MAX_BLOBS {
                return Err(format!("more than {MAX_BLOBS} blobs"));
            }
            if out.blobs.insert(digest, span).is_some() {
                return Err("the same blob appears twice".into());
            }
        }
    }
    Ok(())
}
