//! The walk: from a root manifest to everything it needs, as data.
//!
//! Owns recursion into indexes (depth, width and total-size caps, each
//! digest fetched once, children verified against their descriptors) and
//! the blob list. Never writes to the target.

use std::collections::HashSet;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::error::{CopyError, Step};
use crate::digest::Digest;
use crate::manifest::{Descriptor, Parsed, RawManifest};
use crate::media;
use crate::plan::Limits;
use crate::reference::ManifestRef;
use crate::store::{Blob, Store, StoreError};

/// Nesting of indexes we follow. Real images nest at most twice (an index of
/// indexes); a deeper graph is a mistake or an attack.
pub const MAX_INDEX_DEPTH: usize = 8;

/// Everything one copy moves, in the order it must land.
#[derive(Debug, Clone)]
pub struct CopyTree {
    pub root: RawManifest,
    /// Child manifests, grouped by depth, deepest group first: each group
    /// only references blobs and groups before it.
    pub child_levels: Vec<Vec<RawManifest>>,
    /// Every distinct blob of every image in the tree.
    pub blobs: Vec<Blob>,
}

impl CopyTree {
    pub fn child_count(&self) -> usize {
        self.child_levels.iter().map(Vec::len).sum()
    }
}

/// How to walk.
pub struct WalkOptions<'a> {
    /// Child manifests fetched at once.
    pub jobs: usize,
    /// When set, only these entries of the root index are walked (a
    /// platform selection).
    pub keep: Option<&'a HashSet<Digest>>,
    /// Foreign layers become blobs to copy (from their URLs) instead of
    /// being left where they are.
    pub include_foreign: bool,
    pub limits: Limits,
    /// Pulls kept in reserve on a registry that states a pull budget: the
    /// children of each level are reserved before any is fetched.
    pub pull_reserve: Option<u64>,
}

/// Walks `root`, fetching child manifests from `src` (at most `jobs` at once).
pub async fn walk(
    src: &dyn Store,
    root: RawManifest,
    options: WalkOptions<'_>,
) -> Result<CopyTree, CopyError> {
    let mut seen: HashSet<Digest> = HashSet::from([root.digest.clone()]);
    let mut blobs = BlobSet {
        include_foreign: options.include_foreign,
        ..BlobSet::default()
    };
    let mut budget = Budget::new(&options.limits, root.size());
    let mut levels: Vec<Vec<RawManifest>> = Vec::new();
    let mut frontier = vec![root.clone()];
    for depth in 0.. {
        let mut next: Vec<Descriptor> = Vec::new();
        for m in &frontier {
            match parse(m)? {
                Parsed::Index(index) => {
                    for child in index.manifests {
                        let selected =
                            depth > 0 || options.keep.is_none_or(|k| k.contains(&child.digest));
                        if selected && seen.insert(child.digest.clone()) {
                            budget.admit(&child)?;
                            next.push(child);
                        }
                    }
                }
                Parsed::Image(image) => {
                    blobs.add_descriptor(&image.config);
                    for layer in &image.layers {
                        blobs.add_descriptor(layer);
                    }
                }
                Parsed::Schema1(s1) => {
                    for layer in &s1.fs_layers {
                        schema1_layer(src, &mut blobs, &layer.blob_sum).await?;
                    }
                }
                Parsed::Opaque => {}
            }
        }
        if next.is_empty() {
            break;
        }
        if depth + 1 > MAX_INDEX_DEPTH {
            return Err(CopyError::structure(
                Step::Walk,
                format!("indexes nested deeper than {MAX_INDEX_DEPTH} levels"),
            ));
        }
        if let Some(keep) = options.pull_reserve {
            src.reserve_pulls(next.len() as u64, keep)
                .map_err(|e| CopyError::new(Step::Walk, e))?;
        }
        let max = options.limits.max_manifest_size;
        let children: Vec<RawManifest> = stream::iter(next)
            .map(|d| fetch_child(src, d, max))
            .buffered(options.jobs.max(1))
            .try_collect()
            .await?;
        levels.push(children.clone());
        frontier = children;
    }
    levels.reverse();
    Ok(CopyTree {
        root,
        child_levels: levels,
        blobs: blobs.list,
    })
}

/// A schema1 layer: schema1 gives no sizes, so the source states them.
async fn schema1_layer(
    src: &dyn Store,
    blobs: &mut BlobSet,
    digest: &Digest,
) -> Result<(), CopyError> {
    if blobs.digests.contains(digest) {
        return Ok(());
    }
    let step = || Step::Blob(digest.clone());
    let size = src
        .blob_head(digest)
        .await
        .map_err(|e| CopyError::new(step(), e))?
        .ok_or_else(|| {
            CopyError::new(
                step(),
                StoreError::NotFound {
                    what: format!("schema1 layer {digest} in the source"),
                },
            )
        })?;
    blobs.add(Blob::new(digest.clone(), size));
    Ok(())
}

/// How wide an image may be: distinct children and manifest bytes, both
/// checked from descriptors before anything is fetched.
struct Budget {
    children: usize,
    bytes: u64,
    limits: Limits,
}

impl Budget {
    fn new(limits: &Limits, root_size: u64) -> Budget {
        Budget {
            children: 0,
            bytes: root_size,
            limits: *limits,
        }
    }

    fn admit(&mut self, child: &Descriptor) -> Result<(), CopyError> {
        self.children += 1;
        self.bytes = self.bytes.saturating_add(child.size);
        if self.children > self.limits.max_index_children {
            return Err(CopyError::structure(
                Step::Walk,
                format!(
                    "the image has more than {} distinct child manifests (--max-index-children)",
                    self.limits.max_index_children
                ),
            ));
        }
        if self.bytes > self.limits.max_image_manifest_bytes {
            return Err(CopyError::structure(
                Step::Walk,
                format!(
                    "the image's manifests add up to more than {} bytes (--max-image-manifest-bytes)",
                    self.limits.max_image_manifest_bytes
                ),
            ));
        }
        Ok(())
    }
}

fn parse(m: &RawManifest) -> Result<Parsed, CopyError> {
    m.parse()
        .map_err(|source| CopyError::manifest(Step::Walk, format!("manifest {}", m.digest), source))
}

/// Fetches a child by digest and holds it to its descriptor.
pub async fn fetch_child(
    src: &dyn Store,
    d: Descriptor,
    max_manifest_size: u64,
) -> Result<RawManifest, CopyError> {
    let step = Step::ReadChild(d.digest.clone());
    if d.size > max_manifest_size {
        return Err(CopyError::new(
            step,
            StoreError::TooLarge {
                what: format!("manifest {} (descriptor size {})", d.digest, d.size),
                limit: max_manifest_size,
            },
        ));
    }
    let m = src
        .manifest_get(&ManifestRef::Digest(d.digest.clone()))
        .await
        .map_err(|e| CopyError::new(step.clone(), e))?;
    if m.size() != d.size {
        return Err(CopyError::structure(
            step,
            format!(
                "child manifest is {} bytes, its descriptor says {}",
                m.size(),
                d.size
            ),
        ));
    }
    Ok(m)
}

/// Blobs in first-seen order, each digest once.
#[derive(Default)]
struct BlobSet {
    digests: HashSet<Digest>,
    list: Vec<Blob>,
    include_foreign: bool,
}

impl BlobSet {
    fn add_descriptor(&mut self, d: &Descriptor) {
        // Foreign layers live outside the registry by design: the manifest
        // points at their URLs and registries accept it without the blob.
        let foreign = media::is_foreign_layer(&d.media_type) && !d.urls.is_empty();
        if foreign && !self.include_foreign {
            return;
        }
        self.add(Blob {
            digest: d.digest.clone(),
            size: d.size,
            urls: if foreign { d.urls.clone() } else { Vec::new() },
        });
    }

    fn add(&mut self, b: Blob) {
        if self.digests.insert(b.digest.clone()) {
            self.list.push(b);
        }
    }
}
