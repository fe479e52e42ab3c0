//! `airlock pack`: pull images into an OCI image layout, or an archive of one, to carry across
//! the air gap. The layout is built beside the output (never in /tmp) and kept when a run fails,
//! so running again resumes where it stopped; an existing one is reused only when it is a real
//! directory of ours (see [`check_staging_dir`]).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::PackArgs;
use crate::cmd::transfer;
use crate::exit::Exit;

pub fn run(args: &PackArgs) -> anyhow::Result<Exit> {
    let images = args.images.select()?;
    let client = args.registry.client(None)?;
    let transfer = args.transfer.transfer(args.registry.concurrency)?;
    // Built first: a binary that cannot be imaged fails the run before anything is pulled.
    let airlock = if args.include_self {
        let exe = match &args.self_binary {
            Some(path) => path.clone(),
            None => crate::selfimage::current_exe()?,
        };
        Some(crate::selfimage::SelfImage::build(
            &crate::selfimage::default_name(),
            &[exe],
        )?)
    } else {
        None
    };
    let output = Output::prepare(&args.output)?;
    crate::registry::runtime()?.block_on(async {
        let layout = output.open().await?;
        if let Some(airlock) = &airlock {
            let desc = airlock.add_to(&layout).await?;
            eprintln!(
                "airlock: {}@{} (airlock itself)",
                airlock.name(),
                desc.digest
            );
        }
        let jobs = images
            .iter()
            .map(|i| {
                (
                    i.source(&client),
                    oci_transfer::Endpoint::layout(&layout, Some(&i.name())),
                )
            })
            .collect();
        let (exit, _) = transfer::run(&transfer, jobs, args.transfer.progress).await?;
        output.finish(&layout, exit == Exit::Ok).await?;
        Ok(exit)
    })
}

/// Where a verb that writes images puts them: the layout directory `-o` names, or, for an
/// archive, a staging layout beside it that becomes the archive once the run succeeds.
pub struct Output {
    output: PathBuf,
    layout_dir: PathBuf,
    is_archive: bool,
}

impl Output {
    /// Checks the staging layout of an archive (see [`check_staging_dir`]).
    pub fn prepare(output: &Path) -> anyhow::Result<Output> {
        let is_archive = is_archive(output);
        let layout_dir = if is_archive {
            staging_dir(output)
        } else {
            output.to_path_buf()
        };
        if is_archive {
            check_staging_dir(&layout_dir)?;
        }
        Ok(Output {
            output: output.to_path_buf(),
            layout_dir,
            is_archive,
        })
    }

    /// The layout to write into (created when absent, resumed when present).
    pub async fn open(&self) -> anyhow::Result<oci_store::Layout> {
        open_or_create(&self.layout_dir).await
    }

    /// For an archive: after a run that succeeded, writes it and removes the staging layout;
    /// after one that failed, keeps the staging layout for the next run to resume.
    pub async fn finish(&self, layout: &oci_store::Layout, ok: bool) -> anyhow::Result<()> {
        if !self.is_archive {
            return Ok(());
        }
        let out = &self.output;
        if !ok {
            eprintln!(
                "airlock: {} not written; run again to resume from {}",
                out.display(),
                self.layout_dir.display()
            );
            return Ok(());
        }
        let size = oci_store::write_archive(layout, out, oci_store::Compression::from_path(out))
            .await
            .with_context(|| format!("cannot write {}", out.display()))?;
        tokio::fs::remove_dir_all(&self.layout_dir).await.ok();
        eprintln!("airlock: wrote {} ({size} bytes)", out.display());
        Ok(())
    }
}

pub fn is_archive(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    [".tar", ".tar.zst", ".tar.gz", ".tgz"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Where an archive's layout is assembled (or unpacked): beside it, hidden.
pub fn staging_dir(archive: &Path) -> PathBuf {
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    archive.with_file_name(format!(".{name}.layout"))
}

/// Makes sure the staging layout of an archive is ours before anything is written into it: it
/// sits at a predictable name beside the archive, so anyone who can write that directory (say
/// `/tmp`) could have planted a symlink or a directory of their own there. Absent, it is created
/// (private to us); present, it must be a real directory owned by us — then it is a run of ours
/// that was interrupted, and is resumed.
fn check_staging_dir(dir: &Path) -> anyhow::Result<()> {
    let shown = dir.display();
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            // Not recursive: fails if someone created the name meanwhile.
            return b
                .create(dir)
                .with_context(|| format!("cannot create the staging directory {shown}"));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {shown}")),
    };
    anyhow::ensure!(
        meta.file_type().is_dir(),
        "{shown} exists and is not a directory (a symlink?); refusing to use it as the staging \
         layout. Remove it and run again"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Our own uid, as the owner of a file we create (std has no getuid).
        let me = tempfile::tempfile_in(parent)
            .and_then(|f| f.metadata())
            .with_context(|| format!("cannot create a file in {}", parent.display()))?
            .uid();
        anyhow::ensure!(
            meta.uid() == me,
            "{shown} is owned by uid {}, not by us (uid {me}); refusing to use it as the \
             staging layout. Remove it and run again",
            meta.uid()
        );
    }
    Ok(())
}

async fn open_or_create(dir: &Path) -> anyhow::Result<oci_store::Layout> {
    let layout = if dir.join("oci-layout").exists() {
        oci_store::Layout::open(dir).await
    } else {
        oci_store::Layout::create(dir).await
    };
    layout.with_context(|| format!("cannot use {} as an OCI layout", dir.display()))
}
