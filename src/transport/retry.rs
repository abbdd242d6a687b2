//! Retry policy: which failures are worth another try, and how long to wait.
//!
//! Owns the one classification function ([`classify_status`]) and the
//! backoff schedule (capped exponential with jitter, `Retry-After` honoured
//! and capped). Never sends anything itself, and never decides to replay a
//! body that cannot be replayed: the transport asks only for requests it can
//! send again.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::backoff::Backoff;

/// The longest we wait because a server said so. A `Retry-After: 86400`
/// would stall a copy for a day; past this we fail instead of sleeping.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The transport's retry policy: one request, resent after a transient
/// status or a lost connection when its body can be sent again. 4
/// attempts, 200 ms doubling to at most 10 s, `Retry-After` honoured up to
/// [`MAX_RETRY_AFTER`].
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            backoff: Backoff {
                attempts: 4,
                base_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(10),
            },
        }
    }
}

/// What to do about a response status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Final: success or a client error a retry cannot fix.
    Done,
    /// Transient: try again after a backoff.
    Retry,
}

/// The one place that says which statuses are transient: request timeout,
/// too many requests, and server-side failures. Every other status, 401
/// included (auth has its own single refresh), is final.
pub fn classify_status(status: StatusCode) -> Verdict {
    match status.as_u16() {
        408 | 429 | 500 | 502 | 503 | 504 => Verdict::Retry,
        _ => Verdict::Done,
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1), using
    /// `Retry-After` when the server sent one. `None` means give up: the
    /// attempts are spent, or the server asked for longer than we wait.
    pub fn delay(&self, attempt: u32, headers: Option<&HeaderMap>) -> Option<Duration> {
        if attempt >= self.backoff.attempts {
            return None;
        }
        if let Some(wait) = headers.and_then(retry_after) {
            return (wait <= MAX_RETRY_AFTER).then_some(wait);
        }
        self.backoff.delay(attempt)
    }
}

/// `Retry-After` as seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn every_retried_status_is_listed_here() {
        let retried: Vec<u16> = (100..600)
            .filter(|s| {
                StatusCode::from_u16(*s).is_ok_and(|s| classify_status(s) == Verdict::Retry)
            })
            .collect();
        assert_eq!(retried, vec![408, 429, 500, 502, 503, 504]);
    }

    #[test]
    fn retry_after_seconds_date_and_cap() {
        let p = RetryPolicy::default();
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(p.delay(1, Some(&h)), Some(Duration::from_secs(3)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("86400"));
        assert_eq!(p.delay(1, Some(&h)), None);
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(5));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&soon).unwrap());
        let d = p.delay(1, Some(&h)).unwrap();
        assert!(
            d <= Duration::from_secs(5) && d >= Duration::from_secs(3),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("garbage"));
        assert!(p.delay(1, Some(&h)).unwrap() <= p.backoff.base_delay);
    }
}
