//! `airlock lock` against Debian's distribution registry on loopback, with images the test builds.

use testimages::{
    ImageSet, ImageSpec, LayerSpec, Media, Platform, Registry, RegistryKind, skopeo_copy,
};

use crate::{airlock, tempdir};

/// A registry holding one OCI image and one Docker manifest list, pushed with skopeo.
pub fn registry_with_images(kind: RegistryKind) -> (Registry, ImageSet, String, String) {
    let set = ImageSet::temp().unwrap();
    let image = set
        .image(
            "lab/app:1.0",
            &ImageSpec::new(
                Media::Oci,
                Platform::linux_amd64(),
                vec![LayerSpec::new(64 << 10, 1)],
            ),
        )
        .unwrap();
    let index = set
        .index(
            "lab/multi:1.0",
            &[
                ImageSpec::new(
                    Media::Docker,
                    Platform::linux_amd64(),
                    vec![LayerSpec::new(60_000, 1), LayerSpec::new(30_000, 2)],
                ),
                ImageSpec::new(
                    Media::Docker,
                    Platform::linux_arm64(),
                    vec![LayerSpec::new(60_000, 3)],
                ),
            ],
            Media::Docker,
        )
        .unwrap();
    let registry = Registry::start(kind).unwrap();
    for name in ["lab/app:1.0", "lab/multi:1.0"] {
        let mut args = vec!["--all".to_string(), "--preserve-digests".to_string()];
        args.extend(registry.dest_args());
        let dst = format!("docker://{}/{name}", registry.host());
        skopeo_copy(&set.skopeo_source(name).unwrap(), &dst, &args).unwrap();
    }
    (
        registry,
        set,
        image.digest().to_string(),
        index.digest().to_string(),
    )
}

#[test]
fn lock_resolves_images_and_platforms_from_a_list() {
    let (registry, _set, image_digest, index_digest) = registry_with_images(RegistryKind::PLAIN);
    let dir = tempdir();
    let host = registry.host();
    std::fs::write(
        dir.path().join("images.txt"),
        format!("# images to mirror\n{host}/lab/multi:1.0\n{host}/lab/app:1.0  # the app\n"),
    )
    .unwrap();
    let out = airlock()
        .current_dir(dir.path())
        .args(["lock", "-f", "images.txt", "--insecure", &host])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lock = std::fs::read_to_string(dir.path().join("airlock.lock")).unwrap();
    let app = lock.find(&format!(
        "image: {host}/lab/app:1.0\n    digest: {image_digest}\n"
    ));
    let multi = lock.find(&format!(
        "image: {host}/lab/multi:1.0\n    digest: {index_digest}\n"
    ));
    assert!(app.is_some() && multi.is_some() && app < multi, "{lock}");
    assert!(
        lock.contains("platform: linux/amd64") && lock.contains("platform: linux/arm64/v8"),
        "{lock}"
    );

    // A reference that does not exist fails alone: the others are still locked, exit 3.
    std::fs::write(
        dir.path().join("images.txt"),
        format!("{host}/lab/app:1.0\n{host}/lab/missing:1\n"),
    )
    .unwrap();
    let out = airlock()
        .current_dir(dir.path())
        .args(["lock", "-f", "images.txt", "--insecure", &host])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lab/missing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("airlock.lock")).unwrap(),
        lock,
        "nothing lost"
    );
}

#[test]
fn a_bad_list_line_is_named() {
    let dir = tempdir();
    std::fs::write(dir.path().join("images.txt"), "nginx:1\nNot An Image\n").unwrap();
    let out = airlock()
        .current_dir(dir.path())
        .args(["lock", "-f", "images.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("images.txt:2"));
}

#[test]
fn rewrite_pin_writes_the_locked_digest() {
    let (registry, _set, image_digest, _) = registry_with_images(RegistryKind::PLAIN);
    let dir = tempdir();
    let host = registry.host();
    let pod = format!(
        "kind: Pod\napiVersion: v1\nspec:\n  containers:\n    - name: app # the app\n      image: \"{host}/lab/app:1.0\"\n"
    );
    std::fs::write(dir.path().join("pod.yaml"), &pod).unwrap();
    let lock = airlock()
        .current_dir(dir.path())
        .args(["lock", "pod.yaml", "--insecure", &host])
        .output()
        .unwrap();
    assert!(
        lock.status.success(),
        "{}",
        String::from_utf8_lossy(&lock.stderr)
    );
    let out = airlock()
        .current_dir(dir.path())
        .args([
            "rewrite",
            "--registry",
            "mirror.local:5000",
            "--mapping",
            "keep-host",
            "--pin",
            "--write",
            "pod.yaml",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = pod.replace(
        &format!("\"{host}/lab/app:1.0\""),
        &format!(
            "\"mirror.local:5000/{}/lab/app:1.0@{image_digest}\"",
            host.replace(':', "_")
        ),
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pod.yaml")).unwrap(),
        want
    );
}

#[test]
fn a_lock_with_no_images_reads_back_in_lock_pack_and_rewrite() {
    let dir = tempdir();
    let run = |args: &[&str]| {
        let out = airlock()
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr)
    };
    std::fs::write(dir.path().join("none.txt"), "# nothing to lock yet\n").unwrap();
    let (code, stderr) = run(&["lock", "-f", "none.txt"]);
    assert_eq!(code, Some(0), "{stderr}");
    let lock = std::fs::read_to_string(dir.path().join("airlock.lock")).unwrap();
    assert!(lock.contains("\nimages: []\n"), "{lock}");

    // Every lookup failing (nothing listens on port 1) locks nothing either.
    std::fs::write(dir.path().join("gone.txt"), "127.0.0.1:1/lab/gone:1\n").unwrap();
    let (code, stderr) = run(&["lock", "-f", "gone.txt", "--insecure", "127.0.0.1:1"]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("locked 0 of 1 image"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("airlock.lock")).unwrap(),
        lock
    );

    // A file written by an older airlock: `images:` with nothing under it (YAML null).
    std::fs::write(dir.path().join("airlock.lock"), "version: 1\nimages:\n").unwrap();
    let (code, stderr) = run(&["lock", "-f", "none.txt"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = run(&[
        "pack",
        "--lock",
        "airlock.lock",
        "-o",
        "layout",
        "--progress",
        "quiet",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dir.path().join("layout/oci-layout").is_file());
    std::fs::write(dir.path().join("pod.yaml"), "kind: Pod\napiVersion: v1\n").unwrap();
    let (code, stderr) = run(&[
        "rewrite",
        "--registry",
        "mirror.local",
        "--pin",
        "--write",
        "pod.yaml",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
}

/// Inside an air gap a machine may have no CA store at all. reqwest then refused to build a
/// client with only "builder error"; the message must say what is missing and what to do, and
/// `--ca-file` must be enough on its own.
#[test]
fn a_machine_without_a_ca_store_is_told_to_give_ca_file_and_it_is_enough() {
    let (registry, _set, image_digest, _) = registry_with_images(RegistryKind::TLS);
    let dir = tempdir();
    let no_store = dir.path().join("no-ca-store");
    std::fs::create_dir(&no_store).unwrap();
    let host = registry.host();
    std::fs::write(dir.path().join("list"), format!("{host}/lab/app:1.0\n")).unwrap();
    let without_store = |extra: &[&str]| {
        airlock()
            .current_dir(dir.path())
            // rustls-native-certs reads these instead of the system's store.
            .env("SSL_CERT_FILE", no_store.join("none.pem"))
            .env("SSL_CERT_DIR", &no_store)
            .args(["lock", "-f", "list"])
            .args(extra)
            .output()
            .unwrap()
    };

    let out = without_store(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("No CA certificates"), "{stderr}");
    assert!(stderr.contains("--ca-file"), "{stderr}");

    let ca = registry
        .ca_pem_path()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let out = without_store(&["--ca-file", &ca]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lock = std::fs::read_to_string(dir.path().join("airlock.lock")).unwrap();
    assert!(lock.contains(&image_digest), "{lock}");
}
