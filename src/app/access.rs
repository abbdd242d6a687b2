//! Command-line flags → [`Access`]: the plain settings a store opens from.
//!
//! Owns how `--src-*` / `--dest-*` flags and their environment variables
//! become settings. An empty environment variable (CI templates export
//! missing secrets as empty strings) means "not set". Never opens a store.

use std::path::PathBuf;

use anyhow::Result;

use super::UsageError;
use crate::cli::{DestAccess, SourceAccess, UploadModeArg};
use crate::credentials::CredentialSource;
use crate::credentials::Credentials;
use crate::store::Access;
use crate::store::registry::UploadMode;

/// How to reach the source side.
pub(super) fn source(a: &SourceAccess, authfile: Option<&PathBuf>) -> Result<Access> {
    Ok(Access {
        credentials: credential_source(
            a.creds.as_deref(),
            "--src-creds",
            a.registry_token.as_deref(),
            a.no_creds,
            a.authfile.as_ref().or(authfile),
        )?,
        tls_verify: a.tls_verify,
        cert_dir: a.cert_dir.clone(),
        ..Access::default()
    })
}

/// How to reach the destination side, with its upload strategy.
pub(super) fn dest(a: &DestAccess, authfile: Option<&PathBuf>) -> Result<Access> {
    Ok(Access {
        credentials: credential_source(
            a.creds.as_deref(),
            "--dest-creds",
            a.registry_token.as_deref(),
            a.no_creds,
            a.authfile.as_ref().or(authfile),
        )?,
        tls_verify: a.tls_verify,
        cert_dir: a.cert_dir.clone(),
        ..Access::default()
    })
}

pub(super) fn upload_mode(mode: UploadModeArg) -> UploadMode {
    match mode {
        UploadModeArg::Auto => UploadMode::Auto,
        UploadModeArg::Monolithic => UploadMode::Monolithic,
        UploadModeArg::SinglePost => UploadMode::SinglePost,
        UploadModeArg::Chunked => UploadMode::Chunked,
    }
}

fn credential_source(
    creds: Option<&str>,
    creds_flag: &str,
    registry_token: Option<&str>,
    no_creds: bool,
    authfile: Option<&PathBuf>,
) -> Result<CredentialSource> {
    let creds = match creds.filter(|s| !s.is_empty()) {
        None => None,
        // Never echo the value: it is a secret, malformed or not.
        Some(s) => Some(
            Credentials::parse(s)
                .ok_or_else(|| UsageError(format!("{creds_flag}: expected USER:PASS")))?,
        ),
    };
    Ok(CredentialSource {
        creds,
        registry_token: registry_token.filter(|t| !t.is_empty()).map(str::to_string),
        no_creds,
        authfile: authfile.filter(|p| !p.as_os_str().is_empty()).cloned(),
    })
}
