//! Jenkins Configuration as Code: Kubernetes cloud pod templates (`containers[].image`, the raw
//! pod `yaml:`), and the `jnlp` agent image the Kubernetes plugin injects into every template
//! that has no container named `jnlp` after `inheritFrom` — prefixed with `jnlpregistry`.

use super::{Node, Path, Scalar, Walk};
use crate::{
    Container, ContainerRole, Finding, Insert, Insertion, Kind, Part, PartRole, PodKind, PodRef,
    Site, Source,
};

/// Keys only a JCasC `jenkins:` section has; a Helm values file may also have `jenkins:` (a
/// subchart's settings), which is not JCasC.
const JCASC_KEYS: &[&str] = &[
    "clouds",
    "securityRealm",
    "authorizationStrategy",
    "systemMessage",
    "numExecutors",
    "nodes",
    "crumbIssuer",
];

pub(super) fn looks_like(doc: &Node) -> bool {
    doc.get("jenkins")
        .is_some_and(|j| JCASC_KEYS.iter().any(|k| j.get(k).is_some()))
}

pub(super) fn scan(w: &mut Walk, doc: &Node) {
    let Some(clouds) = doc
        .get("jenkins")
        .and_then(|j| j.get("clouds"))
        .and_then(Node::as_seq)
    else {
        return;
    };
    for (ci, cloud) in clouds.iter().enumerate() {
        let Some(k8s) = cloud.get("kubernetes") else {
            continue;
        };
        let path = Path::new()
            .key("jenkins")
            .key("clouds")
            .item(ci, k8s.str_at("name"))
            .key("kubernetes");
        let templates = k8s.get("templates").and_then(Node::as_seq).unwrap_or(&[]);
        for (ti, t) in templates.iter().enumerate() {
            let tpath = path.key("templates").item(ti, t.str_at("name"));
            let pod = template_ref(w, t);
            template(w, Some(k8s), t, &tpath, pod);
            if has_jnlp(t, templates, 0) == Some(false) {
                implicit_jnlp(w, k8s, t, &tpath, pod);
            }
        }
    }
}

/// A pod template, identified by the offset of its first key.
fn template_ref(w: &Walk, t: &Node) -> Option<PodRef> {
    match t.as_map().and_then(|m| m.first()) {
        Some((Node::Scalar(first), _)) => Some(PodRef {
            kind: PodKind::JenkinsTemplate,
            offset: w.span(first).0.start,
        }),
        _ => None,
    }
}

fn template(w: &mut Walk, cloud: Option<&Node>, t: &Node, path: &Path, pod: Option<PodRef>) {
    if let Some(Node::Scalar(on)) = t.get("agentInjection")
        && on.value.trim() == "true"
    {
        let context = w.context(
            "",
            &path
                .key("initContainers")
                .key("set-up-jenkins-agent (injected by agentInjection)"),
        );
        let init = Container {
            name: Some("set-up-jenkins-agent".to_string()),
            role: ContainerRole::Init,
        };
        agent_image(w, Source::Jcasc, None, on, context, pod, init);
    }
    for (i, c) in t
        .get("containers")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let image = c.get("image").and_then(Node::as_scalar);
        if c.str_at("name") == Some("jnlp")
            && image.is_none_or(|s| s.is_null() || s.value.trim().is_empty())
            && let Some(Node::Scalar(name)) = c.get("name")
        {
            // The plugin fills a blank agent image with its default.
            let context = w.context(
                "",
                &path
                    .key("containers")
                    .item(i, Some("jnlp"))
                    .key("image (default of the Kubernetes plugin)"),
            );
            let jnlp = Container {
                name: Some("jnlp".to_string()),
                role: ContainerRole::Regular,
            };
            agent_image(w, Source::Jcasc, cloud, name, context, pod, jnlp);
        }
        if let Some(Node::Scalar(s)) = c.get("image") {
            let context = w.context(
                "",
                &path
                    .key("containers")
                    .item(i, c.str_at("name"))
                    .key("image"),
            );
            if let Some(f) = w.value(s, Kind::Literal, Source::Jcasc, context) {
                f.site = Site {
                    pod,
                    container: Some(Container {
                        name: c.str_at("name").map(str::to_string),
                        role: ContainerRole::Regular,
                    }),
                    ..Site::default()
                };
            }
        }
    }
    if let Some(Node::Scalar(yaml)) = t.get("yaml") {
        let context = w.context("", &path.key("yaml"));
        // The raw pod YAML is merged into this template: its containers are the template's.
        let outer = w.pod;
        w.pod = pod.or(outer);
        w.embedded(yaml, context);
        w.pod = outer;
    }
}

/// Whether the template ends up with a `jnlp` container: `None` when it inherits from a template
/// this file does not define, so the answer is unknown.
fn has_jnlp(t: &Node, all: &[Node], depth: usize) -> Option<bool> {
    let named_jnlp = |c: &Node| c.str_at("name") == Some("jnlp");
    if t.get("containers")
        .and_then(Node::as_seq)
        .is_some_and(|cs| cs.iter().any(named_jnlp))
    {
        return Some(true);
    }
    if t.str_at("yaml").is_some_and(crate::podyaml::has_jnlp) {
        return Some(true);
    }
    // Guard against inheritance cycles in broken configuration.
    if depth > 16 {
        return None;
    }
    for parent in t
        .str_at("inheritFrom")
        .unwrap_or_default()
        .split_whitespace()
    {
        let p = all.iter().find(|c| c.str_at("name") == Some(parent))?;
        if has_jnlp(p, all, depth + 1)? {
            return Some(true);
        }
    }
    Some(false)
}

fn implicit_jnlp(w: &mut Walk, cloud: &Node, t: &Node, path: &Path, pod: Option<PodRef>) {
    let Some(anchor) = t.get("name").and_then(Node::as_scalar) else {
        return;
    };
    let context = w.context(
        "",
        &path
            .key("containers")
            .key("jnlp (injected by the Kubernetes plugin)"),
    );
    let jnlp = Container {
        name: Some("jnlp".to_string()),
        role: ContainerRole::InjectedJnlp,
    };
    agent_image(w, Source::Jcasc, Some(cloud), anchor, context, pod, jnlp);
}

/// The plugin's default agent image where the plugin puts it without the file naming it: a
/// `jnlp` container it adds or whose blank image it fills (prefixed with the cloud's
/// `jnlpregistry`), or the `set-up-jenkins-agent` init container of `agentInjection` (which
/// the plugin never prefixes: `cloud` is `None`). `anchor` is the text that implies it.
pub(super) fn agent_image(
    w: &mut Walk,
    source: Source,
    cloud: Option<&Node>,
    anchor: &Scalar,
    context: String,
    pod: Option<PodRef>,
    container: Container,
) {
    let default = &w.opts.default_jnlp_image;
    let registry = cloud
        .and_then(|c| c.get("jnlpregistry"))
        .and_then(Node::as_scalar)
        .filter(|s| !s.is_null() && !s.value.trim().is_empty());
    let image = match (registry, container.role) {
        (Some(r), _) => format!("{}/{default}", r.value.trim_end_matches('/')),
        // The agentInjection init container is the bare default, never prefixed.
        (None, ContainerRole::Init) => default.clone(),
        (None, _) => w.opts.jnlp_image(),
    };
    let Ok(reference) = imgref::Reference::parse(&image) else {
        return;
    };
    let parts = registry
        .map(|r| {
            let (span, exact) = w.span(r);
            vec![Part {
                role: PartRole::Registry,
                value: r.value.to_string(),
                span,
                exact,
            }]
        })
        .unwrap_or_default();
    // Without a jnlpregistry, `rewrite --fix-implicit` adds one before the cloud's first key.
    let insertion = match (registry, cloud.and_then(|c| c.as_map()?.first().cloned())) {
        (None, Some((Node::Scalar(first), _))) if w.map.is_exact() => Some(Insertion {
            offset: w.span(&first).0.start,
            what: Insert::RegistryKey("jnlpregistry"),
        }),
        _ => None,
    };
    let span = w.span(anchor).0;
    w.push(Finding {
        span,
        exact: false,
        image,
        reference: Some(reference),
        kind: Kind::Implicit,
        source,
        context,
        parts,
        insertion,
        site: Site {
            pod,
            container: Some(container),
            ..Site::default()
        },
    });
}
