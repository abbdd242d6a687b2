//! Platform selection on the source root: the whole image, a filtered
//! index, or one child unwrapped.
//!
//! Owns the decision and its usage errors (nothing matches; `Unwrap`
//! without exactly one match), made before anything is written. Never
//! fetches: it reads the root it is given.

use crate::manifest::index::{self, Selection};
use crate::manifest::{Descriptor, Parsed, RawManifest};
use crate::plan::PlatformSelection;
use crate::platform::Platform;

use super::error::{CopyError, Step};

/// What the plan makes of the source root.
#[derive(Debug, Clone)]
pub enum RootChoice {
    /// Everything, as it is.
    Whole,
    /// Some children of the root index, in a new index.
    Filter(Selection),
    /// One child image of the root index, pushed under the tag.
    Unwrap(Descriptor),
}

/// Applies `selection` to `root`.
pub fn choose(root: &RawManifest, selection: &PlatformSelection) -> Result<RootChoice, CopyError> {
    let wanted = selection.platforms();
    if wanted.is_empty() {
        return Ok(RootChoice::Whole);
    }
    let index = match root.parse() {
        Ok(Parsed::Index(i)) => i,
        // A single image: the filter has nothing to choose from.
        Ok(_) => return Ok(RootChoice::Whole),
        Err(source) => {
            return Err(CopyError::manifest(
                Step::Walk,
                format!("manifest {}", root.digest),
                source,
            ));
        }
    };
    let found = index::select(&index, wanted);
    let images = found.kept_images();
    if images.is_empty() {
        return Err(CopyError::usage(format!(
            "no platform of index {} matches --platform {} (it has {})",
            root.digest,
            names(wanted).join(","),
            found.available.join(", ")
        )));
    }
    if let PlatformSelection::Unwrap(_) = selection {
        if images.len() != 1 {
            let matched: Vec<String> = images
                .iter()
                .filter_map(|d| d.platform.as_ref().map(Platform::to_string))
                .collect();
            return Err(CopyError::usage(format!(
                "--unwrap needs --platform to match exactly one image of index {}; {} matched ({})",
                root.digest,
                images.len(),
                matched.join(", ")
            )));
        }
        return Ok(RootChoice::Unwrap(images[0].clone()));
    }
    if found.dropped.is_empty() {
        return Ok(RootChoice::Whole);
    }
    Ok(RootChoice::Filter(found))
}

fn names(platforms: &[Platform]) -> Vec<String> {
    platforms.iter().map(Platform::to_string).collect()
}
