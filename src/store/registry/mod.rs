//! The distribution API (`/v2/...`) behind the [`Store`] trait:
//! [`Registry`] is one registry reached one way (its transport and what the
//! run learned about it); [`RegistryStore`] is one repository on it.
//!
//! Owns URL paths, the meaning of each status per endpoint (sorted into
//! kinds by `errors`), manifest verification on read, and token scopes per
//! request. Never speaks HTTP itself (the [`Transport`] does) and never
//! decides what to copy.

pub mod discovery;
mod errors;
mod mounts;
pub mod range;
mod resume;
mod tags;
pub mod upload;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

pub use tags::{MAX_LISTING_BYTES, MAX_PAGES};
pub use upload::UploadMode;

use super::{Access, Blob, BlobStream, Location, Lookup, Store, StoreError, check_manifest_digest};
use crate::digest::{Algorithm, Digest};
use crate::manifest::RawManifest;
use crate::manifest::referrers::Listed;
use crate::media::MediaType;
use crate::reference::ManifestRef;
use crate::transport::auth::repository_scope;
use crate::transport::stats::Stats;
use crate::transport::{Body, Request, Transport, TransportError};
use errors::{rejected_manifest, sorted};

/// The header registries use to state a manifest's or blob's digest.
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// One registry, reached through one transport, shared by every
/// repository a run touches on it.
pub struct Registry {
    transport: Arc<Transport>,
    /// Learned during the run: the registry ignores single POSTs.
    single_post_refused: AtomicBool,
    /// Learned during the run: monolithic PUTs are too large for it (413).
    monolithic_refused: AtomicBool,
    /// Upload sessions a refused mount opened, for the upload that follows.
    open_sessions: Mutex<HashMap<(String, Digest), url::Url>>,
    /// Learned during the run: a mount from the repository itself answers
    /// whether it holds a blob (see `mounts`).
    self_mount: mounts::SelfMount,
    /// Blob bytes read from this registry (what read mirrors save the
    /// origin is told from these).
    blob_bytes_read: Arc<AtomicU64>,
}

impl Registry {
    pub fn new(transport: Transport) -> Registry {
        Registry {
            transport: Arc::new(transport),
            single_post_refused: AtomicBool::new(false),
            monolithic_refused: AtomicBool::new(false),
            open_sessions: Mutex::default(),
            self_mount: mounts::SelfMount::default(),
            blob_bytes_read: Arc::default(),
        }
    }

    /// Blob bytes read from this registry so far.
    pub fn blob_bytes_read(&self) -> u64 {
        self.blob_bytes_read.load(Ordering::Relaxed)
    }

    /// `host[:port]`.
    pub fn name(&self) -> &str {
        self.transport.registry()
    }

    /// Requests, retries and the pull budget seen so far.
    pub fn stats(&self) -> &Stats {
        self.transport.stats()
    }

    /// Every repository the registry lists (`/v2/_catalog`, all pages).
    pub async fn catalog(&self, page_size: Option<u32>) -> Result<Vec<String>, StoreError> {
        let mut url = self.transport.url("/v2/_catalog").await;
        if let Some(n) = page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let what = format!("the catalog of {}", self.name());
        let scopes = vec!["registry:catalog:*".to_string()];
        let listing = tags::Listing {
            what: &what,
            field: "repositories",
            repository: None,
        };
        tags::list(&self.transport, url, scopes, listing, |r| {
            crate::reference::validate_repository(r).map_err(|e| e.to_string())
        })
        .await
    }
}

/// One repository of a registry.
pub struct RegistryStore {
    registry: Arc<Registry>,
    repository: String,
    /// A copy target: every request asks for `pull,push`, so one token
    /// serves the HEADs, the uploads and the manifest PUTs alike.
    write: bool,
    /// `Accept` lists index types first.
    prefer_index: bool,
    page_size: Option<u32>,
    max_manifest_size: u64,
    upload_mode: UploadMode,
    chunk_size: u64,
    /// The repository answered the referrers API with 404 (or 405): it
    /// has none (a registry with the API answers 200, an empty list, even
    /// for an unknown subject), so it is not asked again in this run.
    no_referrers_api: std::sync::atomic::AtomicBool,
}

impl RegistryStore {
    /// `write`: this store is a copy target.
    pub fn new(
        registry: Arc<Registry>,
        repository: &str,
        write: bool,
        access: &Access,
    ) -> RegistryStore {
        RegistryStore {
            registry,
            repository: repository.to_string(),
            write,
            prefer_index: access.prefer_index,
            page_size: access.page_size,
            max_manifest_size: access.max_manifest_size,
            upload_mode: access.upload_mode,
            chunk_size: access.chunk_size.max(1),
            no_referrers_api: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn t(&self) -> &Transport {
        &self.registry.transport
    }

    /// Scopes for reading: `pull`, or `pull,push` on a target (see `write`).
    fn pull(&self) -> Vec<String> {
        let actions = if self.write { "pull,push" } else { "pull" };
        vec![repository_scope(&self.repository, actions)]
    }

    fn push(&self) -> Vec<String> {
        vec![repository_scope(&self.repository, "pull,push")]
    }

    async fn url(&self, rest: &str) -> url::Url {
        self.t()
            .url(&format!("/v2/{}/{rest}", self.repository))
            .await
    }

    fn what(&self, r: &ManifestRef) -> String {
        let sep = match r {
            ManifestRef::Tag(_) => ':',
            ManifestRef::Digest(_) => '@',
        };
        format!(
            "manifest {}/{}{sep}{r}",
            self.registry.name(),
            self.repository
        )
    }

    /// Sends a request whose unexpected answers are sorted by meaning.
    async fn send(&self, req: Request) -> Result<crate::transport::Response, StoreError> {
        self.t().send(req).await.map_err(sorted)
    }

    /// Reads a manifest body (capped) and verifies it against what was
    /// asked for, or against the digest the registry states for a tag.
    async fn read_manifest(
        &self,
        r: &ManifestRef,
        resp: crate::transport::Response,
    ) -> Result<RawManifest, StoreError> {
        let what = self.what(r);
        let content_type = resp.header(CONTENT_TYPE.as_str()).map(str::to_string);
        let stated = resp.header(DOCKER_CONTENT_DIGEST).map(str::to_string);
        let limit = self.max_manifest_size;
        let bytes = resp.bytes_capped(limit).await.map_err(|e| match e {
            TransportError::TooLarge { .. } => StoreError::TooLarge {
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
        match (r, stated) {
            (ManifestRef::Digest(d), _) => check_manifest_digest(&what, &m, d)?,
            (ManifestRef::Tag(_), Some(stated)) => {
                let stated = stated.parse::<Digest>().map_err(|e| {
                    StoreError::Protocol(format!("{what}: invalid Docker-Content-Digest: {e}"))
                })?;
                check_manifest_digest(&what, &m, &stated)?;
            }
            (ManifestRef::Tag(_), None) => {}
        }
        Ok(m)
    }

    /// The registry opened an upload session for a refused mount; the
    /// upload that follows takes it.
    fn take_session(&self, digest: &Digest) -> Option<url::Url> {
        self.registry
            .open_sessions
            .lock()
            .ok()
            .and_then(|mut open| open.remove(&(self.repository.clone(), digest.clone())))
    }

    /// Mounts `blob` from repository `from` (possibly this one); a refusal
    /// leaves its upload session for the upload that follows.
    async fn mount_from(&self, from: &str, blob: &Blob) -> Result<bool, StoreError> {
        let mut scopes = self.push();
        if from != self.repository {
            scopes.push(repository_scope(from, "pull"));
        }
        match upload::mount(self.t(), &self.repository, from, &scopes, blob).await? {
            upload::Mount::Mounted => Ok(true),
            upload::Mount::Refused(session) => {
                if let Ok(mut open) = self.registry.open_sessions.lock() {
                    open.insert((self.repository.clone(), blob.digest.clone()), session);
                }
                Ok(false)
            }
        }
    }

    /// Learns, once per run, whether the registry honours a mount from the
    /// repository itself, with a blob just uploaded (no image names it yet).
    async fn probe_self_mount(&self, blob: &Blob) {
        if !self.registry.self_mount.start_probe() {
            return;
        }
        let scopes = self.push();
        let repo = &self.repository;
        let honoured = match upload::mount(self.t(), repo, repo, &scopes, blob).await {
            Ok(upload::Mount::Mounted) => true,
            Ok(upload::Mount::Refused(session)) => {
                upload::cancel(self.t(), session, &scopes).await;
                false
            }
            Err(e) => {
                tracing::debug!("a mount from {repo} itself failed: {e}");
                false
            }
        };
        tracing::debug!(
            registry = self.registry.name(),
            honoured,
            "mounts from the repository itself"
        );
        self.registry.self_mount.learned(honoured);
    }

    async fn upload(&self, blob: &Blob, data: BlobStream) -> Result<(), StoreError> {
        let session = self.take_session(&blob.digest);
        let (t, scopes, repo) = (self.t(), self.push(), self.repository.as_str());
        let chunk = self.chunk_size;
        let learned = &self.registry;
        match self.upload_mode {
            UploadMode::Chunked => {
                upload::chunked(t, repo, &scopes, blob, data, session, chunk).await
            }
            UploadMode::Auto if learned.monolithic_refused.load(Ordering::Relaxed) => {
                upload::chunked(t, repo, &scopes, blob, data, session, chunk).await
            }
            UploadMode::SinglePost
                if !learned.single_post_refused.load(Ordering::Relaxed) && session.is_none() =>
            {
                if upload::single_post(t, repo, &scopes, blob, data).await? {
                    return Ok(());
                }
                // Debian's distribution 2.8 answers 202 and drops the body: remember,
                // and let the caller reopen the source for a monolithic upload.
                learned.single_post_refused.store(true, Ordering::Relaxed);
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
                    learned.monolithic_refused.store(true, Ordering::Relaxed);
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

#[async_trait]
impl Store for RegistryStore {
    fn describe(&self) -> String {
        format!("registry {}", self.registry.name())
    }

    fn location(&self) -> Location {
        Location {
            place: format!("registry {}", self.registry.name()),
            repository: self.repository.clone(),
        }
    }

    async fn manifest_head(&self, r: &ManifestRef) -> Result<Option<Digest>, StoreError> {
        let url = self.url(&format!("manifests/{r}")).await;
        let accept = MediaType::accept(self.prefer_index);
        let req = Request::new(Method::HEAD, url, self.pull()).header(ACCEPT, accept);
        let resp = self.send(req).await?;
        match resp.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(sorted(resp.into_error().await)),
        }
        if let ManifestRef::Digest(d) = r {
            return Ok(Some(d.clone()));
        }
        match resp.header(DOCKER_CONTENT_DIGEST).map(str::parse::<Digest>) {
            Some(Ok(d)) => Ok(Some(d)),
            // Without a digest header HEAD cannot answer; read the manifest.
            _ => Ok(Some(self.manifest_get(r).await?.digest)),
        }
    }

    async fn manifest_get(&self, r: &ManifestRef) -> Result<RawManifest, StoreError> {
        let url = self.url(&format!("manifests/{r}")).await;
        let accept = MediaType::accept(self.prefer_index);
        let req = Request::new(Method::GET, url, self.pull()).header(ACCEPT, accept);
        let resp = self.send(req).await;
        // Docker Hub counts manifest GETs; its answer now states this one.
        self.registry.stats().pull_answered();
        let resp = resp?;
        match resp.status {
            StatusCode::OK => self.read_manifest(r, resp).await,
            StatusCode::NOT_FOUND => Err(StoreError::NotFound { what: self.what(r) }),
            _ => Err(sorted(resp.into_error().await)),
        }
    }

    async fn manifest_put(&self, r: &ManifestRef, m: &RawManifest) -> Result<(), StoreError> {
        let url = self.url(&format!("manifests/{r}")).await;
        let mut req = Request::new(Method::PUT, url, self.push())
            .header(CONTENT_TYPE, m.media_type.as_str())
            .body(Body::Bytes(m.bytes.clone()));
        if m.media_type.kind() == crate::media::Kind::Schema1 {
            // Debian's distribution 2.8 refuses schema1 with a 500: final, not transient.
            req = req.no_retry();
        }
        let resp = self.send(req).await?;
        if resp.status != StatusCode::CREATED && resp.status != StatusCode::OK {
            return Err(rejected_manifest(resp.into_error().await, &m.media_type));
        }
        // A registry that stores something else than what we sent would change
        // the digest; it must say the one we computed.
        if let Some(Ok(stated)) = resp.header(DOCKER_CONTENT_DIGEST).map(str::parse::<Digest>)
            && stated.algorithm() == m.digest.algorithm()
            && stated != m.digest
        {
            return Err(StoreError::DigestMismatch {
                what: format!("{} after PUT", self.what(r)),
                expected: m.digest.clone(),
                actual: stated,
            });
        }
        Ok(())
    }

    async fn manifest_delete(&self, r: &ManifestRef) -> Result<(), StoreError> {
        let url = self.url(&format!("manifests/{r}")).await;
        let resp = self
            .send(Request::new(Method::DELETE, url, self.push()))
            .await?;
        let unsupported = || {
            StoreError::Unsupported(match r {
                ManifestRef::Tag(_) => format!("{} cannot delete a tag alone", self.what(r)),
                ManifestRef::Digest(_) => format!(
                    "{} refuses to delete manifests (is storage.delete enabled?)",
                    self.describe()
                ),
            })
        };
        match resp.status {
            StatusCode::ACCEPTED | StatusCode::OK | StatusCode::NO_CONTENT => Ok(()),
            StatusCode::NOT_FOUND => Err(StoreError::NotFound { what: self.what(r) }),
            StatusCode::METHOD_NOT_ALLOWED => Err(unsupported()),
            _ => {
                let e = resp.into_error().await;
                let code = |c: &str| e.registry_error().is_some_and(|r| r.has_code(c));
                // Debian's distribution 2.8 reads a DELETE's reference as a
                // digest and answers a tag with 400 DIGEST_INVALID: it
                // deletes by digest only.
                let untag_refused = matches!(r, ManifestRef::Tag(_)) && code("DIGEST_INVALID");
                if code("UNSUPPORTED") || untag_refused {
                    return Err(unsupported());
                }
                Err(sorted(e))
            }
        }
    }

    async fn tags(&self) -> Result<Vec<String>, StoreError> {
        let mut url = self.url("tags/list").await;
        if let Some(n) = self.page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let what = format!("repository {}/{}", self.registry.name(), self.repository);
        let listing = tags::Listing {
            what: &what,
            field: "tags",
            repository: Some(&self.repository),
        };
        let listed = tags::list(self.t(), url, self.pull(), listing, |t| {
            crate::reference::validate_tag(t, t).map_err(|e| e.to_string())
        })
        .await;
        if matches!(&listed, Ok(tags) if tags.is_empty())
            || matches!(&listed, Err(StoreError::NotFound { .. }))
        {
            self.registry.self_mount.found_tagless(&self.repository);
        }
        listed
    }

    async fn referrers(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<Option<Vec<Listed>>, StoreError> {
        let mut url = self.url(&format!("referrers/{subject}")).await;
        // The API filters by one artifactType; for several, we filter.
        if let [one] = artifact_types {
            url.query_pairs_mut().append_pair("artifactType", one);
        }
        let what = format!(
            "the referrers of {subject} in {}/{}",
            self.registry.name(),
            self.repository
        );
        use std::sync::atomic::Ordering::Relaxed;
        if self.no_referrers_api.load(Relaxed) {
            return Ok(None);
        }
        let list =
            tags::referrers(self.t(), url, self.pull(), &what, self.max_manifest_size).await?;
        if list.is_none() {
            self.no_referrers_api.store(true, Relaxed);
        }
        Ok(list.map(|l| {
            l.into_iter()
                .filter(|r| {
                    artifact_types.is_empty()
                        || r.artifact_type
                            .as_ref()
                            .is_some_and(|t| artifact_types.contains(t))
                })
                .collect()
        }))
    }

    async fn blob_head(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let url = self.url(&format!("blobs/{digest}")).await;
        let resp = self
            .send(Request::new(Method::HEAD, url, self.pull()))
            .await?;
        match resp.status {
            StatusCode::OK => Ok(Some(
                resp.header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(sorted(resp.into_error().await)),
        }
    }

    async fn blob_get_url(&self, url: &str, blob: &Blob) -> Result<BlobStream, StoreError> {
        let parsed = url::Url::parse(url).map_err(|_| {
            StoreError::Protocol(format!("foreign layer {}: a URL is not valid", blob.digest))
        })?;
        crate::transport::policy::check_hop(&self.t().base().await, &parsed).map_err(|why| {
            StoreError::Transport(TransportError::Refused {
                url: crate::transport::error::redact_url(&parsed),
                why,
            })
        })?;
        let resp = self
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

    async fn blob_get(&self, blob: &Blob) -> Result<BlobStream, StoreError> {
        let url = self.url(&format!("blobs/{}", blob.digest)).await;
        let scopes = self.pull();
        let resp = self
            .send(Request::new(Method::GET, url.clone(), scopes.clone()).blob_body(blob.size))
            .await?;
        match resp.status {
            StatusCode::OK => {
                let read = self.registry.blob_bytes_read.clone();
                let stream = resume::resuming(
                    self.registry.transport.clone(),
                    url,
                    scopes,
                    blob.size,
                    resp.into_stream(),
                );
                Ok(stream
                    .inspect(move |c| {
                        if let Ok(b) = c {
                            read.fetch_add(b.len() as u64, Ordering::Relaxed);
                        }
                    })
                    .boxed())
            }
            StatusCode::NOT_FOUND => Err(StoreError::NotFound {
                what: format!(
                    "blob {} in {}/{}",
                    blob.digest,
                    self.registry.name(),
                    self.repository
                ),
            }),
            _ => Err(sorted(resp.into_error().await)),
        }
    }

    async fn blob_mount(&self, from: &str, blob: &Blob) -> Result<bool, StoreError> {
        self.mount_from(from, blob).await
    }

    /// One POST in a repository without tags where the registry may honour
    /// a mount from the repository itself (see `mounts`); else a HEAD, then
    /// the mount from `from`. Never a mount of a blob a HEAD found: that
    /// would rewrite a link images already name.
    async fn blob_lookup(&self, blob: &Blob, from: Option<&str>) -> Result<Lookup, StoreError> {
        let mounts = &self.registry.self_mount;
        if mounts.asks_by_mount(&self.repository) {
            let repo = from.unwrap_or(&self.repository);
            return Ok(match (self.mount_from(repo, blob).await?, from) {
                (true, None) => {
                    // Only a registry that honours the mount answers 201.
                    mounts.learned(true);
                    Lookup::Present
                }
                (true, Some(_)) => Lookup::Mounted,
                (false, _) => Lookup::Missing,
            });
        }
        if self.blob_head(&blob.digest).await?.is_some() {
            return Ok(Lookup::Present);
        }
        match from {
            Some(from) if self.mount_from(from, blob).await? => Ok(Lookup::Mounted),
            _ => Ok(Lookup::Missing),
        }
    }

    async fn blob_put(&self, blob: &Blob, data: BlobStream) -> Result<(), StoreError> {
        self.upload(blob, data).await?;
        self.probe_self_mount(blob).await;
        Ok(())
    }

    async fn blob_abandon(&self, digest: &Digest) {
        if let Some(session) = self.take_session(digest) {
            upload::cancel(self.t(), session, &self.push()).await;
        }
    }

    fn states_pull_budget(&self) -> bool {
        self.registry.stats().ratelimit().is_some()
    }

    fn reserve_pulls(&self, n: u64, keep: u64) -> Result<(), StoreError> {
        self.registry
            .stats()
            .reserve(n, keep)
            .map_err(|budget| StoreError::PullBudget {
                registry: self.registry.name().to_string(),
                remaining: budget.remaining,
                needed: n,
                keep,
            })
    }
}
