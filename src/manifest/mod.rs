//! Manifests as they travel ([`RawManifest`]: the exact bytes, their media
//! type and digest) and the parsed views the copy walks ([`Parsed`]).
//!
//! Owns format detection and the unambiguous-format check (a document that
//! could be read as two kinds, or whose `mediaType` contradicts its
//! `Content-Type`, is rejected). Never re-serialises a manifest it received:
//! views are for reading; the bytes are what gets pushed.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;

pub mod index;
pub mod jws;
pub mod oci;
pub mod referrers;
pub mod schema1;

use crate::digest::{Algorithm, Digest};
use crate::media::{Kind, MediaType};
use crate::platform::Platform;

/// The largest manifest we read into memory. 4 MiB is the size every
/// registry must accept (distribution-spec), so it is the interoperable
/// ceiling; a bigger body is refused before it is buffered.
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// A manifest exactly as received (or as a rewrite produced it). Built only
/// by [`RawManifest::from_body`] or [`RawManifest::generated`], so that the
/// digest always covers what [`RawManifest::parse`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawManifest {
    pub bytes: Bytes,
    pub media_type: MediaType,
    pub digest: Digest,
    /// A signed schema1 manifest's payload (see [`jws`]): what its digest
    /// covers and what is read of it. `None`: the bytes themselves.
    signed_payload: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("manifest is ambiguous: it has both {0} and {1}")]
    Ambiguous(&'static str, &'static str),
    #[error("manifest says mediaType {field:?} but was served as {header:?}")]
    MediaTypeMismatch { field: String, header: String },
    #[error("cannot tell what kind of manifest this is (no mediaType, no layers, no manifests)")]
    Unknown,
    #[error("unsupported schemaVersion {0}")]
    SchemaVersion(i64),
    #[error("signed schema1 manifest: {0}")]
    Signature(String),
}

/// A content descriptor (`mediaType`, `digest`, `size`, ...). The digest is
/// validated on parse; a negative size does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
}

/// An image manifest (OCI or Docker v2s2), or an artifact manifest shaped
/// like one.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
}

/// An OCI index or Docker manifest list.
#[derive(Debug, Clone, Deserialize)]
pub struct Index {
    pub manifests: Vec<Descriptor>,
}

/// Docker schema1 (signed or not): what the copy needs of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema1 {
    pub fs_layers: Vec<Schema1Layer>,
    #[serde(default)]
    pub history: Vec<Schema1History>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema1Layer {
    pub blob_sum: Digest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema1History {
    pub v1_compatibility: String,
}

/// What a manifest is, read for walking.
#[derive(Debug, Clone)]
pub enum Parsed {
    Image(Box<ImageManifest>),
    Index(Index),
    Schema1(Schema1),
    /// A valid JSON document of a media type we do not know: copied as is,
    /// with no children we can see.
    Opaque,
}

/// Only the keys that decide the format; everything else is ignored here.
/// Serde rejects duplicate keys among these, and trailing bytes after the
/// document, which is what we want for a manifest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<i64>,
    media_type: Option<String>,
    config: Option<serde::de::IgnoredAny>,
    layers: Option<serde::de::IgnoredAny>,
    manifests: Option<serde::de::IgnoredAny>,
    fs_layers: Option<serde::de::IgnoredAny>,
    signatures: Option<serde::de::IgnoredAny>,
}

impl RawManifest {
    /// Builds the raw manifest from a body and the `Content-Type` it came
    /// with (if any), deciding its media type. The digest is computed over
    /// the bytes (sha256 unless `algorithm` says otherwise).
    pub fn from_body(
        bytes: Bytes,
        content_type: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<RawManifest, ManifestError> {
        let media_type = detect(&bytes, content_type)?;
        let signed_payload = match media_type {
            MediaType::DockerV2S1Signed => jws::signed_payload(&bytes)?,
            _ => None,
        };
        let digest = Digest::of(algorithm, signed_payload.as_deref().unwrap_or(&bytes));
        Ok(RawManifest {
            bytes,
            media_type,
            digest,
            signed_payload,
        })
    }

    /// A manifest ocirepl wrote itself (a rewritten index, a conversion):
    /// sha256 over its bytes.
    pub fn generated(bytes: Bytes, media_type: MediaType) -> RawManifest {
        RawManifest {
            digest: Digest::sha256(&bytes),
            bytes,
            media_type,
            signed_payload: None,
        }
    }

    /// The bytes the digest covers and every reader reads: a signed schema1
    /// manifest's payload, otherwise the bytes themselves.
    pub fn content(&self) -> &[u8] {
        self.signed_payload.as_deref().unwrap_or(&self.bytes)
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The parsed view of these bytes.
    pub fn parse(&self) -> Result<Parsed, ManifestError> {
        let json = |e: serde_json::Error| ManifestError::Json(e.to_string());
        Ok(match self.media_type.kind() {
            Kind::Image => {
                Parsed::Image(Box::new(serde_json::from_slice(&self.bytes).map_err(json)?))
            }
            Kind::Index => Parsed::Index(serde_json::from_slice(&self.bytes).map_err(json)?),
            Kind::Schema1 => Parsed::Schema1(serde_json::from_slice(self.content()).map_err(json)?),
            // An artifact whose type we do not know but which is shaped like
            // an image manifest still has blobs to copy.
            Kind::Unknown => match serde_json::from_slice::<ImageManifest>(&self.bytes) {
                Ok(m) => Parsed::Image(Box::new(m)),
                Err(_) => match serde_json::from_slice::<Index>(&self.bytes) {
                    Ok(i) => Parsed::Index(i),
                    Err(_) => Parsed::Opaque,
                },
            },
        })
    }
}

/// Decides the media type from the body and the header, rejecting documents
/// that are ambiguous or contradict their header.
fn detect(bytes: &[u8], content_type: Option<&str>) -> Result<MediaType, ManifestError> {
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    if probe.manifests.is_some() && probe.layers.is_some() {
        return Err(ManifestError::Ambiguous("manifests", "layers"));
    }
    if probe.manifests.is_some() && probe.config.is_some() {
        return Err(ManifestError::Ambiguous("manifests", "config"));
    }
    if probe.fs_layers.is_some() && (probe.layers.is_some() || probe.manifests.is_some()) {
        return Err(ManifestError::Ambiguous("fsLayers", "layers or manifests"));
    }
    let header = content_type.map(MediaType::parse).filter(is_manifest_type);
    if let Some(field) = &probe.media_type {
        let field_type = MediaType::parse(field);
        if let Some(h) = &header {
            // Schema1 is served as either of its two types whatever it says.
            let same = h == &field_type
                || (h.kind() == Kind::Schema1 && field_type.kind() == Kind::Schema1);
            if !same {
                return Err(ManifestError::MediaTypeMismatch {
                    field: field.clone(),
                    header: h.to_string(),
                });
            }
        }
        let field_kind = field_type.kind();
        let shape_ok = match field_kind {
            Kind::Index => probe.layers.is_none() && probe.config.is_none(),
            Kind::Image => probe.manifests.is_none(),
            Kind::Schema1 | Kind::Unknown => true,
        };
        if !shape_ok {
            return Err(ManifestError::Ambiguous(
                "mediaType",
                "a body of another kind",
            ));
        }
        if field_kind != Kind::Schema1 {
            return Ok(field_type);
        }
    }
    if let Some(h) = header {
        return Ok(h);
    }
    match probe.schema_version {
        Some(1) if probe.signatures.is_some() => Ok(MediaType::DockerV2S1Signed),
        Some(1) => Ok(MediaType::DockerV2S1),
        Some(2) | None if probe.manifests.is_some() => Ok(MediaType::OciIndex),
        Some(2) | None if probe.config.is_some() => Ok(MediaType::OciManifest),
        Some(v) if v != 2 => Err(ManifestError::SchemaVersion(v)),
        _ => Err(ManifestError::Unknown),
    }
}

fn is_manifest_type(m: &MediaType) -> bool {
    m.kind() != Kind::Unknown
        || (m.as_str().starts_with("application/vnd.") && m.as_str().ends_with("+json"))
}

#[cfg(test)]
mod tests;
