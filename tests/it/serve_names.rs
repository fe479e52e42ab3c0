//! `airlock serve ARCHIVE --registry HOST:PORT/PREFIX` is the private registry of the
//! configuration `rewrite` produced: every image answers at exactly the name `rewrite` wrote.

use std::net::SocketAddr;
use std::path::Path;

use testimages::{sha256_digest, skopeo_copy};

use crate::airlock;
use crate::serve_cli::{Server, http};
use crate::serve_interop::serve_image_set;

/// A port nobody listens on right now, for a server whose name must be known before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `bundle.tar` in `dir`, packed by `airlock pack` from a throwaway registry holding the image
/// set of [`images`]; the public names (as a configuration would write them) and digests.
pub fn packed_set(dir: &Path) -> Vec<(String, String)> {
    let (source, _store, digests) = serve_image_set();
    let src = source.addr.to_string();
    let public: Vec<(String, String)> = digests
        .into_iter()
        .map(|(n, d)| (format!("{src}/{n}"), d))
        .collect();
    let list: String = public.iter().map(|(n, _)| format!("{n}\n")).collect();
    std::fs::write(dir.join("images.txt"), list).unwrap();
    let out = airlock()
        .current_dir(dir)
        .args([
            "pack",
            "-f",
            "images.txt",
            "-o",
            "bundle.tar",
            "--insecure",
            &src,
        ])
        .args(["--progress", "quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    public
}

/// The `image:` values of `airlock rewrite --write` run on a Deployment naming `public`.
pub fn rewritten(dir: &Path, public: &[(String, String)], registry: &str) -> Vec<String> {
    let containers: String = public
        .iter()
        .enumerate()
        .map(|(i, (n, _))| format!("      - name: c{i}\n        image: {n}\n"))
        .collect();
    let yaml = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n{containers}"
    );
    let file = dir.join("deploy.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = airlock()
        .current_dir(dir)
        .args(["rewrite", "--registry", registry, "--write", "deploy.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rewrite: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("image: "))
        .map(str::to_string)
        .collect()
}

/// skopeo copies `name` (every platform) out of a plain-HTTP registry and returns the digest
/// of the manifest it read.
pub fn pull(name: &str) -> String {
    let out = tempfile::tempdir().unwrap();
    let dst = format!("dir:{}", out.path().display());
    skopeo_copy(
        &format!("docker://{name}"),
        &dst,
        &["--all", "--preserve-digests", "--src-tls-verify=false"],
    )
    .unwrap_or_else(|e| panic!("pull {name}: {e}"));
    sha256_digest(&testimages::skopeo(&["inspect", "--raw", &dst]).unwrap())
}

fn catalog(addr: SocketAddr) -> String {
    let (status, _, body) = http(addr, "GET", "/v2/_catalog", b"");
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

#[test]
fn serve_archive_under_the_names_rewrite_wrote() {
    if !testimages::Skopeo::available() {
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let dir = crate::tempdir();
    let public = packed_set(dir.path());
    let port = free_port();
    let registry = format!("127.0.0.1:{port}/mirror");
    let names = rewritten(dir.path(), &public, &registry);
    assert_eq!(names.len(), public.len());

    let listen = format!("127.0.0.1:{port}");
    let srv = Server::start(&[
        dir.path().join("bundle.tar").to_str().unwrap(),
        "--registry",
        &registry,
        "--listen",
        &listen,
    ]);
    for (name, (public_name, digest)) in names.iter().zip(&public) {
        assert!(name.starts_with(&format!("{registry}/")), "{name}");
        assert_eq!(&pull(name), digest, "{public_name} served as {name}");
    }
    // Only the mapped names: the archive's own (host-less) names are not a second way in.
    let catalog = catalog(srv.addr);
    assert!(catalog.contains("mirror/lab/oci"), "{catalog}");
    assert!(!catalog.contains("\"lab/"), "{catalog}");
    let (status, _, _) = http(srv.addr, "GET", "/v2/lab/oci/manifests/1.0", b"");
    assert_eq!(status, 404);
    assert!(
        srv.log()
            .iter()
            .any(|l| l.contains(&public[0].0) && l.contains(" as mirror/")),
        "{:?}",
        srv.log()
    );
}

#[test]
fn serve_store_under_mapped_names_accepts_pushes_that_win_after_restart() {
    if !testimages::Skopeo::available() {
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let dir = crate::tempdir();
    let public = packed_set(dir.path());
    let store = dir.path().join("store");
    let port = free_port();
    let registry = format!("127.0.0.1:{port}/mirror");
    let names = rewritten(dir.path(), &public, &registry);
    let listen = format!("127.0.0.1:{port}");
    let args = [
        dir.path().join("bundle.tar").to_str().unwrap().to_string(),
        "--store".into(),
        store.to_str().unwrap().into(),
        "--read-write".into(),
        "--registry".into(),
        registry.clone(),
        "--listen".into(),
        listen.clone(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let srv = Server::start(&args);
    for (name, (_, digest)) in names.iter().zip(&public) {
        assert_eq!(&pull(name), digest, "{name}");
    }
    // Push the docker image over the OCI image's mapped name: the push wins, now and after a
    // restart over the same store.
    let (oci_name, docker_digest) = (&names[0], &public[1].1);
    skopeo_copy(
        &format!("docker://{}", names[1]),
        &format!("docker://{oci_name}"),
        &[
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ],
    )
    .unwrap();
    assert_eq!(&pull(oci_name), docker_digest);
    drop(srv);
    let _srv = Server::start(&args);
    assert_eq!(&pull(oci_name), docker_digest);
    for (name, (_, digest)) in names.iter().zip(&public).skip(1) {
        assert_eq!(&pull(name), digest, "{name}");
    }
}
