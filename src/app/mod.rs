//! Turns a parsed command into a plan and runs it: the only place that
//! knows both the CLI and the copy engine.
//!
//! Owns store construction per reference (credentials, TLS, layouts), the
//! commands' output, and the mapping of outcomes to exit codes. `anyhow`
//! lives here (and in `main`) only.

mod copy;
mod index;
mod inspect;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command, DestAccess, IndexCommand, SourceAccess, UploadModeArg};
use crate::credentials::{self, Env, SideFlags};
use crate::reference::ImageRef;
use crate::store::Store;
use crate::store::layout::LayoutStore;
use crate::store::registry::RegistryStore;
use crate::store::registry::upload::{DEFAULT_CHUNK_SIZE, UploadMode};
use crate::transport::{Credentials, Transport, TransportOptions};

/// A mistake in how ocirepl was called (exit code 2), as opposed to a
/// copy that failed (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Exit codes: success, some image failed, usage error.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Copy(args) => copy::run(args, cli.quiet).await,
        Command::Inspect(args) => inspect::inspect(args).await,
        Command::Tags(args) => inspect::tags(args).await,
        Command::Index(IndexCommand::Create(args)) => index::create(args, cli.quiet).await,
    }
}

/// How to reach one side: credentials, TLS, and whether a missing layout
/// may be created (a target).
pub(crate) struct Side {
    flags: SideFlags,
    creds_flag: &'static str,
    tls_verify: Option<bool>,
    cert_dir: Option<PathBuf>,
    is_target: bool,
    prefer_index: bool,
    page_size: Option<u32>,
    max_manifest_size: u64,
    upload: (UploadMode, u64),
    read_timeout: Option<std::time::Duration>,
}

impl Side {
    /// Upload strategy of a target (`--upload-mode`, `--chunk-size`).
    pub(crate) fn with_upload(mut self, mode: UploadModeArg, chunk_size: u64) -> Side {
        self.upload = (
            match mode {
                UploadModeArg::Auto => UploadMode::Auto,
                UploadModeArg::Monolithic => UploadMode::Monolithic,
                UploadModeArg::SinglePost => UploadMode::SinglePost,
                UploadModeArg::Chunked => UploadMode::Chunked,
            },
            chunk_size,
        );
        self
    }
}

impl Side {
    pub(crate) fn source(a: &SourceAccess, authfile: Option<&PathBuf>) -> Result<Side> {
        Ok(Side {
            flags: side_flags(
                a.creds.as_deref(),
                "--src-creds",
                a.registry_token.clone(),
                a.no_creds,
                a.authfile.clone().or_else(|| authfile.cloned()),
            )?,
            creds_flag: "--src-creds",
            tls_verify: a.tls_verify,
            cert_dir: a.cert_dir.clone(),
            is_target: false,
            prefer_index: false,
            page_size: None,
            max_manifest_size: crate::manifest::MAX_MANIFEST_SIZE,
            upload: (UploadMode::Auto, DEFAULT_CHUNK_SIZE),
            read_timeout: None,
        })
    }

    pub(crate) fn dest(a: &DestAccess, authfile: Option<&PathBuf>) -> Result<Side> {
        Ok(Side {
            flags: side_flags(
                a.creds.as_deref(),
                "--dest-creds",
                a.registry_token.clone(),
                a.no_creds,
                a.authfile.clone().or_else(|| authfile.cloned()),
            )?,
            creds_flag: "--dest-creds",
            tls_verify: a.tls_verify,
            cert_dir: a.cert_dir.clone(),
            is_target: true,
            prefer_index: false,
            page_size: None,
            max_manifest_size: crate::manifest::MAX_MANIFEST_SIZE,
            upload: (UploadMode::Auto, DEFAULT_CHUNK_SIZE),
            read_timeout: None,
        })
    }

    /// Opens the store a reference lives in.
    pub(crate) fn open(&self, r: &ImageRef) -> Result<Box<dyn Store>> {
        match r {
            ImageRef::Registry(reference) => {
                let registry = reference.registry();
                let env = Env::from_process();
                let credentials =
                    credentials::resolve(&self.flags, &env, registry, reference.repository())
                        .with_context(|| format!("looking up credentials for {registry}"))?;
                tracing::debug!(
                    registry,
                    flag = self.creds_flag,
                    found = credentials.is_some(),
                    "credentials"
                );
                let options = TransportOptions {
                    tls_verify: self.tls_verify,
                    cert_dir: self.cert_dir.clone().or_else(|| default_cert_dir(registry)),
                    credentials,
                    read_timeout: self.read_timeout,
                    ..TransportOptions::default()
                };
                let transport = Transport::new(registry, reference.is_loopback(), options)
                    .with_context(|| format!("setting up {registry}"))?;
                Ok(Box::new(
                    RegistryStore::new(transport, self.is_target)
                        .prefer_index(self.prefer_index)
                        .page_size(self.page_size)
                        .max_manifest_size(self.max_manifest_size)
                        .upload(self.upload.0, self.upload.1),
                ))
            }
            ImageRef::Layout(l) => {
                let store = LayoutStore::open(&l.path, self.is_target)
                    .with_context(|| format!("opening {r}"))?;
                Ok(Box::new(store))
            }
        }
    }
}

fn side_flags(
    creds: Option<&str>,
    creds_flag: &str,
    registry_token: Option<String>,
    no_creds: bool,
    authfile: Option<PathBuf>,
) -> Result<SideFlags> {
    let creds = match creds {
        None => None,
        // Never echo the value: it is a secret, malformed or not.
        Some(s) => Some(
            Credentials::parse(s)
                .ok_or_else(|| UsageError(format!("{creds_flag}: expected USER:PASS")))?,
        ),
    };
    Ok(SideFlags {
        creds,
        registry_token: registry_token.filter(|t| !t.is_empty()),
        no_creds,
        authfile,
    })
}

pub(crate) fn parse_ref(input: &str, what: &str) -> Result<ImageRef> {
    ImageRef::parse(input).map_err(|e| UsageError(format!("{what}: {e}")).into())
}

/// docker's and podman's per-registry certificate directories, when present.
fn default_cert_dir(registry: &str) -> Option<PathBuf> {
    ["/etc/docker/certs.d", "/etc/containers/certs.d"]
        .iter()
        .map(|base| Path::new(base).join(registry))
        .find(|p| p.is_dir())
}

/// `$XDG_CACHE_HOME/ocirepl`, or `~/.cache/ocirepl`.
pub(crate) fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .map(|d| d.join("ocirepl"))
}
