//! [`LayoutStore`]: an OCI image layout directory (`oci-layout`,
//! `index.json`, `blobs/<alg>/<hex>`) behind the [`Store`] trait.
//!
//! Owns the files: every write goes to a temporary file in the same
//! directory and is renamed into place, so a reader (or a crash) never sees
//! half a blob or half an `index.json`. Tags are `index.json` entries with
//! the `org.opencontainers.image.ref.name` annotation. Never validates what
//! it is asked to store: the copy verified it on the way in.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;
use tokio_util::io::ReaderStream;

use super::{Blob, BlobStream, Location, Store, StoreError, check_manifest_digest};
use crate::digest::Digest;
use crate::manifest::{MAX_MANIFEST_SIZE, RawManifest};
use crate::media::OCI_INDEX;
use crate::reference::ManifestRef;

/// The annotation that names a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";

pub struct LayoutStore {
    root: PathBuf,
    /// Serialises read-modify-write of `index.json` within this process.
    index_lock: Mutex<()>,
}

impl LayoutStore {
    /// Opens a layout; with `create` (a copy target), makes the directory
    /// and its skeleton when missing. A source is never written: one
    /// without `index.json` simply has no tags.
    pub fn open(root: &Path, create: bool) -> Result<LayoutStore, StoreError> {
        let store = LayoutStore {
            root: root.to_path_buf(),
            index_lock: Mutex::new(()),
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
            let empty = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
            write_atomic(root, &index_file, empty.to_string().as_bytes())?;
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
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(json!({"schemaVersion": 2, "manifests": []}));
            }
            Err(e) => return Err(StoreError::io(&path, e)),
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

    /// The descriptor `index.json` has for a tag (the last one wins).
    fn tagged(&self, tag: &str) -> Result<Option<(Digest, String)>, StoreError> {
        let index = self.read_index()?;
        let entries = index["manifests"].as_array().cloned().unwrap_or_default();
        for e in entries.iter().rev() {
            if e["annotations"][REF_NAME].as_str() == Some(tag) {
                let digest = e["digest"]
                    .as_str()
                    .unwrap_or("")
                    .parse::<Digest>()
                    .map_err(|err| {
                        StoreError::Protocol(format!(
                            "{}: entry for {tag:?}: {err}",
                            self.describe()
                        ))
                    })?;
                let media_type = e["mediaType"].as_str().unwrap_or("").to_string();
                return Ok(Some((digest, media_type)));
            }
        }
        Ok(None)
    }

    /// Where a new blob goes: `None` when it is already there (blobs are
    /// content-addressed, so an existing file is the same bytes).
    async fn new_blob_path(
        &self,
        digest: &Digest,
    ) -> Result<Option<(PathBuf, PathBuf)>, StoreError> {
        let path = self.blob_path(digest);
        if path.exists() {
            return Ok(None);
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| StoreError::io(&dir, e))?;
        Ok(Some((dir, path)))
    }

    async fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        match self.new_blob_path(digest).await? {
            Some((dir, path)) => write_atomic(&dir, &path, bytes),
            None => Ok(()),
        }
    }
}

/// Writes a whole file through a temporary sibling and a rename.
fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| StoreError::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| StoreError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| StoreError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| StoreError::io(path, e.error))?;
    Ok(())
}

#[async_trait]
impl Store for LayoutStore {
    fn describe(&self) -> String {
        format!("layout {}", self.root.display())
    }

    fn location(&self) -> Location {
        Location {
            place: self.describe(),
            repository: String::new(),
        }
    }

    async fn manifest_head(&self, r: &ManifestRef) -> Result<Option<Digest>, StoreError> {
        match r {
            ManifestRef::Tag(t) => Ok(self.tagged(t)?.map(|(d, _)| d)),
            ManifestRef::Digest(d) => Ok(self.blob_path(d).exists().then(|| d.clone())),
        }
    }

    async fn manifest_get(&self, r: &ManifestRef) -> Result<RawManifest, StoreError> {
        let what = format!("manifest {}:{r}", self.describe());
        let (digest, media_type) = match r {
            ManifestRef::Tag(t) => self
                .tagged(t)?
                .ok_or_else(|| StoreError::NotFound { what: what.clone() })?,
            ManifestRef::Digest(d) => (d.clone(), String::new()),
        };
        let path = self.blob_path(&digest);
        let meta = match tokio::fs::metadata(&path).await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound { what });
            }
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        if meta.len() > MAX_MANIFEST_SIZE {
            return Err(StoreError::TooLarge {
                what,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| StoreError::io(&path, e))?;
        let content_type = (!media_type.is_empty()).then_some(media_type.as_str());
        let m = RawManifest::from_body(Bytes::from(bytes), content_type, digest.algorithm())
            .map_err(|source| StoreError::Manifest {
                what: what.clone(),
                source,
            })?;
        check_manifest_digest(&what, &m, &digest)?;
        Ok(m)
    }

    async fn manifest_put(&self, r: &ManifestRef, m: &RawManifest) -> Result<(), StoreError> {
        // In a layout the file name is the digest of the bytes as stored,
        // signed schema1 included.
        let file_digest = Digest::of(m.digest.algorithm(), &m.bytes);
        self.write_blob(&file_digest, &m.bytes).await?;
        let ManifestRef::Tag(tag) = r else {
            return Ok(());
        };
        let _guard = self.index_lock.lock().await;
        let mut index = self.read_index()?;
        let entries = index["manifests"].as_array_mut().ok_or_else(|| {
            StoreError::Protocol(format!(
                "{}: index.json lost its manifests",
                self.describe()
            ))
        })?;
        entries.retain(|e| e["annotations"][REF_NAME].as_str() != Some(tag.as_str()));
        entries.push(json!({
            "mediaType": m.media_type.as_str(),
            "digest": file_digest.to_string(),
            "size": m.size(),
            "annotations": { REF_NAME: tag },
        }));
        let bytes = serde_json::to_vec(&index)
            .map_err(|e| StoreError::Protocol(format!("index.json: {e}")))?;
        write_atomic(&self.root, &self.root.join(INDEX_FILE), &bytes)
    }

    async fn tags(&self) -> Result<Vec<String>, StoreError> {
        let index = self.read_index()?;
        let mut tags: Vec<String> = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["annotations"][REF_NAME].as_str().map(str::to_string))
            .collect();
        tags.dedup();
        Ok(tags)
    }

    async fn blob_head(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(self.blob_path(digest), e)),
        }
    }

    async fn blob_get(&self, blob: &Blob) -> Result<BlobStream, StoreError> {
        let path = self.blob_path(&blob.digest);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    what: format!("blob {} in {}", blob.digest, self.describe()),
                });
            }
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let stream = ReaderStream::with_capacity(file, 256 * 1024)
            .map(move |r| r.map_err(|e| StoreError::io(&path, e)));
        Ok(stream.boxed())
    }

    async fn blob_put(&self, blob: &Blob, mut data: BlobStream) -> Result<(), StoreError> {
        let Some((dir, path)) = self.new_blob_path(&blob.digest).await? else {
            return Ok(());
        };
        let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let (file, tmp_path) = tmp.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        // If anything below fails, dropping `tmp_path` removes the partial file.
        while let Some(chunk) = data.next().await {
            file.write_all(&chunk?)
                .await
                .map_err(|e| StoreError::io(&path, e))?;
        }
        file.sync_all()
            .await
            .map_err(|e| StoreError::io(&path, e))?;
        drop(file);
        tmp_path
            .persist(&path)
            .map_err(|e| StoreError::io(&path, e.error))?;
        Ok(())
    }
}
