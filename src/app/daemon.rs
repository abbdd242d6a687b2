//! `ocirepl sync --daemon`: the scheduler of `sync::daemon` with the
//! process around it: signals (SIGTERM/SIGINT stop within `--grace`,
//! SIGHUP re-reads the config and keeps the old one if the new one is
//! invalid), and `--metrics-addr`, a small HTTP server for `/metrics`,
//! `/healthz` and `/readyz`.
//!
//! Owns the process's side of the daemon. Never schedules or copies.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::UsageError;
use crate::sync::daemon::{Control, Shared, serve};
use crate::sync::job::{self, Config};
use crate::sync::metrics::CONTENT_TYPE;

/// Runs the daemon until SIGTERM or SIGINT.
pub(super) async fn run(
    config: Config,
    path: PathBuf,
    shared: Arc<Shared>,
    metrics_addr: Option<String>,
    grace: Duration,
) -> Result<()> {
    check_schedules(&config)?;
    if let Some(addr) = metrics_addr {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("--metrics-addr {addr}: cannot listen"))?;
        tracing::info!(addr, "serving /metrics, /healthz and /readyz");
        tokio::spawn(http(listener, shared.clone()));
    }
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(signals(tx, path, grace));
    serve(config, shared, rx).await;
    Ok(())
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

/// The most of a request line or header we read.
const MAX_REQUEST_LINE: u64 = 8 * 1024;

/// `/metrics`, `/healthz`, `/readyz`; everything else is 404.
async fn http(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let (read, mut write) = sock.into_split();
            let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST_LINE));
            let mut line = String::new();
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let path = line.split(' ').nth(1).unwrap_or("/").to_string();
            let (status, kind, body) = answer(&path, &shared);
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = write.write_all(head.as_bytes()).await;
            let _ = write.write_all(body.as_bytes()).await;
            let _ = write.shutdown().await;
        });
    }
}

fn answer(path: &str, shared: &Shared) -> (&'static str, &'static str, String) {
    let text = "text/plain; charset=utf-8";
    match path.split('?').next().unwrap_or("") {
        "/metrics" => (
            "200 OK",
            CONTENT_TYPE,
            shared.metrics.encode(&shared.stores),
        ),
        "/healthz" if shared.health.alive() => ("200 OK", text, "ok\n".into()),
        "/healthz" => (
            "503 Service Unavailable",
            text,
            "the scheduler is stuck\n".into(),
        ),
        "/readyz" if shared.health.ready() => ("200 OK", text, "ready\n".into()),
        "/readyz" => (
            "503 Service Unavailable",
            text,
            "first runs still going\n".into(),
        ),
        _ => ("404 Not Found", text, "not found\n".into()),
    }
}
