use super::*;

const SHA256: &str = "sha256:c523c636b722339f41b6a431b44588ab2f762c5de5ec3bd7964420ff982fb1d9";

fn parse(s: &str) -> Reference {
    Reference::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn fail(s: &str) -> ParseError {
    match Reference::parse(s) {
        Ok(r) => panic!("{s:?} should not parse, got {r:?}"),
        Err(e) => e,
    }
}

/// (domain, path, tag, digest) as written.
fn parts(r: &Reference) -> (Option<&str>, &str, Option<&str>, Option<&str>) {
    (r.domain(), r.path(), r.tag(), r.digest())
}

#[test]
fn docker_hub_short_forms_normalise_to_one_name() {
    for s in [
        "nginx",
        "library/nginx",
        "docker.io/library/nginx",
        "index.docker.io/library/nginx",
    ] {
        let r = parse(s);
        assert_eq!(r.as_str(), s);
        assert_eq!(r.to_string(), s);
        assert_eq!(r.registry(), "docker.io", "{s}");
        assert_eq!(r.repository(), "library/nginx", "{s}");
        assert_eq!(r.name(), "docker.io/library/nginx", "{s}");
        assert_eq!(
            r.normalized().as_str(),
            "docker.io/library/nginx:latest",
            "{s}"
        );
        assert!(!r.is_normalized(), "{s}");
        assert!(r.normalized().is_normalized(), "{s}");
    }
    assert_eq!(parse("docker.io/nginx").repository(), "library/nginx");
    assert_eq!(
        parse("index.docker.io/nginx:1").normalized().as_str(),
        "docker.io/library/nginx:1"
    );
}

#[test]
fn docker_hub_user_repositories_get_no_library_prefix() {
    let r = parse("jenkins/inbound-agent:3385.vf1123fb_515da_-1");
    assert_eq!(
        parts(&r),
        (
            None,
            "jenkins/inbound-agent",
            Some("3385.vf1123fb_515da_-1"),
            None
        )
    );
    assert_eq!(r.name(), "docker.io/jenkins/inbound-agent");
    assert_eq!(
        r.normalized().as_str(),
        "docker.io/jenkins/inbound-agent:3385.vf1123fb_515da_-1"
    );
}

#[test]
fn normalized_parts_are_the_normalised_view() {
    let n = parse("nginx").normalized();
    assert_eq!(
        parts(&n),
        (Some("docker.io"), "library/nginx", Some("latest"), None)
    );
    let n = parse(&format!("busybox:1@{SHA256}")).normalized();
    assert_eq!(
        parts(&n),
        (
            Some("docker.io"),
            "library/busybox",
            Some("1"),
            Some(SHA256)
        )
    );
    assert_eq!(n.normalized(), n);
}

#[test]
fn localhost_is_a_host() {
    let r = parse("localhost/x");
    assert_eq!(parts(&r), (Some("localhost"), "x", None, None));
    assert_eq!(r.registry(), "localhost");
    assert_eq!(r.repository(), "x");
    assert_eq!(r.normalized().as_str(), "localhost/x:latest");

    let r = parse("localhost:5000/x");
    assert_eq!(parts(&r), (Some("localhost:5000"), "x", None, None));
    assert_eq!(r.name(), "localhost:5000/x");

    // Without a '/', `localhost` is just a repository name.
    let r = parse("localhost");
    assert_eq!(parts(&r), (None, "localhost", None, None));
    assert_eq!(r.name(), "docker.io/library/localhost");
}

#[test]
fn colon_without_slash_is_a_tag() {
    let r = parse("x:5000");
    assert_eq!(parts(&r), (None, "x", Some("5000"), None));
    let r = parse("host:5000/x");
    assert_eq!(parts(&r), (Some("host:5000"), "x", None, None));
}

#[test]
fn host_port_tag_and_digest() {
    let s = format!("host:5000/x:tag@{SHA256}");
    let r = parse(&s);
    assert_eq!(
        parts(&r),
        (Some("host:5000"), "x", Some("tag"), Some(SHA256))
    );
    assert_eq!(r.to_string(), s);
    assert!(r.is_normalized());
    assert_eq!(r.normalized(), r);
}

#[test]
fn digest_only_stays_digest_only() {
    let s = format!("nginx@{SHA256}");
    let r = parse(&s);
    assert_eq!(parts(&r), (None, "nginx", None, Some(SHA256)));
    let n = r.normalized();
    assert_eq!(n.as_str(), format!("docker.io/library/nginx@{SHA256}"));
    assert_eq!(n.tag(), None);
    assert!(n.is_normalized());
}

#[test]
fn sha512_digest() {
    let digest = format!("sha512:{}", "ab".repeat(64));
    let r = parse(&format!("quay.io/org/app@{digest}"));
    assert_eq!(r.digest(), Some(digest.as_str()));
    assert_eq!(r.registry(), "quay.io");
}

#[test]
fn other_digest_algorithms_need_128_bits() {
    let r = parse(&format!("app@sha3-256+x.y:{}", "A".repeat(32)));
    assert_eq!(
        r.digest().map(|d| d.len()),
        Some("sha3-256+x.y:".len() + 32)
    );
    let e = fail(&format!("app@blake3:{}", "a".repeat(31)));
    assert_eq!(
        e.kind,
        ParseErrorKind::DigestTooShort {
            algorithm: "blake3".into(),
            minimum: 32,
            actual: 31
        }
    );
    assert_eq!(e.found, None);
}

#[test]
fn digest_of_wrong_length() {
    let short = format!("nginx@sha256:{}", "a".repeat(63));
    let e = fail(&short);
    assert_eq!(
        e.kind,
        ParseErrorKind::DigestLength {
            algorithm: "sha256".into(),
            expected: 64,
            actual: 63
        }
    );
    assert_eq!((e.position, e.found), (short.len(), None));
    assert!(
        e.to_string()
            .contains("a sha256 digest has 64 hex digits, this one has 63"),
        "{e}"
    );

    let long = format!("nginx@sha256:{}", "a".repeat(65));
    let e = fail(&long);
    assert_eq!(
        e.kind,
        ParseErrorKind::DigestLength {
            algorithm: "sha256".into(),
            expected: 64,
            actual: 65
        }
    );
    assert_eq!(
        (e.position, e.found),
        ("nginx@sha256:".len() + 64, Some('a'))
    );

    let e = fail(&format!("nginx@sha512:{}", "a".repeat(64)));
    assert!(matches!(
        e.kind,
        ParseErrorKind::DigestLength {
            expected: 128,
            actual: 64,
            ..
        }
    ));
}

#[test]
fn digest_hex_of_known_algorithms_is_lower_case() {
    let s = format!("nginx@sha256:{}", SHA256[7..].to_uppercase());
    let e = fail(&s);
    assert_eq!(e.kind, ParseErrorKind::InvalidDigest);
    assert_eq!((e.position, e.found), (13, Some('C')));
    assert!(
        e.to_string().contains("sha256 digests are lower-case hex"),
        "{e}"
    );
}

#[test]
fn digest_syntax_errors() {
    let e = fail("nginx@sha256");
    assert_eq!(
        e.kind,
        ParseErrorKind::UnexpectedEnd {
            expected: Part::DigestAlgorithm
        }
    );
    let e = fail("nginx@sha256:");
    assert_eq!(
        e.kind,
        ParseErrorKind::UnexpectedEnd {
            expected: Part::DigestHex
        }
    );
    let e = fail("nginx@SHA256:abc");
    assert_eq!((e.kind, e.position), (ParseErrorKind::InvalidDigest, 6));
    // A '/' after '@' belongs to the digest, not to a host.
    let e = fail("nginx@sha256:abc/def");
    assert_eq!(
        (e.kind, e.position, e.found),
        (ParseErrorKind::InvalidDigest, 16, Some('/'))
    );
}

#[test]
fn uppercase_path_names_the_character() {
    let e = fail("ngInx:1");
    assert_eq!(e.kind, ParseErrorKind::UppercasePath);
    assert_eq!((e.position, e.found), (2, Some('I')));
    assert_eq!(
        e.to_string(),
        r#"invalid image reference "ngInx:1": upper-case 'I' at column 3 (repository names are lower case)"#
    );
    let e = fail("quay.io/org/My-app");
    assert_eq!(
        (e.kind, e.position, e.found),
        (ParseErrorKind::UppercasePath, 12, Some('M'))
    );
}

#[test]
fn uppercase_first_segment_is_a_host() {
    // As in distribution: a path cannot have upper case, so such a first segment is a host.
    let r = parse("MyRegistry/app");
    assert_eq!(parts(&r), (Some("MyRegistry"), "app", None, None));
    let e = fail("My_Registry/app");
    assert_eq!(
        (e.kind.clone(), e.position),
        (ParseErrorKind::InvalidHost, 2)
    );
    assert!(e.to_string().contains("upper-case"), "{e}");
}

#[test]
fn positions_count_characters_not_bytes() {
    let e = fail("ééé/x");
    assert_eq!((e.position, e.found), (0, Some('é')));
    let e = fail("nginx:1é");
    assert_eq!(
        (e.kind, e.position, e.found),
        (ParseErrorKind::InvalidTag, 7, Some('é'))
    );
    let e = fail("quay.io/ä");
    assert_eq!((e.position, e.found), (8, Some('ä')));
}

#[test]
fn tag_too_long() {
    let ok = format!("nginx:{}", "a".repeat(128));
    assert_eq!(parse(&ok).tag().map(str::len), Some(128));
    let e = fail(&format!("nginx:{}", "a".repeat(130)));
    assert_eq!(e.kind, ParseErrorKind::TagTooLong { length: 130 });
    assert_eq!((e.position, e.found), (6 + 128, Some('a')));
    assert!(e.to_string().contains("over the limit of 128"), "{e}");
}

#[test]
fn tag_syntax_errors() {
    let e = fail("nginx:");
    assert_eq!(
        e.kind,
        ParseErrorKind::UnexpectedEnd {
            expected: Part::Tag
        }
    );
    let e = fail("nginx:.1");
    assert_eq!((e.kind, e.position), (ParseErrorKind::InvalidTag, 6));
    let e = fail("nginx:1:2");
    assert_eq!(
        (e.kind, e.position, e.found),
        (ParseErrorKind::InvalidTag, 7, Some(':'))
    );
    let e = fail(&format!("nginx:@{SHA256}"));
    assert!(e.to_string().contains("empty tag"), "{e}");
    assert_eq!(parse("nginx:_x-Y.z").tag(), Some("_x-Y.z"));
}

#[test]
fn real_world_references() {
    let r = parse(&format!("mirror.gcr.io/bash:5.1.4@{SHA256}"));
    assert_eq!(
        parts(&r),
        (Some("mirror.gcr.io"), "bash", Some("5.1.4"), Some(SHA256))
    );
    // Only docker.io gets `library/`.
    assert_eq!(r.name(), "mirror.gcr.io/bash");
    assert!(r.is_normalized());

    let r = parse("dockerhubmirror.azurecr.io/jenkinsciinfra/jenkins-agent-ubuntu-22.04:2.127.0");
    assert_eq!(
        parts(&r),
        (
            Some("dockerhubmirror.azurecr.io"),
            "jenkinsciinfra/jenkins-agent-ubuntu-22.04",
            Some("2.127.0"),
            None
        )
    );
    let r = parse("registry.k8s.io/ingress-nginx/controller:v1.10.0");
    assert_eq!(r.repository(), "ingress-nginx/controller");
    let r = parse("10.0.0.1:5000/team/app__x--y.z:1");
    assert_eq!(
        parts(&r),
        (Some("10.0.0.1:5000"), "team/app__x--y.z", Some("1"), None)
    );
}

#[test]
fn ipv6_hosts() {
    let r = parse("[::1]:5000/x:1");
    assert_eq!(parts(&r), (Some("[::1]:5000"), "x", Some("1"), None));
    let r = parse("[fe80::1:AbCd]/team/x");
    assert_eq!(parts(&r), (Some("[fe80::1:AbCd]"), "team/x", None, None));
    assert_eq!(r.normalized().as_str(), "[fe80::1:AbCd]/team/x:latest");
    // Only a host can start with '[', so it needs no ':' to be read as one.
    assert_eq!(parse("[a]/x").domain(), Some("[a]"));

    let e = fail("[::g]/x");
    assert_eq!(
        (e.kind.clone(), e.position, e.found),
        (ParseErrorKind::InvalidHost, 3, Some('g'))
    );
    assert!(e.to_string().contains("IPv6"), "{e}");
    assert_eq!(fail("[]:5000/x").position, 1);
    assert_eq!(fail("[::1/x").kind, ParseErrorKind::InvalidHost);
}

#[test]
fn host_errors() {
    let e = fail("my_host.com/x");
    assert_eq!(
        (e.kind, e.position, e.found),
        (ParseErrorKind::InvalidHost, 2, Some('_'))
    );
    let e = fail("-a.com/x");
    assert_eq!(
        (e.kind.clone(), e.position),
        (ParseErrorKind::InvalidHost, 0)
    );
    assert!(e.to_string().contains("cannot start with '-'"), "{e}");
    let e = fail("a-.com/x");
    assert_eq!(
        (e.kind.clone(), e.position, e.found),
        (ParseErrorKind::InvalidHost, 1, Some('-'))
    );
    assert!(e.to_string().contains("cannot end with '-'"), "{e}");
    let e = fail("a..com/x");
    assert_eq!(
        (e.kind.clone(), e.position),
        (ParseErrorKind::InvalidHost, 2)
    );
    assert!(e.to_string().contains("empty host name part"), "{e}");
    let e = fail("host:/x");
    assert_eq!(
        (e.kind, e.position, e.found),
        (ParseErrorKind::InvalidPort, 5, Some('/'))
    );
    let e = fail("host:50a0/x");
    assert_eq!(
        (e.kind, e.position, e.found),
        (ParseErrorKind::InvalidPort, 7, Some('a'))
    );
    assert!(
        fail("nginx:1.0/x")
            .to_string()
            .contains("port is digits only")
    );
}

#[test]
fn path_errors() {
    let cases: &[(&str, usize, Option<char>, &str)] = &[
        ("foo//bar", 4, Some('/'), "empty path component"),
        ("/foo", 0, Some('/'), "cannot start with '/'"),
        ("foo/", 4, None, "a path component after '/'"),
        ("quay.io/", 8, None, "a path component after '/'"),
        ("foo..bar", 4, Some('.'), "separators are one '.'"),
        ("foo___bar", 5, Some('_'), "separators are one '.'"),
        ("foo.-bar", 4, Some('-'), "separators are one '.'"),
        ("foo-", 4, None, "ends with separator '-'"),
        (
            "foo-:1",
            4,
            Some(':'),
            "must be followed by a lower-case letter or digit",
        ),
        (
            "foo/.bar",
            4,
            Some('.'),
            "start with a lower-case letter or digit",
        ),
        (":1", 0, Some(':'), "no repository name before ':'"),
        ("a/@sha256:x", 2, Some('@'), "no repository name before '@'"),
        (" nginx", 0, Some(' '), "repository paths allow only"),
        ("nginx ", 5, Some(' '), "repository paths allow only"),
        ("foo/b!r", 5, Some('!'), "repository paths allow only"),
    ];
    for &(s, position, found, hint) in cases {
        let e = fail(s);
        assert_eq!((e.position, e.found), (position, found), "{s}: {e}");
        assert!(e.to_string().contains(hint), "{s}: {e}");
    }
    assert_eq!(fail("").kind, ParseErrorKind::Empty);
    assert_eq!(
        fail("").to_string(),
        r#"invalid image reference "": the reference is empty"#
    );
}

#[test]
fn separators_between_components() {
    for s in ["a.b", "a_b", "a__b", "a-b", "a---b", "a/b.c_d__e-f"] {
        assert_eq!(parse(s).path(), s);
    }
}

#[test]
fn name_length_counts_the_normalised_name() {
    // 255 characters including the implicit `docker.io/library/`.
    let max = "a".repeat(255 - "docker.io/library/".len());
    assert_eq!(parse(&max).name().len(), 255);
    let e = fail(&format!("{max}a"));
    assert_eq!(e.kind, ParseErrorKind::NameTooLong { length: 256 });
    assert_eq!((e.position, e.found), (max.len(), Some('a')));

    let host = format!("r.io/{}", "b".repeat(250));
    assert_eq!(parse(&host).name().len(), 255);
    let e = fail(&format!("{host}b:1"));
    assert_eq!(
        (e.kind, e.position),
        (ParseErrorKind::NameTooLong { length: 256 }, 255)
    );

    // `index.docker.io/` is shortened, so the written name may be longer than 255.
    let legacy = format!("index.docker.io/u/{}", "c".repeat(243));
    assert!(legacy.len() > 255);
    assert_eq!(parse(&legacy).normalized().name().len(), 255);
}

#[test]
fn hex_only_names_read_as_image_ids() {
    let id = &SHA256[7..];
    let e = fail(id);
    assert_eq!((e.kind, e.position), (ParseErrorKind::HexOnlyName, 0));
    assert_eq!(parse(&format!("{id}:1")).path(), id);
    assert_eq!(parse(&format!("u/{id}")).path(), format!("u/{id}"));
}

#[test]
fn with_name_keeps_tag_and_digest() {
    let r = parse(&format!(
        "jenkins/inbound-agent:3355.v388858a_47b_33-3@{SHA256}"
    ));
    let m = r
        .with_name("registry.local:5000/mirror/jenkins/inbound-agent")
        .unwrap();
    assert_eq!(
        m.as_str(),
        format!("registry.local:5000/mirror/jenkins/inbound-agent:3355.v388858a_47b_33-3@{SHA256}")
    );
    assert_eq!(m.domain(), Some("registry.local:5000"));
    assert_eq!(m.path(), "mirror/jenkins/inbound-agent");
    assert_eq!(m.tag(), r.tag());
    assert_eq!(m.digest(), r.digest());
    assert_eq!(Reference::parse(m.as_str()).unwrap(), m);

    let plain = parse("nginx")
        .with_name("mirror.local/library/nginx")
        .unwrap();
    assert_eq!(
        parts(&plain),
        (Some("mirror.local"), "library/nginx", None, None)
    );

    let e = r.with_name("mirror.local/nginx:1").unwrap_err();
    assert_eq!(
        (e.kind, e.position, e.found),
        (ParseErrorKind::NotAName, 18, Some(':'))
    );
    assert_eq!(
        r.with_name("Bad Host/x").unwrap_err().kind,
        ParseErrorKind::InvalidHost
    );
}

#[test]
fn from_str_and_display_round_trip() {
    let r: Reference = "quay.io/prometheus/node-exporter:v1.8.2".parse().unwrap();
    assert_eq!(format!("{r}"), "quay.io/prometheus/node-exporter:v1.8.2");
    assert!("Nope".parse::<Reference>().is_err());
}

#[test]
fn pull_and_push_addresses_follow_one_written_rule() {
    let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let both = parse(&format!("r.io/a/b:1.2@{d}"));
    assert_eq!(both.pull_address(), d);
    assert_eq!(both.push_address(), "1.2");
    let digest_only = parse(&format!("r.io/a/b@{d}"));
    assert_eq!(digest_only.pull_address(), d);
    assert_eq!(digest_only.push_address(), d);
    let tag_only = parse("r.io/a/b:1.2");
    assert_eq!(tag_only.pull_address(), "1.2");
    assert_eq!(tag_only.push_address(), "1.2");
    let bare = parse("nginx");
    assert_eq!(bare.pull_address(), DEFAULT_TAG);
    assert_eq!(bare.push_address(), DEFAULT_TAG);
}
