//! Legacy cosign signatures: a layer of the `sha256-<hex>.sig` manifest
//! (or of the same manifest as a referrer). Its blob is the simple-signing
//! payload, which names the image digest; its annotations hold the
//! signature over the payload, and for keyless signatures the Fulcio
//! certificate, its chain and the Rekor bundle (the signed entry timestamp
//! that proves when it was signed).
//!
//! Owns cosign's side: the payload's claims, read strictly (exact keys,
//! no duplicates, no trailing bytes; cosign is laxer, which can only make
//! this stricter), and turning the annotations into the Sigstore bundle
//! (v0.1: a message signature and a Rekor entry with its SET) that
//! `sigstore-verify` checks. A keyed signature without a Rekor entry is
//! checked with the key alone, where the policy allows it.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::Policy;
use crate::digest::Digest;
use sigstore_verify::crypto::signing::SigningScheme;
use sigstore_verify::crypto::verification::VerificationKey;
use sigstore_verify::types::{Bundle, DerCertificate, SignatureBytes};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy};

const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
const CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
const CHAIN: &str = "dev.sigstore.cosign/chain";
const REKOR_BUNDLE: &str = "dev.sigstore.cosign/bundle";
/// What `critical.type` must say.
const CLAIM_TYPE: &str = "cosign container image signature";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    critical: Critical,
    #[serde(default)]
    #[allow(dead_code)]
    optional: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    #[allow(dead_code)]
    identity: serde_json::Value,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// Rekor's bundle annotation, as cosign writes it.
#[derive(Deserialize)]
struct RekorBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    set: String,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

#[derive(Deserialize)]
struct RekorPayload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logIndex")]
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// Who signed `image` with this payload and annotations, if `policy`
/// accepts it.
pub(super) fn verify(
    image: &Digest,
    payload: &[u8],
    annotations: &BTreeMap<String, String>,
    policy: &Policy,
) -> Result<String, String> {
    claims(image, payload)?;
    let signature = annotations
        .get(SIGNATURE)
        .ok_or("no signature annotation")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|e| format!("the signature is not base64: {e}"))?;
    let rekor = annotations.get(REKOR_BUNDLE);
    match policy {
        Policy::Keys { keys, tlog, root } => {
            for key in keys {
                // Without `tlog`, the key alone decides, even where a
                // Rekor bundle is attached (its log may be a private one
                // the trusted root does not name).
                let ok = match (rekor, *tlog) {
                    (Some(r), true) => {
                        let bundle = bundle(payload, signature, Material::Key, r)?;
                        let p = PublicKeyVerificationPolicy::new(key.der.clone());
                        root.verifier.verify(payload, &bundle, &p).is_ok()
                    }
                    (None, true) => {
                        return Err(
                            "not in a transparency log (no Rekor bundle), which the policy requires"
                                .into(),
                        );
                    }
                    (_, false) => signed_by(&key.der, payload, &raw),
                };
                if ok {
                    return Ok(key.name.clone());
                }
            }
            Err("not signed by these keys".into())
        }
        Policy::Keyless {
            issuer,
            subject,
            root,
            sct,
        } => {
            let cert = annotations
                .get(CERTIFICATE)
                .ok_or("no certificate: a keyed signature, not a keyless one")?;
            let rekor =
                rekor.ok_or("keyless, but no Rekor bundle: no proof of when it was signed")?;
            let mut chain = pem_certificates(cert)?;
            if let Some(more) = annotations.get(CHAIN) {
                chain.extend(pem_certificates(more)?);
            }
            let bundle = bundle(payload, signature, Material::Chain(chain), rekor)?;
            let mut p = VerificationPolicy::any_identity();
            if !sct {
                p = p.skip_sct();
            }
            let result = root
                .verifier
                .verify(payload, &bundle, &p)
                .map_err(|e| format!("not verified: {e}"))?;
            super::bundle::identity(&result, issuer, subject)
        }
    }
}

/// The payload names this image, and is a cosign image signature.
fn claims(image: &Digest, payload: &[u8]) -> Result<(), String> {
    let p: Payload = serde_json::from_slice(payload)
        .map_err(|e| format!("the payload is not a cosign simple-signing payload: {e}"))?;
    if p.critical.kind != CLAIM_TYPE {
        return Err(format!(
            "the payload is a {:?}, not a {CLAIM_TYPE:?}",
            p.critical.kind
        ));
    }
    if p.critical.image.digest != image.to_string() {
        return Err(format!(
            "a signature over another digest ({})",
            p.critical.image.digest.escape_debug()
        ));
    }
    Ok(())
}

/// A keyed signature checked with the key alone: cosign signs P-384 with
/// SHA-384 but verifies with SHA-256 by default, so both are tried.
fn signed_by(key: &sigstore_verify::types::DerPublicKey, payload: &[u8], signature: &[u8]) -> bool {
    let Ok(k) = VerificationKey::from_spki(key) else {
        return false;
    };
    let sig = SignatureBytes::new(signature.to_vec());
    if k.verify(payload, &sig).is_ok() {
        return true;
    }
    k.scheme() == SigningScheme::EcdsaP384Sha384
        && VerificationKey::from_der(key, SigningScheme::EcdsaP384Sha256)
            .is_ok_and(|k| k.verify(payload, &sig).is_ok())
}

enum Material {
    Key,
    Chain(Vec<DerCertificate>),
}

/// The Sigstore bundle (v0.1) a legacy signature amounts to.
fn bundle(
    payload: &[u8],
    signature: &str,
    material: Material,
    rekor: &str,
) -> Result<Bundle, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let r: RekorBundle = serde_json::from_str(rekor)
        .map_err(|e| format!("the Rekor bundle annotation is unreadable: {e}"))?;
    let body = b64
        .decode(r.payload.body.trim())
        .map_err(|e| format!("the Rekor entry is not base64: {e}"))?;
    let entry: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("the Rekor entry is not JSON: {e}"))?;
    let kind = entry["kind"].as_str().unwrap_or("hashedrekord");
    let version = entry["apiVersion"].as_str().unwrap_or("0.0.1");
    let log_id = hex::decode(&r.payload.log_id).map_err(|e| format!("the Rekor log ID: {e}"))?;
    let content = match material {
        Material::Key => json!({"publicKey": {"hint": ""}}),
        Material::Chain(certs) => json!({"x509CertificateChain": {
            "certificates": certs.iter().map(|c| json!({"rawBytes": b64.encode(c.as_bytes())})).collect::<Vec<_>>()
        }}),
    };
    let mut material = content;
    material["tlogEntries"] = json!([{
        "logIndex": r.payload.log_index.to_string(),
        "logId": {"keyId": b64.encode(log_id)},
        "kindVersion": {"kind": kind, "version": version},
        "integratedTime": r.payload.integrated_time.to_string(),
        "inclusionPromise": {"signedEntryTimestamp": r.set},
        "canonicalizedBody": r.payload.body,
    }]);
    let digest = <sha2::Sha256 as sha2::Digest>::digest(payload);
    let doc = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": material,
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64.encode(digest)},
            "signature": signature.trim(),
        },
    });
    Bundle::from_json(&doc.to_string()).map_err(|e| format!("not a usable signature: {e}"))
}

/// Every certificate of a PEM text (a leaf, or a chain).
fn pem_certificates(text: &str) -> Result<Vec<DerCertificate>, String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    for block in text
        .split_inclusive(END)
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
    {
        out.push(
            DerCertificate::from_pem(block.trim()).map_err(|e| format!("a certificate: {e}"))?,
        );
    }
    if out.is_empty() {
        return Err("no certificate in the PEM text".into());
    }
    Ok(out)
}
