//! `airlock webhook install` / `uninstall`: the objects validate with `kubernetes-validate
//! --strict`, say what the README promises (failurePolicy, exclusions of kube-system and the
//! webhook's own namespace, reinvocation), the caBundle is the CA that signed the serving
//! certificate (proved by a TLS handshake to the webhook serving that certificate under its
//! Service name), `deploy/webhook/` is what the code generates, and `--apply` sends server-side
//! apply requests through kube.

use serde_json::Value;

use crate::deploy::validate;
use crate::webhook::FakeApi;
use crate::{airlock, airlock_process, repo_root, tempdir};

const REGISTRY: &str = "registry.corp.example:5000";

/// The arguments `deploy/webhook/webhook.yaml` is generated with.
const DEPLOY_ARGS: &[&str] = &[
    "webhook",
    "install",
    "--no-certificate",
    "--registry",
    REGISTRY,
    "--pull-secret",
    "airlock-pull",
];

fn install(args: &[&str]) -> (String, Vec<Value>) {
    let out = airlock()
        .args([
            "webhook",
            "install",
            "--registry",
            REGISTRY,
            "--pull-secret",
            "airlock-pull",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    (text.clone(), docs(&text))
}

fn docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(text).unwrap()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn webhook_install_output_validates_strict() {
    let (text, _) = install(&["--failure-policy", "Fail", "--mutate-templates"]);
    let dir = tempdir();
    let file = dir.path().join("install.yaml");
    std::fs::write(&file, text).unwrap();
    for version in ["1.25.0", "1.37.0"] {
        validate(std::slice::from_ref(&file), version).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn webhook_install_sets_failure_policy_exclusions_reinvocation_and_ca_bundle() {
    let (_, objects) = install(&["--namespace", "infra", "--timeout-seconds", "7"]);
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "Namespace",
        "ServiceAccount",
        "Secret",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
    ] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    // The webhook configurations come last, once the server they call exists.
    assert_eq!(
        &kinds[kinds.len() - 2..],
        [
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration"
        ]
    );
    let secret = find(&objects, "Secret");
    let ca = secret["stringData"]["ca.crt"].as_str().unwrap();
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let hook = &find(&objects, kind)["webhooks"][0];
        assert_eq!(hook["failurePolicy"], "Ignore", "{kind}: the default");
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["timeoutSeconds"], 7);
        assert_eq!(hook["admissionReviewVersions"], serde_json::json!(["v1"]));
        let excluded = &hook["namespaceSelector"]["matchExpressions"][0];
        assert_eq!(excluded["key"], "kubernetes.io/metadata.name");
        assert_eq!(excluded["operator"], "NotIn");
        assert_eq!(
            excluded["values"],
            serde_json::json!(["kube-system", "infra"])
        );
        assert_eq!(hook["clientConfig"]["service"]["namespace"], "infra");
        let bundle = base64_decode(hook["clientConfig"]["caBundle"].as_str().unwrap());
        assert_eq!(bundle, ca.as_bytes(), "{kind}: caBundle is the Secret's CA");
    }
    let mutating = &find(&objects, "MutatingWebhookConfiguration")["webhooks"][0];
    assert_eq!(mutating["reinvocationPolicy"], "IfNeeded");
    let deployment = find(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        find(&objects, "PodDisruptionBudget")["spec"]["minAvailable"],
        1
    );

    let (_, fail) = install(&["--failure-policy", "Fail"]);
    assert_eq!(
        find(&fail, "MutatingWebhookConfiguration")["webhooks"][0]["failurePolicy"],
        "Fail"
    );

    // The serving certificate chains to that CA under the Service's name: a client trusting
    // only the caBundle completes the handshake with the webhook serving it.
    let dir = tempdir();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, secret["stringData"]["tls.crt"].as_str().unwrap()).unwrap();
    std::fs::write(&key, secret["stringData"]["tls.key"].as_str().unwrap()).unwrap();
    let crate::Isolated { mut cmd, _home } = airlock_process();
    let mut child = cmd
        .args(["webhook", "--listen", "127.0.0.1:0", "--registry", REGISTRY])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr: std::net::SocketAddr = loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0,
            "webhook exited"
        );
        if let Some(rest) = line.split("listening on https://").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    let host = "airlock-webhook.infra.svc";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = rt.block_on(async {
        let client = reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(ca.as_bytes()).unwrap())
            .resolve(host, addr)
            .build()
            .unwrap();
        client
            .get(format!("https://{host}:{}/healthz", addr.port()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(body, "ok");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[test]
fn deploy_webhook_manifests_are_what_install_generates() {
    let out = airlock().args(DEPLOY_ARGS).output().unwrap();
    assert!(out.status.success());
    let path = repo_root().join("deploy/webhook/webhook.yaml");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == String::from_utf8_lossy(&out.stdout),
        "{} is out of date: regenerate it with `airlock {} > {}`",
        path.display(),
        DEPLOY_ARGS.join(" "),
        path.display()
    );
    let objects = docs(&on_disk);
    assert!(
        find(&objects, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]
            .get("caBundle")
            .is_none()
    );
    assert!(!objects.iter().any(|o| o["kind"] == "Secret"));
}

#[test]
fn webhook_uninstall_removes_the_webhook_configurations_first() {
    let out = airlock()
        .args(["webhook", "uninstall", "--registry", REGISTRY])
        .output()
        .unwrap();
    assert!(out.status.success());
    let objects = docs(&String::from_utf8(out.stdout).unwrap());
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        &kinds[..2],
        [
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration"
        ]
    );
    assert_eq!(kinds.last(), Some(&"Namespace"));
    assert!(kinds.contains(&"Secret"), "{kinds:?}");
}

#[test]
fn webhook_install_apply_sends_server_side_apply_for_every_object() {
    let api = FakeApi::start(&[]);
    let dir = tempdir();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();
    let out = airlock()
        .env("KUBECONFIG", &kubeconfig)
        .args([
            "webhook",
            "install",
            "--apply",
            "--registry",
            REGISTRY,
            "--pull-secret",
            "airlock-pull",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = api.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 10, "{requests:#?}");
    for r in &requests {
        assert!(r.starts_with("PATCH "), "{r}");
        assert!(
            r.contains("fieldManager=airlock") && r.contains("force=true"),
            "{r}"
        );
    }
    assert!(
        requests[0].starts_with("PATCH /api/v1/namespaces/airlock?"),
        "{}",
        requests[0]
    );
    assert!(requests.iter().any(|r| r.starts_with(
        "PATCH /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/airlock-webhook?"
    )));
    assert!(requests.iter().any(|r| r.starts_with(
        "PATCH /apis/policy/v1/namespaces/airlock/poddisruptionbudgets/airlock-webhook?"
    )));
}
