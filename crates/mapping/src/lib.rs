//! The one mapping from a public image to its name in the private registry, usable on a bare
//! [`imgref::Reference`] (no file, no span); depends on `imgref` only and must never depend on
//! discovery, YAML, HTTP or the file system, so the webhook and the registry can link it alone.
//!
//! Every verb that names an image in the private registry (rewrite, push, mirror, webhook, audit)
//! goes through [`Mapping::map`], so two code paths can never disagree about where an image
//! lives — the bug that made k0s keep `quay.io` for one component while every other honoured its
//! repository. What k0s itself pulls under `spec.images.repository` is a different, textual rule;
//! it lives here too, as [`k0s_pulls`], so the two are written once and side by side.

use std::collections::BTreeMap;
use std::fmt;

use imgref::Reference;

/// How the source registry appears under the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// k0s's `images.repository` rule applied to the normalised reference: the host is replaced
    /// (`quay.io/k0sproject/coredns` → `R/k0sproject/coredns`, `nginx` → `R/library/nginx`).
    /// Working on the normalised name is what keeps `nginx` and `docker.io/library/nginx` one
    /// image; k0s itself works on the text (see [`k0s_pulls`]).
    #[default]
    ReplaceHost,
    /// The source host is nested under the target (`R/quay.io/k0sproject/coredns`); never collides.
    /// A port becomes `_port` (`localhost:5000/x` → `R/localhost_5000/x`), since a path component
    /// cannot hold a colon.
    KeepHost,
}

impl std::str::FromStr for Mode {
    type Err = MappingError;
    fn from_str(s: &str) -> Result<Mode, MappingError> {
        match s {
            "replace-host" => Ok(Mode::ReplaceHost),
            "keep-host" => Ok(Mode::KeepHost),
            other => Err(MappingError::UnknownMode(other.to_string())),
        }
    }
}

/// An explicit rule: a normalised name starting with `from` is renamed to start with `to`.
/// `from` matches whole path segments only: `docker.io/jenkins` and `docker.io/jenkins/` both
/// match `docker.io/jenkins` and everything under it, never `docker.io/jenkinsci`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("target registry {target:?} is not host[:port][/prefix]: {reason}")]
    BadTarget { target: String, reason: String },
    #[error("mapping mode {0:?} is neither replace-host nor keep-host")]
    UnknownMode(String),
    #[error("rule {index} (from {from:?}): {reason}")]
    BadRule {
        index: usize,
        from: String,
        reason: String,
    },
    #[error("{source_ref} maps to {target}, which is not a valid reference: {reason}")]
    Unmappable {
        source_ref: String,
        target: String,
        reason: String,
    },
    #[error(
        "{first} and {second} would both become {target}; use keep-host or a rule to tell them apart"
    )]
    Collision {
        first: String,
        second: String,
        target: String,
    },
}

/// Where private images live and how public names map onto it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// `host[:port]` and an optional path prefix, without a trailing slash.
    target: String,
    mode: Mode,
    rules: Vec<Rule>,
}

impl Mapping {
    pub fn new(target: &str, mode: Mode, rules: Vec<Rule>) -> Result<Mapping, MappingError> {
        let target = target.trim().trim_end_matches('/').to_string();
        let bad = |reason: &str| MappingError::BadTarget {
            target: target.clone(),
            reason: reason.to_string(),
        };
        if target.is_empty() {
            return Err(bad("it is empty"));
        }
        if target.contains("://") {
            return Err(bad("write the host without a scheme"));
        }
        // The target must be a registry host: checked by parsing a name under it.
        let probe =
            Reference::parse(&format!("{target}/probe")).map_err(|e| bad(&e.to_string()))?;
        if probe.domain().is_none() {
            return Err(bad(
                "the first part must be a host (with a dot or a port, or localhost)",
            ));
        }
        for (index, rule) in rules.iter().enumerate() {
            let to = rule.to.trim_end_matches('/');
            let from = rule.from.trim_end_matches('/');
            if from.is_empty() {
                return Err(MappingError::BadRule {
                    index,
                    from: rule.from.clone(),
                    reason: "from is empty".into(),
                });
            }
            // A tag or digest in `from` could never match: rules rename repositories.
            let from_probe =
                Reference::parse(&format!("{from}/probe")).map_err(|e| MappingError::BadRule {
                    index,
                    from: rule.from.clone(),
                    reason: format!("from is not a repository path (no tag or digest): {e}"),
                })?;
            // Rules are matched against normalised names, so `jenkins/` would silently never
            // match `docker.io/jenkins/...`: ask for the host instead of guessing it.
            if from_probe.domain().is_none() {
                return Err(MappingError::BadRule {
                    index,
                    from: rule.from.clone(),
                    reason: format!(
                        "from must start with its registry host, as names are matched \
                         normalised (write docker.io/{from}/ for a Docker Hub path)"
                    ),
                });
            }
            Reference::parse(&format!("{to}/probe")).map_err(|e| MappingError::BadRule {
                index,
                from: rule.from.clone(),
                reason: format!("to {:?} is not a registry path: {e}", rule.to),
            })?;
        }
        Ok(Mapping {
            target,
            mode,
            rules,
        })
    }

    /// The target registry: `host[:port][/prefix]`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The explicit rules, in the order they are tried.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The target's `host[:port]`.
    pub fn target_host(&self) -> &str {
        self.target.split('/').next().unwrap_or(&self.target)
    }

    /// Whether a reference already lives in the private registry: under the target, or under a
    /// rule's destination (so mapping leaves it alone and running twice changes nothing).
    pub fn is_private(&self, r: &Reference) -> bool {
        let name = r.name();
        let under = |prefix: &str| {
            let prefix = prefix.trim_end_matches('/');
            name.len() > prefix.len()
                && name.starts_with(prefix)
                && name.as_bytes()[prefix.len()] == b'/'
        };
        under(&self.target) || self.rules.iter().any(|rule| under(&rule.to))
    }

    /// The private name of `r`. Tag and digest are kept as written (an absent tag stays absent,
    /// so the runtime's default is unchanged); a reference already under the target is returned
    /// as it is, which makes the mapping idempotent.
    pub fn map(&self, r: &Reference) -> Result<Reference, MappingError> {
        if self.is_private(r) {
            return Ok(r.clone());
        }
        let name = r.name();
        let target = match self
            .rules
            .iter()
            .find_map(|rule| Some((rule, under_prefix(&name, &rule.from)?)))
        {
            Some((rule, rest)) => {
                let to = rule.to.trim_end_matches('/');
                if rest.is_empty() {
                    to.to_string()
                } else {
                    format!("{to}/{rest}")
                }
            }
            None => match self.mode {
                Mode::ReplaceHost => format!("{}/{}", self.target, r.repository()),
                Mode::KeepHost => format!(
                    "{}/{}/{}",
                    self.target,
                    host_component(r.registry()),
                    r.repository()
                ),
            },
        };
        r.with_name(&target).map_err(|e| MappingError::Unmappable {
            source_ref: r.to_string(),
            target,
            reason: e.to_string(),
        })
    }

    /// Map every reference, failing when two different sources would share one target name.
    pub fn map_all<'a>(
        &self,
        refs: impl IntoIterator<Item = &'a Reference>,
    ) -> Result<BTreeMap<String, Reference>, MappingError> {
        let mut by_source: BTreeMap<String, Reference> = BTreeMap::new();
        let mut by_target: BTreeMap<String, String> = BTreeMap::new();
        for r in refs {
            // A reference already under the target is a result of the mapping, not a source
            // that could collide with one.
            if self.is_private(r) {
                by_source.insert(r.to_string(), r.clone());
                continue;
            }
            let mapped = self.map(r)?;
            let (source, target) = (r.name(), mapped.name());
            match by_target.get(&target) {
                Some(first) if *first != source => {
                    return Err(MappingError::Collision {
                        first: first.clone(),
                        second: source,
                        target,
                    });
                }
                _ => {
                    by_target.insert(target, source.clone());
                }
            }
            by_source.insert(r.to_string(), mapped);
        }
        Ok(by_source)
    }
}

/// What follows `prefix` in `name` when `prefix` ends on a path segment boundary of `name`
/// (`""` when they are equal): `docker.io/library/ng` is not a prefix of `docker.io/library/nginx`.
fn under_prefix<'n>(name: &'n str, prefix: &str) -> Option<&'n str> {
    let rest = name.strip_prefix(prefix.trim_end_matches('/'))?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix('/')
    }
}

/// A registry host as a repository path component (lower case, `:port` as `_port`).
fn host_component(host: &str) -> String {
    host.to_ascii_lowercase()
        .replace(['[', ']'], "")
        .replace(':', "_")
}

/// The image k0s pulls for a `spec.images.*` entry when `spec.images.repository` is `repository`.
///
/// This is k0s's own rule, not [`Mode::ReplaceHost`]: k0s works on the image text as written
/// (`overrideRepository` and `getHostName` in k0sproject/k0s `pkg/apis/k0s/v1beta1/images.go`).
/// When the first path segment is a host (it has a `.` or a `:`, or is `localhost`), that host
/// is replaced by `repository`; otherwise `repository/` is put in front. So k0s's documented
/// `repository: my.registry` turns `quay.io/k0sproject/coredns` into
/// `my.registry/k0sproject/coredns`, like the Mapping, but `nginx` into `my.registry/nginx`,
/// where the Mapping (which works on the normalised name) gives `my.registry/library/nginx`.
/// An image already under the repository is not special to k0s: with a repository that has a
/// path, `my.registry/mirror/x` becomes `my.registry/mirror/mirror/x`, and so it is here.
/// Tag and digest are kept. A trailing `/` on `repository` is ignored.
///
/// ```
/// let r = |s: &str| imgref::Reference::parse(s).unwrap();
/// let k0s = mapping::k0s_pulls(&r("quay.io/k0sproject/coredns:1.7.0"), "my.registry").unwrap();
/// assert_eq!(k0s.as_str(), "my.registry/k0sproject/coredns:1.7.0");
/// let k0s = mapping::k0s_pulls(&r("nginx:1.27"), "my.registry").unwrap();
/// assert_eq!(k0s.as_str(), "my.registry/nginx:1.27");
/// ```
pub fn k0s_pulls(image: &Reference, repository: &str) -> Result<Reference, MappingError> {
    let repository = repository.trim().trim_end_matches('/');
    let written = image.as_str();
    // imgref's domain is distribution's rule, the same test k0s's getHostName makes.
    let pulled = match image.domain() {
        Some(host) => format!("{repository}{}", &written[host.len()..]),
        None => format!("{repository}/{written}"),
    };
    Reference::parse(&pulled).map_err(|e| MappingError::Unmappable {
        source_ref: written.to_string(),
        target: pulled.clone(),
        reason: e.to_string(),
    })
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::ReplaceHost => "replace-host",
            Mode::KeepHost => "keep-host",
        };
        write!(f, "{} ({mode}, {} rules)", self.target, self.rules.len())
    }
}

/// The registry setting that makes a tool's default image come out as `mapped`: for a tool that
/// pulls `<setting>/<appended>` (the Jenkins Kubernetes plugin's `jnlpregistry` before its
/// default agent image), the prefix of `mapped`'s name that `appended` completes. `written` is
/// the image as the tool pulls it now and `setting` the registry setting already there, if any;
/// `None` when no setting can express `mapped` (a rule renamed the image itself). Both `rewrite
/// --fix-implicit` (the value it writes) and `check` (the fix it prints) call this, so they
/// cannot name two places for one image.
///
/// ```
/// let r = |s: &str| imgref::Reference::parse(s).unwrap();
/// let mapped = r("registry.corp:5000/ci/jenkins/inbound-agent:3385");
/// let setting = mapping::setting_prefix("jenkins/inbound-agent:3385", None, &mapped);
/// assert_eq!(setting.as_deref(), Some("registry.corp:5000/ci"));
/// ```
pub fn setting_prefix(written: &str, setting: Option<&str>, mapped: &Reference) -> Option<String> {
    let appended = match setting {
        Some(s) => written
            .get(s.trim_end_matches('/').len()..)
            .unwrap_or(written)
            .trim_start_matches('/'),
        None => written,
    };
    let appended_name = Reference::parse(appended)
        .map(|r| spelled_name(&r))
        .unwrap_or_else(|_| appended.to_string());
    spelled_name(mapped)
        .strip_suffix(appended_name.as_str())
        .and_then(|p| p.strip_suffix('/'))
        .map(str::to_string)
}

/// The name part of a reference as spelled (`host/path`), without tag or digest.
pub fn spelled_name(r: &Reference) -> String {
    match r.domain() {
        Some(d) => format!("{d}/{}", r.path()),
        None => r.path().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    fn map(m: &Mapping, s: &str) -> String {
        m.map(&r(s)).unwrap().to_string()
    }

    #[test]
    fn replace_host_is_k0s_images_repository_rule() {
        // The examples from k0s's documentation of spec.images.repository.
        let m = Mapping::new("my.registry", Mode::ReplaceHost, vec![]).unwrap();
        assert_eq!(
            map(&m, "quay.io/k0sproject/coredns:1.7.0"),
            "my.registry/k0sproject/coredns:1.7.0"
        );
        assert_eq!(
            map(&m, "docker.io/calico/cni:v3.24.5"),
            "my.registry/calico/cni:v3.24.5"
        );
        assert_eq!(
            map(&m, "calico/cni:v3.24.5"),
            "my.registry/calico/cni:v3.24.5"
        );
        assert_eq!(
            map(&m, "registry.k8s.io/kube-proxy:v1.25.16"),
            "my.registry/kube-proxy:v1.25.16"
        );
    }

    #[test]
    fn docker_hub_spellings_all_map_to_library() {
        let m = Mapping::new("registry.corp.local:5000/mirror", Mode::ReplaceHost, vec![]).unwrap();
        for s in [
            "nginx",
            "library/nginx",
            "docker.io/library/nginx",
            "index.docker.io/library/nginx",
        ] {
            assert_eq!(
                map(&m, s),
                "registry.corp.local:5000/mirror/library/nginx",
                "{s}"
            );
        }
    }

    #[test]
    fn keep_host_nests_the_source_and_digests_are_kept() {
        let m = Mapping::new("r.local:5000/", Mode::KeepHost, vec![]).unwrap();
        let d = "sha256:0752ca4e936da012c173c119217c0f9599b3b191c1557e53206d5d06d2627580";
        assert_eq!(
            map(&m, &format!("quay.io/a/b:1@{d}")),
            format!("r.local:5000/quay.io/a/b:1@{d}")
        );
        assert_eq!(map(&m, "nginx:1"), "r.local:5000/docker.io/library/nginx:1");
        assert_eq!(
            map(&m, "localhost:5000/a/b:1"),
            "r.local:5000/localhost_5000/a/b:1"
        );
    }

    #[test]
    fn rules_come_first_and_mapping_is_idempotent() {
        let rules = vec![Rule {
            from: "docker.io/jenkins/".into(),
            to: "registry.corp.local:5000/ci/jenkins/".into(),
        }];
        let m = Mapping::new("registry.corp.local:5000/mirror", Mode::ReplaceHost, rules).unwrap();
        let once = map(&m, "jenkins/inbound-agent:4.10-2");
        assert_eq!(
            once,
            "registry.corp.local:5000/ci/jenkins/inbound-agent:4.10-2"
        );
        let m2 = Mapping::new("registry.corp.local:5000", Mode::ReplaceHost, vec![]).unwrap();
        assert_eq!(map(&m2, &once), once);
        let mirrored = map(&m, "nginx:1");
        assert_eq!(map(&m, &mirrored), mirrored);
        // A rule's destination outside the target prefix is private too.
        assert_eq!(map(&m, &once), once);
    }

    #[test]
    fn rule_prefixes_match_whole_path_segments() {
        let rule = |from: &str, to: &str| Rule {
            from: from.into(),
            to: to.into(),
        };
        // `ng` used to match `nginx` and make it `…/inx`.
        let m = Mapping::new(
            "r.local/mirror",
            Mode::ReplaceHost,
            vec![rule("docker.io/library/ng", "r.local/ng")],
        )
        .unwrap();
        assert_eq!(map(&m, "nginx:1.27"), "r.local/mirror/library/nginx:1.27");
        assert_eq!(map(&m, "ng:1"), "r.local/ng:1");
        assert_eq!(map(&m, "library/ng/sub:1"), "r.local/ng/sub:1");

        for from in ["docker.io/jenkins", "docker.io/jenkins/"] {
            let m = Mapping::new(
                "r.local/mirror",
                Mode::ReplaceHost,
                vec![rule(from, "r.local/ci/jenkins/")],
            )
            .unwrap();
            assert_eq!(
                map(&m, "jenkins/inbound-agent:3355.v388858a_47b_33-3"),
                "r.local/ci/jenkins/inbound-agent:3355.v388858a_47b_33-3",
                "{from}"
            );
            assert_eq!(
                map(&m, "jenkinsci/blueocean:1"),
                "r.local/mirror/jenkinsci/blueocean:1",
                "{from}"
            );
        }

        // A rule for one whole repository keeps its tag and digest.
        let d = "sha256:0752ca4e936da012c173c119217c0f9599b3b191c1557e53206d5d06d2627580";
        let m = Mapping::new(
            "r.local/mirror",
            Mode::ReplaceHost,
            vec![rule(
                "quay.io/prometheus/node-exporter",
                "r.local/mon/node-exporter",
            )],
        )
        .unwrap();
        assert_eq!(
            map(&m, "quay.io/prometheus/node-exporter:v1.8.2"),
            "r.local/mon/node-exporter:v1.8.2"
        );
        assert_eq!(
            map(&m, &format!("quay.io/prometheus/node-exporter:v1.8.2@{d}")),
            format!("r.local/mon/node-exporter:v1.8.2@{d}")
        );
        assert_eq!(
            map(&m, &format!("quay.io/prometheus/node-exporter@{d}")),
            format!("r.local/mon/node-exporter@{d}")
        );
        assert_eq!(
            map(&m, "quay.io/prometheus/node-exporter-extra:1"),
            "r.local/mirror/prometheus/node-exporter-extra:1"
        );
    }

    #[test]
    fn rules_with_a_tag_no_host_or_nothing_in_from_are_rejected() {
        for from in [
            "docker.io/library/nginx:1.27",
            "/",
            "quay.io/a@sha256:00",
            "jenkins/",
            "library/nginx",
        ] {
            let rules = vec![Rule {
                from: from.into(),
                to: "r.local/x".into(),
            }];
            assert!(
                matches!(
                    Mapping::new("r.local", Mode::ReplaceHost, rules),
                    Err(MappingError::BadRule { index: 0, .. })
                ),
                "{from}"
            );
        }
    }

    #[test]
    fn collisions_name_both_sources() {
        let m = Mapping::new("r.local", Mode::ReplaceHost, vec![]).unwrap();
        let refs = [
            r("quay.io/k0sproject/coredns:1"),
            r("docker.io/k0sproject/coredns:1"),
        ];
        let err = m.map_all(&refs).unwrap_err();
        assert_eq!(
            err.to_string(),
            "quay.io/k0sproject/coredns and docker.io/k0sproject/coredns would both become \
             r.local/k0sproject/coredns; use keep-host or a rule to tell them apart"
        );
        let keep = Mapping::new("r.local", Mode::KeepHost, vec![]).unwrap();
        assert!(keep.map_all(&refs).is_ok());
    }

    #[test]
    fn bad_targets_and_rules_are_explained() {
        assert!(matches!(
            Mapping::new("https://r.local", Mode::ReplaceHost, vec![]),
            Err(MappingError::BadTarget { .. })
        ));
        assert!(matches!(
            Mapping::new("mirror", Mode::ReplaceHost, vec![]),
            Err(MappingError::BadTarget { .. })
        ));
        let rules = vec![Rule {
            from: "docker.io/".into(),
            to: "Bad Host/x".into(),
        }];
        assert!(matches!(
            Mapping::new("r.local", Mode::ReplaceHost, rules),
            Err(MappingError::BadRule { index: 0, .. })
        ));
    }

    /// k0s's own defaults (`k0s config create`, `pkg/constant`) and the documented
    /// `repository: my.registry` example, through both rules: they agree wherever the image names
    /// its host, and differ only on Docker Hub's implicit `library/`.
    #[test]
    fn k0s_pulls_follows_k0s_and_the_mapping_differs_only_on_docker_hub_names() {
        let m = Mapping::new("my.registry", Mode::ReplaceHost, vec![]).unwrap();
        let both = |s: &str| {
            (
                k0s_pulls(&r(s), "my.registry").unwrap().to_string(),
                m.map(&r(s)).unwrap().to_string(),
            )
        };
        for (written, pulled) in [
            (
                "quay.io/k0sproject/coredns:1.7.0",
                "my.registry/k0sproject/coredns:1.7.0",
            ),
            (
                "quay.io/k0sproject/apiserver-network-proxy-agent:v0.31.0",
                "my.registry/k0sproject/apiserver-network-proxy-agent:v0.31.0",
            ),
            (
                "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
                "my.registry/metrics-server/metrics-server:v0.7.2",
            ),
            ("registry.k8s.io/pause:3.9", "my.registry/pause:3.9"),
            (
                "docker.io/calico/cni:v3.24.5",
                "my.registry/calico/cni:v3.24.5",
            ),
            ("calico/cni:v3.24.5", "my.registry/calico/cni:v3.24.5"),
            ("localhost/k0s/x:1", "my.registry/k0s/x:1"),
        ] {
            assert_eq!(both(written), (pulled.into(), pulled.into()), "{written}");
        }
        // The one place they part: k0s prepends to the text, the Mapping works on the name.
        assert_eq!(
            both("nginx:1.27"),
            (
                "my.registry/nginx:1.27".into(),
                "my.registry/library/nginx:1.27".into()
            )
        );
        assert_eq!(
            both("docker.io/library/nginx:1.27"),
            (
                "my.registry/library/nginx:1.27".into(),
                "my.registry/library/nginx:1.27".into()
            )
        );
    }

    #[test]
    fn k0s_pulls_replaces_the_written_host_and_keeps_tag_and_digest() {
        let d = "sha256:0752ca4e936da012c173c119217c0f9599b3b191c1557e53206d5d06d2627580";
        let k = |s: &str, repo: &str| k0s_pulls(&r(s), repo).unwrap().to_string();
        assert_eq!(
            k(&format!("quay.io:443/a/b:1@{d}"), "r.local:5000/"),
            format!("r.local:5000/a/b:1@{d}")
        );
        assert_eq!(
            k("registry.corp.local:5000/x:1", "registry.corp.local:5000"),
            "registry.corp.local:5000/x:1"
        );
        // k0s does not look for the repository in the image: a path in it is applied again.
        assert_eq!(
            k("my.registry/mirror/x:1", "my.registry/mirror"),
            "my.registry/mirror/mirror/x:1"
        );
        assert!(matches!(
            k0s_pulls(&r("nginx"), "Bad Host"),
            Err(MappingError::Unmappable { .. })
        ));
    }

    /// The webhook's case: one bare reference, no file, no finding.
    #[test]
    fn map_works_on_a_bare_reference() {
        let m = Mapping::new("registry.corp.local:5000/mirror", Mode::KeepHost, vec![]).unwrap();
        let bare = Reference::parse("ghcr.io/fluxcd/source-controller:v1.4.1").unwrap();
        assert_eq!(
            m.map(&bare).unwrap().as_str(),
            "registry.corp.local:5000/mirror/ghcr.io/fluxcd/source-controller:v1.4.1"
        );
    }
}
