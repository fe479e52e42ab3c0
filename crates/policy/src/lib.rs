//! Policy: the one set of rules `airlock check` applies to configuration files and the admission
//! webhook and cluster audit apply to pods, so a gate in CI and a gate in the cluster can never
//! disagree about what is allowed. No I/O and no network: it must never depend on the binary,
//! `rewrite` or a registry client; callers read files (or objects) and print.
//!
//! Three entry points share the rules: [`Policy::judge`] on one bare reference (registry,
//! `latest`, digest), [`Policy::judge_pod`] on a neutral [`PodView`] (pull secrets, `jnlp`
//! naming), and [`check`], which runs both over discovery's [`FileReport`]s and adds what only a
//! file can show (Helm and k0s registry settings, implicit images). Each [`Violation`] has a
//! stable [`RuleId`], a [`Location`] (a file span or an object) and a one-line fix. Questions
//! about private names go through [`mapping::Mapping`] and [`imgref::Reference`]; this crate
//! never re-derives how a name is normalised.
//!
//! Templated findings (`{{ .Values.image }}`) cannot be judged until rendered, and built images
//! are never pulled, so neither is a violation; [`templated`] counts the former for a note.

mod images;
mod jenkins;
mod pods;
mod pull_secrets;

use std::fmt;
use std::ops::Range;

use discover::{FileReport, Kind};
use imgref::Reference;
use serde::Serialize;

pub use pods::{PodJudgement, PodView};

/// What is allowed. Built by the caller from `airlock.yaml` and flags.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Registries images may come from: `host[:port]` or `host[:port]/prefix`. When empty, the
    /// private mapping's target is the only one; when that is unset too, registries are not checked.
    pub allow_registries: Vec<String>,
    /// Flag a `latest` tag, and a reference with neither tag nor digest (which pulls `latest`).
    pub deny_latest: bool,
    /// Flag every reference without a digest.
    pub require_digest: bool,
    /// The imagePullSecret pods pulling private images must have (on the pod or its
    /// ServiceAccount). Unset means the private registry takes anonymous pulls (a plain
    /// `registry:2`, `airlock serve`, a node-level mirror), so pull secrets are not checked.
    pub pull_secret: Option<String>,
    /// The mapping to the private registry, for "is this private" and for the fixes.
    pub private: Option<mapping::Mapping>,
}

/// A setting that cannot be used as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("allowed registry {entry:?} is not host[:port][/prefix]: {reason}")]
    BadRegistry { entry: String, reason: String },
}

/// The rules, with ids that are part of the interface (CI configurations and SARIF viewers key on
/// them), so they never change once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    RegistryNotAllowed,
    LatestTag,
    MissingDigest,
    ImplicitImage,
    GlobalRegistryIgnored,
    JnlpContainerName,
    MissingPullSecret,
}

impl RuleId {
    pub const ALL: [RuleId; 7] = [
        RuleId::RegistryNotAllowed,
        RuleId::LatestTag,
        RuleId::MissingDigest,
        RuleId::ImplicitImage,
        RuleId::GlobalRegistryIgnored,
        RuleId::JnlpContainerName,
        RuleId::MissingPullSecret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::RegistryNotAllowed => "registry-not-allowed",
            RuleId::LatestTag => "latest-tag",
            RuleId::MissingDigest => "missing-digest",
            RuleId::ImplicitImage => "implicit-image",
            RuleId::GlobalRegistryIgnored => "global-registry-ignored",
            RuleId::JnlpContainerName => "jnlp-container-name",
            RuleId::MissingPullSecret => "missing-pull-secret",
        }
    }

    /// One sentence saying what the rule catches (SARIF `shortDescription`, `--help`-like lists).
    pub fn description(self) -> &'static str {
        match self {
            RuleId::RegistryNotAllowed => "Image pulled from a registry that is not allowed",
            RuleId::LatestTag => "Image uses the latest tag, or no tag",
            RuleId::MissingDigest => "Image is not pinned to a digest",
            RuleId::ImplicitImage => {
                "Image pulled by default, never written, from a registry that is not allowed"
            }
            RuleId::GlobalRegistryIgnored => {
                "A global registry setting (Helm global.imageRegistry, k0s spec.images.repository) does not reach this image"
            }
            RuleId::JnlpContainerName => {
                "Jenkins agent image in a pod template container not named jnlp, so the default agent is still injected"
            }
            RuleId::MissingPullSecret => {
                "Workload pulls from the private registry without an imagePullSecret"
            }
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken rule, at one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: RuleId,
    pub location: Location,
    /// The image as written, when the violation is about one.
    pub image: Option<String>,
    pub message: String,
    /// One line saying what to do about it.
    pub fix: String,
}

impl Violation {
    /// The file, for a violation found in one.
    pub fn file(&self) -> Option<&str> {
        match &self.location {
            Location::File { file, .. } => Some(file),
            Location::Object { .. } => None,
        }
    }

    /// The byte range in its file, for a violation found in one.
    pub fn span(&self) -> Option<Range<usize>> {
        match &self.location {
            Location::File { span, .. } => Some(span.clone()),
            Location::Object { .. } => None,
        }
    }
}

/// Where a violation is: in a file (what `check` reports) or in a Kubernetes object (what the
/// webhook and the audit report, with no file behind them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Location {
    File {
        file: String,
        /// Byte range in the file (empty when the rule points at a place rather than a value).
        span: Range<usize>,
    },
    Object {
        kind: String,
        namespace: Option<String>,
        name: String,
        /// Field path inside the object (`spec.containers[api].image`).
        path: String,
    },
}

impl Location {
    /// File, start, end: the order `check` sorts in (objects after files, by name).
    fn sort_key(&self) -> (&str, usize, usize, &str, &str) {
        match self {
            Location::File { file, span } => (file, span.start, span.end, "", ""),
            Location::Object {
                kind,
                namespace,
                name,
                path,
            } => (
                kind,
                usize::MAX,
                usize::MAX,
                namespace.as_deref().unwrap_or(""),
                if path.is_empty() { name } else { path },
            ),
        }
    }
}

/// What a rule says about one image, before it is placed anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Judgement {
    pub rule: RuleId,
    pub message: String,
    pub fix: String,
}

impl Judgement {
    /// Place it: the violation at `location`, about `image`.
    pub fn at(self, location: Location, image: Option<String>) -> Violation {
        Violation {
            rule: self.rule,
            location,
            image,
            message: self.message,
            fix: self.fix,
        }
    }
}

/// Apply every rule to every file. `files` pairs each report with the name to show; pull
/// secrets are looked up across all of them, since a ServiceAccount often lives in another file
/// than the Deployment that uses it. Sorted by file, then position, then rule.
pub fn check(files: &[(String, &FileReport)], policy: &Policy) -> Vec<Violation> {
    let mut out = Vec::new();
    for (file, report) in files {
        images::check_file(file, report, policy, &mut out);
        jenkins::check_file(file, report, &mut out);
    }
    pull_secrets::check(files, policy, &mut out);
    out.sort_by(|a, b| (a.location.sort_key(), a.rule).cmp(&(b.location.sort_key(), b.rule)));
    // The same file given twice, or one value reached by two paths, is one problem.
    out.dedup();
    out
}

/// How many templated references the files hold: values `check` cannot judge until rendered.
pub fn templated(files: &[(String, &FileReport)]) -> usize {
    files
        .iter()
        .flat_map(|(_, r)| &r.findings)
        .filter(|f| f.kind == Kind::Templated)
        .count()
}

impl Policy {
    /// The rules about one image on its own — `registry-not-allowed`, `latest-tag`,
    /// `missing-digest` — for a reference with no file behind it (an AdmissionReview's container,
    /// a running pod's image). `check` applies the same rules to every written image, after the
    /// file-wide registry settings (Helm `global.imageRegistry`, k0s `spec.images.repository`)
    /// have had their say.
    pub fn judge(&self, r: &Reference) -> Vec<Judgement> {
        let mut out: Vec<Judgement> = images::registry_not_allowed(r, self).into_iter().collect();
        out.extend(images::version(r, self));
        out
    }

    /// Whether every allowed-registry entry can be used.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for entry in &self.allow_registries {
            registry_name(entry).map_err(|reason| PolicyError::BadRegistry {
                entry: entry.clone(),
                reason,
            })?;
        }
        Ok(())
    }

    /// Whether any registry is configured; without one, the registry, implicit-image and
    /// pull-secret rules have nothing to compare with.
    pub fn checks_registries(&self) -> bool {
        !self.allow_registries.is_empty() || self.private.is_some()
    }

    /// Whether `r` comes from an allowed registry; `None` when no registry is configured.
    pub fn is_allowed(&self, r: &Reference) -> Option<bool> {
        if !self.allow_registries.is_empty() {
            Some(self.allow_registries.iter().any(|e| in_registry(r, e)))
        } else {
            self.private.as_ref().map(|m| m.is_private(r))
        }
    }

    /// Whether `r` comes from the private registry or an allowed one: the images that need pull
    /// credentials.
    pub fn is_private(&self, r: &Reference) -> bool {
        self.private.as_ref().is_some_and(|m| m.is_private(r))
            || self.allow_registries.iter().any(|e| in_registry(r, e))
    }

    /// The registry to suggest in fixes: the mapping's target, else the first allowed entry.
    fn suggested_registry(&self) -> &str {
        self.private
            .as_ref()
            .map(mapping::Mapping::target)
            .or(self.allow_registries.first().map(String::as_str))
            .unwrap_or("<private registry>")
    }

    /// The allowed registries, for messages.
    fn allowed_list(&self) -> String {
        if self.allow_registries.is_empty() {
            self.suggested_registry().to_string()
        } else {
            self.allow_registries.join(", ")
        }
    }
}

/// Whether `r`'s normalised name is `entry` or lies under `entry/`.
pub(crate) fn in_registry(r: &Reference, entry: &str) -> bool {
    let Ok(entry) = registry_name(entry) else {
        return false;
    };
    let name = r.name();
    name == entry
        || name
            .strip_prefix(entry.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A `host[:port][/prefix]` in the normalised spelling names use (`index.docker.io` is
/// `docker.io`), found by asking imgref about a name under it rather than re-deriving the rules.
fn registry_name(entry: &str) -> Result<String, String> {
    let entry = entry.trim().trim_end_matches('/');
    // Two probe segments, so Docker Hub's implicit `library/` is never added to the entry.
    const PROBE: &str = "/airlock-probe/x";
    let r = Reference::parse(&format!("{entry}{PROBE}")).map_err(|e| e.to_string())?;
    if r.domain().is_none() {
        return Err("the first part must be a host (with a dot or a port, or localhost)".into());
    }
    Ok(r.name().strip_suffix(PROBE).unwrap_or(entry).to_string())
}

/// A reference without its tag and digest, as written (`quay.io/x/y`): for fixes that show where
/// the version goes.
fn unversioned(r: &Reference) -> String {
    match r.domain() {
        Some(d) => format!("{d}/{}", r.path()),
        None => r.path().to_string(),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Small inputs scanned by discover itself, so the tests see the findings users get.

    use super::*;

    pub fn scan(name: &str, text: &str) -> FileReport {
        let report = discover::scan_file(name, text.as_bytes(), &discover::Options::default());
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        report
    }

    pub fn run(files: &[(&str, &str)], policy: &Policy) -> Vec<Violation> {
        let reports: Vec<(String, FileReport)> = files
            .iter()
            .map(|(n, t)| (n.to_string(), scan(n, t)))
            .collect();
        let refs: Vec<(String, &FileReport)> =
            reports.iter().map(|(n, r)| (n.clone(), r)).collect();
        check(&refs, policy)
    }

    pub fn rules(v: &[Violation]) -> Vec<(RuleId, Option<&str>)> {
        v.iter().map(|v| (v.rule, v.image.as_deref())).collect()
    }

    pub fn private(target: &str) -> Policy {
        Policy {
            private: Some(
                mapping::Mapping::new(target, mapping::Mode::ReplaceHost, vec![]).unwrap(),
            ),
            ..Policy::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn rule_ids_are_stable_kebab_case() {
        for rule in RuleId::ALL {
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(json, format!("\"{}\"", rule.as_str()));
        }
        assert_eq!(
            RuleId::GlobalRegistryIgnored.to_string(),
            "global-registry-ignored"
        );
    }

    #[test]
    fn allowed_entries_match_normalised_names_at_path_boundaries() {
        let p = Policy {
            allow_registries: vec![
                "registry.corp.local:5000".into(),
                "index.docker.io/bitnami/".into(),
            ],
            ..Policy::default()
        };
        assert_eq!(
            p.is_allowed(&r("registry.corp.local:5000/mirror/nginx:1")),
            Some(true)
        );
        assert_eq!(
            p.is_allowed(&r("registry.corp.local:50000/x:1")),
            Some(false)
        );
        assert_eq!(p.is_allowed(&r("bitnami/nginx:1")), Some(true));
        assert_eq!(p.is_allowed(&r("docker.io/bitnamix/nginx:1")), Some(false));
        assert_eq!(p.is_allowed(&r("nginx:1")), Some(false));
        assert!(p.validate().is_ok());
        let bad = Policy {
            allow_registries: vec!["mirror".into()],
            ..Policy::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(PolicyError::BadRegistry { .. })
        ));
    }

    #[test]
    fn the_mapping_target_is_the_default_allowed_registry_and_no_setting_turns_the_rule_off() {
        let p = private("registry.corp.local:5000/mirror");
        assert_eq!(
            p.is_allowed(&r("registry.corp.local:5000/mirror/library/nginx:1")),
            Some(true)
        );
        assert_eq!(
            p.is_allowed(&r("registry.corp.local:5000/other/nginx:1")),
            Some(false)
        );
        assert_eq!(Policy::default().is_allowed(&r("nginx")), None);
        assert!(p.checks_registries() && !Policy::default().checks_registries());
        let clean = run(
            &[(
                "a.yaml",
                "kind: Pod\nspec:\n  containers:\n    - name: a\n      image: nginx\n",
            )],
            &Policy::default(),
        );
        assert!(clean.is_empty(), "{clean:?}");
    }

    #[test]
    fn templated_values_are_counted_not_judged_and_built_images_are_ignored() {
        let values = "image:\n  repository: \"{{ .Values.repo }}\"\n  tag: \"1\"\n";
        let compose = "services:\n  app:\n    build: .\n    image: myapp:dev\n";
        let p = Policy {
            deny_latest: true,
            require_digest: true,
            ..private("r.local")
        };
        let reports = [
            ("values.yaml", test_support::scan("values.yaml", values)),
            ("compose.yaml", test_support::scan("compose.yaml", compose)),
        ];
        let refs: Vec<(String, &FileReport)> =
            reports.iter().map(|(n, r)| (n.to_string(), r)).collect();
        assert!(check(&refs, &p).is_empty());
        assert_eq!(templated(&refs), 1);
    }

    #[test]
    fn violations_are_sorted_and_deduplicated() {
        let pod = "kind: Pod\nspec:\n  containers:\n    - name: b\n      image: quay.io/b:1\n    - name: a\n      image: nginx:latest\n";
        let p = Policy {
            deny_latest: true,
            ..private("r.local")
        };
        let v = run(&[("b.yaml", pod), ("a.yaml", pod), ("a.yaml", pod)], &p);
        let order: Vec<(&str, RuleId)> = v.iter().map(|v| (v.file().unwrap(), v.rule)).collect();
        assert_eq!(
            order,
            [
                ("a.yaml", RuleId::RegistryNotAllowed),
                ("a.yaml", RuleId::RegistryNotAllowed),
                ("a.yaml", RuleId::LatestTag),
                ("b.yaml", RuleId::RegistryNotAllowed),
                ("b.yaml", RuleId::RegistryNotAllowed),
                ("b.yaml", RuleId::LatestTag),
            ]
        );
    }

    fn finding(
        image: &str,
        kind: Kind,
        source: discover::Source,
        site: discover::Site,
    ) -> discover::Finding {
        discover::Finding {
            span: 0..image.len(),
            exact: true,
            image: image.to_string(),
            reference: Some(r(image)),
            kind,
            source,
            // Wording that used to switch rules on, on findings whose typed fields say otherwise,
            // and wording that says nothing on findings whose fields say everything.
            context:
                "templates[x].containers[agent] › jnlp (injected (spec.images.repository: evil.io)"
                    .to_string(),
            parts: Vec::new(),
            insertion: None,
            site,
        }
    }

    #[test]
    fn rules_read_typed_fields_not_context_wording() {
        use discover::{Container, ContainerRole, PodContainer, PodKind, PodRef, Site, Source};
        let template = PodRef {
            kind: PodKind::JenkinsTemplate,
            offset: 7,
        };
        let in_template = |name: &str, role| Site {
            pod: Some(template),
            container: Some(Container {
                name: Some(name.to_string()),
                role,
            }),
            ..Site::default()
        };
        let report = FileReport {
            findings: vec![
                finding(
                    "coredns/coredns:1.9.4",
                    Kind::Composed,
                    Source::K0s,
                    Site {
                        k0s_repository: Some("mirror.example.net".into()),
                        ..Site::default()
                    },
                ),
                finding(
                    discover::DEFAULT_JNLP_IMAGE,
                    Kind::Implicit,
                    Source::Jenkinsfile,
                    in_template("jnlp", ContainerRole::InjectedJnlp),
                ),
                finding(
                    "registry.corp.local:5000/jenkins/inbound-agent:3.1",
                    Kind::Literal,
                    Source::Jenkinsfile,
                    in_template("agent", ContainerRole::Regular),
                ),
                // Its context claims a k0s repository and a jnlp template: it has neither.
                finding(
                    "quay.io/x/y:1",
                    Kind::Literal,
                    Source::Kubernetes,
                    Site::default(),
                ),
            ],
            workloads: vec![discover::Workload {
                owner: "Deployment shop/api".into(),
                namespace: Some("shop".into()),
                service_account: None,
                pull_secrets: vec![],
                offset: 3,
                containers: vec![PodContainer {
                    name: Some("api".into()),
                    role: ContainerRole::Regular,
                    image: "registry.corp.local:5000/shop/api:1.4".into(),
                }],
            }],
            ..FileReport::default()
        };
        let p = Policy {
            pull_secret: Some("regcred".into()),
            ..private("registry.corp.local:5000")
        };
        let v = check(&[("any".to_string(), &report)], &p);
        let fired: Vec<(RuleId, Option<&str>)> = rules(&v);
        assert!(
            fired.contains(&(RuleId::GlobalRegistryIgnored, Some("coredns/coredns:1.9.4"))),
            "{v:#?}"
        );
        assert!(fired.contains(&(
            RuleId::JnlpContainerName,
            Some("registry.corp.local:5000/jenkins/inbound-agent:3.1")
        )));
        assert!(fired.contains(&(
            RuleId::MissingPullSecret,
            Some("registry.corp.local:5000/shop/api:1.4")
        )));
        // The plain finding is only a registry question, whatever its context says.
        let plain: Vec<RuleId> = v
            .iter()
            .filter(|v| v.image.as_deref() == Some("quay.io/x/y:1"))
            .map(|v| v.rule)
            .collect();
        assert_eq!(plain, [RuleId::RegistryNotAllowed]);
        assert!(v.iter().all(|v| v.file() == Some("any")));
    }

    #[test]
    fn judge_and_judge_pod_work_on_a_bare_reference_and_pod_without_a_file() {
        let p = Policy {
            deny_latest: true,
            require_digest: true,
            pull_secret: Some("regcred".into()),
            ..private("registry.corp.local:5000")
        };
        let judged: Vec<RuleId> = p.judge(&r("nginx")).iter().map(|j| j.rule).collect();
        assert_eq!(
            judged,
            [
                RuleId::RegistryNotAllowed,
                RuleId::LatestTag,
                RuleId::MissingDigest
            ]
        );
        let pinned = r(
            "registry.corp.local:5000/library/nginx:1.27@sha256:0752ca4e936da012c173c119217c0f9599b3b191c1557e53206d5d06d2627580",
        );
        assert!(p.judge(&pinned).is_empty());
        assert_eq!(
            p.judge(&r("quay.io/x/y:1"))[0].fix,
            "airlock rewrite --write (→ registry.corp.local:5000/x/y:1)"
        );

        // An AdmissionReview's pod: no file, no span; the violation names the object.
        let pod = PodView {
            owner: "Pod ci/agent-x1".into(),
            namespace: Some("ci".into()),
            service_account: Some("jenkins".into()),
            pull_secrets: vec![],
            containers: vec![
                discover::PodContainer {
                    name: Some("agent".into()),
                    role: discover::ContainerRole::Regular,
                    image: "registry.corp.local:5000/jenkins/inbound-agent:3.1".into(),
                },
                discover::PodContainer {
                    name: Some("jnlp".into()),
                    role: discover::ContainerRole::InjectedJnlp,
                    image: discover::DEFAULT_JNLP_IMAGE.into(),
                },
            ],
        };
        let judged = p.judge_pod(&pod, &[]);
        let rules: Vec<(RuleId, Option<usize>)> = judged
            .iter()
            .map(|j| (j.judgement.rule, j.container))
            .collect();
        assert_eq!(
            rules,
            [
                (RuleId::MissingPullSecret, Some(0)),
                (RuleId::JnlpContainerName, Some(0))
            ]
        );
        let account = discover::ServiceAccount {
            name: "jenkins".into(),
            namespace: Some("ci".into()),
            pull_secrets: vec!["regcred".into()],
        };
        assert_eq!(p.judge_pod(&pod, &[&account]).len(), 1);
        let v = judged[0].judgement.clone().at(
            Location::Object {
                kind: "Pod".into(),
                namespace: Some("ci".into()),
                name: "agent-x1".into(),
                path: "spec".into(),
            },
            judged[0].image.clone(),
        );
        assert_eq!(v.file(), None);
        assert_eq!(
            serde_json::to_value(&v.location).unwrap(),
            serde_json::json!({"type": "object", "kind": "Pod", "namespace": "ci", "name": "agent-x1", "path": "spec"})
        );
    }
}
