//! `airlock image` and `airlock pack --include-self`: the image of airlock itself, read back by
//! skopeo (the independent checker) and by hand (the layer's tar). The binaries are minimal
//! static ELF executables built by the test (`testimages::elf`), and the test's own airlock
//! binary, which is imaged when it is static and otherwise must be refused.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use testimages::elf::{EM_AARCH64, EM_X86_64, executable};

use crate::airlock;
use crate::serve_cli::Server;
use crate::serve_interop::{PLAIN_DEST, images};

const NAME: &str = concat!("airlock.invalid/airlock:", env!("CARGO_PKG_VERSION"));

fn write_bin(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `airlock image ARGS`: (exit code, stdout, stderr), timestamps at their default.
fn image(args: &[&str]) -> (i32, String, String) {
    let out = airlock()
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("image")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn skopeo_json(args: &[&str]) -> Value {
    serde_json::from_slice(&testimages::skopeo(args).unwrap()).unwrap()
}

/// The entries of a gzip tar layer: (path, mode, uid, gid, bytes).
fn layer_entries(gz: &[u8]) -> Vec<(String, u32, u64, u64, Vec<u8>)> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (
                e.path().unwrap().display().to_string(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                bytes,
            )
        })
        .collect()
}

/// Checks the single-platform image `NAME` in the layout `dir` as skopeo and a tar reader see
/// it, and that its layer holds exactly `binary`. Returns skopeo's `inspect`.
fn check_image(dir: &Path, binary: &[u8], arch: &str) -> Value {
    let src = format!("oci:{}:{NAME}", dir.display());
    let inspect = skopeo_json(&["inspect", &src]);
    assert_eq!(inspect["Architecture"], arch, "{inspect}");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(
        inspect["Labels"]["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    let layers = inspect["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer: {inspect}");
    let config = skopeo_json(&["inspect", "--config", &src]);
    let user = config["config"]["User"].as_str().unwrap();
    assert_eq!(user, "65532:65532", "{config}");
    assert!(!user.starts_with("0") && !user.starts_with("root"));
    assert_eq!(config["config"]["Entrypoint"][0], "/usr/local/bin/airlock");
    let manifest: Value =
        serde_json::from_slice(&testimages::skopeo(&["inspect", "--raw", &src]).unwrap()).unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    let hex = layers[0].as_str().unwrap().strip_prefix("sha256:").unwrap();
    let gz = std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap();
    let entries = layer_entries(&gz);
    assert_eq!(
        entries.len(),
        1,
        "only the binary: {:?}",
        entries.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    let (path, mode, uid, gid, bytes) = &entries[0];
    assert_eq!(
        (path.as_str(), *mode, *uid, *gid),
        ("usr/local/bin/airlock", 0o755, 65532, 65532)
    );
    assert!(
        bytes == binary,
        "the binary in the image is the input, byte for byte"
    );
    inspect
}

#[test]
fn image_of_a_static_binary_is_read_by_skopeo_and_its_one_layer_holds_only_the_binary() {
    if !testimages::Skopeo::available() {
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let dir = crate::tempdir();
    let bin = executable(EM_X86_64, None);
    let path = write_bin(dir.path(), "airlock-amd64", &bin);
    let out = dir.path().join("layout");
    let (code, stdout, stderr) = image(&[
        "-o",
        out.to_str().unwrap(),
        "--binary",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let inspect = check_image(&out, &bin, "amd64");
    assert_eq!(
        stdout.trim(),
        format!("{NAME}@{}", inspect["Digest"].as_str().unwrap())
    );

    // The binary taken out of the image is a static executable that runs (on x86-64).
    if cfg!(target_arch = "x86_64") {
        let hex = inspect["Layers"][0]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap()
            .to_string();
        let gz = std::fs::read(out.join("blobs/sha256").join(hex)).unwrap();
        let extracted = write_bin(dir.path(), "extracted", &layer_entries(&gz)[0].4);
        std::fs::set_permissions(
            &extracted,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        assert!(Command::new(&extracted).status().unwrap().success());
    }

    // The same binary gives the same digest on every run, into a layout or an archive; the
    // timestamps come from SOURCE_DATE_EPOCH when it is set.
    let again = dir.path().join("again");
    let (_, stdout2, _) = image(&[
        "-o",
        again.to_str().unwrap(),
        "--binary",
        path.to_str().unwrap(),
    ]);
    assert_eq!(stdout2, stdout);
    let archive = dir.path().join("airlock.tar");
    let (code, stdout3, stderr) = image(&[
        "-o",
        archive.to_str().unwrap(),
        "--binary",
        path.to_str().unwrap(),
    ]);
    assert_eq!((code, &stdout3), (0, &stdout), "{stderr}");
    let from_archive = skopeo_json(&[
        "inspect",
        &format!("oci-archive:{}:{NAME}", archive.display()),
    ]);
    assert_eq!(from_archive["Digest"], inspect["Digest"]);
    let dated = airlock()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args([
            "image",
            "-o",
            dir.path().join("dated").to_str().unwrap(),
            "--binary",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(dated.status.success());
    assert_ne!(String::from_utf8_lossy(&dated.stdout), stdout);
    let dated = skopeo_json(&[
        "inspect",
        &format!("oci:{}:{NAME}", dir.path().join("dated").display()),
    ]);
    assert_eq!(dated["Created"], "2023-11-14T22:13:20Z");
}

#[test]
fn image_of_an_amd64_and_an_arm64_binary_is_an_index_of_both() {
    if !testimages::Skopeo::available() {
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let dir = crate::tempdir();
    let amd64 = write_bin(dir.path(), "amd64", &executable(EM_X86_64, None));
    let arm64 = write_bin(dir.path(), "arm64", &executable(EM_AARCH64, None));
    let out = dir.path().join("layout");
    let (code, _, stderr) = image(&[
        "-o",
        out.to_str().unwrap(),
        "--binary",
        amd64.to_str().unwrap(),
        "--binary",
        arm64.to_str().unwrap(),
        "--name",
        "registry.corp/platform/airlock:test",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let src = format!("oci:{}:registry.corp/platform/airlock:test", out.display());
    let index = skopeo_json(&["inspect", "--raw", &src]);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    for arch in ["amd64", "arm64"] {
        let i = skopeo_json(&[
            "inspect",
            "--override-arch",
            arch,
            "--override-os",
            "linux",
            &src,
        ]);
        assert_eq!(i["Architecture"], arch);
        assert_eq!(i["Layers"].as_array().unwrap().len(), 1);
    }

    // Two binaries of one architecture are a mistake, refused before anything is written.
    let twice = dir.path().join("twice");
    let (code, _, stderr) = image(&[
        "-o",
        twice.to_str().unwrap(),
        "--binary",
        amd64.to_str().unwrap(),
        "--binary",
        amd64.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("both linux/amd64 binaries"), "{stderr}");
    assert!(!twice.exists());
}

#[test]
fn image_refuses_a_dynamically_linked_binary_and_writes_nothing() {
    let dir = crate::tempdir();
    let dynamic = write_bin(
        dir.path(),
        "dynamic",
        &executable(EM_X86_64, Some("/lib64/ld-linux-x86-64.so.2")),
    );
    let script = write_bin(dir.path(), "script.sh", b"#!/bin/sh\nexit 0\n");
    for (bin, says) in [
        (
            &dynamic,
            "is dynamically linked (program interpreter \"/lib64/ld-linux-x86-64.so.2\")",
        ),
        (&script, "is not an ELF executable"),
    ] {
        for out in ["layout", "airlock.tar"] {
            let out = dir.path().join(out);
            let (code, stdout, stderr) = image(&[
                "-o",
                out.to_str().unwrap(),
                "--binary",
                bin.to_str().unwrap(),
            ]);
            assert_eq!(code, 2, "{stderr}");
            assert!(stdout.is_empty());
            assert!(
                stderr.contains(says) && stderr.contains(bin.to_str().unwrap()),
                "{stderr}"
            );
            let names: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names.len(), 2, "nothing written: {names:?}");
        }
    }
}

/// Whether the ELF file asks for a program interpreter, by binutils' reading of it (not ours).
fn has_interpreter(path: &Path) -> bool {
    let out = Command::new("readelf")
        .args(["-lW"])
        .arg(path)
        .output()
        .expect("readelf (binutils)");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).contains("Requesting program interpreter")
}

#[test]
fn image_of_the_running_airlock_only_when_it_is_statically_linked() {
    let exe = Path::new(env!("CARGO_BIN_EXE_airlock"));
    let dir = crate::tempdir();
    let out = dir.path().join("layout");
    let (code, _, stderr) = image(&["-o", out.to_str().unwrap()]);
    if has_interpreter(exe) {
        // A debug or distribution build: refused, with the way to the static one.
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("dynamically linked"), "{stderr}");
        assert!(stderr.contains("scripts/build-static"), "{stderr}");
        assert!(!out.exists());
    } else {
        assert_eq!(code, 0, "{stderr}");
        if testimages::Skopeo::available() {
            check_image(&out, &std::fs::read(exe).unwrap(), "amd64");
        }
    }
}

#[test]
fn pack_include_self_adds_the_same_image_as_airlock_image() {
    if !testimages::Skopeo::available() {
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let dir = crate::tempdir();
    let bin = executable(EM_X86_64, None);
    let path = write_bin(dir.path(), "airlock-static", &bin);
    let (code, stdout, stderr) = image(&[
        "-o",
        dir.path().join("alone").to_str().unwrap(),
        "--binary",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let digest = stdout.trim().rsplit('@').next().unwrap().to_string();

    // One ordinary image beside it, from a registry.
    let (set, digests) = images();
    let store = crate::tempdir();
    let srv = Server::start(&["--store", store.path().to_str().unwrap()]);
    let src = srv.addr.to_string();
    let (name, image_digest) = &digests[0];
    let mut args = vec!["--preserve-digests"];
    args.extend(PLAIN_DEST);
    testimages::skopeo_copy(
        &set.skopeo_source(name).unwrap(),
        &format!("docker://{src}/{name}"),
        &args,
    )
    .unwrap();
    std::fs::write(dir.path().join("images.txt"), format!("{src}/{name}\n")).unwrap();
    let out = airlock()
        .env_remove("SOURCE_DATE_EPOCH")
        .current_dir(dir.path())
        .args([
            "pack",
            "-f",
            "images.txt",
            "-o",
            "bundle.tar",
            "--insecure",
            &src,
            "--include-self",
            "--self-binary",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = dir.path().join("bundle.tar");
    let packed = skopeo_json(&[
        "inspect",
        &format!("oci-archive:{}:{NAME}", archive.display()),
    ]);
    assert_eq!(
        packed["Digest"],
        digest.as_str(),
        "the same image as airlock image builds"
    );
    let raw = testimages::skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:{src}/{name}", archive.display()),
    ])
    .unwrap();
    assert_eq!(&testimages::sha256_digest(&raw), image_digest);

    // Without --self-binary, the running airlock: refused before anything is pulled when it
    // is not static.
    if has_interpreter(Path::new(env!("CARGO_BIN_EXE_airlock"))) {
        let out = airlock()
            .current_dir(dir.path())
            .args([
                "pack",
                "-f",
                "images.txt",
                "-o",
                "second.tar",
                "--insecure",
                &src,
                "--include-self",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("dynamically linked"));
        assert!(!dir.path().join("second.tar").exists());
        assert!(!dir.path().join(".second.tar.layout").exists());
    }
}
