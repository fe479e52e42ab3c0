//! `airlock.lock`: every image reference resolved to the digest of its manifest or index, with
//! the per-platform manifests under it. Written sorted and by hand (not by a serialiser) so that
//! a change to one image is a change of a few lines in review; read with serde-saphyr.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The file looked for in the working directory by `rewrite --pin` and `pack`.
pub const DEFAULT_LOCK: &str = "airlock.lock";
const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    pub version: u32,
    /// `images:` with nothing under it reads as null in YAML; a lock file with no images (or an
    /// older airlock's rendering of one) is still a valid lock file.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub images: Vec<Locked>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// One reference and what it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Locked {
    /// The normalised reference as found (`docker.io/library/nginx:1.27`).
    pub image: String,
    /// Digest of the manifest or index the reference pointed at.
    pub digest: String,
    pub media_type: String,
    /// For an index: each platform's manifest digest.
    #[serde(default)]
    pub platforms: Vec<LockedPlatform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPlatform {
    pub platform: String,
    pub digest: String,
}

impl Lockfile {
    pub fn read(path: &Path, limit: crate::fsutil::ByteSize) -> anyhow::Result<Lockfile> {
        let text = crate::fsutil::read_text_limited(path, limit)?;
        let lock: Lockfile = serde_saphyr::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        anyhow::ensure!(
            lock.version == VERSION,
            "{}: lock file version {} is not {VERSION}",
            path.display(),
            lock.version
        );
        Ok(lock)
    }

    /// Digest by normalised reference, for pinning.
    pub fn digests(&self) -> BTreeMap<String, String> {
        self.images
            .iter()
            .map(|i| (i.image.clone(), i.digest.clone()))
            .collect()
    }

    /// Add or replace entries, keeping the list sorted by image.
    pub fn merge(&mut self, entries: impl IntoIterator<Item = Locked>) {
        let mut by_image: BTreeMap<String, Locked> = self
            .images
            .drain(..)
            .map(|i| (i.image.clone(), i))
            .collect();
        for e in entries {
            by_image.insert(e.image.clone(), e);
        }
        self.images = by_image.into_values().collect();
    }

    pub fn render(&self) -> String {
        let mut out = String::from(
            "# airlock.lock: every image reference and the digest it resolved to, written by `airlock lock`.\n\
             # Review changes like code; regenerate rather than edit.\n",
        );
        out.push_str(&format!("version: {VERSION}\n"));
        // An empty block would be null; say "no images" in YAML's flow syntax instead.
        out.push_str(if self.images.is_empty() {
            "images: []\n"
        } else {
            "images:\n"
        });
        for i in &self.images {
            out.push_str(&format!(
                "  - image: {}\n    digest: {}\n    mediaType: {}\n",
                i.image, i.digest, i.media_type
            ));
            if !i.platforms.is_empty() {
                out.push_str("    platforms:\n");
                for p in &i.platforms {
                    out.push_str(&format!(
                        "      - platform: {}\n        digest: {}\n",
                        p.platform, p.digest
                    ));
                }
            }
        }
        out
    }

    /// Write atomically: a temporary file beside the target, renamed over it.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        crate::fsutil::write_atomic(path, self.render().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_reads_back_and_is_sorted() {
        let mut lock = Lockfile {
            version: VERSION,
            images: vec![],
        };
        let entry = |image: &str| Locked {
            image: image.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            platforms: vec![LockedPlatform {
                platform: "linux/arm64/v8".into(),
                digest: format!("sha256:{}", "b".repeat(64)),
            }],
        };
        lock.merge([entry("quay.io/b/c:1"), entry("docker.io/library/nginx:1")]);
        let text = lock.render();
        let back: Lockfile = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.images[0].image, "docker.io/library/nginx:1");
    }

    #[test]
    fn empty_lock_renders_a_list_and_null_images_read_as_empty() {
        let empty = Lockfile {
            version: VERSION,
            images: vec![],
        };
        let text = empty.render();
        assert!(text.contains("\nimages: []\n"), "{text}");
        assert_eq!(serde_saphyr::from_str::<Lockfile>(&text).unwrap(), empty);
        // What airlock wrote before: a bare `images:` key.
        let old: Lockfile = serde_saphyr::from_str("version: 1\nimages:\n").unwrap();
        assert_eq!(old, empty);
        let old: Lockfile = serde_saphyr::from_str("version: 1\nimages: ~\n").unwrap();
        assert_eq!(old, empty);
    }
}
