//! [`RegistryStore`]: the distribution API (`/v2/...`) behind the [`Store`]
//! trait.
//!
//! Owns URL paths, the meaning of each status code per endpoint, manifest
//! verification on read, and token scopes per request. Never speaks HTTP
//! itself (the [`Transport`] does) and never decides what to copy.

mod upload;

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::{Blob, BlobStream, ManifestRef, Store, StoreError, check_manifest_digest};
use crate::digest::{Algorithm, Digest};
use crate::manifest::{MAX_MANIFEST_SIZE, RawManifest};
use crate::media::MediaType;
use crate::transport::auth::repository_scope;
use crate::transport::{Body, Request, Transport};

/// The header registries use to state a manifest's or blob's digest.
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// One registry, reached through one transport.
pub struct RegistryStore {
    transport: Transport,
    /// A copy target: every request asks for `pull,push`, so one token
    /// serves the HEADs, the uploads and the manifest PUTs alike.
    write: bool,
    /// `Accept` lists index types first.
    prefer_index: bool,
    max_manifest_size: u64,
    /// Upload sessions a refused mount opened, for the upload that follows.
    open_sessions: Mutex<HashMap<(String, Digest), url::Url>>,
}

impl RegistryStore {
    /// `write`: this store is a copy target.
    pub fn new(transport: Transport, write: bool) -> RegistryStore {
        RegistryStore {
            transport,
            write,
            prefer_index: false,
            max_manifest_size: MAX_MANIFEST_SIZE,
            open_sessions: Mutex::default(),
        }
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
        let resp = self
            .transport
            .send(Request::new(Method::GET, url, self.pull(repo)))
            .await?;
        match resp.status {
            StatusCode::OK => Ok(resp
                .into_stream()
                .map(|r| r.map_err(StoreError::from))
                .boxed()),
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
        upload::monolithic(
            &self.transport,
            repo,
            &Self::push(repo),
            blob,
            data,
            session,
        )
        .await
    }
}
