//! `ocirepl sync --daemon` as a process: it picks up a tag pushed to the
//! source on its `every` schedule, serves /metrics, /healthz and /readyz,
//! keeps its config when SIGHUP brings a broken one, skips (and counts) a
//! run that would overlap the previous one, and stops on SIGTERM with
//! nothing half-written.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::proxy::{Fault, FaultProxy, ProxyRule};
use support::*;

/// GET http://127.0.0.1:PORT/PATH → (status, body); `None` while nothing listens.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.ok()?))
    })
}

fn wait_for(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

fn has_tag(reg: &Registry, repo_tag: &str) -> bool {
    skopeo_output(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}", reg.image(repo_tag)),
    ])
    .status
    .success()
}

fn daemon(cfg: &Path, extra: &[&str], home: &Path) -> Child {
    ocirepl()
        .args(["sync", "--daemon"])
        .args(extra)
        .arg(cfg)
        .env("HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the daemon")
}

fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

/// Waits for the process to end; its exit code and stderr.
fn finish(mut child: Child, secs: u64) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn seed_one(reg: &Registry, repo_tag: &str, seed_n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(seed_n, 256 * 1024)],
    ));
    w.tag(&[("t", image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
    seed(dir.path(), "t", &reg.image(repo_tag));
}

#[test]
fn the_daemon_keeps_up_serves_metrics_survives_a_broken_reload_and_stops() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_one(&src, "app:1", 10);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mirror.yaml");
    let good = format!(
        "version: 1\ndefaults:\n  every: 2s\njobs:\n  - name: app\n    source: {}/app\n    target: {}/app\n",
        src.host(),
        dst.host()
    );
    std::fs::write(&cfg, &good).unwrap();
    let port = free_port();
    let state = dir.path().join("state.json");
    let child = daemon(
        &cfg,
        &[
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--state",
            &state.display().to_string(),
        ],
        dir.path(),
    );
    wait_for("the first run", 30, || has_tag(&dst, "app:1"));
    wait_for("/readyz", 10, || {
        get(port, "/readyz").is_some_and(|(s, _)| s == 200)
    });
    assert_eq!(get(port, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(get(port, "/nothing").map(|r| r.0), Some(404));

    seed_one(&src, "app:2", 20);
    wait_for("the new tag on the next run", 20, || has_tag(&dst, "app:2"));

    let (status, text) = get(port, "/metrics").expect("metrics");
    assert_eq!(status, 200);
    for want in [
        "ocirepl_images_total{job=\"app\",action=\"copied\"} 2",
        "ocirepl_images_total{job=\"app\",action=\"up_to_date\"}",
        "ocirepl_bytes_copied_total{job=\"app\"}",
        "ocirepl_job_last_success_timestamp_seconds{job=\"app\"}",
        "ocirepl_job_duration_seconds_bucket{",
        &format!(
            "ocirepl_requests_total{{registry=\"{}\",method=\"HEAD\",code=\"200\"}}",
            dst.host()
        ),
        "# EOF",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    assert!(
        std::fs::read_to_string(&state).unwrap().contains("app:2"),
        "the state file"
    );

    // A broken config on SIGHUP: the old one keeps running.
    std::fs::write(&cfg, "version: 1\njobs: [oops\n").unwrap();
    signal(&child, "HUP");
    std::thread::sleep(Duration::from_secs(1));
    seed_one(&src, "app:3", 30);
    wait_for("a run with the old config", 20, || has_tag(&dst, "app:3"));
    assert_eq!(get(port, "/healthz").map(|r| r.0), Some(200));

    signal(&child, "TERM");
    let (code, err) = finish(child, 40);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("keeping the running config"), "{err}");
    assert!(
        err.contains("mirror.yaml:2"),
        "the reload error names its place: {err}"
    );
}

#[test]
fn sigterm_with_an_image_in_flight_and_overlapping_runs() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_one(&src, "slow:1", 40);
    // Every blob GET takes 4 s: a run lasts longer than `every: 1s`.
    let proxy = FaultProxy::start(src.port);
    proxy.rule(ProxyRule::new("GET", "/blobs/", Fault::Delay(Duration::from_secs(4))).times(100));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mirror.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: 1\njobs:\n  - name: slow\n    every: 1s\n    source: {}/slow\n    target: {}/slow\n",
            proxy.host(),
            dst.host()
        ),
    )
    .unwrap();
    let port = free_port();
    let child = daemon(
        &cfg,
        &[
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--grace",
            "30",
        ],
        dir.path(),
    );
    // The proxy logs an exchange when it ends: once the manifest is read,
    // the (delayed) blob GETs are under way.
    wait_for("the copy under way", 20, || {
        proxy.count("GET", "/manifests/") > 0
    });
    std::thread::sleep(Duration::from_millis(2500));
    let (_, text) = get(port, "/metrics").expect("metrics");
    assert!(
        text.lines().any(
            |l| l.starts_with("ocirepl_job_runs_skipped_total{job=\"slow\"}") && !l.ends_with(" 0")
        ),
        "no skipped run counted:\n{text}"
    );
    signal(&child, "TERM");
    let (code, err) = finish(child, 60);
    assert_eq!(code, 0, "{err}");
    // The run in flight finished within the grace period: the tag is whole.
    assert!(has_tag(&dst, "slow:1"), "{err}");
    let out = skopeo_output(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}", dst.image("slow:1")),
        &format!("dir:{}", dir.path().join("check").display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // With no grace the run is dropped: the tag is absent or whole, never half.
    let dst2 = Registry::start(RegistryConfig::anonymous());
    std::fs::write(
        &cfg,
        format!(
            "version: 1\njobs:\n  - name: slow\n    every: 1m\n    source: {}/slow\n    target: {}/slow\n",
            proxy.host(),
            dst2.host()
        ),
    )
    .unwrap();
    let before = proxy.count("GET", "/manifests/");
    let child = daemon(&cfg, &["--grace", "0"], dir.path());
    wait_for("the copy under way", 20, || {
        proxy.count("GET", "/manifests/") > before
    });
    std::thread::sleep(Duration::from_millis(500));
    let stopping = Instant::now();
    signal(&child, "TERM");
    let (code, err) = finish(child, 20);
    assert_eq!(code, 0, "{err}");
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "it waited for the blobs"
    );
    assert!(
        !has_tag(&dst2, "slow:1"),
        "a tag appeared though its copy was stopped: {err}"
    );
}
