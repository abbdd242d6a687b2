//! The [`Replicator`]: copies images between [`Store`]s, byte-exact, for a
//! whole run (one `copy`, every tag of `--all-tags`, every image of a
//! `sync`).
//!
//! Owns the order of a copy, as named steps (`image`: resolve → select →
//! blobs → push), and what a run shares across images: the blob ledger and
//! the diff_id cache. A failure leaves the target tag where it was. Talks
//! only to `Store`: never sees a URL, a status code, a token or a file path.

pub mod blobs;
pub mod diff_ids;
pub mod error;
pub mod ledger;
pub mod platforms;
pub mod push;
pub mod referrers;
pub mod retry;
pub mod schema1;
pub mod shape;
pub mod walk;

mod image;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::stream::{self, StreamExt};

use crate::plan::CopyJob;
use crate::progress::{Event, Progress, Silent};
use crate::report::{Action, BlobCounts, ImageReport};
use crate::store::{Store, StoreError};
use blobs::BlobStats;
use diff_ids::{DiffIdCache, NoCache};
pub use error::{CopyError, Failure, Step};
use image::{Image, Outcome};
use ledger::Ledger;
pub use push::push_manifest;

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

/// What a whole run shares; `Default`: 6 transfers at once, no diff_id
/// cache, nobody watching.
#[derive(Clone)]
pub struct RunSettings {
    /// Images copied at once, and blob transfers and manifest fetches at
    /// once within each image.
    pub jobs: usize,
    pub diff_id_cache: Arc<dyn DiffIdCache>,
    pub progress: Arc<dyn Progress>,
    /// `--plan`: read both sides, write nothing, report what a run would
    /// do (`Action::Copy` with the bytes that would move).
    pub plan_only: bool,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            jobs: 6,
            diff_id_cache: Arc::new(NoCache),
            progress: Arc::new(Silent),
            plan_only: false,
        }
    }
}

/// One image of a run: the job and the two stores it goes between.
#[derive(Clone)]
pub struct Task {
    pub job: CopyJob,
    pub src: Arc<dyn Store>,
    pub dst: Arc<dyn Store>,
}

/// Copies images, sharing one ledger across all of them.
pub struct Replicator {
    settings: RunSettings,
    ledger: Ledger,
    /// One per image being copied (beyond its up-to-date check).
    copy_slots: tokio::sync::Semaphore,
}

impl Replicator {
    pub fn new(settings: RunSettings) -> Replicator {
        Replicator {
            copy_slots: tokio::sync::Semaphore::new(settings.jobs.max(1)),
            settings,
            ledger: Ledger::default(),
        }
    }

    pub fn jobs(&self) -> usize {
        self.settings.jobs.max(1)
    }

    /// `--plan`: nothing is written.
    pub fn plan_only(&self) -> bool {
        self.settings.plan_only
    }

    /// Images to run at once: their checks overlap, their copies take
    /// turns for [`RunSettings::jobs`] slots.
    pub fn in_flight(&self) -> usize {
        self.jobs().max(CHECKS_AT_ONCE)
    }

    /// Runs tasks ([`Replicator::in_flight`] at a time). Reports come back
    /// in the order of `tasks`.
    pub async fn run_all(&self, tasks: &[Task]) -> Vec<ImageReport> {
        stream::iter(tasks)
            .map(|t| self.run(&t.job, t.src.as_ref(), t.dst.as_ref()))
            .buffered(self.in_flight())
            .collect()
            .await
    }

    /// Copies one image and reports on it; failures are in the report.
    pub async fn run(&self, job: &CopyJob, src: &dyn Store, dst: &dyn Store) -> ImageReport {
        let started = Instant::now();
        let stats = BlobStats::default();
        let target = job.target_display();
        self.settings
            .progress
            .event(Event::ImageStarted { image: &target });
        let img = Image::new(self, job, src, dst, &stats);
        let result = image::copy_image(&img).await;
        let report = report(job, &stats, result, started);
        self.settings
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
