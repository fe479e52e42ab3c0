//! The scanner: one left-to-right pass over the bytes that records where each part ends and
//! stops at the first character that breaks the grammar, so the error points at it.
//!
//! Every character the grammar allows is ASCII, so the scanner works on bytes and stops at the
//! first non-ASCII byte, which is always the start of a character.

use crate::error::{DIGEST_HEX_MIN, NAME_MAX, ParseError, ParseErrorKind as K, Part, TAG_MAX};

/// Where the parts of a valid reference end, as byte offsets into its text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// 0 without a written host, else just past the `/` after it.
    pub path_start: usize,
    /// End of the path: `:` of the tag, `@` of the digest, or the end.
    pub name_end: usize,
    /// End of the tag (`name_end` when there is none): `@` of the digest, or the end.
    pub tag_end: usize,
}

/// Docker Hub's spellings, shared with the normalising accessors so the length check here and
/// the names built there cannot disagree.
pub(crate) const DOCKER_HUB: &str = "docker.io";
pub(crate) const LEGACY_DOCKER_HUB: &str = "index.docker.io";
pub(crate) const OFFICIAL_PREFIX: &str = "library/";

fn lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Scans `s`; `hex_only_is_error` is distribution's refusal of a bare 64-hex string, which only
/// makes sense for a whole reference as written by a person.
pub(crate) fn scan(s: &str, hex_only_is_error: bool) -> Result<Bounds, ParseError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(ParseError::at(s, 0, K::Empty));
    }
    // A '/' can only be in the name, and the name ends at the first '@'; looking further would
    // read a bad digest as a host.
    let name_part = match b.iter().position(|&c| c == b'@') {
        Some(at) => &b[..at],
        None => b,
    };
    let path_start = match name_part.iter().position(|&c| c == b'/') {
        Some(slash) if is_host(&b[..slash]) => {
            scan_host(s, slash)?;
            slash + 1
        }
        _ => 0,
    };
    let name_end = scan_path(s, path_start)?;
    check_name_length(s, path_start, name_end)?;
    let tag_end = if b.get(name_end) == Some(&b':') {
        scan_tag(s, name_end + 1)?
    } else {
        name_end
    };
    if tag_end < b.len() {
        scan_digest(s, tag_end + 1)?;
    }
    if hex_only_is_error
        && path_start == 0
        && name_end == b.len()
        && b.len() == 64
        && b.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    {
        return Err(ParseError::at(s, 0, K::HexOnlyName));
    }
    Ok(Bounds {
        path_start,
        name_end,
        tag_end,
    })
}

/// Distribution's `splitDockerDomain` rule: the first segment names a registry when it has a
/// `.` or `:`, is `localhost`, or has upper-case letters (which a path cannot have). A leading
/// `[` counts too: only a bracketed IPv6 host can start that way, and `[a]/x` is a valid
/// reference in distribution's grammar.
fn is_host(first: &[u8]) -> bool {
    first == b"localhost"
        || first.first() == Some(&b'[')
        || first
            .iter()
            .any(|&c| c == b'.' || c == b':' || c.is_ascii_uppercase())
}

/// `host[:port]` in `s[..end]`, where `s[end]` is the `/` before the path.
fn scan_host(s: &str, end: usize) -> Result<(), ParseError> {
    let b = s.as_bytes();
    let err = |i: usize, kind| Err(ParseError::at(s, i, kind));
    let mut i;
    if b[0] == b'[' {
        i = 1;
        while i < end && (b[i].is_ascii_hexdigit() || b[i] == b':') {
            i += 1;
        }
        if i == 1 || i == end || b[i] != b']' {
            return err(i, K::InvalidHost);
        }
        i += 1;
    } else {
        i = 0;
        loop {
            if i == end || !b[i].is_ascii_alphanumeric() {
                return err(i, K::InvalidHost);
            }
            while i < end && (b[i].is_ascii_alphanumeric() || b[i] == b'-') {
                i += 1;
            }
            if b[i - 1] == b'-' {
                return err(i - 1, K::InvalidHost);
            }
            if i < end && b[i] == b'.' {
                i += 1;
            } else {
                break;
            }
        }
    }
    if i < end && b[i] == b':' {
        i += 1;
        let digits = i;
        while i < end && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits || i < end {
            return err(i, K::InvalidPort);
        }
    }
    if i < end {
        return err(i, K::InvalidHost);
    }
    Ok(())
}

/// `component('/'component)*` from `start`; returns the offset of the `:`, `@` or end after it.
fn scan_path(s: &str, start: usize) -> Result<usize, ParseError> {
    let b = s.as_bytes();
    let bad = |i: usize| {
        let kind = match b.get(i) {
            None => K::UnexpectedEnd {
                expected: Part::Path,
            },
            Some(c) if c.is_ascii_uppercase() => K::UppercasePath,
            Some(_) => K::InvalidCharacter,
        };
        Err(ParseError::at(s, i, kind))
    };
    let mut i = start;
    // Each turn reads a run of letters and digits that must be there (a component's start, or
    // what follows a separator), then what ends the run.
    loop {
        if !b.get(i).is_some_and(|&c| lower_alnum(c)) {
            return bad(i);
        }
        while i < b.len() && lower_alnum(b[i]) {
            i += 1;
        }
        match b.get(i) {
            None | Some(b':' | b'@') => return Ok(i),
            Some(b'/' | b'.') => i += 1,
            Some(b'_') => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            Some(b'-') => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            Some(_) => return bad(i),
        }
    }
}

/// The limit applies to the normalised name, as in distribution, where `nginx` is checked as
/// `docker.io/library/nginx`; otherwise a valid reference could normalise to an invalid one.
fn check_name_length(s: &str, path_start: usize, name_end: usize) -> Result<(), ParseError> {
    let domain = if path_start == 0 {
        None
    } else {
        Some(&s[..path_start - 1])
    };
    let path = &s[path_start..name_end];
    let prefix = match domain {
        None | Some(LEGACY_DOCKER_HUB) | Some(DOCKER_HUB) => {
            DOCKER_HUB.len()
                + 1
                + if path.contains('/') {
                    0
                } else {
                    OFFICIAL_PREFIX.len()
                }
        }
        Some(d) => d.len() + 1,
    };
    let length = prefix + path.len();
    if length <= NAME_MAX {
        return Ok(());
    }
    let past = if prefix > NAME_MAX {
        NAME_MAX
    } else {
        path_start + NAME_MAX - prefix
    };
    Err(ParseError::at(s, past, K::NameTooLong { length }))
}

/// `[\w][\w.-]{0,127}` from `start`; returns the offset of the `@` or end after it.
fn scan_tag(s: &str, start: usize) -> Result<usize, ParseError> {
    let b = s.as_bytes();
    match b.get(start) {
        None => {
            return Err(ParseError::at(
                s,
                start,
                K::UnexpectedEnd {
                    expected: Part::Tag,
                },
            ));
        }
        Some(&c) if word(c) => {}
        Some(_) => return Err(ParseError::at(s, start, K::InvalidTag)),
    }
    let tag_char = |c: u8| word(c) || c == b'.' || c == b'-';
    let mut i = start + 1;
    while i < b.len() && tag_char(b[i]) {
        i += 1;
    }
    if i - start > TAG_MAX {
        return Err(ParseError::at(
            s,
            start + TAG_MAX,
            K::TagTooLong { length: i - start },
        ));
    }
    if i < b.len() && b[i] != b'@' {
        return Err(ParseError::at(s, i, K::InvalidTag));
    }
    Ok(i)
}

/// `algorithm:hex` from `start` to the end of `s`.
fn scan_digest(s: &str, start: usize) -> Result<(), ParseError> {
    let b = s.as_bytes();
    let mut i = start;
    loop {
        match b.get(i) {
            Some(&c) if lower_alnum(c) => {}
            None => {
                let expected = Part::DigestAlgorithm;
                return Err(ParseError::at(s, i, K::UnexpectedEnd { expected }));
            }
            Some(_) => return Err(ParseError::at(s, i, K::InvalidDigest)),
        }
        while i < b.len() && lower_alnum(b[i]) {
            i += 1;
        }
        match b.get(i) {
            Some(b':') => break,
            Some(b'.' | b'+' | b'_' | b'-') => i += 1,
            None => {
                let expected = Part::DigestAlgorithm;
                return Err(ParseError::at(s, i, K::UnexpectedEnd { expected }));
            }
            Some(_) => return Err(ParseError::at(s, i, K::InvalidDigest)),
        }
    }
    let algorithm = &s[start..i];
    let hex_start = i + 1;
    // Known algorithms have one length and, as go-digest checks, lower-case hex only.
    let exact = match algorithm {
        "sha256" => Some(64),
        "sha512" => Some(128),
        _ => None,
    };
    let is_hex = |c: u8| match exact {
        Some(_) => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        None => c.is_ascii_hexdigit(),
    };
    let mut i = hex_start;
    while i < b.len() && is_hex(b[i]) {
        i += 1;
    }
    let actual = i - hex_start;
    if let Some(expected) = exact.filter(|&n| actual > n) {
        let kind = K::DigestLength {
            algorithm: algorithm.to_string(),
            expected,
            actual,
        };
        return Err(ParseError::at(s, hex_start + expected, kind));
    }
    if i < b.len() {
        return Err(ParseError::at(s, i, K::InvalidDigest));
    }
    if actual == 0 {
        return Err(ParseError::at(
            s,
            i,
            K::UnexpectedEnd {
                expected: Part::DigestHex,
            },
        ));
    }
    match exact {
        Some(expected) if actual != expected => {
            let kind = K::DigestLength {
                algorithm: algorithm.to_string(),
                expected,
                actual,
            };
            Err(ParseError::at(s, i, kind))
        }
        None if actual < DIGEST_HEX_MIN => {
            let kind = K::DigestTooShort {
                algorithm: algorithm.to_string(),
                minimum: DIGEST_HEX_MIN,
                actual,
            };
            Err(ParseError::at(s, i, kind))
        }
        _ => Ok(()),
    }
}
