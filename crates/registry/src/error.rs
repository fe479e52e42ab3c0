//! The distribution spec's error responses: a status and `{"errors":[{code,message,detail}]}`.
//! A client's mistake is always a 4xx with the spec's code; only the store failing is a 5xx,
//! and then the client sees no path or OS detail (that goes to the log).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The spec's error code (`BLOB_UNKNOWN`, `DIGEST_INVALID`, …).
    pub code: &'static str,
    /// What went wrong, for the client.
    pub message: String,
    /// Headers the status needs (`Range` on a 416 of an upload, `Content-Range` on a blob's).
    pub headers: Vec<(header::HeaderName, String)>,
}

impl ApiError {
    /// An error with `status`, spec `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header to the response.
    pub fn with_header(mut self, name: header::HeaderName, value: String) -> ApiError {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn name_invalid(name: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("invalid repository name {name:?}"),
        )
    }

    pub(crate) fn digest_invalid(digest: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("invalid digest {digest:?} (sha256:<64 hex> or sha512:<128 hex>)"),
        )
    }

    pub(crate) fn manifest_invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message)
    }

    pub(crate) fn manifest_unknown(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest unknown: {what}"),
        )
    }

    pub(crate) fn blob_unknown(digest: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob unknown: {digest}"),
        )
    }

    pub(crate) fn upload_unknown() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown",
        )
    }

    pub(crate) fn read_only() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "this registry is read-only",
        )
    }

    /// The store failed: the client learns that much, the log learns what and where.
    pub(crate) fn from_store(e: oci::Error) -> ApiError {
        use oci::Error as E;
        match e {
            E::BlobNotFound { digest, .. } => ApiError::blob_unknown(digest.as_str()),
            E::InvalidDigest { digest } => ApiError::digest_invalid(&digest),
            E::DigestMismatch {
                expected, actual, ..
            } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("content hashes to {actual}, not {expected}"),
            ),
            E::SizeMismatch {
                expected, actual, ..
            } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "SIZE_INVALID",
                format!("{actual} bytes received, {expected} declared"),
            ),
            // A store that cannot be written (an archive served in place) refuses like
            // `--read-only` does, not with a server error.
            E::ReadOnly { .. } => ApiError::read_only(),
            E::NotInLayout { name, .. } => ApiError::manifest_unknown(&name),
            E::AmbiguousTag {
                repository, tag, ..
            } => ApiError::new(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                format!("{repository}:{tag} names several images in this store"),
            ),
            E::RangeNotSatisfiable { size, .. } => ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RANGE_INVALID",
                "requested range not satisfiable",
            )
            .with_header(header::CONTENT_RANGE, format!("bytes */{size}")),
            E::InvalidManifest { reason, .. } => ApiError::manifest_invalid(reason),
            E::UnsupportedMediaType { media_type, .. } => {
                ApiError::manifest_invalid(format!("unsupported media type {media_type:?}"))
            }
            E::Io { path, source } if source.raw_os_error() == Some(28) => {
                tracing::error!(path = %path.display(), "store full: {source}");
                eprintln!("airlock serve: store full: {}: {source}", path.display());
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "UNKNOWN",
                    "the registry's storage is full",
                )
            }
            other => {
                tracing::error!("store error: {other}");
                eprintln!("airlock serve: store error: {other}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "internal storage error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "errors": [{ "code": self.code, "message": self.message, "detail": null }]
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}
