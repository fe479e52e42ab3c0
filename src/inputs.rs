//! Turning the paths a user gives into the files to read — directories walked recursively in a
//! stable order (skipping version control, build output and dependencies), `-` for stdin — and
//! reading and scanning them, the first step every verb shares.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::fsutil::ByteSize;
use crate::report::ErrorOut;

/// Directories that never hold a platform's own configuration.
const SKIPPED_DIRS: &[&str] = &[".git", "target", "node_modules"];

/// The largest file read as input unless `--max-file-size` says otherwise: far above any real
/// configuration file, far below what would exhaust memory.
pub const DEFAULT_MAX_FILE_SIZE: ByteSize = ByteSize(64 << 20);

/// How much of each input a verb reads.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadArgs {
    /// Largest file (or standard input) read, with K, M or G; a larger one is reported and
    /// skipped (a regular file before it is read, a stream once it passes the limit).
    #[arg(long, value_name = "SIZE", default_value_t = DEFAULT_MAX_FILE_SIZE)]
    pub max_file_size: ByteSize,
}

/// A file to scan: its name as the user will see it, and where to read it from.
pub enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    pub fn display(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "-".to_string(),
        }
    }

    pub fn read(&self, limit: ByteSize) -> std::io::Result<Vec<u8>> {
        match self {
            Input::File(p) => crate::fsutil::read_file_limited(p, limit),
            Input::Stdin => crate::fsutil::read_limited(std::io::stdin().lock(), None, limit),
        }
    }
}

/// Expand the given paths. A path that does not exist is an error naming it (a usage error);
/// what cannot be read inside a directory is reported by its own path and the walk goes on.
pub fn collect(paths: &[PathBuf]) -> anyhow::Result<(Vec<Input>, Vec<ErrorOut>)> {
    let mut walk = Walk::default();
    for p in paths {
        if p.as_os_str() == "-" {
            walk.inputs.push(Input::Stdin);
            continue;
        }
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            walk.dir(p, &meta);
        } else {
            // Named explicitly: read whatever it is (a pipe, a device), within the size limit.
            walk.file(p.clone(), &meta);
        }
    }
    Ok((walk.inputs, walk.errors))
}

/// A recursive walk in a stable order. Symbolic links are followed — a linked file is part of
/// the configuration as much as a copied one — and every file and directory is visited once
/// (by device and inode), which ends link loops and scans a hard-linked or linked file once.
#[derive(Default)]
struct Walk {
    inputs: Vec<Input>,
    errors: Vec<ErrorOut>,
    files: HashSet<(u64, u64)>,
    dirs: HashSet<(u64, u64)>,
}

impl Walk {
    fn file(&mut self, path: PathBuf, meta: &std::fs::Metadata) {
        if self.files.insert((meta.dev(), meta.ino())) {
            self.inputs.push(Input::File(path));
        }
    }

    fn error(&mut self, path: &Path, message: String) {
        self.errors.push(ErrorOut {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            message,
        });
    }

    fn dir(&mut self, dir: &Path, meta: &std::fs::Metadata) {
        if !self.dirs.insert((meta.dev(), meta.ino())) {
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => return self.error(dir, format!("cannot read directory: {e}")),
        };
        let mut listed = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => listed.push(e),
                Err(e) => self.error(dir, format!("cannot list directory: {e}")),
            }
        }
        listed.sort_by_key(|e| e.file_name());
        for e in listed {
            let path = e.path();
            // Follows a link; an entry removed since it was listed is an error like any other.
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if path.is_symlink() => {
                    self.error(&path, format!("broken symbolic link: {e}"));
                    continue;
                }
                Err(e) => {
                    self.error(&path, format!("cannot read: {e}"));
                    continue;
                }
            };
            if meta.is_dir() {
                if !SKIPPED_DIRS.iter().any(|s| e.file_name() == *s) {
                    self.dir(&path, &meta);
                }
            } else if meta.is_file() {
                self.file(path, &meta);
            }
            // Pipes, sockets and devices met in a walk are not configuration: reading a pipe
            // could block forever. Name one explicitly to read it.
        }
    }
}

/// One input as read and scanned: the text positions are computed against, and what discovery
/// found in it.
pub struct Scanned {
    pub input: Input,
    pub name: String,
    pub text: String,
    pub report: discover::FileReport,
}

/// Read and scan every input. Unreadable files and unparsable text become errors (placed by
/// line and column), and the rest is still scanned, so one broken file hides nothing else.
pub fn scan_all(
    paths: &[PathBuf],
    opts: &discover::Options,
    limit: ByteSize,
) -> anyhow::Result<(Vec<Scanned>, Vec<ErrorOut>)> {
    let mut files = Vec::new();
    let (inputs, mut errors) = collect(paths)?;
    for input in inputs {
        let name = input.display();
        let bytes = match input.read(limit) {
            Ok(b) => b,
            Err(e) => {
                errors.push(ErrorOut {
                    file: name,
                    line: 0,
                    column: 0,
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        let report = discover::scan_file(&name, &bytes, opts);
        // Non-UTF-8 input is already an error in the report; the lossy text only places it.
        let text = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if !report.errors.is_empty() {
            let index = discover::LineIndex::new(&text);
            for e in &report.errors {
                let (line, column) = index.position(e.offset);
                errors.push(ErrorOut {
                    file: name.clone(),
                    line,
                    column,
                    message: e.message.clone(),
                });
            }
        }
        files.push(Scanned {
            input,
            name,
            text,
            report,
        });
    }
    Ok((files, errors))
}

/// The images to move: every pullable reference found in `paths` (normalised), plus one a line
/// from `list` (`#` comments allowed). An unreadable input or a bad list line is an error naming
/// it — moving images on a partial list would silently miss some.
pub fn references(
    paths: &[PathBuf],
    list: Option<&Path>,
    jnlp_image: &str,
    limit: ByteSize,
) -> anyhow::Result<std::collections::BTreeSet<imgref::Reference>> {
    let mut refs = std::collections::BTreeSet::new();
    if let Some(list) = list {
        let text = crate::fsutil::read_text_limited(list, limit)?;
        for (n, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            let r = imgref::Reference::parse(entry)
                .with_context(|| format!("{}:{}", list.display(), n + 1))?;
            refs.insert(r.normalized());
        }
    }
    if !paths.is_empty() || list.is_none() {
        let paths = if paths.is_empty() {
            vec![PathBuf::from(".")]
        } else {
            paths.to_vec()
        };
        let opts = discover::Options {
            default_jnlp_image: jnlp_image.to_string(),
        };
        let (files, errors) = scan_all(&paths, &opts, limit)?;
        if let Some(e) = errors.first() {
            anyhow::bail!(
                "{}:{}:{}: {} (fix it, or list the images with -f)",
                e.file,
                e.line,
                e.column,
                e.message
            );
        }
        refs.extend(
            files
                .iter()
                .flat_map(|f| &f.report.findings)
                .filter(|f| f.kind.is_pullable())
                .filter_map(|f| f.reference.as_ref().map(imgref::Reference::normalized)),
        );
    }
    Ok(refs)
}
