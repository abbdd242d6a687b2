//! The plan: what a command will do, decided before any network I/O.
//!
//! Owns the defaults that turn two references into a [`CopyJob`] (a source
//! without tag means `latest`; a target without tag takes the source's tag,
//! or goes by digest when the source is by digest). Never opens a
//! connection or a file.

use crate::digest::Digest;
use crate::reference::ImageRef;
use crate::store::ManifestRef;

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

/// The tag docker assumes when a reference names none.
pub const DEFAULT_TAG: &str = "latest";

/// One image to copy, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyJob {
    pub source: ImageRef,
    pub target: ImageRef,
    /// Repository within the source store (empty for a layout).
    pub src_repo: String,
    pub src: ManifestRef,
    pub dst_repo: String,
    /// `None`: push by digest only; no tag moves.
    pub dst_tag: Option<String>,
    /// A digest the target reference named: the result must have it.
    pub dst_digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{target}: an oci: layout target needs a tag when the source is named by digest (write oci:PATH:TAG)"
    )]
    LayoutNeedsTag { target: String },
}

impl CopyJob {
    pub fn new(source: ImageRef, target: ImageRef) -> Result<CopyJob, PlanError> {
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
            src_repo: repo_of(&source),
            dst_repo: repo_of(&target),
            dst_digest: target.digest().cloned(),
            source,
            target,
            src,
            dst_tag,
        })
    }

    /// The source as a user would write it, with the resolved tag.
    pub fn source_display(&self) -> String {
        display(&self.source, &self.src_repo, Some(&self.src))
    }

    pub fn target_display(&self) -> String {
        let r = self.dst_tag.clone().map(ManifestRef::Tag);
        display(&self.target, &self.dst_repo, r.as_ref())
    }
}

fn repo_of(r: &ImageRef) -> String {
    match r {
        ImageRef::Registry(r) => r.repository().to_string(),
        ImageRef::Layout(_) => String::new(),
    }
}

fn display(r: &ImageRef, repo: &str, m: Option<&ManifestRef>) -> String {
    let base = match r {
        ImageRef::Registry(reg) => format!("{}/{repo}", reg.registry()),
        ImageRef::Layout(l) => format!("oci:{}", l.path.display()),
    };
    match m {
        Some(ManifestRef::Tag(t)) => format!("{base}:{t}"),
        Some(ManifestRef::Digest(d)) => format!("{base}@{d}"),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(s: &str, d: &str) -> Result<CopyJob, PlanError> {
        CopyJob::new(ImageRef::parse(s).unwrap(), ImageRef::parse(d).unwrap())
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
        assert_eq!(j.src_repo, "x");
        assert_eq!(j.dst_repo, "y");

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
}
