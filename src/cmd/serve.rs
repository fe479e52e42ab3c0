//! `airlock serve`: the registry inside the air gap. A layout directory is served read-only in
//! place (opened, never copied or written); `--store DIR` is a read-write store that `push`,
//! skopeo or CI fill. The HTTP side is [`oci_registry::app`]; this verb binds, logs and stops
//! cleanly: on SIGINT or SIGTERM it stops accepting and finishes the requests in flight.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::cli::ServeArgs;
use crate::exit::Exit;

pub fn run(args: &ServeArgs) -> anyhow::Result<Exit> {
    crate::registry::runtime()?.block_on(serve(args))
}

async fn serve(args: &ServeArgs) -> anyhow::Result<Exit> {
    let (layout, read_only, what) = match (&args.layout, &args.store) {
        (Some(dir), None) => {
            if crate::cmd::pack::is_archive(dir) {
                anyhow::bail!(
                    "{}: serving an archive is not supported yet; unpack it with `airlock pack` to a directory, or `airlock push` it into `airlock serve --store DIR`",
                    dir.display()
                );
            }
            let layout = oci_store::Layout::open(dir)
                .await
                .with_context(|| format!("{} is not an OCI layout", dir.display()))?;
            (layout, true, dir)
        }
        (None, Some(dir)) => {
            let layout = oci_store::Layout::create(dir)
                .await
                .with_context(|| format!("cannot use {} as a store", dir.display()))?;
            (layout, args.read_only, dir)
        }
        _ => anyhow::bail!("give a LAYOUT to serve read-only, or --store DIR"),
    };
    let registry = Arc::new(
        oci_registry::Registry::new(layout)
            .read_only(read_only)
            .upload_ttl(Duration::from_secs(args.upload_ttl)),
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "airlock serve: listening on http://{addr} ({}, {})",
        what.display(),
        if read_only { "read-only" } else { "read-write" }
    );
    // Abandoned uploads expire even when nobody starts a new one.
    let sweeper = {
        let registry = registry.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                registry.expire_uploads();
            }
        })
    };
    oci_registry::serve(listener, registry, shutdown_signal())
        .await
        .context("server failed")?;
    sweeper.abort();
    eprintln!("airlock serve: stopped");
    Ok(Exit::Ok)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without handlers the default action (exit) still stops the server.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("airlock serve: shutting down, finishing requests in flight");
}
