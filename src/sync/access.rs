//! A config's `registries:` entries → [`Access`] settings, with the
//! credentials they name read (by `credentials`) when a job first needs
//! them: a missing variable or an unreadable file is that job's error.
//! Never opens a store and never reads a secret itself.

use std::time::Duration;

use super::job::{Config, Creds, Job, RegistrySettings};
use crate::credentials::{self, CredentialSource, Credentials};
use crate::plan::Mode;
use crate::store::{Access, Mirror};

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
    let mut access = plain(config, registry)?;
    access.prefer_index = job.options.mode != Mode::Verbatim;
    access.max_manifest_size = job.options.limits.max_manifest_size;
    access.read_timeout = common.read_timeout;
    if let Some(s) = settings {
        access.mirror_tags = s.mirror_tags;
        for (host, prefix) in &s.mirrors {
            let mut mirror = plain(config, host)?;
            mirror.prefer_index = access.prefer_index;
            mirror.max_manifest_size = access.max_manifest_size;
            mirror.read_timeout = access.read_timeout;
            access.mirrors.push(Mirror {
                registry: host.clone(),
                prefix: prefix.clone(),
                access: mirror,
            });
        }
    }
    Ok(access)
}

/// A registry's own settings (credentials, TLS, concurrency), or defaults.
fn plain(config: &Config, registry: &str) -> Result<Access, String> {
    match config.registries.iter().find(|r| r.host == registry) {
        Some(s) => from_settings(s),
        None => Ok(Access::default()),
    }
}

fn from_settings(s: &RegistrySettings) -> Result<Access, String> {
    let credentials = match &s.creds {
        None => CredentialSource::default(),
        Some(Creds::Authfile(path)) => CredentialSource {
            authfile: Some(path.clone()),
            ..CredentialSource::default()
        },
        Some(Creds::Env { username, variable }) => {
            with(credentials::from_env(&s.host, username, variable).map_err(|e| e.to_string())?)
        }
        Some(Creds::File { username, path }) => {
            with(credentials::from_file(&s.host, username, path).map_err(|e| e.to_string())?)
        }
    };
    Ok(Access {
        credentials,
        tls_verify: s.tls_verify,
        cert_dir: s.cert_dir.clone(),
        max_in_flight: s.concurrency.unwrap_or(0),
        caps: s.caps,
        discovery: s.discovery.clone(),
        ..Access::default()
    })
}

fn with(creds: Credentials) -> CredentialSource {
    CredentialSource {
        creds: Some(creds),
        ..CredentialSource::default()
    }
}
