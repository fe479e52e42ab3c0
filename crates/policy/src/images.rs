//! Rules about each image on its own: where it is pulled from (taking a Helm
//! `global.imageRegistry` or a k0s `spec.images.repository` into account, since those change
//! what is pulled without changing what is written), whether its version is pinned, and images
//! nobody wrote down.

use discover::{FileReport, Finding, Kind, PartRole, Source};
use imgref::Reference;

use crate::{Judgement, Location, Policy, RuleId, Violation, in_registry, unversioned};

pub(crate) fn check_file(
    file: &str,
    report: &FileReport,
    policy: &Policy,
    out: &mut Vec<Violation>,
) {
    for f in &report.findings {
        // Templated values are counted separately; built images are never pulled.
        let Some(r) = f.reference.as_ref().filter(|_| f.kind.is_pullable()) else {
            continue;
        };
        let mut push = |j: Judgement| {
            out.push(j.at(
                Location::File {
                    file: file.to_string(),
                    span: f.span.clone(),
                },
                Some(f.image.clone()),
            ));
        };
        if f.kind == Kind::Implicit {
            // Only the registry matters here: the version is the plugin's own pin, and the way to
            // change it (a `jnlp` container) is what `jnlp-container-name` is about.
            if let Some(j) = implicit(f, r, policy) {
                push(j);
            }
            continue;
        }
        if let Some(j) = registry(f, r, policy) {
            push(j);
        }
        version(r, policy).into_iter().for_each(push);
    }
}

/// `latest-tag` and `missing-digest`, as the policy asks.
pub(crate) fn version(r: &Reference, policy: &Policy) -> Vec<Judgement> {
    let mut out = Vec::new();
    if policy.deny_latest {
        let message = match (r.tag(), r.digest()) {
            (Some("latest"), _) => Some(format!(
                "{r} uses the `latest` tag, which moves: the mirror and the cluster drift apart"
            )),
            (None, None) => Some(format!("{r} has no tag, so it pulls `latest`, which moves")),
            _ => None,
        };
        if let Some(message) = message {
            out.push(Judgement {
                rule: RuleId::LatestTag,
                message,
                fix: format!("pin a version: {}:<version>", unversioned(r)),
            });
        }
    }
    if policy.require_digest && r.digest().is_none() {
        out.push(Judgement {
            rule: RuleId::MissingDigest,
            message: format!(
                "{r} is not pinned to a digest, so what it pulls can change under the same name"
            ),
            fix: "run `airlock lock`, then `airlock rewrite --pin --write` (or append @sha256:… by hand)"
                .to_string(),
        });
    }
    out
}

/// The registry rule for a written (or composed) image: `registry-not-allowed`, or
/// `global-registry-ignored` where a file-wide registry setting should have moved it.
fn registry(f: &Finding, r: &Reference, policy: &Policy) -> Option<Judgement> {
    if let Some(repository) = f.site.k0s_repository.as_deref() {
        // k0s pulls the image with its repository applied, not as written.
        let effective = mapping::k0s_pulls(r, repository).ok()?;
        if policy.is_allowed(&effective)? {
            return None;
        }
        return Some(Judgement {
            rule: RuleId::GlobalRegistryIgnored,
            message: format!(
                "k0s pulls {effective} (spec.images.repository {repository} applied to {r}), which is not in an allowed registry ({})",
                policy.allowed_list()
            ),
            fix: format!(
                "set spec.images.repository: {}",
                policy.suggested_registry()
            ),
        });
    }
    if let Some(global) = f.site.helm_global_registry.as_deref()
        && !has_global_part(f)
        && !in_registry(r, global)
        && policy.is_allowed(r) != Some(true)
    {
        return Some(Judgement {
            rule: RuleId::GlobalRegistryIgnored,
            message: format!(
                "global.imageRegistry is {global}, but this image is not composed with it, so {r} is still pulled from {}",
                r.registry()
            ),
            fix: match policy.private.as_ref().and_then(|m| m.map(r).ok()) {
                Some(mapped) => format!("airlock rewrite --write (→ {mapped})"),
                None => format!("write it under {global}/"),
            },
        });
    }
    registry_not_allowed(r, policy)
}

/// `registry-not-allowed` for one reference; `None` when allowed or when no registry is set.
pub(crate) fn registry_not_allowed(r: &Reference, policy: &Policy) -> Option<Judgement> {
    if policy.is_allowed(r)? {
        return None;
    }
    Some(Judgement {
        rule: RuleId::RegistryNotAllowed,
        message: format!(
            "{r} is pulled from {}, which is not an allowed registry ({})",
            r.registry(),
            policy.allowed_list()
        ),
        fix: not_allowed_fix(r, policy),
    })
}

fn not_allowed_fix(r: &Reference, policy: &Policy) -> String {
    match policy.private.as_ref().map(|m| m.map(r)) {
        Some(Ok(mapped)) if policy.is_allowed(&mapped) == Some(true) => {
            format!("airlock rewrite --write (→ {mapped})")
        }
        _ => format!(
            "mirror it to {} and point the reference there",
            policy.suggested_registry()
        ),
    }
}

/// The implicit `jnlp` agent image, when it comes from a registry that is not allowed.
fn implicit(f: &Finding, r: &Reference, policy: &Policy) -> Option<Judgement> {
    if policy.is_allowed(r)? {
        return None;
    }
    // The private name comes from the mapping and the setting from the function `rewrite
    // --fix-implicit` writes with, so the hint names the place the fix will put the image. With
    // an allow-list and no mapping there is no private name, only the registry to use.
    let setting = f.parts.iter().find(|p| p.role == PartRole::Registry);
    let mapped = policy.private.as_ref().and_then(|m| m.map(r).ok());
    let jnlpregistry = match &mapped {
        Some(mapped) => {
            mapping::setting_prefix(&f.image, setting.map(|p| p.value.as_str()), mapped)
        }
        None => Some(policy.suggested_registry().to_string()),
    };
    let fix = match (f.source, jnlpregistry, &mapped) {
        (Source::Jcasc, Some(target), _) => {
            let how = match setting {
                Some(_) => "",
                None => " (airlock rewrite --fix-implicit --write)",
            };
            format!("set jnlpregistry: {target} on this Kubernetes cloud{how}")
        }
        (Source::Jcasc, None, Some(mapped)) => format!(
            "{r} maps to {mapped}, which jnlpregistry cannot express: add a container named jnlp with image {mapped}"
        ),
        (_, _, Some(mapped)) => format!(
            "add a container named jnlp with image {mapped} (airlock rewrite --fix-implicit --write)"
        ),
        (_, target, None) => format!(
            "add a container named jnlp with a mirrored agent image, or set jnlpregistry: {} on the Jenkins Kubernetes cloud",
            target.as_deref().unwrap_or("<private registry>")
        ),
    };
    Some(Judgement {
        rule: RuleId::ImplicitImage,
        message: format!(
            "the Jenkins Kubernetes plugin injects {r} as the jnlp container here, from {}, which is not an allowed registry ({})",
            r.registry(),
            policy.allowed_list()
        ),
        fix,
    })
}

/// Whether the chart composes this image with the global registry (discovery lists the global
/// as a part of exactly those).
fn has_global_part(f: &Finding) -> bool {
    f.parts
        .iter()
        .any(|p| p.role == PartRole::GlobalRegistry && !p.value.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  template:
    spec:
      containers:
        - name: api
          image: registry.corp.local:5000/mirror/shop/api:1.4
        - name: proxy
          image: nginx
        - name: tool
          image: quay.io/x/tool:latest@sha256:0752ca4e936da012c173c119217c0f9599b3b191c1557e53206d5d06d2627580
";

    #[test]
    fn registry_not_allowed_names_the_registry_and_the_rewrite() {
        let v = run(
            &[("d.yaml", DEPLOYMENT)],
            &private("registry.corp.local:5000/mirror"),
        );
        assert_eq!(
            rules(&v),
            [
                (RuleId::RegistryNotAllowed, Some("nginx")),
                (
                    RuleId::RegistryNotAllowed,
                    Some(
                        "quay.io/x/tool:latest@sha256:0752ca4e936da012c173c119217c0f9599b3b191c1557e53206d5d06d2627580"
                    )
                ),
            ]
        );
        assert_eq!(
            v[0].message,
            "nginx is pulled from docker.io, which is not an allowed registry (registry.corp.local:5000/mirror)"
        );
        assert_eq!(
            v[0].fix,
            "airlock rewrite --write (→ registry.corp.local:5000/mirror/library/nginx)"
        );
        assert_eq!(&DEPLOYMENT[v[0].span().unwrap()], "nginx");
    }

    #[test]
    fn an_allow_list_replaces_the_mapping_target() {
        let p = Policy {
            allow_registries: vec!["quay.io/x".into(), "docker.io".into()],
            ..private("registry.corp.local:5000/mirror")
        };
        let v = run(&[("d.yaml", DEPLOYMENT)], &p);
        assert_eq!(
            rules(&v),
            [(
                RuleId::RegistryNotAllowed,
                Some("registry.corp.local:5000/mirror/shop/api:1.4")
            )]
        );
        // The mapped name is not allowed either, so rewriting would not help.
        assert_eq!(
            v[0].fix,
            "mirror it to registry.corp.local:5000/mirror and point the reference there"
        );
    }

    #[test]
    fn latest_and_missing_tags_are_flagged_when_denied() {
        let p = Policy {
            deny_latest: true,
            ..Policy::default()
        };
        let v = run(&[("d.yaml", DEPLOYMENT)], &p);
        assert_eq!(rules(&v)[0], (RuleId::LatestTag, Some("nginx")));
        assert_eq!(
            v[0].message,
            "nginx has no tag, so it pulls `latest`, which moves"
        );
        assert_eq!(v[0].fix, "pin a version: nginx:<version>");
        assert_eq!(v[1].rule, RuleId::LatestTag);
        assert_eq!(v[1].fix, "pin a version: quay.io/x/tool:<version>");
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn digests_are_required_only_when_asked() {
        let p = Policy {
            require_digest: true,
            ..Policy::default()
        };
        let v = run(&[("d.yaml", DEPLOYMENT)], &p);
        assert_eq!(
            rules(&v),
            [
                (
                    RuleId::MissingDigest,
                    Some("registry.corp.local:5000/mirror/shop/api:1.4")
                ),
                (RuleId::MissingDigest, Some("nginx")),
            ]
        );
    }

    const CASC: &str = "\
jenkins:
  clouds:
    - kubernetes:
        name: k8s
        templates:
          - name: maven
            containers:
              - name: maven
                image: registry.corp.local:5000/library/maven:3.9
";

    #[test]
    fn an_implicit_jnlp_image_outside_the_private_registry_is_flagged_once() {
        let p = Policy {
            deny_latest: true,
            require_digest: true,
            ..private("registry.corp.local:5000")
        };
        let v = run(&[("casc.yaml", CASC)], &p);
        let implicit: Vec<_> = v
            .iter()
            .filter(|v| v.rule == RuleId::ImplicitImage)
            .collect();
        assert_eq!(implicit.len(), 1, "{v:?}");
        assert_eq!(
            implicit[0].image.as_deref(),
            Some(discover::DEFAULT_JNLP_IMAGE)
        );
        assert_eq!(
            implicit[0].fix,
            "set jnlpregistry: registry.corp.local:5000 on this Kubernetes cloud (airlock rewrite --fix-implicit --write)"
        );
        assert!(
            !v.iter()
                .any(|v| v.image.as_deref() == Some(discover::DEFAULT_JNLP_IMAGE)
                    && v.rule != RuleId::ImplicitImage)
        );

        let fixed = CASC.replace(
            "        name: k8s\n",
            "        name: k8s\n        jnlpregistry: registry.corp.local:5000\n",
        );
        let v = run(
            &[("casc.yaml", &fixed)],
            &private("registry.corp.local:5000"),
        );
        assert!(v.is_empty(), "{v:?}");
    }

    const VALUES: &str = "\
global:
  imageRegistry: registry.corp.local:5000
controller:
  image:
    registry: docker.io
    repository: bitnami/nginx
    tag: \"1.25\"
sidecar:
  image: quay.io/prometheus/busybox:1
worker:
  Image: registry.corp.local:5000/x/y
  ImageTag: \"2\"
";

    #[test]
    fn a_helm_image_the_global_registry_does_not_reach_is_named() {
        let v = run(&[("values.yaml", VALUES)], &Policy::default());
        assert_eq!(
            rules(&v),
            [(
                RuleId::GlobalRegistryIgnored,
                Some("quay.io/prometheus/busybox:1")
            )]
        );
        assert_eq!(
            v[0].message,
            "global.imageRegistry is registry.corp.local:5000, but this image is not composed with it, so \
             quay.io/prometheus/busybox:1 is still pulled from quay.io"
        );
        assert_eq!(v[0].fix, "write it under registry.corp.local:5000/");

        // An allowed image that merely sits elsewhere is not a problem.
        let p = Policy {
            allow_registries: vec!["registry.corp.local:5000".into(), "quay.io".into()],
            ..Policy::default()
        };
        assert!(run(&[("values.yaml", VALUES)], &p).is_empty());
        // Without a global setting the same image is only a registry question.
        let plain = VALUES.replace(
            "  imageRegistry: registry.corp.local:5000\n",
            "  imageRegistry: \"\"\n",
        );
        let v = run(
            &[("values.yaml", &plain)],
            &private("registry.corp.local:5000"),
        );
        assert_eq!(
            rules(&v),
            [
                (
                    RuleId::RegistryNotAllowed,
                    Some("docker.io/bitnami/nginx:1.25")
                ),
                (
                    RuleId::RegistryNotAllowed,
                    Some("quay.io/prometheus/busybox:1")
                ),
            ]
        );
    }

    const K0S: &str = "\
apiVersion: k0s.k0sproject.io/v1beta1
kind: ClusterConfig
metadata: {name: k0s}
spec:
  images:
    repository: registry.corp.local:5000
    konnectivity:
      image: quay.io/k0sproject/apiserver-network-proxy-agent
      version: 0.0.32-k0s1
    coredns:
      image: coredns/coredns
      version: 1.9.4
    pushgateway:
      image: registry.corp.local:5000/k0sproject/pushgateway-ttl
      version: 1.4.0-k0s.0
";

    #[test]
    fn k0s_images_are_judged_after_the_repository_rule() {
        let r = |s: &str| Reference::parse(s).unwrap();
        let effective = |s: &str| {
            mapping::k0s_pulls(&r(s), "registry.corp.local:5000")
                .unwrap()
                .to_string()
        };
        assert_eq!(
            effective("quay.io/k0sproject/coredns:1.7.0"),
            "registry.corp.local:5000/k0sproject/coredns:1.7.0"
        );
        assert_eq!(
            effective("calico/cni:v3.24.5"),
            "registry.corp.local:5000/calico/cni:v3.24.5"
        );
        assert_eq!(
            effective("registry.corp.local:5000/x:1"),
            "registry.corp.local:5000/x:1"
        );

        assert!(run(&[("k0s.yaml", K0S)], &private("registry.corp.local:5000")).is_empty());
        let v = run(&[("k0s.yaml", K0S)], &private("mirror.corp.local"));
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(v.iter().all(|v| v.rule == RuleId::GlobalRegistryIgnored));
        assert_eq!(
            v[0].message,
            "k0s pulls registry.corp.local:5000/k0sproject/apiserver-network-proxy-agent:0.0.32-k0s1 \
             (spec.images.repository registry.corp.local:5000 applied to \
             quay.io/k0sproject/apiserver-network-proxy-agent:0.0.32-k0s1), which is not in an allowed \
             registry (mirror.corp.local)"
        );
        assert_eq!(v[0].fix, "set spec.images.repository: mirror.corp.local");

        // Without a repository, the written images are what k0s pulls.
        let plain = K0S.replace("    repository: registry.corp.local:5000\n", "");
        let v = run(
            &[("k0s.yaml", &plain)],
            &private("registry.corp.local:5000"),
        );
        assert_eq!(
            rules(&v),
            [
                (
                    RuleId::RegistryNotAllowed,
                    Some("quay.io/k0sproject/apiserver-network-proxy-agent:0.0.32-k0s1")
                ),
                (RuleId::RegistryNotAllowed, Some("coredns/coredns:1.9.4")),
            ]
        );
    }
}
