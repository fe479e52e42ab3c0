//! What a registry needs from where images rest, as the [`Store`] trait: blob stat and ranged
//! reads, verified puts, and the repository + tag view of the layout's full names.
//!
//! An OCI layout names images by full reference in `org.opencontainers.image.ref.name`
//! (`registry.example/team/app:1.0`, as `pack` writes them); a registry client asks for
//! `/v2/team/app/manifests/1.0`. [`split_ref_name`] is the one mapping between the two: the
//! repository is the name's path without its registry host, the tag what follows the last `:`.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use oci::manifest::IndexDocument;
use oci::{BlobStream, Descriptor, Digest, Error};

use crate::layout::{BlobWriter, Layout, named, positional_stream};
use crate::upload::Upload;

/// A byte range of a stored blob, streamed.
pub struct BlobRange {
    /// The whole blob's size (for `Content-Range`).
    pub blob_size: u64,
    /// First byte of the range.
    pub start: u64,
    /// Bytes in the range.
    pub len: u64,
    /// The bytes, in chunks of at most 256 KiB.
    pub stream: BlobStream,
}

/// A store of blobs and named images that a registry server can serve. Blobs enter only
/// through [`put_blob`](Store::put_blob), which verifies size and digest before a blob gets
/// its name, so reads trust a blob stored under its digest and never re-hash it.
pub trait Store: Send + Sync {
    /// The size of a stored blob, `None` when absent.
    fn stat_blob(&self, digest: &Digest)
    -> impl Future<Output = Result<Option<u64>, Error>> + Send;

    /// Bytes `start..end` of a blob (`end` `None`: to its end). Not re-verified: see the trait.
    fn read_blob_range(
        &self,
        digest: &Digest,
        start: u64,
        end: Option<u64>,
    ) -> impl Future<Output = Result<BlobRange, Error>> + Send;

    /// A writer that stores a blob under `digest` only once its size (when given) and digest
    /// are verified; dropped uncommitted, it leaves nothing.
    fn put_blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
    ) -> impl Future<Output = Result<BlobWriter, Error>> + Send;

    /// The image `repository:tag` names.
    fn resolve_tag(
        &self,
        repository: &str,
        tag: &str,
    ) -> impl Future<Output = Result<Descriptor, Error>> + Send;

    /// Points `repository:tag` at `desc` (its manifest must be stored), replacing every entry
    /// that maps to that repository and tag.
    fn set_tag(
        &self,
        repository: &str,
        tag: &str,
        desc: Descriptor,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The tags of a repository, sorted; empty when the repository is unknown.
    fn tags(&self, repository: &str) -> impl Future<Output = Result<Vec<String>, Error>> + Send;

    /// Every repository with at least one tag or manifest, sorted.
    fn repositories(&self) -> impl Future<Output = Result<Vec<String>, Error>> + Send;

    /// Starts an upload whose digest is known only at its end (see [`Upload`]).
    fn begin_upload(&self) -> impl Future<Output = Result<Upload, Error>> + Send;

    /// Stores `upload` as blob `digest` once its bytes hash to it; on a mismatch nothing is
    /// stored. Returns the blob's size.
    fn commit_upload(
        &self,
        upload: Upload,
        digest: &Digest,
    ) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Removes a blob; `false` when it was absent.
    fn delete_blob(&self, digest: &Digest) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Records the stored manifest `desc` as part of `repository` without a tag (a push by
    /// digest), so that it is listed by [`manifests`](Store::manifests).
    fn add_manifest(
        &self,
        repository: &str,
        desc: Descriptor,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The manifests recorded in `repository` (tagged or pushed by digest), one per digest.
    fn manifests(
        &self,
        repository: &str,
    ) -> impl Future<Output = Result<Vec<Descriptor>, Error>> + Send;

    /// Removes manifest `digest` from `repository` with every tag pointing at it, and its blob
    /// when no other repository records it. `false` when there was nothing to remove.
    fn delete_manifest(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Removes the tag `repository:tag` (the manifest stays); `false` when it was absent.
    fn delete_tag(
        &self,
        repository: &str,
        tag: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

/// How a `index.json` entry names a repository's manifest: `repository:tag` or
/// `repository@digest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryRef<'a> {
    /// `repository:tag`.
    Tag(&'a str),
    /// `repository@digest` (a manifest pushed by digest).
    Digest(&'a str),
}

/// `(repository, reference)` of an index entry's full name: [`split_ref_name`] for tags, and
/// the same host rule for `repository@digest` names.
pub fn split_entry_name(name: &str) -> Option<(&str, EntryRef<'_>)> {
    if let Some((path, digest)) = name.split_once('@') {
        let repository = strip_host(path);
        return (!repository.is_empty() && !digest.is_empty())
            .then_some((repository, EntryRef::Digest(digest)));
    }
    split_ref_name(name).map(|(r, t)| (r, EntryRef::Tag(t)))
}

fn strip_host(path: &str) -> &str {
    match path.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest,
        _ => path,
    }
}

/// The entry name for `repository` + `sep` + `reference`: a repository whose first component
/// reads as a registry host (`team.io/app`) gets a `localhost/` prefix, so the name maps back to
/// the same repository.
fn entry_name(repository: &str, sep: char, reference: &str) -> String {
    if strip_host(repository) == repository {
        format!("{repository}{sep}{reference}")
    } else {
        format!("localhost/{repository}{sep}{reference}")
    }
}

/// `(repository, tag)` of a full name: `registry.example:5000/team/app:1.0` →
/// `("team/app", "1.0")`. The first path component is a registry host when it contains `.` or
/// `:` or is `localhost` (the reference grammar's rule). Digest-pinned names and names without a
/// repository (skopeo's `oci:DIR:latest` stores only `latest`) map to nothing.
pub fn split_ref_name(name: &str) -> Option<(&str, &str)> {
    if name.contains('@') {
        return None;
    }
    let slash = name.rfind('/');
    let colon = name.rfind(':').filter(|&c| slash.is_none_or(|s| c > s))?;
    let (path, tag) = (&name[..colon], &name[colon + 1..]);
    let repository = strip_host(path);
    (!repository.is_empty() && !tag.is_empty()).then_some((repository, tag))
}

impl Store for Layout {
    async fn stat_blob(&self, digest: &Digest) -> Result<Option<u64>, Error> {
        let path = self.blob_path(digest);
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    async fn read_blob_range(
        &self,
        digest: &Digest,
        start: u64,
        end: Option<u64>,
    ) -> Result<BlobRange, Error> {
        let path = self.blob_path(digest);
        let file = tokio::fs::File::open(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::BlobNotFound {
                    repository: self.root().display().to_string(),
                    digest: digest.clone(),
                }
            } else {
                Error::io(&path, e)
            }
        })?;
        let size = file
            .metadata()
            .await
            .map_err(|e| Error::io(&path, e))?
            .len();
        let end = range_end(digest, start, end, size)?;
        let file = Arc::new(file.into_std().await);
        Ok(BlobRange {
            blob_size: size,
            start,
            len: end - start,
            stream: positional_stream(file, path, start, end - start),
        })
    }

    async fn put_blob(&self, digest: &Digest, size: Option<u64>) -> Result<BlobWriter, Error> {
        self.blob_writer(digest, size).await
    }

    async fn resolve_tag(&self, repository: &str, tag: &str) -> Result<Descriptor, Error> {
        resolve_in_index(&self.index().await?, self.root(), repository, tag)
    }

    async fn set_tag(&self, repository: &str, tag: &str, desc: Descriptor) -> Result<(), Error> {
        let name = entry_name(repository, ':', tag);
        if split_ref_name(&name) != Some((repository, tag)) {
            return Err(Error::InvalidManifest {
                image: name,
                reason: "repository or tag not addressable in a layout name".into(),
            });
        }
        self.edit_index(|index| {
            index
                .manifests
                .retain(|d| d.ref_name().and_then(split_ref_name) != Some((repository, tag)));
            index.manifests.push(named(desc, &name));
            true
        })
        .await
    }

    async fn tags(&self, repository: &str) -> Result<Vec<String>, Error> {
        Ok(tags_in_index(&self.index().await?, repository))
    }

    async fn repositories(&self) -> Result<Vec<String>, Error> {
        Ok(repositories_in_index(&self.index().await?))
    }

    async fn begin_upload(&self) -> Result<Upload, Error> {
        // Beside the blobs, so the commit is a rename on one file system; named `.*.partial`,
        // so a restart's clean-up removes what a crash left.
        Upload::create(&self.root().join("blobs/sha256")).await
    }

    async fn commit_upload(&self, upload: Upload, digest: &Digest) -> Result<u64, Error> {
        upload.commit_to(digest, &self.blob_path(digest)).await
    }

    async fn delete_blob(&self, digest: &Digest) -> Result<bool, Error> {
        let path = self.blob_path(digest);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    async fn add_manifest(&self, repository: &str, desc: Descriptor) -> Result<(), Error> {
        let name = entry_name(repository, '@', desc.digest.as_str());
        self.edit_index(|index| {
            if index.manifests.iter().any(|d| d.ref_name() == Some(&name)) {
                return false;
            }
            index.manifests.push(named(desc, &name));
            true
        })
        .await
    }

    async fn manifests(&self, repository: &str) -> Result<Vec<Descriptor>, Error> {
        Ok(manifests_in_index(self.index().await?, repository))
    }

    async fn delete_manifest(&self, repository: &str, digest: &Digest) -> Result<bool, Error> {
        let mut removed = false;
        let mut elsewhere = false;
        self.edit_index(|index| {
            let before = index.manifests.len();
            index.manifests.retain(|d| {
                d.digest != *digest
                    || d.ref_name()
                        .and_then(split_entry_name)
                        .is_none_or(|(r, _)| r != repository)
            });
            removed = index.manifests.len() != before;
            elsewhere = index.manifests.iter().any(|d| d.digest == *digest);
            removed
        })
        .await?;
        if elsewhere {
            return Ok(removed);
        }
        // Unrecorded manifests (an index's children in a packed layout) are deleted too.
        Ok(self.delete_blob(digest).await? || removed)
    }

    async fn delete_tag(&self, repository: &str, tag: &str) -> Result<bool, Error> {
        let mut removed = false;
        self.edit_index(|index| {
            let before = index.manifests.len();
            index
                .manifests
                .retain(|d| d.ref_name().and_then(split_ref_name) != Some((repository, tag)));
            removed = index.manifests.len() != before;
            removed
        })
        .await?;
        Ok(removed)
    }
}

/// The end of the range `start..end` (`end` `None`: to the end) of a blob of `size` bytes, or
/// `RangeNotSatisfiable` when the range does not lie within it. Every store checks ranges here.
pub(crate) fn range_end(
    digest: &Digest,
    start: u64,
    end: Option<u64>,
    size: u64,
) -> Result<u64, Error> {
    let end = end.unwrap_or(size);
    if start > end || end > size {
        return Err(Error::RangeNotSatisfiable {
            digest: digest.clone(),
            start,
            end,
            size,
        });
    }
    Ok(end)
}

// The repository + tag view of an `index.json`, shared by every store that has one (a layout
// directory, a tar archive read in place), so they can never disagree about a name.

/// The descriptor `repository:tag` names in `index` (by [`split_ref_name`] of each full name);
/// several names with different digests are ambiguous. `path` names the store in errors.
pub(crate) fn resolve_in_index(
    index: &IndexDocument,
    path: &Path,
    repository: &str,
    tag: &str,
) -> Result<Descriptor, Error> {
    let found: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.ref_name().and_then(split_ref_name) == Some((repository, tag)))
        .collect();
    match found.as_slice() {
        [] => Err(Error::NotInLayout {
            path: path.to_path_buf(),
            name: format!("{repository}:{tag}"),
        }),
        [first, rest @ ..] if rest.iter().all(|d| d.digest == first.digest) => Ok((*first).clone()),
        many => Err(Error::AmbiguousTag {
            path: path.to_path_buf(),
            repository: repository.to_string(),
            tag: tag.to_string(),
            names: many
                .iter()
                .filter_map(|d| d.ref_name().map(str::to_string))
                .collect(),
        }),
    }
}

/// The sorted tags of `repository` in `index`.
pub(crate) fn tags_in_index(index: &IndexDocument, repository: &str) -> Vec<String> {
    let tags: BTreeSet<&str> = index
        .manifests
        .iter()
        .filter_map(|d| d.ref_name().and_then(split_ref_name))
        .filter(|(r, _)| *r == repository)
        .map(|(_, t)| t)
        .collect();
    tags.into_iter().map(str::to_string).collect()
}

/// The sorted repositories with at least one tag or manifest in `index`.
pub(crate) fn repositories_in_index(index: &IndexDocument) -> Vec<String> {
    let repos: BTreeSet<&str> = index
        .manifests
        .iter()
        .filter_map(|d| d.ref_name().and_then(split_entry_name))
        .map(|(r, _)| r)
        .collect();
    repos.into_iter().map(str::to_string).collect()
}

/// The manifests `index` records in `repository` (tagged or by digest), one per digest.
pub(crate) fn manifests_in_index(index: IndexDocument, repository: &str) -> Vec<Descriptor> {
    let mut seen = BTreeSet::new();
    index
        .manifests
        .into_iter()
        .filter(|d| {
            d.ref_name()
                .and_then(split_entry_name)
                .is_some_and(|(r, _)| r == repository)
        })
        .filter(|d| seen.insert(d.digest.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{EntryRef, entry_name, split_entry_name, split_ref_name};

    #[test]
    fn entry_names_round_trip_host_like_repositories() {
        for repo in ["app", "team/app", "team.io/app", "localhost/app", "a:b/c"] {
            let t = entry_name(repo, ':', "v1");
            assert_eq!(
                split_entry_name(&t),
                Some((repo, EntryRef::Tag("v1"))),
                "{t}"
            );
            let d = entry_name(repo, '@', "sha256:ab");
            assert_eq!(
                split_entry_name(&d),
                Some((repo, EntryRef::Digest("sha256:ab"))),
                "{d}"
            );
        }
    }

    #[test]
    fn full_names_map_to_repository_and_tag() {
        let cases = [
            (
                "127.0.0.1:15500/bench/img01:1.0",
                Some(("bench/img01", "1.0")),
            ),
            (
                "docker.io/library/nginx:1.27",
                Some(("library/nginx", "1.27")),
            ),
            ("localhost/app:v1", Some(("app", "v1"))),
            ("team/app:v1", Some(("team/app", "v1"))),
            ("app:v1", Some(("app", "v1"))),
            ("registry.example:5000/app", None),
            ("latest", None),
            ("registry.example/app@sha256:abc", None),
            ("registry.example/app:", None),
        ];
        for (name, want) in cases {
            assert_eq!(split_ref_name(name), want, "{name}");
        }
    }
}
