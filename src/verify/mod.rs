//! Verify before mirror: whether an image digest is signed by a key or an
//! identity a policy trusts, as cosign signs images: the legacy
//! `sha256-<hex>.sig` manifest (a simple-signing payload per layer, its
//! signature, certificate, chain and Rekor bundle in annotations, `legacy`)
//! and cosign v3's Sigstore bundle v0.3 referrers (`bundle`).
//!
//! Pure code: bytes in (signatures the copy fetched, keys and trusted roots
//! the app read), a verdict out; no I/O. Certificates are judged at the
//! signatures' proven times (a log entry dated in the future is refused,
//! the one use of the clock). The signature maths, certificate chains, transparency-log
//! proofs (SET, inclusion proof, checkpoint) and SCTs are `sigstore-verify`'s
//! (Apache-2.0, offline with `default-features = false`: no HTTP client, no
//! OpenSSL; aws-lc-rs, already linked for TLS), chosen over hand-written
//! protocol code; what is cosign's own (its OCI layout, the simple-signing
//! claims, the predicate type) is here. Never fetches anything, and never
//! passes an image a signature does not bind to its exact digest.

mod bundle;
mod keys;
mod legacy;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;

use crate::digest::Digest;
pub use keys::{Key, KeyError, Root};

/// The media type of cosign v3's signature referrers (a Sigstore bundle).
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The layer media type of a legacy cosign signature.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The predicate type cosign v3 gives an image signature; other bundles
/// (attestations) are not signatures of the image.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// The most of a signature payload or bundle read: they are a few KiB.
pub const MAX_SIGNATURE_BYTES: u64 = 1024 * 1024;
/// Signatures examined for one image: a thousand is an attack, not a
/// supply chain.
pub const MAX_SIGNATURES: usize = 64;
/// Signature bytes read for one image, all signatures together.
pub const MAX_SIGNATURE_TOTAL: u64 = 16 * 1024 * 1024;

/// A text test from the config (`regex:…`, a glob, or exact), with how it
/// was written, for reports.
#[derive(Clone)]
pub struct Matcher {
    pub text: String,
    pub test: Arc<dyn Fn(&str) -> bool + Send + Sync>,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

/// One way an image may pass.
#[derive(Debug, Clone)]
pub enum Policy {
    /// Signed with one of these keys.
    Keys {
        keys: Vec<Key>,
        /// A signature must be in a transparency log the root trusts.
        tlog: bool,
        root: Arc<Root>,
    },
    /// Signed keylessly (Fulcio) by this identity, from this issuer.
    Keyless {
        issuer: Matcher,
        subject: Matcher,
        root: Arc<Root>,
        /// The certificate's SCT must verify with a CT log of the root.
        sct: bool,
    },
}

impl Policy {
    /// For reports: `keys acme.pub` or `keyless ISSUER SUBJECT`.
    pub fn describe(&self) -> String {
        match self {
            Policy::Keys { keys, .. } => {
                let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
                format!("keys {}", names.join(", "))
            }
            Policy::Keyless {
                issuer, subject, ..
            } => format!(
                "keyless issuer {:?} subject {:?}",
                issuer.text, subject.text
            ),
        }
    }
}

/// What to do with an image no policy passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnverified {
    /// Not copied; the run fails (exit 1).
    #[default]
    Fail,
    /// Not copied; the run does not fail.
    Skip,
}

/// What a job or a copy requires of its images.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// Any one passing is enough.
    pub policies: Vec<Policy>,
    pub on_unverified: OnUnverified,
    /// A platform-filtered copy: each kept child must be signed itself
    /// (cosign `--recursive`), not only the source index.
    pub children: bool,
    /// The in-toto predicate type a bundle must carry to count as a
    /// signature ([`COSIGN_SIGN_PREDICATE`] unless a job says otherwise).
    pub predicate: String,
}

impl Requirement {
    /// `policies`, failing on unverified images, root signatures covering a
    /// filtered copy, cosign's signature predicate.
    pub fn new(policies: Vec<Policy>) -> Requirement {
        Requirement {
            policies,
            on_unverified: OnUnverified::Fail,
            children: false,
            predicate: COSIGN_SIGN_PREDICATE.to_string(),
        }
    }
}

/// A [`Requirement`] as copy options carry it: shared by every image of
/// a job, equal only to itself (policies hold keys and verifiers, which
/// have no meaningful equality).
#[derive(Debug, Clone)]
pub struct Gate(pub Arc<Requirement>);

impl PartialEq for Gate {
    fn eq(&self, other: &Gate) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Gate {}

impl std::ops::Deref for Gate {
    type Target = Requirement;
    fn deref(&self) -> &Requirement {
        &self.0
    }
}

/// A signature found for an image, as fetched (bounded) from the source.
#[derive(Debug, Clone)]
pub enum Signature {
    /// One layer of a legacy cosign signature manifest.
    Legacy {
        /// The signature manifest's digest, for reports.
        manifest: Digest,
        payload: Bytes,
        annotations: std::collections::BTreeMap<String, String>,
    },
    /// A Sigstore bundle referrer's layer.
    Bundle { manifest: Digest, json: Bytes },
    /// A signature manifest that could not be read as one (too large, not
    /// a signature manifest, naming another subject): a reason, never a
    /// pass.
    Unreadable { manifest: Digest, why: String },
}

impl Signature {
    pub fn manifest(&self) -> &Digest {
        match self {
            Signature::Legacy { manifest, .. }
            | Signature::Bundle { manifest, .. }
            | Signature::Unreadable { manifest, .. } => manifest,
        }
    }
}

/// The verdict on one image digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Verified {
        /// Which policy passed (as written).
        policy: String,
        /// The key (its file) or the identity and issuer that signed.
        signer: String,
        /// The signature manifest that carried it.
        signature: Digest,
    },
    Unverified {
        why: String,
    },
}

/// Whether any policy passes `image` with any of `signatures`.
pub fn check(image: &Digest, signatures: &[Signature], requirement: &Requirement) -> Verdict {
    if signatures.len() > MAX_SIGNATURES {
        return Verdict::Unverified {
            why: format!(
                "{} signatures for {image}, more than the {MAX_SIGNATURES} examined: refused",
                signatures.len()
            ),
        };
    }
    let mut judgement = Judgement::new(image);
    for sig in signatures {
        if let Some(passed) = judgement.consider(sig, requirement) {
            return passed;
        }
    }
    judgement.verdict()
}

/// Signatures judged one at a time as they are read, so that a copy stops
/// reading at the first that passes.
pub struct Judgement<'a> {
    image: &'a Digest,
    examined: usize,
    reasons: Vec<String>,
}

impl<'a> Judgement<'a> {
    pub fn new(image: &'a Digest) -> Judgement<'a> {
        Judgement {
            image,
            examined: 0,
            reasons: Vec::new(),
        }
    }

    /// The verdict if `sig` passes a policy; otherwise its reasons are
    /// kept for the final verdict.
    pub fn consider(&mut self, sig: &Signature, requirement: &Requirement) -> Option<Verdict> {
        self.examined += 1;
        let image = self.image;
        for policy in &requirement.policies {
            let result = match sig {
                Signature::Legacy {
                    payload,
                    annotations,
                    ..
                } => legacy::verify(image, payload, annotations, policy),
                Signature::Bundle { json, .. } => {
                    bundle::verify(image, json, policy, &requirement.predicate)
                }
                Signature::Unreadable { why, .. } => Err(why.clone()),
            };
            match result {
                Ok(signer) => {
                    return Some(Verdict::Verified {
                        policy: policy.describe(),
                        signer,
                        signature: sig.manifest().clone(),
                    });
                }
                Err(why) => self.note(format!("{}: {why}", sig.manifest().short())),
            }
        }
        None
    }

    /// A reason that is not one signature's (a manifest that is not a
    /// signature manifest, say).
    pub fn note(&mut self, line: String) {
        if !self.reasons.contains(&line) {
            self.reasons.push(line);
        }
    }

    /// A reason that explains the verdict (a cap reached): shown first.
    pub fn headline(&mut self, line: String) {
        self.reasons.retain(|r| r != &line);
        self.reasons.insert(0, line);
    }

    /// Signatures considered so far.
    pub fn examined(&self) -> usize {
        self.examined
    }

    /// The verdict when no signature passed.
    pub fn verdict(self) -> Verdict {
        let image = self.image;
        if self.examined == 0 && self.reasons.is_empty() {
            return Verdict::Unverified {
                why: format!("no signature of {image} found (cosign .sig tag, referrers)"),
            };
        }
        let shown: Vec<&str> = self.reasons.iter().take(4).map(String::as_str).collect();
        let more = match self.reasons.len() {
            n if n > shown.len() => format!(" (and {} more)", n - shown.len()),
            _ => String::new(),
        };
        Verdict::Unverified {
            why: format!(
                "none of {} signatures of {image} passed: {}{more}",
                self.examined,
                shown.join("; ")
            ),
        }
    }
}
