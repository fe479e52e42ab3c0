//! Why a string is not an image reference, precisely enough for a person to fix it: the
//! character, where it is, and what that part of a reference may contain.

use std::fmt;

/// The longest a repository name (`registry/repository`, as normalised) may be, as in
/// distribution's `NameTotalLengthMax`.
pub const NAME_MAX: usize = 255;

/// The longest a tag may be.
pub const TAG_MAX: usize = 128;

/// The fewest hex digits a digest of an unknown algorithm may have (128 bits).
pub const DIGEST_HEX_MIN: usize = 32;

/// A string that is not a valid image reference.
///
/// `position` counts characters (not bytes) from 0; [`Display`](fmt::Display) shows it as a
/// 1-based column, the way editors do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The text that was parsed.
    pub input: String,
    /// 0-based character index of the problem; `input.chars().count()` when the input ended
    /// too early.
    pub position: usize,
    /// The offending character; `None` at the end of the input.
    pub found: Option<char>,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// What is wrong with a reference. Each kind is about one part of
/// `[host[:port]/]path[:tag][@algorithm:hex]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input is empty.
    Empty,
    /// A character a repository path cannot have at this point (an empty component, a
    /// doubled separator, punctuation).
    InvalidCharacter,
    /// An upper-case letter in the repository path.
    UppercasePath,
    /// A character a registry host cannot have at this point.
    InvalidHost,
    /// A registry port that is not all digits.
    InvalidPort,
    /// A character a tag cannot have at this point.
    InvalidTag,
    /// A tag longer than [`TAG_MAX`]; the position is its first character past the limit.
    TagTooLong { length: usize },
    /// A character a digest cannot have at this point.
    InvalidDigest,
    /// A digest of a known algorithm whose hex has the wrong length.
    DigestLength {
        algorithm: String,
        expected: usize,
        actual: usize,
    },
    /// A digest of another algorithm with fewer than [`DIGEST_HEX_MIN`] hex digits.
    DigestTooShort {
        algorithm: String,
        minimum: usize,
        actual: usize,
    },
    /// `registry/repository` (as normalised, so Docker Hub names count `docker.io/library/`)
    /// is longer than [`NAME_MAX`]; the position is the first character past the limit.
    NameTooLong { length: usize },
    /// The input ends where `expected` needs more.
    UnexpectedEnd { expected: Part },
    /// 64 hex digits and nothing else: Docker refuses these as names because they read as
    /// image IDs.
    HexOnlyName,
    /// [`Reference::with_name`](crate::Reference::with_name) was given a tag or digest.
    NotAName,
}

/// The parts of a reference, for saying what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Part {
    Host,
    Port,
    Path,
    Tag,
    DigestAlgorithm,
    DigestHex,
}

impl ParseError {
    /// Builds an error from a byte offset; positions are reported in characters because a
    /// person counts characters, and the scanner only ever stops on a character boundary.
    pub(crate) fn at(input: &str, byte: usize, kind: ParseErrorKind) -> ParseError {
        let (position, found) = match input.get(..byte) {
            Some(before) => (before.chars().count(), input[byte..].chars().next()),
            None => (input.chars().count(), None),
        };
        ParseError {
            input: input.to_string(),
            position,
            found,
            kind,
        }
    }

    /// The 1-based column of the problem.
    pub fn column(&self) -> usize {
        self.position + 1
    }

    fn prev(&self) -> Option<char> {
        self.position
            .checked_sub(1)
            .and_then(|p| self.input.chars().nth(p))
    }

    /// The first segment (up to the first `/`), which is read as a registry host.
    fn first_segment(&self) -> &str {
        let name = self.input.split('@').next().unwrap_or("");
        name.split('/').next().unwrap_or("")
    }

    fn write_where(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.found {
            Some(c) => write!(f, "{c:?} at column {}", self.column()),
            None => write!(f, "end of input at column {}", self.column()),
        }
    }

    fn path_hint(&self) -> &'static str {
        let sep = |c: Option<char>| matches!(c, Some('.' | '_' | '-'));
        let prev = self.prev();
        let start = prev.is_none() || prev == Some('/');
        match self.found {
            Some('/') if prev.is_none() => "a reference cannot start with '/'",
            Some('/') if prev == Some('/') => "empty path component ('//')",
            Some(':') if start => "no repository name before ':'",
            Some('@') if start => "no repository name before '@'",
            c if start && sep(c) => "path components start with a lower-case letter or digit",
            c if sep(prev) && sep(c) => {
                "separators are one '.', one or two '_', or a run of '-', between letters or digits"
            }
            _ if sep(prev) => "a separator must be followed by a lower-case letter or digit",
            _ => "repository paths allow only a-z, 0-9, '.', '_', '-' and '/'",
        }
    }

    fn host_hint(&self) -> &'static str {
        let first = self.first_segment();
        let in_brackets =
            first.starts_with('[') && first.find(']').is_none_or(|end| self.position < end);
        if in_brackets {
            return "an IPv6 host is hex digits and ':' inside '[' and ']'";
        }
        match (self.prev(), self.found) {
            (None | Some('.'), Some('-')) => "host name parts cannot start with '-'",
            // The scanner reports a part's trailing '-' at the '-'.
            (_, Some('-')) => "host name parts cannot end with '-'",
            (None | Some('.'), Some('.' | ':' | '/')) | (Some('.'), None) => "empty host name part",
            _ => "registry hosts are letters, digits, '-' and '.', with an optional :port",
        }
    }

    fn digest_hint(&self) -> String {
        let at = self.input.rfind('@').unwrap_or(0);
        let digest = &self.input[at + 1..];
        let digest_col = self.input[..=at].chars().count();
        match digest.split_once(':') {
            Some((algorithm, _)) if self.position > digest_col + algorithm.chars().count() => {
                match algorithm {
                    "sha256" | "sha512" => format!("{algorithm} digests are lower-case hex (0-9, a-f)"),
                    _ => "digest values are hex (0-9, a-f)".to_string(),
                }
            }
            _ => "digest algorithms are lower-case letters and digits joined by '.', '+', '_' or '-', then ':'"
                .to_string(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ParseErrorKind as K;
        write!(f, "invalid image reference {:?}: ", self.input)?;
        match &self.kind {
            K::Empty => f.write_str("the reference is empty"),
            K::UppercasePath => {
                f.write_str("upper-case ")?;
                self.write_where(f)?;
                f.write_str(" (repository names are lower case)")
            }
            K::InvalidCharacter => {
                self.write_where(f)?;
                write!(f, ": {}", self.path_hint())
            }
            K::InvalidHost => {
                self.write_where(f)?;
                write!(f, " in the registry host: {}", self.host_hint())?;
                let first = self.first_segment();
                if !first.contains(['.', ':']) && first != "localhost" {
                    f.write_str(
                        " (the first part is read as a registry host because it has upper-case \
                         letters; repository names are lower case)",
                    )?;
                }
                Ok(())
            }
            K::InvalidPort => {
                self.write_where(f)?;
                f.write_str(" in the registry port: a port is digits only")
            }
            K::InvalidTag => {
                self.write_where(f)?;
                let hint = match (self.prev(), self.found) {
                    (Some(':'), Some('@')) => "empty tag",
                    (Some(':'), Some('.' | '-')) => "tags start with a letter, digit or '_'",
                    _ => "tags are letters, digits, '_', '.' and '-'",
                };
                write!(f, " in the tag: {hint}")
            }
            K::TagTooLong { length } => {
                write!(
                    f,
                    "the tag is {length} characters, over the limit of {TAG_MAX}; "
                )?;
                self.write_where(f)?;
                f.write_str(" is the first one past it")
            }
            K::InvalidDigest => {
                self.write_where(f)?;
                write!(f, " in the digest: {}", self.digest_hint())
            }
            K::DigestLength {
                algorithm,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "a {algorithm} digest has {expected} hex digits, this one has {actual} ("
                )?;
                self.write_where(f)?;
                f.write_str(")")
            }
            K::DigestTooShort {
                algorithm,
                minimum,
                actual,
            } => {
                write!(
                    f,
                    "{algorithm} digests need at least {minimum} hex digits, this one has \
                     {actual} ("
                )?;
                self.write_where(f)?;
                f.write_str(")")
            }
            K::NameTooLong { length } => {
                write!(
                    f,
                    "the name is {length} characters as registry/repository, over the limit of \
                     {NAME_MAX}; "
                )?;
                self.write_where(f)?;
                f.write_str(" is past it")
            }
            K::UnexpectedEnd { expected } => {
                let what = match (expected, self.prev()) {
                    (Part::Path, Some('/')) => "a path component after '/'",
                    (Part::Path, Some(c @ ('.' | '_' | '-'))) => {
                        return write!(
                            f,
                            "the path ends with separator {c:?} at column {}; a separator must \
                             be followed by a lower-case letter or digit",
                            self.position
                        );
                    }
                    (Part::Path, _) => "a repository path",
                    (Part::Host, _) => "a registry host",
                    (Part::Port, _) => "port digits",
                    (Part::Tag, _) => "a tag after ':'",
                    (Part::DigestAlgorithm, Some(c)) if c.is_ascii_alphanumeric() => {
                        "':' and hex digits after the digest algorithm"
                    }
                    (Part::DigestAlgorithm, _) => "a digest algorithm such as sha256",
                    (Part::DigestHex, _) => "hex digits after the digest algorithm",
                };
                write!(
                    f,
                    "the input ends at column {}; expected {what}",
                    self.column()
                )
            }
            K::HexOnlyName => f.write_str(
                "64 hex digits read as an image ID, not a repository name (Docker refuses them)",
            ),
            K::NotAName => {
                self.write_where(f)?;
                f.write_str(": expected a name without tag or digest")
            }
        }
    }
}
