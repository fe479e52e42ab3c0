//! `pack`, `push` and `mirror` end to end against Debian's distribution registry, with images the
//! tests build, and skopeo reading what airlock wrote.

use serde_json::Value;
use testimages::{
    ImageSet, ImageSpec, LayerSpec, Media, Platform, Registry, RegistryKind, sha256_digest,
    skopeo_copy, skopeo_inspect_raw,
};

use crate::lock_cli::registry_with_images;
use crate::{airlock, tempdir};

/// Run airlock with `--progress json`; return the exit code, the per-image lines and the summary.
fn run_json(dir: &std::path::Path, args: &[&str]) -> (i32, Vec<Value>, Value) {
    let out = airlock()
        .current_dir(dir)
        .args(args)
        .args(["--progress", "json"])
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let (summary, images) = lines.split_last().expect("a summary line");
    (
        out.status.code().unwrap(),
        images.to_vec(),
        summary["summary"].clone(),
    )
}

/// `airlock mirror -f LIST --to TO` between two plain-HTTP registries, with `extra` flags.
fn mirror(
    dir: &std::path::Path,
    list: &str,
    src: &str,
    to: &str,
    extra: &[&str],
) -> (i32, Vec<Value>, Value) {
    let mut args = vec!["mirror", "-f", list, "--to", to, "--insecure", src];
    // The target may carry a path prefix; --insecure takes the host.
    args.extend(["--insecure", to.split('/').next().unwrap_or(to)]);
    args.extend(extra);
    run_json(dir, &args)
}

fn inspect_digest(registry: &Registry, image: &str) -> String {
    sha256_digest(
        &skopeo_inspect_raw(
            &format!("docker://{}/{image}", registry.host()),
            &registry.inspect_args(),
        )
        .unwrap(),
    )
}

#[test]
fn pack_to_an_archive_then_push_keeps_digests_and_a_rerun_sends_nothing() {
    let (source, _set, image_digest, index_digest) = registry_with_images(RegistryKind::PLAIN);
    let target = Registry::start(RegistryKind::PLAIN).unwrap();
    let dir = tempdir();
    let src = source.host();
    std::fs::write(
        dir.path().join("images.txt"),
        format!("{src}/lab/app:1.0\n{src}/lab/multi:1.0\n"),
    )
    .unwrap();

    let (code, images, summary) = run_json(
        dir.path(),
        &[
            "pack",
            "-f",
            "images.txt",
            "-o",
            "bundle.tar.zst",
            "--insecure",
            &src,
        ],
    );
    assert_eq!(code, 0, "{images:?}");
    assert_eq!(summary["images_ok"], 2);
    assert!(dir.path().join("bundle.tar.zst").exists());
    assert!(
        !dir.path().join(".bundle.tar.zst.layout").exists(),
        "the staging layout is removed"
    );

    let to = target.host();
    let push = [
        "push",
        "bundle.tar.zst",
        "--to",
        &to,
        "--mapping",
        "keep-host",
        "--insecure",
        &to,
    ];
    let (code, images, summary) = run_json(dir.path(), &push);
    assert_eq!(code, 0, "{images:?}");
    assert_eq!(summary["images_ok"], 2);
    let mapped = |name: &str| format!("{}/{name}", src.replace(':', "_"));
    assert_eq!(
        inspect_digest(&target, &mapped("lab/app:1.0")),
        image_digest
    );
    assert_eq!(
        inspect_digest(&target, &mapped("lab/multi:1.0")),
        index_digest,
        "index digest preserved"
    );

    let (code, _, summary) = run_json(dir.path(), &push);
    assert_eq!(code, 0);
    assert_eq!(summary["blobs_sent"], 0, "a rerun sends nothing: {summary}");
}

#[test]
fn pack_to_a_layout_is_readable_by_skopeo() {
    let (source, _set, image_digest, _) = registry_with_images(RegistryKind::PLAIN);
    let dir = tempdir();
    let src = source.host();
    let image = format!("{src}/lab/app:1.0");
    std::fs::write(dir.path().join("list"), format!("{image}\n")).unwrap();
    let (code, _, _) = run_json(
        dir.path(),
        &["pack", "-f", "list", "-o", "layout", "--insecure", &src],
    );
    assert_eq!(code, 0);
    let raw = testimages::skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:{image}", dir.path().join("layout").display()),
    ])
    .unwrap();
    assert_eq!(sha256_digest(&raw), image_digest);
}

#[test]
fn mirror_maps_names_filters_platforms_and_one_failure_does_not_stop_the_rest() {
    let (source, _set, _, index_digest) = registry_with_images(RegistryKind::PLAIN);
    let target = Registry::start(RegistryKind::PLAIN).unwrap();
    let dir = tempdir();
    let (src, to) = (source.host(), target.host());
    std::fs::write(
        dir.path().join("images.txt"),
        format!("{src}/lab/app:1.0\n{src}/lab/multi:1.0\n{src}/lab/missing:9\n"),
    )
    .unwrap();
    let prefixed = format!("{to}/mirror");
    let (code, images, summary) = mirror(
        dir.path(),
        "images.txt",
        &src,
        &prefixed,
        &["--mapping", "replace-host"],
    );
    assert_eq!(code, 3, "a failed image gives exit 3");
    assert_eq!(
        (
            summary["images_ok"].as_u64(),
            summary["images_failed"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let failed: Vec<_> = images.iter().filter(|i| i["ok"] == false).collect();
    assert!(
        failed[0]["source"]
            .as_str()
            .unwrap()
            .contains("lab/missing"),
        "{failed:?}"
    );
    assert_eq!(
        inspect_digest(&target, "mirror/lab/multi:1.0"),
        index_digest
    );

    // One platform only: the index digest cannot be kept, and the result says so.
    let prefixed = format!("{to}/arm");
    let (_, images, _) = mirror(
        dir.path(),
        "images.txt",
        &src,
        &prefixed,
        &["--platform", "linux/arm64"],
    );
    let multi = images
        .iter()
        .find(|i| i["source"].as_str().unwrap().contains("multi"))
        .unwrap();
    assert_eq!(multi["index_preserved"], false, "{multi}");
}

/// A directory holding `layout`, an OCI layout with `lab/app:1.0` packed from a registry; and
/// the image's digest.
fn packed_app() -> (tempfile::TempDir, String) {
    let (source, _set, image_digest, _) = registry_with_images(RegistryKind::PLAIN);
    let dir = tempdir();
    let src = source.host();
    std::fs::write(dir.path().join("list"), format!("{src}/lab/app:1.0\n")).unwrap();
    let (code, images, _) = run_json(
        dir.path(),
        &["pack", "-f", "list", "-o", "layout", "--insecure", &src],
    );
    assert_eq!(code, 0, "{images:?}");
    (dir, image_digest)
}

#[test]
fn push_to_a_registry_with_auth_and_tls() {
    let (dir, image_digest) = packed_app();
    let target = Registry::start(RegistryKind::AUTH_TLS).unwrap();
    let (user, password) = target.credentials().unwrap();
    let ca = target.ca_pem_path().unwrap().to_str().unwrap().to_string();
    let to = target.host();
    let out = airlock()
        .current_dir(dir.path())
        .args([
            "push",
            "layout",
            "--to",
            &to,
            "--ca-file",
            &ca,
            "--progress",
            "quiet",
        ])
        .env("AIRLOCK_CREDS", format!("{user}:{password}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(password),
        "never print a credential"
    );
    assert_eq!(inspect_digest(&target, "lab/app:1.0"), image_digest);

    let wrong = airlock()
        .current_dir(dir.path())
        .args([
            "push",
            "layout",
            "--to",
            &to,
            "--ca-file",
            &ca,
            "--progress",
            "quiet",
        ])
        .env("AIRLOCK_CREDS", format!("{user}:wrong-{password}"))
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("unauthorized"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}

/// A registry holding `lab/big:1`, one image with the given layers; and its host.
fn registry_with_big_image(layers: &[LayerSpec]) -> (Registry, String) {
    let set = ImageSet::temp().unwrap();
    set.image(
        "lab/big:1",
        &ImageSpec::new(Media::Oci, Platform::linux_amd64(), layers.to_vec()),
    )
    .unwrap();
    let registry = Registry::start(RegistryKind::PLAIN).unwrap();
    let src = registry.host();
    let mut args = vec!["--preserve-digests".to_string()];
    args.extend(registry.dest_args());
    skopeo_copy(
        &set.skopeo_source("lab/big:1").unwrap(),
        &format!("docker://{src}/lab/big:1"),
        &args,
    )
    .unwrap();
    (registry, src)
}

/// Complete blob files in a layout, with the inode and mtime that would change if rewritten.
#[cfg(unix)]
fn complete_blobs(
    layout: &std::path::Path,
) -> std::collections::BTreeMap<String, (u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let Ok(dir) = std::fs::read_dir(layout.join("blobs/sha256")) else {
        return Default::default();
    };
    dir.filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (m.ino(), m.modified().unwrap()),
            )
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn pack_killed_mid_run_resumes_without_refetching_complete_blobs() {
    let layers: Vec<_> = (0..4).map(|i| LayerSpec::new(4 << 20, 100 + i)).collect();
    let (source, src) = registry_with_big_image(&layers);

    let dir = tempdir();
    std::fs::write(dir.path().join("list"), format!("{src}/lab/big:1\n")).unwrap();
    let pack = || {
        let mut cmd = crate::airlock_process();
        cmd.current_dir(dir.path()).args([
            "pack",
            "-f",
            "list",
            "-o",
            "layout",
            "--insecure",
            &src,
            "--progress",
            "quiet",
        ]);
        cmd
    };
    let mut first = pack();
    let mut child = first.spawn().unwrap();
    // Kill as soon as the first blob is complete, so the rerun has something to skip.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while complete_blobs(&dir.path().join("layout")).is_empty()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    let killed_early = child.wait().unwrap().code().is_none();

    let before = complete_blobs(&dir.path().join("layout"));
    for name in before.keys() {
        let bytes = std::fs::read(dir.path().join("layout/blobs/sha256").join(name)).unwrap();
        assert_eq!(
            sha256_digest(&bytes),
            format!("sha256:{name}"),
            "a blob under its final name is complete"
        );
    }
    assert!(
        !before.is_empty(),
        "the first run fetched nothing before it was killed"
    );
    assert!(pack().status().unwrap().success());
    let after = complete_blobs(&dir.path().join("layout"));
    for (name, stamp) in &before {
        assert_eq!(after.get(name), Some(stamp), "{name} was fetched again");
    }
    let layout = format!(
        "oci:{}:{src}/lab/big:1",
        dir.path().join("layout").display()
    );
    let raw = testimages::skopeo(&["inspect", "--raw", &layout]).unwrap();
    assert_eq!(sha256_digest(&raw), inspect_digest(&source, "lab/big:1"));
    eprintln!(
        "killed before finishing: {killed_early}; {} blobs were complete",
        before.len()
    );
}

/// A 1 MiB tmpfs, unmounted on drop; `None` where mounting is not allowed (not root).
#[cfg(target_os = "linux")]
struct TinyDisk(tempfile::TempDir);

#[cfg(target_os = "linux")]
impl TinyDisk {
    fn mount() -> Option<TinyDisk> {
        let dir = tempdir();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TinyDisk(dir))
    }
}

#[cfg(target_os = "linux")]
impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_a_clear_error_and_leaves_no_blob_under_its_final_name() {
    let Some(disk) = TinyDisk::mount() else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let (_source, src) =
        registry_with_big_image(&[LayerSpec::new(600 << 10, 7), LayerSpec::new(2 << 20, 8)]);
    std::fs::write(disk.0.path().join("list"), format!("{src}/lab/big:1\n")).unwrap();
    let out = airlock()
        .current_dir(disk.0.path())
        .args([
            "pack",
            "-f",
            "list",
            "-o",
            "layout",
            "--insecure",
            &src,
            "--progress",
            "quiet",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    for (name, _) in complete_blobs(&disk.0.path().join("layout")) {
        let bytes = std::fs::read(disk.0.path().join("layout/blobs/sha256").join(&name)).unwrap();
        assert_eq!(sha256_digest(&bytes), format!("sha256:{name}"));
    }
}

#[test]
fn credentials_come_from_the_docker_config_when_no_flag_gives_them() {
    let (dir, image_digest) = packed_app();
    let target = Registry::start(RegistryKind::AUTH_TLS).unwrap();

    // `docker login` writes base64(user:password) under the registry host.
    let (user, password) = target.credentials().unwrap();
    let encoded = std::process::Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("{user}:{password}").as_bytes())?;
            c.wait_with_output()
        })
        .unwrap()
        .stdout;
    let docker = dir.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    let config = format!(
        r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
        target.host(),
        String::from_utf8(encoded).unwrap()
    );
    std::fs::write(docker.join("config.json"), config).unwrap();

    let ca = target.ca_pem_path().unwrap().to_str().unwrap().to_string();
    let out = airlock()
        .current_dir(dir.path())
        .args([
            "push",
            "layout",
            "--to",
            &target.host(),
            "--ca-file",
            &ca,
            "--progress",
            "quiet",
        ])
        .env("DOCKER_CONFIG", &docker)
        .env_remove("AIRLOCK_CREDS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(inspect_digest(&target, "lab/app:1.0"), image_digest);
}

#[test]
fn a_blob_whose_bytes_do_not_match_its_digest_is_refused_and_never_stored() {
    let (source, src) =
        registry_with_big_image(&[LayerSpec::new(5 << 20, 21), LayerSpec::new(64 << 10, 22)]);
    // Corrupt both layers where the source registry keeps them (same size, other bytes).
    let manifest: Value = serde_json::from_slice(
        &skopeo_inspect_raw(&format!("docker://{src}/lab/big:1"), &source.inspect_args()).unwrap(),
    )
    .unwrap();
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    for digest in &layers {
        let hex = digest.trim_start_matches("sha256:");
        let data = source.storage_dir().join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ));
        let mut bytes = std::fs::read(&data).unwrap();
        bytes[100] ^= 0xff;
        std::fs::write(&data, bytes).unwrap();
    }
    let target = Registry::start(RegistryKind::PLAIN).unwrap();
    let dir = tempdir();
    std::fs::write(dir.path().join("list"), format!("{src}/lab/big:1\n")).unwrap();
    let to = target.host();
    let (code, images, _) = mirror(dir.path(), "list", &src, &to, &[]);
    assert_eq!(code, 3);
    assert!(
        images[0]["error"].as_str().unwrap().contains("digest"),
        "{images:?}"
    );
    for digest in &layers {
        // replace-host, the default mapping: the image is lab/big in the target.
        let url = format!("http://{to}/v2/lab/big/blobs/{digest}");
        let head = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I", &url])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&head.stdout),
            "404",
            "{digest} was stored in the target"
        );
    }
    let (code, _, _) = run_json(
        dir.path(),
        &["pack", "-f", "list", "-o", "layout", "--insecure", &src],
    );
    assert_eq!(code, 3);
    assert!(
        complete_blobs(&dir.path().join("layout"))
            .keys()
            .all(|k| !layers.contains(&format!("sha256:{k}")))
    );
}

#[test]
fn signatures_tagged_after_the_digest_travel_with_the_image() {
    let set = ImageSet::temp().unwrap();
    let app = set
        .image(
            "lab/app:1",
            &ImageSpec::new(
                Media::Oci,
                Platform::linux_amd64(),
                vec![LayerSpec::new(40_000, 31)],
            ),
        )
        .unwrap();
    // A cosign-style signature: an artifact stored under `sha256-<hex>.sig` in the same repository.
    let sig_tag = format!(
        "sha256-{}.sig",
        app.digest().to_string().trim_start_matches("sha256:")
    );
    let sig = set
        .image(
            &format!("lab/app:{sig_tag}"),
            &ImageSpec::new(
                Media::Oci,
                Platform::linux_amd64(),
                vec![LayerSpec::new(500, 32)],
            ),
        )
        .unwrap();
    let source = Registry::start(RegistryKind::PLAIN).unwrap();
    let src = source.host();
    for name in ["lab/app:1".to_string(), format!("lab/app:{sig_tag}")] {
        let mut args = vec!["--preserve-digests".to_string()];
        args.extend(source.dest_args());
        skopeo_copy(
            &set.skopeo_source(&name).unwrap(),
            &format!("docker://{src}/{name}"),
            &args,
        )
        .unwrap();
    }
    let dir = tempdir();
    std::fs::write(dir.path().join("list"), format!("{src}/lab/app:1\n")).unwrap();

    let mirrored = Registry::start(RegistryKind::PLAIN).unwrap();
    let to = mirrored.host();
    let (code, images, _) = mirror(dir.path(), "list", &src, &to, &[]);
    assert_eq!(code, 0, "{images:?}");
    assert_eq!(
        inspect_digest(&mirrored, &format!("lab/app:{sig_tag}")),
        sig.digest().to_string()
    );

    // Through the air gap too: pack keeps it in the layout, push carries it on.
    assert_eq!(
        run_json(
            dir.path(),
            &["pack", "-f", "list", "-o", "bundle.tar", "--insecure", &src]
        )
        .0,
        0
    );
    let pushed = Registry::start(RegistryKind::PLAIN).unwrap();
    let to = pushed.host();
    assert_eq!(
        run_json(
            dir.path(),
            &["push", "bundle.tar", "--to", &to, "--insecure", &to]
        )
        .0,
        0
    );
    assert_eq!(
        inspect_digest(&pushed, &format!("lab/app:{sig_tag}")),
        sig.digest().to_string()
    );

    // --no-referrers leaves it behind.
    let bare = Registry::start(RegistryKind::PLAIN).unwrap();
    let to = bare.host();
    assert_eq!(
        mirror(dir.path(), "list", &src, &to, &["--no-referrers"]).0,
        0
    );
    let sig_ref = format!("docker://{to}/lab/app:{sig_tag}");
    assert!(skopeo_inspect_raw(&sig_ref, &bare.inspect_args()).is_err());
}
