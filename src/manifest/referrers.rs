//! Referrers as data: what names a subject (its tag-schema tag, cosign's
//! tags), how a referrer is listed (its descriptor, with `artifactType`),
//! and the referrers index a registry without the API keeps under the
//! subject's tag-schema tag, merged without dropping anyone's entries.
//!
//! Owns the OCI 1.1 rules (distribution-spec "referrers tag schema":
//! `<alg>-<hex>`, truncated to 128 characters) and the artifact types
//! ocirepl gives cosign's tags. Never fetches anything.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{ManifestError, RawManifest};
use crate::digest::Digest;
use crate::media::{MediaType, OCI_INDEX};

/// The artifact type of cosign's `.sig` tag (its OCI 1.1 signatures use it).
pub const COSIGN_SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The artifact type given to cosign's `.att` tag (in-toto attestations).
pub const COSIGN_ATT: &str = "application/vnd.dev.cosign.artifact.att.v1+json";
/// The artifact type given to cosign's `.sbom` tag.
pub const COSIGN_SBOM: &str = "application/vnd.dev.cosign.artifact.sbom.v1+json";

/// A referrer as a referrers index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Map<String, Value>,
}

impl Listed {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "mediaType": self.media_type,
            "digest": self.digest.to_string(),
            "size": self.size,
        });
        if let Some(t) = &self.artifact_type {
            v["artifactType"] = Value::String(t.clone());
        }
        if !self.annotations.is_empty() {
            v["annotations"] = Value::Object(self.annotations.clone());
        }
        v
    }
}

/// The tag-schema tag of a subject: `sha256-<hex>`, at most 128 characters.
pub fn fallback_tag(subject: &Digest) -> String {
    let tag = format!("{}-{}", subject.algorithm().name(), subject.hex());
    tag.chars().take(128).collect()
}

/// Whether a tag is one of the tags that carry referrers rather than an
/// image: the tag schema's `sha256-<hex>` and cosign's `.sig`, `.att` and
/// `.sbom` beside it.
pub fn is_attachment_tag(tag: &str) -> bool {
    let base = [".sig", ".att", ".sbom"]
        .iter()
        .find_map(|s| tag.strip_suffix(s))
        .unwrap_or(tag);
    base.strip_prefix("sha256-")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// cosign's tags for a subject, with the artifact type each stands for.
pub fn cosign_tags(subject: &Digest) -> [(String, &'static str); 3] {
    let base = format!("{}-{}", subject.algorithm().name(), subject.hex());
    [
        (format!("{base}.sig"), COSIGN_SIG),
        (format!("{base}.att"), COSIGN_ATT),
        (format!("{base}.sbom"), COSIGN_SBOM),
    ]
}

/// The subject a manifest names, if it names one.
pub fn subject_of(m: &RawManifest) -> Option<Digest> {
    let v: Value = serde_json::from_slice(m.content()).ok()?;
    v.get("subject")?.get("digest")?.as_str()?.parse().ok()
}

/// How a referrer is listed: its `artifactType`, else its config's media
/// type (distribution-spec), and its annotations.
pub fn listed(m: &RawManifest) -> Result<Listed, ManifestError> {
    let v: Value =
        serde_json::from_slice(m.content()).map_err(|e| ManifestError::Json(e.to_string()))?;
    let artifact_type = v
        .get("artifactType")
        .and_then(Value::as_str)
        .or_else(|| v.get("config")?.get("mediaType")?.as_str())
        .map(str::to_string);
    let annotations = v
        .get("annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    Ok(Listed {
        media_type: m.media_type.to_string(),
        digest: m.digest.clone(),
        size: m.size(),
        artifact_type,
        annotations,
    })
}

/// The entries of a referrers index (an API answer or a tag-schema tag).
pub fn entries(index: &[u8]) -> Result<Vec<Listed>, ManifestError> {
    let v: Value = serde_json::from_slice(index).map_err(|e| ManifestError::Json(e.to_string()))?;
    let list = v
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or(ManifestError::Unknown)?;
    list.iter()
        .map(|e| {
            let digest = e
                .get("digest")
                .and_then(Value::as_str)
                .ok_or(ManifestError::Unknown)?
                .parse::<Digest>()
                .map_err(|err| ManifestError::Json(err.to_string()))?;
            Ok(Listed {
                media_type: e
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                size: e
                    .get("size")
                    .and_then(Value::as_u64)
                    .ok_or(ManifestError::Unknown)?,
                artifact_type: e
                    .get("artifactType")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                annotations: e
                    .get("annotations")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                digest,
            })
        })
        .collect()
}

/// The tag-schema index with `add` merged in: every existing entry kept
/// (whoever wrote it), new ones appended. `None` when nothing changed, so
/// that an unchanged index is never written again.
pub fn merged(
    existing: Option<&RawManifest>,
    add: &[Listed],
) -> Result<Option<RawManifest>, ManifestError> {
    let mut doc: Value = match existing {
        Some(m) => {
            serde_json::from_slice(m.content()).map_err(|e| ManifestError::Json(e.to_string()))?
        }
        None => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
    };
    let list = doc
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or(ManifestError::Unknown)?;
    let mut changed = false;
    for l in add {
        let d = l.digest.to_string();
        if !list
            .iter()
            .any(|e| e.get("digest").and_then(Value::as_str) == Some(d.as_str()))
        {
            list.push(l.to_json());
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    let bytes = serde_json::to_vec(&doc).map_err(|e| ManifestError::Json(e.to_string()))?;
    Ok(Some(RawManifest::generated(
        Bytes::from(bytes),
        MediaType::OciIndex,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;

    fn manifest(json: &str) -> RawManifest {
        RawManifest::from_body(Bytes::from(json.to_string()), None, Algorithm::Sha256).unwrap()
    }

    #[test]
    fn names_of_a_subject() {
        let d = Digest::sha256(b"x");
        assert_eq!(fallback_tag(&d), format!("sha256-{}", d.hex()));
        assert!(cosign_tags(&d)[0].0.ends_with(".sig"));
        let long = format!("sha512:{}", "a".repeat(128))
            .parse::<Digest>()
            .unwrap();
        assert_eq!(fallback_tag(&long).len(), 128);
    }

    #[test]
    fn a_referrer_is_listed_with_its_type_and_annotations() {
        let subject = Digest::sha256(b"image");
        let sbom = manifest(&format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{e}","size":2}},"layers":[],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{subject}","size":10}},"annotations":{{"org.example":"x"}}}}"#,
            e = Digest::sha256(b"{}")
        ));
        assert_eq!(subject_of(&sbom), Some(subject));
        let l = listed(&sbom).unwrap();
        assert_eq!(l.artifact_type.as_deref(), Some("application/spdx+json"));
        assert_eq!(l.annotations["org.example"], "x");
    }

    #[test]
    fn merging_keeps_every_entry_and_writes_only_on_change() {
        let one = Listed {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: Digest::sha256(b"1"),
            size: 1,
            artifact_type: Some("a".into()),
            annotations: Map::new(),
        };
        let two = Listed {
            digest: Digest::sha256(b"2"),
            ..one.clone()
        };
        let first = merged(None, std::slice::from_ref(&one)).unwrap().unwrap();
        assert!(
            merged(Some(&first), std::slice::from_ref(&one))
                .unwrap()
                .is_none()
        );
        let both = merged(Some(&first), &[two.clone(), one.clone()])
            .unwrap()
            .unwrap();
        assert_eq!(entries(both.content()).unwrap(), vec![one, two]);
    }
}
