//! Writing files so that a crash or a full disk never leaves one half-written.

use std::io::Write;
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
