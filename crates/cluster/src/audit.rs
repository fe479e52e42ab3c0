//! `airlock audit`: what a live cluster really runs. Every container of every pod (containers,
//! initContainers, ephemeralContainers) with the image its spec names, the image ID the runtime
//! reports, the registry that came from, the shared policy's verdict and the lock file's digest;
//! the namespaces and ServiceAccounts that lack the pull secret; pods that cannot pull. The rules
//! are `policy::Policy`'s (`judge` per image, `judge_pod` per pod): this module only reads the
//! cluster and fills in the neutral views the policy takes.

use std::collections::BTreeMap;

use discover::{ContainerRole, PodContainer};
use imgref::Reference;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, Secret, ServiceAccount};
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::{Client, Error, list_all};

/// Waiting reasons the kubelet gives a container whose image cannot be pulled.
const PULL_FAILURES: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// What `audit` found; the JSON output is this, field for field.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub containers: Vec<ContainerRow>,
    /// Verdicts about a pod as a whole rather than one of its containers.
    pub pod_violations: Vec<PodViolation>,
    pub pull_failures: Vec<PullFailure>,
    pub namespaces: Vec<NamespaceRow>,
    /// What the credentials could not read; the rest was still audited.
    pub unreadable: Vec<Unreadable>,
}

/// One container of one pod.
#[derive(Debug, Serialize)]
pub struct ContainerRow {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// `container`, `init` or `ephemeral`.
    pub role: &'static str,
    /// The image the spec names.
    pub image: String,
    /// `status.*ContainerStatuses[].imageID`: what the runtime resolved it to; absent until the
    /// container has been pulled.
    pub image_id: Option<String>,
    /// The registry it came from: the one in the image ID when it names one, else the spec's.
    pub registry: Option<String>,
    /// The manifest digest in the image ID (`name@sha256:…`); absent when the runtime reports
    /// only a local image ID.
    pub digest: Option<String>,
    /// The policy's verdicts on this container; empty means it passes.
    pub violations: Vec<policy::Judgement>,
    pub lock: LockState,
    /// Why the spec's image could not be read as a reference, when it could not.
    pub invalid: Option<String>,
}

/// The running digest against the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum LockState {
    /// No lock file was given.
    NotChecked,
    /// The lock file has no entry for the image.
    NotLocked,
    /// The runtime reports no manifest digest to compare (not pulled yet, or a local image).
    Unknown {
        locked: String,
    },
    Match {
        digest: String,
    },
    Mismatch {
        locked: String,
        running: String,
    },
}

#[derive(Debug, Serialize)]
pub struct PodViolation {
    pub namespace: String,
    pub pod: String,
    #[serde(flatten)]
    pub judgement: policy::Judgement,
}

/// A container waiting because its image cannot be pulled.
#[derive(Debug, Serialize)]
pub struct PullFailure {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub image: String,
    /// `ImagePullBackOff`, `ErrImagePull`, …
    pub reason: String,
    /// The kubelet's message: which registry said what.
    pub message: Option<String>,
}

/// One audited namespace.
#[derive(Debug, Serialize)]
pub struct NamespaceRow {
    pub name: String,
    pub pods: usize,
    /// Whether the policy's pull secret exists here.
    pub pull_secret: SecretState,
    /// ServiceAccounts that pods here run as and that lack the pull secret.
    pub service_accounts_missing_pull_secret: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretState {
    /// The policy names no pull secret.
    NotChecked,
    Present,
    Missing,
    /// The credentials may not read Secrets here.
    Forbidden,
}

/// A resource the credentials could not read in a namespace.
#[derive(Debug, Serialize)]
pub struct Unreadable {
    pub namespace: String,
    pub resource: &'static str,
    pub code: u16,
    pub message: String,
}

/// The lock file as audit needs it: acceptable digests (the reference's own and each
/// platform's) by image, under the name written in the lock and the private name the policy's
/// mapping gives it, since a rewritten pod runs the mirrored copy of the same digest.
#[derive(Debug, Default)]
pub struct LockIndex {
    digests: BTreeMap<String, Vec<String>>,
}

impl LockIndex {
    /// `entries` are (image, digests) with the reference's own digest first.
    pub fn new(
        entries: impl IntoIterator<Item = (String, Vec<String>)>,
        p: &policy::Policy,
    ) -> Self {
        let mut digests = BTreeMap::new();
        for (image, ds) in entries {
            let Ok(r) = Reference::parse(&image) else {
                continue;
            };
            if let Some(private) = p.private.as_ref().and_then(|m| m.map(&r).ok()) {
                digests.insert(lock_key(&private), ds.clone());
            }
            digests.insert(lock_key(&r), ds);
        }
        LockIndex { digests }
    }

    fn state(&self, image: &Reference, running: Option<&str>) -> LockState {
        let Some(locked) = self.digests.get(&lock_key(image)) else {
            return LockState::NotLocked;
        };
        let first = locked.first().cloned().unwrap_or_default();
        match running {
            None => LockState::Unknown { locked: first },
            Some(d) if locked.iter().any(|l| l == d) => LockState::Match { digest: d.into() },
            Some(d) => LockState::Mismatch {
                locked: first,
                running: d.into(),
            },
        }
    }
}

/// How an image is looked up in the lock: its normalised name with the tag people write, or
/// its digest when it has no tag.
fn lock_key(r: &Reference) -> String {
    let n = r.normalized();
    match n.tag() {
        Some(tag) => format!("{}:{tag}", n.name()),
        None => n.to_string(),
    }
}

impl Report {
    /// Whether anything fails: a policy verdict, a digest that is not the locked one, or an
    /// image that cannot be pulled.
    pub fn failed(&self) -> bool {
        !self.pod_violations.is_empty()
            || !self.pull_failures.is_empty()
            || self
                .containers
                .iter()
                .any(|c| !c.violations.is_empty() || matches!(c.lock, LockState::Mismatch { .. }))
    }
}

/// What to audit and against what.
pub struct Audit<'a> {
    pub policy: &'a policy::Policy,
    /// `None`: no lock file given.
    pub lock: Option<&'a LockIndex>,
    /// Items per list request.
    pub page: u32,
}

impl Audit<'_> {
    /// Audit `namespaces` one by one. A namespace whose pods cannot be read is recorded in
    /// [`Report::unreadable`] and the others are still audited; any other failure ends the audit.
    pub async fn run(&self, client: &Client, namespaces: &[String]) -> Result<Report, Error> {
        let mut report = Report::default();
        for ns in namespaces {
            self.namespace(client, ns, &mut report).await?;
        }
        Ok(report)
    }

    async fn namespace(&self, client: &Client, ns: &str, report: &mut Report) -> Result<(), Error> {
        let forbidden = |resource, e: &Error| match e {
            Error::Api { code, message, .. } if e.is_forbidden() => Some(Unreadable {
                namespace: ns.into(),
                resource,
                code: *code,
                message: message.clone(),
            }),
            _ => None,
        };
        let pods_api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let pods = match list_all(
            &pods_api,
            ListParams::default(),
            self.page,
            &format!("pods in {ns}"),
        )
        .await
        {
            Ok(p) => p,
            Err(e) => match forbidden("pods", &e) {
                Some(u) => {
                    report.unreadable.push(u);
                    return Ok(());
                }
                None => return Err(e),
            },
        };
        let sa_api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
        let accounts = match list_all(
            &sa_api,
            ListParams::default(),
            self.page,
            &format!("serviceaccounts in {ns}"),
        )
        .await
        {
            Ok(a) => Some(a.iter().map(|a| view_account(ns, a)).collect::<Vec<_>>()),
            Err(e) => {
                report
                    .unreadable
                    .push(forbidden("serviceaccounts", &e).ok_or(e)?);
                None
            }
        };
        let pull_secret = match &self.policy.pull_secret {
            None => SecretState::NotChecked,
            Some(name) => {
                let api: Api<Secret> = Api::namespaced(client.clone(), ns);
                // Metadata only: the audit has no business fetching the credentials it checks for.
                match api.get_metadata_opt(name).await {
                    Ok(Some(_)) => SecretState::Present,
                    Ok(None) => SecretState::Missing,
                    Err(e) => {
                        let e = Error::from_kube("get", format!("Secret {ns}/{name}"), e);
                        report.unreadable.push(forbidden("secrets", &e).ok_or(e)?);
                        SecretState::Forbidden
                    }
                }
            }
        };
        // Without the ServiceAccounts, "has no pull secret" cannot be told from "not read": the
        // pull-secret rule is left out rather than guessed.
        let unread_accounts;
        let pod_policy = match &accounts {
            Some(_) => self.policy,
            None => {
                unread_accounts = policy::Policy {
                    pull_secret: None,
                    ..self.policy.clone()
                };
                &unread_accounts
            }
        };
        let account_refs: Vec<&discover::ServiceAccount> = accounts.iter().flatten().collect();
        let mut missing_sa = std::collections::BTreeSet::new();
        for pod in &pods {
            if self.pod(pod, ns, pod_policy, &account_refs, report) {
                missing_sa.insert(pod_service_account(pod));
            }
        }
        report.namespaces.push(NamespaceRow {
            name: ns.into(),
            pods: pods.len(),
            pull_secret,
            service_accounts_missing_pull_secret: missing_sa.into_iter().collect(),
        });
        Ok(())
    }

    /// One pod: a row per container with `judge`'s verdicts, `judge_pod`'s verdicts placed on
    /// the container they name, pull failures, and the lock state. True when the pod lacks the
    /// pull secret (`missing-pull-secret`), so its ServiceAccount is one to fix.
    fn pod(
        &self,
        pod: &Pod,
        ns: &str,
        pod_policy: &policy::Policy,
        accounts: &[&discover::ServiceAccount],
        report: &mut Report,
    ) -> bool {
        let name = pod_name(pod);
        let spec = pod.spec.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        // (name, role, image) in spec order, and each role's statuses.
        let mut containers: Vec<(String, ContainerRole, String)> = Vec::new();
        for c in spec.init_containers.iter().flatten() {
            containers.push((
                c.name.clone(),
                ContainerRole::Init,
                c.image.clone().unwrap_or_default(),
            ));
        }
        for c in &spec.containers {
            containers.push((
                c.name.clone(),
                ContainerRole::Regular,
                c.image.clone().unwrap_or_default(),
            ));
        }
        for c in spec.ephemeral_containers.iter().flatten() {
            containers.push((
                c.name.clone(),
                ContainerRole::Ephemeral,
                c.image.clone().unwrap_or_default(),
            ));
        }
        let statuses = |role: ContainerRole| -> &[ContainerStatus] {
            match role {
                ContainerRole::Init => status.init_container_statuses.as_deref(),
                ContainerRole::Ephemeral => status.ephemeral_container_statuses.as_deref(),
                _ => status.container_statuses.as_deref(),
            }
            .unwrap_or_default()
        };
        let view = policy::PodView {
            owner: format!("Pod {ns}/{name}"),
            namespace: Some(ns.into()),
            service_account: Some(pod_service_account(pod)),
            pull_secrets: spec
                .image_pull_secrets
                .iter()
                .flatten()
                .map(|s| s.name.clone())
                .collect(),
            containers: containers
                .iter()
                .map(|(n, role, image)| PodContainer {
                    name: Some(n.clone()),
                    role: *role,
                    image: image.clone(),
                })
                .collect(),
        };
        let mut pod_verdicts: Vec<Vec<policy::Judgement>> = vec![Vec::new(); containers.len()];
        let judged = pod_policy.judge_pod(&view, accounts);
        let lacks_secret = judged
            .iter()
            .any(|j| j.judgement.rule == policy::RuleId::MissingPullSecret);
        for j in judged {
            match j.container.and_then(|i| pod_verdicts.get_mut(i)) {
                Some(v) => v.push(j.judgement),
                None => report.pod_violations.push(PodViolation {
                    namespace: ns.into(),
                    pod: name.clone(),
                    judgement: j.judgement,
                }),
            }
        }
        for ((cname, role, image), pod_verdicts) in containers.into_iter().zip(pod_verdicts) {
            let st = statuses(role).iter().find(|s| s.name == cname);
            if let Some(waiting) = st.and_then(|s| s.state.as_ref()?.waiting.as_ref()) {
                let reason = waiting.reason.as_deref().unwrap_or_default();
                if PULL_FAILURES.contains(&reason) {
                    report.pull_failures.push(PullFailure {
                        namespace: ns.into(),
                        pod: name.clone(),
                        container: cname.clone(),
                        image: image.clone(),
                        reason: reason.into(),
                        message: waiting.message.clone(),
                    });
                }
            }
            let image_id = st.map(|s| s.image_id.clone()).filter(|i| !i.is_empty());
            let (id_name, digest) = image_id.as_deref().map(split_image_id).unwrap_or_default();
            let parsed = Reference::parse(&image);
            let registry = id_name
                .and_then(|n| Reference::parse(n).ok())
                .or_else(|| parsed.clone().ok())
                .map(|r| r.registry().to_string());
            let (mut violations, lock, invalid) = match &parsed {
                Ok(r) => (
                    self.policy.judge(r),
                    match self.lock {
                        None => LockState::NotChecked,
                        Some(l) => l.state(r, digest),
                    },
                    None,
                ),
                Err(e) => (Vec::new(), LockState::NotChecked, Some(e.to_string())),
            };
            violations.extend(pod_verdicts);
            report.containers.push(ContainerRow {
                namespace: ns.into(),
                pod: name.clone(),
                container: cname,
                role: match role {
                    ContainerRole::Init => "init",
                    ContainerRole::Ephemeral => "ephemeral",
                    _ => "container",
                },
                image,
                digest: digest.map(str::to_string),
                image_id,
                registry,
                violations,
                lock,
                invalid,
            });
        }
        lacks_secret
    }
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// `spec.serviceAccountName`, or the deprecated `serviceAccount`, or Kubernetes' `default`.
fn pod_service_account(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    spec.and_then(|s| {
        s.service_account_name
            .clone()
            .or_else(|| s.service_account.clone())
    })
    .unwrap_or_else(|| "default".into())
}

fn view_account(ns: &str, a: &ServiceAccount) -> discover::ServiceAccount {
    discover::ServiceAccount {
        name: a.metadata.name.clone().unwrap_or_default(),
        namespace: Some(ns.into()),
        pull_secrets: a
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|s| s.name.clone())
            .collect(),
    }
}

/// An image ID as runtimes report it — `docker.io/library/nginx@sha256:…` (containerd, CRI-O),
/// `docker-pullable://nginx@sha256:…` (dockershim), or a bare `sha256:…` (a local image ID, not
/// a manifest digest) — as the repository name and the manifest digest, each when present.
fn split_image_id(id: &str) -> (Option<&str>, Option<&str>) {
    let id = id.split_once("://").map_or(id, |(_, rest)| rest);
    match id.rsplit_once('@') {
        Some((name, digest)) => (Some(name).filter(|n| !n.is_empty()), Some(digest)),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_of_every_runtime_give_name_and_digest() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            split_image_id(&format!("docker.io/library/nginx@{d}")),
            (Some("docker.io/library/nginx"), Some(d))
        );
        assert_eq!(
            split_image_id(&format!("docker-pullable://nginx@{d}")),
            (Some("nginx"), Some(d))
        );
        assert_eq!(split_image_id(d), (None, None));
        assert_eq!(split_image_id(""), (None, None));
    }

    #[test]
    fn lock_keys_ignore_a_digest_next_to_a_tag_and_normalise_the_name() {
        let k = |s: &str| lock_key(&Reference::parse(s).unwrap());
        assert_eq!(k("nginx:1.27"), "docker.io/library/nginx:1.27");
        assert_eq!(
            k("nginx:1.27@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            "docker.io/library/nginx:1.27"
        );
        assert_eq!(k("nginx"), "docker.io/library/nginx:latest");
    }
}
