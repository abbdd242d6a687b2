//! A scripted registry on 127.0.0.1 for behaviour a real registry will not
//! show on demand: lies, faults and hostile answers. It serves an honest
//! in-memory registry (manifests, blobs, monolithic and chunked uploads with
//! *relative* `Location` headers) and lets a test override any request with
//! a [`Rule`]. Every request is recorded as (method, path, status).
//!
//! The HTTP/1.1 server is written by hand on purpose: it must be able to
//! send what a well-behaved server library refuses to (a body longer or
//! shorter than its `Content-Length`, a dropped connection).

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::image::sha256;

/// One answer the fake sends.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When set, the `Content-Length` header states this instead of the
    /// real body length (a lie), and the connection closes after the body.
    pub content_length: Option<usize>,
    /// Send the body with chunked transfer encoding (no length at all).
    pub chunked: bool,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::default()
        }
    }

    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: format!(r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#)
                .into_bytes(),
            content_length: None,
            chunked: false,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Reply {
        self.body = body;
        self
    }
}

/// A request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path with query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// The path, also for proxy requests in absolute form
    /// (`GET http://host/v2/... HTTP/1.1`).
    pub fn path(&self) -> &str {
        let t = self.target.split('?').next().unwrap_or("");
        match t
            .strip_prefix("http://")
            .or_else(|| t.strip_prefix("https://"))
        {
            Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => t,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Transform = Arc<dyn Fn(&Seen, Reply) -> Reply + Send + Sync>;

/// Overrides matching requests: `method` and a path substring, for the
/// first `times` matches (or always).
#[derive(Clone)]
pub struct Rule {
    pub method: String,
    pub path_contains: String,
    pub times: Option<usize>,
    pub transform: Transform,
}

impl Rule {
    /// Replace the honest answer with `reply`.
    pub fn reply(method: &str, path_contains: &str, reply: Reply) -> Rule {
        Rule::map(method, path_contains, move |_, _| reply.clone())
    }

    /// Transform the honest answer.
    pub fn map(
        method: &str,
        path_contains: &str,
        f: impl Fn(&Seen, Reply) -> Reply + Send + Sync + 'static,
    ) -> Rule {
        Rule {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            times: None,
            transform: Arc::new(f),
        }
    }

    pub fn times(mut self, n: usize) -> Rule {
        self.times = Some(n);
        self
    }
}

/// Decides whether an `Authorization` header (or its absence) is accepted.
pub type Acceptor = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// Makes the fake demand credentials on `/v2/...`: requests whose
/// `Authorization` header `accept` refuses get a 401 with `challenge`.
#[derive(Clone)]
pub struct FakeAuth {
    pub challenge: String,
    pub accept: Acceptor,
}

#[derive(Default)]
struct State {
    auth: Option<FakeAuth>,
    /// (repo, tag-or-digest) → (content type, bytes)
    manifests: HashMap<(String, String), (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
    uploads: HashMap<String, Vec<u8>>,
    next_upload: u64,
    rules: Vec<Rule>,
    log: Vec<(String, String, u16)>,
    seen: Vec<Seen>,
    /// The OCI 1.1 referrers API, with this many referrers per page.
    referrers_page: Option<usize>,
}

/// The running fake; it stops with the test process.
pub struct FakeRegistry {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeRegistry {
    pub fn start() -> FakeRegistry {
        let std_listener = StdListener::bind("127.0.0.1:0").expect("bind fake");
        let port = std_listener.local_addr().expect("addr").port();
        std_listener.set_nonblocking(true).expect("nonblocking");
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("listener");
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = shared.clone();
                    tokio::spawn(async move {
                        let _ = serve(sock, state).await;
                    });
                }
            });
        });
        FakeRegistry { port, state }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn image(&self, repo_tag: &str) -> String {
        format!("{}/{}", self.host(), repo_tag)
    }

    pub fn rule(&self, rule: Rule) {
        self.state.lock().unwrap().rules.push(rule);
    }

    /// Serves `/v2/REPO/referrers/DIGEST` from the manifests it holds,
    /// `page` per page (Link pagination), filtering by `artifactType`.
    pub fn with_referrers_api(&self, page: usize) {
        self.state.lock().unwrap().referrers_page = Some(page.max(1));
    }

    pub fn require_auth(&self, auth: FakeAuth) {
        self.state.lock().unwrap().auth = Some(auth);
    }

    pub fn add_blob(&self, data: &[u8]) -> String {
        let d = sha256(data);
        self.state
            .lock()
            .unwrap()
            .blobs
            .insert(d.clone(), data.to_vec());
        d
    }

    pub fn add_manifest(&self, repo: &str, reference: &str, content_type: &str, bytes: &[u8]) {
        let mut s = self.state.lock().unwrap();
        let entry = (content_type.to_string(), bytes.to_vec());
        s.manifests
            .insert((repo.to_string(), sha256(bytes)), entry.clone());
        s.manifests
            .insert((repo.to_string(), reference.to_string()), entry);
    }

    /// Loads every blob of an OCI layout and its tagged manifests into `repo`.
    pub fn load_layout(&self, dir: &std::path::Path, repo: &str) {
        let blobs = dir.join("blobs/sha256");
        for e in std::fs::read_dir(&blobs).expect("layout blobs") {
            let data = std::fs::read(e.expect("entry").path()).expect("blob");
            self.add_blob(&data);
            // Any blob may be a manifest asked for by digest.
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data)
                && let Some(mt) = v["mediaType"].as_str()
                && (v.get("manifests").is_some() || v.get("layers").is_some())
            {
                self.add_manifest(repo, &sha256(&data), mt, &data);
            }
        }
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index"))
                .expect("json");
        for m in index["manifests"].as_array().expect("manifests") {
            let tag = m["annotations"]["org.opencontainers.image.ref.name"].as_str();
            let digest = m["digest"].as_str().expect("digest");
            let bytes = self.state.lock().unwrap().blobs[digest].clone();
            if let Some(tag) = tag {
                self.add_manifest(repo, tag, m["mediaType"].as_str().expect("mt"), &bytes);
            }
        }
    }

    /// (method, path, status) of every request so far.
    pub fn log(&self) -> Vec<(String, String, u16)> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn has_manifest(&self, repo: &str, reference: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .manifests
            .contains_key(&(repo.to_string(), reference.to_string()))
    }

    pub fn blob(&self, digest: &str) -> Option<Vec<u8>> {
        self.state.lock().unwrap().blobs.get(digest).cloned()
    }

    /// Upload sessions opened and neither finished nor cancelled.
    pub fn open_uploads(&self) -> usize {
        self.state.lock().unwrap().uploads.len()
    }
}

pub async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Seen> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.trim_end().split(' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).await.ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut seen = Seen {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = seen
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
    {
        // Never allocate by what a client claims: read what actually arrives.
        let mut body = Vec::new();
        (&mut *reader).take(len).read_to_end(&mut body).await.ok()?;
        if (body.len() as u64) < len {
            return None; // the client gave up mid-body
        }
        seen.body = body;
    } else if seen
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).await.ok()?;
            let size = usize::from_str_radix(size_line.trim(), 16).ok()?;
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                break;
            }
            seen.body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(seen)
}

async fn serve(sock: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(sock);
    while let Some(req) = read_request(&mut reader).await {
        let (reply, close) = {
            let mut s = state.lock().unwrap();
            let refused = s.auth.as_ref().and_then(|a| {
                let guarded = req.path().starts_with("/v2");
                (guarded && !(a.accept)(req.header("authorization"))).then(|| {
                    Reply::error(401, "UNAUTHORIZED", "authentication required")
                        .header("WWW-Authenticate", &a.challenge)
                })
            });
            let mut reply = match refused {
                Some(r) => r,
                None => honest(&mut s, &req),
            };
            let mut i = 0;
            while i < s.rules.len() {
                let r = &s.rules[i];
                if (r.method == req.method || r.method == "*")
                    && req.path().contains(&r.path_contains)
                {
                    reply = (r.transform)(&req, reply);
                    if let Some(t) = s.rules[i].times.as_mut() {
                        *t -= 1;
                        if *t == 0 {
                            s.rules.remove(i);
                        }
                    }
                    break;
                }
                i += 1;
            }
            s.log
                .push((req.method.clone(), req.path().to_string(), reply.status));
            s.seen.push(req.clone());
            let close = reply.content_length.is_some();
            (reply, close)
        };
        let sock = reader.get_mut();
        if !write_reply(sock, &reply, req.method == "HEAD", close).await? {
            return Ok(());
        }
        if close {
            sock.shutdown().await?;
            return Ok(());
        }
    }
    Ok(())
}

/// Writes an answer; `Ok(false)` when the client hung up mid-body (as it
/// should, facing a body it refuses).
pub async fn write_reply(
    sock: &mut TcpStream,
    reply: &Reply,
    head_only: bool,
    close: bool,
) -> std::io::Result<bool> {
    let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if reply.chunked {
        head.push_str("Transfer-Encoding: chunked\r\n");
    } else {
        let stated = reply.content_length.unwrap_or(reply.body.len());
        head.push_str(&format!("Content-Length: {stated}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await?;
    if !head_only && reply.chunked {
        for chunk in reply.body.chunks(64 * 1024) {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
            if sock.write_all(&framed).await.is_err() {
                return Ok(false);
            }
        }
        sock.write_all(b"0\r\n\r\n").await?;
    } else if !head_only {
        sock.write_all(&reply.body).await?;
    }
    sock.flush().await?;
    Ok(true)
}

/// What an honest registry would answer.
fn honest(s: &mut State, req: &Seen) -> Reply {
    let path = req.path().to_string();
    let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or("");
    if path == "/v2/" || path == "/v2" {
        return Reply::status(200).body(b"{}".to_vec());
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Reply::status(404);
    };
    if let Some((repo, subject)) = rest.split_once("/referrers/") {
        return match s.referrers_page {
            Some(page) => referrers(s, repo, subject, query, page),
            None => Reply::error(404, "NOT_FOUND", "no such route"),
        };
    }
    if let Some(repo) = rest.strip_suffix("/tags/list")
        && req.method == "GET"
    {
        let mut tags: Vec<&str> = s
            .manifests
            .keys()
            .filter(|(r, t)| r == repo && !t.starts_with("sha256:"))
            .map(|(_, t)| t.as_str())
            .collect();
        tags.sort();
        if tags.is_empty() {
            return Reply::error(404, "NAME_UNKNOWN", "repository name not known to registry");
        }
        let body = serde_json::json!({"name": repo, "tags": tags}).to_string();
        return Reply::status(200)
            .header("Content-Type", "application/json")
            .body(body.into_bytes());
    }
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        let key = (repo.to_string(), reference.to_string());
        return match req.method.as_str() {
            "GET" | "HEAD" => match s.manifests.get(&key) {
                Some((ct, bytes)) => Reply::status(200)
                    .header("Content-Type", ct)
                    .header("Docker-Content-Digest", &sha256(bytes))
                    .body(bytes.clone()),
                None => Reply::error(404, "MANIFEST_UNKNOWN", "manifest unknown"),
            },
            "PUT" => {
                let ct = req.header("content-type").unwrap_or("").to_string();
                let d = sha256(&req.body);
                s.manifests.insert(
                    (repo.to_string(), d.clone()),
                    (ct.clone(), req.body.clone()),
                );
                s.manifests.insert(key, (ct, req.body.clone()));
                Reply::status(201).header("Docker-Content-Digest", &d)
            }
            _ => Reply::status(405),
        };
    }
    if let Some((repo, upload)) = rest.split_once("/blobs/uploads/") {
        return match req.method.as_str() {
            "POST" => {
                s.next_upload += 1;
                let id = format!("up{}", s.next_upload);
                s.uploads.insert(id.clone(), Vec::new());
                Reply::status(202)
                    .header(
                        "Location",
                        &format!("/v2/{repo}/blobs/uploads/{id}?_state=secret-state-{id}"),
                    )
                    .header("Range", "0-0")
            }
            "PATCH" => match s.uploads.get_mut(upload) {
                Some(buf) => {
                    buf.extend_from_slice(&req.body);
                    let end = buf.len().saturating_sub(1);
                    Reply::status(202)
                        .header("Location", &format!("/v2/{repo}/blobs/uploads/{upload}"))
                        .header("Range", &format!("0-{end}"))
                }
                None => Reply::error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown"),
            },
            "PUT" => {
                let Some(mut buf) = s.uploads.remove(upload) else {
                    return Reply::error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
                };
                buf.extend_from_slice(&req.body);
                let digest = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("digest="))
                    .unwrap_or("")
                    .replace("%3A", ":");
                if sha256(&buf) != digest {
                    return Reply::error(400, "DIGEST_INVALID", "digest did not match");
                }
                s.blobs.insert(digest.clone(), buf);
                Reply::status(201).header("Docker-Content-Digest", &digest)
            }
            "GET" => match s.uploads.get(upload) {
                Some(buf) => Reply::status(204)
                    .header("Location", &format!("/v2/{repo}/blobs/uploads/{upload}"))
                    .header("Range", &format!("0-{}", buf.len().saturating_sub(1))),
                None => Reply::error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown"),
            },
            "DELETE" => match s.uploads.remove(upload) {
                Some(_) => Reply::status(204),
                None => Reply::error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown"),
            },
            _ => Reply::status(405),
        };
    }
    if let Some((_repo, digest)) = rest.rsplit_once("/blobs/") {
        return match (req.method.as_str(), s.blobs.get(digest)) {
            ("GET" | "HEAD", Some(b)) => Reply::status(200)
                .header("Docker-Content-Digest", digest)
                .body(b.clone()),
            ("GET" | "HEAD", None) => Reply::error(404, "BLOB_UNKNOWN", "blob unknown"),
            _ => Reply::status(405),
        };
    }
    Reply::status(404)
}

/// An honest referrers answer: every manifest of `repo` whose `subject`
/// is `subject`, as an OCI index, one page at a time.
fn referrers(s: &State, repo: &str, subject: &str, query: &str, page: usize) -> Reply {
    let param = |k: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .map(|v| v.replace("%2B", "+").replace("%2F", "/"))
    };
    let wanted = param("artifactType");
    let mut list: Vec<serde_json::Value> = s
        .manifests
        .iter()
        .filter(|((r, key), _)| r == repo && key.starts_with("sha256:"))
        .filter_map(|((_, key), (ct, bytes))| {
            let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
            (v["subject"]["digest"].as_str() == Some(subject)).then(|| {
                let kind = v["artifactType"]
                    .as_str()
                    .or_else(|| v["config"]["mediaType"].as_str())
                    .unwrap_or("")
                    .to_string();
                serde_json::json!({"mediaType": ct, "digest": key, "size": bytes.len(),
                    "artifactType": kind, "annotations": v.get("annotations").cloned().unwrap_or(serde_json::json!({}))})
            })
        })
        .filter(|d| wanted.as_deref().is_none_or(|w| d["artifactType"] == w))
        .collect();
    list.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
    let start: usize = param("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let chunk: Vec<_> = list.iter().skip(start * page).take(page).cloned().collect();
    let body = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": chunk});
    let mut reply = Reply::status(200)
        .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        .body(body.to_string().into_bytes());
    if wanted.is_some() {
        reply = reply.header("OCI-Filters-Applied", "artifactType");
    }
    if (start + 1) * page < list.len() {
        let mut next = format!("/v2/{repo}/referrers/{subject}?page={}", start + 1);
        if let Some(w) = &wanted {
            next.push_str(&format!("&artifactType={w}"));
        }
        reply = reply.header("Link", &format!("<{next}>; rel=\"next\""));
    }
    reply
}
