//! The OCI distribution registry server behind `airlock serve`: HTTP handlers over the
//! [`oci_store`] store. Must not depend on an HTTP client (reqwest), discovery or policy.
//!
//! [`app`] is the whole OCI distribution spec v1.1 surface as an axum [`Router`], generic over
//! any [`Store`] (a layout directory read-write or read-only in place; a tar archive read in
//! place plugs in the same way). Nothing becomes visible before it is verified: blobs and
//! manifests go through the store's verified puts (temporary file, hash, rename), so a wrong
//! digest, a disconnect or a crash leaves nothing under a digest's name.

pub mod auth;
mod blobs;
mod error;
mod listing;
mod manifests;
mod names;
pub mod routes;
mod uploads;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oci::Digest;
use oci_store::{Store, Upload};

pub use error::ApiError;
use names::{Route, valid_name};

use blobs::{delete_blob, get_blob};
use listing::{catalog, tags};
use manifests::{delete_manifest, get_manifest, put_manifest, referrers};
use uploads::{cancel_upload, finish_upload, patch_upload, start_upload, upload_status};

/// Default lifetime of an upload session nobody touches: after it, its bytes are removed.
pub const DEFAULT_UPLOAD_TTL: Duration = Duration::from_secs(3600);
/// Default cap on upload sessions open at once (each holds a file until it ends or expires).
pub const DEFAULT_MAX_UPLOADS: usize = 1024;

/// The registry: a store and the upload sessions in flight.
pub struct Registry<S> {
    store: S,
    read_only: bool,
    upload_ttl: Duration,
    max_uploads: usize,
    uploads: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Session>>>>,
}

struct Session {
    repository: String,
    upload: Option<Upload>,
    touched: Instant,
}

impl<S: Store> Registry<S> {
    /// A read-write registry over `store`.
    pub fn new(store: S) -> Registry<S> {
        Registry {
            store,
            read_only: false,
            upload_ttl: DEFAULT_UPLOAD_TTL,
            max_uploads: DEFAULT_MAX_UPLOADS,
            uploads: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Refuses every write (405 `UNSUPPORTED`) when `read_only`.
    pub fn read_only(mut self, read_only: bool) -> Registry<S> {
        self.read_only = read_only;
        self
    }

    /// How long an untouched upload session lives.
    pub fn upload_ttl(mut self, ttl: Duration) -> Registry<S> {
        self.upload_ttl = ttl;
        self
    }

    /// How many upload sessions may be open at once (more: 429 `TOOMANYREQUESTS`).
    pub fn max_uploads(mut self, n: usize) -> Registry<S> {
        self.max_uploads = n;
        self
    }

    /// The store served.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Upload sessions open now.
    pub fn open_uploads(&self) -> usize {
        self.sessions().len()
    }

    fn sessions(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<Session>>>> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops sessions untouched for longer than the TTL (their files go with them). A session
    /// busy with a request is never dropped from under it.
    pub fn expire_uploads(&self) {
        let ttl = self.upload_ttl;
        self.sessions().retain(|_, s| match s.try_lock() {
            Ok(s) => s.touched.elapsed() < ttl,
            Err(_) => true,
        });
    }
}

/// The registry as an axum [`Router`]: every `/v2/` route of the distribution spec.
pub fn app<S: Store + 'static>(registry: Arc<Registry<S>>) -> Router {
    Router::new().fallback(dispatch::<S>).with_state(registry)
}

/// Request metrics labelled with the registry's route classes ([`routes::classify`]).
pub fn metrics() -> serving::metrics::Metrics {
    serving::metrics::Metrics::new(|path| routes::classify(path).0.as_str())
}

type Result<T, E = ApiError> = std::result::Result<T, E>;

async fn dispatch<S: Store + 'static>(
    State(reg): State<Arc<Registry<S>>>,
    req: Request,
) -> Response {
    match handle(&reg, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle<S: Store>(reg: &Registry<S>, req: Request) -> Result<Response> {
    let Some(route) = names::route(req.uri().path()) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "not a registry path",
        ));
    };
    let method = req.method().clone();
    let write = matches!(
        method,
        Method::PUT | Method::POST | Method::PATCH | Method::DELETE
    );
    if write && reg.read_only {
        return Err(ApiError::read_only());
    }
    let name = match &route {
        Route::Base | Route::Catalog => None,
        Route::Tags(n)
        | Route::Manifest(n, _)
        | Route::Blob(n, _)
        | Route::Uploads(n)
        | Route::Upload(n, _)
        | Route::Referrers(n, _) => Some(n.clone()),
    };
    if let Some(n) = &name
        && !valid_name(n)
    {
        return Err(ApiError::name_invalid(n));
    }
    let query = query(&req);
    let head = method == Method::HEAD;
    match (route, method) {
        (Route::Base, Method::GET | Method::HEAD) => Ok(base()),
        (Route::Catalog, Method::GET) => catalog(reg, &query).await,
        (Route::Tags(n), Method::GET) => tags(reg, &n, &query).await,
        (Route::Manifest(n, r), Method::GET | Method::HEAD) => {
            get_manifest(reg, &n, &r, head).await
        }
        (Route::Manifest(n, r), Method::PUT) => put_manifest(reg, &n, &r, req).await,
        (Route::Manifest(n, r), Method::DELETE) => delete_manifest(reg, &n, &r).await,
        (Route::Blob(n, d), Method::GET | Method::HEAD) => {
            let range = req.headers().get(header::RANGE).cloned();
            get_blob(reg, &n, &d, range, head).await
        }
        (Route::Blob(_, d), Method::DELETE) => delete_blob(reg, &d).await,
        (Route::Uploads(n), Method::POST) => start_upload(reg, &n, &query, req).await,
        (Route::Upload(n, id), Method::GET) => upload_status(reg, &n, &id).await,
        (Route::Upload(n, id), Method::PATCH) => patch_upload(reg, &n, &id, req).await,
        (Route::Upload(n, id), Method::PUT) => finish_upload(reg, &n, &id, &query, req).await,
        (Route::Upload(n, id), Method::DELETE) => cancel_upload(reg, &n, &id).await,
        (Route::Referrers(n, d), Method::GET) => referrers(reg, &n, &d, &query).await,
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "method not allowed on this path",
        )),
    }
}

fn query(req: &Request) -> HashMap<String, String> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default()
}

fn base() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::HeaderName::from_static("docker-distribution-api-version"),
                "registry/2.0",
            ),
        ],
        "{}",
    )
        .into_response()
}

fn parse_digest(s: &str) -> Result<Digest> {
    Digest::parse(s).map_err(|_| ApiError::digest_invalid(s))
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn empty(status: StatusCode, headers: &[(&'static str, String)]) -> Response {
    let mut r = (status, Body::empty()).into_response();
    for (k, v) in headers {
        r.headers_mut().insert(*k, hv(v));
    }
    r
}

#[cfg(test)]
mod tests;
