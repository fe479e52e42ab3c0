//! The OCI distribution registry server behind `airlock serve`: HTTP handlers over the
//! [`oci_store`] store. Must not depend on an HTTP client (reqwest), discovery or policy.
//!
//! [`app`] is the whole OCI distribution spec v1.1 surface as an axum [`Router`], generic over
//! any [`Store`] (a layout directory read-write or read-only in place; a tar archive read in
//! place plugs in the same way). Nothing becomes visible before it is verified: blobs and
//! manifests go through the store's verified puts (temporary file, hash, rename), so a wrong
//! digest, a disconnect or a crash leaves nothing under a digest's name.

pub mod auth;
mod error;
pub mod metrics;
mod names;
pub mod tls;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use oci::manifest::{Descriptor, MAX_MANIFEST_BYTES, OCI_INDEX, Parsed};
use oci::{Digest, digest::Hasher};
use oci_store::{Store, Upload};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

pub use error::ApiError;
use names::{Route, valid_name, valid_tag};

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

/// Serves [`app`] with the access log on `listener` until `shutdown` completes, then stops
/// accepting and returns once the requests in flight are finished.
pub async fn serve<S: Store + 'static>(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry<S>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app(registry).layer(axum::middleware::from_fn(access_log));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The TLS configuration [`serve_app`] takes (and [`tls`] builds), re-exported so callers need
/// no axum-server dependency of their own.
pub use axum_server::tls_rustls::RustlsConfig;

/// `app` with [`access_log`] around it: apply it outermost so every request gets its line.
pub fn with_access_log(app: Router) -> Router {
    app.layer(axum::middleware::from_fn(access_log))
}

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

// --- pagination -------------------------------------------------------------------------

/// `n` / `last` pagination of a sorted list; the `Link` of the next page when there is one.
fn paginate(
    all: Vec<String>,
    query: &HashMap<String, String>,
    path: &str,
) -> Result<(Vec<String>, Option<String>)> {
    let n = match query.get("n") {
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!("invalid n {n:?}"),
            )
        })?),
        None => None,
    };
    let after: Vec<String> = match query.get("last") {
        Some(last) => all.into_iter().filter(|t| t > last).collect(),
        None => all,
    };
    match n {
        Some(n) if after.len() > n => {
            let page: Vec<String> = after.into_iter().take(n).collect();
            let link = page
                .last()
                .map(|l| format!("<{path}?n={n}&last={l}>; rel=\"next\""));
            Ok((page, link))
        }
        _ => Ok((after, None)),
    }
}

fn json_list(key: &str, name: Option<&str>, items: Vec<String>, link: Option<String>) -> Response {
    let mut body = serde_json::Map::new();
    if let Some(name) = name {
        body.insert("name".into(), name.into());
    }
    body.insert(key.into(), items.into());
    let mut r = axum::Json(serde_json::Value::Object(body)).into_response();
    if let Some(link) = link {
        r.headers_mut().insert(header::LINK, hv(&link));
    }
    r
}

async fn catalog<S: Store>(reg: &Registry<S>, query: &HashMap<String, String>) -> Result<Response> {
    let all = reg
        .store
        .repositories()
        .await
        .map_err(ApiError::from_store)?;
    let (page, link) = paginate(all, query, "/v2/_catalog")?;
    Ok(json_list("repositories", None, page, link))
}

async fn tags<S: Store>(
    reg: &Registry<S>,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Response> {
    let all = reg.store.tags(name).await.map_err(ApiError::from_store)?;
    if all.is_empty()
        && reg
            .store
            .manifests(name)
            .await
            .map_err(ApiError::from_store)?
            .is_empty()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository {name} not known to this registry"),
        ));
    }
    let (page, link) = paginate(all, query, &format!("/v2/{name}/tags/list"))?;
    Ok(json_list("tags", Some(name), page, link))
}

// --- manifests ----------------------------------------------------------------------------

/// What the server reads from a manifest beyond [`Parsed`]: the fields the referrers API and
/// the `Content-Type` check need.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Meta {
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<MetaConfig>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
    manifests: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaConfig {
    media_type: Option<String>,
}

impl Meta {
    fn parse(bytes: &[u8]) -> Option<Meta> {
        serde_json::from_slice(bytes).ok()
    }

    /// The media type a stored manifest is served with: its own `mediaType`, else its shape.
    fn served_type(&self) -> Option<String> {
        let mt = self.media_type.clone().filter(|m| !m.is_empty());
        mt.or_else(|| {
            if self.manifests.is_some() {
                Some(OCI_INDEX.to_string())
            } else if self.config.is_some() {
                Some(oci::manifest::OCI_MANIFEST.to_string())
            } else {
                None
            }
        })
    }

    fn artifact_type(&self) -> Option<String> {
        self.artifact_type
            .clone()
            .or_else(|| self.config.as_ref().and_then(|c| c.media_type.clone()))
    }
}

/// Reads a stored manifest whole (at most [`MAX_MANIFEST_BYTES`]); `None` when absent.
async fn read_small<S: Store>(store: &S, digest: &Digest) -> Result<Option<bytes::Bytes>> {
    let Some(size) = store
        .stat_blob(digest)
        .await
        .map_err(ApiError::from_store)?
    else {
        return Ok(None);
    };
    if size > MAX_MANIFEST_BYTES as u64 {
        return Ok(None);
    }
    let mut range = match store.read_blob_range(digest, 0, None).await {
        Ok(r) => r,
        Err(oci::Error::BlobNotFound { .. }) => return Ok(None),
        Err(e) => return Err(ApiError::from_store(e)),
    };
    let mut buf = bytes::BytesMut::with_capacity(size as usize);
    while let Some(chunk) = range.stream.next().await {
        buf.extend_from_slice(&chunk.map_err(ApiError::from_store)?);
        if buf.len() > MAX_MANIFEST_BYTES {
            return Ok(None);
        }
    }
    Ok(Some(buf.freeze()))
}

async fn get_manifest<S: Store>(
    reg: &Registry<S>,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response> {
    let (digest, recorded_type) = if reference.contains(':') {
        let d = parse_digest(reference)?;
        let recorded = reg
            .store
            .manifests(name)
            .await
            .map_err(ApiError::from_store)?
            .into_iter()
            .find(|m| m.digest == d)
            .map(|m| m.media_type);
        (d, recorded)
    } else {
        if !valid_tag(reference) {
            return Err(ApiError::manifest_unknown(reference));
        }
        let desc = reg
            .store
            .resolve_tag(name, reference)
            .await
            .map_err(ApiError::from_store)?;
        (desc.digest, Some(desc.media_type))
    };
    let Some(bytes) = read_small(&reg.store, &digest).await? else {
        return Err(ApiError::manifest_unknown(reference));
    };
    // Served by digest from whatever the store holds (an index's children in a packed layout
    // are in no `index.json` entry), but only what is a manifest: never a layer.
    let meta = Meta::parse(&bytes).unwrap_or_default();
    let Some(content_type) = recorded_type
        .filter(|m| !m.is_empty())
        .or_else(|| meta.served_type())
    else {
        return Err(ApiError::manifest_unknown(reference));
    };
    let len = bytes.len();
    let mut r = if head {
        empty(StatusCode::OK, &[])
    } else {
        (StatusCode::OK, Body::from(bytes)).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, hv(&content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert("docker-content-digest", hv(digest.as_str()));
    Ok(r)
}

/// Reads a request body whole, refusing more than `max` bytes (413) before holding them.
async fn read_body(req: Request, max: usize) -> Result<bytes::Bytes> {
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "MANIFEST_INVALID",
            format!("manifest larger than {max} bytes"),
        )
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max as u64
    {
        return Err(too_big());
    }
    let limited = http_body_util::Limited::new(req.into_body(), max);
    match http_body_util::BodyExt::collect(limited).await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_big()),
        Err(_) => Err(ApiError::manifest_invalid("request body could not be read")),
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

async fn put_manifest<S: Store>(
    reg: &Registry<S>,
    name: &str,
    reference: &str,
    req: Request,
) -> Result<Response> {
    let by_digest = if reference.contains(':') {
        Some(parse_digest(reference)?)
    } else if valid_tag(reference) {
        None
    } else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
            format!("invalid tag {reference:?}"),
        ));
    };
    let ct = content_type(req.headers());
    let bytes = read_body(req, MAX_MANIFEST_BYTES).await?;
    let image = format!("{name}:{reference}");
    let (media_type, parsed) = Parsed::parse(&image, &ct, &bytes)
        .map_err(|e| ApiError::manifest_invalid(e.to_string()))?;
    let meta = Meta::parse(&bytes)
        .ok_or_else(|| ApiError::manifest_invalid("manifest is not a JSON object"))?;
    if let Some(declared) = meta.media_type.as_deref().filter(|m| !m.is_empty())
        && !ct.is_empty()
        && declared != ct
    {
        return Err(ApiError::manifest_invalid(format!(
            "Content-Type {ct} but the manifest's mediaType is {declared}"
        )));
    }
    let digest = match &by_digest {
        Some(d) => {
            let mut h = Hasher::for_digest(d);
            h.update(&bytes);
            let actual = h.finish();
            if &actual != d {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "DIGEST_INVALID",
                    format!("manifest hashes to {actual}, not {d}"),
                ));
            }
            actual
        }
        None => Digest::of(&bytes),
    };
    // Every blob and child manifest it names must be here: a manifest is never visible before
    // what it needs (its subject excepted: referrers may arrive first).
    let needed: Vec<&Descriptor> = match &parsed {
        Parsed::Image { config, layers, .. } => std::iter::once(config).chain(layers).collect(),
        Parsed::Index { manifests } => manifests.iter().collect(),
    };
    for d in needed {
        // Non-distributable (foreign) layers are fetched from their URLs, never pushed.
        if d.media_type.contains("nondistributable") || d.media_type.contains(".foreign.") {
            continue;
        }
        if reg
            .store
            .stat_blob(&d.digest)
            .await
            .map_err(ApiError::from_store)?
            .is_none()
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "MANIFEST_BLOB_UNKNOWN",
                format!("{} names {} which is not stored", image, d.digest),
            ));
        }
    }
    let mut w = reg
        .store
        .put_blob(&digest, Some(bytes.len() as u64))
        .await
        .map_err(ApiError::from_store)?;
    w.write_all(&bytes)
        .await
        .map_err(|e| ApiError::from_store(oci::Error::io(name, e)))?;
    w.commit().await.map_err(ApiError::from_store)?;
    let desc = Descriptor {
        media_type,
        digest: digest.clone(),
        size: bytes.len() as u64,
        platform: None,
        annotations: None,
        artifact_type: meta.artifact_type.clone(),
    };
    match by_digest {
        Some(_) => reg.store.add_manifest(name, desc).await,
        None => reg.store.set_tag(name, reference, desc).await,
    }
    .map_err(ApiError::from_store)?;
    let mut headers = vec![
        ("location", format!("/v2/{name}/manifests/{digest}")),
        ("docker-content-digest", digest.to_string()),
    ];
    if let Some(subject) = &meta.subject {
        headers.push(("oci-subject", subject.digest.to_string()));
    }
    Ok(empty(StatusCode::CREATED, &headers))
}

async fn delete_manifest<S: Store>(
    reg: &Registry<S>,
    name: &str,
    reference: &str,
) -> Result<Response> {
    let removed = if reference.contains(':') {
        let d = parse_digest(reference)?;
        reg.store.delete_manifest(name, &d).await
    } else if valid_tag(reference) {
        reg.store.delete_tag(name, reference).await
    } else {
        return Err(ApiError::manifest_unknown(reference));
    }
    .map_err(ApiError::from_store)?;
    if !removed {
        return Err(ApiError::manifest_unknown(reference));
    }
    Ok(empty(StatusCode::ACCEPTED, &[]))
}

// --- blobs --------------------------------------------------------------------------------

/// A `Range: bytes=...` header as `(start, end exclusive)` of a blob of `size` bytes. `None`:
/// no (usable) header, serve it whole; `Err`: unsatisfiable (416).
fn parse_range(h: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    // One range only; a multi-range request is served whole (allowed by RFC 9110).
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        (true, false) => {
            let Some(n) = num(b) else { return Ok(None) };
            if n == 0 || size == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size)
        }
        (false, _) => {
            let Some(s) = num(a) else { return Ok(None) };
            let e = if b.is_empty() {
                size
            } else {
                match num(b) {
                    Some(e) if e >= s => e.saturating_add(1).min(size),
                    Some(_) => return Err(()),
                    None => return Ok(None),
                }
            };
            (s, e)
        }
        (true, true) => return Ok(None),
    };
    if start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

async fn get_blob<S: Store>(
    reg: &Registry<S>,
    _name: &str,
    digest: &str,
    range: Option<HeaderValue>,
    head: bool,
) -> Result<Response> {
    let d = parse_digest(digest)?;
    let Some(size) = reg
        .store
        .stat_blob(&d)
        .await
        .map_err(ApiError::from_store)?
    else {
        return Err(ApiError::blob_unknown(digest));
    };
    let range = parse_range(range.as_ref(), size).map_err(|()| {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "RANGE_INVALID",
            "requested range not satisfiable",
        )
        .with_header(header::CONTENT_RANGE, format!("bytes */{size}"))
    })?;
    let (status, start, end) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
        None => (StatusCode::OK, 0, size),
    };
    let mut r = if head {
        empty(status, &[])
    } else {
        let part = reg
            .store
            .read_blob_range(&d, start, Some(end))
            .await
            .map_err(ApiError::from_store)?;
        (status, Body::from_stream(part.stream)).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, hv("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ACCEPT_RANGES, hv("bytes"));
    h.insert("docker-content-digest", hv(d.as_str()));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            hv(&format!("bytes {start}-{}/{size}", end - 1)),
        );
    }
    Ok(r)
}

async fn delete_blob<S: Store>(reg: &Registry<S>, digest: &str) -> Result<Response> {
    let d = parse_digest(digest)?;
    if !reg
        .store
        .delete_blob(&d)
        .await
        .map_err(ApiError::from_store)?
    {
        return Err(ApiError::blob_unknown(digest));
    }
    Ok(empty(StatusCode::ACCEPTED, &[]))
}

// --- uploads ------------------------------------------------------------------------------

fn new_upload_id() -> String {
    use std::hash::{BuildHasher, Hasher as _};
    // RandomState is seeded from the OS: ids cannot be guessed to hijack another's upload.
    let mut id = String::with_capacity(32);
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        id.push_str(&format!("{:016x}", h.finish()));
    }
    id
}

fn blob_created(name: &str, digest: &Digest) -> Response {
    empty(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{name}/blobs/{digest}")),
            ("docker-content-digest", digest.to_string()),
        ],
    )
}

fn upload_accepted(status: StatusCode, name: &str, id: &str, len: u64) -> Response {
    empty(
        status,
        &[
            ("location", format!("/v2/{name}/blobs/uploads/{id}")),
            ("range", format!("0-{}", len.saturating_sub(1))),
            ("docker-upload-uuid", id.to_string()),
        ],
    )
}

/// Streams a request body into `sink`, chunk by chunk (never buffering a blob whole).
async fn pump<F, Fut>(req: Request, mut sink: F) -> Result<u64>
where
    F: FnMut(bytes::Bytes) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut body = req.into_body().into_data_stream();
    let mut n = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                "request body ended early",
            )
        })?;
        n += chunk.len() as u64;
        sink(chunk).await?;
    }
    Ok(n)
}

async fn put_whole_blob<S: Store>(reg: &Registry<S>, d: &Digest, req: Request) -> Result<()> {
    let w = reg
        .store
        .put_blob(d, None)
        .await
        .map_err(ApiError::from_store)?;
    let w = Arc::new(tokio::sync::Mutex::new(w));
    let w2 = w.clone();
    pump(req, move |chunk| {
        let w = w2.clone();
        async move {
            w.lock()
                .await
                .write_all(&chunk)
                .await
                .map_err(|e| ApiError::from_store(oci::Error::io("upload", e)))
        }
    })
    .await?;
    let w = Arc::try_unwrap(w)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "upload busy"))?
        .into_inner();
    w.commit().await.map_err(ApiError::from_store)?;
    Ok(())
}

async fn start_upload<S: Store>(
    reg: &Registry<S>,
    name: &str,
    query: &HashMap<String, String>,
    req: Request,
) -> Result<Response> {
    if let Some(mount) = query.get("mount") {
        // Blobs are shared by every repository of the store: a mount of a stored blob (from a
        // named repository or anonymous) is a lookup.
        if let Ok(d) = Digest::parse(mount)
            && reg
                .store
                .stat_blob(&d)
                .await
                .map_err(ApiError::from_store)?
                .is_some()
        {
            return Ok(blob_created(name, &d));
        }
    } else if let Some(digest) = query.get("digest") {
        let d = parse_digest(digest)?;
        put_whole_blob(reg, &d, req).await?;
        return Ok(blob_created(name, &d));
    }
    reg.expire_uploads();
    if reg.open_uploads() >= reg.max_uploads {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            "too many uploads in progress",
        ));
    }
    let upload = reg
        .store
        .begin_upload()
        .await
        .map_err(ApiError::from_store)?;
    let id = new_upload_id();
    reg.sessions().insert(
        id.clone(),
        Arc::new(tokio::sync::Mutex::new(Session {
            repository: name.to_string(),
            upload: Some(upload),
            touched: Instant::now(),
        })),
    );
    Ok(upload_accepted(StatusCode::ACCEPTED, name, &id, 0))
}

/// The session `id` of repository `name`, locked for this request.
async fn session<S: Store>(
    reg: &Registry<S>,
    name: &str,
    id: &str,
) -> Result<tokio::sync::OwnedMutexGuard<Session>> {
    let sess = reg
        .sessions()
        .get(id)
        .cloned()
        .ok_or_else(ApiError::upload_unknown)?;
    let guard = sess.lock_owned().await;
    // The repository is part of the session's address.
    if guard.repository != name || guard.upload.is_none() {
        return Err(ApiError::upload_unknown());
    }
    Ok(guard)
}

/// `Content-Range: <start>-<end>` of a chunk (also accepts a `bytes ` prefix).
fn content_range(h: &HeaderMap) -> Result<Option<(u64, u64)>> {
    let Some(v) = h.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "BLOB_UPLOAD_INVALID",
            "invalid Content-Range",
        )
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s.strip_prefix("bytes ").unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b) = (
        a.trim().parse::<u64>().map_err(|_| bad())?,
        b.trim().parse::<u64>().map_err(|_| bad())?,
    );
    if b < a {
        return Err(bad());
    }
    Ok(Some((a, b)))
}

/// Appends a request's body to a session, enforcing `Content-Range` order (416 otherwise). A
/// body that breaks off ends the session: its file no longer matches what the client believes.
async fn append<S: Store>(
    reg: &Registry<S>,
    name: &str,
    id: &str,
    s: &mut Session,
    req: Request,
) -> Result<()> {
    let upload = s.upload.as_mut().ok_or_else(ApiError::upload_unknown)?;
    let declared = content_range(req.headers())?;
    let at = upload.len();
    if let Some((start, _)) = declared
        && start != upload.len()
    {
        return Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            format!("chunk starts at {start}, upload is at {}", upload.len()),
        )
        .with_header(header::LOCATION, format!("/v2/{name}/blobs/uploads/{id}"))
        .with_header(
            header::RANGE,
            format!("0-{}", upload.len().saturating_sub(1)),
        ));
    }
    let mut body = req.into_body().into_data_stream();
    let mut failed = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => {
                if let Err(e) = upload.write(&c).await {
                    failed = Some(ApiError::from_store(e));
                    break;
                }
            }
            Err(_) => {
                failed = Some(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "BLOB_UPLOAD_INVALID",
                    "request body ended early",
                ));
                break;
            }
        }
    }
    s.touched = Instant::now();
    let received = s.upload.as_ref().map_or(0, |u| u.len() - at);
    if failed.is_none()
        && let Some((start, end)) = declared
        && received != end - start + 1
    {
        // The bytes appended are not the chunk the client described: the upload no longer
        // matches what the client believes it holds.
        failed = Some(ApiError::new(
            StatusCode::BAD_REQUEST,
            "BLOB_UPLOAD_INVALID",
            format!(
                "Content-Range {start}-{end} declares {} bytes, {received} received",
                end - start + 1
            ),
        ));
    }
    if let Some(e) = failed {
        s.upload = None;
        reg.sessions().remove(id);
        return Err(e);
    }
    Ok(())
}

async fn patch_upload<S: Store>(
    reg: &Registry<S>,
    name: &str,
    id: &str,
    req: Request,
) -> Result<Response> {
    let mut s = session(reg, name, id).await?;
    append(reg, name, id, &mut s, req).await?;
    let len = s.upload.as_ref().map_or(0, Upload::len);
    Ok(upload_accepted(StatusCode::ACCEPTED, name, id, len))
}

async fn finish_upload<S: Store>(
    reg: &Registry<S>,
    name: &str,
    id: &str,
    query: &HashMap<String, String>,
    req: Request,
) -> Result<Response> {
    let digest = query.get("digest").map(String::as_str).unwrap_or_default();
    let d = parse_digest(digest)?;
    let mut s = session(reg, name, id).await?;
    append(reg, name, id, &mut s, req).await?;
    let upload = s.upload.take().ok_or_else(ApiError::upload_unknown)?;
    // Whatever happens now, the session is over: a wrong digest removes its bytes.
    reg.sessions().remove(id);
    reg.store
        .commit_upload(upload, &d)
        .await
        .map_err(ApiError::from_store)?;
    Ok(blob_created(name, &d))
}

async fn upload_status<S: Store>(reg: &Registry<S>, name: &str, id: &str) -> Result<Response> {
    let s = session(reg, name, id).await?;
    let len = s
        .upload
        .as_ref()
        .map(Upload::len)
        .ok_or_else(ApiError::upload_unknown)?;
    Ok(upload_accepted(StatusCode::NO_CONTENT, name, id, len))
}

async fn cancel_upload<S: Store>(reg: &Registry<S>, name: &str, id: &str) -> Result<Response> {
    let mut s = session(reg, name, id).await?;
    s.upload = None;
    reg.sessions().remove(id);
    Ok(empty(StatusCode::NO_CONTENT, &[]))
}

// --- referrers ----------------------------------------------------------------------------

async fn referrers<S: Store>(
    reg: &Registry<S>,
    name: &str,
    digest: &str,
    query: &HashMap<String, String>,
) -> Result<Response> {
    let subject = parse_digest(digest)?;
    let filter = query.get("artifactType");
    let mut found = Vec::new();
    for m in reg
        .store
        .manifests(name)
        .await
        .map_err(ApiError::from_store)?
    {
        let Some(bytes) = read_small(&reg.store, &m.digest).await? else {
            continue;
        };
        let Some(meta) = Meta::parse(&bytes) else {
            continue;
        };
        if meta.subject.as_ref().map(|s| &s.digest) != Some(&subject) {
            continue;
        }
        let artifact_type = meta.artifact_type();
        if filter.is_some() && artifact_type.as_ref() != filter {
            continue;
        }
        found.push(Descriptor {
            media_type: meta.served_type().unwrap_or(m.media_type),
            digest: m.digest,
            size: m.size,
            platform: None,
            annotations: meta.annotations,
            artifact_type,
        });
    }
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": found,
    });
    let mut r = axum::Json(body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, hv(OCI_INDEX));
    if filter.is_some() {
        r.headers_mut()
            .insert("oci-filters-applied", hv("artifactType"));
    }
    Ok(r)
}

// --- access log ---------------------------------------------------------------------------

/// One structured line per request on stderr (and a `tracing` event): method, path, status,
/// response bytes (when known) and duration. No query string: it is never needed to read the
/// log and could carry a client's token.
pub async fn access_log(req: Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let bytes = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(%method, %path, status, bytes, ms, "request");
    eprintln!("access method={method} path={path:?} status={status} bytes={bytes} ms={ms:.1}");
    resp
}

#[cfg(test)]
mod tests;
