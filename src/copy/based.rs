//! An incremental archive as a source: what it left out (an earlier
//! export carried it) is read from the target it is being imported into,
//! by digest, where an earlier import put it. A tag that moved to an image
//! an earlier archive carried (`latest` now naming `1.2`) is then imported
//! from what the target holds, verified by digest like any read.
//!
//! Owns that fallback and nothing else: every other question goes to the
//! archive. Never writes.

use std::sync::Arc;

use async_trait::async_trait;

use crate::digest::Digest;
use crate::manifest::RawManifest;
use crate::manifest::referrers::Listed;
use crate::reference::ManifestRef;
use crate::store::{Blob, BlobStream, Location, Store, StoreError};

/// A source (`src`) backed, for content it lacks, by `base`.
pub struct Based {
    pub src: Arc<dyn Store>,
    pub base: Arc<dyn Store>,
}

#[async_trait]
impl Store for Based {
    fn describe(&self) -> String {
        self.src.describe()
    }

    fn location(&self) -> Location {
        self.src.location()
    }

    async fn manifest_head(&self, r: &ManifestRef) -> Result<Option<Digest>, StoreError> {
        self.src.manifest_head(r).await
    }

    /// From the source; what it left out, by digest from the base (a tag
    /// is resolved by the source first, so the base is read by digest).
    async fn manifest_get(&self, r: &ManifestRef) -> Result<RawManifest, StoreError> {
        let what = match self.src.manifest_get(r).await {
            Err(StoreError::NotFound { what }) => what,
            other => return other,
        };
        let digest = match r {
            ManifestRef::Digest(d) => d.clone(),
            tag => match self.src.manifest_head(tag).await? {
                Some(d) => d,
                None => return Err(StoreError::NotFound { what }),
            },
        };
        match self.base.manifest_get(&ManifestRef::Digest(digest)).await {
            Ok(m) => Ok(m),
            Err(StoreError::NotFound { .. }) => Err(StoreError::NotFound {
                what: format!("{what}, nor in {}", self.base.describe()),
            }),
            Err(e) => Err(e),
        }
    }

    async fn manifest_put(&self, r: &ManifestRef, m: &RawManifest) -> Result<(), StoreError> {
        self.src.manifest_put(r, m).await
    }

    async fn blob_head(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        self.src.blob_head(digest).await
    }

    async fn blob_get(&self, blob: &Blob) -> Result<BlobStream, StoreError> {
        self.src.blob_get(blob).await
    }

    async fn blob_put(&self, blob: &Blob, data: BlobStream) -> Result<(), StoreError> {
        self.src.blob_put(blob, data).await
    }

    async fn tags(&self) -> Result<Vec<String>, StoreError> {
        self.src.tags().await
    }

    async fn referrers(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<Option<Vec<Listed>>, StoreError> {
        self.src.referrers(subject, artifact_types).await
    }

    async fn settled(&self) -> Result<(), StoreError> {
        self.src.settled().await
    }

    fn built(&self, digest: &Digest) -> Option<String> {
        self.src.built(digest)
    }
}
