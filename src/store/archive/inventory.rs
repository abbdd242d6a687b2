//! The inventory of an export: every image (name, tag, digest), every
//! manifest and blob it carries with its size, what it left out because
//! an earlier export carried it (and which), and its files. Written inside
//! the archive (`ocirepl.inventory.json`, first volume, without the
//! files' checksums, which it cannot know of itself) and beside it
//! (`PATH.inventory.json`, with them).
//!
//! Owns the format (versioned JSON) and the arithmetic of incremental
//! exports: what earlier inventories carried. Never reads an image.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ArchiveError, MAX_METADATA};
use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::layout::names::containerd_name;

/// The inventory's name inside an archive.
pub const INSIDE: &str = "ocirepl.inventory.json";
/// The marker at the head of volume `n` (2 and up) of a split archive.
pub fn volume_marker(n: usize) -> String {
    format!("ocirepl.volume.{n}.json")
}
/// The only inventory format this build reads.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub ocirepl_inventory: u32,
    /// Names this export; volumes and later exports refer to it.
    pub id: String,
    pub created: String,
    pub images: Vec<Image>,
    /// Manifests and blobs this export carries.
    pub manifests: Vec<Item>,
    pub blobs: Vec<Item>,
    /// What it left out, and which earlier export carried each.
    #[serde(default)]
    pub omitted: Vec<Omitted>,
    /// The earlier exports it builds on.
    #[serde(default)]
    pub since: Vec<Earlier>,
    /// Its files, in order (checksums only in the copy beside it).
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

/// A tagged image of the export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `registry/repository:tag`, or the tag alone.
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Omitted {
    pub digest: Digest,
    /// The id of the earlier export that carried it.
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Earlier {
    pub id: String,
    /// The inventory file it was read from.
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The head of a volume after the first: which export, which volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub export: String,
    pub volume: usize,
    pub of: usize,
}

impl Inventory {
    /// Parses inventory bytes from `from` (a file or an archive entry).
    pub fn parse(bytes: &[u8], from: &Path) -> Result<Inventory, ArchiveError> {
        let inv: Inventory = serde_json::from_slice(bytes).map_err(|e| {
            ArchiveError::Invalid(from.to_path_buf(), format!("not an ocirepl inventory: {e}"))
        })?;
        if inv.ocirepl_inventory != FORMAT {
            return Err(ArchiveError::Invalid(
                from.to_path_buf(),
                format!(
                    "inventory format {} (this ocirepl reads {FORMAT})",
                    inv.ocirepl_inventory
                ),
            ));
        }
        Ok(inv)
    }

    /// Reads an inventory file (`--since`), capped.
    pub fn read(path: &Path) -> Result<Inventory, ArchiveError> {
        let file = std::fs::File::open(path).map_err(|e| ArchiveError::io(path, e))?;
        let mut bytes = Vec::new();
        file.take(MAX_METADATA + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ArchiveError::io(path, e))?;
        if bytes.len() as u64 > MAX_METADATA {
            return Err(ArchiveError::Invalid(
                path.to_path_buf(),
                format!("larger than {MAX_METADATA} bytes"),
            ));
        }
        Inventory::parse(&bytes, path)
    }

    /// Every digest this export carries.
    pub fn carried(&self) -> impl Iterator<Item = &Item> {
        self.manifests.iter().chain(&self.blobs)
    }
}

/// What earlier exports carried: digest → (size, the export's id and file).
#[derive(Debug, Clone, Default)]
pub struct Carried {
    items: HashMap<Digest, (u64, usize)>,
    /// Earlier images by name: `registry/repository:tag` → (digest, type, size).
    images: BTreeMap<String, (Digest, String, u64)>,
    pub earlier: Vec<Earlier>,
}

impl Carried {
    /// From the inventories given to `--since`, oldest first.
    pub fn from(inventories: &[(PathBuf, Inventory)]) -> Carried {
        let mut c = Carried::default();
        for (path, inv) in inventories {
            let n = c.earlier.len();
            c.earlier.push(Earlier {
                id: inv.id.clone(),
                file: path.display().to_string(),
            });
            for item in inv.carried() {
                c.items.insert(item.digest.clone(), (item.size, n));
            }
            for img in &inv.images {
                c.images.insert(
                    img.name.clone(),
                    (img.digest.clone(), img.media_type.clone(), img.size),
                );
            }
        }
        c
    }

    /// The size of a digest an earlier export carried.
    pub fn size(&self, d: &Digest) -> Option<u64> {
        self.items.get(d).map(|(s, _)| *s)
    }

    /// The id of the earlier export that carried `d`.
    pub fn by(&self, d: &Digest) -> Option<&str> {
        self.items
            .get(d)
            .and_then(|(_, n)| self.earlier.get(*n))
            .map(|e| e.id.as_str())
    }

    /// The image an earlier export had under `name` (`registry/repo:tag`).
    pub fn image(&self, name: &str) -> Option<&(Digest, String, u64)> {
        self.images.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The tags earlier exports had for a repository (or, with none, the
    /// names that are tags alone).
    pub fn tags_of(&self, repository: Option<&Reference>) -> Vec<String> {
        self.images
            .keys()
            .filter_map(|name| match repository {
                Some(r) => name
                    .strip_prefix(&containerd_name(r, ""))
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
                None => (!name.contains(['/', ':'])).then(|| name.clone()),
            })
            .collect()
    }
}

/// The set of digests an inventory says were left out.
pub fn omitted_set(inv: &Inventory) -> HashSet<Digest> {
    inv.omitted.iter().map(|o| o.digest.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_what_was_carried() {
        let d = Digest::sha256(b"layer");
        let inv = Inventory {
            ocirepl_inventory: FORMAT,
            id: "e1".into(),
            created: "2026-12-06T00:00:00Z".into(),
            images: vec![Image {
                name: "r.io/app:1".into(),
                digest: Digest::sha256(b"m"),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                size: 1,
            }],
            blobs: vec![Item {
                digest: d.clone(),
                size: 5,
                media_type: None,
            }],
            ..Inventory::default()
        };
        let bytes = serde_json::to_vec(&inv).unwrap();
        let back = Inventory::parse(&bytes, Path::new("x")).unwrap();
        assert_eq!(back, inv);
        let carried = Carried::from(&[(PathBuf::from("a.inventory.json"), back)]);
        assert_eq!(carried.size(&d), Some(5));
        assert_eq!(carried.by(&d), Some("e1"));
        assert!(carried.image("r.io/app:1").is_some());
        let wrong = br#"{"ocirepl_inventory": 9, "id": "x", "created": "", "images": [], "manifests": [], "blobs": []}"#;
        assert!(Inventory::parse(wrong, Path::new("x")).is_err());
        assert!(Inventory::parse(b"[]", Path::new("x")).is_err());
    }
}
