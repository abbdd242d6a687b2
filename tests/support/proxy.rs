//! A fault-injecting reverse proxy in front of a real registry. ocirepl
//! talks to the proxy's port as if it were the registry; rules keyed on
//! method, a path substring and the call count answer in the registry's
//! place, cut a response short, drop it after the request went through, or
//! delay it. `Location` headers are rewritten to the proxy so that uploads
//! keep coming through it. Every exchange is recorded.

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::fake::{Reply, Seen, read_request, write_reply};

/// What a rule does to a matching exchange.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this without asking the registry.
    Reply(Reply),
    /// Forward, then send the headers and only this many body bytes, and cut
    /// the connection.
    CutBodyAfter(usize),
    /// Forward (the registry acts on it), then close without any answer.
    DropResponse,
    /// Close without forwarding (the registry never hears of it).
    Refuse,
    /// Wait, then forward.
    Delay(Duration),
}

#[derive(Clone, Debug)]
pub struct ProxyRule {
    pub method: String,
    pub path_contains: String,
    /// Matching exchanges let through before the fault applies.
    pub skip: usize,
    /// How many times it applies (then the rule is spent).
    pub times: usize,
    pub fault: Fault,
}

impl ProxyRule {
    pub fn new(method: &str, path_contains: &str, fault: Fault) -> ProxyRule {
        ProxyRule {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            skip: 0,
            times: 1,
            fault,
        }
    }

    pub fn times(mut self, n: usize) -> ProxyRule {
        self.times = n;
        self
    }

    pub fn skip(mut self, n: usize) -> ProxyRule {
        self.skip = n;
        self
    }
}

/// One exchange as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: String,
    pub target: String,
    pub status: u16,
    pub request_headers: Vec<(String, String)>,
    pub faulted: bool,
}

#[derive(Default)]
struct State {
    rules: Vec<ProxyRule>,
    log: Vec<Exchange>,
}

pub struct FaultProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy to the registry on `upstream_port`.
    pub fn start(upstream_port: u16) -> FaultProxy {
        let std_listener = StdListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = std_listener.local_addr().expect("addr").port();
        std_listener.set_nonblocking(true).expect("nonblocking");
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("listener");
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .expect("client");
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        continue;
                    };
                    let (state, client) = (shared.clone(), client.clone());
                    tokio::spawn(async move {
                        let _ = serve(sock, state, client, port, upstream_port).await;
                    });
                }
            });
        });
        FaultProxy { port, state }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn image(&self, repo_tag: &str) -> String {
        format!("{}/{}", self.host(), repo_tag)
    }

    pub fn rule(&self, rule: ProxyRule) {
        self.state.lock().unwrap().rules.push(rule);
    }

    pub fn log(&self) -> Vec<Exchange> {
        self.state.lock().unwrap().log.clone()
    }

    /// Exchanges whose method is `method` and path contains `part`.
    pub fn count(&self, method: &str, part: &str) -> usize {
        self.log()
            .iter()
            .filter(|e| e.method == method && e.target.contains(part))
            .count()
    }
}

fn pick(state: &Mutex<State>, req: &Seen) -> Option<Fault> {
    let mut s = state.lock().unwrap();
    for rule in s.rules.iter_mut() {
        let method_matches = rule.method == "*" || rule.method == req.method;
        if rule.times == 0 || !method_matches || !req.path().contains(&rule.path_contains) {
            continue;
        }
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        rule.times -= 1;
        return Some(rule.fault.clone());
    }
    None
}

async fn serve(
    sock: TcpStream,
    state: Arc<Mutex<State>>,
    client: reqwest::Client,
    port: u16,
    upstream: u16,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(sock);
    while let Some(req) = read_request(&mut reader).await {
        let fault = pick(&state, &req);
        let record = |status: u16, faulted: bool| {
            state.lock().unwrap().log.push(Exchange {
                method: req.method.clone(),
                target: req.target.clone(),
                status,
                request_headers: req.headers.clone(),
                faulted,
            });
        };
        let sock = reader.get_mut();
        match &fault {
            Some(Fault::Reply(reply)) => {
                record(reply.status, true);
                write_reply(sock, reply, req.method == "HEAD", false).await?;
                continue;
            }
            Some(Fault::Refuse) => {
                record(0, true);
                let _ = sock.shutdown().await;
                return Ok(());
            }
            Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
            _ => {}
        }
        let reply = forward(&client, &req, upstream, port).await;
        record(reply.status, fault.is_some());
        match fault {
            Some(Fault::DropResponse) => {
                let _ = sock.shutdown().await;
                return Ok(());
            }
            Some(Fault::CutBodyAfter(n)) => {
                let mut cut = reply.clone();
                cut.content_length = Some(reply.body.len());
                cut.body.truncate(n);
                write_reply(sock, &cut, false, true).await?;
                let _ = sock.shutdown().await;
                return Ok(());
            }
            _ => {
                write_reply(sock, &reply, req.method == "HEAD", false).await?;
            }
        }
    }
    Ok(())
}

async fn forward(client: &reqwest::Client, req: &Seen, upstream: u16, port: u16) -> Reply {
    let url = format!("http://127.0.0.1:{upstream}{}", req.target);
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut builder = client.request(method, url);
    for (k, v) in &req.headers {
        let lower = k.to_ascii_lowercase();
        if !matches!(
            lower.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            builder = builder.header(k, v);
        }
    }
    let resp = match builder.body(req.body.clone()).send().await {
        Ok(r) => r,
        Err(_) => return Reply::status(502),
    };
    let status = resp.status().as_u16();
    // A HEAD answer's length is the resource's size, not its (empty) body's.
    let head_length = (req.method == "HEAD")
        .then(|| {
            resp.headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok()?.parse().ok())
        })
        .flatten();
    let mut headers = Vec::new();
    for (k, v) in resp.headers() {
        let lower = k.as_str();
        if matches!(lower, "content-length" | "connection" | "transfer-encoding") {
            continue;
        }
        let mut value = v.to_str().unwrap_or("").to_string();
        if lower == "location" {
            value = value.replace(
                &format!("127.0.0.1:{upstream}"),
                &format!("127.0.0.1:{port}"),
            );
        }
        headers.push((k.as_str().to_string(), value));
    }
    let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    Reply {
        status,
        headers,
        body,
        content_length: head_length,
        chunked: false,
    }
}
