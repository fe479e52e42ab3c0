//! The live cluster through kube-rs: audit of what runs, pull secrets, webhook install.
//!
//! [`connect`] builds a client from a kubeconfig (`--kubeconfig`, `KUBECONFIG`, `~/.kube/config`,
//! with `--context`) or the in-cluster service account, as kubectl does. [`Scope`] names the
//! namespaces a verb works on. [`audit`] reads pods, ServiceAccounts and the pull secret and
//! judges them with the shared `policy::Policy`; [`secrets`] plans and applies the registry's
//! pull secret and the ServiceAccount change that uses it. Lists are read page by page
//! (`limit` / `continue`), and a namespace the credentials cannot read is reported, not fatal.

pub mod audit;
pub mod secrets;

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::de::DeserializeOwned;

pub use kube::Client;

/// What went wrong talking to the cluster. No variant carries a credential: the API server's
/// messages are kept, request bodies never are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot use the kubeconfig {}: {source}", path.as_ref().map_or("(KUBECONFIG or ~/.kube/config)".to_string(), |p| p.display().to_string()))]
    Kubeconfig {
        path: Option<PathBuf>,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "no cluster to talk to: no usable kubeconfig (KUBECONFIG, ~/.kube/config or --kubeconfig) and not running in a pod ({source})"
    )]
    NoConfig {
        #[source]
        source: kube::config::InferConfigError,
    },
    #[error("cannot build a client for {url}: {source}")]
    Client {
        url: String,
        #[source]
        source: kube::Error,
    },
    /// The API server refused or failed a request and said why (a `Status` object).
    #[error("{verb} {what}: the API server answered {code} {reason}: {message}")]
    Api {
        verb: &'static str,
        what: String,
        code: u16,
        reason: String,
        message: String,
    },
    /// The request did not get an answer: connection, TLS, timeout, an unreadable body.
    #[error("{verb} {what}: {source}")]
    Request {
        verb: &'static str,
        what: String,
        #[source]
        source: kube::Error,
    },
    /// A list kept handing back the same `continue` token: following it would never end.
    #[error("listing {what}: the API server repeated the continue token; stopped")]
    ContinueLoop { what: String },
    /// A Secret of the name airlock writes exists and was not written by airlock.
    #[error(
        "Secret {namespace}/{name} exists and was not created by airlock (no label {MANAGED_BY}={MANAGER}); not changed: choose another --name or delete it"
    )]
    NotOurs { namespace: String, name: String },
    /// The ServiceAccount to add the pull secret to does not exist.
    #[error("ServiceAccount {namespace}/{name} does not exist; not created")]
    NoServiceAccount { namespace: String, name: String },
}

impl Error {
    /// Whether the cluster could not be reached or failed on its side (exit 3), rather than
    /// refusing what this side asked or how it is configured (exit 2).
    pub fn is_network(&self) -> bool {
        match self {
            Error::Request { .. } | Error::ContinueLoop { .. } => true,
            Error::Api { code, .. } => *code >= 500,
            _ => false,
        }
    }

    /// Whether the credentials may not do this (HTTP 403).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Error::Api { code: 403, .. })
    }

    fn from_kube(verb: &'static str, what: impl Into<String>, e: kube::Error) -> Error {
        match e {
            kube::Error::Api(status) => Error::Api {
                verb,
                what: what.into(),
                code: status.code,
                reason: status.reason,
                message: status.message,
            },
            source => Error::Request {
                verb,
                what: what.into(),
                source,
            },
        }
    }
}

/// The label airlock puts on what it creates, and checks before changing anything.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGER: &str = "airlock";

/// Where the client's configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// A kubeconfig file; `None` means `KUBECONFIG`, `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig other than its current one.
    pub context: Option<String>,
}

/// A client as kubectl would build one: the kubeconfig named, else `KUBECONFIG` or
/// `~/.kube/config`, else the pod's service account.
pub async fn connect(opts: &ConnectOptions) -> Result<Client, Error> {
    let options = KubeConfigOptions {
        context: opts.context.clone(),
        ..Default::default()
    };
    let config = match (&opts.kubeconfig, &opts.context) {
        (Some(path), _) => {
            let fail = |source| Error::Kubeconfig {
                path: Some(path.clone()),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(fail)?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(fail)?
        }
        // A context only means something in a kubeconfig: no falling back to in-cluster.
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|source| Error::Kubeconfig { path: None, source })?,
        (None, None) => kube::Config::infer()
            .await
            .map_err(|source| Error::NoConfig { source })?,
    };
    let url = config.cluster_url.to_string();
    Client::try_from(config).map_err(|source| Error::Client { url, source })
}

/// Which namespaces a verb works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The kubeconfig context's namespace (`default` when it names none).
    Default,
    /// Namespaces named on the command line (`-n`, repeatable).
    Named(Vec<String>),
    /// Every namespace (`-A`).
    All,
    /// Namespaces whose labels match a selector (`-l`).
    Selector(String),
}

impl Scope {
    /// The namespace names, sorted, listing the cluster's namespaces when the scope asks for
    /// all or a selection.
    pub async fn namespaces(&self, client: &Client, page: u32) -> Result<Vec<String>, Error> {
        let mut names = match self {
            Scope::Default => vec![client.default_namespace().to_string()],
            Scope::Named(names) => names.clone(),
            Scope::All | Scope::Selector(_) => {
                let mut lp = ListParams::default();
                if let Scope::Selector(s) = self {
                    lp = lp.labels(s);
                }
                let api: Api<Namespace> = Api::all(client.clone());
                list_all(&api, lp, page, "namespaces")
                    .await?
                    .into_iter()
                    .filter_map(|n| n.metadata.name)
                    .collect()
            }
        };
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// Every item of a list, `page` at a time, following `metadata.continue` to the end.
pub(crate) async fn list_all<K>(
    api: &Api<K>,
    mut lp: ListParams,
    page: u32,
    what: &str,
) -> Result<Vec<K>, Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    lp.limit = Some(page.max(1));
    let mut items = Vec::new();
    loop {
        let list = api
            .list(&lp)
            .await
            .map_err(|e| Error::from_kube("list", what, e))?;
        items.extend(list.items);
        match list.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) if lp.continue_token.as_deref() == Some(token.as_str()) => {
                return Err(Error::ContinueLoop { what: what.into() });
            }
            Some(token) => lp.continue_token = Some(token),
            None => return Ok(items),
        }
    }
}

/// The page size when the caller has no opinion: kubectl's `--chunk-size` default.
pub const DEFAULT_PAGE: u32 = 500;
