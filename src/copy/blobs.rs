//! Moving blobs: each one checked in the target first, else streamed from
//! the source into the target with size and digest verified on the way.
//!
//! Owns per-blob decisions and the concurrency of blob transfers. Never
//! buffers a blob: bytes flow from the source's stream into the target's
//! upload, and memory does not grow with layer size.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::stream::{self, StreamExt};

use super::convert::{DiffIdCache, gunzip_tap};
use super::{CopyError, Step};
use crate::digest::Digest;
use crate::digest::verify_stream;
use crate::store::{Blob, Store, StoreError};
use crate::transport::retry::RetryPolicy;

/// One lock per (target repository, digest): concurrent jobs that share a
/// blob wait for one upload instead of racing; the waiter's HEAD then finds
/// the blob in place.
#[derive(Default)]
pub struct BlobLocks {
    locks: Mutex<HashMap<(String, Digest), BlobLock>>,
    /// Blobs this run saw in the target (uploaded, mounted or HEAD 200), by
    /// repository: another tag sharing them needs no HEAD of its own, and
    /// another repository of the target can mount them.
    present: Mutex<HashMap<Digest, HashSet<String>>>,
}

type BlobLock = Arc<tokio::sync::Mutex<()>>;

impl BlobLocks {
    fn known_present(&self, repo: &str, digest: &Digest) -> bool {
        self.present
            .lock()
            .is_ok_and(|p| p.get(digest).is_some_and(|repos| repos.contains(repo)))
    }

    fn mark_present(&self, repo: &str, digest: &Digest) {
        if let Ok(mut p) = self.present.lock() {
            p.entry(digest.clone())
                .or_default()
                .insert(repo.to_string());
        }
    }

    /// Another repository of the target that this run saw holding the blob.
    fn written_elsewhere(&self, repo: &str, digest: &Digest) -> Option<String> {
        let p = self.present.lock().ok()?;
        p.get(digest)?.iter().find(|r| r.as_str() != repo).cloned()
    }

    async fn hold(&self, repo: &str, digest: &Digest) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = match self.locks.lock() {
            Ok(mut map) => map
                .entry((repo.to_string(), digest.clone()))
                .or_default()
                .clone(),
            Err(_) => Arc::default(),
        };
        lock.lock_owned().await
    }
}

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

/// diff_ids wanted for a schema1 source's layers: computed while a layer
/// streams to the target, or taken from the cache, or (for a layer the
/// target already has and the cache does not know) by reading the source
/// once without uploading.
pub struct DiffIds {
    wanted: HashSet<Digest>,
    found: Mutex<HashMap<Digest, Digest>>,
    cache: DiffIdCache,
    max_uncompressed: u64,
}

impl DiffIds {
    pub fn new(wanted: HashSet<Digest>, cache: DiffIdCache, max_uncompressed: u64) -> DiffIds {
        DiffIds {
            wanted,
            found: Mutex::default(),
            cache,
            max_uncompressed,
        }
    }

    pub fn get(&self, compressed: &Digest) -> Option<Digest> {
        self.found.lock().ok()?.get(compressed).cloned()
    }

    fn wants(&self, d: &Digest) -> bool {
        self.wanted.contains(d) && self.get(d).is_none()
    }

    fn record(&self, compressed: &Digest, diff_id: Digest) {
        self.cache.put(compressed, &diff_id);
        if let Ok(mut f) = self.found.lock() {
            f.insert(compressed.clone(), diff_id);
        }
    }

    pub fn save(&self) {
        self.cache.save();
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
    diff_ids: Option<&DiffIds>,
    locks: &BlobLocks,
    trust_head: bool,
) -> Result<(), CopyError> {
    let failed = AtomicBool::new(false);
    let results: Vec<Result<(), CopyError>> = stream::iter(blobs)
        .map(|blob| async {
            if failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let _one_upload = locks.hold(ends.dst_repo, &blob.digest).await;
            let wants_diff_id = diff_ids.is_some_and(|d| d.wants(&blob.digest));
            if trust_head && !wants_diff_id && locks.known_present(ends.dst_repo, &blob.digest) {
                stats.skipped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            let elsewhere = locks.written_elsewhere(ends.dst_repo, &blob.digest);
            let r = copy_one(ends, blob, stats, diff_ids, trust_head, elsewhere).await;
            if r.is_ok() {
                locks.mark_present(ends.dst_repo, &blob.digest);
            }
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

/// `trust_head`: false after the target contradicted its own HEAD (it said
/// a blob exists, then refused a manifest for lacking it): upload anyway.
async fn copy_one(
    ends: &Ends<'_>,
    blob: &Blob,
    stats: &BlobStats,
    diff_ids: Option<&DiffIds>,
    trust_head: bool,
    written_elsewhere: Option<String>,
) -> Result<(), CopyError> {
    let step = || Step::Blob(blob.digest.clone());
    let wants_diff_id = diff_ids.filter(|d| d.wants(&blob.digest));
    if let Some(ids) = wants_diff_id
        && let Some(cached) = ids.cache.get(&blob.digest)
    {
        ids.record(&blob.digest, cached);
    }
    let wants_diff_id = wants_diff_id.filter(|d| d.wants(&blob.digest));
    let present = ends
        .dst
        .blob_head(ends.dst_repo, &blob.digest)
        .await
        .map_err(|e| CopyError::new(step(), e))?;
    if present.is_some() && trust_head {
        if let Some(ids) = wants_diff_id {
            // Already in the target, unknown to the cache: read it once.
            with_retries(blob, || diff_id_only(ends, blob, ids))
                .await
                .map_err(|e| CopyError::new(step(), e))?;
        }
        stats.skipped.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    // Mount from the source repository when it is on the target registry,
    // else from a repository of the target this run already wrote it to.
    let mount_from = ends.mount_from().map(str::to_string).or(written_elsewhere);
    if blob.urls.is_empty()
        && let Some(from) = mount_from.as_deref()
    {
        let mounted = ends
            .dst
            .blob_mount(ends.dst_repo, from, blob)
            .await
            .map_err(|e| CopyError::new(step(), e))?;
        if mounted && wants_diff_id.is_none() {
            stats.mounted.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if mounted && let Some(ids) = wants_diff_id {
            with_retries(blob, || diff_id_only(ends, blob, ids))
                .await
                .map_err(|e| CopyError::new(step(), e))?;
            stats.mounted.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
    }
    let tried = AtomicBool::new(false);
    with_retries(blob, || async {
        // A retry looks first: a PUT committed by the registry whose answer
        // was lost needs no second upload.
        if tried.swap(true, Ordering::Relaxed)
            && trust_head
            && wants_diff_id.is_none()
            && ends
                .dst
                .blob_head(ends.dst_repo, &blob.digest)
                .await?
                .is_some()
        {
            return Ok(());
        }
        transfer(ends, blob, wants_diff_id).await
    })
    .await
    .map_err(|e| CopyError::new(step(), e))?;
    stats.copied.fetch_add(1, Ordering::Relaxed);
    stats.bytes.fetch_add(blob.size, Ordering::Relaxed);
    tracing::debug!(digest = %blob.digest, size = blob.size, "blob copied");
    Ok(())
}

/// Runs an attempt up to [`BLOB_ATTEMPTS`] times while it fails transiently.
async fn with_retries<F, Fut>(blob: &Blob, mut attempt_once: F) -> Result<(), StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let policy = RetryPolicy::default();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match attempt_once().await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() && attempt < BLOB_ATTEMPTS => {
                let wait = policy.delay(attempt, None).unwrap_or_default();
                tracing::info!(digest = %blob.digest, attempt, "blob transfer failed, retrying: {e}");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The source stream of a blob: from the source repository, or for a foreign
/// layer from its URLs (first one that answers).
async fn open_source(ends: &Ends<'_>, blob: &Blob) -> Result<crate::store::BlobStream, StoreError> {
    if blob.urls.is_empty() {
        return ends.src.blob_get(ends.src_repo, blob).await;
    }
    let mut last = None;
    for url in &blob.urls {
        match ends.src.blob_get_url(url, blob).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| StoreError::NotFound {
        what: format!("foreign layer {}", blob.digest),
    }))
}

/// One attempt: open the source, verify (and gunzip for a diff_id) while
/// streaming into the target.
async fn transfer(
    ends: &Ends<'_>,
    blob: &Blob,
    diff_ids: Option<&DiffIds>,
) -> Result<(), StoreError> {
    let source = open_source(ends, blob).await?;
    // The tap sits inside the verifier, so the diff_id is final by the time
    // the verifier releases the last chunk.
    let (source, slot) = match diff_ids {
        Some(ids) => {
            let (s, slot) = gunzip_tap(source, ids.max_uncompressed);
            (s, Some(slot))
        }
        None => (source, None),
    };
    let verified = verify_stream(source, blob.digest.clone(), blob.size);
    ends.dst.blob_put(ends.dst_repo, blob, verified).await?;
    if let (Some(ids), Some(slot)) = (diff_ids, slot) {
        let diff_id = slot.lock().ok().and_then(|s| s.clone()).ok_or_else(|| {
            StoreError::Layer(format!(
                "layer {} ended before its gzip stream did",
                blob.digest
            ))
        })?;
        ids.record(&blob.digest, diff_id);
    }
    Ok(())
}

/// Reads a layer from the source only to learn its diff_id.
async fn diff_id_only(ends: &Ends<'_>, blob: &Blob, ids: &DiffIds) -> Result<(), StoreError> {
    let source = open_source(ends, blob).await?;
    let (source, slot) = gunzip_tap(source, ids.max_uncompressed);
    let mut verified = verify_stream(source, blob.digest.clone(), blob.size);
    while let Some(chunk) = verified.next().await {
        chunk?;
    }
    let diff_id = slot
        .lock()
        .ok()
        .and_then(|s| s.clone())
        .ok_or_else(|| StoreError::Layer(format!("layer {}: no diff_id", blob.digest)))?;
    ids.record(&blob.digest, diff_id);
    Ok(())
}
