//! Requests in flight to one registry: at most `max`, halved when the
//! registry answers 429, grown back by one after a window of successes
//! (additive increase, multiplicative decrease).
//!
//! Owns the permit accounting. Never decides what is retried (that is
//! `retry`), only how many requests run at once.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

pub struct AdaptiveLimit {
    sem: Semaphore,
    max: usize,
    current: AtomicUsize,
    successes: AtomicUsize,
    /// Slots to take back as they are returned (the limit was lowered while
    /// they were in use).
    owed: AtomicUsize,
}

/// One request's slot; returned (or kept, if owed) when dropped.
pub struct Slot<'a> {
    limit: &'a AdaptiveLimit,
    permit: Option<SemaphorePermit<'a>>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            p.forget();
            let paid = self
                .limit
                .owed
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| o.checked_sub(1))
                .is_ok();
            if !paid {
                self.limit.sem.add_permits(1);
            }
        }
    }
}

impl AdaptiveLimit {
    pub fn new(max: usize) -> AdaptiveLimit {
        let max = max.max(1);
        AdaptiveLimit {
            sem: Semaphore::new(max),
            max,
            current: AtomicUsize::new(max),
            successes: AtomicUsize::new(0),
            owed: AtomicUsize::new(0),
        }
    }

    /// Waits for a slot; the slot is free again when it drops.
    pub async fn acquire(&self) -> Slot<'_> {
        Slot {
            limit: self,
            permit: self.sem.acquire().await.ok(),
        }
    }

    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// Adjusts the limit to an answer: halved on 429, grown back on success.
    pub fn observe(&self, status: reqwest::StatusCode) {
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            self.too_many();
        } else if !status.is_server_error() {
            self.success();
        }
    }

    /// The registry said "too many requests": halve the limit (not below 1).
    pub fn too_many(&self) {
        let cur = self.current.load(Ordering::Relaxed);
        let new = (cur / 2).max(1);
        if new < cur
            && self
                .current
                .compare_exchange(cur, new, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let forgotten = self.sem.forget_permits(cur - new);
            // Slots in use are taken back as they return.
            self.owed
                .fetch_add(cur - new - forgotten, Ordering::Relaxed);
            self.successes.store(0, Ordering::Relaxed);
            tracing::info!(from = cur, to = new, "registry asked to slow down");
        }
    }

    /// A request went through: after a window of `current` successes, one
    /// more slot (up to `max`).
    pub fn success(&self) {
        let cur = self.current.load(Ordering::Relaxed);
        if cur >= self.max {
            return;
        }
        if self.successes.fetch_add(1, Ordering::Relaxed) + 1 >= cur
            && self
                .current
                .compare_exchange(cur, cur + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.successes.store(0, Ordering::Relaxed);
            let cancelled_debt = self
                .owed
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| o.checked_sub(1))
                .is_ok();
            if !cancelled_debt {
                self.sem.add_permits(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn halves_on_429_and_creeps_back() {
        let l = AdaptiveLimit::new(8);
        assert_eq!(l.current(), 8);
        l.too_many();
        assert_eq!(l.current(), 4);
        assert_eq!(l.sem.available_permits(), 4);
        l.too_many();
        l.too_many();
        l.too_many();
        assert_eq!(l.current(), 1, "never below one");
        for _ in 0..1 {
            l.success();
        }
        assert_eq!(l.current(), 2);
        for _ in 0..2 {
            l.success();
        }
        assert_eq!(l.current(), 3);
        for _ in 0..100 {
            l.success();
        }
        assert_eq!(l.current(), 8, "up to max only");
        assert_eq!(l.sem.available_permits(), 8);
    }

    #[tokio::test]
    async fn slots_bound_concurrency_and_pay_back_a_lowered_limit() {
        let l = AdaptiveLimit::new(4);
        let slots: Vec<Slot<'_>> = vec![
            l.acquire().await,
            l.acquire().await,
            l.acquire().await,
            l.acquire().await,
        ];
        assert!(l.sem.try_acquire().is_err());
        l.too_many(); // 4 -> 2 while all four are busy
        drop(slots);
        assert_eq!(
            l.sem.available_permits(),
            2,
            "two of the four returned slots were kept"
        );
        let _a = l.acquire().await;
        let _b = l.acquire().await;
        assert!(l.sem.try_acquire().is_err());
    }
}
