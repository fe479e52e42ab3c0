//! Blob byte streams and the verifier every source wraps them in: a stream ends with an error
//! instead of its last chunk when size or digest do not match, so a bad blob never completes
//! downstream. No I/O here; readers (registry responses, files) produce the streams.

use futures_util::{Stream, StreamExt};

use crate::digest::{Digest, Hasher};
use crate::error::Error;

/// A byte stream of a blob being read; every chunk is counted and hashed, and the stream
/// ends with an error instead of its last chunk if size or digest do not match.
pub type BlobStream = std::pin::Pin<Box<dyn Stream<Item = Result<bytes::Bytes, Error>> + Send>>;

/// Wraps a byte stream so it checks size and digest; the final chunk is held back until the end
/// so that a mismatching blob never completes downstream.
pub fn verify_stream(
    inner: impl Stream<Item = Result<bytes::Bytes, Error>> + Send + 'static,
    digest: Digest,
    size: Option<u64>,
    url: String,
) -> BlobStream {
    struct St<S> {
        inner: std::pin::Pin<Box<S>>,
        hasher: Option<Hasher>,
        held: Option<bytes::Bytes>,
        digest: Digest,
        size: Option<u64>,
        url: String,
    }
    let st = St {
        inner: Box::pin(inner),
        hasher: Some(Hasher::for_digest(&digest)),
        held: None,
        digest,
        size,
        url,
    };
    Box::pin(futures_util::stream::unfold(st, |mut st| async move {
        let hasher = st.hasher.as_mut()?;
        loop {
            match st.inner.next().await {
                Some(Ok(b)) => {
                    hasher.update(&b);
                    if let Some(size) = st.size
                        && hasher.len() > size
                    {
                        let err = Error::SizeMismatch {
                            url: st.url.clone(),
                            digest: st.digest.clone(),
                            expected: size,
                            actual: hasher.len(),
                        };
                        st.hasher = None;
                        return Some((Err(err), st));
                    }
                    if b.is_empty() {
                        continue;
                    }
                    if let Some(prev) = st.held.replace(b) {
                        return Some((Ok(prev), st));
                    }
                }
                Some(Err(e)) => {
                    st.hasher = None;
                    return Some((Err(e), st));
                }
                None => {
                    let h = st.hasher.take()?;
                    let n = h.len();
                    if let Some(size) = st.size
                        && n != size
                    {
                        let err = Error::SizeMismatch {
                            url: st.url.clone(),
                            digest: st.digest.clone(),
                            expected: size,
                            actual: n,
                        };
                        return Some((Err(err), st));
                    }
                    let actual = h.finish();
                    if actual != st.digest {
                        let err = Error::DigestMismatch {
                            url: st.url.clone(),
                            expected: st.digest.clone(),
                            actual,
                        };
                        return Some((Err(err), st));
                    }
                    return st.held.take().map(|b| (Ok(b), st));
                }
            }
        }
    }))
}
