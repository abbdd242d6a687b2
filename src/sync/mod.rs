//! Mirror jobs: `ocirepl sync CONFIG` runs every job of a YAML config as
//! one run of the replicator (one ledger, one transport per registry), at
//! one HEAD per side for an unchanged tag.
//!
//! Owns the config (`config`, `job`), tag and repository filters
//! (`filter`), expanding jobs into images (`select`), registry settings
//! (`access`) and the run with its summary. Never speaks HTTP and never
//! knows clap: the app renders what the run reports.

pub mod access;
pub mod config;
pub mod filter;
pub mod job;
pub mod select;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::copy::Replicator;
use crate::report::{Action, ImageReport};
use crate::store::Stores;
use access::Common;
use job::Config;

/// What a run does beyond the config.
#[derive(Debug, Clone, Default)]
pub struct SyncSettings {
    /// Only these jobs (by name); empty: all.
    pub only: Vec<String>,
    pub read_timeout: Option<Duration>,
}

/// The end of a run, for people and machines.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub jobs: usize,
    /// Images by action (`copied`, `up-to-date`, `skipped`, `failed`, `copy`).
    pub images: BTreeMap<String, u64>,
    pub bytes_copied: u64,
    /// Requests each registry received, by `METHOD STATUS`.
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    pub duration_ms: u64,
}

impl Summary {
    pub fn failed(&self) -> u64 {
        self.images.get("failed").copied().unwrap_or(0)
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
        if count("copy") > 0 {
            line.push_str(&format!(", {} to copy", count("copy")));
        }
        line.push_str(&format!(
            "; {} moved, {requests} requests, {:.1} s",
            crate::report::human_bytes(self.bytes_copied),
            self.duration_ms as f64 / 1000.0
        ));
        line
    }
}

/// Runs the config's jobs (or `settings.only`); every image is reported to
/// `on_report` as it finishes. A failing image or job never stops the
/// others.
pub async fn run(
    config: &Config,
    settings: &SyncSettings,
    stores: &Stores,
    replicator: &Replicator,
    on_report: &(dyn Fn(&ImageReport) + Sync),
) -> Summary {
    let started = Instant::now();
    let common = Common {
        read_timeout: settings.read_timeout,
    };
    let jobs: Vec<&job::Job> = config
        .jobs
        .iter()
        .filter(|j| settings.only.is_empty() || settings.only.contains(&j.name))
        .collect();
    let mut summary = Summary {
        jobs: jobs.len(),
        ..Summary::default()
    };
    let expanded: Vec<select::Expanded> = stream::iter(&jobs)
        .map(|j| select::expand(config, j, stores, common))
        .buffered(replicator.jobs())
        .collect()
        .await;
    let mut tasks = Vec::new();
    for e in expanded {
        for r in &e.settled {
            count(&mut summary, r);
            on_report(r);
        }
        tasks.extend(e.tasks);
    }
    let reports: Vec<ImageReport> = stream::iter(&tasks)
        .map(|t| replicator.run(&t.job, t.src.as_ref(), t.dst.as_ref()))
        .buffer_unordered(replicator.in_flight())
        .inspect(|r| on_report(r))
        .collect()
        .await;
    for r in &reports {
        count(&mut summary, r);
    }
    for registry in stores.registries() {
        let entry = summary
            .requests
            .entry(registry.name().to_string())
            .or_default();
        for (method, status, n) in registry.stats().requests() {
            *entry.entry(format!("{method} {status}")).or_default() += n;
        }
    }
    summary.duration_ms = started.elapsed().as_millis() as u64;
    summary
}

fn count(summary: &mut Summary, r: &ImageReport) {
    let action = serde_json::to_value(r.action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    *summary.images.entry(action).or_default() += 1;
    if r.action == Action::Copied {
        summary.bytes_copied += r.bytes_copied;
    }
}
