//! Hostile layouts, archives and sources, generated here: indexes nested thousands deep or
//! listing the same child twice at every level, `index.json` and manifests far larger than any
//! real one, blobs whose size is not what their descriptor says, links planted at the names of
//! temporary files, and several writers adding to one layout at once.
//!
//! Memory bounds are measured (peak RSS of this process, reset before each measured step), so
//! every test takes [`SERIAL`]: nothing else in this binary runs while one measures.

#[path = "../../client/tests/mock/mod.rs"]
mod mock;

use std::io::Read;
use std::path::{Path, PathBuf};

use mock::{Reply, Req, Server};
use oci::manifest::{MAX_INDEX_DEPTH, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST};
use oci::{Digest, Error};
use oci_client::{Client, ClientOptions, Repo};
use oci_store::Layout;
use oci_transfer::{Endpoint, Transfer, TransferOptions};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CONFIG: &[u8] = b"{}";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// A layout written file by file, with no checks: whatever a test wants it to hold.
struct RawLayout {
    _dir: tempfile::TempDir,
    root: PathBuf,
    names: Vec<(String, String, Digest, u64)>,
}

impl RawLayout {
    fn new() -> RawLayout {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("layout");
        std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let l = RawLayout {
            _dir: dir,
            root,
            names: Vec::new(),
        };
        l.write_index();
        l
    }

    fn blob(&self, bytes: &[u8]) -> (Digest, u64) {
        let d = Digest::of(bytes);
        std::fs::write(self.path(&d), bytes).unwrap();
        (d, bytes.len() as u64)
    }

    fn path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// An image manifest over `CONFIG` and the given layers (digest, declared size).
    fn image(&self, layers: &[(Digest, u64)]) -> (Digest, u64) {
        let (c, cs) = self.blob(CONFIG);
        self.blob(manifest_json(&c, cs, layers).as_bytes())
    }

    fn index(&self, children: &[(&str, &Digest, u64)]) -> (Digest, u64) {
        self.blob(index_json(children).as_bytes())
    }

    fn name(&mut self, name: &str, media_type: &str, d: &Digest, size: u64) {
        self.names
            .push((name.into(), media_type.into(), d.clone(), size));
        self.write_index();
    }

    fn write_index(&self) {
        let entries: Vec<String> = self
            .names
            .iter()
            .map(|(n, mt, d, s)| {
                format!(
                    r#"{{"mediaType":"{mt}","digest":"{d}","size":{s},"annotations":{{"org.opencontainers.image.ref.name":"{n}"}}}}"#
                )
            })
            .collect();
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
            entries.join(",")
        );
        std::fs::write(self.root.join("index.json"), doc).unwrap();
    }

    async fn open(&self) -> Layout {
        Layout::open(&self.root).await.unwrap()
    }
}

fn manifest_json(config: &Digest, config_size: u64, layers: &[(Digest, u64)]) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, s)| format!(r#"{{"mediaType":"{LAYER_TYPE}","digest":"{d}","size":{s}}}"#))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{CONFIG_TYPE}","digest":"{config}","size":{config_size}}},"layers":[{}]}}"#,
        layers.join(",")
    )
}

fn index_json(children: &[(&str, &Digest, u64)]) -> String {
    let m: Vec<String> = children
        .iter()
        .map(|(mt, d, s)| format!(r#"{{"mediaType":"{mt}","digest":"{d}","size":{s}}}"#))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        m.join(",")
    )
}

/// Runs `f` and returns what it returned and the growth of this process's peak RSS meanwhile,
/// in bytes. The kernel's peak is reset first (`/proc/self/clear_refs` ← 5), so earlier peaks
/// do not count.
async fn peak_rss_growth<T>(f: impl std::future::Future<Output = T>) -> (T, u64) {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS (Linux)");
    let before = status_kib("VmRSS");
    let out = f.await;
    let peak = status_kib("VmHWM");
    (out, peak.saturating_sub(before) * 1024)
}

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"))
}

/// The digest of `len` zero bytes, hashed in chunks (never held whole).
fn zeros_digest(len: u64) -> Digest {
    let mut h = oci::digest::Hasher::new();
    let chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        h.update(&chunk[..n]);
        left -= n as u64;
    }
    h.finish()
}

fn transfer() -> Transfer {
    Transfer::new(TransferOptions::default())
}

fn client(host: &str) -> Client {
    Client::new(ClientOptions {
        insecure_hosts: vec![host.to_string()],
        docker_config: false,
        retry: oci_client::RetryPolicy {
            attempts: 1,
            ..Default::default()
        },
        ..ClientOptions::default()
    })
    .unwrap()
}

const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Item 5: nesting and repeated children.

#[tokio::test]
async fn index_nested_2000_deep_is_a_clear_error_not_a_stack_overflow() {
    let _serial = SERIAL.lock().await;
    let mut raw = RawLayout::new();
    let (mut d, mut size) = raw.image(&[]);
    let mut mt = OCI_MANIFEST;
    let mut chain = Vec::new();
    for _ in 0..2000 {
        (d, size) = raw.index(&[(mt, &d, size)]);
        mt = OCI_INDEX;
        chain.push(d.clone());
    }
    raw.name("deep:1", OCI_INDEX, &d, size);
    // Three levels of index, a legitimate shape, copy fine.
    let (leaf, leaf_size) = raw.image(&[]);
    let (i1, s1) = raw.index(&[(OCI_MANIFEST, &leaf, leaf_size)]);
    let (i2, s2) = raw.index(&[(OCI_INDEX, &i1, s1)]);
    let (i3, s3) = raw.index(&[(OCI_INDEX, &i2, s2)]);
    raw.name("nested:3", OCI_INDEX, &i3, s3);

    let src = raw.open().await;
    let out = tempfile::tempdir().unwrap();
    let dst = Layout::create(out.path()).await.unwrap();
    let t = transfer();
    let e = t
        .copy(
            &Endpoint::layout(&src, Some("deep:1")),
            &Endpoint::layout(&dst, Some("deep:1")),
        )
        .await
        .unwrap_err();
    // chain[1999] is the top; the first refused descriptor sits MAX_INDEX_DEPTH + 1 below it.
    let beyond = &chain[1999 - (MAX_INDEX_DEPTH + 1)];
    match &e {
        Error::IndexTooDeep { image, digest, max } => {
            assert!(image.contains("deep:1"), "{e}");
            assert_eq!(digest, beyond, "{e}");
            assert_eq!(*max, MAX_INDEX_DEPTH);
        }
        other => panic!("expected IndexTooDeep, got {other}"),
    }
    assert!(e.to_string().contains(beyond.as_str()), "{e}");
    assert!(
        dst.index().await.unwrap().manifests.is_empty(),
        "nothing named"
    );

    let ok = t
        .copy(
            &Endpoint::layout(&src, Some("nested:3")),
            &Endpoint::layout(&dst, Some("nested:3")),
        )
        .await
        .unwrap();
    assert_eq!(ok.target_digest, Some(i3));
}

/// A registry serving a tower of `levels` indexes over one image, each listing the level below
/// twice, as `tower:1`; returns the server and the documents, leaf first.
async fn tower_registry(levels: usize) -> (Server, Vec<(&'static str, String)>) {
    let config = Digest::of(CONFIG);
    let leaf = manifest_json(&config, CONFIG.len() as u64, &[]);
    let mut docs = vec![(OCI_MANIFEST, leaf)];
    for _ in 0..levels {
        let (mt, below) = docs.last().unwrap();
        let d = Digest::of(below.as_bytes());
        let s = below.len() as u64;
        docs.push((OCI_INDEX, index_json(&[(mt, &d, s), (mt, &d, s)])));
    }
    let by_ref: std::collections::HashMap<String, (&'static str, String)> = docs
        .iter()
        .map(|(mt, b)| (Digest::of(b.as_bytes()).to_string(), (*mt, b.clone())))
        .chain(std::iter::once((
            "1".to_string(),
            docs.last().cloned().unwrap(),
        )))
        .collect();
    let server = Server::start(move |r: &Req| {
        if let Some(reference) = r.path.strip_prefix("/v2/tower/manifests/")
            && let Some((mt, body)) = by_ref.get(reference)
        {
            return Reply::new(200)
                .header("content-type", mt)
                .header(
                    "docker-content-digest",
                    Digest::of(body.as_bytes()).as_str(),
                )
                .body(body.clone());
        }
        if r.path == format!("/v2/tower/blobs/{}", Digest::of(CONFIG)) {
            return Reply::new(200).body(CONFIG);
        }
        if r.path == "/v2/" {
            return Reply::new(200);
        }
        Reply::new(404)
    })
    .await;
    (server, docs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_listing_its_child_twice_per_level_fetches_each_manifest_once() {
    let _serial = SERIAL.lock().await;
    // As deep as is allowed: the old code made 2^(levels+1) - 1 GETs here (511).
    let levels = MAX_INDEX_DEPTH;
    let (server, docs) = tower_registry(levels).await;
    let out = tempfile::tempdir().unwrap();
    let dst = Layout::create(out.path()).await.unwrap();
    let c = client(&server.host);
    let src = Endpoint::registry(&c, Repo::new(server.host.clone(), "tower"), Some("1"));
    let copied = transfer()
        .copy(&src, &Endpoint::layout(&dst, Some("tower:1")))
        .await
        .unwrap();
    assert_eq!(
        copied.source_digest,
        Digest::of(docs.last().unwrap().1.as_bytes())
    );
    let gets = server.count("GET", "/v2/tower/manifests/");
    eprintln!(
        "{levels} levels: manifest GETs for {} manifests: {gets}",
        docs.len()
    );
    assert_eq!(gets, docs.len(), "one GET per manifest (the top by tag)");
    for (_, b) in &docs[..levels] {
        let path = format!("/v2/tower/manifests/{}", Digest::of(b.as_bytes()));
        assert_eq!(server.count("GET", &path), 1, "{path}");
    }
    assert_eq!(server.count("GET", "/v2/tower/blobs/"), 1);
    for (_, b) in &docs {
        assert!(dst.has_blob(&Digest::of(b.as_bytes()), None).await);
    }

    // 14 levels (32,766 GETs before): refused after one GET per level it followed.
    let (server, docs) = tower_registry(14).await;
    let c = client(&server.host);
    let src = Endpoint::registry(&c, Repo::new(server.host.clone(), "tower"), Some("1"));
    let e = transfer()
        .copy(&src, &Endpoint::layout(&dst, Some("tower:2")))
        .await
        .unwrap_err();
    let beyond = Digest::of(docs[14 - (MAX_INDEX_DEPTH + 1)].1.as_bytes());
    assert!(
        matches!(&e, Error::IndexTooDeep { digest, .. } if digest == &beyond),
        "{e}"
    );
    let gets = server.count("GET", "/v2/tower/manifests/");
    eprintln!("14 levels: {gets} manifest GETs, then {e}");
    assert_eq!(gets, MAX_INDEX_DEPTH + 1);
}

/// A source whose referrers API lists an image's signature index, which lists the image itself
/// as a child, and which names both as its own referrers: a cycle no content digest allows,
/// which only a registry's listing can make. Each manifest is still copied once, and the copy
/// ends (it deadlocked, waiting on itself, until the referrers were queued instead of nested).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_that_list_each_other_are_copied_once_not_waited_on_forever() {
    let _serial = SERIAL.lock().await;
    let config = Digest::of(CONFIG);
    let image = manifest_json(&config, CONFIG.len() as u64, &[]);
    let image_digest = Digest::of(image.as_bytes());
    let sig = index_json(&[(OCI_MANIFEST, &image_digest, image.len() as u64)]);
    let sig_digest = Digest::of(sig.as_bytes());
    let referrers = index_json(&[
        (OCI_INDEX, &sig_digest, sig.len() as u64),
        (OCI_MANIFEST, &image_digest, image.len() as u64),
    ]);
    let docs: std::collections::HashMap<String, (&str, String)> = [
        ("1".to_string(), (OCI_MANIFEST, image.clone())),
        (image_digest.to_string(), (OCI_MANIFEST, image.clone())),
        (sig_digest.to_string(), (OCI_INDEX, sig.clone())),
    ]
    .into();
    let source = Server::start(move |r: &Req| {
        if let Some(reference) = r.path.strip_prefix("/v2/loop/manifests/")
            && let Some((mt, body)) = docs.get(reference)
        {
            return Reply::new(200)
                .header("content-type", mt)
                .header(
                    "docker-content-digest",
                    Digest::of(body.as_bytes()).as_str(),
                )
                .body(body.clone());
        }
        if r.path.starts_with("/v2/loop/referrers/") {
            return Reply::new(200)
                .header("content-type", OCI_INDEX)
                .body(referrers.clone());
        }
        if r.path == format!("/v2/loop/blobs/{}", Digest::of(CONFIG)) {
            return Reply::new(200).body(CONFIG);
        }
        if r.path == "/v2/" {
            return Reply::new(200);
        }
        Reply::new(404)
    })
    .await;
    let target = accepting_registry().await;
    let budgeted = |host: &str| {
        Client::new(ClientOptions {
            insecure_hosts: vec![host.to_string()],
            docker_config: false,
            timeouts: oci_client::Timeouts {
                image: std::time::Duration::from_secs(5),
                ..Default::default()
            },
            ..ClientOptions::default()
        })
        .unwrap()
    };
    let (sc, tc) = (budgeted(&source.host), budgeted(&target.host));
    let copied = transfer()
        .copy(
            &Endpoint::registry(&sc, Repo::new(source.host.clone(), "loop"), Some("1")),
            &Endpoint::registry(&tc, Repo::new(target.host.clone(), "app"), Some("1")),
        )
        .await
        .unwrap();
    assert_eq!(copied.source_digest, image_digest);
    assert_eq!(
        source.count("GET", "/v2/loop/manifests/"),
        2,
        "the tag, then the signature"
    );
    assert_eq!(
        source.count("GET", "/v2/loop/referrers/"),
        2,
        "the image's, the signature's"
    );
    assert_eq!(
        target.count("PUT", &format!("/v2/app/manifests/{sig_digest}")),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// Item 6: bodies read with no limit.

/// A `.tar.zst` holding `oci-layout` and an `index.json` of `len` zero bytes: a few tens of KB
/// on disk.
fn archive_with_huge_index(path: &Path, len: u64) {
    let f = std::fs::File::create(path).unwrap();
    let enc = zstd::stream::write::Encoder::new(f, 1).unwrap();
    let mut b = tar::Builder::new(enc);
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let mut h = tar::Header::new_gnu();
    h.set_size(layout.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "oci-layout", &layout[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "index.json", std::io::repeat(0).take(len))
        .unwrap();
    b.into_inner().unwrap().finish().unwrap();
}

#[tokio::test]
async fn archive_index_json_of_1_gib_is_refused_with_bounded_memory() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("bomb.tar.zst");
    archive_with_huge_index(&archive, 1 << 30);
    let on_disk = std::fs::metadata(&archive).unwrap().len();
    assert!(on_disk < MIB, "the bomb is small: {on_disk} bytes");

    let (r, growth) =
        peak_rss_growth(oci_store::read_archive(&archive, dir.path().join("out"))).await;
    eprintln!("archive of {on_disk} bytes with a 1 GiB index.json: peak RSS +{growth} bytes");
    let e = r.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidManifest { image, reason }
            if image.ends_with("bomb.tar.zst:index.json") && reason.contains("limit")),
        "{e}"
    );
    assert!(growth < 32 * MIB, "peak RSS grew by {growth} bytes");

    // The same index.json as a layout's own file is refused before it is read.
    let raw = RawLayout::new();
    let f = std::fs::File::options()
        .write(true)
        .open(raw.root.join("index.json"))
        .unwrap();
    f.set_len(1 << 30).unwrap(); // sparse
    let layout = raw.open().await;
    let (r, growth) = peak_rss_growth(layout.index()).await;
    let e = r.unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
    assert!(growth < 32 * MIB, "peak RSS grew by {growth} bytes");
}

/// A scripted registry that accepts every upload and records it.
async fn accepting_registry() -> Server {
    Server::start(|r: &Req| match r.method.as_str() {
        "HEAD" => Reply::new(404),
        "POST" => Reply::new(202).header("location", "/v2/app/blobs/uploads/u1"),
        "PATCH" => Reply::new(202).header("location", "/v2/app/blobs/uploads/u1"),
        "PUT" => Reply::new(201),
        "GET" if r.path == "/v2/" => Reply::new(200),
        _ => Reply::new(404),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layout_blob_of_another_size_than_declared_is_refused_before_it_is_read() {
    let _serial = SERIAL.lock().await;
    let mut raw = RawLayout::new();
    // 256 MiB of zeros (a sparse file) whose descriptor says 10 bytes.
    let big_len = 256 * MIB;
    let big = zeros_digest(big_len);
    let f = std::fs::File::create(raw.path(&big)).unwrap();
    f.set_len(big_len).unwrap();
    let (m, ms) = raw.image(&[(big.clone(), 10)]);
    raw.name("big:1", OCI_MANIFEST, &m, ms);
    // And 10 real bytes whose descriptor says 1000.
    let (small, _) = raw.blob(b"0123456789");
    let (m2, ms2) = raw.image(&[(small.clone(), 1000)]);
    raw.name("short:1", OCI_MANIFEST, &m2, ms2);

    let src = raw.open().await;
    let server = accepting_registry().await;
    let c = client(&server.host);
    let t = transfer();
    for (name, digest, expected, actual) in
        [("big:1", &big, 10, big_len), ("short:1", &small, 1000, 10)]
    {
        let dst = Endpoint::registry(&c, Repo::new(server.host.clone(), "app"), Some("1"));
        let (r, growth) = peak_rss_growth(t.copy(&Endpoint::layout(&src, Some(name)), &dst)).await;
        eprintln!("{name}: peak RSS +{growth} bytes");
        let e = r.unwrap_err();
        match &e {
            Error::SizeMismatch {
                digest: d,
                expected: x,
                actual: a,
                ..
            } => assert_eq!((d, *x, *a), (digest, expected, actual), "{e}"),
            other => panic!("{name}: expected SizeMismatch, got {other}"),
        }
        assert!(e.to_string().contains(digest.as_str()), "{e}");
        assert!(growth < 32 * MIB, "{name}: peak RSS grew by {growth} bytes");
    }
    // The (honest) config blob may go up; neither lying blob does, and no manifest names them.
    let sent: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" || r.method == "PATCH")
        .map(|r| (r.method, r.path, r.body.len()))
        .filter(|(_, p, len)| !p.contains(&Digest::of(CONFIG).hex()[..16]) || *len > 2)
        .collect();
    assert!(sent.is_empty(), "nothing else uploaded: {sent:?}");
}

#[tokio::test]
async fn layout_manifest_over_the_cap_is_refused_before_it_is_read() {
    let _serial = SERIAL.lock().await;
    let mut raw = RawLayout::new();
    // A valid manifest padded with 64 MiB of JSON whitespace, declared at its real size.
    let (c, cs) = raw.blob(CONFIG);
    let mut body = manifest_json(&c, cs, &[]).into_bytes();
    body.extend(std::iter::repeat_n(b' ', 64 * MIB as usize));
    let (m, ms) = raw.blob(&body);
    drop(body);
    raw.name("fat:1", OCI_MANIFEST, &m, ms);
    // The same file behind a descriptor that claims 300 bytes.
    raw.name("liar:1", OCI_MANIFEST, &m, 300);

    let src = raw.open().await;
    let out = tempfile::tempdir().unwrap();
    let dst = Layout::create(out.path()).await.unwrap();
    let t = transfer();
    let copy = |name: &'static str| {
        let (src, dst, t) = (src.clone(), dst.clone(), t.clone());
        async move {
            t.copy(
                &Endpoint::layout(&src, Some(name)),
                &Endpoint::layout(&dst, Some(name)),
            )
            .await
        }
    };
    let (r, growth) = peak_rss_growth(copy("fat:1")).await;
    let e = r.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidManifest { reason, .. } if reason.contains(&MAX_MANIFEST_BYTES.to_string())),
        "{e}"
    );
    assert!(e.to_string().contains(m.hex()), "names the blob: {e}");
    assert!(growth < 16 * MIB, "peak RSS grew by {growth} bytes");

    let (r, growth) = peak_rss_growth(copy("liar:1")).await;
    let e = r.unwrap_err();
    assert!(
        matches!(&e, Error::SizeMismatch { digest, expected: 300, .. } if digest == &m),
        "{e}"
    );
    assert!(growth < 16 * MIB, "peak RSS grew by {growth} bytes");
    assert!(dst.index().await.unwrap().manifests.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Item 8: temporary files never follow a planted link.

#[cfg(unix)]
#[tokio::test]
async fn links_planted_at_the_old_temporary_names_are_never_written_through() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let layout = Layout::create(dir.path().join("layout")).await.unwrap();
    let bytes = b"a blob that must not land in the victim";
    let d = Digest::of(bytes);
    let pid = std::process::id();
    let blobs = layout.root().join("blobs/sha256");
    // The names the old code used: a per-process counter after the pid.
    for n in 0..3000 {
        for p in [
            blobs.join(format!(".{}.{pid}-{n}.partial", d.hex())),
            layout.root().join(format!(".index.json.{pid}-{n}.tmp")),
        ] {
            std::os::unix::fs::symlink(&victim, p).unwrap();
        }
    }
    std::os::unix::fs::symlink(&victim, dir.path().join("out.tar.partial")).unwrap();

    layout.put_blob_bytes(bytes).await.unwrap();
    let desc = oci::Descriptor {
        media_type: CONFIG_TYPE.into(),
        digest: d.clone(),
        size: bytes.len() as u64,
        platform: None,
        annotations: None,
        artifact_type: None,
    };
    layout.add_to_index(Some("x:1"), desc).await.unwrap();
    let out = dir.path().join("out.tar");
    oci_store::write_archive(&layout, &out, oci_store::Compression::None)
        .await
        .unwrap();

    let v = std::fs::read(&victim).unwrap();
    assert!(v == b"precious", "victim overwritten ({} bytes)", v.len());
    let stored = layout.blob_path(&d);
    assert!(!stored.symlink_metadata().unwrap().is_symlink());
    assert_eq!(std::fs::read(&stored).unwrap(), bytes);
    assert!(
        !layout
            .root()
            .join("index.json")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
    assert!(!out.symlink_metadata().unwrap().is_symlink());
    assert!(
        dir.path()
            .join("out.tar.partial")
            .symlink_metadata()
            .unwrap()
            .is_symlink(),
        "the planted link is left alone"
    );
    // The archive is whole and reads back.
    let back = oci_store::read_archive(&out, dir.path().join("back"))
        .await
        .unwrap();
    assert_eq!(back.resolve("x:1").await.unwrap().digest, d);
}

// ---------------------------------------------------------------------------------------------
// Item 10: concurrent writers.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_to_one_layout_keep_every_index_entry() {
    let _serial = SERIAL.lock().await;
    let mut raw = RawLayout::new();
    let (layer, ls) = raw.blob(b"layer");
    let (m, ms) = raw.image(&[(layer, ls)]);
    raw.name("app:1", OCI_MANIFEST, &m, ms);
    let src = raw.open().await;
    let out = tempfile::tempdir().unwrap();
    Layout::create(out.path()).await.unwrap();

    const WRITERS: usize = 8;
    const EACH: usize = 6;
    // Each writer opens the layout itself, as another process would: only the file lock is
    // shared between them.
    let writers = (0..WRITERS).map(|w| {
        let (src, root) = (src.clone(), out.path().to_path_buf());
        tokio::spawn(async move {
            let dst = Layout::open(&root).await.unwrap();
            let t = transfer();
            for i in 0..EACH {
                let name = format!("w{w}/app:{i}");
                t.copy(
                    &Endpoint::layout(&src, Some("app:1")),
                    &Endpoint::layout(&dst, Some(&name)),
                )
                .await
                .unwrap();
            }
        })
    });
    for w in futures_util::future::join_all(writers).await {
        w.unwrap();
    }
    let index = Layout::open(out.path())
        .await
        .unwrap()
        .index()
        .await
        .unwrap();
    let mut names: Vec<_> = index
        .manifests
        .iter()
        .filter_map(|d| d.ref_name().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), WRITERS * EACH, "lost entries; have {names:?}");
    assert_eq!(index.manifests.len(), WRITERS * EACH);
}

/// Partial files of a live writer survive another process opening the layout; leftovers of a
/// dead one are removed.
#[tokio::test]
async fn opening_a_layout_in_use_keeps_the_other_writers_partial_files() {
    let _serial = SERIAL.lock().await;
    let out = tempfile::tempdir().unwrap();
    let first = Layout::create(out.path()).await.unwrap();
    let d = Digest::of(b"slow blob");
    let mut w = first.blob_writer(&d, Some(9)).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut w, b"slow ")
        .await
        .unwrap();
    // Another "process" creates the same layout meanwhile.
    let second = Layout::create(out.path()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut w, b"blob")
        .await
        .unwrap();
    w.commit().await.unwrap();
    assert!(second.has_blob(&d, Some(9)).await);
    drop((first, second));

    // A leftover of a killed run, with nobody holding the layout: removed.
    let leftover = out
        .path()
        .join("blobs/sha256")
        .join(format!(".{}.1-0.partial", Digest::of(b"x").hex()));
    std::fs::write(&leftover, b"half").unwrap();
    let _third = Layout::create(out.path()).await.unwrap();
    assert!(!leftover.exists());
}
