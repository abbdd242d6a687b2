//! Docker → OCI by media types only (`--format oci`): the same config and
//! layer bytes, described with OCI media types, so digests of blobs stay and
//! the manifests' own digests change.
//!
//! Owns the media-type mapping. Never touches blob bytes.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::Value;

use super::{ManifestError, RawManifest};
use crate::digest::Digest;
use crate::media::{self, MediaType};

/// A converted child: its new digest, size and media type, by old digest.
pub type Remap = HashMap<Digest, (Digest, u64, String)>;

fn oci_blob_type(docker: &str) -> Option<&'static str> {
    Some(match docker {
        media::DOCKER_CONFIG => media::OCI_CONFIG,
        media::DOCKER_LAYER_GZIP => media::OCI_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        media::DOCKER_FOREIGN_LAYER => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        }
        _ => return None,
    })
}

/// Rewrites a Docker v2s2 manifest or manifest list (children already
/// converted, listed in `remap`) with OCI media types. Anything already OCI
/// comes back unchanged.
pub fn to_oci(m: &RawManifest, remap: &Remap) -> Result<RawManifest, ManifestError> {
    let (target, list_key) = match m.media_type {
        MediaType::DockerV2S2 => (MediaType::OciManifest, None),
        MediaType::DockerList => (MediaType::OciIndex, Some("manifests")),
        _ => return Ok(m.clone()),
    };
    let mut doc: Value =
        serde_json::from_slice(&m.bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    doc["mediaType"] = Value::String(target.as_str().to_string());
    let retype = |d: &mut Value| {
        if let Some(t) = d
            .get("mediaType")
            .and_then(Value::as_str)
            .and_then(oci_blob_type)
        {
            d["mediaType"] = Value::String(t.to_string());
        }
    };
    match list_key {
        None => {
            if let Some(c) = doc.get_mut("config") {
                retype(c);
            }
            if let Some(Value::Array(layers)) = doc.get_mut("layers") {
                layers.iter_mut().for_each(retype);
            }
        }
        Some(key) => {
            if let Some(Value::Array(entries)) = doc.get_mut(key) {
                for e in entries {
                    let old = e
                        .get("digest")
                        .and_then(Value::as_str)
                        .and_then(|d| d.parse::<Digest>().ok());
                    if let Some((digest, size, media_type)) = old.and_then(|d| remap.get(&d)) {
                        e["digest"] = Value::String(digest.to_string());
                        e["size"] = Value::from(*size);
                        e["mediaType"] = Value::String(media_type.clone());
                    }
                }
            }
        }
    }
    let bytes =
        Bytes::from(serde_json::to_vec(&doc).map_err(|e| ManifestError::Json(e.to_string()))?);
    Ok(RawManifest::generated(bytes, target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;

    #[test]
    fn docker_image_and_list_become_oci() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let image = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":1,"digest":"{}"}},"layers":[{{"mediaType":"{}","size":2,"digest":"{}"}},{{"mediaType":"{}","size":3,"digest":"{}","urls":["https://x/y"]}}]}}"#,
            media::DOCKER_V2S2,
            media::DOCKER_CONFIG,
            d('1'),
            media::DOCKER_LAYER_GZIP,
            d('2'),
            media::DOCKER_FOREIGN_LAYER,
            d('3')
        );
        let raw = RawManifest::from_body(Bytes::from(image), None, Algorithm::Sha256).unwrap();
        let oci = to_oci(&raw, &Remap::new()).unwrap();
        assert_eq!(oci.media_type, MediaType::OciManifest);
        let v: Value = serde_json::from_slice(&oci.bytes).unwrap();
        assert_eq!(v["config"]["mediaType"], media::OCI_CONFIG);
        assert_eq!(v["config"]["digest"], d('1'), "blob digests stay");
        assert_eq!(v["layers"][0]["mediaType"], media::OCI_LAYER_GZIP);
        assert_eq!(
            v["layers"][1]["mediaType"],
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        );
        assert_eq!(v["layers"][1]["urls"][0], "https://x/y");

        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","size":{},"digest":"{}","platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            media::DOCKER_LIST,
            media::DOCKER_V2S2,
            raw.size(),
            raw.digest
        );
        let list = RawManifest::from_body(Bytes::from(list), None, Algorithm::Sha256).unwrap();
        let remap = Remap::from([(
            raw.digest.clone(),
            (
                oci.digest.clone(),
                oci.size(),
                media::OCI_MANIFEST.to_string(),
            ),
        )]);
        let idx = to_oci(&list, &remap).unwrap();
        assert_eq!(idx.media_type, MediaType::OciIndex);
        let v: Value = serde_json::from_slice(&idx.bytes).unwrap();
        assert_eq!(v["manifests"][0]["digest"], oci.digest.to_string());
        assert_eq!(v["manifests"][0]["mediaType"], media::OCI_MANIFEST);
        assert_eq!(v["manifests"][0]["platform"]["architecture"], "amd64");
        // OCI input is left alone.
        assert_eq!(to_oci(&oci, &Remap::new()).unwrap(), oci);
    }
}
