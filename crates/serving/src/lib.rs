//! What every airlock server shares (`serve`, `webhook`): TLS from files or a generated CA with
//! reload on rotation ([`tls`]), request metrics in the Prometheus text format ([`metrics`]), the
//! access log (written by [`metrics`]), and serving a composed axum `Router` over plain TCP or TLS with graceful shutdown.
//! Nothing here knows what the server serves.

pub mod metrics;
pub mod tls;

use std::time::Duration;

use axum::Router;

/// The user a request was authenticated as; put in the request's and the response's extensions
/// by an authentication layer (the access log reads it from the response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser(pub String);

/// Put in a response's extensions when credentials were presented and refused, for the failed
/// login counter in [`metrics`].
#[derive(Debug, Clone, Copy)]
pub struct LoginFailed;

/// The TLS configuration [`serve_app`] takes (and [`tls`] builds), re-exported so callers need
/// no axum-server dependency of their own.
pub use axum_server::tls_rustls::RustlsConfig;

/// How [`serve_app_with`] treats slow clients and shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// A connection whose request head is not complete this long after the server starts
    /// waiting for it is closed: a client trickling headers (slowloris) or idling on a
    /// keep-alive connection cannot hold it forever.
    pub header_read_timeout: Duration,
    /// Once shutdown begins, requests in flight get this long to finish; then every connection
    /// is closed and [`serve_app_with`] returns. `None`: wait for them however long they take.
    pub shutdown_timeout: Option<Duration>,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            header_read_timeout: Duration::from_secs(30),
            shutdown_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// [`serve_app_with`] with the default [`ServeOptions`].
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app_with(listener, app, tls, shutdown, ServeOptions::default()).await
}

/// Serves a composed `app` (the registry with auth, metrics and access log as the caller
/// layered them) on `listener`, over TLS when `tls` is given, until `shutdown` completes; then
/// stops accepting, lets the requests in flight finish within `opts.shutdown_timeout`, and
/// returns. One server type for both, so plain HTTP gets the same header-read timeout and
/// shutdown deadline as TLS (`axum::serve` offers neither).
pub async fn serve_app_with(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    opts: ServeOptions,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            handle.graceful_shutdown(opts.shutdown_timeout);
        })
    };
    let listener = listener.into_std()?;
    let service = app.into_make_service();
    let result = match tls {
        None => {
            let mut server = axum_server::from_tcp(listener)?.handle(handle);
            slow_client_limits(server.http_builder(), &opts);
            server.serve(service).await
        }
        Some(tls) => {
            let mut server = axum_server::from_tcp_rustls(listener, tls)?.handle(handle);
            slow_client_limits(server.http_builder(), &opts);
            server.serve(service).await
        }
    };
    stopper.abort();
    result
}

fn slow_client_limits(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    opts: &ServeOptions,
) {
    // hyper enforces the header timeout only with a timer to measure it.
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout);
}
