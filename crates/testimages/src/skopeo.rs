//! Running Debian's `skopeo` as a peer tool and an independent client.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// An empty argument list for [`skopeo_copy`] / [`skopeo_inspect_raw`].
pub const NO_ARGS: &[&str] = &[];

/// The first `name` on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The skopeo binary.
pub struct Skopeo;

impl Skopeo {
    /// Whether `skopeo` is on `PATH`.
    pub fn available() -> bool {
        which("skopeo").is_some()
    }
}

/// Runs `skopeo ARGS…`, returning stdout; on failure the error holds the command line, the exit
/// status and stderr.
pub fn skopeo<S: AsRef<OsStr>>(args: &[S]) -> Result<Vec<u8>> {
    let line = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("skopeo")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!(
                "running skopeo {line} (is skopeo installed? scripts/test installs it, or \
                 apt-get install skopeo)"
            )
        })?;
    if !out.status.success() {
        bail!(
            "skopeo {line} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(out.stdout)
}

/// `skopeo copy --insecure-policy [EXTRA…] SRC DST`. Pass the registry's
/// [`dest_args`](crate::Registry::dest_args) / [`src_args`](crate::Registry::src_args) and e.g.
/// `--all`, `--preserve-digests` in `extra_args`.
pub fn skopeo_copy<S: AsRef<OsStr>>(src: &str, dst: &str, extra_args: &[S]) -> Result<()> {
    let mut args: Vec<&OsStr> = vec![OsStr::new("copy"), OsStr::new("--insecure-policy")];
    args.extend(extra_args.iter().map(AsRef::as_ref));
    args.push(OsStr::new(src));
    args.push(OsStr::new(dst));
    skopeo(&args).map(drop)
}

/// `skopeo inspect --raw [EXTRA…] REF`: the manifest or index bytes exactly as served. Pass the
/// registry's [`inspect_args`](crate::Registry::inspect_args).
pub fn skopeo_inspect_raw<S: AsRef<OsStr>>(reference: &str, extra_args: &[S]) -> Result<Vec<u8>> {
    let mut args: Vec<&OsStr> = vec![OsStr::new("inspect"), OsStr::new("--raw")];
    args.extend(extra_args.iter().map(AsRef::as_ref));
    args.push(OsStr::new(reference));
    skopeo(&args)
}
