//! `airlock audit` run as a user runs it, against the kube-apiserver stand-in with recorded
//! responses (no kube-apiserver can run here): paging, init and several containers, pull
//! failures, a forbidden namespace, the lock file, and the exit codes.

use serde_json::{Value, json};

use crate::airlock;
use crate::fake_apiserver::{Canned, FakeApi, recorded, recorded_cluster};

const REGISTRY: &str = "registry.corp.local:5000";

fn run(api: &FakeApi, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), "shop");
    let out = airlock()
        .current_dir(dir.path())
        .env("KUBECONFIG", &kubeconfig)
        .arg("audit")
        .args(["--registry", REGISTRY, "--pull-secret", "regcred"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn audit_all_namespaces_as_json_reports_a_forbidden_one_and_exits_2() {
    let api = recorded_cluster();
    let (code, stdout, stderr) = run(&api, &["-A", "--chunk-size", "2", "--format", "json"]);
    assert_eq!(code, 2, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    // api: migrate, api, envoy; web; worker: worker, metrics; agent: agent-injection, maven, jnlp.
    assert_eq!(report["containers"].as_array().unwrap().len(), 9);
    assert_eq!(report["unreadable"][0]["namespace"], "kube-system");
    assert_eq!(report["unreadable"][0]["code"], 403);
    assert!(
        stderr.contains("namespace kube-system: cannot read pods (403)"),
        "{stderr}"
    );
    let pages = api
        .seen()
        .into_iter()
        .filter(|s| s.path == "/api/v1/namespaces/shop/pods")
        .count();
    assert_eq!(pages, 2);
}

#[test]
fn audit_table_names_violations_pull_failures_and_missing_secrets_and_exits_1() {
    let api = recorded_cluster();
    let (code, stdout, stderr) = run(&api, &["-n", "shop", "-n", "ci"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let envoy = stdout
        .lines()
        .find(|l| l.contains("envoy") && l.starts_with("shop"))
        .unwrap();
    assert!(
        envoy.contains("docker.io") && envoy.contains("FAIL registry-not-allowed"),
        "{envoy}"
    );
    assert!(stdout.contains("migrate (init)"), "{stdout}");
    assert!(stdout.contains("Pods that cannot pull:"), "{stdout}");
    assert!(stdout.contains("jnlp: ImagePullBackOff"), "{stdout}");
    assert!(
        stdout.contains("Namespaces without the Secret regcred: ci"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ServiceAccounts whose pods lack regcred: ci/default, shop/worker"),
        "{stdout}"
    );
    assert!(
        stdout.contains("9 containers in 4 pods in 2 namespaces"),
        "{stdout}"
    );
}

#[test]
fn audit_with_a_lock_file_flags_a_running_digest_that_is_not_the_locked_one() {
    let api = recorded_cluster();
    let dir = tempfile::tempdir().unwrap();
    let d = |c: &str| format!("sha256:{}", c.repeat(64));
    let lock = dir.path().join("airlock.lock");
    std::fs::write(
        &lock,
        format!(
            "version: 1\nimages:\n  - image: docker.io/library/nginx:1.27\n    digest: {}\n    \
             mediaType: application/vnd.oci.image.index.v1+json\n    platforms:\n      - platform: linux/amd64\n        digest: {}\n  \
             - image: docker.io/shop/worker:3.0\n    digest: {}\n    mediaType: application/vnd.oci.image.manifest.v1+json\n",
            d("9"),
            d("a"),
            d("c")
        ),
    )
    .unwrap();
    let (code, stdout, _) = run(
        &api,
        &[
            "-n",
            "shop",
            "--lock",
            lock.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let lock_of = |pod: &str, container: &str| {
        report["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["pod"].as_str().unwrap().starts_with(pod) && c["container"] == container)
            .unwrap()["lock"]
            .clone()
    };
    assert_eq!(
        lock_of("web-", "web"),
        json!({"state": "match", "digest": d("a")})
    );
    assert_eq!(
        lock_of("worker-0", "worker"),
        json!({"state": "mismatch", "locked": d("c"), "running": d("b")})
    );
    assert_eq!(lock_of("api-", "api"), json!({"state": "not-locked"}));
}

#[test]
fn audit_of_a_clean_namespace_exits_0() {
    let api = FakeApi::start();
    let mut web = recorded("pods-shop-page1")["items"][1].clone();
    web["metadata"]["namespace"] = json!("store");
    let mut accounts = recorded("serviceaccounts-shop");
    accounts["items"][0]["metadata"]["namespace"] = json!("store");
    let mut secret = recorded("secret-shop-regcred");
    secret["metadata"]["namespace"] = json!("store");
    api.canned(
        "/api/v1/namespaces/store/pods",
        Canned::Pages(vec![json!({
            "kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "90210"}, "items": [web],
        })]),
    )
    .canned("/api/v1/namespaces/store/serviceaccounts", Canned::Pages(vec![accounts]))
    .object(secret);
    let (code, stdout, stderr) = run(&api, &["-n", "store"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("0 policy violations, 0 lock mismatches, 0 pull failures, 0 unreadable"),
        "{stdout}"
    );
}

#[test]
fn audit_without_any_cluster_configuration_says_so_and_exits_2() {
    let out = airlock().args(["audit", "-A"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("no cluster to talk to"), "{stderr}");
}

#[test]
fn audit_of_an_unreachable_api_server_exits_3() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), "shop");
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let text = std::fs::read_to_string(&kubeconfig).unwrap().replace(
        &api.url(),
        &format!("http://{}", closed.local_addr().unwrap()),
    );
    drop(closed);
    std::fs::write(&kubeconfig, text).unwrap();
    let out = airlock()
        .args(["audit", "-n", "shop", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("list pods in shop"), "{stderr}");
}
