//! Writing files so that a crash or a full disk never leaves one half-written.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;

/// Write `bytes` to a temporary file beside `path` and rename it over `path`. Permissions of an
/// existing file are kept.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
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
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())
            .with_context(|| format!("cannot copy the permissions of {shown}"))?;
    }
    tmp.persist(path)
        .with_context(|| format!("cannot replace {shown}"))?;
    Ok(())
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
            .find(|(shift, _)| n >= 1 << shift && n % (1 << shift) == 0)
        {
            Some((shift, unit)) => write!(f, "{} {unit}", n >> shift),
            None => write!(f, "{n} bytes"),
        }
    }
}

/// Input bigger than the limit a verb reads; nothing of it is used.
#[derive(Debug, thiserror::Error)]
#[error("{} is larger than the {limit} limit; not read (raise it with --max-file-size)", size.map_or("the input".to_string(), |s| format!("{s} bytes")))]
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
