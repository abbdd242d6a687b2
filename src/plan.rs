//! The plan: what a copy will do, decided before any network I/O.
//!
//! Owns the defaults that turn two references into a [`CopyJob`] (a source
//! without tag means `latest`; a target without tag takes the source's tag,
//! or goes by digest when the source is by digest) and the options a job
//! carries ([`CopyOptions`]: platforms, mode, format, limits), whether they
//! came from flags or from a sync config. Pure data: never opens a
//! connection or a file.

use std::time::Duration;

use crate::digest::Digest;
use crate::manifest::MAX_MANIFEST_SIZE;
use crate::platform::Platform;
use crate::reference::{ImageRef, ManifestRef};

/// How to ask for and shape the source manifest (seed 004's replication modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Copy what the registry serves, byte-exact.
    #[default]
    Verbatim,
    /// Ask for indexes first, so a multi-arch tag comes whole.
    PreferIndex,
    /// Like prefer-index, and a single image becomes a one-entry index.
    NormaliseIndex,
}

/// The manifest format pushed to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The source's; schema1 is converted only if the target refuses it.
    #[default]
    Auto,
    /// Docker schema2: schema1 sources are converted.
    V2s2,
    /// OCI: Docker schema2 and lists get OCI media types; schema1 is converted first.
    Oci,
}

/// Which platforms of a multi-arch image travel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PlatformSelection {
    /// The image as it is.
    #[default]
    All,
    /// Only these platforms of an index, in a new index.
    Only(Vec<Platform>),
    /// Exactly one image of the index matches; it is pushed as itself.
    Unwrap(Vec<Platform>),
}

impl PlatformSelection {
    /// The platforms asked for (empty for `All`).
    pub fn platforms(&self) -> &[Platform] {
        match self {
            PlatformSelection::All => &[],
            PlatformSelection::Only(p) | PlatformSelection::Unwrap(p) => p,
        }
    }
}

/// The uncompressed size at which a layer being gunzipped (for its
/// diff_id) is treated as a decompression bomb. Real layers stay far below;
/// a gzip stream can expand about 1000-fold.
pub const MAX_UNCOMPRESSED_LAYER: u64 = 64 * 1024 * 1024 * 1024;
/// Distinct child manifests one image may have. The widest real indexes
/// (many platforms, each with an attestation) have a few hundred entries;
/// 25,000 distinct children each fetched is an attack on the source and on us.
pub const MAX_INDEX_CHILDREN: usize = 1024;
/// Manifest bytes one image may hold in memory, root and children together.
pub const MAX_IMAGE_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// What a copy may read into memory or accept from the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest manifest read; children are refused by their
    /// descriptor's size before any request.
    pub max_manifest_size: u64,
    /// See [`MAX_UNCOMPRESSED_LAYER`].
    pub max_uncompressed_layer: u64,
    /// See [`MAX_INDEX_CHILDREN`].
    pub max_index_children: usize,
    /// See [`MAX_IMAGE_MANIFEST_BYTES`].
    pub max_image_manifest_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_manifest_size: MAX_MANIFEST_SIZE,
            max_uncompressed_layer: MAX_UNCOMPRESSED_LAYER,
            max_index_children: MAX_INDEX_CHILDREN,
            max_image_manifest_bytes: MAX_IMAGE_MANIFEST_BYTES,
        }
    }
}

/// How one image is copied; `Default` is `ocirepl copy` without flags.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyOptions {
    pub platforms: PlatformSelection,
    pub mode: Mode,
    pub format: Format,
    /// Fetch foreign (non-distributable) layers from their URLs and push them.
    pub include_foreign: bool,
    pub limits: Limits,
    /// A deadline for the image, all steps and retries included.
    pub timeout: Option<Duration>,
    /// Manifest pulls to keep in reserve on a registry that states a pull
    /// budget (Docker Hub): an image that would dig into them is left for
    /// a later run. `None`: no reserve.
    pub pull_reserve: Option<u64>,
    /// `--referrers`: signatures, SBOMs and attestations travel too, of
    /// these artifact types (all when empty). `None`: they stay.
    pub referrers: Option<Vec<String>>,
    /// `verify`: only images signed as this requires are copied.
    pub verify: Option<crate::verify::Gate>,
    /// `media_types`: only sources of these manifest types are copied
    /// (the others are skipped, with why). `None`: any.
    pub media_types: Option<Vec<String>>,
    /// `backup`: before a target tag moves to another digest, the image
    /// it named is kept under this tag.
    pub backup: Option<BackupName>,
    /// `repair`: an image already in place is checked too (every blob
    /// asked for, every manifest written again) and what is missing sent.
    pub repair: bool,
}

/// A `backup` tag pattern: `{tag}`, `{date}` (UTC, `YYYYMMDD`) and
/// `{digest}` (the first 12 hex digits of the old digest) in a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupName {
    pattern: String,
    /// Which tags are backups (pruning never deletes them).
    matcher: String,
}

impl BackupName {
    /// A pattern that makes valid tags, with at least one placeholder.
    pub fn parse(pattern: &str) -> Result<BackupName, String> {
        let probe = pattern
            .replace("{tag}", "t")
            .replace("{date}", "20260101")
            .replace("{digest}", "0123456789ab");
        let tag_like = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        };
        if probe == pattern || !tag_like(&probe) {
            return Err(format!(
                "backup {pattern:?}: a tag made of letters, digits, _ . - and at least one of {{tag}}, {{date}}, {{digest}}"
            ));
        }
        let mut matcher = String::from("^");
        let mut rest = pattern;
        while let Some(i) = rest.find('{') {
            matcher.push_str(&regex::escape(&rest[..i]));
            let (part, after) = match &rest[i..] {
                r if r.starts_with("{tag}") => (".+", &r[5..]),
                r if r.starts_with("{date}") => ("[0-9]{8}", &r[6..]),
                r if r.starts_with("{digest}") => ("[0-9a-f]{12}", &r[8..]),
                // Unreachable for a pattern `parse` took: `{` is no tag character.
                r => ("\\{", &r[1..]),
            };
            matcher.push_str(part);
            rest = after;
        }
        matcher.push_str(&regex::escape(rest));
        matcher.push('$');
        Ok(BackupName {
            pattern: pattern.to_string(),
            matcher,
        })
    }

    /// The backup tag of `tag`, which named `old`, on `date` (`YYYYMMDD`).
    pub fn expand(&self, tag: &str, old: &crate::digest::Digest, date: &str) -> String {
        self.pattern
            .replace("{tag}", tag)
            .replace("{date}", date)
            .replace("{digest}", &old.hex()[..12.min(old.hex().len())])
    }

    /// Whether `tag` is one this pattern makes.
    pub fn made(&self, tag: &str) -> bool {
        regex::Regex::new(&self.matcher).is_ok_and(|r| r.is_match(tag))
    }
}

impl CopyOptions {
    /// The referrer artifact types kept (empty: all). A verifying copy
    /// that names none carries signatures only: anything else attached
    /// to a verified image (an "SBOM" that is a whole image) is not what
    /// its signature covers, and travels only when its type is named.
    pub fn referrer_types(&self) -> Vec<String> {
        match (&self.referrers, &self.verify) {
            (Some(types), Some(_)) if types.is_empty() => vec![
                crate::manifest::referrers::COSIGN_SIG.to_string(),
                crate::verify::BUNDLE_V03.to_string(),
            ],
            (types, _) => types.clone().unwrap_or_default(),
        }
    }

    /// These options with the image kept as stored: no platform filter,
    /// no normalising, no conversion (an import from an archive whose
    /// export applied them already).
    pub fn as_stored(&self) -> CopyOptions {
        CopyOptions {
            platforms: PlatformSelection::All,
            mode: Mode::Verbatim,
            format: Format::Auto,
            ..self.clone()
        }
    }

    /// Options that contradict each other.
    pub fn validate(&self) -> Result<(), PlanError> {
        if matches!(self.platforms, PlatformSelection::Unwrap(_))
            && self.mode == Mode::NormaliseIndex
        {
            return Err(PlanError::UnwrapAndNormalise);
        }
        Ok(())
    }

    /// Whether the target gets exactly the source's bytes unless the target
    /// refuses them (no filter, no unwrap, no normalising, no forced format).
    pub fn keeps_bytes(&self) -> bool {
        self.platforms == PlatformSelection::All
            && self.mode != Mode::NormaliseIndex
            && self.format == Format::Auto
    }

    /// Whether the pushed root follows from the source root's bytes alone
    /// (a platform filter or an unwrap, no conversion), so that an
    /// unchanged image is known from the root and one HEAD of the target.
    pub fn root_decides(&self) -> bool {
        self.platforms != PlatformSelection::All
            && self.mode != Mode::NormaliseIndex
            && self.format == Format::Auto
    }
}

/// The tag docker assumes when a reference names none.
pub const DEFAULT_TAG: &str = "latest";

/// One image to copy, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyJob {
    pub source: ImageRef,
    pub target: ImageRef,
    /// The source manifest: by tag or by digest.
    pub src: ManifestRef,
    /// `None`: push by digest only; no tag moves.
    pub dst_tag: Option<String>,
    /// A digest the target reference named: the result must have it.
    pub dst_digest: Option<Digest>,
    pub options: CopyOptions,
    /// The mirror job this image belongs to, for its report.
    pub label: Option<String>,
    /// What an earlier run pushed to this target for a source digest (a
    /// state file): a filtered image whose source digest has not changed
    /// is then known up to date from two HEADs, without reading its root.
    pub hint: Option<Hint>,
    /// The target's tag list, read just before, lacks `dst_tag`: the tag
    /// needs no HEAD to know it must be written (`--all-tags`, sync).
    pub target_lacks_tag: bool,
}

/// What a run knows about one image before copying it, beyond its
/// references and options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    /// The mirror job the image belongs to.
    pub label: Option<String>,
    pub hint: Option<Hint>,
    /// The target's tag list, read just before, lacks the tag.
    pub target_lacks_tag: bool,
}

/// A target digest pushed earlier, and the source digest it was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub source: Digest,
    pub target: Digest,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{target}: an oci: layout target needs a tag when the source is named by digest (write oci:PATH:TAG)"
    )]
    LayoutNeedsTag { target: String },
    #[error("--unwrap and --mode normalise-index contradict each other")]
    UnwrapAndNormalise,
}

impl CopyJob {
    pub fn new(
        source: ImageRef,
        target: ImageRef,
        options: CopyOptions,
    ) -> Result<CopyJob, PlanError> {
        CopyJob::with_context(source, target, options, Known::default())
    }

    /// The image `digest` of `source` into `target`'s repository by digest
    /// only, no tag moving (the parts of an index being assembled).
    pub fn pinned(
        source: ImageRef,
        digest: Digest,
        target: ImageRef,
        options: CopyOptions,
    ) -> CopyJob {
        CopyJob {
            source,
            target,
            src: ManifestRef::Digest(digest),
            dst_tag: None,
            dst_digest: None,
            options,
            label: None,
            hint: None,
            target_lacks_tag: false,
        }
    }

    /// A job with what the run knows of it, complete from the start.
    pub fn with_context(
        source: ImageRef,
        target: ImageRef,
        options: CopyOptions,
        context: Known,
    ) -> Result<CopyJob, PlanError> {
        options.validate()?;
        let src = match (source.digest(), source.tag()) {
            (Some(d), _) => ManifestRef::Digest(d.clone()),
            (None, Some(t)) => ManifestRef::Tag(t.to_string()),
            (None, None) => ManifestRef::Tag(DEFAULT_TAG.to_string()),
        };
        let dst_tag = match (target.tag(), &src) {
            (Some(t), _) => Some(t.to_string()),
            (None, ManifestRef::Tag(t)) if target.digest().is_none() => Some(t.clone()),
            (None, _) => None,
        };
        if dst_tag.is_none() && matches!(target, ImageRef::Layout(_)) {
            return Err(PlanError::LayoutNeedsTag {
                target: target.to_string(),
            });
        }
        Ok(CopyJob {
            dst_digest: target.digest().cloned(),
            source,
            target,
            src,
            dst_tag,
            options,
            label: context.label,
            hint: context.hint,
            target_lacks_tag: context.target_lacks_tag,
        })
    }

    /// The source as a user would write it, with the resolved tag.
    pub fn source_display(&self) -> String {
        self.source.at(Some(&self.src))
    }

    /// The target as a user would write it: with its tag, or the digest it names.
    pub fn target_display(&self) -> String {
        match (&self.dst_tag, &self.dst_digest) {
            (Some(t), _) => self.target.at(Some(&ManifestRef::Tag(t.clone()))),
            (None, Some(d)) => self.target.at(Some(&ManifestRef::Digest(d.clone()))),
            (None, None) => self.target.at(None),
        }
    }

    /// Where the copied root goes: its tag, or by digest.
    pub fn target_ref(&self, pushed: &Digest) -> ManifestRef {
        match &self.dst_tag {
            Some(t) => ManifestRef::Tag(t.clone()),
            None => ManifestRef::Digest(pushed.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(s: &str, d: &str) -> Result<CopyJob, PlanError> {
        CopyJob::new(
            ImageRef::parse(s).unwrap(),
            ImageRef::parse(d).unwrap(),
            CopyOptions::default(),
        )
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn defaults() {
        let j = job("a.io/x", "b.io/y").unwrap();
        assert_eq!(j.src, ManifestRef::Tag("latest".into()));
        assert_eq!(j.dst_tag.as_deref(), Some("latest"));
        assert_eq!(j.target_display(), "b.io/y:latest");

        let j = job("a.io/x:1", "b.io/y").unwrap();
        assert_eq!(j.dst_tag.as_deref(), Some("1"));
        let j = job("a.io/x:1", "b.io/y:2").unwrap();
        assert_eq!(j.dst_tag.as_deref(), Some("2"));
        assert_eq!(j.source_display(), "a.io/x:1");

        let j = job(&format!("a.io/x@{D}"), "b.io/y").unwrap();
        assert_eq!(j.dst_tag, None);
        assert!(matches!(j.src, ManifestRef::Digest(_)));
        assert_eq!(j.source_display(), format!("a.io/x@{D}"));

        let j = job(&format!("a.io/x:1@{D}"), "b.io/y:z").unwrap();
        assert!(matches!(j.src, ManifestRef::Digest(_)));
        assert_eq!(j.dst_tag.as_deref(), Some("z"));

        let j = job("a.io/x:1", &format!("b.io/y@{D}")).unwrap();
        assert_eq!(j.dst_tag, None);
        assert!(j.dst_digest.is_some());
        assert_eq!(j.target_display(), format!("b.io/y@{D}"));
    }

    #[test]
    fn layouts() {
        let j = job("oci:/tmp/a:v1", "oci:/tmp/b").unwrap();
        assert_eq!(j.dst_tag.as_deref(), Some("v1"));
        assert_eq!(j.target_display(), "oci:/tmp/b:v1");
        assert!(matches!(
            job(&format!("a.io/x@{D}"), "oci:/tmp/b"),
            Err(PlanError::LayoutNeedsTag { .. })
        ));
        assert!(job(&format!("a.io/x@{D}"), "oci:/tmp/b:t").is_ok());
    }

    #[test]
    fn unwrap_contradicts_normalise() {
        let options = CopyOptions {
            platforms: PlatformSelection::Unwrap(vec![Platform::parse("linux/amd64").unwrap()]),
            mode: Mode::NormaliseIndex,
            ..CopyOptions::default()
        };
        let r = CopyJob::new(
            ImageRef::parse("a.io/x").unwrap(),
            ImageRef::parse("b.io/y").unwrap(),
            options,
        );
        assert_eq!(r, Err(PlanError::UnwrapAndNormalise));
    }
}

#[cfg(test)]
mod backup_tests {
    use super::BackupName;
    use crate::digest::Digest;

    #[test]
    fn backup_names_expand_and_recognise_their_tags() {
        let b = BackupName::parse("{tag}-bak-{date}").unwrap();
        let d = Digest::sha256(b"old");
        assert_eq!(b.expand("v1", &d, "20261206"), "v1-bak-20261206");
        assert!(b.made("v1-bak-20261206") && b.made("a.b-bak-20260101"));
        assert!(!b.made("v1") && !b.made("v1-bak-2026") && !b.made("x-v1-bak-20261206x"));
        let h = BackupName::parse("old-{digest}").unwrap();
        assert!(h.made(&h.expand("v1", &d, "20261206")));
        for bad in ["no-placeholder", "{tag}/x", "{tag} x", ""] {
            assert!(BackupName::parse(bad).is_err(), "{bad}");
        }
    }
}
