//! Independent clients against `airlock serve` on a socket: skopeo copies in and out (OCI and
//! Docker media types, an OCI index and a Docker manifest list) with digests preserved, and
//! airlock's own `pack` from it and `push` into it.

use testimages::{ImageSet, ImageSpec, LayerSpec, Media, Platform, sha256_digest, skopeo_copy};

use crate::airlock;
use crate::serve_cli::Server;

pub const PLAIN_DEST: &[&str] = &["--dest-tls-verify=false"];

pub fn images() -> (ImageSet, Vec<(&'static str, String)>) {
    let set = ImageSet::temp().unwrap();
    let oci = set
        .image(
            "lab/oci:1.0",
            &ImageSpec::new(
                Media::Oci,
                Platform::linux_amd64(),
                vec![LayerSpec::new(300_000, 1)],
            ),
        )
        .unwrap();
    let docker = set
        .image(
            "lab/docker:1.0",
            &ImageSpec::new(
                Media::Docker,
                Platform::linux_amd64(),
                vec![LayerSpec::new(50_000, 2)],
            ),
        )
        .unwrap();
    let platforms = [
        ImageSpec::new(
            Media::Oci,
            Platform::linux_amd64(),
            vec![LayerSpec::new(40_000, 3)],
        ),
        ImageSpec::new(
            Media::Oci,
            Platform::linux_arm64(),
            vec![LayerSpec::new(40_000, 4)],
        ),
    ];
    let index = set.index("lab/index:1.0", &platforms, Media::Oci).unwrap();
    let list = set
        .index("lab/list:1.0", &platforms, Media::Docker)
        .unwrap();
    let digests = vec![
        ("lab/oci:1.0", oci.digest().to_string()),
        ("lab/docker:1.0", docker.digest().to_string()),
        ("lab/index:1.0", index.digest().to_string()),
        ("lab/list:1.0", list.digest().to_string()),
    ];
    (set, digests)
}

fn inspect(addr: &str, name: &str) -> Vec<u8> {
    testimages::skopeo_inspect_raw(&format!("docker://{addr}/{name}"), &["--tls-verify=false"])
        .unwrap()
}

#[test]
fn skopeo_copies_in_and_out_of_airlock_serve_with_digests_preserved() {
    if !testimages::Skopeo::available() {
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let (set, digests) = images();
    let store = tempfile::tempdir().unwrap();
    let srv = Server::start(&["--store", store.path().to_str().unwrap()]);
    let addr = srv.addr.to_string();
    for (name, digest) in &digests {
        let mut args = vec!["--all", "--preserve-digests"];
        args.extend(PLAIN_DEST);
        skopeo_copy(
            &set.skopeo_source(name).unwrap(),
            &format!("docker://{addr}/{name}"),
            &args,
        )
        .unwrap();
        assert_eq!(&sha256_digest(&inspect(&addr, name)), digest, "{name}");
    }
    // Out again, every platform: OCI media types into an OCI layout, Docker ones (which an OCI
    // layout does not hold as they are) into a `dir:` copy; the same digests.
    let out = tempfile::tempdir().unwrap();
    for (i, (name, digest)) in digests.iter().enumerate() {
        let dst = if name.contains("docker") || name.contains("list") {
            format!("dir:{}", out.path().join(format!("d{i}")).display())
        } else {
            format!("oci:{}:{name}", out.path().join("layout").display())
        };
        skopeo_copy(
            &format!("docker://{addr}/{name}"),
            &dst,
            &["--all", "--preserve-digests", "--src-tls-verify=false"],
        )
        .unwrap();
        let raw = testimages::skopeo(&["inspect", "--raw", &dst]).unwrap();
        assert_eq!(&sha256_digest(&raw), digest, "{name}");
    }
    // A read-only server over the same store, in place, serves the same.
    drop(srv);
    let ro = Server::start(&[store.path().to_str().unwrap()]);
    for (name, digest) in &digests {
        assert_eq!(
            &sha256_digest(&inspect(&ro.addr.to_string(), name)),
            digest,
            "{name}"
        );
    }
}

/// A read-write `airlock serve` holding the image set of [`images`] (copied in by skopeo, digests
/// preserved), the directory of its store, and the set's names and manifest digests.
pub fn serve_image_set() -> (Server, tempfile::TempDir, Vec<(&'static str, String)>) {
    let (set, digests) = images();
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(&["--store", store.path().to_str().unwrap()]);
    let src = server.addr.to_string();
    for (name, _) in &digests {
        let mut args = vec!["--all", "--preserve-digests"];
        args.extend(PLAIN_DEST);
        skopeo_copy(
            &set.skopeo_source(name).unwrap(),
            &format!("docker://{src}/{name}"),
            &args,
        )
        .unwrap();
    }
    (server, store, digests)
}

#[test]
fn airlock_pack_from_and_push_into_airlock_serve() {
    if !testimages::Skopeo::available() {
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let (source, _source_store, digests) = serve_image_set();
    let src = source.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let list: String = digests
        .iter()
        .map(|(n, _)| format!("{src}/{n}\n"))
        .collect();
    std::fs::write(dir.path().join("images.txt"), list).unwrap();
    let out = airlock()
        .current_dir(dir.path())
        .args([
            "pack",
            "-f",
            "images.txt",
            "-o",
            "layout",
            "--insecure",
            &src,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pack: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let target_store = tempfile::tempdir().unwrap();
    let target = Server::start(&["--store", target_store.path().to_str().unwrap()]);
    let to = target.addr.to_string();
    let out = airlock()
        .current_dir(dir.path())
        .args([
            "push",
            "layout",
            "--to",
            &to,
            "--mapping",
            "keep-host",
            "--insecure",
            &to,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "push: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, digest) in &digests {
        let mapped = format!("{}/{name}", src.replace(':', "_"));
        assert_eq!(&sha256_digest(&inspect(&to, &mapped)), digest, "{mapped}");
    }
    // The packed layout itself, served read-only in place, is a registry too.
    let packed = Server::start(&[dir.path().join("layout").to_str().unwrap()]);
    for (name, digest) in &digests {
        assert_eq!(
            &sha256_digest(&inspect(&packed.addr.to_string(), name)),
            digest,
            "{name}"
        );
    }
}
