//! The manifests in `deploy/`: every one validates with `kubernetes-validate --strict` (PyPI,
//! schemas bundled, offline) against each Kubernetes version the pinned release bundles, and
//! the registry's Deployment, Service and claim agree with each other and with the hardening
//! the README promises. `kubectl apply --dry-run` needs an API server, so it cannot stand in.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::{repo_root, tempdir};

/// The Kubernetes minor versions whose schemas kubernetes-validate 1.37.0 (the version
/// scripts/test pins) bundles: the manifests must hold on the oldest as on the newest.
const KUBERNETES_MINORS: std::ops::RangeInclusive<u32> = 25..=37;

/// The validator: `AIRLOCK_KUBERNETES_VALIDATE` (scripts/test sets it), else the venv that
/// scripts/test creates under target/.
pub(crate) fn kubernetes_validate() -> PathBuf {
    let path = std::env::var_os("AIRLOCK_KUBERNETES_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/tools/venv/bin/kubernetes-validate"));
    assert!(
        path.is_file(),
        "kubernetes-validate is not installed at {}: run scripts/test, or \
         python3 -m venv target/tools/venv && \
         target/tools/venv/bin/pip install kubernetes-validate==1.37.0",
        path.display()
    );
    path
}

/// Every YAML file under `deploy/`.
fn manifests() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root().join("deploy"), &mut out);
    out.sort();
    out
}

/// Runs the validator strictly on `files` against `version`. A pass is exit 0, no warning or
/// error line, and a "passed" line for every file: kubernetes-validate exits 0 with only a
/// warning for a kind it has no schema for (a typo in `kind:` or `apiVersion:`), which must
/// not count as validated.
pub(crate) fn validate(files: &[PathBuf], version: &str) -> Result<(), String> {
    let out = Command::new(kubernetes_validate())
        .arg("--strict")
        .args(["-k", version])
        .args(files)
        .output()
        .expect("run kubernetes-validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = format!(
        "kubernetes-validate {version}: {}\n{stdout}{stderr}",
        out.status
    );
    if !out.status.success() {
        return Err(report);
    }
    if stdout
        .lines()
        .chain(stderr.lines())
        .any(|l| l.starts_with("WARN") || l.starts_with("ERROR"))
    {
        return Err(report);
    }
    for file in files {
        let passed = format!("INFO {} passed for resource", file.display());
        if !stdout.lines().any(|l| l.starts_with(&passed)) {
            return Err(format!("{} was not validated\n{report}", file.display()));
        }
    }
    Ok(())
}

#[test]
fn deploy_manifests_validate_strict_on_every_bundled_kubernetes() {
    let files = manifests();
    assert!(
        files.len() >= 5,
        "deploy/ lost manifests: {files:?} (namespace, claim, deployment, service, tls)"
    );
    for minor in KUBERNETES_MINORS {
        if let Err(report) = validate(&files, &format!("1.{minor}.0")) {
            panic!("{report}");
        }
    }
}

#[test]
fn unknown_field_or_kind_is_not_a_pass() {
    // The controls that keep the test above honest: a misspelt field (which kubectl would
    // silently drop) and an unknown kind (which the tool only warns about) both fail.
    let dir = tempdir();
    let deployment =
        std::fs::read_to_string(repo_root().join("deploy/registry/deployment.yaml")).unwrap();
    assert!(deployment.contains("readOnlyRootFilesystem"));
    let typo = dir.path().join("typo.yaml");
    std::fs::write(
        &typo,
        deployment.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
    )
    .unwrap();
    let err = validate(std::slice::from_ref(&typo), "1.37.0").unwrap_err();
    assert!(err.contains("readOnlyRootFileSystem"), "{err}");

    let kind = dir.path().join("kind.yaml");
    std::fs::write(
        &kind,
        "apiVersion: apps/v1\nkind: Deploymnet\nmetadata:\n  name: x\n",
    )
    .unwrap();
    let err = validate(std::slice::from_ref(&kind), "1.37.0").unwrap_err();
    assert!(err.contains("Deploymnet"), "{err}");

    let good = dir.path().join("good.yaml");
    std::fs::write(&good, deployment).unwrap();
    validate(&[good], "1.37.0").unwrap();
}

fn load(relative: &str) -> Value {
    let path = repo_root().join(relative);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    &containers[0]
}

#[test]
fn registry_deployment_is_one_restricted_writer_with_probes_on_its_port() {
    let deployment = load("deploy/registry/deployment.yaml");
    let service = load("deploy/registry/service.yaml");
    let claim = load("deploy/registry/pvc.yaml");
    let namespace = load("deploy/registry/namespace.yaml");
    let spec = &deployment["spec"];
    let pod = &spec["template"]["spec"];
    let c = container(&deployment);

    // One replica, never two at once on the ReadWriteOnce volume.
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["strategy"]["type"], "Recreate");
    assert_eq!(claim["spec"]["accessModes"], json!(["ReadWriteOnce"]));

    // The restricted Pod Security Standard, which the namespace enforces.
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_ne!(pod["securityContext"]["runAsUser"], 0);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");

    // The RSS target of the issue is the request; a limit exists.
    assert_eq!(c["resources"]["requests"]["memory"], "64Mi");
    assert!(c["resources"]["limits"]["memory"].is_string());

    // serve's flags, with the store on the claim's mount.
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "serve");
    let flag = |name: &str| {
        let at = args.iter().position(|a| *a == name).unwrap_or_else(|| {
            panic!("{name} missing from {args:?}");
        });
        args[at + 1]
    };
    let store_mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "store")
        .expect("a store mount");
    assert_eq!(flag("--store"), store_mount["mountPath"]);
    let store_volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "store")
        .expect("a store volume");
    assert_eq!(
        store_volume["persistentVolumeClaim"]["claimName"],
        claim["metadata"]["name"]
    );
    let port: u16 = flag("--listen")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    // Probes, container port and Service all name the port the server listens on.
    let ports = c["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["containerPort"], port);
    let port_name = ports[0]["name"].as_str().unwrap();
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], "/v2/", "{probe}");
        assert_eq!(get["port"], port_name, "{probe}");
        assert_eq!(get["scheme"], "HTTP", "{probe}");
    }
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port_name);
    assert_eq!(service["spec"]["selector"], spec["selector"]["matchLabels"]);
    let labels = spec["template"]["metadata"]["labels"].as_object().unwrap();
    for (k, v) in spec["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(labels.get(k), Some(v), "the pod carries selector label {k}");
    }
    for doc in [&deployment, &service, &claim] {
        assert_eq!(doc["metadata"]["namespace"], namespace["metadata"]["name"]);
    }
}

#[test]
fn tls_deployment_is_the_plain_one_plus_tls_only() {
    // The TLS variant is a second full Deployment (validated on its own, applied over the
    // plain one): rebuild it from the plain one and the TLS changes alone, so the two can never
    // drift apart in anything else (resources, security context, image).
    let plain = load("deploy/registry/deployment.yaml");
    let tls = load("deploy/registry/tls/deployment.yaml");
    let mut expected = plain.clone();
    let pod = &mut expected["spec"]["template"]["spec"];
    let secret = tls["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "tls")
        .expect("a tls volume")
        .clone();
    assert!(secret["secret"]["secretName"].is_string());
    pod["volumes"].as_array_mut().unwrap().push(secret);
    let c = &mut pod["containers"][0];
    let dir = "/etc/airlock/tls";
    c["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "tls", "mountPath": dir, "readOnly": true}));
    let args = c["args"].as_array_mut().unwrap();
    for a in [
        "--tls-cert",
        &format!("{dir}/tls.crt"),
        "--tls-key",
        &format!("{dir}/tls.key"),
    ] {
        args.push(json!(a));
    }
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        c[probe]["httpGet"]["scheme"] = json!("HTTPS");
    }
    assert_eq!(tls, expected);
}
