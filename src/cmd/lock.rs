//! `airlock lock`: resolve every image reference — found in configuration or listed in a file —
//! to the digest of its manifest or index (and each platform's manifest) in `airlock.lock`.

use std::collections::BTreeSet;

use crate::cli::LockArgs;
use crate::exit::Exit;
use crate::inputs;
use crate::lockfile::{Locked, LockedPlatform, Lockfile};

pub fn run(args: &LockArgs) -> anyhow::Result<Exit> {
    let refs = inputs::references(&args.paths, args.list.as_deref(), &args.read)?;
    let client = args.registry.client(None)?;
    let resolved = crate::registry::runtime()?.block_on(resolve_all(&client, &refs));

    let mut lock = if args.output.exists() {
        Lockfile::read(&args.output, args.read.max_file_size)?
    } else {
        Lockfile::default()
    };
    lock.version = 1;
    let mut failed = Vec::new();
    let mut entries = Vec::new();
    for (r, result) in refs.iter().zip(resolved) {
        match result {
            Ok(entry) => entries.push(entry),
            // The previous entry, if any, stays: a failed lookup must not unpin an image.
            Err(e) => failed.push(format!("{r}: {}", crate::output::error_chain(&e))),
        }
    }
    let count = entries.len();
    lock.merge(entries);
    lock.write(&args.output)?;
    eprintln!(
        "airlock: locked {count} of {} in {}",
        crate::output::count(refs.len() as u64, "image", "images"),
        args.output.display()
    );
    for f in &failed {
        eprintln!("airlock: failed: {}", crate::output::escape(f));
    }
    Ok(if failed.is_empty() {
        Exit::Ok
    } else {
        Exit::Registry
    })
}

async fn resolve_all(
    client: &oci_client::Client,
    refs: &BTreeSet<imgref::Reference>,
) -> Vec<anyhow::Result<Locked>> {
    let tasks: Vec<_> = refs
        .iter()
        .map(|r| {
            let (client, r) = (client.clone(), r.clone());
            tokio::spawn(async move { resolve(&client, &r).await })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(
            t.await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("lookup task failed: {e}"))),
        );
    }
    out
}

/// One reference: its manifest or index digest, and for an index every platform's manifest.
async fn resolve(client: &oci_client::Client, r: &imgref::Reference) -> anyhow::Result<Locked> {
    let resolved = oci_transfer::resolve(
        client,
        &oci_client::Repo::from_reference(r),
        r.pull_address(),
    )
    .await?;
    let platforms = resolved
        .platforms
        .iter()
        .filter_map(|(p, d)| {
            Some(LockedPlatform {
                platform: p.as_ref()?.to_string(),
                digest: d.to_string(),
            })
        })
        .collect();
    Ok(Locked {
        image: r.to_string(),
        digest: resolved.digest.to_string(),
        media_type: resolved.media_type,
        platforms,
    })
}
