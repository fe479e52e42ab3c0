//! Templated image references of real Helm charts resolved from their values
//! (tests/fixtures/helm: each chart's source, commit, licence and expected list in SOURCE.md),
//! checked against Bitnami's published image list and a hand-derived list for a chart with
//! subcharts and `global`.

use std::collections::BTreeSet;

use crate::{airlock, repo_root};

fn chart(name: &str) -> std::path::PathBuf {
    repo_root().join("tests/fixtures/helm").join(name)
}

fn scan_json(chart: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let out = airlock()
        .args(["scan", "--format", "json"])
        .args(extra)
        .arg(chart)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn resolved(json: &serde_json::Value) -> Vec<&serde_json::Value> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "resolved")
        .collect()
}

fn images(found: &[&serde_json::Value]) -> BTreeSet<String> {
    found
        .iter()
        .map(|f| f["normalized"].as_str().unwrap().to_string())
        .collect()
}

/// Chart.yaml `annotations.images`: Bitnami's list of the images a chart pulls.
fn published(chart_yaml: &str) -> BTreeSet<String> {
    chart_yaml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("image: "))
        .map(|i| i.trim().to_string())
        .collect()
}

#[test]
fn bitnami_common_images_helpers_resolve_to_the_charts_published_image_list() {
    let dir = chart("nginx");
    let expected = published(&std::fs::read_to_string(dir.join("Chart.yaml")).unwrap());
    assert_eq!(expected.len(), 3, "the fixture's annotation list");
    let json = scan_json(&dir, &[]);
    let found = resolved(&json);
    assert_eq!(images(&found), expected);
    // Every template line is resolved (nginx twice, git twice, the exporter once), each with
    // its template, the values that made it, and the knob.
    assert_eq!(found.len(), 5);
    let nginx = found
        .iter()
        .find(|f| f["line"] == 107)
        .expect("deployment.yaml:107 resolved");
    let r = &nginx["resolution"];
    assert_eq!(r["template"], "{{ include \"nginx.image\" . }}");
    assert_eq!(r["knob"], "global.imageRegistry");
    let defs: Vec<(String, u64)> = r["definitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert!(d["file"].as_str().unwrap().ends_with("nginx/values.yaml"));
            (
                d["name"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
            )
        })
        .collect();
    for want in [
        ("image.registry", 87),
        ("global.imageRegistry", 13),
        ("image.repository", 88),
        ("image.tag", 89),
    ] {
        assert!(
            defs.contains(&(want.0.to_string(), want.1)),
            "{want:?} in {defs:?}"
        );
    }
}

#[test]
fn set_global_image_registry_moves_every_resolved_image_of_the_chart() {
    let json = scan_json(
        &chart("nginx"),
        &["--set", "global.imageRegistry=reg.example:5000"],
    );
    let found = resolved(&json);
    assert_eq!(found.len(), 5);
    for f in &found {
        let image = f["image"].as_str().unwrap();
        assert!(image.starts_with("reg.example:5000/bitnami/"), "{image}");
        let by_set = f["resolution"]["definitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["file"] == "--set" && d["name"] == "global.imageRegistry");
        assert!(by_set, "{f}");
    }
}

#[test]
fn a_values_file_overrides_the_chart_values_and_set_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.yaml");
    std::fs::write(
        &file,
        "image:\n  registry: mirror.example\n  tag: \"1.0\"\nmetrics:\n  image:\n    digest: sha256:0123456789012345678901234567890123456789012345678901234567890123\n",
    )
    .unwrap();
    let json = scan_json(
        &chart("nginx"),
        &["--values", file.to_str().unwrap(), "--set", "image.tag=2.0"],
    );
    let got = images(&resolved(&json));
    assert!(got.contains("mirror.example/bitnami/nginx:2.0"), "{got:?}");
    assert!(
        got.contains("docker.io/bitnami/nginx-exporter@sha256:0123456789012345678901234567890123456789012345678901234567890123"),
        "{got:?}"
    );
    let tag = resolved(&json)
        .into_iter()
        .find(|f| f["image"] == "mirror.example/bitnami/nginx:2.0")
        .unwrap()["resolution"]["definitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "image.registry")
        .cloned()
        .unwrap();
    assert_eq!(tag["file"], file.to_str().unwrap());
    assert_eq!(
        (tag["line"].as_u64(), tag["column"].as_u64()),
        (Some(2), Some(3))
    );
}

#[test]
fn subcharts_resolve_with_their_own_values_and_the_parents_global() {
    let dir = chart("prometheus");
    let json = scan_json(&dir, &[]);
    let expected: BTreeSet<String> = [
        "quay.io/prometheus/prometheus:v3.14.0",
        "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1",
        "quay.io/prometheus/alertmanager:v0.34.0",
        "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0",
        "quay.io/brancz/kube-rbac-proxy:v0.22.1",
        "quay.io/prometheus/node-exporter:v1.12.1",
        "quay.io/prometheus/busybox:latest",
        // The `image:` line of a define in the pushgateway's _helpers.tpl.
        "quay.io/prometheus/pushgateway:v1.11.3",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(images(&resolved(&json)), expected);
    // The digest branches stay templated, saying why.
    let unresolved = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "templated")
        .filter(|f| f["context"].as_str().unwrap().contains("not resolved:"))
        .count();
    assert_eq!(unresolved, 4);
    // The parent's `global` reaches the subcharts: node-exporter and kube-state-metrics read
    // global.imageRegistry, the prometheus server image does not.
    let json = scan_json(&dir, &["--set", "global.imageRegistry=r.example"]);
    let moved = images(&resolved(&json));
    assert!(
        moved.contains("r.example/prometheus/node-exporter:v1.12.1"),
        "{moved:?}"
    );
    assert!(
        moved.contains("r.example/kube-state-metrics/kube-state-metrics:v2.20.0"),
        "{moved:?}"
    );
    // The pushgateway puts the global registry before its repository, as helm would.
    assert!(
        moved.contains("r.example/quay.io/prometheus/pushgateway:v1.11.3"),
        "{moved:?}"
    );
    assert!(
        moved.contains("quay.io/prometheus/prometheus:v3.14.0"),
        "{moved:?}"
    );
    // The parent's override under the subchart's name wins over the subchart's values.
    let json = scan_json(&dir, &["--set", "alertmanager.image.tag=v9"]);
    assert!(images(&resolved(&json)).contains("quay.io/prometheus/alertmanager:v9"));
}

/// The acceptance corpus's Helm templated findings (`{{ .Values … }}`), and how many of them now
/// also have a resolved finding. They sit in a loose template (ks-devops's
/// jenkins-casc-config.yml, no Chart.yaml around it), so they resolve only with `--values`; the
/// builder images call a `define` ("jenkins.agent.variant") the corpus does not hold and stay
/// templated, saying so.
#[test]
fn corpus_helm_templated_findings_resolve_with_the_charts_values_file() {
    let corpus = repo_root().join("../shared/corpus");
    let dir = corpus.join("01-kubesphere-devops");
    if !dir.exists() {
        eprintln!("skipped: {} is not there", dir.display());
        return;
    }
    fn count(json: &serde_json::Value) -> (usize, usize, Vec<&serde_json::Value>) {
        let all = json["findings"].as_array().unwrap();
        let helm: Vec<&serde_json::Value> = all
            .iter()
            .filter(|f| f["kind"] == "templated")
            .filter(|f| f["image"].as_str().unwrap().contains("{{ .Values."))
            .collect();
        let resolved = helm
            .iter()
            .filter(|t| {
                all.iter().any(|f| {
                    f["kind"] == "resolved" && f["file"] == t["file"] && f["line"] == t["line"]
                })
            })
            .count();
        (helm.len(), resolved, helm)
    }
    let (total, resolved, _) = count(&scan_json(&corpus, &[]));
    eprintln!("corpus: {resolved} of {total} Helm templated findings resolved without --values");
    assert_eq!((total, resolved), (14, 0));
    let values = dir.join("jenkins-values.yaml");
    let json = scan_json(&corpus, &["--values", values.to_str().unwrap()]);
    let (total, resolved, helm) = count(&json);
    eprintln!("corpus: {resolved} of {total} Helm templated findings resolved with --values");
    assert_eq!((total, resolved), (14, 5));
    let missing_define = helm
        .iter()
        .filter(|f| {
            f["context"]
                .as_str()
                .unwrap()
                .contains("no template named \"jenkins.agent.variant\"")
        })
        .count();
    assert_eq!(missing_define, 9);
    let agents: BTreeSet<String> = resolved_images_in(&json, "jenkins-casc-config.yml");
    assert_eq!(
        agents,
        BTreeSet::from(["docker.io/jenkins/inbound-agent:4.10-2".to_string()])
    );
}

fn resolved_images_in(json: &serde_json::Value, file: &str) -> BTreeSet<String> {
    images(
        &resolved(json)
            .into_iter()
            .filter(|f| f["file"].as_str().unwrap().ends_with(file))
            .collect::<Vec<_>>(),
    )
}

#[test]
fn a_hostile_chart_leaves_each_reference_templated_with_why() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("templates")).unwrap();
    std::fs::write(root.join("Chart.yaml"), "name: h\nappVersion: \"1\"\n").unwrap();
    std::fs::write(root.join("values.yaml"), "image:\n  repository: x/y\n").unwrap();
    std::fs::write(
        root.join("templates/d.yaml"),
        concat!(
            "{{ define \"a\" }}{{ include \"a\" . }}{{ include \"a\" . }}{{ end }}\n",
            "{{ define \"big\" }}{{ $x := \"ab\" }}{{ range 100000 }}{{ $x = printf \"%s%s\" $x $x }}{{ end }}{{ $x }}{{ end }}\n",
            "spec:\n  containers:\n",
            "  - image: {{ include \"a\" . }}\n",
            "  - image: {{ include \"big\" . }}\n",
            "  - image: {{ semver .Values.image.repository }}\n",
            "  - image: {{ .Values.nothing.here }}\n",
            "  - image: \"{{ .Values.image.repository }}:{{ .Chart.AppVersion }}\"\n",
        ),
    )
    .unwrap();
    let json = scan_json(root, &[]);
    assert_eq!(
        images(&resolved(&json)),
        BTreeSet::from(["docker.io/x/y:1".to_string()])
    );
    let why: Vec<String> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["context"].as_str())
        .filter_map(|c| c.split_once("not resolved: ").map(|(_, w)| w.to_string()))
        .collect();
    for want in [
        "includes nest more than 32 deep",
        "more than 65536 bytes",
        "function semver is not evaluated",
        "nil pointer evaluating .Values.nothing.here",
    ] {
        assert!(why.iter().any(|w| w.contains(want)), "{want} in {why:?}");
    }
}
