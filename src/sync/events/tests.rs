//! Each sender's payload as its documentation (or, for distribution, a
//! recording from Debian's registry) shows it, and the ways a body can be
//! wrong.

use super::*;

const DISTRIBUTION: &str = include_str!("../../../tests/fixtures/events/distribution-push.json");

const HARBOR: &str = r#"{"type":"PUSH_ARTIFACT","occur_at":1586922308,"operator":"admin",
 "event_data":{"resources":[{"digest":"sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8","tag":"latest",
   "resource_url":"hub.harbor.com/test-webhook/debian:latest"}],
  "repository":{"date_created":1586922308,"name":"debian","namespace":"test-webhook",
   "repo_full_name":"test-webhook/debian","repo_type":"private"}}}"#;

const DOCKER_HUB: &str = r#"{"callback_url":"https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
 "push_data":{"pushed_at":1417566161,"pusher":"trustedbuilder","tag":"latest"},
 "repository":{"comment_count":0,"date_created":1417566665,"description":"","dockerfile":"","full_description":"",
  "is_official":false,"is_private":true,"is_trusted":true,"name":"testhook","namespace":"svendowideit",
  "owner":"svendowideit","repo_name":"svendowideit/testhook",
  "repo_url":"https://registry.hub.docker.com/u/svendowideit/testhook/","star_count":0,"status":"Active"}}"#;

const GITHUB: &str = r#"{"action":"published",
 "package":{"id":1,"name":"hello-world","namespace":"Codertocat","package_type":"CONTAINER",
  "owner":{"login":"Codertocat"},
  "package_version":{"id":2,"version":"sha256:3da1996ab3a4b30d3a9d0b4a1f4ec0d4d5e0cde3e4fd8b6a3a2f6cd8f1d0a5c6",
   "package_url":"ghcr.io/codertocat/hello-world:v1",
   "container_metadata":{"tag":{"name":"v1","digest":"sha256:6c62e7e3f22a2f6cd8f1d0a5c63da1996ab3a4b30d3a9d0b4a1f4ec0d4d5e0cd"},
    "manifest":{"digest":"sha256:6c62e7e3f22a2f6cd8f1d0a5c63da1996ab3a4b30d3a9d0b4a1f4ec0d4d5e0cd","media_type":"application/vnd.oci.image.index.v1+json"}}},
  "registry":{"type":"CONTAINER","url":"https://ghcr.io/codertocat"}},
 "repository":{"full_name":"Codertocat/hello-world"},"sender":{"login":"Codertocat"}}"#;

const QUAY: &str = r#"{"name":"repository","repository":"dgangaia/test","namespace":"dgangaia",
 "docker_url":"quay.io/dgangaia/test","homepage":"https://quay.io/repository/dgangaia/repository",
 "updated_tags":["latest"]}"#;

fn one(sender: Sender, kind: Option<&str>, body: &str) -> Event {
    let mut events = parse(sender, kind, body.as_bytes()).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

#[test]
fn a_recorded_distribution_push_names_host_repository_tag_and_digest() {
    let e = one(Sender::Distribution, None, DISTRIBUTION);
    assert_eq!(e.action, Action::Push);
    assert_eq!(e.host, "127.0.0.1:5000");
    assert_eq!(e.repository, "team/app");
    assert_eq!(e.tag.as_deref(), Some("v1"));
    assert!(e.digest.is_some());
    assert_eq!(
        e.id.as_deref(),
        Some("a1b8a0f3-fac6-4608-a2b7-b826147a3a02")
    );
    // A blob upload is announced as a push too, of octet-stream.
    let blob = DISTRIBUTION.replace(
        "application/vnd.oci.image.manifest.v1+json",
        "application/octet-stream",
    );
    assert!(matches!(
        one(Sender::Distribution, None, &blob).action,
        Action::Other(_)
    ));
}

#[test]
fn vendor_examples_read_as_pushes_of_a_tag() {
    let h = one(Sender::Harbor, None, HARBOR);
    assert_eq!(
        (
            h.action,
            h.host.as_str(),
            h.repository.as_str(),
            h.tag.as_deref()
        ),
        (
            Action::Push,
            "hub.harbor.com",
            "test-webhook/debian",
            Some("latest")
        )
    );
    let d = one(Sender::DockerHub, None, DOCKER_HUB);
    assert_eq!(
        (d.host.as_str(), d.repository.as_str(), d.tag.as_deref()),
        ("docker.io", "svendowideit/testhook", Some("latest"))
    );
    let g = one(Sender::GitHub, Some("package"), GITHUB);
    assert_eq!(
        (g.host.as_str(), g.repository.as_str(), g.tag.as_deref()),
        ("ghcr.io", "codertocat/hello-world", Some("v1"))
    );
    assert!(g.digest.is_some());
    let q = one(Sender::Quay, None, QUAY);
    assert_eq!(
        (q.host.as_str(), q.repository.as_str(), q.tag.as_deref()),
        ("quay.io", "dgangaia/test", Some("latest"))
    );
    // GitHub's ping when a hook is made, and its untagged versions.
    assert!(
        parse(Sender::GitHub, Some("ping"), b"{}")
            .unwrap()
            .is_empty()
    );
    let untagged = GITHUB
        .replace(r#""name":"v1""#, r#""name":"""#)
        .replace(":v1\"", ":\"");
    assert_eq!(one(Sender::GitHub, Some("package"), &untagged).tag, None);
    // Harbor's untagged push puts the digest where the tag goes.
    let digest_only = HARBOR.replace(
        r#""tag":"latest""#,
        r#""tag":"sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8""#,
    );
    assert_eq!(one(Sender::Harbor, None, &digest_only).tag, None);
    let deleted = HARBOR.replace("PUSH_ARTIFACT", "DELETE_ARTIFACT");
    assert_eq!(one(Sender::Harbor, None, &deleted).action, Action::Delete);
}

#[test]
fn malformed_bodies_are_errors_naming_the_sender() {
    let cases: Vec<(Sender, Option<&str>, String)> = vec![
        (Sender::Distribution, None, "{}".into()),
        (Sender::Distribution, None, "not json".into()),
        (
            Sender::Distribution,
            None,
            DISTRIBUTION.replace("team/app", "../../etc"),
        ),
        (
            Sender::Distribution,
            None,
            DISTRIBUTION.replace(r#""tag": "v1""#, r#""tag": "v1/../x""#),
        ),
        (
            Sender::Harbor,
            None,
            HARBOR.replace("hub.harbor.com/test-webhook/debian:latest", "no-repository"),
        ),
        (
            Sender::DockerHub,
            None,
            DOCKER_HUB.replace(r#""tag":"latest""#, r#""tag":"la test""#),
        ),
        (
            Sender::DockerHub,
            None,
            DOCKER_HUB.replace(r#""tag":"latest""#, r#""tag":7"#),
        ),
        (Sender::GitHub, None, GITHUB.to_string()),
        (Sender::Quay, None, QUAY.replace(r#"["latest"]"#, "3")),
        (
            Sender::Quay,
            None,
            QUAY.replace("quay.io/dgangaia/test", "quay.io/UPPER/Case"),
        ),
    ];
    for (sender, kind, body) in cases {
        let e = parse(sender, kind, body.as_bytes()).unwrap_err();
        assert_eq!(e.sender, sender.name(), "{body}");
    }
    let many: Vec<String> = (0..300).map(|i| format!("\"t{i}\"")).collect();
    let flood = QUAY.replace(r#"["latest"]"#, &format!("[{}]", many.join(",")));
    assert!(parse(Sender::Quay, None, flood.as_bytes()).is_err());
}
