//! Writing manifests: children by digest, deepest level first, then the
//! root under the tag, so a failure never leaves the tag on a half-written
//! image.
//!
//! Owns the push order, the eventual-consistency retries of one manifest
//! ([`retry::PUSH`]) and the self-heal: a target that refuses a manifest
//! for a blob its HEAD claimed gets every blob once more, then the push is
//! tried again. Never streams a blob itself (that is `blobs`).

use futures::stream::{self, TryStreamExt};

use super::blobs;
use super::diff_ids::DiffIds;
use super::error::{CopyError, Step};
use super::shared::{Image, Outcome, Selected, Trust};
use super::{retry, schema1};
use crate::manifest::RawManifest;
use crate::reference::ManifestRef;
use crate::report::Action;
use crate::store::{Rejection, Store, StoreError};

/// Pushes the selected tree; heals a target that lost blobs once.
pub(super) async fn push_all(
    img: &Image<'_>,
    sel: &Selected,
    diff_ids: Option<&DiffIds<'_>>,
) -> Result<Outcome, CopyError> {
    let mut healed = false;
    loop {
        match push_once(img, sel, diff_ids).await {
            Err(e) if e.rejection() == Some(Rejection::UnknownBlob) && !healed => {
                healed = true;
                tracing::warn!("the target lost blobs it said it had ({e}); uploading them again");
                for b in &sel.blobs {
                    img.run.ledger.forget(&img.dst_at, &b.digest);
                }
                blobs::copy_blobs(img, &sel.blobs, diff_ids, Trust::Nothing).await?;
            }
            other => return other,
        }
    }
}

async fn push_once(
    img: &Image<'_>,
    sel: &Selected,
    diff_ids: Option<&DiffIds<'_>>,
) -> Result<Outcome, CopyError> {
    let children = push_children(img, &sel.shaped.child_levels).await?;
    let root = &sel.shaped.root;
    // A source read in one pass must be whole before a tag moves.
    if matches!(sel.target_ref, ManifestRef::Tag(_)) {
        img.src
            .settled()
            .await
            .map_err(|e| CopyError::new(Step::ReadSource, e))?;
    }
    let (pushed, reason) = match (&sel.schema1, diff_ids) {
        (Some(s1), Some(ids)) => schema1::push(img, sel, s1, ids).await?,
        _ => {
            push_manifest(img.dst, &sel.target_ref, root)
                .await
                .map_err(|e| CopyError::new(Step::PushRoot(root.media_type.to_string()), e))?;
            (root.clone(), sel.shaped.reason.clone())
        }
    };
    Ok(Outcome {
        action: Action::Copied,
        source_digest: sel.source_digest.clone(),
        target_digest: pushed.digest,
        manifests_pushed: children + 1,
        reason,
        bytes_to_move: None,
        referrers: None,
        verification: None,
    })
}

/// Pushes child manifests by digest, deepest level first; returns how many.
pub(super) async fn push_children(
    img: &Image<'_>,
    levels: &[Vec<RawManifest>],
) -> Result<u64, CopyError> {
    let mut pushed = 0;
    for level in levels {
        stream::iter(level.iter().map(Ok))
            .try_for_each_concurrent(img.jobs(), |m: &RawManifest| async move {
                push_manifest(img.dst, &ManifestRef::Digest(m.digest.clone()), m)
                    .await
                    .map_err(|e| {
                        CopyError::new(
                            Step::PushChild(m.digest.clone(), m.media_type.to_string()),
                            e,
                        )
                    })
            })
            .await?;
        pushed += level.len() as u64;
    }
    Ok(pushed)
}

/// Pushes a manifest, trying again while the target says it does not know
/// yet what the manifest references ([`Rejection::UnknownBlob`]).
pub async fn push_manifest(
    dst: &dyn Store,
    r: &ManifestRef,
    m: &RawManifest,
) -> Result<(), StoreError> {
    let not_consistent_yet = |e: &StoreError| e.rejection() == Some(Rejection::UnknownBlob);
    let what = format!("pushing manifest {} (the target is catching up)", m.digest);
    retry::retrying(retry::PUSH, what, not_consistent_yet, || {
        dst.manifest_put(r, m)
    })
    .await
}
