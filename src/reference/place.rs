//! Where a registry is reached: the server behind a reference's
//! `HOST[:PORT]`, as the transport will connect to it. Two spellings of one
//! registry (`localhost:5000` and `127.0.0.1:5000`, `127.0.0.01`, port
//! `05000`, `[::ffff:127.0.0.1]`, `docker.io` and `registry.hub.docker.com`)
//! are one place, so that a mirror job whose target is its source, spelled
//! differently, is refused before it rewrites the source.
//!
//! Owns that comparison. Never resolves a name: two names that resolve to
//! one address may still be two registries behind one load balancer, so
//! only what the address itself says is compared.

use std::net::IpAddr;

use super::{DOCKER_HUB, Reference};

/// The server a registry name reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    host: Host,
    /// The port as written (leading zeros read as the URL parser reads
    /// them); `None` for the scheme's default.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    /// This machine: `localhost`, `*.localhost`, 127/8, `::1`, the
    /// unspecified addresses (which Linux connects to this machine) and
    /// their IPv4-mapped IPv6 forms.
    Loopback,
    /// Docker Hub under any of its names.
    DockerHub,
    Ip(IpAddr),
    /// A DNS name, lower-case.
    Name(String),
}

/// Other names Docker Hub answers to, beyond those the reference grammar
/// already folds into [`DOCKER_HUB`].
const DOCKER_HUB_NAMES: [&str; 4] = [
    DOCKER_HUB,
    "docker.io",
    "index.docker.io",
    "registry.hub.docker.com",
];

impl Place {
    /// The place of a `HOST[:PORT]` as a reference holds it.
    pub fn of_registry(registry: &str) -> Place {
        // The transport builds its URLs with the `url` crate, so its reading
        // of odd spellings (`127.0.0.01`, `0x7f.1`, `06101`) is the one that
        // counts. A registry it cannot parse is kept as written.
        let Ok(url) = url::Url::parse(&format!("http://{registry}/")) else {
            return Place {
                host: Host::Name(registry.to_ascii_lowercase()),
                port: None,
            };
        };
        let host = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip_host(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => ip_host(IpAddr::V6(ip)),
            Some(url::Host::Domain(d)) => name_host(d),
            None => Host::Name(registry.to_ascii_lowercase()),
        };
        // The URL parser drops the default port of its scheme (http: 80).
        let port = url.port().or_else(|| {
            let written = registry.rsplit_once(':').map(|(_, p)| p);
            written.and_then(|p| p.parse::<u16>().ok())
        });
        Place { host, port }
    }

    /// Whether two places are one server. A missing port matches 80 and
    /// 443 as well as another missing port: which default applies depends
    /// on TLS settings, and taking two places for one only refuses a job.
    pub fn same(&self, other: &Place) -> bool {
        let defaults = |p: Option<u16>| matches!(p, None | Some(80) | Some(443));
        self.host == other.host
            && (self.port == other.port
                || (self.port.is_none() && defaults(other.port))
                || (other.port.is_none() && defaults(self.port)))
    }
}

fn ip_host(ip: IpAddr) -> Host {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() || ip.is_unspecified() {
        Host::Loopback
    } else {
        Host::Ip(ip)
    }
}

fn name_host(name: &str) -> Host {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        Host::Loopback
    } else if DOCKER_HUB_NAMES.contains(&name.as_str()) {
        Host::DockerHub
    } else {
        Host::Name(name)
    }
}

impl Reference {
    /// The server this reference's registry reaches.
    pub fn place(&self) -> Place {
        Place::of_registry(self.registry())
    }

    /// Whether `other` names the same repository of the same registry,
    /// however either spells the registry.
    pub fn same_repository(&self, other: &Reference) -> bool {
        self.repository() == other.repository() && self.place().same(&other.place())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(registry: &str) -> Place {
        Place::of_registry(registry)
    }

    #[test]
    fn spellings_of_one_server_are_one_place() {
        let same = [
            ("localhost:5000", "127.0.0.1:5000"),
            ("127.0.0.1:5000", "127.0.0.01:5000"),
            ("127.0.0.1:6101", "127.0.0.1:06101"),
            ("127.0.0.1:5000", "[::ffff:127.0.0.1]:5000"),
            ("127.0.0.1:5000", "[::1]:5000"),
            ("127.0.0.1:5000", "127.1.2.3:5000"),
            ("127.0.0.1:5000", "0x7f.1:5000"),
            ("localhost:5000", "app.localhost:5000"),
            ("0.0.0.0:5000", "localhost:5000"),
            ("Registry.Example.com", "registry.example.com"),
            ("registry.example.com", "registry.example.com:443"),
            ("registry-1.docker.io", "registry.hub.docker.com"),
            ("docker.io", "index.docker.io"),
            ("10.0.0.1:5000", "[::ffff:10.0.0.1]:5000"),
        ];
        for (a, b) in same {
            assert!(place(a).same(&place(b)), "{a} and {b} are one server");
            assert!(place(b).same(&place(a)), "{b} and {a} are one server");
        }
    }

    #[test]
    fn different_servers_are_different_places() {
        let different = [
            ("localhost:5000", "localhost:5001"),
            ("127.0.0.1:5000", "10.0.0.1:5000"),
            ("registry.example.com", "mirror.example.com"),
            ("registry.example.com:5000", "registry.example.com"),
            ("registry-1.docker.io", "ghcr.io"),
        ];
        for (a, b) in different {
            assert!(!place(a).same(&place(b)), "{a} and {b} differ");
        }
    }

    #[test]
    fn repositories_compare_by_place_and_path() {
        let r = |s: &str| Reference::parse(s).unwrap();
        assert!(r("localhost:5000/multi").same_repository(&r("127.0.0.1:5000/multi")));
        assert!(r("alpine").same_repository(&r("registry.hub.docker.com/library/alpine")));
        assert!(!r("localhost:5000/multi").same_repository(&r("127.0.0.1:5000/other")));
    }
}
