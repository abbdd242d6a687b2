//! The copy engine: copies images between [`Store`](crate::store::Store)s,
//! byte-exact, for a whole run.
//!
//! Owns the order of a copy, as named steps (`image`: resolve → select →
//! blobs → push → referrers), and what a run shares across images: the
//! blob ledger, the diff_id cache and the copy slots. A failure leaves the
//! target tag where it was. Talks only to `Store`: never sees a URL, a
//! status code, a token or a file path.
//!
//! One door: every submodule is private, and what the rest of the crate
//! uses is re-exported here by name. The steps share their types through
//! `shared` and never import each other in a circle (`tests/layers.rs`
//! checks both).

mod backup;
mod based;
mod blobs;
mod closure;
mod diff_ids;
mod error;
mod fanout;
mod image;
mod index;
mod ledger;
mod platforms;
mod push;
mod referrers;
mod retry;
mod run;
mod schema1;
mod shape;
mod shared;
mod verify;
mod walk;

pub use based::Based;
pub use closure::{Closure, Missing, missing_in_target};
pub use diff_ids::DiffIdCache;
pub use error::{CopyError, Failure, Step};
pub use index::{IndexEntry, IndexError, IndexPart, create_index};
pub use referrers::{Found as FoundReferrer, Via as ReferrerVia, find as find_referrers};
pub use run::{CHECKS_AT_ONCE, Replicator, Target, Task, target_tags};
pub use shape::image_platform;
pub use shared::RunSettings;
