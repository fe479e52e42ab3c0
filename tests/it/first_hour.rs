//! What a new user meets first: the README's walk-through run exactly as written, `check`'s fix
//! hints agreeing with what `rewrite` writes, and counts printed in good grammar.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

use crate::{airlock, repo_root, tempdir};

/// A copy of `examples/` in a fresh directory, as the walk-through's user has it.
fn examples_copy() -> tempfile::TempDir {
    let dir = tempdir();
    let status = Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("examples"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn check_fix_hints_name_what_rewrite_fix_implicit_writes_on_the_examples() {
    let dir = examples_copy();
    let examples = dir.path().join("examples");
    let out = airlock()
        .current_dir(&examples)
        .args(["check", "--format", "json", "platform"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let violations = json(&out)["violations"].as_array().unwrap().clone();

    let rewritten = airlock()
        .current_dir(&examples)
        .args(["rewrite", "--write", "--fix-implicit", "platform"])
        .output()
        .unwrap();
    assert!(rewritten.status.success(), "{rewritten:?}");
    let scan = airlock()
        .current_dir(&examples)
        .args(["scan", "--format", "json", "platform"])
        .output()
        .unwrap();
    let written: BTreeSet<(String, String)> = json(&scan)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| {
            Some((
                f["file"].as_str()?.to_string(),
                f["normalized"].as_str()?.to_string(),
            ))
        })
        .collect();

    let (mut moved, mut implicit) = (0, 0);
    for v in &violations {
        let file = v["file"].as_str().unwrap();
        let fix = v["fix"].as_str().unwrap();
        if let Some(target) = fix
            .strip_prefix("airlock rewrite --write (→ ")
            .and_then(|t| t.strip_suffix(')'))
        {
            assert!(
                written.contains(&(file.to_string(), target.to_string())),
                "check said {file} would get {target}; rewrite wrote {written:?}"
            );
            moved += 1;
        }
        if v["rule"] == "implicit-image" {
            let setting = fix
                .strip_prefix("set ")
                .and_then(|s| s.split(" on this").next())
                .unwrap_or_else(|| panic!("an implicit hint in JCasC sets jnlpregistry: {fix}"));
            let text = std::fs::read_to_string(examples.join(file)).unwrap();
            assert!(
                text.lines().any(|l| l.trim() == setting),
                "check said `{setting}`, rewrite wrote:\n{text}"
            );
            implicit += 1;
        }
    }
    assert!(moved > 10 && implicit == 1, "{violations:#?}");
    // The rules entry moves the jnlp agent under /ci, not the default /mirror.
    assert!(violations.iter().any(|v| {
        v["fix"]
            .as_str()
            .unwrap()
            .contains("jnlpregistry: registry.corp.local:5000/ci ")
    }));
}

/// The fenced block of README.md that follows `marker`, one command a line with its comment.
fn readme_block(marker: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let after = &readme[readme.find(marker).expect("the README marker")..];
    let start = after.find("```sh\n").expect("a ```sh block") + "```sh\n".len();
    let body = &after[start..];
    body[..body.find("```").unwrap()]
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The install line both the README and `scripts/first-hour` use.
pub const INSTALL: &str = "cargo install --locked --path .";

#[test]
fn readme_walk_through_runs_as_written_in_a_copy_of_the_checkout() {
    let block = readme_block("The whole static loop on that sample");
    assert!(block.len() >= 6, "{block:?}");
    // Installing is what scripts/first-hour proves (a release build per test run would take
    // minutes); here the binary under test stands in for the installed one, on PATH.
    let (install, rest) = block.split_first().unwrap();
    assert_eq!(install.split('#').next().unwrap().trim(), INSTALL);
    let bin = tempdir();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_airlock"), bin.path().join("airlock")).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let checkout = tempdir();
    Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("examples"))
        .arg(checkout.path())
        .status()
        .unwrap();
    let mut cwd = checkout.path().to_path_buf();
    let mut ran = 0;
    for line in rest {
        let (command, comment) = line.split_once('#').unwrap_or((line, ""));
        let command = command.trim();
        if let Some(dir) = command.strip_prefix("cd ") {
            cwd = cwd.join(dir.trim());
            assert!(cwd.is_dir(), "{line}: no such directory");
            continue;
        }
        // The same clean environment as every CLI test: an empty HOME, no Docker config.
        let isolated = crate::airlock_process();
        let mut sh = Command::new("sh");
        for (k, v) in isolated.get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        let out = sh
            .arg("-c")
            .arg(command)
            .current_dir(&cwd)
            .env("PATH", &path)
            .output()
            .unwrap();
        // The comment says what the user should see: "fails" means exit 1, else success.
        let expected = if comment.trim_start().starts_with("fails") {
            1
        } else {
            0
        };
        assert_eq!(
            out.status.code(),
            Some(expected),
            "`{command}` in {}:\n{}{}",
            cwd.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // And what the comments promise the user sees.
        let stdout = String::from_utf8_lossy(&out.stdout);
        if comment.contains("implicit jnlp agent") {
            assert!(stdout.contains("implicit"), "{command}: {stdout}");
        }
        if comment.contains("an implicit image") {
            assert!(stdout.contains("implicit-image"), "{command}: {stdout}");
        }
        if comment.contains("the diff") {
            assert!(stdout.starts_with("--- a/"), "{command}: {stdout}");
        }
        ran += 1;
    }
    assert_eq!(ran, rest.iter().filter(|l| !l.starts_with("cd ")).count());
}

#[test]
fn quick_start_text_matches_its_command() {
    let block = readme_block("## Quick start");
    let scan = block
        .iter()
        .find(|l| l.contains(" scan "))
        .expect("a scan command");
    let command = scan.split('#').next().unwrap();
    let path = command.split_whitespace().last().unwrap();
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let prose =
        &readme[readme.find("## Quick start").unwrap()..readme.find("## `airlock scan`").unwrap()];
    assert!(
        prose.contains(&format!("scans `{path}`")),
        "the quick start runs `{command}`; the text must say what it scans"
    );
    // And the command reaches the sample platform.
    let out = airlock()
        .current_dir(repo_root())
        .args(["scan", "--format", "list", path])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("jenkins/inbound-agent"));
}

#[test]
fn short_f_is_file_everywhere_and_format_is_long_only() {
    let dir = examples_copy();
    let examples = dir.path().join("examples");
    for verb in ["scan", "check"] {
        let out = airlock()
            .current_dir(&examples)
            .args([verb, "-f", "json", "platform"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{verb} -f json");
        let out = airlock()
            .current_dir(&examples)
            .args([verb, "--format", "json", "platform"])
            .output()
            .unwrap();
        json(&out);
    }
    let out = airlock().args(["lock", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("-f, --file <FILE>"));
}

#[test]
fn mirror_help_lists_no_policy_flags_and_refuses_them() {
    let help = airlock().args(["mirror", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--rule <FROM=TO>"), "{help}");
    for flag in [
        "--deny-latest",
        "--require-digest",
        "--allow-registry",
        "--pull-secret",
    ] {
        assert!(!help.contains(flag), "mirror --help lists {flag}:\n{help}");
    }
    let out = airlock()
        .args([
            "mirror",
            "--deny-latest",
            "--to",
            "registry.corp",
            "-f",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let check = airlock().args(["check", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&check.stdout).contains("--deny-latest"));
}

#[test]
fn a_missing_path_is_reported_and_the_other_paths_still_scanned() {
    let dir = tempdir();
    std::fs::write(dir.path().join("ok.yaml"), "image: nginx:1.25\n").unwrap();
    let out = airlock()
        .current_dir(dir.path())
        .args(["scan", "ok.yaml", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("docker.io/library/nginx:1.25"), "{stdout}");
    assert!(stdout.contains("ok.yaml:1:8"), "{stdout}");
    assert!(
        stderr.contains("/nonexistent") && stderr.contains("No such file"),
        "{stderr}"
    );

    let out = airlock()
        .current_dir(dir.path())
        .args(["scan", "--format", "json", "ok.yaml", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v = json(&out);
    assert_eq!(v["findings"][0]["file"], "ok.yaml");
    assert_eq!(v["errors"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["errors"][0]["file"], "/nonexistent");

    // check reads its inputs the same way.
    let out = airlock()
        .current_dir(dir.path())
        .args([
            "check",
            "--format",
            "json",
            "--deny-latest",
            "ok.yaml",
            "missing.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json(&out)["errors"][0]["file"], "missing.yaml");
}

#[test]
fn push_of_a_missing_archive_says_so_once() {
    let dir = tempdir();
    let out = airlock()
        .current_dir(dir.path())
        .args(["push", "nothere.tar", "--to", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("nothere.tar").count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn counts_are_printed_with_the_noun_that_agrees() {
    let dir = tempdir();
    std::fs::write(dir.path().join("one.yaml"), "image: nginx:1.25\n").unwrap();
    let out = airlock()
        .current_dir(dir.path())
        .args(["scan", "one.yaml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 place, literal"), "{stdout}");
    assert!(
        stdout.ends_with("1 image to pull, 1 finding, 0 errors\n"),
        "{stdout}"
    );

    std::fs::write(
        dir.path().join("two.yaml"),
        "a: {image: nginx:1.25}\nb: {image: redis:7}\n",
    )
    .unwrap();
    let out = airlock()
        .current_dir(dir.path())
        .args(["scan", "two.yaml", "one.yaml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 places, literal"), "{stdout}");
    assert!(
        stdout.ends_with("2 images to pull, 3 findings, 0 errors\n"),
        "{stdout}"
    );

    let out = airlock()
        .current_dir(dir.path())
        .args(["check", "--deny-latest", "one.yaml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("no violations in 1 file; 0 templated values not checked"),
        "{stdout}"
    );
}

/// Without the chart's templates, `rewrite` cannot know whether they prepend
/// `global.imageRegistry` to an image written in full; it says which edit it made and why.
#[test]
fn rewrite_says_which_helm_edit_it_made_when_the_templates_are_absent() {
    let dir = tempdir();
    let values = "\
global:
  imageRegistry: docker.io
image:
  registry: docker.io
  repository: bitnami/nginx
  tag: \"1.25\"
sidecar:
  image:
    repository: bitnami/redis
    tag: \"7.2\"
exporter:
  image: prom/statsd-exporter:v0.26.0
";
    std::fs::write(dir.path().join("values.yaml"), values).unwrap();
    for write in [false, true] {
        let mut args = vec!["rewrite", "--registry", "registry.corp:5000"];
        if write {
            args.push("--write");
        }
        args.push("values.yaml");
        let out = airlock()
            .current_dir(dir.path())
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let notes: Vec<&str> = stderr.lines().filter(|l| l.contains(": note: ")).collect();
        assert_eq!(notes.len(), 2, "{stderr}");
        assert!(
            notes[0].starts_with("airlock: values.yaml:2:18: note: docker.io/bitnami/nginx:1.25, docker.io/bitnami/redis:7.2: edited global.imageRegistry (docker.io -> registry.corp:5000)"),
            "{stderr}"
        );
        assert!(
            notes[1].starts_with("airlock: values.yaml:12:10: note: prom/statsd-exporter:v0.26.0: wrote the private registry into this image's own value")
                && notes[1].contains("double prefix"),
            "{stderr}"
        );
    }
    let text = std::fs::read_to_string(dir.path().join("values.yaml")).unwrap();
    assert!(
        text.contains("imageRegistry: registry.corp:5000\n"),
        "{text}"
    );
    assert!(
        text.contains("image: registry.corp:5000/prom/statsd-exporter:v0.26.0\n"),
        "{text}"
    );

    // No global setting, no choice to explain.
    std::fs::write(dir.path().join("plain.yaml"), "image: nginx:1.25\n").unwrap();
    let out = airlock()
        .current_dir(dir.path())
        .args(["rewrite", "--registry", "registry.corp:5000", "plain.yaml"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("note:"));
}
