//! Backoff schedules: how long to wait before another attempt, as pure
//! arithmetic (capped exponential with jitter).
//!
//! Owns the schedule only. Never decides what is worth retrying (the
//! transport classifies statuses, the copy classifies store errors) and
//! never sleeps: callers do.

use std::time::Duration;

/// Attempts and delays of one retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Backoff {
    /// The wait before attempt `attempt + 1` (attempts count from 1), or
    /// `None` when the attempts are spent. Full jitter on the upper half of
    /// the exponential schedule: clients spread out, and never wait less
    /// than half of it.
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        Some(half + half.mul_f64(fastrand::f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_is_capped_and_ends() {
        let b = Backoff {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for attempt in 1..10 {
            let d = b.delay(attempt).unwrap();
            let full =
                Duration::from_millis(100 * 2u64.pow(attempt - 1)).min(Duration::from_secs(1));
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert_eq!(b.delay(10), None);
        let huge = Backoff {
            attempts: u32::MAX,
            ..b
        };
        assert!(huge.delay(u32::MAX - 1).unwrap() <= Duration::from_secs(1));
    }
}
