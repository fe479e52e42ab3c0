//! Reviews as kube-apiserver sends them, answered without a socket; every patch is applied to
//! the object it was made for and the result checked.

use std::collections::HashSet;

use base64::Engine as _;
use serde_json::{Value, json};

use super::*;

const TARGET: &str = "registry.corp:5000/mirror";
const DIGEST: &str = "sha256:0752ca4e936da012c173c119217c0f9599b3b191c1557e53206d5d06d2627580";

struct Secrets(HashSet<(String, String)>);

impl SecretLookup for Secrets {
    async fn secret_exists(&self, namespace: &str, name: &str) -> Result<bool, String> {
        Ok(self.0.contains(&(namespace.to_string(), name.to_string())))
    }
}

fn secrets_in(namespaces: &[&str]) -> Secrets {
    Secrets(
        namespaces
            .iter()
            .map(|ns| (ns.to_string(), "airlock-pull".to_string()))
            .collect(),
    )
}

fn config() -> Config {
    let mapping = mapping::Mapping::new(TARGET, mapping::Mode::ReplaceHost, vec![]).unwrap();
    Config {
        policy: policy::Policy {
            private: Some(mapping.clone()),
            pull_secret: Some("airlock-pull".into()),
            ..policy::Policy::default()
        },
        mapping,
        pull_secret: Some("airlock-pull".into()),
        mutate_templates: false,
        enforce: Enforce::Deny,
        dry_run: false,
    }
}

/// The AdmissionReview kube-apiserver sends for `obj`.
fn review_body(
    obj: &Value,
    operation: &str,
    sub_resource: Option<&str>,
    old: Option<&Value>,
) -> Vec<u8> {
    let kind = obj["kind"].as_str().unwrap();
    let (group, resource) = match kind {
        "Pod" => ("", "pods"),
        "Deployment" => ("apps", "deployments"),
        "CronJob" => ("batch", "cronjobs"),
        _ => ("", "configmaps"),
    };
    let version = "v1";
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": resource});
    let mut req = json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
        "name": obj["metadata"]["name"].as_str().unwrap_or(""),
        "namespace": "ci",
        "operation": operation,
        "userInfo": {"username": "system:serviceaccount:ci:jenkins", "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": false,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    });
    if let Some(s) = sub_resource {
        req["subResource"] = json!(s);
        req["requestSubResource"] = json!(s);
    }
    serde_json::to_vec(
        &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}),
    )
    .unwrap()
}

/// Runs `/mutate` and returns the wire response and the object with the patch applied.
fn mutate_wire(config: &Config, secrets: &Secrets, body: &[u8]) -> (Value, Outcome, Value) {
    let req = parse(body).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (resp, outcome) = rt.block_on(mutate(config, secrets, &req));
    let wire: Value = serde_json::from_slice(&encode(resp).unwrap()).unwrap();
    let mut obj: Value =
        serde_json::from_slice::<Value>(body).unwrap()["request"]["object"].clone();
    if let Some(p) = wire["response"]["patch"].as_str() {
        assert_eq!(wire["response"]["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut obj, &patch).unwrap();
    }
    (wire, outcome, obj)
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "agent-x1", "namespace": "ci"}, "spec": spec})
}

fn originals(obj: &Value) -> Value {
    serde_json::from_str(
        obj["metadata"]["annotations"][ORIGINAL_IMAGES]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn every_container_init_and_ephemeral_is_rewritten_and_the_originals_recorded() {
    let p = pod(json!({
        "initContainers": [{"name": "a", "image": "busybox:1.36"}, {"name": "b", "image": "quay.io/x/y:2"}],
        "containers": [{"name": "app", "image": "nginx"}],
        "ephemeralContainers": [{"name": "debug", "image": "ghcr.io/d/dbg:1"}],
    }));
    let (wire, outcome, obj) = mutate_wire(
        &config(),
        &secrets_in(&["ci"]),
        &review_body(&p, "CREATE", None, None),
    );
    assert_eq!(
        wire["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert_eq!(wire["response"]["allowed"], true);
    assert_eq!(wire["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(
        outcome,
        Outcome::Patched {
            images: 4,
            pull_secret: true
        }
    );
    let s = &obj["spec"];
    assert_eq!(
        s["initContainers"][0]["image"],
        format!("{TARGET}/library/busybox:1.36")
    );
    assert_eq!(s["initContainers"][1]["image"], format!("{TARGET}/x/y:2"));
    assert_eq!(
        s["containers"][0]["image"],
        format!("{TARGET}/library/nginx")
    );
    assert_eq!(
        s["ephemeralContainers"][0]["image"],
        format!("{TARGET}/d/dbg:1")
    );
    assert_eq!(s["imagePullSecrets"], json!([{"name": "airlock-pull"}]));
    assert_eq!(
        originals(&obj),
        json!({"initContainers/a": "busybox:1.36", "initContainers/b": "quay.io/x/y:2",
               "containers/app": "nginx", "ephemeralContainers/debug": "ghcr.io/d/dbg:1"})
    );
}

#[test]
fn reinvocation_on_the_patched_pod_changes_nothing() {
    let p = pod(json!({"containers": [{"name": "app", "image": "nginx:1.27"}]}));
    let cfg = config();
    let secrets = secrets_in(&["ci"]);
    let (_, _, once) = mutate_wire(&cfg, &secrets, &review_body(&p, "CREATE", None, None));
    let (wire, outcome, twice) =
        mutate_wire(&cfg, &secrets, &review_body(&once, "CREATE", None, None));
    assert_eq!(outcome, Outcome::Unchanged);
    assert!(wire["response"].get("patch").is_none());
    assert_eq!(once, twice);
}

#[test]
fn digest_and_tag_at_digest_are_kept() {
    let p = pod(json!({"containers": [
        {"name": "a", "image": format!("quay.io/x/y@{DIGEST}")},
        {"name": "b", "image": format!("quay.io/x/y:1.0@{DIGEST}")},
    ]}));
    let (_, _, obj) = mutate_wire(
        &config(),
        &secrets_in(&[]),
        &review_body(&p, "CREATE", None, None),
    );
    assert_eq!(
        obj["spec"]["containers"][0]["image"],
        format!("{TARGET}/x/y@{DIGEST}")
    );
    assert_eq!(
        obj["spec"]["containers"][1]["image"],
        format!("{TARGET}/x/y:1.0@{DIGEST}")
    );
}

#[test]
fn users_pull_secrets_are_kept_and_a_missing_secret_only_warns() {
    let p = pod(
        json!({"imagePullSecrets": [{"name": "mine"}], "containers": [{"name": "a", "image": "nginx"}]}),
    );
    let (_, outcome, obj) = mutate_wire(
        &config(),
        &secrets_in(&["ci"]),
        &review_body(&p, "CREATE", None, None),
    );
    assert_eq!(
        obj["spec"]["imagePullSecrets"],
        json!([{"name": "mine"}, {"name": "airlock-pull"}])
    );
    assert!(matches!(
        outcome,
        Outcome::Patched {
            pull_secret: true,
            ..
        }
    ));

    let (wire, outcome, obj) = mutate_wire(
        &config(),
        &secrets_in(&["other"]),
        &review_body(&p, "CREATE", None, None),
    );
    assert_eq!(obj["spec"]["imagePullSecrets"], json!([{"name": "mine"}]));
    assert!(matches!(
        outcome,
        Outcome::Patched {
            pull_secret: false,
            images: 1
        }
    ));
    let warning = wire["response"]["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("Secret airlock-pull is not in namespace ci"),
        "{warning}"
    );
}

#[test]
fn a_pod_labelled_ignore_is_left_alone() {
    let mut p = pod(json!({"containers": [{"name": "a", "image": "nginx"}]}));
    p["metadata"]["labels"] = json!({IGNORE_LABEL: "true"});
    let (wire, outcome, _) = mutate_wire(
        &config(),
        &secrets_in(&["ci"]),
        &review_body(&p, "CREATE", None, None),
    );
    assert_eq!(outcome, Outcome::Skipped("opted out"));
    assert!(wire["response"].get("patch").is_none());
}

#[test]
fn ephemeral_subresource_rewrites_only_the_new_ephemeral_container() {
    let old = pod(json!({
        "containers": [{"name": "app", "image": "nginx"}],
        "ephemeralContainers": [{"name": "old", "image": "busybox"}],
    }));
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "debugger-x", "image": "busybox:1.36"}));
    let body = review_body(&new, "UPDATE", Some("ephemeralcontainers"), Some(&old));
    let (_, outcome, obj) = mutate_wire(&config(), &secrets_in(&["ci"]), &body);
    assert_eq!(
        outcome,
        Outcome::Patched {
            images: 1,
            pull_secret: false
        }
    );
    assert_eq!(obj["spec"]["containers"][0]["image"], "nginx");
    assert_eq!(obj["spec"]["ephemeralContainers"][0]["image"], "busybox");
    assert_eq!(
        obj["spec"]["ephemeralContainers"][1]["image"],
        format!("{TARGET}/library/busybox:1.36")
    );
    assert!(obj["metadata"].get("annotations").is_none());
}

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ci"},
           "spec": {"selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
}

#[test]
fn templates_are_rewritten_only_when_asked() {
    let body = review_body(&deployment(), "CREATE", None, None);
    let (wire, outcome, _) = mutate_wire(&config(), &secrets_in(&["ci"]), &body);
    assert_eq!(outcome, Outcome::Skipped("template"));
    assert!(wire["response"].get("patch").is_none());

    let cfg = Config {
        mutate_templates: true,
        ..config()
    };
    let (_, outcome, obj) = mutate_wire(&cfg, &secrets_in(&["ci"]), &body);
    assert_eq!(
        outcome,
        Outcome::Patched {
            images: 1,
            pull_secret: true
        }
    );
    let t = &obj["spec"]["template"];
    assert_eq!(
        t["spec"]["containers"][0]["image"],
        format!("{TARGET}/library/nginx:1.27")
    );
    assert_eq!(
        t["spec"]["imagePullSecrets"],
        json!([{"name": "airlock-pull"}])
    );
    assert!(t["metadata"]["annotations"][ORIGINAL_IMAGES].is_string());

    // `kubectl apply` of a new public image is an UPDATE: rewritten again, or it would undo it.
    let (_, outcome, obj) = mutate_wire(
        &cfg,
        &secrets_in(&["ci"]),
        &review_body(&deployment(), "UPDATE", None, Some(&deployment())),
    );
    assert!(matches!(outcome, Outcome::Patched { images: 1, .. }));
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("{TARGET}/library/nginx:1.27")
    );
}

#[test]
fn cronjob_template_is_found_under_job_template() {
    let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
        "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "alpine:3"}]}}}}}});
    let cfg = Config {
        mutate_templates: true,
        ..config()
    };
    let (_, _, obj) = mutate_wire(
        &cfg,
        &secrets_in(&[]),
        &review_body(&cj, "CREATE", None, None),
    );
    let t = &obj["spec"]["jobTemplate"]["spec"]["template"];
    assert_eq!(
        t["spec"]["containers"][0]["image"],
        format!("{TARGET}/library/alpine:3")
    );
    assert!(t["metadata"]["annotations"][ORIGINAL_IMAGES].is_string());
}

#[test]
fn dry_run_counts_but_returns_no_patch() {
    let p = pod(json!({"containers": [{"name": "a", "image": "nginx"}]}));
    let cfg = Config {
        dry_run: true,
        ..config()
    };
    let (wire, outcome, _) = mutate_wire(
        &cfg,
        &secrets_in(&["ci"]),
        &review_body(&p, "CREATE", None, None),
    );
    assert_eq!(
        outcome,
        Outcome::WouldPatch {
            images: 1,
            pull_secret: true
        }
    );
    assert!(wire["response"].get("patch").is_none());
    assert_eq!(wire["response"]["allowed"], true);
}

#[test]
fn unknown_kind_is_admitted_unchanged_with_a_warning() {
    let cm =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}});
    let (wire, outcome, _) = mutate_wire(
        &config(),
        &secrets_in(&[]),
        &review_body(&cm, "CREATE", None, None),
    );
    assert_eq!(outcome, Outcome::Skipped("kind"));
    assert_eq!(wire["response"]["allowed"], true);
    assert!(
        wire["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("ConfigMap")
    );
}

#[test]
fn malformed_requests_are_errors_not_panics() {
    assert!(matches!(parse(b"{not json"), Err(ReviewError::Json(_))));
    assert!(matches!(
        parse(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
        Err(ReviewError::NoRequest)
    ));
    assert!(matches!(
        parse(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#),
        Err(ReviewError::Version(_))
    ));
    let p = pod(json!({"containers": {"name": "a"}}));
    let (wire, outcome, _) = mutate_wire(
        &config(),
        &secrets_in(&[]),
        &review_body(&p, "CREATE", None, None),
    );
    assert_eq!(outcome, Outcome::Invalid);
    assert_eq!(wire["response"]["allowed"], false);
    assert_eq!(wire["response"]["status"]["code"], 400);
    assert!(
        wire["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("spec.containers is not a list")
    );
}

fn validate_wire(config: &Config, obj: &Value) -> (Value, Outcome) {
    let req = parse(&review_body(obj, "CREATE", None, None)).unwrap();
    let (resp, outcome) = validate(config, &req);
    (
        serde_json::from_slice(&encode(resp).unwrap()).unwrap(),
        outcome,
    )
}

#[test]
fn validation_denies_or_warns_with_the_shared_policy() {
    let public = pod(json!({"imagePullSecrets": [{"name": "airlock-pull"}],
                            "containers": [{"name": "a", "image": "docker.io/library/nginx:1.27"}]}));
    let (wire, outcome) = validate_wire(&config(), &public);
    assert_eq!(outcome, Outcome::Denied);
    assert_eq!(wire["response"]["allowed"], false);
    assert_eq!(wire["response"]["status"]["code"], 403);
    let message = wire["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("docker.io/library/nginx:1.27"),
        "{message}"
    );

    let cfg = Config {
        enforce: Enforce::Warn,
        ..config()
    };
    let (wire, outcome) = validate_wire(&cfg, &public);
    assert_eq!(outcome, Outcome::Warned);
    assert_eq!(wire["response"]["allowed"], true);
    assert!(!wire["response"]["warnings"].as_array().unwrap().is_empty());

    let private = pod(json!({"imagePullSecrets": [{"name": "airlock-pull"}],
                             "containers": [{"name": "a", "image": format!("{TARGET}/library/nginx:1.27")}]}));
    assert_eq!(validate_wire(&config(), &private).1, Outcome::Unchanged);
}

#[test]
fn a_missing_pull_secret_is_a_warning_even_when_denying() {
    let p = pod(
        json!({"containers": [{"name": "a", "image": format!("{TARGET}/library/nginx:1.27")}]}),
    );
    let (wire, outcome) = validate_wire(&config(), &p);
    assert_eq!(outcome, Outcome::Warned);
    assert_eq!(wire["response"]["allowed"], true);
    assert!(
        wire["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("airlock-pull")
    );
}

#[test]
fn counters_render_every_outcome() {
    let c = Counters::default();
    c.record(
        true,
        &Outcome::Patched {
            images: 3,
            pull_secret: true,
        },
    );
    c.record(false, &Outcome::Denied);
    let text = c.render();
    assert!(
        text.contains("airlock_admission_reviews_total{endpoint=\"mutate\",outcome=\"patched\"} 1")
    );
    assert!(
        text.contains(
            "airlock_admission_reviews_total{endpoint=\"validate\",outcome=\"denied\"} 1"
        )
    );
    assert!(text.contains("airlock_admission_images_rewritten_total 3"));
    assert_eq!(c.get(true, "patched"), 1);
}
