//! Mirror jobs across an air gap: `--to-archive` runs the jobs against
//! their sources and writes what they select into one archive (or layout
//! directory) under the source names, in place of their targets;
//! `--from-archive` runs them with that archive in place of each source,
//! into each job's own target.
//!
//! Owns the swap (which store stands where), listing an archive's
//! repositories for namespace jobs, and the check that an incremental
//! archive's target holds what it left out before any tag moves. Never
//! reads or writes an archive's bytes itself.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::state::fingerprint;
use crate::copy::{Based, Missing, Replicator, Task, missing_in_target};
use crate::digest::Digest;
use crate::reference::{ImageRef, LayoutKind, LayoutRef, ManifestRef, Reference};
use crate::report::{Action, ImageReport};
use crate::store::{Access, Role, Store, Stores};

/// An archive (or layout directory) a run reads or writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub kind: LayoutKind,
    pub path: PathBuf,
}

/// Which side of the jobs an archive takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    /// In place of every target, named after the sources.
    ToArchive(Archive),
    /// In place of every source.
    FromArchive(Archive),
}

impl Archive {
    /// `oci:DIR`, `oci-archive:PATH`, `docker-archive:PATH`, or a bare
    /// path (an OCI archive).
    pub fn parse(text: &str) -> Result<Archive, String> {
        let (kind, path) = match ImageRef::parse(text) {
            Ok(ImageRef::Layout(l)) if l.repository.is_none() && l.tag.is_none() => {
                (l.kind, l.path)
            }
            Ok(ImageRef::Layout(_)) => {
                return Err(format!(
                    "{text:?}: an archive for a mirror job takes no NAME"
                ));
            }
            _ => (LayoutKind::OciArchive, PathBuf::from(text)),
        };
        if path.as_os_str().is_empty() {
            return Err("the archive path is empty".into());
        }
        Ok(Archive { kind, path })
    }

    /// The archive's store for the images of `repository`.
    pub fn open(
        &self,
        stores: &Stores,
        repository: &Reference,
        role: Role,
    ) -> Result<Arc<dyn Store>, String> {
        let at = ImageRef::Layout(LayoutRef {
            kind: self.kind,
            path: self.path.clone(),
            repository: Some(repository.with(None, None)),
            tag: None,
        });
        stores
            .open(&at, &Access::default(), role)
            .map_err(|e| e.to_string())
    }

    /// The repositories the archive holds on `registry` below `prefix`.
    pub async fn repositories(
        &self,
        stores: &Stores,
        registry: &str,
        prefix: &str,
    ) -> Result<Vec<String>, String> {
        let names: Vec<Reference> = match self.kind {
            LayoutKind::Dir => {
                let l = crate::store::layout::LayoutStore::open(&self.path, false)
                    .map_err(|e| e.to_string())?;
                let entries = l.entries().map_err(|e| e.to_string())?;
                entries.into_iter().filter_map(|e| e.repository).collect()
            }
            _ => {
                let reader = stores
                    .archive_reader(&self.path)
                    .map_err(|e| e.to_string())?;
                reader
                    .scoped(None)
                    .repositories()
                    .await
                    .map_err(|e| e.to_string())?
            }
        };
        let mut out: Vec<String> = names
            .into_iter()
            .filter(|r| r.registry() == registry && r.repository().starts_with(prefix))
            .map(|r| r.repository().to_string())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// What an incremental archive left out: digest → the earlier export.
    pub async fn omitted(&self, stores: &Stores) -> Result<HashMap<Digest, String>, String> {
        if self.kind == LayoutKind::Dir {
            return Ok(HashMap::new());
        }
        let reader = stores
            .archive_reader(&self.path)
            .map_err(|e| e.to_string())?;
        let omitted = reader
            .scoped(None)
            .omitted()
            .await
            .map_err(|e| e.to_string())?;
        Ok(omitted.into_iter().collect())
    }
}

/// Imports from an incremental archive: each target gets a source that
/// reads what the archive left out from that target (see `copy::Based`).
pub fn based_tasks(tasks: Vec<Task>) -> Vec<Task> {
    tasks
        .into_iter()
        .flat_map(|t| {
            let src = t.src.clone();
            t.targets.into_iter().map(move |target| Task {
                src: Arc::new(Based {
                    src: src.clone(),
                    base: target.dst.clone(),
                }),
                targets: vec![target],
            })
        })
        .collect()
}

/// Before an incremental archive moves any tag: every image's left-out
/// content must be in its target. Returns a failed report per image that
/// lacks some (naming the digests and the export that carried them).
pub async fn check_incremental(
    tasks: &[Task],
    omitted: &HashMap<Digest, String>,
    replicator: &Replicator,
) -> Vec<ImageReport> {
    let mut failed = Vec::new();
    if omitted.is_empty() {
        return failed;
    }
    // Every target repository of the import, once: an earlier archive's
    // blob may sit in another repository of the registry (mounted then).
    let mut siblings: Vec<&dyn Store> = Vec::new();
    for t in tasks.iter().flat_map(|t| &t.targets) {
        if !siblings.iter().any(|s| s.location() == t.dst.location()) {
            siblings.push(t.dst.as_ref());
        }
    }
    for task in tasks {
        for t in &task.targets {
            let why = match root(task.src.as_ref(), &t.job.src).await {
                Err(e) => Some(e),
                Ok(None) => None,
                Ok(Some(root)) => {
                    let checked = missing_in_target(
                        task.src.as_ref(),
                        t.dst.as_ref(),
                        &siblings,
                        &root,
                        omitted,
                    )
                    .await;
                    match checked {
                        Err(e) => Some(e.to_string()),
                        Ok(c) => {
                            for (at, d) in &c.elsewhere {
                                replicator.holds(at, d);
                            }
                            missing_reason(&c.missing)
                        }
                    }
                }
            };
            if let Some(why) = why {
                failed.push(ImageReport {
                    error: Some(why),
                    ..super::select::report(
                        t.job.label.as_deref().unwrap_or(""),
                        t.job.source_display(),
                        t.job.target_display(),
                        Action::Failed,
                    )
                });
            }
        }
    }
    failed
}

/// What a target lacks, naming the earlier exports to import first.
fn missing_reason(missing: &[Missing]) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    let mut by: Vec<&str> = missing.iter().map(|x| x.carried_by.as_str()).collect();
    by.sort();
    by.dedup();
    let digests: Vec<String> = missing.iter().map(|x| x.digest.to_string()).collect();
    Some(format!(
        "the target lacks what this incremental archive left out: import the earlier export(s) {} first (missing: {})",
        by.join(", "),
        digests.join(", ")
    ))
}

async fn root(src: &dyn Store, r: &ManifestRef) -> Result<Option<Digest>, String> {
    match r {
        ManifestRef::Digest(d) => Ok(Some(d.clone())),
        tag => src.manifest_head(tag).await.map_err(|e| e.to_string()),
    }
}

/// Into an archive, images are named after their sources: two jobs that
/// select the same source tag write one image. The same shape is one
/// task; different shapes (platforms, mode, format) cannot share a name,
/// and the later job's image is refused, saying so.
pub fn one_image_per_name(tasks: Vec<Task>) -> (Vec<Task>, Vec<ImageReport>) {
    let mut kept: Vec<Task> = Vec::new();
    let mut refused = Vec::new();
    for task in tasks {
        let mut targets = Vec::new();
        for t in task.targets {
            let name = t.job.target_display();
            let earlier = kept
                .iter()
                .flat_map(|k| &k.targets)
                .chain(&targets)
                .find(|k| k.job.target_display() == name);
            match earlier {
                None => targets.push(t),
                Some(e) if fingerprint(&e.job.options) == fingerprint(&t.job.options) => {}
                Some(e) => refused.push(ImageReport {
                    error: Some(format!(
                        "jobs {} and {} both export {} into the archive, shaped differently (platforms, mode or format); an archive holds one image per source name: give them the same options, or one job another source",
                        e.job.label.as_deref().unwrap_or("?"),
                        t.job.label.as_deref().unwrap_or("?"),
                        t.job.source_display()
                    )),
                    ..super::select::report(
                        t.job.label.as_deref().unwrap_or(""),
                        t.job.source_display(),
                        name,
                        Action::Failed,
                    )
                }),
            }
        }
        if !targets.is_empty() {
            kept.push(Task {
                src: task.src,
                targets,
            });
        }
    }
    (kept, refused)
}
