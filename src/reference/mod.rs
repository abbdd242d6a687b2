//! Image references: `[docker://]HOST[:PORT]/REPO[:TAG][@DIGEST]`, Docker Hub
//! short forms, and `oci:PATH[:TAG]` layout references.
//!
//! Owns the grammar (as docker's reference package defines it) and docker-cli
//! normalisation (`alpine:3` → `registry-1.docker.io/library/alpine:3`).
//! Never touches the network: whether a registry speaks http or https is a
//! property read off the host name here and decided by the transport.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::digest::{Digest, DigestError};

mod place;
pub use place::Place;

/// Where Docker Hub's API lives; `docker.io` and `index.docker.io` name it too.
pub const DOCKER_HUB: &str = "registry-1.docker.io";
/// docker's limit on the length of a repository name.
const MAX_NAME_LEN: usize = 255;
/// The tag grammar's limit: one leading word character and 127 more.
const MAX_TAG_LEN: usize = 128;

/// A copy endpoint: a repository in a registry, or an OCI layout (a
/// directory, or an archive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Registry(Reference),
    Layout(LayoutRef),
}

/// How an OCI layout is kept on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayoutKind {
    /// `oci:DIR`: a directory.
    Dir,
    /// `oci-archive:PATH`: a tar of a layout (ocirepl writes the one
    /// format that also carries docker's `manifest.json`).
    OciArchive,
    /// `docker-archive:PATH`: what `docker save` writes; read from its
    /// `manifest.json` when it has no OCI layout, written as `OciArchive`.
    DockerArchive,
}

impl LayoutKind {
    pub fn prefix(self) -> &'static str {
        match self {
            LayoutKind::Dir => "oci",
            LayoutKind::OciArchive => "oci-archive",
            LayoutKind::DockerArchive => "docker-archive",
        }
    }

    pub fn is_archive(self) -> bool {
        self != LayoutKind::Dir
    }
}

/// An image in a registry. `tag` and `digest` are both optional here; the
/// plan decides what a missing one means (`latest` for a source, the source's
/// tag for a destination).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// A manifest is named by a tag or by its digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ManifestRef {
    Tag(String),
    Digest(Digest),
}

impl fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestRef::Tag(t) => f.write_str(t),
            ManifestRef::Digest(d) => d.fmt(f),
        }
    }
}

/// An image in an OCI layout (directory or archive), named as skopeo
/// names it: `oci:PATH[:NAME]`, where the path holds no `:` and `NAME` is a
/// tag or a full reference (`registry.example.com/app:1.0`). A full
/// reference gives the image a repository, so one layout holds many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutRef {
    pub kind: LayoutKind,
    pub path: PathBuf,
    /// The repository a full `NAME` names (no tag or digest).
    pub repository: Option<Reference>,
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference {input:?}: it is empty")]
    Empty { input: String },
    #[error("invalid reference {input:?}: {why}")]
    Invalid { input: String, why: String },
    #[error("invalid reference {input:?}: {source}")]
    Digest {
        input: String,
        #[source]
        source: DigestError,
    },
}

fn invalid(input: &str, why: impl Into<String>) -> ReferenceError {
    ReferenceError::Invalid {
        input: input.to_string(),
        why: why.into(),
    }
}

impl ImageRef {
    /// Parses a command-line reference: `oci:PATH[:TAG]`, `docker://REF`, or a
    /// bare docker reference.
    pub fn parse(input: &str) -> Result<ImageRef, ReferenceError> {
        for kind in [
            LayoutKind::Dir,
            LayoutKind::OciArchive,
            LayoutKind::DockerArchive,
        ] {
            if let Some(rest) = input
                .strip_prefix(kind.prefix())
                .and_then(|r| r.strip_prefix(':'))
            {
                return LayoutRef::parse(input, kind, rest).map(ImageRef::Layout);
            }
        }
        let bare = input.strip_prefix("docker://").unwrap_or(input);
        Reference::parse(bare)
            .map(ImageRef::Registry)
            .map_err(|e| match e {
                ReferenceError::Empty { .. } => ReferenceError::Empty {
                    input: input.to_string(),
                },
                other => other,
            })
    }

    pub fn tag(&self) -> Option<&str> {
        match self {
            ImageRef::Registry(r) => r.tag(),
            ImageRef::Layout(l) => l.tag.as_deref(),
        }
    }

    pub fn digest(&self) -> Option<&Digest> {
        match self {
            ImageRef::Registry(r) => r.digest(),
            ImageRef::Layout(_) => None,
        }
    }

    /// The same repository (or layout) with this tag and no digest.
    pub fn with_tag(&self, tag: &str) -> ImageRef {
        match self {
            ImageRef::Registry(r) => ImageRef::Registry(r.with(Some(tag.to_string()), None)),
            ImageRef::Layout(l) => ImageRef::Layout(LayoutRef {
                tag: Some(tag.to_string()),
                ..l.clone()
            }),
        }
    }

    /// A layout target without a repository of its own is named after
    /// the source it is written from (its repository and tag), as
    /// `docker save` names what it saves; anything else is as written.
    pub fn named_after(&self, source: &ImageRef) -> ImageRef {
        match (self, source) {
            (ImageRef::Layout(l), ImageRef::Registry(s)) if l.repository.is_none() => {
                ImageRef::Layout(LayoutRef {
                    repository: Some(s.with(None, None)),
                    tag: l.tag.clone().or_else(|| s.tag().map(str::to_string)),
                    ..l.clone()
                })
            }
            (ImageRef::Layout(l), ImageRef::Layout(s)) if l.repository.is_none() => {
                ImageRef::Layout(LayoutRef {
                    repository: s.repository.clone(),
                    ..l.clone()
                })
            }
            _ => self.clone(),
        }
    }

    /// The repository as a user writes it (`host/repo`, `oci:PATH`,
    /// `oci-archive:PATH:host/repo`), followed by `:TAG` or `@DIGEST` when
    /// `at` is given.
    pub fn at(&self, at: Option<&ManifestRef>) -> String {
        let base = match self {
            ImageRef::Registry(r) => r.name(),
            ImageRef::Layout(l) => l.base(),
        };
        match at {
            Some(ManifestRef::Tag(t)) => format!("{base}:{t}"),
            Some(ManifestRef::Digest(d)) => format!("{base}@{d}"),
            None => base,
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Registry(r) => r.fmt(f),
            ImageRef::Layout(l) => l.fmt(f),
        }
    }
}

impl LayoutRef {
    fn parse(input: &str, kind: LayoutKind, rest: &str) -> Result<LayoutRef, ReferenceError> {
        // skopeo's syntax: the path ends at the first colon.
        let (path, name) = match rest.split_once(':') {
            Some((p, n)) => (p, Some(n)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(invalid(input, "the layout path is empty"));
        }
        let (repository, tag) = match name {
            None | Some("") => (None, None),
            // A bare tag: no slash, no digest, a valid tag.
            Some(n) if !n.contains(['/', '@']) && validate_tag(input, n).is_ok() => {
                (None, Some(n.to_string()))
            }
            Some(n) => {
                let r = Reference::parse(n).map_err(|e| match e {
                    ReferenceError::Invalid { why, .. } => invalid(input, why),
                    other => other,
                })?;
                if r.digest().is_some() {
                    return Err(invalid(
                        input,
                        "a layout or archive NAME is a tag or a reference with a tag, not a digest",
                    ));
                }
                let tag = r.tag().map(str::to_string);
                (Some(r.with(None, None)), tag)
            }
        };
        Ok(LayoutRef {
            kind,
            path: PathBuf::from(path),
            repository,
            tag,
        })
    }

    /// `oci:PATH`, or `oci-archive:PATH:host/repo` with a repository.
    pub fn base(&self) -> String {
        let mut s = format!("{}:{}", self.kind.prefix(), self.path.display());
        if let Some(r) = &self.repository {
            s.push(':');
            s.push_str(&r.name());
        }
        s
    }
}

impl fmt::Display for LayoutRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        Ok(())
    }
}

impl Reference {
    /// Parses and normalises a docker reference.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty {
                input: String::new(),
            });
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = d
                    .parse::<Digest>()
                    .map_err(|source| ReferenceError::Digest {
                        input: input.to_string(),
                        source,
                    })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag is after the last colon that is not followed by a slash
        // (`host:5000/repo` has a port, not a tag).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            validate_tag(input, t)?;
        }
        let (registry, repository) = split_domain(input, name)?;
        if repository.len() > MAX_NAME_LEN {
            return Err(invalid(
                input,
                "the repository name is longer than 255 characters",
            ));
        }
        for component in repository.split('/') {
            validate_path_component(input, component)?;
        }
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Builds a reference from parts already validated elsewhere (a tag listing,
    /// a child digest).
    pub fn with(&self, tag: Option<String>, digest: Option<Digest>) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag,
            digest,
        }
    }

    /// The same registry, another repository (a name from a listing,
    /// validated there), without tag or digest.
    pub fn with_repository(&self, repository: &str) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: repository.to_string(),
            tag: None,
            digest: None,
        }
    }

    /// `host[:port]`, normalised (`docker.io` becomes `registry-1.docker.io`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host part without the port, brackets removed from IPv6 literals.
    pub fn host(&self) -> &str {
        host_of(&self.registry)
    }

    /// Loopback registries are spoken to over plain http, as docker does.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `host:port` → `host`, `[::1]:5000` → `::1`.
pub fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Splits `name` into registry and repository the way docker-cli does: the
/// first component is a registry when it has a dot or a colon, is
/// `localhost`, or has upper-case letters; otherwise the image is on Docker
/// Hub, and one-component names live under `library/`.
fn split_domain(input: &str, name: &str) -> Result<(String, String), ReferenceError> {
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    let is_domain = rest.is_some()
        && (first.contains(['.', ':', '['])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase()));
    let (registry, repository) = if is_domain {
        validate_domain(input, first)?;
        (first.to_string(), rest.unwrap_or_default().to_string())
    } else {
        (DOCKER_HUB.to_string(), name.to_string())
    };
    if repository.is_empty() {
        return Err(invalid(input, "the repository name is empty"));
    }
    let registry = match registry.as_str() {
        "docker.io" | "index.docker.io" => DOCKER_HUB.to_string(),
        _ => registry,
    };
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    Ok((registry, repository))
}

fn validate_domain(input: &str, domain: &str) -> Result<(), ReferenceError> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid(input, "unterminated IPv6 address"))?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid(input, format!("{ip:?} is not an IPv6 address")));
        }
        match after {
            "" => (None, None),
            p => match p.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err(invalid(input, "junk after the IPv6 address")),
            },
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        let ok = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(invalid(
                input,
                format!("{host:?} is not a valid registry host"),
            ));
        }
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p > 0);
        if !valid {
            return Err(invalid(
                input,
                format!("{port:?} is not a valid port (1-65535)"),
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
/// Checks a repository name (`team/app`) from a listing, as a reference's
/// path would be checked.
pub fn validate_repository(name: &str) -> Result<(), ReferenceError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(invalid(name, "not a repository name"));
    }
    name.split('/')
        .try_for_each(|c| validate_path_component(name, c))
}

fn validate_path_component(input: &str, c: &str) -> Result<(), ReferenceError> {
    let why = if c.is_empty() {
        Some("the repository has an empty path component".to_string())
    } else if c.chars().any(|ch| ch.is_ascii_uppercase()) {
        Some(format!("repository component {c:?} must be lower-case"))
    } else if !c
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        Some(format!(
            "repository component {c:?} has characters outside [a-z0-9._-]"
        ))
    } else {
        let bytes = c.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let mut ok = alnum(bytes[0]) && alnum(bytes[bytes.len() - 1]);
        // Separators between alphanumeric runs: one '.', one or two '_', any '-'.
        let mut i = 0;
        while ok && i < bytes.len() {
            if alnum(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        }
        (!ok).then(|| format!("repository component {c:?} has a misplaced separator"))
    };
    match why {
        Some(why) => Err(invalid(input, why)),
        None => Ok(()),
    }
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
pub fn validate_tag(input: &str, tag: &str) -> Result<(), ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && word(tag.as_bytes()[0])
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            input,
            format!("{tag:?} is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-], at most 128)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "a9ff2b9d4a3e07ba4f45c8cab7bc7ecafb2b3de2b4d8ba1d0dca0b3a4f6b1b4e";

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    // The cases of seed 004's reference tests, one assertion each.
    #[test]
    fn seed_004_normalisation() {
        assert_eq!(
            r("alpine:3").to_string(),
            "registry-1.docker.io/library/alpine:3"
        );
        assert_eq!(
            r("eu.gcr.io/project/foo:bar").to_string(),
            "eu.gcr.io/project/foo:bar"
        );
        assert_eq!(
            r("eu.gcr.io/project/foo").to_string(),
            "eu.gcr.io/project/foo"
        );
        assert_eq!(r("alpine:3"), r("registry-1.docker.io/library/alpine:3"));
        assert_ne!(r("alpine:3"), r("example.org/path:tag1"));
        assert_eq!(r("alpine:3").tag(), Some("3"));
    }

    #[test]
    fn seed_004_parts() {
        let d = format!("sha256:{HEX}");
        let by_digest = r(&format!("example.org/path@{d}"));
        assert_eq!(by_digest.digest().map(|d| d.to_string()), Some(d.clone()));
        assert_eq!(by_digest.tag(), None);
        assert_eq!(by_digest.repository(), "path");
        assert_eq!(by_digest.registry(), "example.org");
        assert_eq!(by_digest.name(), "example.org/path");

        let with_port = r(&format!("example.org:1234/path@{d}"));
        assert_eq!(with_port.registry(), "example.org:1234");
        assert_eq!(with_port.host(), "example.org");
        assert_eq!(with_port.name(), "example.org:1234/path");

        assert_eq!(r("example.org/path:tag").repository(), "path");
        assert_eq!(r("example.org/path:tag").name(), "example.org/path");
        assert_eq!(r("example.org:1234/path:tag").repository(), "path");
        assert_eq!(
            r("example.org:1234/path:tag").registry(),
            "example.org:1234"
        );
        assert_eq!(r("alpine:3").repository(), "library/alpine");
        assert_eq!(r("alpine:3").name(), "registry-1.docker.io/library/alpine");
        assert_eq!(r("alpine:3").registry(), DOCKER_HUB);

        let hub_digest = r(&format!("alpine@{d}"));
        assert_eq!(hub_digest.digest().map(|d| d.hex()), Some(HEX));
        assert_eq!(hub_digest.repository(), "library/alpine");
        assert_eq!(
            r("example.org/path:symbolic-tag").tag(),
            Some("symbolic-tag")
        );
    }

    #[test]
    fn docker_hub_forms() {
        assert_eq!(r("user/app").to_string(), "registry-1.docker.io/user/app");
        assert_eq!(r("docker.io/alpine").repository(), "library/alpine");
        assert_eq!(r("index.docker.io/user/app:1").registry(), DOCKER_HUB);
        assert_eq!(r("docker.io/library/alpine:3"), r("alpine:3"));
        assert_eq!(
            ImageRef::parse("docker://alpine:3").unwrap(),
            ImageRef::Registry(r("alpine:3"))
        );
    }

    #[test]
    fn hosts_ports_and_loopback() {
        assert!(r("localhost/app").is_loopback());
        assert_eq!(r("localhost/app").registry(), "localhost");
        assert!(r("localhost:5000/a/b:c").is_loopback());
        assert!(r("127.0.0.1:5000/app").is_loopback());
        assert!(r("127.9.9.9/app").is_loopback());
        assert!(r("[::1]:5000/app").is_loopback());
        assert_eq!(r("[::1]:5000/app").host(), "::1");
        assert!(!r("example.org/app").is_loopback());
        assert!(!r("alpine").is_loopback());
        let both = r(&format!("host:5000/a/b:t@sha256:{HEX}"));
        assert_eq!(both.tag(), Some("t"));
        assert!(both.digest().is_some());
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("example.org/App:1", "lower-case"),
            ("example.org/a/../b", "separator"),
            ("example.org/../b", "separator"),
            ("example.org//b", "empty path component"),
            ("example.org/b:", "not a valid tag"),
            ("example.org/b:-x", "not a valid tag"),
            ("example.org:99999/b", "not a valid port"),
            ("example.org:x/b", "not a valid port"),
            ("example.org:0/b", "not a valid port"),
            ("example.org/b@sha256:abc", "wrong length"),
            (
                "example.org/b@md5:d41d8cd98f00b204e9800998ecf8427e",
                "unsupported",
            ),
            ("exa mple.org/b", "registry host"),
            ("example.org/", "empty"),
            ("b$d", "characters"),
            ("example.org/a__-b", "separator"),
            ("[::1/b", "IPv6"),
        ];
        for (input, why) in cases {
            let err = ImageRef::parse(input).expect_err(input).to_string();
            assert!(err.contains(why), "{input:?}: {err:?} lacks {why:?}");
            assert!(err.starts_with("invalid reference"), "{err}");
        }
        let long = format!("x.io/{}", "a".repeat(256));
        assert!(Reference::parse(&long).is_err());
        let long_tag = format!("x.io/a:{}", "a".repeat(129));
        assert!(Reference::parse(&long_tag).is_err());
    }

    #[test]
    fn separators_allowed_by_the_grammar() {
        for ok in ["a/b.c", "a/b_c", "a/b__c", "a/b---c", "x.io/a-b/c.d_e"] {
            assert!(Reference::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn layout_references() {
        let l = |s: &str| match ImageRef::parse(s).unwrap() {
            ImageRef::Layout(l) => l,
            other => panic!("{other:?}"),
        };
        assert_eq!(l("oci:dir").path, PathBuf::from("dir"));
        assert_eq!(l("oci:dir").tag, None);
        assert_eq!(l("oci:/tmp/x:v1").tag.as_deref(), Some("v1"));
        assert_eq!(l("oci:/tmp/x:v1").path, PathBuf::from("/tmp/x"));
        // skopeo's rule: the path ends at the first colon; a NAME with a
        // slash is a full reference, giving the image a repository.
        let named = l("oci-archive:/tmp/x.tar:registry.example.com/app:1.0");
        assert_eq!(named.kind, LayoutKind::OciArchive);
        assert_eq!(named.path, PathBuf::from("/tmp/x.tar"));
        assert_eq!(
            named.repository.as_ref().unwrap().name(),
            "registry.example.com/app"
        );
        assert_eq!(named.tag.as_deref(), Some("1.0"));
        assert_eq!(
            named.to_string(),
            "oci-archive:/tmp/x.tar:registry.example.com/app:1.0"
        );
        let hub = l("docker-archive:a.tar:alpine:3");
        assert_eq!(hub.kind, LayoutKind::DockerArchive);
        assert_eq!(
            hub.repository.unwrap().name(),
            "registry-1.docker.io/library/alpine"
        );
        assert_eq!(l("oci:dir:v1").to_string(), "oci:dir:v1");
        assert!(ImageRef::parse("oci:").is_err());
        assert!(ImageRef::parse("oci:dir:bad tag").is_err());
        assert!(ImageRef::parse(&format!("oci-archive:x.tar:r.io/a@sha256:{HEX}")).is_err());
        // A layout target without a name is named after its source.
        let src = ImageRef::parse("r.io/team/app:2").unwrap();
        let dst = ImageRef::parse("oci-archive:x.tar")
            .unwrap()
            .named_after(&src);
        assert_eq!(dst.to_string(), "oci-archive:x.tar:r.io/team/app:2");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_input_parses_or_explains(s in "\\PC{0,200}") {
            if let Err(e) = ImageRef::parse(&s) {
                prop_assert!(e.to_string().starts_with("invalid reference"));
            }
        }

        #[test]
        fn valid_references_round_trip(
            host in "[a-z][a-z0-9]{0,10}\\.[a-z]{2,5}",
            port in prop::option::of(1u16..),
            repo in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,3}",
            tag in prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        ) {
            let mut s = host.clone();
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            s.push('/');
            s.push_str(&repo);
            if let Some(t) = &tag {
                s.push(':');
                s.push_str(t);
            }
            let r = Reference::parse(&s).unwrap();
            prop_assert_eq!(r.to_string(), s.clone());
            prop_assert_eq!(r.repository(), repo.as_str());
            prop_assert_eq!(r.tag(), tag.as_deref());
            prop_assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
        }
    }
}
