//! The daemon's HTTP server: hyper's HTTP/1.1 server (maintained, already
//! in the tree through reqwest) under limits a listener on a network needs.
//!
//! Owns connections, not routes: a cap on open connections (the oldest not
//! being answered is dropped to make room, so a crowd of idle or trickling
//! clients cannot shut out a probe nor cut off a request in its handler,
//! and the process never runs out of descriptors), a
//! deadline for the request head (hyper's, which also bounds the idle time
//! between keep-alive requests) and for the body, a cap on the body and the
//! head, a deadline for a whole connection, a pause after a failed accept
//! instead of a hot loop, and a graceful stop. Handlers get a request with
//! its body read; they never see a socket.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What a server allows one client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; one more drops the oldest.
    pub connections: usize,
    /// To send the request head (and between keep-alive requests).
    pub head: Duration,
    /// To send the body, once the head is in.
    pub body: Duration,
    /// A whole connection, whatever it does.
    pub connection: Duration,
    pub max_body: usize,
    /// The head's buffer (request line and headers).
    pub max_head: usize,
}

impl Limits {
    /// For the daemon: bodies of 1 MiB (a notification is a few KiB), 10 s
    /// for a head or a body, a minute per connection, and connections up to
    /// a quarter of the descriptors this process may open (at most 512).
    pub fn daemon() -> Limits {
        Limits {
            connections: connection_cap(),
            head: Duration::from_secs(10),
            body: Duration::from_secs(10),
            connection: Duration::from_secs(60),
            max_body: 1024 * 1024,
            max_head: 64 * 1024,
        }
    }
}

/// A quarter of the soft descriptor limit, between 16 and 512: the rest is
/// for registries, the state file and the archive volumes.
fn connection_cap() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given, nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let soft = if ok { limit.rlim_cur as usize } else { 1024 };
    (soft / 4).clamp(16, 512)
}

/// A request with its body read.
pub struct Request {
    pub method: hyper::Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What a handler answers.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    pub fn json(status: u16, body: &serde_json::Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: format!("{body}\n"),
        }
    }
}

pub type Handler = Arc<dyn Fn(Request) -> BoxFuture<'static, Response> + Send + Sync>;

/// The connections open now, oldest first.
#[derive(Default)]
struct Open {
    next_id: u64,
    conns: VecDeque<Conn>,
}

/// One open connection: the token that drops it, and whether a request of
/// it is being answered (its head arrived, its handler runs).
struct Conn {
    id: u64,
    dropped: CancellationToken,
    busy: Arc<AtomicBool>,
}

/// Serves `listener` until `stop` is cancelled, then lets requests in
/// flight finish within `grace`.
pub async fn serve(
    listener: TcpListener,
    handler: Handler,
    limits: Limits,
    stop: CancellationToken,
    grace: Duration,
) {
    let open: Arc<Mutex<Open>> = Arc::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, _) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, say: pause rather than spin.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (id, dropped, busy) = admit(&open, limits.connections);
        let watcher = graceful.watcher();
        let handler = handler.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.head)
                .max_buf_size(limits.max_head.max(8192))
                .keep_alive(true);
            let service = service_fn(move |req| {
                let (handler, busy) = (handler.clone(), busy.clone());
                async move {
                    busy.store(true, Ordering::Relaxed);
                    let answer = respond(req, handler, limits).await;
                    busy.store(false, Ordering::Relaxed);
                    answer
                }
            });
            let conn = watcher.watch(builder.serve_connection(TokioIo::new(tcp), service));
            tokio::select! {
                _ = conn => {}
                _ = dropped.cancelled() => {}
                _ = tokio::time::sleep(limits.connection) => {}
            }
            if let Ok(mut o) = open.lock() {
                o.conns.retain(|c| c.id != id);
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after the grace period: dropped");
    }
}

/// Registers a new connection. At the cap, the oldest that is not being
/// answered is dropped (a trickler, an idle keep-alive), so that a flood of
/// new connections cannot cut off a request in its handler; when every one
/// is being answered, the oldest.
fn admit(open: &Mutex<Open>, cap: usize) -> (u64, CancellationToken, Arc<AtomicBool>) {
    let token = CancellationToken::new();
    let busy = Arc::new(AtomicBool::new(false));
    let Ok(mut o) = open.lock() else {
        return (0, token, busy);
    };
    while o.conns.len() >= cap.max(1) {
        let idle = o.conns.iter().position(|c| !c.busy.load(Ordering::Relaxed));
        if let Some(c) = o.conns.remove(idle.unwrap_or(0)) {
            c.dropped.cancel();
        }
    }
    o.next_id += 1;
    let id = o.next_id;
    o.conns.push_back(Conn {
        id,
        dropped: token.clone(),
        busy: busy.clone(),
    });
    (id, token, busy)
}

/// Reads the body within the limits, then asks the handler.
async fn respond(
    req: hyper::Request<Incoming>,
    handler: Handler,
    limits: Limits,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return Ok(reply(Response::text(413, "body too large\n")));
    }
    let read = tokio::time::timeout(limits.body, Limited::new(body, limits.max_body).collect());
    let body = match read.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Ok(reply(Response::text(413, "body too large\n")));
        }
        Ok(Err(_)) => return Ok(reply(Response::text(400, "unreadable body\n"))),
        Err(_) => return Ok(reply(Response::text(408, "body too slow\n"))),
    };
    let request = Request {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    Ok(reply(handler(request).await))
}

fn reply(r: Response) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(r.body)));
    *out.status_mut() =
        hyper::StatusCode::from_u16(r.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = r.content_type.parse() {
        out.headers_mut().insert(CONTENT_TYPE, v);
    }
    out
}
