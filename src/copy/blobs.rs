//! Moving blobs: each one looked up in the run's ledger and the target
//! first, mounted when another repository of the target registry holds it,
//! else streamed from the source into the target with size and digest
//! verified on the way.
//!
//! Owns per-blob decisions and the concurrency of blob transfers. Never
//! buffers a blob: bytes flow from the source's stream into the target's
//! upload, and memory does not grow with layer size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::stream::{self, StreamExt};

use super::diff_ids::{DiffIds, gunzip_tap};
use super::error::{CopyError, Step};
use super::retry;
use super::shared::{Image, Trust};
use crate::digest::{Digest, verify_stream};
use crate::progress::{BlobOutcome, Event, Progress};
use crate::store::{Blob, BlobStream, Lookup, StoreError};

/// Copies every blob the target lacks, [`Image::jobs`] at a time. After
/// the first failure no new blob starts, but transfers in flight finish:
/// dropping them would abandon upload sessions half-written, while
/// finishing them leaves valid blobs a re-run reuses. The first failure is
/// returned.
pub(super) async fn copy_blobs(
    img: &Image<'_>,
    blobs: &[Blob],
    diff_ids: Option<&DiffIds<'_>>,
    trust: Trust,
) -> Result<(), CopyError> {
    let failed = AtomicBool::new(false);
    let results: Vec<Result<(), CopyError>> = stream::iter(blobs)
        .map(|blob| async {
            if failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let _one_upload = img.run.ledger.hold(&img.dst_at, &blob.digest).await;
            let r = copy_one(img, blob, diff_ids.filter(|d| d.wants(&blob.digest)), trust).await;
            match &r {
                Ok(()) => img.run.ledger.record(&img.dst_at, &blob.digest),
                Err(_) => failed.store(true, Ordering::Relaxed),
            }
            r
        })
        .buffer_unordered(img.jobs())
        .collect()
        .await;
    results.into_iter().collect()
}

/// One blob: known, present, mounted, or transferred. `wants` is set when
/// the blob is a schema1 layer whose diff_id is still unknown.
async fn copy_one(
    img: &Image<'_>,
    blob: &Blob,
    wants: Option<&DiffIds<'_>>,
    trust: Trust,
) -> Result<(), CopyError> {
    let step = || Step::Blob(blob.digest.clone());
    let progress = img.run.settings.progress.as_ref();
    let ledger = &img.run.ledger;
    if trust == Trust::Head && wants.is_none() && ledger.knows(&img.dst_at, &blob.digest) {
        return settled(img, blob, BlobOutcome::Present);
    }
    let from = mount_source(img, blob);
    let found = match trust {
        Trust::Head => img.dst.blob_lookup(blob, from.as_deref()).await,
        // After the target lost blobs its HEAD claimed: no HEAD, only a
        // mount, which the registry checks against the source repository.
        Trust::Nothing => match &from {
            Some(from) => img
                .dst
                .blob_mount(from, blob)
                .await
                .map(|mounted| match mounted {
                    true => Lookup::Mounted,
                    false => Lookup::Missing,
                }),
            None => Ok(Lookup::Missing),
        },
    }
    .map_err(|e| CopyError::new(step(), e))?;
    let there = match found {
        Lookup::Present => Some(BlobOutcome::Present),
        Lookup::Mounted => Some(BlobOutcome::Mounted),
        Lookup::Missing => None,
    };
    if let Some(outcome) = there {
        diff_id_without_transfer(img, blob, wants).await?;
        return settled(img, blob, outcome);
    }
    let looked = AtomicBool::new(false);
    let result = retry::retrying(
        retry::BLOB,
        &blob.digest,
        StoreError::is_transient,
        || async {
            // A retry looks first: a PUT committed by the registry whose answer
            // was lost needs no second upload.
            if looked.swap(true, Ordering::Relaxed)
                && trust == Trust::Head
                && wants.is_none()
                && img.dst.blob_head(&blob.digest).await?.is_some()
            {
                return Ok(());
            }
            transfer(img, blob, wants).await
        },
    )
    .await;
    if let Err(e) = result {
        img.dst.blob_abandon(&blob.digest).await;
        progress.event(Event::BlobDone {
            digest: &blob.digest,
            outcome: BlobOutcome::Failed,
        });
        return Err(CopyError::new(step(), e));
    }
    img.stats.bytes.fetch_add(blob.size, Ordering::Relaxed);
    tracing::debug!(digest = %blob.digest, size = blob.size, "blob copied");
    settled(img, blob, BlobOutcome::Copied)
}

/// Counts and reports a blob that is in the target now.
fn settled(img: &Image<'_>, blob: &Blob, outcome: BlobOutcome) -> Result<(), CopyError> {
    let counter = match outcome {
        BlobOutcome::Copied => &img.stats.copied,
        BlobOutcome::Mounted => &img.stats.mounted,
        BlobOutcome::Present | BlobOutcome::Failed => &img.stats.skipped,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    img.run.settings.progress.event(Event::BlobDone {
        digest: &blob.digest,
        outcome,
    });
    Ok(())
}

/// Where the target registry can mount the blob from: the source
/// repository when it lives there, else a repository of the target this
/// run already put it in. Foreign layers are never mounted.
fn mount_source(img: &Image<'_>, blob: &Blob) -> Option<String> {
    if !blob.urls.is_empty() {
        return None;
    }
    let (src, dst) = (&img.src_at, &img.dst_at);
    if src.place == dst.place && src.repository != dst.repository {
        return Some(src.repository.clone());
    }
    img.run.ledger.mount_source(dst, &blob.digest)
}

/// A schema1 layer that did not stream still needs its diff_id: from the
/// cache, or by reading the source once without uploading.
async fn diff_id_without_transfer(
    img: &Image<'_>,
    blob: &Blob,
    wants: Option<&DiffIds<'_>>,
) -> Result<(), CopyError> {
    let Some(ids) = wants else {
        return Ok(());
    };
    if ids.found_in_cache(&blob.digest) {
        return Ok(());
    }
    retry::retrying(retry::BLOB, &blob.digest, StoreError::is_transient, || {
        read_for_diff_id(img, blob, ids)
    })
    .await
    .map_err(|e| CopyError::new(Step::Blob(blob.digest.clone()), e))
}

/// The source stream of a blob: from the source repository, or for a
/// foreign layer from its URLs (the first that answers), with its bytes
/// reported as they pass.
async fn open_source(img: &Image<'_>, blob: &Blob) -> Result<BlobStream, StoreError> {
    let stream = if blob.urls.is_empty() {
        img.src.blob_get(blob).await?
    } else {
        let mut last = None;
        let mut found = None;
        for url in &blob.urls {
            match img.src.blob_get_url(url, blob).await {
                Ok(s) => {
                    found = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        match (found, last) {
            (Some(s), _) => s,
            (None, last) => {
                return Err(last.unwrap_or_else(|| StoreError::NotFound {
                    what: format!("foreign layer {}", blob.digest),
                }));
            }
        }
    };
    Ok(reported(stream, blob, img.run.settings.progress.clone()))
}

/// Passes a blob's chunks through, telling `progress` about them.
fn reported(stream: BlobStream, blob: &Blob, progress: Arc<dyn Progress>) -> BlobStream {
    let digest: Digest = blob.digest.clone();
    progress.event(Event::BlobStarted {
        digest: &digest,
        size: blob.size,
    });
    stream
        .inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                progress.event(Event::BlobBytes {
                    digest: &digest,
                    bytes: bytes.len() as u64,
                });
            }
        })
        .boxed()
}

/// One attempt: open the source, verify (and gunzip for a diff_id) while
/// streaming into the target.
async fn transfer(
    img: &Image<'_>,
    blob: &Blob,
    diff_ids: Option<&DiffIds<'_>>,
) -> Result<(), StoreError> {
    let source = open_source(img, blob).await?;
    // The tap sits inside the verifier, so the diff_id is final by the time
    // the verifier releases the last chunk.
    let (source, slot) = match diff_ids {
        Some(ids) => {
            let (s, slot) = gunzip_tap(source, ids.max_uncompressed);
            (s, Some(slot))
        }
        None => (source, None),
    };
    let verified = match img.src.verifies_blobs() {
        true => source,
        false => verify_stream(source, blob.digest.clone(), blob.size),
    };
    img.dst.blob_put(blob, verified).await?;
    if let (Some(ids), Some(slot)) = (diff_ids, slot) {
        let diff_id = slot.lock().ok().and_then(|s| s.clone()).ok_or_else(|| {
            StoreError::Layer(format!(
                "layer {} ended before its gzip stream did",
                blob.digest
            ))
        })?;
        ids.computed(&blob.digest, diff_id);
    }
    Ok(())
}

/// Reads a layer from the source only to learn its diff_id.
async fn read_for_diff_id(
    img: &Image<'_>,
    blob: &Blob,
    ids: &DiffIds<'_>,
) -> Result<(), StoreError> {
    let source = open_source(img, blob).await?;
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
    ids.computed(&blob.digest, diff_id);
    Ok(())
}
