//! Transport errors: what a registry said ([`RegistryError`], with its own
//! `errors[].code/message/detail` words) and what went wrong on the way there.
//!
//! Owns URL redaction for messages: credentials and every query value that
//! is not known to be harmless are replaced by `***`. Never holds a
//! secret: anything printed from here is safe to print.

use std::fmt;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

/// How much of an error body we read and keep. Registries answer errors with
/// a small JSON document; anything bigger is noise or hostility.
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// How much of a non-JSON error body is quoted in a message.
const BODY_SNIPPET: usize = 200;

/// One entry of a registry's `errors` array. `code` is open: an unknown
/// code still prints.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Diagnostic {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

/// A registry answered with a status we did not expect.
#[derive(Debug, Clone)]
pub struct RegistryError {
    pub method: Method,
    /// Already redacted.
    pub url: String,
    pub status: StatusCode,
    pub diagnostics: Vec<Diagnostic>,
    /// A capped, printable piece of a body that was not a registry error document.
    pub body: String,
}

impl RegistryError {
    /// Builds the error from a response's status and (capped) body.
    pub fn new(method: Method, url: &Url, status: StatusCode, body: &[u8]) -> RegistryError {
        #[derive(Deserialize)]
        struct Errors {
            errors: Vec<Diagnostic>,
        }
        // A registry's words reach a terminal: control characters (escape
        // sequences) are shown escaped, never raw (scenario 45).
        let diagnostics = serde_json::from_slice::<Errors>(body)
            .map(|e| e.errors)
            .unwrap_or_default()
            .into_iter()
            .map(|d| Diagnostic {
                code: printable(&d.code),
                message: printable(&d.message),
                detail: d.detail,
            })
            .collect::<Vec<_>>();
        let body = if diagnostics.is_empty() {
            printable_snippet(body)
        } else {
            String::new()
        };
        RegistryError {
            method,
            url: redact_url(url),
            status,
            diagnostics,
            body,
        }
    }

    /// Whether this may be Go's answer to plain http on a TLS port (a 400
    /// without a registry error; its body says so, but a HEAD has none):
    /// `Some(true)` when the body says so.
    fn maybe_https_only(&self) -> Option<bool> {
        let plain = self.status == StatusCode::BAD_REQUEST
            && self.url.starts_with("http://")
            && self.diagnostics.is_empty();
        let says = self.body.contains("HTTP request to an HTTPS server");
        (plain && (says || self.body.is_empty())).then_some(says)
    }

    /// True when the registry named this code (`MANIFEST_BLOB_UNKNOWN`, ...).
    pub fn has_code(&self, code: &str) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.code.eq_ignore_ascii_case(code))
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.method, self.url, self.status.as_u16())?;
        if self.diagnostics.is_empty() {
            let reason = self.status.canonical_reason().unwrap_or("");
            write!(f, " {reason}")?;
            if !self.body.is_empty() {
                write!(f, " ({})", self.body)?;
            }
            if let Some(sure) = self.maybe_https_only() {
                // Loopback registries are tried over plain http unless a
                // cert dir or TLS verification says otherwise.
                let lead = if sure {
                    "it speaks https"
                } else {
                    "if it speaks https"
                };
                write!(
                    f,
                    "; {lead}: give ocirepl its CA in a cert dir \
                     (certs.d/HOST:PORT/ca.crt), or turn TLS verification off for it"
                )?;
            }
        }
        for (i, d) in self.diagnostics.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            write!(f, "{sep}{}: {}", d.code, d.message)?;
        }
        Ok(())
    }
}

/// Everything the transport can fail with.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The registry answered, with an unexpected status.
    #[error("{0}")]
    Status(Box<RegistryError>),
    /// No answer: connection refused, reset, timed out, TLS failure.
    #[error("{method} {url}: {message}")]
    Network {
        method: Method,
        url: String,
        message: String,
    },
    /// Credentials were refused, or the auth exchange failed.
    #[error("authentication to {registry} failed: {message}")]
    Auth { registry: String, message: String },
    /// A body was larger than we are willing to hold.
    #[error("{method} {url}: response larger than {limit} bytes")]
    TooLarge {
        method: Method,
        url: String,
        limit: u64,
    },
    /// A streamed body cannot go on as it was sent (a token expired under
    /// it, the registry wants another upload strategy, the session is gone):
    /// the caller reopens its source and sends it again. `why` says which.
    #[error("{method} {url}: {why}; the body has to be sent again from the source")]
    Resend {
        method: Method,
        url: String,
        why: String,
    },
    /// A request we refused to send (credential or downgrade policy).
    #[error("refused {url}: {why}")]
    Refused { url: String, why: String },
}

impl TransportError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            TransportError::Status(e) => Some(e.status),
            _ => None,
        }
    }

    /// Whether the same request (its body reopened) may succeed later: no
    /// answer, a body to send again, or a transient status.
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Network { .. } | TransportError::Resend { .. } => true,
            TransportError::Status(e) => {
                super::retry::classify_status(e.status) == super::retry::Verdict::Retry
            }
            _ => false,
        }
    }

    pub fn registry_error(&self) -> Option<&RegistryError> {
        match self {
            TransportError::Status(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn network(method: &Method, url: &Url, err: &reqwest::Error) -> TransportError {
        TransportError::Network {
            method: method.clone(),
            url: redact_url(url),
            message: describe_reqwest(err),
        }
    }
}

/// A reqwest error as a short sentence with its causes, never its URL
/// (reqwest's own `Display` prints the URL unredacted).
pub fn describe_reqwest(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "error reading the body"
    } else if err.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    let mut parts = vec![kind.to_string()];
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// Query parameters whose values are safe to show.
const HARMLESS_QUERY: &[&str] = &["digest", "mount", "from", "n", "last", "service", "scope"];

/// The URL for a message: no user info, and every query value outside the
/// harmless list (`_state`, signatures, tokens) replaced by `***`.
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if HARMLESS_QUERY.contains(&k.as_ref()) {
                    v.into_owned()
                } else {
                    "***".to_string()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string().replace("%2A%2A%2A", "***")
}

/// `s` with every control character escaped (`\u{1b}`), safe for a terminal.
pub fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn printable_snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(BODY_SNIPPET)
        .collect();
    s = s.trim().to_string();
    if text.chars().count() > BODY_SNIPPET {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_method_url_status_and_codes() {
        let url = Url::parse("https://reg.example/v2/app/manifests/v1").unwrap();
        let body = br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:ab"}]}"#;
        let e = RegistryError::new(Method::PUT, &url, StatusCode::BAD_REQUEST, body);
        assert_eq!(
            e.to_string(),
            "PUT https://reg.example/v2/app/manifests/v1: 400 MANIFEST_BLOB_UNKNOWN: blob unknown to registry"
        );
        assert!(e.has_code("manifest_blob_unknown"));
        let e = RegistryError::new(
            Method::GET,
            &url,
            StatusCode::BAD_GATEWAY,
            b"<html>\nbad gateway</html>",
        );
        assert_eq!(
            e.to_string(),
            "GET https://reg.example/v2/app/manifests/v1: 502 Bad Gateway (<html> bad gateway</html>)"
        );
        let unknown = br#"{"errors":[{"code":"SOMETHING_NEW","message":"new"}]}"#;
        let e = RegistryError::new(Method::GET, &url, StatusCode::FORBIDDEN, unknown);
        assert!(e.to_string().ends_with("403 SOMETHING_NEW: new"));
    }

    #[test]
    fn plain_http_to_a_tls_port_says_what_to_do() {
        let url = Url::parse("http://127.0.0.1:5000/v2/x/manifests/y").unwrap();
        let body = b"Client sent an HTTP request to an HTTPS server.\n";
        let e = RegistryError::new(Method::GET, &url, StatusCode::BAD_REQUEST, body);
        assert!(e.to_string().contains("it speaks https"), "{e}");
        let tls = Url::parse("https://127.0.0.1:5000/v2/").unwrap();
        let e = RegistryError::new(Method::GET, &tls, StatusCode::BAD_REQUEST, body);
        assert!(!e.to_string().contains("it speaks https"), "{e}");
        let e = RegistryError::new(Method::HEAD, &url, StatusCode::BAD_REQUEST, b"");
        assert!(e.to_string().contains("if it speaks https"), "{e}");
    }

    #[test]
    fn redacts_credentials_and_secret_query_values() {
        let url = Url::parse(
            "https://user:hunter2@reg.example/v2/a/blobs/uploads/uuid?_state=SECRETSTATE&digest=sha256:ab&X-Amz-Signature=SIG&access_token=TOK",
        )
        .unwrap();
        let s = redact_url(&url);
        for secret in ["hunter2", "user", "SECRETSTATE", "SIG", "TOK"] {
            assert!(!s.contains(secret), "{s} leaks {secret}");
        }
        assert!(
            s.contains("digest=sha256%3Aab") || s.contains("digest=sha256:ab"),
            "{s}"
        );
        assert!(s.contains("_state=***"), "{s}");
    }

    #[test]
    fn terminal_escapes_in_registry_words_are_escaped() {
        let url = Url::parse("http://r/v2/").unwrap();
        let body = br#"{"errors":[{"code":"DENIED\u001b[2J","message":"go \u001b]0;pwned\u0007 away\r\n"}]}"#;
        let e = RegistryError::new(Method::GET, &url, StatusCode::FORBIDDEN, body);
        let shown = e.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.contains("DENIED\\u{1b}[2J"), "{shown}");
    }

    #[test]
    fn error_body_snippet_is_capped() {
        let url = Url::parse("http://r/v2/").unwrap();
        let body = vec![b'x'; 10_000];
        let e = RegistryError::new(Method::GET, &url, StatusCode::INTERNAL_SERVER_ERROR, &body);
        assert!(e.to_string().len() < 400);
    }
}
