//! Fault and protocol tests against a scripted HTTP server: bearer challenge and token cache,
//! 429 with Retry-After, 5xx retries, a connection dropped mid-blob (resumed with Range), bytes
//! that do not match their digest (refused and never stored), mount falling back to upload.

#[path = "../../client/tests/mock/mod.rs"]
mod mock;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mock::{Reply, Req, Server};
use oci::Digest;
use oci_client::{Client, ClientOptions, Credential, MountResult, Repo, RetryPolicy};
use oci_store::Layout;
use oci_transfer::{Endpoint, Transfer, TransferOptions};

fn client(host: &str, creds: Option<Credential>) -> Client {
    Client::new(ClientOptions {
        insecure_hosts: vec![host.to_string()],
        creds,
        docker_config: false,
        retry: RetryPolicy {
            attempts: 4,
            backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    })
    .unwrap()
}

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

fn manifest_reply() -> Reply {
    Reply::new(200)
        .header("content-type", oci::manifest::OCI_MANIFEST)
        .body(MANIFEST)
}

#[tokio::test]
async fn bearer_challenge_token_fetched_once_with_basic_creds() {
    let tokens = Arc::new(AtomicUsize::new(0));
    let t = tokens.clone();
    let host = Arc::new(std::sync::OnceLock::<String>::new());
    let h = host.clone();
    let server = Server::start(move |r: &Req| {
        if r.path.starts_with("/token") {
            t.fetch_add(1, Ordering::SeqCst);
            assert!(r.path.contains("service=svc"), "{}", r.path);
            assert!(
                r.path.contains("scope=repository%3Aapp%3Apull"),
                "{}",
                r.path
            );
            // u:p in base64
            assert_eq!(r.header("authorization"), Some("Basic dTpw"));
            return Reply::new(200).body(r#"{"token":"T1","expires_in":300}"#);
        }
        if r.header("authorization") == Some("Bearer T1") {
            return manifest_reply();
        }
        let realm = format!("http://{}/token", h.get().unwrap());
        Reply::new(401).header(
            "www-authenticate",
            &format!(r#"Bearer realm="{realm}",service="svc",scope="repository:app:pull""#),
        )
    })
    .await;
    host.set(server.host.clone()).unwrap();
    let c = client(&server.host, Credential::from_user_pass("u:p"));
    let repo = Repo::new(server.host.clone(), "app");
    for _ in 0..3 {
        let m = c.get_manifest(&repo, "1").await.unwrap();
        assert_eq!(m.digest, Digest::of(MANIFEST.as_bytes()));
        assert_eq!(&m.bytes[..], MANIFEST.as_bytes());
    }
    assert_eq!(tokens.load(Ordering::SeqCst), 1);
    // 1 challenged request, then 3 authenticated ones.
    assert_eq!(server.count("GET", "/v2/app/manifests/1"), 4);
}

#[tokio::test]
async fn wrong_password_is_unauthorized_not_retried_forever() {
    let server = Server::start(|_r: &Req| {
        Reply::new(401).header("www-authenticate", r#"Basic realm="registry""#)
    })
    .await;
    let c = client(&server.host, Credential::from_user_pass("u:wrong"));
    let e = c
        .get_manifest(&Repo::new(server.host.clone(), "app"), "1")
        .await
        .unwrap_err();
    assert!(
        matches!(e, oci::Error::Unauthorized { status: 401, .. }),
        "{e}"
    );
    assert!(!e.to_string().contains("wrong"));
    assert_eq!(server.count("GET", "/v2/"), 2);
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let server = Server::start(move |_r: &Req| {
        if n2.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::new(429).header("retry-after", "1")
        } else {
            manifest_reply()
        }
    })
    .await;
    let c = client(&server.host, None);
    let start = Instant::now();
    c.get_manifest(&Repo::new(server.host.clone(), "app"), "1")
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(n.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let server = Server::start(move |r: &Req| {
        if r.path.contains("/manifests/flaky") && n2.fetch_add(1, Ordering::SeqCst) < 2 {
            return Reply::new(500);
        }
        if r.path.contains("/manifests/flaky") {
            return manifest_reply();
        }
        Reply::new(503)
    })
    .await;
    let c = client(&server.host, None);
    let repo = Repo::new(server.host.clone(), "app");
    c.get_manifest(&repo, "flaky").await.unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 3);
    let e = c.get_manifest(&repo, "down").await.unwrap_err();
    assert!(
        matches!(
            e,
            oci::Error::RetriesExhausted {
                attempts: 4,
                status: 503,
                ..
            }
        ),
        "{e}"
    );
}

fn blob() -> (Vec<u8>, Digest) {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let d = Digest::of(&data);
    (data, d)
}

#[tokio::test]
async fn dropped_connection_mid_blob_resumes_with_range() {
    let (data, digest) = blob();
    let d2 = data.clone();
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let server = Server::start(move |r: &Req| {
        if n2.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::Truncated {
                status: 200,
                headers: vec![],
                declared: d2.len(),
                body: d2[..70_000].to_vec(),
            };
        }
        let range = r.header("range").expect("resume must send Range");
        let from: usize = range
            .trim_start_matches("bytes=")
            .trim_end_matches('-')
            .parse()
            .unwrap();
        Reply::new(206)
            .header(
                "content-range",
                &format!("bytes {from}-{}/{}", d2.len() - 1, d2.len()),
            )
            .body(d2[from..].to_vec())
    })
    .await;
    let c = client(&server.host, None);
    let mut out = Vec::new();
    let got = c
        .get_blob(
            &Repo::new(server.host.clone(), "app"),
            &digest,
            Some(data.len() as u64),
            &mut out,
        )
        .await
        .unwrap();
    assert_eq!(got, data.len() as u64);
    assert_eq!(out, data);
    assert_eq!(server.requests()[1].header("range"), Some("bytes=70000-"));
}

#[tokio::test]
async fn corrupt_blob_is_refused_and_never_stored() {
    let (data, digest) = blob();
    let mut bad = data.clone();
    bad[1234] ^= 0xff;
    let config = br#"{}"#.to_vec();
    let config_d = Digest::of(&config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_d}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{digest}","size":{}}}]}}"#,
        data.len()
    );
    let d = digest.clone();
    let server = Server::start(move |r: &Req| {
        if r.path.ends_with("/manifests/1") {
            return Reply::new(200)
                .header("content-type", oci::manifest::OCI_MANIFEST)
                .body(manifest.clone());
        }
        if r.path.ends_with(&format!("/blobs/{d}")) {
            return Reply::new(200).body(bad.clone());
        }
        if r.path.ends_with(&format!("/blobs/{config_d}")) {
            return Reply::new(200).body(config.clone());
        }
        Reply::new(404)
    })
    .await;
    let c = client(&server.host, None);
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::create(tmp.path()).await.unwrap();
    let t = Transfer::new(TransferOptions::default());
    let e = t
        .copy(
            &Endpoint::registry(&c, Repo::new(server.host.clone(), "app"), Some("1")),
            &Endpoint::layout(&layout, Some("app:1")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, oci::Error::DigestMismatch { expected, .. } if *expected == digest),
        "{e}"
    );
    assert!(!layout.has_blob(&digest, None).await);
    let leftovers: Vec<String> = std::fs::read_dir(tmp.path().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(digest.hex()))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(
        layout.resolve("app:1").await.is_err(),
        "image must not be named"
    );
    assert_eq!(t.stats().images_failed, 1);
    // Not transient: fetched once per attempt of the client (no blob-level retries).
    assert_eq!(server.count("GET", &format!("/v2/app/blobs/{digest}")), 1);
}

#[tokio::test]
async fn manifest_by_digest_must_match() {
    let server = Server::start(|_r: &Req| manifest_reply()).await;
    let c = client(&server.host, None);
    let other = Digest::of(b"something else");
    let e = c
        .get_manifest(&Repo::new(server.host.clone(), "app"), other.as_str())
        .await
        .unwrap_err();
    assert!(matches!(e, oci::Error::DigestMismatch { .. }), "{e}");
}

#[tokio::test]
async fn mount_202_falls_back_to_the_returned_session() {
    let server = Server::start(|r: &Req| match r.method.as_str() {
        "POST" => {
            assert!(r.path.contains("mount=sha256"), "{}", r.path);
            assert!(r.path.contains("from=src%2Frepo"), "{}", r.path);
            Reply::new(202).header("location", "/v2/dst/blobs/uploads/sess-1?_state=x")
        }
        "PUT" => {
            assert!(
                r.path
                    .starts_with("/v2/dst/blobs/uploads/sess-1?_state=x&digest=sha256"),
                "{}",
                r.path
            );
            assert_eq!(r.body, b"hello");
            Reply::new(201)
        }
        _ => Reply::new(404),
    })
    .await;
    let c = client(&server.host, None);
    let d = Digest::of(b"hello");
    let dst = Repo::new(server.host.clone(), "dst");
    let from = Repo::new(server.host.clone(), "src/repo");
    let MountResult::Upload(session) = c.start_upload(&dst, Some((&d, &from))).await.unwrap()
    else {
        panic!("expected fallback to upload");
    };
    c.upload_bytes(session, &d, bytes::Bytes::from_static(b"hello"))
        .await
        .unwrap();
    assert_eq!(server.count("PUT", "/v2/dst/blobs/uploads/sess-1"), 1);
}

#[tokio::test]
async fn manifest_body_cut_short_is_retried() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let server = Server::start(move |_r: &Req| {
        if n2.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::Truncated {
                status: 200,
                headers: vec![("content-type".into(), oci::manifest::OCI_MANIFEST.into())],
                declared: MANIFEST.len(),
                body: MANIFEST.as_bytes()[..40].to_vec(),
            };
        }
        manifest_reply()
    })
    .await;
    let c = client(&server.host, None);
    let m = c
        .get_manifest(&Repo::new(server.host.clone(), "app"), "1")
        .await
        .unwrap();
    assert_eq!(&m.bytes[..], MANIFEST.as_bytes());
    assert_eq!(n.load(Ordering::SeqCst), 2);
}
