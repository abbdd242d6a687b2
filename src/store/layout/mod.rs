//! [`LayoutStore`]: an OCI image layout directory (`oci-layout`,
//! `index.json`, `blobs/<alg>/<hex>`) behind the [`Store`] trait.
//!
//! Owns the files: reads are capped and refuse anything but regular files
//! (`files`); every write goes to a temporary file and is renamed into
//! place, so a reader or a crash never sees half a blob or half an
//! `index.json`; `index.json` updates hold a lock across processes, so
//! concurrent writers lose no tag. A file counts as present only when its
//! bytes match its name: a blob truncated by a crash is written again.
//! Tags are `index.json` entries with the `org.opencontainers.image.ref.name`
//! annotation. A source layout is never written.

mod files;
pub mod names;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::{Blob, BlobStream, Location, Store, StoreError, check_manifest_digest};
use crate::digest::Digest;
use crate::manifest::{MAX_MANIFEST_SIZE, RawManifest};
use crate::media::{MediaType, OCI_INDEX};
use crate::reference::{ManifestRef, Reference};
use files::{Lock, hash_file, open_regular, read_capped, write_atomic};
use names::{IMAGE_NAME, Named, REF_NAME, containerd_name, find_tag};

const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
/// The largest `index.json` read: tens of thousands of tags, not a disk.
pub const MAX_INDEX_JSON: u64 = 64 * 1024 * 1024;

/// A layout directory, seen as one repository of it (`scope`, from a full
/// `NAME`) or as every image it holds, by tag.
pub struct LayoutStore {
    root: PathBuf,
    scope: Option<Reference>,
    /// An archive's staging, packed and removed by the run: silent about
    /// Docker media types (the archive says it once packed) and not flushed
    /// to disk file by file (the archive is).
    staging: bool,
}

/// Says once per run that a layout now names an image by a Docker media
/// type: its digest is kept (pinned digests stay valid), but OCI-only
/// tools (skopeo before 1.18, umoci) find no image by name in it.
fn docker_types_warning(root: &Path) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            "{} names images by Docker media types, kept as they are: docker, podman and skopeo 1.18+ read them, older skopeo and umoci do not (\"no descriptor found for reference\"); --format oci writes what they read, with new digests",
            root.display()
        );
    }
}

/// Reads `index.json` bytes (see [`names::read_index`]).
pub fn index_entries(bytes: &[u8]) -> Result<Vec<Named>, String> {
    names::read_index(bytes)
}

impl LayoutStore {
    /// Opens a layout; with `create` (a copy target), makes the directory
    /// and its skeleton when missing. A source is never written: one
    /// without `index.json` simply has no tags.
    pub fn open(root: &Path, create: bool) -> Result<LayoutStore, StoreError> {
        let store = LayoutStore {
            root: root.to_path_buf(),
            scope: None,
            staging: false,
        };
        if create {
            store.ensure_target()?;
        } else if !root.join(LAYOUT_FILE).exists() {
            return Err(StoreError::NotFound {
                what: format!("OCI layout {} (no {LAYOUT_FILE} file)", root.display()),
            });
        }
        Ok(store)
    }

    /// The same layout, seen as the repository `scope` names (or, with
    /// none, every image by its tag).
    pub fn scoped(&self, scope: Option<Reference>) -> LayoutStore {
        LayoutStore {
            root: self.root.clone(),
            scope,
            staging: self.staging,
        }
    }

    /// The same layout, as an archive's staging (see the field).
    pub fn staging(mut self) -> LayoutStore {
        self.staging = true;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes the layout's skeleton where it is missing, for writing.
    pub fn ensure_target(&self) -> Result<(), StoreError> {
        let root = &self.root;
        let layout_file = root.join(LAYOUT_FILE);
        if !layout_file.exists() {
            std::fs::create_dir_all(root).map_err(|e| StoreError::io(root, e))?;
            write_atomic(root, &layout_file, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index_file = root.join(INDEX_FILE);
        if !index_file.exists() {
            let _lock = Lock::take(&layout_file)?;
            if !index_file.exists() {
                let empty = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
                write_atomic(root, &index_file, empty.to_string().as_bytes())?;
            }
        }
        Ok(())
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().name())
            .join(d.hex())
    }

    fn read_index(&self) -> Result<Value, StoreError> {
        let path = self.root.join(INDEX_FILE);
        let Some(text) = read_capped(&path, MAX_INDEX_JSON)? else {
            return Ok(json!({"schemaVersion": 2, "manifests": []}));
        };
        let v: Value = serde_json::from_slice(&text)
            .map_err(|e| StoreError::Protocol(format!("{}: invalid JSON: {e}", path.display())))?;
        if !v.get("manifests").is_some_and(Value::is_array) {
            return Err(StoreError::Protocol(format!(
                "{}: no \"manifests\" array",
                path.display()
            )));
        }
        Ok(v)
    }

    /// The entries of `index.json` (none when the file is missing).
    pub fn entries(&self) -> Result<Vec<Named>, StoreError> {
        let path = self.root.join(INDEX_FILE);
        let Some(bytes) = read_capped(&path, MAX_INDEX_JSON)? else {
            return Ok(Vec::new());
        };
        index_entries(&bytes)
            .map_err(|why| StoreError::Protocol(format!("{}: {why}", path.display())))
    }

    /// The descriptor `index.json` has for a tag in this store's scope.
    fn tagged(&self, tag: &str) -> Result<Option<(Digest, String)>, StoreError> {
        let entries = self.entries()?;
        let found = find_tag(&entries, self.scope.as_ref(), tag)
            .map_err(|why| StoreError::Protocol(format!("{}: {why}", self.describe())))?;
        Ok(found.map(|e| (e.digest.clone(), e.media_type.clone())))
    }

    /// Whether an `index.json` entry is this store's `tag`.
    fn is_tag(&self, e: &Value, tag: &str) -> bool {
        match &self.scope {
            None => {
                e["annotations"][REF_NAME].as_str() == Some(tag)
                    && e["annotations"][IMAGE_NAME].is_null()
            }
            Some(repo) => names::entry(e)
                .is_ok_and(|n| n.in_scope(Some(repo)) && n.tag.as_deref() == Some(tag)),
        }
    }

    /// A manifest file's bytes, held to its name; `None` when missing.
    fn read_manifest_file(&self, file: &Digest) -> Result<Option<Bytes>, StoreError> {
        let path = self.blob_path(file);
        let Some(bytes) = read_capped(&path, MAX_MANIFEST_SIZE)? else {
            return Ok(None);
        };
        let actual = Digest::of(file.algorithm(), &bytes);
        if &actual != file {
            return Err(StoreError::DigestMismatch {
                what: format!("{} (a damaged layout file)", path.display()),
                expected: file.clone(),
                actual,
            });
        }
        Ok(Some(Bytes::from(bytes)))
    }

    /// Writes a small file under its digest unless an intact one is there.
    fn write_manifest_file(&self, file: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        if matches!(self.read_manifest_file(file), Ok(Some(_))) {
            return Ok(());
        }
        let path = self.blob_path(file);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        write_atomic(&dir, &path, bytes)
    }

    /// Moves `tag` to the manifest stored as `file`, under the lock.
    fn set_tag(&self, tag: &str, m: &RawManifest, file: &Digest) -> Result<(), StoreError> {
        if !self.staging && m.media_type.is_docker() {
            docker_types_warning(&self.root);
        }
        let _lock = Lock::take(&self.root.join(LAYOUT_FILE))?;
        let mut index = self.read_index()?;
        let entries = index["manifests"].as_array_mut().ok_or_else(|| {
            StoreError::Protocol(format!(
                "{}: index.json lost its manifests",
                self.describe()
            ))
        })?;
        entries.retain(|e| !self.is_tag(e, tag));
        let annotations = match &self.scope {
            None => json!({ REF_NAME: tag }),
            Some(repo) => json!({ IMAGE_NAME: containerd_name(repo, tag), REF_NAME: tag }),
        };
        entries.push(json!({
            "mediaType": m.media_type.as_str(),
            "digest": file.to_string(),
            "size": m.size(),
            "annotations": annotations,
        }));
        let bytes = serde_json::to_vec(&index)
            .map_err(|e| StoreError::Protocol(format!("index.json: {e}")))?;
        write_atomic(&self.root, &self.root.join(INDEX_FILE), &bytes)
    }

    /// Runs blocking file work off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(LayoutStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let me = self.scoped(self.scope.clone());
        tokio::task::spawn_blocking(move || f(me))
            .await
            .map_err(|e| StoreError::Protocol(format!("a layout task failed: {e}")))?
    }
}

#[async_trait]
impl Store for LayoutStore {
    fn describe(&self) -> String {
        match &self.scope {
            None => format!("layout {}", self.root.display()),
            Some(r) => format!("layout {} ({})", self.root.display(), r.name()),
        }
    }

    /// One place per directory, whatever the scope: its blobs are shared
    /// by every repository it holds.
    fn location(&self) -> Location {
        Location {
            place: format!("layout {}", self.root.display()),
            repository: String::new(),
        }
    }

    async fn manifest_head(&self, r: &ManifestRef) -> Result<Option<Digest>, StoreError> {
        match r {
            // A signed schema1 file is named by its bytes, but the image's
            // digest is its payload's: read it (it is small) to say which.
            ManifestRef::Tag(t) => match self.tagged(t)? {
                Some((_, media)) if MediaType::parse(&media) == MediaType::DockerV2S1Signed => {
                    Ok(Some(self.manifest_get(r).await?.digest))
                }
                Some((file, _)) => Ok(Some(file)),
                None => Ok(None),
            },
            ManifestRef::Digest(d) => Ok(match self.read_manifest_file(d) {
                Ok(Some(_)) => Some(d.clone()),
                // Missing, or damaged: either way not there.
                Ok(None) | Err(StoreError::DigestMismatch { .. }) => None,
                Err(e) => return Err(e),
            }),
        }
    }

    async fn manifest_get(&self, r: &ManifestRef) -> Result<RawManifest, StoreError> {
        let what = format!("manifest {}:{r}", self.describe());
        let (file, media_type) = match r {
            ManifestRef::Tag(t) => self
                .tagged(t)?
                .ok_or_else(|| StoreError::NotFound { what: what.clone() })?,
            ManifestRef::Digest(d) => (d.clone(), String::new()),
        };
        let bytes = self
            .read_manifest_file(&file)?
            .ok_or_else(|| StoreError::NotFound { what: what.clone() })?;
        let content_type = (!media_type.is_empty()).then_some(media_type.as_str());
        let m =
            RawManifest::from_body(bytes, content_type, file.algorithm()).map_err(|source| {
                StoreError::Manifest {
                    what: what.clone(),
                    source,
                }
            })?;
        // The file matched its name; by digest, that is what was asked for.
        if m.media_type != MediaType::DockerV2S1Signed {
            check_manifest_digest(&what, &m, &file)?;
        }
        Ok(m)
    }

    async fn manifest_put(&self, r: &ManifestRef, m: &RawManifest) -> Result<(), StoreError> {
        // In a layout the file name is the digest of the bytes as stored,
        // signed schema1 included.
        let file = Digest::of(m.digest.algorithm(), &m.bytes);
        let (tag, m) = (
            match r {
                ManifestRef::Tag(t) => Some(t.clone()),
                ManifestRef::Digest(_) => None,
            },
            m.clone(),
        );
        self.blocking(move |me| {
            me.write_manifest_file(&file, &m.bytes)?;
            match tag {
                Some(t) => me.set_tag(&t, &m, &file),
                None => Ok(()),
            }
        })
        .await
    }

    /// Untags (or, by digest, drops every entry naming the digest) in
    /// `index.json`; blob files stay, as unreferenced blobs do in a registry.
    async fn manifest_delete(&self, r: &ManifestRef) -> Result<(), StoreError> {
        let r = r.clone();
        self.blocking(move |me| {
            let _lock = Lock::take(&me.root.join(LAYOUT_FILE))?;
            let mut index = me.read_index()?;
            let Some(entries) = index["manifests"].as_array_mut() else {
                return Ok(());
            };
            let before = entries.len();
            entries.retain(|e| match &r {
                ManifestRef::Tag(t) => !me.is_tag(e, t),
                ManifestRef::Digest(d) => e["digest"].as_str() != Some(d.to_string().as_str()),
            });
            if entries.len() == before {
                return Err(StoreError::NotFound {
                    what: format!("{r} in {}", me.describe()),
                });
            }
            let bytes = serde_json::to_vec(&index)
                .map_err(|e| StoreError::Protocol(format!("index.json: {e}")))?;
            write_atomic(&me.root, &me.root.join(INDEX_FILE), &bytes)
        })
        .await
    }

    async fn tags(&self) -> Result<Vec<String>, StoreError> {
        let mut tags: Vec<String> = Vec::new();
        let scope = self.scope.as_ref();
        for t in self
            .entries()?
            .into_iter()
            .filter(|e| e.in_scope(scope))
            .filter_map(|e| e.tag)
        {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        Ok(tags)
    }

    /// Present only when the file's bytes hash to its name: a blob cut
    /// short by a crash, or other bytes under the name, is not there.
    async fn blob_head(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let path = self.blob_path(digest);
        let d = digest.clone();
        self.blocking(move |_| match hash_file(&path, d.algorithm())? {
            Some((actual, size)) if actual == d => Ok(Some(size)),
            Some(_) => {
                tracing::warn!(path = %path.display(), "a layout blob does not match its name; it will be written again");
                Ok(None)
            }
            None => Ok(None),
        })
        .await
    }

    async fn blob_get(&self, blob: &Blob) -> Result<BlobStream, StoreError> {
        let path = self.blob_path(&blob.digest);
        let file = open_regular(&path)?.ok_or_else(|| StoreError::NotFound {
            what: format!("blob {} in {}", blob.digest, self.describe()),
        })?;
        let stream = ReaderStream::with_capacity(tokio::fs::File::from_std(file), 256 * 1024)
            .map(move |r| r.map_err(|e| StoreError::io(&path, e)));
        Ok(stream.boxed())
    }

    /// Always writes (the copy asks only for blobs that are missing or
    /// damaged), through a temporary file renamed over whatever is there.
    async fn blob_put(&self, blob: &Blob, mut data: BlobStream) -> Result<(), StoreError> {
        let path = self.blob_path(&blob.digest);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| StoreError::io(&dir, e))?;
        let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let (file, tmp_path) = tmp.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        // If anything below fails, dropping `tmp_path` removes the partial file.
        while let Some(chunk) = data.next().await {
            file.write_all(&chunk?)
                .await
                .map_err(|e| StoreError::io(&path, e))?;
        }
        if !self.staging {
            file.sync_all()
                .await
                .map_err(|e| StoreError::io(&path, e))?;
        }
        drop(file);
        tmp_path
            .persist(&path)
            .map_err(|e| StoreError::io(&path, e.error))?;
        Ok(())
    }
}
