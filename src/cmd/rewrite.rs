//! `airlock rewrite`: point every image reference at the private registry by editing the bytes
//! of the values in place. Shows a unified diff by default; `--write` edits the files (temporary
//! file + rename, permissions kept); `--check` exits 1 when anything would change.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};

use crate::cli::RewriteArgs;
use crate::exit::Exit;
use crate::inputs::{self, Input};

pub fn run(args: &RewriteArgs) -> anyhow::Result<Exit> {
    let mapping = args.config.load()?.mapping()?;
    let opts = discover::Options {
        default_jnlp_image: args.jnlp_image.clone(),
    };
    let plan_opts = rewrite::PlanOptions {
        fix_implicit: args.fix_implicit,
        pins: match &args.pin {
            Some(lock) => crate::lockfile::Lockfile::read(lock, args.read.max_file_size)?.digests(),
            None => Default::default(),
        },
    };
    let (files, errors) = inputs::scan_all(&args.paths, &opts, args.read.max_file_size)?;
    for e in &errors {
        eprintln!(
            "airlock: {}:{}:{}: {} (file left unchanged)",
            e.file, e.line, e.column, e.message
        );
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
                s.name, skip.image, skip.reason
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
            match write_in_place(path, s.text.as_bytes(), new.as_bytes()) {
                Ok(()) => writeln!(out, "rewrote {} ({} edits)", s.name, plan.edits.len())?,
                Err(e) => {
                    eprintln!("airlock: {e:#}");
                    bad_input = true;
                }
            }
        } else if !args.check {
            let diff = similar::TextDiff::from_lines(s.text.as_str(), new.as_str());
            write!(
                out,
                "{}",
                diff.unified_diff()
                    .header(&format!("a/{}", s.name), &format!("b/{}", s.name))
            )?;
        }
    }
    out.flush()?;
    if args.check && changed > 0 {
        eprintln!("airlock: {changed} files would change");
        return Ok(Exit::Violations);
    }
    Ok(if bad_input { Exit::BadInput } else { Exit::Ok })
}

/// Replace a file's contents without ever leaving it half-written: the new bytes go to a
/// temporary file in the same directory, which is renamed over the original. Refuses when the
/// file changed since it was read or is read-only.
fn write_in_place(path: &Path, original: &[u8], new: &[u8]) -> anyhow::Result<()> {
    let shown = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {shown}"))?;
    if meta.permissions().readonly() {
        bail!("{shown} is read-only; not changed");
    }
    let now = std::fs::read(path).with_context(|| format!("cannot read {shown}"))?;
    if now != original {
        bail!("{shown} changed on disk since it was scanned; not changed (run again)");
    }
    crate::fsutil::write_atomic(path, new)
}
