//! Properties over references generated from the grammar, and over arbitrary text.

use imgref::Reference;
use proptest::prelude::*;

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
const PATH_COMPONENT: &str = "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,3}";
/// `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`
const HOST_COMPONENT: &str = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?";
const TAG: &str = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";

/// Hosts that the grammar reads as hosts: with a '.', a port, `localhost`, or in brackets.
fn host() -> impl Strategy<Value = String> {
    let port = prop::option::of(1u32..65536).prop_map(|p| p.map(|p| format!(":{p}")));
    let name = prop_oneof![
        prop::collection::vec(HOST_COMPONENT, 2..4).prop_map(|parts| parts.join(".")),
        Just("localhost".to_string()),
        Just("docker.io".to_string()),
        Just("index.docker.io".to_string()),
        "\\[[0-9a-fA-F:]{1,39}\\]",
    ];
    let with_port = (name, port).prop_map(|(n, p)| n + &p.unwrap_or_default());
    let single_with_port = (HOST_COMPONENT, 1u32..65536).prop_map(|(h, p)| format!("{h}:{p}"));
    prop_oneof![4 => with_port, 1 => single_with_port]
}

fn digest() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")),
        "[0-9a-f]{128}".prop_map(|h| format!("sha512:{h}")),
        (
            "[a-z0-9]{1,5}([.+_-][a-z0-9]{1,5}){0,2}",
            "[0-9a-fA-F]{32,80}"
        )
            .prop_filter("known algorithms have fixed lengths", |(a, _)| {
                a != "sha256" && a != "sha512"
            })
            .prop_map(|(a, h)| format!("{a}:{h}")),
    ]
}

/// What was generated, to compare against what was parsed.
#[derive(Debug, Clone)]
struct Spec {
    host: Option<String>,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Spec {
    fn text(&self) -> String {
        let mut s = String::new();
        if let Some(h) = &self.host {
            s.push_str(h);
            s.push('/');
        }
        s.push_str(&self.path);
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// Whether the generated text is valid as a whole: the grammar's limits that a generator
    /// cannot express locally.
    fn valid(&self) -> bool {
        let hub = matches!(
            self.host.as_deref(),
            None | Some("docker.io" | "index.docker.io")
        );
        let registry = if hub {
            "docker.io"
        } else {
            self.host.as_deref().unwrap_or_default()
        };
        let library = if hub && !self.path.contains('/') {
            "library/".len()
        } else {
            0
        };
        let first = self.path.split('/').next().unwrap_or_default();
        // Without a host, a first component with '.' would be read as one.
        let host_like = self.host.is_none() && self.path.contains('/') && first.contains('.');
        let hex_only = self.host.is_none()
            && self.tag.is_none()
            && self.digest.is_none()
            && self.path.len() == 64
            && self.path.bytes().all(|c| c.is_ascii_hexdigit());
        registry.len() + 1 + library + self.path.len() <= 255 && !host_like && !hex_only
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::of(host()),
        prop::collection::vec(PATH_COMPONENT, 1..5).prop_map(|c| c.join("/")),
        prop::option::of(TAG),
        prop::option::of(digest()),
    )
        .prop_map(|(host, path, tag, digest)| Spec {
            host,
            path,
            tag,
            digest,
        })
        .prop_filter("within the grammar's global limits", Spec::valid)
}

proptest! {
    #[test]
    fn parse_keeps_the_text_and_its_parts(spec in spec()) {
        let s = spec.text();
        let r = Reference::parse(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(r.to_string(), s.clone());
        prop_assert_eq!(r.as_str(), s.as_str());
        prop_assert_eq!(r.domain(), spec.host.as_deref());
        prop_assert_eq!(r.path(), spec.path.as_str());
        prop_assert_eq!(r.tag(), spec.tag.as_deref());
        prop_assert_eq!(r.digest(), spec.digest.as_deref());
    }

    #[test]
    fn normalisation_is_idempotent_and_reparses(spec in spec()) {
        let r = Reference::parse(&spec.text()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let n = r.normalized();
        prop_assert!(n.is_normalized());
        prop_assert_eq!(n.normalized(), n.clone());
        prop_assert_eq!(Reference::parse(n.as_str()), Ok(n.clone()));
        prop_assert_eq!(n.name(), r.name());
        prop_assert_eq!(n.registry(), r.registry());
        prop_assert_eq!(n.repository(), r.repository());
        prop_assert_eq!(n.digest(), r.digest());
        prop_assert_eq!(r.is_normalized(), r == n);
        if r.tag().is_none() && r.digest().is_none() {
            prop_assert_eq!(n.tag(), Some("latest"));
        } else {
            prop_assert_eq!(n.tag(), r.tag());
        }
    }

    #[test]
    fn with_name_moves_tag_and_digest(spec in spec(), other in spec()) {
        let r = Reference::parse(&spec.text()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let o = Reference::parse(&other.text()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let name = &o.as_str()[..o.as_str().len() - o.tag().map_or(0, |t| t.len() + 1)
            - o.digest().map_or(0, |d| d.len() + 1)];
        let m = r.with_name(name).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(m.domain(), o.domain());
        prop_assert_eq!(m.path(), o.path());
        prop_assert_eq!(m.tag(), r.tag());
        prop_assert_eq!(m.digest(), r.digest());
        prop_assert_eq!(Reference::parse(m.as_str()), Ok(m.clone()));
    }

    #[test]
    fn parse_never_panics(s in any::<String>()) {
        check_arbitrary(&s)?;
    }

    #[test]
    fn parse_never_panics_on_near_misses(s in "[a-zA-Z0-9:/@._\\-\\[\\]+é ]{0,80}") {
        check_arbitrary(&s)?;
    }

    #[test]
    fn parse_never_panics_on_mutated_references(spec in spec(), at in any::<prop::sample::Index>(),
                                                c in prop::char::any()) {
        let mut s = spec.text();
        let mut i = at.index(s.len() + 1);
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        s.insert(i, c);
        check_arbitrary(&s)?;
    }
}

/// Whatever the input: no panic, valid results round-trip, errors point inside the input.
fn check_arbitrary(s: &str) -> Result<(), TestCaseError> {
    match Reference::parse(s) {
        Ok(r) => {
            prop_assert_eq!(r.to_string(), s);
            let n = r.normalized();
            prop_assert_eq!(n.normalized(), n.clone());
            prop_assert_eq!(Reference::parse(n.as_str()), Ok(n));
        }
        Err(e) => {
            let len = s.chars().count();
            prop_assert!(e.position <= len);
            prop_assert_eq!(e.found, s.chars().nth(e.position));
            prop_assert_eq!(e.input.as_str(), s);
            let _ = e.to_string();
        }
    }
    Ok(())
}
