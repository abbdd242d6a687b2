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
use super::job::{Config, Endpoint, Job};
use super::shard::Shard;
use super::state::State;
use crate::copy::Task;
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

/// What a run knows beyond the config: its state file and its shard.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub state: &'a State,
    pub shard: Option<Shard>,
    pub common: Common,
}

impl Scope<'_> {
    /// Whether this run owns the image (with shards, one of N does).
    pub fn owns(&self, job: &str, target_repo: &str, tag: &str) -> bool {
        self.shard.is_none_or(|s| s.owns(job, target_repo, tag))
    }
}

/// Expands one job; failures of one repository do not stop the others.
pub async fn expand(config: &Config, job: &Job, stores: &Stores, scope: Scope<'_>) -> Expanded {
    let common = scope.common;
    let mut out = Expanded::default();
    let accesses = match (
        access(config, job.source.registry(), job, common),
        access(config, job.target.registry(), job, common),
    ) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => {
            out.settled.push(failed(
                job,
                &job.source.to_string(),
                &job.target.to_string(),
                e,
            ));
            return out;
        }
    };
    let pairs = match repositories(job, stores, &accesses.0).await {
        Ok(p) => p,
        Err(e) => {
            out.settled.push(failed(
                job,
                &job.source.to_string(),
                &job.target.to_string(),
                e,
            ));
            return out;
        }
    };
    for (src, dst) in pairs {
        if let Err(e) =
            expand_repository(job, stores, &accesses, (&src, &dst), scope, &mut out).await
        {
            out.settled
                .push(failed(job, &src.to_string(), &dst.to_string(), e));
        }
    }
    out
}

/// (source, target) repositories of a job.
async fn repositories(
    job: &Job,
    stores: &Stores,
    src_access: &Access,
) -> Result<Vec<(Reference, Reference)>, String> {
    let (at, prefix, target) = match (&job.source, &job.target) {
        (Endpoint::Repository(s), Endpoint::Repository(t)) => {
            return Ok(vec![(s.clone(), t.clone())]);
        }
        (Endpoint::Namespace { at, prefix }, Endpoint::Namespace { at: t, prefix: tp }) => {
            (at, prefix, (t, tp))
        }
        _ => return Err("source and target must both be repositories or both namespaces".into()),
    };
    let registry = stores.registry(at, src_access).map_err(|e| e.to_string())?;
    let catalog = registry.catalog(src_access.page_size).await.map_err(|e| {
        format!(
            "listing the repositories of {} (the catalog): {e}",
            registry.name()
        )
    })?;
    let mut pairs = Vec::new();
    for name in catalog {
        let Some(below) = name.strip_prefix(prefix.as_str()) else {
            continue;
        };
        if below.is_empty() || !job.repositories.admits(below) {
            continue;
        }
        let src = at.with_repository(&name);
        let dst = target.0.with_repository(&format!("{}{below}", target.1));
        pairs.push((src, dst));
    }
    Ok(pairs)
}

async fn expand_repository(
    job: &Job,
    stores: &Stores,
    accesses: &(Access, Access),
    (src_repo, dst_repo): (&Reference, &Reference),
    scope: Scope<'_>,
    out: &mut Expanded,
) -> Result<(), String> {
    let source = ImageRef::Registry(src_repo.clone());
    let target = ImageRef::Registry(dst_repo.clone());
    let src = stores
        .open(&source, &accesses.0, Role::Source)
        .map_err(|e| e.to_string())?;
    let dst = stores
        .open(&target, &accesses.1, Role::Target)
        .map_err(|e| e.to_string())?;
    let repo = target.to_string();
    // The target's tag list, one request per repository and run, is the
    // truth about what the target holds: each tag it lacks needs no HEAD,
    // and an immutable tag is skipped only when it is listed there. The
    // state file never stands in for it: a tag deleted from the target
    // behind a run's back is copied again.
    let (listing, present) = futures::join!(src.tags(), crate::copy::target_tags(dst.as_ref()));
    let listing = listing.map_err(|e| format!("listing the tags of {source}: {e}"))?;
    let selected: Vec<String> = job
        .tags
        .apply(&listing)
        .into_iter()
        .filter(|t| scope.owns(&job.name, &repo, t))
        .collect();
    let settled = immutable_in_target(job, &selected, present.as_ref());
    for tag in selected {
        if settled.contains(&tag) {
            out.settled
                .push(skipped(job, &source.with_tag(&tag), &target.with_tag(&tag)));
            continue;
        }
        let target_tag = target.with_tag(&tag);
        let context = Known {
            label: Some(job.name.clone()),
            hint: scope.state.hint(&target_tag.to_string(), &job.options),
            target_lacks_tag: present.as_ref().is_some_and(|p| !p.contains(&tag)),
        };
        let copy = CopyJob::with_context(
            source.with_tag(&tag),
            target_tag,
            job.options.clone(),
            context,
        )
        .map_err(|e| e.to_string())?;
        out.tasks.push(Task {
            job: copy,
            src: src.clone(),
            dst: dst.clone(),
        });
    }
    out.repos.push(Repo {
        job: job.name.clone(),
        source: source.to_string(),
        target: repo,
        dst,
        source_tags: listing,
    });
    Ok(())
}

/// Selected tags that match an immutable pattern and that the target's
/// tag list names (`None`: it would not list them, so none is settled).
fn immutable_in_target(
    job: &Job,
    selected: &[String],
    present: Option<&HashSet<String>>,
) -> HashSet<String> {
    let Some(present) = present else {
        return HashSet::new();
    };
    selected
        .iter()
        .filter(|t| job.immutable.iter().any(|p| p.matches(t)) && present.contains(*t))
        .cloned()
        .collect()
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
