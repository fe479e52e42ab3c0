//! Metrics middleware over a small Router: counters after N requests, an exposition that parses
//! line by line per the Prometheus text format, and route classification.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, put};
use common::{call, get_sample, parse};
use oci_registry::routes::{RouteClass, classify};
use serving::metrics::{escape_label, instrument};

fn app(metrics: Arc<serving::metrics::Metrics>) -> Router {
    let r = Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route(
            "/v2/{*rest}",
            get(|| async { vec![7u8; 1000] })
                .put(|body: Bytes| async move { format!("{}", body.len()) }),
        )
        .route(
            "/boom",
            put(|| async { (axum::http::StatusCode::BAD_REQUEST, "bad") }),
        );
    instrument(r, metrics)
}

#[tokio::test]
async fn exposition_counts_requests_and_parses_line_by_line() {
    let metrics = Arc::new(oci_registry::metrics());
    let app = app(metrics.clone());
    for _ in 0..3 {
        let (s, b) = call(&app, "GET", "/v2/team/app/blobs/sha256:ab", vec![], None).await;
        assert_eq!((s, b.len()), (200, 1000));
    }
    let (s, _) = call(
        &app,
        "PUT",
        "/v2/team/app/manifests/v1",
        vec![1; 4321],
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(call(&app, "GET", "/nowhere", vec![], None).await.0, 404);
    assert_eq!(call(&app, "PUT", "/boom", vec![], None).await.0, 400);
    assert_eq!(call(&app, "BREW", "/v2/", vec![], None).await.0, 405);

    let (s, body) = call(&app, "GET", "/metrics", vec![], None).await;
    assert_eq!(s, 200);
    let text = String::from_utf8(body).unwrap();
    let (types, samples) = parse(&text);
    assert_eq!(types["airlock_http_requests_total"], "counter");
    assert_eq!(types["airlock_http_request_duration_seconds"], "histogram");
    assert_eq!(types["airlock_http_requests_in_flight"], "gauge");
    let req = "airlock_http_requests_total";
    assert_eq!(
        get_sample(
            &samples,
            req,
            &[("method", "GET"), ("route", "blob"), ("status", "200")]
        ),
        3.0
    );
    assert_eq!(
        get_sample(
            &samples,
            req,
            &[("method", "PUT"), ("route", "manifest"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        get_sample(
            &samples,
            req,
            &[("method", "GET"), ("route", "other"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        get_sample(
            &samples,
            req,
            &[("method", "PUT"), ("route", "other"), ("status", "400")]
        ),
        1.0
    );
    assert_eq!(
        get_sample(
            &samples,
            req,
            &[("method", "OTHER"), ("route", "base"), ("status", "405")]
        ),
        1.0
    );
    let total: f64 = samples.iter().filter(|s| s.0 == req).map(|s| s.2).sum();
    assert_eq!(total, 7.0, "the /metrics request itself is still in flight");
    assert_eq!(
        get_sample(
            &samples,
            "airlock_http_response_bytes_total",
            &[("route", "blob")]
        ),
        3000.0
    );
    assert_eq!(
        get_sample(
            &samples,
            "airlock_http_request_bytes_total",
            &[("route", "manifest")]
        ),
        4321.0
    );
    assert_eq!(
        get_sample(
            &samples,
            "airlock_http_response_bytes_total",
            &[("route", "manifest")]
        ),
        4.0
    );
    assert_eq!(
        get_sample(&samples, "airlock_http_requests_in_flight", &[]),
        1.0
    );
    assert_eq!(
        get_sample(&samples, "airlock_auth_failures_total", &[]),
        0.0
    );

    // Histogram: cumulative buckets ending at +Inf == _count == requests of that class.
    let h = "airlock_http_request_duration_seconds";
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == &format!("{h}_bucket") && l.iter().any(|(k, v)| k == "route" && v == "blob")
        })
        .map(|s| s.2)
        .collect();
    assert_eq!(buckets.len(), serving::metrics::DURATION_BUCKETS.len() + 1);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(*buckets.last().unwrap(), 3.0);
    assert_eq!(
        get_sample(&samples, &format!("{h}_count"), &[("route", "blob")]),
        3.0
    );
    assert_eq!(
        get_sample(
            &samples,
            &format!("{h}_bucket"),
            &[("route", "blob"), ("le", "+Inf")]
        ),
        3.0
    );
    assert!(get_sample(&samples, &format!("{h}_sum"), &[("route", "blob")]) >= 0.0);

    // After the scrape, it is counted too and nothing is in flight.
    let (_, samples) = parse(&metrics.render());
    assert_eq!(
        get_sample(
            &samples,
            req,
            &[("method", "GET"), ("route", "metrics"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        get_sample(&samples, "airlock_http_requests_in_flight", &[]),
        0.0
    );
}

#[test]
fn label_values_are_escaped_per_the_format() {
    let raw = "a\"b\\c\nd";
    let escaped = escape_label(raw);
    assert_eq!(escaped, "a\\\"b\\\\c\\nd");
    let text = format!("# HELP x_total h\n# TYPE x_total counter\nx_total{{l=\"{escaped}\"}} 1\n");
    let (_, samples) = parse(&text);
    assert_eq!(samples[0].1[0].1, raw);
}

#[test]
fn paths_classify_by_their_suffix_even_when_names_look_like_endpoints() {
    for (path, class, repo) in [
        ("/v2/", RouteClass::Base, None),
        ("/v2/_catalog", RouteClass::Catalog, None),
        ("/v2/a/manifests/latest", RouteClass::Manifest, Some("a")),
        (
            "/v2/x/blobs/y/manifests/v1",
            RouteClass::Manifest,
            Some("x/blobs/y"),
        ),
        ("/v2/a/b/blobs/sha256:00", RouteClass::Blob, Some("a/b")),
        ("/v2/a/blobs/uploads/", RouteClass::Upload, Some("a")),
        (
            "/v2/a/blobs/uploads/1234-abcd",
            RouteClass::Upload,
            Some("a"),
        ),
        ("/v2/a/manifests/uploads", RouteClass::Manifest, Some("a")),
        ("/v2/a/tags/list", RouteClass::Tags, Some("a")),
        (
            "/v2/a/referrers/sha256:00",
            RouteClass::Referrers,
            Some("a"),
        ),
        ("/v2/manifests/x", RouteClass::Other, None),
        ("/v2//manifests/x", RouteClass::Other, None),
        ("/token", RouteClass::Token, None),
        ("/etc/passwd", RouteClass::Other, None),
    ] {
        assert_eq!(classify(path), (class, repo), "{path}");
    }
}
