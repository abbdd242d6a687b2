//! What the steps of a copy share, in one place so that no step imports
//! another's types: the run (settings, ledger, copy slots), one image in
//! flight ([`Image`]), what was selected to push ([`Selected`]), what a copy
//! did ([`Outcome`]) and the counters its report reads.
//!
//! Owns these types only. Never does I/O and never decides anything.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::diff_ids::{DiffIdCache, NoCache};
use super::ledger::Ledger;
use super::shape::Shaped;
use crate::digest::Digest;
use crate::manifest::schema1::Schema1;
use crate::plan::CopyJob;
use crate::progress::{Progress, Silent};
use crate::reference::ManifestRef;
use crate::report::{Action, Verification};
use crate::store::{Blob, Location, Store};

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

/// What every image of a run shares: its settings, the blob ledger, and
/// the copy slots (one per image being copied beyond its check).
pub struct Run {
    pub settings: RunSettings,
    pub ledger: Ledger,
    pub copy_slots: tokio::sync::Semaphore,
}

impl Run {
    pub fn new(settings: RunSettings) -> Run {
        Run {
            copy_slots: tokio::sync::Semaphore::new(settings.jobs.max(1)),
            settings,
            ledger: Ledger::default(),
        }
    }

    /// Images copied at once, and transfers at once within an image.
    pub fn jobs(&self) -> usize {
        self.settings.jobs.max(1)
    }
}

/// One image in flight: the run it belongs to, the job, both ends.
pub struct Image<'a> {
    pub run: &'a Run,
    pub job: &'a CopyJob,
    pub src: &'a dyn Store,
    pub dst: &'a dyn Store,
    pub src_at: Location,
    pub dst_at: Location,
    pub stats: &'a BlobStats,
}

impl<'a> Image<'a> {
    pub fn new(
        run: &'a Run,
        job: &'a CopyJob,
        src: &'a dyn Store,
        dst: &'a dyn Store,
        stats: &'a BlobStats,
    ) -> Image<'a> {
        Image {
            run,
            job,
            src,
            dst,
            src_at: src.location(),
            dst_at: dst.location(),
            stats,
        }
    }

    pub fn jobs(&self) -> usize {
        self.run.jobs()
    }
}

/// What a successful copy did.
pub struct Outcome {
    pub action: Action,
    pub source_digest: Digest,
    pub target_digest: Digest,
    pub manifests_pushed: u64,
    /// Why the target digest differs from the source's (or what it came from).
    pub reason: Option<String>,
    /// `--plan`: the bytes a run would move.
    pub bytes_to_move: Option<u64>,
    /// `--referrers`: what travelled with the image.
    pub referrers: Option<ReferrerCounts>,
    /// `verify`: who signed it (or, for `Action::Unverified`, `reason`
    /// says why nobody the job trusts did).
    pub verification: Option<Verification>,
}

impl Outcome {
    pub fn up_to_date(source: Digest, target: Digest, reason: Option<String>) -> Outcome {
        Outcome {
            action: Action::UpToDate,
            source_digest: source,
            target_digest: target,
            manifests_pushed: 0,
            reason,
            bytes_to_move: None,
            referrers: None,
            verification: None,
        }
    }

    /// Not copied: no signature passed (`why`).
    pub fn unverified(source: Digest, target: Digest, why: String) -> Outcome {
        Outcome {
            action: Action::Unverified,
            reason: Some(why),
            ..Outcome::up_to_date(source, target, None)
        }
    }
}

/// Step 2: what will be pushed.
pub struct Selected {
    /// The source digest of what is pushed (the child, when unwrapped).
    pub source_digest: Digest,
    pub shaped: Shaped,
    /// Every blob of the selected tree, each once.
    pub blobs: Vec<Blob>,
    pub schema1: Option<Schema1>,
    pub target_ref: ManifestRef,
}

/// Counters for an image's report.
#[derive(Debug, Default)]
pub struct BlobStats {
    pub copied: AtomicU64,
    pub mounted: AtomicU64,
    pub skipped: AtomicU64,
    pub bytes: AtomicU64,
}

/// Whether the target's word that it holds a blob is believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// A HEAD (or the run's ledger) saying "present" settles it.
    Head,
    /// The target refused a manifest for a blob its HEAD claimed: send
    /// every blob again without asking (oras-go#1212's self-heal).
    Nothing,
}

/// What travelled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferrerCounts {
    pub copied: u64,
    /// Already in the target.
    pub present: u64,
    /// Not copied, each with a reason in `notes`.
    pub left_behind: u64,
    pub notes: Vec<String>,
}
