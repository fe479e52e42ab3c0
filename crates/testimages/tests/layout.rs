//! The image builder writes real, self-consistent, deterministic images.

use std::io::Read;

use flate2::read::GzDecoder;
use serde_json::Value;
use testimages::{
    ImageSet, ImageSpec, LayerSpec, Media, Platform, REF_NAME_ANNOTATION, media_types as mt,
    sha256_digest,
};

fn spec(media: Media, platform: Platform, seeds: &[u64]) -> ImageSpec {
    ImageSpec::new(
        media,
        platform,
        seeds
            .iter()
            .map(|s| LayerSpec::new(40_000 + (*s as usize) * 1000, *s))
            .collect(),
    )
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn oci_image_is_real_and_consistent() {
    let set = ImageSet::temp().unwrap();
    let img = set
        .image(
            "test/oci:1.0",
            &spec(Media::Oci, Platform::linux_amd64(), &[1, 2]),
        )
        .unwrap();

    // Every blob hashes to its digest and has its size.
    let manifest = set.read_blob(img.digest()).unwrap();
    assert_eq!(manifest, img.manifest_bytes);
    assert_eq!(sha256_digest(&manifest), img.manifest.digest);
    assert_eq!(manifest.len() as u64, img.manifest.size);
    for d in img.blob_digests() {
        assert_eq!(sha256_digest(&set.read_blob(d).unwrap()), d);
    }

    let m = json(&manifest);
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], mt::OCI_MANIFEST);
    assert_eq!(m["config"]["mediaType"], mt::OCI_CONFIG);
    assert_eq!(m["config"]["digest"], img.config.digest.as_str());
    assert_eq!(m["layers"].as_array().unwrap().len(), 2);

    let config = json(&set.read_blob(&img.config.digest).unwrap());
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    for (i, layer) in img.layers.iter().enumerate() {
        assert_eq!(m["layers"][i]["mediaType"], mt::OCI_LAYER_GZIP);
        assert_eq!(m["layers"][i]["digest"], layer.blob.digest.as_str());
        assert_eq!(m["layers"][i]["size"], layer.blob.size);
        assert_eq!(config["rootfs"]["diff_ids"][i], layer.diff_id.as_str());

        // A real gzip'd tar whose uncompressed sha256 is the diff_id.
        let gz = set.read_blob(&layer.blob.digest).unwrap();
        let mut tar_bytes = Vec::new();
        GzDecoder::new(gz.as_slice())
            .read_to_end(&mut tar_bytes)
            .unwrap();
        assert_eq!(sha256_digest(&tar_bytes), layer.diff_id);
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut content = 0u64;
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            if e.header().entry_type().is_file() {
                content += e.header().size().unwrap();
            }
        }
        assert_eq!(content, layer.spec.size_bytes as u64);
        // Random bytes do not compress.
        assert!(layer.blob.size as usize > layer.spec.size_bytes);
    }

    let refs = set.refs().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].0, "test/oci:1.0");
    assert_eq!(refs[0].1, img.manifest);
    let index = json(&std::fs::read(set.path().join("index.json")).unwrap());
    assert_eq!(
        index["manifests"][0]["annotations"][REF_NAME_ANNOTATION],
        "test/oci:1.0"
    );
    assert_eq!(
        json(&std::fs::read(set.path().join("oci-layout")).unwrap())["imageLayoutVersion"],
        "1.0.0"
    );
}

#[test]
fn docker_image_uses_docker_media_types() {
    let set = ImageSet::temp().unwrap();
    let img = set
        .image(
            "test/docker:1.0",
            &spec(Media::Docker, Platform::linux_amd64(), &[3]),
        )
        .unwrap();
    let m = json(&img.manifest_bytes);
    assert_eq!(img.manifest.media_type, mt::DOCKER_MANIFEST);
    assert_eq!(m["mediaType"], mt::DOCKER_MANIFEST);
    assert_eq!(m["config"]["mediaType"], mt::DOCKER_CONFIG);
    assert_eq!(m["layers"][0]["mediaType"], mt::DOCKER_LAYER_GZIP);
}

#[test]
fn deterministic_and_shared_layers_stored_once() {
    let a = ImageSet::temp().unwrap();
    let b = ImageSet::temp().unwrap();
    let s = spec(Media::Oci, Platform::linux_amd64(), &[7, 8]);
    let ia = a.image("x/y:1", &s).unwrap();
    let ib = b.image("x/y:1", &s).unwrap();
    assert_eq!(ia, ib, "same spec, same digests");

    // Same layer bytes whatever the media type: the blob is shared.
    let docker = a
        .image(
            "x/d:1",
            &spec(Media::Docker, Platform::linux_amd64(), &[7, 9]),
        )
        .unwrap();
    assert_eq!(docker.layers[0].blob.digest, ia.layers[0].blob.digest);
    assert_ne!(docker.layers[1].blob.digest, ia.layers[1].blob.digest);
    // Blobs: layers 7, 8, 9; two configs; two manifests.
    let blobs = a.blob_digests().unwrap();
    let mut expected: Vec<String> = ia
        .blob_digests()
        .into_iter()
        .chain(docker.blob_digests())
        .chain([ia.digest(), docker.digest()])
        .map(str::to_string)
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(blobs, expected);
    assert_eq!(blobs.len(), 3 + 2 + 2);

    // Re-tagging a name replaces its entry.
    let other = a
        .image("x/y:1", &spec(Media::Oci, Platform::linux_amd64(), &[10]))
        .unwrap();
    let refs = a.refs().unwrap();
    assert_eq!(refs.len(), 2);
    assert!(
        refs.iter()
            .any(|(n, d)| n == "x/y:1" && *d == other.manifest)
    );
}

#[test]
fn index_and_manifest_list() {
    let set = ImageSet::temp().unwrap();
    let plats = [
        spec(Media::Oci, Platform::linux_amd64(), &[20, 21]),
        spec(Media::Oci, Platform::linux_arm64(), &[22, 21]),
    ];
    let oci = set.index("multi/oci:1.0", &plats, Media::Oci).unwrap();
    let docker = set
        .index("multi/docker:1.0", &plats, Media::Docker)
        .unwrap();

    for (built, index_type, manifest_type) in [
        (&oci, mt::OCI_INDEX, mt::OCI_MANIFEST),
        (&docker, mt::DOCKER_MANIFEST_LIST, mt::DOCKER_MANIFEST),
    ] {
        assert_eq!(built.index.media_type, index_type);
        assert_eq!(sha256_digest(&built.index_bytes), built.index.digest);
        let idx = json(&set.read_blob(built.digest()).unwrap());
        assert_eq!(idx["mediaType"], index_type);
        let entries = idx["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        for (e, img) in entries.iter().zip(&built.images) {
            assert_eq!(e["mediaType"], manifest_type);
            assert_eq!(e["digest"], img.digest());
            assert_eq!(e["size"], img.manifest.size);
            assert_eq!(img.manifest.media_type, manifest_type);
        }
        assert_eq!(entries[0]["platform"]["architecture"], "amd64");
        assert_eq!(entries[1]["platform"]["architecture"], "arm64");
        assert_eq!(entries[1]["platform"]["variant"], "v8");
        assert!(entries[0]["platform"].get("variant").is_none());
        // The shared layer (seed 21) is the same blob in both platforms.
        assert_eq!(
            built.images[0].layers[1].blob.digest,
            built.images[1].layers[1].blob.digest
        );
    }
    // Both indexes use the same layer blobs; only the two are named in index.json.
    assert_eq!(oci.images[0].layers, {
        let mut l = docker.images[0].layers.clone();
        for x in &mut l {
            x.blob.media_type = mt::OCI_LAYER_GZIP.to_string();
        }
        l
    });
    let names: Vec<String> = set.refs().unwrap().into_iter().map(|r| r.0).collect();
    assert_eq!(names, ["multi/oci:1.0", "multi/docker:1.0"]);
}

#[test]
fn platform_parse_and_display() {
    let p = Platform::parse("linux/arm64/v8").unwrap();
    assert_eq!(p, Platform::linux_arm64());
    assert_eq!(p.to_string(), "linux/arm64/v8");
    assert_eq!(
        Platform::parse("linux/amd64").unwrap(),
        Platform::linux_amd64()
    );
    assert!(Platform::parse("linux").is_err());
    assert!(Platform::parse("linux//").is_err());
}
