//! Hostile input and a hostile machine: links, unreadable directories, endless or huge files,
//! control characters, concurrent writers.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::watch::{Caps, until_stdin};
use crate::{airlock, airlock_process, airlock_unprivileged, airlock_via, tempdir};

fn pod(image: &str) -> String {
    format!("kind: Pod\napiVersion: v1\nspec:\n  containers:\n  - name: c\n    image: {image}\n")
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `(file, image)` of every finding, relative to `root`.
fn findings(v: &Value, root: &Path) -> Vec<(String, String)> {
    let root = format!("{}/", root.display());
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap();
            (
                file.strip_prefix(&root).unwrap_or(file).to_string(),
                f["image"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn symlinked_files_and_directories_in_a_walk_are_scanned_once_and_checked() {
    let tmp = tempdir();
    let (outside, scan) = (tmp.path().join("outside"), tmp.path().join("scan"));
    write(&outside.join("pod.yaml"), &pod("quay.io/x/linked:1"));
    write(
        &outside.join("dir/pod.yaml"),
        &pod("quay.io/x/in-linked-dir:1"),
    );
    write(&scan.join("own.yaml"), &pod("mirror.local/x/own:1"));
    symlink("../outside/pod.yaml", scan.join("link.yaml")).unwrap();
    symlink("../outside/dir", scan.join("linkdir")).unwrap();
    symlink(".", scan.join("loop")).unwrap();
    // A second name for a file already seen (a hard link and a link to a link) adds nothing.
    std::fs::hard_link(outside.join("pod.yaml"), scan.join("zz-hard.yaml")).unwrap();
    symlink("link.yaml", scan.join("zz-link-to-link.yaml")).unwrap();

    let out = airlock()
        .args(["scan", "--format", "json"])
        .arg(&scan)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(
        findings(&v, &scan),
        [
            ("link.yaml".into(), "quay.io/x/linked:1".into()),
            (
                "linkdir/pod.yaml".into(),
                "quay.io/x/in-linked-dir:1".into()
            ),
            ("own.yaml".into(), "mirror.local/x/own:1".into()),
        ]
    );

    // `check` no longer passes while a linked file names a public image.
    let out = airlock()
        .args(["check", "--registry", "mirror.local"])
        .arg(&scan)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("link.yaml:6:12: registry-not-allowed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("linkdir/pod.yaml:6:12: registry-not-allowed"),
        "{stdout}"
    );
}

#[test]
fn a_broken_link_is_reported_by_its_path_and_the_rest_scanned() {
    let tmp = tempdir();
    write(&tmp.path().join("a.yaml"), &pod("nginx:1"));
    symlink("gone.yaml", tmp.path().join("dangling.yaml")).unwrap();
    let out = airlock()
        .args(["scan", "--format", "json"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{v}");
    assert_eq!(findings(&v, tmp.path()).len(), 1);
    let err = &v["errors"][0];
    assert_eq!(
        err["file"],
        tmp.path().join("dangling.yaml").to_str().unwrap()
    );
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("broken symbolic link"),
        "{err}"
    );
}

#[test]
fn an_unreadable_subdirectory_is_reported_by_its_own_path_and_the_rest_scanned() {
    let tmp = tempdir();
    let root = tmp.path();
    write(&root.join("a/pod.yaml"), &pod("nginx:1"));
    write(&root.join("locked/pod.yaml"), &pod("redis:7"));
    write(&root.join("z/pod.yaml"), &pod("busybox:1"));
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let locked = root.join("locked");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();

    let out = airlock_unprivileged()
        .args(["scan", "--format", "json"])
        .arg(root)
        .output()
        .unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(2), "{v}");
    assert_eq!(
        findings(&v, root),
        [
            ("a/pod.yaml".into(), "nginx:1".into()),
            ("z/pod.yaml".into(), "busybox:1".into()),
        ]
    );
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["file"], locked.to_str().unwrap());
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("cannot read directory") && message.contains("ermission denied"),
        "{message}"
    );

    // The human formats name it on stderr the same way, and still exit 2.
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = airlock_unprivileged()
        .args(["check", "--registry", "mirror.local"])
        .arg(root)
        .output()
        .unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:0:0: cannot read directory", locked.display())),
        "{stderr}"
    );
}

#[test]
fn scan_of_dev_zero_stops_at_the_size_limit_with_bounded_memory() {
    // Default limit: a clear error naming the file and the limit, quickly. The address-space
    // cap only keeps a regression from eating the machine; it is far above what a bounded read needs.
    let started = Instant::now();
    let out = airlock_via(&["prlimit", "--as=4294967296", "--"])
        .args(["scan", "/dev/zero"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/dev/zero:0:0: cannot read: the input is larger than the 64 MiB limit"),
        "{stderr}"
    );
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");

    // Measured: after /dev/zero the binary blocks reading stdin (named next), where its peak
    // resident memory and the bytes it read are taken from /proc.
    let limit: u64 = 16 << 20;
    let mut cmd = airlock_process();
    cmd.args(["scan", "--max-file-size", "16M", "/dev/zero", "-"]);
    let m = until_stdin(
        cmd,
        Caps {
            rss_kib: 1 << 20,
            time: Duration::from_secs(60),
        },
    );
    assert_eq!(m.code, Some(2), "{}", m.stderr);
    assert!(
        m.stderr.contains("larger than the 16 MiB limit"),
        "{}",
        m.stderr
    );
    eprintln!(
        "/dev/zero with a 16 MiB limit: {} bytes read, peak RSS {} KiB",
        m.read, m.peak_kib
    );
    assert!(
        m.read > limit && m.read < 2 * limit,
        "read {} bytes",
        m.read
    );
    assert!(
        m.peak_kib << 10 < 3 * limit + (32 << 20),
        "peak RSS {} KiB",
        m.peak_kib
    );
}

#[test]
fn a_sparse_gigabyte_file_is_refused_before_it_is_read() {
    let tmp = tempdir();
    let big = tmp.path().join("big.yaml");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    write(&tmp.path().join("pod.yaml"), &pod("nginx:1"));
    let started = Instant::now();
    let out = airlock()
        .args(["scan", "--format", "json"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{v}");
    assert_eq!(
        findings(&v, tmp.path()),
        [("pod.yaml".into(), "nginx:1".into())]
    );
    assert_eq!(v["errors"][0]["file"], big.to_str().unwrap());
    assert_eq!(
        v["errors"][0]["message"],
        "cannot read: 1073741824 bytes is larger than the 64 MiB limit; not read (raise it with --max-file-size)"
    );

    // The same limit guards an image list, and the flag moves it.
    std::fs::write(tmp.path().join("list.txt"), "nginx:1\n".repeat(200)).unwrap();
    let out = airlock()
        .current_dir(tmp.path())
        .args(["lock", "--max-file-size", "1K", "-f", "list.txt"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot read list.txt: 1600 bytes is larger than the 1 KiB limit"),
        "{stderr}"
    );
}

/// The class of kubectl's CVE-2021-25743: names and values from files carrying terminal escape
/// sequences (ESC, BEL) are printed escaped by every human format, and JSON stays JSON.
#[test]
fn control_characters_from_files_never_reach_the_terminal_raw() {
    let tmp = tempdir();
    let root = tmp.path();
    // YAML's own escapes (`\e`, `\a`) put ESC and BEL into parsed names and values.
    write(
        &root.join("pod.yaml"),
        concat!(
            "kind: Pod\napiVersion: v1\nmetadata:\n  name: \"evil\\e]0;pwned\\a\"\nspec:\n",
            "  containers:\n  - name: \"c\\e[2J\"\n    image: \"nginx\\e[31m\\a\"\n",
            "  - name: \"ok\\e[8m\"\n    image: quay.io/x/y:1\n",
            "  - name: t\n    image: \"{{ .Values.x }}\\e[5m\"\n",
        ),
    );
    // Raw bytes where the format allows them, and in a file name.
    write(
        &root.join("Dockerfile"),
        "FROM nginx\x1b[31m:1\nFROM alpine:3\n",
    );
    write(&root.join("name\x1b[31m\x07.yaml"), &pod("busybox:1"));

    let runs: [&[&str]; 6] = [
        &["scan", "--color", "never"],
        &["scan", "--format", "list"],
        &["check", "--registry", "mirror.local"],
        &["rewrite", "--registry", "mirror.local"],
        &["rewrite", "--registry", "mirror.local", "--check"],
        &["rewrite", "--registry", "mirror.local", "--write"],
    ];
    for args in runs {
        let out = airlock().args(args).arg(root).output().unwrap();
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !bytes.iter().any(|b| *b == 0x1b || *b == 0x07),
                "{args:?} {stream}: {}",
                String::from_utf8_lossy(bytes).escape_debug()
            );
        }
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Shown escaped, not dropped: the reader still sees what the file holds.
        assert!(all.contains("\\x1b"), "{args:?}: {all}");
    }
    let out = airlock()
        .args(["scan", "--format", "json"])
        .arg(root)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b') && text.contains("\\u001b"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let contexts: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["context"].as_str().unwrap())
        .collect();
    assert!(
        contexts.iter().any(|c| c.contains("evil\x1b]0;pwned\x07")),
        "{contexts:?}"
    );
}
