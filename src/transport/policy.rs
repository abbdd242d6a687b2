//! Where a request may go: token realms, redirect hops, upload `Location`s
//! and pagination links, checked before anything is sent there.
//!
//! Owns the rules that keep credentials and traffic where they belong: no
//! downgrade from https to http, no hop to an internal address (loopback,
//! private, link-local, unspecified) unless the registry itself lives on
//! that host. Never sends anything; the transport asks before it does.

use std::net::IpAddr;

use url::Url;

/// Where a registry may send our credentials for a token: https unless the
/// registry itself is plain http; never an internal address (loopback,
/// private, link-local, unspecified) unless the registry lives on that very
/// host.
pub fn check_realm(registry: &Url, realm: &Url) -> Result<(), String> {
    match realm.scheme() {
        "https" => {}
        "http" if registry.scheme() == "http" => {}
        "http" => return Err("plain-http token realm for an https registry".into()),
        other => return Err(format!("token realm with scheme {other:?}")),
    }
    let host = realm.host_str().unwrap_or("");
    if realm.host_str() == registry.host_str() {
        return Ok(());
    }
    if let Some(ip) = ip_literal(realm)
        && is_internal(&ip)
    {
        return Err(format!(
            "token realm on internal address {ip} while the registry is elsewhere"
        ));
    }
    if is_internal_name(host) && !registry_host_internal(registry) {
        return Err(format!(
            "token realm on internal host {host} while the registry is elsewhere"
        ));
    }
    Ok(())
}

/// `localhost` and `*.localhost` name this machine whatever DNS says (RFC 6761).
pub fn is_internal_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

pub fn is_internal(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_internal(&IpAddr::V4(v4)))
        }
    }
}

/// Whether a request may follow a registry from `from` to `to` (a redirect,
/// an upload `Location`, a `Link` page). Another origin is allowed (it gets
/// no credentials: the transport sends them only to the registry's own
/// origin), but not a downgrade to http nor an internal address elsewhere.
pub fn check_hop(from: &Url, to: &Url) -> Result<(), String> {
    if !matches!(to.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is not http(s)", to.scheme()));
    }
    if from.scheme() == "https" && to.scheme() == "http" {
        return Err("refusing to go from https to plain http".into());
    }
    if to.host_str() == from.host_str() {
        return Ok(());
    }
    if let Some(ip) = ip_literal(to)
        && is_internal(&ip)
    {
        return Err(format!(
            "refusing to follow {} to internal address {ip}",
            from.host_str().unwrap_or("")
        ));
    }
    if let Some(host) = to.host_str()
        && is_internal_name(host)
        && !registry_host_internal(from)
    {
        return Err(format!(
            "refusing to follow {} to internal host {host}",
            from.host_str().unwrap_or("")
        ));
    }
    Ok(())
}

/// Whether a URL's host is written as an internal name or address (names
/// that only resolve inward are the resolver's to judge).
fn registry_host_internal(u: &Url) -> bool {
    u.host_str().is_some_and(is_internal_name) || ip_literal(u).is_some_and(|ip| is_internal(&ip))
}

fn ip_literal(u: &Url) -> Option<IpAddr> {
    u.host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_policy() {
        let https_reg = Url::parse("https://registry.example").unwrap();
        let local_reg = Url::parse("http://127.0.0.1:5000").unwrap();
        let ok = |r: &Url, realm: &str| check_realm(r, &Url::parse(realm).unwrap()).is_ok();
        assert!(ok(&https_reg, "https://auth.example/token"));
        assert!(!ok(&https_reg, "http://auth.example/token"));
        assert!(!ok(&https_reg, "https://127.0.0.1/token"));
        assert!(!ok(&https_reg, "https://169.254.169.254/latest"));
        assert!(!ok(&https_reg, "https://10.1.2.3/token"));
        assert!(!ok(&https_reg, "https://[::1]/token"));
        assert!(!ok(&https_reg, "https://0.0.0.0/token"));
        assert!(!ok(&https_reg, "file:///etc/passwd"));
        assert!(ok(&local_reg, "http://127.0.0.1:5001/token"));
        // Names that are this machine, for a registry elsewhere.
        assert!(!ok(&https_reg, "https://localhost/token"));
        assert!(!ok(&https_reg, "https://auth.localhost/token"));
        assert!(ok(
            &Url::parse("http://localhost:5000").unwrap(),
            "http://auth.localhost:5001/t"
        ));
    }

    #[test]
    fn hop_policy() {
        let u = |s: &str| Url::parse(s).unwrap();
        let reg = u("https://registry.example/v2/a/blobs/uploads/");
        assert!(check_hop(&reg, &u("https://registry.example/upload/1?_state=x")).is_ok());
        assert!(check_hop(&reg, &u("https://storage.example/blob?sig=1")).is_ok());
        assert!(check_hop(&reg, &u("http://registry.example/upload")).is_err());
        assert!(check_hop(&reg, &u("https://10.0.0.1/upload")).is_err());
        assert!(check_hop(&reg, &u("https://169.254.169.254/latest")).is_err());
        assert!(check_hop(&reg, &u("https://[::1]:5000/x")).is_err());
        assert!(check_hop(&reg, &u("ftp://registry.example/x")).is_err());
        assert!(check_hop(&reg, &u("https://localhost:9000/x")).is_err());
        assert!(check_hop(&reg, &u("https://api.localhost./x")).is_err());
        let local = u("http://127.0.0.1:5000/v2/");
        assert!(
            check_hop(&local, &u("http://127.0.0.1:5001/x")).is_ok(),
            "same host, other port"
        );
        assert!(
            check_hop(
                &u("http://localhost:5000/v2/"),
                &u("http://127.0.0.1:5001/x")
            )
            .is_err()
        );
    }
}
