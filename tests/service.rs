//! The daemon as a service: Debian's registry notifying it of pushes (its
//! real `notifications:`), vendor webhooks as their documentation shows
//! them, a token on every `/v1` request, `/v1/status` and `sync --status`,
//! JSON logs, and a crowd of idle, trickling and garbage connections that
//! leaves `/healthz` answering and the mirror mirroring.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::*;

const TOKEN: &str = "trigger-token-0123456789";

/// (status, body) of an HTTP request to the daemon.
/// The crowd test measures the server under its crowd, not under the
/// other tests of this file: it runs alone, the others side by side.
static ALONE: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    try_request(port, method, path, headers, body).expect("request")
}

/// A request, its transport error returned rather than a panic.
fn try_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String), reqwest::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let mut r = c.request(
            method.parse().unwrap(),
            format!("http://127.0.0.1:{port}{path}"),
        );
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r
            .body(body.to_vec())
            .timeout(Duration::from_secs(30))
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.unwrap_or_default()))
    })
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn wait_for(what: &str, secs: u64, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if check() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn seed_tag(reg: &Registry, repo_tag: &str, seed_n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(seed_n, 64 * 1024)],
    ));
    w.tag(&[("t", image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
    seed(dir.path(), "t", &reg.image(repo_tag));
}

struct Daemon {
    child: Child,
    /// Its stderr, read as it comes (a pipe nobody reads would block the
    /// daemon's logging once full).
    log: std::sync::Arc<std::sync::Mutex<String>>,
    _home: tempfile::TempDir,
}

impl Daemon {
    fn start(cfg: &Path, port: u16, extra: &[&str]) -> Daemon {
        let home = tempfile::tempdir().unwrap();
        let child = ocirepl()
            .args([
                "sync",
                "--daemon",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "-v",
            ])
            .args(extra)
            .arg(cfg)
            .env("HOME", home.path())
            .env("OCIREPL_TRIGGER_TOKEN", TOKEN)
            .env("GH_WEBHOOK_SECRET", "It's a Secret to Everybody")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the daemon");
        let mut child = child;
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let d = Daemon {
            child,
            log,
            _home: home,
        };
        wait_for("/readyz", 30, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
                && request(port, "GET", "/readyz", &[], b"").0 == 200
        });
        d
    }

    /// Stops it (SIGTERM) and returns its stderr.
    fn stop(mut self) -> String {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the daemon did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(200));
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Daemon {
    /// A test that fails leaves no daemon behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// PUTs of manifests the target answered since `mark`, as `REPO:REF`.
fn manifest_puts(reg: &Registry, mark: usize) -> Vec<String> {
    reg.requests_since(mark)
        .into_iter()
        .filter(|a| a.method == "PUT" && a.path.contains("/manifests/"))
        .map(|a| a.path)
        .collect()
}

#[test]
fn a_push_to_the_source_is_mirrored_within_seconds_and_only_that_tag() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/v1/events/distribution");
    let src = Registry::start(RegistryConfig::notifying(&url, TOKEN));
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_tag(&src, "app:v0", 100);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\nservice:\n  token_env: OCIREPL_TRIGGER_TOKEN\n  debounce: 200ms\njobs:\n  - name: app\n    source: {}\n    target: {}\n    every: 1h\n    tags: {{include: [\"v*\"]}}\n",
            src.image("app"),
            dst.image("app")
        ),
    );
    let d = Daemon::start(&cfg, port, &["--state", &state.display().to_string()]);
    assert_eq!(tags_of(&dst.image("app")), vec!["v0"]);

    // v0 is there from the first run; the schedule is an hour away. The
    // registry queued v0's push event while nothing listened and delivers
    // it on its next retry (a second apart): let that narrow run pass.
    std::thread::sleep(Duration::from_secs(3));
    let mark = dst.requests_since(0).len();
    let src_mark = src.requests_since(0).len();
    seed_tag(&src, "app:v1", 101);
    let took = wait_for("v1 in the target", 15, || {
        tags_of(&dst.image("app")).contains(&"v1".to_string())
    });
    eprintln!("pushed to mirrored: {took:?}");
    let puts = manifest_puts(&dst, mark);
    assert_eq!(puts, vec!["/v2/app/manifests/v1".to_string()], "{puts:?}");
    // The narrow run asked the source about v1 only (and its tag list).
    let asked: Vec<String> = src
        .requests_since(src_mark)
        .into_iter()
        .filter(|a| matches!(a.method.as_str(), "GET" | "HEAD") && a.path.contains("/manifests/"))
        .map(|a| a.path)
        .collect();
    assert!(
        asked
            .iter()
            .all(|p| p.ends_with("/v1") || p.contains("sha256:")),
        "{asked:?}"
    );

    // A tag outside the job's filters: nothing copied.
    let mark = dst.access_log().len();
    seed_tag(&src, "app:other", 102);
    std::thread::sleep(Duration::from_secs(3));
    assert!(manifest_puts(&dst, mark).is_empty());
    assert!(!tags_of(&dst.image("app")).contains(&"other".to_string()));

    // No token, a wrong one: 401, nothing done.
    let envelope = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events/distribution-push.json"),
    )
    .unwrap();
    let (code, _) = request(port, "POST", "/v1/events/distribution", &[], &envelope);
    assert_eq!(code, 401);
    let (code, _) = request(
        port,
        "POST",
        "/v1/events/distribution",
        &[("Authorization", "Bearer wrong")],
        &envelope,
    );
    assert_eq!(code, 401);
    let (code, _) = request(port, "GET", "/v1/status", &[], b"");
    assert_eq!(code, 401);

    // Status: the last run came from an event.
    let (code, body) = request(
        port,
        "GET",
        "/v1/status",
        &[("Authorization", &bearer())],
        b"",
    );
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status["jobs"]["app"]["last_run"]["cause"], "event",
        "{status}"
    );
    assert_eq!(
        status["jobs"]["app"]["last_run"]["result"], "ok",
        "{status}"
    );
    assert!(status["jobs"]["app"]["next_run"].is_string(), "{status}");

    // A job run on request.
    let (code, _) = request(
        port,
        "POST",
        "/v1/jobs/app/run",
        &[("Authorization", &bearer())],
        b"",
    );
    assert_eq!(code, 202);
    let (code, _) = request(
        port,
        "POST",
        "/v1/jobs/nope/run",
        &[("Authorization", &bearer())],
        b"",
    );
    assert_eq!(code, 404);
    let metrics = request(port, "GET", "/metrics", &[], b"").1;
    assert!(
        metrics.contains("ocirepl_events_total{sender=\"distribution\",outcome=\"queued\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("outcome=\"unauthorized\""), "{metrics}");
    let log = d.stop();
    assert!(!log.contains(TOKEN), "the token was logged");

    // The same status for a CronJob user, from the state file.
    let (code, out, err) = run(&[
        "sync",
        "--status",
        "--state",
        &state.display().to_string(),
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["jobs"]["app"]["result"].is_string(), "{v}");
}

#[test]
fn vendor_webhooks_start_narrow_runs_and_bad_ones_are_refused() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let port = free_port();
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    for (i, t) in ["h1", "d1", "g1", "q1", "skip"].iter().enumerate() {
        seed_tag(&src, &format!("team/app:{t}"), 200 + i as u64);
    }
    let dir = tempfile::tempdir().unwrap();
    // Each vendor names its own registry; the config says they are this one.
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\nservice:\n  token_env: OCIREPL_TRIGGER_TOKEN\n  github_secret_env: GH_WEBHOOK_SECRET\n  debounce: 100ms\nregistries:\n  \"{}\":\n    aliases: [docker.io, ghcr.io, quay.io, harbor.example.com]\njobs:\n  - name: team\n    source: {}\n    target: {}\n    every: 1h\n    tags: {{exclude: [skip]}}\n",
            src.host(),
            src.image("team/app"),
            dst.image("team/app")
        ),
    );
    let d = Daemon::start(&cfg, port, &["--log-format", "json"]);
    let auth = bearer();
    let post = |path: &str, headers: &[(&str, &str)], body: &str| {
        request(port, "POST", path, headers, body.as_bytes())
    };
    let harbor = r#"{"type":"PUSH_ARTIFACT","occur_at":1586922308,"operator":"admin","event_data":{"resources":[{"digest":"sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8","tag":"h1","resource_url":"harbor.example.com/team/app:h1"}],"repository":{"name":"app","namespace":"team","repo_full_name":"team/app","repo_type":"private"}}}"#;
    let (code, body) = post("/v1/events/harbor", &[("Authorization", &auth)], harbor);
    assert_eq!(code, 202, "{body}");
    assert!(body.contains("\"team\""), "{body}");
    let hub = r#"{"push_data":{"pushed_at":1417566161,"pusher":"trustedbuilder","tag":"d1"},"repository":{"repo_name":"team/app","namespace":"team","name":"app","status":"Active"}}"#;
    let (code, _) = post(&format!("/v1/events/dockerhub?token={TOKEN}"), &[], hub);
    assert_eq!(code, 202);
    let github = r#"{"action":"published","package":{"name":"app","namespace":"team","package_type":"CONTAINER","package_version":{"package_url":"ghcr.io/team/app:g1","container_metadata":{"tag":{"name":"g1","digest":""}}}}}"#;
    let sig = hmac_sha256_hex(b"It's a Secret to Everybody", github.as_bytes());
    let signature = format!("sha256={sig}");
    let gh_headers = [
        ("X-GitHub-Event", "package"),
        ("X-Hub-Signature-256", signature.as_str()),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ];
    let (code, body) = post("/v1/events/github", &gh_headers, github);
    assert_eq!(code, 202, "{body}");
    // The same delivery again: dropped as a duplicate.
    let (_, body) = post("/v1/events/github", &gh_headers, github);
    assert!(body.contains("duplicate"), "{body}");
    let quay = r#"{"name":"app","repository":"team/app","namespace":"team","docker_url":"quay.io/team/app","homepage":"https://quay.io/repository/team/app","updated_tags":["q1"]}"#;
    let (code, _) = post("/v1/events/quay", &[("Authorization", &auth)], quay);
    assert_eq!(code, 202);
    wait_for("the four tags in the target", 20, || {
        tags_of(&dst.image("team/app")) == vec!["d1", "g1", "h1", "q1"]
    });

    // Refused: a forged GitHub signature, a body that is not the vendor's,
    // a tag the filters leave out (accepted, ignored), a delete.
    let (code, _) = post(
        "/v1/events/github",
        &[
            ("X-GitHub-Event", "package"),
            ("X-Hub-Signature-256", "sha256=00"),
        ],
        github,
    );
    assert_eq!(code, 401);
    let (code, body) = post(
        "/v1/events/quay",
        &[("Authorization", &auth)],
        r#"{"docker_url": 7}"#,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("quay"), "{body}");
    let (code, body) = post(
        "/v1/events/harbor",
        &[("Authorization", &auth)],
        &harbor.replace("h1", "skip"),
    );
    assert_eq!(code, 202);
    assert!(body.contains("ignored"), "{body}");
    let deleted = harbor.replace("PUSH_ARTIFACT", "DELETE_ARTIFACT");
    let (_, body) = post("/v1/events/harbor", &[("Authorization", &auth)], &deleted);
    assert!(body.contains("ignored"), "{body}");
    let (code, _) = post("/v1/events/nobody", &[("Authorization", &auth)], "{}");
    assert_eq!(code, 404);
    // A body declared over the cap is refused from its head, before a
    // byte of it is read (a client still sending it may see the
    // connection close instead of the answer, so the head goes alone).
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        raw,
        "POST /v1/events/quay HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 2097152\r\n\r\n"
    )
    .unwrap();
    let mut answer = [0u8; 64];
    let n = raw.read(&mut answer).unwrap();
    let status = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(!tags_of(&dst.image("team/app")).contains(&"skip".to_string()));

    let log = d.stop();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string(), "{l}");
    }
    assert!(log.contains("event queued"), "{log}");
    assert!(
        !log.contains(TOKEN) && !log.contains("Secret to Everybody"),
        "a secret was logged"
    );
}

/// HMAC-SHA256 as GitHub computes it (RFC 2104 over SHA-256, written out
/// here so the test does not lean on the code it checks).
fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::digest([pad(0x36), message.to_vec()].concat());
    hex::encode(Sha256::digest([pad(0x5c), inner.to_vec()].concat()))
}

/// Hundreds of connections that send a byte now and then and never finish
/// a request, plus a flood of garbage, under a low descriptor limit:
/// `/healthz` answers in under a second throughout, memory stays bounded,
/// and a push is still mirrored.
#[test]
fn slowloris_and_garbage_leave_healthz_answering_and_the_mirror_working() {
    let _alone = ALONE.write().unwrap_or_else(|e| e.into_inner());
    let port = free_port();
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_tag(&src, "app:v0", 300);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\nservice:\n  token_env: OCIREPL_TRIGGER_TOKEN\n  debounce: 100ms\njobs:\n  - name: app\n    source: {}\n    target: {}\n    every: 1h\n",
            src.image("app"),
            dst.image("app")
        ),
    );
    // 256 descriptors: the server keeps at most 64 connections.
    let home = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 256 && exec {} sync --daemon --listen 127.0.0.1:{port} {}",
            env!("CARGO_BIN_EXE_ocirepl"),
            cfg.display()
        ))
        .env("HOME", home.path())
        .env("OCIREPL_TRIGGER_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("/readyz", 30, || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
            && request(port, "GET", "/readyz", &[], b"").0 == 200
    });
    let rss = |pid: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let before = rss(child.id());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut crowd = Vec::new();
    // 400 tricklers in 4 threads: a byte every 2 s each, reconnecting when dropped.
    for _ in 0..4 {
        let stop = stop.clone();
        crowd.push(std::thread::spawn(move || {
            let mut socks: Vec<TcpStream> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                while socks.len() < 100 {
                    match TcpStream::connect(("127.0.0.1", port)) {
                        Ok(s) => {
                            let _ = s.set_nonblocking(true);
                            socks.push(s);
                        }
                        Err(_) => break,
                    }
                }
                socks.retain_mut(|s| s.write_all(b"G").is_ok());
                std::thread::sleep(Duration::from_secs(2));
            }
        }));
    }
    // Garbage as fast as one thread sends it.
    {
        let stop = stop.clone();
        crowd.push(std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                    let _ = s.write_all(b"\x16\x03\x01garbage\r\n\r\n");
                    let _ = s.write_all(b"POST /v1/events/distribution HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nxx");
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(3));
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        let (code, _) = request(port, "GET", "/healthz", &[], b"");
        assert_eq!(code, 200);
        worst = worst.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("worst /healthz under the crowd: {worst:?}");
    assert!(worst < Duration::from_secs(1), "/healthz took {worst:?}");
    // Still mirroring: an event for a new tag.
    seed_tag(&src, "app:v1", 301);
    let event = format!(
        r#"{{"events":[{{"id":"e1","action":"push","target":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"app","tag":"v1"}},"request":{{"host":"{}"}}}}]}}"#,
        src.host()
    );
    // A connection not yet read may be dropped to make room in the flood;
    // the sender retries, as Debian's registry does with its events.
    let auth = bearer();
    let mut sent = None;
    for _ in 0..5 {
        let headers = [("Authorization", auth.as_str())];
        match try_request(
            port,
            "POST",
            "/v1/events/distribution",
            &headers,
            event.as_bytes(),
        ) {
            Ok(answer) => {
                sent = Some(answer);
                break;
            }
            Err(e) => eprintln!("event not delivered, again: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, body) = sent.expect("the event delivered within 5 tries");
    assert_eq!(code, 202, "{body}");
    wait_for("v1 mirrored under the crowd", 15, || {
        tags_of(&dst.image("app")).contains(&"v1".to_string())
    });
    let during = rss(child.id());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in crowd {
        t.join().unwrap();
    }
    eprintln!("RSS before {before} KiB, under the crowd {during} KiB");
    assert!(
        during < before + 64 * 1024,
        "RSS grew from {before} to {during} KiB"
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A thousand events for ten tags within a second: gathered into narrow
/// runs, each tag copied once.
#[test]
fn a_burst_of_events_copies_each_tag_once() {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let port = free_port();
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_tag(&src, "app:v00", 400);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\nservice:\n  token_env: OCIREPL_TRIGGER_TOKEN\n  debounce: 300ms\njobs:\n  - name: app\n    source: {}\n    target: {}\n    every: 1h\n",
            src.image("app"),
            dst.image("app")
        ),
    );
    let d = Daemon::start(&cfg, port, &[]);
    let tags: Vec<String> = (1..=10).map(|i| format!("v{i:02}")).collect();
    for (i, t) in tags.iter().enumerate() {
        seed_tag(&src, &format!("app:{t}"), 401 + i as u64);
    }
    let mark = dst.requests_since(0).len();
    let host = src.host();
    let started = Instant::now();
    let senders: Vec<_> = (0..4)
        .map(|s| {
            let (tags, host) = (tags.clone(), host.clone());
            std::thread::spawn(move || {
                for i in 0..250 {
                    let tag = &tags[(s * 250 + i) % tags.len()];
                    let event = format!(
                        r#"{{"events":[{{"id":"burst-{s}-{i}","action":"push","target":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"app","tag":"{tag}"}},"request":{{"host":"{host}"}}}}]}}"#
                    );
                    let t = Instant::now();
                    let (code, body) = request(
                        port,
                        "POST",
                        "/v1/events/distribution",
                        &[("Authorization", &bearer())],
                        event.as_bytes(),
                    );
                    if t.elapsed() > Duration::from_millis(500) {
                        eprintln!("slow event {s}-{i}: {:?}", t.elapsed());
                    }
                    assert_eq!(code, 202, "{body}");
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    eprintln!("1,000 events sent in {:?}", started.elapsed());
    wait_for("the ten tags", 30, || {
        let have = tags_of(&dst.image("app"));
        tags.iter().all(|t| have.contains(t))
    });
    std::thread::sleep(Duration::from_secs(1));
    let puts = manifest_puts(&dst, mark);
    for t in &tags {
        let n = puts
            .iter()
            .filter(|p| p.ends_with(&format!("/{t}")))
            .count();
        assert_eq!(n, 1, "{t} pushed {n} times: {puts:?}");
    }
    d.stop();
}
