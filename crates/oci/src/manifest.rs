//! Media types, descriptors and just enough manifest/index parsing to walk an image graph.
//!
//! Manifests are always kept as the raw bytes the registry sent (a manifest's digest is over its
//! exact bytes); the types here are a read-only view used to find children (config, layers,
//! platform manifests) and to filter platforms. Unknown fields are ignored, so Docker and OCI
//! documents and future extensions all parse.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::Error;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Every manifest media type airlock accepts, for the `Accept` header.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// Largest manifest, index or layout `index.json` airlock reads (the distribution registry's own
/// manifest limit is 4 MiB). Anything read whole from a registry, a layout or an archive is held
/// to it, so a hostile document costs at most this much memory.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Deepest nesting of indexes airlock follows below an image's top-level index. An index of
/// indexes is legitimate two or three levels down; thousands of levels (a few MB of JSON) are
/// an attack on the stack and, with repeated children, on the request count.
pub const MAX_INDEX_DEPTH: usize = 8;

/// Refuses a document whose declared or actual length exceeds [`MAX_MANIFEST_BYTES`], before
/// reading it. `what` names it in the error.
pub fn check_manifest_size(what: &str, len: u64) -> Result<(), Error> {
    if len > MAX_MANIFEST_BYTES as u64 {
        return Err(Error::InvalidManifest {
            image: what.to_string(),
            reason: format!("{len} bytes, larger than the {MAX_MANIFEST_BYTES}-byte limit"),
        });
    }
    Ok(())
}

/// Refuses a descriptor nested below `depth` indexes when that is more than
/// [`MAX_INDEX_DEPTH`].
pub fn check_index_depth(image: &str, digest: &Digest, depth: usize) -> Result<(), Error> {
    if depth > MAX_INDEX_DEPTH {
        return Err(Error::IndexTooDeep {
            image: image.to_string(),
            digest: digest.clone(),
            max: MAX_INDEX_DEPTH,
        });
    }
    Ok(())
}

/// The annotation skopeo, containerd and others use to name an image in a layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Whether a media type is an index / manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether a media type is a single-image manifest.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Platform, on index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Artifact type (referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// The `org.opencontainers.image.ref.name` annotation.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations
            .as_ref()?
            .get(REF_NAME_ANNOTATION)
            .map(String::as_str)
    }
}

/// An OS/architecture pair, as in an index entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Windows builds.
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`, e.g. `linux/arm64/v8`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?.to_string();
        let architecture = parts.next().filter(|p| !p.is_empty())?.to_string();
        let variant = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return None;
        }
        Some(Platform {
            architecture,
            os,
            variant,
            os_version: None,
        })
    }

    /// Whether `self` (a filter) selects `other` (an index entry): os and architecture equal, and
    /// the variant equal when the filter names one.
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// A parsed view of a manifest or index.
#[allow(clippy::large_enum_variant)] // short-lived, one per manifest being walked
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A single image: its config and layers.
    Image {
        /// Config blob.
        config: Descriptor,
        /// Layer blobs, in order.
        layers: Vec<Descriptor>,
        /// Referrers' subject, if this is an artifact pointing at another manifest.
        subject: Option<Descriptor>,
    },
    /// An index / manifest list: its entries.
    Index {
        /// Child manifests.
        manifests: Vec<Descriptor>,
    },
}

impl Parsed {
    /// Parses `bytes`, using `media_type` (from `Content-Type` or a descriptor) and falling back
    /// to the document's own `mediaType` or shape. `image` names the document in errors.
    pub fn parse(image: &str, media_type: &str, bytes: &[u8]) -> Result<(String, Parsed), Error> {
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| Error::InvalidManifest {
            image: image.to_string(),
            reason: e.to_string(),
        })?;
        let declared = raw.media_type.clone().unwrap_or_default();
        let mt = [media_type, declared.as_str()]
            .into_iter()
            .find(|m| is_index(m) || is_manifest(m))
            .map(str::to_string)
            .or_else(|| {
                if raw.manifests.is_some() {
                    Some(OCI_INDEX.to_string())
                } else if raw.config.is_some() {
                    Some(OCI_MANIFEST.to_string())
                } else {
                    None
                }
            })
            .ok_or_else(|| Error::UnsupportedMediaType {
                image: image.to_string(),
                media_type: if media_type.is_empty() {
                    declared.clone()
                } else {
                    media_type.to_string()
                },
            })?;
        let missing = |what: &str| Error::InvalidManifest {
            image: image.to_string(),
            reason: format!("{mt} without {what}"),
        };
        let parsed = if is_index(&mt) {
            Parsed::Index {
                manifests: raw.manifests.ok_or_else(|| missing("manifests"))?,
            }
        } else {
            Parsed::Image {
                config: raw.config.ok_or_else(|| missing("config"))?,
                layers: raw.layers.unwrap_or_default(),
                subject: raw.subject,
            }
        };
        Ok((mt, parsed))
    }
}

/// An OCI image index document, as written to a layout's `index.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexDocument {
    /// Always 2.
    pub schema_version: u32,
    /// `application/vnd.oci.image.index.v1+json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Entries.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl IndexDocument {
    /// An empty OCI index.
    pub fn empty() -> IndexDocument {
        IndexDocument {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: Vec::new(),
            annotations: None,
        }
    }

    /// Parses a layout's `index.json` (size-checked: see [`MAX_MANIFEST_BYTES`]); `what` names
    /// the file in errors.
    pub fn parse(what: &str, bytes: &[u8]) -> Result<IndexDocument, Error> {
        check_manifest_size(what, bytes.len() as u64)?;
        serde_json::from_slice(bytes).map_err(|e| Error::InvalidManifest {
            image: what.to_string(),
            reason: e.to_string(),
        })
    }
}

/// What [`walk`] reached from one top-level descriptor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Walked {
    /// Every manifest and index, each once, in the order they were read.
    pub manifests: Vec<Digest>,
    /// Every config and layer blob, each once.
    pub blobs: Vec<Digest>,
}

/// Walks the manifests under `root` without I/O, with the rules the copy engine applies to
/// what it reads: each manifest held to [`MAX_MANIFEST_BYTES`] (declared size first), indexes
/// at most [`MAX_INDEX_DEPTH`] deep, each digest read once however often it is listed. The walk
/// keeps its own stack, so no input can exhaust the thread's. `fetch` returns a manifest's bytes
/// for its descriptor — verified, as `Layout::read_blob` returns them. For checking a layout's
/// or archive's contents before use, and for fuzzing.
pub fn walk(
    image: &str,
    root: &Descriptor,
    fetch: &mut dyn FnMut(&Descriptor) -> Result<Vec<u8>, Error>,
) -> Result<Walked, Error> {
    let mut out = Walked::default();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![(root.clone(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        check_index_depth(image, &d.digest, depth)?;
        if !seen.insert(d.digest.clone()) {
            continue;
        }
        check_manifest_size(d.digest.as_str(), d.size)?;
        let bytes = fetch(&d)?;
        check_manifest_size(d.digest.as_str(), bytes.len() as u64)?;
        out.manifests.push(d.digest.clone());
        match Parsed::parse(d.digest.as_str(), &d.media_type, &bytes)?.1 {
            Parsed::Index { manifests } => {
                // Reversed so that the stack pops them in index order.
                stack.extend(manifests.into_iter().rev().map(|c| (c, depth + 1)));
            }
            Parsed::Image { config, layers, .. } => {
                for b in std::iter::once(config).chain(layers) {
                    if seen.insert(b.digest.clone()) {
                        out.blobs.push(b.digest);
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parse_and_match() {
        let f = Platform::parse("linux/arm64").unwrap();
        let e = Platform::parse("linux/arm64/v8").unwrap();
        assert!(f.matches(&e));
        assert!(!e.matches(&Platform::parse("linux/arm64/v7").unwrap()));
        assert_eq!(e.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_none());
    }

    fn desc(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            platform: None,
            annotations: None,
            artifact_type: None,
        }
    }

    fn index_of(children: &[Descriptor]) -> Vec<u8> {
        serde_json::to_vec(&IndexDocument {
            manifests: children.to_vec(),
            ..IndexDocument::empty()
        })
        .unwrap()
    }

    /// A tower of `levels` indexes over one image, each listing the level below twice.
    fn tower(levels: usize) -> (Descriptor, std::collections::HashMap<Digest, Vec<u8>>) {
        let config = desc("application/vnd.oci.image.config.v1+json", b"{}");
        let leaf = format!(
            r#"{{"schemaVersion":2,"config":{}}}"#,
            serde_json::to_string(&config).unwrap()
        )
        .into_bytes();
        let mut top = desc(OCI_MANIFEST, &leaf);
        let mut blobs = std::collections::HashMap::from([(top.digest.clone(), leaf)]);
        for _ in 0..levels {
            let idx = index_of(&[top.clone(), top.clone()]);
            top = desc(OCI_INDEX, &idx);
            blobs.insert(top.digest.clone(), idx);
        }
        (top, blobs)
    }

    #[test]
    fn walk_reads_each_repeated_child_once() {
        let (top, blobs) = tower(MAX_INDEX_DEPTH);
        let mut reads = 0;
        let w = walk("t", &top, &mut |d| {
            reads += 1;
            Ok(blobs[&d.digest].clone())
        })
        .unwrap();
        assert_eq!(reads, MAX_INDEX_DEPTH + 1);
        assert_eq!(w.manifests.len(), MAX_INDEX_DEPTH + 1);
        assert_eq!(w.blobs.len(), 1);
    }

    #[test]
    fn walk_refuses_a_tower_deeper_than_the_limit_and_huge_declared_sizes() {
        let (top, blobs) = tower(2000);
        let e = walk("t", &top, &mut |d| Ok(blobs[&d.digest].clone())).unwrap_err();
        assert!(
            matches!(
                e,
                Error::IndexTooDeep {
                    max: MAX_INDEX_DEPTH,
                    ..
                }
            ),
            "{e}"
        );
        let mut huge = top.clone();
        huge.size = 1 << 40;
        let e = walk("t", &huge, &mut |_| unreachable!("not read")).unwrap_err();
        assert!(e.to_string().contains("limit"), "{e}");
    }

    #[test]
    fn parses_docker_list_without_declared_type() {
        let d = format!("sha256:{}", "a".repeat(64));
        let doc = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"{d}","size":3,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        let (mt, p) = Parsed::parse("x", DOCKER_MANIFEST_LIST, doc.as_bytes()).unwrap();
        assert_eq!(mt, DOCKER_MANIFEST_LIST);
        let Parsed::Index { manifests } = p else {
            panic!()
        };
        assert_eq!(
            manifests[0].platform.as_ref().unwrap().architecture,
            "amd64"
        );
    }
}
