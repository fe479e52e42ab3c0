//! How long the client waits and how often it tries again: per-request timeouts, the one retry
//! policy every registry operation goes through, the per-image budget, and the caps on how much
//! of a response body is ever held in memory.
//!
//! Every retry decision is made in one place (`Attempts::failed`) and each operation counts its
//! attempts once: a token fetch, a challenge answered or a resumed download happen inside an
//! attempt, never in a retry loop of their own, so attempts do not multiply.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use reqwest::{Response, Url};

use super::send::show;
use oci::NetworkCause;
use oci::error::Error;

/// Most of an error response that is read (to show the registry's message); the rest is never
/// read, the connection is dropped instead.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// Largest token endpoint answer accepted (real ones are a few KiB).
pub const MAX_TOKEN_RESPONSE: usize = 1024 * 1024;

/// How long a request may wait for the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// To establish a connection (TCP and TLS).
    pub connect: Duration,
    /// Longest silence: no byte of the request body taken by the connection, no response
    /// header, no body byte for this long fails the attempt (the retry policy may then try
    /// again). A transfer that keeps moving is never cut, however long it takes.
    pub idle: Duration,
    /// Overall budget for one image, retries and all; see [`within_budget`]. A server that
    /// trickles a byte now and then never trips `idle`, so this is what stops it.
    pub image: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            image: Duration::from_secs(600),
        }
    }
}

/// When to try a failed registry operation again: only transient failures
/// ([`Error::is_transient`]: connection errors, timeouts, 5xx, 429), at most `attempts` times
/// in all, waiting `backoff` doubled per attempt (±25 % jitter, at most `max_backoff`) or what
/// the registry's `Retry-After` asks, capped the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub attempts: u32,
    /// Wait before the second attempt.
    pub backoff: Duration,
    /// Longest wait between attempts, `Retry-After` included.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// A failed attempt: the error, and how long the registry asked us to wait before the next.
pub(crate) struct Failure {
    pub error: Error,
    pub retry_after: Option<Duration>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            retry_after: None,
        }
    }
}

impl RetryPolicy {
    /// Whether an error is worth another attempt.
    pub fn should_retry(&self, e: &Error) -> bool {
        e.is_transient()
    }

    /// The wait after failed attempt number `attempt` (1-based), with jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = f64::from(nanos % 500) / 1000.0 + 0.75; // 0.75 ..= 1.25
        base.mul_f64(jitter).min(self.max_backoff)
    }

    /// A fresh count of attempts for one operation. The operation's loop is
    /// `loop { match once().await { Ok(v) => return Ok(v), Err(f) => tries.failed(f).await? } }`:
    /// every decision (retry or not, how long to wait, what to report) is made here.
    pub fn start(&self) -> Attempts<'_> {
        Attempts {
            policy: self,
            made: 0,
        }
    }
}

/// The attempts of one operation under a [`RetryPolicy`].
pub struct Attempts<'a> {
    policy: &'a RetryPolicy,
    made: u32,
}

impl Attempts<'_> {
    /// Records a failed attempt: waits and returns `Ok` when another attempt should be made,
    /// or returns the error to report. A registry that kept answering 5xx / 429 is reported as
    /// [`Error::RetriesExhausted`].
    pub(crate) async fn failed(&mut self, failure: Failure) -> Result<(), Error> {
        self.made += 1;
        let policy = self.policy;
        if !policy.should_retry(&failure.error) {
            return Err(failure.error);
        }
        if self.made >= policy.attempts.max(1) {
            return Err(match failure.error {
                Error::Status { url, status, .. } => Error::RetriesExhausted {
                    url,
                    attempts: self.made,
                    status,
                },
                e => e,
            });
        }
        let wait = failure
            .retry_after
            .map(|d| d.min(policy.max_backoff))
            .unwrap_or_else(|| policy.delay(self.made));
        tracing::debug!(error = %failure.error, attempt = self.made, ?wait, "retrying");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Records a failed attempt, for a caller outside the client (the transfer engine restarting
    /// a streamed upload): the error, with no `Retry-After` known.
    pub async fn failed_with(&mut self, error: Error) -> Result<(), Error> {
        self.failed(error.into()).await
    }
}

/// Runs `fut` (everything done for one image) within `budget`; past it the work is dropped
/// (connections closed, partial blobs cleaned up by their writers) and the image fails with
/// [`Error::DeadlineExceeded`].
pub async fn within_budget<T>(
    image: &str,
    budget: Duration,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(budget, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::DeadlineExceeded {
            image: image.to_string(),
            budget,
        }),
    }
}

/// A transport error, with timeouts told apart (they are the common hostile case).
pub(crate) fn network_error(url: &Url, e: reqwest::Error, timeouts: &Timeouts) -> Error {
    if e.is_timeout() {
        let (phase, after) = if e.is_connect() {
            ("connect", timeouts.connect)
        } else {
            ("read", timeouts.idle)
        };
        return Error::Timeout {
            url: show(url),
            phase,
            after,
        };
    }
    let (cause, detail) = classify(&e);
    Error::Network {
        url: show(url),
        cause,
        detail,
        transport: Box::new(e),
    }
}

/// What a transport error is really about, and its root causes as one line. reqwest's own
/// message ("error sending request for url …") hides them in `source()`; the retry decision
/// ([`RetryPolicy::should_retry`] through [`NetworkCause::is_transient`]) and the message both
/// come from here, so every operation classifies a failure the same way.
pub(crate) fn classify(e: &(dyn std::error::Error + 'static)) -> (NetworkCause, String) {
    let mut messages: Vec<String> = Vec::new();
    let mut cause = NetworkCause::Other;
    let mut next = e.source();
    while let Some(err) = next {
        let text = err.to_string();
        // Each layer tends to repeat the one below it ("tcp connect error: Connection refused"
        // above "Connection refused"): keep a message only when it adds something.
        if !messages.iter().any(|m| m.contains(&text)) {
            messages.retain(|m| !text.contains(m.as_str()));
            messages.push(text.clone());
        }
        let lower = text.to_ascii_lowercase();
        let io = err.downcast_ref::<std::io::Error>();
        let found = match io.map(std::io::Error::kind) {
            Some(std::io::ErrorKind::ConnectionRefused) => Some(NetworkCause::ConnectionRefused),
            Some(
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof,
            ) => Some(NetworkCause::ConnectionReset),
            _ if lower.contains("temporary failure in name resolution")
                || (lower.contains("try again") && lower.contains("lookup")) =>
            {
                Some(NetworkCause::DnsUnavailable)
            }
            _ if lower.contains("failed to lookup address")
                || lower.contains("name or service not known")
                || lower.contains("no address associated")
                || lower.contains("dns error") =>
            {
                Some(NetworkCause::DnsNotFound)
            }
            // rustls's errors, whether they arrive as themselves or inside an io::Error.
            _ if lower.contains("certificate")
                || lower.contains("received corrupt message")
                || lower.contains("tls handshake")
                || lower.contains("peer is incompatible")
                || lower.contains("peer misbehaved")
                || lower.contains("received fatal alert") =>
            {
                Some(NetworkCause::Tls)
            }
            _ if lower.contains("proxy") || lower.contains("tunnel") => Some(NetworkCause::Proxy),
            _ => None,
        };
        // The first specific cause, from the outside in, except that a more precise one below
        // a generic DNS message wins ("dns error" above "Temporary failure …").
        match (cause, found) {
            (NetworkCause::Other, Some(c)) => cause = c,
            (NetworkCause::DnsNotFound, Some(NetworkCause::DnsUnavailable)) => {
                cause = NetworkCause::DnsUnavailable
            }
            _ => {}
        }
        next = err.source();
    }
    if messages.is_empty() {
        messages.push(e.to_string());
    }
    (cause, messages.join(": "))
}

/// When a request last made progress (a chunk of its body was taken by the connection), for
/// [`idle_guard`]. reqwest's own read timeout runs from the start of the request to its
/// response headers, so it would cut any upload longer than the timeout.
#[derive(Clone)]
pub(crate) struct Progress(Arc<Mutex<Instant>>);

impl Progress {
    pub fn new() -> Progress {
        Progress(Arc::new(Mutex::new(Instant::now())))
    }

    pub fn touch(&self) {
        if let Ok(mut t) = self.0.lock() {
            *t = Instant::now();
        }
    }

    fn last(&self) -> Instant {
        self.0.lock().map(|t| *t).unwrap_or_else(|_| Instant::now())
    }
}

/// Runs `fut` until it completes or `progress` has not moved for `idle`; `None` then.
pub(crate) async fn idle_guard<T>(
    idle: Duration,
    progress: &Progress,
    fut: impl Future<Output = T>,
) -> Option<T> {
    let mut fut = std::pin::pin!(fut);
    loop {
        let deadline = progress.last() + idle;
        tokio::select! {
            r = &mut fut => return Some(r),
            _ = tokio::time::sleep_until(deadline.into()) => {
                if progress.last() + idle <= Instant::now() {
                    return None;
                }
            }
        }
    }
}

/// The next chunk of a response body, failing after `idle` without one.
pub(crate) async fn next_chunk(
    resp: &mut Response,
    url: &Url,
    timeouts: &Timeouts,
) -> Result<Option<bytes::Bytes>, Error> {
    match tokio::time::timeout(timeouts.idle, resp.chunk()).await {
        Ok(r) => r.map_err(|e| network_error(url, e, timeouts)),
        Err(_) => Err(Error::Timeout {
            url: show(url),
            phase: "read",
            after: timeouts.idle,
        }),
    }
}

/// A body read up to a limit.
pub(crate) enum Capped {
    /// The whole body.
    Whole(bytes::Bytes),
    /// The body is longer than the limit; reading stopped there (nothing more is kept).
    TooLarge,
}

/// Reads at most `limit` bytes of a body, streaming: memory stays within the limit plus one
/// chunk however much the server sends. A declared `Content-Length` over the limit is refused
/// before reading anything.
pub(crate) async fn read_capped(
    resp: &mut Response,
    url: &Url,
    limit: usize,
    timeouts: &Timeouts,
) -> Result<Capped, Error> {
    if resp.content_length().is_some_and(|l| l > limit as u64) {
        return Ok(Capped::TooLarge);
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(c) = next_chunk(resp, url, timeouts).await? {
        if buf.len() + c.len() > limit {
            return Ok(Capped::TooLarge);
        }
        buf.extend_from_slice(&c);
    }
    Ok(Capped::Whole(buf.freeze()))
}
