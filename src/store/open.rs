//! Opening stores from plain settings: an [`ImageRef`] and an [`Access`]
//! (credentials source, TLS, timeouts, upload strategy), which command-line
//! flags and a sync config fill in alike.
//!
//! Owns the run-wide sharing of the wire: [`Stores`] keeps one
//! [`Registry`] (one transport: connection pool, token cache, request
//! limiter) per registry and way of reaching it, and one [`LayoutStore`]
//! per directory, however many repositories and images a run touches.
//! Never knows clap or YAML, and never decides what to copy.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::archive::{ArchiveError, ArchiveReader, ArchiveWriter, PackOptions, Packed};
use super::layout::LayoutStore;
use super::mirrored::MirroredStore;
use super::registry::discovery::{self, Api, Discovery};
use super::registry::{Registry, RegistryStore, UploadMode, upload::DEFAULT_CHUNK_SIZE};
use super::{Store, StoreError};
use crate::credentials::Credentials;
use crate::credentials::{self, CredentialSource, Env};
use crate::manifest::MAX_MANIFEST_SIZE;
use crate::reference::{ImageRef, LayoutKind, Reference};
use crate::transport::pace::{Caps, Pace};
use crate::transport::{Transport, TransportOptions};

/// How to reach a registry or layout, and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub credentials: CredentialSource,
    /// `None`: https, plain http for loopback; `Some(false)`: no
    /// certificate checks, http allowed; `Some(true)`: https with checks.
    pub tls_verify: Option<bool>,
    /// docker `certs.d` layout; `None`: `/etc/docker/certs.d/HOST[:PORT]`
    /// or `/etc/containers/certs.d/HOST[:PORT]` when present.
    pub cert_dir: Option<PathBuf>,
    /// How long a connection may stay silent (`None`: the transport's).
    pub read_timeout: Option<Duration>,
    /// Requests in flight to the registry (0: the transport's default).
    pub max_in_flight: usize,
    pub upload_mode: UploadMode,
    pub chunk_size: u64,
    /// Ask for indexes first (`--mode prefer-index`).
    pub prefer_index: bool,
    /// Tags per page asked of a registry (`None`: its choice).
    pub page_size: Option<u32>,
    pub max_manifest_size: u64,
    /// Read mirrors of a source registry, tried in order before it.
    pub mirrors: Vec<Mirror>,
    /// Resolve tags at the mirrors too (else at the origin, by HEAD).
    pub mirror_tags: bool,
    /// Request and byte rates the registry gets at most, across every
    /// store and job of the run.
    pub caps: Caps,
    /// How the repositories under a namespace are listed.
    pub discovery: Discovery,
}

/// A read mirror: `REGISTRY[/PREFIX]` holding the origin's repositories
/// below the prefix, reached as its own `access` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub registry: String,
    /// Empty, or ending in `/`.
    pub prefix: String,
    pub access: Access,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            credentials: CredentialSource::default(),
            tls_verify: None,
            cert_dir: None,
            read_timeout: None,
            max_in_flight: 0,
            upload_mode: UploadMode::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            prefer_index: false,
            page_size: None,
            max_manifest_size: MAX_MANIFEST_SIZE,
            mirrors: Vec::new(),
            mirror_tags: false,
            caps: Caps::default(),
            discovery: Discovery::default(),
        }
    }
}

/// What a store is opened for. A target's registry requests ask for
/// `pull,push`, so one token serves its HEADs, uploads and PUTs; a layout
/// target is created when missing, a layout source never written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Target,
}

/// What makes two registries one transport: the same host, credentials
/// and TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RegistryKey {
    registry: String,
    credentials: Option<Credentials>,
    tls_verify: Option<bool>,
    cert_dir: Option<PathBuf>,
    read_timeout: Option<Duration>,
    max_in_flight: usize,
}

/// The stores of one run (see the module doc).
pub struct Stores {
    env: Env,
    registries: Mutex<Vec<(RegistryKey, Arc<Registry>)>>,
    /// Each capped registry's buckets, shared by all its transports.
    paces: Mutex<Vec<(String, Arc<Pace>)>>,
    layouts: Mutex<Vec<(PathBuf, Arc<LayoutStore>)>>,
    readers: Mutex<Vec<(PathBuf, Arc<ArchiveReader>)>>,
    writers: Mutex<Vec<(PathBuf, Arc<ArchiveWriter>)>>,
    pack: PackOptions,
}

impl Stores {
    /// `env` is where default auth files are found
    /// ([`Env::from_process`] outside tests).
    pub fn new(env: Env) -> Stores {
        Stores {
            env,
            registries: Mutex::default(),
            paces: Mutex::default(),
            layouts: Mutex::default(),
            readers: Mutex::default(),
            writers: Mutex::default(),
            pack: PackOptions::default(),
        }
    }

    /// How the archives this run writes are packed.
    pub fn packing(mut self, pack: PackOptions) -> Stores {
        self.pack = pack;
        self
    }

    /// The store `r` lives in (its tag or digest aside).
    pub fn open(
        &self,
        r: &ImageRef,
        access: &Access,
        role: Role,
    ) -> Result<Arc<dyn Store>, StoreError> {
        match r {
            ImageRef::Registry(reference) => {
                let registry = self.registry(reference, access)?;
                let origin: Arc<dyn Store> = Arc::new(RegistryStore::new(
                    registry,
                    reference.repository(),
                    role == Role::Target,
                    access,
                ));
                if role == Role::Target || access.mirrors.is_empty() {
                    return Ok(origin);
                }
                let mirrors = access
                    .mirrors
                    .iter()
                    .map(|m| self.mirror(m, reference))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Arc::new(MirroredStore::new(
                    origin,
                    mirrors,
                    access.mirror_tags,
                )))
            }
            ImageRef::Layout(l) => match (l.kind, role) {
                (LayoutKind::Dir, _) => Ok(Arc::new(
                    self.layout(&l.path, role)?.scoped(l.repository.clone()),
                )),
                (_, Role::Source) => Ok(Arc::new(
                    self.archive_reader(&l.path)?.scoped(l.repository.clone()),
                )),
                (kind, Role::Target) => Ok(Arc::new(
                    self.archive_writer(&l.path, kind)?
                        .scoped(l.repository.clone()),
                )),
            },
        }
    }

    /// The registry `reference` lives on, reached as `access` says; shared
    /// by every store of the run that reaches it the same way.
    pub fn registry(
        &self,
        reference: &Reference,
        access: &Access,
    ) -> Result<Arc<Registry>, StoreError> {
        let host = reference.registry();
        let credentials =
            credentials::resolve(&access.credentials, &self.env, host, reference.repository())?;
        tracing::debug!(
            registry = host,
            found = credentials.is_some(),
            "credentials"
        );
        let key = RegistryKey {
            registry: host.to_string(),
            credentials,
            tls_verify: access.tls_verify,
            cert_dir: access.cert_dir.clone().or_else(|| default_cert_dir(host)),
            read_timeout: access.read_timeout,
            max_in_flight: access.max_in_flight,
        };
        let mut known = self
            .registries
            .lock()
            .map_err(|_| StoreError::Protocol("the store table is poisoned".into()))?;
        if let Some((_, r)) = known.iter().find(|(k, _)| *k == key) {
            return Ok(r.clone());
        }
        let options = TransportOptions {
            tls_verify: key.tls_verify,
            cert_dir: key.cert_dir.clone(),
            credentials: key.credentials.clone(),
            read_timeout: key.read_timeout,
            max_in_flight: key.max_in_flight,
            pace: self.pace(host, access.caps),
            ..TransportOptions::default()
        };
        let transport = Transport::new(host, reference.is_loopback(), options)?;
        let registry = Arc::new(Registry::new(transport));
        known.push((key, registry.clone()));
        Ok(registry)
    }

    /// The repositories below `prefix` (`team/`, or empty for all) of
    /// `at`'s registry: its catalog, or the API its `discovery` names
    /// (Docker Hub's own for Docker Hub, which serves no catalog).
    pub async fn repositories(
        &self,
        at: &Reference,
        access: &Access,
        prefix: &str,
    ) -> Result<Vec<String>, StoreError> {
        let host = at.registry();
        let api = match access.discovery.api {
            Api::Catalog
                if at
                    .place()
                    .same(&crate::reference::Place::of_registry("docker.io")) =>
            {
                Api::DockerHub
            }
            api => api,
        };
        if api == Api::Catalog {
            let registry = self.registry(at, access)?;
            return registry.catalog(access.page_size).await.map_err(|e| match e {
                StoreError::NotFound { .. } => StoreError::Protocol(format!(
                    "{host} serves no catalog (/v2/_catalog): set registries.\"{host}\".discovery to its API (dockerhub, github, quay, harbor, gitlab)"
                )),
                e => e,
            });
        }
        let namespace = prefix.trim_end_matches('/');
        if namespace.is_empty() {
            return Err(StoreError::Protocol(format!(
                "{host}: a whole registry cannot be listed through its discovery API; name a namespace (HOST/ORG/)"
            )));
        }
        let credentials = credentials::resolve(&access.credentials, &self.env, host, namespace)?;
        let root = access
            .discovery
            .url
            .clone()
            .unwrap_or_else(|| api.default_url(host));
        discovery::list(api, &root, namespace, credentials).await
    }

    /// The buckets of `host`: made by the first access that caps it,
    /// shared by every transport after (whatever its credentials).
    fn pace(&self, host: &str, caps: Caps) -> Option<Arc<Pace>> {
        let mut paces = self.paces.lock().ok()?;
        if let Some((_, p)) = paces.iter().find(|(h, _)| h == host) {
            return Some(p.clone());
        }
        let pace = Arc::new(Pace::new(caps)?);
        paces.push((host.to_string(), pace.clone()));
        Some(pace)
    }

    /// The repository of `origin` on a read mirror.
    fn mirror(&self, m: &Mirror, origin: &Reference) -> Result<Arc<dyn Store>, StoreError> {
        let name = format!("{}/{}{}", m.registry, m.prefix, origin.repository());
        let at = Reference::parse(&name).map_err(|e| {
            StoreError::Protocol(format!("read mirror {}{}: {e}", m.registry, m.prefix))
        })?;
        let registry = self.registry(&at, &m.access)?;
        Ok(Arc::new(RegistryStore::new(
            registry,
            at.repository(),
            false,
            &m.access,
        )))
    }

    /// Every registry this run reached, with its counters.
    pub fn registries(&self) -> Vec<Arc<Registry>> {
        self.registries
            .lock()
            .map(|r| r.iter().map(|(_, r)| r.clone()).collect())
            .unwrap_or_default()
    }

    /// The archive at `path`, read; one reader per archive and run.
    pub fn archive_reader(&self, path: &Path) -> Result<Arc<ArchiveReader>, StoreError> {
        let mut known = self
            .readers
            .lock()
            .map_err(|_| StoreError::Protocol("the store table is poisoned".into()))?;
        if let Some((_, r)) = known.iter().find(|(p, _)| p == path) {
            return Ok(r.clone());
        }
        let reader = ArchiveReader::open(path)?;
        known.push((path.to_path_buf(), reader.clone()));
        Ok(reader)
    }

    /// The archive at `path`, being written; one writer per archive and
    /// run, packed by [`Stores::finish_archives`].
    pub fn archive_writer(
        &self,
        path: &Path,
        kind: LayoutKind,
    ) -> Result<Arc<ArchiveWriter>, StoreError> {
        let mut known = self
            .writers
            .lock()
            .map_err(|_| StoreError::Protocol("the store table is poisoned".into()))?;
        if let Some((_, w)) = known.iter().find(|(p, _)| p == path) {
            return Ok(w.clone());
        }
        let writer = ArchiveWriter::create(path, kind, self.pack.clone())?;
        known.push((path.to_path_buf(), writer.clone()));
        Ok(writer)
    }

    /// Packs every archive this run wrote (once its copies are done).
    pub fn finish_archives(&self) -> Vec<(PathBuf, Result<Packed, ArchiveError>)> {
        let writers = self.writers.lock().map(|w| w.clone()).unwrap_or_default();
        writers
            .iter()
            .map(|(p, w)| (p.clone(), w.finish()))
            .collect()
    }

    fn layout(&self, path: &Path, role: Role) -> Result<Arc<LayoutStore>, StoreError> {
        let mut known = self
            .layouts
            .lock()
            .map_err(|_| StoreError::Protocol("the store table is poisoned".into()))?;
        if let Some((_, l)) = known.iter().find(|(p, _)| p == path) {
            if role == Role::Target {
                l.ensure_target()?;
            }
            return Ok(l.clone());
        }
        let layout = Arc::new(LayoutStore::open(path, role == Role::Target)?);
        known.push((path.to_path_buf(), layout.clone()));
        Ok(layout)
    }
}

/// docker's and podman's per-registry certificate directories, when present.
fn default_cert_dir(registry: &str) -> Option<PathBuf> {
    ["/etc/docker/certs.d", "/etc/containers/certs.d"]
        .iter()
        .map(|base| Path::new(base).join(registry))
        .find(|p| p.is_dir())
}
