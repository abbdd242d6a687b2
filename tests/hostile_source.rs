//! Lying and broken registries (the scripted fake) against a real target:
//! every lie is caught before anything is pushed, and the target tag is
//! never moved to an incomplete image.

mod support;

use support::fake::{FakeRegistry, Reply, Rule};
use support::*;

/// A fake source holding `app:v1`, a single image; returns (fake, manifest
/// digest, digest of its larger layer).
fn fake_source() -> (FakeRegistry, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let big = Layer::random(7, 256 * 1024);
    let spec = ImageSpec::new("linux/amd64", vec![big.clone(), Layer::random(8, 1024)]);
    let (bytes, digest) = w.image(&spec);
    w.tag(&[("v1", image::OCI_MANIFEST, &bytes, &digest)]);
    let fake = FakeRegistry::start();
    fake.load_layout(dir.path(), "app");
    (fake, digest, image::sha256(&big.gz))
}

/// Asserts the copy failed with `needle` in its message, pushed no manifest,
/// and left no upload session but those whose PUT was cut: distribution 2.8
/// refuses to cancel a session whose PUT was cut mid-body (DELETE answers
/// 404 BLOB_UPLOAD_INVALID) and purges it itself; we still try.
fn assert_nothing_pushed(target: &Registry, mark: usize, code: i32, err: &str, needle: &str) {
    eprintln!("ocirepl said: {err}");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let after = target.requests_since(mark);
    let manifest_puts = after
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/manifests/"))
        .count();
    assert_eq!(manifest_puts, 0, "a manifest was pushed: {after:?}");
    let deletes = after.iter().filter(|r| r.method == "DELETE").count();
    let failed_puts = after
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/") && r.status != 201)
        .count();
    assert!(
        deletes >= failed_puts,
        "each failed session gets a DELETE: {after:?}"
    );
    assert!(
        target.open_uploads("app") <= failed_puts,
        "only sessions whose PUT was cut may remain: {after:?}"
    );
}

#[test]
fn a_flipped_byte_in_a_layer_fails_before_any_manifest() {
    let (fake, _, layer) = fake_source();
    fake.rule(Rule::map("GET", &format!("/blobs/{layer}"), |_, mut r| {
        let mid = r.body.len() / 2;
        r.body[mid] ^= 0x01;
        r
    }));
    let target = Registry::start(RegistryConfig::anonymous());
    let mark = target.access_log().len();
    let (code, _, err) = run(&["copy", &fake.image("app:v1"), &target.image("app:v1")]);
    assert_nothing_pushed(&target, mark, code, &err, "digest mismatch");
    assert!(err.contains(&layer), "names the blob: {err}");
}

#[test]
fn a_short_body_is_caught_by_size_not_only_by_digest() {
    let (fake, _, layer) = fake_source();
    // A clean EOF with an honest Content-Length for the shorter body.
    fake.rule(Rule::map("GET", &format!("/blobs/{layer}"), |_, mut r| {
        r.body.truncate(r.body.len() - 100);
        r
    }));
    let target = Registry::start(RegistryConfig::anonymous());
    let mark = target.access_log().len();
    let (code, _, err) = run(&["copy", &fake.image("app:v1"), &target.image("app:v1")]);
    assert_nothing_pushed(&target, mark, code, &err, "body ended after");
    // A short body may be a broken connection: retried within budget, source reopened.
    let gets = fake
        .log()
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with(&layer))
        .count();
    assert_eq!(gets, 3, "three attempts, each a fresh GET");
}

#[test]
fn a_body_shorter_than_its_content_length_fails() {
    let (fake, _, layer) = fake_source();
    fake.rule(Rule::map("GET", &format!("/blobs/{layer}"), |_, mut r| {
        let full = r.body.len();
        r.body.truncate(full / 2);
        r.content_length = Some(full);
        r
    }));
    let target = Registry::start(RegistryConfig::anonymous());
    let mark = target.access_log().len();
    let (code, _, err) = run(&["copy", &fake.image("app:v1"), &target.image("app:v1")]);
    assert_nothing_pushed(&target, mark, code, &err, &layer);
}

#[test]
fn a_body_longer_than_the_descriptor_is_rejected() {
    let (fake, _, layer) = fake_source();
    fake.rule(Rule::map("GET", &format!("/blobs/{layer}"), |_, mut r| {
        r.body.extend_from_slice(b"trailing garbage");
        r
    }));
    let target = Registry::start(RegistryConfig::anonymous());
    let mark = target.access_log().len();
    let (code, _, err) = run(&["copy", &fake.image("app:v1"), &target.image("app:v1")]);
    assert_nothing_pushed(&target, mark, code, &err, "longer than the descriptor");
}

#[test]
fn a_lying_docker_content_digest_is_rejected() {
    let (fake, _, _) = fake_source();
    let lie = format!("sha256:{}", "ab".repeat(32));
    let lie2 = lie.clone();
    // The tag's GET states a digest its body does not have.
    fake.rule(Rule::map("GET", "/manifests/", move |_, mut r| {
        r.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("docker-content-digest"));
        r.header("Docker-Content-Digest", &lie2)
    }));
    fake.rule(Rule::map("HEAD", "/manifests/v1", |_, mut r| {
        r.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("docker-content-digest"));
        r
    }));
    let target = Registry::start(RegistryConfig::anonymous());
    let mark = target.access_log().len();
    let (code, _, err) = run(&["copy", &fake.image("app:v1"), &target.image("app:v1")]);
    assert_nothing_pushed(&target, mark, code, &err, "digest mismatch");
    assert!(err.contains(&lie), "{err}");
}

#[test]
fn a_tag_get_whose_body_contradicts_its_digest_header_is_rejected() {
    let (fake, digest, _) = fake_source();
    // HEAD is honest; the GET by digest then serves other bytes.
    fake.rule(Rule::map(
        "GET",
        &format!("/manifests/{digest}"),
        |_, mut r| {
            r.body = r
                .body
                .iter()
                .map(|b| if *b == b' ' { b'\t' } else { *b })
                .collect();
            r.body.push(b' ');
            r
        },
    ));
    let target = Registry::start(RegistryConfig::anonymous());
    let mark = target.access_log().len();
    let (code, _, err) = run(&["copy", &fake.image("app:v1"), &target.image("app:v1")]);
    assert_nothing_pushed(&target, mark, code, &err, "digest mismatch");
}

#[test]
fn an_index_child_that_does_not_match_its_descriptor_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.index(&three_platforms(90));
    w.tag(&[("v1", image::OCI_INDEX, &bytes, &digest)]);
    let fake = FakeRegistry::start();
    fake.load_layout(dir.path(), "app");
    let index: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let child = index["manifests"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    fake.rule(Rule::map(
        "GET",
        &format!("/manifests/{child}"),
        |_, mut r| {
            r.body.push(b'\n');
            r
        },
    ));
    let target = Registry::start(RegistryConfig::anonymous());
    let mark = target.access_log().len();
    let (code, _, err) = run(&["copy", &fake.image("app:v1"), &target.image("app:v1")]);
    assert_nothing_pushed(&target, mark, code, &err, &child);
    let after = target.requests_since(mark);
    assert!(
        !after.iter().any(|r| r.method == "POST"),
        "no blob uploaded before the walk is verified: {after:?}"
    );
}

#[test]
fn registry_errors_keep_the_registrys_words() {
    let (fake, _, _) = fake_source();
    // HEAD answers carry no body, so the registry's words come with the GET.
    fake.rule(Rule::reply(
        "GET",
        "/manifests/sha256:",
        Reply::error(403, "DENIED", "requested access to the resource is denied"),
    ));
    let target = Registry::start(RegistryConfig::anonymous());
    let (code, _, err) = run(&["copy", &fake.image("app:v1"), &target.image("app:v1")]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "GET http://{}/v2/app/manifests/sha256:",
            fake.host()
        )),
        "{err}"
    );
    assert!(err.contains(": 403 DENIED"), "{err}");
    assert!(
        err.contains("DENIED: requested access to the resource is denied"),
        "{err}"
    );
}

#[test]
fn relative_upload_locations_keep_their_query() {
    let source = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.image(&ImageSpec::new("linux/amd64", vec![Layer::random(3, 4096)]));
    w.tag(&[("v1", image::OCI_MANIFEST, &bytes, &digest)]);
    seed(dir.path(), "v1", &source.image("app:v1"));

    let fake = FakeRegistry::start();
    let (code, _, err) = run(&[
        "copy",
        "-vv",
        &source.image("app:v1"),
        &fake.image("app:v1"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(fake.has_manifest("app", "v1"));
    assert!(fake.has_manifest("app", &digest));
    let puts: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.method == "PUT" && s.path().contains("/blobs/uploads/"))
        .collect();
    assert_eq!(puts.len(), 2, "config and layer");
    for p in &puts {
        assert!(
            p.target.contains("_state=secret-state-"),
            "query kept: {}",
            p.target
        );
        assert!(p.target.contains("digest=sha256"), "{}", p.target);
        assert_eq!(p.header("content-type"), Some("application/octet-stream"));
    }
    // The upload state is an opaque secret of the registry: never printed.
    assert!(!err.contains("secret-state-"), "{err}");
}
