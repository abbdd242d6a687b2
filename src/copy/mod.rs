//! The [`Replicator`]: copies one image between two [`Store`]s, byte-exact.
//!
//! Owns the order of a copy: resolve (one HEAD per side when up to date),
//! walk, blobs, child manifests by digest, and the tag last, so a failure
//! leaves the target tag where it was. Talks only to `Store`: never sees a
//! URL, a status code, a token or a file path.

pub mod blobs;
pub mod walk;

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::stream::{self, TryStreamExt};

use crate::digest::Digest;
use crate::manifest::RawManifest;
use crate::plan::CopyJob;
use crate::report::{Action, BlobCounts, ImageReport};
use crate::store::{ManifestRef, Store, StoreError};
use blobs::{BlobStats, Ends};

/// Knobs of a copy; `Default` is what the CLI uses.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Concurrent blob transfers and manifest fetches.
    pub jobs: usize,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions { jobs: 6 }
    }
}

/// Which step of a copy failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    ReadSource,
    CheckTarget,
    Walk,
    ReadChild(Digest),
    Blob(Digest),
    PushChild(Digest),
    PushRoot,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::ReadSource => f.write_str("reading the source manifest"),
            Step::CheckTarget => f.write_str("checking the target"),
            Step::Walk => f.write_str("reading the image's structure"),
            Step::ReadChild(d) => write!(f, "reading child manifest {d}"),
            Step::Blob(d) => write!(f, "copying blob {d}"),
            Step::PushChild(d) => write!(f, "pushing child manifest {d}"),
            Step::PushRoot => f.write_str("pushing the manifest"),
        }
    }
}

/// A failed step, with what the store said.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct CopyError {
    pub step: Step,
    #[source]
    pub source: Box<StoreError>,
}

impl CopyError {
    pub fn new(step: Step, source: StoreError) -> CopyError {
        CopyError {
            step,
            source: Box::new(source),
        }
    }
}

/// What a successful copy did.
struct Outcome {
    action: Action,
    source_digest: Digest,
    target_digest: Digest,
    manifests_pushed: u64,
}

/// Copies images from one store to another.
pub struct Replicator<'a> {
    src: &'a dyn Store,
    dst: &'a dyn Store,
    options: CopyOptions,
}

impl<'a> Replicator<'a> {
    pub fn new(src: &'a dyn Store, dst: &'a dyn Store, options: CopyOptions) -> Replicator<'a> {
        Replicator { src, dst, options }
    }

    /// Runs one job and reports on it; failures are in the report.
    pub async fn run(&self, job: &CopyJob) -> ImageReport {
        let started = Instant::now();
        let stats = BlobStats::default();
        let result = self.copy(job, &stats).await;
        let mut report = ImageReport {
            source: job.source_display(),
            target: job.target_display(),
            source_digest: None,
            target_digest: None,
            digest_preserved: false,
            action: Action::Failed,
            blobs: BlobCounts {
                copied: stats.copied.load(Ordering::Relaxed),
                mounted: stats.mounted.load(Ordering::Relaxed),
                skipped: stats.skipped.load(Ordering::Relaxed),
            },
            manifests_pushed: 0,
            bytes_copied: stats.bytes.load(Ordering::Relaxed),
            duration_ms: started.elapsed().as_millis() as u64,
            error: None,
        };
        match result {
            Ok(o) => {
                report.digest_preserved = o.source_digest == o.target_digest;
                report.source_digest = Some(o.source_digest.to_string());
                report.target_digest = Some(o.target_digest.to_string());
                report.action = o.action;
                report.manifests_pushed = o.manifests_pushed;
            }
            Err(e) => report.error = Some(e.to_string()),
        }
        report
    }

    async fn copy(&self, job: &CopyJob, stats: &BlobStats) -> Result<Outcome, CopyError> {
        // 1. resolve: the source digest, and whether the target has it already.
        let source_digest = match &job.src {
            ManifestRef::Digest(d) => d.clone(),
            tag => self
                .src
                .manifest_head(&job.src_repo, tag)
                .await
                .map_err(|e| CopyError::new(Step::ReadSource, e))?
                .ok_or_else(|| {
                    CopyError::new(
                        Step::ReadSource,
                        StoreError::NotFound {
                            what: format!("manifest {}", job.source_display()),
                        },
                    )
                })?,
        };
        if let Some(want) = &job.dst_digest
            && want != &source_digest
        {
            return Err(CopyError::new(
                Step::CheckTarget,
                StoreError::Protocol(format!(
                    "the target names digest {want}, but the source is {source_digest}"
                )),
            ));
        }
        let target_ref = match &job.dst_tag {
            Some(t) => ManifestRef::Tag(t.clone()),
            None => ManifestRef::Digest(source_digest.clone()),
        };
        let current = self
            .dst
            .manifest_head(&job.dst_repo, &target_ref)
            .await
            .map_err(|e| CopyError::new(Step::CheckTarget, e))?;
        if current.as_ref() == Some(&source_digest) {
            return Ok(Outcome {
                action: Action::UpToDate,
                target_digest: source_digest.clone(),
                source_digest,
                manifests_pushed: 0,
            });
        }

        // 2. walk.
        let root = self
            .src
            .manifest_get(&job.src_repo, &ManifestRef::Digest(source_digest.clone()))
            .await
            .map_err(|e| CopyError::new(Step::ReadSource, e))?;
        let jobs = self.options.jobs;
        let tree = walk::walk(self.src, &job.src_repo, root, jobs).await?;
        tracing::info!(
            source = %job.source_display(),
            children = tree.child_count(),
            blobs = tree.blobs.len(),
            "walked"
        );

        // 3. blobs.
        let ends = Ends {
            src: self.src,
            src_repo: &job.src_repo,
            dst: self.dst,
            dst_repo: &job.dst_repo,
        };
        blobs::copy_blobs(&ends, &tree.blobs, jobs, stats).await?;

        // 4. children by digest, deepest first; then the root, moving the tag.
        let mut pushed = 0u64;
        for level in &tree.child_levels {
            stream::iter(level.iter().map(Ok))
                .try_for_each_concurrent(jobs.max(1), |m: &RawManifest| async move {
                    self.dst
                        .manifest_put(&job.dst_repo, &ManifestRef::Digest(m.digest.clone()), m)
                        .await
                        .map_err(|e| CopyError::new(Step::PushChild(m.digest.clone()), e))
                })
                .await?;
            pushed += level.len() as u64;
        }
        self.dst
            .manifest_put(&job.dst_repo, &target_ref, &tree.root)
            .await
            .map_err(|e| CopyError::new(Step::PushRoot, e))?;
        pushed += 1;
        Ok(Outcome {
            action: Action::Copied,
            target_digest: tree.root.digest.clone(),
            source_digest,
            manifests_pushed: pushed,
        })
    }
}
