//! Signatures made the way cosign makes them, for images in a real
//! registry: keys generated here, the simple-signing payload, the `.sig`
//! manifest under cosign's tag, and Sigstore bundle v0.3 referrers. Written
//! from cosign's published layout, independently of `src/verify` (which
//! must accept them).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::json;

use super::image::OCI_MANIFEST;
use super::{put_manifest_raw, sha256, upload_blob};

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// A cosign key pair (ECDSA P-256, as `cosign generate-key-pair` makes).
pub struct KeyPair {
    key: SigningKey,
    pub public_pem: String,
}

impl KeyPair {
    pub fn generate() -> KeyPair {
        let kp = rcgen::KeyPair::generate().expect("key pair");
        let key = SigningKey::from_pkcs8_pem(&kp.serialize_pem()).expect("p256 key");
        let public_pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("public PEM");
        KeyPair { key, public_pem }
    }

    /// Writes the public key as `DIR/NAME`, as a user keeps `cosign.pub`.
    pub fn write_public(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.public_pem).expect("write the public key");
        path
    }

    /// DER ECDSA over SHA-256 of `data`, base64 (cosign's annotation).
    pub fn sign(&self, data: &[u8]) -> String {
        let sig: p256::ecdsa::Signature = self.key.sign(data);
        base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
    }
}

/// The simple-signing payload cosign signs for `digest`, named as
/// `reference` (HOST/REPO).
pub fn payload(reference: &str, digest: &str) -> Vec<u8> {
    json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

/// One signature layer: the payload and the layer's annotations.
pub struct Layer {
    pub payload: Vec<u8>,
    pub annotations: serde_json::Map<String, serde_json::Value>,
}

impl Layer {
    /// `key`'s signature of `digest` (named `reference`).
    pub fn keyed(key: &KeyPair, reference: &str, digest: &str) -> Layer {
        let payload = payload(reference, digest);
        let mut annotations = serde_json::Map::new();
        annotations.insert(SIGNATURE.into(), key.sign(&payload).into());
        Layer {
            payload,
            annotations,
        }
    }
}

/// cosign's tag for the signatures of `digest`.
pub fn sig_tag(digest: &str) -> String {
    format!("sha256-{}.sig", &digest["sha256:".len()..])
}

/// Pushes a legacy signature manifest (a simple-signing layer per
/// signature, cosign's config) under `sha256-<hex>.sig` in `host/repo`;
/// returns its digest.
pub fn push_sig(host: &str, repo: &str, digest: &str, layers: &[Layer]) -> String {
    let m = sig_manifest(host, repo, layers);
    put_manifest_raw(host, repo, &sig_tag(digest), OCI_MANIFEST, m.as_bytes());
    sha256(m.as_bytes())
}

/// The `.sig` manifest for these layers, its blobs uploaded.
pub fn sig_manifest(host: &str, repo: &str, layers: &[Layer]) -> String {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        let d = upload_blob(host, repo, &l.payload);
        diff_ids.push(d.clone());
        descriptors.push(json!({
            "mediaType": SIMPLE_SIGNING,
            "size": l.payload.len(),
            "digest": d,
            "annotations": l.annotations,
        }));
    }
    let config = json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    })
    .to_string();
    let config_d = upload_blob(host, repo, config.as_bytes());
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_d},
        "layers": descriptors,
    })
    .to_string()
}
