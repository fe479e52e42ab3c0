//! docker-compose files: `services.*.image`, with anchors and merge keys already applied by the
//! tree. `${VAR:-default}` resolves to its default; a bare `${VAR}` stays templated; a service
//! that is `build:` locally names an image that is built, never mirrored.

use super::{Node, Path, Walk};
use crate::{Finding, Kind, Part, PartRole, Source};

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
        } else if let Some(mut f) = Finding::from_value(
            &resolved,
            w.span(image).0,
            false,
            Kind::Literal,
            Source::Compose,
            context,
        ) {
            // A default that is the whole reference is where a rewrite puts the new name.
            if let Some(range) = whole_default(&image.value) {
                let map = w.map.compose(&image.value_map(w.text));
                f.parts.push(Part {
                    role: PartRole::Default,
                    value: image.value[range.clone()].to_string(),
                    span: map.map_range(range),
                    exact: map.is_exact(),
                });
            }
            w.push(f);
        }
    }
}

/// The byte range of `default` when the value is exactly `${VAR:-default}` or `${VAR-default}`
/// and the default holds no variable of its own.
fn whole_default(value: &str) -> Option<std::ops::Range<usize>> {
    let inner = value.strip_prefix("${")?.strip_suffix('}')?;
    let name_len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|&n| n > 0)?;
    let op = [":-", "-"]
        .into_iter()
        .find(|op| inner[name_len..].starts_with(op))?;
    let start = 2 + name_len + op.len();
    let end = value.len() - 1;
    let default = &value[start..end];
    (!default.is_empty() && !default.contains(['$', '{', '}'])).then_some(start..end)
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
    use super::{resolve_defaults, whole_default};

    #[test]
    fn a_whole_default_is_located_inside_the_variable() {
        let v = "${IMG:-nginx:1.25}";
        assert_eq!(whole_default(v).map(|r| &v[r]), Some("nginx:1.25"));
        assert_eq!(whole_default("${IMG-a:1}"), Some(6..9));
        assert_eq!(whole_default("x/${IMG:-a}"), None);
        assert_eq!(whole_default("${IMG:-${B:-a}}"), None);
    }

    #[test]
    fn defaults_resolve_and_bare_variables_stay() {
        assert_eq!(resolve_defaults("redis:${TAG:-7.2}"), "redis:7.2");
        assert_eq!(
            resolve_defaults("${REG-docker.io}/x:${T}"),
            "docker.io/x:${T}"
        );
    }
}
