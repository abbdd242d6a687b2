//! A classic `docker save` archive (what docker before 25, `podman save`
//! and `skopeo copy … docker-archive:` write): `manifest.json` naming each
//! image's config file and its layer files, layers uncompressed, no OCI
//! layout and so no manifest to keep.
//!
//! Owns the one case where a manifest must be built: an OCI image
//! manifest over the archive's own files, the config's bytes (and so the
//! image ID) kept, each layer as stored (uncompressed, its digest the
//! config's diff_id, checked when read; a compressed one hashed once). Its
//! digest is new, and the report says so. Never reads a layer it does not
//! have to.

use std::collections::HashMap;

use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::body::Body;
use super::{ArchiveError, MAX_METADATA};
use crate::digest::{Digest, Hasher};
use crate::manifest::RawManifest;
use crate::media::MediaType;
use crate::reference::Reference;
use crate::store::layout::names::Named;

/// The largest image config read.
const MAX_CONFIG: u64 = 16 * 1024 * 1024;
/// Images one `manifest.json` may list, and layers one image may have
/// (overlay stacks stop near 128): past them, the work a crafted file asks
/// for (configs read, layers hashed) is refused.
const MAX_IMAGES: usize = 1024;
const MAX_LAYERS: usize = 512;

/// Images built from `manifest.json`.
#[derive(Debug, Default)]
pub struct Built {
    pub names: Vec<Named>,
    pub manifests: HashMap<Digest, RawManifest>,
    /// Blob digest → the archive file holding it.
    pub files: HashMap<Digest, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Item {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct Config {
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<Digest>,
}

/// Builds every image `manifest.json` names.
pub async fn build(body: &Body, manifest_json: &[u8], what: &str) -> Result<Built, ArchiveError> {
    let bad = |why: String| ArchiveError::Read(format!("{what}: manifest.json: {why}"));
    let items: Vec<Item> = serde_json::from_slice(manifest_json)
        .map_err(|e| bad(format!("not what docker writes: {e}")))?;
    if items.len() > MAX_IMAGES {
        return Err(bad(format!(
            "{} images, more than {MAX_IMAGES}",
            items.len()
        )));
    }
    let mut built = Built::default();
    // Each config is read, and each compressed layer hashed, once.
    let mut configs: HashMap<String, Bytes> = HashMap::new();
    let mut identities: HashMap<String, (Digest, &'static str)> = HashMap::new();
    for item in items {
        if item.layers.len() > MAX_LAYERS {
            return Err(bad(format!(
                "{} layers in one image, more than {MAX_LAYERS}",
                item.layers.len()
            )));
        }
        let config = match configs.get(&item.config) {
            Some(c) => c.clone(),
            None => {
                let c = body.read(&item.config, MAX_CONFIG).await?.ok_or_else(|| {
                    bad(format!(
                        "names config {:?}, which is not in the archive",
                        item.config
                    ))
                })?;
                configs.insert(item.config.clone(), c.clone());
                c
            }
        };
        let parsed: Config = serde_json::from_slice(&config)
            .map_err(|e| bad(format!("config {:?}: {e}", item.config)))?;
        if parsed.rootfs.diff_ids.len() != item.layers.len() {
            return Err(bad(format!(
                "{} layers, but config {:?} lists {} diff_ids",
                item.layers.len(),
                item.config,
                parsed.rootfs.diff_ids.len()
            )));
        }
        let config_digest = Digest::sha256(&config);
        built
            .files
            .insert(config_digest.clone(), item.config.clone());
        let mut layers = Vec::new();
        for (file, diff_id) in item.layers.iter().zip(&parsed.rootfs.diff_ids) {
            let e = body
                .find(file)
                .await?
                .ok_or_else(|| bad(format!("names layer {file:?}, which is not in the archive")))?;
            let (digest, media) = match identities.get(file) {
                Some(known) => known.clone(),
                None => {
                    let found = layer_identity(body, file, e, diff_id).await?;
                    identities.insert(file.clone(), found.clone());
                    found
                }
            };
            built.files.insert(digest.clone(), file.clone());
            layers.push(json!({"mediaType": media, "digest": digest.to_string(), "size": e.size}));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MediaType::OciManifest.as_str(),
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": layers,
        });
        let raw = RawManifest::generated(Bytes::from(manifest.to_string()), MediaType::OciManifest);
        for tag in item.repo_tags.iter().flatten() {
            built.names.push(named(tag, &raw).map_err(&bad)?);
        }
        if item.repo_tags.as_ref().is_none_or(Vec::is_empty) {
            built.names.push(Named {
                repository: None,
                tag: None,
                digest: raw.digest.clone(),
                media_type: raw.media_type.to_string(),
                size: raw.size(),
            });
        }
        built.manifests.insert(raw.digest.clone(), raw);
    }
    if manifest_json.len() as u64 > MAX_METADATA {
        return Err(bad("too large".into()));
    }
    Ok(built)
}

/// A layer file's digest and media type: uncompressed (its diff_id) as
/// docker writes it, or compressed, hashed once.
async fn layer_identity(
    body: &Body,
    file: &str,
    e: super::entries::Entry,
    diff_id: &Digest,
) -> Result<(Digest, &'static str), ArchiveError> {
    let mut stream = body.stream_entry(e)?;
    let Some(first) = stream.next().await else {
        return Ok((diff_id.clone(), "application/vnd.oci.image.layer.v1.tar"));
    };
    let first = first.map_err(|e| ArchiveError::Read(e.to_string()))?;
    let media = match first.get(..4) {
        Some([0x1f, 0x8b, ..]) => "application/vnd.oci.image.layer.v1.tar+gzip",
        Some([0x28, 0xb5, 0x2f, 0xfd]) => "application/vnd.oci.image.layer.v1.tar+zstd",
        _ => return Ok((diff_id.clone(), "application/vnd.oci.image.layer.v1.tar")),
    };
    let mut h = Hasher::new(crate::digest::Algorithm::Sha256);
    h.update(&first);
    while let Some(chunk) = stream.next().await {
        h.update(&chunk.map_err(|err| ArchiveError::Read(format!("layer {file:?}: {err}")))?);
    }
    Ok((h.finish(), media))
}

fn named(tag: &str, m: &RawManifest) -> Result<Named, String> {
    let r = Reference::parse(tag).map_err(|e| format!("RepoTags {tag:?}: {e}"))?;
    Ok(Named {
        repository: Some(r.with(None, None)),
        tag: r.tag().map(str::to_string).or(Some("latest".into())),
        digest: m.digest.clone(),
        media_type: m.media_type.to_string(),
        size: m.size(),
    })
}
