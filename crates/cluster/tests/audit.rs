//! `cluster::audit` through the real kube client against recorded kube-apiserver responses
//! (see `fake_apiserver`): paging, pods with init and several containers, pull failures, a
//! namespace the credentials cannot read, the lock file and the shared policy's verdicts.

mod fake_apiserver;

use cluster::audit::{Audit, LockIndex, LockState, Report, SecretState};
use cluster::{ConnectOptions, Scope};
use fake_apiserver::{FakeApi, recorded, recorded_cluster};

const REGISTRY: &str = "registry.corp.local:5000";

fn policy() -> policy::Policy {
    policy::Policy {
        private: Some(mapping::Mapping::new(REGISTRY, mapping::Mode::ReplaceHost, vec![]).unwrap()),
        pull_secret: Some("regcred".into()),
        ..policy::Policy::default()
    }
}

async fn client(api: &FakeApi, dir: &tempfile::TempDir) -> cluster::Client {
    let opts = ConnectOptions {
        kubeconfig: Some(api.kubeconfig(dir.path(), "shop")),
        context: None,
    };
    cluster::connect(&opts).await.unwrap()
}

async fn audit_all(api: &FakeApi, lock: Option<&LockIndex>, page: u32) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let client = client(api, &dir).await;
    let namespaces = Scope::All.namespaces(&client, page).await.unwrap();
    assert_eq!(namespaces, ["ci", "kube-system", "shop"]);
    let policy = policy();
    Audit {
        policy: &policy,
        lock,
        page,
    }
    .run(&client, &namespaces)
    .await
    .unwrap()
}

fn row<'a>(r: &'a Report, pod: &str, container: &str) -> &'a cluster::audit::ContainerRow {
    r.containers
        .iter()
        .find(|c| c.pod.starts_with(pod) && c.container == container)
        .unwrap_or_else(|| panic!("no row {pod}/{container}"))
}

#[tokio::test]
async fn pods_are_read_across_pages_with_limit_and_continue() {
    let api = recorded_cluster();
    let report = audit_all(&api, None, 2).await;
    let shop: Vec<&str> = report
        .containers
        .iter()
        .filter(|c| c.namespace == "shop")
        .map(|c| c.pod.as_str())
        .collect();
    assert!(
        shop.iter().any(|p| p == &"worker-0"),
        "second page read: {shop:?}"
    );
    let lists: Vec<_> = api
        .seen()
        .into_iter()
        .filter(|s| s.path == "/api/v1/namespaces/shop/pods")
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert_eq!(lists[0].query.get("limit").map(String::as_str), Some("2"));
    assert_eq!(lists[0].query.get("continue"), None);
    let token = recorded("pods-shop-page1")["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(lists[1].query.get("continue"), Some(&token));
    assert_eq!(lists[1].query.get("limit").map(String::as_str), Some("2"));
}

#[tokio::test]
async fn every_init_regular_container_is_a_row_with_its_image_id_and_registry() {
    let api = recorded_cluster();
    let report = audit_all(&api, None, 500).await;
    let api_pod: Vec<(&str, &str)> = report
        .containers
        .iter()
        .filter(|c| c.pod.starts_with("api-"))
        .map(|c| (c.container.as_str(), c.role))
        .collect();
    assert_eq!(
        api_pod,
        [
            ("migrate", "init"),
            ("api", "container"),
            ("envoy", "container")
        ]
    );
    let envoy = row(&report, "api-", "envoy");
    assert_eq!(envoy.registry.as_deref(), Some("docker.io"));
    assert_eq!(
        envoy.image_id.as_deref(),
        Some(format!("docker.io/envoyproxy/envoy@sha256:{}", "3".repeat(64)).as_str())
    );
    assert_eq!(envoy.digest, Some(format!("sha256:{}", "3".repeat(64))));
    // The shared policy: a public registry is not allowed; the private ones pass.
    let rules: Vec<_> = envoy.violations.iter().map(|j| j.rule).collect();
    assert_eq!(rules, [policy::RuleId::RegistryNotAllowed]);
    assert!(row(&report, "api-", "api").violations.is_empty());
    assert!(row(&report, "api-", "migrate").violations.is_empty());
    // A local image ID is not a manifest digest.
    let metrics = row(&report, "worker-0", "metrics");
    assert_eq!(metrics.digest, None);
    assert_eq!(metrics.registry.as_deref(), Some(REGISTRY));
    assert!(report.failed());
}

#[tokio::test]
async fn pull_failures_are_reported_with_reason_and_message() {
    let api = recorded_cluster();
    let report = audit_all(&api, None, 500).await;
    let failures: Vec<(&str, &str)> = report
        .pull_failures
        .iter()
        .map(|f| (f.container.as_str(), f.reason.as_str()))
        .collect();
    assert_eq!(
        failures,
        [
            ("agent-injection", "ErrImagePull"),
            ("jnlp", "ImagePullBackOff")
        ]
    );
    let jnlp = &report.pull_failures[1];
    assert!(
        jnlp.message
            .as_deref()
            .unwrap()
            .contains("no basic auth credentials"),
        "{jnlp:?}"
    );
    // PodInitializing is waiting, not failing.
    assert!(!report.pull_failures.iter().any(|f| f.container == "maven"));
    assert_eq!(row(&report, "maven-build", "jnlp").image_id, None);
}

#[tokio::test]
async fn a_forbidden_namespace_is_reported_and_the_rest_still_audited() {
    let api = recorded_cluster();
    let report = audit_all(&api, None, 500).await;
    assert_eq!(report.unreadable.len(), 1, "{:?}", report.unreadable);
    let u = &report.unreadable[0];
    assert_eq!(
        (u.namespace.as_str(), u.resource, u.code),
        ("kube-system", "pods", 403)
    );
    assert!(
        u.message.contains("cannot list resource \"pods\""),
        "{}",
        u.message
    );
    let audited: Vec<&str> = report.namespaces.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(audited, ["ci", "shop"]);
    assert!(report.containers.iter().any(|c| c.namespace == "shop"));
    assert!(report.containers.iter().any(|c| c.namespace == "ci"));
}

#[tokio::test]
async fn namespaces_and_service_accounts_missing_the_pull_secret_are_named() {
    let api = recorded_cluster();
    let report = audit_all(&api, None, 500).await;
    let ns = |name: &str| report.namespaces.iter().find(|n| n.name == name).unwrap();
    assert_eq!(ns("shop").pull_secret, SecretState::Present);
    let secret_reads: Vec<_> = api
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("/secrets/"))
        .collect();
    assert_eq!(secret_reads.len(), 2);
    for read in secret_reads {
        assert!(
            read.accept.contains("as=PartialObjectMetadata"),
            "the audit fetched a Secret's data: {read:?}"
        );
    }
    assert_eq!(ns("ci").pull_secret, SecretState::Missing);
    // worker-0 runs as `worker`, which has no regcred, and the pod has none; `default` in shop
    // has it.
    assert_eq!(ns("shop").service_accounts_missing_pull_secret, ["worker"]);
    assert_eq!(ns("ci").service_accounts_missing_pull_secret, ["default"]);
    assert_eq!(ns("shop").pods, 3);
    let worker = row(&report, "worker-0", "worker");
    let rules: Vec<_> = worker.violations.iter().map(|j| j.rule).collect();
    assert_eq!(rules, [policy::RuleId::MissingPullSecret]);
    // The web pod has no pod-level secret but its ServiceAccount has.
    assert!(row(&report, "web-", "web").violations.is_empty());
}

#[tokio::test]
async fn running_digests_are_matched_against_the_lock_under_the_private_name() {
    let api = recorded_cluster();
    let d = |c: &str| format!("sha256:{}", c.repeat(64));
    let lock = LockIndex::new(
        [
            // Locked by public name; the pod runs the mirrored copy.
            (
                "docker.io/library/nginx:1.27".to_string(),
                vec![d("9"), d("a")],
            ),
            ("docker.io/shop/worker:3.0".to_string(), vec![d("c")]),
            (
                "docker.io/envoyproxy/envoy:v1.30.1".to_string(),
                vec![d("3")],
            ),
        ],
        &policy(),
    );
    let report = audit_all(&api, Some(&lock), 500).await;
    assert_eq!(
        row(&report, "web-", "web").lock,
        LockState::Match { digest: d("a") }
    );
    assert_eq!(
        row(&report, "worker-0", "worker").lock,
        LockState::Mismatch {
            locked: d("c"),
            running: d("b")
        }
    );
    assert_eq!(
        row(&report, "api-", "envoy").lock,
        LockState::Match { digest: d("3") }
    );
    assert_eq!(row(&report, "api-", "api").lock, LockState::NotLocked);
}

#[tokio::test]
async fn the_default_scope_is_the_kubeconfig_namespace_and_a_context_can_change_it() {
    let api = recorded_cluster();
    let dir = tempfile::tempdir().unwrap();
    let client = client(&api, &dir).await;
    assert_eq!(
        Scope::Default.namespaces(&client, 500).await.unwrap(),
        ["shop"]
    );
    let other = cluster::connect(&ConnectOptions {
        kubeconfig: Some(api.kubeconfig(dir.path(), "shop")),
        context: Some("other".into()),
    })
    .await
    .unwrap();
    assert_eq!(
        Scope::Default.namespaces(&other, 500).await.unwrap(),
        ["other-ns"]
    );
    let selected = Scope::Selector("airlock.dev/pull=true".into())
        .namespaces(&client, 500)
        .await
        .unwrap();
    // The recorded list holds every namespace; the selector must reach the server.
    assert_eq!(selected.len(), 3);
    let last = api
        .seen()
        .into_iter()
        .rfind(|s| s.path == "/api/v1/namespaces")
        .unwrap();
    assert_eq!(
        last.query.get("labelSelector").map(String::as_str),
        Some("airlock.dev/pull=true")
    );
}

#[tokio::test]
async fn an_unreachable_api_server_is_a_network_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let client = cluster::connect(&ConnectOptions {
        kubeconfig: Some(path),
        context: None,
    })
    .await
    .unwrap();
    let policy = policy();
    let err = Audit {
        policy: &policy,
        lock: None,
        page: 500,
    }
    .run(&client, &["shop".to_string()])
    .await
    .unwrap_err();
    assert!(err.is_network(), "{err}");
    assert!(err.to_string().contains("pods in shop"), "{err}");
}

#[tokio::test]
async fn a_server_that_repeats_its_continue_token_is_an_error_not_an_endless_list() {
    let api = FakeApi::start();
    let page = recorded("pods-shop-page1");
    // The second page hands out the token that asked for it.
    api.canned(
        "/api/v1/namespaces/shop/pods",
        fake_apiserver::Canned::Pages(vec![page.clone(), page]),
    );
    let dir = tempfile::tempdir().unwrap();
    let client = client(&api, &dir).await;
    let policy = policy();
    let err = Audit {
        policy: &policy,
        lock: None,
        page: 2,
    }
    .run(&client, &["shop".to_string()])
    .await
    .unwrap_err();
    assert!(matches!(err, cluster::Error::ContinueLoop { .. }), "{err}");
    assert_eq!(api.seen().len(), 2);
}
