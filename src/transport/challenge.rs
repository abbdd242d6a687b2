//! The `WWW-Authenticate` grammar (RFC 7235): a header value holds any
//! number of challenges, each a scheme and `name=value` parameters, values
//! quoted with backslash escapes, and commas separating both challenges and
//! parameters.
//!
//! Owns parsing only, tolerant by design: a malformed piece is skipped, so
//! a hostile header yields fewer challenges, never a panic. Never decides
//! which challenge to answer or where a credential may go (that is `auth`).

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};

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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

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
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn quote(s: &str) -> String {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }

    proptest! {
        #[test]
        fn any_header_parses_without_panic(s in "\\PC{0,300}") {
            let _ = parse_challenge_list(&s);
        }

        #[test]
        fn quoted_values_survive_commas_quotes_and_escapes(
            realm in "[a-z0-9.]{1,20}",
            service in "[ -~]{0,40}",
            scope in "[ -~]{0,60}",
            scheme_case in prop::bool::ANY,
        ) {
            let scheme = if scheme_case { "BEARER" } else { "Bearer" };
            let header = format!(
                "Negotiate, {scheme} realm={},service={}, scope={}, Basic realm=\"x\"",
                quote(&format!("https://{realm}/t")),
                quote(&service),
                quote(&scope)
            );
            let c = parse_challenge_list(&header);
            let bearer = c.iter().find(|c| c.scheme == "bearer").expect("bearer");
            let realm_url = format!("https://{realm}/t");
            prop_assert_eq!(bearer.param("realm"), Some(realm_url.as_str()));
            prop_assert_eq!(bearer.param("service"), Some(service.as_str()));
            prop_assert_eq!(bearer.param("scope"), Some(scope.as_str()));
            prop_assert!(c.iter().any(|c| c.scheme == "basic"));
        }
    }
}
