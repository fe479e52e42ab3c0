//! What a registry sends back, as the client parses it: `WWW-Authenticate` challenges, token
//! endpoint answers, distribution error bodies, `Retry-After`, manifests and indexes (with each
//! media type the client may be told). Nothing may panic; messages built from a response never
//! quote it (token answers hold secrets) and stay one short line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_client::auth::{Challenge, parse_challenge, parse_token_response};
use oci_client::{parse_error_detail, parse_retry_after};
use oci::manifest::{MANIFEST_MEDIA_TYPES, Parsed};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Some(Challenge::Bearer { realm, .. }) = parse_challenge(&text) {
        // Only a realm parameter yields a bearer challenge.
        assert!(text.to_ascii_lowercase().contains("realm") || realm.is_empty());
    }
    let _ = parse_retry_after(&text);

    match parse_token_response(data) {
        Ok(grant) => assert!(!grant.token.is_empty()),
        Err(e) => assert!(!e.contains('"') && !e.contains('\n'), "{e}"),
    }

    if let Some(detail) = parse_error_detail(data) {
        assert!(detail.len() <= 300 + '…'.len_utf8(), "{}", detail.len());
        assert!(!detail.chars().any(char::is_control), "{detail:?}");
    }

    for media_type in std::iter::once("").chain(MANIFEST_MEDIA_TYPES) {
        if let Ok((mt, _)) = Parsed::parse("fuzz/image:1", media_type, data) {
            assert!(oci::manifest::is_index(&mt) || oci::manifest::is_manifest(&mt), "{mt}");
        }
    }
});
