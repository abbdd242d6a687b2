//! Platforms: `os/architecture[/variant]` as index entries and image configs
//! carry them, parsing of the command-line form, and matching.
//!
//! Owns the normalisation rules (`linux/arm64` matches `linux/arm64/v8`).
//! Never fetches a config: callers hand it the platform they read.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The `platform` object of an index entry (and the same fields of an image
/// config). Unknown fields are ignored on read; we never re-serialise an
/// entry we received.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {input:?}: expected OS/ARCH[/VARIANT], like linux/arm64 or linux/arm/v7")]
pub struct PlatformError {
    pub input: String,
}

impl Platform {
    /// Parses `linux/amd64`, `linux/arm/v7`.
    pub fn parse(input: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = input.trim().split('/').collect();
        let valid_part = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid_part) {
            return Err(PlatformError {
                input: input.to_string(),
            });
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: parts[1].to_ascii_lowercase(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
            os_version: None,
        })
    }

    /// Whether an index entry's platform satisfies this requested one. A
    /// request without a variant matches any variant, except that `arm64`
    /// only implies `v8` and `arm` needs its variant named when the entry
    /// has one other than the default.
    pub fn matches(&self, entry: &Platform) -> bool {
        if !self.os.eq_ignore_ascii_case(&entry.os)
            || !self.architecture.eq_ignore_ascii_case(&entry.architecture)
        {
            return false;
        }
        match &self.variant {
            None => true,
            Some(want) => {
                let have = entry
                    .variant
                    .clone()
                    .or_else(|| default_variant(&entry.architecture).map(str::to_string));
                have.is_some_and(|h| h.eq_ignore_ascii_case(want))
            }
        }
    }
}

/// The variant an entry without one is taken to have.
fn default_variant(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("v8"),
        _ => None,
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn parse_forms() {
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/arm/v7").variant.as_deref(), Some("v7"));
        assert_eq!(p(" Linux/ARM64 ").to_string(), "linux/arm64");
        for bad in ["", "linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn matching() {
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").matches(&p("linux/arm64")));
        assert!(p("linux/arm").matches(&p("linux/arm/v7")));
        assert!(!p("linux/arm/v7").matches(&p("linux/arm/v6")));
        assert!(!p("linux/arm/v7").matches(&p("linux/arm")));
        assert!(!p("linux/amd64").matches(&p("windows/amd64")));
        assert!(p("linux/amd64").matches(&p("linux/amd64")));
    }
}
