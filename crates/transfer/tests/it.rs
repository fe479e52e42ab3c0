//! Integration tests against Debian's `docker-registry` on loopback and `skopeo`, with images
//! built by `testimages`. Skipped (with a message) only when the binaries are missing.

use oci::Platform;
use oci_client::{Client, ClientOptions, Credential, Repo};
use oci_store::Layout;
use oci_transfer::{Endpoint, Transfer, TransferOptions};
use testimages::{ImageSet, ImageSpec, LayerSpec, Media, Registry, RegistryKind};

fn tools() -> bool {
    let ok = Registry::available() && testimages::Skopeo::available();
    if !ok {
        eprintln!(
            "SKIPPED: docker-registry or skopeo not installed (apt-get install docker-registry skopeo)"
        );
    }
    ok
}

fn client_for(reg: &Registry) -> Client {
    let mut opts = ClientOptions {
        docker_config: false,
        ..ClientOptions::default()
    };
    if !reg.kind().tls {
        opts.insecure_hosts.push(reg.host());
    }
    opts.ca_file = reg.ca_pem_path().map(Into::into);
    if let Some((u, p)) = reg.credentials() {
        opts.host_creds.insert(
            reg.host(),
            Credential::Basic {
                username: u.into(),
                password: p.into(),
            },
        );
    }
    Client::new(opts).unwrap()
}

/// An OCI index (amd64 + arm64 sharing a base layer) and a Docker single-platform image.
fn images() -> (ImageSet, testimages::BuiltIndex, testimages::BuiltImage) {
    let set = ImageSet::temp().unwrap();
    let amd = ImageSpec::new(
        Media::Oci,
        testimages::Platform::linux_amd64(),
        vec![
            LayerSpec::new(64 * 1024, 1),
            LayerSpec::new(5 * 1024 * 1024, 2),
        ],
    );
    let arm = ImageSpec::new(
        Media::Oci,
        testimages::Platform::linux_arm64(),
        vec![LayerSpec::new(64 * 1024, 1), LayerSpec::new(32 * 1024, 3)],
    );
    let idx = set
        .index("demo/multi:1.0", &[amd, arm], Media::Oci)
        .unwrap();
    let docker = set
        .image(
            "demo/docker:2.0",
            &ImageSpec::new(
                Media::Docker,
                testimages::Platform::linux_amd64(),
                vec![LayerSpec::new(16 * 1024, 4)],
            ),
        )
        .unwrap();
    (set, idx, docker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layout_to_registry_to_layout_roundtrip_and_rerun_skips() {
    if !tools() {
        return;
    }
    let (set, idx, docker) = images();
    let reg = Registry::start(RegistryKind {
        auth: false,
        tls: false,
    })
    .unwrap();
    let client = client_for(&reg);
    let src = Layout::open(set.path()).await.unwrap();
    let t = Transfer::new(TransferOptions::default());
    let jobs = vec![
        (
            Endpoint::layout(&src, Some("demo/multi:1.0")),
            Endpoint::registry(&client, Repo::new(reg.host(), "demo/multi"), Some("1.0")),
        ),
        (
            Endpoint::layout(&src, Some("demo/docker:2.0")),
            Endpoint::registry(&client, Repo::new(reg.host(), "demo/docker"), Some("2.0")),
        ),
        (
            Endpoint::layout(&src, Some("does/not:exist")),
            Endpoint::registry(&client, Repo::new(reg.host(), "x"), Some("1")),
        ),
    ];
    let results = t.copy_many(jobs).await;
    let r0 = results[0].outcome.as_ref().unwrap();
    assert_eq!(r0.source_digest.as_str(), idx.digest());
    assert!(r0.index_preserved);
    assert_eq!(r0.manifests.len(), 2);
    assert!(results[1].outcome.is_ok(), "{:?}", results[1].outcome);
    assert!(matches!(
        results[2].outcome,
        Err(oci::Error::NotInLayout { .. })
    ));
    let s = t.stats();
    // amd64: config + 2 layers; arm64: config + shared base (in-run dedup) + 1 layer; docker: 2.
    assert_eq!(s.blobs_sent + s.blobs_skipped, 8, "{s:?}");
    assert_eq!(s.images_ok, 2);
    assert_eq!(s.images_failed, 1);

    // skopeo sees the index digest unchanged.
    let raw = testimages::skopeo_inspect_raw(
        &format!("docker://{}/demo/multi:1.0", reg.host()),
        &reg.inspect_args(),
    )
    .unwrap();
    assert_eq!(testimages::sha256_digest(&raw), idx.digest());

    // A rerun sends nothing.
    let t2 = Transfer::new(TransferOptions::default());
    for r in t2
        .copy_many(vec![
            (
                Endpoint::layout(&src, Some("demo/multi:1.0")),
                Endpoint::registry(&client, Repo::new(reg.host(), "demo/multi"), Some("1.0")),
            ),
            (
                Endpoint::layout(&src, Some("demo/docker:2.0")),
                Endpoint::registry(&client, Repo::new(reg.host(), "demo/docker"), Some("2.0")),
            ),
        ])
        .await
    {
        r.outcome.unwrap();
    }
    let s2 = t2.stats();
    assert_eq!(s2.blobs_sent, 0, "{s2:?}");
    assert_eq!(s2.bytes_sent, 0);

    // Registry -> a fresh layout; skopeo reads it back with oci:.
    let tmp = tempfile::tempdir().unwrap();
    let out = Layout::create(tmp.path().join("out")).await.unwrap();
    let t3 = Transfer::new(TransferOptions::default());
    let c = t3
        .copy(
            &Endpoint::registry(&client, Repo::new(reg.host(), "demo/multi"), Some("1.0")),
            &Endpoint::layout(&out, Some("demo/multi:1.0")),
        )
        .await
        .unwrap();
    assert_eq!(c.target_digest.as_ref().unwrap().as_str(), idx.digest());
    for b in idx.images.iter().flat_map(|i| i.blob_digests()) {
        assert!(out.has_blob(&b.parse().unwrap(), None).await, "{b} missing");
    }
    let partials: Vec<_> = std::fs::read_dir(out.root().join("blobs/sha256"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .collect();
    assert!(partials.is_empty());
    let dst = format!("docker://{}/skopeo/copy:1", reg.host());
    let mut args = vec!["--all".to_string(), "--preserve-digests".to_string()];
    args.extend(reg.dest_args());
    testimages::skopeo_copy(
        &format!("oci:{}:demo/multi:1.0", out.root().display()),
        &dst,
        &args,
    )
    .unwrap();
    let raw = testimages::skopeo_inspect_raw(&dst, &reg.inspect_args()).unwrap();
    assert_eq!(testimages::sha256_digest(&raw), idx.digest());

    // Interrupted pack (a blob lost, a stale partial left by kill -9): the rerun fetches only
    // the missing blob.
    let big = &idx.images[0].layers[1].blob;
    std::fs::remove_file(out.blob_path(&big.digest.parse().unwrap())).unwrap();
    std::fs::write(
        out.root().join("blobs/sha256/.deadbeef.1-0.partial"),
        b"junk",
    )
    .unwrap();
    // Leftovers are removed only when no other Layout (process) has the layout open.
    let root = out.root().to_path_buf();
    drop(out);
    let out = Layout::create(root).await.unwrap();
    assert!(
        !out.root()
            .join("blobs/sha256/.deadbeef.1-0.partial")
            .exists()
    );
    let t4 = Transfer::new(TransferOptions::default());
    t4.copy(
        &Endpoint::registry(&client, Repo::new(reg.host(), "demo/multi"), Some("1.0")),
        &Endpoint::layout(&out, Some("demo/multi:1.0")),
    )
    .await
    .unwrap();
    let s4 = t4.stats();
    assert_eq!(
        (s4.blobs_sent, s4.bytes_sent, s4.bytes_moved),
        (1, big.size, big.size),
        "{s4:?}"
    );

    // Registry -> another registry (no mount possible): streamed, digests preserved.
    let reg2 = Registry::start(RegistryKind {
        auth: true,
        tls: true,
    })
    .unwrap();
    let client2 = client_for(&reg2);
    let t5 = Transfer::new(TransferOptions::default());
    let c = t5
        .copy(
            &Endpoint::registry(&client, Repo::new(reg.host(), "demo/multi"), Some("1.0")),
            &Endpoint::registry(
                &client2,
                Repo::new(reg2.host(), "mirror/multi"),
                Some("1.0"),
            ),
        )
        .await
        .unwrap();
    assert_eq!(c.target_digest.unwrap().as_str(), idx.digest());
    let s5 = t5.stats();
    assert_eq!(s5.blobs_sent, 5, "{s5:?}");
    assert_eq!(s5.bytes_moved, s5.bytes_sent, "{s5:?}");
    let raw = testimages::skopeo_inspect_raw(
        &format!("docker://{}/mirror/multi:1.0", reg2.host()),
        &reg2.inspect_args(),
    )
    .unwrap();
    assert_eq!(testimages::sha256_digest(&raw), idx.digest());
    let _ = docker;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_push_then_client_reads_and_mirrors_with_mount_over_tls_and_auth() {
    if !tools() {
        return;
    }
    let (set, idx, _docker) = images();
    let reg = Registry::start(RegistryKind {
        auth: true,
        tls: true,
    })
    .unwrap();
    let dst = format!("docker://{}/team/multi:1.0", reg.host());
    let mut args = vec!["--all".to_string(), "--preserve-digests".to_string()];
    args.extend(reg.dest_args());
    testimages::skopeo_copy(&set.skopeo_source("demo/multi:1.0").unwrap(), &dst, &args).unwrap();

    let client = client_for(&reg);
    let repo = Repo::new(reg.host(), "team/multi");
    let m = client.get_manifest(&repo, "1.0").await.unwrap();
    assert_eq!(m.digest.as_str(), idx.digest());
    assert_eq!(m.media_type, oci::manifest::OCI_INDEX);
    let resolved = oci_transfer::resolve(&client, &repo, "1.0").await.unwrap();
    assert_eq!(resolved.platforms.len(), 2);
    assert!(
        Platform::parse("linux/arm64")
            .unwrap()
            .matches(resolved.platforms[1].0.as_ref().unwrap())
    );

    // Without credentials: a clear Unauthorized.
    let anon = Client::new(ClientOptions {
        docker_config: false,
        ca_file: reg.ca_pem_path().map(Into::into),
        ..ClientOptions::default()
    })
    .unwrap();
    let e = anon.get_manifest(&repo, "1.0").await.unwrap_err();
    assert!(
        matches!(e, oci::Error::Unauthorized { status: 401, .. }),
        "{e}"
    );

    // Same registry, other repo: blobs are mounted, not sent.
    let t = Transfer::new(TransferOptions::default());
    let c = t
        .copy(
            &Endpoint::registry(&client, repo.clone(), Some("1.0")),
            &Endpoint::registry(&client, Repo::new(reg.host(), "mirror/multi"), Some("1.0")),
        )
        .await
        .unwrap();
    assert_eq!(c.target_digest.as_ref().unwrap().as_str(), idx.digest());
    let s = t.stats();
    assert_eq!(s.blobs_sent, 0, "{s:?}");
    assert!(s.blobs_mounted >= 4, "{s:?}");

    // Platform filter: only arm64, no fabricated index.
    let t = Transfer::new(TransferOptions {
        platforms: vec![Platform::parse("linux/arm64").unwrap()],
        ..TransferOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let out = Layout::create(tmp.path().join("arm")).await.unwrap();
    let c = t
        .copy(
            &Endpoint::registry(&client, repo.clone(), Some("1.0")),
            &Endpoint::layout(&out, Some("team/multi:1.0")),
        )
        .await
        .unwrap();
    assert!(!c.index_preserved);
    assert_eq!(
        c.target_digest.as_ref().unwrap().as_str(),
        idx.images[1].digest()
    );
    let d = out.resolve("team/multi:1.0").await.unwrap();
    assert_eq!(d.digest.as_str(), idx.images[1].digest());
    assert!(
        !out.has_blob(&idx.images[0].layers[1].blob.digest.parse().unwrap(), None)
            .await
    );

    // Blob download verified and streamed to a writer.
    let layer = &idx.images[0].layers[1].blob;
    let mut buf = Vec::new();
    let n = client
        .get_blob(
            &repo,
            &layer.digest.parse().unwrap(),
            Some(layer.size),
            &mut buf,
        )
        .await
        .unwrap();
    assert_eq!(n, layer.size);
    assert_eq!(testimages::sha256_digest(&buf), layer.digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_is_read_by_skopeo_and_reads_back_into_a_layout() {
    if !tools() {
        return;
    }
    let (set, idx, docker) = images();
    let reg = Registry::start(RegistryKind {
        auth: false,
        tls: false,
    })
    .unwrap();
    let client = client_for(&reg);
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::open(set.path()).await.unwrap();
    let tar = tmp.path().join("bundle.tar");
    oci_store::write_archive(&src, &tar, oci_store::Compression::None)
        .await
        .unwrap();
    assert!(!tmp.path().join("bundle.tar.partial").exists());

    let dst = format!("docker://{}/from/archive:1", reg.host());
    let mut args = vec!["--all".to_string(), "--preserve-digests".to_string()];
    args.extend(reg.dest_args());
    testimages::skopeo_copy(
        &format!("oci-archive:{}:demo/multi:1.0", tar.display()),
        &dst,
        &args,
    )
    .unwrap();
    let raw = testimages::skopeo_inspect_raw(&dst, &reg.inspect_args()).unwrap();
    assert_eq!(testimages::sha256_digest(&raw), idx.digest());

    // zstd round trip through our own reader, then push from the extracted layout.
    let zst = tmp.path().join("bundle.tar.zst");
    oci_store::write_archive(&src, &zst, oci_store::Compression::from_path(&zst))
        .await
        .unwrap();
    let back = oci_store::read_archive(&zst, tmp.path().join("extracted"))
        .await
        .unwrap();
    assert_eq!(
        back.resolve("demo/docker:2.0")
            .await
            .unwrap()
            .digest
            .as_str(),
        docker.digest()
    );
    let t = Transfer::new(TransferOptions::default());
    let c = t
        .copy(
            &Endpoint::layout(&back, Some("demo/docker:2.0")),
            &Endpoint::registry(&client, Repo::new(reg.host(), "from/docker"), Some("2.0")),
        )
        .await
        .unwrap();
    assert_eq!(c.target_digest.unwrap().as_str(), docker.digest());
    let raw = testimages::skopeo_inspect_raw(
        &format!("docker://{}/from/docker:2.0", reg.host()),
        &reg.inspect_args(),
    )
    .unwrap();
    assert_eq!(testimages::sha256_digest(&raw), docker.digest());

    // Reading the same archive again into the same layout adds nothing and keeps names.
    let again = oci_store::read_archive(&tar, tmp.path().join("extracted"))
        .await
        .unwrap();
    let names: Vec<_> = again
        .index()
        .await
        .unwrap()
        .manifests
        .iter()
        .filter_map(|d| d.ref_name().map(String::from))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
