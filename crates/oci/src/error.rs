//! The one error type of the crate. Variants carry the structured facts a caller needs to report
//! a failure or map it to an exit code (image, digest, url, status, path) — never a credential.

use std::path::PathBuf;

use crate::digest::{Digest, InvalidDigest};

/// Everything that can go wrong talking to a registry, reading a layout or moving an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A string that is not a `sha256:<64 hex>` or `sha512:<128 hex>` digest.
    #[error("invalid digest {digest:?} (only sha256:<64 hex> and sha512:<128 hex> are supported)")]
    InvalidDigest {
        /// The text that failed to parse.
        digest: String,
    },

    /// The registry answered with a status the operation does not accept.
    #[error("{method} {url}: HTTP {status}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Status {
        /// HTTP method.
        method: String,
        /// Request URL (never contains credentials).
        url: String,
        /// HTTP status code.
        status: u16,
        /// The registry's error code and message, when it sent the distribution error body.
        detail: Option<String>,
    },

    /// The registry refused our credentials (or we had none).
    #[error("{url}: unauthorized (HTTP {status}); check credentials for {host}")]
    Unauthorized {
        /// Registry host.
        host: String,
        /// Request URL.
        url: String,
        /// 401 or 403.
        status: u16,
    },

    /// A manifest does not exist.
    #[error("manifest {image} not found")]
    ManifestNotFound {
        /// `registry/repository:tag` or `@digest`.
        image: String,
    },

    /// A blob does not exist.
    #[error("blob {digest} not found in {repository}")]
    BlobNotFound {
        /// Where it was looked for (`registry/repository` or a layout path).
        repository: String,
        /// The missing blob.
        digest: Digest,
    },

    /// Bytes that did not hash to the digest that names them; nothing was kept.
    #[error("digest mismatch for {url}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Where the bytes came from.
        url: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },

    /// A blob whose length differs from its descriptor; nothing was kept.
    #[error("size mismatch for {digest} from {url}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// Where the bytes came from.
        url: String,
        /// The blob.
        digest: Digest,
        /// Size from the descriptor.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },

    /// Connection, DNS, TLS, proxy or protocol failure (after the retries its cause allows).
    #[error("{url}: {cause}: {detail}{}", cause.hint())]
    Network {
        /// Request URL.
        url: String,
        /// What failed, as far as the transport says: decides whether a retry can help.
        cause: NetworkCause,
        /// The root causes the transport error holds, outermost first (the HTTP client's own
        /// message, "error sending request", says nothing; what it wraps does).
        detail: String,
        /// The transport error itself (the HTTP client's own type, boxed so that this crate
        /// does not link the HTTP client). Not the error's `source()`: `detail` already holds
        /// its chain, and a chain printed twice hides the point.
        transport: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Retries exhausted on 5xx / 429.
    #[error("{url}: giving up after {attempts} attempts (last HTTP {status})")]
    RetriesExhausted {
        /// Request URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// Last status seen.
        status: u16,
    },

    /// A file-system operation failed (full disk, permissions, …).
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A manifest, index or `index.json` that could not be understood.
    #[error("invalid manifest {image}: {reason}")]
    InvalidManifest {
        /// Which document.
        image: String,
        /// What is wrong.
        reason: String,
    },

    /// A media type airlock does not know how to copy.
    #[error("unsupported media type {media_type:?} for {image}")]
    UnsupportedMediaType {
        /// Which document.
        image: String,
        /// Its media type.
        media_type: String,
    },

    /// Client configuration that cannot work (unreadable CA file, bad option, …).
    #[error("client configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },

    /// Credentials could not be read (config.json or a credential helper failed).
    #[error("credentials for {host}: {reason}")]
    Credentials {
        /// Registry host.
        host: String,
        /// What failed (never the secret itself).
        reason: String,
    },

    /// A token endpoint refused us or answered something unusable.
    #[error("token from {realm} for {scope}: {reason}")]
    Token {
        /// The realm URL.
        realm: String,
        /// The scopes asked for.
        scope: String,
        /// What failed.
        reason: String,
    },

    /// A reference names no image in a layout.
    #[error("{name} not found in layout {path}", path = path.display())]
    NotInLayout {
        /// The layout directory.
        path: PathBuf,
        /// The `org.opencontainers.image.ref.name` looked for.
        name: String,
    },

    /// A request made no progress for too long: no connection, or no byte of the response
    /// within the idle timeout. Transient: the retry policy tries again.
    #[error("{url}: {phase} timed out after {after:?}")]
    Timeout {
        /// Request URL.
        url: String,
        /// `connect`, or `read` (no byte received for `after`).
        phase: &'static str,
        /// The timeout that expired.
        after: std::time::Duration,
    },

    /// An image took longer than its overall budget (a registry trickling bytes, retries that
    /// add up); whatever was in flight for it was abandoned.
    #[error("{image}: gave up after the budget of {budget:?} per image")]
    DeadlineExceeded {
        /// The image (or operation) that ran out of time.
        image: String,
        /// The budget that was exhausted.
        budget: std::time::Duration,
    },

    /// Credentials would have travelled in clear text: a plain-`http` URL (a token realm, an
    /// upload location) on a host that is not marked insecure.
    #[error(
        "refusing to send credentials for {host} over plain HTTP to {url}; mark {target} insecure if that network is trusted"
    )]
    InsecureCredentials {
        /// The registry the credentials are for.
        host: String,
        /// Where they would have gone (without query).
        url: String,
        /// The `host[:port]` that would have to be marked insecure.
        target: String,
    },

    /// A byte range outside a blob (a registry answers 416).
    #[error("range {start}..{end} of blob {digest} is outside its {size} bytes")]
    RangeNotSatisfiable {
        /// The blob.
        digest: Digest,
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// The blob's size.
        size: u64,
    },

    /// A repository and tag that name different images in a layout (two full names, from two
    /// registries, with the same repository path and tag): serving either would be a guess.
    #[error("{repository}:{tag} is ambiguous in layout {path}: {}", names.join(", "), path = path.display())]
    AmbiguousTag {
        /// The layout directory.
        path: PathBuf,
        /// The repository asked for.
        repository: String,
        /// The tag asked for.
        tag: String,
        /// The full names that match, with different digests.
        names: Vec<String>,
    },

    /// A platform filter matched nothing in an index.
    #[error("no manifest in {image} matches platforms {platforms}")]
    NoMatchingPlatform {
        /// The image.
        image: String,
        /// The filter, comma separated.
        platforms: String,
    },

    /// Indexes nested deeper than airlock follows (an index of indexes is legitimate two or
    /// three levels down; thousands of levels are an attack on the stack or the request count).
    #[error("{image}: index {digest} is nested more than {max} indexes deep")]
    IndexTooDeep {
        /// The image being read.
        image: String,
        /// The first descriptor beyond the limit.
        digest: Digest,
        /// The limit.
        max: usize,
    },
    /// A write to a store that only serves (an archive read in place).
    #[error("{what} is read-only")]
    ReadOnly {
        /// The store refusing the write (an archive path).
        what: String,
    },

    /// A tar archive that cannot be served as it is: truncated, corrupt, or with entries a
    /// layout archive never has (links or directories named like blobs, names that escape).
    #[error("archive {path}: entry {entry:?} at byte {offset}: {reason}", path = path.display())]
    InvalidArchive {
        /// The archive.
        path: PathBuf,
        /// The entry's name (lossy UTF-8), empty when no header could be read.
        entry: String,
        /// Where the entry's header starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Why a request never got an answer, told apart because the fixes differ and because only
/// some of them can pass by themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetworkCause {
    /// Nothing listens on that address (yet: a registry starting up), or a firewall rejects.
    ConnectionRefused,
    /// The connection was reset or closed mid-request.
    ConnectionReset,
    /// The host name does not resolve (NXDOMAIN, no such host): retrying will not create it.
    DnsNotFound,
    /// The resolver could not answer now (no DNS server reachable, EAI_AGAIN).
    DnsUnavailable,
    /// The TLS handshake failed: a certificate not trusted or not for this name, or a server
    /// that does not speak TLS at all.
    Tls,
    /// The proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`) could not be reached or refused the
    /// tunnel.
    Proxy,
    /// Anything else the transport reported.
    Other,
}

impl NetworkCause {
    /// Whether another attempt can succeed without anyone changing anything.
    pub fn is_transient(self) -> bool {
        !matches!(
            self,
            NetworkCause::DnsNotFound | NetworkCause::Tls | NetworkCause::Proxy
        )
    }

    /// What to do about it, for the message (empty when there is nothing specific to say).
    pub fn hint(self) -> &'static str {
        match self {
            NetworkCause::ConnectionRefused => {
                " (is the registry running and listening on that host and port?)"
            }
            NetworkCause::DnsNotFound | NetworkCause::DnsUnavailable => {
                " (check the host name, /etc/resolv.conf, or set HTTPS_PROXY if the network needs a proxy)"
            }
            NetworkCause::Tls => {
                " (a registry with a private CA needs --ca-file; one that speaks plain HTTP needs --insecure HOST:PORT)"
            }
            NetworkCause::Proxy => " (check HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY)",
            NetworkCause::ConnectionReset | NetworkCause::Other => "",
        }
    }
}

impl std::fmt::Display for NetworkCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NetworkCause::ConnectionRefused => "connection refused",
            NetworkCause::ConnectionReset => "connection reset",
            NetworkCause::DnsNotFound => "DNS: host not found",
            NetworkCause::DnsUnavailable => "DNS: resolver unavailable",
            NetworkCause::Tls => "TLS handshake failed",
            NetworkCause::Proxy => "proxy failed",
            NetworkCause::Other => "network error",
        })
    }
}

impl From<InvalidDigest> for Error {
    fn from(e: InvalidDigest) -> Error {
        Error::InvalidDigest { digest: e.digest }
    }
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether retrying the whole operation later could help (network, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Network { cause, .. } => cause.is_transient(),
            Error::RetriesExhausted { .. } | Error::Timeout { .. } => true,
            Error::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
