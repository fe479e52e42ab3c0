//! `cluster::secrets` through the real kube client against an apiserver stand-in that keeps
//! Secrets and ServiceAccounts (see `fake_apiserver`): the user's pull secrets are kept, a second
//! apply writes nothing, a foreign Secret is never overwritten, and nothing carries the password
//! anywhere but the Secret's data.

mod fake_apiserver;

use cluster::secrets::{Change, PullSecret, apply, plan};
use cluster::{Client, ConnectOptions};
use fake_apiserver::{Canned, FakeApi, recorded, status};
use serde_json::json;

const PASSWORD: &str = "s3cret-Pa55word";

fn spec(password: &str) -> PullSecret {
    PullSecret::new(
        "airlock-registry".into(),
        "registry.corp.local:5000".into(),
        "puller".into(),
        password.into(),
        "default".into(),
    )
}

async fn client(api: &FakeApi, dir: &tempfile::TempDir) -> Client {
    cluster::connect(&ConnectOptions {
        kubeconfig: Some(api.kubeconfig(dir.path(), "ci")),
        context: None,
    })
    .await
    .unwrap()
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v["imagePullSecrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn apply_creates_the_secret_and_keeps_the_users_pull_secrets_then_changes_nothing() {
    let api = FakeApi::start();
    api.object(recorded("serviceaccount-ci-default"));
    let dir = tempfile::tempdir().unwrap();
    let client = client(&api, &dir).await;

    let first = plan(&client, &spec(PASSWORD), "ci").await.unwrap();
    assert_eq!(
        (first.secret_change, first.account_change),
        (Change::Create, Change::Update)
    );
    assert!(api.writes().is_empty(), "planning writes nothing");
    apply(&client, &first).await.unwrap();
    let writes: Vec<(String, String)> = api
        .writes()
        .into_iter()
        .map(|w| (w.method, w.path))
        .collect();
    assert_eq!(
        writes,
        [
            ("POST".into(), "/api/v1/namespaces/ci/secrets".into()),
            (
                "PUT".into(),
                "/api/v1/namespaces/ci/serviceaccounts/default".into()
            ),
        ],
        "the Secret exists before the ServiceAccount names it"
    );
    let account = api
        .get_object("/api/v1/namespaces/ci/serviceaccounts/default")
        .unwrap();
    assert_eq!(names(&account), ["jenkins-docker-cfg", "airlock-registry"]);
    let secret = api
        .get_object("/api/v1/namespaces/ci/secrets/airlock-registry")
        .unwrap();
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "airlock"
    );
    // What the kubelet will read, decoded from what crossed the wire.
    let data: k8s_openapi::ByteString =
        serde_json::from_value(secret["data"][".dockerconfigjson"].clone()).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&data.0).unwrap();
    let auth = &config["auths"]["registry.corp.local:5000"];
    assert_eq!(auth["username"], "puller");
    assert_eq!(auth["password"], PASSWORD);
    assert_eq!(auth["auth"], "cHVsbGVyOnMzY3JldC1QYTU1d29yZA==");

    api.forget_seen();
    let second = plan(&client, &spec(PASSWORD), "ci").await.unwrap();
    assert_eq!(
        (second.secret_change, second.account_change),
        (Change::Unchanged, Change::Unchanged)
    );
    apply(&client, &second).await.unwrap();
    assert!(api.writes().is_empty(), "{:?}", api.writes());
    assert_eq!(api.seen().len(), 2, "two reads, no write: {:?}", api.seen());
}

#[tokio::test]
async fn a_new_password_updates_the_secret_at_the_version_read() {
    let api = FakeApi::start();
    api.object(recorded("serviceaccount-ci-default"));
    let dir = tempfile::tempdir().unwrap();
    let client = client(&api, &dir).await;
    let old = plan(&client, &spec("old-password"), "ci").await.unwrap();
    apply(&client, &old).await.unwrap();
    let version = api
        .get_object("/api/v1/namespaces/ci/secrets/airlock-registry")
        .unwrap()["metadata"]["resourceVersion"]
        .clone();
    api.forget_seen();
    let p = plan(&client, &spec(PASSWORD), "ci").await.unwrap();
    assert_eq!(
        (p.secret_change, p.account_change),
        (Change::Update, Change::Unchanged)
    );
    apply(&client, &p).await.unwrap();
    let writes = api.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "PUT");
    let sent: serde_json::Value = serde_json::from_str(&writes[0].body).unwrap();
    assert_eq!(sent["metadata"]["resourceVersion"], version);

    // Someone changes the Secret between plan and apply: a conflict, not a silent overwrite.
    let stale = plan(&client, &spec("third-password"), "ci").await.unwrap();
    apply(
        &client,
        &plan(&client, &spec("fourth-password"), "ci").await.unwrap(),
    )
    .await
    .unwrap();
    let err = apply(&client, &stale).await.unwrap_err();
    assert!(
        matches!(err, cluster::Error::Api { code: 409, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("third-password"), "{err}");
}

#[tokio::test]
async fn a_secret_airlock_did_not_create_is_never_overwritten() {
    let api = FakeApi::start();
    api.object(recorded("serviceaccount-ci-default")).object(json!({
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "airlock-registry", "namespace": "ci", "uid": "7f6e5d4c-0000-4000-8000-000000000041",
                     "resourceVersion": "4410", "creationTimestamp": "2026-01-10T12:00:00Z"},
        "data": {".dockerconfigjson": "eyJhdXRocyI6e319"},
        "type": "kubernetes.io/dockerconfigjson",
    }));
    let dir = tempfile::tempdir().unwrap();
    let client = client(&api, &dir).await;
    let err = plan(&client, &spec(PASSWORD), "ci").await.unwrap_err();
    assert!(matches!(err, cluster::Error::NotOurs { .. }), "{err}");
    assert!(err.to_string().contains("ci/airlock-registry"), "{err}");
    assert!(api.writes().is_empty());
}

#[tokio::test]
async fn a_missing_service_account_or_a_forbidden_namespace_is_an_error_naming_it() {
    let api = FakeApi::start();
    api.canned(
        "/api/v1/namespaces/locked/secrets/airlock-registry",
        Canned::Object(
            403,
            status(
                403,
                "Forbidden",
                "secrets \"airlock-registry\" is forbidden: User \"dev\" cannot get resource \"secrets\" in API group \"\" in the namespace \"locked\"",
                json!({"name": "airlock-registry", "kind": "secrets"}),
            ),
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let client = client(&api, &dir).await;
    let err = plan(&client, &spec(PASSWORD), "locked").await.unwrap_err();
    assert!(err.is_forbidden() && !err.is_network(), "{err}");
    assert!(
        err.to_string().contains("Secret locked/airlock-registry"),
        "{err}"
    );
    let err = plan(&client, &spec(PASSWORD), "empty").await.unwrap_err();
    assert!(
        matches!(err, cluster::Error::NoServiceAccount { .. }),
        "{err}"
    );
    assert!(api.writes().is_empty());
}
