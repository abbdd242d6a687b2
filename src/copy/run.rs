//! The [`Replicator`]: one run's copies (one `copy`, every tag of
//! `--all-tags`, every image of a `sync`), each image through the named
//! steps of `image`, with the run's ledger and copy slots shared.
//!
//! Owns running tasks and turning each outcome into its report. Never
//! decides how an image is copied (that is `image` and the steps).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::stream::{self, StreamExt};

use super::error::CopyError;
use super::fanout::SharedSource;
use super::image;
use super::shared::{BlobStats, Image, Outcome, Run, RunSettings};
use crate::digest::Digest;
use crate::plan::CopyJob;
use crate::progress::Event;
use crate::report::{Action, BlobCounts, ImageReport};
use crate::store::{Location, Store, StoreError};
use crate::verify::OnUnverified;

/// Images checked at once (whether they are up to date: a HEAD per side).
/// Checks are cheap and bounded anyway by each registry's request limiter;
/// only images that need copying wait for one of the `jobs` copy slots.
pub const CHECKS_AT_ONCE: usize = 64;

/// The tags `dst` holds, read once (a listing, concurrently with the
/// source's) so that each tag it lacks needs no HEAD (see
/// `CopyJob::target_lacks_tag`). `None` when it will not list them: every
/// tag is then asked about, as without a listing.
pub async fn target_tags(dst: &dyn Store) -> Option<HashSet<String>> {
    match dst.tags().await {
        Ok(tags) => Some(tags.into_iter().collect()),
        // A repository the target does not have yet lists nothing.
        Err(StoreError::NotFound { .. }) => Some(HashSet::new()),
        Err(e) => {
            tracing::debug!("the target's tags, to spare HEADs: {e}");
            None
        }
    }
}

/// One source image of a run and where it goes: one target, or several
/// (each read from the source once; see `fanout`).
#[derive(Clone)]
pub struct Task {
    pub src: Arc<dyn Store>,
    pub targets: Vec<Target>,
}

/// One target of a task: its job (the target reference, tag, options)
/// and its store.
#[derive(Clone)]
pub struct Target {
    pub job: CopyJob,
    pub dst: Arc<dyn Store>,
}

impl Task {
    /// A task with one target.
    pub fn new(job: CopyJob, src: Arc<dyn Store>, dst: Arc<dyn Store>) -> Task {
        Task {
            src,
            targets: vec![Target { job, dst }],
        }
    }
}

/// Copies images, sharing one ledger across all of them.
pub struct Replicator {
    run: Run,
}

impl Replicator {
    pub fn new(settings: RunSettings) -> Replicator {
        Replicator {
            run: Run::new(settings),
        }
    }

    pub fn jobs(&self) -> usize {
        self.run.jobs()
    }

    /// Tells the run's ledger that `at` holds `digest` (found by a check
    /// before the copies), so that other repositories of its registry
    /// mount it from there.
    pub fn holds(&self, at: &Location, digest: &Digest) {
        self.run.ledger.record(at, digest);
    }

    /// `--plan`: nothing is written.
    pub fn plan_only(&self) -> bool {
        self.run.settings.plan_only
    }

    /// Images to run at once: their checks overlap, their copies take
    /// turns for [`RunSettings::jobs`] slots.
    pub fn in_flight(&self) -> usize {
        self.jobs().max(CHECKS_AT_ONCE)
    }

    /// Runs tasks ([`Replicator::in_flight`] at a time). Reports come back
    /// in the order of `tasks`.
    pub async fn run_all(&self, tasks: &[Task]) -> Vec<ImageReport> {
        let per_task: Vec<Vec<ImageReport>> = stream::iter(tasks)
            .map(|t| self.run_task(t))
            .buffered(self.in_flight())
            .collect()
            .await;
        per_task.into_iter().flatten().collect()
    }

    /// Copies one task's image to each of its targets; a report per
    /// target, in the order of `task.targets`. Several targets read the
    /// source once, through a shared source; each succeeds or fails on
    /// its own.
    pub async fn run_task(&self, task: &Task) -> Vec<ImageReport> {
        let shared = match task.targets.len() {
            0 | 1 => None,
            _ => match SharedSource::new(task.src.clone()) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!("reading the source once for several targets: {e}");
                    None
                }
            },
        };
        let Some(shared) = shared else {
            let each = task
                .targets
                .iter()
                .map(|t| self.run(&t.job, task.src.as_ref(), t.dst.as_ref()));
            return futures::future::join_all(each).await;
        };
        let handles: Vec<_> = task.targets.iter().map(|_| shared.handle()).collect();
        let each = task
            .targets
            .iter()
            .zip(&handles)
            .map(|(t, h)| self.run(&t.job, h, t.dst.as_ref()));
        futures::future::join_all(each).await
    }

    /// Copies one image and reports on it; failures are in the report.
    pub async fn run(&self, job: &CopyJob, src: &dyn Store, dst: &dyn Store) -> ImageReport {
        let started = Instant::now();
        let stats = BlobStats::default();
        let target = job.target_display();
        self.run
            .settings
            .progress
            .event(Event::ImageStarted { image: &target });
        let img = Image::new(&self.run, job, src, dst, &stats);
        let result = image::copy_image(&img).await.map(|mut o| {
            // A source that built the manifest (a docker-archive image)
            // says how: the digest is new even where the bytes are kept.
            if o.reason.is_none() {
                o.reason = src.built(&o.source_digest);
            }
            o
        });
        let report = report(job, &stats, result, started);
        self.run
            .settings
            .progress
            .event(Event::ImageDone { report: &report });
        report
    }
}

fn report(
    job: &CopyJob,
    stats: &BlobStats,
    result: Result<Outcome, CopyError>,
    started: Instant,
) -> ImageReport {
    let mut report = ImageReport {
        job: job.label.clone(),
        source: job.source_display(),
        target: job.target_display(),
        source_digest: None,
        target_digest: None,
        digest_preserved: false,
        action: Action::Failed,
        blobs: BlobCounts {
            copied: stats.copied.load(Ordering::Relaxed),
            mounted: stats.mounted.load(Ordering::Relaxed),
            skipped: stats.skipped.load(Ordering::Relaxed),
        },
        manifests_pushed: 0,
        bytes_copied: stats.bytes.load(Ordering::Relaxed),
        duration_ms: started.elapsed().as_millis() as u64,
        reason: None,
        referrers: None,
        verification: None,
        error: None,
        usage_error: false,
    };
    match result {
        Ok(o) => {
            report.digest_preserved = o.source_digest == o.target_digest;
            report.reason = o.reason;
            report.source_digest = Some(o.source_digest.to_string());
            report.target_digest = Some(o.target_digest.to_string());
            report.action = o.action;
            report.manifests_pushed = o.manifests_pushed;
            if let Some(bytes) = o.bytes_to_move {
                report.bytes_copied = bytes;
            }
            report.referrers = o.referrers.map(|c| crate::report::ReferrerCounts {
                copied: c.copied,
                present: c.present,
                left_behind: c.left_behind,
                notes: c.notes,
            });
            report.verification = o.verification;
            if o.action == Action::Unverified {
                unverified(job, &mut report);
            }
        }
        Err(e) if e.is_budget() => {
            report.action = Action::Skipped;
            report.reason = Some(e.failure.to_string());
        }
        Err(e) => {
            report.usage_error = e.is_usage();
            report.error = Some(e.to_string());
        }
    }
    report
}

/// An image no signature let in: nothing is in the target for it, and it
/// fails the run unless the job says `on_unverified: skip`.
fn unverified(job: &CopyJob, report: &mut ImageReport) {
    report.target_digest = None;
    report.digest_preserved = false;
    let fails = job
        .options
        .verify
        .as_ref()
        .is_none_or(|v| v.on_unverified == OnUnverified::Fail);
    if fails {
        report.error = Some(format!(
            "unverified: {}",
            report.reason.as_deref().unwrap_or("no signature passed")
        ));
    }
}
