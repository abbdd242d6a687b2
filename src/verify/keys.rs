//! What verification trusts: public keys (PEM: ECDSA P-256 and P-384,
//! Ed25519, RSA) and Sigstore trusted roots (Fulcio CAs, Rekor and CT log
//! keys, as `trusted_root.json` lists them; the public-good one is
//! embedded, so that verification works in an air gap).
//!
//! Owns reading them from bytes the app read from files, with an error
//! that names the file. Never opens a file.

use sigstore_verify::crypto::verification::VerificationKey;
use sigstore_verify::trust_root::{SIGSTORE_PRODUCTION_TRUSTED_ROOT, TrustedRoot};
use sigstore_verify::types::DerPublicKey;

/// A public key signatures may be made with.
#[derive(Debug, Clone)]
pub struct Key {
    /// The file it came from (for reports).
    pub name: String,
    pub der: DerPublicKey,
}

/// Why a key or trusted root cannot be used (a usage error: exit 2).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{name}: {why}")]
pub struct KeyError {
    pub name: String,
    pub why: String,
}

impl Key {
    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`), of a kind cosign
    /// signs with.
    pub fn from_pem(name: &str, pem: &str) -> Result<Key, KeyError> {
        let bad = |why: String| KeyError {
            name: name.to_string(),
            why,
        };
        let der =
            DerPublicKey::from_pem(pem).map_err(|e| bad(format!("not a PEM public key: {e}")))?;
        VerificationKey::from_spki(&der).map_err(|e| {
            bad(format!(
                "not a key ocirepl verifies with (ECDSA P-256 or P-384, Ed25519, RSA): {e}"
            ))
        })?;
        Ok(Key {
            name: name.to_string(),
            der,
        })
    }
}

/// A Sigstore trusted root, prepared for verification.
pub struct Root {
    pub name: String,
    pub(super) verifier: sigstore_verify::Verifier,
}

impl std::fmt::Debug for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Root({})", self.name)
    }
}

impl Root {
    /// The Sigstore public-good instance's root, as `sigstore-verify`
    /// ships it.
    pub fn public_good() -> Result<Root, KeyError> {
        Root::from_json(
            "the embedded Sigstore public-good trusted root",
            SIGSTORE_PRODUCTION_TRUSTED_ROOT,
        )
    }

    /// A root that trusts nothing: for keys without a transparency log,
    /// where the key alone decides and no CA or log is consulted.
    pub fn none() -> Result<Root, KeyError> {
        Root::from_json(
            "no trusted root",
            r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#,
        )
    }

    /// A `trusted_root.json`.
    pub fn from_json(name: &str, json: &str) -> Result<Root, KeyError> {
        let bad = |why: String| KeyError {
            name: name.to_string(),
            why,
        };
        let root = TrustedRoot::from_json(json)
            .map_err(|e| bad(format!("not a Sigstore trusted root: {e}")))?;
        let verifier = sigstore_verify::Verifier::new(&root)
            .map_err(|e| bad(format!("unusable trusted root: {e}")))?;
        Ok(Root {
            name: name.to_string(),
            verifier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_roots_say_what_is_wrong_with_them() {
        let e = Key::from_pem("k.pub", "not a key").unwrap_err();
        assert!(e.to_string().starts_with("k.pub: "), "{e}");
        let e = Root::from_json("root.json", "{}").unwrap_err();
        assert!(e.to_string().starts_with("root.json: "), "{e}");
        assert!(Root::public_good().is_ok());
        assert!(Root::none().is_ok());
    }
}
