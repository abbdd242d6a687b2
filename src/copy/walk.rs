//! The walk: from a root manifest to everything it needs, as data.
//!
//! Owns recursion into indexes (depth cap, each digest fetched once,
//! children verified against their descriptors) and the blob list. Never
//! writes to the target.

use std::collections::HashSet;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::{CopyError, Step};
use crate::digest::Digest;
use crate::manifest::{Descriptor, Parsed, RawManifest};
use crate::media;
use crate::store::{Blob, ManifestRef, Store, StoreError};

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

/// Walks `root`, fetching child manifests from `src` (concurrently, at most
/// `jobs` at once).
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
    pub max_manifest_size: u64,
}

pub async fn walk(
    src: &dyn Store,
    repo: &str,
    root: RawManifest,
    options: WalkOptions<'_>,
) -> Result<CopyTree, CopyError> {
    let WalkOptions {
        jobs,
        keep,
        include_foreign,
        max_manifest_size,
    } = options;
    let mut seen: HashSet<Digest> = HashSet::from([root.digest.clone()]);
    let mut blobs = BlobSet {
        include_foreign,
        ..BlobSet::default()
    };
    let mut levels: Vec<Vec<RawManifest>> = Vec::new();
    let mut frontier = vec![root.clone()];
    for depth in 0.. {
        let mut next: Vec<Descriptor> = Vec::new();
        for m in &frontier {
            match parse(m)? {
                Parsed::Index(index) => {
                    for child in index.manifests {
                        let selected = depth > 0 || keep.is_none_or(|k| k.contains(&child.digest));
                        if selected && seen.insert(child.digest.clone()) {
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
                        if blobs.digests.contains(&layer.blob_sum) {
                            continue;
                        }
                        // Schema1 gives no sizes; the source states them.
                        let size = src
                            .blob_head(repo, &layer.blob_sum)
                            .await
                            .map_err(|e| CopyError::new(Step::Blob(layer.blob_sum.clone()), e))?
                            .ok_or_else(|| {
                                CopyError::new(
                                    Step::Blob(layer.blob_sum.clone()),
                                    StoreError::NotFound {
                                        what: format!(
                                            "schema1 layer {} in the source",
                                            layer.blob_sum
                                        ),
                                    },
                                )
                            })?;
                        blobs.add(Blob::new(layer.blob_sum.clone(), size));
                    }
                }
                Parsed::Opaque => {}
            }
        }
        if next.is_empty() {
            break;
        }
        if depth + 1 > MAX_INDEX_DEPTH {
            return Err(CopyError::new(
                Step::Walk,
                StoreError::Protocol(format!(
                    "indexes nested deeper than {MAX_INDEX_DEPTH} levels"
                )),
            ));
        }
        let children: Vec<RawManifest> = stream::iter(next)
            .map(|d| fetch_child(src, repo, d, max_manifest_size))
            .buffered(jobs.max(1))
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

fn parse(m: &RawManifest) -> Result<Parsed, CopyError> {
    m.parse().map_err(|source| {
        CopyError::new(
            Step::Walk,
            StoreError::Manifest {
                what: format!("manifest {}", m.digest),
                source,
            },
        )
    })
}

/// Fetches a child by digest and holds it to its descriptor.
pub async fn fetch_child(
    src: &dyn Store,
    repo: &str,
    d: Descriptor,
    max_manifest_size: u64,
) -> Result<RawManifest, CopyError> {
    let step = Step::ReadChild(d.digest.clone());
    if d.size > max_manifest_size {
        return Err(CopyError::new(
            step,
            StoreError::TooLarge {
                what: format!("{} (descriptor size {})", d.digest, d.size),
                limit: max_manifest_size,
            },
        ));
    }
    let m = src
        .manifest_get(repo, &ManifestRef::Digest(d.digest.clone()))
        .await
        .map_err(|e| CopyError::new(step.clone(), e))?;
    if m.size() != d.size {
        return Err(CopyError::new(
            step,
            StoreError::Protocol(format!(
                "child manifest is {} bytes, its descriptor says {}",
                m.size(),
                d.size
            )),
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
