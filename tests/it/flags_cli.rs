//! The command line as a contract: flags rejected when parsed (exit 2) for every verb that takes
//! them, one reading of an image list for every verb, the walk's ignore rules, colour, and the
//! completions and man pages generated from the same definitions.

use std::path::Path;

use serde_json::Value;

use crate::{airlock, tempdir};

fn pod(image: &str) -> String {
    format!("kind: Pod\napiVersion: v1\nspec:\n  containers:\n  - name: c\n    image: {image}\n")
}

/// Registry flags that make any attempt to reach a registry fail at once, on loopback: nothing
/// listens on the discard port.
const UNREACHABLE: &[&str] = &["--attempts", "1", "--connect-timeout", "2s"];

#[test]
fn an_invalid_jnlp_image_is_a_usage_error_for_every_verb_that_takes_it() {
    let dir = tempdir();
    let root = dir.path();
    // A Jenkins cloud with a pod template and no jnlp container: the implicit agent image is
    // the only image here, so a verb that dropped the bad flag would run on an empty set.
    std::fs::write(
        root.join("jcasc.yaml"),
        "jenkins:\n  clouds:\n    - kubernetes:\n        name: k8s\n        templates:\n          - name: agent\n            containers:\n              - name: maven\n                image: 127.0.0.1:9/maven:3\n",
    )
    .unwrap();
    let out_dir = root.join("out");
    let root_s = root.to_str().unwrap();
    let out_s = out_dir.to_str().unwrap();
    let verbs: &[(&str, Vec<&str>)] = &[
        ("scan", vec![root_s]),
        ("check", vec!["--registry", "127.0.0.1:9", root_s]),
        ("rewrite", vec!["--registry", "127.0.0.1:9", root_s]),
        ("lock", vec!["-o", out_s, root_s]),
        ("pack", vec!["-o", out_s, root_s]),
        ("mirror", vec!["--to", "127.0.0.1:9", root_s]),
    ];
    for (verb, args) in verbs {
        let out = airlock()
            .arg(verb)
            .args(args)
            .args(["--jnlp-image", "Jenkins/Inbound-Agent:1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{verb}: {stderr}");
        assert!(
            stderr.contains("--jnlp-image")
                && stderr.contains("upper-case 'I' at column 9 (repository names are lower case)"),
            "{verb}: {stderr}"
        );
        assert!(!out_dir.exists(), "{verb} wrote output before refusing");
    }
}

#[test]
fn typed_flags_are_rejected_when_parsed() {
    let dir = tempdir();
    let d = dir.path().to_str().unwrap();
    let out = dir.path().join("o.tar");
    let cases: &[&[&str]] = &[
        &[
            "pack",
            "--platform",
            "linux",
            "-o",
            out.to_str().unwrap(),
            d,
        ],
        &["mirror", "--to", "127.0.0.1:9", "--platform", "linux/", d],
        &[
            "rewrite",
            "--registry",
            "r.corp",
            "--mapping",
            "keep-hots",
            d,
        ],
        &[
            "rewrite",
            "--registry",
            "r.corp",
            "--rule",
            "docker.io/x",
            d,
        ],
        &["check", "--rule", "no-equals-sign", d],
    ];
    for args in cases {
        let out = airlock().args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        // Clap's wording: the value was refused while parsing, before the verb ran.
        assert!(stderr.contains("invalid value"), "{args:?}: {stderr}");
    }
}

/// A list file that has a `#` inside a line, after a space (a comment, with a URL fragment and
/// a digest-looking word in it) and attached to an entry (not a comment: an error).
const LIST_WITH_HASHES: &str = "# images for the air gap\n\
127.0.0.1:9/app:1.0   # pinned, see https://wiki.corp/app#versions\n\
127.0.0.1:9/tools/jq@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\t#sha256:feed\n";

#[test]
fn lock_pack_and_scan_read_one_list_file_identically() {
    let dir = tempdir();
    let list = dir.path().join("images.txt");
    std::fs::write(&list, LIST_WITH_HASHES).unwrap();
    let list_s = list.to_str().unwrap();

    let out = airlock()
        .args(["scan", "--format", "list", list_s])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let scanned: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(scanned.len(), 2, "{scanned:?}");

    // lock and pack try exactly those images (and fail: nothing listens there).
    let lock = dir.path().join("x.lock");
    let out = airlock()
        .args(["lock", "-f", list_s, "-o", lock.to_str().unwrap()])
        .args(UNREACHABLE)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("locked 0 of 2 images"), "{stderr}");
    for r in &scanned {
        assert!(stderr.contains(&format!("failed: {r}:")), "{r}: {stderr}");
    }
    let out = airlock()
        .args(["pack", "-f", list_s, "-o"])
        .arg(dir.path().join("layout"))
        .args(["--progress", "json"])
        .args(UNREACHABLE)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let mut packed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["target"].as_str().map(String::from))
        .collect();
    packed.sort();
    // Each target is the layout and, after it, the name the image gets there.
    let layout = format!("oci:{}:", dir.path().join("layout").display());
    let packed: Vec<&str> = packed
        .iter()
        .filter_map(|t| t.strip_prefix(&layout))
        .collect();
    assert_eq!(packed, scanned);
}

#[test]
fn a_hash_attached_to_a_list_entry_is_the_same_error_for_lock_pack_and_scan() {
    let dir = tempdir();
    let list = dir.path().join("images.txt");
    // The old `-f` reader cut at any `#` and locked `127.0.0.1:9/web:1.25`; scan's reader
    // took the line whole and so the file for something other than a list.
    std::fs::write(
        &list,
        format!("{LIST_WITH_HASHES}127.0.0.1:9/web:1.25#sha256:0123\n"),
    )
    .unwrap();
    let list_s = list.to_str().unwrap();
    let place = format!("{list_s}:4:1: not an image reference: 127.0.0.1:9/web:1.25#sha256:0123");

    let out = airlock()
        .args(["scan", "--format", "json", list_s])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &v["errors"][0];
    assert_eq!(
        format!(
            "{}:{}:{}: {}",
            e["file"].as_str().unwrap(),
            e["line"],
            e["column"],
            e["message"].as_str().unwrap()
        )
        .split(" (")
        .next(),
        Some(place.as_str()),
        "{v}"
    );
    assert_eq!(v["findings"].as_array().unwrap().len(), 2, "{v}");

    for verb in ["lock", "pack"] {
        let out = airlock()
            .args([verb, "-f", list_s, "-o"])
            .arg(dir.path().join("out"))
            .args(UNREACHABLE)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{verb}: {stderr}");
        assert!(stderr.contains(&place), "{verb}: {stderr}");
        assert!(!dir.path().join("out").exists(), "{verb}");
    }
}

fn scanned_files(dir: &Path, extra: &[&str]) -> Vec<String> {
    let out = airlock()
        .args(["scan", "--format", "json"])
        .args(extra)
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut files: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            Path::new(f["file"].as_str().unwrap())
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    files.dedup();
    files
}

#[test]
fn gitignored_files_are_skipped_unless_no_ignore() {
    let dir = tempdir();
    let root = dir.path();
    for (name, image) in [
        ("kept.yaml", "nginx:1"),
        (".hidden.yaml", "redis:7"),
        ("build/pod.yaml", "busybox:1"),
        ("sub/generated.yaml", "alpine:3"),
    ] {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, pod(image)).unwrap();
    }
    std::fs::write(root.join(".gitignore"), "build/\n").unwrap();
    // Outside a git checkout .gitignore means nothing (as for git and ripgrep).
    assert_eq!(scanned_files(root, &[]).len(), 4);
    std::fs::create_dir(root.join(".git")).unwrap();
    std::fs::write(root.join("sub/.gitignore"), "generated.yaml\n").unwrap();

    // Hidden files are configuration (.gitlab-ci.yml): only .gitignore decides.
    assert_eq!(scanned_files(root, &[]), [".hidden.yaml", "kept.yaml"]);
    assert_eq!(
        scanned_files(root, &["--no-ignore"]),
        [
            ".hidden.yaml",
            "build/pod.yaml",
            "kept.yaml",
            "sub/generated.yaml"
        ]
    );
    // A file named explicitly is read whatever .gitignore says.
    let out = airlock()
        .args(["scan", "--format", "list"])
        .arg(root.join("build/pod.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "docker.io/library/busybox:1\n"
    );
}

#[test]
fn no_color_beats_a_forced_colour_and_always_colours() {
    let dir = tempdir();
    std::fs::write(dir.path().join("pod.yaml"), pod("nginx:1")).unwrap();
    let table = |color: &str, env: &[(&str, &str)]| {
        let mut cmd = airlock();
        cmd.args(["scan", "--color", color]).arg(dir.path());
        cmd.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    let bold = "\x1b[1mdocker.io/library/nginx:1\x1b[0m";
    assert!(table("always", &[]).contains(bold));
    assert!(table("always", &[("NO_COLOR", "1")]).contains(bold));
    assert!(table("auto", &[("CLICOLOR_FORCE", "1")]).contains(bold));
    let plain = table("auto", &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(
        plain.starts_with("docker.io/library/nginx:1  "),
        "{plain:?}"
    );
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(!table("never", &[("CLICOLOR_FORCE", "1")]).contains('\x1b'));
}

#[test]
fn bash_completions_name_every_verb() {
    let out = airlock().args(["completions", "bash"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("complete -F _airlock"), "{script}");
    for verb in [
        "scan",
        "rewrite",
        "lock",
        "pack",
        "push",
        "mirror",
        "check",
        "completions",
        "man",
    ] {
        assert!(script.contains(&format!("airlock,{verb})")), "{verb}");
    }
    for shell in ["zsh", "fish"] {
        let out = airlock().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(
            String::from_utf8(out.stdout)
                .unwrap()
                .contains("jnlp-image")
        );
    }
}

#[test]
fn the_man_page_of_scan_renders_with_its_flags() {
    let dir = tempdir();
    let out = airlock().arg("man").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    for verb in ["scan", "rewrite", "lock", "pack", "push", "mirror", "check"] {
        assert!(
            dir.path().join(format!("airlock-{verb}.1")).is_file(),
            "{verb}"
        );
    }
    let page = std::fs::read_to_string(dir.path().join("airlock-scan.1")).unwrap();
    assert!(page.contains(".TH airlock-scan 1"), "{page}");
    for flag in [
        "format",
        "max\\-file\\-size",
        "no\\-ignore",
        "jnlp\\-image",
        "color",
    ] {
        assert!(page.contains(&format!("\\-\\-{flag}")), "--{flag}: {page}");
    }
    assert!(page.contains("Examples:"), "{page}");
    // Rendered as a reader sees it, when groff is installed (it is on the project's machine).
    if let Ok(rendered) = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-P", "-cbou"])
        .arg(dir.path().join("airlock-scan.1"))
        .output()
    {
        let text = String::from_utf8_lossy(&rendered.stdout);
        assert!(text.contains("--max-file-size <SIZE>"), "{text}");
        assert!(text.contains("--no-ignore"), "{text}");
    }
}
