//! Container image references: `[host[:port]/]path[:tag][@algorithm:hex]`, with the grammar of
//! the CNCF distribution `reference` package (the one Docker, containerd and Kubernetes use).
//!
//! A [`Reference`] keeps the text exactly as written, so tools that edit configuration in place
//! (`airlock rewrite`) can replace just the bytes they mean to, and reports can show people
//! what they wrote. Questions about *which image* it is go through the normalised view:
//! [`Reference::registry`], [`Reference::repository`] and [`Reference::normalized`] resolve
//! Docker Hub's implicit `docker.io/library/` and `:latest` the way a container runtime does.
//!
//! Parsing is a single hand-written pass that allocates only the owned copy of the text; it runs
//! over every string that might be an image in a cluster's configuration. Invalid input gives a
//! [`ParseError`] that names the character and column at fault.
//!
//! ```
//! let r = imgref::Reference::parse("nginx:1.27")?;
//! assert_eq!(r.path(), "nginx");
//! assert_eq!(r.name(), "docker.io/library/nginx");
//! assert_eq!(r.normalized().as_str(), "docker.io/library/nginx:1.27");
//!
//! let e = imgref::Reference::parse("ngInx:1").unwrap_err();
//! assert_eq!(e.to_string(), r#"invalid image reference "ngInx:1": upper-case 'I' at column 3 (repository names are lower case)"#);
//! # Ok::<(), imgref::ParseError>(())
//! ```

mod error;
mod parse;

use std::fmt;
use std::str::FromStr;

pub use error::{DIGEST_HEX_MIN, NAME_MAX, ParseError, ParseErrorKind, Part, TAG_MAX};
use parse::{DOCKER_HUB, LEGACY_DOCKER_HUB, OFFICIAL_PREFIX};

/// The tag a runtime pulls when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// A valid image reference, spelt as it was written.
///
/// Equality and hashing are on the text: `nginx` and `docker.io/library/nginx:latest` are
/// different references to the same image; compare [`normalized`](Self::normalized) forms to
/// ask whether two references pull the same thing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    text: String,
    // Offsets into `text` (see `parse::Bounds`). The name is at most a few hundred bytes and the
    // tag at most 128, so u16 keeps a reference small; the digest runs to the end of `text`.
    path_start: u16,
    name_end: u16,
    tag_end: u16,
}

impl Reference {
    /// Parses a reference as written in configuration.
    pub fn parse(s: &str) -> Result<Reference, ParseError> {
        let bounds = parse::scan(s, true)?;
        Ok(Reference::from_parts(
            s.to_string(),
            bounds.path_start,
            bounds.name_end,
            bounds.tag_end,
        ))
    }

    fn from_parts(text: String, path_start: usize, name_end: usize, tag_end: usize) -> Reference {
        // The scanner bounds the name (NAME_MAX after normalisation, which can only shorten a
        // written `index.docker.io/`) and the tag (TAG_MAX), so these fit.
        let small = |n: usize| u16::try_from(n).expect("name and tag lengths are bounded");
        Reference {
            path_start: small(path_start),
            name_end: small(name_end),
            tag_end: small(tag_end),
            text,
        }
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The registry host (with port) as written; `None` when the reference names none.
    pub fn domain(&self) -> Option<&str> {
        match self.path_start {
            0 => None,
            start => Some(&self.text[..usize::from(start) - 1]),
        }
    }

    /// The repository path as written, e.g. `nginx` or `library/nginx`.
    pub fn path(&self) -> &str {
        &self.text[usize::from(self.path_start)..usize::from(self.name_end)]
    }

    /// The tag, without the `:`.
    pub fn tag(&self) -> Option<&str> {
        let (name_end, tag_end) = (usize::from(self.name_end), usize::from(self.tag_end));
        (tag_end > name_end).then(|| &self.text[name_end + 1..tag_end])
    }

    /// The digest, `algorithm:hex`, without the `@`.
    pub fn digest(&self) -> Option<&str> {
        let tag_end = usize::from(self.tag_end);
        (tag_end < self.text.len()).then(|| &self.text[tag_end + 1..])
    }

    /// What to ask a registry for when reading this image (pulling, resolving, copying from
    /// it): the `<reference>` of `/v2/<name>/manifests/<reference>`.
    ///
    /// The rule, the one every verb follows: the digest when one is written, else the tag, else
    /// [`DEFAULT_TAG`]. A digest names the exact content and a runtime given `name:tag@digest`
    /// pulls by the digest and ignores the tag, so the tag must not win here.
    pub fn pull_address(&self) -> &str {
        self.digest().or(self.tag()).unwrap_or(DEFAULT_TAG)
    }

    /// What to store this image under when writing it to a registry (pushing, copying to it).
    ///
    /// The rule: the tag when one is written, else the digest, else [`DEFAULT_TAG`]. The copy
    /// must stay reachable by the tag people write in configuration; a registry serves every
    /// manifest it stores by its digest as well, so a written digest still resolves.
    pub fn push_address(&self) -> &str {
        self.tag().or(self.digest()).unwrap_or(DEFAULT_TAG)
    }

    /// The registry a runtime pulls from: the written host, with Docker Hub's legacy
    /// `index.docker.io` and the implicit default both as `docker.io`.
    pub fn registry(&self) -> &str {
        match self.domain() {
            None | Some(LEGACY_DOCKER_HUB) => DOCKER_HUB,
            Some(domain) => domain,
        }
    }

    /// The repository within [`registry`](Self::registry): Docker Hub's official images get
    /// their implicit `library/`.
    pub fn repository(&self) -> String {
        let path = self.path();
        if self.is_official_short() {
            let mut repository = String::with_capacity(OFFICIAL_PREFIX.len() + path.len());
            repository.push_str(OFFICIAL_PREFIX);
            repository.push_str(path);
            repository
        } else {
            path.to_string()
        }
    }

    /// `registry/repository`: the image's full name, without tag or digest.
    pub fn name(&self) -> String {
        let mut name = self.registry().to_string();
        name.push('/');
        name.push_str(&self.repository());
        name
    }

    /// A Docker Hub reference whose `library/` is implicit (`nginx`, `docker.io/nginx`).
    fn is_official_short(&self) -> bool {
        self.registry() == DOCKER_HUB && !self.path().contains('/')
    }

    /// The fully spelt form a runtime resolves this to: `nginx` becomes
    /// `docker.io/library/nginx:latest`. `:latest` is added only when there is neither a tag
    /// nor a digest (a digest alone pins the image); a tag next to a digest is kept.
    pub fn normalized(&self) -> Reference {
        let registry = self.registry();
        let official = self.is_official_short();
        let (tag, digest) = (self.tag(), self.digest());
        let mut text = String::with_capacity(self.text.len() + 32);
        text.push_str(registry);
        text.push('/');
        let path_start = text.len();
        if official {
            text.push_str(OFFICIAL_PREFIX);
        }
        text.push_str(self.path());
        let name_end = text.len();
        match (tag, digest) {
            (Some(tag), _) => {
                text.push(':');
                text.push_str(tag);
            }
            (None, None) => {
                text.push(':');
                text.push_str(DEFAULT_TAG);
            }
            (None, Some(_)) => {}
        }
        let tag_end = text.len();
        if let Some(digest) = digest {
            text.push('@');
            text.push_str(digest);
        }
        Reference::from_parts(text, path_start, name_end, tag_end)
    }

    /// Whether this is already spelt as [`normalized`](Self::normalized) would spell it.
    pub fn is_normalized(&self) -> bool {
        matches!(self.domain(), Some(d) if d != LEGACY_DOCKER_HUB)
            && !self.is_official_short()
            && (self.tag().is_some() || self.digest().is_some())
    }

    /// The same tag and digest on another name (`host[:port]/path`, no tag or digest): how a
    /// mapping moves an image to a mirror without losing its version.
    pub fn with_name(&self, name: &str) -> Result<Reference, ParseError> {
        let rest = &self.text[usize::from(self.name_end)..];
        // A bare 64-hex name is refused only when it would be the whole reference, where it
        // reads as an image ID.
        let bounds = parse::scan(name, rest.is_empty())?;
        if bounds.name_end != name.len() {
            return Err(ParseError::at(
                name,
                bounds.name_end,
                ParseErrorKind::NotAName,
            ));
        }
        let mut text = String::with_capacity(name.len() + rest.len());
        text.push_str(name);
        text.push_str(rest);
        let tag_end = name.len() + usize::from(self.tag_end - self.name_end);
        Ok(Reference::from_parts(
            text,
            bounds.path_start,
            name.len(),
            tag_end,
        ))
    }
}

impl FromStr for Reference {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Reference, ParseError> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for Reference {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests;
