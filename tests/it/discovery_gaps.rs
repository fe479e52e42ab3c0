//! The discovery gaps a real-world check found (issue 11, item 3), each from the command line
//! on a small file written the way real projects write it.

use serde_json::Value;

use crate::{airlock, tempdir};

/// `airlock scan --format json` of files written into a fresh directory.
fn scan(files: &[(&str, &str)]) -> Value {
    let dir = tempdir();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let out = airlock()
        .args(["scan", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn images(v: &Value) -> Vec<String> {
    let mut all: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["image"].as_str().unwrap().to_string())
        .collect();
    all.sort();
    all
}

#[test]
fn quotes_in_a_dockerfile_from_are_removed_after_arg_substitution() {
    let v = scan(&[(
        "Dockerfile",
        "ARG RELEASE=bookworm\nFROM debian:\"${RELEASE}\"-slim AS base\nFROM 'alpine:3.20'\n",
    )]);
    assert_eq!(images(&v), ["alpine:3.20", "debian:bookworm-slim"], "{v}");
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");
}

#[test]
fn a_bad_from_after_substitution_is_reported_as_written() {
    let v = scan(&[(
        "Dockerfile",
        "ARG RELEASE=:bookworm\nFROM debian:\"${RELEASE}\"-slim\n",
    )]);
    let err = &v["errors"][0];
    assert_eq!(
        err["message"], "not an image reference: debian:\"${RELEASE}\"-slim",
        "{v}"
    );
    assert_eq!(
        (err["line"].as_u64(), err["column"].as_u64()),
        (Some(2), Some(6))
    );
}

/// The default agent image as discovery reports it (`DEFAULT_JNLP_IMAGE`).
const AGENT: &str = discover::DEFAULT_JNLP_IMAGE;

#[test]
fn a_jnlp_container_without_an_image_still_pulls_the_plugin_default() {
    let jcasc = "jenkins:
  clouds:
  - kubernetes:
      name: k8s
      jnlpregistry: mirror.example
      templates:
      - name: base
        containers:
        - name: jnlp
          resourceRequestCpu: 100m
        - name: go
          image: golang:1.22
";
    let jenkinsfile = "podTemplate(yaml: '''
apiVersion: v1
kind: Pod
spec:
  containers:
  - name: jnlp
    resources: {}
  - name: node
    image: node:20
''') {
  node(POD_LABEL) { sh 'true' }
}
";
    let v = scan(&[("casc.yaml", jcasc), ("Jenkinsfile", jenkinsfile)]);
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");
    let mut want = vec![
        format!("mirror.example/{AGENT}"),
        AGENT.to_string(),
        "golang:1.22".to_string(),
        "node:20".to_string(),
    ];
    want.sort();
    assert_eq!(images(&v), want, "{v}");
    let filled: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "implicit")
        .collect();
    assert_eq!(filled.len(), 2, "{v}");
    for f in filled {
        assert!(f["context"].as_str().unwrap().contains("jnlp"), "{f}");
    }
}

#[test]
fn agent_injection_adds_the_default_agent_as_an_init_container() {
    let jcasc = "jenkins:
  clouds:
  - kubernetes:
      name: k8s
      jnlpregistry: mirror.example
      templates:
      - name: injected
        agentInjection: true
        containers:
        - name: jnlp
          image: maven:3.9
";
    let v = scan(&[("casc.yaml", jcasc)]);
    // The init container's image is the plugin's default, never prefixed with jnlpregistry.
    let mut want = vec![AGENT.to_string(), "maven:3.9".to_string()];
    want.sort();
    assert_eq!(images(&v), want, "{v}");
    let init = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "implicit")
        .unwrap();
    assert!(
        init["context"]
            .as_str()
            .unwrap()
            .contains("set-up-jenkins-agent"),
        "{init}"
    );
    assert_eq!(init["line"], 8, "{init}");
}

#[test]
fn a_bare_pod_fragment_is_read_as_a_pod_not_as_helm_values() {
    let with_spec = "metadata:
  labels:
    app: build
spec:
  containers:
  - name: maven
    image: maven:3.9
  - name: jnlp
";
    let bare = "containers:
- name: kaniko
  image: gcr.io/kaniko-project/executor:v1.23.2
";
    let v = scan(&[("ci/pod.yaml", with_spec), ("ci/kaniko.yaml", bare)]);
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");
    let findings = v["findings"].as_array().unwrap();
    for f in findings {
        assert_eq!(f["source"], "kubernetes", "{f}");
    }
    let mut want = vec![
        AGENT.to_string(),
        "gcr.io/kaniko-project/executor:v1.23.2".to_string(),
        "maven:3.9".to_string(),
    ];
    want.sort();
    assert_eq!(images(&v), want, "{v}");
    let maven = findings.iter().find(|f| f["image"] == "maven:3.9").unwrap();
    assert_eq!(maven["context"], "spec.containers[maven].image", "{maven}");
}

#[test]
fn image_keys_of_a_configmap_read_into_a_workload_env_are_found() {
    let manifest = "apiVersion: v1
kind: ConfigMap
metadata:
  name: builder
  namespace: ci
data:
  BUILDER_IMAGE: quay.io/buildah/stable:v1.37
  LOG_LEVEL: debug
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: runner
data:
  default: registry.example/runner:2
  unread_IMAGE: registry.example/unread:1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: unused
data:
  OTHER_IMAGE: registry.example/never:1
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: operator
  namespace: ci
spec:
  template:
    spec:
      containers:
      - name: operator
        image: registry.example/operator:1
        envFrom:
        - configMapRef:
            name: builder
        env:
        - name: RUNNER_IMAGE
          valueFrom:
            configMapKeyRef:
              name: runner
              key: default
";
    let v = scan(&[("deploy.yaml", manifest)]);
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(
        images(&v),
        [
            "quay.io/buildah/stable:v1.37",
            "registry.example/operator:1",
            "registry.example/runner:2"
        ],
        "{v}"
    );
    let buildah = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["image"] == "quay.io/buildah/stable:v1.37")
        .unwrap();
    assert_eq!(buildah["kind"], "heuristic");
    assert_eq!(
        buildah["context"],
        "ConfigMap ci/builder › data.BUILDER_IMAGE"
    );
    assert_eq!(
        (buildah["line"].as_u64(), buildah["column"].as_u64()),
        (Some(7), Some(18))
    );
}

#[test]
fn kubesphere_s2i_and_b2i_templates_name_their_builder_and_runtime_images() {
    // Shaped like the templates `ks` installs (kubesphere-sigs/ks, cmd/install/s2i.go).
    let templates = "apiVersion: devops.kubesphere.io/v1alpha1
kind: S2iBuilderTemplate
metadata:
  labels:
    builder-type.kubesphere.io/b2i: \"b2i\"
    binary-type.kubesphere.io: \"jar\"
  name: java
spec:
  containerInfo:
    - builderImage: kubesphere/java-8-centos7:v2.1.0
      runtimeImage: kubesphere/java-8-runtime:v2.1.0
      runtimeArtifacts:
        - source: /deployments
    - builderImage: kubesphere/java-11-centos7:v2.1.0
  codeFramework: java
  defaultBaseImage: kubesphere/java-8-centos7:v2.1.0
  version: 0.1.0
---
apiVersion: devops.kubesphere.io/v1alpha1
kind: S2iBuilder
metadata:
  name: app
  namespace: demo
spec:
  config:
    builderImage: kubesphere/nodejs-8-centos7:v2.1.0
    imageName: registry.example/demo/app
    tag: latest
    sourceUrl: https://github.com/example/app
";
    let v = scan(&[("s2i.yaml", templates)]);
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");
    let mut found = images(&v);
    assert_eq!(found.len(), 5, "each field once: {v}");
    found.dedup();
    assert_eq!(
        found,
        [
            "kubesphere/java-11-centos7:v2.1.0",
            "kubesphere/java-8-centos7:v2.1.0",
            "kubesphere/java-8-runtime:v2.1.0",
            "kubesphere/nodejs-8-centos7:v2.1.0",
        ],
        "{v}"
    );
    let contexts: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["context"].as_str().unwrap())
        .collect();
    assert!(
        contexts.contains(&"S2iBuilder demo/app › spec.config.builderImage"),
        "{contexts:?}"
    );
}

const PROPERTY: &str =
    "-Dorg.csanchez.jenkins.plugins.kubernetes.pipeline.PodTemplateStepExecution";

#[test]
fn the_default_agent_image_set_in_java_opts_replaces_the_plugins() {
    let values = format!(
        "controller:
  javaOpts: >-
    -Xmx2g
    {PROPERTY}.defaultImage=jenkins/inbound-agent:3345.v03dee9b_f88fc-1
  JCasC:
    configScripts:
      clouds: |
        jenkins:
          clouds:
          - kubernetes:
              name: k8s
              templates:
              - name: maven
                containers:
                - name: maven
                  image: maven:3.9
"
    );
    let v = scan(&[("values.yaml", &values)]);
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(
        images(&v),
        [
            "jenkins/inbound-agent:3345.v03dee9b_f88fc-1",
            "jenkins/inbound-agent:3345.v03dee9b_f88fc-1",
            "maven:3.9"
        ],
        "{v}"
    );
    let kinds: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["image"] != "maven:3.9")
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["heuristic", "implicit"], "{v}");
    // The property's value is written out whole, so a rewrite can move it.
    let property = &v["findings"][0];
    assert_eq!(
        (property["line"].as_u64(), property["column"].as_u64()),
        (Some(4), Some(94))
    );
}

#[test]
fn the_registry_prefix_set_in_java_opts_applies_where_no_jnlpregistry_does() {
    let manifest = format!(
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: casc
data:
  jenkins.yaml: |
    jenkins:
      clouds:
      - kubernetes:
          name: k8s
          templates:
          - name: go
            agentInjection: true
            containers:
            - name: go
              image: golang:1.22
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: jenkins
spec:
  template:
    spec:
      containers:
      - name: jenkins
        image: jenkins/jenkins:2.479.1-lts
        env:
        - name: JAVA_OPTS
          value: \"{PROPERTY}.dockerRegistryPrefix=mirror.example/\"
"
    );
    let v = scan(&[("jenkins.yaml", &manifest)]);
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");
    let mut want = vec![
        format!("mirror.example/{AGENT}"),
        // agentInjection's init container is the plugin's bare default.
        AGENT.to_string(),
        "golang:1.22".to_string(),
        "jenkins/jenkins:2.479.1-lts".to_string(),
    ];
    want.sort();
    assert_eq!(images(&v), want, "{v}");
}
