//! YAML sources end to end: each format's rules, the traps that must stay silent, and exact
//! positions (also after non-ASCII text and inside embedded documents).

use discover::{Finding, Kind, Options, Source, scan_file};

fn scan(name: &str, text: &str) -> Vec<Finding> {
    let report = scan_file(name, text.as_bytes(), &Options::default());
    assert!(report.errors.is_empty(), "{name}: {:?}", report.errors);
    for f in &report.findings {
        if f.exact {
            assert_eq!(&text[f.span.clone()], f.image, "span of {f:?}");
        }
    }
    report.findings
}

fn images(findings: &[Finding]) -> Vec<(&str, Kind)> {
    findings
        .iter()
        .map(|f| (f.image.as_str(), f.kind))
        .collect()
}

#[test]
fn pod_specs_nest_anywhere_and_every_container_list_counts() {
    let text = r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  namespace: ops
  annotations:
    example.com/image: "not/an-image:1"
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
            - name: init
              image: busybox:1.36
          containers:
            - name: main
              image: "registry.k8s.io/descheduler/descheduler:v0.23.0"
          ephemeralContainers:
            - name: debug
              image: 'alpine:3.20'
"#;
    let found = scan("cron.yaml", text);
    assert_eq!(
        images(&found),
        [
            ("busybox:1.36", Kind::Literal),
            (
                "registry.k8s.io/descheduler/descheduler:v0.23.0",
                Kind::Literal
            ),
            ("alpine:3.20", Kind::Literal)
        ]
    );
    assert_eq!(
        found[1].context,
        "CronJob ops/nightly › spec.jobTemplate.spec.template.spec.containers[main].image"
    );
    assert!(
        found
            .iter()
            .all(|f| f.source == Source::Kubernetes && f.exact)
    );
}

#[test]
fn positions_are_exact_after_non_ascii_text() {
    let text = "# 专为大多数 Golang 项目 — ünïcödé\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {a: \"é\"}\nspec:\n  containers:\n    - name: x   # ü\n      image: \"nginx:1.25\"  # ü\n";
    let found = scan("pod.yaml", text);
    assert_eq!(found.len(), 1);
    let idx = discover::LineIndex::new(text);
    assert_eq!(idx.position(found[0].span.start), (10, 15));
}

#[test]
fn crd_schemas_comments_and_labels_are_never_images() {
    let text = r#"
# image: commented/out:1
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: engineimages.longhorn.io
spec:
  versions:
    - schema:
        openAPIV3Schema:
          properties:
            spec:
              properties:
                image:
                  type: string
                containers:
                  - image: fake/example:1
---
apiVersion: v1
kind: Service
metadata:
  name: svc
  labels:
    image: label/value:1
spec:
  selector: {app: x}
"#;
    assert!(scan("crd.yaml", text).is_empty());
}

#[test]
fn operator_flags_env_and_custom_resources() {
    let text = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: op}
spec:
  template:
    spec:
      containers:
        - name: op
          image: quay.io/x/operator:v1
          args:
            - --engine-image
            - "docker.io/longhornio/longhorn-engine:v1.12.1"
            - --acme-http01-solver-image=quay.io/jetstack/cert-manager-acmesolver:v1.18.0
            - --prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1
            - --controller-class=k8s.io/ingress-nginx
            - --upstream=http://127.0.0.1:8080/
            - --publish-service=$(POD_NAMESPACE)/ingress-nginx-controller
          env:
            - name: CSI_ATTACHER_IMAGE
              value: "docker.io/longhornio/csi-attacher:v4.12.0"
            - name: IMAGE_PULL_POLICY
              value: Always
---
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {name: k8s, namespace: monitoring}
spec:
  image: quay.io/prometheus/prometheus:v3.13.2
  version: 3.13.2
"#;
    let found = scan("op.yaml", text);
    assert_eq!(
        images(&found),
        [
            ("quay.io/x/operator:v1", Kind::Literal),
            (
                "docker.io/longhornio/longhorn-engine:v1.12.1",
                Kind::Heuristic
            ),
            (
                "quay.io/jetstack/cert-manager-acmesolver:v1.18.0",
                Kind::Heuristic
            ),
            (
                "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1",
                Kind::Heuristic
            ),
            ("docker.io/longhornio/csi-attacher:v4.12.0", Kind::Heuristic),
            ("quay.io/prometheus/prometheus:v3.13.2", Kind::Literal),
        ]
    );
}

#[test]
fn argo_and_tekton_templates_and_embedded_manifests() {
    let text = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: x-}
spec:
  templates:
    - name: a
      container: {image: "curlimages/curl:latest"}
    - name: b
      script:
        image: python:alpine3.23
        source: print(1)
    - name: c
      resource:
        action: create
        manifest: |
          apiVersion: apps/v1
          kind: StatefulSet
          metadata:
            name: web
          spec:
            template:
              spec:
                containers:
                  - name: nginx
                    image:  nginx:1.13
---
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: t}
spec:
  params:
    - name: BUILDER_IMAGE
      default: gcr.io/kaniko-project/executor:v1.8.1
    - name: image-registry
      default: gcr.io/example-org
  stepTemplate:
    image: $(params.BUILDER_IMAGE)
  steps:
    - name: s
      image: mirror.gcr.io/library/docker@sha256:0752ca4e936da012c173c119217c0f9599b3b191c1557e53206d5d06d2627580
  sidecars:
    - name: dind
      image: docker:27-dind
"#;
    let found = scan("wf.yaml", text);
    assert_eq!(
        images(&found),
        [
            ("curlimages/curl:latest", Kind::Literal),
            ("python:alpine3.23", Kind::Literal),
            ("nginx:1.13", Kind::Literal),
            ("gcr.io/kaniko-project/executor:v1.8.1", Kind::Heuristic),
            ("$(params.BUILDER_IMAGE)", Kind::Templated),
            (
                "mirror.gcr.io/library/docker@sha256:0752ca4e936da012c173c119217c0f9599b3b191c1557e53206d5d06d2627580",
                Kind::Literal
            ),
            ("docker:27-dind", Kind::Literal),
        ]
    );
    assert!(found[2].exact, "a literal block maps back exactly");
    assert!(
        found[2]
            .context
            .contains("resource.manifest › StatefulSet web"),
        "{}",
        found[2].context
    );
}

#[test]
fn helm_values_compose_split_fields_in_any_key_case() {
    let text = r#"
Master:
  Image: kubespheredev/ks-jenkins
  ImageTag: master
  ImagePullPolicy: IfNotPresent
Agent:
  Builder:
    Registry: docker.io/kubespheredev
    Golang:
      Image: builder-go
      Tag: v3.2.0
    python:
      image: builder-python
      tag: "v3.2.0"
image:
  registry: ghcr.io/kubesphere
  pullPolicy: Always
  controller:
    repository: devops-controller
    tag: master
controller:
  image:
    registry: docker.io
    repository: jenkins/jenkins
    tag:
    tagLabel: jdk21
  installPlugins:
    - kubernetes:4540.v612369217f87
    - git:5.10.1
logo:
  image:
    logoUrl: /userContent/logo.png
openshift:
  image:
    registry: ""
    repository: ""
    tag: ""
"#;
    let found = scan("values.yaml", text);
    assert_eq!(
        images(&found),
        [
            ("kubespheredev/ks-jenkins:master", Kind::Composed),
            ("docker.io/kubespheredev/builder-go:v3.2.0", Kind::Composed),
            (
                "docker.io/kubespheredev/builder-python:v3.2.0",
                Kind::Composed
            ),
            (
                "ghcr.io/kubesphere/devops-controller:master",
                Kind::Composed
            ),
            ("docker.io/jenkins/jenkins", Kind::Templated),
        ]
    );
    let go = &found[1];
    let parts: Vec<_> = go.parts.iter().map(|p| &text[p.span.clone()]).collect();
    assert_eq!(parts, ["builder-go", "v3.2.0", "docker.io/kubespheredev"]);
    assert!(found.iter().all(|f| f.source == Source::HelmValues));
}

#[test]
fn a_global_registry_wins_over_per_image_registries() {
    let text = "global:\n  imageRegistry: registry.corp:5000\nimage:\n  registry: docker.io\n  repository: longhornio/longhorn-ui\n  tag: v1.12.1\n";
    let found = scan("values.yaml", text);
    assert_eq!(
        images(&found),
        [(
            "registry.corp:5000/longhornio/longhorn-ui:v1.12.1",
            Kind::Composed
        )]
    );
}

#[test]
fn jcasc_in_a_configmap_with_inheritance_and_the_implicit_jnlp_agent() {
    let text = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: casc, namespace: devops}
data:
  jenkins.yaml: |
    jenkins:
      clouds:
        - kubernetes:
            name: k8s
            jnlpregistry: registry.corp:5000
            templates:
              - name: base
                containers:
                  - name: jnlp
                    image: "jenkins/inbound-agent:4.10-2"
                  - name: base
                    image: "docker.io/kubespheredev/builder-base:v3.2.2"
                yaml: |
                  spec:
                    containers:
                      - name: base
                        resources: {}
              - name: go
                inheritFrom: base
                containers:
                  - name: go
                    image: "docker.io/kubespheredev/builder-go:v3.2.0"
              - name: bare
                containers:
                  - name: node
                    image: node:20
              - name: orphan
                inheritFrom: defined-elsewhere
"#;
    let found = scan("casc.yaml", text);
    assert_eq!(
        images(&found),
        [
            ("jenkins/inbound-agent:4.10-2", Kind::Literal),
            ("docker.io/kubespheredev/builder-base:v3.2.2", Kind::Literal),
            ("docker.io/kubespheredev/builder-go:v3.2.0", Kind::Literal),
            (
                "registry.corp:5000/jenkins/inbound-agent:3355.v388858a_47b_33-3-jdk21",
                Kind::Implicit
            ),
            ("node:20", Kind::Literal),
        ]
    );
    assert!(found.iter().all(|f| f.source == Source::Jcasc));
    assert!(
        found[0].exact
            && found[0]
                .context
                .starts_with("ConfigMap devops/casc › data[\"jenkins.yaml\"] › ")
    );
}

#[test]
fn the_jnlp_default_is_configurable() {
    let text = "jenkins:\n  clouds:\n    - kubernetes:\n        templates:\n          - name: t\n            containers: []\n";
    let opts = Options {
        default_jnlp_image: "mirror.local/agent:1".into(),
        ..Options::default()
    };
    let report = scan_file("casc.yaml", text.as_bytes(), &opts);
    assert_eq!(report.findings[0].image, "mirror.local/agent:1");
}

#[test]
fn k0s_and_k0sctl_image_version_pairs() {
    let text = r#"
apiVersion: k0sctl.k0sproject.io/v1beta1
kind: Cluster
spec:
  hosts:
    - ssh: {address: 127.0.0.1, port: 9022}
  k0s:
    version: "1.21.1+k0s.0"
    config:
      apiVersion: k0s.k0sproject.io/v1beta1
      kind: ClusterConfig
      spec:
        images:
          repository: registry.corp:5000
          coredns:
            image: quay.io/jnummelin/coredns
            version: 1.7.0
          calico:
            cni:
              image: quay.io/jnummelin/calico-cni
              version: v3.16.2
          default_pull_policy: IfNotPresent
"#;
    let found = scan("k0sctl.yaml", text);
    assert_eq!(
        images(&found),
        [
            ("quay.io/jnummelin/coredns:1.7.0", Kind::Composed),
            ("quay.io/jnummelin/calico-cni:v3.16.2", Kind::Composed)
        ]
    );
    assert!(
        found[0]
            .context
            .contains("spec.images.repository: registry.corp:5000")
    );
    assert_eq!(found[0].source, Source::K0s);
}

#[test]
fn kustomize_images_compose_the_replacement() {
    let text = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nimages:\n- name: gcr.io/staging/metrics-server\n  newName: registry.k8s.io/metrics-server/metrics-server\n  newTag: v0.8.1\n- name: untouched\n- name: busybox\n  digest: sha256:0752ca4e936da012c173c119217c0f9599b3b191c1557e53206d5d06d2627580\n";
    let found = scan("kustomization.yaml", text);
    assert_eq!(
        images(&found),
        [
            (
                "registry.k8s.io/metrics-server/metrics-server:v0.8.1",
                Kind::Composed
            ),
            (
                "busybox@sha256:0752ca4e936da012c173c119217c0f9599b3b191c1557e53206d5d06d2627580",
                Kind::Composed
            )
        ]
    );
}

#[test]
fn compose_anchors_defaults_and_local_builds() {
    let text = r#"
x-base: &base
  image: "redis:${REDIS_TAG:-7.2}"
  restart: always
services:
  cache:
    <<: *base
  app:
    build: .
    image: example/app:dev
  proxy:
    image: ${PROXY_IMAGE}
  db:
    image: postgres:16
"#;
    let found = scan("docker-compose.yml", text);
    assert_eq!(
        images(&found),
        [
            ("redis:7.2", Kind::Literal),
            ("example/app:dev", Kind::Built),
            ("${PROXY_IMAGE}", Kind::Templated),
            ("postgres:16", Kind::Literal)
        ]
    );
    assert!(!found[0].exact);
    assert_eq!(&text[found[0].span.clone()], "redis:${REDIS_TAG:-7.2}");
}

#[test]
fn helm_templates_that_are_not_yaml_yet_report_templated_images() {
    let text = "apiVersion: v1\nkind: ConfigMap\ndata:\n  jenkins.yaml: |\n{{- if .Values.x }}\n    containers:\n      - image: \"{{ .Values.Agent.Image }}:{{ .Values.Agent.ImageTag }}\"\n{{- end }}\n";
    let found = scan("casc.yml", text);
    assert_eq!(
        images(&found),
        [(
            "{{ .Values.Agent.Image }}:{{ .Values.Agent.ImageTag }}",
            Kind::Templated
        )]
    );
    assert_eq!(&text[found[0].span.clone()], found[0].image);
}

#[test]
fn malformed_yaml_is_an_error_with_a_position_and_other_documents_still_count() {
    let text = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: nginx:1\n---\nkey: [unclosed\nother: x\n";
    let report = scan_file("bad.yaml", text.as_bytes(), &Options::default());
    assert_eq!(report.errors.len(), 1);
    assert!(report.errors[0].offset > text.find("---").unwrap());
    assert_eq!(report.findings.len(), 1);
}

#[test]
fn docker_run_in_scripts_is_heuristic_and_local_builds_are_not() {
    let text = r#"
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: dind}
spec:
  taskSpec:
    steps:
      - name: client
        image: docker:27
        script: |
          docker run busybox echo hello
          docker build -t hello .
          docker run hello
        args: ["until docker ps; do sleep 3; done; docker run --rm debian:latest cat /etc/os-release"]
"#;
    let found = scan("dind.yaml", text);
    assert_eq!(
        images(&found),
        [
            ("docker:27", Kind::Literal),
            ("busybox", Kind::Heuristic),
            ("debian:latest", Kind::Heuristic)
        ]
    );
    assert!(
        found[1].exact,
        "a word inside a literal block maps to its exact bytes"
    );
    assert!(
        found[1].context.ends_with("script (docker run)"),
        "{}",
        found[1].context
    );
}
