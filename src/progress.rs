//! Progress as events: what the copy engine says while it works (an image
//! started, a blob's bytes went by, a blob or an image is done).
//!
//! Owns the event vocabulary and the [`Progress`] sink trait. Never draws
//! anything: the app renders events (bars on a terminal, nothing
//! elsewhere), and the engine never knows whether anyone is watching.

use crate::digest::Digest;
use crate::report::ImageReport;

/// How a blob reached the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Its bytes were streamed from the source.
    Copied,
    /// Linked from another repository of the target registry.
    Mounted,
    /// The target had it already.
    Present,
    /// This attempt failed (another may follow).
    Failed,
}

/// One thing that happened.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// An image's copy began; `image` names its target.
    ImageStarted { image: &'a str },
    /// A blob's bytes start to flow (again, on a retry: earlier bytes of
    /// the same digest no longer count).
    BlobStarted { digest: &'a Digest, size: u64 },
    /// `bytes` more of a blob went by.
    BlobBytes { digest: &'a Digest, bytes: u64 },
    /// A blob is settled, one way or another.
    BlobDone {
        digest: &'a Digest,
        outcome: BlobOutcome,
    },
    /// An image is done; the report says how.
    ImageDone { report: &'a ImageReport },
}

/// Where events go. Called from many tasks at once; must not block.
pub trait Progress: Send + Sync {
    fn event(&self, event: Event<'_>);
}

/// Nobody is watching.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: Event<'_>) {}
}
