//! The rules about a pod as a whole — `missing-pull-secret` and `jnlp-container-name` — over a
//! neutral [`PodView`] that a file (through discovery), an AdmissionReview or a live pod can all
//! fill in, so the three callers share one implementation.

use discover::{ContainerRole, PodContainer, ServiceAccount};
use imgref::Reference;

use crate::{Judgement, Policy, RuleId};

/// The ServiceAccount a pod runs as when its spec names none.
const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// A pod as the rules see it: where it runs, its credentials and its containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodView {
    /// How to name the pod in messages: `Deployment shop/api`, `Pod ci/agent-x1`.
    pub owner: String,
    pub namespace: Option<String>,
    /// `spec.serviceAccountName`; `None` means Kubernetes' `default`.
    pub service_account: Option<String>,
    /// `spec.imagePullSecrets[].name`.
    pub pull_secrets: Vec<String>,
    /// Every container, in spec order; for a Jenkins pod template, the `jnlp` container the
    /// plugin injects too ([`ContainerRole::InjectedJnlp`]).
    pub containers: Vec<PodContainer>,
}

/// A rule's verdict on a pod: about one of its containers (by index), or about the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodJudgement {
    pub judgement: Judgement,
    /// The container the verdict is about, an index into [`PodView::containers`].
    pub container: Option<usize>,
    /// The image it names, as written.
    pub image: Option<String>,
}

impl Policy {
    /// Every pod rule: `missing-pull-secret` (looking the ServiceAccount up in `accounts`) and
    /// `jnlp-container-name`.
    pub fn judge_pod(&self, pod: &PodView, accounts: &[&ServiceAccount]) -> Vec<PodJudgement> {
        let mut out: Vec<PodJudgement> = pull_secret(self, pod, accounts).into_iter().collect();
        out.extend(jnlp_container_name(pod));
        out
    }
}

/// `missing-pull-secret`: the first container pulling from the private registry, when neither
/// the pod nor its ServiceAccount (among `accounts`) has the policy's secret. Off when the policy
/// names no secret.
pub(crate) fn pull_secret(
    policy: &Policy,
    pod: &PodView,
    accounts: &[&ServiceAccount],
) -> Option<PodJudgement> {
    let secret = policy.pull_secret.as_deref()?;
    // Templated images cannot be judged; the first private one is the one to name.
    let (index, image) = pod
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| !discover::is_templated(&c.image))
        .find(|(_, c)| Reference::parse(&c.image).is_ok_and(|r| policy.is_private(&r)))
        .map(|(i, c)| (i, &c.image))?;
    let has = |secrets: &[String]| secrets.iter().any(|s| s == secret);
    if has(&pod.pull_secrets) {
        return None;
    }
    let sa_name = pod
        .service_account
        .as_deref()
        .unwrap_or(DEFAULT_SERVICE_ACCOUNT);
    let account = accounts
        .iter()
        .find(|a| a.name == sa_name && a.namespace == pod.namespace);
    if account.is_some_and(|a| has(&a.pull_secrets)) {
        return None;
    }
    let namespace = match &pod.namespace {
        Some(ns) => format!("namespace {ns}"),
        None => "the workload's namespace".to_string(),
    };
    let account_note = match account {
        Some(_) => format!("ServiceAccount {sa_name} in this input has none either"),
        None => format!("ServiceAccount {sa_name} in {namespace} is not in this input"),
    };
    Some(PodJudgement {
        judgement: Judgement {
            rule: RuleId::MissingPullSecret,
            message: format!(
                "{} pulls {image} from the private registry with no imagePullSecret named {secret} on the pod; {account_note}",
                pod.owner
            ),
            fix: format!(
                "add imagePullSecrets: [{{name: {secret}}}] to ServiceAccount {sa_name} in {namespace}"
            ),
        },
        container: Some(index),
        image: Some(image.clone()),
    })
}

/// `jnlp-container-name`: in a pod the Jenkins plugin injects its `jnlp` container into, every
/// other container that runs an agent image (the one the user meant to be `jnlp`).
pub(crate) fn jnlp_container_name(pod: &PodView) -> Vec<PodJudgement> {
    let injected = pod
        .containers
        .iter()
        .any(|c| c.role == ContainerRole::InjectedJnlp);
    if !injected {
        return Vec::new();
    }
    pod.containers
        .iter()
        .enumerate()
        .filter(|(_, c)| c.role != ContainerRole::InjectedJnlp)
        .filter_map(|(i, c)| {
            let name = c.name.as_deref()?;
            let r = Reference::parse(&c.image).ok()?;
            (name != "jnlp" && is_agent_image(r.path())).then(|| PodJudgement {
                judgement: Judgement {
                    rule: RuleId::JnlpContainerName,
                    message: format!(
                        "{} is a Jenkins agent image in container {name:?}; the Kubernetes plugin only \
                         recognises a container named jnlp, so it still injects its default agent",
                        c.image
                    ),
                    fix: format!("rename container {name:?} to jnlp"),
                },
                container: Some(i),
                image: Some(c.image.clone()),
            })
        })
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_images_are_recognised_by_their_last_segment() {
        assert!(
            is_agent_image("jenkins/jnlp-slave")
                && is_agent_image("jenkins/agent")
                && is_agent_image("jenkinsciinfra/jenkins-agent-ubuntu-22.04")
                && !is_agent_image("maven")
        );
    }
}
