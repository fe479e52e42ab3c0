//! The registry client against hostile and unlucky registries, scripted on loopback: a clean
//! machine with no docker config, bodies that never end, servers that never answer or trickle,
//! token realms and upload locations on plain HTTP. Memory is proven by counting, on the server,
//! the bytes the client let it send; time by the clock and by counting connections.

mod mock;

use std::time::{Duration, Instant};

use mock::{Reply, Req, Server};
use oci::{Digest, Error};
use oci_client::{Client, ClientOptions, Credential, Repo, RetryPolicy, Timeouts, within_budget};
use tokio::net::TcpListener;

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

/// What the server may get rid of beyond what the client read: the kernel's socket buffers on
/// both ends (receive up to `tcp_rmem` max, 32 MiB here, plus send up to `tcp_wmem` max, 4 MiB;
/// 4-9 MiB measured). Anything near the 1 GiB offered means the body was read whole.
const SOCKET_SLACK: u64 = 40 << 20;

fn manifest_reply() -> Reply {
    Reply::new(200)
        .header("content-type", oci::manifest::OCI_MANIFEST)
        .body(MANIFEST)
}

fn options(insecure: &[&str]) -> ClientOptions {
    ClientOptions {
        insecure_hosts: insecure.iter().map(|s| s.to_string()).collect(),
        docker_config: false,
        retry: RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        },
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            idle: Duration::from_secs(1),
            image: Duration::from_secs(5),
        },
        ..ClientOptions::default()
    }
}

fn client(host: &str) -> Client {
    Client::new(options(&[host])).unwrap()
}

async fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// A registry that answers 401 with a Bearer challenge whose realm is `realm_host`'s `/token`,
/// grants tokens (anonymous ones as `anon`) and serves one manifest to a bearer of a token.
fn bearer_registry(realm: String) -> impl Fn(&Req) -> Reply + Send + Sync + 'static {
    move |r: &Req| {
        if r.path.starts_with("/token") {
            let t = if r.header("authorization").is_some() {
                "user-token"
            } else {
                "anon"
            };
            return Reply::new(200).body(format!(r#"{{"token":"{t}","expires_in":300}}"#));
        }
        match r.header("authorization") {
            Some(a) if a.starts_with("Bearer ") => manifest_reply(),
            _ => Reply::new(401).header(
                "www-authenticate",
                &format!(r#"Bearer realm="{realm}",service="svc",scope="repository:app:pull""#),
            ),
        }
    }
}

// ---- item 1: a clean machine has no docker config ------------------------------------------

#[tokio::test]
async fn missing_docker_config_means_anonymous_bearer_token() {
    let (l, port) = listener().await;
    let host = format!("127.0.0.1:{port}");
    let server = Server::start_on(
        l,
        host.clone(),
        bearer_registry(format!("http://{host}/token")),
    );
    let empty = tempfile::tempdir().unwrap();
    for dir in [empty.path().to_path_buf(), empty.path().join("no-such-dir")] {
        let c = Client::new(ClientOptions {
            docker_config: true,
            docker_config_dir: Some(dir.clone()),
            ..options(&[&host])
        })
        .unwrap();
        let m = c
            .get_manifest(&Repo::new(host.clone(), "app"), "1")
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert_eq!(m.digest, Digest::of(MANIFEST.as_bytes()));
    }
    let tokens: Vec<Req> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/token"))
        .collect();
    assert_eq!(tokens.len(), 2);
    assert!(tokens.iter().all(|r| r.header("authorization").is_none()));
}

#[tokio::test]
async fn malformed_docker_config_is_an_error_naming_the_file() {
    let (l, port) = listener().await;
    let host = format!("127.0.0.1:{port}");
    let _server = Server::start_on(
        l,
        host.clone(),
        bearer_registry(format!("http://{host}/token")),
    );
    let dir = tempfile::tempdir().unwrap();
    // Cut off mid-file, right after a secret.
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"auths":{"x":{"auth":"c2VjcmV0LXVzZXI6aHVudGVyMg==""#,
    )
    .unwrap();
    let c = Client::new(ClientOptions {
        docker_config: true,
        docker_config_dir: Some(dir.path().to_path_buf()),
        ..options(&[&host])
    })
    .unwrap();
    let e = c
        .get_manifest(&Repo::new(host.clone(), "app"), "1")
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Credentials { .. }), "{text}");
    assert!(
        text.contains(&dir.path().join("config.json").display().to_string()),
        "{text}"
    );
    assert!(text.contains("line 1"), "{text}");
    assert!(
        !text.contains("c2VjcmV0") && !text.contains("hunter2"),
        "{text}"
    );
}

/// Run by `clean_environment_without_home_pulls_anonymously` in a child process whose
/// environment it controls; does nothing useful on its own.
#[tokio::test]
#[ignore = "child process of clean_environment_without_home_pulls_anonymously"]
async fn child_anonymous_pull() {
    let host = std::env::var("AIRLOCK_TEST_REGISTRY").expect("run by the parent test");
    // The process environment decides where config.json is, as for a user.
    let c = Client::new(ClientOptions {
        docker_config: true,
        docker_config_dir: None,
        ..options(&[&host])
    })
    .unwrap();
    c.get_manifest(&Repo::new(host.clone(), "app"), "1")
        .await
        .unwrap();
}

#[tokio::test]
async fn clean_environment_without_home_pulls_anonymously() {
    let (l, port) = listener().await;
    let host = format!("127.0.0.1:{port}");
    let server = Server::start_on(
        l,
        host.clone(),
        bearer_registry(format!("http://{host}/token")),
    );
    let empty = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // No HOME and no DOCKER_CONFIG (a bare container); an empty DOCKER_CONFIG; a HOME without
    // .docker (a fresh CI runner).
    let cases: [&[(&str, &std::path::Path)]; 3] = [
        &[],
        &[("DOCKER_CONFIG", empty.path())],
        &[("HOME", empty.path())],
    ];
    for env in cases {
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args([
            "child_anonymous_pull",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env_remove("HOME")
        .env_remove("DOCKER_CONFIG")
        .env("AIRLOCK_TEST_REGISTRY", &host);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().await.unwrap();
        assert!(
            out.status.success(),
            "{env:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    }
    assert_eq!(server.count("GET", "/token"), 3);
}

// ---- item 6: every read from the network is bounded ----------------------------------------

async fn settle(server: &Server) -> u64 {
    // The client has dropped the connection; let the server's last write fail.
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.bytes_written()
}

#[tokio::test]
async fn error_body_of_a_403_is_bounded() {
    for declared in [None, Some(1u64 << 30)] {
        let server = Server::start(move |_r: &Req| Reply::Endless {
            status: 403,
            headers: vec![],
            declared,
        })
        .await;
        let c = client(&server.host);
        let e = c
            .get_manifest(&Repo::new(server.host.clone(), "app"), "1")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Status { status: 403, .. }), "{e}");
        let written = settle(&server).await;
        assert!(
            written < SOCKET_SLACK,
            "{declared:?}: server sent {written} bytes"
        );
        eprintln!("403 body, declared {declared:?}: server managed to send {written} bytes");
    }
}

#[tokio::test]
async fn error_bodies_of_retried_500s_are_bounded() {
    let server = Server::start(|_r: &Req| Reply::Endless {
        status: 500,
        headers: vec![],
        declared: None,
    })
    .await;
    let c = client(&server.host);
    let e = c
        .get_manifest(&Repo::new(server.host.clone(), "app"), "1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::RetriesExhausted {
                attempts: 3,
                status: 500,
                ..
            }
        ),
        "{e}"
    );
    let written = settle(&server).await;
    assert!(written < 3 * SOCKET_SLACK, "server sent {written} bytes");
}

#[tokio::test]
async fn token_response_is_bounded() {
    let (l, port) = listener().await;
    let host = format!("127.0.0.1:{port}");
    let realm = format!("http://{host}/token");
    let server = Server::start_on(l, host.clone(), move |r: &Req| {
        if r.path.starts_with("/token") {
            return Reply::Endless {
                status: 200,
                headers: vec![],
                declared: None,
            };
        }
        Reply::new(401).header("www-authenticate", &format!(r#"Bearer realm="{realm}""#))
    });
    let e = client(&host)
        .get_manifest(&Repo::new(host.clone(), "app"), "1")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Token { reason, .. } if reason.contains("larger than")),
        "{e}"
    );
    let written = settle(&server).await;
    assert!(written < SOCKET_SLACK, "server sent {written} bytes");
    eprintln!("endless token response: server managed to send {written} bytes");
}

#[tokio::test]
async fn manifest_response_is_bounded_while_streaming() {
    let server = Server::start(|_r: &Req| Reply::Endless {
        status: 200,
        headers: vec![("content-type".into(), oci::manifest::OCI_MANIFEST.into())],
        declared: None,
    })
    .await;
    let e = client(&server.host)
        .get_manifest(&Repo::new(server.host.clone(), "app"), "1")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidManifest { reason, .. } if reason.contains("larger than")),
        "{e}"
    );
    let written = settle(&server).await;
    assert!(
        written < oci::manifest::MAX_MANIFEST_BYTES as u64 + SOCKET_SLACK,
        "server sent {written} bytes"
    );
    eprintln!("endless manifest: server managed to send {written} bytes");
}

#[tokio::test]
async fn blob_longer_than_its_descriptor_is_cut_at_the_declared_size() {
    let digest = Digest::of(b"short");
    for declared in [None, Some(1u64 << 30)] {
        let server = Server::start(move |_r: &Req| Reply::Endless {
            status: 200,
            headers: vec![],
            declared,
        })
        .await;
        let c = client(&server.host);
        let repo = Repo::new(server.host.clone(), "app");
        let mut out = Vec::new();
        let e = c
            .get_blob(&repo, &digest, Some(100_000), &mut out)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::SizeMismatch {
                    expected: 100_000,
                    ..
                }
            ),
            "{e}"
        );
        assert!(out.len() <= 100_000, "{}", out.len());
        let e = match c.open_blob(&repo, &digest, Some(100_000)).await {
            Err(e) => e,
            Ok((mut s, _)) => {
                use futures_util::StreamExt;
                let mut err = None;
                while let Some(r) = s.next().await {
                    if let Err(e) = r {
                        err = Some(e);
                        break;
                    }
                }
                err.expect("stream must fail")
            }
        };
        assert!(matches!(e, Error::SizeMismatch { .. }), "{e}");
        let written = settle(&server).await;
        assert!(
            written < 2 * SOCKET_SLACK,
            "{declared:?}: server sent {written} bytes"
        );
        eprintln!("endless blob, declared {declared:?}: server managed to send {written} bytes");
    }
}

// ---- item 7: timeouts, one retry policy, a budget per image --------------------------------

#[tokio::test]
async fn silent_registry_fails_within_attempts_times_idle() {
    let server = Server::start(|_r: &Req| Reply::Silent).await;
    let c = client(&server.host);
    let start = Instant::now();
    let e = c
        .get_manifest(&Repo::new(server.host.clone(), "app"), "1")
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(e, Error::Timeout { phase: "read", .. }), "{e}");
    // 3 attempts x 1 s idle, plus backoff; nested retry loops would make it 16 x.
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(server.accepted(), 3);
    eprintln!(
        "silent registry: {took:?}, {} connections",
        server.accepted()
    );
}

#[tokio::test]
async fn silent_token_endpoint_counts_as_attempts_of_the_request() {
    let (l, port) = listener().await;
    let host = format!("127.0.0.1:{port}");
    let realm = format!("http://{host}/token");
    let server = Server::start_on(l, host.clone(), move |r: &Req| {
        if r.path.starts_with("/token") {
            return Reply::Silent;
        }
        Reply::new(401).header("www-authenticate", &format!(r#"Bearer realm="{realm}""#))
    });
    let start = Instant::now();
    let e = client(&host)
        .get_manifest(&Repo::new(host.clone(), "app"), "1")
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(server.count("GET", "/token"), 3);
}

#[tokio::test]
async fn trickling_blob_is_cut_by_the_image_budget() {
    let server = Server::start(|_r: &Req| Reply::Trickle {
        status: 200,
        headers: vec![],
        declared: 1_000_000,
        every: Duration::from_millis(200),
    })
    .await;
    let c = client(&server.host);
    let digest = Digest::of(b"never complete");
    let budget = Duration::from_secs(2);
    let start = Instant::now();
    let mut out = Vec::new();
    let e = within_budget(
        "app:1",
        budget,
        c.get_blob(
            &Repo::new(server.host.clone(), "app"),
            &digest,
            Some(1_000_000),
            &mut out,
        ),
    )
    .await
    .unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(&e, Error::DeadlineExceeded { image, .. } if image == "app:1"),
        "{e}"
    );
    // The idle timeout (1 s) never fired: bytes kept coming.
    assert!(
        took >= budget && took < budget + Duration::from_secs(1),
        "{took:?}"
    );
    assert!(server.bytes_written() >= 5, "{}", server.bytes_written());
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn connect_timeout_when_nobody_accepts() {
    // A listener with a full accept queue drops new SYNs: connecting hangs, as to a host that
    // black-holes packets.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = sock.local_addr().unwrap();
    let _listener = sock.listen(0).unwrap();
    let mut fill = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fill.push(s);
        }
    }
    let host = addr.to_string();
    let c = Client::new(ClientOptions {
        timeouts: Timeouts {
            connect: Duration::from_millis(500),
            ..options(&[]).timeouts
        },
        ..options(&[&host])
    })
    .unwrap();
    let start = Instant::now();
    let e = c
        .get_manifest(&Repo::new(host.clone(), "app"), "1")
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(
            e,
            Error::Timeout {
                phase: "connect",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

// ---- item 14: credentials never in clear text, never in a message --------------------------

const PASSWORD: &str = "s3cret-Pa55";

fn creds() -> Credential {
    Credential::from_user_pass(&format!("alice:{PASSWORD}")).unwrap()
}

fn assert_no_secret(e: &Error) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("alice:{PASSWORD}"));
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(PASSWORD) && !text.contains(&b64), "{text}");
    }
}

/// The registry is `127.0.0.1:P` (marked insecure); its realm names the same server as
/// `localhost:P`, which is not.
#[tokio::test]
async fn credentials_are_not_sent_to_a_plain_http_realm() {
    let (l, port) = listener().await;
    let host = format!("127.0.0.1:{port}");
    let server = Server::start_on(
        l,
        host.clone(),
        bearer_registry(format!("http://localhost:{port}/token")),
    );
    let repo = Repo::new(host.clone(), "app");
    let c = Client::new(ClientOptions {
        creds: Some(creds()),
        ..options(&[&host])
    })
    .unwrap();
    let e = c.get_manifest(&repo, "1").await.unwrap_err();
    assert!(
        matches!(&e, Error::InsecureCredentials { target, .. } if *target == format!("localhost:{port}")),
        "{e}"
    );
    assert_no_secret(&e);
    assert_eq!(
        server.count("GET", "/token"),
        0,
        "nothing went to the realm"
    );
    // Not retried: refusing is not transient.
    assert_eq!(server.count("GET", "/v2/"), 1);

    // Anonymous: no secret to leak, the token request goes ahead.
    let anon = client(&host);
    anon.get_manifest(&repo, "1").await.unwrap();
    let token_reqs: Vec<Req> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/token"))
        .collect();
    assert_eq!(token_reqs.len(), 1);
    assert!(token_reqs[0].header("authorization").is_none());

    // Marked insecure by the user: allowed.
    let trusted = Client::new(ClientOptions {
        creds: Some(creds()),
        ..options(&[&host, &format!("localhost:{port}")])
    })
    .unwrap();
    trusted.get_manifest(&repo, "1").await.unwrap();
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/token") && r.header("authorization").is_some())
    );
}

#[tokio::test]
async fn basic_credentials_do_not_follow_a_plain_http_location() {
    let (l, port) = listener().await;
    let host = format!("127.0.0.1:{port}");
    let server = Server::start_on(l, host.clone(), move |r: &Req| {
        if r.header("authorization").is_none() {
            return Reply::new(401).header("www-authenticate", r#"Basic realm="registry""#);
        }
        match r.method.as_str() {
            "POST" => Reply::new(202).header(
                "location",
                &format!("http://localhost:{port}/v2/app/blobs/uploads/s1"),
            ),
            _ => Reply::new(201),
        }
    });
    let c = Client::new(ClientOptions {
        creds: Some(creds()),
        ..options(&[&host])
    })
    .unwrap();
    let repo = Repo::new(host.clone(), "app");
    let oci_client::MountResult::Upload(session) = c.start_upload(&repo, None).await.unwrap()
    else {
        panic!("no mount asked");
    };
    let d = Digest::of(b"hello");
    let e = c
        .upload_bytes(session, &d, bytes::Bytes::from_static(b"hello"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InsecureCredentials { .. }), "{e}");
    assert_no_secret(&e);
    assert_eq!(
        server.count("PUT", "/"),
        0,
        "nothing was sent to the location"
    );
}

#[tokio::test]
async fn wrong_password_never_appears_in_the_error() {
    let (l, port) = listener().await;
    let host = format!("127.0.0.1:{port}");
    let realm = format!("http://{host}/token");
    let _server = Server::start_on(l, host.clone(), move |r: &Req| {
        if r.path.starts_with("/token") {
            return Reply::new(401)
                .body(format!("bad password for {:?}", r.header("authorization")));
        }
        Reply::new(401).header("www-authenticate", &format!(r#"Bearer realm="{realm}""#))
    });
    let c = Client::new(ClientOptions {
        creds: Some(creds()),
        ..options(&[&host])
    })
    .unwrap();
    let e = c
        .get_manifest(&Repo::new(host.clone(), "app"), "1")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
    assert_no_secret(&e);
}

/// The idle timeout is about silence, not about how long a request takes: a push whose body
/// keeps flowing for longer than `idle` must not be cut.
#[tokio::test]
async fn slow_but_steady_upload_is_not_cut_by_the_idle_timeout() {
    let server = Server::start(|r: &Req| match r.method.as_str() {
        "POST" => Reply::new(202).header("location", "/v2/app/blobs/uploads/s1"),
        "PATCH" => Reply::new(202).header("location", "/v2/app/blobs/uploads/s1?n=2"),
        "PUT" => Reply::new(201),
        _ => Reply::new(404),
    })
    .await;
    let c = client(&server.host);
    let repo = Repo::new(server.host.clone(), "app");
    let chunks: Vec<bytes::Bytes> = (0..8u8)
        .map(|i| bytes::Bytes::from(vec![i; 1000]))
        .collect();
    let all: Vec<u8> = chunks.iter().flat_map(|b| b.to_vec()).collect();
    let digest = Digest::of(&all);
    let stream = futures_util::stream::unfold(chunks.into_iter(), |mut it| async move {
        let b = it.next()?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        Some((Ok(b), it))
    });
    let oci_client::MountResult::Upload(session) = c.start_upload(&repo, None).await.unwrap()
    else {
        panic!("no mount asked");
    };
    let start = Instant::now();
    c.upload_stream(session, &digest, Some(all.len() as u64), Box::pin(stream))
        .await
        .unwrap();
    assert!(
        start.elapsed() > Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let patch = server
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(patch.body, all);
}

/// A sha512 blob (the OCI spec allows it; `airlock serve` stores them) is hashed with sha512:
/// it was hashed with sha256 and refused as a digest mismatch.
#[tokio::test]
async fn sha512_blobs_are_verified_with_sha512() {
    let body = b"a sha512 blob".to_vec();
    let digest = Digest::sha512_of(&body);
    let served = body.clone();
    let server = Server::start(move |_r: &Req| Reply::new(200).body(served.clone())).await;
    let c = client(&server.host);
    let repo = Repo::new(server.host.clone(), "app");
    let mut out = Vec::new();
    let n = c
        .get_blob(&repo, &digest, Some(body.len() as u64), &mut out)
        .await
        .unwrap();
    assert_eq!((n, out), (body.len() as u64, body));
}
