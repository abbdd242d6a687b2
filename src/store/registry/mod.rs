//! [`RegistryStore`]: the distribution API (`/v2/...`) behind the [`Store`]
//! trait.
//!
//! Owns URL paths, the meaning of each status code per endpoint, manifest
//! verification on read, and token scopes per request. Never speaks HTTP
//! itself (the [`Transport`] does) and never decides what to copy.

pub mod upload;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

pub use upload::UploadMode;

use super::{Blob, BlobStream, ManifestRef, Store, StoreError, check_manifest_digest};
use crate::digest::{Algorithm, Digest};
use crate::manifest::{MAX_MANIFEST_SIZE, RawManifest};
use crate::media::MediaType;
use crate::transport::auth::repository_scope;
use crate::transport::{Body, Request, Transport};

/// Pages of a tag list we follow before calling it endless.
pub const MAX_TAG_PAGES: usize = 10_000;
/// The most of one tag-list page we read.
const MAX_TAG_PAGE_BYTES: u64 = 4 * 1024 * 1024;

/// The header registries use to state a manifest's or blob's digest.
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// One registry, reached through one transport.
pub struct RegistryStore {
    transport: Arc<Transport>,
    /// A copy target: every request asks for `pull,push`, so one token
    /// serves the HEADs, the uploads and the manifest PUTs alike.
    write: bool,
    /// `Accept` lists index types first.
    prefer_index: bool,
    page_size: Option<u32>,
    max_manifest_size: u64,
    upload_mode: UploadMode,
    chunk_size: u64,
    /// Learned during the run: the registry ignores single POSTs.
    single_post_refused: AtomicBool,
    /// Learned during the run: monolithic PUTs are too large for it (413).
    monolithic_refused: AtomicBool,
    /// Upload sessions a refused mount opened, for the upload that follows.
    open_sessions: Mutex<HashMap<(String, Digest), url::Url>>,
}

impl RegistryStore {
    /// `write`: this store is a copy target.
    pub fn new(transport: Transport, write: bool) -> RegistryStore {
        RegistryStore {
            transport: Arc::new(transport),
            write,
            prefer_index: false,
            page_size: None,
            max_manifest_size: MAX_MANIFEST_SIZE,
            upload_mode: UploadMode::default(),
            chunk_size: upload::DEFAULT_CHUNK_SIZE,
            single_post_refused: AtomicBool::new(false),
            monolithic_refused: AtomicBool::new(false),
            open_sessions: Mutex::default(),
        }
    }

    /// The largest manifest read (see [`MAX_MANIFEST_SIZE`]).
    pub fn max_manifest_size(mut self, n: u64) -> RegistryStore {
        self.max_manifest_size = n;
        self
    }

    /// How blobs are uploaded, and the chunk size for chunked uploads.
    pub fn upload(mut self, mode: UploadMode, chunk_size: u64) -> RegistryStore {
        self.upload_mode = mode;
        self.chunk_size = chunk_size.max(1);
        self
    }

    /// Tags per page asked of the registry (`n=`); `None` lets it choose.
    pub fn page_size(mut self, n: Option<u32>) -> RegistryStore {
        self.page_size = n;
        self
    }

    /// Ask for indexes first (`--mode prefer-index`).
    pub fn prefer_index(mut self, yes: bool) -> RegistryStore {
        self.prefer_index = yes;
        self
    }

    fn accept(&self) -> &'static str {
        MediaType::accept(self.prefer_index)
    }

    /// Scopes for reading: `pull`, or `pull,push` on a target (see `write`).
    fn pull(&self, repo: &str) -> Vec<String> {
        let actions = if self.write { "pull,push" } else { "pull" };
        vec![repository_scope(repo, actions)]
    }

    fn push(repo: &str) -> Vec<String> {
        vec![repository_scope(repo, "pull,push")]
    }

    async fn manifest_url(&self, repo: &str, r: &ManifestRef) -> url::Url {
        self.transport
            .url(&format!("/v2/{repo}/manifests/{r}"))
            .await
    }

    fn what(&self, repo: &str, r: &ManifestRef) -> String {
        let sep = match r {
            ManifestRef::Tag(_) => ':',
            ManifestRef::Digest(_) => '@',
        };
        format!("manifest {}/{repo}{sep}{r}", self.transport.registry())
    }
}

#[async_trait]
impl Store for RegistryStore {
    fn describe(&self) -> String {
        format!("registry {}", self.transport.registry())
    }

    fn identity(&self) -> String {
        format!("registry {}", self.transport.registry())
    }

    async fn manifest_head(
        &self,
        repo: &str,
        r: &ManifestRef,
    ) -> Result<Option<Digest>, StoreError> {
        let url = self.manifest_url(repo, r).await;
        let req = Request::new(Method::HEAD, url, self.pull(repo)).header(ACCEPT, self.accept());
        let resp = self.transport.send(req).await?;
        match resp.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(resp.into_error().await.into()),
        }
        if let ManifestRef::Digest(d) = r {
            return Ok(Some(d.clone()));
        }
        match resp.header(DOCKER_CONTENT_DIGEST).map(str::parse::<Digest>) {
            Some(Ok(d)) => Ok(Some(d)),
            // Without a digest header HEAD cannot answer; read the manifest.
            _ => Ok(Some(self.manifest_get(repo, r).await?.digest)),
        }
    }

    async fn manifest_get(&self, repo: &str, r: &ManifestRef) -> Result<RawManifest, StoreError> {
        let what = self.what(repo, r);
        let url = self.manifest_url(repo, r).await;
        let req = Request::new(Method::GET, url, self.pull(repo)).header(ACCEPT, self.accept());
        let resp = self.transport.send(req).await?;
        match resp.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(StoreError::NotFound { what }),
            _ => return Err(resp.into_error().await.into()),
        }
        let content_type = resp.header(CONTENT_TYPE.as_str()).map(str::to_string);
        let stated = resp.header(DOCKER_CONTENT_DIGEST).map(str::to_string);
        let limit = self.max_manifest_size;
        let bytes = resp.bytes_capped(limit).await.map_err(|e| match e {
            crate::transport::TransportError::TooLarge { .. } => StoreError::TooLarge {
                what: what.clone(),
                limit,
            },
            other => other.into(),
        })?;
        let algorithm = match r {
            ManifestRef::Digest(d) => d.algorithm(),
            ManifestRef::Tag(_) => Algorithm::Sha256,
        };
        let m = RawManifest::from_body(bytes, content_type.as_deref(), algorithm).map_err(
            |source| StoreError::Manifest {
                what: what.clone(),
                source,
            },
        )?;
        match r {
            ManifestRef::Digest(d) => check_manifest_digest(&what, &m, d)?,
            ManifestRef::Tag(_) => {
                if let Some(stated) = stated {
                    let stated = stated.parse::<Digest>().map_err(|e| {
                        StoreError::Protocol(format!("{what}: invalid Docker-Content-Digest: {e}"))
                    })?;
                    check_manifest_digest(&what, &m, &stated)?;
                }
            }
        }
        Ok(m)
    }

    async fn manifest_put(
        &self,
        repo: &str,
        r: &ManifestRef,
        m: &RawManifest,
    ) -> Result<(), StoreError> {
        let url = self.manifest_url(repo, r).await;
        let mut req = Request::new(Method::PUT, url, Self::push(repo))
            .header(CONTENT_TYPE, m.media_type.as_str())
            .body(Body::Bytes(m.bytes.clone()));
        if m.media_type.kind() == crate::media::Kind::Schema1 {
            // Debian's distribution 2.8 refuses schema1 with a 500: final, not transient.
            req = req.no_retry();
        }
        let resp = self.transport.send(req).await?;
        if resp.status != StatusCode::CREATED && resp.status != StatusCode::OK {
            return Err(resp.into_error().await.into());
        }
        // A registry that stores something else than what we sent would change
        // the digest; it must say the one we computed.
        if let Some(Ok(stated)) = resp.header(DOCKER_CONTENT_DIGEST).map(str::parse::<Digest>)
            && stated.algorithm() == m.digest.algorithm()
            && stated != m.digest
        {
            return Err(StoreError::DigestMismatch {
                what: format!("{} after PUT", self.what(repo, r)),
                expected: m.digest.clone(),
                actual: stated,
            });
        }
        Ok(())
    }

    async fn tags(&self, repo: &str) -> Result<Vec<String>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut url = self.transport.url(&format!("/v2/{repo}/tags/list")).await;
        if let Some(n) = self.page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let mut tags = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let resp = self
                .transport
                .send(Request::new(Method::GET, url.clone(), self.pull(repo)))
                .await?;
            if resp.status == StatusCode::NOT_FOUND {
                return Err(StoreError::NotFound {
                    what: format!("repository {}/{repo}", self.transport.registry()),
                });
            }
            if resp.status != StatusCode::OK {
                return Err(resp.into_error().await.into());
            }
            let next = match resp.header("link") {
                Some(link) => Some(next_page(&resp.url, link)?),
                None => None,
            };
            let body = resp.bytes_capped(MAX_TAG_PAGE_BYTES).await?;
            let page: Page = serde_json::from_slice(&body)
                .map_err(|e| StoreError::Protocol(format!("tag list of {repo}: {e}")))?;
            for t in page.tags.unwrap_or_default() {
                crate::reference::validate_tag(&t, &t)
                    .map_err(|e| StoreError::Protocol(format!("tag list of {repo}: {e}")))?;
                tags.push(t);
            }
            match next {
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
        Err(StoreError::Protocol(format!(
            "tag list of {repo} goes on past {MAX_TAG_PAGES} pages"
        )))
    }

    async fn blob_head(&self, repo: &str, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let url = self
            .transport
            .url(&format!("/v2/{repo}/blobs/{digest}"))
            .await;
        let resp = self
            .transport
            .send(Request::new(Method::HEAD, url, self.pull(repo)))
            .await?;
        match resp.status {
            StatusCode::OK => Ok(Some(
                resp.header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(resp.into_error().await.into()),
        }
    }

    async fn blob_get_url(&self, url: &str, blob: &Blob) -> Result<BlobStream, StoreError> {
        let parsed = url::Url::parse(url).map_err(|_| {
            StoreError::Protocol(format!("foreign layer {}: a URL is not valid", blob.digest))
        })?;
        crate::transport::policy::check_hop(&self.transport.base().await, &parsed).map_err(
            |why| {
                StoreError::Transport(crate::transport::TransportError::Refused {
                    url: crate::transport::error::redact_url(&parsed),
                    why,
                })
            },
        )?;
        let resp = self
            .transport
            .send(Request::new(Method::GET, parsed, Vec::new()).anonymous())
            .await?;
        match resp.status {
            StatusCode::OK => Ok(resp
                .into_stream()
                .map(|r| r.map_err(StoreError::from))
                .boxed()),
            _ => Err(StoreError::NotFound {
                what: format!(
                    "foreign layer {} at its URL ({})",
                    blob.digest,
                    resp.status.as_u16()
                ),
            }),
        }
    }

    async fn blob_get(&self, repo: &str, blob: &Blob) -> Result<BlobStream, StoreError> {
        let url = self
            .transport
            .url(&format!("/v2/{repo}/blobs/{}", blob.digest))
            .await;
        let scopes = self.pull(repo);
        let resp = self
            .transport
            .send(Request::new(Method::GET, url.clone(), scopes.clone()))
            .await?;
        match resp.status {
            StatusCode::OK => Ok(resuming(
                self.transport.clone(),
                url,
                scopes,
                blob.size,
                resp.into_stream(),
            )),
            StatusCode::NOT_FOUND => Err(StoreError::NotFound {
                what: format!(
                    "blob {} in {}/{repo}",
                    blob.digest,
                    self.transport.registry()
                ),
            }),
            _ => Err(resp.into_error().await.into()),
        }
    }

    async fn blob_mount(&self, repo: &str, from: &str, blob: &Blob) -> Result<bool, StoreError> {
        let scopes = vec![
            repository_scope(repo, "pull,push"),
            repository_scope(from, "pull"),
        ];
        match upload::mount(&self.transport, repo, from, &scopes, blob).await? {
            upload::Mount::Mounted => Ok(true),
            upload::Mount::Refused(session) => {
                // The registry opened an upload session instead: the upload uses it.
                if let Ok(mut open) = self.open_sessions.lock() {
                    open.insert((repo.to_string(), blob.digest.clone()), session);
                }
                Ok(false)
            }
        }
    }

    async fn blob_put(&self, repo: &str, blob: &Blob, data: BlobStream) -> Result<(), StoreError> {
        let session = self
            .open_sessions
            .lock()
            .ok()
            .and_then(|mut open| open.remove(&(repo.to_string(), blob.digest.clone())));
        let (t, scopes) = (&self.transport, Self::push(repo));
        let chunk = self.chunk_size;
        match self.upload_mode {
            UploadMode::Chunked => {
                upload::chunked(t, repo, &scopes, blob, data, session, chunk).await
            }
            UploadMode::Auto if self.monolithic_refused.load(Ordering::Relaxed) => {
                upload::chunked(t, repo, &scopes, blob, data, session, chunk).await
            }
            UploadMode::SinglePost
                if !self.single_post_refused.load(Ordering::Relaxed) && session.is_none() =>
            {
                if upload::single_post(t, repo, &scopes, blob, data).await? {
                    return Ok(());
                }
                // Debian's distribution 2.8 answers 202 and drops the body: remember,
                // and let the caller reopen the source for a monolithic upload.
                self.single_post_refused.store(true, Ordering::Relaxed);
                Err(upload::resend(
                    t,
                    Method::POST,
                    "the registry ignored a single-POST upload",
                ))
            }
            _ => {
                let result = upload::monolithic(t, repo, &scopes, blob, data, session).await;
                if self.upload_mode == UploadMode::Auto
                    && let Err(StoreError::Transport(e)) = &result
                    && e.status() == Some(StatusCode::PAYLOAD_TOO_LARGE)
                {
                    // Too large for one request: chunked from now on; the caller
                    // reopens the source.
                    self.monolithic_refused.store(true, Ordering::Relaxed);
                    return Err(upload::resend(
                        t,
                        Method::PUT,
                        "413 for one request, switching to chunked uploads",
                    ));
                }
                result
            }
        }
    }
}

/// Reconnections of one blob GET before the whole transfer starts over.
const MAX_RESUMES: u32 = 3;

/// A blob body that picks up where it broke: after a lost connection it asks
/// for `Range: bytes=N-` and continues only on a 206 whose `Content-Range`
/// starts exactly at N (a 200, or another range, is never spliced in; the
/// transfer then starts over from 0).
fn resuming(
    t: Arc<Transport>,
    url: url::Url,
    scopes: Vec<String>,
    size: u64,
    first: futures::stream::BoxStream<
        'static,
        Result<bytes::Bytes, crate::transport::TransportError>,
    >,
) -> BlobStream {
    struct St {
        t: Arc<Transport>,
        url: url::Url,
        scopes: Vec<String>,
        size: u64,
        got: u64,
        resumes: u32,
        inner: futures::stream::BoxStream<
            'static,
            Result<bytes::Bytes, crate::transport::TransportError>,
        >,
    }
    let state = St {
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
                Some(Err(crate::transport::TransportError::Network { .. }))
                    if st.resumes < MAX_RESUMES && st.got < st.size =>
                {
                    st.resumes += 1;
                    tracing::info!(offset = st.got, attempt = st.resumes, "blob GET broke; resuming with Range");
                    let req = Request::new(Method::GET, st.url.clone(), st.scopes.clone())
                        .header(reqwest::header::RANGE, &format!("bytes={}-", st.got));
                    let resp = st.t.send(req).await?;
                    let want = format!("bytes {}-{}/", st.got, st.size.saturating_sub(1));
                    let exact = resp
                        .header("content-range")
                        .is_some_and(|v| v.trim().starts_with(&want));
                    if resp.status == StatusCode::PARTIAL_CONTENT && exact {
                        st.inner = resp.into_stream();
                        continue;
                    }
                    return Err(StoreError::Transport(crate::transport::TransportError::Network {
                        method: Method::GET,
                        url: crate::transport::error::redact_url(&st.url),
                        message: format!(
                            "the connection broke after {} bytes and the registry did not resume it (answered {} {})",
                            st.got,
                            resp.status.as_u16(),
                            resp.header("content-range").unwrap_or("without Content-Range")
                        ),
                    }));
                }
                Some(Err(e)) => return Err(e.into()),
            }
        }
    })
    .boxed()
}

/// The `rel="next"` target of a `Link` header, resolved against the page
/// that sent it. Only the same origin is followed (a registry must not send
/// our token elsewhere through pagination).
fn next_page(current: &url::Url, link: &str) -> Result<url::Url, StoreError> {
    let target = link
        .split(',')
        .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
        .and_then(|part| part.split_once('<'))
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(u, _)| u.trim())
        .ok_or_else(|| StoreError::Protocol("tag list: unreadable Link header".into()))?;
    let next = current
        .join(target)
        .map_err(|_| StoreError::Protocol("tag list: invalid Link target".into()))?;
    if next.origin() != current.origin() {
        return Err(StoreError::Transport(
            crate::transport::TransportError::Refused {
                url: crate::transport::error::redact_url(&next),
                why: "tag list Link to another origin".into(),
            },
        ));
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_pagination_same_origin_only() {
        let cur = url::Url::parse("http://r:5000/v2/a/tags/list?n=2").unwrap();
        let n = next_page(&cur, r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).unwrap();
        assert_eq!(n.as_str(), "http://r:5000/v2/a/tags/list?n=2&last=b");
        assert!(next_page(&cur, r#"<http://r:5000/v2/a/tags/list?last=c>; rel="next""#).is_ok());
        assert!(next_page(&cur, r#"<http://evil:5000/v2/a/tags/list>; rel="next""#).is_err());
        assert!(next_page(&cur, r#"<http://r:5001/v2/a/tags/list>; rel="next""#).is_err());
        assert!(next_page(&cur, "garbage").is_err());
    }
}
