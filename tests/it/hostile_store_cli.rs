//! `pack` and `push` against a hostile file system: links planted at the names pack writes to,
//! and an archive on read-only media.

use testimages::RegistryKind;

use crate::lock_cli::registry_with_images;
use crate::{airlock, tempdir};

#[cfg(unix)]
#[test]
fn pack_never_follows_links_planted_at_its_partial_and_staging_names() {
    use std::os::unix::fs::symlink;
    let (source, _set, _, _) = registry_with_images(RegistryKind::PLAIN);
    let src = source.host();
    let dir = tempdir();
    std::fs::write(dir.path().join("list"), format!("{src}/lab/app:1.0\n")).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let victim_dir = dir.path().join("victim-dir");
    std::fs::create_dir(&victim_dir).unwrap();
    // The names pack used to write at: FILE.partial and the staging .FILE.layout.
    symlink(&victim, dir.path().join("bundle.tar.partial")).unwrap();
    symlink(&victim_dir, dir.path().join(".other.tar.layout")).unwrap();
    let pack = |out: &str| {
        airlock()
            .current_dir(dir.path())
            .args(["pack", "-f", "list", "-o", out, "--insecure", &src])
            .args(["--progress", "quiet"])
            .output()
            .unwrap()
    };

    let out = pack("bundle.tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = std::fs::read(&victim).unwrap();
    assert!(v == b"precious", "victim overwritten ({} bytes)", v.len());
    let archive = dir.path().join("bundle.tar").symlink_metadata().unwrap();
    assert!(archive.is_file(), "the archive is a file of its own");
    assert!(
        dir.path()
            .join("bundle.tar.partial")
            .symlink_metadata()
            .unwrap()
            .is_symlink(),
        "the planted link is left alone"
    );

    let out = pack("other.tar");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(".other.tar.layout"), "{stderr}");
    assert!(stderr.contains("not a directory"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(&victim_dir).unwrap().count(),
        0,
        "nothing written through the link"
    );
    assert!(!dir.path().join("other.tar").exists());
}

/// A directory made read-only by a read-only tmpfs mount (so it holds even for root); `None`
/// where mounting is not allowed.
#[cfg(target_os = "linux")]
struct ReadOnlyDir(tempfile::TempDir);

#[cfg(target_os = "linux")]
impl ReadOnlyDir {
    /// Mounts a tmpfs, lets `fill` write into it, then remounts it read-only.
    fn mount(fill: impl FnOnce(&std::path::Path)) -> Option<ReadOnlyDir> {
        let dir = tempdir();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            return None;
        }
        let ro = ReadOnlyDir(dir);
        fill(ro.0.path());
        let ok = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(ro.0.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount read-only");
        Some(ro)
    }
}

#[cfg(target_os = "linux")]
impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn push_of_an_archive_on_read_only_media_works_and_leaves_nothing_behind() {
    let (source, _set, _, _) = registry_with_images(RegistryKind::PLAIN);
    let target = testimages::Registry::start(RegistryKind::PLAIN).unwrap();
    let src = source.host();
    let dir = tempdir();
    std::fs::write(
        dir.path().join("list"),
        format!("{src}/lab/app:1.0\n{src}/lab/multi:1.0\n"),
    )
    .unwrap();
    let out = airlock()
        .current_dir(dir.path())
        .args([
            "pack",
            "-f",
            "list",
            "-o",
            "bundle.tar.zst",
            "--insecure",
            &src,
        ])
        .args(["--progress", "quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = dir.path().join("bundle.tar.zst");
    let Some(media) = ReadOnlyDir::mount(|m| {
        std::fs::copy(&archive, m.join("bundle.tar.zst")).unwrap();
    }) else {
        eprintln!("SKIPPED: cannot mount a read-only tmpfs here (not root)");
        return;
    };
    let on_media = media.0.path().join("bundle.tar.zst");
    assert!(
        std::fs::write(media.0.path().join("probe"), "x").is_err(),
        "read-only"
    );
    let tmp = tempdir();
    let to = target.host();
    let out = airlock()
        .current_dir(dir.path())
        .env("TMPDIR", tmp.path())
        .arg("push")
        .arg(&on_media)
        .args(["--to", &to, "--mapping", "keep-host", "--insecure", &to])
        .args(["--progress", "quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "work directory left behind: {left:?}");
    let names: Vec<_> = std::fs::read_dir(media.0.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["bundle.tar.zst"]);

    // With --work-dir, the same; and from a writable place, nothing is left beside the archive.
    let work = tempdir();
    let out = airlock()
        .current_dir(dir.path())
        .arg("push")
        .arg(&archive)
        .arg("--work-dir")
        .arg(work.path())
        .args(["--to", &to, "--mapping", "keep-host", "--insecure", &to])
        .args(["--progress", "quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
    assert!(!dir.path().join(".bundle.tar.zst.layout").exists());
}

/// The staging layout of an interrupted archive pack is ours, so the rerun resumes from it.
#[test]
fn pack_to_an_archive_resumes_from_its_own_staging_layout() {
    let (source, _set, _, _) = registry_with_images(RegistryKind::PLAIN);
    let src = source.host();
    let dir = tempdir();
    std::fs::write(
        dir.path().join("list"),
        format!("{src}/lab/app:1.0\n{src}/lab/missing:1.0\n"),
    )
    .unwrap();
    let pack = || {
        airlock()
            .current_dir(dir.path())
            .args(["pack", "-f", "list", "-o", "bundle.tar", "--insecure", &src])
            .args(["--progress", "quiet"])
            .output()
            .unwrap()
    };
    let out = pack();
    assert!(!out.status.success());
    let staging = dir.path().join(".bundle.tar.layout");
    let blobs = std::fs::read_dir(staging.join("blobs/sha256"))
        .unwrap()
        .count();
    assert!(blobs >= 3, "app's manifest, config and layer were kept");
    assert!(!dir.path().join("bundle.tar").exists());

    std::fs::write(dir.path().join("list"), format!("{src}/lab/app:1.0\n")).unwrap();
    let out = pack();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("bundle.tar").is_file());
    assert!(!staging.exists());
}
