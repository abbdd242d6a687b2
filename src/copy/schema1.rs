//! Pushing a schema1 root: as it is when the format allows and the target
//! takes it, else converted to schema2 (a synthesised config blob, then
//! the manifest) with the diff_ids the blob copy computed.
//!
//! Owns when a conversion happens and the reason the report gives. The
//! conversion itself is pure (`manifest::schema1`). Never decides from a
//! status code: the store says a type is unsupported.

use std::collections::HashMap;

use bytes::Bytes;
use futures::StreamExt;

use super::diff_ids::DiffIds;
use super::error::{CopyError, Step};
use super::shape::to_oci;
use super::shared::{Image, Selected};
use crate::digest::Digest;
use crate::manifest::RawManifest;
use crate::manifest::oci::Remap;
use crate::manifest::schema1::Schema1;
use crate::plan::Format;
use crate::store::{Blob, Rejection, StoreError};

/// Pushes the root of `sel`; returns what was pushed and why its digest
/// differs from the source's, if it does.
pub(super) async fn push(
    img: &Image<'_>,
    sel: &Selected,
    s1: &Schema1,
    ids: &DiffIds<'_>,
) -> Result<(RawManifest, Option<String>), CopyError> {
    let root = &sel.shaped.root;
    if img.job.options.format == Format::Auto {
        match img.dst.manifest_put(&sel.target_ref, root).await {
            Ok(()) => return Ok((root.clone(), sel.shaped.reason.clone())),
            Err(e) if e.rejection() == Some(Rejection::UnsupportedType) => {
                tracing::info!("the target refuses schema1 ({e}); converting to schema2");
            }
            Err(e) => {
                return Err(CopyError::new(
                    Step::PushRoot(root.media_type.to_string()),
                    e,
                ));
            }
        }
    }
    let converted = convert(img, sel, s1, ids).await?;
    let reason = format!(
        "schema1 {} converted to schema2 {}",
        root.digest, converted.digest
    );
    Ok((converted, Some(reason)))
}

/// The schema2 (or OCI) form, pushed: config blob, then the manifest.
async fn convert(
    img: &Image<'_>,
    sel: &Selected,
    s1: &Schema1,
    ids: &DiffIds<'_>,
) -> Result<RawManifest, CopyError> {
    let sizes: HashMap<&Digest, u64> = sel.blobs.iter().map(|b| (&b.digest, b.size)).collect();
    let mut layers = Vec::new();
    for entry in s1.layers() {
        let diff_id = ids.get(&entry.blob).ok_or_else(|| {
            CopyError::structure(
                Step::Convert,
                format!("no diff_id was computed for layer {}", entry.blob),
            )
        })?;
        layers.push((diff_id, sizes.get(&entry.blob).copied().unwrap_or(0)));
    }
    let (config, manifest) = s1
        .to_schema2(&layers)
        .map_err(|e| CopyError::new(Step::Convert, e))?;
    push_config(img, config).await?;
    let manifest = match img.job.options.format {
        Format::Oci => to_oci(&manifest, &Remap::new())?,
        _ => manifest,
    };
    img.dst
        .manifest_put(&sel.target_ref, &manifest)
        .await
        .map_err(|e| CopyError::new(Step::PushRoot(manifest.media_type.to_string()), e))?;
    Ok(manifest)
}

async fn push_config(img: &Image<'_>, config: Bytes) -> Result<(), CopyError> {
    let blob = Blob::new(Digest::sha256(&config), config.len() as u64);
    let step = || Step::Blob(blob.digest.clone());
    let present = img
        .dst
        .blob_head(&blob.digest)
        .await
        .map_err(|e| CopyError::new(Step::Convert, e))?;
    if present.is_none() {
        let body = futures::stream::once(async move { Ok::<Bytes, StoreError>(config) }).boxed();
        img.dst
            .blob_put(&blob, body)
            .await
            .map_err(|e| CopyError::new(step(), e))?;
    }
    Ok(())
}
