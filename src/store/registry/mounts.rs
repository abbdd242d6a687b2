//! Asking a registry whether a repository holds a blob in one request
//! instead of two.
//!
//! `POST /v2/REPO/blobs/uploads/?mount=D&from=REPO`, a mount from the
//! repository itself, answers 201 when the repository holds D and 202 with
//! an upload session when it does not: the HEAD and the POST that starts
//! an upload, in one round trip. Debian's distribution 2.8 honours it
//! (`linkedBlobStore.mount` stats the blob in the `from` repository,
//! whichever that is); the distribution spec does not promise it.
//!
//! It is used only in a repository the run found without a tag (its tag
//! list empty or unknown), whose blobs are new ones. Where the repository
//! holds the blob, the mount rewrites its link file, and distribution's
//! filesystem driver truncates before it writes: a pull of an image in that
//! repository that reads the link meanwhile is told the blob is unknown
//! (`tests/crash.rs` caught it, with lookups as mounts everywhere). In a
//! repository without tags no image names a blob yet, and within a run
//! the ledger holds back every other image that needs the blob until its
//! lookup is done.
//!
//! One probe per run and registry learns whether the mount is honoured,
//! with a blob just uploaded (which no image names yet): a 202 (ignored)
//! sends the lookups back to HEAD, so that a blob an earlier run left there
//! is not sent again; a 201, to the probe or to any lookup, says honoured.
//!
//! Owns that learning. Never decides what to copy.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const PROBING: u8 = 1;
const HONOURED: u8 = 2;
const IGNORED: u8 = 3;

/// What a run learned about a registry's mounts from a repository itself.
#[derive(Default)]
pub(super) struct SelfMount {
    state: AtomicU8,
    /// Repositories whose tag list was empty or unknown.
    tagless: Mutex<HashSet<String>>,
}

impl SelfMount {
    /// Whether a lookup in `repository` is the mount alone (no HEAD): in a
    /// repository without tags, unless the registry ignores the mount.
    pub fn asks_by_mount(&self, repository: &str) -> bool {
        self.state.load(Ordering::Relaxed) != IGNORED
            && self
                .tagless
                .lock()
                .is_ok_and(|tagless| tagless.contains(repository))
    }

    /// The run listed `repository` and found no tag.
    pub fn found_tagless(&self, repository: &str) {
        if let Ok(mut tagless) = self.tagless.lock() {
            tagless.insert(repository.to_string());
        }
    }

    /// Claims the run's one probe: false once it is taken.
    pub fn start_probe(&self) -> bool {
        self.state
            .compare_exchange(UNKNOWN, PROBING, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    pub fn learned(&self, honoured: bool) {
        let state = if honoured { HONOURED } else { IGNORED };
        self.state.store(state, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_probe_then_the_answer_sticks() {
        let m = SelfMount::default();
        m.found_tagless("a");
        assert!(m.start_probe());
        assert!(!m.start_probe(), "a second probe while the first runs");
        m.learned(true);
        assert!(m.asks_by_mount("a"));
        assert!(!m.asks_by_mount("b"), "a repository with tags: never");
        assert!(!m.start_probe());
        let n = SelfMount::default();
        n.found_tagless("a");
        assert!(n.start_probe());
        n.learned(false);
        assert!(!n.asks_by_mount("a") && !n.start_probe());
    }

    #[test]
    fn a_tagless_repository_is_asked_by_mount_until_mounts_prove_ignored() {
        let m = SelfMount::default();
        assert!(!m.asks_by_mount("a"));
        m.found_tagless("a");
        assert!(m.asks_by_mount("a") && !m.asks_by_mount("b"));
        assert!(m.start_probe());
        assert!(m.asks_by_mount("a"), "while the probe runs");
        m.learned(false);
        assert!(!m.asks_by_mount("a"));
    }
}
