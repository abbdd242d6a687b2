//! The copy's retry policies, one per thing it retries. The transport
//! already resent each request as far as its body allowed; these work one
//! level up, where a body can be reopened from the source or a manifest
//! pushed again after the target caught up.
//!
//! Owns [`BLOB`] and [`PUSH`] and the loop that applies them. Never looks
//! at a status: it retries store errors by their kind.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::store::StoreError;

/// A blob transfer: 3 attempts, each reopening the source (a consumed
/// stream is never replayed) after a transient failure.
pub const BLOB: Backoff = Backoff {
    attempts: 3,
    base_delay: Duration::from_millis(200),
    max_delay: Duration::from_secs(10),
};

/// A manifest push while the target says it does not know yet what the
/// manifest references (eventual consistency): 5 attempts.
pub const PUSH: Backoff = Backoff {
    attempts: 5,
    base_delay: Duration::from_millis(200),
    max_delay: Duration::from_secs(10),
};

/// Runs `op` until it succeeds, fails with an error `again` does not
/// retry, or `policy` is spent. `what` names the work in log lines.
pub async fn retrying<T, F, Fut>(
    policy: Backoff,
    what: impl Display,
    again: impl Fn(&StoreError) -> bool,
    mut op: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if again(&e) => match policy.delay(attempt) {
                Some(wait) => {
                    tracing::info!(attempt, "{what} failed, trying again: {e}");
                    tokio::time::sleep(wait).await;
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const FAST: Backoff = Backoff {
        attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
    };

    #[tokio::test]
    async fn retries_only_what_it_is_told_and_only_so_often() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retrying(
            FAST,
            "x",
            |_| true,
            || async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Protocol("no".into()))
            },
        )
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::Relaxed), 3);

        calls.store(0, Ordering::Relaxed);
        let r: Result<(), _> = retrying(
            FAST,
            "x",
            |_| false,
            || async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Protocol("no".into()))
            },
        )
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::Relaxed), 1);

        calls.store(0, Ordering::Relaxed);
        let r = retrying(
            FAST,
            "x",
            |_| true,
            || async {
                if calls.fetch_add(1, Ordering::Relaxed) == 0 {
                    Err(StoreError::Protocol("once".into()))
                } else {
                    Ok(7)
                }
            },
        )
        .await;
        assert_eq!(r.unwrap(), 7);
    }
}
