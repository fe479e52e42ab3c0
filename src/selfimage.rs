//! The OCI image of airlock itself, so the registry and the webhook cross the air gap with
//! everything else: one gzip layer holding only `/usr/local/bin/airlock` (mode 0755, owned by
//! 65532), a config that runs it as 65532:65532, the platform read from the binary's ELF header.
//! Several binaries (one per architecture) make an index. Built the same way byte for byte on
//! every run (fixed mtimes, `SOURCE_DATE_EPOCH` when set), so the digest names the binary.
//! `airlock image` and `airlock pack --include-self` both use [`SelfImage`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use oci::Digest;
use oci::manifest::{Descriptor, OCI_INDEX, OCI_MANIFEST, Platform};
use serde_json::json;

/// The user and group the image runs as (distroless's `nonroot`).
pub const UID: u64 = 65532;
/// Where the binary sits in the image.
pub const BINARY: &str = "/usr/local/bin/airlock";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The name the image gets unless told otherwise. `.invalid` is reserved (RFC 2606): nobody
/// publishes there, so the name claims no registry; it is the placeholder `deploy/` uses.
pub fn default_name() -> String {
    format!("airlock.invalid/airlock:{}", env!("CARGO_PKG_VERSION"))
}

/// The running executable, the default binary.
pub fn current_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the running executable (pass --binary PATH)")
}

/// What an ELF header says about a binary that matters for an image of it.
#[derive(Debug, PartialEq, Eq)]
pub struct Elf {
    /// OCI architecture: `amd64` or `arm64`.
    pub arch: &'static str,
}

/// Reads the platform from an ELF64 little-endian executable, and refuses one that asks for a
/// program interpreter (`PT_INTERP`): it would need a dynamic loader and shared libraries the
/// image does not have.
pub fn inspect_elf(path: &Path, bytes: &[u8]) -> anyhow::Result<Elf> {
    let shown = path.display();
    ensure!(
        bytes.len() >= 64 && bytes[..4] == *b"\x7fELF",
        "{shown} is not an ELF executable"
    );
    ensure!(
        bytes[4] == 2 && bytes[5] == 1,
        "{shown} is not a 64-bit little-endian ELF executable (class {}, data {}); only \
         linux/amd64 and linux/arm64 images are built",
        bytes[4],
        bytes[5]
    );
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    let truncated = || anyhow::anyhow!("{shown}: truncated ELF header");
    let arch = match u16_at(18).ok_or_else(truncated)? {
        0x3e => "amd64",
        0xb7 => "arm64",
        other => bail!(
            "{shown} is an ELF executable for machine {other:#x}; only x86-64 (amd64) and \
             AArch64 (arm64) images are built"
        ),
    };
    let phoff = u64_at(32).ok_or_else(truncated)?;
    let phentsize = u16_at(54).ok_or_else(truncated)? as u64;
    let phnum = u16_at(56).ok_or_else(truncated)? as u64;
    let table_end = phnum
        .checked_mul(phentsize)
        .and_then(|n| n.checked_add(phoff))
        .ok_or_else(truncated)?;
    ensure!(
        phentsize >= 56 && table_end <= bytes.len() as u64,
        "{shown}: truncated ELF file (its program headers run past its end)"
    );
    for i in 0..phnum {
        let at = phoff
            .checked_add(i * phentsize)
            .and_then(|a| usize::try_from(a).ok())
            .ok_or_else(truncated)?;
        const PT_INTERP: u32 = 3;
        if u32_at(at).ok_or_else(truncated)? == PT_INTERP {
            let off = u64_at(at + 8).unwrap_or(0) as usize;
            let len = u64_at(at + 32).unwrap_or(0) as usize;
            let interp = bytes
                .get(off..off.saturating_add(len))
                .map(|b| {
                    String::from_utf8_lossy(b)
                        .trim_end_matches('\0')
                        .to_string()
                })
                .unwrap_or_default();
            bail!(
                "{shown} is dynamically linked (program interpreter {interp:?}): an image of it \
                 would not run without that loader and its shared libraries. Build the static \
                 one (scripts/build-static: target/x86_64-unknown-linux-gnu/release/airlock) and \
                 name it with --binary (airlock image) or --self-binary (airlock pack)"
            );
        }
    }
    Ok(Elf { arch })
}

/// Seconds since the epoch that every timestamp in the image uses: `SOURCE_DATE_EPOCH` (the
/// reproducible-builds convention) when set, else 0.
pub fn epoch() -> anyhow::Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => s
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={s:?} is not a number of seconds")),
        Err(_) => Ok(0),
    }
}

/// The layer: a tar holding the binary and nothing else, gzip-compressed. Returns
/// `(uncompressed tar, gzip)`.
fn layer(binary: &[u8], mtime: u64) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let mut header = tar::Header::new_ustar();
    header.set_path(BINARY.trim_start_matches('/'))?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(binary.len() as u64);
    header.set_mode(0o755);
    header.set_uid(UID);
    header.set_gid(UID);
    header.set_mtime(mtime);
    header.set_cksum();
    let mut tar = tar::Builder::new(Vec::with_capacity(binary.len() + 2048));
    tar.append(&header, binary)?;
    let tar = tar.into_inner()?;
    // GzBuilder writes mtime 0 and no file name into the gzip header: the same bytes each run.
    let mut gz = flate2::GzBuilder::new().write(
        Vec::with_capacity(binary.len() / 2),
        flate2::Compression::default(),
    );
    gz.write_all(&tar)?;
    Ok((tar, gz.finish()?))
}

fn annotations(created: &str) -> BTreeMap<String, String> {
    let mut a = BTreeMap::from([
        ("org.opencontainers.image.title", "airlock"),
        (
            "org.opencontainers.image.version",
            env!("CARGO_PKG_VERSION"),
        ),
        (
            "org.opencontainers.image.description",
            env!("CARGO_PKG_DESCRIPTION"),
        ),
        (
            "org.opencontainers.image.licenses",
            env!("CARGO_PKG_LICENSE"),
        ),
        ("org.opencontainers.image.created", created),
    ]);
    // Only a source the package itself declares: no address is made up.
    if let Some(repo) = option_env!("CARGO_PKG_REPOSITORY").filter(|r| !r.is_empty()) {
        a.insert("org.opencontainers.image.source", repo);
    }
    a.into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One platform's image, built in memory: nothing is written until [`SelfImage::add_to`].
struct PlatformImage {
    path: PathBuf,
    arch: &'static str,
    layer: Vec<u8>,
    config: Vec<u8>,
}

/// The image of one binary per architecture, checked and built, not yet stored.
pub struct SelfImage {
    name: String,
    mtime: u64,
    platforms: Vec<PlatformImage>,
}

impl SelfImage {
    /// Reads and checks every binary (ELF, static, one per architecture) and builds its layer
    /// and config; a bad binary or name fails here, before anything is written anywhere.
    pub fn build(name: &str, binaries: &[PathBuf]) -> anyhow::Result<SelfImage> {
        ensure!(!binaries.is_empty(), "no binary to build an image of");
        let reference = imgref::Reference::parse(name)
            .with_context(|| format!("--name {name:?} is not an image reference"))?;
        ensure!(
            reference.digest().is_none(),
            "--name {name}: an image built here gets its digest from its bytes; name it by tag"
        );
        let mtime = epoch()?;
        let created = oci::time::rfc3339_utc(mtime);
        let mut platforms: Vec<PlatformImage> = Vec::new();
        for path in binaries {
            let binary =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let arch = inspect_elf(path, &binary)?.arch;
            if let Some(twin) = platforms.iter().find(|p| p.arch == arch) {
                bail!(
                    "{} and {} are both linux/{arch} binaries: give one binary per architecture",
                    twin.path.display(),
                    path.display()
                );
            }
            let (tar, layer) = layer(&binary, mtime)
                .with_context(|| format!("cannot build the layer of {}", path.display()))?;
            let config = serde_json::to_vec(&json!({
                "created": created,
                "architecture": arch,
                "os": "linux",
                "config": {
                    "User": format!("{UID}:{UID}"),
                    "Entrypoint": [BINARY],
                    "Env": ["PATH=/usr/local/bin"],
                    "WorkingDir": "/",
                    "Labels": annotations(&created),
                },
                "rootfs": {"type": "layers", "diff_ids": [Digest::of(&tar).to_string()]},
                "history": [{"created": created, "created_by": "airlock image"}],
            }))?;
            platforms.push(PlatformImage {
                path: path.clone(),
                arch,
                layer,
                config,
            });
        }
        Ok(SelfImage {
            // Normalised, as `pack` names every image (`airlock:1` is docker.io/library/airlock:1).
            name: reference.normalized().to_string(),
            mtime,
            platforms,
        })
    }

    /// The name the image gets in a layout.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stores the image in `layout` under its name (one binary: a manifest; several: an index
    /// of them). Returns the descriptor now named.
    pub async fn add_to(&self, layout: &oci_store::Layout) -> anyhow::Result<Descriptor> {
        let annotations = annotations(&oci::time::rfc3339_utc(self.mtime));
        let mut manifests = Vec::new();
        for p in &self.platforms {
            let layer = store(layout, &p.layer).await?;
            let config = store(layout, &p.config).await?;
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config, "size": p.config.len()},
                "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer, "size": p.layer.len()}],
                "annotations": annotations,
            }))?;
            manifests.push(Descriptor {
                media_type: OCI_MANIFEST.to_string(),
                digest: store(layout, &manifest).await?,
                size: manifest.len() as u64,
                platform: Some(Platform {
                    architecture: p.arch.to_string(),
                    os: "linux".to_string(),
                    variant: None,
                    os_version: None,
                }),
                annotations: None,
                artifact_type: None,
            });
        }
        let desc = if let [one] = &manifests[..] {
            // A platform is for an index's entries; index.json names the image itself.
            Descriptor {
                platform: None,
                ..one.clone()
            }
        } else {
            let index = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": manifests,
                "annotations": annotations,
            }))?;
            Descriptor {
                media_type: OCI_INDEX.to_string(),
                digest: store(layout, &index).await?,
                size: index.len() as u64,
                platform: None,
                annotations: None,
                artifact_type: None,
            }
        };
        layout
            .add_to_index(Some(&self.name), desc.clone())
            .await
            .with_context(|| format!("cannot name the image {} in the layout", self.name))?;
        Ok(desc)
    }
}

async fn store(layout: &oci_store::Layout, bytes: &[u8]) -> anyhow::Result<Digest> {
    layout
        .put_blob_bytes(bytes)
        .await
        .with_context(|| format!("cannot store the image in {}", layout.root().display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use testimages::elf::{EM_AARCH64, EM_X86_64, executable};

    #[test]
    fn elf_header_gives_the_platform_and_an_interpreter_is_refused() {
        let p = Path::new("bin");
        assert_eq!(
            inspect_elf(p, &executable(EM_X86_64, None)).unwrap().arch,
            "amd64"
        );
        assert_eq!(
            inspect_elf(p, &executable(EM_AARCH64, None)).unwrap().arch,
            "arm64"
        );
        let err = inspect_elf(
            p,
            &executable(EM_X86_64, Some("/lib64/ld-linux-x86-64.so.2")),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("dynamically linked"), "{err}");
        assert!(err.contains("/lib64/ld-linux-x86-64.so.2"), "{err}");
        let err = inspect_elf(p, b"#!/bin/sh\necho not an elf\n#############################################################")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an ELF executable"), "{err}");
        let err = inspect_elf(p, &executable(0x28, None))
            .unwrap_err()
            .to_string();
        assert!(err.contains("machine 0x28"), "{err}");
        // Program headers past the end of the file: an error, not a panic.
        let mut cut = executable(EM_X86_64, None);
        cut.truncate(70);
        assert!(
            inspect_elf(p, &cut)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
    }

    #[test]
    fn the_layer_holds_only_the_binary_owned_by_65532_and_is_the_same_each_time() {
        let bin = executable(EM_X86_64, None);
        let (tar, gz) = layer(&bin, 0).unwrap();
        assert_eq!(layer(&bin, 0).unwrap(), (tar.clone(), gz));
        let mut archive = tar::Archive::new(&tar[..]);
        let entries: Vec<_> = archive.entries().unwrap().map(Result::unwrap).collect();
        assert_eq!(entries.len(), 1);
        let h = entries[0].header();
        assert_eq!(
            &*entries[0].path().unwrap(),
            Path::new("usr/local/bin/airlock")
        );
        assert_eq!(
            (h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
            (0o755, UID, UID)
        );
        assert_ne!(layer(&bin, 1).unwrap().0, tar, "the mtime is in the layer");
    }
}
