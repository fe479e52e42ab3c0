//! docker-compose files: `services.*.image`, with anchors and merge keys already applied by the
//! tree. `${VAR:-default}` resolves to its default; a bare `${VAR}` stays templated; a service
//! that is `build:` locally names an image that is built, never mirrored.

use super::{Node, Path, Walk};
use crate::{Finding, Kind, Source};

pub(super) fn looks_like(doc: &Node) -> bool {
    doc.get("services").is_some_and(|s| {
        s.entries()
            .any(|(_, svc)| svc.get("image").is_some() || svc.get("build").is_some())
    })
}

pub(super) fn scan(w: &mut Walk, doc: &Node) {
    let Some(services) = doc.get("services") else {
        return;
    };
    for (name, svc) in services.entries() {
        let Some(Node::Scalar(image)) = svc.get("image") else {
            continue;
        };
        let context = w.context("", &Path::new().key("services").key(name).key("image"));
        if svc.get("build").is_some() {
            w.value(image, Kind::Built, Source::Compose, context);
            continue;
        }
        let resolved = resolve_defaults(&image.value);
        if *resolved == *image.value {
            w.value(image, Kind::Literal, Source::Compose, context);
        } else if let Some(f) = Finding::from_value(
            &resolved,
            w.span(image).0,
            false,
            Kind::Literal,
            Source::Compose,
            context,
        ) {
            w.push(f);
        }
    }
}

/// Replace `${VAR:-default}` and `${VAR-default}` with their defaults; other variables stay.
fn resolve_defaults(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        match inner.split_once(":-").or_else(|| inner.split_once('-')) {
            Some((_, default)) => out.push_str(default),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::resolve_defaults;

    #[test]
    fn defaults_resolve_and_bare_variables_stay() {
        assert_eq!(resolve_defaults("redis:${TAG:-7.2}"), "redis:7.2");
        assert_eq!(
            resolve_defaults("${REG-docker.io}/x:${T}"),
            "docker.io/x:${T}"
        );
    }
}
