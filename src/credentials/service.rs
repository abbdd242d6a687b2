//! The secrets the daemon's `/v1` endpoints check: a bearer token (the
//! distribution registry's `headers`, Harbor's auth header, `?token=` for
//! senders that can set no header) and GitHub's webhook secret (an
//! HMAC-SHA256 of the raw body, `X-Hub-Signature-256`).
//!
//! Owns reading them from the variables the config names and comparing
//! in constant time (aws-lc-rs, linked for TLS already). Never prints a
//! value: `Debug` hides it, errors name the variable.

use std::fmt;

use aws_lc_rs::{constant_time, digest, hmac};

use super::CredentialError;

/// A secret a sender must prove it knows.
pub struct ServiceSecret {
    /// SHA-256 of the value: presented values are compared digest to
    /// digest, so that the comparison takes the same time whatever their
    /// lengths.
    hashed: Vec<u8>,
    hmac: hmac::Key,
}

impl fmt::Debug for ServiceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceSecret(***)")
    }
}

impl ServiceSecret {
    /// The secret in environment variable `variable` (`what` it is for, in
    /// errors); an empty variable is an unset one.
    pub fn from_env(variable: &str, what: &str) -> Result<ServiceSecret, CredentialError> {
        let value = std::env::var(variable)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| CredentialError::Named {
                registry: what.to_string(),
                message: format!("environment variable {variable} is not set"),
            })?;
        Ok(ServiceSecret::new(value.as_bytes()))
    }

    pub fn new(value: &[u8]) -> ServiceSecret {
        ServiceSecret {
            hashed: digest::digest(&digest::SHA256, value).as_ref().to_vec(),
            hmac: hmac::Key::new(hmac::HMAC_SHA256, value),
        }
    }

    /// Whether `presented` is the secret.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let d = digest::digest(&digest::SHA256, presented);
        constant_time::verify_slices_are_equal(d.as_ref(), &self.hashed).is_ok()
    }

    /// Whether an `Authorization` header value is `Bearer <the secret>`.
    pub fn authorizes(&self, header: &str) -> bool {
        match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                self.matches(token.trim().as_bytes())
            }
            _ => false,
        }
    }

    /// Whether `signature` (`sha256=<hex>`, GitHub's header) is the
    /// HMAC-SHA256 of `body` under the secret.
    pub fn signed(&self, body: &[u8], signature: &str) -> bool {
        let Some(hex_tag) = signature.strip_prefix("sha256=") else {
            return false;
        };
        match hex::decode(hex_tag) {
            Ok(tag) => hmac::verify(&self.hmac, body, &tag).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_github_signatures_are_checked() {
        let s = ServiceSecret::new(b"s3cret");
        assert!(s.authorizes("Bearer s3cret") && s.authorizes("bearer  s3cret"));
        assert!(
            !s.authorizes("Bearer s3cre")
                && !s.authorizes("Basic s3cret")
                && !s.authorizes("s3cret")
        );
        assert!(s.matches(b"s3cret") && !s.matches(b""));
        assert_eq!(format!("{s:?}"), "ServiceSecret(***)");
        // GitHub's documented test vector.
        let gh = ServiceSecret::new(b"It's a Secret to Everybody");
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(gh.signed(b"Hello, World!", sig));
        assert!(!gh.signed(b"Hello, World?", sig));
        assert!(!gh.signed(b"Hello, World!", "sha1=757107"));
        assert!(!gh.signed(b"Hello, World!", "sha256=zz"));
    }
}
