//! `jnlp-container-name`: a Jenkins pod template that runs an agent image in a container not
//! named `jnlp`. The Kubernetes plugin recognises the agent container by name only, so it still
//! injects its default `jnlp` container (from Docker Hub) next to the custom one — the image
//! nobody mirrored, and an ImagePullBackOff in an offline cluster.
//!
//! Discovery already reports the injected container as an implicit finding for every template
//! without a `jnlp` container; this rule looks in exactly those templates for a container whose
//! image is an agent, since that is the container the user meant to be `jnlp`.

use discover::{FileReport, Kind, Source};

use crate::{RuleId, Violation};

/// Where a container's part of a finding context starts, after the pod template's own part: JCasC
/// (`templates[maven].containers[agent].image`, `templates[raw].yaml › …`) and Jenkinsfiles
/// (`podTemplate › containerTemplate(name: agent).image`, `podTemplate yaml › …`).
const CONTAINER_MARKERS: &[&str] = &[
    ".containers[",
    ".yaml › ",
    " › containerTemplate(",
    " › jnlp (injected",
    " yaml › ",
];

/// Repository names (last path segment) of the Jenkins agent images that connect over JNLP /
/// WebSocket, official and common derivatives (`jenkins/inbound-agent`, `jenkins/jnlp-slave`,
/// `jenkinsciinfra/jenkins-agent-ubuntu-22.04`, `…/agent`).
fn is_agent_image(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "agent"
        || name.contains("jnlp")
        || name.contains("inbound-agent")
        || name.starts_with("jenkins-agent")
        || name.starts_with("jenkins-slave")
}

pub(crate) fn check_file(file: &str, report: &FileReport, out: &mut Vec<Violation>) {
    let injected: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| {
            f.kind == Kind::Implicit && matches!(f.source, Source::Jcasc | Source::Jenkinsfile)
        })
        .filter_map(|f| template_of(&f.context))
        .collect();
    if injected.is_empty() {
        return;
    }
    for f in &report.findings {
        let Some(r) = f
            .reference
            .as_ref()
            .filter(|_| f.kind != Kind::Implicit && f.kind.is_pullable())
        else {
            continue;
        };
        let Some(template) = template_of(&f.context) else {
            continue;
        };
        let Some(container) = container_of(&f.context) else {
            continue;
        };
        if container == "jnlp" || !is_agent_image(r.path()) || !injected.contains(&template) {
            continue;
        }
        out.push(Violation {
            rule: RuleId::JnlpContainerName,
            file: file.to_string(),
            span: f.span.clone(),
            image: Some(f.image.clone()),
            message: format!(
                "{} is a Jenkins agent image in container {container:?}; the Kubernetes plugin only \
                 recognises a container named jnlp, so it still injects its default agent",
                f.image
            ),
            fix: format!("rename container {container:?} to jnlp"),
        });
    }
}

/// The pod template part of a context, shared by its containers and its injected `jnlp`.
fn template_of(context: &str) -> Option<&str> {
    let end = CONTAINER_MARKERS
        .iter()
        .filter_map(|m| context.find(m))
        .min()?;
    Some(context[..end].trim_end())
}

/// The container's name: the last `containers[NAME]` or `containerTemplate(name: NAME)`.
fn container_of(context: &str) -> Option<&str> {
    let bracket = context.rfind("containers[").map(|i| {
        let rest = &context[i + "containers[".len()..];
        (i, rest.split(']').next().unwrap_or(rest))
    });
    let template = context.rfind("containerTemplate(name: ").map(|i| {
        let rest = &context[i + "containerTemplate(name: ".len()..];
        (i, rest.split(')').next().unwrap_or(rest))
    });
    match (bracket, template) {
        (Some(a), Some(b)) => Some(if a.0 > b.0 { a.1 } else { b.1 }),
        (a, b) => a.or(b).map(|(_, name)| name),
    }
    .map(|name| name.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;
    use crate::test_support::*;

    const CASC: &str = "\
jenkins:
  clouds:
    - kubernetes:
        name: k8s
        templates:
          - name: maven
            containers:
              - name: agent
                image: jenkins/inbound-agent:4.10-2
              - name: maven
                image: maven:3.9
          - name: good
            containers:
              - name: jnlp
                image: jenkins/inbound-agent:4.10-2
          - name: raw
            yaml: |
              apiVersion: v1
              kind: Pod
              spec:
                containers:
                  - name: agent
                    image: jenkinsciinfra/jenkins-agent-ubuntu-22.04:2.127.0
";

    #[test]
    fn agent_images_outside_a_jnlp_container_are_flagged_in_jcasc() {
        let v = run(&[("casc.yaml", CASC)], &Policy::default());
        assert_eq!(
            rules(&v),
            [
                (
                    RuleId::JnlpContainerName,
                    Some("jenkins/inbound-agent:4.10-2")
                ),
                (
                    RuleId::JnlpContainerName,
                    Some("jenkinsciinfra/jenkins-agent-ubuntu-22.04:2.127.0")
                ),
            ]
        );
        assert_eq!(v[0].fix, "rename container \"agent\" to jnlp");
        assert_eq!(v[0].span.start, CASC.find("jenkins/inbound-agent").unwrap());
    }

    #[test]
    fn agent_images_outside_a_jnlp_container_are_flagged_in_jenkinsfiles() {
        let jenkinsfile = "\
podTemplate(containers: [
  containerTemplate(name: 'agent', image: 'jenkins/inbound-agent:4.10-2'),
  containerTemplate(name: 'maven', image: 'maven:3.9')
]) {
  node(POD_LABEL) { sh 'ls' }
}
";
        let v = run(&[("Jenkinsfile", jenkinsfile)], &Policy::default());
        assert_eq!(
            rules(&v),
            [(
                RuleId::JnlpContainerName,
                Some("jenkins/inbound-agent:4.10-2")
            )]
        );
        let fixed = jenkinsfile.replace("name: 'agent'", "name: 'jnlp'");
        assert!(run(&[("Jenkinsfile", &fixed)], &Policy::default()).is_empty());
    }

    #[test]
    fn contexts_split_into_template_and_container() {
        let c = "ConfigMap x › data[\"jenkins.yaml\"] › jenkins.clouds[k].kubernetes.templates[go].containers[go].image";
        assert_eq!(
            template_of(c),
            Some(
                "ConfigMap x › data[\"jenkins.yaml\"] › jenkins.clouds[k].kubernetes.templates[go]"
            )
        );
        assert_eq!(container_of(c), Some("go"));
        assert_eq!(
            template_of("podTemplate yaml › Pod › spec.containers[docker].image"),
            Some("podTemplate")
        );
        assert_eq!(
            template_of("podTemplate › jnlp (injected by the Kubernetes plugin)"),
            Some("podTemplate")
        );
        assert_eq!(
            container_of("podTemplate › containerTemplate(name: maven).image"),
            Some("maven")
        );
        assert_eq!(container_of("values › sidecar.image"), None);
        assert!(
            is_agent_image("jenkins/jnlp-slave")
                && is_agent_image("jenkins/agent")
                && !is_agent_image("maven")
        );
    }
}
