//! skopeo, a real client, against TLS + auth + metrics on a loopback socket: it must trust the
//! generated CA, follow the Bearer challenge to `/token` with `--creds`, and be refused with
//! wrong credentials.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use oci_registry::auth::{Auth, AuthOptions, Htpasswd, protect};
use serving::metrics::instrument;
use serving::tls;

async fn tags(Path(name): Path<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let name = name.strip_suffix("/tags/list").unwrap_or(&name).to_string();
    (
        [("content-type", "application/json")],
        serde_json::json!({"name": name, "tags": ["v1", "v2"]}).to_string(),
    )
        .into_response()
}

async fn skopeo(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new("skopeo")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("skopeo is installed (apt-get install skopeo)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_follows_the_token_flow_over_tls_with_creds() {
    let dir = tempfile::tempdir().unwrap();
    let s = tls::self_signed(&dir.path().join("tls"), "127.0.0.1", &[]).unwrap();
    // skopeo's --cert-dir takes CA certificates named *.crt.
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::copy(&s.ca_cert, certs.join("ca.crt")).unwrap();

    let hash = |p: &str| bcrypt::hash(p, 4).unwrap();
    let read = Htpasswd::parse(&format!("node:{}\n", hash("node-pw")), "r".as_ref()).unwrap();
    let write = Htpasswd::parse(&format!("ci:{}\n", hash("ci-pw")), "w".as_ref()).unwrap();
    let auth = Arc::new(
        Auth::new(
            read,
            write,
            AuthOptions {
                https: true,
                ..AuthOptions::default()
            },
        )
        .unwrap(),
    );
    let metrics = Arc::new(oci_registry::metrics());
    let inner = Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route("/v2/{*name}", get(tags));
    let app = instrument(protect(inner, auth), metrics.clone());

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(s.config))
        .unwrap()
        .handle(handle.clone());
    tokio::spawn(server.serve(app.into_make_service()));

    let image = format!("docker://127.0.0.1:{port}/team/app");
    let cert_dir = certs.to_str().unwrap();
    for creds in ["node:node-pw", "ci:ci-pw"] {
        let (ok, out, err) = skopeo(&[
            "list-tags",
            "--cert-dir",
            cert_dir,
            "--creds",
            creds,
            &image,
        ])
        .await;
        assert!(ok, "skopeo list-tags as {creds}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Tags"], serde_json::json!(["v1", "v2"]), "{out}");
    }
    let (ok, _, err) = skopeo(&[
        "list-tags",
        "--cert-dir",
        cert_dir,
        "--creds",
        "ci:wrong",
        &image,
    ])
    .await;
    assert!(!ok);
    assert!(
        err.contains("401") || err.to_lowercase().contains("unauthorized"),
        "{err}"
    );
    // Without the CA, skopeo refuses the certificate.
    let (ok, _, err) = skopeo(&["list-tags", "--creds", "ci:ci-pw", &image]).await;
    assert!(!ok);
    assert!(err.contains("certificate"), "{err}");

    let text = metrics.render();
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} not in\n{text}"))
            .to_string()
    };
    assert!(
        line("airlock_http_requests_total{method=\"GET\",route=\"token\",status=\"200\"}")
            .ends_with(" 2")
    );
    assert!(
        line("airlock_http_requests_total{method=\"GET\",route=\"tags\",status=\"200\"}")
            .ends_with(" 2")
    );
    assert!(
        !line("airlock_auth_failures_total").ends_with(" 0"),
        "{text}"
    );
    handle.shutdown();
}
