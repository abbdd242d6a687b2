//! The repositories under a namespace on registries that serve no
//! `/v2/_catalog` (Docker Hub, GHCR, Quay, Harbor to a project robot,
//! GitLab), through each one's own documented API:
//!
//! - Docker Hub: `GET /v2/namespaces/{ns}/repositories?page_size=100`,
//!   `next` in the body (hub.docker.com's API reference);
//! - GitHub: `GET /orgs/{ns}/packages?package_type=container` (or
//!   `/users/{ns}/…` for a user), `Link: rel="next"`, a classic token with
//!   `read:packages` (GitHub's REST reference, "Packages");
//! - Quay: `GET /api/v1/repository?namespace={ns}&public=true`,
//!   `next_page` in the body (Quay's API, `listRepos`);
//! - Harbor: `GET /api/v2.0/projects/{ns}/repositories?page_size=100`,
//!   `Link` (Harbor's swagger, `listRepositories`), basic auth;
//! - GitLab: `GET /api/v4/groups/{ns}/registry/repositories?per_page=100`
//!   (subgroups included), `Link` or `x-next-page`, `PRIVATE-TOKEN`.
//!
//! Owns paging through them under the same bounds as a tag listing (pages,
//! bytes, a page already read, a link to another origin) and each API's
//! way of presenting the registry's credentials. Never reads a registry's
//! content.

use std::collections::HashSet;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::errors::sorted;
use crate::credentials::Credentials;
use crate::store::StoreError;
use crate::transport::error::redact_url;
use crate::transport::{Request, Transport, TransportError, TransportOptions};

/// Pages of a discovery listing followed before calling it endless.
const MAX_PAGES: usize = 1_000;
/// The most of one page read.
const MAX_PAGE_BYTES: u64 = 4 * 1024 * 1024;
/// The most of a whole listing kept.
const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// How a registry's repositories are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Api {
    /// `/v2/_catalog` (the distribution spec's; the default).
    #[default]
    Catalog,
    DockerHub,
    GitHub,
    Quay,
    Harbor,
    GitLab,
}

impl Api {
    pub fn parse(text: &str) -> Option<Api> {
        Some(match text {
            "catalog" => Api::Catalog,
            "dockerhub" => Api::DockerHub,
            "github" => Api::GitHub,
            "quay" => Api::Quay,
            "harbor" => Api::Harbor,
            "gitlab" => Api::GitLab,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Api::Catalog => "catalog",
            Api::DockerHub => "Docker Hub",
            Api::GitHub => "GitHub",
            Api::Quay => "Quay",
            Api::Harbor => "Harbor",
            Api::GitLab => "GitLab",
        }
    }

    /// Where the API is when the config does not say: Docker Hub's and
    /// GitHub's own hosts, gitlab.com for its registry, the registry
    /// itself for Quay and Harbor.
    pub fn default_url(self, registry: &str) -> String {
        match self {
            Api::DockerHub => "https://hub.docker.com".into(),
            Api::GitHub => "https://api.github.com".into(),
            Api::GitLab if registry == "registry.gitlab.com" => "https://gitlab.com".into(),
            _ => format!("https://{registry}"),
        }
    }
}

/// A registry's discovery: the API, and where it answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Discovery {
    pub api: Api,
    /// The API's root URL (`None`: [`Api::default_url`]).
    pub url: Option<String>,
}

/// Every repository path under `namespace` (`bitnami`, `group/sub`) that
/// `api` at `root` lists, with the registry's `credentials`.
pub async fn list(
    api: Api,
    root: &str,
    namespace: &str,
    credentials: Option<Credentials>,
) -> Result<Vec<String>, StoreError> {
    let what = format!("the {} repositories of {namespace}", api.name());
    let root = url::Url::parse(root)
        .map_err(|e| StoreError::Protocol(format!("{what}: discovery URL {root:?}: {e}")))?;
    let host = root
        .host_str()
        .map(|h| match root.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        })
        .ok_or_else(|| StoreError::Protocol(format!("{what}: no host in {root}")))?;
    let loopback = matches!(root.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || root.host_str() == Some("localhost");
    let options = TransportOptions {
        // An https API root is held to its certificate; http only where
        // the config says so for this machine (tests, a local Harbor).
        tls_verify: (root.scheme() == "https").then_some(true),
        ..TransportOptions::default()
    };
    let t = Arc::new(Transport::new(
        &host,
        loopback && root.scheme() == "http",
        options,
    )?);
    let auth = authorization(api, &t, &root, credentials.as_ref()).await?;
    let first = first_page(api, &root, namespace)?;
    let mut pager = Pager {
        t,
        auth,
        what: &what,
        seen: HashSet::new(),
        total: 0,
    };
    let mut names = Vec::new();
    let mut next = Some(first);
    let mut fallback_tried = false;
    for _ in 0..MAX_PAGES {
        let Some(url) = next.take() else {
            return Ok(names);
        };
        let page = match pager.get(url).await {
            Err(StoreError::NotFound { .. }) if api == Api::GitHub && !fallback_tried => {
                // Not an organisation: a user's packages.
                fallback_tried = true;
                next = Some(join(
                    &root,
                    &format!("users/{namespace}/packages?package_type=container&per_page=100"),
                )?);
                continue;
            }
            other => other?,
        };
        for name in repositories(api, namespace, &page.body).map_err(|e| protocol(&what, e))? {
            crate::reference::validate_repository(&name)
                .map_err(|e| protocol(&what, format!("{name:?}: {e}")))?;
            names.push(name);
        }
        next = next_page(api, &page)?;
    }
    Err(protocol(&what, format!("goes on past {MAX_PAGES} pages")))
}

fn protocol(what: &str, why: String) -> StoreError {
    StoreError::Protocol(format!("{what}: {why}"))
}

fn join(root: &url::Url, rest: &str) -> Result<url::Url, StoreError> {
    let base = match root.as_str().ends_with('/') {
        true => root.clone(),
        false => url::Url::parse(&format!("{root}/")).unwrap_or_else(|_| root.clone()),
    };
    base.join(rest)
        .map_err(|e| StoreError::Protocol(format!("discovery URL {root}: {e}")))
}

fn first_page(api: Api, root: &url::Url, namespace: &str) -> Result<url::Url, StoreError> {
    let first = namespace.split('/').next().unwrap_or(namespace);
    let path = match api {
        Api::Catalog => {
            return Err(StoreError::Protocol(
                "the catalog is not a discovery API".into(),
            ));
        }
        Api::DockerHub => format!("v2/namespaces/{first}/repositories?page_size=100"),
        Api::GitHub => format!("orgs/{first}/packages?package_type=container&per_page=100"),
        Api::Quay => format!("api/v1/repository?namespace={first}&public=true"),
        Api::Harbor => format!("api/v2.0/projects/{first}/repositories?page_size=100"),
        Api::GitLab => format!(
            "api/v4/groups/{}/registry/repositories?per_page=100",
            namespace.replace('/', "%2F")
        ),
    };
    join(root, &path)
}

/// The header that carries the registry's credentials to its API.
async fn authorization(
    api: Api,
    t: &Transport,
    root: &url::Url,
    credentials: Option<&Credentials>,
) -> Result<Option<(reqwest::header::HeaderName, String)>, StoreError> {
    use reqwest::header::{AUTHORIZATION, HeaderName};
    let Some(Credentials::Basic { username, password }) = credentials else {
        return Ok(None);
    };
    Ok(Some(match api {
        Api::Catalog => return Ok(None),
        // A personal access token (or password) for a short-lived JWT.
        Api::DockerHub => {
            let url = join(root, "v2/auth/token")?;
            let body = serde_json::json!({"identifier": username, "secret": password}).to_string();
            let resp = t
                .send(
                    Request::new(Method::POST, url, Vec::new())
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(crate::transport::Body::Bytes(body.into())),
                )
                .await
                .map_err(sorted)?;
            if resp.status != StatusCode::OK {
                return Err(sorted(resp.into_error().await));
            }
            let v: Value = serde_json::from_slice(&resp.bytes_capped(64 * 1024).await?)
                .map_err(|e| StoreError::Protocol(format!("Docker Hub's token answer: {e}")))?;
            let token = v["access_token"].as_str().ok_or_else(|| {
                StoreError::Protocol("Docker Hub's token answer has no access_token".into())
            })?;
            (AUTHORIZATION, format!("Bearer {token}"))
        }
        Api::GitHub | Api::Quay => (AUTHORIZATION, format!("Bearer {password}")),
        Api::Harbor => {
            use base64::Engine as _;
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            (AUTHORIZATION, format!("Basic {pair}"))
        }
        Api::GitLab => (HeaderName::from_static("private-token"), password.clone()),
    }))
}

/// One page: its body and what says where the next is.
struct Page {
    url: url::Url,
    link: Option<String>,
    next_page_header: Option<String>,
    body: Value,
}

struct Pager<'a> {
    t: Arc<Transport>,
    auth: Option<(reqwest::header::HeaderName, String)>,
    what: &'a str,
    seen: HashSet<url::Url>,
    total: u64,
}

impl Pager<'_> {
    async fn get(&mut self, url: url::Url) -> Result<Page, StoreError> {
        if !self.seen.insert(url.clone()) {
            return Err(protocol(
                self.what,
                format!(
                    "the next page is one already read ({}); the listing would never end",
                    redact_url(&url)
                ),
            ));
        }
        let mut req = Request::new(Method::GET, url.clone(), Vec::new())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some((name, value)) = &self.auth {
            req = req.header(name.clone(), value);
        }
        let resp = self.t.send(req).await.map_err(sorted)?;
        match resp.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(StoreError::NotFound {
                    what: self.what.to_string(),
                });
            }
            _ => return Err(sorted(resp.into_error().await)),
        }
        let link = resp.header("link").map(str::to_string);
        let next_page_header = resp.header("x-next-page").map(str::to_string);
        let bytes = resp.bytes_capped(MAX_PAGE_BYTES).await?;
        self.total += bytes.len() as u64;
        if self.total > MAX_TOTAL_BYTES {
            return Err(StoreError::TooLarge {
                what: self.what.to_string(),
                limit: MAX_TOTAL_BYTES,
            });
        }
        let body =
            serde_json::from_slice(&bytes).map_err(|e| protocol(self.what, e.to_string()))?;
        Ok(Page {
            url,
            link,
            next_page_header,
            body,
        })
    }
}

/// The repository paths one page lists.
fn repositories(api: Api, namespace: &str, body: &Value) -> Result<Vec<String>, String> {
    let array = |v: &Value, field: &str| -> Result<Vec<Value>, String> {
        v.as_array()
            .cloned()
            .ok_or_else(|| format!("not a list of {field}"))
    };
    let text = |v: &Value, field: &str| -> Result<String, String> {
        v[field]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("an entry without {field}"))
    };
    let owner = namespace.split('/').next().unwrap_or(namespace);
    Ok(match api {
        Api::Catalog => Vec::new(),
        Api::DockerHub => array(&body["results"], "results")?
            .iter()
            .map(|r| {
                Ok(format!(
                    "{}/{}",
                    text(r, "namespace").unwrap_or(owner.to_string()),
                    text(r, "name")?
                ))
            })
            .collect::<Result<_, String>>()?,
        Api::GitHub => array(body, "packages")?
            .iter()
            .map(|p| Ok(format!("{}/{}", owner, text(p, "name")?).to_ascii_lowercase()))
            .collect::<Result<_, String>>()?,
        Api::Quay => array(&body["repositories"], "repositories")?
            .iter()
            .map(|r| Ok(format!("{}/{}", text(r, "namespace")?, text(r, "name")?)))
            .collect::<Result<_, String>>()?,
        Api::Harbor => array(body, "repositories")?
            .iter()
            .map(|r| text(r, "name"))
            .collect::<Result<_, String>>()?,
        Api::GitLab => array(body, "repositories")?
            .iter()
            .map(|r| text(r, "path"))
            .collect::<Result<_, String>>()?,
    })
}

/// Where the next page is, on the same origin as this one.
fn next_page(api: Api, page: &Page) -> Result<Option<url::Url>, StoreError> {
    let target = match api {
        Api::DockerHub => page.body["next"].as_str().map(str::to_string),
        Api::Quay => page.body["next_page"].as_str().map(|token| {
            let mut u = page.url.clone();
            let kept: Vec<(String, String)> = u
                .query_pairs()
                .filter(|(k, _)| k != "next_page")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            u.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair("next_page", token);
            u.to_string()
        }),
        _ => page.link.as_deref().and_then(link_next).or_else(|| {
            // GitLab also says the next page's number alone.
            let n = page.next_page_header.as_deref()?.trim();
            if n.is_empty() {
                return None;
            }
            let mut u = page.url.clone();
            let kept: Vec<(String, String)> = u
                .query_pairs()
                .filter(|(k, _)| k != "page")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            u.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair("page", n);
            Some(u.to_string())
        }),
    };
    let Some(target) = target.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let next = page
        .url
        .join(&target)
        .map_err(|_| StoreError::Protocol(format!("a discovery page links to {target:?}")))?;
    if next.origin() != page.url.origin() {
        return Err(StoreError::Transport(TransportError::Refused {
            url: redact_url(&next),
            why: "a discovery listing's next page on another origin".into(),
        }));
    }
    Ok(Some(next))
}

/// The `rel="next"` target of a `Link` header (Harbor separates entries
/// with ` , `).
fn link_next(link: &str) -> Option<String> {
    link.split(',')
        .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
        .and_then(|part| part.split_once('<'))
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(u, _)| u.trim().to_string())
}
