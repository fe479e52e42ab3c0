//! `airlock webhook`: the admission webhook server. `/mutate` and `/validate` answer kube-apiserver
//! with the `admission` crate (the shared Mapping and Policy); `/healthz`, `/readyz` and
//! `/metrics` are for the kubelet and Prometheus. TLS, certificate reload, request metrics and
//! graceful shutdown come from `serving`, like `airlock serve`. `install` and `uninstall` are in
//! [`install`].

pub mod install;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use admission::{Outcome, SecretLookup};
use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::cli::{WebhookAction, WebhookArgs, WebhookServerArgs};
use crate::exit::Exit;

/// kube-apiserver's own limit on a request body (3 MiB); a review is the object plus a little.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// How long a Secret lookup is trusted: a pull Secret created after a "missing" answer is seen
/// within this time; a burst of pods in one namespace costs one API call.
const SECRET_CACHE_TTL: Duration = Duration::from_secs(30);

pub fn run(args: &WebhookArgs) -> anyhow::Result<Exit> {
    match &args.action {
        Some(WebhookAction::Install(a)) => install::install(a),
        Some(WebhookAction::Uninstall(a)) => install::uninstall(a),
        None => crate::registry::runtime()?.block_on(serve(&args.server)),
    }
}

/// The webhook's configuration from `airlock.yaml` and the flags: the Mapping `rewrite` and
/// `push` use, the Policy `check` uses.
pub fn config(args: &WebhookServerArgs) -> anyhow::Result<admission::Config> {
    let settings = args.config.load()?;
    let mapping = settings.mapping()?;
    let policy = crate::cmd::check::policy_from(&settings)?;
    Ok(admission::Config {
        mapping,
        pull_secret: settings.config.pull_secret.clone(),
        policy,
        mutate_templates: args.behaviour.mutate_templates,
        enforce: match args.behaviour.enforce {
            crate::cli::EnforceMode::Deny => admission::Enforce::Deny,
            crate::cli::EnforceMode::Warn => admission::Enforce::Warn,
        },
        dry_run: args.behaviour.dry_run,
    })
}

/// What the handlers share.
pub struct AppState<S> {
    pub config: admission::Config,
    pub secrets: S,
    pub counters: admission::Counters,
    pub metrics: Arc<serving::metrics::Metrics>,
    /// False once shutdown began, so `/readyz` takes the pod out of the Service first.
    pub ready: AtomicBool,
}

impl<S> AppState<S> {
    pub fn new(config: admission::Config, secrets: S) -> AppState<S> {
        AppState {
            config,
            secrets,
            counters: admission::Counters::default(),
            metrics: Arc::new(serving::metrics::Metrics::new(classify)),
            ready: AtomicBool::new(true),
        }
    }
}

/// The `route` label of the request metrics: a fixed set, whatever the client asks for.
fn classify(path: &str) -> &'static str {
    match path {
        "/mutate" => "mutate",
        "/validate" => "validate",
        "/healthz" | "/readyz" => "health",
        "/metrics" => "metrics",
        _ => "other",
    }
}

/// The webhook's routes with request metrics around them; `/metrics` shows the HTTP series of
/// `serving::metrics` and the admission counters.
pub fn app<S: SecretLookup + Send + Sync + 'static>(state: Arc<AppState<S>>) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/mutate", post(mutate::<S>))
        .route("/validate", post(validate::<S>))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz::<S>))
        .route(serving::metrics::METRICS_PATH, get(metrics_text::<S>))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            serving::metrics::middleware,
        ))
}

async fn readyz<S>(State(s): State<Arc<AppState<S>>>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        "ok".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    }
}

async fn metrics_text<S>(State(s): State<Arc<AppState<S>>>) -> Response {
    let text = format!("{}{}", s.metrics.render(), s.counters.render());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn mutate<S: SecretLookup>(
    State(s): State<Arc<AppState<S>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let req = match read(&s, true, body) {
        Ok(r) => r,
        Err(refused) => return refused.into_response(),
    };
    let (resp, outcome) = admission::mutate(&s.config, &s.secrets, &req).await;
    answer(&s, true, resp, outcome)
}

async fn validate<S: SecretLookup>(
    State(s): State<Arc<AppState<S>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let req = match read(&s, false, body) {
        Ok(r) => r,
        Err(refused) => return refused.into_response(),
    };
    let (resp, outcome) = admission::validate(&s.config, &req);
    answer(&s, false, resp, outcome)
}

type Request = kube::core::admission::AdmissionRequest<kube::core::DynamicObject>;

/// The review in a body, or the error response: 413 over [`MAX_BODY`], 400 for anything that
/// is not an admission.k8s.io/v1 AdmissionReview with a request (there is no uid to echo).
fn read<S>(
    s: &AppState<S>,
    mutate: bool,
    body: Result<Bytes, BytesRejection>,
) -> Result<Request, (StatusCode, String)> {
    let fail = |status: StatusCode, message: String| {
        s.counters.record(mutate, &Outcome::Invalid);
        tracing::warn!(%status, message, "admission request refused");
        (status, format!("airlock webhook: {message}\n"))
    };
    let body = body.map_err(|e| fail(e.status(), e.body_text()))?;
    admission::parse(&body).map_err(|e| fail(StatusCode::BAD_REQUEST, e.to_string()))
}

fn answer<S>(
    s: &AppState<S>,
    mutate: bool,
    resp: kube::core::admission::AdmissionResponse,
    outcome: Outcome,
) -> Response {
    s.counters.record(mutate, &outcome);
    match admission::encode(resp) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("airlock webhook: {e}\n"),
        )
            .into_response(),
    }
}

/// Secrets looked up through the Kubernetes API (metadata only: the webhook never reads a
/// Secret's data), cached for [`SECRET_CACHE_TTL`].
pub struct KubeSecrets {
    client: Option<kube::Client>,
    cache: Mutex<HashMap<(String, String), (bool, Instant)>>,
}

impl KubeSecrets {
    pub fn new(client: Option<kube::Client>) -> KubeSecrets {
        KubeSecrets {
            client,
            cache: Mutex::default(),
        }
    }
}

impl SecretLookup for KubeSecrets {
    async fn secret_exists(&self, namespace: &str, name: &str) -> Result<bool, String> {
        let key = (namespace.to_string(), name.to_string());
        if let Some((exists, at)) = self.cache.lock().ok().and_then(|c| c.get(&key).copied())
            && at.elapsed() < SECRET_CACHE_TTL
        {
            return Ok(exists);
        }
        let Some(client) = &self.client else {
            return Err("no Kubernetes API client".into());
        };
        let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client.clone(), namespace);
        let exists = api
            .get_metadata_opt(name)
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, (exists, Instant::now()));
        }
        Ok(exists)
    }
}

async fn serve(args: &WebhookServerArgs) -> anyhow::Result<Exit> {
    let config = config(args)?;
    // Only a pull secret needs the API; without one the webhook runs with no credentials at all.
    let client = match &config.pull_secret {
        Some(secret) => Some(kube::Client::try_default().await.with_context(|| {
            format!(
                "pull secret {secret} is configured, so the webhook must ask the Kubernetes API \
                 whether it exists in each namespace, but no API client could be set up \
                 (in-cluster service account or kubeconfig)"
            )
        })?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let Some((tls_config, reloader)) =
        crate::listen::server_tls(&args.tls, "webhook", args.listen)?
    else {
        anyhow::bail!(
            "kube-apiserver calls webhooks over HTTPS only: give --tls-cert and --tls-key, or --tls-dir"
        );
    };
    let state = Arc::new(AppState::new(config, KubeSecrets::new(client)));
    let app = app(state.clone());
    let c = &state.config;
    eprintln!(
        "airlock webhook: listening on https://{addr} (mapping {}, templates {}, policy {}{})",
        c.mapping,
        if c.mutate_templates {
            "rewritten"
        } else {
            "left alone"
        },
        match c.enforce {
            admission::Enforce::Deny => "denies",
            admission::Enforce::Warn => "warns",
        },
        if c.dry_run {
            ", DRY RUN: nothing is patched or denied"
        } else {
            ""
        },
    );
    let shutdown = {
        let state = state.clone();
        async move {
            crate::listen::shutdown_signal("webhook").await;
            state.ready.store(false, Ordering::Relaxed);
        }
    };
    serving::serve_app(listener, app, Some(tls_config), shutdown)
        .await
        .context("server failed")?;
    if let Some(r) = reloader {
        r.abort();
    }
    eprintln!("airlock webhook: stopped");
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    /// The API is unreachable: every lookup fails.
    struct Unreachable;

    impl SecretLookup for Unreachable {
        async fn secret_exists(&self, _: &str, _: &str) -> Result<bool, String> {
            Err("connection refused".into())
        }
    }

    fn state() -> Arc<AppState<Unreachable>> {
        let mapping =
            rewrite::Mapping::new("registry.corp:5000", rewrite::Mode::ReplaceHost, vec![])
                .unwrap();
        let config = admission::Config {
            policy: policy::Policy {
                private: Some(mapping.clone()),
                ..policy::Policy::default()
            },
            mapping,
            pull_secret: Some("airlock-pull".into()),
            mutate_templates: false,
            enforce: admission::Enforce::Warn,
            dry_run: false,
        };
        Arc::new(AppState::new(config, Unreachable))
    }

    async fn call(app: Router, req: Request<Body>) -> (StatusCode, String) {
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn post(path: &str, body: Vec<u8>) -> Request<Body> {
        Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn unreachable_api_admits_with_the_image_rewritten_and_a_warning() {
        let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "ci",
                "operation": "CREATE", "userInfo": {"username": "x"},
                "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                           "spec": {"containers": [{"name": "a", "image": "nginx"}]}}}});
        let s = state();
        let (status, body) = call(
            app(s.clone()),
            post("/mutate", serde_json::to_vec(&review).unwrap()),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["response"]["uid"], "u1");
        assert!(v["response"]["patch"].is_string());
        let warning = v["response"]["warnings"][0].as_str().unwrap();
        assert!(warning.contains("connection refused"), "{warning}");
        assert_eq!(s.counters.get(true, "patched"), 1);
    }

    #[tokio::test]
    async fn body_one_byte_over_the_limit_is_413_and_at_the_limit_is_read() {
        let (status, _) = call(app(state()), post("/mutate", vec![b' '; MAX_BODY + 1])).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        // At the limit the body is read, and refused only as not being a review.
        let (status, body) = call(app(state()), post("/validate", vec![b' '; MAX_BODY])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }

    #[tokio::test]
    async fn readyz_fails_once_shutdown_began_and_metrics_bound_the_route_label() {
        let s = state();
        let get = |p: &str| Request::get(p).body(Body::empty()).unwrap();
        assert_eq!(call(app(s.clone()), get("/readyz")).await.0, StatusCode::OK);
        s.ready.store(false, Ordering::Relaxed);
        assert_eq!(
            call(app(s.clone()), get("/readyz")).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            call(app(s.clone()), get("/healthz")).await.0,
            StatusCode::OK
        );
        call(app(s.clone()), get("/no/such/path/x1")).await;
        let (_, text) = call(app(s.clone()), get("/metrics")).await;
        assert!(text.contains("route=\"other\",status=\"404\"} 1"), "{text}");
        assert!(!text.contains("x1"), "{text}");
        assert!(text.contains(
            "airlock_admission_reviews_total{endpoint=\"mutate\",outcome=\"patched\"} 0"
        ));
    }
}
