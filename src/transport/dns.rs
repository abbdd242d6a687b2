//! Name resolution that keeps a public registry from steering us inward:
//! a realm, a redirect or an upload `Location` whose *name* resolves to a
//! loopback, private or link-local address is refused, unless the registry
//! itself lives on such an address (a corporate registry and its token
//! server on 10.x are normal). IP literals are checked by `policy` before
//! anything is sent; this covers names, at the moment they are resolved
//! (so a name that changes its answer between check and use is caught too).
//!
//! Owns that decision. Never sends anything and never resolves the proxy
//! away: hosts named in proxy variables are exempt.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::OnceCell;

use super::policy::{is_internal, is_internal_name};

/// The refusal, recognisable in an error chain.
#[derive(Debug)]
pub struct InternalAddress {
    pub host: String,
    pub ip: IpAddr,
}

impl std::fmt::Display for InternalAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves to internal address {} while the registry is elsewhere",
            self.host, self.ip
        )
    }
}

impl std::error::Error for InternalAddress {}

/// A resolver for one registry's transport.
pub struct Guarded(Arc<State>);

struct State {
    registry_host: String,
    exempt: HashSet<String>,
    /// Whether the registry itself is on an internal address (then so may
    /// be everything it points at).
    registry_internal: OnceCell<bool>,
}

impl Guarded {
    pub fn new(registry_host: &str) -> Arc<Guarded> {
        Arc::new(Guarded(Arc::new(State {
            registry_host: registry_host.to_ascii_lowercase(),
            exempt: proxy_hosts(),
            registry_internal: OnceCell::new(),
        })))
    }
}

/// Hosts of the proxy variables: connecting to a proxy on 10.x is normal.
fn proxy_hosts() -> HashSet<String> {
    [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok())
    .filter_map(|v| url::Url::parse(&v).ok())
    .filter_map(|u| u.host_str().map(str::to_ascii_lowercase))
    .collect()
}

async fn lookup(host: &str) -> std::io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((host, 0)).await?.collect())
}

/// The decision, given what the names resolved to.
pub fn refused(
    host: &str,
    addrs: &[SocketAddr],
    registry_host: &str,
    registry_internal: bool,
) -> Option<InternalAddress> {
    if registry_internal || host.eq_ignore_ascii_case(registry_host) {
        return None;
    }
    if is_internal_name(host) {
        return Some(InternalAddress {
            host: host.to_string(),
            ip: addrs
                .first()
                .map_or(IpAddr::from([127, 0, 0, 1]), SocketAddr::ip),
        });
    }
    addrs
        .iter()
        .map(SocketAddr::ip)
        .find(is_internal)
        .map(|ip| InternalAddress {
            host: host.to_string(),
            ip,
        })
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let state = self.0.clone();
        Box::pin(async move {
            let addrs = lookup(&host).await?;
            if !state.exempt.contains(&host) {
                let internal = *state
                    .registry_internal
                    .get_or_init(|| registry_is_internal(state.registry_host.clone()))
                    .await;
                if let Some(why) = refused(&host, &addrs, &state.registry_host, internal) {
                    return Err(Box::new(why) as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

async fn registry_is_internal(host: String) -> bool {
    if is_internal_name(&host) {
        return true;
    }
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return is_internal(&ip);
    }
    lookup(&host)
        .await
        .map(|a| a.iter().any(|s| is_internal(&s.ip())))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: &str) -> Vec<SocketAddr> {
        vec![SocketAddr::new(ip.parse().unwrap(), 0)]
    }

    #[test]
    fn names_that_resolve_inward_are_refused_for_a_public_registry() {
        let reg = "registry.example.com";
        assert!(refused("auth.example.com", &at("203.0.113.9"), reg, false).is_none());
        assert!(refused("auth.example.com", &at("10.0.0.7"), reg, false).is_some());
        assert!(refused("metadata.example", &at("169.254.169.254"), reg, false).is_some());
        assert!(refused("evil.example", &at("127.0.0.1"), reg, false).is_some());
        assert!(refused("evil.example", &at("::1"), reg, false).is_some());
        assert!(refused("localhost", &at("127.0.0.1"), reg, false).is_some());
        assert!(refused("x.localhost", &[], reg, false).is_some());
        // The registry's own name, and any name for an internal registry.
        assert!(refused(reg, &at("10.0.0.7"), reg, false).is_none());
        assert!(refused("auth.corp", &at("10.0.0.8"), "registry.corp", true).is_none());
    }
}
