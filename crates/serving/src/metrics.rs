//! Request metrics and access logs for airlock's servers: a middleware over any axum `Router`
//! counting requests by method, route class (the server's own classifier: a bounded label set) and
//! status, bytes in and out, durations (to the last
//! byte of the response) and requests in flight; a `/metrics` endpoint in the Prometheus text
//! exposition format (0.0.4); and one access log line per request (logfmt, on stderr unless
//! [`Metrics::with_access_log`] sends it elsewhere), written when the request is accounted for.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::BodyExt;

use crate::{AuthenticatedUser, LoginFailed};

/// Where [`router`] serves the exposition.
pub const METRICS_PATH: &str = "/metrics";

/// Histogram bucket bounds in seconds: from a HEAD on a cached manifest to a multi-GB blob.
pub const DURATION_BUCKETS: [f64; 15] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Methods outside this set are counted as `OTHER`, keeping the label set bounded.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[derive(Default)]
struct Histogram {
    /// Per bucket (not cumulative); the last slot is +Inf.
    counts: [u64; DURATION_BUCKETS.len() + 1],
    sum: f64,
}

#[derive(Default)]
struct Series {
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    bytes_in: BTreeMap<&'static str, u64>,
    bytes_out: BTreeMap<&'static str, u64>,
    durations: BTreeMap<&'static str, Histogram>,
}

/// Names the route class of a request path, for the `route` label. It must return few distinct
/// values: never a repository name, digest or anything else a client chooses.
pub type Classifier = fn(&str) -> &'static str;

/// Where access log lines go.
type AccessSink = Box<dyn Fn(&str) + Send + Sync>;

/// The counters; share one `Arc<Metrics>` between [`instrument`] and whoever else reports.
pub struct Metrics {
    classify: Classifier,
    access_log: AccessSink,
    series: Mutex<Series>,
    in_flight: AtomicI64,
    login_failures: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Escapes a label value per the exposition format: backslash, double quote and line feed.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Prometheus float formatting: `+Inf`, and integers without a fraction.
fn num(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

impl Metrics {
    /// Counters whose `route` label comes from `classify`.
    pub fn new(classify: Classifier) -> Metrics {
        Metrics {
            classify,
            access_log: Box::new(|line| eprintln!("{line}")),
            series: Mutex::default(),
            in_flight: AtomicI64::default(),
            login_failures: AtomicU64::default(),
        }
    }

    /// Sends the access log lines to `sink` instead of stderr.
    pub fn with_access_log(mut self, sink: impl Fn(&str) + Send + Sync + 'static) -> Metrics {
        self.access_log = Box::new(sink);
        self
    }

    /// Counts one refused login (also done by [`middleware`] for responses marked
    /// [`LoginFailed`]).
    pub fn login_failed(&self) {
        self.login_failures.fetch_add(1, Ordering::Relaxed);
    }

    fn record(
        &self,
        method: &'static str,
        class: &'static str,
        status: u16,
        d: f64,
        i: u64,
        o: u64,
    ) {
        let Ok(mut s) = self.series.lock() else {
            return;
        };
        *s.requests.entry((method, class, status)).or_default() += 1;
        *s.bytes_in.entry(class).or_default() += i;
        *s.bytes_out.entry(class).or_default() += o;
        let h = s.durations.entry(class).or_default();
        let slot = DURATION_BUCKETS
            .iter()
            .position(|b| d <= *b)
            .unwrap_or(DURATION_BUCKETS.len());
        h.counts[slot] += 1;
        h.sum += d;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        let Ok(s) = self.series.lock() else {
            return out;
        };
        family(
            &mut out,
            "airlock_http_requests_total",
            "counter",
            "HTTP requests answered, by method, route class and status.",
        );
        for ((m, c, st), v) in &s.requests {
            let _ = writeln!(
                out,
                "airlock_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{st}\"}} {v}",
                escape_label(m),
                escape_label(c)
            );
        }
        for (name, help, map) in [
            (
                "airlock_http_request_bytes_total",
                "Request body bytes received, by route class.",
                &s.bytes_in,
            ),
            (
                "airlock_http_response_bytes_total",
                "Response body bytes sent, by route class.",
                &s.bytes_out,
            ),
        ] {
            family(&mut out, name, "counter", help);
            for (c, v) in map {
                let _ = writeln!(out, "{name}{{route=\"{}\"}} {v}", escape_label(c));
            }
        }
        let name = "airlock_http_request_duration_seconds";
        family(
            &mut out,
            name,
            "histogram",
            "Time from request to the last response byte, by route class.",
        );
        for (c, h) in &s.durations {
            let route = escape_label(c);
            let mut cumulative = 0;
            for (i, bound) in DURATION_BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .enumerate()
            {
                cumulative += h.counts[i];
                let _ = writeln!(
                    out,
                    "{name}_bucket{{route=\"{route}\",le=\"{}\"}} {cumulative}",
                    num(bound)
                );
            }
            let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {}", num(h.sum));
            let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {cumulative}");
        }
        drop(s);
        family(
            &mut out,
            "airlock_http_requests_in_flight",
            "gauge",
            "Requests being answered now (until their last response byte).",
        );
        let _ = writeln!(
            out,
            "airlock_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "airlock_auth_failures_total",
            "counter",
            "Requests whose credentials were refused.",
        );
        let _ = writeln!(
            out,
            "airlock_auth_failures_total {}",
            self.login_failures.load(Ordering::Relaxed)
        );
        out
    }
}

/// Accounts for one request from its arrival until its response body is finished or dropped; a
/// request dropped before any response (the client went away) is recorded with status 499.
struct Guard {
    metrics: Arc<Metrics>,
    start: Instant,
    method: &'static str,
    class: &'static str,
    path: String,
    status: Option<u16>,
    user: Option<String>,
    bytes_in: Arc<AtomicU64>,
    bytes_out: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        let d = self.start.elapsed();
        let status = self.status.unwrap_or(499);
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        self.metrics.record(
            self.method,
            self.class,
            status,
            d.as_secs_f64(),
            bytes_in,
            self.bytes_out,
        );
        // Path only: a query string may carry anything. Never a header.
        let line = format!(
            "access method={} path={} status={status} bytes_in={bytes_in} bytes_out={} ms={:.1} user={}",
            self.method,
            logfmt_value(&self.path),
            self.bytes_out,
            d.as_secs_f64() * 1000.0,
            logfmt_value(self.user.as_deref().unwrap_or("-")),
        );
        (self.metrics.access_log)(&line);
    }
}

/// `v` bare when it is plain printable ASCII, else quoted with escapes: a client's path can
/// never split a line or forge a field.
fn logfmt_value(v: &str) -> String {
    let plain = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'=' | b'\\'));
    if plain {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

/// The middleware: see the module documentation.
pub async fn middleware(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let class = (metrics.classify)(req.uri().path());
    let bytes_in = Arc::new(AtomicU64::new(0));
    let mut guard = Guard {
        metrics: metrics.clone(),
        start: Instant::now(),
        method: method_label(req.method()),
        class,
        path: req.uri().path().to_string(),
        status: None,
        user: None,
        bytes_in: bytes_in.clone(),
        bytes_out: 0,
    };
    let req = req.map(|b| {
        Body::new(b.map_frame(move |f| {
            if let Some(d) = f.data_ref() {
                bytes_in.fetch_add(d.len() as u64, Ordering::Relaxed);
            }
            f
        }))
    });
    let resp = next.run(req).await;
    guard.status = Some(resp.status().as_u16());
    guard.user = resp
        .extensions()
        .get::<AuthenticatedUser>()
        .map(|u| u.0.clone());
    if resp.extensions().get::<LoginFailed>().is_some() {
        metrics.login_failed();
    }
    resp.map(|b| {
        Body::new(b.map_frame(move |f| {
            // The whole guard, not just the field (closures capture disjoint fields): it must
            // live, and record at its drop, exactly as long as the response body.
            let g = &mut guard;
            if let Some(d) = f.data_ref() {
                g.bytes_out += d.len() as u64;
            }
            f
        }))
    })
}

/// A router serving [`METRICS_PATH`].
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        METRICS_PATH,
        get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    m.render(),
                )
                    .into_response()
            }
        }),
    )
}

/// `app` with [`METRICS_PATH`] added and every request (including `/metrics` and unmatched
/// paths) counted and logged. Apply it outermost, after any authentication layer, so refused
/// requests are counted too; `/metrics` itself is then reachable without credentials.
pub fn instrument(app: Router, metrics: Arc<Metrics>) -> Router {
    app.merge(router(metrics.clone()))
        .layer(axum::middleware::from_fn_with_state(metrics, middleware))
}
