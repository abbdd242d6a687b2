//! Before an incremental archive is imported: does the target hold what
//! the archive left out? Each image's tree is walked in the archive; every
//! manifest or blob it names that the archive left out must be in the
//! target already (a HEAD), or the import stops before any tag moves,
//! naming the digests and the earlier export that carried them.
//!
//! Owns that walk (manifests only, from the archive; a manifest the
//! archive left out and the target holds is taken as whole, since a
//! registry holds a manifest only with what it references). Never writes.

use std::collections::{HashMap, HashSet};

use super::error::{CopyError, Step};
use crate::digest::Digest;
use crate::manifest::Parsed;
use crate::reference::ManifestRef;
use crate::store::{Location, Store, StoreError};

/// A digest the target lacks, and the earlier export that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub digest: Digest,
    pub carried_by: String,
}

/// What the check found: the digests no target repository has, and the
/// blobs another repository of the target registry has (to mount).
#[derive(Debug, Default)]
pub struct Closure {
    pub missing: Vec<Missing>,
    pub elsewhere: Vec<(Location, Digest)>,
}

/// The digests under `root` that `archive` left out and `target` lacks.
/// A blob that `siblings` (other repositories of the import on the
/// target's registry) hold is not missing: the copy mounts it from there.
pub async fn missing_in_target(
    archive: &dyn Store,
    target: &dyn Store,
    siblings: &[&dyn Store],
    root: &Digest,
    omitted: &HashMap<Digest, String>,
) -> Result<Closure, CopyError> {
    let mut out = Closure::default();
    let mut seen = HashSet::new();
    let mut todo = vec![(root.clone(), true)];
    while let Some((d, is_manifest)) = todo.pop() {
        if !seen.insert(d.clone()) {
            continue;
        }
        if let Some(by) = omitted.get(&d) {
            let there = match is_manifest {
                true => target.manifest_head(&ManifestRef::Digest(d.clone())).await,
                false => target.blob_head(&d).await.map(|s| s.map(|_| d.clone())),
            }
            .map_err(|e| CopyError::new(Step::CheckTarget, e))?;
            if there.is_some() {
                continue;
            }
            let mut found = None;
            for s in siblings.iter().filter(|_| !is_manifest) {
                if s.location().place == target.location().place
                    && s.blob_head(&d)
                        .await
                        .map_err(|e| CopyError::new(Step::CheckTarget, e))?
                        .is_some()
                {
                    found = Some(s.location());
                    break;
                }
            }
            match found {
                Some(at) => out.elsewhere.push((at, d)),
                None => out.missing.push(Missing {
                    digest: d,
                    carried_by: by.clone(),
                }),
            }
            continue;
        }
        if !is_manifest {
            continue;
        }
        let m = match archive.manifest_get(&ManifestRef::Digest(d.clone())).await {
            Ok(m) => m,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(CopyError::new(Step::ReadSource, e)),
        };
        match m.parse() {
            Ok(Parsed::Index(i)) => todo.extend(i.manifests.into_iter().map(|c| (c.digest, true))),
            Ok(Parsed::Image(img)) => {
                todo.push((img.config.digest, false));
                todo.extend(img.layers.into_iter().map(|l| (l.digest, false)));
            }
            _ => {}
        }
    }
    Ok(out)
}
