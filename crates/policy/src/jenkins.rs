//! `jnlp-container-name`: a Jenkins pod template that runs an agent image in a container not
//! named `jnlp`. The Kubernetes plugin recognises the agent container by name only, so it still
//! injects its default `jnlp` container (from Docker Hub) next to the custom one — the image
//! nobody mirrored, and an ImagePullBackOff in an offline cluster.
//!
//! Discovery already reports the injected container as an implicit finding for every template
//! without a `jnlp` container; this rule looks in exactly those templates for a container whose
//! image is an agent, since that is the container the user meant to be `jnlp`.

use std::collections::BTreeMap;

use discover::{ContainerRole, FileReport, Finding, Kind, PodContainer, PodRef};

use crate::{Location, PodView, Violation, pods};

pub(crate) fn check_file(file: &str, report: &FileReport, out: &mut Vec<Violation>) {
    // The containers of each pod template the plugin injects a `jnlp` container into.
    let mut pods: BTreeMap<PodRef, Vec<&Finding>> = BTreeMap::new();
    for f in &report.findings {
        let (Some(pod), Some(c)) = (f.site.pod, &f.site.container) else {
            continue;
        };
        let pulled = f.kind.is_pullable() && f.reference.is_some();
        let injected = f.kind == Kind::Implicit && c.role == ContainerRole::InjectedJnlp;
        if injected || (pulled && f.kind != Kind::Implicit) {
            pods.entry(pod).or_default().push(f);
        }
    }
    for findings in pods.values() {
        let view = PodView {
            containers: findings
                .iter()
                .map(|f| {
                    let c = f.site.container.as_ref().expect("grouped by container");
                    PodContainer {
                        name: c.name.clone(),
                        role: c.role,
                        image: f.image.clone(),
                    }
                })
                .collect(),
            ..PodView::default()
        };
        for j in pods::jnlp_container_name(&view) {
            let Some(f) = j.container.map(|i| findings[i]) else {
                continue;
            };
            out.push(j.judgement.at(
                Location::File {
                    file: file.to_string(),
                    span: f.span.clone(),
                },
                j.image,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Policy;
    use crate::RuleId;
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
        assert_eq!(
            v[0].span().unwrap().start,
            CASC.find("jenkins/inbound-agent").unwrap()
        );
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
}
