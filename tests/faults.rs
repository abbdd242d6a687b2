//! Faults between ocirepl and real registries (RELIABILITY scenarios 8 and
//! 12 to 20), injected by the proxy in `tests/support/proxy.rs`. After each,
//! the target tag is unchanged or complete, and a successful run leaves no
//! upload session behind.

mod support;

use std::time::{Duration, Instant};

use support::fake::Reply;
use support::proxy::{Fault, FaultProxy, ProxyRule};
use support::*;

/// A registry holding `app:v1` (one 512 KiB layer and a small one); returns
/// (registry, manifest digest, big layer digest).
fn source(seed_n: u64) -> (Registry, String, String) {
    let reg = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let big = Layer::random(seed_n, 512 * 1024);
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![big.clone(), Layer::random(seed_n + 1, 2048)],
    ));
    w.tag(&[("v1", image::OCI_MANIFEST, &bytes, &digest)]);
    seed(dir.path(), "v1", &reg.image("app:v1"));
    (reg, digest, image::sha256(&big.gz))
}

fn copy_ok(src: &str, dst: &str, extra: &[&str]) -> String {
    let mut args = vec!["copy", "-v", src, dst];
    args.extend_from_slice(extra);
    let (code, _, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    err
}

/// Scenario 8: the source GET breaks after 60% of the bytes: resumed with Range.
#[test]
fn a_broken_blob_get_resumes_with_range() {
    let (src, digest, big) = source(900);
    let proxy = FaultProxy::start(src.port);
    proxy.rule(ProxyRule::new(
        "GET",
        &format!("/blobs/{big}"),
        Fault::CutBodyAfter(300 * 1024),
    ));
    let dst = Registry::start(RegistryConfig::anonymous());
    copy_ok(&proxy.image("app:v1"), &dst.image("app:v1"), &[]);
    assert_eq!(remote_digest(&dst.image("app:v1")), digest);
    let gets: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|e| e.method == "GET" && e.target.ends_with(&big))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    let range = gets[1]
        .request_headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("range"))
        .map(|(_, v)| v.clone());
    assert_eq!(range.as_deref(), Some("bytes=307200-"));
    assert_eq!(dst.open_uploads("app"), 0);
}

/// Scenario 12: 5xx twice then success, on a blob GET and on a PATCH; a
/// permanent 500 fails with the status named.
#[test]
fn transient_server_errors_are_retried_and_permanent_ones_reported() {
    let (src, digest, big) = source(910);
    let proxy = FaultProxy::start(src.port);
    proxy.rule(
        ProxyRule::new(
            "GET",
            &format!("/blobs/{big}"),
            Fault::Reply(Reply::status(503)),
        )
        .times(2),
    );
    let dst = Registry::start(RegistryConfig::anonymous());
    let dst_proxy = FaultProxy::start(dst.port);
    dst_proxy.rule(
        ProxyRule::new("PATCH", "/blobs/uploads/", Fault::Reply(Reply::status(502)))
            .skip(1)
            .times(2),
    );
    copy_ok(
        &proxy.image("app:v1"),
        &dst_proxy.image("app:v1"),
        &["--upload-mode", "chunked", "--chunk-size", "131072"],
    );
    assert_eq!(remote_digest(&dst.image("app:v1")), digest);
    assert_eq!(proxy.count("GET", &big), 3);
    assert_eq!(dst.open_uploads("app"), 0);

    let (src, _, big) = source(911);
    let proxy = FaultProxy::start(src.port);
    proxy.rule(
        ProxyRule::new(
            "GET",
            &format!("/blobs/{big}"),
            Fault::Reply(Reply::status(500)),
        )
        .times(1000),
    );
    let started = Instant::now();
    let (code, _, err) = run(&["copy", &proxy.image("app:v1"), &dst.image("other:v1")]);
    assert_eq!(code, 1);
    assert!(err.contains(": 500"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded: {:?}",
        started.elapsed()
    );
    assert!(
        proxy.count("GET", &big) <= 12,
        "bounded attempts: {}",
        proxy.count("GET", &big)
    );
}

/// Scenario 13: 429 with Retry-After is honoured; an absurd one fails fast.
#[test]
fn retry_after_is_honoured_and_capped() {
    let (src, digest, big) = source(920);
    let proxy = FaultProxy::start(src.port);
    proxy.rule(ProxyRule::new(
        "GET",
        &format!("/blobs/{big}"),
        Fault::Reply(Reply::status(429).header("Retry-After", "2")),
    ));
    let dst = Registry::start(RegistryConfig::anonymous());
    let started = Instant::now();
    copy_ok(&proxy.image("app:v1"), &dst.image("app:v1"), &[]);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited: {:?}",
        started.elapsed()
    );
    assert_eq!(remote_digest(&dst.image("app:v1")), digest);

    let (src, _, big) = source(921);
    let proxy = FaultProxy::start(src.port);
    proxy.rule(
        ProxyRule::new(
            "GET",
            &format!("/blobs/{big}"),
            Fault::Reply(Reply::status(429).header("Retry-After", "86400")),
        )
        .times(100),
    );
    let started = Instant::now();
    let (code, _, err) = run(&["copy", &proxy.image("app:v1"), &dst.image("other:v1")]);
    assert_eq!(code, 1);
    assert!(err.contains("429"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "no day-long sleep: {:?}",
        started.elapsed()
    );
}

/// Scenarios 15 and 16: a PATCH whose answer is lost, a 416, and an expired
/// session during a chunked upload: resumed from the registry's range, or
/// restarted; the final digest is right and no session is left.
#[test]
fn chunked_uploads_resume_after_lost_answers_416_and_expiry() {
    let (src, digest, _) = source(930);
    let dst = Registry::start(RegistryConfig::anonymous());
    let chunked = [
        "--upload-mode",
        "chunked",
        "--chunk-size",
        "131072",
        "--jobs",
        "1",
    ];

    // A PATCH reaches the registry but its answer is lost. Debian's 2.8 then
    // accepts no status request (our `_state` is stale, and it takes no
    // other): the blob starts over in a new session, and the stale one,
    // which it will not let us DELETE either, is left to its purge.
    let proxy = FaultProxy::start(dst.port);
    proxy.rule(ProxyRule::new("PATCH", "/blobs/uploads/", Fault::DropResponse).skip(1));
    copy_ok(&src.image("app:v1"), &proxy.image("lost:v1"), &chunked);
    assert_eq!(remote_digest(&dst.image("lost:v1")), digest);
    assert!(
        proxy.count("GET", "/blobs/uploads/") >= 1,
        "asked the session for its range"
    );
    assert!(dst.open_uploads("lost") <= 1);

    // A PATCH answered 416 with the range the registry holds.
    let proxy = FaultProxy::start(dst.port);
    proxy.rule(
        ProxyRule::new(
            "PATCH",
            "/blobs/uploads/",
            Fault::Reply(Reply::status(416).header("Range", "0-131071")),
        )
        .skip(2),
    );
    copy_ok(&src.image("app:v1"), &proxy.image("r416:v1"), &chunked);
    assert_eq!(remote_digest(&dst.image("r416:v1")), digest);
    assert_eq!(dst.open_uploads("r416"), 0);

    // The session expires mid-way: a new session from the start.
    let proxy = FaultProxy::start(dst.port);
    proxy.rule(
        ProxyRule::new(
            "PATCH",
            "/blobs/uploads/",
            Fault::Reply(Reply::error(
                404,
                "BLOB_UPLOAD_UNKNOWN",
                "blob upload unknown",
            )),
        )
        .skip(2),
    );
    copy_ok(&src.image("app:v1"), &proxy.image("expired:v1"), &chunked);
    assert_eq!(remote_digest(&dst.image("expired:v1")), digest);
    assert!(
        proxy.count("POST", "/blobs/uploads/") >= 3,
        "a new session was opened"
    );
}

/// Scenario 17: a monolithic PUT cut off before the registry saw it, and one
/// committed whose answer was lost.
#[test]
fn lost_puts_are_retried_or_found_committed() {
    let (src, digest, _) = source(940);
    let dst = Registry::start(RegistryConfig::anonymous());
    let proxy = FaultProxy::start(dst.port);
    proxy.rule(ProxyRule::new("PUT", "/blobs/uploads/", Fault::Refuse));
    copy_ok(
        &src.image("app:v1"),
        &proxy.image("refused:v1"),
        &["--jobs", "1"],
    );
    assert_eq!(remote_digest(&dst.image("refused:v1")), digest);

    let proxy = FaultProxy::start(dst.port);
    proxy.rule(ProxyRule::new(
        "PUT",
        "/blobs/uploads/",
        Fault::DropResponse,
    ));
    copy_ok(
        &src.image("app:v1"),
        &proxy.image("dropped:v1"),
        &["--jobs", "1"],
    );
    assert_eq!(remote_digest(&dst.image("dropped:v1")), digest);
    // The committed blob was found by a HEAD, not uploaded again.
    assert_eq!(
        proxy.count("PUT", "/blobs/uploads/"),
        3,
        "{:?}",
        proxy.log()
    );
}

/// Scenario 18: MANIFEST_BLOB_UNKNOWN right after the upload (eventual
/// consistency): retried; the tag moves only on the final 201.
#[test]
fn manifest_puts_ride_out_eventual_consistency() {
    let (src, digest, _) = source(950);
    let dst = Registry::start(RegistryConfig::anonymous());
    let proxy = FaultProxy::start(dst.port);
    proxy.rule(
        ProxyRule::new(
            "PUT",
            "/manifests/v1",
            Fault::Reply(Reply::error(
                400,
                "MANIFEST_BLOB_UNKNOWN",
                "blob unknown to registry",
            )),
        )
        .times(2),
    );
    copy_ok(&src.image("app:v1"), &proxy.image("app:v1"), &[]);
    assert_eq!(remote_digest(&dst.image("app:v1")), digest);
    assert_eq!(proxy.count("PUT", "/manifests/v1"), 3);
}

/// Scenario 19: the target says a blob exists (HEAD 200) but then refuses
/// the manifest: every blob is uploaded again once, then the push succeeds.
#[test]
fn a_target_lying_about_a_blob_is_healed() {
    let (src, digest, big) = source(960);
    let dst = Registry::start(RegistryConfig::anonymous());
    let proxy = FaultProxy::start(dst.port);
    proxy.rule(ProxyRule::new(
        "HEAD",
        &format!("/blobs/{big}"),
        Fault::Reply(Reply::status(200)),
    ));
    copy_ok(&src.image("app:v1"), &proxy.image("app:v1"), &[]);
    assert_eq!(remote_digest(&dst.image("app:v1")), digest);
    assert!(
        proxy.count("PUT", "/manifests/v1") >= 2,
        "refused, then pushed after healing"
    );
}

/// Scenario 20: the target vanishes between the children and the index: the
/// job fails, the old tag is intact, and a re-run finishes without uploading
/// a blob again.
#[test]
fn a_failure_before_the_index_leaves_the_old_tag_and_a_rerun_finishes() {
    let (old_src, old_digest, _) = source(970);
    let dst = Registry::start(RegistryConfig::anonymous());
    copy_ok(&old_src.image("app:v1"), &dst.image("multi:v1"), &[]);

    let src = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, index_digest) = w.index(&three_platforms(971));
    w.tag(&[("v1", image::OCI_INDEX, &bytes, &index_digest)]);
    seed(dir.path(), "v1", &src.image("multi:v1"));

    let proxy = FaultProxy::start(dst.port);
    proxy.rule(ProxyRule::new("PUT", "/manifests/v1", Fault::Refuse).times(100));
    let (code, _, err) = run(&["copy", &src.image("multi:v1"), &proxy.image("multi:v1")]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        remote_digest(&dst.image("multi:v1")),
        old_digest,
        "the old tag is intact"
    );

    let mark = dst.access_log().len();
    copy_ok(&src.image("multi:v1"), &dst.image("multi:v1"), &[]);
    assert_eq!(remote_digest(&dst.image("multi:v1")), index_digest);
    let uploads = dst
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/"))
        .count();
    assert_eq!(uploads, 0, "no blob uploaded again");
}

/// Scenario 15 where the registry keeps sessions by id (the fake): after a
/// PATCH whose answer was lost, the status request says how far it got and
/// the upload continues from there, without sending a byte twice.
#[test]
fn a_lost_patch_answer_resumes_from_the_session_range() {
    let (src, digest, big) = source(980);
    let fake = support::fake::FakeRegistry::start();
    let proxy = FaultProxy::start(fake.port);
    proxy.rule(ProxyRule::new("PATCH", "/blobs/uploads/", Fault::DropResponse).skip(2));
    copy_ok(
        &src.image("app:v1"),
        &proxy.image("app:v1"),
        &[
            "--upload-mode",
            "chunked",
            "--chunk-size",
            "131072",
            "--jobs",
            "1",
        ],
    );
    assert!(fake.has_manifest("app", &digest));
    assert!(fake.blob(&big).is_some());
    let patches: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.method == "PATCH")
        .collect();
    let ranges: Vec<String> = patches
        .iter()
        .filter_map(|p| p.header("content-range").map(str::to_string))
        .collect();
    let mut unique = ranges.clone();
    unique.dedup();
    assert_eq!(ranges, unique, "no chunk sent twice: {ranges:?}");
    assert!(
        proxy.count("GET", "/blobs/uploads/") >= 1,
        "asked the session for its range"
    );
}

/// Scenario 9: on resume the source ignores Range (a 200 with the whole
/// body) or sends a 206 starting elsewhere: never spliced; the transfer
/// starts over from 0 and is verified.
#[test]
fn a_resume_that_is_not_exact_is_never_spliced() {
    for answer in ["ignores-range", "wrong-start"] {
        let dir = tempfile::tempdir().unwrap();
        let w = LayoutWriter::new(dir.path());
        let big = Layer::random(990, 256 * 1024);
        let (bytes, digest) = w.image(&ImageSpec::new("linux/amd64", vec![big.clone()]));
        w.tag(&[("v1", image::OCI_MANIFEST, &bytes, &digest)]);
        let fake = support::fake::FakeRegistry::start();
        fake.load_layout(dir.path(), "app");
        let layer = image::sha256(&big.gz);
        // First GET: the connection dies half-way.
        fake.rule(
            support::fake::Rule::map("GET", &format!("/blobs/{layer}"), |_, mut r| {
                let full = r.body.len();
                r.body.truncate(full / 2);
                r.content_length = Some(full);
                r
            })
            .times(1),
        );
        if answer == "wrong-start" {
            fake.rule(
                support::fake::Rule::map("GET", &format!("/blobs/{layer}"), |seen, mut r| {
                    if seen.header("range").is_some() {
                        let total = r.body.len();
                        r.status = 206;
                        r.headers.push((
                            "Content-Range".into(),
                            format!("bytes 0-{}/{total}", total - 1),
                        ));
                    }
                    r
                })
                .times(1),
            );
        }
        let dst = Registry::start(RegistryConfig::anonymous());
        copy_ok(&fake.image("app:v1"), &dst.image("app:v1"), &[]);
        assert_eq!(remote_digest(&dst.image("app:v1")), digest, "{answer}");
        let gets: Vec<_> = fake
            .seen()
            .into_iter()
            .filter(|s| s.method == "GET" && s.path().ends_with(&layer))
            .collect();
        assert_eq!(gets.len(), 3, "{answer}: cut, resume refused, fresh start");
        assert!(
            gets[1].header("range").is_some(),
            "{answer}: a resume was asked"
        );
        assert!(
            gets[2].header("range").is_none(),
            "{answer}: then a fresh GET from 0"
        );
    }
}

/// `--upload-mode auto`: a registry that refuses a monolithic PUT for its
/// size (413) gets chunked uploads from then on.
#[test]
fn a_413_switches_to_chunked_uploads() {
    let (src, digest, _) = source(995);
    let dst = Registry::start(RegistryConfig::anonymous());
    let proxy = FaultProxy::start(dst.port);
    proxy.rule(ProxyRule::new(
        "PUT",
        "/blobs/uploads/",
        Fault::Reply(Reply::error(
            413,
            "SIZE_INVALID",
            "request entity too large",
        )),
    ));
    copy_ok(
        &src.image("app:v1"),
        &proxy.image("app:v1"),
        &["--jobs", "1", "--chunk-size", "65536"],
    );
    assert_eq!(remote_digest(&dst.image("app:v1")), digest);
    assert!(
        proxy.count("PATCH", "/blobs/uploads/") >= 2,
        "{:?}",
        proxy.log()
    );
}

/// Scenario 14: a server that stalls: the read timeout fires and the
/// request is retried; a job that cannot finish in --timeout fails cleanly
/// with its tag untouched.
#[test]
fn stalls_hit_the_read_timeout_and_jobs_respect_their_deadline() {
    let (src, digest, big) = source(1000);
    let proxy = FaultProxy::start(src.port);
    proxy.rule(ProxyRule::new(
        "GET",
        &format!("/blobs/{big}"),
        Fault::Delay(Duration::from_secs(4)),
    ));
    let dst = Registry::start(RegistryConfig::anonymous());
    let started = Instant::now();
    copy_ok(
        &proxy.image("app:v1"),
        &dst.image("app:v1"),
        &["--read-timeout", "1"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "did not wait for the stall: {:?}",
        started.elapsed()
    );
    assert_eq!(remote_digest(&dst.image("app:v1")), digest);

    let proxy = FaultProxy::start(src.port);
    proxy.rule(ProxyRule::new("*", "/blobs/", Fault::Delay(Duration::from_secs(3))).times(1000));
    let started = Instant::now();
    let (code, _, err) = run(&[
        "copy",
        "--timeout",
        "2",
        &proxy.image("app:v1"),
        &dst.image("slow:v1"),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("--timeout"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let tagged = skopeo_output(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}", dst.image("slow:v1")),
    ]);
    assert!(!tagged.status.success(), "no tag was created");
}
