//! The [`Store`] trait: one repository where images live, as the copy sees
//! it (a repository of a registry, or an OCI layout directory). A store
//! answers manifest and blob questions; it hides URLs, status codes,
//! credentials and files.
//!
//! Owns the contract every implementation keeps: manifests come back as the
//! exact bytes, verified against the digest asked for (or the registry's
//! `Docker-Content-Digest`); blobs stream; a blob write either completes
//! whole or leaves nothing visible; failures come back sorted by meaning
//! ([`StoreError`]), so callers branch on kinds, never on status numbers.
//! Opening stores from plain settings is [`open`]. Never decides what to copy.

pub mod archive;
pub mod layout;
pub mod mirrored;
pub mod open;
pub mod registry;

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::credentials::CredentialError;
use crate::digest::{Digest, IntegrityError};
use crate::manifest::referrers::Listed;
use crate::manifest::{ManifestError, RawManifest};
use crate::reference::ManifestRef;
use crate::transport::TransportError;

pub use crate::transport::pace::Caps;
pub use open::{Access, Mirror, Role, Stores};
pub use registry::discovery::{Api as DiscoveryApi, Discovery};

/// Blob bytes on their way, in chunks.
pub type BlobStream = BoxStream<'static, Result<Bytes, StoreError>>;

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

/// Where a store's repository lives. Two stores in the same `place` (one
/// registry, reached the same way) can mount blobs from each other's
/// repositories instead of copying them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// `registry HOST[:PORT]` or `layout PATH`.
    pub place: String,
    /// The repository within it (empty for a layout).
    pub repository: String,
}

/// Why a target refused a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// It does not (yet) hold a blob or child the manifest references:
    /// eventual consistency, or a target that lost what it said it had.
    UnknownBlob,
    /// It does not take this media type (schema1 on most registries).
    UnsupportedType,
    /// It found the manifest itself invalid.
    Invalid,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The registry, or the way to it, failed in a way not sorted further:
    /// a status we did not expect, no answer, a refused hop.
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{what} not found")]
    NotFound { what: String },
    /// Credentials were refused, or the operation is forbidden.
    #[error("{source}")]
    Denied {
        #[source]
        source: TransportError,
    },
    /// The target refused a manifest, for this reason.
    #[error("{source}")]
    Rejected {
        why: Rejection,
        #[source]
        source: TransportError,
    },
    /// The registry's pull budget (Docker Hub's rate limit) would fall
    /// below what the run keeps in reserve: the image is left for later.
    #[error(
        "{registry} has {remaining} pulls left in its rate-limit window; this image needs {needed} and {keep} are kept in reserve (ratelimit_min): left for a later run"
    )]
    PullBudget {
        registry: String,
        remaining: u64,
        needed: u64,
        keep: u64,
    },
    /// Credentials could not be looked up (an auth file, a helper).
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    #[error("{what}: {source}")]
    Manifest {
        what: String,
        #[source]
        source: ManifestError,
    },
    #[error("{what} is larger than {limit} bytes")]
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
    /// A failure met by a read another copy started and this one shared
    /// (one source read written to several targets), passed on with
    /// whether trying again may help.
    #[error("{message}")]
    Relayed { message: String, transient: bool },
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
    /// body, or a body that ended early. Lies (wrong digest, extra bytes),
    /// refusals and denials are final.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Transport(t) => t.is_transient(),
            StoreError::Integrity(IntegrityError::TooShort { .. }) => true,
            StoreError::Relayed { transient, .. } => *transient,
            _ => false,
        }
    }

    /// Why a manifest was refused, when that is what happened.
    pub fn rejection(&self) -> Option<Rejection> {
        match self {
            StoreError::Rejected { why, .. } => Some(*why),
            _ => None,
        }
    }
}

/// What [`Store::blob_lookup`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The repository holds the blob.
    Present,
    /// Linked from the other repository just now.
    Mounted,
    /// Neither: upload it.
    Missing,
}

/// One repository where images live: a registry's, or an OCI layout.
#[async_trait]
pub trait Store: Send + Sync {
    /// `registry 127.0.0.1:5000` or `layout /tmp/x`, for messages.
    fn describe(&self) -> String;

    /// Where this repository lives (see [`Location`]).
    fn location(&self) -> Location;

    /// The digest a reference currently names, or `None` when absent. For a
    /// registry this is one HEAD.
    async fn manifest_head(&self, r: &ManifestRef) -> Result<Option<Digest>, StoreError>;

    /// The manifest's exact bytes, verified against the digest asked for or
    /// the one the store states.
    async fn manifest_get(&self, r: &ManifestRef) -> Result<RawManifest, StoreError>;

    /// Stores the bytes under `r`: by digest (a child, or a digest-only push)
    /// or by tag (which moves the tag).
    async fn manifest_put(&self, r: &ManifestRef, m: &RawManifest) -> Result<(), StoreError>;

    /// Deletes a manifest reference: a tag alone where the store can untag,
    /// or a digest (which, in a registry, removes every tag naming it).
    /// A store that cannot delete this way says [`StoreError::Unsupported`].
    async fn manifest_delete(&self, r: &ManifestRef) -> Result<(), StoreError> {
        Err(StoreError::Unsupported(format!(
            "{} cannot delete {r}",
            self.describe()
        )))
    }

    /// The size of a blob that exists, or `None`.
    async fn blob_head(&self, digest: &Digest) -> Result<Option<u64>, StoreError>;

    /// Links a blob that exists in repository `from` of the same place
    /// into this repository without moving its bytes. `Ok(false)`: not
    /// mounted, upload it.
    async fn blob_mount(&self, from: &str, blob: &Blob) -> Result<bool, StoreError> {
        let _ = (from, blob);
        Ok(false)
    }

    /// Whether this repository holds `blob`, or can link it from repository
    /// `from` of the same place without its bytes. By default a HEAD, then
    /// the mount; a registry known to honour mounts asks in one POST (see
    /// `registry::RegistryStore`), keeping the upload session a `Missing`
    /// answer opens for the `blob_put` that follows.
    async fn blob_lookup(&self, blob: &Blob, from: Option<&str>) -> Result<Lookup, StoreError> {
        if self.blob_head(&blob.digest).await?.is_some() {
            return Ok(Lookup::Present);
        }
        match from {
            Some(from) if self.blob_mount(from, blob).await? => Ok(Lookup::Mounted),
            _ => Ok(Lookup::Missing),
        }
    }

    /// Gives up on a blob a lookup prepared an upload for (a registry's
    /// open upload session is cancelled); the copy failed before `blob_put`.
    async fn blob_abandon(&self, digest: &Digest) {
        let _ = digest;
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
    async fn blob_get(&self, blob: &Blob) -> Result<BlobStream, StoreError>;

    /// Writes a blob from a stream. A stream that fails, or bytes that do not
    /// match the digest, leave no blob behind.
    async fn blob_put(&self, blob: &Blob, data: BlobStream) -> Result<(), StoreError>;

    /// Every tag of the repository, in the store's order.
    async fn tags(&self) -> Result<Vec<String>, StoreError>;

    /// The referrers of `subject` through the OCI 1.1 referrers API, of
    /// these artifact types (all when empty); `None` when the store has no
    /// such API.
    async fn referrers(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<Option<Vec<Listed>>, StoreError> {
        let _ = (subject, artifact_types);
        Ok(None)
    }

    /// Waits until the store is known whole: a source read in one pass
    /// (a compressed archive) says so once the pass has read and checked
    /// every entry. The copy asks before it moves a tag, so an entry refused
    /// late in the pass moves no tag.
    async fn settled(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// How the store made the manifest `digest`, when it built it rather
    /// than holding it (a docker-archive image): said in the report, as a
    /// reason the digest is new.
    fn built(&self, digest: &Digest) -> Option<String> {
        let _ = digest;
        None
    }

    /// Whether this store's blob streams are verified already: their last
    /// chunk comes only once size and digest are checked (a read shared by
    /// several targets was checked as it came from the source), so a copy
    /// need not hash them again. A store reading from outside never is.
    fn verifies_blobs(&self) -> bool {
        false
    }

    /// Whether the store's registry has stated a pull budget (Docker Hub
    /// does on every manifest answer). Stores without one never do.
    fn states_pull_budget(&self) -> bool {
        false
    }

    /// Takes `n` manifest pulls off the budget the store's registry states
    /// (Docker Hub counts manifest GETs), unless fewer than `keep` would be
    /// left. Stores without such a budget always agree.
    fn reserve_pulls(&self, n: u64, keep: u64) -> Result<(), StoreError> {
        let _ = (n, keep);
        Ok(())
    }
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
