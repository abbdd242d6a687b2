//! Paginated listings: a repository's tags (`/v2/NAME/tags/list`),
//! following `Link: <...>; rel="next"` on the same origin only.
//!
//! Owns the page, size and total caps of a listing. Never follows a link
//! to another origin: a registry must not send our token elsewhere
//! through pagination (GHSA-h7vf-4x9w-h99v).

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::errors::sorted;
use crate::store::StoreError;
use crate::transport::error::redact_url;
use crate::transport::{Request, Transport, TransportError};

/// Pages of a listing we follow before calling it endless.
pub const MAX_PAGES: usize = 10_000;
/// The most of one page we read.
const MAX_PAGE_BYTES: u64 = 4 * 1024 * 1024;
/// The most of a whole listing we keep: a million 64-character tags.
/// 10,000 pages of 4 MiB would be 40 GiB.
pub const MAX_LISTING_BYTES: u64 = 64 * 1024 * 1024;

/// What a paginated listing is, for its checks and messages.
pub(super) struct Listing<'a> {
    /// Names the listing in messages (`repository HOST/NAME`).
    pub what: &'a str,
    /// The JSON array holding the names (`tags`, `repositories`).
    pub field: &'a str,
    /// For a tag listing, the repository asked about: a page whose `name`
    /// names another repository is refused, since pruning trusts what a
    /// listing leaves out.
    pub repository: Option<&'a str>,
}

/// Every name a paginated listing holds, validated by `check`. A page
/// whose `Link` points back at a page already read ends the listing with
/// an error at once, as does one for another repository.
pub(super) async fn list(
    t: &Transport,
    mut url: url::Url,
    scopes: Vec<String>,
    listing: Listing<'_>,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<Vec<String>, StoreError> {
    let what = listing.what;
    let protocol = |e: String| StoreError::Protocol(format!("{what}: {e}"));
    let mut names = Vec::new();
    let mut total: u64 = 0;
    let mut seen = HashSet::new();
    for _ in 0..MAX_PAGES {
        seen.insert(url.clone());
        let resp = t
            .send(Request::new(Method::GET, url.clone(), scopes.clone()))
            .await
            .map_err(sorted)?;
        if resp.status == StatusCode::NOT_FOUND {
            return Err(StoreError::NotFound {
                what: what.to_string(),
            });
        }
        if resp.status != StatusCode::OK {
            return Err(sorted(resp.into_error().await));
        }
        let next = match resp.header("link") {
            Some(link) => Some(next_page(&resp.url, link)?),
            None => None,
        };
        let body = resp.bytes_capped(MAX_PAGE_BYTES).await?;
        total += body.len() as u64;
        if total > MAX_LISTING_BYTES {
            return Err(StoreError::TooLarge {
                what: format!("the {what} listing"),
                limit: MAX_LISTING_BYTES,
            });
        }
        let page: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| protocol(e.to_string()))?;
        if let Some(asked) = listing.repository {
            same_repository(&page, asked).map_err(protocol)?;
        }
        for name in page_names(&page, listing.field).map_err(protocol)? {
            check(&name).map_err(protocol)?;
            names.push(name);
        }
        match next {
            Some(n) if seen.contains(&n) => {
                return Err(protocol(format!(
                    "the Link header points back at a page already read ({}); the listing would never end",
                    redact_url(&n)
                )));
            }
            Some(n) => url = n,
            None => return Ok(names),
        }
    }
    Err(StoreError::Protocol(format!(
        "{what} goes on past {MAX_PAGES} pages"
    )))
}

/// A tag listing's `name` must be the repository asked about. Registries
/// that serve repositories below a path prefix (a proxy's project, an
/// Artifactory repository key) may name it with or without that prefix, so
/// a name that equals the other at a `/` boundary from the end is taken
/// as the same; a page without `name` is taken as it is.
fn same_repository(page: &serde_json::Value, asked: &str) -> Result<(), String> {
    let listed = match page.get("name") {
        None | Some(serde_json::Value::Null) => return Ok(()),
        Some(serde_json::Value::String(n)) => n.as_str(),
        Some(other) => return Err(format!("the listing's name is not a string: {other}")),
    };
    let ends_with = |long: &str, short: &str| {
        long == short
            || long
                .strip_suffix(short)
                .is_some_and(|head| head.ends_with('/'))
    };
    if ends_with(asked, listed) || ends_with(listed, asked) {
        Ok(())
    } else {
        Err(format!(
            "the tag list names repository {:?}, not {asked:?}; a listing for another repository is refused",
            listed.escape_debug().to_string()
        ))
    }
}

/// The referrers a registry lists for a subject (`/v2/NAME/referrers/D`,
/// all pages), or `None` when it has no referrers API (404, or 405 from
/// registries that route the path elsewhere).
pub(super) async fn referrers(
    t: &Transport,
    mut url: url::Url,
    scopes: Vec<String>,
    what: &str,
    max_page: u64,
) -> Result<Option<Vec<crate::manifest::referrers::Listed>>, StoreError> {
    let mut out = Vec::new();
    for page in 0..MAX_REFERRER_PAGES {
        let req = Request::new(Method::GET, url.clone(), scopes.clone())
            .header(reqwest::header::ACCEPT, crate::media::OCI_INDEX);
        let resp = t.send(req).await.map_err(sorted)?;
        match resp.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED if page == 0 => return Ok(None),
            _ => return Err(sorted(resp.into_error().await)),
        }
        let next = match resp.header("link") {
            Some(link) => Some(next_page(&resp.url, link)?),
            None => None,
        };
        let body = resp.bytes_capped(max_page).await?;
        let list = crate::manifest::referrers::entries(&body)
            .map_err(|e| StoreError::Protocol(format!("{what}: {e}")))?;
        out.extend(list);
        match next {
            Some(n) => url = n,
            None => return Ok(Some(out)),
        }
    }
    Err(StoreError::Protocol(format!(
        "{what} go on past {MAX_REFERRER_PAGES} pages"
    )))
}

/// Pages of a referrers answer we follow.
const MAX_REFERRER_PAGES: usize = 64;

/// The names of one page; a missing or `null` array is an empty page.
fn page_names(page: &serde_json::Value, field: &str) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Names(Option<Vec<String>>);
    match page.get(field) {
        None => Ok(Vec::new()),
        Some(v) => Names::deserialize(v)
            .map(|n| n.0.unwrap_or_default())
            .map_err(|e| format!("{field}: {e}")),
    }
}

/// The `rel="next"` target of a `Link` header, resolved against the page
/// that sent it; only the same origin is followed.
fn next_page(current: &url::Url, link: &str) -> Result<url::Url, StoreError> {
    let target = link
        .split(',')
        .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
        .and_then(|part| part.split_once('<'))
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(u, _)| u.trim())
        .ok_or_else(|| StoreError::Protocol("listing: unreadable Link header".into()))?;
    let next = current
        .join(target)
        .map_err(|_| StoreError::Protocol("listing: invalid Link target".into()))?;
    if next.origin() != current.origin() {
        return Err(StoreError::Transport(TransportError::Refused {
            url: redact_url(&next),
            why: "a listing's Link to another origin".into(),
        }));
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

    #[test]
    fn a_tag_list_must_name_the_repository_asked_about() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        for ok in [
            r#"{"name":"team/app","tags":[]}"#,
            r#"{"tags":["a"]}"#,
            r#"{"name":null}"#,
            r#"{"name":"app"}"#,
            r#"{"name":"proxy/team/app"}"#,
        ] {
            assert!(same_repository(&v(ok), "team/app").is_ok(), "{ok}");
        }
        for bad in [
            r#"{"name":"team/other"}"#,
            r#"{"name":"eam/app"}"#,
            r#"{"name":"team/app2"}"#,
            r#"{"name":7}"#,
        ] {
            assert!(same_repository(&v(bad), "team/app").is_err(), "{bad}");
        }
    }

    #[test]
    fn pages_with_null_or_missing_names_are_empty() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(
            page_names(&v(r#"{"tags":null}"#), "tags").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            page_names(&v(r#"{"name":"a"}"#), "tags").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            page_names(&v(r#"{"tags":["a","b"]}"#), "tags").unwrap(),
            ["a", "b"]
        );
        assert!(page_names(&v(r#"{"tags":[1]}"#), "tags").is_err());
    }
}
