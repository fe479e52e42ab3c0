//! One request, done right: authenticate from the cache, answer a 401 challenge once, fetch
//! bearer tokens, and hand 5xx / 429 (with `Retry-After`) and connection errors to the retry
//! policy as transient failures.

use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;

use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode, Url};

use super::policy::{
    Capped, Failure, MAX_ERROR_BODY, MAX_TOKEN_RESPONSE, Progress, idle_guard, network_error,
    read_capped,
};
use super::{Client, Repo};
use crate::auth::{Challenge, Credential, HostAuth, Scopes, Token, parse_token_response};
use oci::error::Error;
use oci::stream::BlobStream;

/// A request body: replayable bytes, or a stream that can be sent only once.
pub(crate) enum Body {
    Empty,
    Bytes(bytes::Bytes),
    Stream(Option<BlobStream>),
}

pub(crate) struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Body,
}

impl Request {
    pub fn new(method: Method, url: Url) -> Request {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: Body::Empty,
        }
    }

    pub fn header(mut self, name: reqwest::header::HeaderName, value: &str) -> Request {
        if let Ok(v) = reqwest::header::HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }
}

/// The URL without query (upload locations carry session state, never credentials, but keep
/// messages short).
pub(crate) fn show(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

impl Client {
    /// [`Client::send_once`] under the retry policy, for requests whose body can be replayed.
    /// Returns any response that is not 401 / 429 / 5xx; callers judge the rest.
    pub(crate) async fn send(
        &self,
        repo: &Repo,
        scopes: &Scopes,
        mut req: Request,
    ) -> Result<Response, Error> {
        let mut tries = self.inner.opts.retry.start();
        loop {
            match self.send_once(repo, scopes, &mut req).await {
                Ok(r) => return Ok(r),
                Err(f) => tries.failed(f).await?,
            }
        }
    }

    /// One attempt: authenticates from the cache and answers a 401 challenge once (that is not
    /// a retry). 429 and 5xx come back as failures carrying `Retry-After`, for the policy.
    pub(crate) async fn send_once(
        &self,
        repo: &Repo,
        scopes: &Scopes,
        req: &mut Request,
    ) -> Result<Response, Failure> {
        let mut challenged = false;
        loop {
            let auth = self.auth_header(repo, scopes).await?;
            if auth.is_some() {
                self.check_clear_text(&repo.registry, &req.url)?;
            }
            let mut rb = self
                .inner
                .http
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone());
            if let Some(a) = &auth {
                rb = rb.header(AUTHORIZATION, a);
            }
            let replayable = !matches!(req.body, Body::Stream(_));
            let progress = Progress::new();
            rb = match &mut req.body {
                Body::Empty => rb,
                Body::Bytes(b) => rb.body(b.clone()),
                Body::Stream(s) => match s.take() {
                    Some(s) => {
                        let p = progress.clone();
                        rb.body(reqwest::Body::wrap_stream(s.inspect(move |_| p.touch())))
                    }
                    None => {
                        return Err(Error::Config {
                            reason: format!("stream body for {} already sent", show(&req.url)),
                        }
                        .into());
                    }
                },
            };
            let timeouts = &self.inner.opts.timeouts;
            let resp = idle_guard(timeouts.idle, &progress, rb.send())
                .await
                .ok_or_else(|| Error::Timeout {
                    url: show(&req.url),
                    phase: "read",
                    after: timeouts.idle,
                })?
                .map_err(|e| network_error(&req.url, e, timeouts))?;
            let status = resp.status();
            match status {
                StatusCode::UNAUTHORIZED if !challenged && replayable => {
                    challenged = true;
                    let header = resp
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let progressed = self
                        .on_challenge(repo, scopes, header.as_deref(), auth.is_some())
                        .await?;
                    if !progressed {
                        return Err(unauthorized(repo, &req.url, status).into());
                    }
                }
                StatusCode::UNAUTHORIZED => return Err(unauthorized(repo, &req.url, status).into()),
                StatusCode::TOO_MANY_REQUESTS
                | StatusCode::INTERNAL_SERVER_ERROR
                | StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT => {
                    let retry_after = retry_after(resp.headers());
                    let error = self
                        .status_error(req.method.as_str(), &req.url.clone(), resp)
                        .await;
                    return Err(Failure { error, retry_after });
                }
                _ => return Ok(resp),
            }
        }
    }

    /// The `Authorization` value for a request, from what the host asked for before.
    async fn auth_header(&self, repo: &Repo, scopes: &Scopes) -> Result<Option<String>, Error> {
        let host = repo.registry.as_str();
        let known = self.inner.auth.lock().await.hosts.get(host).cloned();
        match known {
            None => Ok(None),
            Some(HostAuth::Basic) => {
                Ok(self.credential(host).await?.and_then(|c| c.basic_header()))
            }
            Some(HostAuth::Bearer { realm, service }) => {
                if let Some(t) = self.inner.auth.lock().await.token(host, scopes) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let t = self
                    .fetch_token(repo, &realm, service.as_deref(), scopes)
                    .await?;
                Ok(Some(format!("Bearer {t}")))
            }
        }
    }

    /// Learns from a 401. Returns whether a retry could now succeed.
    async fn on_challenge(
        &self,
        repo: &Repo,
        scopes: &Scopes,
        header: Option<&str>,
        had_auth: bool,
    ) -> Result<bool, Error> {
        let host = repo.registry.as_str();
        let challenge = header.and_then(crate::auth::parse_challenge);
        let mut cache = self.inner.auth.lock().await;
        match challenge {
            Some(Challenge::Basic) => {
                drop(cache);
                if self.credential(host).await?.is_none() {
                    return Ok(false);
                }
                let mut cache = self.inner.auth.lock().await;
                cache.hosts.insert(host.to_string(), HostAuth::Basic);
                // Sent without credentials (first contact, or a concurrent request learnt the
                // scheme meanwhile): retry with them. Sent with them: they are wrong.
                Ok(!had_auth)
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                cache.hosts.insert(
                    host.to_string(),
                    HostAuth::Bearer {
                        realm: realm.clone(),
                        service: service.clone(),
                    },
                );
                // A token we had was refused (expired or revoked): get a fresh one for the union
                // of our scopes and the registry's, stored under our scopes.
                cache.tokens.remove(&(host.to_string(), scopes.clone()));
                drop(cache);
                let wanted = match &scope {
                    Some(s) => scopes.clone().with_str(s),
                    None => scopes.clone(),
                };
                let token = self
                    .fetch_token(repo, &realm, service.as_deref(), &wanted)
                    .await?;
                if &wanted != scopes {
                    let mut cache = self.inner.auth.lock().await;
                    let t = cache
                        .tokens
                        .get(&(host.to_string(), wanted.clone()))
                        .cloned();
                    cache.tokens.insert(
                        (host.to_string(), scopes.clone()),
                        t.unwrap_or(Token {
                            value: token,
                            expires: Instant::now() + Duration::from_secs(60),
                        }),
                    );
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Fetches (and caches) a bearer token for `scopes` from `realm`: one attempt, retried
    /// with the request it belongs to. Credentials go to a plain-HTTP realm only when its host
    /// is marked insecure; an anonymous request carries no secret and may go anywhere.
    async fn fetch_token(
        &self,
        repo: &Repo,
        realm: &str,
        service: Option<&str>,
        scopes: &Scopes,
    ) -> Result<String, Error> {
        let host = repo.registry.as_str();
        let timeouts = &self.inner.opts.timeouts;
        let cred = self.credential(host).await?;
        let refresh = match &cred {
            Some(Credential::IdentityToken(t)) => Some(t.clone()),
            _ => self.inner.auth.lock().await.refresh.get(host).cloned(),
        };
        let err = |reason: String| Error::Token {
            realm: realm.to_string(),
            scope: scopes.joined(),
            reason,
        };
        let mut url = Url::parse(realm).map_err(|e| err(format!("bad realm: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err(format!("realm scheme {:?} is not HTTP", url.scheme())));
        }
        if cred.is_some() || refresh.is_some() {
            self.check_clear_text(host, &url)?;
        }
        let rb = if let Some(rt) = &refresh {
            let mut form: Vec<(&str, &str)> = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", "airlock"),
            ];
            if let Some(s) = service {
                form.push(("service", s));
            }
            let scope = scopes.joined();
            form.push(("scope", &scope));
            self.inner.http.post(url.clone()).form(&form)
        } else {
            {
                let mut q = url.query_pairs_mut();
                q.clear();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                for s in scopes.iter() {
                    q.append_pair("scope", s);
                }
                if cred.is_some() {
                    q.append_pair("client_id", "airlock");
                    q.append_pair("offline_token", "true");
                }
            }
            let mut rb = self.inner.http.get(url.clone());
            if let Some(b) = cred.as_ref().and_then(Credential::basic_header) {
                rb = rb.header(AUTHORIZATION, b);
            }
            rb
        };
        let mut resp = tokio::time::timeout(timeouts.idle, rb.send())
            .await
            .map_err(|_| Error::Timeout {
                url: show(&url),
                phase: "read",
                after: timeouts.idle,
            })?
            .map_err(|e| network_error(&url, e, timeouts))?;
        let status = resp.status();
        if !status.is_success() {
            let code = status.as_u16();
            if code == 401 || code == 403 {
                return Err(Error::Unauthorized {
                    host: host.to_string(),
                    url: show(&url),
                    status: code,
                });
            }
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                // Transient: the policy retries the request this token is for.
                return Err(self.status_error("GET", &url, resp).await);
            }
            return Err(err(format!("HTTP {code}")));
        }
        let body = match read_capped(&mut resp, &url, MAX_TOKEN_RESPONSE, timeouts).await? {
            Capped::Whole(b) => b,
            Capped::TooLarge => {
                return Err(err(format!(
                    "response larger than {MAX_TOKEN_RESPONSE} bytes"
                )));
            }
        };
        let grant = parse_token_response(&body).map_err(err)?;
        let expires = Instant::now() + Duration::from_secs(grant.expires_in.unwrap_or(60).max(60));
        let mut cache = self.inner.auth.lock().await;
        if let Some(rt) = grant.refresh_token {
            cache.refresh.insert(host.to_string(), rt);
        }
        cache.tokens.insert(
            (host.to_string(), scopes.clone()),
            Token {
                value: grant.token.clone(),
                expires,
            },
        );
        Ok(grant.token)
    }

    /// An [`Error::Status`] for a response the operation does not accept, with the registry's
    /// message from the first [`MAX_ERROR_BODY`] bytes of its body; the rest is never read.
    pub(crate) async fn status_error(&self, method: &str, url: &Url, mut resp: Response) -> Error {
        let status = resp.status().as_u16();
        let body =
            match read_capped(&mut resp, url, MAX_ERROR_BODY, &self.inner.opts.timeouts).await {
                Ok(Capped::Whole(b)) => b,
                // A cut-off JSON document does not parse; no detail then, only the status.
                Ok(Capped::TooLarge) | Err(_) => bytes::Bytes::new(),
            };
        Error::Status {
            method: method.to_string(),
            url: show(url),
            status,
            detail: parse_error_detail(&body),
        }
    }
}

fn unauthorized(repo: &Repo, url: &Url, status: StatusCode) -> Error {
    Error::Unauthorized {
        host: repo.registry.clone(),
        url: show(url),
        status: status.as_u16(),
    }
}

/// `Retry-After` of a response.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    parse_retry_after(headers.get(RETRY_AFTER)?.to_str().ok()?)
}

/// A `Retry-After` value: seconds or an HTTP date (a date in the past is no wait).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The first error of a distribution error body (`{"errors":[{"code","message"}]}`) as
/// `CODE: message`, shortened to a line's worth.
pub fn parse_error_detail(body: &[u8]) -> Option<String> {
    const MAX: usize = 300;
    let v = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    let e = v.get("errors")?.get(0)?;
    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
    let mut s: String = format!("{code}: {msg}")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    Some(s)
}
