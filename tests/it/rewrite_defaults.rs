//! `airlock rewrite` on what scan finds exactly but is not written as one literal value:
//! defaults of variables (compose `${VAR:-default}`, Dockerfile `ARG NAME=default`) and kustomize
//! entries that only select an image by `name:` (issue 11, item 2).

use std::path::Path;

use crate::{airlock, tempdir};

const TARGET: &str = "registry.corp.local:5000/mirror";

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

fn rewrite_write(dir: &Path) -> std::process::Output {
    airlock()
        .current_dir(dir)
        .args([
            "rewrite",
            "--registry",
            TARGET,
            "--mapping",
            "keep-host",
            "--write",
            ".",
        ])
        .output()
        .unwrap()
}

/// Every image `scan --format list` finds in `dir`.
fn listed(dir: &Path) -> Vec<String> {
    let out = airlock()
        .current_dir(dir)
        .args(["scan", "--format", "list", "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn defaults_of_variables_are_rewritten_inside_the_variable() {
    let dir = tempdir();
    write(
        dir.path(),
        &[
            (
                "compose.yaml",
                "services:\n  web:\n    image: \"${WEB_IMAGE:-nginx:1.25}\"\n  cache:\n    image: ${CACHE-redis:7}\n",
            ),
            (
                "Dockerfile",
                "ARG BASE=golang:1.22\nARG RUNTIME=\"gcr.io/distroless/static:nonroot\"\nFROM ${BASE} AS build\nFROM $RUNTIME\n",
            ),
        ],
    );
    let out = rewrite_write(dir.path());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        read(dir.path(), "compose.yaml"),
        format!(
            "services:\n  web:\n    image: \"${{WEB_IMAGE:-{TARGET}/docker.io/library/nginx:1.25}}\"\n  cache:\n    image: ${{CACHE-{TARGET}/docker.io/library/redis:7}}\n"
        )
    );
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        format!(
            "ARG BASE={TARGET}/docker.io/library/golang:1.22\nARG RUNTIME=\"{TARGET}/gcr.io/distroless/static:nonroot\"\nFROM ${{BASE}} AS build\nFROM $RUNTIME\n"
        )
    );
    for image in listed(dir.path()) {
        assert!(image.starts_with(TARGET), "{image} is not mapped");
    }
}

#[test]
fn a_kustomize_entry_with_only_a_name_gets_a_new_name() {
    let dir = tempdir();
    write(
        dir.path(),
        &[(
            "kustomization.yaml",
            "resources:\n- deploy.yaml\nimages:\n- name: nginx\n  newTag: \"1.25\"\n- name: quay.io/app/api\n  digest: sha256:0123456789012345678901234567890123456789012345678901234567890123\n",
        )],
    );
    let out = rewrite_write(dir.path());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        read(dir.path(), "kustomization.yaml"),
        format!(
            "resources:\n- deploy.yaml\nimages:\n- name: nginx\n  newName: {TARGET}/docker.io/library/nginx\n  newTag: \"1.25\"\n- name: quay.io/app/api\n  newName: {TARGET}/quay.io/app/api\n  digest: sha256:0123456789012345678901234567890123456789012345678901234567890123\n"
        )
    );
    let images = listed(dir.path());
    assert_eq!(images.len(), 2, "{images:?}");
    for image in images {
        assert!(image.starts_with(TARGET), "{image} is not mapped");
    }
}

#[test]
fn what_cannot_be_rewritten_says_why_and_where() {
    let dir = tempdir();
    write(
        dir.path(),
        &[(
            "kustomization.yaml",
            "images:\n- {name: nginx, newTag: \"1.25\"}\n",
        )],
    );
    let out = rewrite_write(dir.path());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("./kustomization.yaml:2:10: nginx:1.25 left as is: ")
            && stderr.contains("add `newName:`"),
        "{stderr}"
    );
    assert_eq!(
        read(dir.path(), "kustomization.yaml"),
        "images:\n- {name: nginx, newTag: \"1.25\"}\n"
    );
}
