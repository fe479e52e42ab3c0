//! What discovery reports: one [`Finding`] per place an image reference is written (or implied),
//! with its exact position in the original bytes, and the [`ScanError`]s for input that could not be
//! read. These types are the contract with every later verb (rewrite edits at `span`, check reads
//! `kind`), so they carry structure, not prose.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

/// How a reference came to be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Written out whole in one place (a YAML scalar, a Groovy string, a `FROM` line).
    Literal,
    /// Assembled from several fields (Helm registry/repository/tag, k0s image+version,
    /// kustomize newName/newTag); `parts` holds the span of each field.
    Composed,
    /// Never written: pulled by default (the Jenkins Kubernetes plugin's `jnlp` agent image).
    Implicit,
    /// Contains unresolved templating (`{{ }}`, `${X}`, `$(params.x)`); reported as written.
    Templated,
    /// Found by a key-name convention rather than by the format's structure (`--engine-image`
    /// flags, `*_IMAGE` env vars, pipeline parameters named `…image`).
    Heuristic,
    /// The name of an image built locally (docker-compose `build:`); never mirrored.
    Built,
    /// A templated reference evaluated from its declared defaults (an Ansible role's variables):
    /// `image` is what it resolves to, [`Site::resolution`] the template and the definitions
    /// that made it.
    Resolved,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Literal => "literal",
            Kind::Composed => "composed",
            Kind::Implicit => "implicit",
            Kind::Templated => "templated",
            Kind::Heuristic => "heuristic",
            Kind::Built => "built",
            Kind::Resolved => "resolved",
        }
    }

    /// Whether the finding names an image a cluster will pull and that can be mirrored as is.
    pub fn is_pullable(self) -> bool {
        !matches!(self, Kind::Templated | Kind::Built)
    }
}

/// The format a finding was read from (the innermost one, for embedded documents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Kubernetes,
    HelmValues,
    Jcasc,
    Jenkinsfile,
    K0s,
    Kustomize,
    Compose,
    Dockerfile,
    ImageList,
    /// An Ansible role or playbook (its variables, its `.j2` templates).
    Ansible,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Kubernetes => "kubernetes",
            Source::HelmValues => "helm-values",
            Source::Jcasc => "jcasc",
            Source::Jenkinsfile => "jenkinsfile",
            Source::K0s => "k0s",
            Source::Kustomize => "kustomize",
            Source::Compose => "compose",
            Source::Dockerfile => "dockerfile",
            Source::ImageList => "image-list",
            Source::Ansible => "ansible",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role a field plays in a composed reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartRole {
    Registry,
    /// A chart-wide registry (`global.imageRegistry`) that overrides per-image registries; also
    /// listed when it is set to `""`, since setting it is the one edit that moves every image.
    GlobalRegistry,
    Repository,
    Tag,
    Digest,
    /// A kustomize `name:` that selects the image to replace: part of the reference, but editing
    /// it would break the match (the fix is to add `newName`).
    Selector,
    /// The default of a variable that spells the whole reference (compose `${VAR:-default}`, a
    /// Dockerfile `ARG NAME=default` used as `FROM ${NAME}`): rewriting it keeps the variable.
    Default,
}

/// One field of a composed reference: its role, its value and where the value is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Part {
    pub role: PartRole,
    pub value: String,
    /// Byte range of the value in the original file (inside any quotes).
    pub span: Range<usize>,
    /// Whether the bytes at `span` are exactly `value` (false for escaped or folded scalars,
    /// which an editor must not touch in place).
    pub exact: bool,
}

/// One image reference found in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Byte range in the original file: the value itself, inside any quotes. For a composed
    /// reference, the repository (or image) field; for an implicit one, the place that implies it.
    pub span: Range<usize>,
    /// Whether the bytes at `span` spell `image` exactly (always true for literal findings read
    /// from plain text; false where the value was unescaped or folded).
    pub exact: bool,
    /// As written, or as composed.
    pub image: String,
    /// The parsed reference; `None` for templated findings and for text that is not a valid
    /// reference.
    pub reference: Option<imgref::Reference>,
    pub kind: Kind,
    pub source: Source,
    /// Where it sits, for a person: `Deployment default/api › spec.template.spec.containers[api].image`.
    pub context: String,
    /// The fields of a composed reference (empty otherwise); for an implicit `jnlp` image, the
    /// cloud's `jnlpregistry` when it is set.
    pub parts: Vec<Part>,
    /// Where a missing setting that would change this image can be added (a Jenkins cloud's
    /// `jnlpregistry`), for `rewrite --fix-implicit`.
    pub insertion: Option<Insertion>,
    /// What later verbs need to know about where the image is pulled. Rules read this, never
    /// `context`, which is for people and may be reworded at any time.
    pub site: Site,
}

/// Where an image is pulled, as typed values: the pod it belongs to, its container, and the
/// file-wide registry settings that change what is pulled without changing what is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Site {
    /// The pod the image is pulled for: a workload's pod spec or a Jenkins pod template (for
    /// pod YAML embedded in a template, the template).
    pub pod: Option<PodRef>,
    /// The container that pulls it, when the format has containers.
    pub container: Option<Container>,
    /// k0s `spec.images.repository`, when set: k0s pulls every `spec.images` entry under it
    /// (see `mapping::k0s_pulls`).
    pub k0s_repository: Option<String>,
    /// A Helm chart-wide registry (`global.imageRegistry` and kin) set to a non-empty value in the
    /// same values document; whether it reaches this image is in `parts`
    /// ([`PartRole::GlobalRegistry`]).
    pub helm_global_registry: Option<String>,
    /// For a [`Kind::Resolved`] finding: the template it was evaluated from and where each
    /// variable that went into it is defined.
    pub resolution: Option<Box<Resolution>>,
}

/// How a templated reference was evaluated: what is written, and every variable definition that
/// contributed, so a person (or `rewrite`) can find where to change it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// The text as written (for a `repo:`/`tag:` pair, `repo:tag` joined).
    pub template: String,
    /// Every definition read while evaluating it, in the order first read.
    pub definitions: Vec<Definition>,
    /// The variable that moves every image of the role when set (`local_registry`), if there is
    /// one and it reaches this image.
    pub knob: Option<String>,
}

/// Where a variable is defined (`file:line:column` of its key), or that it was given on the
/// command line (`--set`, `file` is `--set`, line and column 0).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Definition {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
}

/// One pod, identified within its file: every container of the pod (and the `jnlp` container
/// the Jenkins plugin injects into it) carries the same `PodRef`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodRef {
    pub kind: PodKind,
    /// Byte offset in the file where the pod spec or template is declared.
    pub offset: usize,
}

/// What defines a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PodKind {
    /// A Kubernetes object's pod spec (Pod, Deployment, CronJob, an Argo template, …).
    Workload,
    /// A Jenkins Kubernetes plugin pod template (JCasC `templates[]`, a Jenkinsfile
    /// `podTemplate` or `agent { kubernetes { … } }`), which the plugin completes at run time.
    JenkinsTemplate,
}

/// A container, by name and by the list it sits in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// `name:` as written; `None` when the container has none.
    pub name: Option<String>,
    pub role: ContainerRole,
}

/// How a container comes to run in its pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerRole {
    /// `containers` (and Jenkins `containerTemplate`s, Argo/Tekton steps).
    Regular,
    /// `initContainers`.
    Init,
    /// `ephemeralContainers`.
    Ephemeral,
    /// The `jnlp` agent container the Jenkins Kubernetes plugin adds to a pod template that
    /// defines none.
    InjectedJnlp,
}

/// A place where `rewrite --fix-implicit` can add what makes an implicit image explicit: text
/// inserted before `offset`, on its own line, with the indentation that line has in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insertion {
    /// Byte offset of the first non-blank character of the line to insert before.
    pub offset: usize,
    pub what: Insert,
}

/// What an [`Insertion`] adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// `key: <registry>` in a YAML block mapping (a Jenkins cloud's `jnlpregistry`), before the
    /// mapping's first key.
    RegistryKey(&'static str),
    /// A `- name: jnlp` container with the image, before the first item of a pod YAML's
    /// `containers:` list.
    YamlJnlpContainer,
    /// `containerTemplate(name: 'jnlp', image: '…'),` before the first `containerTemplate` of a
    /// Groovy `containers: [...]` list.
    GroovyJnlpContainer,
    /// `newName: <private name>` in a kustomize `images:` entry that has only `name:` (before
    /// its second key), so the entry pulls the private name instead.
    NewName,
}

/// A pod spec in a workload, with what `check` needs to know about its pull credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// `Deployment ns/name`, as in finding contexts.
    pub owner: String,
    pub namespace: Option<String>,
    /// `spec.serviceAccountName` (Kubernetes uses `default` when it is absent).
    pub service_account: Option<String>,
    pub pull_secrets: Vec<String>,
    /// Byte offset of the pod spec, to point at (the [`PodRef`] offset of its findings).
    pub offset: usize,
    /// Its containers (init containers first, then containers, then ephemeral ones).
    pub containers: Vec<PodContainer>,
}

/// A container of a pod and the image it pulls, as written (templating included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodContainer {
    pub name: Option<String>,
    pub role: ContainerRole,
    pub image: String,
}

/// A ServiceAccount and the pull secrets it gives the pods that use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub name: String,
    pub namespace: Option<String>,
    pub pull_secrets: Vec<String>,
}

/// Input that could not be read; the rest of the input is still scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    /// Byte offset in the file where the problem was found.
    pub offset: usize,
    pub message: String,
}

/// Everything found in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    pub findings: Vec<Finding>,
    pub errors: Vec<ScanError>,
    pub workloads: Vec<Workload>,
    pub service_accounts: Vec<ServiceAccount>,
}

/// Settings that change what discovery reports.
#[derive(Debug, Clone)]
pub struct Options {
    /// The image the Jenkins Kubernetes plugin injects as the `jnlp` container of a pod template
    /// that has none (before `jnlpregistry` is applied).
    pub default_jnlp_image: String,
    /// The plugin's `dockerRegistryPrefix` system property: the registry before the default
    /// agent image when a cloud sets no `jnlpregistry`.
    pub jnlp_registry_prefix: Option<String>,
}

/// The Jenkins Kubernetes plugin's default agent image: the `FROM` line of the plugin's
/// `src/main/resources/org/csanchez/jenkins/plugins/kubernetes/Dockerfile` in kubernetes plugin
/// release 4423.vb_59f230b_ce53 (January 2026). The plugin reads it at start-up; a controller
/// started with `-Dorg.csanchez.jenkins.plugins.kubernetes.pipeline.PodTemplateStepExecution.defaultImage=REF`
/// uses REF instead, which discovery reads where a file sets it (see `--jnlp-image` otherwise).
pub const DEFAULT_JNLP_IMAGE: &str = "jenkins/inbound-agent:3355.v388858a_47b_33-3-jdk21";

/// The kubernetes plugin release [`DEFAULT_JNLP_IMAGE`] is taken from.
pub const DEFAULT_JNLP_IMAGE_PLUGIN: &str = "4423.vb_59f230b_ce53";

impl Default for Options {
    fn default() -> Self {
        Options {
            default_jnlp_image: DEFAULT_JNLP_IMAGE.to_string(),
            jnlp_registry_prefix: None,
        }
    }
}

impl Options {
    /// The image the plugin gives a `jnlp` container when no cloud `jnlpregistry` applies:
    /// the default, after the `dockerRegistryPrefix` when one is set.
    pub fn jnlp_image(&self) -> String {
        match &self.jnlp_registry_prefix {
            Some(prefix) => format!("{prefix}/{}", self.default_jnlp_image),
            None => self.default_jnlp_image.clone(),
        }
    }
}

/// Whether text contains templating that a tool must not resolve itself: Helm/Go `{{ }}`,
/// shell/Groovy/compose `${X}` and `$X`, Tekton/Kubernetes `$(x)`.
pub fn is_templated(text: &str) -> bool {
    let bytes = text.as_bytes();
    if text.contains("{{") {
        return true;
    }
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'$'
            && bytes
                .get(i + 1)
                .is_some_and(|&n| n == b'{' || n == b'(' || n == b'_' || n.is_ascii_alphabetic())
    })
}

impl Finding {
    /// A finding for a single value written at `span`: templated if the value has templating,
    /// otherwise `kind` with the parsed reference. Returns `None` when the text is neither
    /// templated nor a valid reference (so callers never report phantom images).
    pub fn from_value(
        value: &str,
        span: Range<usize>,
        exact: bool,
        kind: Kind,
        source: Source,
        context: String,
    ) -> Option<Finding> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return None;
        }
        // Keep the span on the trimmed text, so an exact span still spells the image.
        let lead = value.len() - value.trim_start().len();
        let span = if exact && span.len() == value.len() {
            span.start + lead..span.start + lead + trimmed.len()
        } else {
            span
        };
        let exact = exact && span.len() == trimmed.len();
        let value = trimmed;
        let (kind, reference) = if is_templated(value) {
            (Kind::Templated, None)
        } else {
            match imgref::Reference::parse(value) {
                Ok(r) => (kind, Some(r)),
                Err(_) => return None,
            }
        };
        Some(Finding {
            span,
            exact,
            image: value.to_string(),
            reference,
            kind,
            source,
            context,
            parts: Vec::new(),
            insertion: None,
            site: Site::default(),
        })
    }

    /// The normalised reference (`docker.io/library/nginx:latest`), when there is one.
    pub fn normalized(&self) -> Option<String> {
        self.reference.as_ref().map(|r| r.normalized().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrounding_whitespace_is_outside_the_span() {
        let text = "\u{b}nginx:1\u{b}";
        let f = Finding::from_value(
            text,
            0..text.len(),
            true,
            Kind::Literal,
            Source::Kubernetes,
            String::new(),
        )
        .unwrap();
        assert_eq!(&text[f.span.clone()], "nginx:1");
        assert!(f.exact);
    }

    #[test]
    fn templating_is_recognised_in_every_syntax() {
        for t in [
            "{{ .Values.image }}",
            "golang:${V}",
            "$(params.IMAGE)",
            "static:latest-$ARCH",
        ] {
            assert!(is_templated(t), "{t}");
        }
        for t in ["nginx:1.25", "registry.k8s.io/x@sha256:00", "a/b:c$"] {
            assert!(!is_templated(t), "{t}");
        }
    }
}
