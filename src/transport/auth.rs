//! Authentication as a layer around HTTP: learns the scheme from a
//! registry's `WWW-Authenticate` challenge, sends Basic credentials or
//! Bearer tokens, caches tokens per scope set and refreshes them on a 401.
//!
//! Owns challenge parsing, token exchange and the realm policy (where a
//! credential may be sent). Never sees an image, a manifest or a copy
//! decision; never prints a credential or a token (their `Debug` is
//! redacted).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use super::error::{TransportError, describe_reqwest, redact_url};

/// The most of a token response we read: a JWT is a few KiB; a server that
/// sends more is broken or hostile.
pub const MAX_TOKEN_BODY: u64 = 1024 * 1024;
/// Lifetime of a token whose response gives none (the token spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Refresh this long before a token's stated expiry, to absorb clock and
/// network delay.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({:?}, ***)", self.username)
    }
}

impl Credentials {
    /// Parses `USER:PASS` (the password may contain colons).
    pub fn parse(s: &str) -> Option<Credentials> {
        let (u, p) = s.split_once(':')?;
        (!u.is_empty()).then(|| Credentials {
            username: u.to_string(),
            password: p.to_string(),
        })
    }

    fn basic_header(&self) -> HeaderValue {
        let raw = format!("{}:{}", self.username, self.password);
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        let mut v = HeaderValue::from_str(&format!("Basic {encoded}"))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
        v.set_sensitive(true);
        v
    }
}

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased: `basic`, `bearer`, or whatever else a server invents.
    pub scheme: String,
    /// Parameter names lower-cased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses every challenge in every `WWW-Authenticate` header value.
/// Malformed pieces are skipped rather than fatal: the caller decides what
/// to do when no usable challenge is left.
pub fn parse_challenges(headers: &HeaderMap) -> Vec<Challenge> {
    let mut out = Vec::new();
    for value in headers.get_all(WWW_AUTHENTICATE) {
        if let Ok(s) = value.to_str() {
            out.extend(parse_challenge_list(s));
        }
    }
    out
}

/// `Bearer realm="a,b",service=x, Basic realm="y"` → two challenges.
pub fn parse_challenge_list(s: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    for item in split_top_level_commas(s) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        // An item starting with a bare token followed by space (or alone) opens
        // a new challenge; `k=v` continues the current one.
        let token_end = item
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(item.len());
        let opens = item[token_end..].trim_start().is_empty()
            || (item[token_end..].starts_with(char::is_whitespace)
                && !item[token_end..].trim_start().starts_with('='));
        let param_text = if opens {
            out.push(Challenge {
                scheme: item[..token_end].to_ascii_lowercase(),
                params: Vec::new(),
            });
            item[token_end..].trim()
        } else {
            item
        };
        if param_text.is_empty() {
            continue;
        }
        if let (Some(current), Some((k, v))) = (out.last_mut(), param_text.split_once('=')) {
            let key = k.trim().to_ascii_lowercase();
            if !key.is_empty() && !key.contains(char::is_whitespace) {
                current.params.push((key, unquote(v.trim())));
            }
        }
    }
    out
}

fn split_top_level_commas(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"') else {
        return v.to_string();
    };
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
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

/// The auth state of one registry: credentials, learned scheme, tokens.
pub struct Auth {
    registry: String,
    /// The registry's own URL, for the realm policy.
    registry_url: Url,
    credentials: Option<Credentials>,
    scheme: Mutex<Option<Scheme>>,
    tokens: Mutex<HashMap<String, Token>>,
}

/// The token endpoint's answer. Either field name is in use.
#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Auth {
    pub fn new(registry: &str, registry_url: Url, credentials: Option<Credentials>) -> Auth {
        Auth {
            registry: registry.to_string(),
            registry_url,
            credentials,
            scheme: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The `Authorization` header for a request needing `scopes`, if the
    /// registry asked for one. Fetches a token when none is cached.
    pub async fn header(
        &self,
        client: &reqwest::Client,
        scopes: &[String],
    ) -> Result<Option<HeaderValue>, TransportError> {
        let scheme = self.scheme.lock().await.clone();
        match scheme {
            None => Ok(None),
            Some(Scheme::Basic) => Ok(self.credentials.as_ref().map(Credentials::basic_header)),
            Some(Scheme::Bearer { realm, service }) => {
                let key = scope_key(scopes);
                if let Some(t) = self.tokens.lock().await.get(&key)
                    && t.expires > Instant::now()
                {
                    return Ok(Some(bearer_header(&t.value)));
                }
                let token = self
                    .fetch_token(client, &realm, service.as_deref(), scopes)
                    .await?;
                let header = bearer_header(&token.value);
                self.tokens.lock().await.insert(key, token);
                Ok(Some(header))
            }
        }
    }

    /// Learns from a 401. Returns whether a retry can succeed: `false` when
    /// we already answered this challenge with everything we have.
    pub async fn on_unauthorized(
        &self,
        headers: &HeaderMap,
        scopes: &[String],
        had_header: bool,
    ) -> Result<bool, TransportError> {
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
                if self.credentials.is_none() {
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
        let same_scheme = matches!(
            (&*current, &scheme),
            (Some(Scheme::Basic), Scheme::Basic)
                | (Some(Scheme::Bearer { .. }), Scheme::Bearer { .. })
        );
        *current = Some(scheme);
        drop(current);
        if had_header && same_scheme {
            // Our header was refused: drop the token so a retry fetches a fresh one;
            // Basic credentials cannot get better by resending.
            let removed = self
                .tokens
                .lock()
                .await
                .remove(&scope_key(scopes))
                .is_some();
            return Ok(removed);
        }
        Ok(true)
    }

    /// The error for a 401 that a retry did not fix.
    pub fn refused(&self) -> TransportError {
        self.auth_error(match &self.credentials {
            Some(c) => format!(
                "the registry refused the credentials of user {:?}",
                c.username
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
        client: &reqwest::Client,
        realm: &Url,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<Token, TransportError> {
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
        if let Some(c) = &self.credentials {
            req = req.header(reqwest::header::AUTHORIZATION, c.basic_header());
        }
        let resp = req.send().await.map_err(|e| {
            self.auth_error(format!(
                "token request to {} failed: {}",
                redact_url(&url),
                describe_reqwest(&e)
            ))
        })?;
        let status = resp.status();
        let body = super::read_capped(resp, MAX_TOKEN_BODY)
            .await
            .map_err(|why| {
                self.auth_error(format!("token response from {}: {why}", redact_url(realm)))
            })?;
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(self.refused());
        }
        if !status.is_success() {
            return Err(self.auth_error(format!(
                "token server {} answered {}",
                redact_url(realm),
                status.as_u16()
            )));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            self.auth_error(format!(
                "token server {} sent an unreadable answer",
                redact_url(realm)
            ))
        })?;
        let value = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                self.auth_error(format!("token server {} sent no token", redact_url(realm)))
            })?;
        let lifetime = parsed
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        Ok(Token {
            value,
            expires: Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN),
        })
    }
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

/// Where a registry may send our credentials for a token: https unless the
/// registry itself is plain http; never an internal address (loopback,
/// private, link-local, unspecified) unless the registry lives on that very
/// host.
pub fn check_realm(registry: &Url, realm: &Url) -> Result<(), String> {
    match realm.scheme() {
        "https" => {}
        "http" if registry.scheme() == "http" => {}
        "http" => return Err("plain-http token realm for an https registry".into()),
        other => return Err(format!("token realm with scheme {other:?}")),
    }
    let host = realm.host_str().unwrap_or("");
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>();
    if let Ok(ip) = ip
        && is_internal(&ip)
        && realm.host_str() != registry.host_str()
    {
        return Err(format!(
            "token realm on internal address {ip} while the registry is elsewhere"
        ));
    }
    Ok(())
}

fn is_internal(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_internal(&IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_with_quoted_commas() {
        let c = parse_challenge_list(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.example/token"));
        assert_eq!(c[0].param("scope"), Some("repository:a/b:pull,push"));
    }

    #[test]
    fn parses_several_challenges_and_odd_case() {
        let c = parse_challenge_list(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", BASIC Realm="simple""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "newauth");
        assert_eq!(c[0].param("title"), Some(r#"Login to "apps""#));
        assert_eq!(c[1].scheme, "basic");
        assert_eq!(c[1].param("realm"), Some("simple"));
        let mut h = HeaderMap::new();
        h.append(WWW_AUTHENTICATE, HeaderValue::from_static("Negotiate"));
        h.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"bearer realm="https://a/t""#),
        );
        let c = parse_challenges(&h);
        assert_eq!(
            c.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(),
            ["negotiate", "bearer"]
        );
    }

    #[test]
    fn malformed_challenges_do_not_panic() {
        let long = "x".repeat(8192);
        for s in [
            "",
            ",",
            "=",
            "Bearer",
            "Bearer realm",
            r#"Bearer realm="unterminated"#,
            "a=b",
            long.as_str(),
            "\"\\",
        ] {
            let _ = parse_challenge_list(s);
        }
        assert_eq!(parse_challenge_list("Bearer")[0].params, vec![]);
    }

    #[test]
    fn realm_policy() {
        let https_reg = Url::parse("https://registry.example").unwrap();
        let local_reg = Url::parse("http://127.0.0.1:5000").unwrap();
        let ok = |r: &Url, realm: &str| check_realm(r, &Url::parse(realm).unwrap()).is_ok();
        assert!(ok(&https_reg, "https://auth.example/token"));
        assert!(!ok(&https_reg, "http://auth.example/token"));
        assert!(!ok(&https_reg, "https://127.0.0.1/token"));
        assert!(!ok(&https_reg, "https://169.254.169.254/latest"));
        assert!(!ok(&https_reg, "https://10.1.2.3/token"));
        assert!(!ok(&https_reg, "https://[::1]/token"));
        assert!(!ok(&https_reg, "https://0.0.0.0/token"));
        assert!(!ok(&https_reg, "file:///etc/passwd"));
        assert!(ok(&local_reg, "http://127.0.0.1:5001/token"));
    }

    #[test]
    fn credentials_debug_hides_password() {
        let c = Credentials::parse("user:pa:ss").unwrap();
        assert_eq!(c.password, "pa:ss");
        assert!(!format!("{c:?}").contains("pa:ss"));
        assert!(Credentials::parse("nopass").is_none());
        assert!(Credentials::parse(":x").is_none());
    }
}
