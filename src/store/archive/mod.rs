//! Archives: `oci-archive:PATH[:NAME]` and `docker-archive:PATH[:NAME]`,
//! read and written as stores, so that copying into or out of one is an
//! ordinary copy (and a mirror job can go across an air gap).
//!
//! - Reading (`reader`): an OCI layout in a tar (what ocirepl, skopeo,
//!   containerd and Docker 25+ write), or a classic `docker save` archive
//!   (`manifest.json` and uncompressed layers, `docker`), never extracted:
//!   in place by offset, or through a spool when compressed (`body`);
//!   every entry held to strict rules (`entries`), every byte to its digest.
//! - Writing (`writer`, `pack`): the copy writes into a layout directory
//!   beside the archive; when the run ends it is packed into one format
//!   that loads everywhere: the OCI layout (docker's and containerd's name
//!   annotations) plus docker's `manifest.json` over the same blob files,
//!   metadata first (so a one-pass reader knows everything before the
//!   layers), optionally split into volumes and compressed, with an
//!   inventory inside and beside it (`inventory`) that later exports can
//!   leave out what they carried already (`--since`).
//!
//! Never decides what to copy, and never writes outside the archive's own
//! files.

mod body;
mod docker;
pub mod entries;
pub mod inventory;
mod pack;
mod reader;
mod tarwrite;
mod writer;

use std::path::{Path, PathBuf};

pub use body::{Compression, MAX_EXPANSION};
pub use inventory::Inventory;
pub use pack::{PackOptions, Packed};
pub use reader::{ArchiveReader, ArchiveStore};
pub use writer::{ArchiveTarget, ArchiveWriter};

use entries::EntryError;

/// The largest `index.json`, `manifest.json` or inventory read from an
/// archive: tens of thousands of images take a few MiB (and a parsed JSON
/// document takes many times its size in memory).
pub const MAX_METADATA: u64 = 16 * 1024 * 1024;

/// What is wrong with an archive: the archive, the entry, the problem.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ArchiveError {
    #[error("{}: {error}", .path.display())]
    Entry { path: PathBuf, error: EntryError },
    #[error("{}: {why}", .0.display(), why = .1)]
    Tar(PathBuf, String),
    #[error("{}: {why}", .0.display(), why = .1)]
    Io(PathBuf, String),
    #[error("entry {name:?} is {size} bytes, more than the {cap} read into memory")]
    TooLarge { name: String, size: u64, cap: u64 },
    #[error("{0}")]
    Read(String),
    #[error("{}: {why}", .0.display(), why = .1)]
    Invalid(PathBuf, String),
}

impl ArchiveError {
    pub fn io(path: impl AsRef<Path>, e: std::io::Error) -> ArchiveError {
        ArchiveError::Io(path.as_ref().to_path_buf(), e.to_string())
    }

    pub fn entry(path: impl AsRef<Path>, error: EntryError) -> ArchiveError {
        ArchiveError::Entry {
            path: path.as_ref().to_path_buf(),
            error,
        }
    }

    pub fn into_store(self) -> super::StoreError {
        super::StoreError::Protocol(self.to_string())
    }
}

impl From<ArchiveError> for super::StoreError {
    fn from(e: ArchiveError) -> Self {
        e.into_store()
    }
}
