//! `/mutate`: every image of a pod spec renamed with the shared Mapping, the originals recorded in
//! one annotation, the pull secret appended when it exists. A pod whose images are already private
//! gets no patch, which is what makes `reinvocationPolicy: IfNeeded` safe.

use std::collections::BTreeMap;

use imgref::Reference;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, ReplaceOperation};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde_json::{Value, json};

use crate::{
    CONTAINER_FIELDS, Config, ORIGINAL_IMAGES, Outcome, SecretLookup, at, bad_request, describe,
    object_tree, opted_out, shape,
};

/// The pod subresource through which `kubectl debug` adds ephemeral containers.
const EPHEMERAL: &str = "ephemeralcontainers";

pub(crate) async fn review(
    config: &Config,
    secrets: &impl SecretLookup,
    req: &AdmissionRequest<DynamicObject>,
) -> (AdmissionResponse, Outcome) {
    let allow = AdmissionResponse::from(req);
    let Some(shape) = shape(&req.kind.group, &req.kind.kind) else {
        let mut resp = allow;
        resp.warnings = Some(vec![format!(
            "airlock webhook does not handle {}; admitted unchanged (check the webhook's rules)",
            req.kind.kind
        )]);
        return (resp, Outcome::Skipped("kind"));
    };
    let subresource = req.sub_resource.as_deref().unwrap_or("");
    let ephemeral_only = match (&req.operation, subresource) {
        (Operation::Create, "") => false,
        // A template is mutated on every change, or `kubectl apply` of a new image undoes it.
        (Operation::Update, "") if shape.template => false,
        (Operation::Update, EPHEMERAL) if !shape.template => true,
        _ => return (allow, Outcome::Skipped("operation")),
    };
    if shape.template && !config.mutate_templates {
        return (allow, Outcome::Skipped("template"));
    }
    let Some(object) = &req.object else {
        return (bad_request(req, "request has no object"), Outcome::Invalid);
    };
    let tree = match object_tree(object) {
        Ok(t) => t,
        Err(e) => return (bad_request(req, &e), Outcome::Invalid),
    };
    if opted_out(at(&tree, shape.meta)) {
        return (allow, Outcome::Skipped("opted out"));
    }
    let Some(spec) = at(&tree, shape.spec).filter(|s| s.is_object()) else {
        return (
            bad_request(req, &format!("{} has no pod spec", describe(req))),
            Outcome::Invalid,
        );
    };

    // Ephemeral containers already in the pod cannot be changed through the subresource; only
    // the ones this request adds are rewritten.
    let existing: Vec<String> = if ephemeral_only {
        let old = req.old_object.as_ref().and_then(|o| object_tree(o).ok());
        old.as_ref()
            .and_then(|o| at(o, &["spec", "ephemeralContainers"]))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(container_name).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let fields: &[&str] = if ephemeral_only {
        &["ephemeralContainers"]
    } else {
        &CONTAINER_FIELDS
    };
    let plan = match plan_images(config, spec, shape.spec, fields, &existing) {
        Ok(p) => p,
        Err(e) => return (bad_request(req, &e), Outcome::Invalid),
    };
    let mut ops = plan.ops;
    let mut warnings = plan.warnings;

    // The annotation and the pull secret cannot be changed through the subresource.
    if !ephemeral_only && !plan.originals.is_empty() {
        ops.push(annotation_op(
            at(&tree, shape.meta),
            shape.meta,
            &plan.originals,
        ));
    }
    let mut pull_secret = false;
    if let (Some(secret), false, true) = (&config.pull_secret, ephemeral_only, plan.private) {
        let have = spec
            .get("imagePullSecrets")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .any(|s| s.get("name").and_then(Value::as_str) == Some(secret))
            });
        let namespace = req
            .namespace
            .as_deref()
            .or(object.metadata.namespace.as_deref())
            .unwrap_or("default");
        if !have {
            match secrets.secret_exists(namespace, secret).await {
                Ok(true) => {
                    ops.push(pull_secret_op(spec, shape.spec, secret));
                    pull_secret = true;
                }
                Ok(false) => warnings.push(format!(
                    "airlock: Secret {secret} is not in namespace {namespace}; images are pulled \
                     from the private registry without it (run `airlock secrets -n {namespace}`)"
                )),
                Err(e) => warnings.push(format!(
                    "airlock: cannot tell whether Secret {secret} is in namespace {namespace} ({e}); \
                     not added"
                )),
            }
        }
    }

    let what = describe(req);
    let images = plan.originals.len();
    let mut resp = allow;
    if !warnings.is_empty() {
        resp.warnings = Some(warnings);
    }
    if ops.is_empty() {
        return (resp, Outcome::Unchanged);
    }
    if config.dry_run {
        tracing::info!(object = %what, uid = %req.uid, images, pull_secret, patch = %serde_json::to_string(&ops).unwrap_or_default(), "dry run: would patch");
        return (
            resp,
            Outcome::WouldPatch {
                images,
                pull_secret,
            },
        );
    }
    tracing::info!(object = %what, uid = %req.uid, images, pull_secret, "patched");
    match resp.with_patch(Patch(ops)) {
        Ok(r) => (
            r,
            Outcome::Patched {
                images,
                pull_secret,
            },
        ),
        Err(e) => (bad_request(req, &e.to_string()), Outcome::Invalid),
    }
}

/// The image replacements for one pod spec.
struct ImagePlan {
    ops: Vec<PatchOperation>,
    /// `<field>/<name>` → image as written, for the replaced images.
    originals: BTreeMap<String, String>,
    /// Whether any image (after the plan) comes from the private registry.
    private: bool,
    warnings: Vec<String>,
}

fn container_name(c: &Value) -> Option<String> {
    c.get("name").and_then(Value::as_str).map(str::to_string)
}

fn pointer(path: &[&str], rest: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(path.iter().chain(rest).copied())
}

fn plan_images(
    config: &Config,
    spec: &Value,
    spec_path: &[&str],
    fields: &[&str],
    skip_names: &[String],
) -> Result<ImagePlan, String> {
    let mut plan = ImagePlan {
        ops: Vec::new(),
        originals: BTreeMap::new(),
        private: false,
        warnings: Vec::new(),
    };
    for field in fields {
        let Some(list) = spec.get(field) else {
            continue;
        };
        let list = match list {
            Value::Null => continue,
            Value::Array(a) => a,
            _ => return Err(format!("spec.{field} is not a list")),
        };
        for (i, c) in list.iter().enumerate() {
            let name = container_name(c).unwrap_or_else(|| i.to_string());
            if skip_names.contains(&name) {
                continue;
            }
            let Some(image) = c.get("image").and_then(Value::as_str) else {
                continue;
            };
            let r = match Reference::parse(image) {
                Ok(r) => r,
                Err(e) => {
                    plan.warnings.push(format!(
                        "airlock: {field}[{name}] image {image:?} left as is: {e}"
                    ));
                    continue;
                }
            };
            if config.mapping.is_private(&r) {
                plan.private = true;
                continue;
            }
            let mapped = match config.mapping.map(&r) {
                Ok(m) => m,
                Err(e) => {
                    plan.warnings
                        .push(format!("airlock: {field}[{name}] left as is: {e}"));
                    continue;
                }
            };
            plan.private = true;
            let index = i.to_string();
            plan.ops.push(PatchOperation::Replace(ReplaceOperation {
                path: pointer(spec_path, &[field, &index, "image"]),
                value: Value::String(mapped.as_str().to_string()),
            }));
            plan.originals
                .insert(format!("{field}/{name}"), image.to_string());
        }
    }
    Ok(plan)
}

/// Records the replaced images in [`ORIGINAL_IMAGES`], keeping what an earlier invocation
/// recorded (the image first written is the original, not what another webhook made of it).
fn annotation_op(
    meta: Option<&Value>,
    meta_path: &[&str],
    originals: &BTreeMap<String, String>,
) -> PatchOperation {
    let annotations = meta
        .and_then(|m| m.get("annotations"))
        .filter(|a| a.is_object());
    let mut merged: BTreeMap<String, String> = annotations
        .and_then(|a| a.get(ORIGINAL_IMAGES))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    for (k, v) in originals {
        merged.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let text = serde_json::to_string(&merged).unwrap_or_default();
    match (meta.filter(|m| m.is_object()), annotations) {
        (_, Some(_)) => PatchOperation::Add(AddOperation {
            path: pointer(meta_path, &["annotations", ORIGINAL_IMAGES]),
            value: Value::String(text),
        }),
        (Some(_), None) => PatchOperation::Add(AddOperation {
            path: pointer(meta_path, &["annotations"]),
            value: json!({ ORIGINAL_IMAGES: text }),
        }),
        (None, None) => PatchOperation::Add(AddOperation {
            path: pointer(meta_path, &[]),
            value: json!({ "annotations": { ORIGINAL_IMAGES: text } }),
        }),
    }
}

/// Appends `secret` to `imagePullSecrets`, keeping the user's.
fn pull_secret_op(spec: &Value, spec_path: &[&str], secret: &str) -> PatchOperation {
    match spec.get("imagePullSecrets") {
        Some(Value::Array(_)) => PatchOperation::Add(AddOperation {
            path: pointer(spec_path, &["imagePullSecrets", "-"]),
            value: json!({ "name": secret }),
        }),
        _ => PatchOperation::Add(AddOperation {
            path: pointer(spec_path, &["imagePullSecrets"]),
            value: json!([{ "name": secret }]),
        }),
    }
}
