//! Manifests: GET/HEAD/PUT/DELETE by tag or digest, and the referrers API over them.

use std::collections::{BTreeMap, HashMap};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use oci::manifest::{Descriptor, MAX_MANIFEST_BYTES, OCI_INDEX, Parsed};
use oci::{Digest, digest::Hasher};
use oci_store::Store;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::names::valid_tag;
use crate::{ApiError, Registry, Result, empty, hv, parse_digest};

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

pub(crate) async fn get_manifest<S: Store>(
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

pub(crate) async fn put_manifest<S: Store>(
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

pub(crate) async fn delete_manifest<S: Store>(
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

// --- referrers ----------------------------------------------------------------------------

pub(crate) async fn referrers<S: Store>(
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
