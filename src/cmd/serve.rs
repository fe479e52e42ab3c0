//! `airlock serve`: the registry inside the air gap. A `.tar` archive is served read-only in
//! place (blobs read at their offsets), a compressed archive is unpacked once into `--store`, a
//! layout directory is served read-only in place (opened, never copied or written); `--store DIR`
//! alone is a read-write store that `push`, skopeo or CI fill. The HTTP side is
//! [`oci_registry::app`] with TLS, htpasswd auth and `/metrics` layered on; this verb binds, logs
//! and stops cleanly: on SIGINT or SIGTERM it stops accepting and gives the requests in flight
//! `--shutdown-timeout` to finish; a client slower than `--header-read-timeout` to send its
//! request head is disconnected.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use oci_registry::auth;
use oci_store::Store;

use crate::cli::ServeArgs;
use crate::exit::Exit;

mod gc;
mod names;

pub fn run(args: &ServeArgs) -> anyhow::Result<Exit> {
    if let Some(crate::cli::ServeCommand::Gc(gc)) = &args.command {
        return gc::run(gc);
    }
    if let Some(runtime) = &args.print_node_config {
        return print_node_config(args, runtime);
    }
    crate::registry::runtime()?.block_on(serve(args))
}

fn print_node_config(args: &ServeArgs, runtime: &str) -> anyhow::Result<Exit> {
    use crate::nodeconfig::{NodeOptions, Trust};
    let mapping = args.config.load()?.mapping()?;
    let trust = if args.tls.tls_dir.is_some() {
        Trust::Ca { node_path: None }
    } else if args.tls.tls_cert.is_some() {
        Trust::System
    } else {
        Trust::Http
    };
    let script = crate::nodeconfig::node_config(
        runtime.parse()?,
        &NodeOptions {
            mapping: &mapping,
            trust,
            public_hosts: vec![],
            username: None,
        },
    )?;
    print!("{script}");
    Ok(Exit::Ok)
}

async fn serve(args: &ServeArgs) -> anyhow::Result<Exit> {
    match (&args.layout, &args.store) {
        (Some(src), None) if crate::cmd::pack::is_archive(src) => {
            if args.read_write {
                anyhow::bail!(
                    "{}: an archive is served read-only in place; give --store DIR to unpack it into a store that accepts pushes",
                    src.display()
                );
            }
            let path = src.clone();
            let archive = tokio::task::spawn_blocking(move || oci_store::TarArchive::open(path))
                .await?
                .with_context(|| {
                    format!(
                        "cannot serve {} in place (a compressed archive needs --store DIR to be unpacked into)",
                        src.display()
                    )
                })?;
            let index = archive.index().clone();
            run_registry(args, archive, &index, true, &src.display().to_string()).await
        }
        (Some(src), Some(dir)) if crate::cmd::pack::is_archive(src) => {
            let layout = unpack(src, dir).await?;
            let what = format!("{} unpacked into {}", src.display(), dir.display());
            let read_only = args.read_only || !args.read_write;
            let index = layout.index().await?;
            run_registry(args, layout, &index, read_only, &what).await
        }
        (Some(dir), None) => {
            let layout = oci_store::Layout::open(dir)
                .await
                .with_context(|| format!("{} is not an OCI layout", dir.display()))?;
            let index = layout.index().await?;
            run_registry(args, layout, &index, true, &dir.display().to_string()).await
        }
        (None, Some(dir)) => {
            let layout = oci_store::Layout::create(dir)
                .await
                .with_context(|| format!("cannot use {} as a store", dir.display()))?;
            let index = layout.index().await?;
            let what = dir.display().to_string();
            run_registry(args, layout, &index, args.read_only, &what).await
        }
        (Some(dir), Some(_)) => anyhow::bail!(
            "{}: a layout directory is served in place; give it alone, or --store DIR alone",
            dir.display()
        ),
        (None, None) => {
            anyhow::bail!("give an ARCHIVE or LAYOUT to serve read-only, or --store DIR")
        }
    }
}

/// Unpacks `archive` into the layout `dir` with a progress line on stderr (blobs already in
/// `dir` are verified and skipped, so a restart does not copy them again).
async fn unpack(archive: &Path, dir: &Path) -> anyhow::Result<oci_store::Layout> {
    let name = archive.display().to_string();
    let start = Instant::now();
    let mut last = Instant::now() - Duration::from_secs(1);
    let label = name.clone();
    let layout = oci_store::read_archive_with_progress(archive, dir, move |done, total| {
        // A few lines a second at most: the callback runs on every read of the file.
        if last.elapsed() >= Duration::from_millis(250) || done == total {
            last = Instant::now();
            let pct = (done * 100).checked_div(total).unwrap_or(100);
            eprint!(
                "\rairlock serve: loading {label}: {} / {} MiB ({pct}%)",
                done >> 20,
                total >> 20
            );
        }
    })
    .await
    .with_context(|| format!("cannot unpack {name} into {}", dir.display()))?;
    eprintln!(
        "\nairlock serve: loaded {name} into {} in {:.1} s",
        dir.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(layout)
}

/// Serves `store` (whose `index.json` is `index`) under the shared Mapping's names when a
/// target registry is configured (`--registry` or the configuration file, as for `rewrite`),
/// else under the names the store records.
async fn run_registry<S: Store + 'static>(
    args: &ServeArgs,
    store: S,
    index: &oci::manifest::IndexDocument,
    read_only: bool,
    what: &str,
) -> anyhow::Result<Exit> {
    let settings = args.config.load()?;
    if settings.config.registry.is_none() {
        return run_app(args, store, read_only, what).await;
    }
    let mapping = settings.mapping()?;
    let (mapped, served) = names::Mapped::new(store, index, &mapping)?;
    for s in &served {
        eprintln!("airlock serve: {} as {}", s.public, s.served);
    }
    eprintln!(
        "airlock serve: {} of {what} under the names of {}",
        crate::output::count(served.len() as u64, "image", "images"),
        mapping.target()
    );
    run_app(args, mapped, read_only, what).await
}

async fn run_app<S: Store + 'static>(
    args: &ServeArgs,
    store: S,
    read_only: bool,
    what: &str,
) -> anyhow::Result<Exit> {
    let registry = Arc::new(
        oci_registry::Registry::new(store)
            .read_only(read_only)
            .upload_ttl(Duration::from_secs(args.upload_ttl)),
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;

    let (tls_config, reloader) = match crate::listen::server_tls(&args.tls, "serve", args.listen)? {
        Some((config, reloader)) => (Some(config), reloader),
        None => (None, None),
    };
    let https = tls_config.is_some();

    let mut app = oci_registry::app(registry.clone());
    let authenticated = args.htpasswd_read.is_some() || args.htpasswd_write.is_some();
    if authenticated {
        let opts = auth::AuthOptions {
            https,
            anonymous_read: args.anonymous_read,
            ..auth::AuthOptions::default()
        };
        let (r, w) = (args.htpasswd_read.clone(), args.htpasswd_write.clone());
        let auth = tokio::task::spawn_blocking(move || {
            auth::Auth::from_files(r.as_deref(), w.as_deref(), opts)
        })
        .await??;
        app = auth::protect(app, Arc::new(auth));
    } else if args.anonymous_read {
        anyhow::bail!("--anonymous-read needs --htpasswd-write or --htpasswd-read");
    }
    // Outermost, so refused requests are counted and logged too (one access line each, on
    // stderr); /metrics needs no credentials.
    let app = serving::metrics::instrument(app, Arc::new(oci_registry::metrics()));

    eprintln!(
        "airlock serve: listening on {}://{addr} ({what}, {}{})",
        if https { "https" } else { "http" },
        if read_only { "read-only" } else { "read-write" },
        if authenticated { ", htpasswd" } else { "" },
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
    let opts = serving::ServeOptions {
        header_read_timeout: Duration::from_secs(args.header_read_timeout),
        shutdown_timeout: Some(Duration::from_secs(args.shutdown_timeout)),
    };
    serving::serve_app_with(
        listener,
        app,
        tls_config,
        crate::listen::shutdown_signal("serve"),
        opts,
    )
    .await
    .context("server failed")?;
    sweeper.abort();
    if let Some(r) = reloader {
        r.abort();
    }
    eprintln!("airlock serve: stopped");
    Ok(Exit::Ok)
}
