//! Blob uploads to a registry: open a session (`POST /v2/REPO/blobs/uploads/`),
//! send the bytes, close it with `?digest=`.
//!
//! Owns upload strategies and session hygiene: a session we give up on is
//! DELETEd (best effort) so that nothing half-written lingers. Never reads a
//! source twice: a body that failed is the caller's to reopen.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use url::Url;

use super::DOCKER_CONTENT_DIGEST;
use crate::digest::Digest;
use crate::store::{Blob, BlobStream, StoreError};
use crate::transport::{Body, Request, Transport};

/// POST, then one PUT `?digest=` carrying the whole body with its length.
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
        None => open_session(t, repo, scopes).await?,
    };
    let mut put_url = session.clone();
    put_url
        .query_pairs_mut()
        .append_pair("digest", &blob.digest.to_string());

    // The body stream's own error is what the user needs to see (a lying or
    // broken source), not the HTTP client's "body error": keep it aside.
    let source_error: Arc<Mutex<Option<StoreError>>> = Arc::default();
    let slot = source_error.clone();
    let body = data.map(move |chunk| {
        chunk.map_err(|e| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(e);
            }
            std::io::Error::other("the blob source failed")
        })
    });
    let req = Request::new(Method::PUT, put_url, scopes.to_vec())
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, &blob.size.to_string())
        .body(Body::Stream(reqwest::Body::wrap_stream(body)));
    let result = t.send(req).await;
    let failed_source = source_error.lock().ok().and_then(|mut s| s.take());
    if let Some(e) = failed_source {
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
        return Err(err.into());
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
    let resp = t.send(req).await?;
    match resp.status {
        StatusCode::CREATED => {
            check_stated_digest(resp.header(DOCKER_CONTENT_DIGEST), &blob.digest)?;
            Ok(Mount::Mounted)
        }
        StatusCode::ACCEPTED => Ok(Mount::Refused(resp.location()?)),
        _ => Err(resp.into_error().await.into()),
    }
}

/// Starts an upload session and returns its URL.
async fn open_session(t: &Transport, repo: &str, scopes: &[String]) -> Result<Url, StoreError> {
    let url = t.url(&format!("/v2/{repo}/blobs/uploads/")).await;
    let req = Request::new(Method::POST, url, scopes.to_vec()).header(CONTENT_LENGTH, "0");
    let resp = t.send(req).await?;
    if resp.status != StatusCode::ACCEPTED {
        return Err(resp.into_error().await.into());
    }
    Ok(resp.location()?)
}

/// Abandons a session. Failure to cancel is logged, not raised: the
/// registry expires sessions on its own, and the real error is elsewhere.
async fn cancel(t: &Transport, session: Url, scopes: &[String]) {
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
