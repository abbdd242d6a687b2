//! The [`Store`] trait: where images live, as the copy sees them. A store
//! answers manifest and blob questions for a repository; it hides URLs,
//! status codes and files.
//!
//! Owns the contract every implementation keeps: manifests come back as the
//! exact bytes, verified against the digest asked for (or the registry's
//! `Docker-Content-Digest`); blobs stream; a blob write either completes
//! whole or leaves nothing visible. Never decides what to copy.

pub mod layout;
pub mod registry;

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::digest::{Digest, IntegrityError};
use crate::manifest::{ManifestError, RawManifest};
use crate::transport::TransportError;

/// Blob bytes on their way, in chunks.
pub type BlobStream = BoxStream<'static, Result<Bytes, StoreError>>;

/// A manifest is named by a tag or by its digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ManifestRef {
    Tag(String),
    Digest(Digest),
}

impl std::fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestRef::Tag(t) => f.write_str(t),
            ManifestRef::Digest(d) => d.fmt(f),
        }
    }
}

/// A blob to move: its digest, the size its descriptor promises, and for
/// a foreign layer the URLs it may be fetched from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    pub urls: Vec<String>,
}

impl Blob {
    pub fn new(digest: Digest, size: u64) -> Blob {
        Blob {
            digest,
            size,
            urls: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{what} not found")]
    NotFound { what: String },
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    #[error("{what}: {source}")]
    Manifest {
        what: String,
        #[source]
        source: ManifestError,
    },
    #[error("manifest {what} is larger than {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("{what} (digest mismatch: expected {expected}, got {actual})")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A layer's content is unusable (not gzip, a decompression bomb).
    #[error("{0}")]
    Layer(String),
    /// The store cannot do this (a layout has no foreign URLs to fetch).
    #[error("{0}")]
    Unsupported(String),
    /// The store broke its side of the protocol in a way no status code says.
    #[error("{0}")]
    Protocol(String),
}

impl StoreError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether trying again (with the source reopened) may succeed: no
    /// answer, a transient status, a token that expired under a streamed
    /// body, or a body that ended early. Lies (wrong digest, extra bytes)
    /// and refusals are final.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Transport(
                TransportError::Network { .. } | TransportError::Resend { .. },
            ) => true,
            StoreError::Transport(TransportError::Status(e)) => {
                crate::transport::retry::classify_status(e.status)
                    == crate::transport::retry::Verdict::Retry
            }
            StoreError::Integrity(IntegrityError::TooShort { .. }) => true,
            _ => false,
        }
    }

    /// The registry's error codes, when it gave any.
    pub fn registry_codes(&self) -> Vec<&str> {
        match self {
            StoreError::Transport(t) => t
                .registry_error()
                .map(|e| e.diagnostics.iter().map(|d| d.code.as_str()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// A place images live: a registry, or an OCI layout directory.
#[async_trait]
pub trait Store: Send + Sync {
    /// `registry 127.0.0.1:5000` or `layout /tmp/x`, for messages.
    fn describe(&self) -> String;

    /// Two stores with the same identity are the same place: blobs can be
    /// mounted from one repository into another instead of copied.
    fn identity(&self) -> String {
        self.describe()
    }

    /// The digest a reference currently names, or `None` when absent. For a
    /// registry this is one HEAD.
    async fn manifest_head(
        &self,
        repo: &str,
        r: &ManifestRef,
    ) -> Result<Option<Digest>, StoreError>;

    /// The manifest's exact bytes, verified against the digest asked for or
    /// the one the store states.
    async fn manifest_get(&self, repo: &str, r: &ManifestRef) -> Result<RawManifest, StoreError>;

    /// Stores the bytes under `r`: by digest (a child, or a digest-only push)
    /// or by tag (which moves the tag).
    async fn manifest_put(
        &self,
        repo: &str,
        r: &ManifestRef,
        m: &RawManifest,
    ) -> Result<(), StoreError>;

    /// The size of a blob that exists, or `None`.
    async fn blob_head(&self, repo: &str, digest: &Digest) -> Result<Option<u64>, StoreError>;

    /// Links a blob that exists in repository `from` of this same store into
    /// `repo` without moving its bytes. `Ok(false)`: not mounted, upload it.
    async fn blob_mount(&self, repo: &str, from: &str, blob: &Blob) -> Result<bool, StoreError> {
        let _ = (repo, from, blob);
        Ok(false)
    }

    /// A foreign layer's bytes from one of its URLs, sent without any
    /// credentials. Callers verify them.
    async fn blob_get_url(&self, url: &str, blob: &Blob) -> Result<BlobStream, StoreError> {
        let _ = blob;
        Err(StoreError::Unsupported(format!(
            "{} cannot fetch foreign layers ({url})",
            self.describe()
        )))
    }

    /// A blob's bytes. Callers verify them (see `digest::verify_stream`).
    async fn blob_get(&self, repo: &str, blob: &Blob) -> Result<BlobStream, StoreError>;

    /// Every tag of a repository, in the store's order.
    async fn tags(&self, repo: &str) -> Result<Vec<String>, StoreError>;

    /// Writes a blob from a stream. A stream that fails, or bytes that do not
    /// match the digest, leave no blob behind.
    async fn blob_put(&self, repo: &str, blob: &Blob, data: BlobStream) -> Result<(), StoreError>;
}

/// Checks fetched manifest bytes against the digest the caller expects.
pub(crate) fn check_manifest_digest(
    what: &str,
    m: &RawManifest,
    expected: &Digest,
) -> Result<(), StoreError> {
    let actual = if m.digest.algorithm() == expected.algorithm() {
        m.digest.clone()
    } else {
        Digest::of(expected.algorithm(), m.content())
    };
    if &actual != expected {
        return Err(StoreError::DigestMismatch {
            what: what.to_string(),
            expected: expected.clone(),
            actual,
        });
    }
    Ok(())
}
