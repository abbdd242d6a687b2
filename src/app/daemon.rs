//! `ocirepl sync --daemon`: the scheduler of `sync::daemon` with the
//! process around it: signals (SIGTERM/SIGINT stop within `--grace`,
//! SIGHUP re-reads the config and keeps the old one if the new one is
//! invalid), and `--listen`, the HTTP server (`server`) with the daemon's
//! endpoints (`service`).
//!
//! Owns the process's side of the daemon: reading the service's secrets
//! at start (a variable that is not set is a usage error before anything
//! runs). Never schedules or copies.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::UsageError;
use super::server::{Limits, serve as serve_http};
use super::service::Service;
use crate::credentials::ServiceSecret;
use crate::sync::daemon::{Control, Shared, serve};
use crate::sync::job::{self, Config};

/// Runs the daemon until SIGTERM or SIGINT.
pub(super) async fn run(
    config: Config,
    path: PathBuf,
    shared: Arc<Shared>,
    listen: Option<String>,
    grace: Duration,
) -> Result<()> {
    check_schedules(&config)?;
    let (token, github) = secrets(&config)?;
    let (tx, rx) = mpsc::channel(64);
    let stop = CancellationToken::new();
    if let Some(addr) = listen {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("--listen {addr}: cannot listen"))?;
        let v1 = if token.is_some() { ", /v1" } else { "" };
        tracing::info!(addr, "serving /metrics, /healthz, /readyz{v1}");
        let service = Arc::new(Service::new(shared.clone(), tx.clone(), token, github));
        tokio::spawn(serve_http(
            listener,
            service.handler(),
            Limits::daemon(),
            stop.clone(),
            grace,
        ));
    } else if token.is_some() {
        tracing::warn!(
            "the config has a service: block, but without --listen nothing receives events"
        );
    }
    tokio::spawn(signals(tx, path, grace));
    serve(config, shared, rx).await;
    stop.cancel();
    Ok(())
}

/// The service's token and GitHub secret, from the variables the config
/// names.
fn secrets(config: &Config) -> Result<(Option<ServiceSecret>, Option<ServiceSecret>)> {
    let Some(service) = &config.service else {
        return Ok((None, None));
    };
    let what = format!("{} service:", config.file.display());
    let token = ServiceSecret::from_env(&service.token_env, &what)
        .map_err(|e| UsageError(format!("{e} (token_env)")))?;
    let github = match &service.github_secret_env {
        Some(v) => Some(
            ServiceSecret::from_env(v, &what)
                .map_err(|e| UsageError(format!("{e} (github_secret_env)")))?,
        ),
        None => None,
    };
    Ok((Some(token), github))
}

/// A daemon runs only jobs with a schedule (their own or the defaults').
fn check_schedules(config: &Config) -> Result<()> {
    let missing = config.unscheduled();
    if missing.is_empty() {
        return Ok(());
    }
    Err(UsageError(format!(
        "{}: --daemon needs a schedule or every for each job (or in defaults); none for: {}",
        config.file.display(),
        missing.join(", ")
    ))
    .into())
}

/// SIGTERM and SIGINT stop; SIGHUP reloads.
async fn signals(tx: mpsc::Sender<Control>, path: PathBuf, grace: Duration) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match reload(&path) {
                Ok(config) => {
                    let _ = tx.send(Control::Reload(Box::new(config))).await;
                }
                Err(why) => tracing::error!("SIGHUP: keeping the running config: {why}"),
            },
        }
    }
    tracing::info!(grace = grace.as_secs(), "stopping");
    let _ = tx.send(Control::Stop(grace)).await;
    Ok(())
}

fn reload(path: &std::path::Path) -> Result<Config, String> {
    let config = job::load(path).map_err(|e| e.to_string())?;
    check_schedules(&config).map_err(|e| e.to_string())?;
    Ok(config)
}
