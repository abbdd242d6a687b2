//! Vendors' push webhooks, as their documentation shows them:
//!
//! - Harbor (`PUSH_ARTIFACT` / `DELETE_ARTIFACT`; or CloudEvents,
//!   `harbor.artifact.pushed`): `event_data.resources[]` with `tag`,
//!   `digest` and `resource_url` (`host/project/repo:tag`); an untagged
//!   push puts the digest in `tag`.
//! - Docker Hub: `push_data.tag` and `repository.repo_name`; always
//!   docker.io, no digest, no event id.
//! - GitHub (`X-GitHub-Event: package` or `registry_package`, action
//!   `published`): `package_version.package_url` (`ghcr.io/owner/name:tag`,
//!   sometimes with an empty tag) and `container_metadata.tag`.
//! - Quay (repository push): `docker_url` (`quay.io/ns/name`) and
//!   `updated_tags` (a list; early versions sent an object keyed by tag).

use serde::Deserialize;
use serde_json::Value;

use super::{Action, Event, digest, host, repository, split_reference, tag};

#[derive(Deserialize)]
struct Harbor {
    #[serde(rename = "type")]
    kind: String,
    event_data: Option<HarborData>,
    data: Option<HarborData>,
}

#[derive(Deserialize)]
struct HarborData {
    resources: Vec<HarborResource>,
}

#[derive(Deserialize)]
struct HarborResource {
    digest: Option<String>,
    tag: Option<String>,
    resource_url: String,
}

pub(super) fn harbor(body: &[u8]) -> Result<Vec<Event>, String> {
    let h: Harbor =
        serde_json::from_slice(body).map_err(|e| format!("not a Harbor webhook: {e}"))?;
    let action = match h.kind.as_str() {
        "PUSH_ARTIFACT" | "harbor.artifact.pushed" => Action::Push,
        "DELETE_ARTIFACT" | "harbor.artifact.deleted" => Action::Delete,
        other => Action::Other(other.escape_debug().to_string()),
    };
    let data = h
        .event_data
        .or(h.data)
        .ok_or("no event_data (or data) with resources")?;
    data.resources
        .into_iter()
        .map(|r| {
            let (host, repository, _) = split_reference(&r.resource_url)?;
            // An untagged push names its digest where the tag goes.
            let named_tag = r.tag.filter(|t| !t.is_empty() && !t.starts_with("sha256:"));
            Ok(Event {
                id: None,
                action: action.clone(),
                host,
                repository,
                tag: named_tag.as_deref().map(tag).transpose()?,
                digest: r.digest.as_deref().map(digest).transpose()?,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct DockerHub {
    push_data: DockerHubPush,
    repository: DockerHubRepository,
}

#[derive(Deserialize)]
struct DockerHubPush {
    tag: String,
}

#[derive(Deserialize)]
struct DockerHubRepository {
    repo_name: String,
}

pub(super) fn dockerhub(body: &[u8]) -> Result<Vec<Event>, String> {
    let d: DockerHub =
        serde_json::from_slice(body).map_err(|e| format!("not a Docker Hub webhook: {e}"))?;
    // Official images are `library/NAME` on the wire.
    let name = match d.repository.repo_name.contains('/') {
        true => d.repository.repo_name.clone(),
        false => format!("library/{}", d.repository.repo_name),
    };
    Ok(vec![Event {
        id: None,
        action: Action::Push,
        host: "docker.io".into(),
        repository: repository(&name)?,
        tag: Some(tag(&d.push_data.tag)?),
        digest: None,
    }])
}

#[derive(Deserialize)]
struct GitHub {
    action: String,
    package: Option<GitHubPackage>,
    registry_package: Option<GitHubPackage>,
}

#[derive(Deserialize)]
struct GitHubPackage {
    package_type: String,
    package_version: GitHubVersion,
}

#[derive(Deserialize)]
struct GitHubVersion {
    package_url: String,
    container_metadata: Option<GitHubContainer>,
}

#[derive(Deserialize)]
struct GitHubContainer {
    tag: Option<GitHubTag>,
}

#[derive(Deserialize)]
struct GitHubTag {
    name: Option<String>,
    digest: Option<String>,
}

pub(super) fn github(kind: Option<&str>, body: &[u8]) -> Result<Vec<Event>, String> {
    match kind {
        Some("ping") => return Ok(Vec::new()),
        Some("package" | "registry_package") => {}
        Some(other) => {
            return Ok(vec![other_event(&format!(
                "GitHub event {}",
                other.escape_debug()
            ))]);
        }
        None => return Err("no X-GitHub-Event header".into()),
    }
    let g: GitHub =
        serde_json::from_slice(body).map_err(|e| format!("not a GitHub package event: {e}"))?;
    let p = g
        .package
        .or(g.registry_package)
        .ok_or("no package or registry_package")?;
    if !p.package_type.eq_ignore_ascii_case("container") && p.package_type != "docker" {
        return Ok(vec![other_event(&format!(
            "a {} package",
            p.package_type.escape_debug()
        ))]);
    }
    let (host, repository, url_tag) = split_reference(&p.package_version.package_url)?;
    let meta = p.package_version.container_metadata.and_then(|c| c.tag);
    let meta_tag = meta
        .as_ref()
        .and_then(|t| t.name.clone())
        .filter(|t| !t.is_empty());
    let action = match g.action.as_str() {
        "published" | "updated" => Action::Push,
        other => Action::Other(other.escape_debug().to_string()),
    };
    Ok(vec![Event {
        id: None,
        action,
        host,
        repository: repository.to_ascii_lowercase(),
        tag: match meta_tag {
            Some(t) => Some(tag(&t)?),
            None => url_tag,
        },
        digest: meta
            .and_then(|t| t.digest)
            .filter(|d| !d.is_empty())
            .as_deref()
            .map(digest)
            .transpose()?,
    }])
}

/// A body that announces nothing to copy (a ping, another package kind).
fn other_event(what: &str) -> Event {
    Event {
        id: None,
        action: Action::Other(what.to_string()),
        host: String::new(),
        repository: String::new(),
        tag: None,
        digest: None,
    }
}

#[derive(Deserialize)]
struct Quay {
    docker_url: String,
    updated_tags: Value,
}

pub(super) fn quay(body: &[u8]) -> Result<Vec<Event>, String> {
    let q: Quay =
        serde_json::from_slice(body).map_err(|e| format!("not a Quay repository push: {e}"))?;
    let (registry, repo, _) = split_reference(&q.docker_url)?;
    let tags: Vec<String> = match q.updated_tags {
        Value::Array(a) => a
            .iter()
            .map(|t| {
                t.as_str()
                    .ok_or("updated_tags holds a non-string")
                    .map(str::to_string)
            })
            .collect::<Result<_, _>>()?,
        Value::Object(o) => o.keys().cloned().collect(),
        _ => return Err("updated_tags is neither a list nor an object".into()),
    };
    if tags.len() > super::MAX_EVENTS {
        return Err(format!("{} updated tags in one push", tags.len()));
    }
    tags.iter()
        .map(|t| {
            Ok(Event {
                id: None,
                action: Action::Push,
                host: host(&registry)?,
                repository: repo.clone(),
                tag: Some(tag(t)?),
                digest: None,
            })
        })
        .collect()
}
