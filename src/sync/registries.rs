//! The `registries:` and `service:` blocks of a config: how each
//! registry is reached (credentials, TLS, concurrency, caps, read mirrors,
//! discovery, the names its events give it) and how the daemon's `/v1`
//! endpoints check their callers, validated with their places.
//!
//! Owns these settings and their validation. Never reads a secret (the
//! variables and files named are read when used) and never reaches a
//! registry.

use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::config::{ConfigError, RawCreds, RawRegistry, error_at};
use super::job::looks_like_host;
use crate::reference::{ImageRef, Reference};
use crate::store::{Caps, Discovery, DiscoveryApi};

/// Events for one job within this long start one run, unless the config
/// says otherwise.
pub const DEFAULT_DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(2);

/// The `service:` block: how `/v1` requests prove who sent them, and how
/// events are gathered into runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The environment variable with the bearer token (read at start).
    pub token_env: String,
    /// The environment variable with GitHub's webhook secret.
    pub github_secret_env: Option<String>,
    pub debounce: std::time::Duration,
}

/// How a registry's password is found (read when the registry is first used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creds {
    Env { username: String, variable: String },
    File { username: String, path: PathBuf },
    Authfile(PathBuf),
}

/// The `registries:` entry for one `HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    pub host: String,
    pub creds: Option<Creds>,
    pub tls_verify: Option<bool>,
    pub cert_dir: Option<PathBuf>,
    pub concurrency: Option<usize>,
    /// Read mirrors: (registry, prefix ending in `/` or empty).
    pub mirrors: Vec<(String, String)>,
    pub mirror_tags: bool,
    /// Names the registry calls itself in its events (`request.host`).
    pub aliases: Vec<String>,
    pub caps: Caps,
    pub discovery: Discovery,
}

/// `service:`: the token variable is required (no `/v1` request is ever
/// taken without proof of its sender); variables are named, not valued.
pub(super) fn service(
    file: &Path,
    raw: Spanned<super::config::RawService>,
    errors: &mut Vec<ConfigError>,
) -> Option<Service> {
    let before = errors.len();
    let variable = |v: &Spanned<String>, errors: &mut Vec<ConfigError>| {
        let ok = !v.value.is_empty()
            && v.value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            errors.push(error_at(
                file,
                &v.referenced,
                format!("{:?} is not an environment variable name", v.value),
            ));
        }
        v.value.clone()
    };
    let token_env = match &raw.value.token_env {
        Some(v) => variable(v, errors),
        None => {
            errors.push(error_at(
                file,
                &raw.referenced,
                "service needs token_env: the variable holding the token /v1 requests present",
            ));
            String::new()
        }
    };
    let github_secret_env = raw
        .value
        .github_secret_env
        .as_ref()
        .map(|v| variable(v, errors));
    let debounce = match &raw.value.debounce {
        None => DEFAULT_DEBOUNCE,
        Some(d) => match debounce(&d.value) {
            Ok(d) if d <= std::time::Duration::from_secs(3600) => d,
            Ok(_) => {
                errors.push(error_at(file, &d.referenced, "debounce: at most 1h"));
                DEFAULT_DEBOUNCE
            }
            Err(e) => {
                errors.push(error_at(file, &d.referenced, format!("debounce: {e}")));
                DEFAULT_DEBOUNCE
            }
        },
    };
    (errors.len() == before).then_some(Service {
        token_env,
        github_secret_env,
        debounce,
    })
}

/// `50MiB/s` (a size as `--volume-size` takes it, per second).
fn bandwidth(text: &str) -> Result<u64, String> {
    let size = text
        .trim()
        .strip_suffix("/s")
        .ok_or_else(|| format!("bandwidth {text:?}: a size per second, like 50MiB/s"))?;
    match crate::size::parse_size(size) {
        Ok(0) => Err(format!("bandwidth {text:?}: above 0")),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("bandwidth {e}")),
    }
}

/// `200ms`, or a duration as `every` takes it (`2s`).
fn debounce(text: &str) -> Result<std::time::Duration, String> {
    match text.trim().strip_suffix("ms") {
        Some(ms) => ms
            .parse::<u64>()
            .map(std::time::Duration::from_millis)
            .map_err(|_| format!("{text:?}: expected milliseconds (200ms) or 2s, 1m")),
        None => super::schedule::duration(text),
    }
}

pub(super) fn registry(
    file: &Path,
    host: &Spanned<String>,
    raw: RawRegistry,
    errors: &mut Vec<ConfigError>,
) -> Option<RegistrySettings> {
    let probe = format!("{}/x", host.value);
    let Ok(ImageRef::Registry(r)) = ImageRef::parse(&probe) else {
        errors.push(error_at(
            file,
            &host.referenced,
            format!("{:?} is not HOST[:PORT]", host.value),
        ));
        return None;
    };
    let creds = match &raw.creds {
        None => None,
        Some(c) => match creds(&c.value) {
            Ok(c) => Some(c),
            Err(why) => {
                errors.push(error_at(file, &c.referenced, why));
                return None;
            }
        },
    };
    if let Some(c) = &raw.concurrency
        && c.value == 0
    {
        errors.push(error_at(
            file,
            &c.referenced,
            "concurrency must be at least 1",
        ));
    }
    let caps = caps(file, &raw, errors);
    let discovery = discovery(file, &raw, errors);
    let mut mirrors = Vec::new();
    for m in raw.mirrors.iter().flatten() {
        match mirror(&m.value) {
            Ok(parsed) if parsed.0 == r.registry() => errors.push(error_at(
                file,
                &m.referenced,
                format!("{:?} is the registry itself, not a mirror of it", m.value),
            )),
            Ok(parsed) => mirrors.push(parsed),
            Err(why) => errors.push(error_at(file, &m.referenced, why)),
        }
    }
    Some(RegistrySettings {
        host: r.registry().to_string(),
        creds,
        tls_verify: raw.tls_verify,
        cert_dir: raw.cert_dir,
        concurrency: raw.concurrency.map(|c| c.value),
        mirrors,
        mirror_tags: raw.mirror_tags.unwrap_or(false),
        caps,
        discovery,
        aliases: raw
            .aliases
            .iter()
            .flatten()
            .map(|a| a.value.to_ascii_lowercase())
            .collect(),
    })
}

/// A read mirror, `HOST[/PREFIX]`: (registry, prefix ending in `/` or
/// empty). The host is required: a mirror is never Docker Hub by default.
fn mirror(text: &str) -> Result<(String, String), String> {
    let text = text.trim().trim_end_matches('/');
    let (host, path) = text.split_once('/').unwrap_or((text, ""));
    if !looks_like_host(host) {
        return Err(format!(
            "mirror {text:?}: expected HOST[/PREFIX], with a host (a dot, a port or localhost)"
        ));
    }
    let probe = match path {
        "" => format!("{host}/x"),
        p => format!("{host}/{p}/x"),
    };
    let at = Reference::parse(&probe).map_err(|e| format!("mirror {text:?}: {e}"))?;
    let prefix = match path {
        "" => String::new(),
        p => format!("{p}/"),
    };
    Ok((at.registry().to_string(), prefix))
}

fn creds(c: &RawCreds) -> Result<Creds, String> {
    let username = c.username.as_ref().map(|u| u.value.clone());
    match (username, &c.password_env, &c.password_file, &c.authfile) {
        (Some(username), Some(v), None, None) => Ok(Creds::Env {
            username,
            variable: v.value.clone(),
        }),
        (Some(username), None, Some(p), None) => Ok(Creds::File {
            username,
            path: p.value.clone(),
        }),
        (None, None, None, Some(a)) => Ok(Creds::Authfile(a.value.clone())),
        _ => {
            Err("creds: give username with password_env or password_file, or authfile alone".into())
        }
    }
}

/// `requests_per_second` and `bandwidth`.
fn caps(file: &Path, raw: &RawRegistry, errors: &mut Vec<ConfigError>) -> Caps {
    let mut caps = Caps::default();
    if let Some(r) = &raw.requests_per_second {
        match r.value {
            v if v > 0.0 && v.is_finite() => caps.requests_per_second = Some(v),
            _ => errors.push(error_at(
                file,
                &r.referenced,
                "requests_per_second must be a number above 0",
            )),
        }
    }
    if let Some(b) = &raw.bandwidth {
        match bandwidth(&b.value) {
            Ok(n) => caps.bytes_per_second = Some(n),
            Err(why) => errors.push(error_at(file, &b.referenced, why)),
        }
    }
    caps
}

/// `discovery` and `discovery_url`.
fn discovery(file: &Path, raw: &RawRegistry, errors: &mut Vec<ConfigError>) -> Discovery {
    let mut discovery = Discovery::default();
    if let Some(d) = &raw.discovery {
        match DiscoveryApi::parse(&d.value) {
            Some(api) => discovery.api = api,
            None => errors.push(error_at(
                file,
                &d.referenced,
                format!(
                    "discovery {:?}: catalog, dockerhub, github, quay, harbor or gitlab",
                    d.value
                ),
            )),
        }
    }
    if let Some(u) = &raw.discovery_url {
        match url::Url::parse(&u.value) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                discovery.url = Some(u.value.trim_end_matches('/').to_string());
            }
            _ => errors.push(error_at(
                file,
                &u.referenced,
                format!("discovery_url {:?}: an http(s) URL", u.value),
            )),
        }
    }
    discovery
}
