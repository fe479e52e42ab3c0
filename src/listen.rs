//! What the verbs that listen (`serve`, `webhook`) share: the TLS flags turned into a server
//! configuration (files reloaded on rotation, or a generated CA), and the shutdown signal.

use std::time::Duration;

use serving::{RustlsConfig, tls};

use crate::cli::TlsArgs;

/// How often rotated certificate files are looked for (a Secret volume is updated in place by
/// the kubelet, about a minute after the Secret changes).
const TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// TLS for a server: none when no TLS flag is given; from `--tls-cert/--tls-key` (with the
/// task that reloads them when they change), or generated into `--tls-dir` for the listen
/// address and `--tls-san` names, its CA announced on stderr as `airlock VERB`.
pub fn server_tls(
    args: &TlsArgs,
    verb: &str,
    listen: std::net::SocketAddr,
) -> anyhow::Result<Option<(RustlsConfig, Option<tokio::task::JoinHandle<()>>)>> {
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let config = RustlsConfig::from_config(tls::load_server_config(cert, key)?);
        let reloader = tls::spawn_reloader(
            config.clone(),
            cert.clone(),
            key.clone(),
            TLS_RELOAD_INTERVAL,
        );
        return Ok(Some((config, Some(reloader))));
    }
    let Some(dir) = &args.tls_dir else {
        return Ok(None);
    };
    let s = tls::self_signed(dir, &listen.ip().to_string(), &args.tls_san)?;
    eprintln!(
        "airlock {verb}: TLS CA {} ({}), SHA-256 fingerprint {}",
        s.ca_cert.display(),
        if s.ca_reused { "reused" } else { "new" },
        s.ca_fingerprint
    );
    eprintln!(
        "airlock {verb}: server certificate {} for {}",
        s.server_cert.display(),
        s.sans.join(", ")
    );
    Ok(Some((RustlsConfig::from_config(s.config), None)))
}

/// Completes on SIGINT or SIGTERM, saying so as `airlock VERB`.
pub async fn shutdown_signal(verb: &'static str) {
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
    eprintln!("airlock {verb}: shutting down, finishing requests in flight");
}
