//! Packing a staging layout into the archive that loads everywhere:
//!
//! ```text
//! oci-layout  index.json  manifest.json  ocirepl.inventory.json
//! blobs/sha256/…   manifests and configs, then layers
//! ```
//!
//! `index.json` names each image docker's and containerd's way (the full
//! reference in `io.containerd.image.name`, the tag in
//! `org.opencontainers.image.ref.name`); `manifest.json` points docker's
//! `docker load` at the same blob files (for a multi-arch image, its
//! linux/amd64 image, else its first). Metadata comes first, so that a
//! reader in one pass knows every image before the layers arrive.
//!
//! Owns the order, the split into volumes (`--volume-size`: files no
//! larger than SIZE, at entry boundaries, each a valid tar; a blob larger
//! than SIZE gets one of its own), compression (`--compress`), leaving out
//! what earlier exports carried (`--since`), and the inventory inside and
//! beside. Every file is written under a temporary name and renamed into
//! place only when all are whole.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{Value, json};

use super::body::Compression;
use super::inventory::{
    Carried, FORMAT, INSIDE, Image, Inventory, Item, Marker, Omitted, Volume, volume_marker,
};
use super::tarwrite::{Data, Spec, write_tar};
use super::{ArchiveError, MAX_METADATA};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::manifest::{MAX_MANIFEST_SIZE, Parsed, RawManifest};
use crate::media::MediaType;
use crate::platform::Platform;
use crate::store::layout::names::{
    IMAGE_NAME, Named, REF_NAME, containerd_name, familiar_name, read_index,
};

/// How an archive is packed.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    pub compression: Option<Compression>,
    /// The largest file of a split archive (`None`: one file).
    pub volume_size: Option<u64>,
    /// Earlier exports' inventories (`--since`), with their files.
    pub since: Vec<(PathBuf, Inventory)>,
}

/// What packing wrote.
#[derive(Debug, Clone, Default)]
pub struct Packed {
    pub files: Vec<PathBuf>,
    /// The inventory beside the archive.
    pub inventory: PathBuf,
    pub images: usize,
    pub manifests: usize,
    pub blobs: usize,
    /// Bytes of manifests and blobs carried.
    pub bytes: u64,
    /// Manifests and blobs left out, an earlier export having carried them.
    pub omitted: usize,
    /// What a reader should know: Docker media types, a blob larger than
    /// a volume, what could not be carried.
    pub notes: Vec<String>,
}

pub(super) struct Input<'a> {
    pub staging: &'a Path,
    pub path: &'a Path,
    pub kept: &'a [Named],
    pub carried: &'a Carried,
    pub options: &'a PackOptions,
}

/// What the images need, walked from their roots in the staging layout.
#[derive(Default)]
struct Content {
    manifests: Vec<Item>,
    configs: Vec<Item>,
    layers: Vec<Item>,
    omitted: Vec<Omitted>,
    seen: HashSet<Digest>,
    /// Image manifest digest → (config, layers), for `manifest.json`.
    images: BTreeMap<Digest, (Digest, Vec<Digest>)>,
    /// Index digest → its children with their platforms.
    indexes: BTreeMap<Digest, Vec<(Digest, Option<Platform>)>>,
    notes: Vec<String>,
}

pub(super) fn pack(input: Input<'_>) -> Result<Packed, ArchiveError> {
    let images = images(&input)?;
    let mut content = Content::default();
    for image in &images {
        walk(&input, &image.digest, Some(&image.media_type), &mut content)?;
    }
    let docker_types: Vec<String> = images
        .iter()
        .filter(|i| MediaType::parse(&i.media_type).is_docker())
        .map(Named::describe)
        .collect();
    if !docker_types.is_empty() {
        content.notes.push(format!(
            "{} with Docker media types, kept as they are (digests pinned elsewhere stay valid): docker, podman, containerd and skopeo 1.18+ read them; older skopeo and umoci find no image by name (\"no descriptor found\"); `--format oci` writes one they read, with new digests: {}",
            if docker_types.len() == 1 { "one image" } else { "images" },
            docker_types.join(", ")
        ));
    }
    let mut inventory = inventory(&images, &content, input.carried);
    let index = index_json(&images);
    let manifest_json = manifest_json(&images, &content);
    let specs = specs(&input, index, manifest_json, &content)?;
    // The inventory goes into the first volume once the split is known (it
    // lists the volumes): room is kept for it.
    let reserve = serde_json::to_vec(&inventory).map_or(0, |b| cost(b.len() as u64 + 8192));
    let mut volumes = split(
        specs,
        input.options.volume_size.map(|v| v.saturating_sub(reserve)),
        &inventory.id,
        &mut content.notes,
    );
    inventory.volumes = (1..=volumes.len())
        .map(|n| Volume {
            name: volume_path(input.path, n)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size: None,
            sha256: None,
        })
        .collect();
    let inside = serde_json::to_vec(&inventory).map_err(|e| ArchiveError::Read(e.to_string()))?;
    if let Some(first) = volumes.first_mut() {
        first.insert(
            3.min(first.len()),
            Spec {
                name: INSIDE.to_string(),
                size: inside.len() as u64,
                data: Data::Bytes(Bytes::from(inside)),
            },
        );
    }
    let written = write_volumes(&input, volumes)?;
    let mut beside = inventory.clone();
    beside.volumes = written.clone();
    let inventory_path = beside_path(input.path);
    write_atomic(
        &inventory_path,
        &serde_json::to_vec_pretty(&beside).map_err(|e| ArchiveError::Read(e.to_string()))?,
    )?;
    Ok(Packed {
        files: (1..=written.len())
            .map(|n| volume_path(input.path, n))
            .collect(),
        inventory: inventory_path,
        images: images.len(),
        manifests: content.manifests.len(),
        blobs: content.configs.len() + content.layers.len(),
        bytes: content
            .manifests
            .iter()
            .chain(&content.configs)
            .chain(&content.layers)
            .map(|i| i.size)
            .sum(),
        omitted: content.omitted.len(),
        notes: content.notes,
    })
}

/// `PATH.inventory.json`.
pub fn beside_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".inventory.json");
    PathBuf::from(name)
}

fn dir_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// The staging layout's images, and the tags kept from earlier exports
/// that this run did not write again.
fn images(input: &Input<'_>) -> Result<Vec<Named>, ArchiveError> {
    let path = input.staging.join("index.json");
    let mut images = match read_file(&path, MAX_METADATA)? {
        Some(bytes) => {
            read_index(&bytes).map_err(|why| ArchiveError::Invalid(path.clone(), why))?
        }
        None => Vec::new(),
    };
    for k in input.kept {
        let written = images.iter().any(|i| {
            i.tag == k.tag
                && i.repository.as_ref().map(|r| r.name())
                    == k.repository.as_ref().map(|r| r.name())
        });
        if !written {
            images.push(k.clone());
        }
    }
    Ok(images)
}

fn blob_path(staging: &Path, d: &Digest) -> PathBuf {
    staging
        .join("blobs")
        .join(d.algorithm().name())
        .join(d.hex())
}

/// Walks a manifest's tree in the staging layout, sorting what it finds.
fn walk(
    input: &Input<'_>,
    digest: &Digest,
    media: Option<&str>,
    c: &mut Content,
) -> Result<(), ArchiveError> {
    if !c.seen.insert(digest.clone()) {
        return Ok(());
    }
    let path = blob_path(input.staging, digest);
    let Some(bytes) = read_file(&path, MAX_MANIFEST_SIZE)? else {
        match input.carried.by(digest) {
            Some(by) => c.omitted.push(Omitted {
                digest: digest.clone(),
                by: by.to_string(),
            }),
            None => c.notes.push(format!(
                "manifest {digest} is not in the staging layout: left out"
            )),
        }
        return Ok(());
    };
    let m = RawManifest::from_body(
        Bytes::from(bytes),
        media.filter(|m| !m.is_empty()),
        digest.algorithm(),
    )
    .map_err(|e| ArchiveError::Invalid(path.clone(), e.to_string()))?;
    c.manifests.push(Item {
        digest: digest.clone(),
        size: m.bytes.len() as u64,
        media_type: Some(m.media_type.to_string()),
    });
    match m
        .parse()
        .map_err(|e| ArchiveError::Invalid(path.clone(), e.to_string()))?
    {
        Parsed::Index(i) => {
            let children = i
                .manifests
                .iter()
                .map(|d| (d.digest.clone(), d.platform.clone()))
                .collect();
            c.indexes.insert(digest.clone(), children);
            for child in &i.manifests {
                walk(input, &child.digest, Some(&child.media_type), c)?;
            }
        }
        Parsed::Image(img) => {
            blob(input, &img.config.digest, img.config.size, true, c);
            for l in &img.layers {
                blob(input, &l.digest, l.size, false, c);
            }
            c.images.insert(
                digest.clone(),
                (
                    img.config.digest.clone(),
                    img.layers.iter().map(|l| l.digest.clone()).collect(),
                ),
            );
        }
        Parsed::Schema1(s1) => {
            for l in &s1.fs_layers {
                let d = &l.blob_sum;
                let size = std::fs::metadata(blob_path(input.staging, d))
                    .map(|m| m.len())
                    .unwrap_or(0);
                blob(input, d, size, false, c);
            }
        }
        Parsed::Opaque => {}
    }
    Ok(())
}

/// Sorts one blob: carried here, carried earlier, or missing (a foreign
/// layer the copy did not fetch).
fn blob(input: &Input<'_>, d: &Digest, size: u64, config: bool, c: &mut Content) {
    if !c.seen.insert(d.clone()) {
        return;
    }
    let item = Item {
        digest: d.clone(),
        size,
        media_type: None,
    };
    if blob_path(input.staging, d).is_file() {
        match config {
            true => c.configs.push(item),
            false => c.layers.push(item),
        }
    } else if let Some(by) = input.carried.by(d) {
        c.omitted.push(Omitted {
            digest: d.clone(),
            by: by.to_string(),
        });
    } else {
        c.notes.push(format!(
            "blob {d} was not copied (a foreign layer?): not in the archive"
        ));
    }
}

fn inventory(images: &[Named], c: &Content, carried: &Carried) -> Inventory {
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut h = Hasher::new(Algorithm::Sha256);
    h.update(created.as_bytes());
    for i in images {
        h.update(i.describe().as_bytes());
        h.update(i.digest.to_string().as_bytes());
    }
    let id = h.finish().hex()[..16].to_string();
    Inventory {
        ocirepl_inventory: FORMAT,
        id,
        created,
        images: images
            .iter()
            .map(|i| Image {
                name: match (&i.repository, &i.tag) {
                    (Some(r), Some(t)) => containerd_name(r, t),
                    _ => i.describe(),
                },
                digest: i.digest.clone(),
                media_type: i.media_type.clone(),
                size: i.size,
            })
            .collect(),
        manifests: c.manifests.clone(),
        blobs: c.configs.iter().chain(&c.layers).cloned().collect(),
        omitted: c.omitted.clone(),
        since: carried.earlier.clone(),
        volumes: Vec::new(),
    }
}

fn index_json(images: &[Named]) -> Bytes {
    let entries: Vec<Value> = images
        .iter()
        .map(|i| {
            let mut annotations = serde_json::Map::new();
            if let (Some(r), Some(t)) = (&i.repository, &i.tag) {
                annotations.insert(IMAGE_NAME.into(), json!(containerd_name(r, t)));
            }
            if let Some(t) = &i.tag {
                annotations.insert(REF_NAME.into(), json!(t));
            }
            json!({
                "mediaType": i.media_type,
                "digest": i.digest.to_string(),
                "size": i.size,
                "annotations": annotations,
            })
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": crate::media::OCI_INDEX,
        "manifests": entries,
    });
    Bytes::from(index.to_string())
}

/// docker's `manifest.json`: one item per image manifest that is whole in
/// this archive, with every name it has.
fn manifest_json(images: &[Named], c: &Content) -> Bytes {
    let mut items: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for i in images {
        let Some(image) = docker_image(&i.digest, c) else {
            continue;
        };
        let names = items.entry(image).or_default();
        if let (Some(r), Some(t)) = (&i.repository, &i.tag) {
            names.push(familiar_name(r, t));
        }
    }
    let here: HashSet<&Digest> = c
        .configs
        .iter()
        .chain(&c.layers)
        .map(|i| &i.digest)
        .collect();
    let list: Vec<Value> = items
        .into_iter()
        .filter_map(|(image, tags)| {
            let (config, layers) = c.images.get(&image)?;
            if !here.contains(config) || !layers.iter().all(|l| here.contains(l)) {
                return None;
            }
            let path = |d: &Digest| format!("blobs/{}/{}", d.algorithm().name(), d.hex());
            Some(json!({
                "Config": path(config),
                "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags) },
                "Layers": layers.iter().map(path).collect::<Vec<_>>(),
            }))
        })
        .collect();
    Bytes::from(Value::Array(list).to_string())
}

/// The image manifest docker loads for a root: itself, or an index's
/// linux/amd64 image, else its first.
fn docker_image(root: &Digest, c: &Content) -> Option<Digest> {
    if c.images.contains_key(root) {
        return Some(root.clone());
    }
    let children = c.indexes.get(root)?;
    let amd64 = Platform::parse("linux/amd64").ok();
    children
        .iter()
        .find(|(d, p)| p.is_some() && p == &amd64 && c.images.contains_key(d))
        .or_else(|| children.iter().find(|(d, _)| c.images.contains_key(d)))
        .map(|(d, _)| d.clone())
}

/// Every file of the archive, metadata first, then manifests and
/// configs, then layers.
fn specs(
    input: &Input<'_>,
    index: Bytes,
    manifest_json: Bytes,
    c: &Content,
) -> Result<Vec<Spec>, ArchiveError> {
    let small = |name: &str, b: Bytes| Spec {
        name: name.to_string(),
        size: b.len() as u64,
        data: Data::Bytes(b),
    };
    let mut out = vec![
        small(
            "oci-layout",
            Bytes::from_static(br#"{"imageLayoutVersion":"1.0.0"}"#),
        ),
        small("index.json", index),
        small("manifest.json", manifest_json),
    ];
    let algorithms: HashSet<Algorithm> = c
        .manifests
        .iter()
        .chain(&c.configs)
        .chain(&c.layers)
        .map(|i| i.digest.algorithm())
        .collect();
    out.push(Spec {
        name: "blobs/".into(),
        data: Data::Dir,
        size: 0,
    });
    for a in [Algorithm::Sha256, Algorithm::Sha512] {
        if algorithms.contains(&a) {
            out.push(Spec {
                name: format!("blobs/{}/", a.name()),
                data: Data::Dir,
                size: 0,
            });
        }
    }
    for item in c.manifests.iter().chain(&c.configs).chain(&c.layers) {
        let path = blob_path(input.staging, &item.digest);
        let size = std::fs::metadata(&path)
            .map_err(|e| ArchiveError::io(&path, e))?
            .len();
        out.push(Spec {
            name: format!(
                "blobs/{}/{}",
                item.digest.algorithm().name(),
                item.digest.hex()
            ),
            data: Data::File(path),
            size,
        });
    }
    Ok(out)
}

/// The space an entry takes in a tar: a header and its data in blocks.
fn cost(size: u64) -> u64 {
    512 + size.div_ceil(512) * 512
}

/// Splits the files into volumes no larger than `max` (the end blocks of
/// each tar counted), at entry boundaries; each volume after the first
/// opens with its marker.
fn split(
    specs: Vec<Spec>,
    max: Option<u64>,
    export: &str,
    notes: &mut Vec<String>,
) -> Vec<Vec<Spec>> {
    let Some(max) = max else {
        return vec![specs];
    };
    const END: u64 = 1024;
    let mut volumes: Vec<Vec<Spec>> = vec![Vec::new()];
    let mut used = END;
    let mut data_in_volume = false;
    for s in specs {
        let c = cost(s.size);
        let is_data = matches!(s.data, Data::File(_));
        if is_data && data_in_volume && used + c > max {
            volumes.push(Vec::new());
            used = END;
            data_in_volume = false;
        }
        if is_data && c + END > max {
            notes.push(format!(
                "{} is {} bytes, larger than --volume-size {max}: it has a volume of its own",
                s.name, s.size
            ));
        }
        used += c;
        data_in_volume |= is_data;
        if let Some(v) = volumes.last_mut() {
            v.push(s);
        }
    }
    let total = volumes.len();
    for (i, v) in volumes.iter_mut().enumerate().skip(1) {
        let marker = Marker {
            export: export.to_string(),
            volume: i + 1,
            of: total,
        };
        let bytes = Bytes::from(serde_json::to_vec(&marker).unwrap_or_default());
        v.insert(
            0,
            Spec {
                name: volume_marker(i + 1),
                size: bytes.len() as u64,
                data: Data::Bytes(bytes),
            },
        );
    }
    volumes
}

/// The name of volume `n` (1-based) of the archive at `path`.
fn volume_path(path: &Path, n: usize) -> PathBuf {
    match n {
        1 => path.to_path_buf(),
        n => {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        }
    }
}

/// Writes every volume under a temporary name, then renames them all into
/// place (and removes volumes a larger earlier export left).
fn write_volumes(input: &Input<'_>, volumes: Vec<Vec<Spec>>) -> Result<Vec<Volume>, ArchiveError> {
    let dir = dir_of(input.path);
    // What a larger earlier export left beside the archive goes, but only
    // what is one: anything else under such a name stops the export first.
    let mut stale = Vec::new();
    for n in volumes.len() + 1.. {
        let path = volume_path(input.path, n);
        if !path.is_file() {
            break;
        }
        if !is_volume(&path, n) {
            return Err(ArchiveError::Invalid(
                path,
                "is in the way of the archive's volumes and is not one: move it away".into(),
            ));
        }
        stale.push(path);
    }
    let mut temps = Vec::new();
    let mut written = Vec::new();
    for (i, specs) in volumes.iter().enumerate() {
        let final_path = volume_path(input.path, i + 1);
        let tmp = tempfile::Builder::new()
            .prefix(".ocirepl-archive-")
            .tempfile_in(&dir)
            .map_err(|e| ArchiveError::io(&dir, e))?;
        let (size, sha256) = write_tar(
            tmp.as_file()
                .try_clone()
                .map_err(|e| ArchiveError::io(tmp.path(), e))?,
            specs,
            input.options.compression,
        )?;
        written.push(Volume {
            name: final_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size: Some(size),
            sha256: Some(sha256),
        });
        temps.push((tmp, final_path));
    }
    for (tmp, final_path) in temps {
        readable(tmp.path())?;
        tmp.persist(&final_path)
            .map_err(|e| ArchiveError::io(&final_path, e.error))?;
    }
    for path in stale {
        std::fs::remove_file(&path).map_err(|e| ArchiveError::io(&path, e))?;
    }
    Ok(written)
}

/// Whether `path` is volume `n` of an ocirepl archive: its first entry is
/// that volume's marker (read through its compression, if any).
fn is_volume(path: &Path, n: usize) -> bool {
    let Ok(kind) = Compression::sniff(path) else {
        return false;
    };
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut reader: Box<dyn Read> = match kind {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Zstd => match zstd::stream::read::Decoder::new(file) {
            Ok(d) => Box::new(d),
            Err(_) => return false,
        },
        Compression::None => Box::new(file),
    };
    let mut header = [0u8; 512];
    if reader.read_exact(&mut header).is_err() {
        return false;
    }
    let name: Vec<u8> = header[..100]
        .iter()
        .take_while(|b| **b != 0)
        .copied()
        .collect();
    name == volume_marker(n).as_bytes()
}

/// A small file, capped; `None` when missing.
fn read_file(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, ArchiveError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ArchiveError::io(path, e)),
    };
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ArchiveError::io(path, e))?;
    if bytes.len() as u64 > cap {
        return Err(ArchiveError::Invalid(
            path.to_path_buf(),
            format!("larger than {cap} bytes"),
        ));
    }
    Ok(Some(bytes))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ArchiveError> {
    let dir = dir_of(path);
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| ArchiveError::io(&dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| ArchiveError::io(path, e))?;
    readable(tmp.path())?;
    tmp.persist(path)
        .map_err(|e| ArchiveError::io(path, e.error))?;
    Ok(())
}

/// An archive is for carrying: `rw-r--r--`, as `docker save` writes it
/// (temporary files start private).
fn readable(path: &Path) -> Result<(), ArchiveError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| ArchiveError::io(path, e))
}
