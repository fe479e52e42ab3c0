//! One request, done right: authenticate from the cache, answer a 401 challenge once, retry
//! 5xx and connection errors with exponential backoff, honour `429 Retry-After`.

use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode, Url};

use super::{Client, Repo};
use crate::auth::{Challenge, Credential, HostAuth, Scopes, Token, TokenResponse};
use crate::error::Error;

/// A request body: replayable bytes, or a stream that can be sent only once.
pub(crate) enum Body {
    Empty,
    Bytes(bytes::Bytes),
    Stream(Option<reqwest::Body>),
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
    /// Sends `req` for `repo` with `scopes`, handling auth and retries. Returns any response that
    /// is not 401 / 429 / 5xx; callers judge the rest.
    pub(crate) async fn send(
        &self,
        repo: &Repo,
        scopes: &Scopes,
        mut req: Request,
    ) -> Result<Response, Error> {
        let opts = &self.inner.opts;
        let mut attempt: u32 = 0;
        let mut challenged = false;
        loop {
            attempt += 1;
            let auth = self.auth_header(repo, scopes).await?;
            let mut rb = self
                .inner
                .http
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone());
            if let Some(a) = &auth {
                rb = rb.header(AUTHORIZATION, a);
            }
            let replayable = !matches!(req.body, Body::Stream(_));
            rb = match &mut req.body {
                Body::Empty => rb,
                Body::Bytes(b) => rb.body(b.clone()),
                Body::Stream(s) => match s.take() {
                    Some(s) => rb.body(s),
                    None => {
                        return Err(Error::Config {
                            reason: format!("stream body for {} already sent", show(&req.url)),
                        });
                    }
                },
            };
            let can_retry = replayable && attempt <= opts.retries;
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    if can_retry
                        && (e.is_connect() || e.is_timeout() || e.is_request() || e.is_body())
                    {
                        tracing::debug!(url = %show(&req.url), error = %e, attempt, "retrying after network error");
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(Error::Network {
                        url: show(&req.url),
                        source: e,
                    });
                }
            };
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
                        return Err(unauthorized(repo, &req.url, status));
                    }
                    attempt -= 1; // answering a challenge is not a retry
                    continue;
                }
                StatusCode::UNAUTHORIZED => return Err(unauthorized(repo, &req.url, status)),
                StatusCode::TOO_MANY_REQUESTS
                | StatusCode::INTERNAL_SERVER_ERROR
                | StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT => {
                    if !can_retry {
                        if !replayable {
                            return Ok(resp);
                        }
                        return Err(Error::RetriesExhausted {
                            url: show(&req.url),
                            attempts: attempt,
                            status: status.as_u16(),
                        });
                    }
                    let wait = retry_after(resp.headers())
                        .map(|d| d.min(opts.max_backoff))
                        .unwrap_or_else(|| self.backoff(attempt));
                    tracing::debug!(url = %show(&req.url), status = status.as_u16(), ?wait, "retrying");
                    drop(resp);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                _ => return Ok(resp),
            }
        }
    }

    /// Exponential backoff with jitter: `backoff * 2^(attempt-1)`, ±25%, capped.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let opts = &self.inner.opts;
        let base = opts
            .backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(opts.max_backoff);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = f64::from(nanos % 500) / 1000.0 + 0.75; // 0.75 ..= 1.25
        base.mul_f64(jitter).min(opts.max_backoff)
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

    /// Fetches (and caches) a bearer token for `scopes` from `realm`.
    async fn fetch_token(
        &self,
        repo: &Repo,
        realm: &str,
        service: Option<&str>,
        scopes: &Scopes,
    ) -> Result<String, Error> {
        let host = repo.registry.as_str();
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
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
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
            match rb.send().await {
                Ok(r) if r.status().is_server_error() && attempt <= self.inner.opts.retries => {}
                Ok(r) => break r,
                Err(e)
                    if attempt <= self.inner.opts.retries && (e.is_connect() || e.is_timeout()) => {
                }
                Err(e) => return Err(err(e.to_string())),
            }
            tokio::time::sleep(self.backoff(attempt)).await;
        };
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            if status == 401 || status == 403 {
                return Err(Error::Unauthorized {
                    host: host.to_string(),
                    url: show(&url),
                    status,
                });
            }
            return Err(err(format!("HTTP {status}")));
        }
        let body = resp.bytes().await.map_err(|e| err(e.to_string()))?;
        let tr: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| err(format!("bad token response: {e}")))?;
        let value = tr
            .token
            .or(tr.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| err("no token in response".to_string()))?;
        let expires = Instant::now() + Duration::from_secs(tr.expires_in.unwrap_or(60).max(60));
        let mut cache = self.inner.auth.lock().await;
        if let Some(rt) = tr.refresh_token {
            cache.refresh.insert(host.to_string(), rt);
        }
        cache.tokens.insert(
            (host.to_string(), scopes.clone()),
            Token {
                value: value.clone(),
                expires,
            },
        );
        Ok(value)
    }
}

fn unauthorized(repo: &Repo, url: &Url, status: StatusCode) -> Error {
    Error::Unauthorized {
        host: repo.registry.clone(),
        url: show(url),
        status: status.as_u16(),
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Reads a distribution error body (`{"errors":[{"code","message"}]}`) into a short detail.
pub(crate) async fn status_error(method: &str, url: &Url, resp: Response) -> Error {
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap_or_default();
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?;
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
            Some(format!("{code}: {msg}"))
        });
    Error::Status {
        method: method.to_string(),
        url: show(url),
        status,
        detail,
    }
}
