//! A config's `registries:` entries → [`Access`] settings, with the
//! credentials they name read when a job first needs them.
//!
//! Owns reading `password_env` and `password_file` (a missing variable or
//! an unreadable file is the job's error, named by variable or path,
//! never by value). Never opens a store.

use std::path::Path;
use std::time::Duration;

use super::job::{Config, Creds, Job, RegistrySettings};
use crate::credentials::{CredentialSource, Credentials};
use crate::plan::Mode;
use crate::store::Access;

/// The most of a password file we read.
const MAX_PASSWORD_FILE: u64 = 64 * 1024;

/// Settings every store of a sync run shares.
#[derive(Debug, Clone, Copy)]
pub struct Common {
    pub read_timeout: Option<Duration>,
}

/// How to reach `registry` for `job`.
pub fn access(
    config: &Config,
    registry: &str,
    job: &Job,
    common: Common,
) -> Result<Access, String> {
    let settings = config.registries.iter().find(|r| r.host == registry);
    let mut access = match settings {
        Some(s) => from_settings(s)?,
        None => Access::default(),
    };
    access.prefer_index = job.options.mode != Mode::Verbatim;
    access.max_manifest_size = job.options.limits.max_manifest_size;
    access.read_timeout = common.read_timeout;
    Ok(access)
}

fn from_settings(s: &RegistrySettings) -> Result<Access, String> {
    let credentials = match &s.creds {
        None => CredentialSource::default(),
        Some(Creds::Authfile(path)) => CredentialSource {
            authfile: Some(path.clone()),
            ..CredentialSource::default()
        },
        Some(Creds::Env { username, variable }) => {
            let password = std::env::var(variable)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    format!(
                        "registry {}: environment variable {variable} (password_env) is not set",
                        s.host
                    )
                })?;
            basic(username, &password)
        }
        Some(Creds::File { username, path }) => basic(username, &password_file(&s.host, path)?),
    };
    Ok(Access {
        credentials,
        tls_verify: s.tls_verify,
        cert_dir: s.cert_dir.clone(),
        max_in_flight: s.concurrency.unwrap_or(0),
        ..Access::default()
    })
}

fn basic(username: &str, password: &str) -> CredentialSource {
    CredentialSource {
        creds: Some(Credentials::basic(username, password)),
        ..CredentialSource::default()
    }
}

/// A password file's first line.
fn password_file(host: &str, path: &Path) -> Result<String, String> {
    let why = |e: String| format!("registry {host}: password_file {}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| why(e.to_string()))?;
    if !meta.is_file() || meta.len() > MAX_PASSWORD_FILE {
        return Err(why("not a small regular file".into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| why(e.to_string()))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(why("empty".into()));
    }
    Ok(line.to_string())
}
