//! Turning the paths a user gives into the files to read — directories walked recursively in a
//! stable order (skipping version control, build output and dependencies), `-` for stdin — and
//! reading and scanning them, the first step every verb shares.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::report::ErrorOut;

/// Directories that never hold a platform's own configuration.
const SKIPPED_DIRS: &[&str] = &[".git", "target", "node_modules"];

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

    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Input::File(p) => std::fs::read(p),
            Input::Stdin => {
                let mut buf = Vec::new();
                std::io::stdin().read_to_end(&mut buf)?;
                Ok(buf)
            }
        }
    }
}

/// Expand the given paths. A path that does not exist is an error naming it.
pub fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<Input>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(Input::Stdin);
            continue;
        }
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out).with_context(|| format!("cannot read directory {}", p.display()))?;
        } else {
            out.push(Input::File(p.clone()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<Input>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let ty = e.file_type()?;
        if ty.is_dir() {
            if !SKIPPED_DIRS.iter().any(|s| e.file_name() == *s) {
                walk(&path, out)?;
            }
        } else if ty.is_file() {
            out.push(Input::File(path));
        }
    }
    Ok(())
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
) -> anyhow::Result<(Vec<Scanned>, Vec<ErrorOut>)> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for input in collect(paths)? {
        let name = input.display();
        let bytes = match input.read() {
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
) -> anyhow::Result<std::collections::BTreeSet<imgref::Reference>> {
    let mut refs = std::collections::BTreeSet::new();
    if let Some(list) = list {
        let text = std::fs::read_to_string(list)
            .with_context(|| format!("cannot read {}", list.display()))?;
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
        let (files, errors) = scan_all(&paths, &opts)?;
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
