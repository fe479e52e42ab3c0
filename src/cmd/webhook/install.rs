//! `airlock webhook install` / `uninstall`: every object that runs the webhook in a cluster,
//! printed as YAML or applied with kube (server-side apply, field manager `airlock`). The
//! webhook configurations always exclude kube-system and the webhook's own namespace, so the
//! webhook can never block its own recovery, and say their failurePolicy out loud (zarf#2464).

use anyhow::Context;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::cli::{EnforceMode, FailurePolicy, WebhookInstallArgs};
use crate::exit::Exit;

/// The name of every object install creates (cluster-scoped ones included).
pub const NAME: &str = "airlock-webhook";
/// The Secret holding the serving certificate (`kubernetes.io/tls`, plus `ca.crt`).
pub const TLS_SECRET: &str = "airlock-webhook-tls";
/// The container port; the Service exposes it as 443.
const PORT: u16 = 8443;

/// The CA and serving certificate written into the TLS Secret and the caBundle.
pub struct Certificate {
    pub ca_pem: String,
    /// Leaf then CA.
    pub chain_pem: String,
    pub key_pem: String,
}

/// A CA and a certificate for the Service's DNS names, from `serving::tls` (the generator
/// `airlock serve --tls-dir` uses), through a temporary directory removed afterwards.
pub fn certificate(namespace: &str) -> anyhow::Result<Certificate> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let sans = [
        NAME.to_string(),
        format!("{NAME}.{namespace}"),
        format!("{NAME}.{namespace}.svc"),
        format!("{NAME}.{namespace}.svc.cluster.local"),
    ];
    let s = serving::tls::self_signed(dir.path(), "", &sans)?;
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    Ok(Certificate {
        ca_pem: read(&s.ca_cert)?,
        chain_pem: read(&s.server_cert)?,
        key_pem: read(&s.server_key)?,
    })
}

/// The server's command line in the Deployment: the mapping and policy in force here, as flags.
fn server_args(a: &WebhookInstallArgs) -> anyhow::Result<Vec<String>> {
    let settings = a.config.load()?;
    // Fails here, not in the cluster, when the mapping cannot be built.
    let mapping = settings.mapping()?;
    let c = &settings.config;
    let mut args: Vec<String> = [
        "webhook",
        "--listen",
        "0.0.0.0:8443",
        "--tls-cert",
        "/tls/tls.crt",
        "--tls-key",
        "/tls/tls.key",
        "--registry",
        mapping.target(),
    ]
    .map(String::from)
    .to_vec();
    let mode = match (c.mode_flag, &c.mapping) {
        (Some(rewrite::Mode::KeepHost), _) => Some("keep-host".to_string()),
        (Some(rewrite::Mode::ReplaceHost), _) => Some("replace-host".to_string()),
        (None, m) => m.clone(),
    };
    if let Some(m) = mode {
        args.extend(["--mapping".into(), m]);
    }
    for r in mapping.rules() {
        args.extend(["--rule".into(), format!("{}={}", r.from, r.to)]);
    }
    if let Some(s) = &c.pull_secret {
        args.extend(["--pull-secret".into(), s.clone()]);
    }
    for r in &c.policy.allow_registries {
        args.extend(["--allow-registry".into(), r.clone()]);
    }
    if c.policy.deny_latest == Some(true) {
        args.push("--deny-latest".into());
    }
    if c.policy.require_digest == Some(true) {
        args.push("--require-digest".into());
    }
    if a.behaviour.mutate_templates {
        args.push("--mutate-templates".into());
    }
    args.extend([
        "--enforce".into(),
        match a.behaviour.enforce {
            EnforceMode::Deny => "deny",
            EnforceMode::Warn => "warn",
        }
        .into(),
    ]);
    if a.behaviour.dry_run {
        args.push("--dry-run".into());
    }
    Ok(args)
}

/// Every object, in the order they are applied (the webhook configurations last, once the
/// server can answer; uninstall deletes in reverse). Without `cert`, the TLS Secret and the
/// caBundle are left to the cluster's own PKI (the files in deploy/webhook/).
pub fn manifests(a: &WebhookInstallArgs, cert: Option<&Certificate>) -> anyhow::Result<Vec<Value>> {
    let ns = a.namespace.as_str();
    let args = server_args(a)?;
    let pull_secret = a.config.load()?.config.pull_secret;
    let labels = json!({"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "airlock"});
    let meta = |name: &str| json!({"name": name, "namespace": ns, "labels": labels});
    let mut out = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            admission::IGNORE_LABEL: "true"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(NAME),
               "automountServiceAccountToken": pull_secret.is_some()}),
    ];
    // Only with a pull secret does the webhook talk to the API, and then only to read the
    // metadata of that one Secret name, in any namespace.
    if let Some(secret) = &pull_secret {
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": NAME, "labels": labels},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret], "verbs": ["get"]}]}));
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": NAME, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}]}));
    }
    if let Some(c) = cert {
        out.push(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta(TLS_SECRET),
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": c.chain_pem, "tls.key": c.key_pem, "ca.crt": c.ca_pem}}),
        );
    }
    let probe = |path: &str, period: u32| {
        json!({"httpGet": {"path": path, "port": PORT, "scheme": "HTTPS"}, "periodSeconds": period,
               "timeoutSeconds": 2, "failureThreshold": 3})
    };
    let selector = json!({"app.kubernetes.io/name": NAME});
    out.push(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(NAME), "spec": {
        "replicas": 2,
        "selector": {"matchLabels": selector},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {"metadata": {"labels": labels}, "spec": {
            "serviceAccountName": NAME,
            "automountServiceAccountToken": pull_secret.is_some(),
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": selector}}}]}},
            "containers": [{
                "name": "webhook",
                "image": a.image,
                "imagePullPolicy": "IfNotPresent",
                "args": args,
                "ports": [{"name": "https", "containerPort": PORT}],
                "readinessProbe": probe("/readyz", 5),
                "livenessProbe": probe("/healthz", 10),
                "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": true}],
            }],
            "volumes": [{"name": "tls", "secret": {"secretName": TLS_SECRET}}],
        }},
    }}));
    out.push(
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(NAME),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": selector}}}),
    );
    out.push(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(NAME), "spec": {
        "selector": selector,
        "ports": [{"name": "https", "port": 443, "targetPort": "https"}]}}),
    );
    out.push(webhook_configuration(a, cert, true));
    out.push(webhook_configuration(a, cert, false));
    Ok(out)
}

/// The Mutating (or Validating) WebhookConfiguration.
fn webhook_configuration(
    a: &WebhookInstallArgs,
    cert: Option<&Certificate>,
    mutating: bool,
) -> Value {
    let ns = a.namespace.as_str();
    let path = if mutating { "/mutate" } else { "/validate" };
    let mut client = json!({"service": {"namespace": ns, "name": NAME, "path": path, "port": 443}});
    if let Some(c) = cert {
        client["caBundle"] =
            json!(base64::engine::general_purpose::STANDARD.encode(c.ca_pem.as_bytes()));
    }
    let rule = |ops: &[&str], group: &str, resources: &[&str]| {
        json!({"operations": ops, "apiGroups": [group], "apiVersions": ["v1"],
               "resources": resources, "scope": "Namespaced"})
    };
    let mut rules = vec![
        rule(&["CREATE"], "", &["pods"]),
        rule(&["UPDATE"], "", &["pods/ephemeralcontainers"]),
    ];
    if mutating && a.behaviour.mutate_templates {
        rules.push(rule(
            &["CREATE", "UPDATE"],
            "apps",
            &["deployments", "statefulsets", "daemonsets"],
        ));
        rules.push(rule(&["CREATE", "UPDATE"], "batch", &["jobs", "cronjobs"]));
    }
    let ignore = json!({"key": admission::IGNORE_LABEL, "operator": "NotIn", "values": ["true"]});
    let mut hook = json!({
        "name": if mutating { "mutate.airlock.dev" } else { "validate.airlock.dev" },
        "admissionReviewVersions": ["v1"],
        "clientConfig": client,
        "rules": rules,
        "failurePolicy": match a.failure_policy {
            FailurePolicy::Ignore => "Ignore",
            FailurePolicy::Fail => "Fail",
        },
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "timeoutSeconds": a.timeout_seconds,
        "namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", ns]},
            ignore,
        ]},
        "objectSelector": {"matchExpressions": [ignore]},
    });
    if mutating {
        hook["reinvocationPolicy"] = json!("IfNeeded");
    }
    let kind = if mutating {
        "MutatingWebhookConfiguration"
    } else {
        "ValidatingWebhookConfiguration"
    };
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
           "metadata": {"name": NAME, "labels": {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "airlock"}},
           "webhooks": [hook]})
}

/// Multi-document YAML.
pub fn to_yaml(objects: &[Value]) -> anyhow::Result<String> {
    serde_saphyr::to_string_multiple(objects).context("cannot write YAML")
}

pub fn install(a: &WebhookInstallArgs) -> anyhow::Result<Exit> {
    let cert = match a.no_certificate {
        true => None,
        false => Some(certificate(&a.namespace)?),
    };
    let objects = manifests(a, cert.as_ref())?;
    if a.apply {
        crate::registry::runtime()?.block_on(apply::apply(&objects))?;
        eprintln!(
            "airlock webhook: applied {} (failurePolicy {:?})",
            crate::output::count(objects.len() as u64, "object", "objects"),
            a.failure_policy
        );
    } else {
        print!("{}", to_yaml(&objects)?);
    }
    Ok(Exit::Ok)
}

pub fn uninstall(a: &WebhookInstallArgs) -> anyhow::Result<Exit> {
    // The same objects as install, without generating a certificate for them.
    let mut objects = manifests(a, None)?;
    objects.insert(
        2,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": TLS_SECRET, "namespace": a.namespace}}),
    );
    objects.reverse();
    if a.apply {
        crate::registry::runtime()?.block_on(apply::delete(&objects))?;
        eprintln!(
            "airlock webhook: deleted {}",
            crate::output::count(objects.len() as u64, "object", "objects")
        );
    } else {
        print!("{}", to_yaml(&objects)?);
    }
    Ok(Exit::Ok)
}

mod apply;
