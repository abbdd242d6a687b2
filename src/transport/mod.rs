//! HTTP to one registry: scheme choice, TLS, authentication, retries,
//! redirects, capped body reads and registry errors.
//!
//! Owns the wire: a [`Transport`] sends a [`Request`] and hands back a
//! [`Response`] for any final status, or a [`TransportError`]. A 401 never
//! leaves this module (auth answers it or it becomes an auth error).
//! Knows nothing of images or manifests: paths come from the store.

pub mod auth;
pub mod challenge;
mod client;
pub mod dns;
pub mod error;
pub mod limit;
pub mod pace;
pub mod policy;
pub mod retry;
pub mod stats;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use tokio::sync::RwLock;
use url::Url;

pub use auth::Credentials;
use error::{MAX_ERROR_BODY, redact_url};
pub use error::{RegistryError, TransportError};
use retry::{RetryPolicy, Verdict, classify_status};

/// Requests in flight to one registry unless told otherwise.
const DEFAULT_IN_FLIGHT: usize = 16;

/// How to reach one registry.
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// `None`: https, except plain http for loopback hosts (as docker does).
    /// `Some(false)`: https without certificate checks, falling back to
    /// http. `Some(true)`: https with checks, loopback included.
    pub tls_verify: Option<bool>,
    /// docker `certs.d` layout: `*.crt` extra CAs, `*.cert` + `*.key` a
    /// client certificate. Given, it means https even on loopback.
    pub cert_dir: Option<PathBuf>,
    pub credentials: Option<Credentials>,
    pub retry: RetryPolicy,
    /// Requests in flight at most (0: the default, 16); halves on 429.
    pub max_in_flight: usize,
    /// How long a connection may stay silent (`None`: 60 s).
    pub read_timeout: Option<Duration>,
    /// The registry's request and byte rates, shared by every transport
    /// to it.
    pub pace: Option<Arc<pace::Pace>>,
}

/// A request body. Bytes can be sent again on retry; a stream cannot.
pub enum Body {
    Empty,
    Bytes(Bytes),
    Stream(reqwest::Body),
}

/// What to send; `path` is relative to the registry root (`/v2/...`) or an
/// absolute URL the registry gave us (an upload `Location`).
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Body,
    /// Token scopes this request needs (`repository:NAME:pull`).
    pub scopes: Vec<String>,
    /// Retry transient statuses and lost connections (on by default; off
    /// where a registry uses a 5xx for a final answer, and for PATCHes, whose
    /// partial delivery must be resynchronised, not resent).
    pub retry: bool,
    /// Send no credentials at all, whatever the origin (foreign layers).
    pub anonymous: bool,
    /// A large blob body: sent or received on an HTTP/1.1 connection of
    /// its own (see `client::BULK_MIN`).
    pub bulk: bool,
}

impl Request {
    pub fn new(method: Method, url: Url, scopes: Vec<String>) -> Request {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: Body::Empty,
            scopes,
            retry: true,
            anonymous: false,
            bulk: false,
        }
    }

    /// Marks a blob body of `size` bytes, sent or received: large ones go
    /// on HTTP/1.1 (see `client::BULK_MIN`).
    pub fn blob_body(mut self, size: u64) -> Request {
        self.bulk = size >= client::BULK_MIN;
        self
    }

    pub fn anonymous(mut self) -> Request {
        self.anonymous = true;
        self
    }

    pub fn no_retry(mut self) -> Request {
        self.retry = false;
        self
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> Request {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    pub fn body(mut self, body: Body) -> Request {
        self.body = body;
        self
    }
}

/// A final answer from the registry.
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub method: Method,
    /// The URL that answered (after redirects).
    pub url: Url,
    inner: reqwest::Response,
    pace: Option<Arc<pace::Pace>>,
}

impl Response {
    fn new(method: Method, inner: reqwest::Response, pace: Option<Arc<pace::Pace>>) -> Response {
        Response {
            pace,
            status: inner.status(),
            headers: inner.headers().clone(),
            method,
            url: inner.url().clone(),
            inner,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body, refusing more than `limit` bytes (checked against
    /// `Content-Length` before reading, and while reading).
    pub async fn bytes_capped(self, limit: u64) -> Result<Bytes, TransportError> {
        let (method, url) = (self.method.clone(), self.url.clone());
        read_capped(self.inner, limit)
            .await
            .map_err(|_| TransportError::TooLarge {
                method,
                url: redact_url(&url),
                limit,
            })
    }

    /// The body as a stream of chunks (at the registry's byte rate, if
    /// it has one).
    pub fn into_stream(self) -> BoxStream<'static, Result<Bytes, TransportError>> {
        let (method, url) = (self.method, self.url);
        let stream = self
            .inner
            .bytes_stream()
            .map(move |r| r.map_err(|e| TransportError::network(&method, &url, &e)));
        match self.pace.filter(|p| p.caps_bytes()) {
            Some(p) => pace::paced(p, stream).boxed(),
            None => stream.boxed(),
        }
    }

    /// Turns an unexpected answer into the registry's own error.
    pub async fn into_error(self) -> TransportError {
        let (method, url, status) = (self.method.clone(), self.url.clone(), self.status);
        let body = read_capped(self.inner, MAX_ERROR_BODY as u64)
            .await
            .unwrap_or_default();
        TransportError::Status(Box::new(RegistryError::new(method, &url, status, &body)))
    }

    /// The `Location` header resolved against the request URL (registries
    /// send both relative and absolute forms; the query, e.g. `_state`, is
    /// kept).
    pub fn location(&self) -> Result<Url, TransportError> {
        let raw = self
            .header(LOCATION.as_str())
            .ok_or_else(|| TransportError::Refused {
                url: redact_url(&self.url),
                why: format!(
                    "{} answered {} without a Location header",
                    self.method,
                    self.status.as_u16()
                ),
            })?;
        let next = self.url.join(raw).map_err(|_| TransportError::Refused {
            url: redact_url(&self.url),
            why: "the Location header is not a valid URL".to_string(),
        })?;
        policy::check_hop(&self.url, &next).map_err(|why| TransportError::Refused {
            url: redact_url(&next),
            why,
        })?;
        Ok(next)
    }
}

/// Reads at most `limit` bytes of a body; more is an error (`Err(())`, the
/// caller names it).
pub(crate) async fn read_capped(resp: reqwest::Response, limit: u64) -> Result<Bytes, String> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(format!("body larger than {limit} bytes"));
    }
    let mut buf = BytesMut::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| error::describe_reqwest(&e))?;
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(format!("body larger than {limit} bytes"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// HTTP to one registry, shared by every request to it (connections are
/// pooled by the client).
pub struct Transport {
    registry: String,
    base: RwLock<Url>,
    /// http is acceptable if https does not answer (insecure registries).
    may_fall_back_to_http: bool,
    clients: client::Clients,
    auth: auth::Auth,
    retry: RetryPolicy,
    limit: limit::AdaptiveLimit,
    stats: stats::Stats,
    pace: Option<Arc<pace::Pace>>,
}

impl Transport {
    /// `registry` is `host[:port]` as in a reference; `loopback` says whether
    /// it is this machine.
    pub fn new(
        registry: &str,
        loopback: bool,
        options: TransportOptions,
    ) -> Result<Transport, TransportError> {
        let plain_http = options.tls_verify.is_none() && options.cert_dir.is_none() && loopback;
        let scheme = if plain_http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{registry}/")).map_err(|_| {
            TransportError::Refused {
                url: registry.to_string(),
                why: "not a valid registry address".to_string(),
            }
        })?;
        let insecure = options.tls_verify == Some(false);
        let clients =
            client::Clients::build(&base, &options).map_err(|why| TransportError::Refused {
                url: registry.to_string(),
                why,
            })?;
        Ok(Transport {
            registry: registry.to_string(),
            auth: auth::Auth::new(registry, base.clone(), options.credentials),
            base: RwLock::new(base),
            may_fall_back_to_http: insecure,
            clients,
            retry: options.retry,
            limit: limit::AdaptiveLimit::new(if options.max_in_flight == 0 {
                DEFAULT_IN_FLIGHT
            } else {
                options.max_in_flight
            }),
            stats: stats::Stats::default(),
            pace: options.pace,
        })
    }

    /// A blob body to send, at the registry's byte rate if it has one.
    pub fn paced_body<S, E>(&self, stream: S) -> reqwest::Body
    where
        S: futures::Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
    {
        match self.pace.clone().filter(|p| p.caps_bytes()) {
            Some(p) => reqwest::Body::wrap_stream(pace::paced(p, stream)),
            None => reqwest::Body::wrap_stream(stream),
        }
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// What this transport has done so far.
    pub fn stats(&self) -> &stats::Stats {
        &self.stats
    }

    /// `path` (with query) resolved against the registry root.
    /// The registry's root URL (scheme, host, port).
    pub async fn base(&self) -> Url {
        self.base.read().await.clone()
    }

    pub async fn url(&self, path_and_query: &str) -> Url {
        let base = self.base.read().await;
        base.join(path_and_query).unwrap_or_else(|_| base.clone())
    }

    /// Sends a request, answering auth challenges and retrying transient
    /// failures when the body can be sent again. Returns the final response
    /// whatever its status (but never a 401).
    pub async fn send(&self, mut req: Request) -> Result<Response, TransportError> {
        // A streamed body goes out once; bytes can be sent again.
        let mut stream_body = match std::mem::replace(&mut req.body, Body::Empty) {
            Body::Stream(s) => Some(s),
            other => {
                req.body = other;
                None
            }
        };
        let replayable = stream_body.is_none();
        let mut attempt = 0u32;
        let mut hops = 0usize;
        let mut auth_retried = false;
        loop {
            attempt += 1;
            // Credentials go only to the registry's own origin; an upload
            // Location elsewhere gets none.
            let own_origin = !req.anonymous && req.url.origin() == self.base.read().await.origin();
            let authorization = if own_origin {
                self.auth.header(&self.clients, &req.scopes).await?
            } else {
                None
            };
            let had_header = authorization.is_some();
            let resp = match self.dispatch(&req, stream_body.take(), authorization).await {
                Ok(r) => r,
                Err(e) => {
                    self.stats.record(&req.method, 0, None);
                    self.after_failure(&mut req, e, replayable, attempt).await?;
                    self.stats.retried();
                    continue;
                }
            };
            let status = resp.status();
            self.stats
                .record(&req.method, status.as_u16(), Some(resp.headers()));
            self.limit.observe(status);
            if self.clients.stops_foreign_redirects && status.is_redirection() && replayable {
                req.url = self.foreign_hop(&req, &resp, &mut hops)?;
                attempt -= 1;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED {
                let answered_by_registry = resp.url().origin() == self.base.read().await.origin();
                let scopes = self
                    .after_401(
                        &resp,
                        &req,
                        own_origin && answered_by_registry && !auth_retried,
                        had_header,
                    )
                    .await?;
                if !replayable {
                    // The body is spent: the caller must reopen its source.
                    return Err(TransportError::Resend {
                        method: req.method.clone(),
                        url: redact_url(&req.url),
                        why: "401 after the token expired".into(),
                    });
                }
                req.scopes = scopes;
                auth_retried = true;
                attempt -= 1;
                continue;
            }
            if classify_status(status) == Verdict::Retry
                && replayable
                && req.retry
                && let Some(wait) = self.retry.delay(attempt, Some(resp.headers()))
            {
                tracing::debug!(method = %req.method, url = %redact_url(&req.url), status = status.as_u16(), attempt, ?wait, "retrying");
                self.stats.retried();
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(Response::new(req.method.clone(), resp, self.pace.clone()));
        }
    }

    /// One attempt on the wire, holding a slot of the request limiter.
    async fn dispatch(
        &self,
        req: &Request,
        stream_body: Option<reqwest::Body>,
        authorization: Option<HeaderValue>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut builder = self
            .clients
            .for_url(&req.url, req.bulk)
            .request(req.method.clone(), req.url.clone())
            .headers(req.headers.clone());
        if let Some(h) = authorization {
            builder = builder.header(AUTHORIZATION, h);
        }
        builder = match (&req.body, stream_body) {
            (_, Some(stream)) => builder.body(stream),
            (Body::Bytes(b), None) => builder.body(b.clone()),
            _ => builder,
        };
        if let Some(p) = &self.pace {
            p.request().await;
        }
        let _slot = self.limit.acquire().await;
        builder.send().await
    }

    /// After an attempt got no answer: `Ok(())` to try again (after a
    /// backoff, or over plain http for an insecure registry), or the error.
    async fn after_failure(
        &self,
        req: &mut Request,
        e: reqwest::Error,
        replayable: bool,
        attempt: u32,
    ) -> Result<(), TransportError> {
        if e.is_redirect() || refused_by_resolver(&e) {
            // A refused hop, a loop, a name that resolves inward:
            // deterministic, never retried.
            return Err(TransportError::Refused {
                url: redact_url(&req.url),
                why: error::describe_reqwest(&e),
            });
        }
        if self.fall_back_to_http(&mut req.url, &e).await {
            return if replayable {
                Ok(())
            } else {
                Err(TransportError::network(&req.method, &req.url, &e))
            };
        }
        match self.retry.delay(attempt, None) {
            Some(wait) if replayable && req.retry => {
                tracing::debug!(method = %req.method, url = %redact_url(&req.url), attempt, "retrying after network error: {}", error::describe_reqwest(&e));
                tokio::time::sleep(wait).await;
                Ok(())
            }
            _ => Err(TransportError::network(&req.method, &req.url, &e)),
        }
    }

    /// A hop to another origin that the client holding a certificate
    /// stopped at: followed without it (the next request goes out through
    /// the foreign client), within the hop cap and the hop policy.
    fn foreign_hop(
        &self,
        req: &Request,
        resp: &reqwest::Response,
        hops: &mut usize,
    ) -> Result<Url, TransportError> {
        *hops += 1;
        let refused = |why: String| TransportError::Refused {
            url: redact_url(&req.url),
            why,
        };
        if *hops > client::MAX_REDIRECTS {
            return Err(refused("too many redirects".into()));
        }
        let next = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| resp.url().join(l).ok())
            .ok_or_else(|| refused("a redirect without a usable Location".into()))?;
        policy::check_hop(resp.url(), &next).map_err(refused)?;
        Ok(next)
    }

    /// After a 401: the scopes to send the request again with, or the auth
    /// error. `may_retry` is false when the 401 came from another origin
    /// (a redirect target, an upload Location elsewhere: it gets nothing of
    /// ours), when the request was not ours to authenticate, or when a
    /// retry already happened (no auth loops).
    async fn after_401(
        &self,
        resp: &reqwest::Response,
        req: &Request,
        may_retry: bool,
        had_header: bool,
    ) -> Result<Vec<String>, TransportError> {
        if !may_retry {
            return Err(self.auth.refused().await);
        }
        match self
            .auth
            .on_unauthorized(resp.headers(), &req.scopes, had_header)
            .await?
        {
            auth::Unauthorized::GiveUp => Err(self.auth.refused().await),
            auth::Unauthorized::Retry(scopes) => Ok(scopes),
        }
    }

    /// For an insecure registry whose https does not answer: switch to http
    /// once, for this and every later request.
    async fn fall_back_to_http(&self, url: &mut Url, err: &reqwest::Error) -> bool {
        if !self.may_fall_back_to_http || !err.is_connect() || url.scheme() != "https" {
            return false;
        }
        let mut base = self.base.write().await;
        if url.host_str() != base.host_str() {
            return false;
        }
        let _ = base.set_scheme("http");
        let _ = url.set_scheme("http");
        tracing::info!(registry = %self.registry, "https failed, using plain http");
        true
    }
}

/// Whether the name resolver refused an address (see `dns`).
fn refused_by_resolver(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<dns::InternalAddress>() {
            return true;
        }
        source = s.source();
    }
    false
}
