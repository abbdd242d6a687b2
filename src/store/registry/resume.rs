//! A blob GET that picks up where it broke: after a lost connection it
//! asks for `Range: bytes=N-` and continues only on a 206 whose
//! `Content-Range` starts exactly at N.
//!
//! Owns the splice rule. Never splices a 200 (a whole body again) or
//! another range: the stream then fails and the transfer starts over from
//! the source, whose bytes the caller verifies anyway.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::{Method, StatusCode};

use crate::store::{BlobStream, StoreError};
use crate::transport::error::redact_url;
use crate::transport::{Request, Transport, TransportError};

/// Reconnections of one blob GET before the whole transfer starts over.
const MAX_RESUMES: u32 = 3;

type Body = BoxStream<'static, Result<Bytes, TransportError>>;

struct State {
    t: Arc<Transport>,
    url: url::Url,
    scopes: Vec<String>,
    size: u64,
    got: u64,
    resumes: u32,
    inner: Body,
}

/// `first` is the body of the GET that answered 200 for `url`.
pub(super) fn resuming(
    t: Arc<Transport>,
    url: url::Url,
    scopes: Vec<String>,
    size: u64,
    first: Body,
) -> BlobStream {
    let state = State {
        t,
        url,
        scopes,
        size,
        got: 0,
        resumes: 0,
        inner: first,
    };
    futures::stream::try_unfold(state, |mut st| async move {
        loop {
            match st.inner.next().await {
                Some(Ok(b)) => {
                    st.got += b.len() as u64;
                    return Ok(Some((b, st)));
                }
                None => return Ok(None),
                Some(Err(TransportError::Network { .. }))
                    if st.resumes < MAX_RESUMES && st.got < st.size =>
                {
                    st.resumes += 1;
                    st.inner =
                        resume(&st.t, &st.url, &st.scopes, st.got, st.size, st.resumes).await?;
                }
                Some(Err(e)) => return Err(e.into()),
            }
        }
    })
    .boxed()
}

/// The rest of the body from `got`, or why it cannot be had.
async fn resume(
    t: &Transport,
    url: &url::Url,
    scopes: &[String],
    got: u64,
    size: u64,
    attempt: u32,
) -> Result<Body, StoreError> {
    tracing::info!(offset = got, attempt, "blob GET broke; resuming with Range");
    let req = Request::new(Method::GET, url.clone(), scopes.to_vec())
        .header(reqwest::header::RANGE, &format!("bytes={got}-"))
        .blob_body(size.saturating_sub(got));
    let resp = t.send(req).await?;
    let exact = resp
        .header("content-range")
        .is_some_and(|v| super::range::continues_at(v, got, size));
    if resp.status == StatusCode::PARTIAL_CONTENT && exact {
        return Ok(resp.into_stream());
    }
    Err(StoreError::Transport(TransportError::Network {
        method: Method::GET,
        url: redact_url(url),
        message: format!(
            "the connection broke after {} bytes and the registry did not resume it (answered {} {})",
            got,
            resp.status.as_u16(),
            resp.header("content-range")
                .unwrap_or("without Content-Range")
        ),
    }))
}
