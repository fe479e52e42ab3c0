//! Turning the paths a user gives into the files to read — directories walked recursively in a
//! stable order by the `ignore` crate (as ripgrep walks), honouring `.gitignore` and skipping
//! version control, build output and dependencies; `-` for stdin — and reading and scanning
//! them, the first step every verb shares.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fsutil::ByteSize;
use crate::output::escape;

/// Directories that never hold a platform's own configuration, skipped even with --no-ignore.
const SKIPPED_DIRS: &[&str] = &[".git", "target", "node_modules"];

/// The largest file read as input unless `--max-file-size` says otherwise: far above any real
/// configuration file, far below what would exhaust memory.
pub const DEFAULT_MAX_FILE_SIZE: ByteSize = ByteSize(64 << 20);

/// How every verb that scans configuration finds and reads it: one group of flags, flattened
/// into each verb, parsed once into typed values.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadArgs {
    /// Largest file (or standard input) read, with K, M or G; a larger one is reported and
    /// skipped (a regular file before it is read, a stream once it passes the limit).
    #[arg(long, value_name = "SIZE", default_value_t = DEFAULT_MAX_FILE_SIZE)]
    pub max_file_size: ByteSize,

    /// Walk directories without honouring `.gitignore` files (and `.git/info/exclude`); .git,
    /// target and node_modules are still skipped.
    #[arg(long)]
    pub no_ignore: bool,

    /// The image the Jenkins Kubernetes plugin injects as the `jnlp` agent container.
    #[arg(long, value_name = "REF", default_value = discover::DEFAULT_JNLP_IMAGE, value_parser = parse_reference)]
    pub jnlp_image: imgref::Reference,

    /// Answer a template variable as an installer would (`--set local_registry=R`): templated
    /// references of Ansible roles are evaluated with it above every declared default.
    /// Repeatable.
    /// Helm charts read this too, as `helm --set` (`--set global.imageRegistry=R`).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    pub sets: Vec<(String, String)>,

    /// A values file layered over every top-level Helm chart's values.yaml, as `helm -f`
    /// (long only: `-f` is `--file` everywhere). Repeatable; later files win.
    #[arg(long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
}

/// `NAME=VALUE`, with a name Jinja can read; anything else is a usage error naming it.
fn parse_set(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    // Dotted paths are Helm values (`global.imageRegistry`); each part a key Helm's --set takes.
    let valid = name.split('.').all(|part| {
        part.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if !valid {
        return Err(format!("{name:?} is not a variable name"));
    }
    Ok((name.to_string(), value.to_string()))
}

impl ReadArgs {
    /// What discovery needs from the flags.
    pub fn options(&self) -> discover::Options {
        discover::Options {
            default_jnlp_image: self.jnlp_image.to_string(),
            ..discover::Options::default()
        }
    }
}

/// An image reference given on the command line; a bad one is a usage error (exit 2) naming
/// the character at fault, before anything is read or fetched.
pub fn parse_reference(text: &str) -> Result<imgref::Reference, imgref::ParseError> {
    imgref::Reference::parse(text)
}

/// Something that could not be read, placed by file, line and column (0 when it is the whole
/// file). Part of `scan`'s and `check`'s JSON output.
#[derive(Debug, Serialize)]
pub struct ErrorOut {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// `file:line:column: message` as a person reads it, control characters escaped (the JSON
/// output serialises the fields instead).
impl std::fmt::Display for ErrorOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            escape(&self.file),
            self.line,
            self.column,
            escape(&self.message)
        )
    }
}

impl ErrorOut {
    fn whole_file(path: &Path, message: String) -> ErrorOut {
        ErrorOut {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            message,
        }
    }
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

/// Expand the given paths. A path that does not exist or cannot be read is reported by its own
/// path like any unreadable input, and the other paths are still read: one mistyped argument
/// must not hide what the rest would have found.
pub fn collect(paths: &[PathBuf], args: &ReadArgs) -> anyhow::Result<(Vec<Input>, Vec<ErrorOut>)> {
    let mut walk = Walk::default();
    for p in paths {
        if p.as_os_str() == "-" {
            walk.inputs.push(Input::Stdin);
            continue;
        }
        let meta = match std::fs::metadata(p) {
            Ok(meta) => meta,
            Err(e) => {
                let message = match e.kind() {
                    std::io::ErrorKind::NotFound if p.is_symlink() => {
                        format!("broken symbolic link: {e}")
                    }
                    _ => format!("cannot read: {e}"),
                };
                walk.errors.push(ErrorOut::whole_file(p, message));
                continue;
            }
        };
        if meta.is_dir() {
            walk.dir(p, !args.no_ignore);
        } else {
            // Named explicitly: read whatever it is (a pipe, a device), within the size limit.
            walk.file(p.clone(), &meta);
        }
    }
    Ok((walk.inputs, walk.errors))
}

/// A recursive walk in a stable order (by file name). Symbolic links are followed — a linked
/// file is part of the configuration as much as a copied one — with the walker's loop
/// detection ending link cycles, and every file is read once (by device and inode), so a
/// hard-linked or linked file is scanned once.
#[derive(Default)]
struct Walk {
    inputs: Vec<Input>,
    errors: Vec<ErrorOut>,
    files: HashSet<(u64, u64)>,
}

impl Walk {
    fn file(&mut self, path: PathBuf, meta: &std::fs::Metadata) {
        if self.files.insert((meta.dev(), meta.ino())) {
            self.inputs.push(Input::File(path));
        }
    }

    fn dir(&mut self, dir: &Path, honour_ignore_files: bool) {
        let walker = ignore::WalkBuilder::new(dir)
            .follow_links(true)
            // Hidden files are configuration too (.gitlab-ci.yml, .github/workflows).
            .hidden(false)
            .ignore(false)
            .git_global(false)
            .git_ignore(honour_ignore_files)
            .git_exclude(honour_ignore_files)
            .parents(honour_ignore_files)
            // As ripgrep: .gitignore files count inside a git checkout only, so a stray one
            // above it (in $HOME, in /tmp) never hides configuration.
            .require_git(true)
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(|e| {
                !(e.depth() > 0
                    && e.file_type().is_some_and(|t| t.is_dir())
                    && SKIPPED_DIRS.iter().any(|s| e.file_name() == *s))
            })
            .build();
        for entry in walker {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.walk_error(&e);
                    continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                // Directories are entered by the walker. Pipes, sockets and devices met in a
                // walk are not configuration: reading a pipe could block forever. Name one
                // explicitly to read it.
                continue;
            }
            let path = entry.into_path();
            // Follows a link; an entry removed since it was listed is an error like any other.
            match std::fs::metadata(&path) {
                Ok(meta) => self.file(path, &meta),
                Err(e) => self
                    .errors
                    .push(ErrorOut::whole_file(&path, format!("cannot read: {e}"))),
            }
        }
    }

    /// An entry the walker could not visit, reported by its own path. A link back to a
    /// directory being walked is not an error: that directory is being read already.
    fn walk_error(&mut self, err: &ignore::Error) {
        let mut path = None;
        let mut inner = err;
        loop {
            match inner {
                ignore::Error::WithPath { path: p, err } => {
                    path.get_or_insert(p.clone());
                    inner = err;
                }
                ignore::Error::WithDepth { err, .. } => inner = err,
                ignore::Error::Loop { .. } => return,
                _ => break,
            }
        }
        let (Some(path), Some(io)) = (path, inner.io_error()) else {
            // A malformed ignore file: the walk goes on, as git and ripgrep do.
            eprintln!(
                "airlock: warning: {}",
                crate::output::escape(&err.to_string())
            );
            return;
        };
        let message = if path.is_symlink() && std::fs::metadata(&path).is_err() {
            format!("broken symbolic link: {io}")
        } else if path.is_dir() {
            format!("cannot read directory: {io}")
        } else {
            format!("cannot read: {io}")
        };
        self.errors.push(ErrorOut::whole_file(&path, message));
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
    args: &ReadArgs,
) -> anyhow::Result<(Vec<Scanned>, Vec<ErrorOut>)> {
    let opts = args.options();
    let mut files = Vec::new();
    let (inputs, mut errors) = collect(paths, args)?;
    for input in inputs {
        let name = input.display();
        let bytes = match input.read(args.max_file_size) {
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
        let report = discover::scan_file(&name, &bytes, &opts);
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
    // Templated references evaluated from the defaults declared across files (Ansible roles).
    let mut refs: Vec<resolve::ansible::FileRef<'_>> = files
        .iter_mut()
        .map(|f| resolve::ansible::FileRef {
            name: &f.name,
            text: &f.text,
            report: &mut f.report,
        })
        .collect();
    resolve::ansible::apply(&mut refs, &args.sets, resolve::Limits::default());
    // Helm charts' templated references, from their values, `--values` files and `--set`.
    let mut values = Vec::new();
    for path in &args.values {
        let text = crate::fsutil::read_text_limited(path, args.max_file_size)?;
        values.push((path.display().to_string(), text));
    }
    resolve::helm::apply(&mut refs, &values, &args.sets, resolve::Limits::default());
    Ok((files, errors))
}

/// The images to move: every pullable reference found in `paths` (normalised), plus every
/// entry of the image list `list`, read by discovery's one image-list reader (the one `scan`
/// uses on a file it recognises as a list), so `lock -f`, `pack -f` and `scan` agree on every
/// line. An unreadable input or a bad list entry is an error naming it — moving images on a
/// partial list would silently miss some.
pub fn references(
    paths: &[PathBuf],
    list: Option<&Path>,
    args: &ReadArgs,
) -> anyhow::Result<std::collections::BTreeSet<imgref::Reference>> {
    let mut refs = std::collections::BTreeSet::new();
    if let Some(list) = list {
        let text = crate::fsutil::read_text_limited(list, args.max_file_size)?;
        let report = discover::imagelist::read(&text);
        let index = discover::LineIndex::new(&text);
        let at = |offset| {
            let (line, column) = index.position(offset);
            format!("{}:{line}:{column}", list.display())
        };
        if let Some(e) = report.errors.first() {
            anyhow::bail!("{}: {}", at(e.offset), e.message);
        }
        for f in &report.findings {
            match &f.reference {
                Some(r) if f.kind.is_pullable() => {
                    refs.insert(r.normalized());
                }
                _ => anyhow::bail!(
                    "{}: {} is not an image that can be pulled as written",
                    at(f.span.start),
                    f.image
                ),
            }
        }
    }
    if !paths.is_empty() || list.is_none() {
        let paths = if paths.is_empty() {
            vec![PathBuf::from(".")]
        } else {
            paths.to_vec()
        };
        let (files, errors) = scan_all(&paths, args)?;
        if let Some(e) = errors.first() {
            anyhow::bail!("{e} (fix it, or list the images with -f)");
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
