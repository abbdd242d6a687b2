//! Media types as an open enum, and their classification (index, image
//! manifest, schema1, layer, config).
//!
//! Owns the strings. Never rejects a value it does not know: an unknown type
//! becomes `Other(String)` and travels on, byte-exact.

use std::fmt;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_V2S2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_V2S1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_V2S1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// A manifest or blob media type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaType {
    OciIndex,
    OciManifest,
    DockerList,
    DockerV2S2,
    DockerV2S1,
    DockerV2S1Signed,
    Other(String),
}

/// What a manifest media type is, for the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Index,
    Image,
    Schema1,
    Unknown,
}

impl MediaType {
    /// Parses a `Content-Type` or `mediaType` value; parameters such as
    /// `; charset=utf-8` are ignored, letter case is folded.
    pub fn parse(s: &str) -> MediaType {
        let essence = s
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            OCI_INDEX => MediaType::OciIndex,
            OCI_MANIFEST => MediaType::OciManifest,
            DOCKER_LIST => MediaType::DockerList,
            DOCKER_V2S2 => MediaType::DockerV2S2,
            DOCKER_V2S1 => MediaType::DockerV2S1,
            DOCKER_V2S1_SIGNED => MediaType::DockerV2S1Signed,
            _ => MediaType::Other(essence),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            MediaType::OciIndex => OCI_INDEX,
            MediaType::OciManifest => OCI_MANIFEST,
            MediaType::DockerList => DOCKER_LIST,
            MediaType::DockerV2S2 => DOCKER_V2S2,
            MediaType::DockerV2S1 => DOCKER_V2S1,
            MediaType::DockerV2S1Signed => DOCKER_V2S1_SIGNED,
            MediaType::Other(s) => s,
        }
    }

    /// A Docker media type (which OCI-only tools may refuse to read).
    pub fn is_docker(&self) -> bool {
        matches!(
            self,
            MediaType::DockerList
                | MediaType::DockerV2S2
                | MediaType::DockerV2S1
                | MediaType::DockerV2S1Signed
        )
    }

    pub fn kind(&self) -> Kind {
        match self {
            MediaType::OciIndex | MediaType::DockerList => Kind::Index,
            MediaType::OciManifest | MediaType::DockerV2S2 => Kind::Image,
            MediaType::DockerV2S1 | MediaType::DockerV2S1Signed => Kind::Schema1,
            MediaType::Other(_) => Kind::Unknown,
        }
    }

    /// `Accept` header for manifest requests: every format we can copy.
    /// Registries serve what they store when its type is acceptable; the
    /// order matters to those that negotiate, and `prefer_index` puts index
    /// types first so that they hand out a whole multi-arch image.
    pub fn accept(prefer_index: bool) -> &'static str {
        if prefer_index {
            "application/vnd.oci.image.index.v1+json, \
             application/vnd.docker.distribution.manifest.list.v2+json, \
             application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.docker.distribution.manifest.v1+prettyjws, \
             application/vnd.docker.distribution.manifest.v1+json"
        } else {
            "application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.oci.image.index.v1+json, \
             application/vnd.docker.distribution.manifest.list.v2+json, \
             application/vnd.docker.distribution.manifest.v1+prettyjws, \
             application/vnd.docker.distribution.manifest.v1+json"
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True for layer types whose bytes may live outside the registry
/// (Docker foreign layers, OCI non-distributable layers).
pub fn is_foreign_layer(media_type: &str) -> bool {
    media_type == DOCKER_FOREIGN_LAYER
        || media_type.starts_with("application/vnd.oci.image.layer.nondistributable.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_ignores_params() {
        for m in [
            OCI_INDEX,
            OCI_MANIFEST,
            DOCKER_LIST,
            DOCKER_V2S2,
            DOCKER_V2S1,
            DOCKER_V2S1_SIGNED,
        ] {
            assert_eq!(MediaType::parse(m).as_str(), m);
            assert_ne!(MediaType::parse(m).kind(), Kind::Unknown);
        }
        assert_eq!(
            MediaType::parse("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
            MediaType::OciManifest
        );
        assert_eq!(
            MediaType::parse("Application/VND.OCI.image.index.v1+json"),
            MediaType::OciIndex
        );
        let other = MediaType::parse("application/vnd.example.thing+json");
        assert_eq!(other.kind(), Kind::Unknown);
        assert_eq!(other.as_str(), "application/vnd.example.thing+json");
    }

    #[test]
    fn foreign_layers() {
        assert!(is_foreign_layer(DOCKER_FOREIGN_LAYER));
        assert!(is_foreign_layer(
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        ));
        assert!(!is_foreign_layer(OCI_LAYER_GZIP));
    }
}
