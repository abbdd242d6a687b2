//! Test images, written as OCI layouts by code independent of ocirepl's
//! own layout store, so that seeding does not trust the code under test.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Deterministic pseudo-random bytes (xorshift), so fixtures are stable
/// per seed and incompressible.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A minimal POSIX tar holding one file, so layers are real layers.
pub fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    header[124..135].copy_from_slice(format!("{:011o}", content.len()).as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// A layer: its gzip bytes and the digest of the uncompressed tar.
#[derive(Clone)]
pub struct Layer {
    pub gz: Vec<u8>,
    pub diff_id: String,
}

impl Layer {
    /// A layer holding one file of `size` pseudo-random bytes.
    pub fn random(seed: u64, size: usize) -> Layer {
        let tar = tar_with_file(&format!("file-{seed}"), &noise(seed, size));
        Layer {
            gz: gzip(&tar),
            diff_id: sha256(&tar),
        }
    }
}

/// One platform image.
#[derive(Clone)]
pub struct ImageSpec {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
    pub layers: Vec<Layer>,
    /// History entries without a layer (`ENV`, `CMD`), placed after the
    /// layer at this index.
    pub empty_after: Vec<usize>,
}

impl ImageSpec {
    pub fn new(platform: &str, layers: Vec<Layer>) -> ImageSpec {
        let mut parts = platform.split('/');
        ImageSpec {
            os: parts.next().unwrap_or("linux").to_string(),
            arch: parts.next().unwrap_or("amd64").to_string(),
            variant: parts.next().map(str::to_string),
            layers,
            empty_after: Vec::new(),
        }
    }
}

/// Writes OCI layouts.
pub struct LayoutWriter<'a> {
    root: &'a Path,
}

impl<'a> LayoutWriter<'a> {
    pub fn new(root: &'a Path) -> LayoutWriter<'a> {
        std::fs::create_dir_all(root.join("blobs/sha256")).expect("layout dirs");
        std::fs::write(
            root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .expect("oci-layout");
        LayoutWriter { root }
    }

    /// Stores a blob; returns its digest.
    pub fn blob(&self, data: &[u8]) -> String {
        let d = sha256(data);
        let path = self.root.join("blobs/sha256").join(&d["sha256:".len()..]);
        std::fs::write(path, data).expect("blob");
        d
    }

    /// Writes one image's config, layers and manifest; returns the manifest
    /// (bytes, digest).
    pub fn image(&self, spec: &ImageSpec) -> (Vec<u8>, String) {
        let variant = spec
            .variant
            .as_ref()
            .map(|v| format!(r#","variant":"{v}""#))
            .unwrap_or_default();
        let diff_ids: Vec<String> = spec
            .layers
            .iter()
            .map(|l| format!("\"{}\"", l.diff_id))
            .collect();
        // One history entry per layer, plus the empty ones, as a build makes them.
        let mut history = Vec::new();
        for i in 0..spec.layers.len() {
            history.push(format!(
                r#"{{"created":"2024-01-0{}T00:00:00Z","created_by":"/bin/sh -c make layer {i}"}}"#,
                1 + i % 9
            ));
            for _ in spec.empty_after.iter().filter(|&&e| e == i) {
                history.push(format!(
                    r#"{{"created":"2024-02-0{}T00:00:00Z","created_by":"/bin/sh -c #(nop) ENV STEP={i}","empty_layer":true}}"#,
                    1 + i % 9
                ));
            }
        }
        let config = format!(
            r#"{{"architecture":"{}","os":"{}"{variant},"config":{{"Env":["PATH=/usr/bin"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}},"history":[{}]}}"#,
            spec.arch,
            spec.os,
            diff_ids.join(","),
            history.join(",")
        );
        let config_digest = self.blob(config.as_bytes());
        let layers: Vec<String> = spec
            .layers
            .iter()
            .map(|l| {
                let d = self.blob(&l.gz);
                format!(
                    r#"{{"mediaType":"{OCI_LAYER}","digest":"{d}","size":{}}}"#,
                    l.gz.len()
                )
            })
            .collect();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{config_digest}","size":{}}},"layers":[{}]}}"#,
            config.len(),
            layers.join(",")
        );
        let digest = self.blob(manifest.as_bytes());
        (manifest.into_bytes(), digest)
    }

    /// Writes an index over images; returns (bytes, digest).
    pub fn index(&self, specs: &[ImageSpec]) -> (Vec<u8>, String) {
        let entries: Vec<String> = specs
            .iter()
            .map(|s| {
                let (bytes, digest) = self.image(s);
                let variant = s
                    .variant
                    .as_ref()
                    .map(|v| format!(r#","variant":"{v}""#))
                    .unwrap_or_default();
                format!(
                    r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":{},"platform":{{"architecture":"{}","os":"{}"{variant}}}}}"#,
                    bytes.len(),
                    s.arch,
                    s.os
                )
            })
            .collect();
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
            entries.join(",")
        );
        let digest = self.blob(index.as_bytes());
        (index.into_bytes(), digest)
    }

    /// Stores any JSON document as a blob; returns (bytes, digest).
    pub fn json(&self, doc: &serde_json::Value) -> (Vec<u8>, String) {
        let bytes = serde_json::to_vec(doc).expect("json");
        let digest = self.blob(&bytes);
        (bytes, digest)
    }

    /// A buildx-style attestation manifest for `subject` (an in-toto layer).
    pub fn attestation(&self, subject: &str, seed: u64) -> (Vec<u8>, String) {
        let config = self.blob(b"{}");
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v0.1","subject":"{subject}","n":{seed}}}"#
        );
        let layer = self.blob(statement.as_bytes());
        self.json(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": layer, "size": statement.len(),
                        "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}]
        }))
    }

    /// Names a manifest with a tag in `index.json` (replacing the file).
    pub fn tag(&self, entries: &[(&str, &str, &[u8], &str)]) {
        let list: Vec<String> = entries
            .iter()
            .map(|(tag, media_type, bytes, digest)| {
                format!(
                    r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}"#,
                    bytes.len()
                )
            })
            .collect();
        let index = format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, list.join(","));
        std::fs::write(self.root.join("index.json"), index).expect("index.json");
    }
}

/// The three-platform test image: amd64, arm64 and arm/v7 sharing a base layer.
pub fn three_platforms(seed: u64) -> Vec<ImageSpec> {
    let base = Layer::random(seed, 48 * 1024);
    ["linux/amd64", "linux/arm64", "linux/arm/v7"]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            ImageSpec::new(
                p,
                vec![base.clone(), Layer::random(seed + 1 + i as u64, 16 * 1024)],
            )
        })
        .collect()
}
