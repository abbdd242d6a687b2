//! `ocirepl sync --daemon`: every job runs at start, then on its own
//! schedule; a run of a job that is still going when its next time comes
//! is skipped and counted, never stacked. The transports (connections,
//! tokens) live as long as the daemon; each run has its own ledger.
//!
//! Owns the scheduler loop, health (a heartbeat, the jobs whose first run
//! has not finished) and what a control message does: `Reload` swaps the
//! config for the next runs, `Stop` starts nothing new and lets runs in
//! flight finish within a grace period (after it they are dropped: the tag
//! moves last, so nothing half-written shows). Never reads signals or
//! serves HTTP: the app turns those into controls and scrapes.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::LocalBoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;

use super::job::Config;
use super::metrics::Metrics;
use super::state::State;
use super::{SyncSettings, run};
use crate::copy::{Replicator, RunSettings};
use crate::report::ImageReport;
use crate::store::Stores;

/// What the app tells a running daemon.
#[derive(Debug)]
pub enum Control {
    /// A new, valid config: its jobs and schedules apply from now on.
    Reload(Box<Config>),
    /// Start nothing new; give runs in flight this long to finish.
    Stop(Duration),
}

/// Liveness and readiness, for `/healthz` and `/readyz`.
#[derive(Debug, Default)]
pub struct Health {
    heartbeat: AtomicI64,
    first_runs_pending: Mutex<HashSet<String>>,
}

/// The scheduler is alive when its loop has ticked this recently.
const ALIVE_WITHIN_SECS: i64 = 30;

impl Health {
    /// The scheduler loop ticks.
    pub fn alive(&self) -> bool {
        Utc::now().timestamp() - self.heartbeat.load(Ordering::Relaxed) <= ALIVE_WITHIN_SECS
    }

    /// Every job's first run has finished (well or not).
    pub fn ready(&self) -> bool {
        self.first_runs_pending.lock().is_ok_and(|p| p.is_empty())
    }

    fn beat(&self) {
        self.heartbeat
            .store(Utc::now().timestamp(), Ordering::Relaxed);
    }
}

/// What every run of the daemon shares.
pub struct Shared {
    pub stores: Stores,
    pub metrics: Metrics,
    pub state: State,
    pub health: Health,
    /// Run settings of each run (its ledger is new each time).
    pub run: RunSettings,
    pub sync: SyncSettings,
    /// Called with every image report, after metrics and state saw it.
    pub on_report: Box<dyn Fn(&ImageReport) + Send + Sync>,
}

/// Runs in flight, polled by the scheduler itself (one task: a run's
/// copies are concurrent I/O, not threads).
type Runs<'a> = FuturesUnordered<LocalBoxFuture<'a, ()>>;

/// The scheduler: runs until a `Stop` (or the control channel closes).
pub async fn serve(initial: Config, shared: Arc<Shared>, mut control: mpsc::Receiver<Control>) {
    let mut config = Arc::new(initial);
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut runs: Runs<'_> = FuturesUnordered::new();
    let mut next = first_times(&config, &BTreeMap::new());
    if let Ok(mut p) = shared.health.first_runs_pending.lock() {
        *p = next.keys().cloned().collect();
    }
    loop {
        shared.health.beat();
        let now = Utc::now();
        for (job, at) in next.iter_mut() {
            if *at > now {
                continue;
            }
            if running.lock().is_ok_and(|r| r.contains(job)) {
                tracing::warn!(job, "the previous run is still going; this one is skipped");
                shared.metrics.run_skipped(job);
            } else {
                if let Ok(mut r) = running.lock() {
                    r.insert(job.clone());
                }
                runs.push(Box::pin(run_job(
                    config.clone(),
                    job.clone(),
                    shared.clone(),
                    running.clone(),
                )));
            }
            let schedule = config
                .jobs
                .iter()
                .find(|j| &j.name == job)
                .and_then(|j| j.schedule.as_ref());
            *at = schedule
                .and_then(|s| s.next_after(now))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
        }
        let wake = next
            .values()
            .min()
            .copied()
            .unwrap_or(now + chrono::Duration::seconds(1));
        let nap = (wake - Utc::now())
            .to_std()
            .unwrap_or_default()
            .min(Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            Some(()) = runs.next(), if !runs.is_empty() => {}
            msg = control.recv() => match msg {
                Some(Control::Reload(c)) => {
                    tracing::info!(jobs = c.jobs.len(), "config reloaded");
                    config = Arc::new(*c);
                    next = first_times(&config, &next);
                    if let Ok(mut p) = shared.health.first_runs_pending.lock() {
                        p.retain(|j| next.contains_key(j));
                    }
                }
                Some(Control::Stop(grace)) => return stop(runs, grace).await,
                None => return stop(runs, Duration::ZERO).await,
            },
        }
    }
}

/// When each job of `config` runs next: now for a job new to the
/// schedule, its old time for one that was scheduled already.
fn first_times(
    config: &Config,
    old: &BTreeMap<String, DateTime<Utc>>,
) -> BTreeMap<String, DateTime<Utc>> {
    let now = Utc::now();
    config
        .jobs
        .iter()
        .map(|j| (j.name.clone(), old.get(&j.name).copied().unwrap_or(now)))
        .collect()
}

/// One run of one job, through a replicator of its own.
async fn run_job(
    config: Arc<Config>,
    job: String,
    shared: Arc<Shared>,
    running: Arc<Mutex<HashSet<String>>>,
) {
    let started = Instant::now();
    let replicator = Replicator::new(shared.run.clone());
    let settings = SyncSettings {
        only: vec![job.clone()],
        ..shared.sync.clone()
    };
    let on_report = |r: &ImageReport| {
        shared.metrics.image(r);
        (shared.on_report)(r);
    };
    let summary = run(
        &config,
        &settings,
        &shared.stores,
        &replicator,
        &shared.state,
        &on_report,
    )
    .await;
    shared.state.save();
    shared
        .metrics
        .job_run(&job, started.elapsed().as_secs_f64(), summary.failed() == 0);
    tracing::info!(job, "{}", summary.human());
    if let Ok(mut p) = shared.health.first_runs_pending.lock() {
        p.remove(&job);
    }
    if let Ok(mut r) = running.lock() {
        r.remove(&job);
    }
}

/// Lets runs in flight finish within `grace`, then drops what is left
/// (dropping a run stops its requests; tags move last, so none is
/// half-written).
async fn stop(mut runs: Runs<'_>, grace: Duration) {
    if runs.is_empty() {
        return;
    }
    tracing::info!(runs = runs.len(), "stopping: waiting for runs in flight");
    let finished =
        tokio::time::timeout(grace, async { while runs.next().await.is_some() {} }).await;
    if finished.is_err() {
        tracing::warn!(
            runs = runs.len(),
            "grace period over: stopping runs in flight (their tags were not moved)"
        );
    }
}
