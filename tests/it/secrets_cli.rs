//! `airlock secrets` run as a user runs it, against the kube-apiserver stand-in: printed with
//! the password redacted, written to a 0600 file that validates, applied keeping the user's
//! pull secrets, applied again with no write at all, and never a password on the terminal.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::airlock;
use crate::fake_apiserver::{FakeApi, recorded};

const PASSWORD: &str = "Pull-Only-7f3a9c";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn secrets(api: &FakeApi, dir: &std::path::Path, args: &[&str]) -> Run {
    let kubeconfig = api.kubeconfig(dir, "ci");
    let out = airlock()
        .current_dir(dir)
        .env("KUBECONFIG", &kubeconfig)
        .arg("secrets")
        .args([
            "--registry",
            "registry.corp.local:5000",
            "--username",
            "puller",
            "--password-stdin",
        ])
        .args(args)
        .write_stdin(format!("{PASSWORD}\n"))
        .output()
        .unwrap();
    let run = Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains(PASSWORD),
            "the password was printed:\n{text}"
        );
    }
    run
}

fn cluster() -> FakeApi {
    let api = FakeApi::start();
    api.object(recorded("serviceaccount-ci-default"))
        .object(recorded("serviceaccount-shop-default"));
    api
}

#[test]
fn secrets_prints_yaml_with_the_password_redacted_and_writes_nothing() {
    let api = cluster();
    let dir = tempfile::tempdir().unwrap();
    let run = secrets(&api, dir.path(), &["-n", "ci", "-n", "shop"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("REDACTED"), "{}", run.stdout);
    assert_eq!(
        run.stdout.matches("kind: Secret").count(),
        2,
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.matches("kind: ServiceAccount").count(), 2);
    // The ServiceAccount keeps the user's entry: applying it cannot drop it.
    assert!(run.stdout.contains("jenkins-docker-cfg"), "{}", run.stdout);
    assert!(
        run.stderr.contains(
            "namespace ci: Secret airlock-registry to create; ServiceAccount default to update"
        ),
        "{}",
        run.stderr
    );
    assert!(api.writes().is_empty(), "{:?}", api.writes());
}

#[test]
fn secrets_output_file_holds_the_credentials_at_mode_0600_and_validates() {
    let api = cluster();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pull-secrets.yaml");
    // An existing, world-readable file is replaced by a private one.
    std::fs::write(&file, "old").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = secrets(
        &api,
        dir.path(),
        &["-n", "ci", "-o", file.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("REDACTED"), "{text}");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD
        .decode(docs[0]["data"][".dockerconfigjson"].as_str().unwrap())
        .unwrap();
    let config: Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(
        config["auths"]["registry.corp.local:5000"]["password"],
        PASSWORD
    );
    crate::deploy::validate(&[file], "1.33.0").unwrap();
}

#[test]
fn secrets_apply_twice_keeps_the_users_pull_secrets_and_the_second_run_writes_nothing() {
    let api = cluster();
    let dir = tempfile::tempdir().unwrap();
    let first = secrets(&api, dir.path(), &["-n", "ci", "--apply"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains(
            "namespace ci: Secret airlock-registry created; ServiceAccount default updated"
        ),
        "{}",
        first.stderr
    );
    assert_eq!(api.writes().len(), 2, "{:?}", api.writes());
    let account = api
        .get_object("/api/v1/namespaces/ci/serviceaccounts/default")
        .unwrap();
    let names: Vec<&str> = account["imagePullSecrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["jenkins-docker-cfg", "airlock-registry"]);

    api.forget_seen();
    let second = secrets(&api, dir.path(), &["-n", "ci", "--apply"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains(
            "namespace ci: Secret airlock-registry unchanged; ServiceAccount default unchanged"
        ),
        "{}",
        second.stderr
    );
    assert!(api.writes().is_empty(), "{:?}", api.writes());
    assert!(!api.seen().is_empty());
}

#[test]
fn secrets_for_a_namespace_without_the_service_account_fail_there_and_go_on() {
    let api = cluster();
    let dir = tempfile::tempdir().unwrap();
    let run = secrets(&api, dir.path(), &["-n", "ci", "-n", "empty", "--apply"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("ServiceAccount empty/default does not exist"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("namespace ci: Secret airlock-registry created"),
        "{}",
        run.stderr
    );
}

#[test]
fn secrets_take_the_credentials_of_docker_login_when_no_password_is_given() {
    let api = cluster();
    let dir = tempfile::tempdir().unwrap();
    let docker = dir.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"registry.corp.local:5000":{{"auth":"{}"}}}}}}"#,
            "ZnJvbS1sb2dpbjpMb2dpbi1QYXNzLTk5" // from-login:Login-Pass-99
        ),
    )
    .unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), "ci");
    let out = airlock()
        .env("KUBECONFIG", &kubeconfig)
        .env("DOCKER_CONFIG", &docker)
        .args([
            "secrets",
            "--registry",
            "registry.corp.local:5000",
            "--apply",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Login-Pass-99"));
    let secret = api
        .get_object("/api/v1/namespaces/ci/secrets/airlock-registry")
        .unwrap();
    let sent = api
        .writes()
        .into_iter()
        .find(|w| w.path.ends_with("/secrets"))
        .unwrap();
    assert!(
        sent.body
            .contains(secret["data"][".dockerconfigjson"].as_str().unwrap())
    );
    let without = airlock()
        .env("KUBECONFIG", &kubeconfig)
        .args(["secrets", "--registry", "registry.corp.local:5000"])
        .output()
        .unwrap();
    assert_eq!(without.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&without.stderr)
            .contains("no credentials for registry.corp.local:5000")
    );
}
