//! What a failed copy says: the [`Step`] that failed and the [`Failure`]
//! itself, with kinds callers branch on (a usage mistake, a store error
//! sorted by meaning, an image whose structure we refuse).
//!
//! Owns the wording of steps. Never inspects HTTP: store errors arrive
//! already sorted.

use std::fmt;

use crate::digest::Digest;
use crate::manifest::ManifestError;
use crate::manifest::schema1::Schema1Error;
use crate::store::{Rejection, StoreError};

/// Which step of a copy failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    ReadSource,
    CheckTarget,
    Walk,
    ReadChild(Digest),
    Blob(Digest),
    /// A child manifest, with its media type.
    PushChild(Digest, String),
    /// The manifest that moves the tag, with its media type.
    PushRoot(String),
    Select,
    Convert,
    Deadline,
    /// Finding or copying the referrers of this manifest.
    Referrers(Digest),
    /// Fetching the signatures of this manifest (`verify`).
    Verify(Digest),
    /// Keeping the image a tag named under this backup tag.
    Backup(String),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::ReadSource => f.write_str("reading the source manifest"),
            Step::CheckTarget => f.write_str("checking the target"),
            Step::Walk => f.write_str("reading the image's structure"),
            Step::ReadChild(d) => write!(f, "reading child manifest {d}"),
            Step::Blob(d) => write!(f, "copying blob {d}"),
            Step::PushChild(d, t) => write!(f, "pushing child manifest {d} ({t})"),
            Step::PushRoot(t) => write!(f, "pushing the manifest ({t})"),
            Step::Select => f.write_str("selecting platforms"),
            Step::Convert => f.write_str("converting schema1 to schema2"),
            Step::Deadline => f.write_str("copying within the time allowed"),
            Step::Referrers(d) => write!(f, "copying the referrers of {d}"),
            Step::Verify(d) => write!(f, "fetching the signatures of {d}"),
            Step::Backup(t) => write!(f, "keeping the old image as {t} (backup)"),
        }
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// A store (source or target) failed; its kind says how.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The user asked for something this image cannot give (exit code 2).
    #[error("{0}")]
    Selection(String),
    /// A manifest could not be read as what it claims to be.
    #[error("{what}: {source}")]
    Manifest {
        what: String,
        #[source]
        source: ManifestError,
    },
    #[error(transparent)]
    Schema1(#[from] Schema1Error),
    /// The image is shaped in a way we refuse (too deep, too wide, a child
    /// that does not match its descriptor, not the digest asked for).
    #[error("{0}")]
    Structure(String),
    #[error("gave up after {0} s (--timeout); the target tag was not moved by this run")]
    Deadline(u64),
}

/// A failed step.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {failure}")]
pub struct CopyError {
    pub step: Step,
    pub failure: Box<Failure>,
}

impl CopyError {
    pub fn new(step: Step, failure: impl Into<Failure>) -> CopyError {
        CopyError {
            step,
            failure: Box::new(failure.into()),
        }
    }

    /// A selection the image cannot satisfy, found before any write.
    pub fn usage(message: String) -> CopyError {
        CopyError::new(Step::Select, Failure::Selection(message))
    }

    /// A manifest `what` that does not read as what it claims.
    pub fn manifest(step: Step, what: String, source: ManifestError) -> CopyError {
        CopyError::new(step, Failure::Manifest { what, source })
    }

    /// The image's shape, refused at `step`.
    pub fn structure(step: Step, why: String) -> CopyError {
        CopyError::new(step, Failure::Structure(why))
    }

    /// A usage mistake rather than a failed copy.
    pub fn is_usage(&self) -> bool {
        matches!(*self.failure, Failure::Selection(_))
    }

    /// The source's pull budget is kept in reserve: nothing failed, the
    /// image waits for a later run.
    pub fn is_budget(&self) -> bool {
        matches!(
            &*self.failure,
            Failure::Store(StoreError::PullBudget { .. })
        )
    }

    /// Why the target refused a manifest, when it did.
    pub fn rejection(&self) -> Option<Rejection> {
        match &*self.failure {
            Failure::Store(e) => e.rejection(),
            _ => None,
        }
    }
}
