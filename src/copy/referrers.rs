//! Referrers travel with their images (`--referrers`): signatures, SBOMs
//! and attestations that name a copied manifest as their subject, and,
//! recursively, theirs (a signature of an SBOM).
//!
//! Owns where referrers are found (the OCI 1.1 referrers API, the
//! referrers tag schema, cosign's `.sig`/`.att`/`.sbom` tags; each de-
//! duplicated by digest), how they are written (by digest; cosign's under
//! their tag; a target without the API gets its tag-schema index merged,
//! never losing an entry it did not create, written only when it changed),
//! and the bounds against a lying source (a listed referrer must name the
//! subject it is listed for; loops and huge lists stop). Never writes a
//! referrer before the manifest it refers to.

use std::collections::HashSet;

use super::blobs;
use super::error::{CopyError, Step};
use super::push;
use super::shared::{Image, ReferrerCounts, Trust};
use super::walk::{self, WalkOptions};
use crate::digest::Digest;
use crate::manifest::RawManifest;
use crate::manifest::referrers::{
    Listed, cosign_tags, entries, fallback_tag, listed, merged, subject_of,
};
use crate::reference::ManifestRef;
use crate::store::{Store, StoreError};

/// Referrers one subject may have; a longer list is an attack, not a
/// supply chain.
pub const MAX_PER_SUBJECT: usize = 1000;
/// Referrers of referrers followed (a signature of an attestation of an
/// image is depth 2).
pub const MAX_DEPTH: usize = 4;
/// Referrers one image may bring in all.
pub const MAX_PER_IMAGE: usize = 4096;

/// Where a referrer was found, which decides how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The referrers API or the tag schema: it names its subject.
    Listed,
    /// One of cosign's tags: written under the same tag.
    CosignTag(String),
}

/// A referrer of a subject, as found in the source.
#[derive(Debug, Clone)]
pub struct Found {
    pub listed: Listed,
    pub place: Via,
    /// Its manifest, when finding it meant reading it (cosign's tags).
    pub manifest: Option<RawManifest>,
}

/// What became of one referrer.
enum Moved {
    Copied,
    Present,
    Refused(String),
}

/// Copies the referrers of `subjects` (manifests already in the target
/// under the same digests), then theirs, to the target.
pub(super) async fn travel(
    img: &Image<'_>,
    subjects: Vec<Digest>,
) -> Result<ReferrerCounts, CopyError> {
    let mut counts = ReferrerCounts::default();
    let mut seen: HashSet<Digest> = subjects.iter().cloned().collect();
    let mut level = subjects;
    for _ in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for subject in &level {
            let mut listed_here = Vec::new();
            for f in discover(img, subject).await? {
                if !seen.insert(f.listed.digest.clone()) {
                    continue;
                }
                if seen.len() > MAX_PER_IMAGE {
                    return Err(too_many(
                        subject,
                        format!("more than {MAX_PER_IMAGE} referrers in all"),
                    ));
                }
                match copy_one(img, subject, &f).await? {
                    Moved::Copied => counts.copied += 1,
                    Moved::Present => counts.present += 1,
                    Moved::Refused(why) => {
                        counts.left_behind += 1;
                        counts.notes.push(why);
                        continue;
                    }
                }
                if f.place == Via::Listed {
                    listed_here.push(f.listed.clone());
                }
                next.push(f.listed.digest);
            }
            if !listed_here.is_empty() {
                keep_listed(img, subject, &listed_here).await?;
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    Ok(counts)
}

/// How many referrers a manifest has in the source (for those that cannot
/// follow it: a rewritten root names another digest).
pub(super) async fn count(img: &Image<'_>, subject: &Digest) -> Result<usize, CopyError> {
    Ok(discover(img, subject).await?.len())
}

fn too_many(subject: &Digest, why: String) -> CopyError {
    CopyError::structure(Step::Referrers(subject.clone()), why)
}

/// Every referrer of `subject` the plan keeps, in the source.
async fn discover(img: &Image<'_>, subject: &Digest) -> Result<Vec<Found>, CopyError> {
    find(img.src, subject, &img.job.options.referrer_types()).await
}

/// Every referrer of `subject` in `src` of these artifact types (all when
/// empty): referrers API, then tag schema, then cosign's tags, each digest
/// once; at most [`MAX_PER_SUBJECT`].
pub async fn find(
    src: &dyn Store,
    subject: &Digest,
    types: &[String],
) -> Result<Vec<Found>, CopyError> {
    let step = || Step::Referrers(subject.clone());
    let wanted =
        |t: Option<&str>| types.is_empty() || t.is_some_and(|t| types.iter().any(|w| w == t));
    let mut found: Vec<Found> = Vec::new();
    let add = |l: Listed, place: Via, manifest: Option<RawManifest>, found: &mut Vec<Found>| {
        if wanted(l.artifact_type.as_deref()) && !found.iter().any(|f| f.listed.digest == l.digest)
        {
            found.push(Found {
                listed: l,
                place,
                manifest,
            });
        }
    };
    // The three places are asked at once: an image's referrers cost one
    // round trip, not three.
    let fallback = ManifestRef::Tag(fallback_tag(subject));
    let tags: Vec<(String, &str)> = cosign_tags(subject)
        .into_iter()
        .filter(|(_, kind)| wanted(Some(kind)))
        .collect();
    let tag_refs: Vec<ManifestRef> = tags
        .iter()
        .map(|(t, _)| ManifestRef::Tag(t.clone()))
        .collect();
    let (api, index, cosign) = futures::join!(
        src.referrers(subject, types),
        src.manifest_get(&fallback),
        futures::future::join_all(tag_refs.iter().map(|r| src.manifest_get(r))),
    );
    if let Some(list) = api.map_err(|e| CopyError::new(step(), e))? {
        guard(subject, list.len())?;
        for l in list {
            add(l, Via::Listed, None, &mut found);
        }
    }
    match index {
        Ok(index) => {
            let list = entries(index.content()).map_err(|e| {
                CopyError::manifest(step(), format!("referrers index {fallback}"), e)
            })?;
            guard(subject, list.len())?;
            for l in list {
                add(l, Via::Listed, None, &mut found);
            }
        }
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(CopyError::new(step(), e)),
    }
    for ((tag, kind), m) in tags.into_iter().zip(cosign) {
        let m = match m {
            Ok(m) => m,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(CopyError::new(step(), e)),
        };
        let mut l = listed(&m).map_err(|e| CopyError::manifest(step(), tag.clone(), e))?;
        l.artifact_type = Some(kind.to_string());
        add(l, Via::CosignTag(tag), Some(m), &mut found);
    }
    guard(subject, found.len())?;
    Ok(found)
}

fn guard(subject: &Digest, n: usize) -> Result<(), CopyError> {
    if n > MAX_PER_SUBJECT {
        return Err(too_many(
            subject,
            format!("{n} referrers listed, more than {MAX_PER_SUBJECT}"),
        ));
    }
    Ok(())
}

/// A referrer's manifest, verified against its digest and, when listed,
/// the size it was listed with.
async fn read(src: &dyn Store, d: &Digest, size: Option<u64>) -> Result<RawManifest, StoreError> {
    let m = src.manifest_get(&ManifestRef::Digest(d.clone())).await?;
    match size {
        Some(s) if s != m.size() => Err(StoreError::Protocol(format!(
            "referrer {d} is {} bytes, listed as {s}",
            m.size()
        ))),
        _ => Ok(m),
    }
}

/// Copies one referrer: its blobs, its children, then itself.
async fn copy_one(img: &Image<'_>, subject: &Digest, f: &Found) -> Result<Moved, CopyError> {
    let d = &f.listed.digest;
    let step = || Step::Referrers(subject.clone());
    let target_ref = match &f.place {
        Via::CosignTag(tag) => ManifestRef::Tag(tag.clone()),
        Via::Listed => ManifestRef::Digest(d.clone()),
    };
    let current = img
        .dst
        .manifest_head(&target_ref)
        .await
        .map_err(|e| CopyError::new(step(), e))?;
    if current.as_ref() == Some(d) {
        return Ok(Moved::Present);
    }
    let m = match &f.manifest {
        Some(m) => m.clone(),
        None => read(img.src, d, Some(f.listed.size))
            .await
            .map_err(|e| CopyError::new(step(), e))?,
    };
    if f.place == Via::Listed && subject_of(&m).as_ref() != Some(subject) {
        let names = subject_of(&m).map_or("no subject".to_string(), |s| s.to_string());
        return Ok(Moved::Refused(format!(
            "{d} was listed as a referrer of {subject} but names {names}: refused"
        )));
    }
    let options = WalkOptions {
        jobs: img.jobs(),
        keep: None,
        include_foreign: false,
        limits: img.job.options.limits,
        pull_reserve: None,
    };
    let tree = walk::walk(img.src, m, options).await?;
    blobs::copy_blobs(img, &tree.blobs, None, Trust::Head).await?;
    push::push_children(img, &tree.child_levels).await?;
    push::push_manifest(img.dst, &target_ref, &tree.root)
        .await
        .map_err(|e| CopyError::new(step(), e))?;
    Ok(Moved::Copied)
}

/// A target without the referrers API finds them through the subject's
/// tag-schema index: merge ours in (every entry already there stays),
/// write only when it changed.
async fn keep_listed(img: &Image<'_>, subject: &Digest, add: &[Listed]) -> Result<(), CopyError> {
    let step = || Step::Referrers(subject.clone());
    if img
        .dst
        .referrers(subject, &[])
        .await
        .map_err(|e| CopyError::new(step(), e))?
        .is_some()
    {
        return Ok(());
    }
    let tag = ManifestRef::Tag(fallback_tag(subject));
    let existing = match img.dst.manifest_get(&tag).await {
        Ok(m) => Some(m),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(CopyError::new(step(), e)),
    };
    let what = format!("referrers index {}", fallback_tag(subject));
    match merged(existing.as_ref(), add).map_err(|e| CopyError::manifest(step(), what, e))? {
        Some(index) => push::push_manifest(img.dst, &tag, &index)
            .await
            .map_err(|e| CopyError::new(step(), e)),
        None => Ok(()),
    }
}
