//! The transfer engine: copies images (a manifest, or an index with every platform, recursively)
//! from any [`ImageSource`] to any [`ImageDestination`] — a registry, a [`Layout`] (and through
//! it an archive). Depends on the client and the store, never on discovery, rewriting or
//! policy; a registry server must not need it (it links the HTTP client).
//!
//! Guarantees: a blob the target already has is never sent again (HEAD / file check first, so a
//! rerun after an interruption resumes where it stopped); same-registry copies try a
//! cross-repository mount first; every byte is verified against its digest; blobs move with
//! bounded concurrency; an index keeps its digest whenever all its platforms are copied, and a
//! platform filter never fabricates a new index (see [`CopiedImage::index_preserved`]); one
//! failing image does not stop the others ([`Transfer::copy_many`]).
//!
//! Hostile sources: indexes are followed at most
//! [`MAX_INDEX_DEPTH`](oci::manifest::MAX_INDEX_DEPTH) levels down (so the recursion, and the
//! stack, stay bounded), and each manifest of an image is read and written once however many
//! times its parents list it.

pub mod endpoint;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use futures_util::future::{BoxFuture, FutureExt, try_join_all};
use oci::digest::Digest;
use oci::error::Error;
use oci::manifest::{Descriptor, Parsed, Platform, check_index_depth, is_index};
use oci_client::{Client, Repo};
use oci_store::Layout;
use tokio::sync::{Mutex, Semaphore};

pub use endpoint::{
    BlobOutcome, BlobPut, ImageDestination, ImageSource, LayoutEndpoint, ManifestBytes,
    RegistryEndpoint,
};

/// One side of a copy, source or destination: any [`ImageSource`] + [`ImageDestination`].
/// Cheap to clone.
#[derive(Clone)]
pub struct Endpoint(Arc<dyn Side>);

/// Both roles at once, so one [`Endpoint`] serves either.
trait Side: ImageSource + ImageDestination {}
impl<T: ImageSource + ImageDestination> Side for T {}

impl Endpoint {
    /// Any side that can be read and written.
    pub fn new(side: impl ImageSource + ImageDestination + 'static) -> Endpoint {
        Endpoint(Arc::new(side))
    }

    /// A repository on a registry: as a source, `reference` is a tag or digest to read; as a
    /// target it is the tag to write (`None`: push by digest only).
    pub fn registry(client: &Client, repo: Repo, reference: Option<&str>) -> Endpoint {
        Endpoint::new(RegistryEndpoint {
            client: client.clone(),
            repo,
            reference: reference.map(str::to_string),
        })
    }

    /// An OCI layout; `name` is the `org.opencontainers.image.ref.name` (`None` as a target:
    /// store without naming).
    pub fn layout(layout: &Layout, name: Option<&str>) -> Endpoint {
        Endpoint::new(LayoutEndpoint {
            layout: layout.clone(),
            name: name.map(str::to_string),
        })
    }

    /// This side as a source.
    pub fn source(&self) -> &dyn ImageSource {
        &*self.0
    }

    /// This side as a destination.
    pub fn destination(&self) -> &dyn ImageDestination {
        &*self.0
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

/// How a [`Transfer`] behaves.
#[derive(Clone, Debug)]
pub struct TransferOptions {
    /// Platforms to copy from an index; empty copies all (and preserves the index digest).
    pub platforms: Vec<Platform>,
    /// Blobs moved at once, across all images.
    pub concurrency: usize,
    /// Images worked on at once by [`Transfer::copy_many`].
    pub image_concurrency: usize,
    /// Copy OCI referrers (signatures, SBOMs) of copied manifests when the source lists them.
    pub referrers: bool,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            platforms: Vec::new(),
            concurrency: 8,
            image_concurrency: 4,
            referrers: true,
        }
    }
}

/// Live counters; read them with [`Transfer::stats`] (e.g. from a progress display).
#[derive(Debug, Default)]
struct Counters {
    blobs_sent: AtomicU64,
    blobs_skipped: AtomicU64,
    blobs_mounted: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_skipped: AtomicU64,
    bytes_moved: Arc<AtomicU64>,
    bytes_known: AtomicU64,
    manifests_sent: AtomicU64,
    manifests_skipped: AtomicU64,
    images_ok: AtomicU64,
    images_failed: AtomicU64,
}

/// A snapshot of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Blobs transferred.
    pub blobs_sent: u64,
    /// Blobs the target already had.
    pub blobs_skipped: u64,
    /// Blobs linked by cross-repository mount.
    pub blobs_mounted: u64,
    /// Bytes of blobs transferred.
    pub bytes_sent: u64,
    /// Bytes of blobs skipped or mounted.
    pub bytes_skipped: u64,
    /// Bytes moved so far, counted as they stream (in-progress blobs included; a retried blob
    /// counts again). For progress displays and rates; `bytes_sent` is the settled total.
    pub bytes_moved: u64,
    /// Bytes of all blobs in the manifests read so far (a blob shared by two images counts
    /// twice): the work known to lie ahead, for an estimate of the time left.
    pub bytes_known: u64,
    /// Manifests and indexes written.
    pub manifests_sent: u64,
    /// Manifests the target already had.
    pub manifests_skipped: u64,
    /// Images copied.
    pub images_ok: u64,
    /// Images that failed.
    pub images_failed: u64,
}

/// What one copied image came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopiedImage {
    /// Digest of the source's top-level manifest or index.
    pub source_digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// What the target name (tag / ref.name) now points to; `None` when a platform filter
    /// selected several manifests of an index (they are stored by digest only, see `manifests`).
    pub target_digest: Option<Digest>,
    /// False when a platform filter dropped entries of an index: the target then holds the
    /// selected manifests, not the index, and the image's digest differs from the source's.
    pub index_preserved: bool,
    /// The single-image manifests copied, with their platform when known.
    pub manifests: Vec<(Option<Platform>, Digest)>,
}

/// The outcome for one image of [`Transfer::copy_many`].
#[derive(Debug)]
pub struct ImageResult {
    /// Source, as displayed.
    pub source: String,
    /// Target, as displayed.
    pub target: String,
    /// The copy, or why it failed.
    pub outcome: Result<CopiedImage, Error>,
}

/// (target endpoint key, blob digest): one lock each, so a shared blob is sent once.
type BlobKey = (String, Digest);

/// The manifests of one image copied or being copied, by digest, and those whose referrers
/// are still to be listed. An index may list a child many times at every level (14 levels of
/// two identical entries: 32,000 reads of 15 manifests); each is read and written once, and a
/// second parent waits for the first copy. Waiting is safe because children are named by the
/// digest of their parent's bytes, so they cannot form a cycle; referrers can (a registry may
/// list the image as its own referrer), which is why they are queued, never awaited inside a
/// copy.
struct Visited {
    copied: std::sync::Mutex<HashMap<Digest, Arc<tokio::sync::OnceCell<()>>>>,
    /// Manifests whose referrers are to be copied, with the depth those referrers sit at.
    referrers_of: std::sync::Mutex<Vec<(Digest, usize)>>,
}

impl Visited {
    /// The visits of one image, whose top-level manifest is `root`.
    fn new(root: &Digest) -> Visited {
        let done = tokio::sync::OnceCell::new_with(Some(()));
        Visited {
            copied: std::sync::Mutex::new(HashMap::from([(root.clone(), Arc::new(done))])),
            referrers_of: std::sync::Mutex::default(),
        }
    }

    fn cell(&self, digest: &Digest) -> Arc<tokio::sync::OnceCell<()>> {
        let mut m = self.copied.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(digest.clone()).or_default().clone()
    }

    fn queue_referrers(&self, subject: &Digest, depth: usize) {
        let mut q = self.referrers_of.lock().unwrap_or_else(|p| p.into_inner());
        q.push((subject.clone(), depth));
    }

    fn next_subject(&self) -> Option<(Digest, usize)> {
        let mut q = self.referrers_of.lock().unwrap_or_else(|p| p.into_inner());
        q.pop()
    }
}

/// The engine; share one per run so concurrency limits and counters are global.
#[derive(Clone)]
pub struct Transfer {
    opts: TransferOptions,
    counters: Arc<Counters>,
    blobs: Arc<Semaphore>,
    in_flight: Arc<Mutex<HashMap<BlobKey, Arc<Mutex<()>>>>>,
    /// A repository of each target registry known to hold a blob, to mount it from.
    placed: Arc<Mutex<HashMap<BlobKey, Repo>>>,
    /// Tags of the source repositories, for signatures stored under digest tags.
    tags: Arc<Mutex<HashMap<Repo, Arc<HashSet<String>>>>>,
}

impl Transfer {
    /// A new engine.
    pub fn new(opts: TransferOptions) -> Transfer {
        Transfer {
            blobs: Arc::new(Semaphore::new(opts.concurrency.max(1))),
            opts,
            counters: Arc::default(),
            in_flight: Arc::default(),
            placed: Arc::default(),
            tags: Arc::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            blobs_sent: g(&c.blobs_sent),
            blobs_skipped: g(&c.blobs_skipped),
            blobs_mounted: g(&c.blobs_mounted),
            bytes_sent: g(&c.bytes_sent),
            bytes_skipped: g(&c.bytes_skipped),
            bytes_moved: g(&c.bytes_moved),
            bytes_known: g(&c.bytes_known),
            manifests_sent: g(&c.manifests_sent),
            manifests_skipped: g(&c.manifests_skipped),
            images_ok: g(&c.images_ok),
            images_failed: g(&c.images_failed),
        }
    }

    /// Copies many images, `image_concurrency` at a time; each gets its own result. Results come
    /// back in the order of `jobs`.
    pub async fn copy_many(&self, jobs: Vec<(Endpoint, Endpoint)>) -> Vec<ImageResult> {
        let n = self.opts.image_concurrency.max(1);
        let mut results: Vec<(usize, ImageResult)> =
            futures_util::stream::iter(jobs.into_iter().enumerate())
                .map(|(i, (src, dst))| async move {
                    let outcome = self.copy(&src, &dst).await;
                    (
                        i,
                        ImageResult {
                            source: src.to_string(),
                            target: dst.to_string(),
                            outcome,
                        },
                    )
                })
                .buffer_unordered(n)
                .collect()
                .await;
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    }

    /// Copies one image from `src` to `dst`.
    ///
    /// The whole copy, referrers and retries included, runs within the image budget of the
    /// registry client involved ([`Timeouts::image`](oci_client::Timeouts)): a registry that
    /// trickles bytes forever costs one budget, not the run.
    pub async fn copy(&self, src: &Endpoint, dst: &Endpoint) -> Result<CopiedImage, Error> {
        self.copy_image(src.source(), dst.destination()).await
    }

    /// [`copy`](Self::copy) for any source and destination.
    pub async fn copy_image(
        &self,
        src: &dyn ImageSource,
        dst: &dyn ImageDestination,
    ) -> Result<CopiedImage, Error> {
        let work = async {
            let copied = self.copy_inner(src, dst).await?;
            self.copy_tagged_referrers(src, dst, &copied.source_digest)
                .await?;
            Ok(copied)
        };
        let r = match src.budget().or_else(|| dst.budget()) {
            Some(budget) => oci_client::within_budget(&src.to_string(), budget, work).await,
            None => work.await,
        };
        let c = if r.is_ok() {
            &self.counters.images_ok
        } else {
            &self.counters.images_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = &r {
            tracing::warn!(source = %src, target = %dst, error = %e, "image copy failed");
        }
        r
    }

    async fn copy_inner(
        &self,
        src: &dyn ImageSource,
        dst: &dyn ImageDestination,
    ) -> Result<CopiedImage, Error> {
        let (media_type, digest, bytes) = src.read_root().await?;
        let image = src.to_string();
        let (media_type, parsed) = Parsed::parse(&image, &media_type, &bytes)?;
        let target_name = dst.target_name().map(str::to_string);
        let mut manifests = Vec::new();
        let visited = Visited::new(&digest);
        // Rerun fast path: the target name already points at exactly this image (a registry
        // holds a manifest only with all it references; a layout never answers yes).
        if self.opts.platforms.is_empty() || matches!(parsed, Parsed::Image { .. }) {
            let reference = target_name.as_deref().unwrap_or(digest.as_str());
            if dst.points_at(reference, &digest).await? {
                self.counters
                    .manifests_skipped
                    .fetch_add(1, Ordering::Relaxed);
                let manifests = match parsed {
                    Parsed::Index { manifests } => manifests
                        .into_iter()
                        .map(|d| (d.platform, d.digest))
                        .collect(),
                    Parsed::Image { .. } => vec![(None, digest.clone())],
                };
                return Ok(CopiedImage {
                    source_digest: digest.clone(),
                    media_type,
                    target_digest: Some(digest),
                    index_preserved: true,
                    manifests,
                });
            }
        }
        let copied = match parsed {
            Parsed::Image { .. } => {
                self.copy_node(src, dst, &digest, parsed, 0, &visited)
                    .await?;
                self.put_manifest(
                    dst,
                    &media_type,
                    &digest,
                    bytes,
                    target_name.as_deref(),
                    None,
                )
                .await?;
                manifests.push((None, digest.clone()));
                CopiedImage {
                    source_digest: digest.clone(),
                    media_type,
                    target_digest: Some(digest),
                    index_preserved: true,
                    manifests,
                }
            }
            Parsed::Index {
                manifests: children,
            } => {
                let filter = &self.opts.platforms;
                let selected: Vec<Descriptor> = children
                    .iter()
                    .filter(|d| {
                        filter.is_empty()
                            || d.platform
                                .as_ref()
                                .is_some_and(|p| filter.iter().any(|f| f.matches(p)))
                    })
                    .cloned()
                    .collect();
                if selected.is_empty() {
                    return Err(Error::NoMatchingPlatform {
                        image,
                        platforms: filter
                            .iter()
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join(","),
                    });
                }
                let all = selected.len() == children.len();
                try_join_all(
                    selected
                        .iter()
                        .map(|d| self.copy_child(src, dst, d, 1, &visited)),
                )
                .await?;
                if all {
                    visited.queue_referrers(&digest, 1);
                }
                manifests.extend(
                    selected
                        .iter()
                        .map(|d| (d.platform.clone(), d.digest.clone())),
                );
                let target_digest = if all {
                    self.put_manifest(
                        dst,
                        &media_type,
                        &digest,
                        bytes,
                        target_name.as_deref(),
                        None,
                    )
                    .await?;
                    Some(digest.clone())
                } else if let [one] = selected.as_slice() {
                    let b = src.read_manifest(one).await?.2;
                    self.put_manifest(
                        dst,
                        &one.media_type,
                        &one.digest,
                        b,
                        target_name.as_deref(),
                        one.platform.clone(),
                    )
                    .await?;
                    Some(one.digest.clone())
                } else {
                    for d in &selected {
                        dst.keep_unnamed(d.clone()).await?;
                    }
                    None
                };
                CopiedImage {
                    source_digest: digest,
                    media_type,
                    target_digest,
                    index_preserved: all,
                    manifests,
                }
            }
        };
        self.copy_queued_referrers(src, dst, &visited).await?;
        Ok(copied)
    }

    /// Copies a child manifest (and everything under it) by digest, once per image however
    /// often it is listed. `depth` counts the manifests above it; past
    /// [`MAX_INDEX_DEPTH`](oci::manifest::MAX_INDEX_DEPTH) the image is refused, which also
    /// bounds this recursion.
    fn copy_child<'a>(
        &'a self,
        src: &'a dyn ImageSource,
        dst: &'a dyn ImageDestination,
        d: &'a Descriptor,
        depth: usize,
        visited: &'a Visited,
    ) -> BoxFuture<'a, Result<(), Error>> {
        async move {
            check_index_depth(&src.to_string(), &d.digest, depth)?;
            let once = visited.cell(&d.digest);
            once.get_or_try_init(|| async {
                if dst.has_complete_manifest(&d.digest).await? {
                    self.counters
                        .manifests_skipped
                        .fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                let (mt, digest, bytes) = src.read_manifest(d).await?;
                let (mt, parsed) = Parsed::parse(&digest.to_string(), &mt, &bytes)?;
                self.copy_node(src, dst, &digest, parsed, depth, visited)
                    .await?;
                self.put_manifest(dst, &mt, &digest, bytes, None, None)
                    .await
            })
            .await
            .map(|_| ())
        }
        .boxed()
    }

    /// Copies what a manifest references: blobs of an image, children of a nested index, and
    /// referrers when asked.
    async fn copy_node(
        &self,
        src: &dyn ImageSource,
        dst: &dyn ImageDestination,
        digest: &Digest,
        parsed: Parsed,
        depth: usize,
        visited: &Visited,
    ) -> Result<(), Error> {
        match parsed {
            Parsed::Image { config, layers, .. } => {
                let known = config.size + layers.iter().map(|l| l.size).sum::<u64>();
                self.counters
                    .bytes_known
                    .fetch_add(known, Ordering::Relaxed);
                let blobs = std::iter::once(&config).chain(layers.iter());
                try_join_all(blobs.map(|b| self.copy_blob(src, dst, b))).await?;
            }
            Parsed::Index { manifests } => {
                try_join_all(
                    manifests
                        .iter()
                        .map(|d| self.copy_child(src, dst, d, depth + 1, visited)),
                )
                .await?;
            }
        }
        visited.queue_referrers(digest, depth + 1);
        Ok(())
    }

    /// Copies the OCI referrers (signatures, SBOMs) of every manifest the image copy queued,
    /// when the source has the referrers API and the destination takes them: after the image
    /// is in place (so each subject exists first), one at a time, and the referrers' own
    /// referrers join the queue. Never nested inside a copy: a registry may list an image as
    /// its own referrer, or two artifacts as each other's, and a copy waiting on a manifest
    /// that waits on it would never end.
    async fn copy_queued_referrers(
        &self,
        src: &dyn ImageSource,
        dst: &dyn ImageDestination,
        visited: &Visited,
    ) -> Result<(), Error> {
        if !self.opts.referrers || !dst.accepts_referrers() || src.repository().is_none() {
            return Ok(());
        }
        while let Some((subject, depth)) = visited.next_subject() {
            if let Some(refs) = src.referrers(&subject).await? {
                for r in refs {
                    self.copy_child(src, dst, &r, depth, visited).await?;
                }
            }
        }
        Ok(())
    }

    /// Signatures, attestations and SBOMs kept under tags named after the image's digest: cosign's
    /// `sha256-<hex>.sig`/`.att`/`.sbom` and the OCI referrers tag schema's `sha256-<hex>`. On a
    /// registry without the referrers API (distribution 2.8) they are the only referrers there
    /// are. Copied under the same tag (into a layout, named `<repository>:<tag>`, so `push`
    /// carries them on).
    async fn copy_tagged_referrers(
        &self,
        src: &dyn ImageSource,
        dst: &dyn ImageDestination,
        digest: &Digest,
    ) -> Result<(), Error> {
        let Some(repo) = src.repository() else {
            return Ok(());
        };
        if !self.opts.referrers {
            return Ok(());
        }
        let tags = self.source_tags(src, repo).await?;
        for suffix in ["", ".sig", ".att", ".sbom"] {
            let tag = format!("{}-{}{suffix}", digest.algorithm(), digest.hex());
            if !tags.contains(&tag) {
                continue;
            }
            let Some(from) = src.at_tag(&tag) else {
                continue;
            };
            let to = dst.at_tag(&tag, repo);
            Box::pin(self.copy_inner(&*from, &*to)).await?;
        }
        Ok(())
    }

    /// A source repository's tags, listed once per run (one request instead of four lookups per
    /// image, which would dominate a rerun).
    async fn source_tags(
        &self,
        src: &dyn ImageSource,
        repo: &Repo,
    ) -> Result<Arc<HashSet<String>>, Error> {
        if let Some(tags) = self.tags.lock().await.get(repo) {
            return Ok(tags.clone());
        }
        let tags: Arc<HashSet<String>> = Arc::new(
            src.list_tags()
                .await?
                .unwrap_or_default()
                .into_iter()
                .collect(),
        );
        self.tags.lock().await.insert(repo.clone(), tags.clone());
        Ok(tags)
    }

    async fn put_manifest(
        &self,
        dst: &dyn ImageDestination,
        media_type: &str,
        digest: &Digest,
        bytes: bytes::Bytes,
        name: Option<&str>,
        platform: Option<Platform>,
    ) -> Result<(), Error> {
        let sent = dst
            .put_manifest(media_type, digest, bytes, name, platform)
            .await?;
        let c = if sent {
            &self.counters.manifests_sent
        } else {
            &self.counters.manifests_skipped
        };
        c.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Copies one blob unless the target has it; serialised per (target store, digest) so
    /// images that share a layer send it once and the others mount it.
    async fn copy_blob(
        &self,
        src: &dyn ImageSource,
        dst: &dyn ImageDestination,
        d: &Descriptor,
    ) -> Result<(), Error> {
        let key = (dst.blob_store(), d.digest.clone());
        let lock = {
            let mut m = self.in_flight.lock().await;
            m.entry(key.clone()).or_default().clone()
        };
        let _same_blob = lock.lock().await;
        let _permit = self.blobs.acquire().await.map_err(|_| Error::Config {
            reason: "transfer engine shut down".into(),
        })?;
        // Every request in a copy is retried by the client itself; only a streamed upload,
        // which cannot be replayed within its request, is started over here, under the
        // target's retry policy, so attempts never multiply.
        let policy = dst.retry_policy();
        let mut tries = policy.start();
        loop {
            let mut streamed = false;
            let placed = self.placed.lock().await.get(&key).cloned();
            let put = BlobPut {
                moved: &self.counters.bytes_moved,
                placed,
                streamed: &mut streamed,
            };
            match dst.put_blob(src, d, put).await {
                Ok(how) => {
                    if let Some(repo) = dst.repository() {
                        self.placed.lock().await.insert(key, repo.clone());
                    }
                    let c = &self.counters;
                    match how {
                        BlobOutcome::Skipped => {
                            c.blobs_skipped.fetch_add(1, Ordering::Relaxed);
                            c.bytes_skipped.fetch_add(d.size, Ordering::Relaxed);
                        }
                        BlobOutcome::Mounted => {
                            c.blobs_mounted.fetch_add(1, Ordering::Relaxed);
                            c.bytes_skipped.fetch_add(d.size, Ordering::Relaxed);
                        }
                        BlobOutcome::Sent => {
                            c.blobs_sent.fetch_add(1, Ordering::Relaxed);
                            c.bytes_sent.fetch_add(d.size, Ordering::Relaxed);
                        }
                    }
                    return Ok(());
                }
                Err(e) if streamed => tries.failed_with(e).await?,
                Err(e) => return Err(e),
            }
        }
    }
}

/// What a reference resolves to, for lock files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Digest of the manifest or index the reference names.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// For an index: each entry's platform (when given) and digest, in index order.
    pub platforms: Vec<(Option<Platform>, Digest)>,
}

/// Resolves a tag or digest to its manifest digest and, for an index, per-platform digests.
pub async fn resolve(client: &Client, repo: &Repo, reference: &str) -> Result<Resolved, Error> {
    let m = client.get_manifest(repo, reference).await?;
    let (media_type, parsed) =
        Parsed::parse(&format!("{repo}:{reference}"), &m.media_type, &m.bytes)?;
    let platforms = match parsed {
        Parsed::Index { manifests } if is_index(&media_type) => manifests
            .into_iter()
            .map(|d| (d.platform, d.digest))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Resolved {
        digest: m.digest,
        media_type,
        platforms,
    })
}
