//! The admission webhook's logic, without sockets: an `AdmissionReview` (admission.k8s.io/v1, as
//! kube-apiserver sends it) in, an `AdmissionReview` with a JSONPatch or a verdict out. Images are
//! renamed with the shared [`mapping::Mapping`] and judged with the shared [`policy::Policy`], so
//! a pod created at run time (a Jenkins agent, an operator's pod, `kubectl debug`) ends up where
//! `airlock rewrite` would have put it and is held to the rules `airlock check` applies.
//!
//! The only outside fact the mutation needs — does the pull Secret exist in the pod's namespace —
//! comes through [`SecretLookup`], which the server implements with kube and tests with a set.

mod counters;
mod mutate;
mod validate;

use std::future::Future;

use base64::Engine as _;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::{DynamicObject, Status};
use serde_json::Value;

pub use counters::Counters;

/// The annotation holding the images a mutation replaced: a JSON object from
/// `<field>/<container name>` (`containers/app`, `initContainers/setup`) to the image as written.
pub const ORIGINAL_IMAGES: &str = "airlock.dev/original-images";

/// A pod (or a workload's pod template) labelled `airlock.dev/ignore: "true"` is admitted
/// untouched and unjudged; the same label on a namespace excludes it through the webhook
/// configuration's namespaceSelector.
pub const IGNORE_LABEL: &str = "airlock.dev/ignore";

/// What `/validate` does with a policy violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Enforce {
    /// Refuse the pod, naming every violation.
    Deny,
    /// Admit it with an admission warning per violation (shown by kubectl).
    #[default]
    Warn,
}

/// How the webhook behaves; built by the binary from the same flags and `airlock.yaml` as
/// `rewrite` and `check`.
#[derive(Debug, Clone)]
pub struct Config {
    pub mapping: mapping::Mapping,
    /// The policy; its `private` mapping is normally [`Config::mapping`].
    pub policy: policy::Policy,
    /// The imagePullSecret to append to pods pulling from the private registry.
    pub pull_secret: Option<String>,
    /// Also rewrite the pod templates of Deployments, StatefulSets, DaemonSets, Jobs and
    /// CronJobs. Off by default: GitOps controllers see a mutated template as drift and fight
    /// it, while the pods those workloads create are rewritten anyway.
    pub mutate_templates: bool,
    pub enforce: Enforce,
    /// Compute, log and count, but never patch or deny: for rolling the webhook out safely.
    pub dry_run: bool,
}

/// Whether a Secret exists, asked once per pod that needs the pull secret. An error is not a
/// "no": the pod is admitted without the secret and the user is warned why.
pub trait SecretLookup: Sync {
    fn secret_exists(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<bool, String>> + Send;
}

/// What a review came to, for the metrics and the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A patch was returned: `images` images renamed, the pull secret appended or not.
    Patched { images: usize, pull_secret: bool },
    /// Dry run: the patch that would have been returned.
    WouldPatch { images: usize, pull_secret: bool },
    /// Looked at, nothing to change.
    Unchanged,
    /// Not looked at: opted out, a kind or operation the webhook leaves alone.
    Skipped(&'static str),
    /// `/validate` refused it.
    Denied,
    /// `/validate` admitted it with warnings (or would have denied it in a dry run).
    Warned,
    /// The request could not be understood.
    Invalid,
}

/// A request that cannot be answered with an AdmissionReview at all (no uid to echo): the server
/// answers 400 with the message.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("request body is not an AdmissionReview: {0}")]
    Json(#[from] serde_json::Error),
    #[error("AdmissionReview has no request")]
    NoRequest,
    #[error("AdmissionReview apiVersion {0:?} is not admission.k8s.io/v1")]
    Version(String),
}

/// Parses a request body into the review's request.
pub fn parse(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, ReviewError> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)?;
    if review.types.api_version != kube::core::admission::META_API_VERSION_V1 {
        return Err(ReviewError::Version(review.types.api_version));
    }
    review.try_into().map_err(|_| ReviewError::NoRequest)
}

/// The response body kube-apiserver reads: the review with `patch` base64-encoded, as Go encodes
/// `[]byte`. kube-core derives `Serialize` on its `Vec<u8>`, which writes an array of numbers.
pub fn encode(response: AdmissionResponse) -> Result<Vec<u8>, serde_json::Error> {
    let patch = response.patch.clone();
    let mut v = serde_json::to_value(response.into_review())?;
    if let (Some(p), Some(r)) = (patch, v.get_mut("response")) {
        r["patch"] = Value::String(base64::engine::general_purpose::STANDARD.encode(p));
    }
    serde_json::to_vec(&v)
}

/// `/mutate`: the patch that points every image of a Pod (or, with
/// [`Config::mutate_templates`], a workload's pod template) at the private registry.
pub async fn mutate(
    config: &Config,
    secrets: &impl SecretLookup,
    req: &AdmissionRequest<DynamicObject>,
) -> (AdmissionResponse, Outcome) {
    mutate::review(config, secrets, req).await
}

/// `/validate`: the shared Policy's verdict on a Pod.
pub fn validate(
    config: &Config,
    req: &AdmissionRequest<DynamicObject>,
) -> (AdmissionResponse, Outcome) {
    validate::review(config, req)
}

/// Where a kind keeps its pod spec and pod metadata, as object paths.
pub(crate) struct Shape {
    pub spec: &'static [&'static str],
    pub meta: &'static [&'static str],
    pub template: bool,
}

/// The shape of the objects the webhook knows: Pods and the workloads with a pod template.
pub(crate) fn shape(group: &str, kind: &str) -> Option<Shape> {
    const TEMPLATE_SPEC: &[&str] = &["spec", "template", "spec"];
    const TEMPLATE_META: &[&str] = &["spec", "template", "metadata"];
    match (group, kind) {
        ("", "Pod") => Some(Shape {
            spec: &["spec"],
            meta: &["metadata"],
            template: false,
        }),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet") | ("batch", "Job") => Some(Shape {
            spec: TEMPLATE_SPEC,
            meta: TEMPLATE_META,
            template: true,
        }),
        ("batch", "CronJob") => Some(Shape {
            spec: &["spec", "jobTemplate", "spec", "template", "spec"],
            meta: &["spec", "jobTemplate", "spec", "template", "metadata"],
            template: true,
        }),
        _ => None,
    }
}

/// The three container lists of a pod spec, in the order the kubelet starts them.
pub(crate) const CONTAINER_FIELDS: [&str; 3] =
    ["initContainers", "containers", "ephemeralContainers"];

/// The object as one JSON tree (kube's `DynamicObject` keeps `metadata` apart).
pub(crate) fn object_tree(obj: &DynamicObject) -> Result<Value, String> {
    serde_json::to_value(obj).map_err(|e| format!("object cannot be read: {e}"))
}

/// Follows `path` through objects; `None` where a step is missing or not an object.
pub(crate) fn at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// Whether pod metadata carries [`IGNORE_LABEL`] `"true"`.
pub(crate) fn opted_out(meta: Option<&Value>) -> bool {
    meta.and_then(|m| at(m, &["labels", IGNORE_LABEL]))
        .and_then(Value::as_str)
        == Some("true")
}

/// The answer to a request that was read but cannot be handled (uid echoed, not allowed, 400).
pub(crate) fn bad_request(
    req: &AdmissionRequest<DynamicObject>,
    message: &str,
) -> AdmissionResponse {
    let mut resp = AdmissionResponse::from(req);
    resp.allowed = false;
    resp.result = Status::failure(&format!("airlock: {message}"), "BadRequest").with_code(400);
    resp
}

/// How a request names its object in logs and messages: `Pod ci/agent-x1`.
pub(crate) fn describe(req: &AdmissionRequest<DynamicObject>) -> String {
    let ns = req.namespace.as_deref().unwrap_or("");
    let name = if req.name.is_empty() {
        req.object
            .as_ref()
            .and_then(|o| o.metadata.generate_name.clone())
            .map_or_else(|| "(unnamed)".to_string(), |g| format!("{g}*"))
    } else {
        req.name.clone()
    };
    if ns.is_empty() {
        format!("{} {name}", req.kind.kind)
    } else {
        format!("{} {ns}/{name}", req.kind.kind)
    }
}

#[cfg(test)]
mod tests;
