//! The access log: one logfmt line per request naming the user, never a credential; failed
//! logins counted.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use common::{call, get_sample, parse};
use oci_registry::auth::{Auth, AuthOptions, Htpasswd, protect};
use serving::metrics::instrument;

#[test]
fn access_log_names_the_user_and_never_the_credentials_and_failed_logins_are_counted() {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sink = lines.clone();
    let metrics = Arc::new(
        oci_registry::metrics().with_access_log(move |l| sink.lock().unwrap().push(l.into())),
    );
    let users = format!("ci:{}\n", bcrypt::hash("hunter2-pass", 4).unwrap());
    let auth = Auth::new(
        Htpasswd::default(),
        Htpasswd::parse(&users, std::path::Path::new("w")).unwrap(),
        AuthOptions::default(),
    )
    .unwrap();
    let inner = Router::new().route("/v2/{*rest}", get(|| async { "ok" }));
    let app = instrument(protect(inner, Arc::new(auth)), metrics.clone());
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let good = format!("Basic {}", b64("ci:hunter2-pass"));
    let bad = format!("Basic {}", b64("ci:wrong-pass"));
    let uri = "/v2/a/manifests/v1";
    rt.block_on(async {
        let with_query = format!("{uri}?x=hunter2-pass");
        assert_eq!(
            call(&app, "GET", &with_query, vec![], Some(&good)).await.0,
            200
        );
        assert_eq!(call(&app, "GET", uri, vec![], Some(&bad)).await.0, 401);
        assert_eq!(call(&app, "GET", uri, vec![], Some(&bad)).await.0, 401);
        assert_eq!(call(&app, "GET", uri, vec![], None).await.0, 401);
    });
    let lines = lines.lock().unwrap().clone();
    assert_eq!(lines.len(), 4, "{lines:?}");
    let first = &lines[0];
    for want in [
        "access method=GET ",
        "path=/v2/a/manifests/v1 ",
        "status=200 ",
        "bytes_in=0 ",
        "bytes_out=2 ",
        " ms=",
        "user=ci",
    ] {
        assert!(first.contains(want), "{want} not in {first}");
    }
    assert!(
        lines[1].contains("status=401") && lines[1].ends_with(" user=-"),
        "{}",
        lines[1]
    );
    for l in &lines {
        for secret in [
            "hunter2",
            "wrong-pass",
            b64("ci:hunter2-pass").as_str(),
            "Basic",
        ] {
            assert!(!l.contains(secret), "{secret} leaked into {l}");
        }
    }
    let (_, samples) = parse(&metrics.render());
    assert_eq!(
        get_sample(&samples, "airlock_auth_failures_total", &[]),
        2.0,
        "no credentials is not a failed login"
    );
}
