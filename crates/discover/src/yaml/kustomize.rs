//! Kustomize `images:` transformers: `name` selects, `newName`/`newTag`/`digest` say what is
//! pulled instead, so the reported reference is composed from the replacements.

use super::{Node, Path, Walk};
use crate::{Insert, Insertion, PartRole, Source};

pub(super) fn looks_like(doc: &Node) -> bool {
    doc.get("images")
        .and_then(Node::as_seq)
        .is_some_and(|items| {
            items.iter().any(|i| {
                i.get("name").is_some()
                    && ["newName", "newTag", "digest"]
                        .iter()
                        .any(|k| i.get(k).is_some())
            })
        })
}

pub(super) fn scan(w: &mut Walk, doc: &Node) {
    let Some(items) = doc.get("images").and_then(Node::as_seq) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let scalar = |k| {
            item.get(k)
                .and_then(Node::as_scalar)
                .filter(|s| !s.value.is_empty())
        };
        let (new_name, tag, digest) = (scalar("newName"), scalar("newTag"), scalar("digest"));
        if new_name.is_none() && tag.is_none() && digest.is_none() {
            continue;
        }
        // `name` only selects; the pulled name is `newName` when there is one.
        let mut parts = match (new_name, scalar("name")) {
            (Some(new_name), _) => vec![(PartRole::Repository, new_name)],
            (None, Some(name)) => vec![(PartRole::Selector, name)],
            (None, None) => continue,
        };
        parts.extend(tag.map(|t| (PartRole::Tag, t)));
        parts.extend(digest.map(|d| (PartRole::Digest, d)));
        let context = w.context(
            "kustomization",
            &Path::new().key("images").item(i, item.str_at("name")),
        );
        // Without `newName`, a rewrite adds one before the entry's second key (the first
        // one after `- `), which sits on a line of its own in block style.
        let insertion = match item.as_map() {
            Some([_, (Node::Scalar(second), _), ..]) if new_name.is_none() && w.map.is_exact() => {
                Some(Insertion {
                    offset: w.span(second).0.start,
                    what: Insert::NewName,
                })
            }
            _ => None,
        };
        if let Some(f) = w.composed(&parts, Source::Kustomize, context, false) {
            f.insertion = insertion;
        }
    }
}
