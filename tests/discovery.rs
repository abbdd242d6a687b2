//! Namespaces on registries without a catalog: the repositories under a
//! namespace come from the registry's own API (Docker Hub, GitHub, Quay,
//! Harbor, GitLab), each served by a FAKE with the payloads, pagination
//! and auth its documentation shows, while the images come from a real
//! registry. The fake lists two of the three repositories the registry
//! holds: only those are mirrored, so the listing came from the API.

mod support;

use support::fake::{FakeRegistry, Reply, Rule};
use support::*;

fn sync(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().display().to_string();
    let mut all = vec![("HOME", home.as_str())];
    all.extend_from_slice(env);
    run_with_env(&[&["sync"], args].concat(), &all)
}

fn json(body: serde_json::Value) -> Reply {
    Reply::status(200)
        .header("Content-Type", "application/json")
        .body(body.to_string().into_bytes())
}

fn seed_one(reg: &Registry, repo_tag: &str, seed_n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(seed_n, 4096)],
    ));
    w.tag(&[("t", image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
    seed(dir.path(), "t", &reg.image(repo_tag));
}

/// The API's two pages (`one`, then `two`) and the header that must carry
/// the credentials.
fn serve(fake: &FakeRegistry, api: &str) -> (&'static str, String) {
    let base = format!("http://{}", fake.host());
    let second = |seen: &support::fake::Seen, key: &str| seen.target.contains(key);
    match api {
        "dockerhub" => {
            fake.rule(Rule::reply(
                "POST",
                "/v2/auth/token",
                json(serde_json::json!({"access_token": "hub-jwt"})),
            ));
            let next = format!("{base}/v2/namespaces/acme/repositories?page=2&page_size=100");
            fake.rule(Rule::map("GET", "/v2/namespaces/acme/repositories", move |seen, _| {
                match second(seen, "page=2") {
                    true => json(serde_json::json!({"count": 2, "next": null, "results": [{"name": "two", "namespace": "acme"}]})),
                    false => json(serde_json::json!({"count": 2, "next": next, "results": [{"name": "one", "namespace": "acme", "repository_type": "image"}]})),
                }
            }));
            ("authorization", "Bearer hub-jwt".into())
        }
        "github" => {
            let link = format!(
                "<{base}/orgs/acme/packages?package_type=container&per_page=100&page=2>; rel=\"next\""
            );
            fake.rule(Rule::map("GET", "/orgs/acme/packages", move |seen, _| match second(seen, "page=2") {
                true => json(serde_json::json!([{"id": 2, "name": "two", "package_type": "container", "owner": {"login": "acme"}}])),
                false => json(serde_json::json!([{"id": 1, "name": "one", "package_type": "container", "owner": {"login": "acme"}}]))
                    .header("Link", &link),
            }));
            ("authorization", "Bearer s3cret".into())
        }
        "quay" => {
            fake.rule(Rule::map("GET", "/api/v1/repository", move |seen, _| match second(seen, "next_page=") {
                true => json(serde_json::json!({"repositories": [{"namespace": "acme", "name": "two", "is_public": true, "kind": "image"}]})),
                false => json(serde_json::json!({"repositories": [{"namespace": "acme", "name": "one", "is_public": true, "kind": "image"}], "next_page": "gAAAAtoken"})),
            }));
            ("authorization", "Bearer s3cret".into())
        }
        "harbor" => {
            fake.rule(Rule::map(
                "GET",
                "/api/v2.0/projects/acme/repositories",
                move |seen, _| match second(seen, "page=2") {
                    true => {
                        json(serde_json::json!([{"id": 2, "project_id": 1, "name": "acme/two"}]))
                            .header("X-Total-Count", "2")
                    }
                    false => json(
                        serde_json::json!([{"id": 1, "project_id": 1, "name": "acme/one"}]),
                    )
                    .header("X-Total-Count", "2")
                    .header(
                        "Link",
                        "</api/v2.0/projects/acme/repositories?page=2&page_size=100>; rel=\"next\"",
                    ),
                },
            ));
            ("authorization", "Basic cm9ib3Q6czNjcmV0".into())
        }
        "gitlab" => {
            fake.rule(Rule::map("GET", "/api/v4/groups/acme/registry/repositories", move |seen, _| match second(seen, "page=2") {
                true => json(serde_json::json!([{"id": 2, "name": "two", "path": "acme/two", "location": "x/acme/two"}])).header("x-next-page", ""),
                false => json(serde_json::json!([{"id": 1, "name": "one", "path": "acme/one", "location": "x/acme/one"}])).header("x-next-page", "2"),
            }));
            ("private-token", "s3cret".into())
        }
        other => panic!("{other}"),
    }
}

#[test]
fn each_discovery_api_lists_the_namespace_with_the_registrys_credentials() {
    let src = Registry::start(RegistryConfig::anonymous());
    for (i, r) in ["one", "two", "three"].iter().enumerate() {
        seed_one(&src, &format!("acme/{r}:1"), 900 + i as u64);
    }
    for api in ["dockerhub", "github", "quay", "harbor", "gitlab"] {
        let fake = FakeRegistry::start();
        let (header, value) = serve(&fake, api);
        let dst = Registry::start(RegistryConfig::anonymous());
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(
            dir.path(),
            &format!(
                "version: 1\nregistries:\n  \"{}\":\n    discovery: {api}\n    discovery_url: http://{}\n    creds: {{username: robot, password_env: DISCOVERY_TOKEN}}\njobs:\n  - name: acme\n    source: {}/acme/\n    target: {}/mirror/\n",
                src.host(),
                fake.host(),
                src.host(),
                dst.host()
            ),
        );
        let (code, _, err) = sync(
            &[&cfg.display().to_string()],
            &[("DISCOVERY_TOKEN", "s3cret")],
        );
        assert_eq!(code, 0, "{api}: {err}");
        assert_eq!(tags_of(&dst.image("mirror/one")), vec!["1"], "{api}");
        assert_eq!(tags_of(&dst.image("mirror/two")), vec!["1"], "{api}");
        assert!(
            tags_of(&dst.image("mirror/three")).is_empty(),
            "{api}: listed from the catalog?"
        );
        let listed: Vec<_> = fake
            .seen()
            .into_iter()
            .filter(|s| s.method == "GET")
            .collect();
        assert_eq!(listed.len(), 2, "{api}: {listed:?}");
        assert!(
            listed
                .iter()
                .all(|s| s.header(header) == Some(value.as_str())),
            "{api}: {listed:?}"
        );
    }
}

/// How a lying API is set up on the fake.
type Setup = Box<dyn Fn(&FakeRegistry)>;

#[test]
fn a_lying_discovery_api_is_refused() {
    let src = Registry::start(RegistryConfig::anonymous());
    seed_one(&src, "acme/one:1", 950);
    let cases: Vec<(&str, Setup)> = vec![
        (
            "already read",
            Box::new(|f: &FakeRegistry| {
                let again = format!(
                    "http://{}/v2/namespaces/acme/repositories?page_size=100",
                    f.host()
                );
                f.rule(Rule::reply("GET", "/v2/namespaces/acme/repositories",
                json(serde_json::json!({"next": again, "results": [{"name": "one", "namespace": "acme"}]}))));
            }),
        ),
        (
            "another origin",
            Box::new(|f: &FakeRegistry| {
                f.rule(Rule::reply(
                    "GET",
                    "/v2/namespaces/acme/repositories",
                    json(serde_json::json!({"next": "http://127.0.0.2:1/steal", "results": []})),
                ));
            }),
        ),
        (
            "larger than",
            Box::new(|f: &FakeRegistry| {
                let huge = vec![b' '; 5 * 1024 * 1024];
                f.rule(Rule::reply(
                    "GET",
                    "/v2/namespaces/acme/repositories",
                    Reply::status(200)
                        .header("Content-Type", "application/json")
                        .body(huge),
                ));
            }),
        ),
        (
            "invalid reference",
            Box::new(|f: &FakeRegistry| {
                f.rule(Rule::reply("GET", "/v2/namespaces/acme/repositories",
                json(serde_json::json!({"next": null, "results": [{"name": "../../etc", "namespace": "acme"}]}))));
            }),
        ),
    ];
    for (why, setup) in cases {
        let fake = FakeRegistry::start();
        setup(&fake);
        let dst = Registry::start(RegistryConfig::anonymous());
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(
            dir.path(),
            &format!(
                "version: 1\nregistries:\n  \"{}\":\n    discovery: dockerhub\n    discovery_url: http://{}\njobs:\n  - name: acme\n    source: {}/acme/\n    target: {}/mirror/\n",
                src.host(),
                fake.host(),
                src.host(),
                dst.host()
            ),
        );
        let (code, _, err) = sync(&[&cfg.display().to_string()], &[]);
        assert_eq!(code, 1, "{why}: {err}");
        assert!(
            err.contains("listing the repositories") && err.contains(why),
            "{why}: {err}"
        );
        assert!(
            fake.seen().len() <= 2,
            "{why}: {} requests",
            fake.seen().len()
        );
    }
}
