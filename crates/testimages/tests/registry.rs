//! The harness end to end: images built here, pushed with skopeo into Debian's docker-registry
//! (plain, then htpasswd + TLS), read back with `skopeo inspect --raw`, digests preserved.
//! Needs `docker-registry` and `skopeo` (scripts/test installs them).

use testimages::{
    BuiltImage, ImageSet, ImageSpec, LayerSpec, Media, Platform, Registry, RegistryKind, Skopeo,
    sha256_digest, skopeo_copy, skopeo_inspect_raw,
};

fn require_tools() {
    assert!(
        Registry::available() && Skopeo::available(),
        "docker-registry and skopeo are needed: run scripts/test, or \
         apt-get install docker-registry skopeo apache2-utils"
    );
}

fn spec(media: Media, platform: Platform, seeds: &[u64]) -> ImageSpec {
    ImageSpec::new(
        media,
        platform,
        seeds
            .iter()
            .map(|s| LayerSpec::new(60_000 + (*s as usize % 7) * 10_000, *s))
            .collect(),
    )
}

/// The sample set: an OCI image, a Docker image, an OCI index and a Docker manifest list, with
/// layers shared between them.
struct Sample {
    set: ImageSet,
    oci: BuiltImage,
    docker: BuiltImage,
    index: testimages::BuiltIndex,
    list: testimages::BuiltIndex,
}

fn sample() -> Sample {
    let set = ImageSet::temp().unwrap();
    let oci = set
        .image(
            "lab/app:1.0",
            &spec(Media::Oci, Platform::linux_amd64(), &[1, 2]),
        )
        .unwrap();
    let docker = set
        .image(
            "lab/legacy:1.0",
            &spec(Media::Docker, Platform::linux_amd64(), &[1, 3]),
        )
        .unwrap();
    let plats = [
        spec(Media::Oci, Platform::linux_amd64(), &[1, 4]),
        spec(Media::Oci, Platform::linux_arm64(), &[5, 4]),
    ];
    let index = set.index("lab/multi:1.0", &plats, Media::Oci).unwrap();
    let list = set
        .index("lab/multi-docker:1.0", &plats, Media::Docker)
        .unwrap();
    Sample {
        set,
        oci,
        docker,
        index,
        list,
    }
}

fn args(reg: &Registry, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    a.extend(reg.dest_args());
    a
}

/// Pushes `name` and checks the registry serves the same manifest bytes under the tag and the
/// digest.
fn push_and_check(s: &Sample, reg: &Registry, name: &str, digest: &str, bytes: &[u8]) {
    let dst = format!("docker://{}/{name}", reg.host());
    skopeo_copy(
        &s.set.skopeo_source(name).unwrap(),
        &dst,
        &args(reg, &["--all", "--preserve-digests"]),
    )
    .unwrap();
    let raw = skopeo_inspect_raw(&dst, &reg.inspect_args()).unwrap();
    assert_eq!(sha256_digest(&raw), digest, "{name}: digest preserved");
    assert_eq!(raw, bytes, "{name}: bytes preserved");
    let repo = name.rsplit_once(':').unwrap().0;
    let by_digest = format!("docker://{}/{repo}@{digest}", reg.host());
    assert_eq!(
        skopeo_inspect_raw(&by_digest, &reg.inspect_args()).unwrap(),
        bytes
    );
}

fn push_all(reg: &Registry) {
    let s = sample();
    push_and_check(
        &s,
        reg,
        "lab/app:1.0",
        s.oci.digest(),
        &s.oci.manifest_bytes,
    );
    push_and_check(
        &s,
        reg,
        "lab/legacy:1.0",
        s.docker.digest(),
        &s.docker.manifest_bytes,
    );
    for idx in [&s.index, &s.list] {
        push_and_check(&s, reg, &idx.name_tag, idx.digest(), &idx.index_bytes);
        let repo = idx.name_tag.rsplit_once(':').unwrap().0;
        for img in &idx.images {
            let r = format!("docker://{}/{repo}@{}", reg.host(), img.digest());
            let raw = skopeo_inspect_raw(&r, &reg.inspect_args()).unwrap();
            assert_eq!(raw, img.manifest_bytes, "{} {}", idx.name_tag, img.platform);
        }
    }
    // Layer blobs landed once per repository, byte for byte (filesystem driver layout).
    let blob = &s.oci.layers[0].blob.digest;
    let hex = blob.strip_prefix("sha256:").unwrap();
    let stored = reg
        .storage_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    assert_eq!(
        std::fs::read(stored).unwrap(),
        s.set.read_blob(blob).unwrap()
    );
}

#[test]
fn plain_registry_round_trip() {
    require_tools();
    let reg = Registry::start(RegistryKind::PLAIN).unwrap();
    assert!(reg.url().starts_with("http://127.0.0.1:"));
    assert!(reg.credentials().is_none() && reg.ca_pem_path().is_none());
    push_all(&reg);

    // And back: registry -> OCI layout with skopeo; the index digest survives.
    let s = sample();
    let out = tempfile::tempdir().unwrap();
    let dst = format!("oci:{}:copy", out.path().display());
    let mut a = vec!["--all".to_string(), "--preserve-digests".to_string()];
    a.extend(reg.src_args());
    skopeo_copy(&format!("docker://{}/lab/multi:1.0", reg.host()), &dst, &a).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], s.index.digest());
}

#[test]
fn auth_tls_registry_round_trip() {
    require_tools();
    let reg = Registry::start(RegistryKind::AUTH_TLS).unwrap();
    assert!(reg.url().starts_with("https://127.0.0.1:"));
    let (user, pass) = reg.credentials().unwrap();
    assert!(!user.is_empty() && pass.len() >= 16);
    let ca = std::fs::read_to_string(reg.ca_pem_path().unwrap()).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    push_all(&reg);

    // Auth and TLS are really enforced.
    let s = sample();
    let dst = format!("docker://{}/lab/app:1.0", reg.host());
    let cert = format!("--cert-dir={}", reg.cert_dir().unwrap().display());
    let err = skopeo_inspect_raw(&dst, &[cert.as_str()]).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("unauthorized") || msg.contains("authentication required"),
        "{msg}"
    );
    let creds = format!("--creds={user}:{pass}");
    let err = skopeo_inspect_raw(&dst, &[creds.as_str()]).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("certificate") || msg.contains("x509"), "{msg}");
    let raw = skopeo_inspect_raw(&dst, &[cert.as_str(), creds.as_str()]).unwrap();
    assert_eq!(sha256_digest(&raw), s.oci.digest());
}

#[test]
fn auth_without_tls_and_tls_without_auth() {
    require_tools();
    let s = sample();
    for kind in [RegistryKind::AUTH, RegistryKind::TLS] {
        let reg = Registry::start(kind).unwrap();
        assert_eq!(reg.kind(), kind);
        push_and_check(
            &s,
            &reg,
            "lab/app:1.0",
            s.oci.digest(),
            &s.oci.manifest_bytes,
        );
    }
}

#[test]
fn copy_errors_carry_skopeo_stderr() {
    require_tools();
    let reg = Registry::start(RegistryKind::PLAIN).unwrap();
    let err = skopeo_inspect_raw(
        &format!("docker://{}/nope/missing:1", reg.host()),
        &reg.inspect_args(),
    )
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("skopeo inspect --raw"), "{msg}");
    assert!(
        msg.contains("manifest unknown") || msg.contains("not found"),
        "{msg}"
    );
    let pid = reg.pid();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(reg);
    // Killed and reaped on drop.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}
