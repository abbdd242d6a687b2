//! `ocirepl sync CONFIG` against real registries: filters giving exactly
//! the expected tags, namespaces, platforms, credentials from the
//! environment, the cost of an unchanged run counted in the access logs,
//! immutable tags, `--plan`, `--job`, failing jobs and config errors.

mod support;

use support::*;

/// Seeds `repo` with one small image under every tag of `tags` (skopeo
/// pushes it once; the other tags are raw manifest PUTs of the same bytes).
fn seed_repo(reg: &Registry, repo: &str, tags: &[&str], seed_n: u64) -> String {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(seed_n, 2048), Layer::random(seed_n + 1, 4096)],
    ));
    w.tag(&[(
        tags[0],
        image::OCI_MANIFEST,
        bytes.as_slice(),
        digest.as_str(),
    )]);
    seed(
        dir.path(),
        tags[0],
        &reg.image(&format!("{repo}:{}", tags[0])),
    );
    for t in &tags[1..] {
        put_manifest_raw(&reg.host(), repo, t, image::OCI_MANIFEST, &bytes);
    }
    digest
}

/// Reports and the summary of a `--output json` run.
fn json_lines(stdout: &str) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mut lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let summary = lines.pop().expect("a summary line");
    assert!(summary.get("summary").is_some(), "{summary}");
    (lines, summary["summary"].clone())
}

fn writes(log: &[Access]) -> Vec<&Access> {
    log.iter()
        .filter(|a| matches!(a.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
        .collect()
}

#[test]
fn two_jobs_keep_exactly_the_tags_their_filters_say() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_repo(
        &src,
        "alpine",
        &[
            "3.17", "3.18", "3.18.1", "v3.19", "3.20-rc1", "edge", "latest", "4.0",
        ],
        10,
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            r#"version: 1
jobs:
  - name: alpine
    source: {s}/alpine
    target: {d}/mirror/alpine
    tags:
      include: ["3.*", "regex:^edge$", "semver:>=3.18, <4"]
      exclude: ["*-rc*"]
  - name: newest
    source: {s}/alpine
    target: {d}/newest/alpine
    tags:
      latest: 2
"#,
            s = src.host(),
            d = dst.host()
        ),
    );
    let (code, out, err) = sync(&["--output", "json", &cfg.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        tags_of(&dst.image("mirror/alpine")),
        ["3.17", "3.18", "3.18.1", "edge", "v3.19"]
    );
    assert_eq!(tags_of(&dst.image("newest/alpine")), ["4.0", "v3.19"]);
    let (reports, summary) = json_lines(&out);
    assert_eq!(reports.len(), 7);
    assert!(
        reports
            .iter()
            .all(|r| r["job"] == "alpine" || r["job"] == "newest")
    );
    assert_eq!(summary["jobs"], 2);
    assert_eq!(summary["images"]["copied"], 7);
    // Every tag points at one image: its blobs went to each repository once.
    let requests = &summary["requests"][dst.host()];
    assert!(requests.is_object(), "{summary}");
}

#[test]
fn a_namespace_job_mirrors_every_matching_repository_under_a_new_prefix() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    for (i, repo) in [
        "acme/app-one",
        "acme/app-two",
        "acme/app-test",
        "acme/other",
        "elsewhere/app-x",
    ]
    .iter()
    .enumerate()
    {
        seed_repo(&src, repo, &["1.0"], 100 + i as u64 * 10);
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            r#"version: 1
jobs:
  - name: team
    source: {s}/acme/
    repositories: {{include: ["app-*"], exclude: ["*-test"]}}
    target: {d}/mirror/acme/
"#,
            s = src.host(),
            d = dst.host()
        ),
    );
    let (code, _, err) = sync(&[&cfg.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tags_of(&dst.image("mirror/acme/app-one")), ["1.0"]);
    assert_eq!(tags_of(&dst.image("mirror/acme/app-two")), ["1.0"]);
    for absent in [
        "mirror/acme/app-test",
        "mirror/acme/other",
        "mirror/elsewhere/app-x",
        "mirror/acme/elsewhere/app-x",
    ] {
        assert!(
            tags_of(&dst.image(absent)).is_empty(),
            "{absent} was mirrored"
        );
    }
    assert!(err.contains("2 copied"), "{err}");
}

#[test]
fn a_platform_job_filters_and_an_unchanged_rerun_costs_one_request_per_side() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let w = LayoutWriter::new(&layout);
    let (bytes, digest) = w.index(&three_platforms(300));
    w.tag(&[("1.0", image::OCI_INDEX, bytes.as_slice(), digest.as_str())]);
    seed(&layout, "1.0", &src.image("multi:1.0"));
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\ndefaults:\n  platforms: [linux/amd64]\njobs:\n  - name: multi\n    source: {}/multi\n    target: {}/multi\n",
            src.host(),
            dst.host()
        ),
    );
    let cfg = cfg.display().to_string();
    let (code, _, err) = sync(&[&cfg]);
    assert_eq!(code, 0, "{err}");
    let index: serde_json::Value =
        serde_json::from_slice(&raw_manifest(&dst.image("multi:1.0"))).unwrap();
    let platforms: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["platform"]["architecture"].as_str())
        .collect();
    assert_eq!(platforms, ["amd64"]);

    let (s0, d0) = (src.access_log().len(), dst.access_log().len());
    let (code, out, err) = sync(&["--output", "json", &cfg]);
    assert_eq!(code, 0, "{err}");
    let (reports, _) = json_lines(&out);
    assert_eq!(reports[0]["action"], "up-to-date", "{out}");
    let s = src.requests_since(s0);
    let d = dst.requests_since(d0);
    // The source: its tag list and the root (the filtered digest follows
    // from the root's bytes); the target: its tag list (it spares a HEAD
    // for each tag it lacks) and one HEAD.
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].path.ends_with("/tags/list"), "{d:?}");
    assert_eq!(d[1].method, "HEAD");
}

#[test]
fn an_unchanged_run_is_one_head_per_tag_per_side_and_immutable_tags_cost_nothing() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    let tags = seed_tags(&src, "app", 6, 2, 400);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: app\n    source: {}/app\n    target: {}/app\n",
            src.host(),
            dst.host()
        ),
    );
    let cfg = cfg.display().to_string();
    let (code, _, err) = sync(&[&cfg]);
    assert_eq!(code, 0, "{err}");
    let (s0, d0) = (src.access_log().len(), dst.access_log().len());
    let (code, _, err) = sync(&[&cfg]);
    assert_eq!(code, 0, "{err}");
    let s = src.requests_since(s0);
    let d = dst.requests_since(d0);
    let heads = |log: &[Access]| log.iter().filter(|a| a.method == "HEAD").count();
    assert_eq!(heads(&s), tags.len(), "{s:?}");
    assert_eq!(
        s.len(),
        tags.len() + 1,
        "one tag list and one HEAD per tag: {s:?}"
    );
    assert_eq!(heads(&d), tags.len(), "{d:?}");
    assert_eq!(
        d.len(),
        tags.len() + 1,
        "its tag list and one HEAD per tag: {d:?}"
    );
    assert!(writes(&d).is_empty());

    // Immutable tags the target lists cost no per-tag request at all.
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: app\n    source: {}/app\n    target: {}/app\n    tags:\n      immutable: [\"t0*\"]\n",
            src.host(),
            dst.host()
        ),
    );
    let (s0, d0) = (src.access_log().len(), dst.access_log().len());
    let (code, out, err) = sync(&["--output", "json", &cfg.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let s = src.requests_since(s0);
    let d = dst.requests_since(d0);
    assert_eq!(s.len(), 1, "the source's tag list only: {s:?}");
    assert_eq!(d.len(), 1, "the target's tag list only: {d:?}");
    let (reports, summary) = json_lines(&out);
    assert!(reports.iter().all(|r| r["action"] == "skipped"), "{out}");
    assert_eq!(summary["images"]["skipped"], 6);
}

#[test]
fn plan_writes_nothing_and_job_picks_jobs() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_repo(&src, "one", &["a", "b"], 500);
    seed_repo(&src, "two", &["c"], 510);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: one\n    source: {s}/one\n    target: {d}/one\n  - name: two\n    source: {s}/two\n    target: {d}/two\n",
            s = src.host(),
            d = dst.host()
        ),
    );
    let cfg = cfg.display().to_string();
    let (code, out, err) = sync(&["--plan", "--output", "json", &cfg]);
    assert_eq!(code, 0, "{err}");
    let (reports, _) = json_lines(&out);
    assert_eq!(reports.len(), 3);
    assert!(reports.iter().all(|r| r["action"] == "copy"), "{out}");
    assert!(
        reports
            .iter()
            .all(|r| r["bytes_copied"].as_u64().unwrap() > 6000),
        "{out}"
    );
    assert!(
        writes(&dst.access_log()).is_empty(),
        "{:?}",
        dst.access_log()
    );
    let (code, _, err) = sync(&["--plan", &cfg]);
    assert_eq!(code, 0);
    assert!(err.contains("copy ") && err.contains("to move"), "{err}");

    let (code, _, err) = sync(&["--job", "two", &cfg]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tags_of(&dst.image("two")), ["c"]);
    assert!(tags_of(&dst.image("one")).is_empty());
    let (code, _, err) = sync(&["--job", "three", &cfg]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("three"), "{err}");
}

#[test]
fn a_failing_job_leaves_the_others_done_and_exits_1() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_repo(&src, "good", &["1"], 600);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: missing\n    source: {s}/does-not-exist\n    target: {d}/x\n  - name: good\n    source: {s}/good\n    target: {d}/good\n",
            s = src.host(),
            d = dst.host()
        ),
    );
    let (code, _, err) = sync(&[&cfg.display().to_string()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does-not-exist"), "{err}");
    assert!(err.contains("1 failed"), "{err}");
    assert_eq!(tags_of(&dst.image("good")), ["1"]);
}

#[test]
fn credentials_come_from_the_variable_the_config_names_and_are_never_printed() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::htpasswd("robot", "s3cret-mirror-token"));
    seed_repo(&src, "app", &["1"], 700);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\nregistries:\n  \"{d}\":\n    creds: {{username: robot, password_env: MIRROR_TOKEN}}\n    tls_verify: false\njobs:\n  - name: app\n    source: {s}/app\n    target: {d}/app\n",
            s = src.host(),
            d = dst.host()
        ),
    );
    let cfg = cfg.display().to_string();
    let home = tempfile::tempdir().unwrap();
    let home = home.path().display().to_string();
    let env = [
        ("HOME", home.as_str()),
        ("MIRROR_TOKEN", "s3cret-mirror-token"),
    ];
    let (code, out, err) = run_with_env(&["sync", "-vv", &cfg], &env);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("s3cret") && !err.contains("s3cret"), "{err}");
    assert!(!err.contains("czNjcmV0"), "base64 of the password leaked");

    let (code, _, err) = run_with_env(&["sync", &cfg], &[("HOME", home.as_str())]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("MIRROR_TOKEN") && err.contains("not set"),
        "{err}"
    );
}

#[test]
fn blobs_shared_across_jobs_are_uploaded_once() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    // Two repositories of the same images: every blob is shared.
    seed_repo(&src, "left", &["1"], 800);
    seed_repo(&src, "right", &["1"], 800);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: left\n    source: {s}/left\n    target: {d}/left\n  - name: right\n    source: {s}/right\n    target: {d}/right\n",
            s = src.host(),
            d = dst.host()
        ),
    );
    let (code, _, err) = sync(&["--jobs", "1", &cfg.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let log = dst.access_log();
    let uploads = log
        .iter()
        .filter(|a| a.method == "PUT" && a.path.contains("/blobs/uploads/"))
        .count();
    // Mounts across repositories (a mount of a repository from itself is
    // the run learning that lookups can be one POST).
    let across = |a: &&Access| {
        let into = a.path.split('/').nth(2).unwrap_or_default();
        !a.path.contains(&format!("from={into}"))
    };
    let mounts = log
        .iter()
        .filter(|a| a.method == "POST" && a.path.contains("mount=") && a.status == 201)
        .filter(across)
        .count();
    assert_eq!(uploads, 3, "config and two layers, once: {log:?}");
    assert_eq!(mounts, 3, "{log:?}");
}

#[test]
fn config_mistakes_are_exit_2_with_their_line_before_any_request() {
    let reg = Registry::start(RegistryConfig::anonymous());
    let h = reg.host();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            format!(
                "version: 1\njobs:\n  - name: a\n    source: {h}/a\n    target: {h}/b\n    tagz: {{}}\n"
            ),
            ":6:5:",
            "tagz",
        ),
        (
            format!(
                "version: 1\njobs:\n  - name: a\n    source: {h}/a\n    target: {h}/b\n  - name: a\n    source: {h}/c\n    target: {h}/d\n"
            ),
            ":6:11:",
            "duplicate job name",
        ),
        (
            format!(
                "version: 1\njobs:\n  - name: a\n    source: {h}/a\n    target: {h}/b\n    tags:\n      include: [\"regex:(\"]\n"
            ),
            ":7:17:",
            "regular expression",
        ),
        (
            format!(
                "version: 1\njobs:\n  - name: a\n    source: {h}/a\n    target: {h}/b\n    tags:\n      include: [\"semver:>>1\"]\n"
            ),
            ":7:17:",
            "version range",
        ),
        (
            format!("version: 1\njobs:\n  - name: a\n    source: {h}/a\n    target: {h}/a\n"),
            ":5:13:",
            "the target is the source",
        ),
        (
            format!(
                "version: 1\njobs:\n  - name: a\n    source: {h}/a\n    target: {h}/b\n    tags:\n      latest: many\n"
            ),
            ":7:15:",
            "",
        ),
        (
            format!("version: 2\njobs:\n  - name: a\n    source: {h}/a\n    target: {h}/b\n"),
            ":1:10:",
            "version",
        ),
        (
            format!(
                "version: 1\ndefaults:\n  source: {h}/x\njobs:\n  - name: a\n    source: {h}/a\n    target: {h}/b\n"
            ),
            ":3:11:",
            "defaults cannot",
        ),
        (
            format!("version: 1\njobs:\n  - name: a b\n    source: {h}/a\n    target: {h}/b\n"),
            ":3:11:",
            "letters, digits",
        ),
    ];
    for (text, place, words) in &cases {
        let cfg = config(dir.path(), text);
        let (code, _, err) = sync(&[&cfg.display().to_string()]);
        assert_eq!(code, 2, "{text}\n{err}");
        assert!(
            err.contains(&format!("mirror.yaml{place}")),
            "{text}\nexpected {place}: {err}"
        );
        assert!(err.contains(words), "{text}\nexpected {words}: {err}");
        let (code, _, err) = sync(&["--check", &cfg.display().to_string()]);
        assert_eq!(code, 2, "--check: {err}");
    }
    assert!(
        reg.access_log().is_empty(),
        "a request was made: {:?}",
        reg.access_log()
    );
    let good = config(
        dir.path(),
        &format!("version: 1\njobs:\n  - name: a\n    source: {h}/a\n    target: {h}/b\n"),
    );
    let (code, _, err) = sync(&["--check", &good.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 jobs, valid"), "{err}");
    assert!(reg.access_log().is_empty());
}

/// Docker Hub's pull limit, played by the fake: it states the budget left
/// (`ratelimit-remaining`) on every manifest answer and counts each
/// manifest GET against it. With 12 left and 10 kept in reserve, two
/// images are copied and the rest are left for a later run, with a
/// reason, without a GET and without failing the run.
/// A new image's root is read with the checks, before the image waits for
/// a copy slot (over a WAN a slot would otherwise spend a round trip per
/// image on it): with one slot, the source sees every root GET before the
/// copies' blob GETs are under way.
#[test]
fn new_images_roots_are_read_with_the_checks_not_in_a_copy_slot() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    let tags = seed_tags(&src, "app", 6, 2, 700);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: app\n    source: {}/app\n    target: {}/app\n",
            src.host(),
            dst.host()
        ),
    );
    let s0 = src.access_log().len();
    let (code, _, err) = sync(&["--jobs", "1", &cfg.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tags_of(&dst.image("app")), tags);
    let s = src.requests_since(s0);
    let is_get = |a: &Access, what: &str| a.method == "GET" && a.path.contains(what);
    let last_root = s
        .iter()
        .rposition(|a| is_get(a, "/manifests/"))
        .expect("root GETs");
    let blobs_before = s[..last_root]
        .iter()
        .filter(|a| is_get(a, "/blobs/"))
        .count();
    let blobs = s.iter().filter(|a| is_get(a, "/blobs/")).count();
    // In a slot, the roots' GETs would come between the images' blobs:
    // five images' worth before the last root.
    assert!(
        blobs_before < 4 && blobs >= 12,
        "{blobs_before} of {blobs} blob GETs before the last root GET: {s:?}"
    );
}

#[test]
fn a_pull_budget_holds_back_images_instead_of_failing_half_way() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use support::fake::{FakeRegistry, Rule};

    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let mut entries = Vec::new();
    for i in 0..5u64 {
        let (bytes, digest) = w.image(&ImageSpec::new(
            "linux/amd64",
            vec![Layer::random(900 + i, 2048)],
        ));
        entries.push((format!("t{i}"), bytes, digest));
    }
    let refs: Vec<(&str, &str, &[u8], &str)> = entries
        .iter()
        .map(|(t, b, d)| (t.as_str(), image::OCI_MANIFEST, b.as_slice(), d.as_str()))
        .collect();
    w.tag(&refs);
    let hub = FakeRegistry::start();
    hub.load_layout(dir.path(), "app");
    let gets = Arc::new(AtomicU64::new(0));
    for method in ["GET", "HEAD"] {
        let gets = gets.clone();
        hub.rule(Rule::map(method, "/manifests/", move |seen, reply| {
            if seen.method == "GET" {
                gets.fetch_add(1, Ordering::SeqCst);
            }
            let left = 12u64.saturating_sub(gets.load(Ordering::SeqCst));
            reply
                .header("ratelimit-limit", "100;w=21600")
                .header("ratelimit-remaining", &format!("{left};w=21600"))
        }));
    }
    let dst = Registry::start(RegistryConfig::anonymous());
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: hub\n    source: {}/app\n    target: {}/app\n",
            hub.host(),
            dst.host()
        ),
    );
    let (code, out, err) = sync(&[
        "--jobs",
        "1",
        "--output",
        "json",
        &cfg.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (reports, summary) = json_lines(&out);
    assert_eq!(summary["images"]["copied"], 2, "{out}");
    assert_eq!(summary["images"]["skipped"], 3, "{out}");
    for r in reports.iter().filter(|r| r["action"] == "skipped") {
        let reason = r["reason"].as_str().unwrap();
        assert!(
            reason.contains("pulls left") && reason.contains("ratelimit_min"),
            "{reason}"
        );
    }
    assert_eq!(
        gets.load(Ordering::SeqCst),
        2,
        "held-back images made no GET"
    );
    assert_eq!(tags_of(&dst.image("app")).len(), 2);
}
