//! Caps on what one registry gets, whatever job, image or transport asks:
//! requests per second and bytes per second (blob bodies, up and down
//! counted together: one link's worth), each a token bucket.
//!
//! Owns the arithmetic of waiting. A request takes one token before it is
//! sent; a blob chunk takes its length before it is passed on (or sent),
//! running into debt for a chunk larger than the bucket and paying it off
//! by waiting. Never decides what is sent.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{Stream, StreamExt};
use tokio::time::Instant;

/// The caps a config gives a registry (`None`: no cap).
#[derive(Debug, Clone, Copy, Default)]
pub struct Caps {
    pub requests_per_second: Option<f64>,
    pub bytes_per_second: Option<u64>,
}

impl PartialEq for Caps {
    fn eq(&self, other: &Caps) -> bool {
        self.requests_per_second.map(f64::to_bits) == other.requests_per_second.map(f64::to_bits)
            && self.bytes_per_second == other.bytes_per_second
    }
}

impl Eq for Caps {}

/// One registry's buckets.
#[derive(Debug)]
pub struct Pace {
    requests: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl Pace {
    /// `None` when `caps` caps nothing.
    pub fn new(caps: Caps) -> Option<Pace> {
        let requests = caps
            .requests_per_second
            .filter(|r| *r > 0.0)
            // Evenly spaced, no burst (as regclient's `reqPerSec`).
            .map(|r| Bucket::new(r, 1.0));
        let bytes = caps
            .bytes_per_second
            .filter(|b| *b > 0)
            // A quarter of a second's worth may go at once.
            .map(|b| Bucket::new(b as f64, (b as f64 / 4.0).max(64.0 * 1024.0)));
        (requests.is_some() || bytes.is_some()).then_some(Pace { requests, bytes })
    }

    /// Waits for a request's turn.
    pub async fn request(&self) {
        if let Some(b) = &self.requests {
            b.take(1.0).await;
        }
    }

    /// Waits until `n` more body bytes may pass.
    pub async fn bytes(&self, n: usize) {
        if let Some(b) = &self.bytes {
            b.take(n as f64).await;
        }
    }

    pub fn caps_bytes(&self) -> bool {
        self.bytes.is_some()
    }
}

/// A body stream that passes each chunk only when the bucket allows it.
pub fn paced<S, E>(
    pace: std::sync::Arc<Pace>,
    stream: S,
) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Send + 'static,
{
    stream.then(move |chunk| {
        let pace = pace.clone();
        async move {
            if let Ok(c) = &chunk {
                pace.bytes(c.len()).await;
            }
            chunk
        }
    })
}

/// Tokens refilled at `rate` per second up to `burst`; a take may leave
/// the bucket in debt, which the next takes wait out.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    /// (tokens, when they were counted).
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Bucket {
        Bucket {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    async fn take(&self, n: f64) {
        let wait = {
            let Ok(mut s) = self.state.lock() else {
                return;
            };
            let now = Instant::now();
            let refilled =
                (s.0 + now.duration_since(s.1).as_secs_f64() * self.rate).min(self.burst);
            let left = refilled - n;
            *s = (left, now);
            match left < 0.0 {
                true => Duration::from_secs_f64(-left / self.rate),
                false => Duration::ZERO,
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_and_bytes_wait_out_their_debt() {
        let pace = Pace::new(Caps {
            requests_per_second: Some(5.0),
            bytes_per_second: Some(1024 * 1024),
        })
        .unwrap();
        let start = Instant::now();
        for _ in 0..11 {
            pace.request().await;
        }
        // The first goes at once, the other ten a fifth of a second apart.
        assert_eq!(start.elapsed().as_millis(), 2000);
        let start = Instant::now();
        // 256 KiB of burst, then 3 MiB more at 1 MiB/s (the last chunk's
        // debt is waited out by whoever comes next).
        for _ in 0..13 {
            pace.bytes(256 * 1024).await;
        }
        pace.bytes(0).await;
        assert_eq!(start.elapsed().as_millis(), 3000);
        assert!(Pace::new(Caps::default()).is_none(), "no caps, no buckets");
    }
}
