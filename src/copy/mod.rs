//! The [`Replicator`]: copies one image between two [`Store`]s, byte-exact.
//!
//! Owns the order of a copy: resolve (one HEAD per side when up to date),
//! walk, blobs, child manifests by digest, and the tag last, so a failure
//! leaves the target tag where it was. Talks only to `Store`: never sees a
//! URL, a status code, a token or a file path.

pub mod blobs;
pub mod convert;
pub mod walk;

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::digest::Digest;
use crate::manifest::RawManifest;
use crate::manifest::schema1::Schema1;
use crate::media::Kind;
use crate::plan::{CopyJob, Format, Mode};
use crate::platform::Platform;
use crate::report::{Action, BlobCounts, ImageReport};
use crate::store::{ManifestRef, Store, StoreError};
use blobs::{BlobStats, Ends};

/// The uncompressed size at which a layer being gunzipped (for its
/// diff_id) is treated as a decompression bomb. Real layers stay far below;
/// a gzip stream can expand about 1000-fold.
pub const MAX_UNCOMPRESSED_LAYER: u64 = 64 * 1024 * 1024 * 1024;

/// Knobs of a copy; `Default` is what the CLI uses.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Concurrent blob transfers and manifest fetches.
    pub jobs: usize,
    /// Keep only these platforms of an index (empty: all).
    pub platforms: Vec<Platform>,
    /// With exactly one platform kept, push that image instead of an index.
    pub unwrap: bool,
    pub mode: Mode,
    pub format: Format,
    /// Fetch foreign (non-distributable) layers from their URLs and push them.
    pub include_foreign: bool,
    /// See [`MAX_UNCOMPRESSED_LAYER`].
    pub max_uncompressed: u64,
    /// Where diff_ids of compressed layers are remembered between runs.
    pub diff_id_cache: Option<PathBuf>,
    /// The largest manifest read (children are refused by their descriptor's
    /// size before any request).
    pub max_manifest_size: u64,
    /// A deadline for each image, all steps and retries included.
    pub timeout: Option<std::time::Duration>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            jobs: 6,
            platforms: Vec::new(),
            unwrap: false,
            mode: Mode::Verbatim,
            format: Format::Auto,
            include_foreign: false,
            max_uncompressed: MAX_UNCOMPRESSED_LAYER,
            diff_id_cache: None,
            max_manifest_size: crate::manifest::MAX_MANIFEST_SIZE,
            timeout: None,
        }
    }
}

impl CopyOptions {
    /// Whether the target gets exactly the source's bytes unless the target
    /// refuses them (no filter, no unwrap, no normalising, no forced format).
    pub fn keeps_bytes(&self) -> bool {
        self.platforms.is_empty()
            && !self.unwrap
            && self.mode != Mode::NormaliseIndex
            && self.format == Format::Auto
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
    /// A child manifest, with its media type.
    PushChild(Digest, String),
    /// The manifest that moves the tag, with its media type.
    PushRoot(String),
    Select,
    Convert,
    Deadline,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::ReadSource => f.write_str("reading the source manifest"),
            Step::CheckTarget => f.write_str("checking the target"),
            Step::Walk => f.write_str("reading the image's structure"),
            Step::ReadChild(d) => write!(f, "reading child manifest {d}"),
            Step::Blob(d) => write!(f, "copying blob {d}"),
            Step::PushChild(d, t) => write!(f, "pushing child manifest {d} ({t})"),
            Step::PushRoot(t) => write!(f, "pushing the manifest ({t})"),
            Step::Select => f.write_str("selecting platforms"),
            Step::Convert => f.write_str("converting schema1 to schema2"),
            Step::Deadline => f.write_str("copying within the time allowed"),
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
    /// The user asked for something the image cannot give (exit code 2).
    pub usage: bool,
}

impl CopyError {
    pub fn new(step: Step, source: StoreError) -> CopyError {
        CopyError {
            step,
            source: Box::new(source),
            usage: false,
        }
    }

    /// A selection the image cannot satisfy, found before any write.
    pub fn usage(message: String) -> CopyError {
        CopyError {
            step: Step::Select,
            source: Box::new(StoreError::Protocol(message)),
            usage: true,
        }
    }
}

/// What a successful copy did.
struct Outcome {
    action: Action,
    source_digest: Digest,
    target_digest: Digest,
    manifests_pushed: u64,
    /// Why the target digest differs from the source's (or what it came from).
    reason: Option<String>,
}

/// Manifest PUTs retried while the target is still catching up with blobs
/// or children it just accepted (eventual consistency).
pub const CONSISTENCY_ATTEMPTS: u32 = 5;

/// Pushes a manifest, retrying with backoff while the target says it does
/// not know yet what the manifest references: 400 MANIFEST_BLOB_UNKNOWN /
/// BLOB_UNKNOWN, or a 404 right after the upload (seed 003's registries).
pub async fn push_manifest(
    dst: &dyn Store,
    repo: &str,
    r: &ManifestRef,
    m: &RawManifest,
) -> Result<(), StoreError> {
    let policy = crate::transport::retry::RetryPolicy {
        attempts: CONSISTENCY_ATTEMPTS,
        ..Default::default()
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        match dst.manifest_put(repo, r, m).await {
            Ok(()) => return Ok(()),
            Err(e) if not_consistent_yet(&e) => match policy.delay(attempt, None) {
                Some(wait) => {
                    tracing::info!(manifest = %m.digest, attempt, "target not consistent yet: {e}");
                    tokio::time::sleep(wait).await;
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

/// The target refused a manifest for a blob or child it should hold.
fn blob_unknown(e: &CopyError) -> bool {
    let codes = e.source.registry_codes();
    codes
        .iter()
        .any(|c| matches!(*c, "MANIFEST_BLOB_UNKNOWN" | "BLOB_UNKNOWN"))
}

fn not_consistent_yet(e: &StoreError) -> bool {
    let codes = e.registry_codes();
    let status = match e {
        StoreError::Transport(t) => t.status().map(|s| s.as_u16()),
        _ => None,
    };
    match status {
        Some(400) => codes
            .iter()
            .any(|c| matches!(*c, "MANIFEST_BLOB_UNKNOWN" | "BLOB_UNKNOWN")),
        Some(404) => true,
        _ => false,
    }
}

/// Copies images from one store to another.
pub struct Replicator<'a> {
    src: &'a dyn Store,
    dst: &'a dyn Store,
    options: CopyOptions,
    locks: blobs::BlobLocks,
}

impl<'a> Replicator<'a> {
    pub fn new(src: &'a dyn Store, dst: &'a dyn Store, options: CopyOptions) -> Replicator<'a> {
        Replicator {
            src,
            dst,
            options,
            locks: blobs::BlobLocks::default(),
        }
    }

    /// Runs several jobs (the tags of a repository), `jobs` at a time,
    /// sharing connections, tokens and the one-upload-per-blob locks.
    /// Reports come back in the order of `jobs`.
    pub async fn run_all(&self, jobs: &[CopyJob]) -> Vec<ImageReport> {
        stream::iter(jobs)
            .map(|job| self.run(job))
            .buffered(self.options.jobs.max(1))
            .collect()
            .await
    }

    /// Runs one job and reports on it; failures are in the report.
    pub async fn run(&self, job: &CopyJob) -> ImageReport {
        let started = Instant::now();
        let stats = BlobStats::default();
        let result = match self.options.timeout {
            None => self.copy(job, &stats).await,
            Some(limit) => match tokio::time::timeout(limit, self.copy(job, &stats)).await {
                Ok(r) => r,
                Err(_) => Err(CopyError::new(
                    Step::Deadline,
                    StoreError::Protocol(format!(
                        "gave up after {} s (--timeout); the target tag was not moved by this run",
                        limit.as_secs()
                    )),
                )),
            },
        };
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
            reason: None,
            error: None,
            usage_error: false,
        };
        match result {
            Ok(o) => {
                report.digest_preserved = o.source_digest == o.target_digest;
                report.reason = o.reason;
                report.source_digest = Some(o.source_digest.to_string());
                report.target_digest = Some(o.target_digest.to_string());
                report.action = o.action;
                report.manifests_pushed = o.manifests_pushed;
            }
            Err(e) => {
                report.usage_error = e.usage;
                report.error = Some(e.to_string());
            }
        }
        report
    }

    async fn copy(&self, job: &CopyJob, stats: &BlobStats) -> Result<Outcome, CopyError> {
        let opts = &self.options;
        // 1. resolve: the source digest, and whether the target has it already.
        let mut source_digest = match &job.src {
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
        let target_ref = match &job.dst_tag {
            Some(t) => ManifestRef::Tag(t.clone()),
            None => ManifestRef::Digest(source_digest.clone()),
        };
        // What the tag names now, when that can decide anything: for a copy that
        // keeps the bytes (up to date already?), or a tag a rewritten root may
        // already carry. A rewritten root pushed by digest is checked below.
        let current = if opts.keeps_bytes() || matches!(target_ref, ManifestRef::Tag(_)) {
            self.dst
                .manifest_head(&job.dst_repo, &target_ref)
                .await
                .map_err(|e| CopyError::new(Step::CheckTarget, e))?
        } else {
            None
        };
        if opts.keeps_bytes() && current.as_ref() == Some(&source_digest) {
            return Ok(Outcome {
                action: Action::UpToDate,
                target_digest: source_digest.clone(),
                source_digest,
                manifests_pushed: 0,
                reason: None,
            });
        }

        // 2. walk what the plan selects, then shape it.
        let mut root = self
            .src
            .manifest_get(&job.src_repo, &ManifestRef::Digest(source_digest.clone()))
            .await
            .map_err(|e| CopyError::new(Step::ReadSource, e))?;
        let choice = convert::choose(&root, opts)?;
        let mut unwrapped_from = None;
        if let convert::RootChoice::Unwrap(child) = &choice {
            root = walk::fetch_child(
                self.src,
                &job.src_repo,
                child.clone(),
                opts.max_manifest_size,
            )
            .await?;
            unwrapped_from = Some(std::mem::replace(&mut source_digest, root.digest.clone()));
        }
        let keep: Option<HashSet<Digest>> = match &choice {
            convert::RootChoice::Filter(sel) => {
                Some(sel.kept.iter().map(|d| d.digest.clone()).collect())
            }
            _ => None,
        };
        let jobs = opts.jobs;
        let tree = walk::walk(
            self.src,
            &job.src_repo,
            root,
            walk::WalkOptions {
                jobs,
                keep: keep.as_ref(),
                include_foreign: opts.include_foreign,
                max_manifest_size: opts.max_manifest_size,
            },
        )
        .await?;
        tracing::info!(
            source = %job.source_display(),
            children = tree.child_count(),
            blobs = tree.blobs.len(),
            "walked"
        );
        let blobs_to_copy = tree.blobs.clone();
        let shaped = convert::shape(self.src, &job.src_repo, tree, &choice, opts).await?;
        let mut reason = shaped.reason.clone();
        if let Some(index) = &unwrapped_from {
            reason = Some(format!("unwrapped from index {index}"));
        }
        if let Some(want) = &job.dst_digest
            && want != &shaped.root.digest
        {
            return Err(CopyError::new(
                Step::CheckTarget,
                StoreError::Protocol(format!(
                    "the target names digest {want}, but the copy would push {}",
                    shaped.root.digest
                )),
            ));
        }
        let target_ref = match &job.dst_tag {
            Some(t) => ManifestRef::Tag(t.clone()),
            None => ManifestRef::Digest(shaped.root.digest.clone()),
        };
        let schema1 =
            match shaped.root.media_type.kind() {
                Kind::Schema1 => Some(Schema1::parse(shaped.root.content()).map_err(|e| {
                    CopyError::new(Step::Convert, StoreError::Protocol(e.to_string()))
                })?),
                _ => None,
            };
        if schema1.is_none() && !opts.keeps_bytes() {
            let current = match &target_ref {
                ManifestRef::Tag(_) => current.clone(),
                ManifestRef::Digest(_) => self
                    .dst
                    .manifest_head(&job.dst_repo, &target_ref)
                    .await
                    .map_err(|e| CopyError::new(Step::CheckTarget, e))?,
            };
            if current.as_ref() == Some(&shaped.root.digest) {
                return Ok(Outcome {
                    action: Action::UpToDate,
                    target_digest: shaped.root.digest.clone(),
                    source_digest,
                    manifests_pushed: 0,
                    reason,
                });
            }
        }

        // 3. blobs (with diff_ids for a schema1 source's layers).
        let ends = Ends {
            src: self.src,
            src_repo: &job.src_repo,
            dst: self.dst,
            dst_repo: &job.dst_repo,
        };
        let diff_ids = schema1.as_ref().map(|s1| {
            blobs::DiffIds::new(
                s1.layers().iter().map(|e| e.blob.clone()).collect(),
                convert::DiffIdCache::open(opts.diff_id_cache.as_deref()),
                opts.max_uncompressed,
            )
        });
        blobs::copy_blobs(
            &ends,
            &blobs_to_copy,
            jobs,
            stats,
            diff_ids.as_ref(),
            &self.locks,
            true,
        )
        .await?;
        if let Some(d) = &diff_ids {
            d.save();
        }

        // 4. children by digest, deepest first; then the root, moving the tag.
        // A target that still says a blob is unknown after the consistency
        // retries contradicted its own HEAD: upload every blob once more
        // without asking it (oras-go#1212's self-heal), then try again.
        let mut healed = false;
        let (pushed, pushed_root) = loop {
            let attempt = async {
                let children = self.push_children(job, &shaped, jobs).await?;
                let root = match (&schema1, &diff_ids) {
                    (Some(s1), Some(ids)) => {
                        let mut why = reason.clone();
                        let root = self
                            .push_schema1(
                                job,
                                &target_ref,
                                &shaped.root,
                                s1,
                                ids,
                                &blobs_to_copy,
                                &mut why,
                            )
                            .await?;
                        (root, why)
                    }
                    _ => {
                        push_manifest(self.dst, &job.dst_repo, &target_ref, &shaped.root)
                            .await
                            .map_err(|e| {
                                CopyError::new(
                                    Step::PushRoot(shaped.root.media_type.to_string()),
                                    e,
                                )
                            })?;
                        (shaped.root.clone(), reason.clone())
                    }
                };
                Ok::<_, CopyError>((children + 1, root))
            };
            match attempt.await {
                Err(e) if blob_unknown(&e) && !healed => {
                    healed = true;
                    tracing::warn!(
                        "the target lost blobs it said it had ({e}); uploading them again"
                    );
                    blobs::copy_blobs(
                        &ends,
                        &blobs_to_copy,
                        jobs,
                        stats,
                        diff_ids.as_ref(),
                        &self.locks,
                        false,
                    )
                    .await?;
                }
                Err(e) => return Err(e),
                Ok((n, (root, why))) => {
                    reason = why;
                    break (n, root);
                }
            }
        };
        Ok(Outcome {
            action: Action::Copied,
            target_digest: pushed_root.digest.clone(),
            source_digest,
            manifests_pushed: pushed,
            reason,
        })
    }

    /// Pushes the child manifests by digest, deepest level first; returns how many.
    async fn push_children(
        &self,
        job: &CopyJob,
        shaped: &convert::Shaped,
        jobs: usize,
    ) -> Result<u64, CopyError> {
        let mut pushed = 0;
        for level in &shaped.child_levels {
            stream::iter(level.iter().map(Ok))
                .try_for_each_concurrent(jobs.max(1), |m: &RawManifest| async move {
                    push_manifest(
                        self.dst,
                        &job.dst_repo,
                        &ManifestRef::Digest(m.digest.clone()),
                        m,
                    )
                    .await
                    .map_err(|e| {
                        CopyError::new(
                            Step::PushChild(m.digest.clone(), m.media_type.to_string()),
                            e,
                        )
                    })
                })
                .await?;
            pushed += level.len() as u64;
        }
        Ok(pushed)
    }

    /// A schema1 root: pushed as it is when the format allows and the target
    /// takes it, else converted to schema2 with the diff_ids the blob copy
    /// computed.
    #[allow(clippy::too_many_arguments)]
    async fn push_schema1(
        &self,
        job: &CopyJob,
        target_ref: &ManifestRef,
        root: &RawManifest,
        s1: &Schema1,
        ids: &blobs::DiffIds,
        blobs: &[crate::store::Blob],
        reason: &mut Option<String>,
    ) -> Result<RawManifest, CopyError> {
        if self.options.format == Format::Auto {
            match self.dst.manifest_put(&job.dst_repo, target_ref, root).await {
                Ok(()) => return Ok(root.clone()),
                Err(e) if convert::refuses_schema1(&e) => {
                    tracing::info!("the target refuses schema1 ({e}); converting to schema2");
                }
                Err(e) => {
                    return Err(CopyError::new(
                        Step::PushRoot(root.media_type.to_string()),
                        e,
                    ));
                }
            }
        }
        let sizes: std::collections::HashMap<&Digest, u64> =
            blobs.iter().map(|b| (&b.digest, b.size)).collect();
        let mut layers = Vec::new();
        for entry in s1.layers() {
            let diff_id = ids.get(&entry.blob).ok_or_else(|| {
                CopyError::new(
                    Step::Convert,
                    StoreError::Protocol(format!(
                        "no diff_id was computed for layer {}",
                        entry.blob
                    )),
                )
            })?;
            layers.push((diff_id, sizes.get(&entry.blob).copied().unwrap_or(0)));
        }
        let converted = convert::push_converted_schema1(
            self.dst,
            &job.dst_repo,
            target_ref,
            s1,
            &layers,
            self.options.format,
        )
        .await?;
        *reason = Some(format!(
            "schema1 {} converted to schema2 {}",
            root.digest, converted.digest
        ));
        Ok(converted)
    }
}
