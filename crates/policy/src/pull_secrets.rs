//! `missing-pull-secret`: a workload that pulls from the private registry needs credentials, on
//! its pod spec or on the ServiceAccount it runs as. Teams patch `imagePullSecrets` onto
//! ServiceAccounts namespace by namespace, and the one namespace they forget fails with
//! ImagePullBackOff; this rule finds it before the cluster does.
//!
//! Only ServiceAccounts in the checked input count: a secret patched onto one in the live
//! cluster is what `airlock audit` sees, not this static check. The rule is on only when the
//! policy names the secret: many private registries take anonymous pulls (a plain `registry:2`,
//! `airlock serve`, a node-level mirror), and flagging every workload there would bury the real
//! problems.

use discover::{FileReport, ServiceAccount, Workload};
use imgref::Reference;

use crate::{Policy, RuleId, Violation};

/// The ServiceAccount a pod runs as when its spec names none.
const DEFAULT_SERVICE_ACCOUNT: &str = "default";

pub(crate) fn check(files: &[(String, &FileReport)], policy: &Policy, out: &mut Vec<Violation>) {
    let Some(secret) = policy.pull_secret.as_deref() else {
        return;
    };
    let accounts: Vec<&ServiceAccount> = files
        .iter()
        .flat_map(|(_, r)| &r.service_accounts)
        .collect();
    for (file, report) in files {
        for w in &report.workloads {
            if let Some(v) = workload(file, w, &accounts, secret, policy) {
                out.push(v);
            }
        }
    }
}

fn workload(
    file: &str,
    w: &Workload,
    accounts: &[&ServiceAccount],
    secret: &str,
    policy: &Policy,
) -> Option<Violation> {
    // Templated images cannot be judged; the first private one is the one to name.
    let image = w
        .images
        .iter()
        .filter(|i| !discover::is_templated(i))
        .find(|i| Reference::parse(i).is_ok_and(|r| policy.is_private(&r)))?;
    let has = |secrets: &[String]| secrets.iter().any(|s| s == secret);
    if has(&w.pull_secrets) {
        return None;
    }
    let sa_name = w
        .service_account
        .as_deref()
        .unwrap_or(DEFAULT_SERVICE_ACCOUNT);
    let account = accounts
        .iter()
        .find(|a| a.name == sa_name && a.namespace == w.namespace);
    if account.is_some_and(|a| has(&a.pull_secrets)) {
        return None;
    }
    let namespace = match &w.namespace {
        Some(ns) => format!("namespace {ns}"),
        None => "the workload's namespace".to_string(),
    };
    let account_note = match account {
        Some(_) => format!("ServiceAccount {sa_name} in this input has none either"),
        None => format!("ServiceAccount {sa_name} in {namespace} is not in this input"),
    };
    Some(Violation {
        rule: RuleId::MissingPullSecret,
        file: file.to_string(),
        span: w.offset..w.offset,
        image: Some(image.clone()),
        message: format!(
            "{} pulls {image} from the private registry with no imagePullSecret named {secret} on the pod; {account_note}",
            w.owner
        ),
        fix: format!(
            "add imagePullSecrets: [{{name: {secret}}}] to ServiceAccount {sa_name} in {namespace}"
        ),
    })
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
      serviceAccountName: api
      containers:
        - name: api
          image: registry.corp.local:5000/shop/api:1.4
";

    fn account(name: &str, namespace: &str, secret: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: {namespace}\nimagePullSecrets:\n  - name: {secret}\n"
        )
    }

    fn policy() -> Policy {
        Policy {
            pull_secret: Some("regcred".into()),
            ..private("registry.corp.local:5000")
        }
    }

    #[test]
    fn a_private_pull_without_any_secret_is_flagged_at_the_pod_spec() {
        let v = run(&[("d.yaml", DEPLOYMENT)], &policy());
        assert_eq!(
            rules(&v),
            [(
                RuleId::MissingPullSecret,
                Some("registry.corp.local:5000/shop/api:1.4")
            )]
        );
        assert_eq!(
            v[0].span.start,
            DEPLOYMENT.find("serviceAccountName").unwrap()
        );
        assert_eq!(
            v[0].message,
            "Deployment shop/api pulls registry.corp.local:5000/shop/api:1.4 from the private registry with no \
             imagePullSecret named regcred on the pod; ServiceAccount api in namespace shop is not in this input"
        );
        assert_eq!(
            v[0].fix,
            "add imagePullSecrets: [{name: regcred}] to ServiceAccount api in namespace shop"
        );
    }

    #[test]
    fn the_service_account_in_the_same_namespace_supplies_the_secret() {
        assert!(
            run(
                &[
                    ("d.yaml", DEPLOYMENT),
                    ("sa.yaml", &account("api", "shop", "regcred"))
                ],
                &policy()
            )
            .is_empty()
        );
        // Same name, other namespace: does not count.
        let v = run(
            &[
                ("d.yaml", DEPLOYMENT),
                ("sa.yaml", &account("api", "other", "regcred")),
            ],
            &policy(),
        );
        assert_eq!(v.len(), 1);
        // Another secret is not the one the registry needs.
        let v = run(
            &[
                ("d.yaml", DEPLOYMENT),
                ("sa.yaml", &account("api", "shop", "other")),
            ],
            &policy(),
        );
        assert!(
            v[0].message
                .ends_with("ServiceAccount api in this input has none either"),
            "{}",
            v[0].message
        );
        // Without a configured secret the registry is taken to allow anonymous pulls.
        let anonymous = Policy {
            pull_secret: None,
            ..policy()
        };
        assert!(run(&[("d.yaml", DEPLOYMENT)], &anonymous).is_empty());
    }

    #[test]
    fn a_secret_on_the_pod_or_a_public_image_needs_nothing_more() {
        let on_pod = DEPLOYMENT.replace(
            "      containers:\n",
            "      imagePullSecrets: [{name: regcred}]\n      containers:\n",
        );
        assert!(run(&[("d.yaml", &on_pod)], &policy()).is_empty());
        let public = DEPLOYMENT.replace("registry.corp.local:5000/shop/api:1.4", "nginx:1.27");
        let v = run(&[("d.yaml", &public)], &policy());
        assert_eq!(
            rules(&v),
            [(RuleId::RegistryNotAllowed, Some("nginx:1.27"))]
        );
    }

    #[test]
    fn without_a_service_account_name_the_default_one_is_used() {
        let no_sa = DEPLOYMENT.replace("      serviceAccountName: api\n", "");
        assert!(
            run(
                &[
                    ("d.yaml", &no_sa),
                    ("sa.yaml", &account("default", "shop", "regcred"))
                ],
                &policy()
            )
            .is_empty()
        );
        let v = run(&[("d.yaml", &no_sa)], &policy());
        assert_eq!(
            v[0].fix,
            "add imagePullSecrets: [{name: regcred}] to ServiceAccount default in namespace shop"
        );
    }
}
