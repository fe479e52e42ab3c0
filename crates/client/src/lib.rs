//! The distribution-spec registry client on reqwest: one [`Client`] talks to any number of
//! registries, authenticates (anonymous, basic, bearer tokens), retries transient failures and
//! streams verified blobs. Must not depend on the layout store or the transfer engine.
//!
//! Operations live in [`manifest`](self) and blob submodules; this module holds the options and
//! [`Repo`] naming, `send` the per-request machinery (authentication, challenges) and `policy`
//! the timeouts, the one retry loop and the caps on response bodies.

pub mod auth;
pub(crate) mod blob;
mod manifest;
mod policy;
mod send;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Mutex;

pub use auth::Credential;
pub use blob::{MONOLITHIC_MAX, MountResult, UploadSession};
pub use manifest::{Manifest, ManifestHead};
pub use oci::stream::BlobStream;
pub use policy::{
    Attempts, MAX_ERROR_BODY, MAX_TOKEN_RESPONSE, RetryPolicy, Timeouts, within_budget,
};
#[doc(hidden)]
pub use send::{parse_error_detail, parse_retry_after};

use crate::auth::AuthCache;
use oci::error::Error;

/// How a [`Client`] behaves.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Hosts (`host[:port]`) that may be spoken to over plain HTTP. Every other host is HTTPS only.
    pub insecure_hosts: Vec<String>,
    /// A PEM file of extra CA certificates to trust (added to the system roots).
    pub ca_file: Option<PathBuf>,
    /// Credentials for every host (`--creds user:pass`); takes precedence over `host_creds`
    /// and the docker config.
    pub creds: Option<Credential>,
    /// Credentials per registry host (`host[:port]` as in image references).
    pub host_creds: HashMap<String, Credential>,
    /// Whether to look credentials up in `~/.docker/config.json` and credential helpers.
    pub docker_config: bool,
    /// Where `config.json` is; `None` reads `$DOCKER_CONFIG`, else `$HOME/.docker`. A missing
    /// directory or file means no credentials (anonymous), not an error.
    pub docker_config_dir: Option<PathBuf>,
    /// How many blob transfers may run at once (the transfer engine's default).
    pub max_concurrency: usize,
    /// When and how often a failed operation is tried again.
    pub retry: RetryPolicy,
    /// Connect and idle timeouts per request, and the budget per image.
    pub timeouts: Timeouts,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_hosts: Vec::new(),
            ca_file: None,
            creds: None,
            host_creds: HashMap::new(),
            docker_config: true,
            docker_config_dir: None,
            max_concurrency: 8,
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
        }
    }
}

/// A repository on a registry: `registry` is the host as in image references (`docker.io`,
/// `localhost:5000`), `name` the repository path (`library/nginx`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repo {
    /// Registry host as written in references, with port.
    pub registry: String,
    /// Repository path.
    pub name: String,
}

impl Repo {
    /// A repository from its parts.
    pub fn new(registry: impl Into<String>, name: impl Into<String>) -> Repo {
        Repo {
            registry: registry.into(),
            name: name.into(),
        }
    }

    /// The repository an image reference names (Docker Hub normalisation applied).
    pub fn from_reference(r: &imgref::Reference) -> Repo {
        Repo::new(r.registry(), r.repository())
    }

    /// The host the API is served from: Docker Hub's API is `registry-1.docker.io`.
    pub fn api_host(&self) -> &str {
        match self.registry.as_str() {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        }
    }
}

impl std::fmt::Display for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

/// A registry client; cheap to clone (shared connection pool, token cache and credentials).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    opts: ClientOptions,
    auth: Mutex<AuthCache>,
    creds: Mutex<HashMap<String, Option<Credential>>>,
}

impl Client {
    /// Builds a client; fails only on unusable options (unreadable or invalid CA file).
    pub fn new(opts: ClientOptions) -> Result<Client, Error> {
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(opts.timeouts.connect)
            // No reqwest read_timeout: it runs from the start of a request to its headers and
            // would cut long uploads. The idle timeout is enforced per read in `policy`.
            .pool_max_idle_per_host(opts.max_concurrency.max(1) * 2);
        if let Some(path) = &opts.ca_file {
            let pem = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Config {
                reason: format!("CA file {}: {e}", path.display()),
            })?;
            if certs.is_empty() {
                return Err(Error::Config {
                    reason: format!("CA file {} holds no certificate", path.display()),
                });
            }
            b = b.tls_certs_merge(certs);
        }
        let http = b.build().map_err(|e| {
            // reqwest says only "builder error"; the cause (most often: no CA certificates on
            // this machine, common inside an air gap) is further down the chain.
            let mut reason = format!("cannot set up the HTTP client: {e}");
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                reason.push_str(&format!(": {c}"));
                cause = c.source();
            }
            reason.push_str(
                " (a machine with no CA store in /etc/ssl/certs needs --ca-file, even for \
                 plain-HTTP registries)",
            );
            Error::Config { reason }
        })?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                opts,
                auth: Mutex::new(AuthCache::default()),
                creds: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The options this client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    /// `scheme://api-host/v2/<name>/<rest>`.
    fn url(&self, repo: &Repo, rest: &str) -> Result<reqwest::Url, Error> {
        let host = repo.api_host();
        let scheme = if self.is_insecure(&repo.registry) || self.is_insecure(host) {
            "http"
        } else {
            "https"
        };
        let s = format!("{scheme}://{host}/v2/{}/{rest}", repo.name);
        reqwest::Url::parse(&s).map_err(|e| Error::Config {
            reason: format!("bad URL {s}: {e}"),
        })
    }

    fn is_insecure(&self, host: &str) -> bool {
        self.inner.opts.insecure_hosts.iter().any(|h| h == host)
    }

    /// Whether `url` may carry credentials: HTTPS always, plain HTTP only to a host the user
    /// marked insecure (a token realm or an upload `Location` chosen by the server could
    /// otherwise send them in clear text).
    fn check_clear_text(&self, registry: &str, url: &reqwest::Url) -> Result<(), Error> {
        if url.scheme() != "http" {
            return Ok(());
        }
        let host = url.host_str().unwrap_or("");
        let target = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        if self.is_insecure(&target) {
            return Ok(());
        }
        Err(Error::InsecureCredentials {
            host: registry.to_string(),
            url: send::show(url),
            target,
        })
    }

    /// The credential for a registry: `--creds`, then per-host, then the docker config (looked
    /// up once per host).
    async fn credential(&self, registry: &str) -> Result<Option<Credential>, Error> {
        let opts = &self.inner.opts;
        if let Some(c) = &opts.creds {
            return Ok(Some(c.clone()));
        }
        if let Some(c) = opts.host_creds.get(registry) {
            return Ok(Some(c.clone()));
        }
        if !opts.docker_config {
            return Ok(None);
        }
        let mut cache = self.inner.creds.lock().await;
        if let Some(c) = cache.get(registry) {
            return Ok(c.clone());
        }
        let host = registry.to_string();
        let dir = opts
            .docker_config_dir
            .clone()
            .or_else(|| crate::auth::docker_config_dir(|k| std::env::var_os(k)));
        let found = tokio::task::spawn_blocking(move || {
            crate::auth::from_docker_config_in(dir.as_deref(), &host)
        })
        .await
        .map_err(|e| Error::Credentials {
            host: registry.to_string(),
            reason: e.to_string(),
        })??;
        cache.insert(registry.to_string(), found.clone());
        Ok(found)
    }
}
