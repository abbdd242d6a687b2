//! What one transport has done: requests by method and status, retries,
//! and the pull budget its registry last stated (Docker Hub's
//! `ratelimit-remaining` / `ratelimit-limit`, `76;w=21600`).
//!
//! Owns the counting and the budget arithmetic (a pull reserved is taken
//! off the stated budget until the registry states it again). Never
//! sends a request or refuses one: the store asks for a reservation.

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
    ratelimit: Mutex<Option<RateLimit>>,
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
        if let (Some(s), Ok(mut current)) = (stated, self.ratelimit.lock()) {
            *current = Some(s);
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

    pub fn ratelimit(&self) -> Option<RateLimit> {
        self.ratelimit.lock().ok().and_then(|r| *r)
    }

    /// Takes `n` pulls off the stated budget unless fewer than `keep` would
    /// be left; a registry that states no budget has no limit here.
    pub fn reserve(&self, n: u64, keep: u64) -> Result<(), RateLimit> {
        let Ok(mut current) = self.ratelimit.lock() else {
            return Ok(());
        };
        match current.as_mut() {
            None => Ok(()),
            Some(r) if r.remaining >= n.saturating_add(keep) => {
                r.remaining -= n;
                Ok(())
            }
            Some(r) => Err(*r),
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
        h.insert("ratelimit-remaining", HeaderValue::from_static("garbage"));
        s.record(&Method::HEAD, 200, Some(&h));
        assert_eq!(
            s.ratelimit().unwrap().remaining,
            10,
            "an unreadable header changes nothing"
        );
    }
}
