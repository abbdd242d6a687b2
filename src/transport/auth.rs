//! Authentication as a layer around HTTP: learns the scheme from a
//! registry's `WWW-Authenticate` challenge, sends Basic credentials or
//! Bearer tokens, caches tokens per scope set and refreshes them on a 401.
//!
//! Owns token exchange and the realm policy (where a credential may be
//! sent); the challenge grammar is `challenge`'s. Never sees an image, a manifest or a copy
//! decision; never prints a credential or a token (their `Debug` is
//! redacted).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use super::challenge::parse_challenges;
use super::client::Clients;
use super::error::{TransportError, describe_reqwest, redact_url};
use super::policy::check_realm;
pub use crate::credentials::Credentials;

/// The most of a token response we read: a JWT is a few KiB; a server that
/// sends more is broken or hostile.
pub const MAX_TOKEN_BODY: u64 = 1024 * 1024;
/// Lifetime of a token whose response gives none (the token spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Refresh this long before a token's stated expiry, to absorb clock and
/// network delay.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
/// The longest we keep using one token, whatever the server says: an
/// `expires_in` of 2^64-1 must not overflow a clock (scenario 40), and a day
/// costs one token request.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The `Authorization: Basic` value for `c`, marked sensitive so that no
/// debug output of the HTTP stack shows it.
fn basic_header(c: &Credentials) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD.encode(c.basic_text());
    let mut v = HeaderValue::from_str(&format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    v.set_sensitive(true);
    v
}

/// A token and when to stop using it.
#[derive(Clone)]
struct Token {
    value: String,
    expires: Instant,
}

/// What the registry told us to do, learned from its first challenge.
#[derive(Debug, Clone)]
enum Scheme {
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

/// What a 401 means for the request that got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unauthorized {
    /// Send it again, with these scopes.
    Retry(Vec<String>),
    /// Nothing we hold will do.
    GiveUp,
}

/// The auth state of one registry: credentials, learned scheme, tokens.
pub struct Auth {
    registry: String,
    /// The registry's own URL, for the realm policy.
    registry_url: Url,
    credentials: Mutex<Option<Credentials>>,
    scheme: Mutex<Option<Scheme>>,
    /// One slot per scope set; a slot's lock is held while its token is
    /// fetched, so concurrent requests wait for one token instead of racing.
    tokens: Mutex<HashMap<String, Arc<Mutex<Option<Token>>>>>,
    /// The token server refused the OAuth2 POST once: go straight to GET.
    oauth_post_refused: AtomicBool,
}

/// The token endpoint's answer. Registries use either field name; the OAuth2
/// form may rotate the refresh token.
#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    /// A number, but servers have sent negatives, fractions and strings.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    issued_at: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

impl Auth {
    pub fn new(registry: &str, registry_url: Url, credentials: Option<Credentials>) -> Auth {
        Auth {
            registry: registry.to_string(),
            registry_url,
            credentials: Mutex::new(credentials),
            scheme: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
            oauth_post_refused: AtomicBool::new(false),
        }
    }

    /// The `Authorization` header for a request needing `scopes`, if the
    /// registry asked for one. Fetches a token when none is cached.
    pub(super) async fn header(
        &self,
        clients: &Clients,
        scopes: &[String],
    ) -> Result<Option<HeaderValue>, TransportError> {
        let scheme = self.scheme.lock().await.clone();
        match scheme {
            None => Ok(None),
            Some(Scheme::Basic) => match &*self.credentials.lock().await {
                Some(c @ Credentials::Basic { .. }) => Ok(Some(basic_header(c))),
                Some(Credentials::IdentityToken { .. }) => Err(self.auth_error(
                    "the registry wants Basic credentials, but only an identity token was given"
                        .into(),
                )),
                None => Ok(None),
            },
            Some(Scheme::Bearer { realm, service }) => {
                let slot = self
                    .tokens
                    .lock()
                    .await
                    .entry(scope_key(scopes))
                    .or_default()
                    .clone();
                let mut cached = slot.lock().await;
                if let Some(t) = cached.as_ref()
                    && t.expires > Instant::now()
                {
                    return Ok(Some(bearer_header(&t.value)));
                }
                let token = self
                    .fetch_token(clients, &realm, service.as_deref(), scopes)
                    .await?;
                let header = bearer_header(&token.value);
                *cached = Some(token);
                Ok(Some(header))
            }
        }
    }

    /// Learns from a 401 whether and how a retry can succeed.
    /// `had_header`: whether the refused request carried our credentials.
    pub async fn on_unauthorized(
        &self,
        headers: &HeaderMap,
        scopes: &[String],
        had_header: bool,
    ) -> Result<Unauthorized, TransportError> {
        let challenges = parse_challenges(headers);
        let chosen = challenges
            .iter()
            .find(|c| c.scheme == "bearer")
            .or_else(|| challenges.iter().find(|c| c.scheme == "basic"));
        let Some(challenge) = chosen else {
            return Err(self.auth_error(if challenges.is_empty() {
                "401 without a usable WWW-Authenticate challenge".to_string()
            } else {
                "the registry asks for an authentication scheme ocirepl does not speak".to_string()
            }));
        };
        let scheme = match challenge.scheme.as_str() {
            "basic" => {
                if self.credentials.lock().await.is_none() {
                    return Err(self.auth_error(
                        "the registry requires credentials and none were given".into(),
                    ));
                }
                Scheme::Basic
            }
            _ => {
                let realm = challenge
                    .param("realm")
                    .ok_or_else(|| self.auth_error("Bearer challenge without a realm".into()))?;
                let realm = Url::parse(realm).map_err(|_| {
                    self.auth_error("Bearer challenge with an invalid realm URL".into())
                })?;
                check_realm(&self.registry_url, &realm).map_err(|why| TransportError::Refused {
                    url: redact_url(&realm),
                    why,
                })?;
                Scheme::Bearer {
                    realm,
                    service: challenge.param("service").map(str::to_string),
                }
            }
        };
        let mut current = self.scheme.lock().await;
        let known = matches!(
            (&*current, &scheme),
            (Some(Scheme::Basic), Scheme::Basic)
                | (Some(Scheme::Bearer { .. }), Scheme::Bearer { .. })
        );
        *current = Some(scheme);
        drop(current);
        if !had_header || !known {
            return Ok(Unauthorized::Retry(scopes.to_vec()));
        }
        // Our header was refused. A token may have expired or lack a scope the
        // registry names; Basic credentials cannot get better by resending.
        let slot = self.tokens.lock().await.get(&scope_key(scopes)).cloned();
        let removed = match slot {
            Some(slot) => slot.lock().await.take().is_some(),
            None => false,
        };
        if challenge.param("error") == Some("insufficient_scope")
            && let Some(named) = challenge.param("scope")
        {
            let mut wider = scopes.to_vec();
            for s in named.split(' ').filter(|s| !s.is_empty()) {
                if !wider.iter().any(|w| w == s) {
                    wider.push(s.to_string());
                }
            }
            if wider.len() > scopes.len() {
                return Ok(Unauthorized::Retry(wider));
            }
        }
        Ok(if removed {
            Unauthorized::Retry(scopes.to_vec())
        } else {
            Unauthorized::GiveUp
        })
    }

    /// The error for a 401 that a retry did not fix.
    pub async fn refused(&self) -> TransportError {
        self.auth_error(match &*self.credentials.lock().await {
            Some(c) if c.username().is_empty() => {
                "the registry refused the identity token".to_string()
            }
            Some(c) => format!(
                "the registry refused the credentials of user {:?}",
                c.username()
            ),
            None => "the registry requires credentials and none were given".to_string(),
        })
    }

    fn auth_error(&self, message: String) -> TransportError {
        TransportError::Auth {
            registry: self.registry.clone(),
            message,
        }
    }

    async fn fetch_token(
        &self,
        clients: &Clients,
        realm: &Url,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<Token, TransportError> {
        let credentials = self.credentials.lock().await.clone();
        let get = |c: Option<&Credentials>| {
            self.token_get(
                clients.for_url(realm, false),
                realm,
                service,
                scopes,
                c.cloned(),
            )
        };
        let resp = match &credentials {
            Some(Credentials::IdentityToken { token, .. })
                if !self.oauth_post_refused.load(Ordering::Relaxed) =>
            {
                let resp = self
                    .oauth_post(&clients.no_redirect, realm, service, scopes, token)
                    .await?;
                if resp.status().is_redirection() {
                    // A refresh token in a body is never re-posted elsewhere.
                    return Err(self.auth_error(format!(
                        "token server {} redirected the refresh-token POST; not followed",
                        redact_url(realm)
                    )));
                }
                // Registries without the OAuth2 form answer these; docker falls
                // back to the GET flow, and so do we (for the rest of the run).
                if matches!(resp.status().as_u16(), 400 | 401 | 404 | 405) {
                    self.oauth_post_refused.store(true, Ordering::Relaxed);
                    tracing::debug!(realm = %redact_url(realm), status = resp.status().as_u16(), "OAuth2 POST refused, trying GET");
                    get(credentials.as_ref()).await?
                } else {
                    resp
                }
            }
            other => get(other.as_ref()).await?,
        };
        let answer = self.read_token_answer(realm, resp).await?;
        if let (Some(new), Some(Credentials::IdentityToken { username, .. })) =
            (answer.refresh_token.as_deref(), &credentials)
        {
            // The server rotated the refresh token: the old one may be dead now.
            *self.credentials.lock().await = Some(Credentials::identity_token(username, new));
        }
        Ok(Token {
            value: answer.token,
            expires: Instant::now()
                .checked_add(answer.lifetime)
                .unwrap_or_else(Instant::now),
        })
    }

    /// The token server's answer, read (capped) and parsed.
    async fn read_token_answer(
        &self,
        realm: &Url,
        resp: reqwest::Response,
    ) -> Result<TokenAnswer, TransportError> {
        let status = resp.status();
        let body = super::read_capped(resp, MAX_TOKEN_BODY)
            .await
            .map_err(|why| {
                self.auth_error(format!("token response from {}: {why}", redact_url(realm)))
            })?;
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(self.refused().await);
        }
        if !status.is_success() {
            return Err(self.auth_error(format!(
                "token server {} answered {}",
                redact_url(realm),
                status.as_u16()
            )));
        }
        parse_token_answer(&body).map_err(|why| {
            self.auth_error(format!("token server {} sent {why}", redact_url(realm)))
        })
    }

    async fn token_get(
        &self,
        client: &reqwest::Client,
        realm: &Url,
        service: Option<&str>,
        scopes: &[String],
        credentials: Option<Credentials>,
    ) -> Result<reqwest::Response, TransportError> {
        let mut url = realm.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let mut req = client.get(url.clone());
        if let Some(c) = credentials {
            req = req.header(reqwest::header::AUTHORIZATION, basic_header(&c));
        }
        req.send().await.map_err(|e| {
            self.auth_error(format!(
                "token request to {} failed: {}",
                redact_url(&url),
                describe_reqwest(&e)
            ))
        })
    }

    /// The OAuth2 refresh-token grant (docker's token spec, `POST realm`).
    async fn oauth_post(
        &self,
        client: &reqwest::Client,
        realm: &Url,
        service: Option<&str>,
        scopes: &[String],
        refresh_token: &str,
    ) -> Result<reqwest::Response, TransportError> {
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token");
            form.append_pair("refresh_token", refresh_token);
            form.append_pair("client_id", "ocirepl");
            if let Some(s) = service {
                form.append_pair("service", s);
            }
            if !scopes.is_empty() {
                form.append_pair("scope", &scopes.join(" "));
            }
            form.finish()
        };
        client
            .post(realm.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                self.auth_error(format!(
                    "token request to {} failed: {}",
                    redact_url(realm),
                    describe_reqwest(&e)
                ))
            })
    }
}

/// What a token server said, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAnswer {
    pub token: String,
    /// How long to use it (see [`token_lifetime`]).
    pub lifetime: Duration,
    /// A rotated OAuth2 refresh token, when the server sent one.
    pub refresh_token: Option<String>,
}

/// Parses a token server's JSON answer: the token (`token` or
/// `access_token`), its lifetime (absurd numbers clamped, unusable ones
/// ignored with a warning) and a rotated refresh token.
pub fn parse_token_answer(body: &[u8]) -> Result<TokenAnswer, &'static str> {
    let parsed: TokenResponse = serde_json::from_slice(body).map_err(|_| "an unreadable answer")?;
    let token = parsed
        .token
        .or(parsed.access_token)
        .filter(|t| !t.is_empty())
        .ok_or("no token")?;
    let expires_in = parsed.expires_in.as_ref().and_then(|v| {
        let secs = v.as_u64();
        if secs.is_none() {
            tracing::warn!("ignoring an unusable expires_in in a token answer");
        }
        secs
    });
    Ok(TokenAnswer {
        token,
        lifetime: token_lifetime(expires_in, parsed.issued_at.as_deref()),
        refresh_token: parsed.refresh_token.filter(|t| !t.is_empty()),
    })
}

/// How long to use a token: `expires_in` (60 s when absent, at most
/// [`MAX_TOKEN_LIFETIME`]) minus the time since `issued_at` when the server
/// gives one, minus a safety margin.
pub fn token_lifetime(expires_in: Option<u64>, issued_at: Option<&str>) -> Duration {
    let stated = expires_in
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME)
        .min(MAX_TOKEN_LIFETIME);
    let age = issued_at
        .and_then(parse_rfc3339)
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .filter(|age| *age < stated)
        .unwrap_or(Duration::ZERO);
    stated.saturating_sub(age).saturating_sub(EXPIRY_MARGIN)
}

/// `issued_at` is RFC 3339 (`2024-01-02T03:04:05Z`, fractions allowed).
/// Absurd dates (year 9999999, garbage) are `None`, never a panic.
fn parse_rfc3339(s: &str) -> Option<std::time::SystemTime> {
    let s = s.trim();
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let time = time.trim_end_matches('Z');
    let time = time.split(['+']).next()?;
    let mut t = time.split(':');
    let (hh, mm) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let ss = t.next()?.split('.').next()?.parse::<i64>().ok()?;
    if !(0..24).contains(&hh) || !(0..60).contains(&mm) || !(0..=60).contains(&ss) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm); the ranges
    // checked above keep every step far from overflow.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    std::time::UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
}

fn bearer_header(token: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
    v.set_sensitive(true);
    v
}

fn scope_key(scopes: &[String]) -> String {
    let mut s = scopes.to_vec();
    s.sort();
    s.dedup();
    s.join(" ")
}

/// `repository:NAME:ACTIONS`
pub fn repository_scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_hides_password() {
        let c = Credentials::parse("user:pa:ss").unwrap();
        assert_eq!(c, Credentials::basic("user", "pa:ss"));
        assert!(!format!("{c:?}").contains("pa:ss"));
        assert!(Credentials::parse("nopass").is_none());
        assert!(Credentials::parse(":x").is_none());
        let t = Credentials::identity_token("u", "refresh-secret");
        assert!(!format!("{t:?}").contains("refresh-secret"));
    }

    #[test]
    fn token_lifetime_uses_expires_in_and_issued_at() {
        assert_eq!(token_lifetime(None, None), Duration::from_secs(55));
        assert_eq!(token_lifetime(Some(300), None), Duration::from_secs(295));
        assert_eq!(token_lifetime(Some(2), None), Duration::ZERO);
        let long_ago = "2001-02-03T04:05:06.123Z";
        // An issued_at older than the lifetime is clock skew: ignored.
        assert_eq!(
            token_lifetime(Some(300), Some(long_ago)),
            Duration::from_secs(295)
        );
        assert_eq!(
            parse_rfc3339("1970-01-02T00:00:01Z"),
            Some(std::time::UNIX_EPOCH + Duration::from_secs(86_401))
        );
        assert_eq!(
            parse_rfc3339("2024-03-01T12:00:00+00:00"),
            Some(std::time::UNIX_EPOCH + Duration::from_secs(1_709_294_400))
        );
        assert_eq!(parse_rfc3339("garbage"), None);
    }

    #[test]
    fn absurd_token_numbers_do_not_panic() {
        // Scenario 40: clamped, never an overflow.
        assert_eq!(
            token_lifetime(Some(u64::MAX), None),
            MAX_TOKEN_LIFETIME - EXPIRY_MARGIN
        );
        assert_eq!(token_lifetime(Some(0), None), Duration::ZERO);
        for date in [
            "9999999-01-01T00:00:00Z",
            "99999999999999999999-01-01T00:00:00Z",
            "-9223372036854775808-01-01T00:00:00Z",
            "2024-13-40T99:99:99Z",
        ] {
            assert_eq!(parse_rfc3339(date), None, "{date}");
            let _ = token_lifetime(Some(u64::MAX), Some(date));
        }
    }
}
