//! Manifest operations: GET (raw bytes, digest verified), HEAD, PUT.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::policy::{Capped, Failure, read_capped};
use super::send::{Body, Request};
use super::{Client, Repo};
use crate::auth::Scopes;
use oci::digest::Digest;
use oci::error::Error;
use oci::manifest::{MANIFEST_MEDIA_TYPES, MAX_MANIFEST_BYTES};

/// A manifest or index exactly as the registry served it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// `Content-Type` of the response (or the document's own `mediaType` when absent).
    pub media_type: String,
    /// Digest of `bytes`.
    pub digest: Digest,
    /// The raw bytes; re-serialising would change the digest.
    pub bytes: bytes::Bytes,
}

/// What a HEAD tells about a manifest without downloading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Content-Type`.
    pub media_type: String,
    /// `Docker-Content-Digest`, when the registry sent one.
    pub digest: Option<Digest>,
    /// `Content-Length`.
    pub size: Option<u64>,
}

const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

fn accept() -> String {
    MANIFEST_MEDIA_TYPES.join(", ")
}

fn image(repo: &Repo, reference: &str) -> String {
    if reference.starts_with("sha256:") {
        format!("{repo}@{reference}")
    } else {
        format!("{repo}:{reference}")
    }
}

impl Client {
    /// GETs a manifest by tag or digest. When `reference` is a digest the bytes must hash to it;
    /// when the registry sends `Docker-Content-Digest` the bytes must hash to that too.
    pub async fn get_manifest(&self, repo: &Repo, reference: &str) -> Result<Manifest, Error> {
        // Headers and body in one attempt: a connection dropped mid-body is retried like one
        // that failed to connect.
        let mut tries = self.inner.opts.retry.start();
        loop {
            match self.get_manifest_once(repo, reference).await {
                Ok(m) => return Ok(m),
                Err(f) => tries.failed(f).await?,
            }
        }
    }

    async fn get_manifest_once(&self, repo: &Repo, reference: &str) -> Result<Manifest, Failure> {
        let url = self.url(repo, &format!("manifests/{reference}"))?;
        let mut req = Request::new(Method::GET, url.clone()).header(ACCEPT, &accept());
        let mut resp = self
            .send_once(repo, &Scopes::pull(&repo.name), &mut req)
            .await?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => {
                return Err(Error::ManifestNotFound {
                    image: image(repo, reference),
                }
                .into());
            }
            _ => return Err(self.status_error("GET", &url, resp).await.into()),
        }
        let header_digest = resp
            .headers()
            .get(DOCKER_CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok());
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let bytes = self
            .read_limited(&mut resp, &url, &image(repo, reference))
            .await?;
        let digest = Digest::of(&bytes);
        let expected = if reference.starts_with("sha256:") {
            Some(Digest::parse(reference).map_err(|e| Failure::from(Error::from(e)))?)
        } else {
            header_digest
        };
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(Error::DigestMismatch {
                url: super::send::show(&url),
                expected,
                actual: digest,
            }
            .into());
        }
        let media_type = if oci::manifest::is_index(&content_type)
            || oci::manifest::is_manifest(&content_type)
        {
            content_type
        } else {
            // Some registries send application/json; trust the document's own mediaType.
            oci::manifest::Parsed::parse(&image(repo, reference), "", &bytes)
                .map_err(Failure::from)?
                .0
        };
        Ok(Manifest {
            media_type,
            digest,
            bytes,
        })
    }

    /// HEADs a manifest; `None` when it does not exist.
    pub async fn head_manifest(
        &self,
        repo: &Repo,
        reference: &str,
    ) -> Result<Option<ManifestHead>, Error> {
        let url = self.url(repo, &format!("manifests/{reference}"))?;
        let req = Request::new(Method::HEAD, url.clone()).header(ACCEPT, &accept());
        let resp = self.send(repo, &Scopes::pull(&repo.name), req).await?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(self.status_error("HEAD", &url, resp).await),
        }
        let h = resp.headers();
        Ok(Some(ManifestHead {
            media_type: h
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            digest: h
                .get(DOCKER_CONTENT_DIGEST)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Digest::parse(v).ok()),
            size: h
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
        }))
    }

    /// PUTs raw manifest bytes under `reference` (a tag, or the bytes' own digest). Returns the
    /// digest of the bytes.
    pub async fn put_manifest(
        &self,
        repo: &Repo,
        reference: &str,
        media_type: &str,
        bytes: bytes::Bytes,
    ) -> Result<Digest, Error> {
        let digest = Digest::of(&bytes);
        let url = self.url(repo, &format!("manifests/{reference}"))?;
        let mut req = Request::new(Method::PUT, url.clone()).header(CONTENT_TYPE, media_type);
        req.body = Body::Bytes(bytes);
        let resp = self.send(repo, &Scopes::push(&repo.name), req).await?;
        if !resp.status().is_success() {
            return Err(self.status_error("PUT", &url, resp).await);
        }
        Ok(digest)
    }

    /// The OCI referrers of a manifest (`GET /v2/<name>/referrers/<digest>`), as an index
    /// document's `manifests`. `Ok(None)` when the registry has no referrers API (404).
    pub async fn list_referrers(
        &self,
        repo: &Repo,
        digest: &Digest,
    ) -> Result<Option<Vec<oci::manifest::Descriptor>>, Error> {
        let url = self.url(repo, &format!("referrers/{digest}"))?;
        let what = format!("{repo} referrers of {digest}");
        let bytes = self
            .retry_get_small(
                repo,
                &url,
                Some(oci::manifest::OCI_INDEX),
                &what,
                &[
                    StatusCode::NOT_FOUND,
                    StatusCode::NOT_IMPLEMENTED,
                    StatusCode::METHOD_NOT_ALLOWED,
                ],
            )
            .await?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let doc: oci::manifest::IndexDocument =
            serde_json::from_slice(&bytes).map_err(|e| Error::InvalidManifest {
                image: what,
                reason: e.to_string(),
            })?;
        Ok(Some(doc.manifests))
    }

    /// The repository's tags (`GET /v2/<name>/tags/list`); `None` when the repository is unknown.
    pub async fn list_tags(&self, repo: &Repo) -> Result<Option<Vec<String>>, Error> {
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let url = self.url(repo, "tags/list")?;
        let what = format!("{repo} tag list");
        let Some(bytes) = self
            .retry_get_small(repo, &url, None, &what, &[StatusCode::NOT_FOUND])
            .await?
        else {
            return Ok(None);
        };
        let doc: Tags = serde_json::from_slice(&bytes).map_err(|e| Error::InvalidManifest {
            image: what,
            reason: e.to_string(),
        })?;
        Ok(Some(doc.tags.unwrap_or_default()))
    }

    /// GETs a small JSON document (headers and body in one attempt, under the retry policy);
    /// `None` when the registry answers one of `absent`.
    async fn retry_get_small(
        &self,
        repo: &Repo,
        url: &reqwest::Url,
        accept: Option<&str>,
        what: &str,
        absent: &[StatusCode],
    ) -> Result<Option<bytes::Bytes>, Error> {
        let mut tries = self.inner.opts.retry.start();
        loop {
            match self.get_small_once(repo, url, accept, what, absent).await {
                Ok(b) => return Ok(b),
                Err(f) => tries.failed(f).await?,
            }
        }
    }

    async fn get_small_once(
        &self,
        repo: &Repo,
        url: &reqwest::Url,
        accept: Option<&str>,
        what: &str,
        absent: &[StatusCode],
    ) -> Result<Option<bytes::Bytes>, Failure> {
        let mut req = Request::new(Method::GET, url.clone());
        if let Some(a) = accept {
            req = req.header(ACCEPT, a);
        }
        let mut resp = self
            .send_once(repo, &Scopes::pull(&repo.name), &mut req)
            .await?;
        match resp.status() {
            s if s.is_success() => {}
            s if absent.contains(&s) => return Ok(None),
            _ => return Err(self.status_error("GET", url, resp).await.into()),
        }
        Ok(Some(self.read_limited(&mut resp, url, what).await?))
    }

    /// Reads a document body, refusing (without reading further) more than
    /// [`MAX_MANIFEST_BYTES`].
    async fn read_limited(
        &self,
        resp: &mut reqwest::Response,
        url: &reqwest::Url,
        what: &str,
    ) -> Result<bytes::Bytes, Error> {
        match read_capped(resp, url, MAX_MANIFEST_BYTES, &self.inner.opts.timeouts).await? {
            Capped::Whole(b) => Ok(b),
            Capped::TooLarge => Err(Error::InvalidManifest {
                image: what.to_string(),
                reason: format!("larger than {MAX_MANIFEST_BYTES} bytes"),
            }),
        }
    }
}
