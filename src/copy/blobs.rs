//! Moving blobs: each one checked in the target first, else streamed from
//! the source into the target with size and digest verified on the way.
//!
//! Owns per-blob decisions and the concurrency of blob transfers. Never
//! buffers a blob: bytes flow from the source's stream into the target's
//! upload, and memory does not grow with layer size.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures::stream::{self, StreamExt};

use super::{CopyError, Step};
use crate::digest::verify_stream;
use crate::store::{Blob, Store, StoreError};
use crate::transport::retry::RetryPolicy;

/// Counters for the report.
#[derive(Debug, Default)]
pub struct BlobStats {
    pub copied: AtomicU64,
    pub mounted: AtomicU64,
    pub skipped: AtomicU64,
    pub bytes: AtomicU64,
}

/// Attempts per blob, the first included. Each attempt reopens the source:
/// a stream that has been consumed is never replayed.
pub const BLOB_ATTEMPTS: u32 = 3;

/// The two ends of a blob transfer.
pub struct Ends<'a> {
    pub src: &'a dyn Store,
    pub src_repo: &'a str,
    pub dst: &'a dyn Store,
    pub dst_repo: &'a str,
}

impl Ends<'_> {
    /// Blobs can be mounted when both ends are one registry and the
    /// repositories differ.
    fn mount_from(&self) -> Option<&str> {
        (self.src.identity() == self.dst.identity() && self.src_repo != self.dst_repo)
            .then_some(self.src_repo)
    }
}

/// Copies every blob that the target lacks, `jobs` at a time. After the
/// first failure no new blob starts, but transfers in flight are allowed to
/// finish: dropping them would abandon upload sessions half-written, while
/// finishing them leaves valid blobs that a re-run will reuse. The first
/// failure is returned.
pub async fn copy_blobs(
    ends: &Ends<'_>,
    blobs: &[Blob],
    jobs: usize,
    stats: &BlobStats,
) -> Result<(), CopyError> {
    let failed = AtomicBool::new(false);
    let results: Vec<Result<(), CopyError>> = stream::iter(blobs)
        .map(|blob| async {
            if failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let r = copy_one(ends, blob, stats).await;
            if r.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            r
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

async fn copy_one(ends: &Ends<'_>, blob: &Blob, stats: &BlobStats) -> Result<(), CopyError> {
    let step = || Step::Blob(blob.digest.clone());
    let present = ends
        .dst
        .blob_head(ends.dst_repo, &blob.digest)
        .await
        .map_err(|e| CopyError::new(step(), e))?;
    if present.is_some() {
        stats.skipped.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    if let Some(from) = ends.mount_from() {
        let mounted = ends
            .dst
            .blob_mount(ends.dst_repo, from, blob)
            .await
            .map_err(|e| CopyError::new(step(), e))?;
        if mounted {
            stats.mounted.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
    }
    let policy = RetryPolicy::default();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match transfer(ends, blob).await {
            Ok(()) => break,
            Err(e) if e.is_transient() && attempt < BLOB_ATTEMPTS => {
                let wait = policy.delay(attempt, None).unwrap_or_default();
                tracing::info!(digest = %blob.digest, attempt, "blob transfer failed, retrying: {e}");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(CopyError::new(step(), e)),
        }
    }
    stats.copied.fetch_add(1, Ordering::Relaxed);
    stats.bytes.fetch_add(blob.size, Ordering::Relaxed);
    tracing::debug!(digest = %blob.digest, size = blob.size, "blob copied");
    Ok(())
}

/// One attempt: open the source, verify while streaming into the target.
async fn transfer(ends: &Ends<'_>, blob: &Blob) -> Result<(), StoreError> {
    let source = ends.src.blob_get(ends.src_repo, blob).await?;
    let verified = verify_stream(source, blob.digest.clone(), blob.size);
    ends.dst.blob_put(ends.dst_repo, blob, verified).await
}
