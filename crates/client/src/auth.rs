//! Registry authentication: `WWW-Authenticate` challenges, bearer tokens and their cache, and
//! where credentials come from (`--creds`, `~/.docker/config.json`, credential helpers).
//!
//! Secrets live only in [`Credential`], whose `Debug` is redacted; nothing here logs one.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use oci::error::Error;

/// A credential for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Username and password (or a personal access token as the password).
    Basic {
        /// User name.
        username: String,
        /// Password; never printed.
        password: String,
    },
    /// An identity (refresh) token from `docker login` against an OAuth2 token server.
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credential {
    /// Parses `user:password` (as given to `--creds`); the password may contain `:`.
    pub fn from_user_pass(s: &str) -> Option<Credential> {
        let (u, p) = s.split_once(':')?;
        Some(Credential::Basic {
            username: u.to_string(),
            password: p.to_string(),
        })
    }

    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Credential::Basic { username, password } => Some(format!(
                "Basic {}",
                STANDARD.encode(format!("{username}:{password}"))
            )),
            Credential::IdentityToken(_) => None,
        }
    }
}

/// The key `docker login` uses in `config.json` for a registry host.
pub fn docker_config_key(host: &str) -> String {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "https://index.docker.io/v1/".to_string()
        }
        other => other.to_string(),
    }
}

/// The directory `docker login` writes `config.json` to: `$DOCKER_CONFIG`, else `$HOME/.docker`.
/// `None` when neither variable is set (a bare CI container). `env` reads a variable, so callers
/// and tests can look up somewhere other than the process environment.
pub fn docker_config_dir(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    env("DOCKER_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".docker"))
        })
}

/// Looks a host up in `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, running
/// `docker-credential-<helper> get` when `credsStore`/`credHelpers` say so. `Ok(None)` when the
/// user has no config or no entry for the host.
pub fn from_docker_config(host: &str) -> Result<Option<Credential>, Error> {
    from_docker_config_in(docker_config_dir(|k| std::env::var_os(k)).as_deref(), host)
}

/// [`from_docker_config`] with the config directory given. No directory, no directory on disk or
/// no `config.json` in it all mean "no credentials" (anonymous access, as on every fresh machine);
/// a file that exists but cannot be read or parsed is an error naming it.
pub fn from_docker_config_in(dir: Option<&Path>, host: &str) -> Result<Option<Credential>, Error> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    let Some(dir) = dir else {
        return Ok(None);
    };
    let path = dir.join("config.json");
    let fail = |reason: String| Error::Credentials {
        host: host.to_string(),
        reason,
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(format!("cannot read {}: {e}", path.display()))),
    };
    // Syntax errors are reported by position only: serde's messages can quote the text, and
    // this file holds secrets.
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        return Err(fail(format!(
            "{} is not valid JSON ({:?} error at line {}, column {})",
            path.display(),
            e.classify(),
            e.line(),
            e.column()
        )));
    }
    let key = docker_config_key(host);
    let mut tried = vec![key.clone()];
    if !key.starts_with("https://") {
        tried.push(format!("https://{key}"));
    }
    for k in &tried {
        match docker_credential::get_credential_from_reader(&bytes[..], k) {
            Ok(DockerCredential::UsernamePassword(username, password)) => {
                return Ok(Some(Credential::Basic { username, password }));
            }
            Ok(DockerCredential::IdentityToken(t)) => {
                return Ok(Some(Credential::IdentityToken(t)));
            }
            Err(E::NoCredentialConfigured | E::ConfigNotFound) => continue,
            Err(e) => {
                // Helper failures may echo secrets on stdout; report only the kind.
                let reason = match e {
                    E::HelperFailure { helper, .. } => format!("credential helper {helper} failed"),
                    E::HelperCommunicationError => "cannot run credential helper".to_string(),
                    E::MalformedHelperResponse => {
                        "malformed credential helper response".to_string()
                    }
                    E::CredentialDecodingError => {
                        format!("cannot decode auth entry in {}", path.display())
                    }
                    E::CredentialMismatchError => format!(
                        "auth entry in {} disagrees with its username and password",
                        path.display()
                    ),
                    E::ConfigReadError => {
                        format!("{} is not a docker config file", path.display())
                    }
                    _ => "unknown error".to_string(),
                };
                return Err(fail(reason));
            }
        }
    }
    Ok(None)
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=…`.
    Basic,
    /// `Bearer realm=…,service=…,scope=…`.
    Bearer {
        /// Token endpoint.
        realm: String,
        /// `service` parameter to pass on.
        service: Option<String>,
        /// Scopes the registry asked for, if any.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value (one challenge; quoted values may contain commas).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

/// A set of token scopes, kept sorted so equal sets share a cache entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// `repository:<repo>:pull`.
    pub fn pull(repo: &str) -> Scopes {
        Scopes([format!("repository:{repo}:pull")].into_iter().collect())
    }

    /// `repository:<repo>:pull,push`.
    pub fn push(repo: &str) -> Scopes {
        Scopes(
            [format!("repository:{repo}:pull,push")]
                .into_iter()
                .collect(),
        )
    }

    /// The union of two sets.
    pub fn with(mut self, other: &Scopes) -> Scopes {
        self.0.extend(other.0.iter().cloned());
        self
    }

    /// Adds the space-separated scopes of a challenge.
    pub fn with_str(mut self, s: &str) -> Scopes {
        self.0
            .extend(s.split(' ').filter(|s| !s.is_empty()).map(str::to_string));
        self
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Space separated, for messages.
    pub fn joined(&self) -> String {
        self.iter().collect::<Vec<_>>().join(" ")
    }
}

/// What a host asked for last time, so later requests authenticate up front.
#[derive(Clone, Debug)]
pub(crate) enum HostAuth {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Clone)]
pub(crate) struct Token {
    pub value: String,
    pub expires: Instant,
}

/// Per-host challenge memory, tokens keyed by (host, scope set), and refresh tokens per host.
#[derive(Default)]
pub(crate) struct AuthCache {
    pub hosts: HashMap<String, HostAuth>,
    pub tokens: HashMap<(String, Scopes), Token>,
    pub refresh: HashMap<String, String>,
}

impl AuthCache {
    pub fn token(&self, host: &str, scopes: &Scopes) -> Option<String> {
        let t = self.tokens.get(&(host.to_string(), scopes.clone()))?;
        // Leave a margin so a token does not expire between here and the registry.
        (t.expires > Instant::now() + Duration::from_secs(10)).then(|| t.value.clone())
    }
}

/// The token endpoint's answer.
#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// A usable answer from a token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// The bearer token (`token`, or OAuth2's `access_token`).
    pub token: String,
    /// Lifetime in seconds, when the server said.
    pub expires_in: Option<u64>,
    /// A refresh token to use instead of the password next time.
    pub refresh_token: Option<String>,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenGrant(<redacted>, expires_in: {:?})",
            self.expires_in
        )
    }
}

/// Parses a token endpoint's JSON body. The error says what is wrong by position only: the
/// body holds secrets, so none of it is quoted.
pub fn parse_token_response(body: &[u8]) -> Result<TokenGrant, String> {
    let tr: TokenResponse = serde_json::from_slice(body).map_err(|e| {
        format!(
            "bad token response ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        )
    })?;
    let token = tr
        .token
        .filter(|t| !t.is_empty())
        .or(tr.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "no token in response".to_string())?;
    Ok(TokenGrant {
        token,
        expires_in: tr.expires_in,
        refresh_token: tr.refresh_token.filter(|t| !t.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_with_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
    }

    #[test]
    fn docker_config_dir_follows_docker_config_then_home() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(docker_config_dir(env(&[])), None);
        assert_eq!(docker_config_dir(env(&[("HOME", "")])), None);
        assert_eq!(
            docker_config_dir(env(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.docker"))
        );
        assert_eq!(
            docker_config_dir(env(&[("HOME", "/h"), ("DOCKER_CONFIG", "/d")])),
            Some(PathBuf::from("/d"))
        );
    }

    #[test]
    fn no_docker_config_is_no_credentials() {
        assert_eq!(from_docker_config_in(None, "ghcr.io").unwrap(), None);
        let dir = std::env::temp_dir().join("airlock-no-such-docker-config-dir");
        assert_eq!(from_docker_config_in(Some(&dir), "quay.io").unwrap(), None);
    }

    #[test]
    fn token_response_errors_quote_nothing() {
        let e = parse_token_response(br#"{"token": "sekrit-value", "expires_in": "sekrit"}"#)
            .unwrap_err();
        assert!(!e.contains("sekrit"), "{e}");
        let g = parse_token_response(br#"{"token":"","access_token":"a","expires_in":5}"#).unwrap();
        assert_eq!((g.token.as_str(), g.expires_in), ("a", Some(5)));
        assert_eq!(
            format!("{g:?}"),
            "TokenGrant(<redacted>, expires_in: Some(5))"
        );
    }

    #[test]
    fn scopes_are_sets() {
        let a = Scopes::pull("x").with(&Scopes::push("y"));
        let b = Scopes::push("y").with(&Scopes::pull("x"));
        assert_eq!(a, b);
        assert_eq!(a.joined(), "repository:x:pull repository:y:pull,push");
    }

    #[test]
    fn credential_debug_is_redacted() {
        let c = Credential::from_user_pass("u:p:w").unwrap();
        assert_eq!(format!("{c:?}"), "Basic(u, <redacted>)");
        assert_eq!(
            c.basic_header().unwrap(),
            format!("Basic {}", STANDARD.encode("u:p:w"))
        );
    }
}
