//! Blob uploads to a registry: open a session (`POST /v2/REPO/blobs/uploads/`),
//! send the bytes, close it with `?digest=`.
//!
//! Owns the upload strategies: monolithic (one PUT with the body; the
//! default), single POST (`POST ?digest=` with the body, where a registry
//! takes it), and chunked (PATCHes, resumed from the session's `Range`
//! after a fault, then a bodiless PUT). Also session hygiene: a session we
//! give up on is DELETEd (best effort). Never reads a source twice: a body
//! that cannot continue is the caller's to reopen (a `Resend` error).

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use url::Url;

use super::DOCKER_CONTENT_DIGEST;
use super::errors::sorted;
use super::range::received;
use crate::digest::Digest;
use crate::store::{Blob, BlobStream, StoreError};
use crate::transport::retry::{RetryPolicy, Verdict, classify_status};
use crate::transport::{Body, Request, Transport, TransportError};

/// How blobs are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UploadMode {
    /// Monolithic, switching to chunked for the run once a registry refuses
    /// a monolithic PUT for its size (413).
    #[default]
    Auto,
    Monolithic,
    SinglePost,
    Chunked,
}

/// The chunk size unless told otherwise.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 * 1024 * 1024;
/// Times a chunk is resynchronised and resent before the upload gives up.
const CHUNK_ATTEMPTS: u32 = 4;
/// The largest chunk we hold in memory, whatever a registry's
/// `OCI-Chunk-Min-Length` asks: a registry demanding more gets chunks of
/// this size (and may refuse them) rather than a whole layer in memory.
pub const MAX_CHUNK_SIZE: u64 = 128 * 1024 * 1024;

/// The upload cannot continue where it is; the caller reopens the source.
pub(super) fn resend(t: &Transport, method: Method, why: &str) -> StoreError {
    StoreError::Transport(TransportError::Resend {
        method,
        url: format!("blob upload to {}", t.registry()),
        why: why.to_string(),
    })
}

/// Collects the source stream's own error (a lying or broken source is what
/// the user needs to hear about, not the HTTP client's "body error").
#[derive(Clone, Default)]
struct SourceError(Arc<Mutex<Option<StoreError>>>);

impl SourceError {
    fn set(&self, e: StoreError) {
        if let Ok(mut s) = self.0.lock() {
            *s = Some(e);
        }
    }

    fn take(&self) -> Option<StoreError> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

fn body_of(t: &Transport, data: BlobStream, errors: &SourceError) -> reqwest::Body {
    let slot = errors.clone();
    t.paced_body(data.map(move |chunk| {
        chunk.map_err(|e| {
            slot.set(e);
            std::io::Error::other("the blob source failed")
        })
    }))
}

/// POST, then one PUT `?digest=` carrying the whole body with its length.
/// A 413 (too large for one request) comes back as that status.
pub(super) async fn monolithic(
    t: &Transport,
    repo: &str,
    scopes: &[String],
    blob: &Blob,
    data: BlobStream,
    session: Option<Url>,
) -> Result<(), StoreError> {
    let session = match session {
        Some(s) => s,
        None => open_session(t, repo, scopes).await?.0,
    };
    let mut put_url = session.clone();
    put_url
        .query_pairs_mut()
        .append_pair("digest", &blob.digest.to_string());
    let errors = SourceError::default();
    let req = Request::new(Method::PUT, put_url, scopes.to_vec())
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, &blob.size.to_string())
        .blob_body(blob.size)
        .body(Body::Stream(body_of(t, data, &errors)));
    let result = t.send(req).await;
    finish(t, session, scopes, blob, result, &errors).await
}

/// `POST ?digest=` with the whole body: one request where the registry
/// supports it (201). A 202 means it opened a session and ignored the body:
/// `Ok(false)`, the session is cancelled and the caller reopens the source.
pub(super) async fn single_post(
    t: &Transport,
    repo: &str,
    scopes: &[String],
    blob: &Blob,
    data: BlobStream,
) -> Result<bool, StoreError> {
    let mut url = t.url(&format!("/v2/{repo}/blobs/uploads/")).await;
    url.query_pairs_mut()
        .append_pair("digest", &blob.digest.to_string());
    let errors = SourceError::default();
    let req = Request::new(Method::POST, url, scopes.to_vec())
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, &blob.size.to_string())
        .blob_body(blob.size)
        .body(Body::Stream(body_of(t, data, &errors)));
    let result = t.send(req).await;
    if let Some(e) = errors.take() {
        return Err(e);
    }
    let resp = result?;
    match resp.status {
        StatusCode::CREATED => {
            check_stated_digest(resp.header(DOCKER_CONTENT_DIGEST), &blob.digest)?;
            Ok(true)
        }
        StatusCode::ACCEPTED => {
            if let Ok(session) = resp.location() {
                cancel(t, session, scopes).await;
            }
            Ok(false)
        }
        _ => Err(sorted(resp.into_error().await)),
    }
}

/// POST, PATCHes of `chunk_size` bytes (or the registry's
/// `OCI-Chunk-Min-Length`, if larger) with `Content-Range`, then a
/// bodiless PUT `?digest=`. A PATCH that breaks is resumed from the range
/// the session reports; memory holds one chunk at most.
pub(super) async fn chunked(
    t: &Transport,
    repo: &str,
    scopes: &[String],
    blob: &Blob,
    mut data: BlobStream,
    session: Option<Url>,
    chunk_size: u64,
) -> Result<(), StoreError> {
    let (mut session, min_chunk) = match session {
        Some(s) => (s, 0),
        None => open_session(t, repo, scopes).await?,
    };
    let chunk = chunk_len(chunk_size, min_chunk);
    let mut offset: u64 = 0;
    // Source chunks rarely align with ours: what overshoots one PATCH starts
    // the next, so every PATCH but the last is exactly `chunk` bytes.
    let mut carry = BytesMut::new();
    let mut source_done = false;
    loop {
        while carry.len() < chunk && !source_done {
            match data.next().await {
                Some(Ok(bytes)) => carry.extend_from_slice(&bytes),
                Some(Err(e)) => {
                    cancel(t, session, scopes).await;
                    return Err(e);
                }
                None => source_done = true,
            }
        }
        if carry.is_empty() {
            break;
        }
        let take = carry.len().min(chunk);
        let piece = carry.split_to(take).freeze();
        match send_chunk(t, scopes, &session, offset, piece).await {
            Ok(next) => {
                session = next;
                offset += take as u64;
            }
            Err(e) => {
                cancel(t, session, scopes).await;
                return Err(e);
            }
        }
    }
    let mut put_url = session.clone();
    put_url
        .query_pairs_mut()
        .append_pair("digest", &blob.digest.to_string());
    let req = Request::new(Method::PUT, put_url, scopes.to_vec()).header(CONTENT_LENGTH, "0");
    let result = t.send(req).await;
    finish(t, session, scopes, blob, result, &SourceError::default()).await
}

/// The chunk a PATCH carries: ours, or the registry's minimum if larger,
/// never more than [`MAX_CHUNK_SIZE`] in memory.
fn chunk_len(chunk_size: u64, min_chunk: u64) -> usize {
    chunk_size.max(min_chunk).clamp(1, MAX_CHUNK_SIZE) as usize
}

/// Sends one chunk at `offset`, resynchronising with the session after a
/// broken connection or a 416. Returns the session's next URL.
async fn send_chunk(
    t: &Transport,
    scopes: &[String],
    session: &Url,
    offset: u64,
    piece: Bytes,
) -> Result<Url, StoreError> {
    let mut session = session.clone();
    let mut start = offset;
    let end = offset + piece.len() as u64; // exclusive
    // Debian's distribution 2.8 reports `Range: 0-0` for 0 and for 1 byte
    // received; we first read it as 0 and let a 416 say otherwise.
    let mut zero_means_one = false;
    for _ in 0..CHUNK_ATTEMPTS {
        let body = piece.slice((start - offset) as usize..);
        let req = Request::new(Method::PATCH, session.clone(), scopes.to_vec())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, &body.len().to_string())
            .header(
                reqwest::header::CONTENT_RANGE,
                &format!("{start}-{}", end.saturating_sub(1)),
            )
            .blob_body(body.len() as u64)
            .body(Body::Bytes(body))
            .no_retry();
        let resynced = match t.send(req).await {
            Ok(resp)
                if resp.status == StatusCode::ACCEPTED || resp.status == StatusCode::NO_CONTENT =>
            {
                return Ok(resp.location().unwrap_or(session));
            }
            Ok(resp) if resp.status == StatusCode::RANGE_NOT_SATISFIABLE => {
                if let Ok(next) = resp.location() {
                    session = next;
                }
                let range = resp.header("range").map(str::to_string);
                if range.as_deref() == Some("0-0") && !zero_means_one {
                    zero_means_one = true;
                    Some(1)
                } else {
                    range.as_deref().and_then(received)
                }
            }
            Ok(resp) if resp.status == StatusCode::NOT_FOUND => {
                // The session expired: what came before this chunk is gone.
                return Err(resend(t, Method::PATCH, "upload session expired"));
            }
            Ok(resp) if classify_status(resp.status) == Verdict::Retry => {
                // A transient answer: the registry may hold part of the chunk or
                // none of it; the session says which.
                let wait = RetryPolicy::default()
                    .delay(1, Some(&resp.headers))
                    .unwrap_or_default();
                tokio::time::sleep(wait).await;
                let (next, got) = status(t, scopes, &session).await?;
                session = next;
                got
            }
            Ok(resp) => return Err(sorted(resp.into_error().await)),
            Err(TransportError::Network { .. }) => {
                let (next, got) = status(t, scopes, &session).await?;
                session = next;
                got
            }
            Err(e) => return Err(e.into()),
        };
        match resynced {
            Some(got) if got >= end => return Ok(session),
            Some(got) if got >= offset => start = got,
            _ => {
                return Err(resend(
                    t,
                    Method::PATCH,
                    "upload session lost bytes before this chunk",
                ));
            }
        }
    }
    Err(resend(t, Method::PATCH, "chunk could not be delivered"))
}

/// `GET` on the session: how many bytes it holds, and its next URL.
async fn status(
    t: &Transport,
    scopes: &[String],
    session: &Url,
) -> Result<(Url, Option<u64>), StoreError> {
    let resp = t
        .send(Request::new(Method::GET, session.clone(), scopes.to_vec()))
        .await?;
    match resp.status {
        StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::ACCEPTED => {
            let got = resp.header("range").and_then(received);
            Ok((resp.location().unwrap_or_else(|_| session.clone()), got))
        }
        StatusCode::NOT_FOUND => Err(resend(t, Method::PATCH, "upload session expired")),
        _ => Err(sorted(resp.into_error().await)),
    }
}

/// Starts an upload session; returns its URL and the registry's minimum
/// chunk length (`OCI-Chunk-Min-Length`, 0 when absent).
async fn open_session(
    t: &Transport,
    repo: &str,
    scopes: &[String],
) -> Result<(Url, u64), StoreError> {
    let url = t.url(&format!("/v2/{repo}/blobs/uploads/")).await;
    let req = Request::new(Method::POST, url, scopes.to_vec()).header(CONTENT_LENGTH, "0");
    let resp = t.send(req).await.map_err(sorted)?;
    if resp.status != StatusCode::ACCEPTED {
        return Err(sorted(resp.into_error().await));
    }
    let min = resp
        .header("oci-chunk-min-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((resp.location()?, min))
}

/// The closing answer of an upload: 201 and the right digest, else the
/// session is cancelled and the error returned.
async fn finish(
    t: &Transport,
    session: Url,
    scopes: &[String],
    blob: &Blob,
    result: Result<crate::transport::Response, TransportError>,
    errors: &SourceError,
) -> Result<(), StoreError> {
    if let Some(e) = errors.take() {
        cancel(t, session, scopes).await;
        return Err(e);
    }
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            cancel(t, session, scopes).await;
            return Err(e.into());
        }
    };
    if resp.status != StatusCode::CREATED {
        let err = resp.into_error().await;
        cancel(t, session, scopes).await;
        return Err(sorted(err));
    }
    check_stated_digest(resp.header(DOCKER_CONTENT_DIGEST), &blob.digest)
}

/// What a mount request did.
pub(super) enum Mount {
    Mounted,
    /// Refused; the registry opened this upload session instead.
    Refused(Url),
}

/// `POST /v2/REPO/blobs/uploads/?mount=DIGEST&from=OTHER`: 201 is a mount,
/// 202 a refusal that opens an upload session.
pub(super) async fn mount(
    t: &Transport,
    repo: &str,
    from: &str,
    scopes: &[String],
    blob: &Blob,
) -> Result<Mount, StoreError> {
    let mut url = t.url(&format!("/v2/{repo}/blobs/uploads/")).await;
    url.query_pairs_mut()
        .append_pair("mount", &blob.digest.to_string())
        .append_pair("from", from);
    let req = Request::new(Method::POST, url, scopes.to_vec()).header(CONTENT_LENGTH, "0");
    let resp = t.send(req).await.map_err(sorted)?;
    match resp.status {
        StatusCode::CREATED => {
            check_stated_digest(resp.header(DOCKER_CONTENT_DIGEST), &blob.digest)?;
            Ok(Mount::Mounted)
        }
        StatusCode::ACCEPTED => Ok(Mount::Refused(resp.location()?)),
        _ => Err(sorted(resp.into_error().await)),
    }
}

/// Abandons a session. Failure to cancel is logged, not raised: the
/// registry expires sessions on its own, and the real error is elsewhere.
pub(super) async fn cancel(t: &Transport, session: Url, scopes: &[String]) {
    let req = Request::new(Method::DELETE, session, scopes.to_vec());
    match t.send(req).await {
        Ok(r) if r.status.is_success() || r.status == StatusCode::NOT_FOUND => {}
        Ok(r) => tracing::debug!(status = r.status.as_u16(), "upload session DELETE refused"),
        Err(e) => tracing::debug!("upload session DELETE failed: {e}"),
    }
}

fn check_stated_digest(stated: Option<&str>, expected: &Digest) -> Result<(), StoreError> {
    match stated.map(str::parse::<Digest>) {
        Some(Ok(d)) if d.algorithm() == expected.algorithm() && &d != expected => {
            Err(StoreError::DigestMismatch {
                what: "blob after upload".to_string(),
                expected: expected.clone(),
                actual: d,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_minimum_chunk_is_capped() {
        assert_eq!(chunk_len(16 << 20, 0), 16 << 20);
        assert_eq!(chunk_len(16 << 20, 64 << 20), 64 << 20);
        assert_eq!(chunk_len(16 << 20, 1 << 40), MAX_CHUNK_SIZE as usize);
        assert_eq!(chunk_len(0, 0), 1);
    }
}
