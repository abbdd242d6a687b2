//! `backup`: before a target tag moves to another digest, the image it
//! named stays in the target under a tag the job's pattern makes, so an
//! overwritten release can be had back.
//!
//! Owns that one write: the old manifest read from the target by digest
//! and put under the backup tag (its blobs and children are in the target
//! already). A backup that cannot be made fails the image, and the tag does
//! not move: nothing is lost. Never reads the source.

use super::error::{CopyError, Step};
use super::push::push_manifest;
use super::shared::Image;
use crate::digest::Digest;
use crate::reference::ManifestRef;

/// Keeps the image `old` under its backup tag; returns that tag.
pub(super) async fn keep(img: &Image<'_>, tag: &str, old: &Digest) -> Result<String, CopyError> {
    let Some(pattern) = &img.job.options.backup else {
        return Ok(String::new());
    };
    let date = chrono::Utc::now().format("%Y%m%d").to_string();
    let name = pattern.expand(tag, old, &date);
    let step = || Step::Backup(name.clone());
    let manifest = img
        .dst
        .manifest_get(&ManifestRef::Digest(old.clone()))
        .await
        .map_err(|e| CopyError::new(step(), e))?;
    push_manifest(img.dst, &ManifestRef::Tag(name.clone()), &manifest)
        .await
        .map_err(|e| CopyError::new(step(), e))?;
    tracing::info!(tag, backup = name, old = %old, "kept the image the tag named");
    Ok(name)
}
