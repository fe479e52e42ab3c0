//! TLS over a real loopback socket: a generated CA trusted by a reqwest client, bad PEM files
//! named in errors, and certificate rotation picked up without a restart.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use serving::tls;

fn app() -> Router {
    Router::new().route("/v2/", get(|| async { "{}" }))
}

/// Serves `app()` over TLS on an ephemeral loopback port.
async fn serve(config: RustlsConfig) -> (SocketAddr, axum_server::Handle<SocketAddr>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, config)
        .unwrap()
        .handle(handle.clone());
    tokio::spawn(server.serve(app().into_make_service()));
    (addr, handle)
}

fn client_trusting(ca_pem: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca_pem).unwrap();
    let certs = reqwest::Certificate::from_pem_bundle(&pem).unwrap();
    reqwest::Client::builder()
        .tls_certs_only(certs)
        // A fresh connection per request: the reload test must see a new handshake.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[tokio::test]
async fn self_signed_ca_is_trusted_by_a_client_and_keys_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let s = tls::self_signed(dir.path(), "0.0.0.0", &["registry.airgap.local".into()]).unwrap();
    assert!(!s.ca_reused);
    assert_eq!(
        s.sans,
        ["localhost", "127.0.0.1", "registry.airgap.local"],
        "an unspecified listen address adds no SAN"
    );
    assert_eq!(s.ca_fingerprint.len(), 95, "{}", s.ca_fingerprint);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in [&s.ca_key, &s.server_key] {
            let mode = std::fs::metadata(key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
    }
    let (addr, handle) = serve(RustlsConfig::from_config(s.config.clone())).await;
    let client = client_trusting(&s.ca_cert);
    for host in ["127.0.0.1".to_string(), "localhost".to_string()] {
        let url = format!("https://{host}:{}/v2/", addr.port());
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        assert_eq!(resp.text().await.unwrap(), "{}");
    }

    // A client that does not trust the CA is refused: the server is not silently plain HTTP.
    let other = tempfile::tempdir().unwrap();
    let stranger = tls::self_signed(other.path(), "127.0.0.1", &[]).unwrap();
    let url = format!("https://127.0.0.1:{}/v2/", addr.port());
    let err = client_trusting(&stranger.ca_cert)
        .get(&url)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    handle.shutdown();
}

#[tokio::test]
async fn restart_reuses_the_ca_nodes_already_trust() {
    let dir = tempfile::tempdir().unwrap();
    let first = tls::self_signed(dir.path(), "127.0.0.1", &[]).unwrap();
    let second = tls::self_signed(dir.path(), "10.0.0.7", &[]).unwrap();
    assert!(second.ca_reused);
    assert_eq!(first.ca_fingerprint, second.ca_fingerprint);
    assert_ne!(first.server_fingerprint, second.server_fingerprint);
    assert_eq!(second.sans[0], "10.0.0.7");
    // The reissued certificate chains to the CA written on the first start.
    let (addr, handle) = serve(RustlsConfig::from_config(second.config)).await;
    let resp = client_trusting(&first.ca_cert)
        .get(format!("https://127.0.0.1:{}/v2/", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    handle.shutdown();
}

#[tokio::test]
async fn rotated_certificate_files_are_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let ca_a = tempfile::tempdir().unwrap();
    let ca_b = tempfile::tempdir().unwrap();
    let a = tls::self_signed(ca_a.path(), "127.0.0.1", &[]).unwrap();
    let b = tls::self_signed(ca_b.path(), "127.0.0.1", &[]).unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::copy(&a.server_cert, &cert).unwrap();
    std::fs::copy(&a.server_key, &key).unwrap();

    let config = RustlsConfig::from_config(tls::load_server_config(&cert, &key).unwrap());
    let reloader = tls::spawn_reloader(
        config.clone(),
        cert.clone(),
        key.clone(),
        Duration::from_millis(50),
    );
    let (addr, handle) = serve(config).await;
    let url = format!("https://127.0.0.1:{}/v2/", addr.port());
    let trusts_a = client_trusting(&a.ca_cert);
    let trusts_b = client_trusting(&b.ca_cert);
    assert_eq!(trusts_a.get(&url).send().await.unwrap().status(), 200);
    assert!(trusts_b.get(&url).send().await.is_err());

    // A half-done rotation (new certificate, old key) is not loaded: the old pair keeps serving.
    std::fs::copy(&b.server_cert, &cert).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(trusts_a.get(&url).send().await.unwrap().status(), 200);

    std::fs::copy(&b.server_key, &key).unwrap();
    let mut switched = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok(r) = trusts_b.get(&url).send().await {
            assert_eq!(r.status(), 200);
            switched = true;
            break;
        }
    }
    assert!(switched, "the rotated certificate was never served");
    assert!(trusts_a.get(&url).send().await.is_err());
    reloader.abort();
    handle.shutdown();
}

#[test]
fn bad_pem_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = tls::self_signed(dir.path(), "127.0.0.1", &[]).unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();

    let e = tls::load_server_config(&junk, &s.server_key).unwrap_err();
    assert!(matches!(e, tls::TlsError::NoCertificate { .. }), "{e}");
    assert!(e.to_string().contains("junk.pem"), "{e}");

    let e = tls::load_server_config(&s.server_cert, &junk).unwrap_err();
    assert!(matches!(e, tls::TlsError::NoKey { .. }), "{e}");
    assert!(e.to_string().contains("junk.pem"), "{e}");

    let two = dir.path().join("two.key");
    let k = std::fs::read_to_string(&s.server_key).unwrap();
    std::fs::write(
        &two,
        format!("{k}{}", std::fs::read_to_string(&s.ca_key).unwrap()),
    )
    .unwrap();
    let e = tls::load_server_config(&s.server_cert, &two).unwrap_err();
    assert!(
        matches!(e, tls::TlsError::SeveralKeys { count: 2, .. }),
        "{e}"
    );

    // A key that does not match the certificate.
    let e = tls::load_server_config(&s.server_cert, &s.ca_key).unwrap_err();
    assert!(matches!(e, tls::TlsError::Rustls { .. }), "{e}");

    let missing = dir.path().join("missing.pem");
    let e = tls::load_server_config(&missing, &s.server_key).unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");

    let e = tls::self_signed(dir.path(), "127.0.0.1", &["bad host/name".into()]).unwrap_err();
    assert!(matches!(e, tls::TlsError::BadSan { .. }), "{e}");
}
