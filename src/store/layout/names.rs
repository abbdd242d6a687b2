//! Names in an OCI layout's `index.json`, as docker, containerd, podman
//! and skopeo write them: `io.containerd.image.name` holds the full
//! reference (docker and containerd), `org.opencontainers.image.ref.name`
//! the tag (docker, containerd) or the full reference (podman, skopeo).
//! ocirepl writes both, docker's way, so one layout or archive holds many
//! repositories and every tool finds its images.
//!
//! Owns reading entries into named images and matching them against a
//! repository (or none: every entry, by its tag). Pure: bytes in, names out.

use serde_json::Value;

use crate::digest::Digest;
use crate::reference::{DOCKER_HUB, Reference, validate_tag};
use crate::transport::error::printable;

/// The annotation that names a tag (or, by podman and skopeo, the image).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation docker and containerd name the full reference with.
pub const IMAGE_NAME: &str = "io.containerd.image.name";

/// One entry of `index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The repository the entry names (without tag), when it names one.
    pub repository: Option<Reference>,
    /// The tag, when it has one.
    pub tag: Option<String>,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

impl Named {
    /// Whether the entry is in `scope` (a repository), or, with no scope,
    /// whether it has a tag at all.
    pub fn in_scope(&self, scope: Option<&Reference>) -> bool {
        match scope {
            None => true,
            Some(repo) => self.repository.as_ref().is_some_and(|r| {
                r.registry() == repo.registry() && r.repository() == repo.repository()
            }),
        }
    }

    /// `registry/repo:tag` (or the tag alone), for messages.
    pub fn describe(&self) -> String {
        match (&self.repository, &self.tag) {
            (Some(r), Some(t)) => format!("{}:{t}", r.name()),
            (Some(r), None) => r.name(),
            (None, Some(t)) => t.clone(),
            (None, None) => self.digest.to_string(),
        }
    }
}

/// Every entry of `index.json` bytes, in order. A digest that is not one,
/// or a name that is not a valid reference or tag (control characters
/// shown escaped), is an error naming it.
pub fn read_index(bytes: &[u8]) -> Result<Vec<Named>, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let entries = v
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or("no \"manifests\" array")?;
    entries.iter().map(entry).collect()
}

/// One entry of `index.json`, read.
pub fn entry(e: &Value) -> Result<Named, String> {
    let digest = e["digest"]
        .as_str()
        .unwrap_or("")
        .parse::<Digest>()
        .map_err(|err| format!("an entry's digest: {err}"))?;
    let ref_name = e["annotations"][REF_NAME].as_str();
    let image_name = e["annotations"][IMAGE_NAME].as_str();
    let (repository, tag) = match (image_name, ref_name) {
        (Some(full), short) => {
            let r = full_name(full)?;
            let tag = r
                .tag()
                .map(str::to_string)
                .or_else(|| short.filter(|s| !s.contains('/')).map(str::to_string));
            (Some(r.with(None, None)), tag)
        }
        // podman and skopeo put the full reference in ref.name.
        (None, Some(n)) if n.contains('/') => {
            let r = full_name(n)?;
            (Some(r.with(None, None)), r.tag().map(str::to_string))
        }
        (None, Some(t)) => {
            validate_tag(t, t).map_err(|_| {
                format!(
                    "an entry names a tag that is not a valid tag: {:?}",
                    printable(t)
                )
            })?;
            (None, Some(t.to_string()))
        }
        (None, None) => (None, None),
    };
    if let Some(t) = &tag {
        validate_tag(t, t).map_err(|_| {
            format!(
                "an entry names a tag that is not a valid tag: {:?}",
                printable(t)
            )
        })?;
    }
    Ok(Named {
        repository,
        tag,
        digest,
        media_type: e["mediaType"].as_str().unwrap_or("").to_string(),
        size: e["size"].as_u64().unwrap_or(0),
    })
}

fn full_name(text: &str) -> Result<Reference, String> {
    Reference::parse(text).map_err(|e| format!("an entry's name {:?}: {e}", printable(text)))
}

/// The name containerd and docker write for `repo:tag`: Docker Hub as
/// `docker.io`.
pub fn containerd_name(repo: &Reference, tag: &str) -> String {
    let registry = match repo.registry() {
        DOCKER_HUB => "docker.io",
        other => other,
    };
    format!("{registry}/{}:{tag}", repo.repository())
}

/// The name `docker load` shows for `repo:tag` (docker's familiar form:
/// `alpine:3`, `user/app:1`, `registry.example.com/app:1`).
pub fn familiar_name(repo: &Reference, tag: &str) -> String {
    match repo.registry() {
        DOCKER_HUB => {
            let path = repo
                .repository()
                .strip_prefix("library/")
                .unwrap_or(repo.repository());
            format!("{path}:{tag}")
        }
        _ => format!("{}:{tag}", repo.name()),
    }
}

/// The entry `tag` names in `scope`: one digest, or an error when several
/// images of different digests answer to it (a bare tag in a layout that
/// holds several repositories).
pub fn find_tag<'a>(
    entries: &'a [Named],
    scope: Option<&Reference>,
    tag: &str,
) -> Result<Option<&'a Named>, String> {
    let matching: Vec<&Named> = entries
        .iter()
        .filter(|e| e.in_scope(scope) && e.tag.as_deref() == Some(tag))
        .collect();
    let Some(last) = matching.last() else {
        return Ok(None);
    };
    if matching.iter().any(|e| e.digest != last.digest) {
        let names: Vec<String> = matching.iter().map(|e| e.describe()).collect();
        return Err(format!(
            "tag {tag} names several images here ({}): give the full name (PATH:REGISTRY/REPO:TAG)",
            names.join(", ")
        ));
    }
    Ok(Some(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn index(entries: &[&str]) -> Vec<Named> {
        let text = format!(r#"{{"manifests":[{}]}}"#, entries.join(","));
        read_index(text.as_bytes()).unwrap()
    }

    #[test]
    fn every_tool_s_naming_reads_alike() {
        let docker = format!(
            r#"{{"digest":"{D}","mediaType":"m","size":3,"annotations":{{"{IMAGE_NAME}":"docker.io/library/alpine:3","{REF_NAME}":"3"}}}}"#
        );
        let podman = format!(
            r#"{{"digest":"{D}","annotations":{{"{REF_NAME}":"registry.example.com/app:1.0"}}}}"#
        );
        let bare = format!(r#"{{"digest":"{D}","annotations":{{"{REF_NAME}":"v1"}}}}"#);
        let none = format!(r#"{{"digest":"{D}"}}"#);
        let e = index(&[&docker, &podman, &bare, &none]);
        assert_eq!(e[0].describe(), "registry-1.docker.io/library/alpine:3");
        assert_eq!(e[0].size, 3);
        assert_eq!(e[1].describe(), "registry.example.com/app:1.0");
        assert_eq!(e[2].describe(), "v1");
        assert_eq!(e[3].tag, None);
        let alpine = Reference::parse("alpine").unwrap().with(None, None);
        assert!(e[0].in_scope(Some(&alpine)));
        assert!(!e[1].in_scope(Some(&alpine)));
        assert!(!e[2].in_scope(Some(&alpine)));
        assert_eq!(containerd_name(&alpine, "3"), "docker.io/library/alpine:3");
        assert_eq!(familiar_name(&alpine, "3"), "alpine:3");
    }

    #[test]
    fn a_bare_tag_over_several_repositories_is_ambiguous() {
        let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        let a = format!(
            r#"{{"digest":"{D}","annotations":{{"{IMAGE_NAME}":"r.io/a:1","{REF_NAME}":"1"}}}}"#
        );
        let b = format!(
            r#"{{"digest":"{other}","annotations":{{"{IMAGE_NAME}":"r.io/b:1","{REF_NAME}":"1"}}}}"#
        );
        let e = index(&[&a, &b]);
        assert!(
            find_tag(&e, None, "1")
                .unwrap_err()
                .contains("several images")
        );
        let ra = Reference::parse("r.io/a").unwrap();
        assert_eq!(
            find_tag(&e, Some(&ra), "1")
                .unwrap()
                .unwrap()
                .digest
                .to_string(),
            D
        );
        assert!(find_tag(&e, None, "2").unwrap().is_none());
    }

    #[test]
    fn bad_names_are_refused_by_name() {
        for bad in [
            format!(r#"{{"digest":"{D}","annotations":{{"{REF_NAME}":"a\u001b[31m"}}}}"#),
            format!(r#"{{"digest":"{D}","annotations":{{"{IMAGE_NAME}":"r.io/Upper:1"}}}}"#),
            r#"{"digest":"md5:abc"}"#.to_string(),
        ] {
            let text = format!(r#"{{"manifests":[{bad}]}}"#);
            assert!(read_index(text.as_bytes()).is_err(), "{bad}");
        }
    }
}
