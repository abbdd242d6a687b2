//! Read mirrors: a source store that reads content from mirrors before
//! its origin (a pull-through cache, `mirror.gcr.io`), so that what a
//! mirror holds costs the origin nothing (no Docker Hub pull, no bytes).
//!
//! Owns which upstream answers which read:
//! - tags are resolved at the origin (a HEAD, which Docker Hub does not
//!   count), unless `mirror_tags` says a mirror's tags may be trusted;
//! - manifests by digest and blobs come from the first mirror that has
//!   them, verified against their digest (a mirror cannot change content),
//!   and from the origin only for what no mirror has;
//! - a mirror that is down or lies is skipped, with a warning, for the rest
//!   of the run; a lie found while a blob streams fails that read as
//!   transient, so the copy's retry reads from the next mirror or the
//!   origin;
//! - listings, referrers, the pull budget and writes are the origin's.
//!
//! Never decides what to copy, and never writes to a mirror.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;

use super::{Blob, BlobStream, Location, Store, StoreError};
use crate::digest::{Digest, verify_stream};
use crate::manifest::RawManifest;
use crate::manifest::referrers::Listed;
use crate::reference::ManifestRef;

/// A source read through mirrors first.
pub struct MirroredStore {
    origin: Arc<dyn Store>,
    mirrors: Vec<Arc<dyn Store>>,
    /// Resolve tags at the mirrors too (`mirror_tags: true`).
    mirror_tags: bool,
    /// Mirrors found down or lying, skipped from then on.
    skipped: Arc<Mutex<HashSet<usize>>>,
}

impl MirroredStore {
    pub fn new(origin: Arc<dyn Store>, mirrors: Vec<Arc<dyn Store>>, mirror_tags: bool) -> Self {
        MirroredStore {
            origin,
            mirrors,
            mirror_tags,
            skipped: Arc::default(),
        }
    }

    /// The mirrors still in use, with their index.
    fn live(&self) -> Vec<(usize, Arc<dyn Store>)> {
        let skipped = self.skipped.lock().map(|s| s.clone()).unwrap_or_default();
        self.mirrors
            .iter()
            .enumerate()
            .filter(|(i, _)| !skipped.contains(i))
            .map(|(i, m)| (i, m.clone()))
            .collect()
    }

    /// A mirror that failed in a way other than not having the content.
    fn skip(&self, i: usize, e: &StoreError) {
        skip(&self.skipped, &self.mirrors[i], i, e);
    }

    /// A manifest from the first mirror that has it (by digest, or by tag
    /// when `mirror_tags`), else from the origin.
    async fn manifest_from_mirrors(&self, r: &ManifestRef) -> Option<RawManifest> {
        for (i, m) in self.live() {
            match m.manifest_get(r).await {
                Ok(found) => return Some(found),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => self.skip(i, &e),
            }
        }
        None
    }
}

fn skip(skipped: &Mutex<HashSet<usize>>, mirror: &Arc<dyn Store>, i: usize, e: &StoreError) {
    let first = skipped.lock().map(|mut s| s.insert(i)).unwrap_or(false);
    if first {
        tracing::warn!(
            "read mirror {} skipped for the rest of the run, the origin used instead: {e}",
            mirror.describe()
        );
    }
}

#[async_trait]
impl Store for MirroredStore {
    fn describe(&self) -> String {
        self.origin.describe()
    }

    fn location(&self) -> Location {
        self.origin.location()
    }

    async fn manifest_head(&self, r: &ManifestRef) -> Result<Option<Digest>, StoreError> {
        if self.mirror_tags && matches!(r, ManifestRef::Tag(_)) {
            for (i, m) in self.live() {
                match m.manifest_head(r).await {
                    Ok(Some(d)) => return Ok(Some(d)),
                    Ok(None) => {}
                    Err(e) => self.skip(i, &e),
                }
            }
        }
        self.origin.manifest_head(r).await
    }

    async fn manifest_get(&self, r: &ManifestRef) -> Result<RawManifest, StoreError> {
        let by_digest = match r {
            ManifestRef::Digest(_) => r.clone(),
            ManifestRef::Tag(_) if self.mirror_tags => {
                if let Some(m) = self.manifest_from_mirrors(r).await {
                    return Ok(m);
                }
                return self.origin.manifest_get(r).await;
            }
            // The tag at the origin (a HEAD), the bytes from a mirror.
            ManifestRef::Tag(_) => match self.origin.manifest_head(r).await? {
                Some(d) => ManifestRef::Digest(d),
                None => return self.origin.manifest_get(r).await,
            },
        };
        if let Some(m) = self.manifest_from_mirrors(&by_digest).await {
            return Ok(m);
        }
        self.origin.manifest_get(&by_digest).await
    }

    async fn manifest_put(&self, r: &ManifestRef, m: &RawManifest) -> Result<(), StoreError> {
        self.origin.manifest_put(r, m).await
    }

    async fn blob_head(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        self.origin.blob_head(digest).await
    }

    async fn blob_get(&self, blob: &Blob) -> Result<BlobStream, StoreError> {
        for (i, m) in self.live() {
            match m.blob_get(blob).await {
                Ok(stream) => return Ok(checked(stream, blob, self.skipped.clone(), m, i)),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => self.skip(i, &e),
            }
        }
        self.origin.blob_get(blob).await
    }

    async fn blob_get_url(&self, url: &str, blob: &Blob) -> Result<BlobStream, StoreError> {
        self.origin.blob_get_url(url, blob).await
    }

    async fn blob_put(&self, blob: &Blob, data: BlobStream) -> Result<(), StoreError> {
        self.origin.blob_put(blob, data).await
    }

    async fn tags(&self) -> Result<Vec<String>, StoreError> {
        self.origin.tags().await
    }

    async fn referrers(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<Option<Vec<Listed>>, StoreError> {
        self.origin.referrers(subject, artifact_types).await
    }

    async fn settled(&self) -> Result<(), StoreError> {
        self.origin.settled().await
    }

    fn states_pull_budget(&self) -> bool {
        self.origin.states_pull_budget()
    }

    fn reserve_pulls(&self, n: u64, keep: u64) -> Result<(), StoreError> {
        self.origin.reserve_pulls(n, keep)
    }
}

/// A mirror's blob, verified as it streams: a mirror that breaks or lies
/// is skipped from then on and the read fails as transient, so that the
/// copy reads it again, from elsewhere.
fn checked(
    stream: BlobStream,
    blob: &Blob,
    skipped: Arc<Mutex<HashSet<usize>>>,
    mirror: Arc<dyn Store>,
    i: usize,
) -> BlobStream {
    verify_stream(stream, blob.digest.clone(), blob.size)
        .map(move |chunk| {
            chunk.map_err(|e| {
                skip(&skipped, &mirror, i, &e);
                StoreError::Relayed {
                    message: format!("read mirror {}: {e}", mirror.describe()),
                    transient: true,
                }
            })
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::layout::LayoutStore;

    /// A layout holding `blobs` (name → bytes, the name being the digest
    /// the bytes are filed under, which may lie).
    fn layout(blobs: &[(&Digest, &[u8])]) -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let dirs = dir.path().join("blobs/sha256");
        std::fs::create_dir_all(&dirs).unwrap();
        for (d, bytes) in blobs {
            std::fs::write(dirs.join(d.hex()), bytes).unwrap();
        }
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("index.json"),
            r#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
        let store: Arc<dyn Store> = Arc::new(LayoutStore::open(dir.path(), false).unwrap());
        (dir, store)
    }

    async fn read(s: &dyn Store, b: &Blob) -> Result<Vec<u8>, StoreError> {
        let mut stream = s.blob_get(b).await?;
        let mut out = Vec::new();
        while let Some(c) = stream.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn mirrors_first_the_origin_for_the_rest_and_a_liar_is_skipped() {
        let (a, b) = (
            b"held by the mirror".as_slice(),
            b"only at the origin".as_slice(),
        );
        let (da, db) = (Digest::sha256(a), Digest::sha256(b));
        let (ba, bb) = (
            Blob::new(da.clone(), a.len() as u64),
            Blob::new(db.clone(), b.len() as u64),
        );
        let (_o, origin) = layout(&[(&da, a), (&db, b)]);
        let (_m, mirror) = layout(&[(&da, a)]);
        let store = MirroredStore::new(origin.clone(), vec![mirror], false);
        assert_eq!(read(&store, &ba).await.unwrap(), a);
        assert_eq!(
            read(&store, &bb).await.unwrap(),
            b,
            "the origin for the rest"
        );
        assert!(store.live().len() == 1, "a miss does not skip the mirror");

        let (_l, liar) = layout(&[(&da, b"other bytes, same size.")]);
        let store = MirroredStore::new(origin, vec![liar], false);
        let e = read(&store, &ba).await.unwrap_err();
        assert!(e.is_transient(), "a retry reads elsewhere: {e}");
        assert!(store.live().is_empty(), "the liar is skipped");
        assert_eq!(read(&store, &ba).await.unwrap(), a, "from the origin");
    }
}
