//! Docker schema1 → schema2, as pure data: validates the schema1 structure,
//! lists its layers oldest first, and, given each layer's diff_id, builds
//! the schema2 config and manifest.
//!
//! Owns the conversion rules docker and skopeo follow: consecutive
//! duplicate v1 IDs collapse into one entry; throwaway entries become
//! `empty_layer` history without a layer; the config is the newest
//! `v1Compatibility` without its v1 bookkeeping fields, plus `rootfs` and
//! `history`. Never reads a blob: diff_ids come from whoever streamed the
//! layers.

use std::collections::HashSet;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::RawManifest;
use crate::digest::Digest;
use crate::media::{self, MediaType};

/// v1 bookkeeping fields that a schema2 config does not carry.
const DROPPED_FIELDS: [&str; 6] = ["id", "parent", "parent_id", "layer_id", "throwaway", "Size"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Schema1Error {
    #[error("schema1 manifest is not valid JSON: {0}")]
    Json(String),
    #[error("schema1 manifest has {layers} fsLayers but {history} history entries")]
    LengthMismatch { layers: usize, history: usize },
    #[error("schema1 manifest has no layers")]
    Empty,
    #[error("schema1 history entry {index}: {why}")]
    History { index: usize, why: String },
    #[error("schema1 v1 ID {0:?} is not 64 lower-case hex characters")]
    BadId(String),
    #[error(
        "schema1 parent chain is broken at entry {index}: expected parent {expected:?}, got {got:?}"
    )]
    BrokenChain {
        index: usize,
        expected: String,
        got: String,
    },
    #[error("schema1 v1 ID {0} appears twice, not next to itself")]
    DuplicateId(String),
    #[error("got {got} diff_ids for {expected} layers")]
    DiffIds { expected: usize, got: usize },
}

/// One schema1 entry, oldest first after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub blob: Digest,
    pub throwaway: bool,
    v1: Map<String, Value>,
}

/// A validated schema1 manifest, ready to convert once diff_ids are known.
#[derive(Debug, Clone)]
pub struct Schema1 {
    /// Oldest first.
    pub entries: Vec<Entry>,
}

impl Schema1 {
    /// Parses and validates schema1 bytes: the payload, for a signed one
    /// (see [`RawManifest::content`]).
    pub fn parse(bytes: &[u8]) -> Result<Schema1, Schema1Error> {
        let mut entries = read_entries(bytes)?;
        check_chain(&entries)?;
        // Walk from the oldest end so that removals keep the indexes ahead valid.
        for i in (0..entries.len() - 1).rev() {
            if entries[i].id() == entries[i + 1].id() {
                entries.remove(i);
            }
        }
        entries.reverse();
        Ok(Schema1 { entries })
    }

    /// The entries that become layers of the schema2 image, oldest first.
    pub fn layers(&self) -> Vec<&Entry> {
        self.entries.iter().filter(|e| !e.throwaway).collect()
    }

    /// Builds (config, manifest) given the diff_id and size of each layer
    /// of [`Schema1::layers`], in that order.
    pub fn to_schema2(
        &self,
        layers: &[(Digest, u64)],
    ) -> Result<(Bytes, RawManifest), Schema1Error> {
        let entries = self.layers();
        if entries.len() != layers.len() {
            return Err(Schema1Error::DiffIds {
                expected: entries.len(),
                got: layers.len(),
            });
        }
        let newest = self.entries.last().ok_or(Schema1Error::Empty)?;
        let mut config = newest.v1.clone();
        for f in DROPPED_FIELDS {
            config.shift_remove(f);
        }
        let diff_ids: Vec<String> = layers.iter().map(|(d, _)| d.to_string()).collect();
        config.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids}),
        );
        let history: Vec<Value> = self.entries.iter().map(history_item).collect();
        config.insert("history".into(), Value::Array(history));
        let config_bytes = Bytes::from(
            serde_json::to_vec(&Value::Object(config))
                .map_err(|e| Schema1Error::Json(e.to_string()))?,
        );

        let layer_descriptors: Vec<Value> = entries
            .iter()
            .zip(layers)
            .map(|(e, (_, size))| {
                json!({"mediaType": media::DOCKER_LAYER_GZIP, "size": size, "digest": e.blob.to_string()})
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_V2S2,
            "config": {
                "mediaType": media::DOCKER_CONFIG,
                "size": config_bytes.len(),
                "digest": Digest::sha256(&config_bytes).to_string(),
            },
            "layers": layer_descriptors,
        });
        let bytes = Bytes::from(
            serde_json::to_vec(&manifest).map_err(|e| Schema1Error::Json(e.to_string()))?,
        );
        Ok((
            config_bytes,
            RawManifest::generated(bytes, MediaType::DockerV2S2),
        ))
    }
}

impl Entry {
    fn id(&self) -> &str {
        self.v1.get("id").and_then(Value::as_str).unwrap_or("")
    }

    fn parent(&self) -> &str {
        self.v1.get("parent").and_then(Value::as_str).unwrap_or("")
    }
}

/// The entries of a schema1 document, newest first as in the manifest,
/// each with a well-formed v1 ID.
fn read_entries(bytes: &[u8]) -> Result<Vec<Entry>, Schema1Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Doc {
        fs_layers: Vec<FsLayer>,
        history: Vec<History>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct FsLayer {
        blob_sum: Digest,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct History {
        v1_compatibility: String,
    }
    let doc: Doc = serde_json::from_slice(bytes).map_err(|e| Schema1Error::Json(e.to_string()))?;
    if doc.fs_layers.len() != doc.history.len() {
        return Err(Schema1Error::LengthMismatch {
            layers: doc.fs_layers.len(),
            history: doc.history.len(),
        });
    }
    if doc.fs_layers.is_empty() {
        return Err(Schema1Error::Empty);
    }
    let mut entries = Vec::with_capacity(doc.history.len());
    for (index, (layer, h)) in doc.fs_layers.into_iter().zip(doc.history).enumerate() {
        let v1: Map<String, Value> =
            serde_json::from_str(&h.v1_compatibility).map_err(|e| Schema1Error::History {
                index,
                why: e.to_string(),
            })?;
        let entry = Entry {
            blob: layer.blob_sum,
            throwaway: v1
                .get("throwaway")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            v1,
        };
        let id = entry.id();
        if id.len() != 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Schema1Error::BadId(id.to_string()));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Each entry's parent is the next (older) one, the oldest has none, and
/// an ID repeats only right next to itself (docker collapses those).
fn check_chain(entries: &[Entry]) -> Result<(), Schema1Error> {
    let Some(base) = entries.last() else {
        return Err(Schema1Error::Empty);
    };
    if !base.parent().is_empty() {
        return Err(Schema1Error::BrokenChain {
            index: entries.len() - 1,
            expected: String::new(),
            got: base.parent().to_string(),
        });
    }
    let mut seen = HashSet::new();
    let mut last = "";
    for e in entries {
        if e.id() != last && !seen.insert(e.id()) {
            return Err(Schema1Error::DuplicateId(e.id().to_string()));
        }
        last = e.id();
    }
    for (i, pair) in entries.windows(2).enumerate() {
        let (newer, older) = (&pair[0], &pair[1]);
        if newer.id() != older.id() && newer.parent() != older.id() {
            return Err(Schema1Error::BrokenChain {
                index: i,
                expected: older.id().to_string(),
                got: newer.parent().to_string(),
            });
        }
    }
    Ok(())
}

/// One schema2 history item from a v1Compatibility entry.
fn history_item(e: &Entry) -> Value {
    let mut h = Map::new();
    if let Some(created) = e.v1.get("created") {
        h.insert("created".into(), created.clone());
    }
    let cmd: Vec<&str> =
        e.v1.get("container_config")
            .and_then(|c| c.get("Cmd"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
    if !cmd.is_empty() {
        h.insert("created_by".into(), Value::String(cmd.join(" ")));
    }
    for field in ["author", "comment"] {
        if let Some(v) =
            e.v1.get(field)
                .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            h.insert(field.into(), v.clone());
        }
    }
    if e.throwaway {
        h.insert("empty_layer".into(), Value::Bool(true));
    }
    Value::Object(h)
}

#[cfg(test)]
mod tests;
