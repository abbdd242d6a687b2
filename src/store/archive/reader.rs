//! Reading an archive as a source store: its images from `index.json` (an
//! OCI layout in a tar, hybrid or not) or, without one, from docker's
//! `manifest.json` (`docker`); manifests and blobs by name
//! (`blobs/ALG/HEX`), each held to its digest by the copy as it streams.
//!
//! Owns naming (one [`ArchiveReader`] per archive, an [`ArchiveStore`] per
//! repository seen in it) and what an incremental archive left out. Never
//! writes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::body::{Body, volumes};
use super::docker::{self, Built};
use super::inventory::{INSIDE, Inventory, Marker, omitted_set, volume_marker};
use super::{ArchiveError, MAX_METADATA};
use crate::digest::Digest;
use crate::manifest::{MAX_MANIFEST_SIZE, RawManifest};
use crate::reference::{ManifestRef, Reference};
use crate::store::layout::names::{Named, find_tag, read_index};
use crate::store::{Blob, BlobStream, Location, Store, StoreError, check_manifest_digest};

/// One archive being read, shared by the stores of its repositories.
pub struct ArchiveReader {
    path: PathBuf,
    body: Body,
    images: OnceCell<Images>,
}

/// What the archive holds, once its metadata is read.
struct Images {
    names: Vec<Named>,
    /// Manifests built from docker's `manifest.json` (none for a layout).
    built: Built,
    inventory: Option<Inventory>,
    omitted: HashSet<Digest>,
}

impl ArchiveReader {
    /// Opens the archive whose first file is `path` (and its volumes).
    pub fn open(path: &Path) -> Result<Arc<ArchiveReader>, ArchiveError> {
        if !path.is_file() {
            return Err(ArchiveError::Invalid(
                path.to_path_buf(),
                "no such archive (not a regular file)".into(),
            ));
        }
        let body = Body::open(volumes(path))?;
        Ok(Arc::new(ArchiveReader {
            path: path.to_path_buf(),
            body,
            images: OnceCell::new(),
        }))
    }

    /// The store of `scope`'s images (or, with none, every image by tag).
    pub fn scoped(self: &Arc<Self>, scope: Option<Reference>) -> ArchiveStore {
        ArchiveStore {
            reader: self.clone(),
            scope,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn images(&self) -> Result<&Images, ArchiveError> {
        self.images.get_or_try_init(|| self.load()).await
    }

    /// The archive's images: `index.json` when it has one, else docker's
    /// `manifest.json`; the inventory, when ocirepl wrote it.
    async fn load(&self) -> Result<Images, ArchiveError> {
        let what = self.path.display().to_string();
        let inventory = match self.body.read(INSIDE, MAX_METADATA).await? {
            Some(b) => Some(Inventory::parse(&b, &self.path)?),
            None => None,
        };
        if let Some(inv) = &inventory {
            self.check_volumes(inv).await?;
        }
        let omitted = inventory.as_ref().map(omitted_set).unwrap_or_default();
        if let Some(index) = self.body.read("index.json", MAX_METADATA).await? {
            let names = read_index(&index).map_err(|why| {
                ArchiveError::Invalid(self.path.clone(), format!("index.json: {why}"))
            })?;
            return Ok(Images {
                names,
                built: Built::default(),
                inventory,
                omitted,
            });
        }
        let Some(manifest_json) = self.body.read("manifest.json", MAX_METADATA).await? else {
            return Err(ArchiveError::Invalid(
                self.path.clone(),
                "neither index.json nor manifest.json: not an image archive".into(),
            ));
        };
        let built = docker::build(&self.body, &manifest_json, &what).await?;
        Ok(Images {
            names: built.names.clone(),
            built,
            inventory,
            omitted,
        })
    }

    /// Every volume of a split archive is there, and is of this export.
    async fn check_volumes(&self, inv: &Inventory) -> Result<(), ArchiveError> {
        let found = volumes(&self.path);
        if found.len() > inv.volumes.len() {
            return Err(ArchiveError::Invalid(
                found[inv.volumes.len()].clone(),
                format!(
                    "not a volume of export {} (it has {}): move it away",
                    inv.id,
                    inv.volumes.len()
                ),
            ));
        }
        if inv.volumes.len() > found.len() {
            let missing: Vec<&str> = inv.volumes[found.len()..]
                .iter()
                .map(|v| v.name.as_str())
                .collect();
            return Err(ArchiveError::Invalid(
                self.path.clone(),
                format!(
                    "a split archive of {} volumes, but {} missing (put every volume beside the first)",
                    inv.volumes.len(),
                    missing.join(", ")
                ),
            ));
        }
        for (i, v) in found.iter().enumerate().take(inv.volumes.len()).skip(1) {
            let name = volume_marker(i + 1);
            let marker: Option<Marker> = match self.body.read(&name, MAX_METADATA).await? {
                Some(b) => serde_json::from_slice(&b).ok(),
                None => None,
            };
            let ours = marker
                .as_ref()
                .is_some_and(|m| m.export == inv.id && m.volume == i + 1);
            if !ours {
                return Err(ArchiveError::Invalid(
                    v.clone(),
                    format!(
                        "not volume {} of export {}: another export's volume, or a damaged one",
                        i + 1,
                        inv.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The bytes of a manifest or blob the archive names `digest`.
    fn blob_name(images: &Images, d: &Digest) -> String {
        match images.built.files.get(d) {
            Some(f) => f.clone(),
            None => format!("blobs/{}/{}", d.algorithm().name(), d.hex()),
        }
    }
}

/// One repository of an archive (or every image by tag), as a store.
pub struct ArchiveStore {
    reader: Arc<ArchiveReader>,
    scope: Option<Reference>,
}

impl ArchiveStore {
    fn not_found(&self, what: String) -> StoreError {
        StoreError::NotFound {
            what: format!("{what} in {}", self.describe()),
        }
    }

    /// The repositories the archive holds (for a namespace job).
    pub async fn repositories(&self) -> Result<Vec<Reference>, StoreError> {
        let images = self.reader.images().await?;
        let mut out: Vec<Reference> = Vec::new();
        for n in &images.names {
            if let Some(r) = &n.repository
                && !out.iter().any(|o| o.name() == r.name())
            {
                out.push(r.clone());
            }
        }
        Ok(out)
    }

    /// Every image in the store's scope, by name (`registry/repo:tag`, or
    /// the tag alone).
    pub async fn names(&self) -> Result<Vec<String>, StoreError> {
        let images = self.reader.images().await?;
        Ok(images
            .names
            .iter()
            .filter(|n| n.in_scope(self.scope.as_ref()))
            .map(Named::describe)
            .collect())
    }

    /// Digests the archive left out, an earlier export having carried them.
    pub async fn omitted(&self) -> Result<Vec<(Digest, String)>, StoreError> {
        let images = self.reader.images().await?;
        Ok(images
            .inventory
            .iter()
            .flat_map(|i| i.omitted.iter().map(|o| (o.digest.clone(), o.by.clone())))
            .collect())
    }

    async fn entry_for_tag(&self, tag: &str) -> Result<Option<Named>, StoreError> {
        let images = self.reader.images().await?;
        find_tag(&images.names, self.scope.as_ref(), tag)
            .map(|n| n.cloned())
            .map_err(|why| StoreError::Protocol(format!("{}: {why}", self.describe())))
    }
}

#[async_trait]
impl Store for ArchiveStore {
    fn describe(&self) -> String {
        match &self.scope {
            None => format!("archive {}", self.reader.path.display()),
            Some(r) => format!("archive {} ({})", self.reader.path.display(), r.name()),
        }
    }

    fn location(&self) -> Location {
        Location {
            place: format!("archive {}", self.reader.path.display()),
            repository: String::new(),
        }
    }

    async fn manifest_head(&self, r: &ManifestRef) -> Result<Option<Digest>, StoreError> {
        match r {
            ManifestRef::Tag(t) => Ok(self.entry_for_tag(t).await?.map(|n| n.digest)),
            ManifestRef::Digest(d) => {
                let images = self.reader.images().await?;
                if images.built.manifests.contains_key(d) {
                    return Ok(Some(d.clone()));
                }
                let name = ArchiveReader::blob_name(images, d);
                Ok(self.reader.body.find(&name).await?.map(|_| d.clone()))
            }
        }
    }

    async fn manifest_get(&self, r: &ManifestRef) -> Result<RawManifest, StoreError> {
        let (digest, media_type) = match r {
            ManifestRef::Tag(t) => {
                let n = self
                    .entry_for_tag(t)
                    .await?
                    .ok_or_else(|| self.not_found(format!("tag {t}")))?;
                (n.digest, Some(n.media_type))
            }
            ManifestRef::Digest(d) => (d.clone(), None),
        };
        let images = self.reader.images().await?;
        if let Some(m) = images.built.manifests.get(&digest) {
            return Ok(m.clone());
        }
        if images.omitted.contains(&digest) {
            return Err(self.not_found(format!(
                "manifest {digest} (left out: an earlier export carried it)"
            )));
        }
        let name = ArchiveReader::blob_name(images, &digest);
        let bytes = self
            .reader
            .body
            .read(&name, MAX_MANIFEST_SIZE)
            .await?
            .ok_or_else(|| self.not_found(format!("manifest {digest}")))?;
        let what = format!("manifest {digest} in {}", self.describe());
        let content_type = media_type.as_deref().filter(|m| !m.is_empty());
        let m =
            RawManifest::from_body(bytes, content_type, digest.algorithm()).map_err(|source| {
                StoreError::Manifest {
                    what: what.clone(),
                    source,
                }
            })?;
        check_manifest_digest(&what, &m, &digest)?;
        Ok(m)
    }

    async fn manifest_put(&self, r: &ManifestRef, _: &RawManifest) -> Result<(), StoreError> {
        Err(StoreError::Unsupported(format!(
            "{} is read only ({r})",
            self.describe()
        )))
    }

    async fn blob_head(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let images = self.reader.images().await?;
        let name = ArchiveReader::blob_name(images, digest);
        Ok(self.reader.body.find(&name).await?.map(|e| e.size))
    }

    async fn blob_get(&self, blob: &Blob) -> Result<BlobStream, StoreError> {
        let images = self.reader.images().await?;
        let name = ArchiveReader::blob_name(images, &blob.digest);
        let Some(e) = self.reader.body.find(&name).await? else {
            let why = match images.omitted.contains(&blob.digest) {
                true => " (left out: an earlier export carried it, and the target lacks it)",
                false => "",
            };
            return Err(self.not_found(format!("blob {}{why}", blob.digest)));
        };
        if e.size != blob.size {
            return Err(StoreError::Protocol(format!(
                "{}: entry {name} is {} bytes, its descriptor says {}",
                self.describe(),
                e.size,
                blob.size
            )));
        }
        Ok(self.reader.body.stream_entry(e)?)
    }

    async fn blob_put(&self, blob: &Blob, _: BlobStream) -> Result<(), StoreError> {
        Err(StoreError::Unsupported(format!(
            "{} is read only ({})",
            self.describe(),
            blob.digest
        )))
    }

    async fn tags(&self) -> Result<Vec<String>, StoreError> {
        let images = self.reader.images().await?;
        let mut tags: Vec<String> = Vec::new();
        for n in images
            .names
            .iter()
            .filter(|n| n.in_scope(self.scope.as_ref()))
        {
            if let Some(t) = &n.tag
                && !tags.contains(t)
            {
                tags.push(t.clone());
            }
        }
        Ok(tags)
    }

    async fn settled(&self) -> Result<(), StoreError> {
        Ok(self.reader.body.whole().await?)
    }

    fn built(&self, digest: &Digest) -> Option<String> {
        let images = self.reader.images.get()?;
        images.built.manifests.contains_key(digest).then(|| {
            "built from docker-archive manifest.json (no OCI layout in it): a new OCI manifest over the archive's layers as stored; the config, and so the image ID, is kept".to_string()
        })
    }
}
