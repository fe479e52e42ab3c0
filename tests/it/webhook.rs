//! `airlock webhook` over a real TLS socket, spoken to exactly as kube-apiserver does: an
//! admission.k8s.io/v1 AdmissionReview POSTed to `/mutate?timeout=10s`, the server verified
//! against the CA it generated, the response checked like the apiserver checks it (uid echoed,
//! base64 JSONPatch, `patchType: JSONPatch`) and every patch applied with json-patch. The pull
//! Secret lookups go through kube to a small recording HTTP server standing in for the API
//! (no kube-apiserver can run here).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::airlock_process;

const TARGET: &str = "registry.corp:5000/mirror";
const DIGEST: &str = "sha256:0752ca4e936da012c173c119217c0f9599b3b191c1557e53206d5d06d2627580";

/// A stand-in for the Kubernetes API answering `GET .../namespaces/NS/secrets/NAME` for the
/// Secrets it holds (404 otherwise) and server-side apply PATCHes (echoed back), recording every
/// request: a GET's path, `METHOD path?query` otherwise.
pub struct FakeApi {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl FakeApi {
    pub fn start(secrets: &[(&str, &str)]) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let held: Vec<String> = secrets
            .iter()
            .map(|(ns, n)| format!("/api/v1/namespaces/{ns}/secrets/{n}"))
            .collect();
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut length = 0usize;
                let mut h = String::new();
                while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    h.clear();
                }
                let mut sent = vec![0; length];
                let _ = reader.read_exact(&mut sent);
                let mut words = line.split_whitespace();
                let method = words.next().unwrap_or("").to_string();
                let target = words.next().unwrap_or("").to_string();
                let path = target.split('?').next().unwrap_or("").to_string();
                log.lock().unwrap().push(if method == "GET" {
                    path.clone()
                } else {
                    format!("{method} {target}")
                });
                let (status, body) = if method == "PATCH" {
                    // Server-side apply answers with the object as applied.
                    (
                        "200 OK",
                        serde_json::from_slice(&sent).unwrap_or(Value::Null),
                    )
                } else if held.contains(&path) {
                    let name = path.rsplit('/').next().unwrap();
                    (
                        "200 OK",
                        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                                      "metadata": {"name": name}}),
                    )
                } else {
                    (
                        "404 Not Found",
                        json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                                             "reason": "NotFound", "code": 404, "message": "not found"}),
                    )
                };
                let body = body.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeApi { addr, requests }
    }

    /// A kubeconfig pointing kube at this server over plain HTTP.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
             users:\n- name: u\n  user:\n    token: test-token\ncontexts:\n- name: c\n  context:\n    \
             cluster: fake\n    user: u\n    namespace: default\ncurrent-context: c\n",
            self.addr
        )
    }
}

/// A running `airlock webhook` with a generated certificate; killed on drop.
pub struct Webhook {
    child: Child,
    pub addr: SocketAddr,
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
    _home: crate::Isolated<()>,
}

impl Webhook {
    pub fn start(api: &FakeApi, extra: &[&str]) -> Webhook {
        let dir = crate::tempdir();
        let crate::Isolated { mut cmd, _home } = airlock_process();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();
        let tls = dir.path().join("tls");
        let mut child = cmd
            .env("KUBECONFIG", &kubeconfig)
            .args(["webhook", "--listen", "127.0.0.1:0", "--registry", TARGET])
            .args(["--pull-secret", "airlock-pull", "--tls-dir"])
            .arg(&tls)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("airlock webhook starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut all = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on https://").nth(1) {
                    let _ = tx.send(Ok(rest.split_whitespace().next().unwrap().to_string()));
                }
                all.push(line);
            }
            let _ = tx.send(Err(all));
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(a)) => a.parse().unwrap(),
            other => panic!("webhook did not start: {other:?}"),
        };
        Webhook {
            child,
            addr,
            ca: tls.join("ca.pem"),
            _dir: dir,
            _home: crate::Isolated { cmd: (), _home },
        }
    }

    fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.ca).unwrap();
        reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
            .build()
            .unwrap()
    }

    /// POSTs `body` to `path` (with the apiserver's `?timeout=10s`): status and body.
    pub fn post(&self, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let r = self
                .client()
                .post(format!(
                    "https://localhost:{}{path}?timeout=10s",
                    self.addr.port()
                ))
                .header("content-type", "application/json")
                .header("accept", "application/json, */*")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
        })
    }

    pub fn get(&self, path: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let url = format!("https://localhost:{}{path}", self.addr.port());
            self.client()
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const UID: &str = "d1b6c8f0-2f5e-4a0e-9a43-6f3f1c2b9e11";

/// The AdmissionReview kube-apiserver sends for creating `obj` in namespace `ci`.
fn review(obj: &Value) -> Vec<u8> {
    let kind = obj["kind"].as_str().unwrap();
    let (group, version, resource) = match kind {
        "Pod" => ("", "v1", "pods"),
        "Deployment" => ("apps", "v1", "deployments"),
        _ => ("", "v1", "configmaps"),
    };
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": resource});
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": UID, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": obj["metadata"]["name"].as_str().unwrap_or(""), "namespace": "ci",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "uid": "00000000-0000-0000-0000-000000000001",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": obj, "oldObject": null, "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        }
    }))
    .unwrap()
}

/// Sends `obj` to `/mutate`, checks the response as kube-apiserver does and returns it with
/// the object after its patch.
fn mutate(w: &Webhook, obj: &Value) -> (Value, Value) {
    let (status, body) = w.post("/mutate", review(obj));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let resp: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(resp["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(resp["kind"], "AdmissionReview");
    let r = &resp["response"];
    assert_eq!(r["uid"], UID);
    assert!(r["allowed"].is_boolean());
    let mut patched = obj.clone();
    if let Some(p) = r.get("patch") {
        assert_eq!(r["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(p.as_str().expect("patch is a base64 string"))
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut patched, &patch).unwrap();
    } else {
        assert!(r.get("patchType").is_none());
    }
    (r.clone(), patched)
}

fn pod(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ci"}, "spec": spec})
}

fn originals(obj: &Value) -> Value {
    serde_json::from_str(
        obj["metadata"]["annotations"]["airlock.dev/original-images"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn webhook_rewrites_init_regular_and_ephemeral_containers_over_tls() {
    let api = FakeApi::start(&[("ci", "airlock-pull")]);
    let w = Webhook::start(&api, &[]);
    let p = pod(
        "debugged",
        json!({
            "initContainers": [{"name": "a", "image": "busybox:1.36"}, {"name": "b", "image": "alpine:3.20"}],
            "containers": [{"name": "app", "image": "ghcr.io/org/app:2.1"}],
            "ephemeralContainers": [{"name": "debugger-k2x", "image": "nicolaka/netshoot:v0.13"}],
        }),
    );
    let (r, obj) = mutate(&w, &p);
    assert_eq!(r["allowed"], true);
    let s = &obj["spec"];
    assert_eq!(
        s["initContainers"][0]["image"],
        format!("{TARGET}/library/busybox:1.36")
    );
    assert_eq!(
        s["initContainers"][1]["image"],
        format!("{TARGET}/library/alpine:3.20")
    );
    assert_eq!(s["containers"][0]["image"], format!("{TARGET}/org/app:2.1"));
    assert_eq!(
        s["ephemeralContainers"][0]["image"],
        format!("{TARGET}/nicolaka/netshoot:v0.13")
    );
    assert_eq!(s["imagePullSecrets"], json!([{"name": "airlock-pull"}]));
    assert_eq!(originals(&obj)["initContainers/b"], "alpine:3.20");
    assert_eq!(
        api.requests.lock().unwrap().as_slice(),
        ["/api/v1/namespaces/ci/secrets/airlock-pull"]
    );
}

#[test]
fn webhook_rewrites_jenkins_agent_pod_with_injected_jnlp_and_agent_injection() {
    let api = FakeApi::start(&[("ci", "airlock-pull")]);
    let w = Webhook::start(&api, &[]);
    // What the Kubernetes plugin creates: the user's `maven` container, the `jnlp` container it
    // injects, and with agentInjection an init container copying the agent into a shared volume.
    let agent = pod(
        "maven-build-7-x1",
        json!({
            "initContainers": [{"name": "set-up-jenkins-agent", "image": "jenkins/inbound-agent:3283.v92c105e0f819-4",
                                "command": ["/bin/sh", "-c", "cp $(command -v jenkins-agent) /jenkins-agent/jenkins-agent"],
                                "volumeMounts": [{"name": "jenkins-agent", "mountPath": "/jenkins-agent"}]}],
            "containers": [
                {"name": "maven", "image": "maven:3.9.9-eclipse-temurin-17", "command": ["cat"], "tty": true},
                {"name": "jnlp", "image": "jenkins/inbound-agent:3283.v92c105e0f819-4",
                 "env": [{"name": "JENKINS_URL", "value": "http://jenkins.ci.svc:8080/"}]},
            ],
            "volumes": [{"name": "jenkins-agent", "emptyDir": {}}],
            "restartPolicy": "Never",
        }),
    );
    let (_, obj) = mutate(&w, &agent);
    let s = &obj["spec"];
    let agent_image = format!("{TARGET}/jenkins/inbound-agent:3283.v92c105e0f819-4");
    assert_eq!(s["initContainers"][0]["image"], agent_image);
    assert_eq!(
        s["containers"][0]["image"],
        format!("{TARGET}/library/maven:3.9.9-eclipse-temurin-17")
    );
    assert_eq!(s["containers"][1]["image"], agent_image);
    // Nothing but images, annotations and the pull secret changes.
    assert_eq!(
        s["containers"][1]["env"],
        agent["spec"]["containers"][1]["env"]
    );
    assert_eq!(s["volumes"], agent["spec"]["volumes"]);
    assert_eq!(
        originals(&obj)["containers/jnlp"],
        "jenkins/inbound-agent:3283.v92c105e0f819-4"
    );
}

#[test]
fn webhook_leaves_a_rewritten_pod_alone_and_keeps_digests() {
    let api = FakeApi::start(&[("ci", "airlock-pull")]);
    let w = Webhook::start(&api, &[]);
    let done = pod(
        "done",
        json!({
            "imagePullSecrets": [{"name": "airlock-pull"}],
            "containers": [{"name": "a", "image": format!("{TARGET}/library/nginx:1.27")}],
        }),
    );
    let (r, obj) = mutate(&w, &done);
    assert!(r.get("patch").is_none(), "{r}");
    assert_eq!(obj, done);

    let pinned = pod(
        "pinned",
        json!({"containers": [
            {"name": "a", "image": format!("quay.io/prometheus/node-exporter@{DIGEST}")},
            {"name": "b", "image": format!("quay.io/prometheus/node-exporter:v1.8.2@{DIGEST}")},
        ]}),
    );
    let (_, obj) = mutate(&w, &pinned);
    assert_eq!(
        obj["spec"]["containers"][0]["image"],
        format!("{TARGET}/prometheus/node-exporter@{DIGEST}")
    );
    assert_eq!(
        obj["spec"]["containers"][1]["image"],
        format!("{TARGET}/prometheus/node-exporter:v1.8.2@{DIGEST}")
    );
    // Reinvocation on the result: no patch.
    let (r, _) = mutate(&w, &obj);
    assert!(r.get("patch").is_none(), "{r}");
}

#[test]
fn webhook_appends_the_pull_secret_to_the_users_own_and_warns_where_it_is_missing() {
    let api = FakeApi::start(&[("ci", "airlock-pull")]);
    let w = Webhook::start(&api, &[]);
    let p = pod(
        "own",
        json!({"imagePullSecrets": [{"name": "team-registry"}, {"name": "other"}],
                              "containers": [{"name": "a", "image": "nginx:1.27"}]}),
    );
    let (_, obj) = mutate(&w, &p);
    assert_eq!(
        obj["spec"]["imagePullSecrets"],
        json!([{"name": "team-registry"}, {"name": "other"}, {"name": "airlock-pull"}])
    );

    let api = FakeApi::start(&[]);
    let w = Webhook::start(&api, &[]);
    let (r, obj) = mutate(&w, &p);
    assert_eq!(
        obj["spec"]["imagePullSecrets"],
        p["spec"]["imagePullSecrets"]
    );
    assert_eq!(
        obj["spec"]["containers"][0]["image"],
        format!("{TARGET}/library/nginx:1.27")
    );
    let warning = r["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("Secret airlock-pull is not in namespace ci"),
        "{warning}"
    );
}

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ci"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
}

#[test]
fn webhook_rewrites_deployment_templates_only_with_mutate_templates() {
    let api = FakeApi::start(&[("ci", "airlock-pull")]);
    let w = Webhook::start(&api, &[]);
    let (r, obj) = mutate(&w, &deployment());
    assert!(r.get("patch").is_none(), "{r}");
    assert_eq!(obj, deployment());

    let w = Webhook::start(&api, &["--mutate-templates"]);
    let (_, obj) = mutate(&w, &deployment());
    let t = &obj["spec"]["template"];
    assert_eq!(
        t["spec"]["containers"][0]["image"],
        format!("{TARGET}/library/nginx:1.27")
    );
    assert_eq!(
        t["spec"]["imagePullSecrets"],
        json!([{"name": "airlock-pull"}])
    );
    assert!(t["metadata"]["annotations"]["airlock.dev/original-images"].is_string());
    assert_eq!(obj["spec"]["selector"], deployment()["spec"]["selector"]);
}

#[test]
fn webhook_answers_malformed_unknown_and_huge_requests_without_crashing() {
    let api = FakeApi::start(&[]);
    let w = Webhook::start(&api, &[]);
    let (status, body) = w.post(
        "/mutate",
        b"{\"apiVersion\": \"admission.k8s.io/v1\", ".to_vec(),
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("not an AdmissionReview"));

    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}});
    let (r, obj) = mutate(&w, &cm);
    assert_eq!(r["allowed"], true);
    assert_eq!(obj, cm);
    assert!(r["warnings"][0].as_str().unwrap().contains("ConfigMap"));

    // Over kube-apiserver's 3 MiB: refused before it is parsed.
    let mut huge = pod(
        "huge",
        json!({"containers": [{"name": "a", "image": "nginx"}]}),
    );
    huge["metadata"]["annotations"] = json!({"blob": "x".repeat(4 << 20)});
    let (status, _) = w.post("/mutate", review(&huge));
    assert_eq!(status, 413);

    // Still serving, and every refusal counted.
    let (r, _) = mutate(
        &w,
        &pod(
            "after",
            json!({"containers": [{"name": "a", "image": "nginx"}]}),
        ),
    );
    assert_eq!(r["allowed"], true);
    let metrics = w.get("/metrics");
    assert!(
        metrics
            .contains("airlock_admission_reviews_total{endpoint=\"mutate\",outcome=\"error\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("airlock_admission_reviews_total{endpoint=\"mutate\",outcome=\"skipped\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "airlock_http_requests_total{method=\"POST\",route=\"mutate\",status=\"413\"} 1"
        ),
        "{metrics}"
    );
    assert_eq!(w.get("/healthz"), "ok");
    assert_eq!(w.get("/readyz"), "ok");
}

#[test]
fn webhook_validate_denies_public_images_with_enforce_deny() {
    let api = FakeApi::start(&[]);
    let w = Webhook::start(&api, &["--enforce", "deny", "--deny-latest"]);
    let p = pod(
        "public",
        json!({"imagePullSecrets": [{"name": "airlock-pull"}],
                                 "containers": [{"name": "a", "image": "docker.io/library/nginx:1.27"}]}),
    );
    let (status, body) = w.post("/validate", review(&p));
    assert_eq!(status, 200);
    let r: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(r["response"]["uid"], UID);
    assert_eq!(r["response"]["allowed"], false);
    assert_eq!(r["response"]["status"]["code"], 403);
    let ok = pod(
        "private",
        json!({"imagePullSecrets": [{"name": "airlock-pull"}],
                                   "containers": [{"name": "a", "image": format!("{TARGET}/library/nginx:1.27")}]}),
    );
    let (_, body) = w.post("/validate", review(&ok));
    let r: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(r["response"]["allowed"], true);
    assert!(r["response"].get("warnings").is_none(), "{r}");
}

#[test]
fn webhook_dry_run_returns_no_patch_and_counts() {
    let api = FakeApi::start(&[("ci", "airlock-pull")]);
    let w = Webhook::start(&api, &["--dry-run"]);
    let p = pod(
        "p",
        json!({"containers": [{"name": "a", "image": "nginx"}]}),
    );
    let (r, obj) = mutate(&w, &p);
    assert!(r.get("patch").is_none());
    assert_eq!(obj, p);
    let metrics = w.get("/metrics");
    assert!(metrics.contains("outcome=\"would_patch\"} 1"), "{metrics}");
}

#[test]
fn webhook_without_tls_is_refused_with_a_reason() {
    let out = crate::airlock()
        .args(["webhook", "--registry", TARGET, "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTPS only"));
}
