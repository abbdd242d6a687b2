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
use crate::copy::Task;
use crate::plan::CopyJob;
use crate::reference::{ImageRef, Reference};
use crate::report::{Action, BlobCounts, ImageReport};
use crate::store::{Access, Role, Store, StoreError, Stores};

/// What a job expands to: images to copy, and reports already settled
/// (immutable tags skipped, listings that failed).
#[derive(Default)]
pub struct Expanded {
    pub tasks: Vec<Task>,
    pub settled: Vec<ImageReport>,
}

/// Expands one job; failures of one repository do not stop the others.
pub async fn expand(config: &Config, job: &Job, stores: &Stores, common: Common) -> Expanded {
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
        if let Err(e) = expand_repository(job, stores, &accesses, &src, &dst, &mut out).await {
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
    src_repo: &Reference,
    dst_repo: &Reference,
    out: &mut Expanded,
) -> Result<(), String> {
    let (source, target) = (
        ImageRef::Registry(src_repo.clone()),
        ImageRef::Registry(dst_repo.clone()),
    );
    let src = stores
        .open(&source, &accesses.0, Role::Source)
        .map_err(|e| e.to_string())?;
    let dst = stores
        .open(&target, &accesses.1, Role::Target)
        .map_err(|e| e.to_string())?;
    let listing = src
        .tags()
        .await
        .map_err(|e| format!("listing the tags of {source}: {e}"))?;
    let selected = job.tags.apply(&listing);
    let settled = immutable_in_target(job, &selected, dst.as_ref())
        .await
        .map_err(|e| format!("listing the tags of {target}: {e}"))?;
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
        out.tasks.push(Task {
            job: copy,
            src: src.clone(),
            dst: dst.clone() as Arc<dyn Store>,
        });
    }
    Ok(())
}

/// Selected tags that match an immutable pattern and that the target
/// already lists: they cost no per-tag request.
async fn immutable_in_target(
    job: &Job,
    selected: &[String],
    dst: &dyn Store,
) -> Result<HashSet<String>, StoreError> {
    let candidates: Vec<&String> = selected
        .iter()
        .filter(|t| job.immutable.iter().any(|p| p.matches(t)))
        .collect();
    if candidates.is_empty() {
        return Ok(HashSet::new());
    }
    let present: HashSet<String> = match dst.tags().await {
        Ok(tags) => tags.into_iter().collect(),
        // A repository the target does not have yet lists nothing.
        Err(StoreError::NotFound { .. }) => HashSet::new(),
        Err(e) => return Err(e),
    };
    Ok(candidates
        .into_iter()
        .filter(|t| present.contains(*t))
        .cloned()
        .collect())
}

fn describe(e: &Endpoint) -> String {
    match e {
        Endpoint::Repository(r) => r.to_string(),
        Endpoint::Namespace { at, prefix } => format!("{}/{prefix}", at.registry()),
    }
}

fn report(job: &Job, source: String, target: String, action: Action) -> ImageReport {
    ImageReport {
        job: Some(job.name.clone()),
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
        error: None,
        usage_error: false,
    }
}

fn failed(job: &Job, source: &str, target: &str, error: String) -> ImageReport {
    ImageReport {
        error: Some(error),
        ..report(job, source.to_string(), target.to_string(), Action::Failed)
    }
}

fn skipped(job: &Job, source: &ImageRef, target: &ImageRef) -> ImageReport {
    ImageReport {
        reason: Some("immutable tag already in the target".into()),
        ..report(job, source.to_string(), target.to_string(), Action::Skipped)
    }
}
