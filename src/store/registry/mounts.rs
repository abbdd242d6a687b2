//! Asking a registry whether a repository holds a blob in one request
//! instead of two.
//!
//! `POST /v2/REPO/blobs/uploads/?mount=D&from=REPO`, a mount from the
//! repository itself, answers 201 when the repository holds D and 202 with
//! an upload session when it does not: the HEAD and the POST that starts
//! an upload, in one round trip. The distribution spec does not promise
//! that a registry honours a mount from the repository itself (one that
//! does not answers 202 for a blob it holds, and the blob would be sent
//! again), so it is learned once per run and registry: the first blob known
//! to be there (just uploaded, or found by a HEAD) is asked for as a mount,
//! and only a 201 switches the lookups over. Debian's distribution 2.8
//! honours it (`linkedBlobStore.mount` stats the blob in the `from`
//! repository, whichever that is).
//!
//! Before that answer, a repository the run found without a tag (its tag
//! list empty or unknown) is asked by the mount alone, not by a HEAD: its
//! blobs are new ones, and a registry that honours the mount still finds
//! those an earlier run left there. Only one that ignores it, in the few
//! lookups before the probe, sends such a leftover blob again.
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
    /// Whether a lookup in `repository` is the mount alone (no HEAD).
    pub fn asks_by_mount(&self, repository: &str) -> bool {
        match self.state.load(Ordering::Relaxed) {
            HONOURED => true,
            IGNORED => false,
            _ => self
                .tagless
                .lock()
                .is_ok_and(|tagless| tagless.contains(repository)),
        }
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
        assert!(!m.asks_by_mount("a"));
        assert!(m.start_probe());
        assert!(!m.start_probe(), "a second probe while the first runs");
        m.learned(true);
        assert!(m.asks_by_mount("a"));
        assert!(!m.start_probe());
        let n = SelfMount::default();
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
        m.learned(true);
        assert!(m.asks_by_mount("a") && m.asks_by_mount("b"));
    }
}
