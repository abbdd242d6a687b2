//! Assembling a multi-arch index from single-platform images (`ocirepl
//! index create`): each image is copied into the target repository by
//! digest (no tag moves), its platform read from its config, and the index
//! pushed last under the tag, with annotations on it (seed 003).
//!
//! Owns that order and what it refuses (a part that is not one image, a
//! config without a platform). Never parses flags: the app hands over
//! parts already opened.

use std::sync::Arc;

use super::error::{CopyError, Step};
use super::push::push_manifest;
use super::run::Replicator;
use super::shape::image_platform;
use crate::digest::Digest;
use crate::manifest::index::assemble;
use crate::manifest::{ManifestError, RawManifest};
use crate::media::Kind;
use crate::plan::{CopyJob, CopyOptions};
use crate::platform::Platform;
use crate::reference::{ImageRef, ManifestRef};
use crate::report::ImageReport;
use crate::store::{Store, StoreError};

/// One image an index is built from, and the store it is read from.
pub struct IndexPart {
    pub source: ImageRef,
    pub src: Arc<dyn Store>,
}

/// One entry of the index built.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub digest: Digest,
    pub platform: Platform,
}

/// Why an index was not built; the target's tag did not move.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A part cannot be an entry (exit 2).
    #[error("{0}")]
    Usage(String),
    #[error("reading {source_ref}: {error}")]
    Read {
        source_ref: String,
        error: CopyError,
    },
    /// A part's copy failed; its report says how.
    #[error("copying {} into {} failed: {}", .0.source, .0.target, .0.error.as_deref().unwrap_or("?"))]
    Copy(Box<ImageReport>),
    #[error("building the index: {0}")]
    Assemble(ManifestError),
    #[error("pushing the index to {target}: {error}")]
    Push { target: String, error: StoreError },
}

/// Copies each part into `target`'s repository by digest, then pushes the
/// index of them under `tag`. Returns the index and its entries.
pub async fn create_index(
    replicator: &Replicator,
    parts: &[IndexPart],
    (target, dst): (&ImageRef, &dyn Store),
    tag: &str,
    annotations: &[(String, String)],
) -> Result<(RawManifest, Vec<IndexEntry>), IndexError> {
    let mut entries = Vec::new();
    for part in parts {
        let (image, platform) = read_part(part).await?;
        // Children go in by digest: only the index moves a tag.
        let job = CopyJob::pinned(
            part.source.clone(),
            image.digest.clone(),
            target.clone(),
            CopyOptions::default(),
        );
        let report = replicator.run(&job, part.src.as_ref(), dst).await;
        if report.failed() {
            return Err(IndexError::Copy(Box::new(report)));
        }
        entries.push((image, platform));
    }
    let index = assemble(&entries, annotations).map_err(IndexError::Assemble)?;
    push_manifest(dst, &ManifestRef::Tag(tag.to_string()), &index)
        .await
        .map_err(|error| IndexError::Push {
            target: target.to_string(),
            error,
        })?;
    let entries = entries
        .into_iter()
        .map(|(m, platform)| IndexEntry {
            digest: m.digest,
            platform,
        })
        .collect();
    Ok((index, entries))
}

/// A part's manifest, which must be one image, and its platform.
async fn read_part(part: &IndexPart) -> Result<(RawManifest, Platform), IndexError> {
    let source = &part.source;
    let wanted = match (source.digest(), source.tag()) {
        (Some(d), _) => ManifestRef::Digest(d.clone()),
        (None, t) => ManifestRef::Tag(t.unwrap_or(crate::plan::DEFAULT_TAG).to_string()),
    };
    let read = |error| IndexError::Read {
        source_ref: source.to_string(),
        error,
    };
    let image = part
        .src
        .manifest_get(&wanted)
        .await
        .map_err(|e| read(CopyError::new(Step::ReadSource, e)))?;
    if image.media_type.kind() != Kind::Image {
        return Err(IndexError::Usage(format!(
            "--from {source} is a {}, not a single-platform image",
            image.media_type
        )));
    }
    let platform = image_platform(part.src.as_ref(), &image)
        .await
        .map_err(read)?;
    Ok((image, platform))
}
