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
//! Owns that learning. Never decides what to copy.

use std::sync::atomic::{AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const PROBING: u8 = 1;
const HONOURED: u8 = 2;
const IGNORED: u8 = 3;

/// What a run learned about a registry's mounts from a repository itself.
#[derive(Default)]
pub(super) struct SelfMount(AtomicU8);

impl SelfMount {
    pub fn honoured(&self) -> bool {
        self.0.load(Ordering::Relaxed) == HONOURED
    }

    /// Claims the run's one probe: false once it is taken.
    pub fn start_probe(&self) -> bool {
        self.0
            .compare_exchange(UNKNOWN, PROBING, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    pub fn learned(&self, honoured: bool) {
        self.0
            .store(if honoured { HONOURED } else { IGNORED }, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_probe_then_the_answer_sticks() {
        let m = SelfMount::default();
        assert!(!m.honoured());
        assert!(m.start_probe());
        assert!(!m.start_probe(), "a second probe while the first runs");
        m.learned(true);
        assert!(m.honoured());
        assert!(!m.start_probe());
        let n = SelfMount::default();
        assert!(n.start_probe());
        n.learned(false);
        assert!(!n.honoured() && !n.start_probe());
    }
}
