//! `airlock secrets`: the Longhorn air-gap recipe for every namespace at once — a
//! `kubernetes.io/dockerconfigjson` Secret for the private registry, and that Secret added to a
//! ServiceAccount's `imagePullSecrets` next to the entries already there (replacing them is what
//! broke Zarf's users, zarf#728). [`plan`] reads what is in the cluster and says what would
//! change; [`apply`] writes only that, so a second run writes nothing. The Secret is created
//! before the ServiceAccount names it, and a Secret of the same name that airlock did not create
//! is never overwritten.
//!
//! The password lives only in [`PullSecret`] (whose `Debug` hides it) and in the Secret's data;
//! no error or message here contains it.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{LocalObjectReference, Secret, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::json;

use crate::{Client, Error, MANAGED_BY, MANAGER};

/// The Secret type the kubelet reads registry credentials from, and its one key.
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
pub const DOCKER_CONFIG_KEY: &str = ".dockerconfigjson";

/// What to create: the Secret's name, the registry key and credentials, and the ServiceAccount
/// that gets it.
#[derive(Clone)]
pub struct PullSecret {
    pub name: String,
    /// The key in `auths`, as `docker login` writes it (`host:port`, or Docker Hub's URL).
    pub registry: String,
    pub username: String,
    password: String,
    pub service_account: String,
}

impl fmt::Debug for PullSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullSecret")
            .field("name", &self.name)
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("service_account", &self.service_account)
            .finish()
    }
}

impl PullSecret {
    pub fn new(
        name: String,
        registry: String,
        username: String,
        password: String,
        service_account: String,
    ) -> PullSecret {
        PullSecret {
            name,
            registry,
            username,
            password,
            service_account,
        }
    }

    /// `{"auths": {REGISTRY: {username, password, auth}}}`, as `kubectl create secret
    /// docker-registry` writes it (`auth` is base64 of `user:password`, which older kubelets
    /// read instead of the two fields).
    fn docker_config(&self) -> serde_json::Value {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        json!({
            "auths": {
                &self.registry: {
                    "username": self.username,
                    "password": self.password,
                    "auth": b64(format!("{}:{}", self.username, self.password).as_bytes()),
                }
            }
        })
    }

    /// The Secret as it should be in `namespace`, labelled as airlock's.
    pub fn secret(&self, namespace: &str) -> Secret {
        let bytes = serde_json::to_vec(&self.docker_config()).expect("JSON of strings");
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(namespace.into()),
                labels: Some(BTreeMap::from([(MANAGED_BY.into(), MANAGER.into())])),
                ..ObjectMeta::default()
            },
            type_: Some(DOCKER_CONFIG_JSON.into()),
            data: Some(BTreeMap::from([(
                DOCKER_CONFIG_KEY.into(),
                ByteString(bytes),
            )])),
            ..Secret::default()
        }
    }
}

/// What a run does to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Create,
    Update,
    Unchanged,
}

/// What [`apply`] would do in one namespace.
#[derive(Debug, Clone)]
pub struct NamespacePlan {
    pub namespace: String,
    /// The Secret as it should be.
    pub secret: Secret,
    pub secret_change: Change,
    /// The Secret's `resourceVersion` in the cluster, for an update that fails rather than
    /// overwrite a change made since it was read.
    secret_version: Option<String>,
    /// The ServiceAccount as it will be: what the cluster has, the pull secret appended.
    pub service_account: ServiceAccount,
    pub account_change: Change,
}

/// Read the namespace's Secret and ServiceAccount and decide what to change.
pub async fn plan(
    client: &Client,
    spec: &PullSecret,
    namespace: &str,
) -> Result<NamespacePlan, Error> {
    let desired = spec.secret(namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let what = format!("Secret {namespace}/{}", spec.name);
    let current = secrets
        .get_opt(&spec.name)
        .await
        .map_err(|e| Error::from_kube("get", &what, e))?;
    let (secret_change, secret_version) = match current {
        None => (Change::Create, None),
        Some(current) => {
            let ours = current
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY))
                .is_some_and(|m| m == MANAGER);
            if !ours {
                return Err(Error::NotOurs {
                    namespace: namespace.into(),
                    name: spec.name.clone(),
                });
            }
            let change = if same_secret(&current, &desired) {
                Change::Unchanged
            } else {
                Change::Update
            };
            (change, current.metadata.resource_version)
        }
    };

    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let what = format!("ServiceAccount {namespace}/{}", spec.service_account);
    let Some(mut account) = accounts
        .get_opt(&spec.service_account)
        .await
        .map_err(|e| Error::from_kube("get", &what, e))?
    else {
        return Err(Error::NoServiceAccount {
            namespace: namespace.into(),
            name: spec.service_account.clone(),
        });
    };
    let pulls = account.image_pull_secrets.get_or_insert_with(Vec::new);
    let account_change = if pulls.iter().any(|s| s.name == spec.name) {
        Change::Unchanged
    } else {
        pulls.push(LocalObjectReference {
            name: spec.name.clone(),
        });
        Change::Update
    };
    Ok(NamespacePlan {
        namespace: namespace.into(),
        secret: desired,
        secret_change,
        secret_version,
        service_account: account,
        account_change,
    })
}

/// The same type and the same credentials (compared as JSON, so formatting does not count).
fn same_secret(current: &Secret, desired: &Secret) -> bool {
    let config = |s: &Secret| {
        s.data
            .as_ref()?
            .get(DOCKER_CONFIG_KEY)
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b.0).ok())
    };
    current.type_ == desired.type_
        && config(current).is_some()
        && config(current) == config(desired)
        && current.data.as_ref().map(BTreeMap::len) == Some(1)
}

/// Write what the plan says differs: the Secret first, so that the ServiceAccount never names a
/// Secret that does not exist; updates carry the `resourceVersion` that was read, so a change
/// made in between is a conflict, not lost.
pub async fn apply(client: &Client, plan: &NamespacePlan) -> Result<(), Error> {
    let ns = &plan.namespace;
    let pp = PostParams::default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let name = plan.secret.metadata.name.clone().unwrap_or_default();
    let what = format!("Secret {ns}/{name}");
    match plan.secret_change {
        Change::Create => {
            secrets
                .create(&pp, &plan.secret)
                .await
                .map_err(|e| Error::from_kube("create", &what, e))?;
        }
        Change::Update => {
            let mut secret = plan.secret.clone();
            secret.metadata.resource_version = plan.secret_version.clone();
            secrets
                .replace(&name, &pp, &secret)
                .await
                .map_err(|e| Error::from_kube("update", &what, e))?;
        }
        Change::Unchanged => {}
    }
    if plan.account_change == Change::Update {
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
        let sa = plan
            .service_account
            .metadata
            .name
            .clone()
            .unwrap_or_default();
        accounts
            .replace(&sa, &pp, &plan.service_account)
            .await
            .map_err(|e| Error::from_kube("update", format!("ServiceAccount {ns}/{sa}"), e))?;
    }
    Ok(())
}

/// The objects to print for a plan, as `kubectl apply -f` takes them: the Secret (its data
/// replaced by `REDACTED` unless `reveal`), and the ServiceAccount with only its name and the
/// whole merged `imagePullSecrets` list, so applying it keeps the entries already there.
pub fn manifests(plan: &NamespacePlan, reveal: bool) -> [serde_json::Value; 2] {
    let mut secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": plan.secret.metadata.name,
            "namespace": plan.namespace,
            "labels": plan.secret.metadata.labels,
        },
        "type": DOCKER_CONFIG_JSON,
        "data": plan.secret.data,
    });
    if !reveal {
        secret["data"][DOCKER_CONFIG_KEY] = json!("REDACTED");
    }
    let account = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": plan.service_account.metadata.name,
            "namespace": plan.namespace,
        },
        "imagePullSecrets": plan.service_account.image_pull_secrets,
    });
    [secret, account]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debug_form_hides_the_password() {
        let s = PullSecret::new(
            "regcred".into(),
            "r.example:5000".into(),
            "ci".into(),
            "hunter2-secret".into(),
            "default".into(),
        );
        assert!(!format!("{s:?}").contains("hunter2"));
        let printed = serde_json::to_string(&manifests(
            &NamespacePlan {
                namespace: "shop".into(),
                secret: s.secret("shop"),
                secret_change: Change::Create,
                secret_version: None,
                service_account: ServiceAccount::default(),
                account_change: Change::Update,
            },
            false,
        ))
        .unwrap();
        assert!(printed.contains("REDACTED"), "{printed}");
        // Neither the password nor the encoded configuration that holds it.
        let data = serde_json::to_string(&s.secret("shop").data).unwrap();
        let encoded = data.split('"').nth(3).unwrap();
        assert!(encoded.len() > 40, "{data}");
        assert!(
            !printed.contains("hunter2") && !printed.contains(encoded),
            "{printed}"
        );
    }
}
