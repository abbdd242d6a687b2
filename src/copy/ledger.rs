//! The run-wide blob ledger: which blob this run has seen in which
//! repository of which place, and one lock per (place, digest).
//!
//! Owns the answers a run can give without asking a registry: "digest D is
//! in registry R, repository P" (an image sharing it needs no HEAD), "it is
//! in another repository of the same registry" (mount it from there), and
//! "someone is uploading it right now" (wait for them instead of racing).
//! Shared by every image of a run (`copy`, `--all-tags`, every job of a
//! `sync`). Never talks to a store.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::digest::Digest;
use crate::store::Location;

type Lock = Arc<tokio::sync::Mutex<()>>;

#[derive(Default)]
pub struct Ledger {
    /// One lock per (place, digest): repositories of one registry share
    /// it, so the second image needing a digest there waits for the first
    /// upload and then mounts it, instead of uploading it again.
    locks: Mutex<HashMap<(String, Digest), Lock>>,
    present: Mutex<HashMap<Digest, HashSet<Location>>>,
}

impl Ledger {
    /// Waits until no other image of the run works on `digest` anywhere
    /// in `at`'s place (registry or layout); the lock is held until the
    /// guard drops.
    pub async fn hold(&self, at: &Location, digest: &Digest) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = match self.locks.lock() {
            Ok(mut map) => map
                .entry((at.place.clone(), digest.clone()))
                .or_default()
                .clone(),
            Err(_) => Arc::default(),
        };
        lock.lock_owned().await
    }

    /// Whether this run saw `digest` in `at` (uploaded, mounted, or found).
    pub fn knows(&self, at: &Location, digest: &Digest) -> bool {
        self.present
            .lock()
            .is_ok_and(|p| p.get(digest).is_some_and(|places| places.contains(at)))
    }

    pub fn record(&self, at: &Location, digest: &Digest) {
        if let Ok(mut p) = self.present.lock() {
            p.entry(digest.clone()).or_default().insert(at.clone());
        }
    }

    /// Forgets what a target said it had, after it refused a manifest for
    /// lacking it.
    pub fn forget(&self, at: &Location, digest: &Digest) {
        if let Ok(mut p) = self.present.lock()
            && let Some(places) = p.get_mut(digest)
        {
            places.remove(at);
        }
    }

    /// Another repository of the same place that this run saw holding
    /// `digest`: a mount source.
    pub fn mount_source(&self, at: &Location, digest: &Digest) -> Option<String> {
        let p = self.present.lock().ok()?;
        p.get(digest)?
            .iter()
            .find(|l| l.place == at.place && l.repository != at.repository)
            .map(|l| l.repository.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(place: &str, repo: &str) -> Location {
        Location {
            place: place.into(),
            repository: repo.into(),
        }
    }

    #[test]
    fn knows_what_it_saw_and_where_to_mount_from() {
        let l = Ledger::default();
        let d = Digest::sha256(b"x");
        assert!(!l.knows(&at("r1", "a"), &d));
        l.record(&at("r1", "a"), &d);
        assert!(l.knows(&at("r1", "a"), &d));
        assert!(!l.knows(&at("r1", "b"), &d));
        assert_eq!(l.mount_source(&at("r1", "b"), &d).as_deref(), Some("a"));
        assert_eq!(l.mount_source(&at("r1", "a"), &d), None, "not from itself");
        assert_eq!(
            l.mount_source(&at("r2", "b"), &d),
            None,
            "not across registries"
        );
        l.forget(&at("r1", "a"), &d);
        assert!(!l.knows(&at("r1", "a"), &d));
    }

    #[tokio::test]
    async fn one_holder_at_a_time_per_registry_and_digest() {
        let l = Arc::new(Ledger::default());
        let d = Digest::sha256(b"x");
        let g = l.hold(&at("r", "a"), &d).await;
        let elsewhere = l.hold(&at("r2", "a"), &d).await;
        drop(elsewhere);
        let l2 = l.clone();
        let d2 = d.clone();
        let waiter = tokio::spawn(async move {
            let _g = l2.hold(&at("r", "a"), &d2).await;
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        // Another repository of the same registry waits too: it will mount.
        let l3 = l.clone();
        let d3 = d.clone();
        let sibling = tokio::spawn(async move {
            let _g = l3.hold(&at("r", "b"), &d3).await;
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!sibling.is_finished());
        drop(g);
        waiter.await.unwrap();
        sibling.await.unwrap();
    }
}
