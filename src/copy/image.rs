//! One image's copy as named steps: resolve → select → blobs → push.
//!
//! Owns the decisions between the steps: up to date after one HEAD per
//! side; a rewritten root already in place; the digest a target pinned.
//! Each step is a function that reads in one sitting; the streaming and
//! pushing live in `blobs`, `push` and `schema1`.

use std::collections::HashSet;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::backup;
use super::blobs;
use super::diff_ids::DiffIds;
use super::error::{CopyError, Failure, Step};
use super::platforms::{self, RootChoice};
use super::shape::{self, Shaped};
use super::shared::{Image, Outcome, ReferrerCounts, Selected, Trust};
use super::verify::{self, Checked};
use super::walk::{self, WalkOptions};
use super::{push, referrers};
use crate::digest::Digest;
use crate::manifest::RawManifest;
use crate::manifest::schema1::Schema1;
use crate::media::Kind;
use crate::plan::{CopyJob, CopyOptions};
use crate::reference::ManifestRef;
use crate::report::Action;
use crate::store::StoreError;

/// The target digest a copy will push, known before the walk.
pub(super) struct Prediction {
    pub target: Digest,
    /// The source digest the report names (the child, when unwrapped).
    pub source: Digest,
    pub reason: Option<String>,
}

/// Step 1: the source, and what the target holds now.
pub(super) struct Resolved {
    pub source_digest: Digest,
    /// The source root, when it was read to predict the target.
    pub root: Option<RawManifest>,
    pub prediction: Option<Prediction>,
    /// What the target reference names now, when that can decide anything.
    pub current: Option<Digest>,
}

pub(super) async fn copy_image(img: &Image<'_>) -> Result<Outcome, CopyError> {
    let resolved = resolve(img).await?;
    let mut outcome = copy_resolved(img, &resolved).await?;
    let travels = img.job.options.referrers.is_some() && !img.run.settings.plan_only;
    if travels && matches!(outcome.action, Action::Copied | Action::UpToDate) {
        outcome.referrers = Some(with_referrers(img, &resolved, &outcome).await?);
    }
    Ok(outcome)
}

/// Up to date, or steps 2 to 4 in a copy slot.
async fn copy_resolved(img: &Image<'_>, resolved: &Resolved) -> Result<Outcome, CopyError> {
    let options = &img.job.options;
    if let Some(p) = &resolved.prediction
        && resolved.current.as_ref() == Some(&p.target)
        && !options.repair
    {
        return Ok(Outcome::up_to_date(
            p.source.clone(),
            p.target.clone(),
            p.reason.clone(),
        ));
    }
    // The root is small and its GET one round trip: it is read with the
    // checks, so that a copy slot's time goes to blobs and pushes. Not
    // where a pull budget is kept and the source states one: there every
    // GET is reserved in a slot, after the checks' HEADs have stated it.
    let budgeted = options.pull_reserve.is_some() && img.src.states_pull_budget();
    let root = match &resolved.root {
        None if !budgeted => Some(read_root_by_digest(img, &resolved.source_digest).await?),
        r => r.clone(),
    };
    // Past the check, an image takes one of the run's copy slots; the
    // deadline (--timeout) counts from there.
    let _slot = img.run.copy_slots.acquire().await;
    let root = match root {
        Some(r) => r,
        None => read_root_by_digest(img, &resolved.source_digest).await?,
    };
    match options.timeout {
        None => copy_selected(img, resolved, root).await,
        Some(limit) => tokio::time::timeout(limit, copy_selected(img, resolved, root))
            .await
            .unwrap_or_else(|_| {
                Err(CopyError::new(
                    Step::Deadline,
                    Failure::Deadline(limit.as_secs()),
                ))
            }),
    }
}

/// Steps 2 to 4, for an image that is not up to date.
async fn copy_selected(
    img: &Image<'_>,
    resolved: &Resolved,
    root: RawManifest,
) -> Result<Outcome, CopyError> {
    let options = &img.job.options;
    if let Some(types) = &options.media_types
        && !types.iter().any(|t| t == root.media_type.as_str())
    {
        return Ok(Outcome {
            action: Action::Skipped,
            reason: Some(format!(
                "{} is not one of the job's media_types",
                root.media_type
            )),
            ..Outcome::up_to_date(root.digest.clone(), root.digest.clone(), None)
        });
    }
    let selected = select(img, resolved, root.clone()).await?;
    if !options.repair
        && let Some(done) = already_there(img, resolved, &selected).await?
    {
        return Ok(done);
    }
    let verification = match verify::gate(img, &root).await? {
        None => None,
        Some(Checked::Passed(v)) => Some(v),
        Some(Checked::Refused(why)) => {
            return Ok(Outcome::unverified(
                root.digest,
                selected.shaped.root.digest,
                why,
            ));
        }
    };
    if img.run.settings.plan_only {
        let mut planned = planned(img, &selected).await?;
        planned.verification = verification;
        return Ok(planned);
    }
    let diff_ids = selected.schema1.as_ref().map(|s1| {
        DiffIds::new(
            s1.layers().iter().map(|e| e.blob.clone()).collect(),
            img.run.settings.diff_id_cache.as_ref(),
            options.limits.max_uncompressed_layer,
        )
    });
    blobs::copy_blobs(img, &selected.blobs, diff_ids.as_ref(), Trust::Head).await?;
    if let Some(d) = &diff_ids {
        d.save();
    }
    let in_place = resolved.current.as_ref() == Some(&selected.shaped.root.digest);
    let backup = match (&selected.target_ref, &resolved.current) {
        (ManifestRef::Tag(tag), Some(old)) if options.backup.is_some() && !in_place => {
            Some(backup::keep(img, tag, old).await?)
        }
        _ => None,
    };
    let mut outcome = push::push_all(img, &selected, diff_ids.as_ref()).await?;
    outcome.verification = verification;
    if let Some(name) = backup {
        let note = format!("the image it replaced is kept as {name}");
        outcome.reason = Some(match outcome.reason.take() {
            Some(r) => format!("{r}; {note}"),
            None => note,
        });
    }
    if in_place {
        repaired(img, &mut outcome);
    }
    Ok(outcome)
}

/// `repair` of an image that was in place: up to date if nothing was
/// missing, else copied, saying what was sent.
fn repaired(img: &Image<'_>, outcome: &mut Outcome) {
    use std::sync::atomic::Ordering::Relaxed;
    let sent = img.stats.copied.load(Relaxed) + img.stats.mounted.load(Relaxed);
    if sent == 0 {
        outcome.action = Action::UpToDate;
    } else {
        outcome.reason = Some(format!(
            "repaired: {sent} blobs the target was missing were sent again"
        ));
    }
}

/// The source digest and, when it can decide anything, what the target
/// names now: an unchanged image costs one request per side (a HEAD of
/// each; a GET of the source root when the plan filters or unwraps it,
/// since the target digest follows from the root's bytes).
async fn resolve(img: &Image<'_>) -> Result<Resolved, CopyError> {
    let job = img.job;
    // A tagged target's HEAD does not wait for the source: both sides are
    // asked at once, so an unchanged tag costs one round trip, not two.
    let (source, tagged) = match &job.dst_tag {
        Some(t) if !job.target_lacks_tag => {
            let tag = ManifestRef::Tag(t.clone());
            let (source, current) = tokio::join!(source_side(img), target_head(img, &tag));
            (source?, Some(current?))
        }
        _ => (source_side(img).await?, None),
    };
    let (source_digest, root, prediction) = source;
    let current = match (tagged, &prediction, &job.dst_tag) {
        (Some(current), _, _) => current,
        (None, Some(p), None) => target_head(img, &job.target_ref(&p.target)).await?,
        (None, _, _) => None,
    };
    Ok(Resolved {
        source_digest,
        root,
        prediction,
        current,
    })
}

async fn target_head(img: &Image<'_>, r: &ManifestRef) -> Result<Option<Digest>, CopyError> {
    img.dst
        .manifest_head(r)
        .await
        .map_err(|e| CopyError::new(Step::CheckTarget, e))
}

/// The source digest, the root when it had to be read, and the target
/// digest when it is known before the walk: the source's own for a copy
/// that keeps the bytes; for a filter or an unwrap, what the job's hint
/// recorded for this source digest (one HEAD), else computed from the
/// root's bytes (one GET). A tag the target lacks is copied whatever its
/// digest, so its root is read at once: one GET instead of a HEAD and a
/// GET; except where a pull budget is kept (sync's `ratelimit_min`), since
/// Docker Hub states the budget on a HEAD, which does not count, and every
/// image's GETs must be reserved before the first is sent.
async fn source_side(
    img: &Image<'_>,
) -> Result<(Digest, Option<RawManifest>, Option<Prediction>), CopyError> {
    let job = img.job;
    let options = &job.options;
    if job.target_lacks_tag && options.pull_reserve.is_none() {
        let root = read_root(img).await?;
        let p = if options.root_decides() {
            Some(predict(&root, options)?)
        } else {
            options.keeps_bytes().then(|| same_digest(&root.digest))
        };
        return Ok((root.digest.clone(), Some(root), p));
    }
    if !options.root_decides() {
        let d = source_digest(img).await?;
        let p = options.keeps_bytes().then(|| same_digest(&d));
        return Ok((d, None, p));
    }
    if let Some(hint) = &job.hint {
        let d = source_digest(img).await?;
        if d == hint.source {
            let p = Prediction {
                target: hint.target.clone(),
                source: d.clone(),
                reason: Some("built from this source digest before (state file)".into()),
            };
            return Ok((d, None, Some(p)));
        }
    }
    let root = read_root(img).await?;
    let p = predict(&root, options)?;
    Ok((root.digest.clone(), Some(root), Some(p)))
}

/// One GET of the source reference (a pull, where the registry counts them).
async fn read_root(img: &Image<'_>) -> Result<RawManifest, CopyError> {
    reserve_pulls(img, 1)?;
    img.src
        .manifest_get(&img.job.src)
        .await
        .map_err(|e| CopyError::new(Step::ReadSource, e))
}

/// One GET of the source root by the digest a HEAD gave.
async fn read_root_by_digest(img: &Image<'_>, digest: &Digest) -> Result<RawManifest, CopyError> {
    reserve_pulls(img, 1)?;
    img.src
        .manifest_get(&ManifestRef::Digest(digest.clone()))
        .await
        .map_err(|e| CopyError::new(Step::ReadSource, e))
}

/// A copy that keeps the bytes: the target digest is the source's.
fn same_digest(d: &Digest) -> Prediction {
    Prediction {
        target: d.clone(),
        source: d.clone(),
        reason: None,
    }
}

/// The digest the source reference names: one HEAD for a tag.
async fn source_digest(img: &Image<'_>) -> Result<Digest, CopyError> {
    let job = img.job;
    match &job.src {
        ManifestRef::Digest(d) => Ok(d.clone()),
        tag => img
            .src
            .manifest_head(tag)
            .await
            .map_err(|e| CopyError::new(Step::ReadSource, e))?
            .ok_or_else(|| {
                CopyError::new(
                    Step::ReadSource,
                    StoreError::NotFound {
                        what: format!("manifest {}", job.source_display()),
                    },
                )
            }),
    }
}

/// What a filter or an unwrap of `root` will push.
fn predict(root: &RawManifest, options: &CopyOptions) -> Result<Prediction, CopyError> {
    Ok(match platforms::choose(root, &options.platforms)? {
        RootChoice::Whole => same_digest(&root.digest),
        RootChoice::Filter(sel) => Prediction {
            target: shape::filtered(root, &sel)?.digest,
            source: root.digest.clone(),
            reason: Some(shape::filter_reason(&sel)),
        },
        RootChoice::Unwrap(child) => Prediction {
            target: child.digest.clone(),
            source: child.digest,
            reason: Some(format!("unwrapped from index {}", root.digest)),
        },
    })
}

/// Takes pulls off the source's stated budget when the plan keeps a reserve.
pub(super) fn reserve_pulls(img: &Image<'_>, n: u64) -> Result<(), CopyError> {
    match img.job.options.pull_reserve {
        Some(keep) => img
            .src
            .reserve_pulls(n, keep)
            .map_err(|e| CopyError::new(Step::ReadSource, e)),
        None => Ok(()),
    }
}

/// Applies the platform selection to the root, walks what it keeps and
/// shapes it as the plan says.
async fn select(
    img: &Image<'_>,
    resolved: &Resolved,
    mut root: RawManifest,
) -> Result<Selected, CopyError> {
    let options = &img.job.options;
    let mut source_digest = resolved.source_digest.clone();
    let choice = platforms::choose(&root, &options.platforms)?;
    let mut reason = None;
    if let RootChoice::Unwrap(child) = &choice {
        reserve_pulls(img, 1)?;
        root = walk::fetch_child(img.src, child.clone(), options.limits.max_manifest_size).await?;
        reason = Some(format!("unwrapped from index {source_digest}"));
        source_digest = root.digest.clone();
    }
    let keep: Option<HashSet<Digest>> = match &choice {
        RootChoice::Filter(sel) => Some(sel.kept.iter().map(|d| d.digest.clone()).collect()),
        _ => None,
    };
    let walk_options = WalkOptions {
        jobs: img.jobs(),
        keep: keep.as_ref(),
        include_foreign: options.include_foreign,
        limits: options.limits,
        pull_reserve: options.pull_reserve,
    };
    let tree = walk::walk(img.src, root, walk_options).await?;
    tracing::info!(
        source = %img.job.source_display(),
        children = tree.child_count(),
        blobs = tree.blobs.len(),
        "walked"
    );
    let blobs = tree.blobs.clone();
    let mut shaped = shape::shape(img.src, tree, &choice, options).await?;
    if reason.is_some() {
        shaped.reason = reason;
    }
    check_pin(img.job, &shaped)?;
    let schema1 = match shaped.root.media_type.kind() {
        Kind::Schema1 => Some(
            Schema1::parse(shaped.root.content()).map_err(|e| CopyError::new(Step::Convert, e))?,
        ),
        _ => None,
    };
    Ok(Selected {
        target_ref: img.job.target_ref(&shaped.root.digest),
        source_digest,
        shaped,
        blobs,
        schema1,
    })
}

/// A target that names a digest gets exactly that digest, or nothing.
fn check_pin(job: &CopyJob, shaped: &Shaped) -> Result<(), CopyError> {
    match &job.dst_digest {
        Some(want) if want != &shaped.root.digest => Err(CopyError::structure(
            Step::CheckTarget,
            format!(
                "the target names digest {want}, but the copy would push {}",
                shaped.root.digest
            ),
        )),
        _ => Ok(()),
    }
}

/// A rewritten root (filtered, wrapped, converted) that the target already
/// holds under the target reference: up to date, at one more HEAD at most.
async fn already_there(
    img: &Image<'_>,
    resolved: &Resolved,
    sel: &Selected,
) -> Result<Option<Outcome>, CopyError> {
    if sel.schema1.is_some() || resolved.prediction.is_some() {
        return Ok(None);
    }
    let current = match &sel.target_ref {
        ManifestRef::Tag(_) => resolved.current.clone(),
        r @ ManifestRef::Digest(_) => img
            .dst
            .manifest_head(r)
            .await
            .map_err(|e| CopyError::new(Step::CheckTarget, e))?,
    };
    Ok(
        (current.as_ref() == Some(&sel.shaped.root.digest)).then(|| {
            Outcome::up_to_date(
                sel.source_digest.clone(),
                sel.shaped.root.digest.clone(),
                sel.shaped.reason.clone(),
            )
        }),
    )
}

/// `--plan`: what a run would move, read from both sides without writing.
async fn planned(img: &Image<'_>, sel: &Selected) -> Result<Outcome, CopyError> {
    let missing = stream::iter(&sel.blobs)
        .map(|b| async move {
            if img.run.ledger.knows(&img.dst_at, &b.digest) {
                return Ok(0);
            }
            let present = img
                .dst
                .blob_head(&b.digest)
                .await
                .map_err(|e| CopyError::new(Step::Blob(b.digest.clone()), e))?;
            Ok::<u64, CopyError>(if present.is_some() { 0 } else { b.size })
        })
        .buffer_unordered(img.jobs())
        .try_fold(0u64, |sum, n| async move { Ok(sum + n) })
        .await?;
    Ok(Outcome {
        action: Action::Copy,
        source_digest: sel.source_digest.clone(),
        target_digest: sel.shaped.root.digest.clone(),
        manifests_pushed: 0,
        reason: sel.shaped.reason.clone(),
        bytes_to_move: Some(missing),
        referrers: None,
        verification: None,
    })
}

/// The referrers of what this copy put in the target travel; those of a
/// root the copy rewrote cannot (they name the source digest) and are
/// counted as left behind, with why.
async fn with_referrers(
    img: &Image<'_>,
    resolved: &Resolved,
    outcome: &Outcome,
) -> Result<ReferrerCounts, CopyError> {
    let source = &resolved.source_digest;
    let root = match &resolved.root {
        Some(r) => r.clone(),
        None => img
            .src
            .manifest_get(&ManifestRef::Digest(source.clone()))
            .await
            .map_err(|e| CopyError::new(Step::Referrers(source.clone()), e))?,
    };
    let options = &img.job.options;
    let children: Vec<Digest> = match platforms::choose(&root, &options.platforms)? {
        _ if options.format == crate::plan::Format::Oci => Vec::new(),
        RootChoice::Unwrap(child) => vec![child.digest],
        RootChoice::Filter(sel) => sel.kept.into_iter().map(|d| d.digest).collect(),
        RootChoice::Whole => match root.parse() {
            Ok(crate::manifest::Parsed::Index(i)) => {
                i.manifests.into_iter().map(|d| d.digest).collect()
            }
            _ => Vec::new(),
        },
    };
    let mut subjects = children;
    let mut behind = ReferrerCounts::default();
    if &outcome.target_digest == source {
        subjects.insert(0, source.clone());
    } else {
        let n = referrers::count(img, source).await?;
        if n > 0 {
            behind.left_behind = n as u64;
            behind.notes.push(format!(
                "{n} referrers of {source} stay behind: the target holds {} instead ({}), which they do not name",
                outcome.target_digest,
                outcome.reason.as_deref().unwrap_or("rewritten")
            ));
        }
    }
    let mut counts = referrers::travel(img, subjects).await?;
    counts.left_behind += behind.left_behind;
    counts.notes.extend(behind.notes);
    Ok(counts)
}
