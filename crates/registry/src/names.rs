//! Request paths and the names in them: `/v2/<name>/<kind>/<reference>` split from the right
//! (a repository name may contain `manifests` or `blobs` as a component), and repository names
//! and tags checked against the spec's grammar, which also rules out `..`, empty components and
//! anything that could address a file outside the store.

/// What a `/v2/...` path addresses.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Base,
    Catalog,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    Uploads(String),
    Upload(String, String),
    Referrers(String, String),
}

/// Longest repository name the spec's conformance expects to work (distribution's limit).
const MAX_NAME: usize = 255;

/// Splits a request path. `None`: not a registry path (404).
pub(crate) fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    let segs: Vec<String> = rest.split('/').map(percent_decode).collect::<Option<_>>()?;
    let n = segs.len();
    let name = |k: usize| segs[..n - k].join("/");
    let last = |i: usize| segs[n - i].as_str();
    if n >= 3 && last(2) == "tags" && last(1) == "list" {
        return Some(Route::Tags(name(2)));
    }
    if n >= 4 && last(3) == "blobs" && last(2) == "uploads" {
        return Some(if last(1).is_empty() {
            Route::Uploads(name(3))
        } else {
            Route::Upload(name(3), last(1).to_string())
        });
    }
    if n >= 3 && last(2) == "blobs" && last(1) == "uploads" {
        return Some(Route::Uploads(name(2)));
    }
    if n >= 3 {
        let (kind, reference) = (last(2), last(1).to_string());
        let repo = name(2);
        return match kind {
            "manifests" => Some(Route::Manifest(repo, reference)),
            "blobs" => Some(Route::Blob(repo, reference)),
            "referrers" => Some(Route::Referrers(repo, reference)),
            _ => None,
        };
    }
    None
}

/// Decodes `%XX` escapes of one path segment; a `/` or NUL smuggled as `%2F`/`%00`, or a bad
/// escape, makes the path unroutable.
fn percent_decode(seg: &str) -> Option<String> {
    if !seg.contains('%') {
        return Some(seg.to_string());
    }
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            let v = u8::from_str_radix(hex, 16).ok()?;
            if v == b'/' || v == 0 {
                return None;
            }
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The spec's repository name grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or `-+`, always between alphanumerics.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// The spec's tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub(crate) fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_traversal_names_are_invalid() {
        for bad in [
            "..", "a/../b", "../etc", "a//b", "/a", "a/", "A", "a..b", "a.-b", "-a", "a_", "a___b",
            ".hidden",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        for good in ["a", "a/b", "my-org/my--repo", "a.b_c__d/e1", "0"] {
            assert!(valid_name(good), "{good}");
        }
        assert!(!valid_name(&"a".repeat(256)));
        for bad in ["", ".a", "-a", "a/b", "a:b", &"a".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
        assert!(valid_tag("_v1.0-rc1"));
    }

    #[test]
    fn routes_split_from_the_right() {
        assert_eq!(route("/v2/"), Some(Route::Base));
        assert_eq!(route("/v2"), Some(Route::Base));
        assert_eq!(route("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(
            route("/v2/a/manifests/b/manifests/latest"),
            Some(Route::Manifest("a/manifests/b".into(), "latest".into()))
        );
        assert_eq!(
            route("/v2/a/b/blobs/uploads/"),
            Some(Route::Uploads("a/b".into()))
        );
        assert_eq!(
            route("/v2/a/blobs/uploads/xyz"),
            Some(Route::Upload("a".into(), "xyz".into()))
        );
        assert_eq!(
            route("/v2/a/blobs/sha256%3Aab"),
            Some(Route::Blob("a".into(), "sha256:ab".into()))
        );
        assert_eq!(route("/v2/a/tags/list"), Some(Route::Tags("a".into())));
        assert_eq!(route("/v2/a%2F..%2Fb/tags/list"), None);
        assert_eq!(route("/v3/a/tags/list"), None);
        assert_eq!(route("/v2/a/other/x"), None);
    }
}
