//! `airlock check` from the command line: a clean platform passes, every rule fires on the
//! configuration that breaks it, the JSON and SARIF shapes hold, and exit codes mean what the
//! README says (0 clean, 1 violations, 2 unreadable input or usage error).

use std::path::Path;

use serde_json::Value;

use crate::{airlock, repo_root, tempdir};

/// The policy most tests run under: everything from the private registry, pinned, with the
/// pull secret on the pod or its ServiceAccount.
const CONFIG: &str = "\
registry: registry.corp.local:5000/mirror
pullSecret: regcred
policy:
  denyLatest: true
";

fn check(dir: &Path, args: &[&str]) -> std::process::Output {
    airlock()
        .current_dir(dir)
        .arg("check")
        .args(args)
        .output()
        .unwrap()
}

/// Write `files` (and `airlock.yaml`) into a fresh directory and check it as JSON.
fn check_json(config: &str, files: &[(&str, &str)]) -> (Value, i32) {
    let dir = tempdir();
    std::fs::write(dir.path().join("airlock.yaml"), config).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = check(dir.path(), &["--format", "json", "."]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    (v, out.status.code().unwrap())
}

/// `(rule, line, column)` of every violation.
fn rules(v: &Value) -> Vec<(String, u64, u64)> {
    v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["rule"].as_str().unwrap().to_string(),
                v["line"].as_u64().unwrap(),
                v["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn only(v: &Value, rule: &str) -> Vec<(u64, u64)> {
    rules(v)
        .into_iter()
        .filter(|(r, _, _)| r == rule)
        .map(|(_, l, c)| (l, c))
        .collect()
}

fn pod(image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: ns}}\nspec:\n  imagePullSecrets: [{{name: regcred}}]\n  containers:\n    - name: c\n      image: {image}\n"
    )
}

#[test]
fn a_platform_pointed_at_the_private_registry_passes() {
    let clean = repo_root().join("tests/fixtures/check/clean");
    let out = check(&clean, &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout,
        "no violations in 5 files; 1 templated value not checked\n"
    );
}

#[test]
fn registry_not_allowed_points_at_the_value_and_names_the_rewrite() {
    let (v, code) = check_json(CONFIG, &[("pod.yaml", &pod("nginx:1.27"))]);
    assert_eq!(code, 1);
    assert_eq!(rules(&v), [("registry-not-allowed".to_string(), 8, 14)]);
    let x = &v["violations"][0];
    assert_eq!(x["image"], "nginx:1.27");
    assert_eq!(
        x["fix"],
        "airlock rewrite --write (→ registry.corp.local:5000/mirror/library/nginx:1.27)"
    );
}

#[test]
fn an_allow_list_from_flags_replaces_the_mapping_target() {
    let (v, code) = check_json(
        "policy: {allowRegistries: [quay.io]}\n",
        &[
            ("a.yaml", &pod("quay.io/x/y:1")),
            ("b.yaml", &pod("ghcr.io/x/y:1")),
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(v["violations"].as_array().unwrap().len(), 1);
    assert!(
        v["violations"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("b.yaml")
    );
}

#[test]
fn latest_and_missing_tags_fire_when_denied() {
    let image = "registry.corp.local:5000/mirror/library/nginx";
    let (v, code) = check_json(
        CONFIG,
        &[
            ("a.yaml", &pod(image)),
            ("b.yaml", &pod(&format!("{image}:latest"))),
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(only(&v, "latest-tag"), [(8, 14), (8, 14)]);
    assert_eq!(
        v["violations"][0]["fix"],
        format!("pin a version: {image}:<version>")
    );
}

#[test]
fn missing_digest_fires_when_required() {
    let config = format!("{CONFIG}  requireDigest: true\n");
    let (v, code) = check_json(
        &config,
        &[(
            "pod.yaml",
            &pod("registry.corp.local:5000/mirror/library/nginx:1.27"),
        )],
    );
    assert_eq!(code, 1);
    assert_eq!(rules(&v), [("missing-digest".to_string(), 8, 14)]);
}

const CASC: &str = "\
jenkins:
  clouds:
    - kubernetes:
        name: kubernetes
        templates:
          - name: maven
            containers:
              - name: agent
                image: registry.corp.local:5000/mirror/jenkins/inbound-agent:3283.v92c105e0f819-4
";

#[test]
fn the_injected_jnlp_agent_and_a_misnamed_agent_container_fire() {
    let (v, code) = check_json(CONFIG, &[("jenkins.yaml", CASC)]);
    assert_eq!(code, 1);
    assert_eq!(
        rules(&v),
        [
            ("implicit-image".to_string(), 6, 19),
            ("jnlp-container-name".to_string(), 9, 24),
        ]
    );
    assert_eq!(
        v["violations"][0]["fix"],
        "set jnlpregistry: registry.corp.local:5000/mirror on this Kubernetes cloud \
         (airlock rewrite --fix-implicit --write)"
    );
    assert_eq!(
        v["violations"][1]["fix"],
        "rename container \"agent\" to jnlp"
    );
    let fixed = CASC.replace("name: agent", "name: jnlp");
    let (v, code) = check_json(CONFIG, &[("jenkins.yaml", &fixed)]);
    assert_eq!((code, rules(&v)), (0, vec![]));
}

#[test]
fn a_global_registry_that_does_not_reach_an_image_fires() {
    let values = "\
global:
  imageRegistry: registry.corp.local:5000/mirror
controller:
  image: {repository: bitnami/nginx, tag: \"1.25\"}
exporter:
  image: quay.io/prometheus/nginx-exporter:1.1
";
    let k0s = "\
apiVersion: k0s.k0sproject.io/v1beta1
kind: ClusterConfig
spec:
  images:
    repository: quay.io/mirror
    coredns: {image: coredns/coredns, version: 1.9.4}
";
    let (v, code) = check_json(CONFIG, &[("values.yaml", values), ("k0s.yaml", k0s)]);
    assert_eq!(code, 1);
    assert_eq!(
        rules(&v),
        [
            ("global-registry-ignored".to_string(), 6, 22),
            ("global-registry-ignored".to_string(), 6, 10),
        ]
    );
    let messages: Vec<&str> = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    assert!(
        messages[0].starts_with("k0s pulls quay.io/mirror/coredns/coredns:1.9.4"),
        "{messages:?}"
    );
    assert!(
        messages[1].starts_with("global.imageRegistry is registry.corp.local:5000/mirror"),
        "{messages:?}"
    );
}

#[test]
fn a_private_pull_without_the_pull_secret_fires_unless_the_service_account_has_it() {
    let deployment = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  template:
    spec:
      containers:
        - name: api
          image: registry.corp.local:5000/mirror/shop/api:1.4
";
    let (v, code) = check_json(CONFIG, &[("d.yaml", deployment)]);
    assert_eq!(code, 1);
    assert_eq!(rules(&v), [("missing-pull-secret".to_string(), 7, 7)]);
    assert_eq!(
        v["violations"][0]["fix"],
        "add imagePullSecrets: [{name: regcred}] to ServiceAccount default in namespace shop"
    );
    let sa = "kind: ServiceAccount\napiVersion: v1\nmetadata: {name: default, namespace: shop}\nimagePullSecrets: [{name: regcred}]\n";
    let (v, code) = check_json(CONFIG, &[("d.yaml", deployment), ("sa.yaml", sa)]);
    assert_eq!((code, rules(&v)), (0, vec![]));
}

#[test]
fn human_output_has_positions_fixes_and_a_summary() {
    let dir = tempdir();
    std::fs::write(dir.path().join("airlock.yaml"), CONFIG).unwrap();
    std::fs::write(dir.path().join("b.yaml"), pod("nginx")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), pod("quay.io/x/y:1")).unwrap();
    let values = "image:\n  repository: x/y\n  tag: \"{{ .Chart.AppVersion }}\"\n";
    std::fs::write(dir.path().join("values.yaml"), values).unwrap();
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{stdout}");
    assert_eq!(
        lines[0],
        "./a.yaml:8:14: registry-not-allowed: quay.io/x/y:1 is pulled from quay.io, which is not an \
         allowed registry (registry.corp.local:5000/mirror)"
    );
    assert_eq!(
        lines[1],
        "    fix: airlock rewrite --write (→ registry.corp.local:5000/mirror/x/y:1)"
    );
    assert!(
        lines[2].starts_with("./b.yaml:8:14: registry-not-allowed: nginx "),
        "{stdout}"
    );
    assert!(
        lines[4].starts_with("./b.yaml:8:14: latest-tag: nginx has no tag"),
        "{stdout}"
    );
    assert_eq!(lines[5], "    fix: pin a version: nginx:<version>");
    assert_eq!(
        lines[6],
        "3 violations in 2 files; 1 templated value not checked"
    );
}

#[test]
fn json_output_has_every_field_and_byte_ranges_into_the_file() {
    let text = format!("# ü — non-ASCII before the value\n{}", pod("nginx:latest"));
    let (v, code) = check_json(CONFIG, &[("pod.yaml", &text)]);
    assert_eq!(code, 1);
    assert_eq!(v["errors"], Value::Array(vec![]));
    assert_eq!(v["templated"], 0);
    let x = &v["violations"][0];
    for key in [
        "file",
        "line",
        "column",
        "end_line",
        "end_column",
        "byte_start",
        "byte_end",
        "rule",
        "image",
        "message",
        "fix",
    ] {
        assert!(!x[key].is_null(), "{key} missing in {x}");
    }
    let (s, e) = (
        x["byte_start"].as_u64().unwrap() as usize,
        x["byte_end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&text[s..e], "nginx:latest");
    assert_eq!(
        (x["line"].as_u64(), x["column"].as_u64()),
        (Some(9), Some(14))
    );
    assert_eq!(x["end_column"].as_u64(), Some(26));
}

#[test]
fn sarif_output_is_a_sarif_2_1_0_log() {
    let dir = tempdir();
    std::fs::write(dir.path().join("airlock.yaml"), CONFIG).unwrap();
    std::fs::write(dir.path().join("pod.yaml"), pod("nginx")).unwrap();
    let out = check(dir.path(), &["--format", "sarif"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("SARIF is JSON");
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "airlock");
    let ids: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["shortDescription"]["text"].is_string());
            r["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        ids,
        [
            "registry-not-allowed",
            "latest-tag",
            "missing-digest",
            "implicit-image",
            "global-registry-ignored",
            "jnlp-container-name",
            "missing-pull-secret",
        ]
    );
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let r = &results[0];
    assert_eq!(r["ruleId"], "registry-not-allowed");
    assert_eq!(
        ids[r["ruleIndex"].as_u64().unwrap() as usize],
        "registry-not-allowed"
    );
    assert_eq!(r["level"], "error");
    assert!(
        r["message"]["text"]
            .as_str()
            .unwrap()
            .contains("(fix: airlock rewrite --write")
    );
    let location = &r["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "pod.yaml");
    let region = &location["region"];
    assert_eq!(
        [
            &region["startLine"],
            &region["startColumn"],
            &region["endLine"],
            &region["endColumn"]
        ],
        [8, 14, 8, 19]
    );
    assert_eq!((region["byteLength"].as_u64()), Some(5));
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);
}

#[test]
fn unreadable_input_exits_two_and_the_rest_is_still_checked() {
    let dir = tempdir();
    std::fs::write(dir.path().join("airlock.yaml"), CONFIG).unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "kind: Pod\nspec:\n  containers: [\n    {image: nginx\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("pod.yaml"), pod("nginx:1.27")).unwrap();
    let out = check(dir.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["errors"][0]["file"], "./broken.yaml");
    assert_eq!(only(&v, "registry-not-allowed"), [(8, 14)]);

    let out = check(dir.path(), &["broken.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("broken.yaml:5:1: "), "{stderr}");
    let sarif = check(dir.path(), &["--format", "sarif", "broken.yaml"]);
    let v: Value = serde_json::from_slice(&sarif.stdout).unwrap();
    assert_eq!(v["runs"][0]["invocations"][0]["executionSuccessful"], false);
}

#[test]
fn usage_and_configuration_errors_exit_two() {
    let dir = tempdir();
    assert_eq!(
        check(dir.path(), &["--format", "xml"]).status.code(),
        Some(2)
    );
    assert_eq!(
        check(dir.path(), &["no-such-file.yaml"]).status.code(),
        Some(2)
    );
    let out = check(dir.path(), &["--allow-registry", "mirror", "."]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("allowed registry \"mirror\" is not host[:port][/prefix]"),
        "{stderr}"
    );
}

#[test]
fn without_a_registry_only_the_registry_free_rules_run_and_say_so() {
    let dir = tempdir();
    std::fs::write(dir.path().join("pod.yaml"), pod("nginx")).unwrap();
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("registries, implicit images and pull secrets are not checked")
    );
    let out = check(dir.path(), &["--deny-latest"]);
    assert_eq!(out.status.code(), Some(1));
}
