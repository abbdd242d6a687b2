//! The CNCF distribution registry's notifications (`notifications:` in its
//! config): an envelope `{"events": [...]}`, in 2.8 one event per request,
//! sent again with the same `id` until it is answered 2xx. A tag push is a
//! `push` of a manifest with `target.tag`; blob uploads, pulls and mounts
//! arrive too, and are not pushes of an image.

use serde::Deserialize;

use super::{Action, Event, digest, host, repository, tag};

#[derive(Deserialize)]
struct Envelope {
    events: Vec<Raw>,
}

#[derive(Deserialize)]
struct Raw {
    id: Option<String>,
    action: String,
    target: Target,
    request: Option<Request>,
    source: Option<Source>,
}

#[derive(Deserialize)]
struct Target {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    repository: String,
    digest: Option<String>,
    tag: Option<String>,
}

#[derive(Deserialize)]
struct Request {
    host: Option<String>,
}

#[derive(Deserialize)]
struct Source {
    addr: Option<String>,
}

/// Blobs are announced as `application/octet-stream`; manifests with
/// their own media type.
const BLOB: &str = "application/octet-stream";

pub(super) fn parse(body: &[u8]) -> Result<Vec<Event>, String> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| format!("not a notification envelope: {e}"))?;
    if envelope.events.len() > super::MAX_EVENTS {
        return Err(format!("{} events in one envelope", envelope.events.len()));
    }
    envelope.events.into_iter().map(event).collect()
}

fn event(raw: Raw) -> Result<Event, String> {
    // The registry as its client reached it (`request.host`), else as it
    // calls itself.
    let named = raw
        .request
        .and_then(|r| r.host)
        .or_else(|| raw.source.and_then(|s| s.addr))
        .ok_or("an event without request.host or source.addr")?;
    let is_blob = raw.target.media_type.as_deref() == Some(BLOB);
    let action = match raw.action.as_str() {
        "push" if !is_blob => Action::Push,
        "delete" => Action::Delete,
        "push" => Action::Other("push of a blob".into()),
        other => Action::Other(other.escape_debug().to_string()),
    };
    Ok(Event {
        id: raw.id,
        action,
        host: host(&named)?,
        repository: repository(&raw.target.repository)?,
        tag: raw.target.tag.as_deref().map(tag).transpose()?,
        digest: raw.target.digest.as_deref().map(digest).transpose()?,
    })
}
