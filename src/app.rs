//! Turns a parsed command into a plan and runs it: the only place that
//! knows both the CLI and the copy engine.
//!
//! Owns store construction per reference, report printing and the mapping
//! of outcomes to exit codes. `anyhow` lives here (and in `main`) only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command, CopyArgs, FormatArg, ModeArg, Output};
use crate::copy::{CopyOptions, Replicator};
use crate::credentials::{self, Env, SideFlags};
use crate::plan::CopyJob;
use crate::plan::{Format, Mode};
use crate::platform::Platform;
use crate::reference::ImageRef;
use crate::report::Action;
use crate::store::Store;
use crate::store::layout::LayoutStore;
use crate::store::registry::RegistryStore;
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
        Command::Copy(args) => copy(args, cli.quiet).await,
    }
}

/// Which side of a copy a store is for: decides credentials, TLS, and
/// whether a missing layout may be created.
struct Side {
    flags: SideFlags,
    creds_flag: &'static str,
    tls_verify: Option<bool>,
    cert_dir: Option<PathBuf>,
    is_target: bool,
}

async fn copy(args: CopyArgs, quiet: bool) -> Result<ExitCode> {
    let source = parse_ref(&args.source, "SRC")?;
    let target = parse_ref(&args.destination, "DST")?;
    let job = CopyJob::new(source, target).map_err(|e| UsageError(e.to_string()))?;
    let options = copy_options(&args)?;
    let src_side = Side {
        flags: side_flags(
            args.src.creds.as_deref(),
            "--src-creds",
            args.src.registry_token,
            args.src.no_creds,
            args.src.authfile.or(args.authfile.clone()),
        )?,
        creds_flag: "--src-creds",
        tls_verify: args.src.tls_verify,
        cert_dir: args.src.cert_dir,
        is_target: false,
    };
    let dst_side = Side {
        flags: side_flags(
            args.dest.creds.as_deref(),
            "--dest-creds",
            args.dest.registry_token,
            args.dest.no_creds,
            args.dest.authfile.or(args.authfile),
        )?,
        creds_flag: "--dest-creds",
        tls_verify: args.dest.tls_verify,
        cert_dir: args.dest.cert_dir,
        is_target: true,
    };
    let env = Env::from_process();
    let prefer_index = args.mode != ModeArg::Verbatim;
    let src = open_store(&job.source, &src_side, &env, prefer_index)?;
    let dst = open_store(&job.target, &dst_side, &env, prefer_index)?;
    let report = Replicator::new(src.as_ref(), dst.as_ref(), options)
        .run(&job)
        .await;
    let failed = report.action == Action::Failed;
    if args.output == Output::Json {
        let json = serde_json::to_string(&report).context("serialising the report")?;
        println!("{json}");
    }
    // Failures always reach stderr; summaries only for people.
    if failed || (args.output == Output::Human && !quiet) {
        eprintln!("{}", report.human());
    }
    Ok(ExitCode::from(match (failed, report.usage_error) {
        (true, true) => EXIT_USAGE,
        (true, false) => EXIT_FAILED,
        _ => EXIT_OK,
    }))
}

fn copy_options(args: &CopyArgs) -> Result<CopyOptions> {
    let platforms = args
        .platform
        .iter()
        .map(|p| Platform::parse(p).map_err(|e| UsageError(format!("--platform: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mode = match args.mode {
        ModeArg::Verbatim => Mode::Verbatim,
        ModeArg::PreferIndex => Mode::PreferIndex,
        ModeArg::NormaliseIndex => Mode::NormaliseIndex,
    };
    if args.unwrap && mode == Mode::NormaliseIndex {
        return Err(
            UsageError("--unwrap and --mode normalise-index contradict each other".into()).into(),
        );
    }
    Ok(CopyOptions {
        jobs: usize::from(args.jobs),
        platforms,
        unwrap: args.unwrap,
        mode,
        format: match args.format {
            FormatArg::Auto => Format::Auto,
            FormatArg::V2s2 => Format::V2s2,
            FormatArg::Oci => Format::Oci,
        },
        include_foreign: args.include_foreign,
        max_uncompressed: args.max_uncompressed_layer,
        diff_id_cache: cache_dir().map(|d| d.join("diff-ids.json")),
    })
}

/// `$XDG_CACHE_HOME/ocirepl`, or `~/.cache/ocirepl`.
fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .map(|d| d.join("ocirepl"))
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

fn parse_ref(input: &str, what: &str) -> Result<ImageRef> {
    ImageRef::parse(input).map_err(|e| UsageError(format!("{what}: {e}")).into())
}

fn open_store(r: &ImageRef, side: &Side, env: &Env, prefer_index: bool) -> Result<Box<dyn Store>> {
    match r {
        ImageRef::Registry(reference) => {
            let registry = reference.registry();
            let credentials =
                credentials::resolve(&side.flags, env, registry, reference.repository())
                    .with_context(|| format!("looking up credentials for {registry}"))?;
            tracing::debug!(
                registry,
                creds_flag = side.creds_flag,
                found = credentials.is_some(),
                "credentials"
            );
            let options = TransportOptions {
                tls_verify: side.tls_verify,
                cert_dir: side.cert_dir.clone().or_else(|| default_cert_dir(registry)),
                credentials,
                ..TransportOptions::default()
            };
            let transport = Transport::new(registry, reference.is_loopback(), options)
                .with_context(|| format!("setting up {registry}"))?;
            Ok(Box::new(
                RegistryStore::new(transport, side.is_target).prefer_index(prefer_index),
            ))
        }
        ImageRef::Layout(l) => {
            let store = LayoutStore::open(&l.path, side.is_target)
                .with_context(|| format!("opening {r}"))?;
            Ok(Box::new(store))
        }
    }
}

/// docker's and podman's per-registry certificate directories, when present.
fn default_cert_dir(registry: &str) -> Option<PathBuf> {
    ["/etc/docker/certs.d", "/etc/containers/certs.d"]
        .iter()
        .map(|base| Path::new(base).join(registry))
        .find(|p| p.is_dir())
}
