//! Content digests (`sha256:<64 hex>`, `sha512:<128 hex>`) and the streaming hasher that
//! verifies bytes as they pass.
//!
//! Everything airlock stores or sends is addressed by digest, and a digest is only ever trusted
//! after the bytes it names have been hashed here: a blob is verified while it streams, never
//! after being buffered whole.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// A string that is not a `sha256:<64 hex>` or `sha512:<128 hex>` digest. Its own type so that this module needs
/// nothing from [`crate::error`] (which names digests); it converts into
/// [`Error::InvalidDigest`](crate::Error::InvalidDigest).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {digest:?} (only sha256:<64 hex> and sha512:<128 hex> are supported)")]
pub struct InvalidDigest {
    /// The text that failed to parse.
    pub digest: String,
}

/// A validated `sha256:<64 lower-case hex>` or `sha512:<128 lower-case hex>` digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<hex>` or `sha512:<hex>`; other algorithms are refused because they could
    /// not be verified.
    pub fn parse(s: &str) -> Result<Digest, InvalidDigest> {
        let invalid = || InvalidDigest {
            digest: s.to_string(),
        };
        let (hex, len) = match s.split_once(':') {
            Some(("sha256", hex)) => (hex, 64),
            Some(("sha512", hex)) => (hex, 128),
            _ => return Err(invalid()),
        };
        if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid());
        }
        Ok(Digest(s.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(bytes);
        h.finish()
    }

    /// `sha512:<hex>` of `bytes`.
    pub fn sha512_of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::sha512();
        h.update(bytes);
        h.finish()
    }

    /// `<algorithm>:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The algorithm: `sha256` or `sha512`.
    pub fn algorithm(&self) -> &str {
        &self.0[..6]
    }

    /// The hex part, used as the file name under `blobs/<algorithm>/`.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;
    fn from_str(s: &str) -> Result<Digest, InvalidDigest> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256 (or sha512) plus a byte count.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Inner,
    len: u64,
}

#[derive(Clone)]
enum Inner {
    Sha256(Sha256),
    Sha512(Box<Sha512>),
}

impl Default for Inner {
    fn default() -> Inner {
        Inner::Sha256(Sha256::default())
    }
}

impl Hasher {
    /// A fresh sha256 hasher.
    pub fn new() -> Hasher {
        Hasher::default()
    }

    /// A fresh sha512 hasher.
    pub fn sha512() -> Hasher {
        Hasher {
            inner: Inner::Sha512(Box::default()),
            len: 0,
        }
    }

    /// A fresh hasher of `digest`'s algorithm, to verify bytes against it.
    pub fn for_digest(digest: &Digest) -> Hasher {
        match digest.algorithm() {
            "sha512" => Hasher::sha512(),
            _ => Hasher::new(),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.inner {
            Inner::Sha256(h) => h.update(bytes),
            Inner::Sha512(h) => h.update(bytes),
        }
        self.len += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        let (out, algorithm) = match self.inner {
            Inner::Sha256(h) => (h.finalize().to_vec(), "sha256:"),
            Inner::Sha512(h) => (h.finalize().to_vec(), "sha512:"),
        };
        let mut s = String::with_capacity(7 + 2 * out.len());
        s.push_str(algorithm);
        for b in out {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        Digest(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_digest() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_rejects_bad() {
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse("md5:d41d8cd98f00b204e9800998ecf8427e").is_err());
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(Digest::parse(&upper).is_err());
        let ok = format!("sha256:{}", "a".repeat(64));
        assert_eq!(Digest::parse(&ok).unwrap().hex(), "a".repeat(64));
        assert!(Digest::parse(&format!("sha512:{}", "a".repeat(64))).is_err());
        assert!(Digest::parse(&format!("sha384:{}", "a".repeat(96))).is_err());
    }

    #[test]
    fn sha512_digests_parse_and_verify() {
        let d = Digest::sha512_of(b"");
        assert_eq!(
            d.as_str(),
            "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert_eq!((d.algorithm(), d.hex().len()), ("sha512", 128));
        let mut h = Hasher::for_digest(&d);
        h.update(b"");
        assert_eq!(h.finish(), d);
    }
}
