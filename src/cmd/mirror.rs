//! `airlock mirror`: copy images registry to registry, no local copy, naming each with the
//! shared mapping.

use crate::cli::MirrorArgs;
use crate::cmd::transfer;
use crate::exit::Exit;

pub fn run(args: &MirrorArgs) -> anyhow::Result<Exit> {
    let mapping = args.config.load()?.mapping()?;
    let images = args.images.select()?;
    let client = args.registry.client(Some(mapping.target_host()))?;
    let transfer = args.transfer.transfer(args.registry.concurrency)?;
    let mut jobs = Vec::new();
    for i in &images {
        let target = mapping.map(&i.reference)?;
        let to = target.push_address();
        jobs.push((
            i.source(&client),
            oci_transfer::Endpoint::registry(
                &client,
                oci_client::Repo::from_reference(&target),
                Some(to),
            ),
        ));
    }
    crate::registry::runtime()?.block_on(async {
        let (exit, _) = transfer::run(&transfer, jobs, args.transfer.progress).await?;
        Ok(exit)
    })
}
