//! Verify before mirror (`verify`): between reading the source root and
//! the first write, the signatures of exactly that root (and, with
//! `verify_children`, of each kept child) are fetched from the source where
//! cosign puts them and judged by [`crate::verify`].
//!
//! The verdict is bound to what is pushed: the digest judged is the digest
//! of the root bytes this copy read and will push (or rebuild from), and
//! every child and blob below it is fetched and checked by the digest that
//! root names; nothing is read twice.
//!
//! Owns finding and reading signatures (bounded: at most
//! [`MAX_SIGNATURES`] per image, each layer at most
//! [`MAX_SIGNATURE_BYTES`], all of them at most [`MAX_SIGNATURE_TOTAL`];
//! judged as read, so reading stops at the first that passes) and the
//! gate's outcome. Never does signature maths and never writes.

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;

use super::error::{CopyError, Failure, Step};
use super::platforms::{self, RootChoice};
use super::referrers::{self, Found, Via};
use super::shape::read_small_blob;
use super::shared::Image;
use crate::digest::Digest;
use crate::manifest::referrers::{COSIGN_SIG, subject_of};
use crate::manifest::{Parsed, RawManifest};
use crate::reference::ManifestRef;
use crate::report::Verification;
use crate::verify::{
    BUNDLE_V03, Judgement, MAX_SIGNATURE_BYTES, MAX_SIGNATURE_TOTAL, MAX_SIGNATURES, Requirement,
    SIMPLE_SIGNING, Signature, Verdict,
};

/// What the gate decided for an image.
pub(super) enum Checked {
    Passed(Verification),
    /// Not copied, with why (naming the digest and its signatures).
    Refused(String),
}

/// The gate, when the job verifies: `None` when it does not.
pub(super) async fn gate(
    img: &Image<'_>,
    root: &RawManifest,
) -> Result<Option<Checked>, CopyError> {
    let Some(requirement) = &img.job.options.verify else {
        return Ok(None);
    };
    let mut subjects = vec![root.digest.clone()];
    if requirement.children {
        subjects.extend(kept_children(img, root)?);
    }
    let verdicts: Vec<Verdict> = stream::iter(&subjects)
        .map(|d| judge(img, d, requirement))
        .buffered(img.jobs())
        .try_collect()
        .await?;
    let mut passed = None;
    for (digest, verdict) in subjects.iter().zip(verdicts) {
        match verdict {
            Verdict::Unverified { why } if digest == &root.digest => {
                return Ok(Some(Checked::Refused(why)));
            }
            Verdict::Unverified { why } => {
                return Ok(Some(Checked::Refused(format!(
                    "the index {} is signed, but its child {digest} is not (verify_children): {why}",
                    root.digest
                ))));
            }
            Verdict::Verified {
                policy,
                signer,
                signature,
            } => {
                passed.get_or_insert(Verification {
                    policy,
                    signer,
                    signature: signature.to_string(),
                    children_verified: requirement.children.then_some(subjects.len() as u64 - 1),
                });
            }
        }
    }
    Ok(passed.map(Checked::Passed))
}

/// The children a copy keeps, each of which `verify_children` requires to
/// be signed itself.
fn kept_children(img: &Image<'_>, root: &RawManifest) -> Result<Vec<Digest>, CopyError> {
    Ok(match platforms::choose(root, &img.job.options.platforms)? {
        RootChoice::Unwrap(child) => vec![child.digest],
        RootChoice::Filter(sel) => sel.kept.into_iter().map(|d| d.digest).collect(),
        RootChoice::Whole => match root.parse() {
            Ok(Parsed::Index(i)) => i.manifests.into_iter().map(|d| d.digest).collect(),
            _ => Vec::new(),
        },
    })
}

/// The verdict on one digest, from its signatures in the source: read one
/// at a time and judged as read, stopping at the first that passes, at
/// [`MAX_SIGNATURES`] signatures or at [`MAX_SIGNATURE_TOTAL`] bytes.
async fn judge(
    img: &Image<'_>,
    digest: &Digest,
    requirement: &Requirement,
) -> Result<Verdict, CopyError> {
    let types = [COSIGN_SIG.to_string(), BUNDLE_V03.to_string()];
    let found = match referrers::find(img.src, digest, &types).await {
        Ok(found) => found,
        // A listing too long to read is a verdict, not a failed copy.
        Err(e) if matches!(*e.failure, Failure::Structure(_)) => {
            return Ok(Verdict::Unverified {
                why: format!("the signatures of {digest}: {e}"),
            });
        }
        Err(e) => return Err(e),
    };
    let mut judgement = Judgement::new(digest);
    let mut bytes_left = MAX_SIGNATURE_TOTAL;
    // Manifests are fetched a few ahead of the judging; dropping the
    // stream at a verdict cancels the rest.
    let mut manifests = stream::iter(&found)
        .map(|f| async move { (f, signature_layers(img, digest, f).await) })
        .buffered(img.jobs());
    while let Some((f, layers)) = manifests.next().await {
        let layers = match layers? {
            Ok(layers) => layers,
            Err(why) => {
                judgement.note(format!("{}: {why}", f.listed.digest.short()));
                continue;
            }
        };
        for layer in layers {
            if judgement.examined() >= MAX_SIGNATURES {
                judgement.headline(format!(
                    "{} signature manifests name {digest}; the first {MAX_SIGNATURES} signatures were examined",
                    found.len()
                ));
                return Ok(judgement.verdict());
            }
            let sig = read_signature(img, &f.listed.digest, layer, &mut bytes_left).await;
            if let Some(passed) = judgement.consider(&sig, requirement) {
                return Ok(passed);
            }
        }
    }
    Ok(judgement.verdict())
}

/// The signature manifest `found` names, and its signature layers; why
/// not, when it cannot be one.
async fn signature_layers(
    img: &Image<'_>,
    subject: &Digest,
    found: &Found,
) -> Result<Result<Vec<Layer>, String>, CopyError> {
    let m = match &found.manifest {
        Some(m) => m.clone(),
        None => img
            .src
            .manifest_get(&ManifestRef::Digest(found.listed.digest.clone()))
            .await
            .map_err(|e| CopyError::new(Step::Verify(subject.clone()), e))?,
    };
    if found.place == Via::Listed {
        if m.size() != found.listed.size {
            return Ok(Err(format!(
                "{} bytes, listed as {}",
                m.size(),
                found.listed.size
            )));
        }
        if subject_of(&m).as_ref() != Some(subject) {
            let names = subject_of(&m).map_or("no subject".to_string(), |s| s.to_string());
            return Ok(Err(format!(
                "listed as a signature of {subject} but names {names}"
            )));
        }
    }
    Ok(parse_layers(&m))
}

/// One signature layer, read (within what is left of the image's byte
/// budget) and verified against its digest; what cannot be read is a
/// reason, never a pass.
async fn read_signature(
    img: &Image<'_>,
    manifest: &Digest,
    layer: Layer,
    bytes_left: &mut u64,
) -> Signature {
    let unreadable = |why: String| Signature::Unreadable {
        manifest: manifest.clone(),
        why,
    };
    if layer.size > MAX_SIGNATURE_BYTES {
        return unreadable(format!(
            "a signature layer of {} bytes, more than the {MAX_SIGNATURE_BYTES} read",
            layer.size
        ));
    }
    if layer.size > *bytes_left {
        return unreadable(format!(
            "the signatures of this image pass {MAX_SIGNATURE_TOTAL} bytes: not read"
        ));
    }
    *bytes_left -= layer.size;
    match read_small_blob(img.src, &layer.digest, layer.size, "signature").await {
        Ok(bytes) if layer.bundle => Signature::Bundle {
            manifest: manifest.clone(),
            json: bytes,
        },
        Ok(bytes) => Signature::Legacy {
            manifest: manifest.clone(),
            payload: bytes,
            annotations: layer.annotations,
        },
        Err(e) => unreadable(e.to_string()),
    }
}

/// A layer that holds a signature.
struct Layer {
    digest: Digest,
    size: u64,
    bundle: bool,
    annotations: std::collections::BTreeMap<String, String>,
}

/// The layers of a signature manifest that are signatures (simple-signing
/// payloads, Sigstore bundles).
fn parse_layers(m: &RawManifest) -> Result<Vec<Layer>, String> {
    let v: Value = serde_json::from_slice(m.content())
        .map_err(|e| format!("not a signature manifest (not JSON: {e})"))?;
    let layers = v["layers"]
        .as_array()
        .ok_or("not a signature manifest (no layers)")?;
    let mut out = Vec::new();
    for l in layers {
        let media_type = l["mediaType"].as_str().unwrap_or("");
        let bundle = media_type == BUNDLE_V03;
        if media_type != SIMPLE_SIGNING && !bundle {
            continue;
        }
        let digest: Digest = l["digest"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .ok_or("a signature layer without a usable digest")?;
        let size = l["size"]
            .as_u64()
            .ok_or("a signature layer without a size")?;
        let annotations = l["annotations"]
            .as_object()
            .map(|a| {
                a.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Layer {
            digest,
            size,
            bundle,
            annotations,
        });
    }
    if out.is_empty() {
        return Err("no signature layer (simple-signing or Sigstore bundle)".into());
    }
    Ok(out)
}
