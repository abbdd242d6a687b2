//! What registries announce: the CNCF distribution registry's notification
//! envelopes and the push webhooks of Harbor, Docker Hub, GitHub Packages
//! and Quay, each read into the same [`Event`] (a registry, a repository, a
//! tag or a digest, and what happened).
//!
//! Owns the payloads' shapes, read strictly: the types each vendor
//! documents, a bounded number of events per body, repository names, tags
//! and digests validated before anything uses them. Never authenticates a
//! sender (the service does, before parsing) and never decides what to
//! copy (`trigger` does).

mod distribution;
mod webhooks;

use crate::digest::Digest;

/// Events one body may carry (distribution sends one per request).
pub const MAX_EVENTS: usize = 256;

/// Who sent a body, from the endpoint it came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sender {
    Distribution,
    Harbor,
    DockerHub,
    GitHub,
    Quay,
}

impl Sender {
    /// The name in `/v1/events/{name}`.
    pub fn from_path(name: &str) -> Option<Sender> {
        Some(match name {
            "distribution" => Sender::Distribution,
            "harbor" => Sender::Harbor,
            "dockerhub" => Sender::DockerHub,
            "github" => Sender::GitHub,
            "quay" => Sender::Quay,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Sender::Distribution => "distribution",
            Sender::Harbor => "harbor",
            Sender::DockerHub => "dockerhub",
            Sender::GitHub => "github",
            Sender::Quay => "quay",
        }
    }
}

/// What happened to a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A manifest was pushed (under `tag`, or by digest only).
    Push,
    /// A tag or manifest was deleted: never copied from.
    Delete,
    /// Anything else (a pull, a blob upload, a mount, a ping).
    Other(String),
}

/// One announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The sender's id for it, to drop a delivery sent twice.
    pub id: Option<String>,
    pub action: Action,
    /// The registry as the sender names it (`HOST[:PORT]`).
    pub host: String,
    /// The repository path (`team/app`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// A body that is not what its sender documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {sender} event: {why}")]
pub struct EventError {
    pub sender: &'static str,
    pub why: String,
}

/// The events in `body` from `sender`; `kind` is GitHub's `X-GitHub-Event`
/// header (the other senders say what happened in the body).
pub fn parse(sender: Sender, kind: Option<&str>, body: &[u8]) -> Result<Vec<Event>, EventError> {
    let bad = |why: String| EventError {
        sender: sender.name(),
        why,
    };
    let events = match sender {
        Sender::Distribution => distribution::parse(body),
        Sender::Harbor => webhooks::harbor(body),
        Sender::DockerHub => webhooks::dockerhub(body),
        Sender::GitHub => webhooks::github(kind, body),
        Sender::Quay => webhooks::quay(body),
    }
    .map_err(bad)?;
    if events.len() > MAX_EVENTS {
        return Err(bad(format!(
            "{} events in one body, more than {MAX_EVENTS}",
            events.len()
        )));
    }
    Ok(events)
}

/// A repository path as the distribution spec allows it (lower-case
/// components of `[a-z0-9]` joined by `.`, `_`, `__`, `-`, separated by
/// `/`), at most 255 characters.
fn repository(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 255
        && text.split('/').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        });
    match ok {
        true => Ok(text.to_string()),
        false => Err(format!(
            "{:?} is not a repository name",
            text.escape_debug().to_string()
        )),
    }
}

/// A tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
fn tag(text: &str) -> Result<String, String> {
    let ok = (1..=128).contains(&text.len())
        && text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    match ok {
        true => Ok(text.to_string()),
        false => Err(format!(
            "{:?} is not a tag",
            text.escape_debug().to_string()
        )),
    }
}

fn digest(text: &str) -> Result<Digest, String> {
    text.parse()
        .map_err(|e| format!("{:?} is not a digest: {e}", text.escape_debug().to_string()))
}

/// `HOST[:PORT]` as a sender writes it (no scheme, no path).
fn host(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 255
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    match ok {
        true => Ok(text.to_ascii_lowercase()),
        false => Err(format!(
            "{:?} is not a registry host",
            text.escape_debug().to_string()
        )),
    }
}

/// `HOST/REPO[:TAG]` (a reference without scheme) split into host,
/// repository and tag; a trailing `:` without tag (GitHub sends one) is
/// no tag.
fn split_reference(text: &str) -> Result<(String, String, Option<String>), String> {
    let text = text.trim_end_matches(':');
    let (host_part, rest) = text
        .split_once('/')
        .ok_or_else(|| format!("{:?} names no repository", text.escape_debug().to_string()))?;
    let (repo, tagged) = match rest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(tag(t)?)),
        _ => (rest, None),
    };
    let repo = repo.split('@').next().unwrap_or(repo);
    Ok((host(host_part)?, repository(repo)?, tagged))
}

#[cfg(test)]
mod tests;
