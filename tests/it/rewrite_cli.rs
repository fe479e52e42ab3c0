//! `airlock rewrite` from the command line: diff, --check, --write, and the guarantees — only
//! image values change, a second run changes nothing, nothing is half-written.

use std::path::Path;

use crate::{airlock, repo_root, tempdir};

const TARGET: &str = "registry.corp.local:5000/mirror";

fn rewrite(dir: &Path, extra: &[&str]) -> std::process::Output {
    airlock()
        .current_dir(dir)
        .args(["rewrite", "--registry", TARGET])
        .args(extra)
        .output()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
            let mut perms = std::fs::metadata(&dest).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)] // test copies of read-only fixtures
            perms.set_readonly(false);
            std::fs::set_permissions(&dest, perms).unwrap();
        }
    }
}

/// Every changed line differs from the original only inside one value token that now names the
/// target registry, or is a line `--fix-implicit` adds (naming the target too).
fn assert_only_values_changed(name: &str, old: &str, new: &str) {
    let diff = similar::TextDiff::from_lines(old, new);
    for op in diff.ops() {
        let (old_lines, new_lines): (Vec<_>, Vec<_>) = (
            diff.iter_changes(op)
                .filter(|c| c.tag() == similar::ChangeTag::Delete)
                .map(|c| c.value())
                .collect(),
            diff.iter_changes(op)
                .filter(|c| c.tag() == similar::ChangeTag::Insert)
                .map(|c| c.value())
                .collect(),
        );
        // Lines `--fix-implicit` adds: a `jnlpregistry:` setting or an explicit jnlp container
        // (`- name: jnlp` with the `image:` line after it, or a Groovy `containerTemplate`).
        let (mut added, mut replaced) = (Vec::new(), Vec::new());
        for (i, line) in new_lines.iter().enumerate() {
            let t = line.trim_start();
            let after_jnlp_item = i > 0
                && new_lines[i - 1].trim_start() == "- name: jnlp\n"
                && t.starts_with("image: ");
            if t.starts_with("jnlpregistry: ")
                || t == "- name: jnlp\n"
                || t.starts_with("containerTemplate(name: 'jnlp', image: ")
                || after_jnlp_item
            {
                added.push(line);
            } else {
                replaced.push(line);
            }
        }
        assert_eq!(
            old_lines.len(),
            replaced.len(),
            "{name}: lines removed or added: {old_lines:?} -> {new_lines:?}"
        );
        for l in added {
            assert!(
                l.contains(TARGET) || l.trim() == "- name: jnlp",
                "{name}: {l}"
            );
        }
        for (o, n) in old_lines.iter().zip(replaced) {
            let prefix = o.bytes().zip(n.bytes()).take_while(|(a, b)| a == b).count();
            let suffix = o[prefix..]
                .bytes()
                .rev()
                .zip(n[prefix..].bytes().rev())
                .take_while(|(a, b)| a == b)
                .count();
            let old_mid = &o[prefix..o.len() - suffix];
            // The whole value token around the change in the new line must name the target.
            let is_sep = |c: char| " \"'=\t\n".contains(c);
            let start = n[..prefix].rfind(is_sep).map_or(0, |i| i + 1);
            let end = n[n.len() - suffix..]
                .find(is_sep)
                .map_or(n.len(), |i| n.len() - suffix + i);
            assert!(
                !old_mid.contains(is_sep)
                    && !old_mid.contains('#')
                    && n[start..end].contains(TARGET),
                "{name}: more than an image value changed:\n- {o}+ {n}"
            );
        }
    }
}

#[test]
fn rewriting_the_corpus_changes_only_image_values_and_is_idempotent() {
    let corpus = repo_root().join("../shared/corpus");
    if !corpus.exists() {
        eprintln!("skipped: {} is not there", corpus.display());
        return;
    }
    let dir = tempdir();
    copy_dir(&corpus, dir.path());
    let out = rewrite(
        dir.path(),
        &["--mapping", "keep-host", "--fix-implicit", "--write", "."],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut changed = 0;
    for entry in walk(dir.path()) {
        let rel = entry.strip_prefix(dir.path()).unwrap();
        let old = std::fs::read_to_string(corpus.join(rel)).unwrap();
        let new = std::fs::read_to_string(&entry).unwrap();
        if old != new {
            changed += 1;
            assert_only_values_changed(&rel.display().to_string(), &old, &new);
        }
    }
    assert!(changed >= 30, "only {changed} files changed");

    let again = rewrite(
        dir.path(),
        &["--mapping", "keep-host", "--fix-implicit", "--check", "."],
    );
    assert_eq!(
        again.status.code(),
        Some(0),
        "a second run would change: {}",
        String::from_utf8_lossy(&again.stderr)
    );

    let scan = airlock()
        .current_dir(dir.path())
        .args(["scan", "--format", "json", "."])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&scan.stdout).unwrap();
    let public: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !matches!(f["kind"].as_str(), Some("templated" | "built")))
        .filter(|f| {
            !f["normalized"]
                .as_str()
                .unwrap_or("")
                .starts_with(&format!("{TARGET}/"))
        })
        .map(|f| format!("{} {} {}", f["file"], f["kind"], f["image"]))
        .collect();
    // Even the agents the Jenkins plugin would inject are now explicit jnlp containers.
    assert!(public.is_empty(), "{public:#?}");

    // And the policy agrees: nothing left to fix but templated values, which are not judged.
    let check = airlock()
        .current_dir(dir.path())
        .args([
            "check",
            "--format",
            "json",
            "--registry",
            TARGET,
            "--mapping",
            "keep-host",
            ".",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(
        v["violations"].as_array().unwrap().len(),
        0,
        "{:#}",
        v["violations"]
    );
    assert!(v["templated"].as_u64().unwrap() > 0);
    assert_eq!(check.status.code(), Some(0));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else {
            out.push(path)
        }
    }
    out
}

#[test]
fn the_default_is_a_diff_and_check_exits_one() {
    let dir = tempdir();
    let file = dir.path().join("pod.yaml");
    let text = "kind: Pod\napiVersion: v1\nspec:\n  containers:\n    - name: a   # keep me\n      image: 'nginx:1.27'\n";
    std::fs::write(&file, text).unwrap();
    let out = rewrite(dir.path(), &["pod.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    let diff = String::from_utf8(out.stdout).unwrap();
    assert!(diff.contains("-      image: 'nginx:1.27'\n+      image: 'registry.corp.local:5000/mirror/library/nginx:1.27'\n"), "{diff}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "a diff run writes nothing"
    );
    assert_eq!(
        rewrite(dir.path(), &["--check", "pod.yaml"]).status.code(),
        Some(1)
    );
}

#[cfg(unix)]
#[test]
fn write_keeps_permissions_and_refuses_read_only_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let text = "services:\n  web:\n    image: nginx:1.27 # pinned\n";
    for (name, mode) in [("a.yaml", 0o640), ("b.yaml", 0o444)] {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let out = rewrite(dir.path(), &["--write", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("b.yaml is read-only; not changed"));
    let a = dir.path().join("a.yaml");
    assert_eq!(
        std::fs::read_to_string(&a).unwrap(),
        "services:\n  web:\n    image: registry.corp.local:5000/mirror/library/nginx:1.27 # pinned\n"
    );
    assert_eq!(
        std::fs::metadata(&a).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("b.yaml")).unwrap(),
        text
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".airlock")
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}

#[test]
fn configuration_errors_are_clear() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("p.yaml"),
        "services:\n  a: {image: quay.io/x/coredns:1}\n  b: {image: docker.io/x/coredns:1}\n",
    )
    .unwrap();
    // Each case: airlock.yaml (none for the first), extra flags, what stderr must name.
    let cases: [(Option<&str>, &[&str], &[&str]); 4] = [
        (None, &[], &["no target registry"]),
        (
            None,
            &["--registry", TARGET],
            &[
                "quay.io/x/coredns",
                "docker.io/x/coredns",
                "would both become",
            ],
        ),
        (
            Some("registry: r.local\nrules:\n  - from: docker.io/\n    to: \"not a host/x\"\n"),
            &[],
            &["rule 0"],
        ),
        (
            Some("registry: r.local\nmaping: keep-host\n"),
            &[],
            &["maping"],
        ),
    ];
    for (config, flags, wanted) in cases {
        if let Some(config) = config {
            std::fs::write(dir.path().join("airlock.yaml"), config).unwrap();
        }
        let out = airlock()
            .current_dir(dir.path())
            .arg("rewrite")
            .args(flags)
            .arg("p.yaml")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        for w in wanted {
            assert!(err.contains(w), "{w:?} not in: {err}");
        }
    }
}

#[test]
fn the_config_file_is_read_from_the_working_directory() {
    let dir = tempdir();
    std::fs::write(dir.path().join("airlock.yaml"), "registry: r.local:5000\nmapping: keep-host\nrules:\n  - from: docker.io/jenkins/\n    to: r.local:5000/ci/jenkins/\n").unwrap();
    std::fs::write(
        dir.path().join("v.yaml"),
        "agent:\n  image: jenkins/inbound-agent:4.10-2\nother:\n  image: quay.io/a/b:1\n",
    )
    .unwrap();
    let out = airlock()
        .current_dir(dir.path())
        .args(["rewrite", "--write", "v.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("v.yaml")).unwrap(),
        "agent:\n  image: r.local:5000/ci/jenkins/inbound-agent:4.10-2\nother:\n  image: r.local:5000/quay.io/a/b:1\n"
    );
}

#[test]
fn the_examples_loop_scan_rewrite_check_passes() {
    let dir = tempdir();
    copy_dir(&repo_root().join("examples"), dir.path());
    let run = |args: &[&str]| {
        airlock()
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let before = run(&["check", "platform"]);
    assert_eq!(
        before.status.code(),
        Some(1),
        "the sample platform pulls from public registries"
    );
    let out = run(&["rewrite", "--write", "--fix-implicit", "platform"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = run(&["check", "platform"]);
    assert_eq!(
        after.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&after.stdout)
    );
    assert_eq!(
        run(&["rewrite", "--check", "--fix-implicit", "platform"])
            .status
            .code(),
        Some(0)
    );
}

const COMPOSE: &str = "services:\n  web:\n    image: nginx:1.27 # pinned\n";
const REWRITTEN: &str =
    "services:\n  web:\n    image: registry.corp.local:5000/mirror/library/nginx:1.27 # pinned\n";

/// Temporary files `--write` left in `dir`.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".airlock"))
        .collect()
}

#[test]
fn write_through_a_symlink_edits_its_target_and_keeps_the_link() {
    use std::os::unix::fs::symlink;
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    let target = dir.path().join("real/compose.yaml");
    std::fs::write(&target, COMPOSE).unwrap();
    symlink("real/compose.yaml", dir.path().join("link.yaml")).unwrap();
    let out = rewrite(dir.path(), &["--write", "link.yaml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let real = std::fs::canonicalize(&target).unwrap();
    assert_eq!(
        stdout,
        format!("rewrote link.yaml -> {} (1 edit)\n", real.display())
    );
    assert!(
        dir.path().join("link.yaml").is_symlink(),
        "the link stays a link"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), REWRITTEN);
    // Walked, the link and its target are one file, edited once.
    std::fs::write(&target, COMPOSE).unwrap();
    let out = rewrite(dir.path(), &["--write", "."]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), REWRITTEN);
}

#[test]
fn write_keeps_the_owner_of_a_file_owned_by_another_user() {
    use std::os::unix::fs::MetadataExt;
    if crate::euid() != 0 {
        // Only root can make a file owned by someone else to test with.
        eprintln!("not root: cannot create a file owned by another user; not tested");
        return;
    }
    let dir = tempdir();
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, COMPOSE).unwrap();
    std::os::unix::fs::chown(&file, Some(1234), Some(5678)).unwrap();
    let out = rewrite(dir.path(), &["--write", "compose.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), REWRITTEN);
}

#[test]
fn write_clears_setuid_and_setgid_bits() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, COMPOSE).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o6755)).unwrap();
    let out = rewrite(dir.path(), &["--write", "compose.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "rewrote compose.yaml (1 edit; setuid/setgid bits cleared)\n"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755);
}

#[test]
fn write_refuses_a_hard_linked_file_unless_told_to_split_it() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempdir();
    let file = dir.path().join("compose.yaml");
    let other = dir.path().join("other-name.txt");
    std::fs::write(&file, COMPOSE).unwrap();
    std::fs::hard_link(&file, &other).unwrap();
    let out = rewrite(dir.path(), &["--write", "compose.yaml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("compose.yaml has 2 hard links"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), COMPOSE);
    assert_eq!(std::fs::metadata(&file).unwrap().nlink(), 2);

    let out = rewrite(
        dir.path(),
        &["--write", "--split-hard-links", "compose.yaml"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), REWRITTEN);
    assert_eq!(std::fs::read_to_string(&other).unwrap(), COMPOSE);
    assert_eq!(std::fs::metadata(&file).unwrap().nlink(), 1);
    assert!(leftovers(dir.path()).is_empty());
}

/// A writer appends between `--write` writing its temporary file and renaming it, the window in
/// which the append used to be lost. The binary's debug-build hook waits on a FIFO there, so the
/// append lands in that window every time, without sleeps.
#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "the pause hook exists in debug builds only"
)]
fn write_detects_a_concurrent_append_and_loses_nothing() {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempdir();
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, COMPOSE).unwrap();
    let fifo = dir.path().join("pause");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let mut cmd = crate::airlock_process();
    let mut child = cmd
        .current_dir(dir.path())
        .args(["rewrite", "--registry", TARGET, "--write", "compose.yaml"])
        .env("AIRLOCK_TEST_PAUSE_BEFORE_RENAME", &fifo)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Opening a FIFO's write end without blocking succeeds only once the reader is there, that
    // is, once the binary is paused (O_NONBLOCK is 0o4000 on Linux).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let pause = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(0o4000)
            .open(&fifo)
        {
            Ok(f) => break f,
            Err(_) if child.try_wait().unwrap().is_none() => {
                assert!(std::time::Instant::now() < deadline, "never paused");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => {
                let out = child.wait_with_output().unwrap();
                panic!(
                    "the binary ended without pausing ({e}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    };
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(b"# appended by another writer\n")
        .unwrap();
    drop(pause);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("compose.yaml changed on disk while it was being rewritten; not changed"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{COMPOSE}# appended by another writer\n")
    );
    assert!(leftovers(dir.path()).is_empty());
}
