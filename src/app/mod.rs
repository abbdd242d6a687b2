//! Turns a parsed command into settings and a plan and runs it: the only
//! place that knows both the CLI and the engine.
//!
//! Owns the mapping of flags to plain settings (`access`), the run's
//! stores and replicator, the commands' output (reports, progress bars),
//! and the mapping of outcomes to exit codes. `anyhow` lives here (and in
//! `main`) only.

mod access;
mod archive;
mod cache;
mod config;
mod copy;
mod daemon;
mod docs;
mod index;
mod inspect;
pub mod progress;
mod server;
mod service;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command, IndexCommand};
use crate::reference::ImageRef;

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
        Command::Copy(args) => copy::run(*args, cli.quiet).await,
        Command::Sync(args) => {
            let json_logs = cli.log_format == crate::cli::LogFormat::Json;
            sync::run(args, cli.quiet, json_logs).await
        }
        Command::Inspect(args) => inspect::inspect(args).await,
        Command::Tags(args) => inspect::tags(args).await,
        Command::Index(IndexCommand::Create(args)) => index::create(args, cli.quiet).await,
        Command::Config(crate::cli::ConfigCommand::Convert(args)) => config::convert(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    }
}

pub(crate) fn parse_ref(input: &str, what: &str) -> Result<ImageRef> {
    ImageRef::parse(input).map_err(|e| UsageError(format!("{what}: {e}")).into())
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
