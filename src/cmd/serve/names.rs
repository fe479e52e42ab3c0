//! `airlock serve --registry HOST[:PORT][/PREFIX]`: a store served under the names the shared
//! [`Mapping`] gives its images — the names `rewrite` wrote into the configuration.
//!
//! `pack` records each image under its public name (`docker.io/library/nginx:1.27`); a client
//! of the private registry asks for the mapped one (`/v2/mirror/library/nginx/manifests/1.27`
//! for `--registry host:5000/mirror`). [`Mapped`] is that view over any [`Store`], nothing
//! copied or rewritten: entries whose name has a registry host (other than `localhost`) are
//! public names and are served only under their mapped repository and tag; entries without a
//! host are what clients pushed into this server and are served as they are. A push to a mapped
//! name is stored under that name and wins over the archive's entry, also after a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::RwLock;

use oci::manifest::IndexDocument;
use oci::{Descriptor, Digest, Error};
use oci_store::{BlobRange, BlobWriter, EntryRef, Store, Upload, split_entry_name};
use rewrite::Mapping;

/// `store` served under mapped names; see the module documentation.
pub struct Mapped<S> {
    inner: S,
    view: RwLock<View>,
}

#[derive(Default)]
struct View {
    /// Served repository → tag → the archive entry it names.
    tags: BTreeMap<String, BTreeMap<String, Alias>>,
    /// Served repository → archive entries pinned by digest only (`name@digest`).
    digests: BTreeMap<String, Vec<Alias>>,
    /// Repositories of the store that hold only public names: not served under their own name.
    hidden: BTreeSet<String>,
}

#[derive(Clone)]
struct Alias {
    desc: Descriptor,
    /// Where the entry sits in the store (its name's repository without the host).
    inner_repository: String,
    inner_tag: Option<String>,
}

/// One image of the store and the name it is served under, for the startup summary.
pub struct Served {
    pub public: String,
    pub served: String,
}

impl<S: Store> Mapped<S> {
    /// The view of `inner`, whose `index.json` is `index`, under `mapping`. Two public names
    /// that map to one private name are an error naming both (as in `rewrite`).
    pub fn new(
        inner: S,
        index: &IndexDocument,
        mapping: &Mapping,
    ) -> anyhow::Result<(Mapped<S>, Vec<Served>)> {
        let mut public = Vec::new();
        let mut pushed_repos = BTreeSet::new();
        let mut pushed_tags = BTreeSet::new();
        for desc in &index.manifests {
            let Some(name) = desc.ref_name() else {
                continue;
            };
            let Some((repository, reference)) = split_entry_name(name) else {
                continue;
            };
            match imgref::Reference::parse(name) {
                Ok(r) if r.domain().is_some_and(|h| h != "localhost") => {
                    public.push((r, desc, repository.to_string(), reference));
                }
                _ => {
                    pushed_repos.insert(repository.to_string());
                    if let EntryRef::Tag(t) = reference {
                        pushed_tags.insert((repository.to_string(), t.to_string()));
                    }
                }
            }
        }
        mapping.map_all(public.iter().map(|(r, ..)| r))?;
        let mut view = View::default();
        let mut served = Vec::new();
        let mut public_repos = BTreeSet::new();
        for (r, desc, inner_repository, reference) in public {
            let target = mapping.map(&r)?;
            let repository = target.path().to_string();
            public_repos.insert(inner_repository.clone());
            let alias = |inner_tag: Option<&str>| Alias {
                desc: desc.clone(),
                inner_repository: inner_repository.clone(),
                inner_tag: inner_tag.map(str::to_string),
            };
            match (target.tag(), reference) {
                (Some(tag), EntryRef::Tag(inner_tag)) => {
                    if pushed_tags.contains(&(repository.clone(), tag.to_string())) {
                        continue;
                    }
                    view.tags
                        .entry(repository.clone())
                        .or_default()
                        .insert(tag.to_string(), alias(Some(inner_tag)));
                }
                _ => view
                    .digests
                    .entry(repository.clone())
                    .or_default()
                    .push(alias(None)),
            }
            served.push(Served {
                public: r.to_string(),
                served: match target.tag() {
                    Some(tag) => format!("{repository}:{tag}"),
                    None => format!("{repository}@{}", target.pull_address()),
                },
            });
        }
        view.hidden = public_repos
            .into_iter()
            .filter(|r| {
                !pushed_repos.contains(r)
                    && !view.tags.contains_key(r)
                    && !view.digests.contains_key(r)
            })
            .collect();
        let view = RwLock::new(view);
        Ok((Mapped { inner, view }, served))
    }

    fn view(&self) -> std::sync::RwLockReadGuard<'_, View> {
        // A panic while holding the lock leaves consistent maps: every edit is a single insert
        // or remove.
        self.view.read().unwrap_or_else(|e| e.into_inner())
    }

    fn view_mut(&self) -> std::sync::RwLockWriteGuard<'_, View> {
        self.view.write().unwrap_or_else(|e| e.into_inner())
    }

    fn hidden(&self, repository: &str) -> bool {
        self.view().hidden.contains(repository)
    }

    /// After a write under `repository`'s own name the store holds it: serve it.
    fn reveal(&self, repository: &str) {
        self.view_mut().hidden.remove(repository);
    }
}

impl<S: Store> Store for Mapped<S> {
    async fn stat_blob(&self, digest: &Digest) -> Result<Option<u64>, Error> {
        self.inner.stat_blob(digest).await
    }

    async fn read_blob_range(
        &self,
        digest: &Digest,
        start: u64,
        end: Option<u64>,
    ) -> Result<BlobRange, Error> {
        self.inner.read_blob_range(digest, start, end).await
    }

    async fn put_blob(&self, digest: &Digest, size: Option<u64>) -> Result<BlobWriter, Error> {
        self.inner.put_blob(digest, size).await
    }

    async fn resolve_tag(&self, repository: &str, tag: &str) -> Result<Descriptor, Error> {
        let found = {
            let view = self.view();
            if let Some(a) = view.tags.get(repository).and_then(|t| t.get(tag)) {
                return Ok(a.desc.clone());
            }
            !view.hidden.contains(repository)
        };
        if found {
            return self.inner.resolve_tag(repository, tag).await;
        }
        Err(Error::NotInLayout {
            path: PathBuf::from("(served names)"),
            name: format!("{repository}:{tag}"),
        })
    }

    async fn set_tag(&self, repository: &str, tag: &str, desc: Descriptor) -> Result<(), Error> {
        self.inner.set_tag(repository, tag, desc).await?;
        // The push is in the store under this name now; it wins over the archive's entry.
        let mut view = self.view_mut();
        if let Some(tags) = view.tags.get_mut(repository) {
            tags.remove(tag);
        }
        view.hidden.remove(repository);
        Ok(())
    }

    async fn tags(&self, repository: &str) -> Result<Vec<String>, Error> {
        let (mut tags, hidden): (BTreeSet<String>, bool) = {
            let view = self.view();
            let tags = view
                .tags
                .get(repository)
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default();
            (tags, view.hidden.contains(repository))
        };
        if !hidden {
            tags.extend(self.inner.tags(repository).await?);
        }
        Ok(tags.into_iter().collect())
    }

    async fn repositories(&self) -> Result<Vec<String>, Error> {
        let inner = self.inner.repositories().await?;
        let view = self.view();
        let mut repos: BTreeSet<String> = inner
            .into_iter()
            .filter(|r| !view.hidden.contains(r))
            .collect();
        repos.extend(
            view.tags
                .iter()
                .filter(|(_, t)| !t.is_empty())
                .map(|(r, _)| r.clone()),
        );
        repos.extend(
            view.digests
                .iter()
                .filter(|(_, d)| !d.is_empty())
                .map(|(r, _)| r.clone()),
        );
        Ok(repos.into_iter().collect())
    }

    async fn begin_upload(&self) -> Result<Upload, Error> {
        self.inner.begin_upload().await
    }

    async fn commit_upload(&self, upload: Upload, digest: &Digest) -> Result<u64, Error> {
        self.inner.commit_upload(upload, digest).await
    }

    async fn delete_blob(&self, digest: &Digest) -> Result<bool, Error> {
        self.inner.delete_blob(digest).await
    }

    async fn add_manifest(&self, repository: &str, desc: Descriptor) -> Result<(), Error> {
        self.inner.add_manifest(repository, desc).await?;
        self.reveal(repository);
        Ok(())
    }

    async fn manifests(&self, repository: &str) -> Result<Vec<Descriptor>, Error> {
        let (mut out, hidden): (Vec<Descriptor>, bool) = {
            let view = self.view();
            let tagged = view
                .tags
                .get(repository)
                .into_iter()
                .flat_map(|t| t.values());
            let pinned = view.digests.get(repository).into_iter().flatten();
            (
                tagged.chain(pinned).map(|a| a.desc.clone()).collect(),
                view.hidden.contains(repository),
            )
        };
        if !hidden {
            out.extend(self.inner.manifests(repository).await?);
        }
        let mut seen = BTreeSet::new();
        out.retain(|d| seen.insert(d.digest.clone()));
        Ok(out)
    }

    async fn delete_manifest(&self, repository: &str, digest: &Digest) -> Result<bool, Error> {
        // The archive entries served here under this digest go from the store too, so the
        // delete holds after a restart.
        let removed: Vec<Alias> = {
            let mut view = self.view_mut();
            let mut removed = Vec::new();
            if let Some(tags) = view.tags.get_mut(repository) {
                tags.retain(|_, a| {
                    let hit = a.desc.digest == *digest;
                    if hit {
                        removed.push(a.clone());
                    }
                    !hit
                });
            }
            if let Some(pinned) = view.digests.get_mut(repository) {
                pinned.retain(|a| {
                    let hit = a.desc.digest == *digest;
                    if hit {
                        removed.push(a.clone());
                    }
                    !hit
                });
            }
            removed
        };
        let mut any = !removed.is_empty();
        let inner_repos: BTreeSet<&str> = removed
            .iter()
            .map(|a| a.inner_repository.as_str())
            .collect();
        for r in inner_repos {
            any |= self.inner.delete_manifest(r, digest).await?;
        }
        if !self.hidden(repository) {
            any |= self.inner.delete_manifest(repository, digest).await?;
        }
        Ok(any)
    }

    async fn delete_tag(&self, repository: &str, tag: &str) -> Result<bool, Error> {
        let alias = self
            .view_mut()
            .tags
            .get_mut(repository)
            .and_then(|t| t.remove(tag));
        let mut any = false;
        if let Some(Alias {
            inner_repository,
            inner_tag: Some(inner_tag),
            ..
        }) = alias
        {
            any = true;
            self.inner.delete_tag(&inner_repository, &inner_tag).await?;
        }
        if !self.hidden(repository) {
            any |= self.inner.delete_tag(repository, tag).await?;
        }
        Ok(any)
    }
}
