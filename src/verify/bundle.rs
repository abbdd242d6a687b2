//! cosign v3's signatures: a Sigstore bundle (v0.3) stored as an OCI 1.1
//! referrer of the image. cosign signs a DSSE envelope over an in-toto
//! statement whose subject is the image digest and whose predicate type is
//! `https://sigstore.dev/cosign/sign/v1`; `sigstore-verify` checks the
//! envelope, the certificate or key, the transparency log and that the
//! subject is the digest.
//!
//! Owns what cosign leaves out: only a signature's predicate type counts
//! (`cosign verify` takes any attestation for a signature; this does not,
//! unless a job names another predicate),
//! and the identity and issuer matched with the config's patterns.

use sigstore_verify::types::{Bundle, Sha256Hash, SignatureContent};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, VerificationResult};

use super::{Matcher, Policy};
use crate::digest::{Algorithm, Digest};

/// Who signed `image` with this bundle, if `policy` accepts it.
pub(super) fn verify(
    image: &Digest,
    json: &[u8],
    policy: &Policy,
    predicate_wanted: &str,
) -> Result<String, String> {
    let text = std::str::from_utf8(json).map_err(|_| "the bundle is not UTF-8")?;
    let bundle = Bundle::from_json(text).map_err(|e| format!("not a Sigstore bundle: {e}"))?;
    if let SignatureContent::DsseEnvelope(env) = &bundle.content {
        let statement: serde_json::Value = serde_json::from_slice(env.payload.as_bytes())
            .map_err(|e| format!("the DSSE payload is not an in-toto statement: {e}"))?;
        let predicate = statement["predicateType"].as_str().unwrap_or("");
        if predicate != predicate_wanted {
            return Err(format!(
                "an attestation ({:?}), not a signature ({predicate_wanted})",
                predicate.escape_debug().to_string()
            ));
        }
    }
    if image.algorithm() != Algorithm::Sha256 {
        return Err(format!("{image}: bundles sign SHA-256 digests"));
    }
    let artifact = Sha256Hash::from_hex(image.hex()).map_err(|e| e.to_string())?;
    match policy {
        Policy::Keys { keys, tlog, root } => {
            for key in keys {
                let mut p = PublicKeyVerificationPolicy::new(key.der.clone());
                if !tlog {
                    p = p.skip_tlog_unsafe();
                }
                if root.verifier.verify(artifact, &bundle, &p).is_ok() {
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
            let mut p = VerificationPolicy::any_identity();
            if !sct {
                p = p.skip_sct();
            }
            let result = root
                .verifier
                .verify(artifact, &bundle, &p)
                .map_err(|e| format!("not verified: {e}"))?;
            identity(&result, issuer, subject)
        }
    }
}

/// The certificate's identity and issuer, if they are the ones asked for.
pub(super) fn identity(
    result: &VerificationResult,
    issuer: &Matcher,
    subject: &Matcher,
) -> Result<String, String> {
    let who = result
        .identity()
        .map(|i| i.as_str().to_string())
        .unwrap_or_default();
    let from = result.issuer().unwrap_or_default().to_string();
    // A certificate that names no identity or issuer matches no pattern,
    // not even `*`.
    if who.is_empty() || from.is_empty() {
        return Err(format!(
            "the certificate names no {}",
            if who.is_empty() { "identity" } else { "issuer" }
        ));
    }
    if !(issuer.test)(&from) {
        return Err(format!(
            "signed by {who:?} from issuer {from:?}, not issuer {:?}",
            issuer.text
        ));
    }
    if !(subject.test)(&who) {
        return Err(format!(
            "signed by {who:?}, not {:?} (issuer {from:?})",
            subject.text
        ));
    }
    Ok(format!("{who} (issuer {from})"))
}
