//! The HTTP clients of one transport, built in one place: one for the
//! registry's own origin (with the `certs.d` client certificate, if any),
//! one for everywhere else (redirect targets, upload locations, token
//! servers on other hosts, foreign layers: never a client certificate),
//! and one that follows no redirect at all (a refresh token in a POST body
//! must not be re-posted to wherever a 307 points).
//!
//! Owns TLS settings, timeouts, the redirect policies and name resolution
//! (`dns`). Never decides what to send.

use std::time::Duration;

use url::Url;

use super::dns::Guarded;
use super::error::describe_reqwest;
use super::{TransportOptions, policy, tls};

/// How long a TCP + TLS connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may stay silent while we wait for bytes; a stalled
/// server fails here instead of hanging the copy.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Redirect hops we follow before giving up.
pub(super) const MAX_REDIRECTS: usize = 10;

pub(super) struct Clients {
    own: reqwest::Client,
    /// The own origin on HTTP/1.1 only, for blob bodies (see [`BULK_MIN`]).
    own_bulk: reqwest::Client,
    foreign: reqwest::Client,
    /// For requests whose body carries a secret.
    pub no_redirect: reqwest::Client,
    /// `host:port` of the registry's origin.
    origin: (String, Option<u16>),
    /// The own client stops at a hop to another origin (it holds a client
    /// certificate); the transport follows such hops with `foreign`.
    pub stops_foreign_redirects: bool,
}

/// Blob bodies from this size, up or down, travel on HTTP/1.1 connections
/// of their own. On HTTP/2 every stream of a connection shares one
/// flow-control window: a Go registry's server window (1 MiB) caps uploads
/// at about window / round trip for all blobs together (40 MiB/s at 25 ms,
/// whatever the link), hyper's client windows (2 MiB a stream, 5 MiB the
/// connection) do the same to downloads, and a stream read slowly holds the
/// connection's window from the others (hyperium/hyper#2899). hyper's
/// adaptive window was tried for downloads and dropped: it stalled about one
/// `--all-tags` run in six until the 60 s read timeout. On HTTP/1.1 each
/// blob has a TCP connection whose window grows with the link, as skopeo's
/// do. Smaller requests (manifests, HEADs, mounts, tokens) keep multiplexing
/// on one HTTP/2 connection.
pub const BULK_MIN: u64 = 1 << 20;

impl Clients {
    pub fn build(base: &Url, options: &TransportOptions) -> Result<Clients, String> {
        let host = base.host_str().unwrap_or_default().to_string();
        let insecure = options.tls_verify == Some(false);
        let read_timeout = options.read_timeout.unwrap_or(READ_TIMEOUT);
        let start = || common(&host, read_timeout);
        let origin = (host.clone(), base.port_or_known_default());
        let dir = match &options.cert_dir {
            Some(d) => Some(tls::read_cert_dir(d)?),
            None => None,
        };
        let identity = dir.as_ref().and_then(|d| d.identity.as_ref());
        let has_identity = identity.is_some();
        let verifier = tls::verifier(dir.as_ref(), insecure)?;
        let tls = |identity, http1_only| tls::client_config(verifier.clone(), identity, http1_only);
        // The own origin's client: the cert dir's client certificate.
        // `bulk`: HTTP/1.1 only, in ALPN as well, since a preconfigured
        // rustls config offers what it lists whatever the builder says.
        let own = |bulk: bool| -> Result<reqwest::ClientBuilder, String> {
            let redirects = if has_identity {
                same_origin_only(origin.clone())
            } else {
                follow_checked()
            };
            let builder = if bulk { start().http1_only() } else { start() };
            Ok(builder
                .tls_backend_preconfigured(tls(identity, bulk)?)
                .redirect(redirects))
        };
        // Everywhere else: never the client certificate.
        let other = || -> Result<reqwest::ClientBuilder, String> {
            Ok(start().tls_backend_preconfigured(tls(None, false)?))
        };
        let built = |b: reqwest::ClientBuilder| {
            b.build()
                .map_err(|e| format!("cannot build an HTTP client: {}", describe_reqwest(&e)))
        };
        Ok(Clients {
            own: built(own(false)?)?,
            own_bulk: built(own(true)?)?,
            foreign: built(other()?.redirect(follow_checked()))?,
            no_redirect: built(other()?.redirect(reqwest::redirect::Policy::none()))?,
            origin,
            stops_foreign_redirects: has_identity,
        })
    }

    /// The client for a request to `url`; `bulk` for a blob body of at
    /// least [`BULK_MIN`] bytes.
    pub fn for_url(&self, url: &Url, bulk: bool) -> &reqwest::Client {
        if (
            url.host_str().unwrap_or_default(),
            url.port_or_known_default(),
        ) != (self.origin.0.as_str(), self.origin.1)
        {
            &self.foreign
        } else if bulk {
            &self.own_bulk
        } else {
            &self.own
        }
    }
}

fn common(host: &str, read_timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(read_timeout)
        .dns_resolver(Guarded::new(host))
        .user_agent(concat!("ocirepl/", env!("CARGO_PKG_VERSION")))
}

/// Follows at most [`MAX_REDIRECTS`] hops, each allowed by
/// [`policy::check_hop`]. reqwest itself drops `Authorization` when a hop
/// changes origin.
fn follow_checked() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(checked)
}

fn checked(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    let refused = attempt
        .previous()
        .last()
        .and_then(|prev| policy::check_hop(prev, attempt.url()).err());
    if let Some(why) = refused {
        attempt.error(why)
    } else if attempt.previous().len() >= MAX_REDIRECTS {
        attempt.error("too many redirects")
    } else {
        attempt.follow()
    }
}

/// Like [`follow_checked`], but stops at a hop to another origin: the
/// answer goes back to the transport, which follows it without the client
/// certificate.
fn same_origin_only(origin: (String, Option<u16>)) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let to = attempt.url();
        if (
            to.host_str().unwrap_or_default(),
            to.port_or_known_default(),
        ) != (origin.0.as_str(), origin.1)
        {
            return attempt.stop();
        }
        checked(attempt)
    })
}
