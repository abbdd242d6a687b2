//! Jobs → images: the repositories a job covers (one, or a registry's
//! catalog under a prefix), the tags it keeps of each, and which of them
//! need no request at all (immutable tags the target already lists).
//!
//! Owns the listing cost of a run: per repository one tag listing of the
//! source (all pages) and one of the target, and per namespace job one
//! catalog. Never copies anything, and never takes the state file's word
//! for what the target holds.

use std::collections::HashSet;
use std::sync::Arc;

use super::access::{Common, access};
use super::airgap::Swap;
use super::job::{Config, Endpoint, Job};
use super::shard::Shard;
use super::state::State;
use super::trigger::Trigger;
use crate::copy::{Target, Task};
use crate::manifest::referrers::is_attachment_tag;
use crate::plan::{CopyJob, Known};
use crate::reference::{ImageRef, Reference};
use crate::report::{Action, BlobCounts, ImageReport};
use crate::store::{Access, Role, Store, Stores};

/// What a job expands to: images to copy, reports already settled
/// (immutable tags the target lists, listings that failed), and the
/// repositories it covers (for pruning).
#[derive(Default)]
pub struct Expanded {
    pub tasks: Vec<Task>,
    pub settled: Vec<ImageReport>,
    pub repos: Vec<Repo>,
}

/// One (source, target) repository pair of a job.
pub struct Repo {
    pub job: String,
    pub source: String,
    pub target: String,
    pub dst: Arc<dyn Store>,
    /// Every tag the source lists.
    pub source_tags: Vec<String>,
}

/// What a run knows beyond the config: its state file, its shard, and an
/// archive standing in for the targets or the sources.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub state: &'a State,
    pub shard: Option<Shard>,
    pub common: Common,
    pub swap: Option<&'a Swap>,
    /// A triggered run: only what the events named.
    pub trigger: Option<&'a Trigger>,
}

impl Scope<'_> {
    /// Whether this run owns the image (with shards, one of N does).
    pub fn owns(&self, job: &str, target_repo: &str, tag: &str) -> bool {
        self.shard.is_none_or(|s| s.owns(job, target_repo, tag))
    }
}

/// Expands one job; failures of one repository (or one target) do not
/// stop the others.
pub async fn expand(config: &Config, job: &Job, stores: &Stores, scope: Scope<'_>) -> Expanded {
    let common = scope.common;
    let mut out = Expanded::default();
    let every_target = || {
        job.targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let from_archive = matches!(scope.swap, Some(Swap::FromArchive(_)));
    let src_access = match access(config, job.source.registry(), job, common) {
        _ if from_archive => Access::default(),
        Ok(a) => a,
        Err(e) => {
            out.settled
                .push(failed(job, &job.source.to_string(), &every_target(), e));
            return out;
        }
    };
    let mut dst_accesses = Vec::new();
    let to_archive = matches!(scope.swap, Some(Swap::ToArchive(_)));
    for t in job.targets.iter().filter(|_| !to_archive) {
        match access(config, t.registry(), job, common) {
            Ok(a) => dst_accesses.push(a),
            Err(e) => {
                out.settled
                    .push(failed(job, &job.source.to_string(), &t.to_string(), e));
                return out;
            }
        }
    }
    if to_archive {
        dst_accesses.push(Access::default());
    }
    let groups = match repositories(job, stores, &src_access, scope).await {
        Ok(p) => p,
        Err(e) => {
            out.settled
                .push(failed(job, &job.source.to_string(), &every_target(), e));
            return out;
        }
    };
    for (src, dsts) in groups {
        let place = Place {
            accesses: (&src_access, &dst_accesses),
            src: &src,
            dsts: &dsts,
        };
        if let Err(e) = expand_repository(job, stores, place, scope, &mut out).await {
            let targets: Vec<String> = dsts.iter().map(ToString::to_string).collect();
            out.settled
                .push(failed(job, &src.to_string(), &targets.join(", "), e));
        }
    }
    out
}

/// Each source repository of a job, with its repository in every target
/// (in the order of the job's targets).
async fn repositories(
    job: &Job,
    stores: &Stores,
    src_access: &Access,
    scope: Scope<'_>,
) -> Result<Vec<(Reference, Vec<Reference>)>, String> {
    let swap = scope.swap;
    let mut groups = job_repositories(job, stores, src_access, scope).await?;
    // A triggered run reads only the repositories its events named.
    if let Some(t) = scope.trigger {
        groups.retain(|(src, _)| t.repositories.contains_key(src.repository()));
    }
    // Into an archive, each source repository keeps its own name there.
    Ok(match swap {
        Some(Swap::ToArchive(_)) => groups
            .into_iter()
            .map(|(src, _)| (src.clone(), vec![src]))
            .collect(),
        _ => groups,
    })
}

async fn job_repositories(
    job: &Job,
    stores: &Stores,
    src_access: &Access,
    scope: Scope<'_>,
) -> Result<Vec<(Reference, Vec<Reference>)>, String> {
    let swap = scope.swap;
    let (at, prefix) = match &job.source {
        Endpoint::Repository(s) => {
            let dsts = job
                .targets
                .iter()
                .map(|t| match t {
                    Endpoint::Repository(t) => Ok(t.clone()),
                    Endpoint::Namespace { .. } => Err(MIXED.to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(vec![(s.clone(), dsts)]);
        }
        Endpoint::Namespace { at, prefix } => (at, prefix),
    };
    let catalog = match (swap, scope.trigger) {
        (Some(Swap::FromArchive(a)), _) => a.repositories(stores, at.registry(), prefix).await?,
        // The events named the repositories: no catalog is read.
        (None, Some(t)) => t.repositories.keys().cloned().collect(),
        _ => stores
            .repositories(at, src_access, prefix)
            .await
            .map_err(|e| {
                format!(
                    "listing the repositories of {}/{prefix}: {e}",
                    at.registry()
                )
            })?,
    };
    let mut groups = Vec::new();
    for name in catalog {
        let Some(below) = name.strip_prefix(prefix.as_str()) else {
            continue;
        };
        if below.is_empty() || !job.repositories.admits(below) {
            continue;
        }
        let dsts = job
            .targets
            .iter()
            .map(|t| match t {
                Endpoint::Namespace { at, prefix } => {
                    Ok(at.with_repository(&format!("{prefix}{below}")))
                }
                Endpoint::Repository(_) => Err(MIXED.to_string()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        groups.push((at.with_repository(&name), dsts));
    }
    Ok(groups)
}

const MIXED: &str = "source and targets must all be repositories or all namespaces";

/// One source repository and its repository in each target.
struct Place<'a> {
    accesses: (&'a Access, &'a [Access]),
    src: &'a Reference,
    dsts: &'a [Reference],
}

/// One target repository of a source repository, opened and listed.
struct TargetRepo {
    image: ImageRef,
    dst: Arc<dyn Store>,
    /// Its tags (`None`: it would not list them).
    present: Option<HashSet<String>>,
}

async fn expand_repository(
    job: &Job,
    stores: &Stores,
    place: Place<'_>,
    scope: Scope<'_>,
    out: &mut Expanded,
) -> Result<(), String> {
    let source = match scope.swap {
        Some(Swap::FromArchive(a)) => ImageRef::Layout(crate::reference::LayoutRef {
            kind: a.kind,
            path: a.path.clone(),
            repository: Some(place.src.clone()),
            tag: None,
        }),
        _ => ImageRef::Registry(place.src.clone()),
    };
    let src = match scope.swap {
        Some(Swap::FromArchive(a)) => a.open(stores, place.src, Role::Source)?,
        _ => stores
            .open(&source, place.accesses.0, Role::Source)
            .map_err(|e| e.to_string())?,
    };
    let opened = open_targets(job, stores, &place, scope, (&source, out));
    // Every target's tag list, one request per repository and run, is the
    // truth about what it holds: each tag it lacks needs no HEAD, and an
    // immutable tag is skipped only when it is listed there. The state
    // file never stands in for it: a tag deleted from a target behind a
    // run's back is copied again.
    let listings = futures::future::join_all(
        opened
            .iter()
            .map(|(_, dst)| crate::copy::target_tags(dst.as_ref())),
    );
    let (listing, present) = futures::join!(src.tags(), listings);
    let listing = listing.map_err(|e| format!("listing the tags of {source}: {e}"))?;
    let targets: Vec<TargetRepo> = opened
        .into_iter()
        .zip(present)
        .map(|((image, dst), present)| TargetRepo {
            image,
            dst,
            present,
        })
        .collect();
    for tag in kept_tags(job, &listing, place.src.repository(), scope) {
        let mut each = Vec::new();
        for t in &targets {
            if let Some(target) = target_of(job, &source, t, &tag, scope, out)? {
                each.push(target);
            }
        }
        if !each.is_empty() {
            out.tasks.push(Task {
                src: src.clone(),
                targets: each,
            });
        }
    }
    for t in targets {
        out.repos.push(Repo {
            job: job.name.clone(),
            source: source.to_string(),
            target: t.image.to_string(),
            dst: t.dst,
            source_tags: listing.clone(),
        });
    }
    Ok(())
}

/// The tags of `listing` this run copies: the job's filters, without the
/// tags that hold signatures when the job verifies (those enter only as
/// referrers of an image that passed), and only what a trigger named.
fn kept_tags(job: &Job, listing: &[String], repository: &str, scope: Scope<'_>) -> Vec<String> {
    job.tags
        .apply(listing)
        .into_iter()
        .filter(|tag| !(job.options.verify.is_some() && is_attachment_tag(tag)))
        .filter(|tag| scope.trigger.is_none_or(|t| t.admits(repository, tag)))
        .collect()
}

/// Each target repository of `place`, opened (a registry repository, or
/// one in the archive a run writes); one that cannot be opened is
/// reported failed, and the others go on.
fn open_targets(
    job: &Job,
    stores: &Stores,
    place: &Place<'_>,
    scope: Scope<'_>,
    (source, out): (&ImageRef, &mut Expanded),
) -> Vec<(ImageRef, Arc<dyn Store>)> {
    let mut opened = Vec::new();
    for (d, access) in place.dsts.iter().zip(place.accesses.1) {
        let (image, dst) = match scope.swap {
            Some(Swap::ToArchive(a)) => (
                ImageRef::Layout(crate::reference::LayoutRef {
                    kind: a.kind,
                    path: a.path.clone(),
                    repository: Some(d.clone()),
                    tag: None,
                }),
                a.open(stores, d, Role::Target),
            ),
            _ => {
                let image = ImageRef::Registry(d.clone());
                let dst = stores
                    .open(&image, access, Role::Target)
                    .map_err(|e| e.to_string());
                (image, dst)
            }
        };
        match dst {
            Ok(dst) => opened.push((image, dst)),
            Err(e) => out.settled.push(failed(
                job,
                &source.to_string(),
                &image.to_string(),
                e.to_string(),
            )),
        }
    }
    opened
}

/// The copy of `tag` into one target repository, or `None` when this run
/// does not own it (shards) or it is settled already (an immutable tag the
/// target lists: reported skipped).
fn target_of(
    job: &Job,
    source: &ImageRef,
    t: &TargetRepo,
    tag: &str,
    scope: Scope<'_>,
    out: &mut Expanded,
) -> Result<Option<Target>, String> {
    let repo = t.image.to_string();
    if !scope.owns(&job.name, &repo, tag) {
        return Ok(None);
    }
    let target_tag = t.image.with_tag(tag);
    if immutable_in_target(job, tag, t.present.as_ref()) {
        out.settled
            .push(skipped(job, &source.with_tag(tag), &target_tag));
        return Ok(None);
    }
    let context = Known {
        label: Some(job.name.clone()),
        hint: scope.state.hint(&target_tag.to_string(), &job.options),
        target_lacks_tag: t.present.as_ref().is_some_and(|p| !p.contains(tag)),
    };
    // From an archive, the image is what the export selected and shaped.
    let options = match scope.swap {
        Some(Swap::FromArchive(_)) => job.options.as_stored(),
        _ => job.options.clone(),
    };
    let copy = CopyJob::with_context(source.with_tag(tag), target_tag, options, context)
        .map_err(|e| e.to_string())?;
    Ok(Some(Target {
        job: copy,
        dst: t.dst.clone(),
    }))
}

/// Whether `tag` matches an immutable pattern and the target's tag list
/// names it (`None`: it would not list them, so nothing is settled).
fn immutable_in_target(job: &Job, tag: &str, present: Option<&HashSet<String>>) -> bool {
    present.is_some_and(|p| p.contains(tag)) && job.immutable.iter().any(|p| p.matches(tag))
}

/// A report for what a run decided without copying.
pub fn report(job: &str, source: String, target: String, action: Action) -> ImageReport {
    ImageReport {
        job: Some(job.to_string()),
        source,
        target,
        source_digest: None,
        target_digest: None,
        digest_preserved: false,
        action,
        blobs: BlobCounts::default(),
        manifests_pushed: 0,
        bytes_copied: 0,
        duration_ms: 0,
        reason: None,
        referrers: None,
        verification: None,
        error: None,
        usage_error: false,
    }
}

fn failed(job: &Job, source: &str, target: &str, error: String) -> ImageReport {
    ImageReport {
        error: Some(error),
        ..report(
            &job.name,
            source.to_string(),
            target.to_string(),
            Action::Failed,
        )
    }
}

fn skipped(job: &Job, source: &ImageRef, target: &ImageRef) -> ImageReport {
    ImageReport {
        reason: Some("immutable tag already in the target".into()),
        ..report(
            &job.name,
            source.to_string(),
            target.to_string(),
            Action::Skipped,
        )
    }
}
