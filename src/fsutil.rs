//! Reading inputs within a size limit, and replacing files so that a crash, a full disk or a
//! concurrent writer never leaves one half-written or silently loses what was written to it.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Write `bytes` to a temporary file beside `path` and rename it over `path`. A symbolic link is
/// followed (its target is replaced, the link stays); an existing file keeps its owner and
/// permissions, less any setuid/setgid bit.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let path = resolve_link(path)?;
    replace(&path, bytes, None).map(|_| ())
}

/// [`write_atomic`] for a file that holds a credential: the new file is readable by its owner
/// only (0600) from the moment it exists, whatever mode a file it replaces had.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let path = resolve_link(path)?;
    replace_with_mode(&path, bytes, None, Some(0o600)).map(|_| ())
}

/// The file a path names: the target of a symbolic link, the path itself otherwise.
pub fn resolve_link(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_symlink() {
        std::fs::canonicalize(path)
            .with_context(|| format!("cannot follow the symbolic link {}", path.display()))
    } else {
        Ok(path.to_path_buf())
    }
}

/// What a file was when it was read: any write, truncation, replacement or change of mode since
/// changes one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Snapshot {
    pub fn of(meta: &std::fs::Metadata) -> Snapshot {
        Snapshot {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// What replacing a file did besides writing the new bytes.
#[derive(Debug, Default)]
pub struct Replaced {
    /// The old file had setuid or setgid bits, which the new one does not get.
    pub cleared_setid: bool,
}

/// Set-user-ID and set-group-ID: never carried over to rewritten content, as the kernel clears
/// them when another user writes to a file.
const SETID_BITS: u32 = 0o6000;

/// Replace `path` (not a symbolic link) with `bytes`: a temporary file beside it gets the bytes,
/// the old file's owner and mode (less setuid/setgid), and is renamed over it. With `expect`,
/// the file is checked against what it was when read, just before the rename, and left alone
/// if anything changed — a concurrent append is refused, not lost. What remains is the gap
/// between that last check and the rename itself, a few system calls.
pub fn replace(path: &Path, bytes: &[u8], expect: Option<&Snapshot>) -> anyhow::Result<Replaced> {
    replace_with_mode(path, bytes, expect, None)
}

/// [`replace`], with `mode` (when given) instead of the old file's permissions.
fn replace_with_mode(
    path: &Path,
    bytes: &[u8],
    expect: Option<&Snapshot>,
    mode: Option<u32>,
) -> anyhow::Result<Replaced> {
    let shown = path.display();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".airlock-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file beside {shown}"))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write a temporary file beside {shown}"))?;
    let mut replaced = Replaced::default();
    if let Ok(meta) = std::fs::metadata(path) {
        // Owner first: a change of owner clears set-id bits, which are decided below anyway.
        let mine = tmp.as_file().metadata()?;
        if (mine.uid(), mine.gid()) != (meta.uid(), meta.gid()) {
            std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()))
                .with_context(|| {
                    format!(
                        "cannot give the new {shown} its owner {}:{}; not changed",
                        meta.uid(),
                        meta.gid()
                    )
                })?;
        }
        let mode = meta.mode() & 0o7777;
        replaced.cleared_setid = mode & SETID_BITS != 0;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode & !SETID_BITS))
            .with_context(|| format!("cannot copy the permissions of {shown}"))?;
    }
    if let Some(mode) = mode {
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the permissions of {shown}"))?;
    }
    pause_for_tests();
    if let Some(expect) = expect {
        let now =
            std::fs::symlink_metadata(path).with_context(|| format!("cannot read {shown}"))?;
        if Snapshot::of(&now) != *expect {
            // The temporary file is removed as `tmp` drops.
            bail!("{shown} changed on disk while it was being rewritten; not changed (run again)");
        }
    }
    tmp.persist(path)
        .with_context(|| format!("cannot replace {shown}"))?;
    // The rename is durable only once the directory is.
    if let Ok(d) = std::fs::File::open(dir) {
        d.sync_all().ok();
    }
    Ok(replaced)
}

/// A test hook in debug builds: with `AIRLOCK_TEST_PAUSE_BEFORE_RENAME` naming a FIFO, wait for
/// a writer to open and close it between writing the temporary file and the last check, so a
/// test can change the file in that window deterministically.
fn pause_for_tests() {
    #[cfg(debug_assertions)]
    if let Some(fifo) = std::env::var_os("AIRLOCK_TEST_PAUSE_BEFORE_RENAME") {
        std::fs::read(fifo).ok();
    }
}

/// A size in bytes as given on the command line: a number with an optional binary suffix
/// (`512K`, `64M`, `1G`; `KiB`/`MiB`/`GiB` and `KB`/`MB`/`GB` mean the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<ByteSize, String> {
        let s = s.trim();
        let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(digits);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{s:?} is not a size: write a number with K, M or G"))?;
        let shift = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" | "BYTES" => 0,
            "K" | "KB" | "KIB" => 10,
            "M" | "MB" | "MIB" => 20,
            "G" | "GB" | "GIB" => 30,
            other => return Err(format!("unknown size unit {other:?}: use K, M or G")),
        };
        number
            .checked_mul(1 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0;
        match [(30, "GiB"), (20, "MiB"), (10, "KiB")]
            .into_iter()
            .find(|(shift, _)| n >= 1 << shift && n.is_multiple_of(1 << shift))
        {
            Some((shift, unit)) => write!(f, "{} {unit}", n >> shift),
            None => f.write_str(&crate::output::count(n, "byte", "bytes")),
        }
    }
}

/// Input bigger than the limit a verb reads; nothing of it is used.
#[derive(Debug, thiserror::Error)]
#[error("{} is larger than the {limit} limit; not read (raise it with --max-file-size)", size.map_or("the input".to_string(), |s| crate::output::count(s, "byte", "bytes")))]
pub struct TooLarge {
    /// The size on disk, when the input is a regular file.
    pub size: Option<u64>,
    pub limit: ByteSize,
}

/// Read a whole input, refusing one larger than `limit` before reading it (a regular file's size
/// is known) or as soon as it passes the limit (a pipe, a device such as /dev/zero), so memory
/// stays bounded by the limit whatever the input is.
pub fn read_limited(
    mut input: impl Read,
    known_size: Option<u64>,
    limit: ByteSize,
) -> std::io::Result<Vec<u8>> {
    if let Some(size) = known_size.filter(|s| *s > limit.0) {
        return Err(std::io::Error::other(TooLarge {
            size: Some(size),
            limit,
        }));
    }
    // A regular file's size is a good first guess; a stream grows the buffer as it comes.
    let mut buf = Vec::with_capacity(known_size.unwrap_or(0).min(limit.0) as usize);
    input
        .by_ref()
        .take(limit.0.saturating_add(1))
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > limit.0 {
        return Err(std::io::Error::other(TooLarge { size: None, limit }));
    }
    Ok(buf)
}

/// [`read_limited`] for a path: the file's size is checked before anything is read.
pub fn read_file_limited(path: &Path, limit: ByteSize) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let size = meta.is_file().then_some(meta.len());
    read_limited(file, size, limit)
}

/// [`read_file_limited`] as text, with errors that name the file.
pub fn read_text_limited(path: &Path, limit: ByteSize) -> anyhow::Result<String> {
    let bytes = read_file_limited(path, limit)
        .with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes_and_print_back() {
        for (text, bytes) in [
            ("64M", 64 << 20),
            ("512k", 512 << 10),
            ("1 GiB", 1 << 30),
            ("100", 100),
            ("64 MiB", 64 << 20),
        ] {
            let size: ByteSize = text.parse().unwrap();
            assert_eq!(size, ByteSize(bytes), "{text}");
            assert_eq!(size.to_string().parse::<ByteSize>().unwrap(), size);
        }
        assert_eq!(ByteSize(64 << 20).to_string(), "64 MiB");
        assert!("12X".parse::<ByteSize>().is_err());
        assert!("M".parse::<ByteSize>().is_err());
        assert!("99999999999G".parse::<ByteSize>().is_err());
    }

    #[test]
    fn a_stream_past_the_limit_is_refused_after_limit_plus_one_bytes() {
        let mut source = std::io::repeat(b'a').take(1 << 20);
        let err = read_limited(&mut source, None, ByteSize(1000)).unwrap_err();
        assert!(
            err.to_string().contains("larger than the 1000 bytes limit"),
            "{err}"
        );
        // Only what proves the input too large was consumed.
        assert_eq!(source.limit(), (1 << 20) - 1001);
        let exact = read_limited(std::io::repeat(b'a').take(1000), None, ByteSize(1000)).unwrap();
        assert_eq!(exact.len(), 1000);
    }
}
