//! Rewrites a copy makes by plan, never otherwise: a platform-filtered
//! index, an unwrapped child, a single image wrapped in an index, Docker
//! media types turned OCI, and schema1 turned schema2 with diff_ids
//! computed by gunzipping each layer while it streams.
//!
//! Owns the decisions (what the root becomes and why) and the gunzip tap.
//! Never re-serialises a manifest that the plan does not rewrite.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;

use super::walk::CopyTree;
use super::{CopyError, CopyOptions, Step};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::manifest::index::{self, Selection};
use crate::manifest::oci::{self, Remap};
use crate::manifest::{MAX_MANIFEST_SIZE, Parsed, RawManifest};
use crate::media::{Kind, MediaType};
use crate::plan::{Format, Mode};
use crate::platform::Platform;
use crate::store::{Blob, BlobStream, ManifestRef, Store, StoreError};

/// What the plan makes of the source root.
#[derive(Debug, Clone)]
pub enum RootChoice {
    /// Everything, as it is.
    Whole,
    /// Some children of the root index, in a new index.
    Filter(Selection),
    /// One child image of the root index, pushed under the tag.
    Unwrap(crate::manifest::Descriptor),
}

/// Applies the platform selection to the root. Selection mistakes (nothing
/// matches; `--unwrap` without exactly one match) are usage errors, found
/// before anything is written.
pub fn choose(root: &RawManifest, options: &CopyOptions) -> Result<RootChoice, CopyError> {
    if options.platforms.is_empty() {
        return Ok(RootChoice::Whole);
    }
    let index = match root.parse() {
        Ok(Parsed::Index(i)) => i,
        // A single image: the filter has nothing to choose from.
        Ok(_) => return Ok(RootChoice::Whole),
        Err(source) => {
            return Err(CopyError::new(
                Step::Walk,
                StoreError::Manifest {
                    what: format!("manifest {}", root.digest),
                    source,
                },
            ));
        }
    };
    let selection = index::select(&index, &options.platforms);
    let wanted: Vec<String> = options.platforms.iter().map(Platform::to_string).collect();
    let images = selection.kept_images();
    if images.is_empty() {
        return Err(CopyError::usage(format!(
            "no platform of index {} matches --platform {} (it has {})",
            root.digest,
            wanted.join(","),
            selection.available.join(", ")
        )));
    }
    if options.unwrap {
        if images.len() != 1 {
            let matched: Vec<String> = images
                .iter()
                .filter_map(|d| d.platform.as_ref().map(Platform::to_string))
                .collect();
            return Err(CopyError::usage(format!(
                "--unwrap needs --platform to match exactly one image of index {}; {} matched ({})",
                root.digest,
                images.len(),
                matched.join(", ")
            )));
        }
        return Ok(RootChoice::Unwrap(images[0].clone()));
    }
    if selection.dropped.is_empty() {
        return Ok(RootChoice::Whole);
    }
    Ok(RootChoice::Filter(selection))
}

/// The tree as it will be pushed.
#[derive(Debug, Clone)]
pub struct Shaped {
    pub root: RawManifest,
    pub child_levels: Vec<Vec<RawManifest>>,
    /// Why the pushed root's digest differs from the source's.
    pub reason: Option<String>,
}

/// Applies the plan's rewrites to a walked tree (schema1 aside: that needs
/// the layers' diff_ids, known only after the blobs).
pub async fn shape(
    src: &dyn Store,
    repo: &str,
    tree: CopyTree,
    choice: &RootChoice,
    options: &CopyOptions,
) -> Result<Shaped, CopyError> {
    let mut reasons: Vec<String> = Vec::new();
    let mut root = tree.root;
    let mut levels = tree.child_levels;
    if let RootChoice::Filter(sel) = choice {
        let keep: HashSet<Digest> = sel.kept.iter().map(|d| d.digest.clone()).collect();
        root = index::filtered(&root, &keep, &sel.dropped).map_err(|source| {
            CopyError::new(
                Step::Walk,
                StoreError::Manifest {
                    what: format!("index {}", root.digest),
                    source,
                },
            )
        })?;
        reasons.push(format!(
            "platform filter (dropped {})",
            sel.dropped.join(", ")
        ));
    }
    if options.mode == Mode::NormaliseIndex && root.media_type.kind() == Kind::Image {
        let platform = image_platform(src, repo, &root).await?;
        let wrapped = index::wrap(&root, &platform).map_err(|source| {
            CopyError::new(
                Step::Walk,
                StoreError::Manifest {
                    what: "one-entry index".into(),
                    source,
                },
            )
        })?;
        levels = vec![vec![root]];
        root = wrapped;
        reasons.push("normalised to an index".into());
    }
    if options.format == Format::Oci && is_docker(&root.media_type) {
        let mut remap = Remap::new();
        for level in &mut levels {
            for m in level.iter_mut() {
                let converted = to_oci(m, &remap)?;
                remap.insert(
                    m.digest.clone(),
                    (
                        converted.digest.clone(),
                        converted.size(),
                        converted.media_type.to_string(),
                    ),
                );
                *m = converted;
            }
        }
        root = to_oci(&root, &remap)?;
        reasons.push("converted to OCI media types".into());
    }
    Ok(Shaped {
        root,
        child_levels: levels,
        reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
    })
}

fn is_docker(m: &MediaType) -> bool {
    matches!(m, MediaType::DockerV2S2 | MediaType::DockerList)
}

fn to_oci(m: &RawManifest, remap: &Remap) -> Result<RawManifest, CopyError> {
    oci::to_oci(m, remap).map_err(|source| {
        CopyError::new(
            Step::Walk,
            StoreError::Manifest {
                what: format!("manifest {}", m.digest),
                source,
            },
        )
    })
}

/// The platform an image's config states (for a one-entry index).
pub async fn image_platform(
    src: &dyn Store,
    repo: &str,
    image: &RawManifest,
) -> Result<Platform, CopyError> {
    let Ok(Parsed::Image(m)) = image.parse() else {
        return Err(CopyError::new(
            Step::Walk,
            StoreError::Protocol(format!("{} is not an image manifest", image.digest)),
        ));
    };
    let config = read_small_blob(src, repo, &m.config.digest, m.config.size).await?;
    serde_json::from_slice::<Platform>(&config).map_err(|e| {
        CopyError::new(
            Step::Walk,
            StoreError::Protocol(format!(
                "config {} has no usable os/architecture: {e}",
                m.config.digest
            )),
        )
    })
}

/// Reads a config-sized blob into memory, verified.
pub async fn read_small_blob(
    src: &dyn Store,
    repo: &str,
    digest: &Digest,
    size: u64,
) -> Result<Bytes, CopyError> {
    let step = || Step::Blob(digest.clone());
    if size > MAX_MANIFEST_SIZE {
        return Err(CopyError::new(
            step(),
            StoreError::TooLarge {
                what: format!("config {digest}"),
                limit: MAX_MANIFEST_SIZE,
            },
        ));
    }
    let blob = Blob {
        digest: digest.clone(),
        size,
        urls: Vec::new(),
    };
    let stream = src
        .blob_get(repo, &blob)
        .await
        .map_err(|e| CopyError::new(step(), e))?;
    let mut verified = crate::digest::verify_stream(stream, digest.clone(), size);
    let mut buf = Vec::with_capacity(size as usize);
    while let Some(chunk) = verified.next().await {
        buf.extend_from_slice(&chunk.map_err(|e| CopyError::new(step(), e))?);
    }
    Ok(Bytes::from(buf))
}

/// Whether a target's answer to a schema1 PUT means "not this format":
/// 415, or 400 MANIFEST_INVALID / MANIFEST_UNVERIFIED / UNSUPPORTED.
pub fn refuses_schema1(err: &StoreError) -> bool {
    let Some(status) = status_of(err) else {
        return false;
    };
    let codes = err.registry_codes();
    match status {
        415 => true,
        400 => codes.iter().any(|c| {
            matches!(
                *c,
                "MANIFEST_INVALID" | "MANIFEST_UNVERIFIED" | "UNSUPPORTED"
            )
        }),
        // Debian's distribution 2.8 without schema1 answers 500 UNKNOWN
        // ("manifest schema v1 unsupported" only in its own log).
        500 => codes.contains(&"UNKNOWN"),
        _ => false,
    }
}

fn status_of(err: &StoreError) -> Option<u16> {
    match err {
        StoreError::Transport(t) => t.status().map(|s| s.as_u16()),
        _ => None,
    }
}

/// The diff_id of a gzip layer as it streams past: a tap that gunzips
/// every chunk into a hasher, refusing more than `max` uncompressed bytes.
/// The result is ready once the stream has been read to its end.
pub fn gunzip_tap(inner: BlobStream, max: u64) -> (BlobStream, DiffIdSlot) {
    struct Sink {
        hasher: Option<Hasher>,
        written: u64,
        max: u64,
    }
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.written += buf.len() as u64;
            if self.written > self.max {
                return Err(std::io::Error::other(format!(
                    "uncompressed layer larger than {} bytes (decompression bomb?)",
                    self.max
                )));
            }
            if let Some(h) = self.hasher.as_mut() {
                h.update(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let slot: DiffIdSlot = Arc::default();
    let result = slot.clone();
    let sink = Sink {
        hasher: Some(Hasher::new(Algorithm::Sha256)),
        written: 0,
        max,
    };
    let decoder = flate2::write::MultiGzDecoder::new(sink);
    let stream =
        futures::stream::try_unfold((inner, Some(decoder)), move |(mut inner, mut decoder)| {
            let result = result.clone();
            async move {
                let fail = |what: String| StoreError::Layer(what);
                match inner.next().await {
                    Some(chunk) => {
                        let chunk = chunk?;
                        if let Some(d) = decoder.as_mut() {
                            d.write_all(&chunk).map_err(|e| fail(gzip_message(&e)))?;
                        }
                        Ok(Some((chunk, (inner, decoder))))
                    }
                    None => {
                        if let Some(d) = decoder.take() {
                            let mut sink = d.finish().map_err(|e| fail(gzip_message(&e)))?;
                            if let (Some(h), Ok(mut slot)) = (sink.hasher.take(), result.lock()) {
                                *slot = Some(h.finish());
                            }
                        }
                        Ok(None)
                    }
                }
            }
        });
    (stream.boxed(), slot)
}

fn gzip_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    if s.contains("decompression bomb") {
        s
    } else {
        format!("not a valid gzip stream: {s}")
    }
}

/// Where a tap leaves the diff_id.
pub type DiffIdSlot = Arc<Mutex<Option<Digest>>>;

/// compressed digest → diff_id, remembered across runs in a small JSON file
/// so that a re-run does not download layers already in the target again.
#[derive(Debug, Default)]
pub struct DiffIdCache {
    path: Option<PathBuf>,
    map: Mutex<HashMap<String, String>>,
}

impl DiffIdCache {
    /// Opens the cache (a missing or unreadable file is an empty cache: it is
    /// only ever an optimisation).
    pub fn open(path: Option<&Path>) -> DiffIdCache {
        let map = path
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        DiffIdCache {
            path: path.map(Path::to_path_buf),
            map: Mutex::new(map),
        }
    }

    pub fn get(&self, compressed: &Digest) -> Option<Digest> {
        let map = self.map.lock().ok()?;
        map.get(&compressed.to_string())?.parse().ok()
    }

    pub fn put(&self, compressed: &Digest, diff_id: &Digest) {
        if let Ok(mut map) = self.map.lock() {
            map.insert(compressed.to_string(), diff_id.to_string());
        }
    }

    /// Writes the cache back (atomically); failures are logged, not raised.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        let Ok(map) = self.map.lock() else { return };
        let write = || -> std::io::Result<()> {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(&serde_json::to_vec(&*map).map_err(std::io::Error::other)?)?;
            tmp.persist(path).map_err(|e| e.error)?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::debug!(path = %path.display(), "cannot save the diff_id cache: {e}");
        }
    }
}

/// Pushes a schema1 root as schema2: the synthesised config blob, then the
/// manifest. `layers` are (diff_id, size) of the schema1 layers, in order.
pub async fn push_converted_schema1(
    dst: &dyn Store,
    repo: &str,
    target: &ManifestRef,
    schema1: &crate::manifest::schema1::Schema1,
    layers: &[(Digest, u64)],
    format: Format,
) -> Result<RawManifest, CopyError> {
    let (config, manifest) = schema1
        .to_schema2(layers)
        .map_err(|e| CopyError::new(Step::Convert, StoreError::Protocol(e.to_string())))?;
    let config_blob = Blob {
        digest: Digest::sha256(&config),
        size: config.len() as u64,
        urls: Vec::new(),
    };
    if dst
        .blob_head(repo, &config_blob.digest)
        .await
        .map_err(|e| CopyError::new(Step::Convert, e))?
        .is_none()
    {
        let body = futures::stream::once(async move { Ok::<Bytes, StoreError>(config) }).boxed();
        dst.blob_put(repo, &config_blob, body)
            .await
            .map_err(|e| CopyError::new(Step::Blob(config_blob.digest.clone()), e))?;
    }
    let manifest = if format == Format::Oci {
        to_oci(&manifest, &Remap::new())?
    } else {
        manifest
    };
    dst.manifest_put(repo, target, &manifest)
        .await
        .map_err(|e| CopyError::new(Step::PushRoot(manifest.media_type.to_string()), e))?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    async fn drain(chunks: Vec<Vec<u8>>, max: u64) -> (Result<Vec<u8>, String>, Option<Digest>) {
        let inner = futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed();
        let (mut s, slot) = gunzip_tap(inner, max);
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            match c {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => return (Err(e.to_string()), slot.lock().unwrap().clone()),
            }
        }
        (Ok(out), slot.lock().unwrap().clone())
    }

    #[tokio::test]
    async fn tap_passes_bytes_and_computes_the_diff_id() {
        let plain = b"hello layer".repeat(1000);
        let compressed = gz(&plain);
        let chunks: Vec<Vec<u8>> = compressed.chunks(7).map(<[u8]>::to_vec).collect();
        let (out, diff) = drain(chunks, u64::MAX).await;
        assert_eq!(out.unwrap(), compressed);
        assert_eq!(diff, Some(Digest::sha256(&plain)));
        // Concatenated gzip members are one stream (MultiGzDecoder).
        let two = [gz(b"ab"), gz(b"cd")].concat();
        let (_, diff) = drain(vec![two], u64::MAX).await;
        assert_eq!(diff, Some(Digest::sha256(b"abcd")));
    }

    #[tokio::test]
    async fn tap_stops_bombs_and_corrupt_gzip() {
        let zeros = vec![0u8; 10 * 1024 * 1024];
        let bomb = gz(&zeros);
        assert!(bomb.len() < 100 * 1024);
        let (out, diff) = drain(vec![bomb], 1024 * 1024).await;
        assert!(out.unwrap_err().contains("decompression bomb"));
        assert_eq!(diff, None);
        let (out, _) = drain(vec![b"definitely not gzip".to_vec()], u64::MAX).await;
        assert!(out.unwrap_err().contains("not a valid gzip"));
        let mut truncated = gz(&b"x".repeat(5000));
        truncated.truncate(truncated.len() - 10);
        let (out, _) = drain(vec![truncated], u64::MAX).await;
        assert!(out.is_err());
    }

    #[test]
    fn cache_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/diff-ids.json");
        let a = Digest::sha256(b"a");
        let b = Digest::sha256(b"b");
        let c = DiffIdCache::open(Some(&path));
        assert_eq!(c.get(&a), None);
        c.put(&a, &b);
        c.save();
        assert_eq!(DiffIdCache::open(Some(&path)).get(&a), Some(b));
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(DiffIdCache::open(Some(&path)).get(&a), None);
    }
}
