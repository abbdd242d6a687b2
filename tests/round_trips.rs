//! Fewer round trips per blob and per tag (issue 13), against Debian's
//! registry for what it does and the fake for what it will not:
//! - a repository whose tag list is empty is asked "is this blob here?" and
//!   "start its upload" in one POST, a mount from the repository itself,
//!   and its leftover blobs are still found;
//! - a repository with tags is asked by HEAD: a mount would rewrite the
//!   link of a blob its images name;
//! - a registry that ignores the mount (the fake) keeps the HEADs, and the
//!   probe's session is cancelled;
//! - a tag the target's tag list lacks needs no manifest HEAD.

mod support;

use support::fake::FakeRegistry;
use support::*;

/// Requests on the target by (method, what), for assertions.
fn count(log: &[Access], method: &str, needle: &str) -> usize {
    log.iter()
        .filter(|r| r.method == method && r.path.contains(needle))
        .count()
}

#[test]
fn in_a_repository_with_tags_lookups_stay_heads_and_no_named_blob_is_mounted() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    // Two tags: a shared base, a layer of their own, a config each.
    seed_tags(&a, "app", 2, 2, 950);
    let (code, _, err) = run(&["copy", &a.image("app:t00"), &b.image("app:t00")]);
    assert_eq!(code, 0, "{err}");

    // A mount of a blob the repository holds rewrites its link, which
    // distribution truncates first: a pull of t00 meanwhile would be told
    // the base is unknown. So each lookup here is a HEAD, and the one
    // mount from the repository itself is the probe, of a blob just
    // uploaded.
    let mark = b.access_log().len();
    let (code, out, err) = run(&[
        "copy",
        "--jobs",
        "1",
        "--output",
        "json",
        &a.image("app:t01"),
        &b.image("app:t01"),
    ]);
    assert_eq!(code, 0, "{err}");
    let r = report(&out);
    assert_eq!(r["blobs"]["copied"], 2, "config and own layer: {r}");
    assert_eq!(r["blobs"]["skipped"], 1, "the base, already there: {r}");
    let log = b.requests_since(mark);
    assert_eq!(count(&log, "HEAD", "/blobs/"), 3, "{log:?}");
    let self_mounts: Vec<_> = log
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("from=app"))
        .collect();
    assert_eq!(self_mounts.len(), 1, "the probe alone: {log:?}");
    assert_eq!(self_mounts[0].status, 201, "{log:?}");
    assert_eq!(count(&log, "POST", "/blobs/uploads/"), 3, "{log:?}");
    assert_eq!(count(&log, "PUT", "/blobs/uploads/"), 2, "{log:?}");
    assert_eq!(b.open_uploads("app"), 0);
    assert_eq!(
        remote_digest(&b.image("app:t01")),
        remote_digest(&a.image("app:t01"))
    );
}

#[test]
fn a_registry_that_ignores_mounts_keeps_its_heads_and_loses_no_session() {
    let fake = FakeRegistry::start();
    let a = Registry::start(RegistryConfig::anonymous());
    seed_tags(&a, "app", 2, 2, 960);
    let (code, _, err) = run(&["copy", &a.image("app:t00"), &fake.image("app:t00")]);
    assert_eq!(code, 0, "{err}");
    let mark = fake.log().len();
    let (code, out, err) = run(&[
        "copy",
        "--jobs",
        "1",
        "--output",
        "json",
        &a.image("app:t01"),
        &fake.image("app:t01"),
    ]);
    assert_eq!(code, 0, "{err}");
    let r = report(&out);
    assert_eq!(r["blobs"]["skipped"], 1, "the base is not sent again: {r}");
    let log: Vec<_> = fake.log().into_iter().skip(mark).collect();
    // The fake logs paths without their query: two uploads and the probe.
    assert_eq!(
        log.iter().filter(|(m, _, _)| m == "POST").count(),
        3,
        "two uploads and one probe, answered 202: {log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|(m, p, _)| m == "HEAD" && p.contains("/blobs/"))
            .count(),
        3,
        "every lookup stays a HEAD: {log:?}"
    );
    assert_eq!(
        log.iter().filter(|(m, _, _)| m == "DELETE").count(),
        1,
        "the probe's session is cancelled: {log:?}"
    );
    assert_eq!(fake.open_uploads(), 0);
}

#[test]
fn tags_the_target_lacks_need_no_head_on_either_side_and_a_rerun_is_one_head_per_tag() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    seed_tags(&a, "many", 4, 2, 970);
    // t00 is there already; the other three are not.
    let (code, _, err) = run(&["copy", &a.image("many:t00"), &b.image("many:t00")]);
    assert_eq!(code, 0, "{err}");
    let mark = b.access_log().len();
    let src_mark = a.access_log().len();
    let (code, _, err) = run(&["copy", "--all-tags", &a.image("many"), &b.image("many")]);
    assert_eq!(code, 0, "{err}");
    // The source: a HEAD for t00 (it may be up to date), one GET for each
    // of the three the target lacks, no HEAD before it.
    let src_log = a.requests_since(src_mark);
    let manifests = |method: &str| -> Vec<String> {
        let mut v: Vec<String> = src_log
            .iter()
            .filter(|r| r.method == method && r.path.contains("/manifests/t"))
            .map(|r| r.path.rsplit('/').next().unwrap_or_default().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(manifests("HEAD"), ["t00"], "{src_log:?}");
    assert_eq!(manifests("GET"), ["t01", "t02", "t03"], "{src_log:?}");
    let log = b.requests_since(mark);
    assert_eq!(count(&log, "GET", "/tags/list"), 1, "{log:?}");
    let heads: Vec<_> = log
        .iter()
        .filter(|r| r.method == "HEAD" && r.path.contains("/manifests/"))
        .collect();
    assert_eq!(heads.len(), 1, "only t00, which the list holds: {heads:?}");
    assert!(heads[0].path.ends_with("/manifests/t00"), "{heads:?}");

    let mark = b.access_log().len();
    let (code, _, err) = run(&["copy", "--all-tags", &a.image("many"), &b.image("many")]);
    assert_eq!(code, 0, "{err}");
    let log = b.requests_since(mark);
    assert_eq!(log.len(), 5, "the tag list and one HEAD per tag: {log:?}");
    assert_eq!(count(&log, "HEAD", "/manifests/"), 4, "{log:?}");
    for i in 0..4 {
        assert_eq!(
            remote_digest(&b.image(&format!("many:t{i:02}"))),
            remote_digest(&a.image(&format!("many:t{i:02}")))
        );
    }
}

#[test]
fn a_repository_without_tags_is_asked_by_mount_alone_and_its_leftover_blobs_stay() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    seed_tags(&a, "app", 3, 2, 990);
    // t00's blobs stay in b/app without a tag: what a run that died before
    // its manifest leaves behind.
    let (code, _, err) = run(&["copy", &a.image("app:t00"), &b.image("app:t00")]);
    assert_eq!(code, 0, "{err}");
    let t00 = format!("docker://{}", b.image("app:t00"));
    skopeo(&["delete", "--tls-verify=false", &t00]);
    assert!(tags_of(&b.image("app")).is_empty());

    let mark = b.access_log().len();
    let (code, _, err) = run(&["copy", "--all-tags", &a.image("app"), &b.image("app")]);
    assert_eq!(code, 0, "{err}");
    let log = b.requests_since(mark);
    assert_eq!(count(&log, "HEAD", "/blobs/"), 0, "{log:?}");
    // Seven blobs (a shared base, a layer and a config per tag): t00's
    // three are found by their mount (201), only four are sent.
    assert_eq!(count(&log, "PUT", "/blobs/uploads/"), 4, "{log:?}");
    let found = log
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("from=app") && r.status == 201)
        .count();
    assert!(found >= 3, "t00's blobs, by their mount: {log:?}");
    assert_eq!(b.open_uploads("app"), 0);
    for i in 0..3 {
        let tag = format!("app:t{i:02}");
        assert_eq!(remote_digest(&b.image(&tag)), remote_digest(&a.image(&tag)));
    }
}

#[test]
fn into_a_new_repository_of_a_registry_that_ignores_mounts_every_blob_goes_once() {
    let fake = FakeRegistry::start();
    let a = Registry::start(RegistryConfig::anonymous());
    seed_tags(&a, "app", 2, 2, 995);
    let (code, _, err) = run(&[
        "copy",
        "--all-tags",
        "--jobs",
        "1",
        &a.image("app"),
        &fake.image("app"),
    ]);
    assert_eq!(code, 0, "{err}");
    // Five blobs: the first lookups are mounts answered 202 (sessions the
    // uploads use), the probe teaches that mounts are ignored, HEADs
    // follow. No blob is sent twice and no session is left open.
    let puts = fake
        .log()
        .into_iter()
        .filter(|(m, p, _)| m == "PUT" && p.contains("/blobs/uploads/"))
        .count();
    assert_eq!(puts, 5, "{:?}", fake.log());
    let first_lookup = fake
        .log()
        .into_iter()
        .find(|(_, p, _)| p.contains("/blobs/"))
        .map(|(m, _, status)| (m, status));
    assert_eq!(
        first_lookup,
        Some(("POST".to_string(), 202)),
        "the mount alone: {:?}",
        fake.log()
    );
    assert_eq!(fake.open_uploads(), 0);
    for tag in ["app:t00", "app:t01"] {
        assert_eq!(
            remote_digest(&fake.image(tag)),
            remote_digest(&a.image(tag))
        );
    }
}
