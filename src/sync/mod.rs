//! Mirror jobs: `ocirepl sync CONFIG` runs every job of a YAML config as
//! one run of the replicator (one ledger, one transport per registry), at
//! one HEAD per side for an unchanged tag.
//!
//! Owns the config (`config`, `job`), tag and repository filters
//! (`filter`), expanding jobs into images (`select`), registry settings
//! (`access`) and the run with its summary. Never speaks HTTP and never
//! knows clap: the app renders what the run reports.

pub mod access;
pub mod airgap;
pub mod config;
pub mod convert;
pub mod daemon;
pub mod events;
pub mod filter;
pub mod job;
pub mod metrics;
pub mod prune;
pub mod registries;
pub mod schedule;
pub mod select;
pub mod shard;
pub mod state;
pub mod trigger;
pub mod trust;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::copy::{Replicator, Task};
use crate::report::{Action, ImageReport};
use crate::store::Stores;
use access::Common;
use airgap::Swap;
use job::Config;
use select::{Repo, Scope};
use shard::Shard;
use state::State;

/// What a run does beyond the config.
#[derive(Debug, Clone, Default)]
pub struct SyncSettings {
    /// Only these jobs (by name); empty: all.
    pub only: Vec<String>,
    pub read_timeout: Option<Duration>,
    /// This run's share of the images.
    pub shard: Option<Shard>,
    /// An archive in place of the targets, or of the sources.
    pub swap: Option<Swap>,
    /// A run an event asked for: only these repositories and tags of the
    /// job (`only` names it), and no prune.
    pub trigger: Option<std::sync::Arc<trigger::Trigger>>,
}

/// The end of a run, for people and machines.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub jobs: usize,
    /// Images by action (`copied`, `up-to-date`, `skipped`, `failed`,
    /// `unverified`, `copy`).
    pub images: BTreeMap<String, u64>,
    /// Images that fail the run: `failed` ones, and `unverified` ones
    /// unless their job says `on_unverified: skip`.
    pub failing: u64,
    pub bytes_copied: u64,
    /// Requests each registry received, by `METHOD STATUS`.
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Blob bytes read from each registry (read mirrors against origins).
    pub read: BTreeMap<String, u64>,
    pub duration_ms: u64,
}

impl Summary {
    pub fn failed(&self) -> u64 {
        self.failing
    }

    /// One line for a person.
    pub fn human(&self) -> String {
        let count = |k: &str| self.images.get(k).copied().unwrap_or(0);
        let requests: u64 = self.requests.values().flat_map(|m| m.values()).sum();
        let mut line = format!(
            "{} jobs, {} images: {} copied, {} up to date, {} skipped, {} failed",
            self.jobs,
            self.images.values().sum::<u64>(),
            count("copied"),
            count("up-to-date"),
            count("skipped"),
            count("failed"),
        );
        if count("unverified") > 0 {
            line.push_str(&format!(
                ", {} unverified (not copied)",
                count("unverified")
            ));
        }
        if count("copy") > 0 {
            line.push_str(&format!(", {} to copy", count("copy")));
        }
        line.push_str(&format!(
            "; {} moved, {requests} requests, {:.1} s",
            crate::report::human_bytes(self.bytes_copied),
            self.duration_ms as f64 / 1000.0
        ));
        if self.read.len() > 1 {
            let from: Vec<String> = self
                .read
                .iter()
                .map(|(r, n)| format!("{} from {r}", crate::report::human_bytes(*n)))
                .collect();
            line.push_str(&format!("; read {}", from.join(", ")));
        }
        line
    }
}

/// Runs the config's jobs (or `settings.only`); every image is reported to
/// `on_report` as it finishes. A failing image or job never stops the
/// others. Jobs with `prune` then prune the repositories whose copies all
/// succeeded.
pub async fn run(
    config: &Config,
    settings: &SyncSettings,
    stores: &Stores,
    replicator: &Replicator,
    state: &State,
    on_report: &(dyn Fn(&ImageReport) + Sync),
) -> Summary {
    let started = Instant::now();
    // A daemon's transports live across runs: this run's requests are what
    // each registry counted since it started.
    let before = Traffic::of(stores);
    let scope = Scope {
        state,
        shard: settings.shard,
        common: Common {
            read_timeout: settings.read_timeout,
        },
        swap: settings.swap.as_ref(),
        trigger: settings.trigger.as_deref(),
    };
    let jobs: Vec<&job::Job> = config
        .jobs
        .iter()
        .filter(|j| settings.only.is_empty() || settings.only.contains(&j.name))
        .collect();
    let mut planned = Planned::default();
    let report = |r: ImageReport, planned: &mut Planned| {
        on_report(&r);
        planned.reports.push(r);
    };
    let expanded: Vec<select::Expanded> = stream::iter(&jobs)
        .map(|j| select::expand(config, j, stores, scope))
        .buffered(replicator.jobs())
        .collect()
        .await;
    for e in expanded {
        for r in e.settled {
            report(r, &mut planned);
        }
        planned.tasks.extend(e.tasks);
        planned.repos.extend(e.repos);
    }
    for r in swap_checks(settings.swap.as_ref(), stores, replicator, &mut planned).await {
        report(r, &mut planned);
    }
    let copied = copy_all(&planned.tasks, replicator, state, on_report).await;
    planned.reports.extend(copied);
    let prunes = settings.swap.is_none() && settings.trigger.is_none();
    for repo in planned.repos.iter().filter(|_| prunes) {
        let Some(job) = jobs.iter().find(|j| j.name == repo.job && j.prune) else {
            continue;
        };
        let reports = &planned.reports;
        let pruned = prune_repository(job, repo, reports, scope, replicator.plan_only()).await;
        for r in pruned {
            on_report(&r);
            planned.reports.push(r);
        }
    }
    let mut summary = Summary {
        jobs: jobs.len(),
        ..Summary::default()
    };
    for r in &planned.reports {
        count(&mut summary, r);
    }
    Traffic::of(stores).since(&before, &mut summary);
    summary.duration_ms = started.elapsed().as_millis() as u64;
    summary
}

/// What a run will copy and prune, and what it reported already.
#[derive(Default)]
struct Planned {
    tasks: Vec<Task>,
    repos: Vec<Repo>,
    reports: Vec<ImageReport>,
}

/// An archive in place of the targets holds one image per name; in place
/// of the sources, an incremental one needs its base in the target, or no
/// tag moves at all. The reports of what that refused.
async fn swap_checks(
    swap: Option<&Swap>,
    stores: &Stores,
    replicator: &Replicator,
    planned: &mut Planned,
) -> Vec<ImageReport> {
    match swap {
        None => Vec::new(),
        Some(Swap::ToArchive(_)) => {
            let (kept, refused) = airgap::one_image_per_name(std::mem::take(&mut planned.tasks));
            planned.tasks = kept;
            refused
        }
        Some(Swap::FromArchive(archive)) => {
            planned.tasks = airgap::based_tasks(std::mem::take(&mut planned.tasks));
            let refused = match archive.omitted(stores).await {
                Ok(omitted) => {
                    airgap::check_incremental(&planned.tasks, &omitted, replicator).await
                }
                Err(e) => vec![ImageReport {
                    error: Some(e),
                    ..select::report(
                        "",
                        archive.path.display().to_string(),
                        String::new(),
                        Action::Failed,
                    )
                }],
            };
            if !refused.is_empty() {
                planned.tasks.clear();
                planned.repos.clear();
            }
            refused
        }
    }
}

/// Every task, `in_flight` at a time; each report goes to the state and
/// `on_report` as it comes.
async fn copy_all(
    tasks: &[Task],
    replicator: &Replicator,
    state: &State,
    on_report: &(dyn Fn(&ImageReport) + Sync),
) -> Vec<ImageReport> {
    let copied: Vec<Vec<ImageReport>> = stream::iter(tasks)
        .map(|t| async {
            let rs = replicator.run_task(t).await;
            for (r, target) in rs.iter().zip(&t.targets) {
                state.record(r, &target.job.options);
                on_report(r);
            }
            rs
        })
        .buffer_unordered(replicator.in_flight())
        .collect()
        .await;
    copied.into_iter().flatten().collect()
}

/// What the registries have counted: requests by `METHOD STATUS`, blob
/// bytes read.
struct Traffic {
    requests: BTreeMap<String, BTreeMap<String, u64>>,
    read: BTreeMap<String, u64>,
}

impl Traffic {
    fn of(stores: &Stores) -> Traffic {
        Traffic {
            requests: requests(stores),
            read: blob_bytes_read(stores),
        }
    }

    /// This run's share: what was counted since `before`.
    fn since(self, before: &Traffic, summary: &mut Summary) {
        for (registry, counts) in self.requests {
            let earlier = before.requests.get(&registry);
            let entry: BTreeMap<String, u64> = counts
                .into_iter()
                .map(|(k, n)| {
                    let was = earlier.and_then(|e| e.get(&k)).copied().unwrap_or(0);
                    (k, n.saturating_sub(was))
                })
                .filter(|(_, n)| *n > 0)
                .collect();
            if !entry.is_empty() {
                summary.requests.insert(registry, entry);
            }
        }
        for (registry, n) in self.read {
            let n = n.saturating_sub(before.read.get(&registry).copied().unwrap_or(0));
            if n > 0 {
                summary.read.insert(registry, n);
            }
        }
    }
}

/// Requests each registry has received, by `METHOD STATUS`. Runs of a
/// daemon that overlap share registries, so each counts the other's too.
fn requests(stores: &Stores) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for registry in stores.registries() {
        let entry = out.entry(registry.name().to_string()).or_default();
        for (method, status, n) in registry.stats().requests() {
            *entry.entry(format!("{method} {status}")).or_default() += n;
        }
    }
    out
}

/// Blob bytes read from each registry so far.
fn blob_bytes_read(stores: &Stores) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for registry in stores.registries() {
        *out.entry(registry.name().to_string()).or_default() += registry.blob_bytes_read();
    }
    out
}

/// Prunes one repository of a job, unless one of its images failed.
async fn prune_repository(
    job: &job::Job,
    repo: &Repo,
    reports: &[ImageReport],
    scope: Scope<'_>,
    plan_only: bool,
) -> Vec<ImageReport> {
    let prefix = format!("{}:", repo.target);
    let failed = reports.iter().any(|r| {
        r.failed() && r.job.as_deref() == Some(&job.name) && r.target.starts_with(&prefix)
    });
    if failed {
        return Vec::new();
    }
    let mut out = Vec::new();
    let owned: Vec<String> = repo.source_tags.clone();
    let result = prune::prune(
        repo.dst.as_ref(),
        &job.tags,
        &owned,
        job.prune_max,
        plan_only,
        // Backups are never pruned: keeping them is their point.
        &|t| {
            scope.owns(&job.name, &repo.target, t)
                && !job.options.backup.as_ref().is_some_and(|b| b.made(t))
        },
    )
    .await;
    let tag = |t: &str| format!("{}{t}", prefix);
    match result {
        Ok(done) => {
            let action = if plan_only {
                Action::Prune
            } else {
                Action::Pruned
            };
            for t in done.deleted {
                out.push(select::report(
                    &job.name,
                    repo.source.clone(),
                    tag(&t),
                    action,
                ));
            }
            for (t, why) in done.kept {
                out.push(ImageReport {
                    reason: Some(why),
                    ..select::report(&job.name, repo.source.clone(), tag(&t), Action::Skipped)
                });
            }
        }
        Err(e) => out.push(ImageReport {
            error: Some(format!("pruning {}: {e}", repo.target)),
            ..select::report(
                &job.name,
                repo.source.clone(),
                repo.target.clone(),
                Action::Failed,
            )
        }),
    }
    out
}

fn count(summary: &mut Summary, r: &ImageReport) {
    let action = serde_json::to_value(r.action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    *summary.images.entry(action).or_default() += 1;
    if r.failed() {
        summary.failing += 1;
    }
    if r.action == Action::Copied {
        summary.bytes_copied += r.bytes_copied;
    }
}
