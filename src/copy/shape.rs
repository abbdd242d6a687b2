//! Rewrites a copy makes by plan, never otherwise: a platform-filtered
//! index, a single image wrapped in an index, Docker media types turned
//! OCI. (Schema1 turned schema2 needs the layers' diff_ids; see
//! `schema1`.)
//!
//! Owns what the root becomes and the reason the report gives for a new
//! digest. Never re-serialises a manifest the plan does not rewrite.

use std::collections::HashSet;

use bytes::Bytes;
use futures::StreamExt;

use super::error::{CopyError, Step};
use super::platforms::RootChoice;
use super::walk::CopyTree;
use crate::digest::Digest;
use crate::manifest::index::{self, Selection};
use crate::manifest::oci::{self, Remap};
use crate::manifest::{MAX_MANIFEST_SIZE, ManifestError, Parsed, RawManifest};
use crate::media::{Kind, MediaType};
use crate::plan::{CopyOptions, Format, Mode};
use crate::platform::Platform;
use crate::store::{Blob, Store, StoreError};

/// The tree as it will be pushed.
#[derive(Debug, Clone)]
pub struct Shaped {
    pub root: RawManifest,
    pub child_levels: Vec<Vec<RawManifest>>,
    /// Why the pushed root's digest differs from the source's.
    pub reason: Option<String>,
}

/// Applies the plan's rewrites to a walked tree.
pub async fn shape(
    src: &dyn Store,
    tree: CopyTree,
    choice: &RootChoice,
    options: &CopyOptions,
) -> Result<Shaped, CopyError> {
    let mut reasons: Vec<String> = Vec::new();
    let mut root = tree.root;
    let mut levels = tree.child_levels;
    if let RootChoice::Filter(sel) = choice {
        root = filtered(&root, sel)?;
        reasons.push(filter_reason(sel));
    }
    if options.mode == Mode::NormaliseIndex && root.media_type.kind() == Kind::Image {
        let platform = image_platform(src, &root).await?;
        let wrapped = index::wrap(&root, &platform).map_err(rewrite("one-entry index".into()))?;
        levels = vec![vec![root]];
        root = wrapped;
        reasons.push("normalised to an index".into());
    }
    if options.format == Format::Oci && is_docker(&root.media_type) {
        let mut remap = Remap::new();
        for level in &mut levels {
            for m in level.iter_mut() {
                let converted = to_oci(m, &remap)?;
                remap.insert(
                    m.digest.clone(),
                    (
                        converted.digest.clone(),
                        converted.size(),
                        converted.media_type.to_string(),
                    ),
                );
                *m = converted;
            }
        }
        root = to_oci(&root, &remap)?;
        reasons.push("converted to OCI media types".into());
    }
    Ok(Shaped {
        root,
        child_levels: levels,
        reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
    })
}

/// The index that keeps what `sel` keeps of `root`.
pub fn filtered(root: &RawManifest, sel: &Selection) -> Result<RawManifest, CopyError> {
    let keep: HashSet<Digest> = sel.kept.iter().map(|d| d.digest.clone()).collect();
    index::filtered(root, &keep, &sel.dropped).map_err(rewrite(format!("index {}", root.digest)))
}

/// Why a filtered index has a new digest.
pub fn filter_reason(sel: &Selection) -> String {
    format!("platform filter (dropped {})", sel.dropped.join(", "))
}

fn rewrite(what: String) -> impl FnOnce(ManifestError) -> CopyError {
    move |source| CopyError::manifest(Step::Walk, what, source)
}

fn is_docker(m: &MediaType) -> bool {
    matches!(m, MediaType::DockerV2S2 | MediaType::DockerList)
}

pub fn to_oci(m: &RawManifest, remap: &Remap) -> Result<RawManifest, CopyError> {
    oci::to_oci(m, remap).map_err(rewrite(format!("manifest {}", m.digest)))
}

/// The platform an image's config states (for a one-entry index, or an
/// index assembled from images).
pub async fn image_platform(src: &dyn Store, image: &RawManifest) -> Result<Platform, CopyError> {
    let Ok(Parsed::Image(m)) = image.parse() else {
        return Err(CopyError::structure(
            Step::Walk,
            format!("{} is not an image manifest", image.digest),
        ));
    };
    let config = read_small_blob(src, &m.config.digest, m.config.size, "config").await?;
    serde_json::from_slice::<Platform>(&config).map_err(|e| {
        CopyError::structure(
            Step::Walk,
            format!(
                "config {} has no usable os/architecture: {e}",
                m.config.digest
            ),
        )
    })
}

/// Reads a config-sized blob (a config, a signature; `what`) into memory,
/// verified; one larger than a manifest may be is not read.
pub async fn read_small_blob(
    src: &dyn Store,
    digest: &Digest,
    size: u64,
    what: &str,
) -> Result<Bytes, CopyError> {
    let step = || Step::Blob(digest.clone());
    if size > MAX_MANIFEST_SIZE {
        return Err(CopyError::new(
            step(),
            StoreError::TooLarge {
                what: format!("{what} {digest}"),
                limit: MAX_MANIFEST_SIZE,
            },
        ));
    }
    let stream = src
        .blob_get(&Blob::new(digest.clone(), size))
        .await
        .map_err(|e| CopyError::new(step(), e))?;
    let mut verified = crate::digest::verify_stream(stream, digest.clone(), size);
    let mut buf = Vec::with_capacity(size as usize);
    while let Some(chunk) = verified.next().await {
        buf.extend_from_slice(&chunk.map_err(|e| CopyError::new(step(), e))?);
    }
    Ok(Bytes::from(buf))
}
