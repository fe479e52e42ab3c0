//! k0s `ClusterConfig` (`spec.images.*` as `image` + `version`), also embedded in a k0sctl
//! configuration at `spec.k0s.config`. `spec.images.repository`, which k0s applies to every
//! bundled image, is on each finding as [`crate::Site::k0s_repository`] (and, for people, in its
//! context).

use super::{Node, Path, Walk};
use crate::{PartRole, Source};

pub(super) fn scan(w: &mut Walk, config: &Node, _spec_key: &str) {
    scan_at(w, config, Path::new());
}

pub(super) fn scan_k0sctl(w: &mut Walk, doc: &Node) {
    if let Some(config) = doc
        .get("spec")
        .and_then(|s| s.get("k0s"))
        .and_then(|k| k.get("config"))
    {
        scan_at(w, config, Path::new().key("spec").key("k0s").key("config"));
    }
}

fn scan_at(w: &mut Walk, config: &Node, base: Path) {
    let Some(images) = config.get("spec").and_then(|s| s.get("images")) else {
        return;
    };
    let owner = match config.get("metadata").and_then(|m| m.str_at("name")) {
        Some(name) => format!("ClusterConfig {name}"),
        None => "ClusterConfig".to_string(),
    };
    let repository = images.str_at("repository").map(str::to_string);
    images_in(
        w,
        &owner,
        images,
        &mut base.key("spec").key("images"),
        repository.as_deref(),
    );
}

fn images_in(w: &mut Walk, owner: &str, node: &Node, path: &mut Path, repository: Option<&str>) {
    if let Some(image) = node.get("image").and_then(Node::as_scalar) {
        let mut parts = vec![(PartRole::Repository, image)];
        if let Some(version) = node.get("version").and_then(Node::as_scalar) {
            parts.push((PartRole::Tag, version));
        }
        let mut context = w.context(owner, path);
        if let Some(r) = repository {
            context.push_str(&format!(" (spec.images.repository: {r})"));
        }
        if let Some(f) = w.composed(&parts, Source::K0s, context, false) {
            f.site.k0s_repository = repository
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string);
        }
        return;
    }
    for (key, value) in node.entries() {
        if value.as_map().is_some() {
            path.push_key(key);
            images_in(w, owner, value, path, repository);
            path.pop();
        }
    }
}
