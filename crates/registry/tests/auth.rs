//! Authentication middleware over a small Router: challenges, read and write users, the token
//! flow, refused tokens, and htpasswd files that are not bcrypt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::routing::{any, get};
use base64::Engine;
use http_body_util::BodyExt;
use oci_registry::auth::{
    Auth, AuthError, AuthOptions, AuthenticatedUser, Challenge, Htpasswd, LoginFailed, protect,
};
use tower::ServiceExt;

const READER: (&str, &str) = ("reader", "r-secret-1");
const WRITER: (&str, &str) = ("writer", "w-secret-2");

fn htpasswd(users: &[(&str, &str)], cost: u32) -> Htpasswd {
    let text: String = users
        .iter()
        .map(|(u, p)| format!("{u}:{}\n", bcrypt::hash(p, cost).unwrap()))
        .collect();
    Htpasswd::parse(&text, std::path::Path::new("test.htpasswd")).unwrap()
}

fn auth_with(opts: AuthOptions) -> Arc<Auth> {
    Arc::new(Auth::new(htpasswd(&[READER], 4), htpasswd(&[WRITER], 4), opts).unwrap())
}

/// Echoes the authenticated user, so a test sees the handler was reached and as whom.
async fn echo(req: Request) -> String {
    req.extensions()
        .get::<AuthenticatedUser>()
        .map_or("-".to_string(), |u| u.0.clone())
}

fn app(auth: Arc<Auth>) -> Router {
    let r = Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route("/v2/{*rest}", any(echo));
    protect(r, auth)
}

fn basic((u, p): (&str, &str)) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
    )
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    authz: Option<&str>,
) -> axum::response::Response {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "reg.test:5000");
    if let Some(a) = authz {
        b = b.header(header::AUTHORIZATION, a);
    }
    app.clone()
        .oneshot(b.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn text(resp: axum::response::Response) -> String {
    String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

fn challenge(resp: &axum::response::Response) -> String {
    resp.headers()
        .get(header::WWW_AUTHENTICATE)
        .expect("a 401 carries WWW-Authenticate")
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn anonymous_request_gets_401_with_the_spec_challenge() {
    let app = app(auth_with(AuthOptions::default()));
    let resp = call(&app, "GET", "/v2/team/app/manifests/latest", None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&resp),
        "Bearer realm=\"http://reg.test:5000/token\",service=\"airlock\",\
         scope=\"repository:team/app:pull\""
    );
    assert!(resp.extensions().get::<LoginFailed>().is_none());
    let body: serde_json::Value = serde_json::from_str(&text(resp).await).unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");

    // The base endpoint too (clients probe it first), and a push asks for push.
    let resp = call(&app, "GET", "/v2/", None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = call(&app, "POST", "/v2/team/app/blobs/uploads/", None).await;
    assert!(
        challenge(&resp).contains("scope=\"repository:team/app:pull,push\""),
        "{}",
        challenge(&resp)
    );

    let app = crate::app(auth_with(AuthOptions {
        challenge: Challenge::Basic,
        service: "airlock registry".into(),
        ..AuthOptions::default()
    }));
    let resp = call(&app, "GET", "/v2/", None).await;
    assert_eq!(challenge(&resp), "Basic realm=\"airlock registry\"");
}

#[tokio::test]
async fn read_user_pulls_but_gets_403_on_push_and_write_user_pushes() {
    let app = app(auth_with(AuthOptions::default()));
    let uri = "/v2/team/app/manifests/v1";
    let r = call(&app, "GET", uri, Some(&basic(READER))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.extensions().get::<AuthenticatedUser>(),
        Some(&AuthenticatedUser("reader".into()))
    );
    assert_eq!(text(r).await, "reader");
    assert_eq!(
        call(&app, "HEAD", uri, Some(&basic(READER))).await.status(),
        200
    );
    for m in ["PUT", "POST", "PATCH", "DELETE"] {
        let r = call(&app, m, uri, Some(&basic(READER))).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{m}");
        let body: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
        assert_eq!(body["errors"][0]["code"], "DENIED");
    }
    for m in ["GET", "PUT", "DELETE"] {
        let r = call(&app, m, uri, Some(&basic(WRITER))).await;
        assert_eq!(r.status(), StatusCode::OK, "{m}");
        assert_eq!(text(r).await, "writer");
    }

    // Wrong password, unknown user, a write user's password for the read user, garbage.
    for authz in [
        basic(("reader", "nope")),
        basic(("nobody", "r-secret-1")),
        basic(("reader", WRITER.1)),
        "Basic !!!".to_string(),
        "Digest x".to_string(),
    ] {
        let r = call(&app, "GET", uri, Some(&authz)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{authz}");
        assert!(r.extensions().get::<LoginFailed>().is_some(), "{authz}");
        let body = text(r).await;
        assert!(!body.contains("nope") && !body.contains("secret"), "{body}");
    }
}

#[tokio::test]
async fn token_flow_round_trip_and_scope_enforcement() {
    let app = app(auth_with(AuthOptions::default()));
    let r = call(
        &app,
        "GET",
        "/token?service=airlock&scope=repository:team/app:pull,push&scope=repository:other:pull",
        Some(&basic(WRITER)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(body["access_token"], body["token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    let bearer = format!("Bearer {token}");

    let r = call(&app, "PUT", "/v2/team/app/manifests/v1", Some(&bearer)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(text(r).await, "writer");
    assert_eq!(
        call(&app, "GET", "/v2/other/tags/list", Some(&bearer))
            .await
            .status(),
        200
    );
    assert_eq!(call(&app, "GET", "/v2/", Some(&bearer)).await.status(), 200);
    // Scope is per repository and per action.
    let r = call(&app, "PUT", "/v2/other/manifests/v1", Some(&bearer)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let c = challenge(&r);
    assert!(c.contains("error=\"insufficient_scope\""), "{c}");
    assert!(c.contains("scope=\"repository:other:pull,push\""), "{c}");
    assert!(r.extensions().get::<LoginFailed>().is_none());
    // A mount reads the source repository: the token must cover it.
    let mount = "/v2/team/app/blobs/uploads/?mount=sha256:aa&from=secret/repo";
    let r = call(&app, "POST", mount, Some(&bearer)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&r).contains("repository:secret/repo:pull"));
    let mount = "/v2/team/app/blobs/uploads/?mount=sha256:aa&from=other";
    assert_eq!(call(&app, "POST", mount, Some(&bearer)).await.status(), 200);

    // A read user asking for push gets a pull-only token, and a push with it is DENIED.
    let r = call(
        &app,
        "GET",
        "/token?scope=repository:team/app:pull,push",
        Some(&basic(READER)),
    )
    .await;
    let body: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
    let bearer = format!("Bearer {}", body["token"].as_str().unwrap());
    assert_eq!(
        call(&app, "GET", "/v2/team/app/manifests/v1", Some(&bearer))
            .await
            .status(),
        200
    );
    let r = call(&app, "PUT", "/v2/team/app/manifests/v1", Some(&bearer)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Without credentials, or with bad ones, no token.
    let r = call(&app, "GET", "/token?scope=repository:team/app:pull", None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = call(&app, "GET", "/token", Some(&basic(("writer", "x")))).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.extensions().get::<LoginFailed>().is_some());
    // containerd POSTs first and falls back to GET on 405.
    let r = call(&app, "POST", "/token", Some(&basic(WRITER))).await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn expired_or_forged_token_is_refused() {
    let auth = auth_with(AuthOptions::default());
    let app = app(auth.clone());
    let grant = |actions: &[&str]| {
        vec![oci_registry::auth::Grant {
            kind: "repository".into(),
            name: "team/app".into(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
        }]
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let uri = "/v2/team/app/manifests/v1";
    let good = auth.issue_token("reader", grant(&["pull"]), now);
    assert_eq!(
        call(&app, "GET", uri, Some(&format!("Bearer {good}")))
            .await
            .status(),
        200
    );

    let expired = auth.issue_token("reader", grant(&["pull"]), now - 301);
    let other_key = auth_with(AuthOptions::default()).issue_token("writer", grant(&["push"]), now);
    // The claims of a pull token rewritten to push, keeping the signature.
    let (body, sig) = good.split_once('.').unwrap();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = String::from_utf8(engine.decode(body).unwrap()).unwrap();
    let forged_claims = claims
        .replace("\"pull\"", "\"pull\",\"push\"")
        .replace("reader", "writer");
    assert_ne!(claims, forged_claims);
    let forged = format!("{}.{sig}", engine.encode(forged_claims));
    let mut flipped = good.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();

    for (what, token) in [
        ("expired", expired),
        ("another server's key", other_key),
        ("rewritten claims", forged),
        ("flipped signature", flipped),
        ("not a token", "abc".to_string()),
        ("empty", String::new()),
    ] {
        for m in ["GET", "PUT"] {
            let r = call(&app, m, uri, Some(&format!("Bearer {token}"))).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what} {m}");
            assert!(challenge(&r).contains("error=\"invalid_token\""), "{what}");
        }
    }
    assert_eq!(
        auth.verify_token(&good, now + 301).unwrap_err(),
        oci_registry::auth::TokenError::Expired
    );
}

#[tokio::test]
async fn anonymous_read_allows_pulls_only() {
    let app = app(auth_with(AuthOptions {
        anonymous_read: true,
        ..AuthOptions::default()
    }));
    let r = call(&app, "GET", "/v2/team/app/manifests/v1", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(text(r).await, "-");
    assert_eq!(
        call(&app, "PUT", "/v2/team/app/manifests/v1", None)
            .await
            .status(),
        401
    );
    // Anonymous tokens carry pull only.
    let r = call(
        &app,
        "GET",
        "/token?scope=repository:team/app:pull,push",
        None,
    )
    .await;
    let body: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
    let bearer = format!("Bearer {}", body["token"].as_str().unwrap());
    assert_eq!(
        call(&app, "GET", "/v2/team/app/manifests/v1", Some(&bearer))
            .await
            .status(),
        200
    );
    assert_eq!(
        call(&app, "PUT", "/v2/team/app/manifests/v1", Some(&bearer))
            .await
            .status(),
        401
    );
}

#[test]
fn htpasswd_that_is_not_bcrypt_is_refused_naming_the_line() {
    let path = std::path::Path::new("/etc/airlock/users");
    let good = bcrypt::hash("pw", 4).unwrap();
    for (line, kind) in [
        ("bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1"),
        ("bob:$apr1$xyz$abcdefghijklmnopqrstuv", "MD5"),
        ("bob:plaintext", "plain"),
        ("bob:$6$salt$hash", "SHA-512"),
    ] {
        let text = format!("# users\nalice:{good}\n{line}\n");
        let e = Htpasswd::parse(&text, path).unwrap_err();
        assert!(
            matches!(e, AuthError::UnsupportedHash { line: 3, .. }),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with("/etc/airlock/users:3: user \"bob\""),
            "{msg}"
        );
        assert!(msg.contains(kind), "{msg}");
        assert!(
            !msg.contains(line.split_once(':').unwrap().1),
            "the hash is not echoed: {msg}"
        );
    }
    let e = Htpasswd::parse(&format!("alice:{good}\n\nalice:{good}\n"), path).unwrap_err();
    assert!(matches!(e, AuthError::DuplicateUser { line: 3, .. }), "{e}");
    let e = Htpasswd::parse("no colon here\n", path).unwrap_err();
    assert!(e.to_string().starts_with("/etc/airlock/users:1:"), "{e}");
    let h = Htpasswd::parse(&format!("alice:{good}\r\n# c\r\n"), path).unwrap();
    assert_eq!(h.len(), 1);
}

/// Docker sends Basic credentials on every request; bcrypt on each would cost tens of ms of CPU
/// per blob. Measured: repeated requests must cost far less than the first verify.
#[tokio::test]
async fn repeated_basic_auth_does_not_rerun_bcrypt() {
    let auth = Arc::new(
        Auth::new(
            Htpasswd::default(),
            htpasswd(&[WRITER], 11),
            AuthOptions::default(),
        )
        .unwrap(),
    );
    let app = app(auth);
    let uri = "/v2/team/app/blobs/sha256:00";
    let t = Instant::now();
    assert_eq!(
        call(&app, "GET", uri, Some(&basic(WRITER))).await.status(),
        200
    );
    let first = t.elapsed();
    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(
            call(&app, "GET", uri, Some(&basic(WRITER))).await.status(),
            200
        );
    }
    let twenty = t.elapsed();
    eprintln!("first request {first:?}, next 20 {twenty:?}");
    assert!(
        first > Duration::from_millis(20),
        "bcrypt cost 11 ran: {first:?}"
    );
    assert!(twenty < first, "first {first:?}, next 20 {twenty:?}");
    // The cache holds only the password that was verified.
    let r = call(&app, "GET", uri, Some(&basic(("writer", "w-secret-3")))).await;
    assert_eq!(r.status(), 401);
}
