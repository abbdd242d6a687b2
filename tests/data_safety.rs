//! The ways a mirror job could lose data, each shown against the part that
//! would suffer: a target that is its source spelled differently (a real
//! registry reached as `localhost` and `127.0.0.1`), a state file trusted
//! over the target (tags deleted through the registry API), a prune after
//! an empty or foreign tag list (a fake source, a real target), a listing
//! whose pages loop, two processes on one state file, a state file that
//! cannot be read, and a schedule whose jitter is absurd.

mod support;

use std::time::{Duration, Instant};

use support::fake::{FakeRegistry, Reply, Rule};
use support::*;

/// A three-platform index under `multi:1.0`; returns its digest.
fn seed_multi(reg: &Registry, seed_n: u64) -> String {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.index(&three_platforms(seed_n));
    w.tag(&[("1.0", image::OCI_INDEX, bytes.as_slice(), digest.as_str())]);
    seed(dir.path(), "1.0", &reg.image("multi:1.0"));
    digest
}

/// DELETE of a manifest through the registry API (plain HTTP, independent
/// of ocirepl): every tag naming it goes.
fn delete_manifest(host: &str, repo: &str, digest: &str) {
    let url = format!("http://{host}/v2/{repo}/manifests/{digest}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async move {
        reqwest::Client::new()
            .delete(&url)
            .send()
            .await
            .expect("DELETE manifest")
            .status()
    });
    assert!(status.is_success(), "DELETE {digest} answered {status}");
}

#[test]
fn a_target_that_is_the_source_spelled_differently_is_refused_before_any_request() {
    let reg = Registry::start(RegistryConfig::anonymous());
    let before = seed_multi(&reg, 700);
    let seeded_writes = reg
        .access_log()
        .iter()
        .filter(|a| !matches!(a.method.as_str(), "GET" | "HEAD"))
        .count();
    let port = reg.port;
    let dir = tempfile::tempdir().unwrap();
    let spellings = [
        format!("127.0.0.1:{port}"),
        format!("127.0.0.01:{port}"),
        format!("127.0.0.1:0{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
    ];
    for target in &spellings {
        let cfg = config(
            dir.path(),
            &format!(
                "version: 1\njobs:\n  - name: multi\n    source: \"localhost:{port}/multi\"\n    target: \"{target}/multi\"\n    platforms: [linux/amd64]\n"
            ),
        );
        let cfg = cfg.display().to_string();
        for args in [vec!["--check", cfg.as_str()], vec![cfg.as_str()]] {
            let (code, _, err) = sync(&args);
            assert_eq!(code, 2, "{target} {args:?}: {err}");
            assert!(err.contains("the target is the source"), "{err}");
            assert!(err.contains("mirror.yaml:5:"), "the target's line: {err}");
        }
    }
    // Namespaces: one inside the other on one registry is a loop.
    for (source, target) in [
        (
            format!("localhost:{port}/"),
            format!("127.0.0.1:{port}/mirror/"),
        ),
        (format!("localhost:{port}/a/"), format!("127.0.0.1:{port}/")),
        (
            format!("localhost:{port}/a/"),
            format!("127.0.0.1:{port}/a/"),
        ),
    ] {
        let cfg = config(
            dir.path(),
            &format!(
                "version: 1\njobs:\n  - name: ns\n    source: {source}\n    target: {target}\n"
            ),
        );
        let (code, _, err) = sync(&["--check", &cfg.display().to_string()]);
        assert_eq!(code, 2, "{source} → {target}: {err}");
        assert!(
            err.contains("overlaps the source namespace")
                || err.contains("the target is the source"),
            "{err}"
        );
    }
    // `copy` refuses the same, and writing another tag of the repository is fine.
    let (code, _, err) = run(&[
        "copy",
        "--platform",
        "linux/amd64",
        &format!("localhost:{port}/multi:1.0"),
        &format!("127.0.0.01:{port}/multi:1.0"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the target is the source"), "{err}");
    let writes = reg
        .access_log()
        .iter()
        .filter(|a| !matches!(a.method.as_str(), "GET" | "HEAD"))
        .count();
    assert_eq!(writes, seeded_writes, "nothing written after the seed");
    assert_eq!(
        remote_digest(&reg.image("multi:1.0")),
        before,
        "the source's index is untouched"
    );
    let (code, _, err) = run(&[
        "copy",
        "--platform",
        "linux/amd64",
        &reg.image("multi:1.0"),
        &reg.image("multi:amd64"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(remote_digest(&reg.image("multi:1.0")), before);
}

#[test]
fn the_state_file_is_never_trusted_over_the_target() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    let images = seed_images(&src, "app", &["1.0.0", "1.1.0", "2.0.0"], 800, 2048);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json").display().to_string();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: app\n    source: {}/app\n    target: {}/app\n    tags:\n      immutable: [\"semver:*\"]\n",
            src.host(),
            dst.host()
        ),
    );
    let cfg = cfg.display().to_string();
    for _ in 0..2 {
        let (code, _, err) = sync(&["--state", &state, &cfg]);
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(tags_of(&dst.image("app")), ["1.0.0", "1.1.0", "2.0.0"]);
    // Behind the mirror's back, two tags go from the target.
    for (tag, digest) in &images[..2] {
        delete_manifest(&dst.host(), "app", digest);
        assert!(!tags_of(&dst.image("app")).contains(tag));
    }
    let (code, out, err) = sync(&["--plan", "--output", "json", "--state", &state, &cfg]);
    assert_eq!(code, 0, "{err}");
    let planned: Vec<(String, String)> = reports(&out)
        .iter()
        .map(|r| {
            (
                r["target"].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (tag, _) in &images[..2] {
        let target = dst.image(&format!("app:{tag}"));
        assert!(
            planned.contains(&(target.clone(), "copy".to_string())),
            "{target} must be planned as a copy: {planned:?}"
        );
    }
    let (code, out, err) = sync(&["--output", "json", "--state", &state, &cfg]);
    assert_eq!(code, 0, "{err}");
    let copied = reports(&out)
        .iter()
        .filter(|r| r["action"] == "copied")
        .count();
    assert_eq!(copied, 2, "{out}");
    assert_eq!(tags_of(&dst.image("app")), ["1.0.0", "1.1.0", "2.0.0"]);
    for (tag, digest) in &images {
        assert_eq!(&remote_digest(&dst.image(&format!("app:{tag}"))), digest);
    }
}

/// A fake source whose tag list for `app` answers `body`.
fn lying_source(body: &str) -> FakeRegistry {
    let fake = FakeRegistry::start();
    let body = body.as_bytes().to_vec();
    fake.rule(Rule::reply(
        "GET",
        "/v2/app/tags/list",
        Reply::status(200)
            .header("Content-Type", "application/json")
            .body(body),
    ));
    fake
}

#[test]
fn an_empty_or_foreign_tag_list_never_prunes_the_mirror() {
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_images(&dst, "app", &["1.0", "1.1", "1.2"], 900, 2048);
    let dir = tempfile::tempdir().unwrap();
    for body in [
        r#"{"name":"app","tags":[]}"#,
        r#"{"name":"app","tags":null}"#,
        r#"{"name":"app"}"#,
        r#"{"name":"other","tags":["9.9"]}"#,
    ] {
        let fake = lying_source(body);
        let cfg = config(
            dir.path(),
            &format!(
                "version: 1\njobs:\n  - name: app\n    source: {}/app\n    target: {}/app\n    tags: {{include: [\"1.*\", \"9.*\"]}}\n    prune: true\n",
                fake.host(),
                dst.host()
            ),
        );
        let (code, out, err) = sync(&["--output", "json", &cfg.display().to_string()]);
        assert_eq!(code, 1, "{body}: {err}{out}");
        assert_eq!(
            tags_of(&dst.image("app")),
            ["1.0", "1.1", "1.2"],
            "{body}: nothing pruned"
        );
        let all = reports(&out);
        let why: Vec<&str> = all
            .iter()
            .filter(|r| r["action"] == "failed")
            .filter_map(|r| r["error"].as_str())
            .collect();
        let expected = if body.contains("other") {
            "names repository \"other\""
        } else {
            "the source lists no tag the filters select while the target has 3"
        };
        assert!(why.iter().any(|w| w.contains(expected)), "{body}: {why:?}");
        assert!(
            !all.iter().any(|r| r["action"] == "pruned"),
            "{body}: {out}"
        );
    }
}

#[test]
fn a_listing_whose_link_points_back_stops_at_once() {
    let fake = FakeRegistry::start();
    let host = fake.host();
    // Page one links to page two, which links back to page one.
    fake.rule(Rule::map("GET", "/v2/app/tags/list", move |seen, _| {
        let (tags, link) = match seen.target.contains("last=b") {
            true => (r#"["c","d"]"#, "</v2/app/tags/list>; rel=\"next\""),
            false => (r#"["a","b"]"#, "</v2/app/tags/list?last=b>; rel=\"next\""),
        };
        Reply::status(200)
            .header("Content-Type", "application/json")
            .header("Link", link)
            .body(format!(r#"{{"name":"app","tags":{tags}}}"#).into_bytes())
    }));
    let started = Instant::now();
    let (code, _, err) = run(&["tags", &format!("{host}/app")]);
    assert_ne!(code, 0);
    assert!(err.contains("points back at a page already read"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let lists = fake
        .log()
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with("/tags/list"))
        .count();
    assert_eq!(
        lists,
        2,
        "two pages, then the loop is seen: {:?}",
        fake.log()
    );
}

#[test]
fn two_processes_on_one_state_file_and_an_unreadable_state() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_images(&src, "app", &["1.0"], 950, 2048);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: app\n    source: {}/app\n    target: {}/app\n    every: 1h\n",
            src.host(),
            dst.host()
        ),
    );
    let cfg = cfg.display().to_string();
    let state_arg = state.display().to_string();
    // A garbage state: said, with the file named, and the run goes on.
    std::fs::write(&state, "{\"version\": 1, \"tags\": [garbage").unwrap();
    let (code, _, err) = sync(&["--state", &state_arg, &cfg]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("the state file {state_arg} cannot be read")),
        "{err}"
    );
    // A daemon holds the state (it has opened it once it listens); a
    // second process is refused, naming it.
    let home = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut daemon = ocirepl()
        .args([
            "sync",
            "--daemon",
            "--metrics-addr",
            &addr,
            "--state",
            &state_arg,
            &cfg,
        ])
        .env("HOME", home.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _, err) = sync(&["--state", &state_arg, &cfg]);
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is in use by another ocirepl process"),
        "{err}"
    );
    assert!(err.contains(&state_arg), "{err}");
    // Once the daemon is gone, the state is free again.
    let (code, _, err) = sync(&["--state", &state_arg, &cfg]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn schedule_mistakes_are_named_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "version: 1\njobs:\n  - name: app\n    source: a.example/app\n    target: b.example/app\n    every: 1m\n    jitter: 99999999d\n",
    );
    let (code, _, err) = sync(&["--check", &cfg.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("mirror.yaml:7:"), "on the jitter line: {err}");
    assert!(err.contains("jitter"), "{err}");
    let cfg = config(
        dir.path(),
        "version: 1\njobs:\n  - name: app\n    source: a.example/app\n    target: b.example/app\n",
    );
    let (code, _, err) = run(&["sync", "--shard", "5/3", &cfg.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("(0/3 .. 2/3)"), "{err}");
}

#[test]
fn each_daemon_run_counts_its_own_requests() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_images(&src, "app", &["1.0", "1.1"], 970, 2048);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: app\n    source: {}/app\n    target: {}/app\n    every: 1s\n",
            src.host(),
            dst.host()
        ),
    );
    let home = tempfile::tempdir().unwrap();
    let mut daemon = ocirepl()
        .args(["-v", "sync", "--daemon", &cfg.display().to_string()])
        .env("HOME", home.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let _ = daemon.kill();
    let out = daemon.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // "…; 2.5 KiB moved, 12 requests, 0.0 s"
    let counts: Vec<u64> = err
        .lines()
        .filter_map(|l| {
            l.split(" requests,")
                .next()?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(counts.len() >= 3, "at least three runs: {err}");
    // Each unchanged run: a tag list and a HEAD per tag on each side.
    for n in &counts[1..] {
        assert_eq!(*n, 6, "an unchanged run's own requests: {counts:?}\n{err}");
    }
}
