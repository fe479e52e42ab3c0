//! Blob operations: existence (HEAD), streamed and verified download with `Range` resume,
//! cross-repository mount with fallback to the 202 upload session, and uploads (monolithic PUT
//! for small blobs, one streamed PATCH then `PUT ?digest=` for the rest).

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, StatusCode, Url};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::policy::{Failure, next_chunk};
use super::send::{Body, Request, show};
use super::{Client, Repo};
use crate::auth::Scopes;
use oci::digest::{Digest, Hasher};
use oci::error::Error;
use oci::stream::{BlobStream, verify_stream};

/// Blobs up to this size are uploaded with a single PUT.
pub const MONOLITHIC_MAX: u64 = 4 * 1024 * 1024;

/// An open upload session (`Location` of a 202 from `POST /blobs/uploads/`).
#[derive(Clone, Debug)]
pub struct UploadSession {
    repo: Repo,
    location: Url,
}

/// The outcome of a mount attempt.
#[derive(Debug)]
pub enum MountResult {
    /// 201: the registry linked the blob from the other repository; nothing to send.
    Mounted,
    /// 202: not mounted; upload into this session instead.
    Upload(UploadSession),
}

impl Client {
    /// HEADs a blob; `Some(size)` when the repository has it.
    pub async fn blob_exists(&self, repo: &Repo, digest: &Digest) -> Result<Option<u64>, Error> {
        let url = self.url(repo, &format!("blobs/{digest}"))?;
        let resp = self
            .send(
                repo,
                &Scopes::pull(&repo.name),
                Request::new(Method::HEAD, url.clone()),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(
                resp.headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.status_error("HEAD", &url, resp).await),
        }
    }

    /// Downloads a blob into `out`, hashing as it streams. A dropped connection resumes with a
    /// `Range` request (each resume is an attempt of the retry policy). More bytes than `size`
    /// fail at once, before they are read. On a size or digest mismatch an error is returned
    /// and the caller must discard what was written (the layout store does).
    pub async fn get_blob<W: AsyncWrite + Unpin>(
        &self,
        repo: &Repo,
        digest: &Digest,
        size: Option<u64>,
        out: &mut W,
    ) -> Result<u64, Error> {
        let url = self.url(repo, &format!("blobs/{digest}"))?;
        let mut hasher = Hasher::for_digest(digest);
        let mut tries = self.inner.opts.retry.start();
        loop {
            match self
                .get_blob_from(repo, &url, digest, size, &mut hasher, out)
                .await
            {
                Ok(()) => break,
                Err(f) => tries.failed(f).await?,
            }
        }
        out.flush()
            .await
            .map_err(|e| Error::io("<blob output>", e))?;
        let n = hasher.len();
        if let Some(size) = size
            && n != size
        {
            return Err(Error::SizeMismatch {
                url: show(&url),
                digest: digest.clone(),
                expected: size,
                actual: n,
            });
        }
        let actual = hasher.finish();
        if &actual != digest {
            return Err(Error::DigestMismatch {
                url: show(&url),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(n)
    }

    /// One attempt of [`Client::get_blob`], resuming after the `hasher.len()` bytes already
    /// written.
    async fn get_blob_from<W: AsyncWrite + Unpin>(
        &self,
        repo: &Repo,
        url: &Url,
        digest: &Digest,
        size: Option<u64>,
        hasher: &mut Hasher,
        out: &mut W,
    ) -> Result<(), Failure> {
        let timeouts = &self.inner.opts.timeouts;
        let too_long = |actual: u64| Error::SizeMismatch {
            url: show(url),
            digest: digest.clone(),
            expected: size.unwrap_or(0),
            actual,
        };
        let done = hasher.len();
        let mut req = Request::new(Method::GET, url.clone());
        if done > 0 {
            req = req.header(RANGE, &format!("bytes={done}-"));
        }
        let mut resp = self
            .send_once(repo, &Scopes::pull(&repo.name), &mut req)
            .await?;
        let (mut skip, start) = match resp.status() {
            StatusCode::PARTIAL_CONTENT if done > 0 => (0, done),
            s if s.is_success() => (done, 0), // Range ignored: skip what we have
            StatusCode::NOT_FOUND => {
                return Err(Error::BlobNotFound {
                    repository: repo.to_string(),
                    digest: digest.clone(),
                }
                .into());
            }
            _ => return Err(self.status_error("GET", url, resp).await.into()),
        };
        if let (Some(size), Some(len)) = (size, resp.content_length())
            && start + len > size
        {
            return Err(too_long(start + len).into());
        }
        while let Some(chunk) = next_chunk(&mut resp, url, timeouts).await? {
            let mut chunk = &chunk[..];
            if skip > 0 {
                let n = (skip as usize).min(chunk.len());
                chunk = &chunk[n..];
                skip -= n as u64;
            }
            if chunk.is_empty() {
                continue;
            }
            if let Some(size) = size
                && hasher.len() + chunk.len() as u64 > size
            {
                return Err(too_long(hasher.len() + chunk.len() as u64).into());
            }
            out.write_all(chunk)
                .await
                .map_err(|e| Error::io("<blob output>", e))?;
            hasher.update(chunk);
        }
        Ok(())
    }

    /// Opens a blob for streaming elsewhere (registry to registry). The stream verifies size and
    /// digest and fails at the end instead of yielding its last chunk on a mismatch. Returns the
    /// stream and the `Content-Length` if sent.
    pub async fn open_blob(
        &self,
        repo: &Repo,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<(BlobStream, Option<u64>), Error> {
        let url = self.url(repo, &format!("blobs/{digest}"))?;
        let resp = self
            .send(
                repo,
                &Scopes::pull(&repo.name),
                Request::new(Method::GET, url.clone()),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => {
                return Err(Error::BlobNotFound {
                    repository: repo.to_string(),
                    digest: digest.clone(),
                });
            }
            _ => return Err(self.status_error("GET", &url, resp).await),
        }
        let len = resp.content_length();
        if let (Some(size), Some(len)) = (size, len)
            && len > size
        {
            return Err(Error::SizeMismatch {
                url: show(&url),
                digest: digest.clone(),
                expected: size,
                actual: len,
            });
        }
        let (u, timeouts) = (url.clone(), self.inner.opts.timeouts.clone());
        let raw = futures_util::stream::unfold(Some(resp), move |resp| {
            let (u, timeouts) = (u.clone(), timeouts.clone());
            async move {
                let mut resp = resp?;
                match next_chunk(&mut resp, &u, &timeouts).await {
                    Ok(Some(b)) => Some((Ok(b), Some(resp))),
                    Ok(None) => None,
                    Err(e) => Some((Err(e), None)),
                }
            }
        });
        Ok((verify_stream(raw, digest.clone(), size, show(&url)), len))
    }

    /// Starts an upload, trying a cross-repository mount first when `mount_from` is given.
    pub async fn start_upload(
        &self,
        repo: &Repo,
        mount: Option<(&Digest, &Repo)>,
    ) -> Result<MountResult, Error> {
        let mut url = self.url(repo, "blobs/uploads/")?;
        let mut scopes = Scopes::push(&repo.name);
        if let Some((digest, from)) = mount {
            url.query_pairs_mut()
                .append_pair("mount", digest.as_str())
                .append_pair("from", &from.name);
            scopes = scopes.with(&Scopes::pull(&from.name));
        }
        let req = Request::new(Method::POST, url.clone()).header(CONTENT_LENGTH, "0");
        let resp = self.send(repo, &scopes, req).await?;
        match resp.status() {
            StatusCode::CREATED if mount.is_some() => Ok(MountResult::Mounted),
            StatusCode::ACCEPTED | StatusCode::CREATED => {
                let location = location(&url, &resp)?;
                Ok(MountResult::Upload(UploadSession {
                    repo: repo.clone(),
                    location,
                }))
            }
            _ => Err(self.status_error("POST", &url, resp).await),
        }
    }

    /// Finishes a session with the whole blob in one PUT (small blobs). The bytes must already be
    /// verified (`Layout::read_blob` and `get_blob` verify); the registry checks the digest again.
    pub async fn upload_bytes(
        &self,
        session: UploadSession,
        digest: &Digest,
        bytes: bytes::Bytes,
    ) -> Result<(), Error> {
        let mut url = session.location.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let mut req =
            Request::new(Method::PUT, url.clone()).header(CONTENT_TYPE, "application/octet-stream");
        req.body = Body::Bytes(bytes);
        let resp = self
            .send(&session.repo, &Scopes::push(&session.repo.name), req)
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(self.status_error("PUT", &url, resp).await);
        }
        Ok(())
    }

    /// Streams a blob into a session with one PATCH, then completes it with `PUT ?digest=`.
    ///
    /// The stream must verify its own digest, as streams from `open_blob` (registry or layout)
    /// do: on a mismatch they end with an error instead of their last chunk, so the upload is
    /// never completed. The registry checks the digest again on the PUT. Hashing here as well
    /// would hash every byte twice, which is most of a mirror's CPU time.
    pub async fn upload_stream(
        &self,
        session: UploadSession,
        digest: &Digest,
        size: Option<u64>,
        stream: BlobStream,
    ) -> Result<(), Error> {
        let repo = &session.repo;
        let scopes = Scopes::push(&repo.name);
        let mut req = Request::new(Method::PATCH, session.location.clone())
            .header(CONTENT_TYPE, "application/octet-stream");
        if let Some(size) = size {
            req = req.header(CONTENT_LENGTH, &size.to_string());
        }
        req.body = Body::Stream(Some(stream));
        // A stream that fails (a digest mismatch, a dropped source) leaves a session behind:
        // cancel it rather than leave the registry holding partial data.
        // One attempt: the stream cannot be replayed.
        let resp = match self.send_once(repo, &scopes, &mut req).await {
            Ok(resp) => resp,
            Err(f) => {
                self.cancel_upload(repo, &session.location).await;
                return Err(f.error);
            }
        };
        if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
            return Err(self.status_error("PATCH", &session.location, resp).await);
        }
        let next = location(&session.location, &resp)?;
        let mut url = next;
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let req = Request::new(Method::PUT, url.clone()).header(CONTENT_LENGTH, "0");
        let resp = self.send(repo, &scopes, req).await?;
        if !resp.status().is_success() {
            return Err(self.status_error("PUT", &url, resp).await);
        }
        Ok(())
    }

    async fn cancel_upload(&self, repo: &Repo, location: &Url) {
        let req = Request::new(Method::DELETE, location.clone());
        let _ = self.send(repo, &Scopes::push(&repo.name), req).await;
    }
}

/// The session URL from `Location` (possibly relative).
fn location(base: &Url, resp: &reqwest::Response) -> Result<Url, Error> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Status {
            method: "POST".into(),
            url: show(base),
            status: resp.status().as_u16(),
            detail: Some("upload response without Location".into()),
        })?;
    base.join(loc).map_err(|e| Error::Status {
        method: "POST".into(),
        url: show(base),
        status: resp.status().as_u16(),
        detail: Some(format!("bad Location {loc:?}: {e}")),
    })
}
