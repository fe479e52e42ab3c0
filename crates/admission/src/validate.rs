//! `/validate`: the shared Policy's verdict on a Pod, as `airlock check` gives it on a file —
//! `Policy::judge` on every image and `Policy::judge_pod` on the pod — turned into a denial or
//! admission warnings.

use discover::{ContainerRole, PodContainer};
use imgref::Reference;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde_json::Value;

use crate::{
    CONTAINER_FIELDS, Config, Enforce, Outcome, at, bad_request, describe, object_tree, opted_out,
};

pub(crate) fn review(
    config: &Config,
    req: &AdmissionRequest<DynamicObject>,
) -> (AdmissionResponse, Outcome) {
    let allow = AdmissionResponse::from(req);
    // Templates are not judged: their pods are, after `/mutate` has rewritten them.
    if (req.kind.group.as_str(), req.kind.kind.as_str()) != ("", "Pod") {
        return (allow, Outcome::Skipped("kind"));
    }
    let ephemeral_only = match (&req.operation, req.sub_resource.as_deref().unwrap_or("")) {
        (Operation::Create, "") => false,
        (Operation::Update, "ephemeralcontainers") => true,
        _ => return (allow, Outcome::Skipped("operation")),
    };
    let Some(object) = &req.object else {
        return (bad_request(req, "request has no object"), Outcome::Invalid);
    };
    let tree = match object_tree(object) {
        Ok(t) => t,
        Err(e) => return (bad_request(req, &e), Outcome::Invalid),
    };
    if opted_out(tree.get("metadata")) {
        return (allow, Outcome::Skipped("opted out"));
    }
    let Some(spec) = tree.get("spec").filter(|s| s.is_object()) else {
        return (bad_request(req, "Pod has no spec"), Outcome::Invalid);
    };

    let view = match pod_view(req, spec, ephemeral_only) {
        Ok(v) => v,
        Err(e) => return (bad_request(req, &e), Outcome::Invalid),
    };
    // Hard: what `Policy::judge` says about an image. Soft: the pull secret, which the mutation
    // adds only where the Secret exists and otherwise admits with a warning; denying here would
    // turn that warning into an outage. The ServiceAccount admission plugin has already copied
    // the account's pull secrets onto the pod, so the pod's own list is the whole truth.
    let mut hard = Vec::new();
    let mut soft = Vec::new();
    for c in &view.containers {
        let Ok(r) = Reference::parse(&c.image) else {
            soft.push(format!("image {:?} cannot be parsed", c.image));
            continue;
        };
        for j in config.policy.judge(&r) {
            hard.push(format!(
                "{}: {} (fix: {})",
                c.name.as_deref().unwrap_or("?"),
                j.message,
                j.fix
            ));
        }
    }
    for j in config.policy.judge_pod(&view, &[]) {
        let line = format!("{} (fix: {})", j.judgement.message, j.judgement.fix);
        match j.judgement.rule {
            policy::RuleId::MissingPullSecret => soft.push(line),
            _ => hard.push(line),
        }
    }
    if hard.is_empty() && soft.is_empty() {
        return (allow, Outcome::Unchanged);
    }
    let what = describe(req);
    let deny = config.enforce == Enforce::Deny && !hard.is_empty();
    if deny && !config.dry_run {
        tracing::info!(object = %what, uid = %req.uid, violations = ?hard, "denied");
        let mut resp = allow.deny(format!("airlock policy: {what}: {}", hard.join("; ")));
        resp.result.code = 403;
        resp.result.reason = "Forbidden".into();
        if !soft.is_empty() {
            resp.warnings = Some(soft);
        }
        return (resp, Outcome::Denied);
    }
    if config.dry_run {
        tracing::info!(object = %what, uid = %req.uid, violations = ?hard, warnings = ?soft, would_deny = deny, "dry run: policy");
        return (allow, Outcome::Warned);
    }
    tracing::info!(object = %what, uid = %req.uid, violations = ?hard, warnings = ?soft, "admitted with warnings");
    let mut resp = allow;
    resp.warnings = Some(
        hard.into_iter()
            .chain(soft)
            .map(|w| format!("airlock policy: {w}"))
            .collect(),
    );
    (resp, Outcome::Warned)
}

/// The pod as the policy sees it. Through the ephemeral-container subresource only the
/// ephemeral containers are judged: the others were judged when the pod was created.
fn pod_view(
    req: &AdmissionRequest<DynamicObject>,
    spec: &Value,
    ephemeral_only: bool,
) -> Result<policy::PodView, String> {
    let mut containers = Vec::new();
    for field in CONTAINER_FIELDS {
        if ephemeral_only && field != "ephemeralContainers" {
            continue;
        }
        let list = match spec.get(field) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) => a,
            Some(_) => return Err(format!("spec.{field} is not a list")),
        };
        let role = match field {
            "initContainers" => ContainerRole::Init,
            "ephemeralContainers" => ContainerRole::Ephemeral,
            _ => ContainerRole::Regular,
        };
        for c in list {
            let Some(image) = c.get("image").and_then(Value::as_str) else {
                continue;
            };
            containers.push(PodContainer {
                name: c.get("name").and_then(Value::as_str).map(str::to_string),
                role,
                image: image.to_string(),
            });
        }
    }
    let names = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.get("name").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(policy::PodView {
        owner: describe(req),
        namespace: req.namespace.clone(),
        service_account: at(spec, &["serviceAccountName"])
            .and_then(Value::as_str)
            .map(str::to_string),
        pull_secrets: names(spec.get("imagePullSecrets")),
        containers,
    })
}
