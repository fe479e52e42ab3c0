//! The spec's routes against a real [`Layout`] in a temporary directory, through the router
//! with `oneshot` (no socket).

use super::*;
use axum::http::HeaderMap;
use axum::http::Request as HttpRequest;
use oci::manifest::{Descriptor, MAX_MANIFEST_BYTES, OCI_INDEX};
use oci_store::Layout;
use tower::ServiceExt;

struct T {
    dir: tempfile::TempDir,
    reg: Arc<Registry<Layout>>,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Resp {
    fn h(&self, k: &str) -> &str {
        self.headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        v["errors"][0]["code"].as_str().unwrap_or("").to_string()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

impl T {
    async fn new() -> T {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).await.unwrap();
        T {
            reg: Arc::new(Registry::new(layout)),
            dir,
        }
    }

    async fn req(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut b = HttpRequest::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = app(self.reg.clone())
            .oneshot(b.body(Body::from(body.to_vec())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::of(data);
        let r = self
            .req(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[],
                data,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        d
    }

    /// Every file under the store's `blobs/`, hidden partial files included.
    fn blob_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        for alg in ["sha256", "sha512"] {
            if let Ok(rd) = std::fs::read_dir(self.dir.path().join("blobs").join(alg)) {
                for e in rd {
                    out.push(format!(
                        "{alg}/{}",
                        e.unwrap().file_name().to_string_lossy()
                    ));
                }
            }
        }
        out.sort();
        out
    }
}

fn manifest(config: &Digest, config_len: usize, layers: &[(&Digest, usize)]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, n)| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::manifest::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_len},
        "layers": layers,
    }))
    .unwrap()
}

const MT: (&str, &str) = ("content-type", oci::manifest::OCI_MANIFEST);

#[tokio::test]
async fn base_answers_with_api_version() {
    let t = T::new().await;
    let r = t.req("GET", "/v2/", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.h("docker-distribution-api-version"), "registry/2.0");
    assert_eq!(
        t.req("GET", "/v3/", &[], b"").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn blob_get_head_and_ranges_with_416_for_unsatisfiable() {
    let t = T::new().await;
    let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let d = t.push_blob("a/b", &data).await;
    let r = t.req("GET", &format!("/v2/a/b/blobs/{d}"), &[], b"").await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &data[..]));
    assert_eq!(r.h("docker-content-digest"), d.as_str());
    let r = t.req("HEAD", &format!("/v2/a/b/blobs/{d}"), &[], b"").await;
    assert_eq!(
        (r.status, r.h("content-length"), r.body.len()),
        (StatusCode::OK, "1000", 0)
    );
    let r = t
        .req(
            "GET",
            &format!("/v2/a/b/blobs/{d}"),
            &[("range", "bytes=10-19")],
            b"",
        )
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&r.body[..], &data[10..20]);
    assert_eq!(r.h("content-range"), "bytes 10-19/1000");
    let r = t
        .req(
            "GET",
            &format!("/v2/a/b/blobs/{d}"),
            &[("range", "bytes=-5")],
            b"",
        )
        .await;
    assert_eq!(&r.body[..], &data[995..]);
    for bad in ["bytes=1000-", "bytes=5000-6000", "bytes=20-10", "bytes=-0"] {
        let r = t
            .req("GET", &format!("/v2/a/b/blobs/{d}"), &[("range", bad)], b"")
            .await;
        assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
        assert_eq!(r.h("content-range"), "bytes */1000", "{bad}");
    }
    let missing = Digest::of(b"nope");
    let r = t
        .req("GET", &format!("/v2/a/b/blobs/{missing}"), &[], b"")
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
    );
    let r = t
        .req("DELETE", &format!("/v2/a/b/blobs/{d}"), &[], b"")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = t.req("GET", &format!("/v2/a/b/blobs/{d}"), &[], b"").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_digests_are_400_never_500() {
    let t = T::new().await;
    let upper = format!("sha256:{}", "A".repeat(64));
    for bad in [
        "sha256:abc",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:..",
        "x",
        &upper,
    ] {
        let r = t.req("GET", &format!("/v2/a/blobs/{bad}"), &[], b"").await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            "{bad}"
        );
        let r = t
            .req(
                "POST",
                &format!("/v2/a/blobs/uploads/?digest={bad}"),
                &[],
                b"x",
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert!(t.blob_files().is_empty(), "{:?}", t.blob_files());
    // A digest with a `/` is not a path: it is no route at all.
    let r = t
        .req("GET", "/v2/a/blobs/sha256:../../etc/passwd", &[], b"")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn wrong_digest_upload_is_refused_and_leaves_nothing() {
    let t = T::new().await;
    let claimed = Digest::of(b"the real bytes");
    let r = t
        .req(
            "POST",
            &format!("/v2/a/blobs/uploads/?digest={claimed}"),
            &[],
            b"other bytes",
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    // Chunked: the session ends with the mismatch and its file goes with it.
    let r = t.req("POST", "/v2/a/blobs/uploads/", &[], b"").await;
    let loc = r.h("location").to_string();
    t.req("PATCH", &loc, &[], b"other bytes").await;
    let r = t
        .req("PUT", &format!("{loc}?digest={claimed}"), &[], b"")
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    assert!(t.blob_files().is_empty(), "{:?}", t.blob_files());
    assert_eq!(
        t.req("HEAD", &format!("/v2/a/blobs/{claimed}"), &[], b"")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.req("GET", &loc, &[], b"").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn chunked_upload_in_order_with_416_out_of_order_status_and_cancel() {
    let t = T::new().await;
    let r = t.req("POST", "/v2/a/blobs/uploads/", &[], b"").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let loc = r.h("location").to_string();
    assert!(loc.starts_with("/v2/a/blobs/uploads/"), "{loc}");
    let r = t
        .req("PATCH", &loc, &[("content-range", "0-4")], b"hello")
        .await;
    assert_eq!((r.status, r.h("range")), (StatusCode::ACCEPTED, "0-4"));
    // A chunk that does not start where the upload is: 416, and the upload is unharmed.
    let r = t
        .req("PATCH", &loc, &[("content-range", "10-14")], b"xxxxx")
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.h("range"), "0-4");
    let r = t
        .req("PATCH", &loc, &[("content-range", "0-4")], b"hello")
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    let r = t.req("GET", &loc, &[], b"").await;
    assert_eq!((r.status, r.h("range")), (StatusCode::NO_CONTENT, "0-4"));
    let r = t
        .req("PATCH", &loc, &[("content-range", "5-10")], b" world")
        .await;
    assert_eq!(r.h("range"), "0-10");
    // The upload belongs to its repository.
    assert_eq!(
        t.req("GET", &loc.replace("/v2/a/", "/v2/other/"), &[], b"")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let d = Digest::of(b"hello world!");
    let r = t.req("PUT", &format!("{loc}?digest={d}"), &[], b"!").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.h("location"), format!("/v2/a/blobs/{d}"));
    let r = t.req("GET", &format!("/v2/a/blobs/{d}"), &[], b"").await;
    assert_eq!(&r.body[..], b"hello world!");
    // A chunk whose length is not what its Content-Range says ends the upload.
    let loc = t
        .req("POST", "/v2/a/blobs/uploads/", &[], b"")
        .await
        .h("location")
        .to_string();
    let r = t
        .req("PATCH", &loc, &[("content-range", "0-9")], b"short")
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID")
    );
    assert_eq!(
        t.req("GET", &loc, &[], b"").await.status,
        StatusCode::NOT_FOUND
    );
    // Cancel.
    let loc = t
        .req("POST", "/v2/a/blobs/uploads/", &[], b"")
        .await
        .h("location")
        .to_string();
    t.req("PATCH", &loc, &[], b"abandoned").await;
    assert_eq!(
        t.req("DELETE", &loc, &[], b"").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.req("GET", &loc, &[], b"").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(t.blob_files(), [format!("sha256/{}", d.hex())]);
}

#[tokio::test]
async fn abandoned_uploads_expire_and_their_bytes_go() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).await.unwrap();
    let t = T {
        reg: Arc::new(Registry::new(layout).upload_ttl(Duration::from_millis(50))),
        dir,
    };
    let loc = t
        .req("POST", "/v2/a/blobs/uploads/", &[], b"")
        .await
        .h("location")
        .to_string();
    t.req("PATCH", &loc, &[], b"abandoned").await;
    assert_eq!(t.blob_files().len(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    t.reg.expire_uploads();
    assert_eq!(
        t.req("GET", &loc, &[], b"").await.status,
        StatusCode::NOT_FOUND
    );
    assert!(t.blob_files().is_empty(), "{:?}", t.blob_files());
}

#[tokio::test]
async fn mounts_cross_repository_and_anonymous() {
    let t = T::new().await;
    let d = t.push_blob("src", b"layer").await;
    let r = t
        .req(
            "POST",
            &format!("/v2/dst/blobs/uploads/?mount={d}&from=src"),
            &[],
            b"",
        )
        .await;
    assert_eq!(
        (r.status, r.h("location")),
        (StatusCode::CREATED, format!("/v2/dst/blobs/{d}").as_str())
    );
    let r = t
        .req(
            "POST",
            &format!("/v2/dst2/blobs/uploads/?mount={d}"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Unknown blob: an ordinary upload session instead.
    let other = Digest::of(b"missing");
    let r = t
        .req(
            "POST",
            &format!("/v2/dst/blobs/uploads/?mount={other}&from=src"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn manifests_by_tag_and_digest_with_headers_and_deletes() {
    let t = T::new().await;
    let c = t.push_blob("team/app", b"{}").await;
    let l = t.push_blob("team/app", b"layer").await;
    let m = manifest(&c, 2, &[(&l, 5)]);
    let md = Digest::of(&m);
    let r = t.req("PUT", "/v2/team/app/manifests/v1", &[MT], &m).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.h("docker-content-digest"), md.as_str());
    assert_eq!(r.h("location"), format!("/v2/team/app/manifests/{md}"));
    for reference in ["v1", md.as_str()] {
        let r = t
            .req(
                "GET",
                &format!("/v2/team/app/manifests/{reference}"),
                &[],
                b"",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], &m[..]);
        assert_eq!(r.h("content-type"), oci::manifest::OCI_MANIFEST);
        assert_eq!(r.h("docker-content-digest"), md.as_str());
        let r = t
            .req(
                "HEAD",
                &format!("/v2/team/app/manifests/{reference}"),
                &[],
                b"",
            )
            .await;
        assert_eq!(
            (r.status, r.h("content-length")),
            (StatusCode::OK, m.len().to_string().as_str())
        );
    }
    // A layer is not a manifest.
    let r = t
        .req("GET", &format!("/v2/team/app/manifests/{l}"), &[], b"")
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
    );
    // Delete the tag: the manifest stays by digest; delete the manifest: it is gone.
    assert_eq!(
        t.req("DELETE", "/v2/team/app/manifests/v1", &[], b"")
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        t.req("GET", "/v2/team/app/manifests/v1", &[], b"")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    t.req("PUT", "/v2/team/app/manifests/v1", &[MT], &m).await;
    let r = t
        .req("DELETE", &format!("/v2/team/app/manifests/{md}"), &[], b"")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    for reference in ["v1", md.as_str()] {
        let r = t
            .req(
                "GET",
                &format!("/v2/team/app/manifests/{reference}"),
                &[],
                b"",
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{reference}");
    }
    assert_eq!(
        t.req("DELETE", &format!("/v2/team/app/manifests/{md}"), &[], b"")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn manifest_refused_when_invalid_unverified_or_too_big() {
    let t = T::new().await;
    let c = t.push_blob("a", b"{}").await;
    let missing = Digest::of(b"never pushed");
    let m = manifest(&c, 2, &[(&missing, 12)]);
    let r = t.req("PUT", "/v2/a/manifests/v1", &[MT], &m).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
    );
    let m = manifest(&c, 2, &[]);
    let wrong = Digest::of(b"not this manifest");
    let r = t
        .req("PUT", &format!("/v2/a/manifests/{wrong}"), &[MT], &m)
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    let r = t
        .req("PUT", "/v2/a/manifests/v1", &[MT], b"{not json")
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_INVALID")
    );
    let r = t
        .req(
            "PUT",
            "/v2/a/manifests/v1",
            &[("content-type", oci::manifest::OCI_INDEX)],
            &m,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "Content-Type and mediaType disagree"
    );
    let huge = vec![b' '; MAX_MANIFEST_BYTES + 1];
    let r = t.req("PUT", "/v2/a/manifests/v1", &[MT], &huge).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A non-distributable layer is never pushed: its absence is no error.
    let foreign = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": oci::manifest::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                    "digest": missing, "size": 12, "urls": ["https://example.invalid/l"]}],
    }))
    .unwrap();
    let r = t.req("PUT", "/v2/b/manifests/v1", &[MT], &foreign).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    t.req(
        "DELETE",
        &format!("/v2/b/manifests/{}", Digest::of(&foreign)),
        &[],
        b"",
    )
    .await;
    let r = t.req("PUT", "/v2/a/manifests/bad:tag!", &[MT], &m).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(t.store_tags("a").await, Vec::<String>::new());
    // Only the two pushed blobs: nothing of the refused manifests was stored.
    assert_eq!(t.blob_files(), [format!("sha256/{}", c.hex())]);
}

impl T {
    async fn store_tags(&self, repo: &str) -> Vec<String> {
        self.reg.store().tags(repo).await.unwrap()
    }
}

#[tokio::test]
async fn path_traversal_repository_names_are_refused() {
    let t = T::new().await;
    for path in [
        "/v2/a/%2e%2e/%2e%2e/etc/manifests/latest",
        "/v2/../../etc/tags/list",
        "/v2/A/tags/list",
        "/v2/a//b/tags/list",
    ] {
        let r = t.req("GET", path, &[], b"").await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "NAME_INVALID"),
            "{path}"
        );
    }
    let r = t.req("GET", "/v2/a%2Fb/tags/list", &[], b"").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sha512_blobs_and_manifests() {
    let t = T::new().await;
    let data = b"sha512 layer";
    let d = Digest::sha512_of(data);
    let r = t
        .req(
            "POST",
            &format!("/v2/a/blobs/uploads/?digest={d}"),
            &[],
            data,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // Chunked, verified at the end against sha512.
    let loc = t
        .req("POST", "/v2/a/blobs/uploads/", &[], b"")
        .await
        .h("location")
        .to_string();
    t.req("PATCH", &loc, &[], b"sha512 ").await;
    let r = t
        .req("PUT", &format!("{loc}?digest={d}"), &[], b"layer")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = t.req("GET", &format!("/v2/a/blobs/{d}"), &[], b"").await;
    assert_eq!(&r.body[..], data);
    let c = t.push_blob("a", b"{}").await;
    let m = manifest(&c, 2, &[(&d, data.len())]);
    let md = Digest::sha512_of(&m);
    let r = t
        .req("PUT", &format!("/v2/a/manifests/{md}"), &[MT], &m)
        .await;
    assert_eq!(
        (r.status, r.h("docker-content-digest")),
        (StatusCode::CREATED, md.as_str())
    );
    let r = t
        .req("GET", &format!("/v2/a/manifests/{md}"), &[], b"")
        .await;
    assert_eq!(&r.body[..], &m[..]);
}

#[tokio::test]
async fn referrers_list_by_subject_with_artifact_type_filter_and_oci_subject() {
    let t = T::new().await;
    let c = t.push_blob("a", b"{}").await;
    let subject = manifest(&c, 2, &[]);
    t.req("PUT", "/v2/a/manifests/v1", &[MT], &subject).await;
    let sd = Digest::of(&subject);
    let mut digests = Vec::new();
    for (i, at) in ["application/vnd.sig", "application/vnd.sbom"]
        .iter()
        .enumerate()
    {
        let m = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": oci::manifest::OCI_MANIFEST,
            "artifactType": at,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": c, "size": 2},
            "layers": [],
            "subject": {"mediaType": oci::manifest::OCI_MANIFEST, "digest": sd, "size": subject.len()},
            "annotations": {"n": i.to_string()},
        }))
        .unwrap();
        let md = Digest::of(&m);
        let r = t
            .req("PUT", &format!("/v2/a/manifests/{md}"), &[MT], &m)
            .await;
        assert_eq!(
            (r.status, r.h("oci-subject")),
            (StatusCode::CREATED, sd.as_str())
        );
        digests.push(md);
    }
    let r = t
        .req("GET", &format!("/v2/a/referrers/{sd}"), &[], b"")
        .await;
    assert_eq!((r.status, r.h("content-type")), (StatusCode::OK, OCI_INDEX));
    let v = r.json();
    let got: Vec<&str> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(got.len(), 2, "{v}");
    assert!(digests.iter().all(|d| got.contains(&d.as_str())));
    let r = t
        .req(
            "GET",
            &format!("/v2/a/referrers/{sd}?artifactType=application/vnd.sbom"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.h("oci-filters-applied"), "artifactType");
    let v = r.json();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["artifactType"], "application/vnd.sbom");
    assert_eq!(v["manifests"][0]["annotations"]["n"], "1");
    // No referrers: 200 and an empty index.
    let r = t
        .req("GET", &format!("/v2/a/referrers/{c}"), &[], b"")
        .await;
    assert_eq!(
        (r.status, r.json()["manifests"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
}

#[tokio::test]
async fn tags_and_catalog_paginate_with_link() {
    let t = T::new().await;
    let c = t.push_blob("r", b"{}").await;
    let m = manifest(&c, 2, &[]);
    for repo in ["r", "s", "t/u"] {
        for tag in ["a", "b", "c"] {
            let r = t
                .req("PUT", &format!("/v2/{repo}/manifests/{tag}"), &[MT], &m)
                .await;
            assert_eq!(r.status, StatusCode::CREATED);
        }
    }
    let r = t.req("GET", "/v2/r/tags/list", &[], b"").await;
    assert_eq!(
        r.json(),
        serde_json::json!({"name": "r", "tags": ["a", "b", "c"]})
    );
    let r = t.req("GET", "/v2/r/tags/list?n=2", &[], b"").await;
    assert_eq!(r.json()["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(r.h("link"), "</v2/r/tags/list?n=2&last=b>; rel=\"next\"");
    let r = t.req("GET", "/v2/r/tags/list?n=2&last=b", &[], b"").await;
    assert_eq!(
        (r.json()["tags"].clone(), r.h("link")),
        (serde_json::json!(["c"]), "")
    );
    let r = t.req("GET", "/v2/r/tags/list?n=0", &[], b"").await;
    assert_eq!(r.json()["tags"], serde_json::json!([]));
    let r = t.req("GET", "/v2/nothing/tags/list", &[], b"").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN")
    );
    let r = t.req("GET", "/v2/_catalog?n=2", &[], b"").await;
    assert_eq!(r.json()["repositories"], serde_json::json!(["r", "s"]));
    assert_eq!(r.h("link"), "</v2/_catalog?n=2&last=s>; rel=\"next\"");
    let r = t.req("GET", "/v2/_catalog?n=2&last=s", &[], b"").await;
    assert_eq!(r.json()["repositories"], serde_json::json!(["t/u"]));
    let r = t.req("GET", "/v2/r/tags/list?n=x", &[], b"").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn read_only_registry_refuses_every_write_with_405() {
    let t = T::new().await;
    let c = t.push_blob("a", b"{}").await;
    let m = manifest(&c, 2, &[]);
    t.req("PUT", "/v2/a/manifests/v1", &[MT], &m).await;
    let before = t.blob_files();
    let ro = T {
        reg: Arc::new(Registry::new(Layout::open(t.dir.path()).await.unwrap()).read_only(true)),
        dir: tempfile::tempdir().unwrap(),
    };
    let md = Digest::of(&m);
    for (method, path) in [
        ("POST", "/v2/a/blobs/uploads/".to_string()),
        ("POST", format!("/v2/a/blobs/uploads/?digest={c}")),
        ("PUT", "/v2/a/manifests/v2".to_string()),
        ("DELETE", format!("/v2/a/manifests/{md}")),
        ("DELETE", "/v2/a/manifests/v1".to_string()),
        ("DELETE", format!("/v2/a/blobs/{c}")),
        ("PATCH", "/v2/a/blobs/uploads/x".to_string()),
    ] {
        let r = ro.req(method, &path, &[MT], &m).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
            "{method} {path}"
        );
    }
    let r = ro.req("GET", "/v2/a/manifests/v1", &[], b"").await;
    assert_eq!(&r.body[..], &m[..]);
    assert_eq!(t.blob_files(), before);
}

#[tokio::test]
async fn layout_written_by_pack_is_served_in_place_with_index_children() {
    // A layout as `pack` writes it: an index named by full reference; its child manifest is
    // in no `index.json` entry, and is served by digest all the same.
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).await.unwrap();
    let c = layout.put_blob_bytes(b"{}").await.unwrap();
    let child = manifest(&c, 2, &[]);
    let cd = layout.put_blob_bytes(&child).await.unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": oci::manifest::OCI_MANIFEST, "digest": cd, "size": child.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    .unwrap();
    let id = layout.put_blob_bytes(&index).await.unwrap();
    let desc = Descriptor {
        media_type: OCI_INDEX.into(),
        digest: id.clone(),
        size: index.len() as u64,
        platform: None,
        annotations: None,
        artifact_type: None,
    };
    layout
        .add_to_index(Some("registry.example/team/app:1.0"), desc)
        .await
        .unwrap();
    let t = T {
        reg: Arc::new(Registry::new(Layout::open(dir.path()).await.unwrap()).read_only(true)),
        dir,
    };
    let r = t.req("GET", "/v2/team/app/manifests/1.0", &[], b"").await;
    assert_eq!((r.status, r.h("content-type")), (StatusCode::OK, OCI_INDEX));
    let r = t
        .req("GET", &format!("/v2/team/app/manifests/{cd}"), &[], b"")
        .await;
    assert_eq!(
        (r.status, r.h("content-type")),
        (StatusCode::OK, oci::manifest::OCI_MANIFEST)
    );
    let r = t.req("GET", "/v2/_catalog", &[], b"").await;
    assert_eq!(r.json()["repositories"], serde_json::json!(["team/app"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_of_one_blob_store_it_once_and_whole() {
    let t = Arc::new(T::new().await);
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let d = Digest::of(&data);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (t, data, d) = (t.clone(), data.clone(), d.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                t.req(
                    "POST",
                    &format!("/v2/r{i}/blobs/uploads/?digest={d}"),
                    &[],
                    &data,
                )
                .await
                .status
            } else {
                let loc = t
                    .req("POST", &format!("/v2/r{i}/blobs/uploads/"), &[], b"")
                    .await
                    .h("location")
                    .to_string();
                t.req("PATCH", &loc, &[], &data[..1_000_000]).await;
                t.req("PUT", &format!("{loc}?digest={d}"), &[], &data[1_000_000..])
                    .await
                    .status
            }
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
    assert_eq!(t.blob_files(), [format!("sha256/{}", d.hex())]);
    let r = t.req("GET", &format!("/v2/r0/blobs/{d}"), &[], b"").await;
    assert_eq!(Digest::of(&r.body), d);
}

#[tokio::test]
async fn archive_store_write_is_405_unsupported_not_500() {
    // A registry not marked read-only over a store that cannot be written (a `.tar` served in
    // place): the store's refusal must reach the client as the spec's 405, not a server error.
    let t = T::new().await;
    let c = t.push_blob("a", b"{}").await;
    let m = manifest(&c, 2, &[]);
    t.req("PUT", "/v2/a/manifests/v1", &[MT], &m).await;
    let tar = t.dir.path().join("bundle.tar");
    oci_store::write_archive(
        &Layout::open(t.dir.path()).await.unwrap(),
        &tar,
        oci_store::Compression::None,
    )
    .await
    .unwrap();
    let archive = oci_store::TarArchive::open(&tar).unwrap();
    let reg = Arc::new(Registry::new(archive));
    let send = |method: &str, uri: String, body: &[u8]| {
        let req = HttpRequest::builder()
            .method(method)
            .uri(uri)
            .header("content-type", oci::manifest::OCI_MANIFEST)
            .body(Body::from(body.to_vec()))
            .unwrap();
        app(reg.clone()).oneshot(req)
    };
    let d = Digest::of(b"new");
    for (method, uri, body) in [
        (
            "POST",
            format!("/v2/a/blobs/uploads/?digest={d}"),
            &b"new"[..],
        ),
        ("PUT", "/v2/a/manifests/v2".to_string(), &m[..]),
        ("DELETE", format!("/v2/a/blobs/{c}"), &b""[..]),
    ] {
        let resp = send(method, uri.clone(), body).await.unwrap();
        let status = resp.status();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert!(String::from_utf8_lossy(&body).contains("UNSUPPORTED"));
    }
}
