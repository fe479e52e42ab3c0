//! Images handed to a workload through a ConfigMap: a `data` key named like `BUILDER_IMAGE`
//! that a container reads into its environment (`envFrom.configMapRef`, or
//! `env[].valueFrom.configMapKeyRef` into a variable named `…_IMAGE`). Operators and CI agents
//! pull such images at run time, so they are reported as `heuristic`, like `*_IMAGE` env values.
//! Only ConfigMaps consumed by a workload in the same file count: an unread key is just data.

use std::collections::{HashMap, HashSet};

use super::kubernetes::names_an_image;
use super::{Node, Path, Walk};
use crate::{Kind, Source};

/// How the workloads of a file read ConfigMaps.
#[derive(Default)]
pub(super) struct Uses {
    /// ConfigMaps read whole by `envFrom`.
    whole: HashSet<String>,
    /// `(configmap, key)` read by `configMapKeyRef`, and whether the variable is named `…IMAGE`.
    keys: HashMap<(String, String), bool>,
}

impl Uses {
    /// Every ConfigMap reference in the container environments of `docs`.
    pub(super) fn collect<'n>(docs: impl IntoIterator<Item = &'n Node>) -> Uses {
        let mut uses = Uses::default();
        docs.into_iter().for_each(|d| uses.visit(d, 0));
        uses
    }

    fn visit(&mut self, node: &Node, depth: usize) {
        // Manifests nest pod specs a dozen levels deep; deeper is not a manifest.
        if depth > 64 {
            return;
        }
        match node {
            Node::Map(_) => {
                for (key, value) in node.entries() {
                    match (key, value.as_seq()) {
                        ("envFrom", Some(items)) => {
                            self.whole.extend(items.iter().filter_map(|i| {
                                Some(i.get("configMapRef")?.str_at("name")?.to_string())
                            }))
                        }
                        ("env", Some(items)) => {
                            for var in items {
                                let Some(r) =
                                    var.get("valueFrom").and_then(|v| v.get("configMapKeyRef"))
                                else {
                                    continue;
                                };
                                if let (Some(name), Some(key)) = (r.str_at("name"), r.str_at("key"))
                                {
                                    let image_var = var.str_at("name").is_some_and(names_an_image);
                                    let e = self
                                        .keys
                                        .entry((name.to_string(), key.to_string()))
                                        .or_default();
                                    *e |= image_var;
                                }
                            }
                        }
                        _ => {}
                    }
                    self.visit(value, depth + 1);
                }
            }
            Node::Seq(items) => items.iter().for_each(|i| self.visit(i, depth + 1)),
            Node::Scalar(_) => {}
        }
    }

    fn is_empty(&self) -> bool {
        self.whole.is_empty() && self.keys.is_empty()
    }
}

/// Report the image-named keys of a ConfigMap that a workload reads into its environment.
pub(super) fn scan(w: &mut Walk, doc: &Node, uses: &Uses) {
    if uses.is_empty() || doc.str_at("kind") != Some("ConfigMap") {
        return;
    }
    let meta = doc.get("metadata");
    let Some(name) = meta.and_then(|m| m.str_at("name")) else {
        return;
    };
    let owner = match meta.and_then(|m| m.str_at("namespace")) {
        Some(ns) => format!("ConfigMap {ns}/{name}"),
        None => format!("ConfigMap {name}"),
    };
    let Some(data) = doc.get("data") else { return };
    for (key, value) in data.entries() {
        let Node::Scalar(s) = value else { continue };
        let by_key = uses.keys.get(&(name.to_string(), key.to_string()));
        let read = match by_key {
            Some(image_var) => *image_var || names_an_image(key),
            None => uses.whole.contains(name) && names_an_image(key),
        };
        if read && !s.value.contains('\n') {
            let context = w.context(&owner, &Path::new().key("data").key(key));
            w.value(s, Kind::Heuristic, Source::Kubernetes, context);
        }
    }
}
