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

use crate::{Location, PodView, Policy, Violation, pods};

pub(crate) fn check(files: &[(String, &FileReport)], policy: &Policy, out: &mut Vec<Violation>) {
    if policy.pull_secret.is_none() {
        return;
    }
    let accounts: Vec<&ServiceAccount> = files
        .iter()
        .flat_map(|(_, r)| &r.service_accounts)
        .collect();
    for (file, report) in files {
        for w in &report.workloads {
            if let Some(j) = pods::pull_secret(policy, &view(w), &accounts) {
                // Pointed at the pod spec: the fix is on it or on its ServiceAccount.
                out.push(j.judgement.at(
                    Location::File {
                        file: file.clone(),
                        span: w.offset..w.offset,
                    },
                    j.image,
                ));
            }
        }
    }
}

/// A workload's pod spec as the pod rules see it.
pub(crate) fn view(w: &Workload) -> PodView {
    PodView {
        owner: w.owner.clone(),
        namespace: w.namespace.clone(),
        service_account: w.service_account.clone(),
        pull_secrets: w.pull_secrets.clone(),
        containers: w.containers.clone(),
    }
}

#[cfg(test)]
mod tests {
    use crate::RuleId;
    use crate::{Policy, test_support::*};

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
            v[0].span().unwrap().start,
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
