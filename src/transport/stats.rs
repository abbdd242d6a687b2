//! What one transport has done: requests by method and status, retries,
//! and the pull budget its registry last stated (Docker Hub's
//! `ratelimit-remaining` / `ratelimit-limit`, `76;w=21600`).
//!
//! Owns the counting and the budget arithmetic: a pull reserved counts
//! against the budget until its own answer comes, whatever other answers
//! state meanwhile (a HEAD answered before a reserved GET was served
//! states a budget that does not include it). Never sends a request or
//! refuses one: the store asks for a reservation and says when a pull
//! has been answered.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::Method;
use reqwest::header::HeaderMap;

/// A registry's pull budget, as it stated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Pulls left in the window, less those reserved since it said so.
    pub remaining: u64,
    pub limit: Option<u64>,
}

/// Counters of one transport.
#[derive(Debug, Default)]
pub struct Stats {
    /// (method, status) → requests; status 0 is "no answer".
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    retries: AtomicU64,
    budget: Mutex<Budget>,
}

/// The budget as last stated, and the pulls reserved whose answers have
/// not come yet.
#[derive(Debug, Default)]
struct Budget {
    stated: Option<RateLimit>,
    outstanding: u64,
}

impl Budget {
    fn left(&self) -> Option<RateLimit> {
        self.stated.map(|r| RateLimit {
            remaining: r.remaining.saturating_sub(self.outstanding),
            limit: r.limit,
        })
    }
}

impl Stats {
    /// One answer (or none: `status` 0), with its headers when it came.
    pub fn record(&self, method: &Method, status: u16, headers: Option<&HeaderMap>) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((method.to_string(), status)).or_default() += 1;
        }
        let stated = headers.and_then(|h| {
            let read = |name| {
                h.get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(leading_number)
            };
            Some(RateLimit {
                remaining: read("ratelimit-remaining")?,
                limit: read("ratelimit-limit"),
            })
        });
        if let (Some(s), Ok(mut budget)) = (stated, self.budget.lock()) {
            budget.stated = Some(s);
        }
    }

    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests so far: (method, status, count), sorted.
    pub fn requests(&self) -> Vec<(String, u16, u64)> {
        self.requests
            .lock()
            .map(|r| r.iter().map(|((m, s), n)| (m.clone(), *s, *n)).collect())
            .unwrap_or_default()
    }

    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The budget as stated, less the pulls reserved and not yet answered.
    pub fn ratelimit(&self) -> Option<RateLimit> {
        self.budget.lock().ok().and_then(|b| b.left())
    }

    /// Reserves `n` pulls unless fewer than `keep` would be left; a
    /// registry that states no budget has no limit here.
    pub fn reserve(&self, n: u64, keep: u64) -> Result<(), RateLimit> {
        let Ok(mut budget) = self.budget.lock() else {
            return Ok(());
        };
        match budget.left() {
            None => Ok(()),
            Some(r) if r.remaining >= n.saturating_add(keep) => {
                budget.outstanding += n;
                Ok(())
            }
            Some(r) => Err(r),
        }
    }

    /// A pull (a manifest GET) has its answer, or none will come: the
    /// registry's own statements count it from now on.
    pub fn pull_answered(&self) {
        if let Ok(mut budget) = self.budget.lock() {
            budget.outstanding = budget.outstanding.saturating_sub(1);
        }
    }
}

/// `76;w=21600` → 76.
fn leading_number(v: &str) -> Option<u64> {
    v.split(';').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn counts_and_keeps_the_stated_budget() {
        let s = Stats::default();
        assert_eq!(s.reserve(5, 10), Ok(()), "no budget stated, no limit");
        let mut h = HeaderMap::new();
        h.insert(
            "ratelimit-remaining",
            HeaderValue::from_static("12;w=21600"),
        );
        h.insert("ratelimit-limit", HeaderValue::from_static("100;w=21600"));
        s.record(&Method::HEAD, 200, Some(&h));
        s.record(&Method::GET, 0, None);
        assert_eq!(
            s.ratelimit(),
            Some(RateLimit {
                remaining: 12,
                limit: Some(100)
            })
        );
        assert_eq!(s.reserve(1, 10), Ok(()));
        assert_eq!(s.reserve(1, 10), Ok(()));
        assert_eq!(s.reserve(1, 10).unwrap_err().remaining, 10);
        assert_eq!(
            s.requests(),
            vec![("GET".to_string(), 0, 1), ("HEAD".to_string(), 200, 1)]
        );
        s.pull_answered();
        s.pull_answered();
        h.insert("ratelimit-remaining", HeaderValue::from_static("garbage"));
        s.record(&Method::HEAD, 200, Some(&h));
        assert_eq!(
            s.ratelimit().unwrap().remaining,
            12,
            "an unreadable header changes nothing"
        );
    }

    /// Statements that do not include the pulls in flight (a HEAD served
    /// before them) do not give those pulls back.
    #[test]
    fn a_pull_reserved_counts_until_its_own_answer() {
        let s = Stats::default();
        let states = |left: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("ratelimit-remaining", HeaderValue::from_static(left));
            s.record(&Method::HEAD, 200, Some(&h));
        };
        states("12");
        assert_eq!(s.reserve(1, 10), Ok(()));
        states("12");
        assert_eq!(s.reserve(1, 10), Ok(()));
        states("12");
        assert_eq!(s.reserve(1, 10).unwrap_err().remaining, 10);
        // The first GET's answer states it (11) and settles it.
        let mut h = HeaderMap::new();
        h.insert("ratelimit-remaining", HeaderValue::from_static("11"));
        s.record(&Method::GET, 200, Some(&h));
        s.pull_answered();
        assert_eq!(s.ratelimit().unwrap().remaining, 10);
        assert!(s.reserve(1, 10).is_err());
        s.pull_answered();
        s.pull_answered();
        assert_eq!(s.ratelimit().unwrap().remaining, 11, "never below none");
    }
}
