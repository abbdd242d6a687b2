//! Writing an archive: the copy writes into a staging layout directory
//! beside it, through an [`ArchiveTarget`] per repository (the layout's
//! own guarantees: atomic files, `index.json` under a lock), and
//! [`ArchiveWriter::finish`] packs it once the run is over (`pack`).
//!
//! Owns what an incremental export may take as present: a blob or
//! manifest an earlier export carried (`--since`) is never read from the
//! source again, and a tag it had with the digest the source still names
//! is up to date and stays in the new index. Never writes outside the
//! archive's directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::ArchiveError;
use super::inventory::Carried;
use super::pack::{self, PackOptions, Packed};
use crate::digest::Digest;
use crate::manifest::RawManifest;
use crate::reference::{LayoutKind, ManifestRef, Reference};
use crate::store::layout::LayoutStore;
use crate::store::layout::names::{Named, containerd_name};
use crate::store::{Blob, BlobStream, Location, Store, StoreError};

/// One archive being written, shared by the stores of its repositories.
pub struct ArchiveWriter {
    path: PathBuf,
    kind: LayoutKind,
    staging: LayoutStore,
    /// Removed with the writer, packed or not.
    _dir: tempfile::TempDir,
    options: PackOptions,
    carried: Carried,
    /// Tags an earlier export had, found up to date: they stay.
    kept: Mutex<Vec<Named>>,
}

impl ArchiveWriter {
    /// A writer for the archive at `path`; the staging directory goes
    /// beside it, so that packing stays on one file system.
    pub fn create(
        path: &Path,
        kind: LayoutKind,
        options: PackOptions,
    ) -> Result<Arc<ArchiveWriter>, ArchiveError> {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| ArchiveError::io(parent, e))?;
        let dir = tempfile::Builder::new()
            .prefix(".ocirepl-staging-")
            .tempdir_in(parent)
            .map_err(|e| ArchiveError::io(parent, e))?;
        let staging = LayoutStore::open(dir.path(), true)
            .map_err(|e| ArchiveError::Io(dir.path().to_path_buf(), e.to_string()))?
            .staging();
        let carried = Carried::from(&options.since);
        Ok(Arc::new(ArchiveWriter {
            path: path.to_path_buf(),
            kind,
            staging,
            _dir: dir,
            options,
            carried,
            kept: Mutex::default(),
        }))
    }

    /// The store of `scope`'s images in this archive.
    pub fn scoped(self: &Arc<Self>, scope: Option<Reference>) -> ArchiveTarget {
        ArchiveTarget {
            layout: self.staging.scoped(scope.clone()),
            writer: self.clone(),
            scope,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> LayoutKind {
        self.kind
    }

    /// Packs what the run wrote (and what it kept) into the archive.
    pub fn finish(&self) -> Result<Packed, ArchiveError> {
        let kept = self.kept.lock().map(|k| k.clone()).unwrap_or_default();
        pack::pack(pack::Input {
            staging: self.staging.root(),
            path: &self.path,
            kept: &kept,
            carried: &self.carried,
            options: &self.options,
        })
    }
}

/// One repository of an archive being written, as a store.
pub struct ArchiveTarget {
    writer: Arc<ArchiveWriter>,
    scope: Option<Reference>,
    layout: LayoutStore,
}

impl ArchiveTarget {
    /// The name an earlier export gave this repository's `tag`.
    fn earlier_name(&self, tag: &str) -> String {
        match &self.scope {
            Some(r) => containerd_name(r, tag),
            None => tag.to_string(),
        }
    }
}

#[async_trait]
impl Store for ArchiveTarget {
    fn describe(&self) -> String {
        match &self.scope {
            None => format!("archive {}", self.writer.path.display()),
            Some(r) => format!("archive {} ({})", self.writer.path.display(), r.name()),
        }
    }

    fn location(&self) -> Location {
        Location {
            place: format!("archive {}", self.writer.path.display()),
            repository: String::new(),
        }
    }

    /// A tag written in this run, else one an earlier export had (`--since`):
    /// if the source still names that digest the image is up to date, and
    /// the tag stays in the new index.
    async fn manifest_head(&self, r: &ManifestRef) -> Result<Option<Digest>, StoreError> {
        if let Some(d) = self.layout.manifest_head(r).await? {
            return Ok(Some(d));
        }
        match r {
            ManifestRef::Digest(d) => Ok(self.writer.carried.size(d).map(|_| d.clone())),
            ManifestRef::Tag(t) => {
                let Some((digest, media_type, size)) =
                    self.writer.carried.image(&self.earlier_name(t)).cloned()
                else {
                    return Ok(None);
                };
                if let Ok(mut kept) = self.writer.kept.lock() {
                    kept.push(Named {
                        repository: self.scope.clone(),
                        tag: Some(t.clone()),
                        digest: digest.clone(),
                        media_type,
                        size,
                    });
                }
                Ok(Some(digest))
            }
        }
    }

    async fn manifest_get(&self, r: &ManifestRef) -> Result<RawManifest, StoreError> {
        self.layout.manifest_get(r).await
    }

    async fn manifest_put(&self, r: &ManifestRef, m: &RawManifest) -> Result<(), StoreError> {
        self.layout.manifest_put(r, m).await
    }

    /// A blob an earlier export carried counts as present: it is not read
    /// from the source again, and the new archive leaves it out.
    async fn blob_head(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        if let Some(size) = self.writer.carried.size(digest) {
            return Ok(Some(size));
        }
        self.layout.blob_head(digest).await
    }

    async fn blob_get(&self, blob: &Blob) -> Result<BlobStream, StoreError> {
        self.layout.blob_get(blob).await
    }

    async fn blob_put(&self, blob: &Blob, data: BlobStream) -> Result<(), StoreError> {
        self.layout.blob_put(blob, data).await
    }

    /// The tags written in this run, and those an earlier export had
    /// (`--since`), which the run checks against the source by HEAD.
    async fn tags(&self) -> Result<Vec<String>, StoreError> {
        let mut tags = self.layout.tags().await?;
        for t in self.writer.carried.tags_of(self.scope.as_ref()) {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        Ok(tags)
    }
}
