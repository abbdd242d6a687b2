//! Jobs → images: the repositories a job covers (one, or a registry's
//! catalog under a prefix), the tags it keeps of each, and which of them
//! need no request at all (immutable tags the target already lists).
//!
//! Owns the listing cost of a run: per repository one tag listing of the
//! source (all pages), one of the target when the job has immutable
//! patterns, and per namespace job one catalog. Never copies anything.

use std::collections::HashSet;
use std::sync::Arc;

use super::access::{Common, access};
use super::job::{Config, Endpoint, Job};
use super::shard::Shard;
use super::state::State;
use crate::copy::Task;
use crate::plan::CopyJob;
use crate::reference::{ImageRef, Reference};
use crate::report::{Action, BlobCounts, ImageReport};
use crate::store::{Access, Role, Store, Stores};

/// What a job expands to: images to copy, reports already settled
/// (immutable tags skipped, listings that failed), and the repositories it
/// covers (for pruning).
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
                &describe(&job.source),
                &describe(&job.target),
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
                &describe(&job.source),
                &describe(&job.target),
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
    // The target's tag list spares a HEAD for each tag it lacks. Where the
    // state file knows the repository, its tags are mostly there and the
    // listing would spare little: it is read only for immutable tags the
    // state does not know.
    let known = scope.state.knows_repository(&repo);
    let (listing, present) = futures::join!(src.tags(), async {
        if known {
            None
        } else {
            crate::copy::target_tags(dst.as_ref()).await
        }
    });
    let listing = listing.map_err(|e| format!("listing the tags of {source}: {e}"))?;
    let selected: Vec<String> = job
        .tags
        .apply(&listing)
        .into_iter()
        .filter(|t| scope.owns(&job.name, &repo, t))
        .collect();
    let present = match present {
        None if known && unknown_immutables(job, &selected, scope.state, &target) => {
            crate::copy::target_tags(dst.as_ref()).await
        }
        p => p,
    };
    let settled = immutable_in_target(job, &selected, present.as_ref(), scope.state, &target);
    for tag in selected {
        if settled.contains(&tag) {
            out.settled
                .push(skipped(job, &source.with_tag(&tag), &target.with_tag(&tag)));
            continue;
        }
        let mut copy = CopyJob::new(
            source.with_tag(&tag),
            target.with_tag(&tag),
            job.options.clone(),
        )
        .map_err(|e| e.to_string())?;
        copy.label = Some(job.name.clone());
        copy.options.pull_reserve = Some(u64::from(job.ratelimit_min));
        copy.hint = scope.state.hint(&copy.target_display(), &copy.options);
        copy.target_lacks_tag = present.as_ref().is_some_and(|p| !p.contains(&tag));
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

/// Whether a selected tag matches an immutable pattern and the state file
/// does not know it.
fn unknown_immutables(job: &Job, selected: &[String], state: &State, target: &ImageRef) -> bool {
    selected.iter().any(|t| {
        job.immutable.iter().any(|p| p.matches(t)) && !state.knows(&target.with_tag(t).to_string())
    })
}

/// Selected tags that match an immutable pattern and are in the target
/// already: known from the state file, else from the target's tag list
/// (`None`: it would not list them).
fn immutable_in_target(
    job: &Job,
    selected: &[String],
    present: Option<&HashSet<String>>,
    state: &State,
    target: &ImageRef,
) -> HashSet<String> {
    let candidates: Vec<&String> = selected
        .iter()
        .filter(|t| job.immutable.iter().any(|p| p.matches(t)))
        .collect();
    let (known, unknown): (Vec<&String>, Vec<&String>) = candidates
        .into_iter()
        .partition(|t| state.knows(&target.with_tag(t).to_string()));
    let mut settled: HashSet<String> = known.into_iter().cloned().collect();
    if let Some(present) = present {
        settled.extend(
            unknown
                .into_iter()
                .filter(|t| present.contains(*t))
                .cloned(),
        );
    }
    settled
}

fn describe(e: &Endpoint) -> String {
    match e {
        Endpoint::Repository(r) => r.to_string(),
        Endpoint::Namespace { at, prefix } => format!("{}/{prefix}", at.registry()),
    }
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
