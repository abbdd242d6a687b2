//! `ocirepl sync --daemon`: every job runs at start, then on its own
//! schedule and on the events that name it; a scheduled run of a job that
//! is still going when its next time comes is skipped and counted, never
//! stacked. The transports (connections, tokens) live as long as the
//! daemon; each run has its own ledger.
//!
//! Owns the scheduler loop, health (a heartbeat, the jobs whose first run
//! has not finished), each job's status, and what a control message does:
//! `Reload` swaps the config for the next runs, `Stop` starts nothing new
//! and lets runs in flight finish within a grace period (after it they are
//! dropped: the tag moves last, so nothing half-written shows), `Events`
//! routes announced pushes to narrow runs (gathered for the config's
//! `debounce`, queued behind a run of the same job), `RunJob` runs a job
//! now. Never reads signals or serves HTTP: the app turns those into
//! controls and scrapes.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::LocalBoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};

use super::events::Event;
use super::job::{Config, DEFAULT_DEBOUNCE};
use super::metrics::Metrics;
use super::state::{RunRecord, State};
use super::trigger::{Routed, Trigger, route};
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
    /// Pushes a registry announced: each is routed to the jobs it
    /// concerns (or why none), answered on `reply`.
    Events {
        events: Vec<Event>,
        reply: oneshot::Sender<Vec<Result<Vec<Routed>, String>>>,
    },
    /// Run a job now (whole, as its schedule would); `reply` says whether
    /// the config has it.
    RunJob {
        job: String,
        reply: oneshot::Sender<bool>,
    },
}

/// Why a run started, for its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Start,
    Schedule,
    Event,
    Request,
}

impl Cause {
    fn name(self) -> &'static str {
        match self {
            Cause::Start => "start",
            Cause::Schedule => "schedule",
            Cause::Event => "event",
            Cause::Request => "request",
        }
    }
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
    /// When each job runs next (its schedule), for `/v1/status`.
    pub next_runs: Mutex<BTreeMap<String, DateTime<Utc>>>,
}

impl Shared {
    /// Each job's last run and next one, as `/v1/status` shows them.
    pub fn status(&self) -> serde_json::Value {
        let next = self.next_runs.lock().map(|n| n.clone()).unwrap_or_default();
        let runs = self.state.runs();
        let jobs: serde_json::Map<String, serde_json::Value> = next
            .iter()
            .map(|(job, at)| {
                let next_run = (*at != DateTime::<Utc>::MAX_UTC).then(|| at.to_rfc3339());
                (
                    job.clone(),
                    serde_json::json!({"last_run": runs.get(job), "next_run": next_run}),
                )
            })
            .collect();
        serde_json::json!({ "jobs": jobs })
    }
}

/// Runs in flight, polled by the scheduler itself (one task: a run's
/// copies are concurrent I/O, not threads).
type Runs<'a> = FuturesUnordered<LocalBoxFuture<'a, ()>>;

/// The jobs with a run in flight, and whether it is a narrow one.
type Running = Arc<Mutex<BTreeMap<String, Cause>>>;

/// What the scheduler keeps between ticks.
struct Scheduler {
    config: Arc<Config>,
    running: Running,
    next: BTreeMap<String, DateTime<Utc>>,
    /// Events gathered per job, and when their run may start.
    pending: BTreeMap<String, (Instant, Trigger)>,
    /// Jobs asked for by `/v1/jobs/{name}/run`.
    requested: HashSet<String>,
}

/// The scheduler: runs until a `Stop` (or the control channel closes).
pub async fn serve(initial: Config, shared: Arc<Shared>, mut control: mpsc::Receiver<Control>) {
    let next = first_times(&initial, &BTreeMap::new());
    let mut s = Scheduler {
        config: Arc::new(initial),
        running: Arc::default(),
        next,
        pending: BTreeMap::new(),
        requested: HashSet::new(),
    };
    let mut runs: Runs<'_> = FuturesUnordered::new();
    if let Ok(mut p) = shared.health.first_runs_pending.lock() {
        *p = s.next.keys().cloned().collect();
    }
    let mut first = true;
    loop {
        shared.health.beat();
        s.start_due(&shared, &mut runs, first);
        first = false;
        if let Ok(mut n) = shared.next_runs.lock() {
            n.clone_from(&s.next);
        }
        tokio::select! {
            _ = tokio::time::sleep(s.nap()) => {}
            Some(()) = runs.next(), if !runs.is_empty() => {}
            msg = control.recv() => match msg {
                Some(Control::Reload(c)) => {
                    tracing::info!(jobs = c.jobs.len(), "config reloaded");
                    s.next = first_times(&c, &s.next);
                    s.pending.retain(|j, _| s.next.contains_key(j));
                    s.config = Arc::new(*c);
                    if let Ok(mut p) = shared.health.first_runs_pending.lock() {
                        p.retain(|j| s.next.contains_key(j));
                    }
                }
                Some(Control::Events { events, reply }) => {
                    let _ = reply.send(s.gather(events));
                }
                Some(Control::RunJob { job, reply }) => {
                    let known = s.next.contains_key(&job);
                    if known {
                        s.requested.insert(job);
                    }
                    let _ = reply.send(known);
                }
                Some(Control::Stop(grace)) => return stop(runs, grace).await,
                None => return stop(runs, Duration::ZERO).await,
            },
        }
    }
}

impl Scheduler {
    /// Starts what is due: scheduled runs, requested runs, and the narrow
    /// runs of events whose debounce is over.
    fn start_due<'a>(&mut self, shared: &Arc<Shared>, runs: &mut Runs<'a>, first: bool) {
        let now = Utc::now();
        let jobs: Vec<String> = self.next.keys().cloned().collect();
        for job in jobs {
            let busy = self.running.lock().ok().and_then(|r| r.get(&job).copied());
            let due = self.next.get(&job).is_some_and(|at| *at <= now);
            if due {
                match busy {
                    // A narrow run is short: the scheduled one waits for it.
                    Some(Cause::Event) => continue,
                    Some(_) => {
                        tracing::warn!(job, "the previous run is still going; this one is skipped");
                        shared.metrics.run_skipped(&job);
                    }
                    None => {
                        let cause = if first { Cause::Start } else { Cause::Schedule };
                        self.launch(shared, runs, &job, cause, None);
                        // A whole run covers what events asked for.
                        self.pending.remove(&job);
                    }
                }
                let schedule = self
                    .config
                    .jobs
                    .iter()
                    .find(|j| j.name == job)
                    .and_then(|j| j.schedule.as_ref());
                let at = schedule
                    .and_then(|s| s.next_after(now))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                self.next.insert(job.clone(), at);
                continue;
            }
            if busy.is_some() {
                continue;
            }
            if self.requested.remove(&job) {
                self.pending.remove(&job);
                self.launch(shared, runs, &job, Cause::Request, None);
            } else if self
                .pending
                .get(&job)
                .is_some_and(|(at, _)| *at <= Instant::now())
                && let Some((_, trigger)) = self.pending.remove(&job)
            {
                self.launch(shared, runs, &job, Cause::Event, Some(trigger));
            }
        }
    }

    fn launch<'a>(
        &self,
        shared: &Arc<Shared>,
        runs: &mut Runs<'a>,
        job: &str,
        cause: Cause,
        trigger: Option<Trigger>,
    ) {
        if let Ok(mut r) = self.running.lock() {
            r.insert(job.to_string(), cause);
        }
        runs.push(Box::pin(run_job(
            self.config.clone(),
            job.to_string(),
            shared.clone(),
            self.running.clone(),
            (cause, trigger),
        )));
    }

    /// Routes events and gathers what they ask for into each job's next
    /// narrow run.
    fn gather(&mut self, events: Vec<Event>) -> Vec<Result<Vec<Routed>, String>> {
        let debounce = self
            .config
            .service
            .as_ref()
            .map_or(DEFAULT_DEBOUNCE, |s| s.debounce);
        let mut answers = Vec::new();
        for event in events {
            let routed = route(&self.config, &event);
            if let Ok(to) = &routed {
                for r in to {
                    let mut t = Trigger::default();
                    t.add(&r.repository, &r.tag);
                    match self.pending.get_mut(&r.job) {
                        Some((_, pending)) => pending.merge(t),
                        None => {
                            self.pending
                                .insert(r.job.clone(), (Instant::now() + debounce, t));
                        }
                    }
                }
            }
            answers.push(routed);
        }
        answers
    }

    /// How long to sleep: until the next schedule or debounce of a job
    /// that is not running, at most 1 s (a run that ends wakes the loop by
    /// itself, and starts what waited for it).
    fn nap(&self) -> Duration {
        let now = Utc::now();
        let running = self.running.lock().map(|r| r.clone()).unwrap_or_default();
        let idle = |job: &String| !running.contains_key(job);
        let scheduled = self
            .next
            .iter()
            .filter(|(j, _)| idle(j))
            .map(|(_, w)| (*w - now).to_std().unwrap_or_default())
            .min()
            .unwrap_or(Duration::from_secs(1));
        let debounced = self
            .pending
            .iter()
            .filter(|(j, _)| idle(j))
            .map(|(_, (at, _))| at.saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(Duration::from_secs(1));
        scheduled.min(debounced).min(Duration::from_secs(1))
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

/// One run of one job, through a replicator of its own: whole, or
/// narrowed to what events named.
async fn run_job(
    config: Arc<Config>,
    job: String,
    shared: Arc<Shared>,
    running: Running,
    (cause, trigger): (Cause, Option<Trigger>),
) {
    let started = Instant::now();
    let started_at = Utc::now();
    let replicator = Replicator::new(shared.run.clone());
    if let Some(t) = &trigger {
        tracing::info!(job, tags = t.tags(), "event: copying what it named");
    }
    let settings = SyncSettings {
        only: vec![job.clone()],
        trigger: trigger.map(Arc::new),
        ..shared.sync.clone()
    };
    let first_error: Mutex<Option<String>> = Mutex::default();
    let on_report = |r: &ImageReport| {
        shared.metrics.image(r);
        if r.failed()
            && let Ok(mut e) = first_error.lock()
            && e.is_none()
        {
            *e = r.error.clone();
        }
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
    let ok = summary.failed() == 0;
    shared.state.record_run(
        &job,
        RunRecord {
            started: started_at.to_rfc3339(),
            ended: Utc::now().to_rfc3339(),
            result: if ok { "ok" } else { "failed" }.into(),
            cause: cause.name().into(),
            images: summary.images.clone(),
            last_error: first_error.lock().ok().and_then(|e| e.clone()),
        },
    );
    shared.state.save();
    shared
        .metrics
        .job_run(&job, started.elapsed().as_secs_f64(), ok);
    tracing::info!(job, cause = cause.name(), "{}", summary.human());
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
