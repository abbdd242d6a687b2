//! Index rewriting, by plan only: keeping the children of an index that
//! match a platform selection (with their attestations), and wrapping a
//! single image in a one-entry index.
//!
//! Owns the rules for what a filtered index keeps and how it says where it
//! came from (annotations in our namespace). Never touches the network:
//! callers hand it manifests and platforms.

use std::collections::HashSet;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{Descriptor, Index, ManifestError, RawManifest};
use crate::digest::Digest;
use crate::media::{self, MediaType};
use crate::platform::Platform;

/// Annotation on a rewritten index: the digest of the index it came from.
pub const SOURCE_DIGEST: &str = "dev.ocirepl.source.digest";
/// Annotation on a filtered index: the platforms left out, comma-separated.
pub const DROPPED_PLATFORMS: &str = "dev.ocirepl.dropped-platforms";
/// buildx marks attestation entries with these annotations.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

/// What a platform selection keeps of an index.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Entries kept, in source order (attestations of kept images included).
    pub kept: Vec<Descriptor>,
    /// Platforms of the image entries left out.
    pub dropped: Vec<String>,
    /// Platforms of every image entry, for messages.
    pub available: Vec<String>,
}

impl Selection {
    /// Image entries kept (attestations and platform-less entries aside).
    pub fn kept_images(&self) -> Vec<&Descriptor> {
        self.kept
            .iter()
            .filter(|d| attestation_of(d).is_none() && d.platform.is_some())
            .collect()
    }
}

/// The image a buildx attestation entry describes, if this is one.
pub fn attestation_of(d: &Descriptor) -> Option<&str> {
    (d.annotations.get(REFERENCE_TYPE).map(String::as_str) == Some("attestation-manifest"))
        .then(|| d.annotations.get(REFERENCE_DIGEST).map(String::as_str))
        .flatten()
}

/// Keeps the entries whose platform matches any of `wanted`; entries
/// without a platform (nested indexes, artifacts) are kept; attestations are
/// kept exactly when the image they describe is.
pub fn select(index: &Index, wanted: &[Platform]) -> Selection {
    let mut sel = Selection::default();
    let mut kept_images: HashSet<String> = HashSet::new();
    for d in &index.manifests {
        if attestation_of(d).is_some() {
            continue;
        }
        match &d.platform {
            Some(p) => {
                sel.available.push(p.to_string());
                if wanted.iter().any(|w| w.matches(p)) {
                    kept_images.insert(d.digest.to_string());
                } else {
                    sel.dropped.push(p.to_string());
                }
            }
            None => {
                kept_images.insert(d.digest.to_string());
            }
        }
    }
    sel.kept = index
        .manifests
        .iter()
        .filter(|d| match attestation_of(d) {
            Some(subject) => kept_images.contains(subject),
            None => kept_images.contains(&d.digest.to_string()),
        })
        .cloned()
        .collect();
    sel
}

/// A new index holding only the `keep` entries of `source`, in source
/// order, every other field as it was, with annotations naming the source
/// digest and the dropped platforms.
pub fn filtered(
    source: &RawManifest,
    keep: &HashSet<Digest>,
    dropped: &[String],
) -> Result<RawManifest, ManifestError> {
    let mut doc: Value =
        serde_json::from_slice(&source.bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    let obj = doc.as_object_mut().ok_or(ManifestError::Unknown)?;
    if let Some(Value::Array(entries)) = obj.get_mut("manifests") {
        entries.retain(|e| {
            e.get("digest")
                .and_then(Value::as_str)
                .and_then(|d| d.parse::<Digest>().ok())
                .is_some_and(|d| keep.contains(&d))
        });
    }
    let annotations = obj
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(a) = annotations {
        a.insert(
            SOURCE_DIGEST.into(),
            Value::String(source.digest.to_string()),
        );
        a.insert(DROPPED_PLATFORMS.into(), Value::String(dropped.join(",")));
    }
    serialise(&doc, source.media_type.clone())
}

/// A one-entry index around an image manifest (an OCI index for an OCI
/// image, a Docker manifest list for a Docker one).
pub fn wrap(image: &RawManifest, platform: &Platform) -> Result<RawManifest, ManifestError> {
    let media_type = match image.media_type {
        MediaType::DockerV2S2 => MediaType::DockerList,
        _ => MediaType::OciIndex,
    };
    let mut entry = json!({
        "mediaType": image.media_type.as_str(),
        "digest": image.digest.to_string(),
        "size": image.size(),
        "platform": platform,
    });
    if media_type == MediaType::DockerList {
        // Docker lists carry no annotations; OCI indexes name the source.
        return serialise(
            &json!({"schemaVersion": 2, "mediaType": media::DOCKER_LIST, "manifests": [entry]}),
            media_type,
        );
    }
    entry["annotations"] = json!({ SOURCE_DIGEST: image.digest.to_string() });
    serialise(
        &json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [entry]}),
        media_type,
    )
}

/// An index of `entries` with `annotations` on the outer index (`index create`).
pub fn assemble(
    entries: &[(RawManifest, Platform)],
    annotations: &[(String, String)],
) -> Result<RawManifest, ManifestError> {
    let all_docker = entries
        .iter()
        .all(|(m, _)| m.media_type == MediaType::DockerV2S2);
    let media_type = if all_docker && annotations.is_empty() {
        MediaType::DockerList
    } else {
        MediaType::OciIndex
    };
    let manifests: Vec<Value> = entries
        .iter()
        .map(|(m, p)| {
            json!({
                "mediaType": m.media_type.as_str(),
                "digest": m.digest.to_string(),
                "size": m.size(),
                "platform": p,
            })
        })
        .collect();
    let mut doc =
        json!({"schemaVersion": 2, "mediaType": media_type.as_str(), "manifests": manifests});
    if !annotations.is_empty() {
        let map: Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        doc["annotations"] = Value::Object(map);
    }
    serialise(&doc, media_type)
}

fn serialise(doc: &Value, media_type: MediaType) -> Result<RawManifest, ManifestError> {
    let bytes = serde_json::to_vec(doc).map_err(|e| ManifestError::Json(e.to_string()))?;
    Ok(RawManifest::generated(Bytes::from(bytes), media_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn index_json() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":2,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":3,"platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":4,"platform":{{"os":"unknown","architecture":"unknown"}},
              "annotations":{{"vnd.docker.reference.type":"attestation-manifest","vnd.docker.reference.digest":"{}"}}}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":5,"platform":{{"os":"unknown","architecture":"unknown"}},
              "annotations":{{"vnd.docker.reference.type":"attestation-manifest","vnd.docker.reference.digest":"{}"}}}}
            ],"annotations":{{"org.example":"kept"}}}}"#,
            d(1),
            d(2),
            d(3),
            d(4),
            d(1),
            d(5),
            d(2)
        )
    }

    fn raw(s: &str) -> RawManifest {
        RawManifest::from_body(Bytes::from(s.to_string()), None, Algorithm::Sha256).unwrap()
    }

    fn platforms(s: &[&str]) -> Vec<Platform> {
        s.iter().map(|p| Platform::parse(p).unwrap()).collect()
    }

    #[test]
    fn selection_keeps_matches_and_their_attestations() {
        let source = raw(&index_json());
        let crate::manifest::Parsed::Index(index) = source.parse().unwrap() else {
            panic!()
        };
        let sel = select(&index, &platforms(&["linux/amd64"]));
        let kept: Vec<String> = sel.kept.iter().map(|k| k.digest.to_string()).collect();
        assert_eq!(
            kept,
            vec![d(1), d(4)],
            "amd64 and its attestation, in order"
        );
        assert_eq!(sel.dropped, vec!["linux/arm64/v8", "linux/arm/v7"]);
        assert_eq!(sel.kept_images().len(), 1);

        let sel = select(&index, &platforms(&["linux/arm64", "linux/arm/v7"]));
        let kept: Vec<String> = sel.kept.iter().map(|k| k.digest.to_string()).collect();
        assert_eq!(kept, vec![d(2), d(3), d(5)]);
        assert!(
            select(&index, &platforms(&["windows/amd64"]))
                .kept
                .is_empty()
        );
    }

    #[test]
    fn filtered_index_is_new_and_says_where_it_came_from() {
        let source = raw(&index_json());
        let keep: HashSet<Digest> = [d(1), d(4)].iter().map(|s| s.parse().unwrap()).collect();
        let out = filtered(
            &source,
            &keep,
            &["linux/arm64/v8".into(), "linux/arm/v7".into()],
        )
        .unwrap();
        assert_ne!(out.digest, source.digest);
        assert_eq!(out.digest, Digest::sha256(&out.bytes));
        let v: Value = serde_json::from_slice(&out.bytes).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(v["annotations"]["org.example"], "kept");
        assert_eq!(v["annotations"][SOURCE_DIGEST], source.digest.to_string());
        assert_eq!(
            v["annotations"][DROPPED_PLATFORMS],
            "linux/arm64/v8,linux/arm/v7"
        );
        // Key order of the source is kept (preserve_order).
        let text = String::from_utf8(out.bytes.to_vec()).unwrap();
        assert!(
            text.starts_with(r#"{"schemaVersion":2,"mediaType""#),
            "{text}"
        );
        // Deterministic: same input, same digest.
        let again = filtered(
            &source,
            &keep,
            &["linux/arm64/v8".into(), "linux/arm/v7".into()],
        )
        .unwrap();
        assert_eq!(again.digest, out.digest);
    }

    #[test]
    fn wrap_and_assemble() {
        let image = raw(&format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"x","digest":"{}","size":1}},"layers":[]}}"#,
            d(9)
        ));
        let p = Platform::parse("linux/arm/v7").unwrap();
        let w = wrap(&image, &p).unwrap();
        assert_eq!(w.media_type, MediaType::DockerList);
        let v: Value = serde_json::from_slice(&w.bytes).unwrap();
        assert_eq!(v["manifests"][0]["digest"], image.digest.to_string());
        assert_eq!(v["manifests"][0]["platform"]["variant"], "v7");
        assert_eq!(v["manifests"][0]["size"], image.size());

        let idx = assemble(
            &[(image.clone(), p.clone())],
            &[("org.opencontainers.image.version".into(), "1".into())],
        )
        .unwrap();
        assert_eq!(
            idx.media_type,
            MediaType::OciIndex,
            "annotations need an OCI index"
        );
        let v: Value = serde_json::from_slice(&idx.bytes).unwrap();
        assert_eq!(v["annotations"]["org.opencontainers.image.version"], "1");
        assert_eq!(
            assemble(&[(image, p)], &[]).unwrap().media_type,
            MediaType::DockerList
        );
    }
}
