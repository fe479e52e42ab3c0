//! Authentication for `airlock serve`: htpasswd (bcrypt) users in two files, one for users who may
//! only pull (`--htpasswd-read`) and one for users who may also push and delete
//! (`--htpasswd-write`); HTTP Basic on every request, or the bearer token flow Docker, containerd
//! and skopeo follow (a `/token` endpoint trading Basic credentials for an HMAC-signed token scoped
//! to repositories and actions). A middleware over any axum `Router`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::routes::{RouteClass, classify};
pub use serving::{AuthenticatedUser, LoginFailed};

/// Where the token endpoint answers.
pub const TOKEN_PATH: &str = "/token";
/// At most this many `scope` parameters in one token request; a token carries them all.
pub const MAX_SCOPES: usize = 32;

/// A bad htpasswd file; every variant names the file, and the line where there is one.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(
        "{}:{line}: user {user:?} has a {kind} hash; only bcrypt ($2y$, $2b$, $2a$) is accepted \
         (htpasswd -B)",
        path.display()
    )]
    UnsupportedHash {
        path: PathBuf,
        line: usize,
        user: String,
        kind: &'static str,
    },
    #[error("{}:{line}: user {user:?} is listed twice", path.display())]
    DuplicateUser {
        path: PathBuf,
        line: usize,
        user: String,
    },
    #[error("no random numbers for the token signing key")]
    Random,
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// GET and HEAD (pull).
    Read,
    /// Also POST, PUT, PATCH and DELETE (push, delete).
    Write,
}

/// The users of one htpasswd file: user name to bcrypt hash.
#[derive(Debug, Clone, Default)]
pub struct Htpasswd {
    users: HashMap<String, String>,
}

fn hash_kind(hash: &str) -> Option<&'static str> {
    if hash.starts_with("$2y$")
        || hash.starts_with("$2b$")
        || hash.starts_with("$2a$")
        || hash.starts_with("$2x$")
    {
        None
    } else if hash.starts_with("$apr1$") {
        Some("MD5 (apr1)")
    } else if hash.starts_with("{SHA}") {
        Some("SHA-1")
    } else if hash.starts_with("$5$") {
        Some("SHA-256 crypt")
    } else if hash.starts_with("$6$") {
        Some("SHA-512 crypt")
    } else {
        Some("crypt or plain-text")
    }
}

impl Htpasswd {
    /// Parses `user:hash` lines; blank lines and `#` comments are skipped. `path` names the file
    /// in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Htpasswd, AuthError> {
        let mut users = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim_end_matches('\r');
            if l.trim().is_empty() || l.trim_start().starts_with('#') {
                continue;
            }
            let Some((user, hash)) = l.split_once(':') else {
                return Err(AuthError::Line {
                    path: path.into(),
                    line,
                    reason: "expected user:hash".into(),
                });
            };
            if user.is_empty() {
                return Err(AuthError::Line {
                    path: path.into(),
                    line,
                    reason: "empty user name".into(),
                });
            }
            if let Some(kind) = hash_kind(hash) {
                return Err(AuthError::UnsupportedHash {
                    path: path.into(),
                    line,
                    user: user.into(),
                    kind,
                });
            }
            // "$2y$NN$" + 22 salt + 31 hash characters.
            if hash.len() != 60 || hash[4..6].parse::<u32>().is_err() {
                return Err(AuthError::Line {
                    path: path.into(),
                    line,
                    reason: format!("user {user:?}: malformed bcrypt hash"),
                });
            }
            if users.insert(user.to_string(), hash.to_string()).is_some() {
                return Err(AuthError::DuplicateUser {
                    path: path.into(),
                    line,
                    user: user.into(),
                });
            }
        }
        Ok(Htpasswd { users })
    }

    pub fn load(path: &Path) -> Result<Htpasswd, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: path.into(),
            source,
        })?;
        Htpasswd::parse(&text, path)
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Which challenge unauthenticated clients get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm=…/token,service=…,scope=…`: the token flow (the default; what Docker Hub and
    /// distribution with token auth do). Basic credentials are still accepted on every request.
    Bearer,
    /// `Basic realm=…`: for clients that only do Basic.
    Basic,
}

/// Settings of [`Auth`].
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// The `service` of the challenge and of tokens.
    pub service: String,
    /// The token endpoint's absolute URL; `None` derives it from the request's `Host` header.
    pub realm: Option<String>,
    /// Whether the derived realm is https (the server has TLS).
    pub https: bool,
    pub challenge: Challenge,
    /// Lifetime of issued tokens.
    pub token_ttl: Duration,
    /// Pulls without credentials (nodes pull anonymously; CI pushes as a write user).
    pub anonymous_read: bool,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            service: "airlock".into(),
            realm: None,
            https: false,
            challenge: Challenge::Bearer,
            token_ttl: Duration::from_secs(300),
            anonymous_read: false,
        }
    }
}

/// A scope granted in a token: `repository:NAME:ACTIONS` or `registry:catalog:*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    iss: String,
    /// Empty for anonymous tokens.
    sub: String,
    iat: u64,
    exp: u64,
    access: Vec<Grant>,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("bad token signature")]
    Signature,
    #[error("token expired")]
    Expired,
}

/// The authenticator: users, options and the key tokens are signed with.
pub struct Auth {
    users: HashMap<String, (String, Access)>,
    opts: AuthOptions,
    key: [u8; 32],
    /// Per user, an HMAC of the last password bcrypt accepted: Docker sends Basic credentials on
    /// every request, and a bcrypt verify per blob request (tens of ms of CPU) would dominate.
    verified: Mutex<HashMap<String, [u8; 32]>>,
    /// Bounds the CPU a flood of bad logins can burn in bcrypt.
    bcrypt_slots: tokio::sync::Semaphore,
    /// A hash of a random password at the users' cost, verified for unknown users so that their
    /// refusal takes as long as a wrong password (no user enumeration by timing).
    dummy_hash: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("users", &self.users.len())
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// HMAC-SHA256 (RFC 2104) for keys of at most 64 bytes.
fn hmac_sha256(key: &[u8], msg: &[&[u8]]) -> [u8; 32] {
    debug_assert!(key.len() <= 64);
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    for m in msg {
        inner.update(m);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(opad);
    outer.update(inner);
    outer.finalize().into()
}

/// Equality whose time does not depend on where the inputs differ.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Auth {
    /// Users of `write` may read and write, users of `read` only read; a user in both files is a
    /// write user (the write file's hash counts).
    pub fn new(read: Htpasswd, write: Htpasswd, opts: AuthOptions) -> Result<Auth, AuthError> {
        let mut key = [0u8; 32];
        rustls::crypto::aws_lc_rs::default_provider()
            .secure_random
            .fill(&mut key)
            .map_err(|_| AuthError::Random)?;
        let mut users: HashMap<String, (String, Access)> = read
            .users
            .into_iter()
            .map(|(u, h)| (u, (h, Access::Read)))
            .collect();
        for (u, h) in write.users {
            users.insert(u, (h, Access::Write));
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cost = users
            .values()
            .filter_map(|(h, _)| h.get(4..6)?.parse::<u32>().ok())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        let dummy_hash = bcrypt::hash("airlock: no such user", cost.clamp(4, 31))
            .map_err(|_| AuthError::Random)?;
        Ok(Auth {
            dummy_hash,
            users,
            opts,
            key,
            verified: Mutex::new(HashMap::new()),
            bcrypt_slots: tokio::sync::Semaphore::new(cpus),
        })
    }

    /// Loads `--htpasswd-read` and `--htpasswd-write` (either may be absent).
    pub fn from_files(
        read: Option<&Path>,
        write: Option<&Path>,
        opts: AuthOptions,
    ) -> Result<Auth, AuthError> {
        let load = |p: Option<&Path>| p.map(Htpasswd::load).transpose();
        Auth::new(
            load(read)?.unwrap_or_default(),
            load(write)?.unwrap_or_default(),
            opts,
        )
    }

    pub fn options(&self) -> &AuthOptions {
        &self.opts
    }

    /// Checks a user name and password; `None` when refused.
    pub async fn check_password(&self, user: &str, password: &str) -> Option<Access> {
        let mac = hmac_sha256(&self.key, &[user.as_bytes(), &[0], password.as_bytes()]);
        let entry = self.users.get(user).cloned();
        if entry.is_some()
            && let Some(seen) = self.verified.lock().ok()?.get(user)
            && ct_eq(seen, &mac)
        {
            return entry.map(|(_, a)| a);
        }
        let (hash, access) = match entry {
            Some((h, a)) => (h, Some(a)),
            None => (self.dummy_hash.clone(), None),
        };
        let _slot = self.bcrypt_slots.acquire().await.ok()?;
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pw, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        match (ok, access) {
            (true, Some(a)) => {
                if let Ok(mut v) = self.verified.lock() {
                    v.insert(user.to_string(), mac);
                }
                Some(a)
            }
            _ => None,
        }
    }

    /// What `user` (None: anonymous) may do.
    fn rights(&self, user: Option<&str>) -> Option<Access> {
        match user {
            Some(u) => self.users.get(u).map(|(_, a)| *a),
            None => self.opts.anonymous_read.then_some(Access::Read),
        }
    }

    /// The subset of `requested` scopes `rights` allows.
    fn grant(rights: Access, requested: &[String]) -> Vec<Grant> {
        let mut out = Vec::new();
        for scope in requested {
            // repository:NAME:ACTIONS — NAME may hold a registry host with a port, so split the
            // type at the first colon and the actions at the last.
            let Some((kind, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            let allowed: Vec<String> = match kind {
                "repository" => actions
                    .split(',')
                    .flat_map(|a| match a {
                        "*" if rights == Access::Write => vec!["pull", "push", "delete"],
                        "*" => vec!["pull"],
                        "pull" => vec!["pull"],
                        "push" | "delete" if rights == Access::Write => vec![a],
                        _ => vec![],
                    })
                    .map(String::from)
                    .collect(),
                "registry" if name == "catalog" => actions
                    .split(',')
                    .filter(|a| *a == "*")
                    .map(String::from)
                    .collect(),
                _ => Vec::new(),
            };
            let mut actions: Vec<String> = Vec::new();
            for a in allowed {
                if !actions.contains(&a) {
                    actions.push(a);
                }
            }
            if !actions.is_empty() {
                out.push(Grant {
                    kind: kind.into(),
                    name: name.into(),
                    actions,
                });
            }
        }
        out
    }

    /// Signs a token for `user` (empty: anonymous) carrying `access`, valid from `now` (seconds
    /// since the epoch) for the configured lifetime.
    pub fn issue_token(&self, user: &str, access: Vec<Grant>, now: u64) -> String {
        let claims = Claims {
            iss: self.opts.service.clone(),
            sub: user.into(),
            iat: now,
            exp: now + self.opts.token_ttl.as_secs(),
            access,
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let sig = URL_SAFE_NO_PAD.encode(hmac_sha256(&self.key, &[body.as_bytes()]));
        format!("{body}.{sig}")
    }

    /// Checks a token's signature (in constant time) and expiry at `now`; returns its user (empty
    /// for anonymous) and grants.
    pub fn verify_token(&self, token: &str, now: u64) -> Result<(String, Vec<Grant>), TokenError> {
        let (body, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let sig: [u8; 32] = URL_SAFE_NO_PAD
            .decode(sig)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or(TokenError::Malformed)?;
        if !ct_eq(&sig, &hmac_sha256(&self.key, &[body.as_bytes()])) {
            return Err(TokenError::Signature);
        }
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok((claims.sub, claims.access))
    }
}

/// What a request needs: the access level, and for repository routes the scopes a token must
/// carry.
struct Need {
    access: Access,
    /// (type, name, action) triples, all required.
    scopes: Vec<(&'static str, String, &'static str)>,
}

fn need(req: &Request) -> Need {
    let m = req.method();
    let access = if m == Method::GET || m == Method::HEAD || m == Method::OPTIONS {
        Access::Read
    } else {
        Access::Write
    };
    let action = match (access, m) {
        (Access::Read, _) => "pull",
        (_, &Method::DELETE) => "delete",
        _ => "push",
    };
    let (class, repo) = classify(req.uri().path());
    let mut scopes = Vec::new();
    if class == RouteClass::Catalog {
        scopes.push(("registry", "catalog".to_string(), "*"));
    } else if let Some(repo) = repo {
        scopes.push(("repository", repo.to_string(), action));
        // A cross-repository mount reads the source repository.
        if class == RouteClass::Upload
            && let Ok(Query(q)) = Query::<Vec<(String, String)>>::try_from_uri(req.uri())
            && let Some((_, from)) = q.iter().find(|(k, _)| k == "from")
        {
            scopes.push(("repository", from.clone(), "pull"));
        }
    }
    Need { access, scopes }
}

fn grants_cover(grants: &[Grant], scopes: &[(&str, String, &str)]) -> bool {
    scopes.iter().all(|(kind, name, action)| {
        grants
            .iter()
            .any(|g| g.kind == *kind && g.name == *name && g.actions.iter().any(|a| a == action))
    })
}

fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A quoted-string parameter value; `None` when it cannot be quoted safely.
fn quotable(s: &str) -> Option<&str> {
    (!s.bytes()
        .any(|b| b == b'"' || b == b'\\' || b.is_ascii_control()))
    .then_some(s)
}

impl Auth {
    fn realm(&self, req: &Request) -> String {
        if let Some(r) = &self.opts.realm {
            return r.clone();
        }
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(quotable)
            .filter(|h| !h.contains('/'))
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let scheme = if self.opts.https { "https" } else { "http" };
        format!("{scheme}://{host}{TOKEN_PATH}")
    }

    fn challenge(
        &self,
        req: &Request,
        scopes: &[(&str, String, &str)],
        error: Option<&str>,
    ) -> String {
        match self.opts.challenge {
            Challenge::Basic => format!("Basic realm=\"{}\"", self.opts.service),
            Challenge::Bearer => {
                let mut c = format!(
                    "Bearer realm=\"{}\",service=\"{}\"",
                    self.realm(req),
                    self.opts.service
                );
                let scope: Vec<String> = scopes
                    .iter()
                    .filter(|(_, name, _)| quotable(name).is_some())
                    .map(|(kind, name, action)| match *action {
                        "pull" | "*" => format!("{kind}:{name}:{action}"),
                        _ => format!("{kind}:{name}:pull,{action}"),
                    })
                    .collect();
                if !scope.is_empty() {
                    c.push_str(&format!(",scope=\"{}\"", scope.join(" ")));
                }
                if let Some(e) = error {
                    c.push_str(&format!(",error=\"{e}\""));
                }
                c
            }
        }
    }

    fn unauthorized(
        &self,
        req: &Request,
        scopes: &[(&str, String, &str)],
        error: Option<&str>,
        failed_login: bool,
    ) -> Response {
        let mut resp = error_body(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        );
        if let Ok(v) = HeaderValue::from_str(&self.challenge(req, scopes, error)) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        if failed_login {
            resp.extensions_mut().insert(LoginFailed);
        }
        resp
    }
}

enum Presented {
    None,
    Basic(String, String),
    Bearer(String),
    Unusable,
}

fn presented(req: &Request) -> Presented {
    let Some(v) = req.headers().get(header::AUTHORIZATION) else {
        return Presented::None;
    };
    let Ok(v) = v.to_str() else {
        return Presented::Unusable;
    };
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let Some((u, p)) = STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            })
        else {
            return Presented::Unusable;
        };
        Presented::Basic(u, p)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Presented::Bearer(rest.to_string())
    } else {
        Presented::Unusable
    }
}

fn with_user(mut resp: Response, user: Option<String>) -> Response {
    if let Some(u) = user {
        resp.extensions_mut().insert(AuthenticatedUser(u));
    }
    resp
}

#[derive(Serialize)]
struct TokenResponse {
    token: String,
    access_token: String,
    expires_in: u64,
    issued_at: String,
}

async fn token_endpoint(auth: &Auth, req: Request) -> Response {
    if req.method() != Method::GET {
        // containerd POSTs an OAuth2 form first and falls back to GET on 404/405.
        let mut r = error_body(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "the token endpoint takes GET",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    let scopes: Vec<String> = Query::<Vec<(String, String)>>::try_from_uri(req.uri())
        .map(|Query(q)| {
            q.into_iter()
                .filter(|(k, _)| k == "scope")
                // One parameter may hold several space-separated scopes.
                .flat_map(|(_, v)| v.split(' ').map(String::from).collect::<Vec<_>>())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if scopes.len() > MAX_SCOPES {
        return error_body(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            &format!("at most {MAX_SCOPES} scopes per token request"),
        );
    }
    let (user, rights) = match presented(&req) {
        Presented::Basic(u, p) => match auth.check_password(&u, &p).await {
            Some(a) => (Some(u), a),
            None => return auth.unauthorized(&req, &[], None, true),
        },
        Presented::None => match auth.rights(None) {
            Some(a) => (None, a),
            None => return auth.unauthorized(&req, &[], None, false),
        },
        Presented::Bearer(_) | Presented::Unusable => {
            return auth.unauthorized(&req, &[], None, true);
        }
    };
    let now = now_secs();
    let token = auth.issue_token(
        user.as_deref().unwrap_or(""),
        Auth::grant(rights, &scopes),
        now,
    );
    let body = TokenResponse {
        access_token: token.clone(),
        token,
        expires_in: auth.opts.token_ttl.as_secs(),
        issued_at: oci::time::rfc3339_utc(now),
    };
    let resp = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        serde_json::to_string(&body).unwrap_or_default(),
    )
        .into_response();
    with_user(resp, user)
}

/// The middleware (use it through [`protect`], which routes [`TOKEN_PATH`]): lets a request through only with
/// credentials that allow it (401 with a challenge without them, 403 `DENIED` when the user may
/// not do this). Credentials are never logged.
pub async fn middleware(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    if req.uri().path() == TOKEN_PATH {
        // The route [`protect`] adds; it checks its own credentials.
        return next.run(req).await;
    }
    let need = need(&req);
    let denied = || {
        error_body(
            StatusCode::FORBIDDEN,
            "DENIED",
            "requested access to the resource is denied",
        )
    };
    let user = match presented(&req) {
        Presented::None => match auth.rights(None) {
            Some(a) if a >= need.access => None,
            _ => return auth.unauthorized(&req, &need.scopes, None, false),
        },
        Presented::Unusable => return auth.unauthorized(&req, &need.scopes, None, true),
        Presented::Basic(u, p) => match auth.check_password(&u, &p).await {
            None => return auth.unauthorized(&req, &need.scopes, None, true),
            Some(a) if a < need.access => return with_user(denied(), Some(u)),
            Some(_) => Some(u),
        },
        Presented::Bearer(t) => match auth.verify_token(&t, now_secs()) {
            Err(_) => {
                return auth.unauthorized(&req, &need.scopes, Some("invalid_token"), true);
            }
            Ok((sub, grants)) => {
                let sub = (!sub.is_empty()).then_some(sub);
                // Rights are looked up now, not trusted from the token, so a user removed from
                // the write file loses push at once.
                match auth.rights(sub.as_deref()) {
                    // Anonymous: credentials would help, so challenge rather than deny.
                    Some(a) if a < need.access && sub.is_none() => {
                        return auth.unauthorized(&req, &need.scopes, None, false);
                    }
                    Some(a) if a < need.access => return with_user(denied(), sub),
                    None => return auth.unauthorized(&req, &need.scopes, None, true),
                    Some(_) => {}
                }
                if !grants_cover(&grants, &need.scopes) {
                    let mut r =
                        auth.unauthorized(&req, &need.scopes, Some("insufficient_scope"), false);
                    r.extensions_mut().remove::<LoginFailed>();
                    return with_user(r, sub);
                }
                sub
            }
        },
    };
    if let Some(u) = &user {
        req.extensions_mut().insert(AuthenticatedUser(u.clone()));
    }
    with_user(next.run(req).await, user)
}

/// `router` behind authentication, with the token endpoint added as a route of its own: a
/// `Router::merge` later replaces the fallback the middleware was layered on, so a token endpoint
/// answered only from the middleware for unrouted paths would vanish (skopeo got 404 from it).
pub fn protect(router: Router, auth: Arc<Auth>) -> Router {
    let token_auth = auth.clone();
    router
        .route(
            TOKEN_PATH,
            axum::routing::any(move |req: Request| {
                let auth = token_auth.clone();
                async move { token_endpoint(&auth, req).await }
            }),
        )
        .layer(axum::middleware::from_fn_with_state(auth, middleware))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn scopes_are_cut_to_the_users_rights() {
        let req = vec![
            "repository:team/app:pull,push".to_string(),
            "repository:reg.local:5000/x:*".to_string(),
            "registry:catalog:*".to_string(),
            "bogus".to_string(),
        ];
        let read = Auth::grant(Access::Read, &req);
        assert_eq!(read[0].actions, ["pull"]);
        assert_eq!(read[1].name, "reg.local:5000/x");
        assert_eq!(read[1].actions, ["pull"]);
        assert_eq!(read[2].kind, "registry");
        assert_eq!(read.len(), 3);
        let write = Auth::grant(Access::Write, &req);
        assert_eq!(write[0].actions, ["pull", "push"]);
        assert_eq!(write[1].actions, ["pull", "push", "delete"]);
    }
}
