//! Templated references of Ansible roles resolved from their declared defaults, checked
//! against ks-installer's own offline image list (tests/fixtures/ks-installer: the files, the
//! pinned commit and licence in SOURCE.md, the oracle's output rendered by Python's jinja2 with
//! `regenerate`).

use std::collections::BTreeSet;

use crate::{airlock, repo_root};

fn fixture() -> std::path::PathBuf {
    repo_root().join("tests/fixtures/ks-installer")
}

/// The oracle's image lines, normalised, and the lines an undefined variable left incomplete
/// (`quay.io/argoproj/argocd:`: jinja2 prints an undefined tag as nothing).
fn oracle(name: &str) -> (BTreeSet<String>, Vec<String>) {
    let text = std::fs::read_to_string(fixture().join("oracle").join(name)).unwrap();
    let (mut images, mut broken) = (BTreeSet::new(), Vec::new());
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match imgref::Reference::parse(line) {
            Ok(r) if !line.ends_with(':') => {
                images.insert(r.normalized().to_string());
            }
            _ => broken.push(line.to_string()),
        }
    }
    (images, broken)
}

fn scan_json(extra: &[&str]) -> serde_json::Value {
    let out = airlock()
        .args(["scan", "--format", "json"])
        .args(extra)
        .arg(fixture())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn scan_list(extra: &[&str]) -> BTreeSet<String> {
    let out = airlock()
        .args(["scan", "--format", "list"])
        .args(extra)
        .arg(fixture())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn scan_list_of_ks_installer_roles_equals_the_installer_s_own_image_list() {
    let (expected, broken) = oracle("images-list.txt");
    assert_eq!(expected.len(), 119, "the oracle's list changed");
    assert_eq!(scan_list(&[]), expected);
    // The two lines the installer itself renders with an undefined tag stay templated, each
    // saying which variable is undefined; every other templated entry was resolved.
    assert_eq!(broken, ["kubesphere/kubectl:", "quay.io/argoproj/argocd:"]);
    let json = scan_json(&[]);
    let findings = json["findings"].as_array().unwrap();
    let templated: Vec<&str> = findings
        .iter()
        .filter(|f| f["kind"] == "templated")
        .map(|f| f["context"].as_str().unwrap())
        .collect();
    assert_eq!(
        templated,
        [
            "images.post_install_job › repo:tag (not resolved: post_install_job_tag is undefined)",
            "images.argocd_repo › repo:tag (not resolved: argocd_repo_tag is undefined)",
        ]
    );
    let resolved = findings.iter().filter(|f| f["kind"] == "resolved").count();
    assert_eq!(
        resolved, 120,
        "one finding per images: entry with every variable defined"
    );
    assert!(json["errors"].as_array().unwrap().is_empty());
}

#[test]
fn set_local_registry_moves_every_resolved_image_as_the_installer_does() {
    let (expected, _) = oracle("images-list.local_registry.txt");
    let moved = scan_list(&["--set", "local_registry=registry.example:5000"]);
    assert_eq!(moved, expected);
    assert!(
        moved
            .iter()
            .all(|r| r.starts_with("registry.example:5000/"))
    );
}

#[test]
fn scan_names_the_registry_knob_and_the_definitions_behind_each_image() {
    let json = scan_json(&[]);
    let apiserver = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["context"]
                .as_str()
                .unwrap()
                .starts_with("images.ks_apiserver ")
        })
        .unwrap();
    assert_eq!(
        apiserver["normalized"],
        "docker.io/kubespheredev/ks-apiserver:master"
    );
    let r = &apiserver["resolution"];
    assert_eq!(
        r["template"],
        "{{ ks_apiserver_repo }}:{{ ks_apiserver_tag }}"
    );
    assert_eq!(r["knob"], "local_registry");
    let defs: Vec<String> = r["definitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {}:{}",
                d["name"].as_str().unwrap(),
                d["line"],
                d["column"]
            )
        })
        .collect();
    assert_eq!(
        defs,
        [
            "ks_apiserver_repo 53:1",
            "base_repo 6:1",
            "ks_apiserver_tag 54:1",
            "ks_version 45:1"
        ]
    );
    let table = airlock().arg("scan").arg(fixture()).output().unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.contains("registry knob: local_registry moves every resolved image"),
        "{text}"
    );
    assert!(
        text.contains("from {{ ks_apiserver_repo }}:{{ ks_apiserver_tag }} (ks_apiserver_repo")
    );
}

#[test]
fn a_role_s_jinja_manifest_is_read_as_a_template_and_its_image_resolved() {
    let dir = crate::tempdir();
    let role = dir.path().join("roles/app");
    std::fs::create_dir_all(role.join("defaults")).unwrap();
    std::fs::create_dir_all(role.join("templates")).unwrap();
    std::fs::write(
        role.join("defaults/main.yml"),
        "registry: \"{{ my_registry | default('ghcr.io') }}\"\napp_tag: \"{{ '1.2' ~ '.3' }}\"\n",
    )
    .unwrap();
    std::fs::write(
        role.join("templates/deploy.yaml.j2"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n{% if true %}\n        - name: app\n          image: \"{{ registry }}/acme/app:{{ app_tag | upper | lower }}\"\n{% endif %}\n",
    )
    .unwrap();
    let out = airlock()
        .args(["scan", "--format", "list", "--set", "my_registry=quay.io"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "quay.io/acme/app:1.2.3\n"
    );
}

#[test]
fn a_set_without_a_name_is_a_usage_error() {
    let out = airlock()
        .args(["scan", "--set", "=x", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a variable name"));
}
