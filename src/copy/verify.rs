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
//! [`MAX_SIGNATURE_BYTES`]) and the gate's outcome. Never does signature
//! maths and never writes.

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
    BUNDLE_V03, MAX_SIGNATURE_BYTES, MAX_SIGNATURES, Requirement, SIMPLE_SIGNING, Signature,
    Verdict, check,
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

/// The verdict on one digest, from its signatures in the source.
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
    if found.len() > MAX_SIGNATURES {
        return Ok(Verdict::Unverified {
            why: format!(
                "{} signature manifests name {digest}, more than the {MAX_SIGNATURES} examined: refused",
                found.len()
            ),
        });
    }
    let per_manifest: Vec<Vec<Signature>> = stream::iter(&found)
        .map(|f| signatures_in(img, digest, f))
        .buffered(img.jobs())
        .try_collect()
        .await?;
    let signatures: Vec<Signature> = per_manifest.into_iter().flatten().collect();
    Ok(check(digest, &signatures, requirement))
}

/// The signatures one signature manifest carries: each simple-signing
/// layer of a legacy one, the bundle of a v0.3 referrer. What cannot be
/// read as a signature becomes a reason, never a pass.
async fn signatures_in(
    img: &Image<'_>,
    subject: &Digest,
    found: &Found,
) -> Result<Vec<Signature>, CopyError> {
    let d = &found.listed.digest;
    let unreadable = |why: String| {
        Ok(vec![Signature::Unreadable {
            manifest: d.clone(),
            why,
        }])
    };
    let m = match &found.manifest {
        Some(m) => m.clone(),
        None => img
            .src
            .manifest_get(&ManifestRef::Digest(d.clone()))
            .await
            .map_err(|e| CopyError::new(Step::Verify(subject.clone()), e))?,
    };
    if found.place == Via::Listed {
        if m.size() != found.listed.size {
            return unreadable(format!(
                "{} bytes, listed as {}",
                m.size(),
                found.listed.size
            ));
        }
        if subject_of(&m).as_ref() != Some(subject) {
            let names = subject_of(&m).map_or("no subject".to_string(), |s| s.to_string());
            return unreadable(format!(
                "listed as a signature of {subject} but names {names}"
            ));
        }
    }
    let layers = match signature_layers(&m) {
        Ok(l) => l,
        Err(why) => return unreadable(why),
    };
    let mut out = Vec::new();
    for layer in layers.into_iter().take(MAX_SIGNATURES + 1) {
        if layer.size > MAX_SIGNATURE_BYTES {
            out.push(Signature::Unreadable {
                manifest: d.clone(),
                why: format!(
                    "a signature layer of {} bytes, more than the {MAX_SIGNATURE_BYTES} read",
                    layer.size
                ),
            });
            continue;
        }
        let bytes = read_small_blob(img.src, &layer.digest, layer.size, "signature").await?;
        out.push(match layer.bundle {
            true => Signature::Bundle {
                manifest: d.clone(),
                json: bytes,
            },
            false => Signature::Legacy {
                manifest: d.clone(),
                payload: bytes,
                annotations: layer.annotations,
            },
        });
    }
    Ok(out)
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
fn signature_layers(m: &RawManifest) -> Result<Vec<Layer>, String> {
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
