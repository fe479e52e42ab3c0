//! A layout's `index.json` and the manifests under it, from hostile bytes: parsing and walking
//! (size caps, declared sizes, index depth, repeated children) must return a result — never
//! panic, recurse without bound or read a manifest twice.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use oci::manifest::{IndexDocument, walk};
use oci::{Digest, Error};

// Input: `index.json`, then blobs, separated by 0xff (a byte JSON text never holds). A
// descriptor's digest picks a blob by its first hex digits — the fuzzer cannot forge sha256,
// and the walker trusts `fetch` to verify digests as `Layout::read_blob` does — so every shape
// of nesting, sharing and even cycles is reachable.
fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xff);
    let Some(index_json) = parts.next() else {
        return;
    };
    let blobs: Vec<&[u8]> = parts.collect();
    let Ok(index) = IndexDocument::parse("index.json", index_json) else {
        return;
    };
    for root in index.manifests.iter().take(16) {
        let mut reads = HashSet::new();
        let mut fetch = |d: &oci::Descriptor| -> Result<Vec<u8>, Error> {
            assert!(reads.insert(d.digest.clone()), "{} read twice", d.digest);
            if blobs.is_empty() {
                return Err(Error::BlobNotFound {
                    repository: "fuzz".into(),
                    digest: d.digest.clone(),
                });
            }
            let pick = usize::from_str_radix(&d.digest.hex()[..4], 16).unwrap_or(0);
            let blob = blobs[pick % blobs.len()];
            // Layout::read_blob's contract: exactly the declared size.
            if blob.len() as u64 != d.size {
                return Err(Error::SizeMismatch {
                    url: "fuzz".into(),
                    digest: d.digest.clone(),
                    expected: d.size,
                    actual: blob.len() as u64,
                });
            }
            Ok(blob.to_vec())
        };
        if let Ok(w) = walk("fuzz", root, &mut fetch) {
            let unique: HashSet<&Digest> = w.manifests.iter().collect();
            assert_eq!(unique.len(), w.manifests.len(), "a manifest listed twice");
        }
    }
});
