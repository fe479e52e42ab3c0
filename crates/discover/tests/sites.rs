//! The typed facts on each finding (`Finding::site`) that later verbs read instead of the
//! human-readable `context`.

use discover::{ContainerRole, Finding, PodKind, Site, scan_file};

fn scan(name: &str, text: &str) -> Vec<Finding> {
    let r = scan_file(name, text.as_bytes(), &discover::Options::default());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    r.findings
}

fn find<'a>(findings: &'a [Finding], image: &str) -> &'a Site {
    &findings
        .iter()
        .find(|f| f.image == image)
        .unwrap_or_else(|| panic!("{image} not in {findings:?}"))
        .site
}

fn container(site: &Site) -> (Option<&str>, ContainerRole) {
    let c = site.container.as_ref().expect("a container");
    (c.name.as_deref(), c.role)
}

#[test]
fn workload_containers_carry_their_pod_name_and_role() {
    let text = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: flyway/flyway:10
      containers:
        - name: api
          image: shop/api:1.4
          env:
            - name: HELPER_IMAGE
              value: busybox:1.36
      ephemeralContainers:
        - name: debug
          image: busybox:1.37
---
apiVersion: v1
kind: Pod
metadata: {name: other}
spec:
  containers:
    - name: c
      image: nginx:1.27
";
    let f = scan("d.yaml", text);
    let api = find(&f, "shop/api:1.4");
    assert_eq!(container(api), (Some("api"), ContainerRole::Regular));
    assert_eq!(
        container(find(&f, "flyway/flyway:10")),
        (Some("migrate"), ContainerRole::Init)
    );
    assert_eq!(
        container(find(&f, "busybox:1.37")),
        (Some("debug"), ContainerRole::Ephemeral)
    );
    let pod = api.pod.expect("a pod");
    assert_eq!(pod.kind, PodKind::Workload);
    assert_eq!(pod.offset, text.find("initContainers").unwrap());
    assert_eq!(find(&f, "flyway/flyway:10").pod, Some(pod));
    // An env var names an image some other pod pulls: no container of this one.
    assert_eq!(find(&f, "busybox:1.36").container, None);
    assert_ne!(find(&f, "nginx:1.27").pod, Some(pod));
}

#[test]
fn jenkins_templates_group_their_containers_with_the_injected_jnlp() {
    let casc = "\
jenkins:
  clouds:
    - kubernetes:
        name: k8s
        templates:
          - name: maven
            containers:
              - name: agent
                image: jenkins/inbound-agent:4.10-2
          - name: raw
            yaml: |
              spec:
                containers:
                  - name: go
                    image: golang:1.23
";
    let f = scan("casc.yaml", casc);
    let injected: Vec<&Finding> = f
        .iter()
        .filter(|f| f.kind == discover::Kind::Implicit)
        .collect();
    assert_eq!(injected.len(), 2);
    assert_eq!(
        container(&injected[0].site),
        (Some("jnlp"), ContainerRole::InjectedJnlp)
    );
    let agent = find(&f, "jenkins/inbound-agent:4.10-2");
    assert_eq!(container(agent), (Some("agent"), ContainerRole::Regular));
    assert_eq!(agent.pod, injected[0].site.pod);
    assert_eq!(agent.pod.unwrap().kind, PodKind::JenkinsTemplate);
    // Pod YAML in a template belongs to the template, not to a pod of its own.
    let go = find(&f, "golang:1.23");
    assert_eq!(container(go), (Some("go"), ContainerRole::Regular));
    assert_eq!(go.pod, injected[1].site.pod);
    assert_ne!(go.pod, agent.pod);

    let jenkinsfile = "\
podTemplate(containers: [
  containerTemplate(name: 'maven', image: 'maven:3.9'),
], yaml: '''
spec:
  containers:
    - name: kaniko
      image: gcr.io/kaniko-project/executor:v1.23.2
''') {
  node(POD_LABEL) { sh 'ls' }
}
";
    let f = scan("Jenkinsfile", jenkinsfile);
    let jnlp = &f
        .iter()
        .find(|f| f.kind == discover::Kind::Implicit)
        .unwrap()
        .site;
    let maven = find(&f, "maven:3.9");
    assert_eq!(container(maven), (Some("maven"), ContainerRole::Regular));
    let kaniko = find(&f, "gcr.io/kaniko-project/executor:v1.23.2");
    assert_eq!(container(kaniko), (Some("kaniko"), ContainerRole::Regular));
    assert_eq!(maven.pod, jnlp.pod);
    assert_eq!(kaniko.pod, jnlp.pod);
    assert_eq!(jnlp.pod.unwrap().offset, 0);
}

#[test]
fn registry_overrides_are_typed_not_in_the_context() {
    let k0s = "\
apiVersion: k0s.k0sproject.io/v1beta1
kind: ClusterConfig
spec:
  images:
    repository: \" registry.corp.local:5000 \"
    coredns:
      image: coredns/coredns
      version: 1.9.4
";
    let f = scan("k0s.yaml", k0s);
    assert_eq!(
        find(&f, "coredns/coredns:1.9.4").k0s_repository.as_deref(),
        Some("registry.corp.local:5000")
    );
    let values = "\
global:
  imageRegistry: registry.corp.local:5000
controller:
  image:
    repository: bitnami/nginx
    tag: \"1.25\"
sidecar:
  image: quay.io/prometheus/busybox:1
";
    let f = scan("values.yaml", values);
    for image in [
        "registry.corp.local:5000/bitnami/nginx:1.25",
        "quay.io/prometheus/busybox:1",
    ] {
        assert_eq!(
            find(&f, image).helm_global_registry.as_deref(),
            Some("registry.corp.local:5000"),
            "{image}"
        );
    }
    let unset = scan(
        "values.yaml",
        &values.replace("registry.corp.local:5000", "\"\""),
    );
    assert!(unset.iter().all(|f| f.site.helm_global_registry.is_none()));
}
