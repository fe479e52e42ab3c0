//! `airlock serve gc`: the blobs of a store that no manifest references — listed (the default)
//! or removed with `--delete`.
//!
//! Marking walks every manifest `index.json` records with [`oci::manifest::walk`] (the walk the
//! copy engine trusts: index children, configs and layers, depth and size bounds), plus the
//! subjects of referrers. A manifest that cannot be read or does not hash to its digest stops
//! the collection before anything is removed: blobs it would reference cannot be known.
//!
//! Concurrency: every process that opens the store (`airlock serve`, push, pack) holds a shared
//! lock on `blobs/sha256`. `--delete` takes it exclusively without waiting, so it refuses to run
//! beside a live server (whose half-pushed images have blobs no manifest names yet), and a
//! server started meanwhile waits until the collection is done. Each removal is one `unlink`, so
//! a crash part-way leaves only fewer orphans removed.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use oci::manifest::{Descriptor, IndexDocument, MAX_MANIFEST_BYTES, Parsed, walk};
use oci::{Digest, Error};

use crate::cli::GcArgs;
use crate::exit::Exit;
use crate::fsutil::ByteSize;

pub fn run(args: &GcArgs) -> anyhow::Result<Exit> {
    let root = &args.store;
    if !root.join("oci-layout").is_file() {
        bail!("{}: not a store (no oci-layout file)", root.display());
    }
    let lock_path = root.join("blobs/sha256");
    let lock = std::fs::File::open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) if args.delete => bail!(
            "{}: in use by another process (a running `airlock serve`, push or pack); stop it and run again. Nothing deleted",
            root.display()
        ),
        Err(std::fs::TryLockError::WouldBlock) => eprintln!(
            "airlock serve gc: {} is in use by another process: what is unreferenced may change before a --delete",
            root.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()));
        }
    }
    let referenced = referenced(root)?;
    let orphans = unreferenced(root, &referenced)?;
    let total: u64 = orphans.iter().map(|o| o.size).sum();
    for o in &orphans {
        println!("{}\t{}", o.digest, o.size);
    }
    let summary = format!(
        "{}, {} ({})",
        crate::output::count(
            orphans.len() as u64,
            "unreferenced blob",
            "unreferenced blobs"
        ),
        crate::output::count(total, "byte", "bytes"),
        ByteSize(total),
    );
    if !args.delete {
        eprintln!(
            "airlock serve gc: {summary} in {}; dry run, nothing deleted (--delete removes them)",
            root.display()
        );
        return Ok(Exit::Ok);
    }
    for o in &orphans {
        match std::fs::remove_file(&o.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", o.path.display())),
        }
    }
    eprintln!(
        "airlock serve gc: deleted {summary} from {}",
        root.display()
    );
    Ok(Exit::Ok)
}

struct Orphan {
    digest: Digest,
    size: u64,
    path: PathBuf,
}

fn blob_path(root: &Path, digest: &Digest) -> PathBuf {
    root.join("blobs")
        .join(digest.algorithm())
        .join(digest.hex())
}

/// Every digest the manifests of `index.json` reach, the manifests themselves included.
fn referenced(root: &Path) -> anyhow::Result<HashSet<Digest>> {
    let index_path = root.join("index.json");
    let bytes = crate::fsutil::read_file_limited(&index_path, ByteSize(MAX_MANIFEST_BYTES as u64))
        .with_context(|| format!("cannot read {}", index_path.display()))?;
    let index = IndexDocument::parse(&index_path.display().to_string(), &bytes)?;
    let mut marked = HashSet::new();
    let mut subjects: Vec<Descriptor> = Vec::new();
    let mut fetch = |d: &Descriptor| read_noting_subject(root, d, &mut subjects);
    for d in &index.manifests {
        let name = d.ref_name().unwrap_or(d.digest.as_str()).to_string();
        let walked = walk(&name, d, &mut fetch)
            .with_context(|| format!("{}: cannot walk {name}; nothing deleted", root.display()))?;
        marked.extend(walked.manifests);
        marked.extend(walked.blobs);
    }
    // A referrer's subject is kept with it; an absent subject is allowed by the spec.
    while let Some(s) = subjects.pop() {
        if marked.contains(&s.digest) || !blob_path(root, &s.digest).is_file() {
            marked.insert(s.digest.clone());
            continue;
        }
        let mut found = Vec::new();
        let walked = walk(s.digest.as_str(), &s, &mut |d: &Descriptor| {
            read_noting_subject(root, d, &mut found)
        })
        .with_context(|| {
            format!(
                "{}: cannot walk subject {}; nothing deleted",
                root.display(),
                s.digest
            )
        })?;
        marked.extend(walked.manifests);
        marked.extend(walked.blobs);
        subjects.extend(found);
    }
    Ok(marked)
}

/// [`read_manifest`], noting the manifest's subject (when it is a referrer) in `subjects`: a
/// referrer keeps its subject.
fn read_noting_subject(
    root: &Path,
    d: &Descriptor,
    subjects: &mut Vec<Descriptor>,
) -> Result<Vec<u8>, Error> {
    let bytes = read_manifest(root, d)?;
    if let Ok((
        _,
        Parsed::Image {
            subject: Some(s), ..
        },
    )) = Parsed::parse(d.digest.as_str(), &d.media_type, &bytes)
    {
        subjects.push(s);
    }
    Ok(bytes)
}

/// A manifest's bytes, verified against its digest (a corrupt manifest would hide what it
/// references).
fn read_manifest(root: &Path, d: &Descriptor) -> Result<Vec<u8>, Error> {
    let path = blob_path(root, &d.digest);
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| {
            f.take(MAX_MANIFEST_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(|e| Error::io(&path, e))?;
    let mut h = oci::digest::Hasher::for_digest(&d.digest);
    h.update(&bytes);
    let got = h.finish();
    if got != d.digest {
        return Err(Error::InvalidManifest {
            image: path.display().to_string(),
            reason: format!("content hashes to {got}, not {}", d.digest),
        });
    }
    Ok(bytes)
}

/// The blob files of `root` whose digest is not in `referenced` (hidden partial uploads are
/// not blobs: the server and `Layout::create` clean those).
fn unreferenced(root: &Path, referenced: &HashSet<Digest>) -> anyhow::Result<Vec<Orphan>> {
    let mut out = Vec::new();
    for alg in ["sha256", "sha512"] {
        let dir = root.join("blobs").join(alg);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|n| !n.starts_with('.')) else {
                continue;
            };
            let Ok(digest) = Digest::parse(&format!("{alg}:{name}")) else {
                continue;
            };
            let meta = entry
                .metadata()
                .with_context(|| format!("cannot stat {}", entry.path().display()))?;
            if !meta.is_file() || referenced.contains(&digest) {
                continue;
            }
            out.push(Orphan {
                digest,
                size: meta.len(),
                path: entry.path(),
            });
        }
    }
    out.sort_by(|a, b| a.digest.as_str().cmp(b.digest.as_str()));
    Ok(out)
}
