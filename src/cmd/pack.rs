//! `airlock pack`: pull images into an OCI image layout, or an archive of one, to carry across
//! the air gap. The layout is built beside the output (never in /tmp) and kept when a run fails,
//! so running again resumes where it stopped.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::PackArgs;
use crate::cmd::transfer;
use crate::exit::Exit;

pub fn run(args: &PackArgs) -> anyhow::Result<Exit> {
    let images = args.images.select()?;
    let client = args.registry.client(None)?;
    let transfer = args.transfer.transfer(args.registry.concurrency)?;
    let is_archive = is_archive(&args.output);
    let layout_dir = if is_archive {
        staging_dir(&args.output)
    } else {
        args.output.clone()
    };
    crate::registry::runtime()?.block_on(async {
        let layout = open_or_create(&layout_dir).await?;
        let jobs = images
            .iter()
            .map(|i| {
                (
                    i.source(&client),
                    oci::Endpoint::layout(&layout, Some(&i.name())),
                )
            })
            .collect();
        let (exit, _) = transfer::run(&transfer, jobs, args.transfer.progress).await?;
        if is_archive && exit == Exit::Ok {
            let size = oci::write_archive(
                &layout,
                &args.output,
                oci::Compression::from_path(&args.output),
            )
            .await
            .with_context(|| format!("cannot write {}", args.output.display()))?;
            tokio::fs::remove_dir_all(&layout_dir).await.ok();
            eprintln!("airlock: wrote {} ({size} bytes)", args.output.display());
        } else if is_archive {
            eprintln!(
                "airlock: {} not written; run again to resume from {}",
                args.output.display(),
                layout_dir.display()
            );
        }
        Ok(exit)
    })
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

async fn open_or_create(dir: &Path) -> anyhow::Result<oci::Layout> {
    let layout = if dir.join("oci-layout").exists() {
        oci::Layout::open(dir).await
    } else {
        oci::Layout::create(dir).await
    };
    layout.with_context(|| format!("cannot use {} as an OCI layout", dir.display()))
}
