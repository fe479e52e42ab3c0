//! Deterministic, real container images written into an OCI image layout directory.
//!
//! Layout: `oci-layout`, `index.json` (one entry per name, annotated with
//! `org.opencontainers.image.ref.name` = the full `repo:tag`), `blobs/sha256/<hex>`. Blobs are
//! content addressed, so a layer built twice (same [`LayerSpec`]) is stored once.
//!
//! skopeo 1.9's `oci:` transport only resolves OCI-typed entries of `index.json`; for Docker-typed
//! images [`ImageSet::skopeo_source`] writes a skopeo `dir:` copy (blobs hard-linked).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

/// Media type strings.
pub mod media_types {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}
use media_types as mt;

/// The annotation naming an entry of `index.json`; its value is the full `repo:tag`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Fixed timestamps keep every blob a pure function of its spec.
const CREATED: &str = "2023-11-14T22:13:20Z";
const MTIME: u64 = 1_700_000_000;

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Which family of media types an image uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Media {
    /// `application/vnd.oci.image.*`
    Oci,
    /// Docker schema 2 (`application/vnd.docker.*`)
    Docker,
}

impl Media {
    pub fn manifest_type(self) -> &'static str {
        match self {
            Media::Oci => mt::OCI_MANIFEST,
            Media::Docker => mt::DOCKER_MANIFEST,
        }
    }
    pub fn index_type(self) -> &'static str {
        match self {
            Media::Oci => mt::OCI_INDEX,
            Media::Docker => mt::DOCKER_MANIFEST_LIST,
        }
    }
    pub fn config_type(self) -> &'static str {
        match self {
            Media::Oci => mt::OCI_CONFIG,
            Media::Docker => mt::DOCKER_CONFIG,
        }
    }
    pub fn layer_type(self) -> &'static str {
        match self {
            Media::Oci => mt::OCI_LAYER_GZIP,
            Media::Docker => mt::DOCKER_LAYER_GZIP,
        }
    }
}

/// An image platform, serialized as in an index entry (`architecture`, `os`, `variant`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            variant: variant.map(str::to_string),
        }
    }
    pub fn linux_amd64() -> Self {
        Self::new("linux", "amd64", None)
    }
    /// `linux/arm64/v8`
    pub fn linux_arm64() -> Self {
        Self::new("linux", "arm64", Some("v8"))
    }
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Self::new(os, arch, None)),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                Ok(Self::new(os, arch, Some(v)))
            }
            _ => bail!("bad platform {s:?}: want os/arch[/variant]"),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// One layer: a tar of one to three files holding `size_bytes` of random bytes drawn from
/// `seed`, gzip-compressed. The same spec always gives the same blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LayerSpec {
    /// Bytes of file content in the tar (the gzip blob is slightly larger: random data does not
    /// compress).
    pub size_bytes: usize,
    pub seed: u64,
}

impl LayerSpec {
    pub fn new(size_bytes: usize, seed: u64) -> Self {
        LayerSpec { size_bytes, seed }
    }
}

/// What [`build_image`] builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    pub layers: Vec<LayerSpec>,
    pub media: Media,
    pub platform: Platform,
}

impl ImageSpec {
    pub fn new(media: Media, platform: Platform, layers: Vec<LayerSpec>) -> Self {
        ImageSpec {
            layers,
            media,
            platform,
        }
    }
}

/// A content descriptor (`mediaType`, `digest`, `size`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// A layer as built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltLayer {
    pub spec: LayerSpec,
    /// The gzip blob.
    pub blob: Descriptor,
    /// sha256 of the uncompressed tar (as in the config's `rootfs.diff_ids`).
    pub diff_id: String,
}

/// An image as built: every digest and size a test may assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltImage {
    /// The `repo:tag` in `index.json`; empty for a platform image inside an index.
    pub name_tag: String,
    pub media: Media,
    pub platform: Platform,
    pub manifest: Descriptor,
    /// The manifest exactly as stored (its sha256 is `manifest.digest`).
    pub manifest_bytes: Vec<u8>,
    pub config: Descriptor,
    pub layers: Vec<BuiltLayer>,
}

impl BuiltImage {
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }
    /// Config and layer digests (the blobs the manifest references), config first.
    pub fn blob_digests(&self) -> Vec<&str> {
        std::iter::once(self.config.digest.as_str())
            .chain(self.layers.iter().map(|l| l.blob.digest.as_str()))
            .collect()
    }
    /// Sum of config and layer sizes.
    pub fn blob_bytes(&self) -> u64 {
        self.config.size + self.layers.iter().map(|l| l.blob.size).sum::<u64>()
    }
}

/// An OCI index or Docker manifest list as built, with its per-platform images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltIndex {
    pub name_tag: String,
    pub media: Media,
    pub index: Descriptor,
    /// The index exactly as stored.
    pub index_bytes: Vec<u8>,
    /// In the index's order.
    pub images: Vec<BuiltImage>,
}

impl BuiltIndex {
    pub fn digest(&self) -> &str {
        &self.index.digest
    }
}

// ---------------------------------------------------------------------------------------------
// Serialized forms (structs, so field order never depends on serde_json features).

#[derive(Serialize)]
struct ImageConfig<'a> {
    created: &'static str,
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    config: RunConfig,
    rootfs: RootFs,
    history: Vec<History>,
}

#[derive(Serialize)]
struct RunConfig {
    #[serde(rename = "Env")]
    env: Vec<String>,
    #[serde(rename = "Cmd")]
    cmd: Vec<String>,
    #[serde(rename = "WorkingDir")]
    working_dir: String,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct History {
    created: &'static str,
    created_by: String,
}

#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: &'a Descriptor,
    layers: Vec<&'a Descriptor>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct IndexEntry {
    #[serde(flatten)]
    desc: Descriptor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Serialize)]
struct Index<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    manifests: Vec<IndexEntry>,
}

// ---------------------------------------------------------------------------------------------
// Layout primitives.

/// Creates `oci-layout`, `blobs/sha256/` and an empty `index.json` where missing.
pub fn init_layout(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir.join("blobs").join("sha256"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let marker = dir.join("oci-layout");
    if !marker.exists() {
        write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    }
    let index = dir.join("index.json");
    if !index.exists() {
        write_index_json(dir, &[])?;
    }
    Ok(())
}

/// `LAYOUT/blobs/sha256/<hex>` for a `sha256:<hex>` digest.
pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    layout.join("blobs").join(alg).join(hex)
}

/// Stores bytes as a blob (once), returning its digest and size.
pub fn write_blob(layout: &Path, bytes: &[u8]) -> Result<(String, u64)> {
    let digest = sha256_digest(bytes);
    let path = blob_path(layout, &digest);
    if !path.exists() {
        write_atomic(&path, bytes)?;
    }
    Ok((digest, bytes.len() as u64))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("path without parent")?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("temp file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn read_index_json(layout: &Path) -> Result<Vec<IndexEntry>> {
    let path = layout.join("index.json");
    let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    #[derive(Deserialize)]
    struct Top {
        #[serde(default)]
        manifests: Vec<IndexEntry>,
    }
    let top: Top =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    Ok(top.manifests)
}

fn write_index_json(layout: &Path, entries: &[IndexEntry]) -> Result<()> {
    let index = Index {
        schema_version: 2,
        media_type: mt::OCI_INDEX,
        manifests: entries.to_vec(),
    };
    let bytes = serde_json::to_vec_pretty(&index)?;
    write_atomic(&layout.join("index.json"), &bytes)
}

/// Points `name_tag` at `desc` in `index.json`, replacing an older entry of that name.
fn tag(layout: &Path, name_tag: &str, desc: &Descriptor) -> Result<()> {
    let mut entries = read_index_json(layout)?;
    entries.retain(|e| {
        e.annotations
            .as_ref()
            .and_then(|a| a.get(REF_NAME_ANNOTATION))
            .is_none_or(|n| n != name_tag)
    });
    entries.push(IndexEntry {
        desc: desc.clone(),
        platform: None,
        annotations: Some(BTreeMap::from([(
            REF_NAME_ANNOTATION.to_string(),
            name_tag.to_string(),
        )])),
    });
    write_index_json(layout, &entries)
}

/// The `repo:tag` → descriptor entries of `index.json`, in file order.
pub fn refs(layout: &Path) -> Result<Vec<(String, Descriptor)>> {
    Ok(read_index_json(layout)?
        .into_iter()
        .filter_map(|e| {
            let name = e.annotations.as_ref()?.get(REF_NAME_ANNOTATION)?.clone();
            Some((name, e.desc))
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Builders.

/// The uncompressed tar of a layer: a directory `layer-<seed>/` with one to three files of
/// ChaCha8 bytes (`size_bytes` in all), fixed mtime/owner/mode.
fn layer_tar(spec: LayerSpec) -> Result<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let n = spec.size_bytes;
    let sizes: Vec<usize> = if n < 4096 {
        vec![n]
    } else {
        vec![n / 2, n / 3, n - n / 2 - n / 3]
    };
    let dir = format!("layer-{:016x}", spec.seed);
    let mut b = tar::Builder::new(Vec::with_capacity(n + 8192));
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(0);
    b.append_data(&mut h, format!("{dir}/"), std::io::empty())?;
    for (i, size) in sizes.into_iter().enumerate() {
        let mut data = vec![0u8; size];
        rng.fill_bytes(&mut data);
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(size as u64);
        b.append_data(&mut h, format!("{dir}/file{i}.bin"), data.as_slice())?;
    }
    Ok(b.into_inner()?)
}

/// Builds (or finds) a layer blob.
fn build_layer(layout: &Path, spec: LayerSpec, media: Media) -> Result<BuiltLayer> {
    let tar = layer_tar(spec)?;
    let diff_id = sha256_digest(&tar);
    let mut gz = GzEncoder::new(Vec::with_capacity(tar.len() + 1024), Compression::fast());
    gz.write_all(&tar)?;
    let blob = gz.finish()?;
    let (digest, size) = write_blob(layout, &blob)?;
    Ok(BuiltLayer {
        spec,
        blob: Descriptor {
            media_type: media.layer_type().to_string(),
            digest,
            size,
        },
        diff_id,
    })
}

/// Writes the blobs and manifest of one image without naming it in `index.json`.
fn build_untagged(layout: &Path, spec: &ImageSpec) -> Result<BuiltImage> {
    init_layout(layout)?;
    let media = spec.media;
    let layers = spec
        .layers
        .iter()
        .map(|l| build_layer(layout, *l, media))
        .collect::<Result<Vec<_>>>()?;
    let config = ImageConfig {
        created: CREATED,
        architecture: &spec.platform.architecture,
        os: &spec.platform.os,
        variant: spec.platform.variant.as_deref(),
        config: RunConfig {
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cmd: vec!["/bin/sh".into()],
            working_dir: "/".into(),
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
        history: layers
            .iter()
            .map(|l| History {
                created: CREATED,
                created_by: format!(
                    "testimages layer seed={} size={}",
                    l.spec.seed, l.spec.size_bytes
                ),
            })
            .collect(),
    };
    let (cdigest, csize) = write_blob(layout, &serde_json::to_vec(&config)?)?;
    let config = Descriptor {
        media_type: media.config_type().to_string(),
        digest: cdigest,
        size: csize,
    };
    let manifest_bytes = serde_json::to_vec(&Manifest {
        schema_version: 2,
        media_type: media.manifest_type(),
        config: &config,
        layers: layers.iter().map(|l| &l.blob).collect(),
    })?;
    let (mdigest, msize) = write_blob(layout, &manifest_bytes)?;
    Ok(BuiltImage {
        name_tag: String::new(),
        media,
        platform: spec.platform.clone(),
        manifest: Descriptor {
            media_type: media.manifest_type().to_string(),
            digest: mdigest,
            size: msize,
        },
        manifest_bytes,
        config,
        layers,
    })
}

/// Builds one single-platform image into the layout at `layout_dir` (created if needed) and
/// names it `name_tag` (`repo:tag`) in `index.json`.
pub fn build_image(layout_dir: &Path, name_tag: &str, spec: &ImageSpec) -> Result<BuiltImage> {
    let mut img = build_untagged(layout_dir, spec)?;
    tag(layout_dir, name_tag, &img.manifest)?;
    img.name_tag = name_tag.to_string();
    Ok(img)
}

/// Builds one image per spec and an index over them — an OCI image index for [`Media::Oci`], a
/// Docker manifest list for [`Media::Docker`] — named `name_tag` in `index.json`. Every platform
/// image uses `media` (the specs' own `media` is ignored); the platform images are not named.
pub fn build_index(
    layout_dir: &Path,
    name_tag: &str,
    platforms: &[ImageSpec],
    media: Media,
) -> Result<BuiltIndex> {
    if platforms.is_empty() {
        bail!("an index needs at least one platform");
    }
    let mut images = Vec::with_capacity(platforms.len());
    let mut entries = Vec::with_capacity(platforms.len());
    for spec in platforms {
        let spec = ImageSpec {
            media,
            ..spec.clone()
        };
        let img = build_untagged(layout_dir, &spec)?;
        entries.push(IndexEntry {
            desc: img.manifest.clone(),
            platform: Some(img.platform.clone()),
            annotations: None,
        });
        images.push(img);
    }
    let index_bytes = serde_json::to_vec(&Index {
        schema_version: 2,
        media_type: media.index_type(),
        manifests: entries,
    })?;
    let (digest, size) = write_blob(layout_dir, &index_bytes)?;
    let index = Descriptor {
        media_type: media.index_type().to_string(),
        digest,
        size,
    };
    tag(layout_dir, name_tag, &index)?;
    Ok(BuiltIndex {
        name_tag: name_tag.to_string(),
        media,
        index,
        index_bytes,
        images,
    })
}

/// Writes a skopeo `dir:` transport copy of `name_tag` into `dest` (created): `version`,
/// `manifest.json`, for an index each instance as `<hex>.manifest.json`, and every blob
/// hard-linked (copied if linking fails).
pub fn export_dir(layout: &Path, name_tag: &str, dest: &Path) -> Result<()> {
    let (_, desc) = refs(layout)?
        .into_iter()
        .find(|(n, _)| n == name_tag)
        .with_context(|| format!("{name_tag} not in {}", layout.display()))?;
    fs::create_dir_all(dest)?;
    fs::write(dest.join("version"), "Directory Transport Version: 1.1\n")?;
    let top = fs::read(blob_path(layout, &desc.digest))?;
    fs::write(dest.join("manifest.json"), &top)?;
    let link = |digest: &str| -> Result<()> {
        let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
        let to = dest.join(hex);
        if !to.exists() {
            let from = blob_path(layout, digest);
            if fs::hard_link(&from, &to).is_err() {
                fs::copy(&from, &to)
                    .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            }
        }
        Ok(())
    };
    let blobs_of = |manifest: &[u8]| -> Result<Vec<String>> {
        let v: serde_json::Value = serde_json::from_slice(manifest)?;
        let mut out = vec![
            v["config"]["digest"]
                .as_str()
                .context("no config")?
                .to_string(),
        ];
        for l in v["layers"].as_array().context("no layers")? {
            out.push(
                l["digest"]
                    .as_str()
                    .context("layer without digest")?
                    .to_string(),
            );
        }
        Ok(out)
    };
    let v: serde_json::Value = serde_json::from_slice(&top)?;
    if let Some(list) = v["manifests"].as_array() {
        for m in list {
            let d = m["digest"].as_str().context("index entry without digest")?;
            let sub = fs::read(blob_path(layout, d))?;
            let hex = d.split_once(':').map_or(d, |(_, h)| h);
            fs::write(dest.join(format!("{hex}.manifest.json")), &sub)?;
            for b in blobs_of(&sub)? {
                link(&b)?;
            }
        }
    } else {
        for b in blobs_of(&top)? {
            link(&b)?;
        }
    }
    Ok(())
}

/// The skopeo source reference for `name_tag`: `oci:LAYOUT:name_tag` for OCI-typed entries;
/// for Docker-typed ones (which skopeo 1.9's `oci:` transport cannot resolve) a `dir:` copy is
/// written under `LAYOUT/dirs/` and `dir:PATH` returned.
pub fn skopeo_source(layout: &Path, name_tag: &str) -> Result<String> {
    let (_, desc) = refs(layout)?
        .into_iter()
        .find(|(n, _)| n == name_tag)
        .with_context(|| format!("{name_tag} not in {}", layout.display()))?;
    let layout_s = layout.to_str().context("non-UTF-8 layout path")?;
    if layout_s.contains(':') {
        bail!("skopeo's oci: transport cannot take a path with ':' ({layout_s})");
    }
    if desc.media_type == mt::OCI_MANIFEST || desc.media_type == mt::OCI_INDEX {
        return Ok(format!("oci:{layout_s}:{name_tag}"));
    }
    let dest = layout
        .join("dirs")
        .join(name_tag.replace(['/', ':', '@'], "_"));
    export_dir(layout, name_tag, &dest)?;
    Ok(format!("dir:{}", dest.display()))
}

// ---------------------------------------------------------------------------------------------

/// An OCI layout directory to build images into, optionally owning a temporary directory.
#[derive(Debug)]
pub struct ImageSet {
    dir: PathBuf,
    _tmp: Option<TempDir>,
}

impl ImageSet {
    /// Uses (and initializes) the layout at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        init_layout(&dir)?;
        Ok(ImageSet { dir, _tmp: None })
    }

    /// A layout in a fresh temporary directory, removed on drop.
    pub fn temp() -> Result<Self> {
        let tmp = tempfile::Builder::new().prefix("testimages-").tempdir()?;
        let dir = tmp.path().join("layout");
        init_layout(&dir)?;
        Ok(ImageSet {
            dir,
            _tmp: Some(tmp),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// See [`build_image`].
    pub fn image(&self, name_tag: &str, spec: &ImageSpec) -> Result<BuiltImage> {
        build_image(&self.dir, name_tag, spec)
    }

    /// See [`build_index`].
    pub fn index(
        &self,
        name_tag: &str,
        platforms: &[ImageSpec],
        media: Media,
    ) -> Result<BuiltIndex> {
        build_index(&self.dir, name_tag, platforms, media)
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        blob_path(&self.dir, digest)
    }

    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        fs::read(&p).with_context(|| format!("reading {}", p.display()))
    }

    /// Digests of every blob in `blobs/sha256`, sorted.
    pub fn blob_digests(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.dir.join("blobs").join("sha256"))? {
            let name = e?.file_name();
            let name = name.to_string_lossy();
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                out.push(format!("sha256:{name}"));
            }
        }
        out.sort();
        Ok(out)
    }

    /// See [`refs`].
    pub fn refs(&self) -> Result<Vec<(String, Descriptor)>> {
        refs(&self.dir)
    }

    /// See [`skopeo_source`].
    pub fn skopeo_source(&self, name_tag: &str) -> Result<String> {
        skopeo_source(&self.dir, name_tag)
    }

    /// See [`export_dir`].
    pub fn export_dir(&self, name_tag: &str, dest: &Path) -> Result<()> {
        export_dir(&self.dir, name_tag, dest)
    }
}
