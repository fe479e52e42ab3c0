//! Upload sessions: POST (monolithic, mount or start), PATCH, PUT, GET and DELETE of blob uploads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use oci::Digest;
use oci_store::{Store, Upload};
use tokio::io::AsyncWriteExt;

use crate::{ApiError, Registry, Result, Session, empty, parse_digest};

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

pub(crate) async fn start_upload<S: Store>(
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

pub(crate) async fn patch_upload<S: Store>(
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

pub(crate) async fn finish_upload<S: Store>(
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

pub(crate) async fn upload_status<S: Store>(
    reg: &Registry<S>,
    name: &str,
    id: &str,
) -> Result<Response> {
    let s = session(reg, name, id).await?;
    let len = s
        .upload
        .as_ref()
        .map(Upload::len)
        .ok_or_else(ApiError::upload_unknown)?;
    Ok(upload_accepted(StatusCode::NO_CONTENT, name, id, len))
}

pub(crate) async fn cancel_upload<S: Store>(
    reg: &Registry<S>,
    name: &str,
    id: &str,
) -> Result<Response> {
    let mut s = session(reg, name, id).await?;
    s.upload = None;
    reg.sessions().remove(id);
    Ok(empty(StatusCode::NO_CONTENT, &[]))
}
