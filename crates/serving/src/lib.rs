//! What every airlock server shares (`serve`, `webhook`): TLS from files or a generated CA with
//! reload on rotation ([`tls`]), request metrics in the Prometheus text format ([`metrics`]), the
//! access log (written by [`metrics`]), and serving a composed axum `Router` over plain TCP or TLS with graceful shutdown.
//! Nothing here knows what the server serves.

pub mod metrics;
pub mod tls;

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

/// Serves a composed `app` (the registry with auth, metrics, access log as the caller layered
/// them) on `listener`, over TLS when `tls` is given, until `shutdown` completes; then stops
/// accepting and returns once the requests in flight are finished, with or without TLS.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(tls) = tls else {
        return axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
    };
    let handle = axum_server::Handle::new();
    let stopper = {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            // No deadline: like the plain server, wait for every request in flight.
            handle.graceful_shutdown(None);
        })
    };
    let result = axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .handle(handle)
        .serve(app.into_make_service())
        .await;
    stopper.abort();
    result
}
