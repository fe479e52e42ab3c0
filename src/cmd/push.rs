//! `airlock push`: load a layout directory or archive made by `pack` into a registry, naming
//! every image with the shared mapping (the same names `rewrite` writes into the configuration).
//! An archive is unpacked into a temporary work directory that is removed afterwards, so the
//! archive may sit on read-only media and nothing is left beside it.

use anyhow::Context;

use crate::cli::PushArgs;
use crate::cmd::{pack, transfer};
use crate::exit::Exit;

pub fn run(args: &PushArgs) -> anyhow::Result<Exit> {
    let mapping = args.config.load()?.mapping()?;
    let client = args.registry.client(Some(mapping.target_host()))?;
    let transfer = args.transfer.transfer(args.registry.concurrency)?;
    let source = &args.source;
    crate::registry::runtime()?.block_on(async {
        // Removed when the push ends, however it ends (short of a kill).
        let mut _unpacked = None;
        let layout = if pack::is_archive(source) {
            let base = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
            let tmp = tempfile::Builder::new()
                .prefix("airlock-push-")
                .tempdir_in(&base)
                .with_context(|| format!("cannot create a work directory in {}", base.display()))?;
            let layout = oci_store::read_archive(source, tmp.path().join("layout"))
                .await
                // The store's error names the file already.
                .context("cannot read the archive")?;
            _unpacked = Some(tmp);
            layout
        } else {
            oci_store::Layout::open(source)
                .await
                .with_context(|| format!("{} is not an OCI layout", source.display()))?
        };
        let index = layout.index().await?;
        let mut jobs = Vec::new();
        for name in index.manifests.iter().filter_map(|d| d.ref_name()) {
            let Ok(reference) = imgref::Reference::parse(name) else {
                eprintln!(
                    "airlock: skipped {name:?} in {}: not an image reference",
                    source.display()
                );
                continue;
            };
            let target = mapping.map(&reference)?;
            let to = target.push_address();
            let dst = oci_transfer::Endpoint::registry(
                &client,
                oci_client::Repo::from_reference(&target),
                Some(to),
            );
            jobs.push((oci_transfer::Endpoint::layout(&layout, Some(name)), dst));
        }
        anyhow::ensure!(
            !jobs.is_empty(),
            "{} names no images (index.json has no ref.name annotations)",
            source.display()
        );
        let (exit, _) = transfer::run(&transfer, jobs, args.transfer.progress).await?;
        Ok(exit)
    })
}
