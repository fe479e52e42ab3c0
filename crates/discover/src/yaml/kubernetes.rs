//! Kubernetes objects: every pod spec wherever it nests (Deployment, CronJob, Argo and Tekton
//! templates), image fields of custom resources people ship (`spec.image` of Prometheus,
//! Alertmanager, ThanosRuler, StepAction), and images handed to operators as container flags,
//! `*_IMAGE` env vars and pipeline parameters named `…image` (kind `heuristic`).

use super::{Node, Path, Scalar, Walk};
use crate::{
    Container, ContainerRole, Finding, Kind, PodContainer, PodKind, PodRef, ServiceAccount, Site,
    Source, Workload,
};

/// Keys whose value is a list of containers, in Kubernetes, Argo Workflows and Tekton.
const CONTAINER_LISTS: &[&str] = &[
    "containers",
    "initContainers",
    "ephemeralContainers",
    "sidecars",
    "steps",
];
/// Keys whose value is a single container-like map (Argo `container`/`script`, Tekton `stepTemplate`).
const CONTAINER_MAPS: &[&str] = &["container", "script", "stepTemplate"];

pub(super) fn scan_object(w: &mut Walk, doc: &Node) {
    let kind = doc.str_at("kind").unwrap_or_default();
    let meta = doc.get("metadata");
    let name = meta.and_then(|m| m.str_at("name"));
    let owner = match (meta.and_then(|m| m.str_at("namespace")), name) {
        (Some(ns), Some(n)) => format!("{kind} {ns}/{n}"),
        (None, Some(n)) => format!("{kind} {n}"),
        _ => kind.to_string(),
    };
    let pod = w.pod;
    walk(w, &owner, doc, &mut Path::new(), pod);
    if kind.starts_with("S2i") {
        s2i(w, &owner, doc);
    }
    let namespace = meta.and_then(|m| m.str_at("namespace")).map(str::to_string);
    if kind == "ServiceAccount" {
        if let Some(name) = name {
            let pull_secrets = secret_names(doc);
            w.out.service_accounts.push(ServiceAccount {
                name: name.to_string(),
                namespace,
                pull_secrets,
            });
        }
        return;
    }
    let mut specs = Vec::new();
    pod_specs(doc, &mut specs);
    for spec in specs {
        let containers = [
            ("initContainers", ContainerRole::Init),
            ("containers", ContainerRole::Regular),
            ("ephemeralContainers", ContainerRole::Ephemeral),
        ]
        .iter()
        .filter_map(|(k, role)| Some((spec.get(k).and_then(Node::as_seq)?, *role)))
        .flat_map(|(items, role)| {
            items.iter().filter_map(move |c| {
                Some(PodContainer {
                    name: c.str_at("name").map(str::to_string),
                    role,
                    image: c.str_at("image")?.to_string(),
                })
            })
        })
        .collect();
        let offset = pod_offset(w, spec);
        w.out.workloads.push(Workload {
            owner: owner.clone(),
            namespace: namespace.clone(),
            service_account: spec
                .str_at("serviceAccountName")
                .or_else(|| spec.str_at("serviceAccount"))
                .map(str::to_string),
            pull_secrets: secret_names(spec),
            offset,
            containers,
        });
    }
}

/// KubeSphere's source-to-image and binary-to-image builds (`S2iBuilderTemplate`,
/// `S2iBuilder`): the builder image the build job runs and the runtime image it builds on. The
/// `imageName` of a build is what it pushes, not what it pulls.
fn s2i(w: &mut Walk, owner: &str, doc: &Node) {
    let Some(spec) = doc.get("spec") else { return };
    let mut fields: Vec<(Path, &Scalar)> = Vec::new();
    let base = Path::new().key("spec");
    if let Some(Node::Scalar(s)) = spec.get("defaultBaseImage") {
        fields.push((base.key("defaultBaseImage"), s));
    }
    for (i, info) in spec
        .get("containerInfo")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let item = base.key("containerInfo").item(i, None);
        fields.extend(S2I_IMAGES.iter().filter_map(|k| match info.get(k) {
            Some(Node::Scalar(s)) => Some((item.key(k), s)),
            _ => None,
        }));
    }
    if let Some(config) = spec.get("config") {
        fields.extend(S2I_IMAGES.iter().filter_map(|k| match config.get(k) {
            Some(Node::Scalar(s)) => Some((base.key("config").key(k), s)),
            _ => None,
        }));
    }
    for (path, s) in fields {
        let context = w.context(owner, &path);
        w.value(s, Kind::Literal, Source::Kubernetes, context);
    }
}

/// The image fields of an S2I container info or build config.
const S2I_IMAGES: &[&str] = &["builderImage", "runtimeImage"];

/// Where a pod spec starts in the file (its first key): what identifies the pod.
fn pod_offset(w: &Walk, spec: &Node) -> usize {
    spec.as_map()
        .and_then(|m| m.first())
        .and_then(|(k, _)| k.as_scalar())
        .map_or(0, |k| w.span(k).0.start)
}

/// Whether a map is a pod spec (holds a `containers` list).
fn is_pod_spec(node: &Node) -> bool {
    node.get("containers").and_then(Node::as_seq).is_some()
}

/// Maps holding a `containers` list: pod specs, wherever the workload nests them.
fn pod_specs<'n>(node: &'n Node, out: &mut Vec<&'n Node>) {
    match node {
        Node::Map(_) => {
            if is_pod_spec(node) {
                out.push(node);
            }
            node.entries()
                .filter(|(k, _)| *k != "metadata")
                .for_each(|(_, v)| pod_specs(v, out));
        }
        Node::Seq(items) => items.iter().for_each(|i| pod_specs(i, out)),
        Node::Scalar(_) => {}
    }
}

/// `imagePullSecrets[].name` of a pod spec or ServiceAccount.
fn secret_names(node: &Node) -> Vec<String> {
    node.get("imagePullSecrets")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(|s| s.str_at("name").map(str::to_string))
        .collect()
}

/// A pod without `apiVersion`/`kind`, as a Jenkins `yamlFile` holds it: `spec.containers` or
/// top-level `containers`, a list of named containers. Such a file is a pod to merge into a
/// template, not Helm values.
pub(super) fn is_bare_pod(doc: &Node) -> bool {
    let spec = match doc.get("spec") {
        Some(spec) if doc.get("containers").is_none() => spec,
        _ => doc,
    };
    spec.get("containers")
        .and_then(Node::as_seq)
        .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c.str_at("name").is_some()))
}

/// A piece of a manifest without `apiVersion`/`kind` (a pod spec in a JCasC template).
pub(super) fn scan_fragment(w: &mut Walk, doc: &Node) {
    let pod = w.pod;
    walk(w, "", doc, &mut Path::new(), pod);
}

/// `pod` is the pod the node belongs to: the enclosing Jenkins template's, else the nearest pod
/// spec's.
fn walk(w: &mut Walk, owner: &str, node: &Node, path: &mut Path, pod: Option<PodRef>) {
    match node {
        Node::Map(_) => {
            let pod = match pod {
                None if is_pod_spec(node) => Some(PodRef {
                    kind: PodKind::Workload,
                    offset: pod_offset(w, node),
                }),
                pod => pod,
            };
            for (key, value) in node.entries() {
                // Labels and annotations (a last-applied-configuration copy included) are
                // descriptions of the object, never something it pulls.
                if key == "metadata" {
                    continue;
                }
                path.push_key(key);
                match value {
                    Node::Seq(items) if CONTAINER_LISTS.contains(&key) => {
                        let role = match key {
                            "initContainers" => ContainerRole::Init,
                            "ephemeralContainers" => ContainerRole::Ephemeral,
                            _ => ContainerRole::Regular,
                        };
                        for (i, item) in items.iter().enumerate() {
                            path.push_item(i, item.str_at("name"));
                            container(w, owner, item, path, pod, role);
                            path.pop();
                        }
                    }
                    Node::Map(_) if CONTAINER_MAPS.contains(&key) => {
                        container(w, owner, value, path, pod, ContainerRole::Regular)
                    }
                    Node::Seq(items) if key == "params" || key == "parameters" => {
                        parameters(w, owner, items, path);
                        walk(w, owner, value, path, pod);
                    }
                    Node::Scalar(s) if key == "image" && path.is_key_path(&["spec", "image"]) => {
                        let context = w.context(owner, path);
                        w.value(s, Kind::Literal, Source::Kubernetes, context);
                    }
                    _ => walk(w, owner, value, path, pod),
                }
                path.pop();
            }
        }
        Node::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push_item(i, item.str_at("name"));
                walk(w, owner, item, path, pod);
                path.pop();
            }
        }
        Node::Scalar(s) => {
            let context = w.context(owner, path);
            w.embedded(s, context);
        }
    }
}

/// A container (or Argo/Tekton step): its image, image flags in its command line, `*_IMAGE` env.
/// Only `image` is pulled by the container itself; the images in its flags and env are pulled
/// by whatever the operator creates, so they carry no container.
fn container(
    w: &mut Walk,
    owner: &str,
    c: &Node,
    path: &mut Path,
    pod: Option<PodRef>,
    role: ContainerRole,
) {
    let jenkins_pod = pod.is_some_and(|p| p.kind == PodKind::JenkinsTemplate) || owner.is_empty();
    if jenkins_pod
        && c.str_at("name") == Some("jnlp")
        && c.get("image")
            .and_then(Node::as_scalar)
            .is_none_or(|s| s.is_null() || s.value.trim().is_empty())
        && let Some(Node::Scalar(name)) = c.get("name")
    {
        // The Kubernetes plugin fills a blank agent image with its default.
        let context = w.context(owner, &path.key("image (default of the Kubernetes plugin)"));
        let jnlp = Container {
            name: Some("jnlp".to_string()),
            role,
        };
        super::jcasc::agent_image(w, Source::Kubernetes, None, name, context, pod, jnlp);
    }
    if let Some(Node::Scalar(s)) = c.get("image") {
        let context = w.context(owner, &path.key("image"));
        if let Some(f) = w.value(s, Kind::Literal, Source::Kubernetes, context) {
            f.site = Site {
                pod,
                container: Some(Container {
                    name: c.str_at("name").map(str::to_string),
                    role,
                }),
                ..Site::default()
            };
        }
    }
    for key in ["command", "args"] {
        if let Some(items) = c.get(key).and_then(Node::as_seq) {
            flags(w, owner, items, &path.key(key));
            for (i, item) in items.iter().enumerate() {
                if let Some(s) = item.as_scalar() {
                    shell_images(w, owner, s, &path.key(key).item(i, None));
                }
            }
        }
    }
    for key in ["script", "source"] {
        if let Some(Node::Scalar(s)) = c.get(key) {
            shell_images(w, owner, s, &path.key(key));
        }
    }
    if let Some(env) = c.get("env").and_then(Node::as_seq) {
        for (i, var) in env.iter().enumerate() {
            let (Some(name), Some(Node::Scalar(value))) = (var.str_at("name"), var.get("value"))
            else {
                continue;
            };
            if name.to_ascii_uppercase().ends_with("IMAGE") {
                let context = w.context(owner, &path.key("env").item(i, Some(name)).key("value"));
                w.value(value, Kind::Heuristic, Source::Kubernetes, context);
            }
        }
    }
    // Scripts and nested documents inside the container (an Argo `script.source`).
    for (key, value) in c.entries() {
        if let Node::Scalar(s) = value
            && key != "image"
        {
            let context = w.context(owner, &path.key(key));
            w.embedded(s, context);
        }
    }
}

/// `docker run IMAGE` in a command or script (a Docker-in-Docker step pulls it at run time).
fn shell_images(w: &mut Walk, owner: &str, s: &Scalar, path: &Path) {
    for range in crate::shell::run_images(&s.value) {
        let context = format!("{} (docker run)", w.context(owner, path));
        w.value_part(s, range, Kind::Heuristic, Source::Kubernetes, context);
    }
}

/// Images passed on an operator's command line: `--engine-image=REF`, `--engine-image REF`, and
/// any `--flag=REF` whose value is unmistakably an image (a registry host and a tag or digest,
/// like `--prometheus-config-reloader=quay.io/…:v0.93.1`).
fn flags(w: &mut Walk, owner: &str, items: &[Node], path: &Path) {
    for (i, item) in items.iter().enumerate() {
        let Some(s) = item.as_scalar() else { continue };
        let Some(flag) = s
            .value
            .strip_prefix("--")
            .or_else(|| s.value.strip_prefix('-'))
        else {
            continue;
        };
        let context = w.context(owner, &path.item(i, None));
        match flag.split_once('=') {
            Some((name, value)) if names_an_image(name) || is_unmistakable_image(value) => {
                let start = s.value.len() - value.len();
                w.value_part(
                    s,
                    start..s.value.len(),
                    Kind::Heuristic,
                    Source::Kubernetes,
                    context,
                );
            }
            None if names_an_image(flag) => {
                if let Some(Node::Scalar(next)) = items.get(i + 1) {
                    let context = w.context(owner, &path.item(i + 1, None));
                    w.value(next, Kind::Heuristic, Source::Kubernetes, context);
                }
            }
            _ => {}
        }
    }
}

/// `BUILDER_IMAGE`, `builder.image`, `engine-image`: a name that ends in "image".
pub(super) fn names_an_image(name: &str) -> bool {
    name.len() >= 5 && name[name.len() - 5..].eq_ignore_ascii_case("image")
}

fn is_unmistakable_image(value: &str) -> bool {
    if value.contains("://") || crate::is_templated(value) {
        return false;
    }
    imgref::Reference::parse(value).is_ok_and(|r| {
        r.domain().is_some_and(|d| d.contains('.')) && (r.tag().is_some() || r.digest().is_some())
    })
}

/// Pipeline parameters whose name says they hold an image (Tekton `BUILDER_IMAGE`, KubeSphere
/// `GolangDockerImage`): their default or given value is what the pipeline runs.
fn parameters(w: &mut Walk, owner: &str, items: &[Node], path: &Path) {
    for (i, item) in items.iter().enumerate() {
        let Some(name) = item.str_at("name") else {
            continue;
        };
        let squashed: String = name.chars().filter(|c| *c != '-' && *c != '_').collect();
        if !names_an_image(&squashed) {
            continue;
        }
        for key in ["default", "value"] {
            if let Some(Node::Scalar(s)) = item.get(key)
                && !crate::is_templated(&s.value)
            {
                let context = w.context(owner, &path.item(i, Some(name)).key(key));
                w.value(s, Kind::Heuristic, Source::Kubernetes, context);
            }
        }
    }
}

impl Walk<'_> {
    /// Report part of a scalar (the value after `--flag=`, an image in a script) as an image.
    pub(super) fn value_part(
        &mut self,
        s: &Scalar,
        range: std::ops::Range<usize>,
        kind: Kind,
        source: Source,
        context: String,
    ) -> bool {
        // Through the scalar's own map, so a part of a literal block lands on its exact bytes.
        let map = self.map.compose(&s.value_map(self.text));
        let (span, exact) = (map.map_range(range.clone()), map.is_exact());
        let value = &s.value[range];
        match Finding::from_value(value, span, exact, kind, source, context) {
            Some(f) => {
                self.push(f);
                true
            }
            None => false,
        }
    }
}
