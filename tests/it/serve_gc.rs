//! `airlock serve gc`: on a store filled over the wire, the dry run lists exactly the blobs no
//! manifest references and removes nothing; `--delete` removes exactly those, refuses while a
//! server holds the store, and every image (and a referrer's blobs) still pulls afterwards.

use std::collections::BTreeSet;
use std::path::Path;

use oci::Digest;
use testimages::{ImageSpec, LayerSpec, Media, Platform, sha256_digest, skopeo_copy};

use crate::serve_cli::{Server, http};
use crate::serve_interop::{PLAIN_DEST, images};

fn blob_names(store: &Path) -> BTreeSet<String> {
    std::fs::read_dir(store.join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect()
}

fn gc(store: &Path, extra: &[&str]) -> std::process::Output {
    crate::airlock()
        .args(["serve", "gc", "--store", store.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

fn listed(out: &std::process::Output) -> BTreeSet<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

#[test]
fn serve_gc_lists_then_deletes_exactly_the_unreferenced_blobs() {
    if !testimages::Skopeo::available() {
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let (set, digests) = images();
    let gone = set
        .image(
            "lab/gone:1.0",
            &ImageSpec::new(
                Media::Oci,
                Platform::linux_amd64(),
                vec![LayerSpec::new(70_000, 99)],
            ),
        )
        .unwrap();
    let dir = crate::tempdir();
    let store = dir.path().join("store");
    let srv = Server::start(&["--store", store.to_str().unwrap()]);
    let addr = srv.addr.to_string();
    for name in digests.iter().map(|(n, _)| *n).chain(["lab/gone:1.0"]) {
        let mut args = vec!["--all", "--preserve-digests"];
        args.extend(PLAIN_DEST);
        skopeo_copy(
            &set.skopeo_source(name).unwrap(),
            &format!("docker://{addr}/{name}"),
            &args,
        )
        .unwrap();
    }
    // A referrer of lab/oci (pushed by digest) whose config only it references.
    let (oci_name, oci_digest) = &digests[0];
    let (status, headers, _) = http(
        srv.addr,
        "HEAD",
        &format!("/v2/{}", "lab/oci/manifests/1.0"),
        b"",
    );
    assert_eq!(status, 200, "{oci_name}");
    let size: u64 = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let config = br#"{"signed":"yes"}"#;
    let config_digest = Digest::of(config);
    let (status, _, _) = http(
        srv.addr,
        "POST",
        &format!("/v2/lab/oci/blobs/uploads/?digest={config_digest}"),
        config,
    );
    assert_eq!(status, 201);
    let referrer = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sig","config":{{"mediaType":"application/vnd.example.sig","digest":"{config_digest}","size":{}}},"layers":[],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{oci_digest}","size":{size}}}}}"#,
        config.len()
    );
    let referrer_digest = Digest::of(referrer.as_bytes());
    let (status, _, _) = raw_put_manifest(srv.addr, &referrer_digest, referrer.as_bytes());
    assert_eq!(status, 201);
    // Orphans: the blobs of a deleted image, and an upload nothing ever referenced.
    let (status, _, _) = http(
        srv.addr,
        "DELETE",
        &format!("/v2/lab/gone/manifests/{}", gone.digest()),
        b"",
    );
    assert_eq!(status, 202);
    let lone = b"uploaded and never referenced".to_vec();
    let lone_digest = Digest::of(&lone);
    let (status, _, _) = http(
        srv.addr,
        "POST",
        &format!("/v2/lab/oci/blobs/uploads/?digest={lone_digest}"),
        &lone,
    );
    assert_eq!(status, 201);
    let mut orphans: BTreeSet<String> = gone
        .blob_digests()
        .into_iter()
        .map(str::to_string)
        .collect();
    orphans.insert(lone_digest.to_string());

    // A running server holds the store: --delete refuses and removes nothing.
    let before = blob_names(&store);
    let out = gc(&store, &["--delete"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use by another process"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(blob_names(&store), before);
    drop(srv);

    let out = gc(&store, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listed(&out), orphans);
    let total: u64 = gone.blob_bytes() + lone.len() as u64;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "{} unreferenced blobs, {total} bytes",
            orphans.len()
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(blob_names(&store), before, "the dry run deleted something");

    let out = gc(&store, &["--delete"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listed(&out), orphans);
    let after = blob_names(&store);
    assert_eq!(
        before.difference(&after).cloned().collect::<BTreeSet<_>>(),
        orphans
    );
    assert!(
        after.contains(config_digest.as_str()),
        "the referrer's config was collected"
    );
    assert!(listed(&gc(&store, &[])).is_empty());

    // Every image still pulls whole, and the referrer with its config.
    let srv = Server::start(&[store.to_str().unwrap()]);
    let addr = srv.addr.to_string();
    for (name, digest) in &digests {
        assert_eq!(
            &crate::serve_names::pull(&format!("{addr}/{name}")),
            digest,
            "{name}"
        );
    }
    let (status, _, body) = http(
        srv.addr,
        "GET",
        &format!("/v2/lab/oci/manifests/{referrer_digest}"),
        b"",
    );
    assert_eq!(
        (status, sha256_digest(&body)),
        (200, referrer_digest.to_string())
    );
    let (status, _, body) = http(
        srv.addr,
        "GET",
        &format!("/v2/lab/oci/blobs/{config_digest}"),
        b"",
    );
    assert_eq!((status, &body[..]), (200, &config[..]));
}

/// PUT of an OCI manifest by digest (`http` sends no Content-Type).
fn raw_put_manifest(
    addr: std::net::SocketAddr,
    digest: &Digest,
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "PUT /v2/lab/oci/manifests/{digest} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    crate::serve_cli::read_response(&mut s)
}
