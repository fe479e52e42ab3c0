//! Helm values files: image maps (`registry`/`repository`/`tag`/`digest`, in any key case) and
//! split `image` + `tag` / `Image` + `ImageTag` siblings, composed the way charts compose them,
//! with a registry inherited from an enclosing map (`image.registry`, `Agent.Builder.Registry`)
//! and a chart-wide registry (`global.imageRegistry`) taking precedence where one is set.

use super::{Node, Path, Scalar, Walk};
use crate::{Kind, PartRole, Source};

/// Chart-wide registry settings, in the precedence Bitnami-style and Rancher-style charts use.
const GLOBAL_REGISTRIES: &[&[&str]] = &[
    &["global", "imageRegistry"],
    &["privateRegistry", "registryUrl"],
    &["global", "cattle", "systemDefaultRegistry"],
];

pub(super) fn scan(w: &mut Walk, doc: &Node) {
    let at = |keys: &[&str]| {
        let mut n = doc;
        for k in keys {
            n = n.get(k)?;
        }
        n.as_scalar()
    };
    let active = GLOBAL_REGISTRIES
        .iter()
        .find_map(|keys| at(keys).filter(|s| !s.is_null() && !s.value.trim().is_empty()));
    // An empty but quoted `global.imageRegistry: ""` is still the knob a rewrite should turn.
    let global =
        active.or_else(|| at(GLOBAL_REGISTRIES[0]).filter(|s| s.exact && s.value.is_empty()));
    let first = w.out.findings.len();
    walk(w, doc, &mut Path::new(), None, global);
    // Every image of the document learns the chart-wide registry, including those it does not
    // reach: those are the ones `check` names.
    if let Some(active) = active.map(|s| s.value.trim().to_string()) {
        w.out.findings[first..]
            .iter_mut()
            .filter(|f| f.source == Source::HelmValues)
            .for_each(|f| f.site.helm_global_registry = Some(active.clone()));
    }
}

fn walk<'n>(
    w: &mut Walk,
    node: &'n Node,
    path: &mut Path,
    inherited: Option<&'n Scalar>,
    global: Option<&'n Scalar>,
) {
    match node {
        Node::Map(_) => {
            let own = node.get_ci("registry").and_then(Node::as_scalar);
            if image_map(w, node, path, own.or(inherited), global) {
                return;
            }
            let registry = own.filter(|s| !s.value.trim().is_empty()).or(inherited);
            for (key, value) in node.entries() {
                path.push_key(key);
                match value {
                    Node::Scalar(s) if key.eq_ignore_ascii_case("image") => {
                        split_image(w, node, key, s, path, registry);
                    }
                    _ => walk(w, value, path, registry, global),
                }
                path.pop();
            }
        }
        Node::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push_item(i, item.str_at("name"));
                walk(w, item, path, inherited, global);
                path.pop();
            }
        }
        Node::Scalar(s) => {
            let context = w.context("values", path);
            w.embedded(s, context);
        }
    }
}

/// `{registry, repository, tag, digest}`; returns whether the map was one.
fn image_map(
    w: &mut Walk,
    m: &Node,
    path: &Path,
    registry: Option<&Scalar>,
    global: Option<&Scalar>,
) -> bool {
    let Some(repository) = m
        .get_ci("repository")
        .and_then(Node::as_scalar)
        .filter(|s| !s.value.is_empty())
    else {
        return false;
    };
    let image_like = ["tag", "digest", "registry", "pullPolicy"]
        .iter()
        .any(|k| m.get_ci(k).is_some())
        || path
            .last_key()
            .is_some_and(|k| super::contains_ignore_case(k, "image"));
    if !image_like {
        return false;
    }
    let mut parts = vec![(PartRole::Repository, repository)];
    if let Some(r) = registry {
        parts.push((PartRole::Registry, r));
    }
    if let Some(g) = global {
        parts.push((PartRole::GlobalRegistry, g));
    }
    for (role, key) in [(PartRole::Tag, "tag"), (PartRole::Digest, "digest")] {
        if let Some(s) = m
            .get_ci(key)
            .and_then(Node::as_scalar)
            .filter(|s| !s.is_null())
        {
            parts.push((role, s));
        }
    }
    let context = w.context("values", path);
    w.composed(&parts, Source::HelmValues, context, true);
    true
}

/// `image: builder-go` with a sibling `tag:` (or `Image` + `ImageTag`) is one composed reference;
/// a lone `image:` is written out whole.
fn split_image(
    w: &mut Walk,
    m: &Node,
    key: &str,
    image: &Scalar,
    path: &Path,
    registry: Option<&Scalar>,
) {
    let tag = m
        .get_ci("tag")
        .or_else(|| m.get_ci(&format!("{key}Tag")))
        .and_then(Node::as_scalar)
        .filter(|s| !s.is_null());
    let context = w.context("values", path);
    match tag {
        Some(tag) => {
            let mut parts = vec![(PartRole::Repository, image), (PartRole::Tag, tag)];
            // Split fields are a chart's own convention, outside the `global.imageRegistry`
            // one, so only a registry written in the chart's own maps reaches them.
            if let Some(r) = registry {
                parts.push((PartRole::Registry, r));
            }
            w.composed(&parts, Source::HelmValues, context, false);
        }
        None => {
            w.value(image, Kind::Literal, Source::HelmValues, context);
        }
    }
}
