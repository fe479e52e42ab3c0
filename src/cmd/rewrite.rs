//! `airlock rewrite`: point every image reference at the private registry by editing the bytes
//! of the values in place. Shows a unified diff by default; `--write` edits the files (temporary
//! file + rename, owner and permissions kept, a concurrent change refused); `--check` exits 1
//! when anything would change.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::cli::RewriteArgs;
use crate::exit::Exit;
use crate::fsutil::{ByteSize, Snapshot};
use crate::inputs::{self, Input};
use crate::output::{escape, escape_lines};

pub fn run(args: &RewriteArgs) -> anyhow::Result<Exit> {
    let mapping = args.config.load()?.mapping()?;
    let opts = args.read.options();
    let plan_opts = rewrite::PlanOptions {
        fix_implicit: args.fix_implicit,
        pins: match &args.pin {
            Some(lock) => crate::lockfile::Lockfile::read(lock, args.read.max_file_size)?.digests(),
            None => Default::default(),
        },
    };
    let (files, errors) = inputs::scan_all(&args.paths, &args.read)?;
    for e in &errors {
        eprintln!("airlock: {e} (file left unchanged)");
    }
    let mut bad_input = !errors.is_empty();
    let scanned: Vec<_> = files
        .into_iter()
        .filter(|f| f.report.errors.is_empty())
        .collect();
    // Collisions are a property of the whole input: two files may hold the two sources.
    mapping.map_all(
        scanned
            .iter()
            .flat_map(|s| &s.report.findings)
            .filter(|f| f.kind.is_pullable())
            .filter_map(|f| f.reference.as_ref()),
    )?;

    let mut changed = 0;
    let terminal = std::io::stdout().is_terminal();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for s in &scanned {
        let plan = rewrite::plan(&s.text, &s.report.findings, &mapping, &plan_opts)
            .with_context(|| format!("{}: cannot plan the edits", s.name))?;
        let index = discover::LineIndex::new(&s.text);
        for skip in &plan.skipped {
            let (line, column) = index.position(skip.span.start);
            eprintln!(
                "airlock: {}:{line}:{column}: {} left as is: {}",
                escape(&s.name),
                escape(&skip.image),
                escape(&skip.reason)
            );
        }
        // Said with the diff too, not only with --write: the diff is where the choice is reviewed.
        for note in &plan.notes {
            let (line, column) = index.position(note.span.start);
            eprintln!(
                "airlock: {}:{line}:{column}: note: {}: {}",
                escape(&s.name),
                escape(&note.image),
                escape(&note.message)
            );
        }
        if plan.edits.is_empty() {
            continue;
        }
        let new = rewrite::apply(&s.text, &plan.edits);
        rewrite::verify(&s.name, &s.text, &new, &plan, &opts)
            .with_context(|| format!("{}: refusing to rewrite", s.name))?;
        changed += 1;
        if args.write {
            let Input::File(path) = &s.input else {
                bail!("--write cannot edit standard input")
            };
            // One file that cannot be written does not stop the others.
            let written = write_in_place(
                path,
                s.text.as_bytes(),
                new.as_bytes(),
                args.split_hard_links,
                args.read.max_file_size,
            );
            match written {
                Ok(w) => {
                    let target = w
                        .target
                        .map(|t| format!(" -> {}", escape(&t.display().to_string())))
                        .unwrap_or_default();
                    let setid = if w.cleared_setid {
                        "; setuid/setgid bits cleared"
                    } else {
                        ""
                    };
                    writeln!(
                        out,
                        "rewrote {}{target} ({}{setid})",
                        escape(&s.name),
                        crate::output::count(plan.edits.len() as u64, "edit", "edits")
                    )?
                }
                Err(e) => {
                    eprintln!("airlock: {}", escape(&crate::output::error_chain(&e)));
                    bad_input = true;
                }
            }
        } else if !args.check {
            let diff = similar::TextDiff::from_lines(s.text.as_str(), new.as_str());
            let name = escape(&s.name);
            let diff = diff
                .unified_diff()
                .header(&format!("a/{name}"), &format!("b/{name}"))
                .to_string();
            // Piped, the diff stays byte-exact for `patch`/`git apply`; on a terminal the file's
            // own lines are escaped like every other value.
            if terminal {
                write!(out, "{}", escape_lines(&diff))?;
            } else {
                write!(out, "{diff}")?;
            }
        }
    }
    out.flush()?;
    if args.check && changed > 0 {
        eprintln!(
            "airlock: {} would change",
            crate::output::count(changed as u64, "file", "files")
        );
        return Ok(Exit::Violations);
    }
    Ok(if bad_input { Exit::BadInput } else { Exit::Ok })
}

/// What `--write` did to one file, for the line that reports it.
struct Written {
    /// The file edited, when the path named a symbolic link to it.
    target: Option<PathBuf>,
    cleared_setid: bool,
}

/// Replace a file's contents without ever leaving it half-written and without losing a
/// concurrent write: the new bytes go to a temporary file beside the original, which is renamed
/// over it only if the original is still exactly what was scanned. A symbolic link's target is
/// edited; a file with other hard links is refused unless `split_hard_links` (a rename gives this
/// name new contents and leaves the others with the old ones).
fn write_in_place(
    path: &Path,
    original: &[u8],
    new: &[u8],
    split_hard_links: bool,
    limit: ByteSize,
) -> anyhow::Result<Written> {
    let real = crate::fsutil::resolve_link(path)?;
    let target = (real != path).then(|| real.clone());
    let shown = path.display();
    let file = std::fs::File::open(&real).with_context(|| format!("cannot read {shown}"))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {shown}"))?;
    if !meta.is_file() {
        bail!("{shown} is not a regular file; not changed");
    }
    if meta.permissions().readonly() {
        bail!("{shown} is read-only; not changed");
    }
    if meta.nlink() > 1 && !split_hard_links {
        bail!(
            "{shown} has {} hard links, which a rewrite would split (this name new, the others \
             old); not changed (pass --split-hard-links to rewrite this name only)",
            meta.nlink()
        );
    }
    let now = crate::fsutil::read_limited(file, Some(meta.len()), limit)
        .with_context(|| format!("cannot read {shown}"))?;
    if now != original {
        bail!("{shown} changed on disk since it was scanned; not changed (run again)");
    }
    let replaced = crate::fsutil::replace(&real, new, Some(&Snapshot::of(&meta)))?;
    Ok(Written {
        target,
        cleared_setid: replaced.cleared_setid,
    })
}
