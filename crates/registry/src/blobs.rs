//! Blobs: GET/HEAD (with single `Range` requests) and DELETE of stored blobs.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oci_store::Store;

use crate::{ApiError, Registry, Result, empty, hv, parse_digest};

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

pub(crate) async fn get_blob<S: Store>(
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

pub(crate) async fn delete_blob<S: Store>(reg: &Registry<S>, digest: &str) -> Result<Response> {
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
