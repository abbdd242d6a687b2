//! Hostile and broken auth (RELIABILITY scenarios 22, 23 and 26 to 30):
//! the scripted fake plays the registry and its token server, and a
//! **canary** listener on another port fails the test if it ever sees our
//! credentials, our tokens or anything at all where nothing should go.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use support::fake::{FakeAuth, FakeRegistry, Reply, Rule};
use support::*;

const PASSWORD: &str = "canary-password-7731";

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

/// Writes a single image into a layout; returns (dir, manifest digest, layer digest).
fn layout_image(seed_n: u64) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let layer = Layer::random(seed_n, 20 * 1024);
    let (bytes, digest) = w.image(&ImageSpec::new("linux/amd64", vec![layer.clone()]));
    w.tag(&[("v1", image::OCI_MANIFEST, &bytes, &digest)]);
    (dir, digest, image::sha256(&layer.gz))
}

/// A fake holding `app:v1`, guarded by Basic auth for `user:PASSWORD`.
fn basic_guarded_source(seed_n: u64) -> (FakeRegistry, String) {
    let (dir, _, layer) = layout_image(seed_n);
    let fake = FakeRegistry::start();
    fake.load_layout(dir.path(), "app");
    let want = basic("user", PASSWORD);
    fake.require_auth(FakeAuth {
        challenge: r#"Basic realm="fake""#.to_string(),
        accept: Arc::new(move |h| h == Some(want.as_str())),
    });
    (fake, layer)
}

/// Bearer auth on a fake: a `/token` endpoint on the fake itself issuing
/// `tok-N` (each with `expires_in`), and `/v2/` accepting any of them.
fn bearer_guard(fake: &FakeRegistry, expires_in: u64) -> Arc<AtomicUsize> {
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    fake.rule(Rule::map("GET", "/token", move |_, _| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Reply::status(200)
            .header("Content-Type", "application/json")
            .body(
                format!(r#"{{"token":"TOKEN-SECRET-{n}","expires_in":{expires_in}}}"#).into_bytes(),
            )
    }));
    fake.require_auth(FakeAuth {
        challenge: format!(
            r#"Bearer realm="http://{}/token",service="fake""#,
            fake.host()
        ),
        accept: Arc::new(|h| h.is_some_and(|h| h.starts_with("Bearer TOKEN-SECRET-"))),
    });
    issued
}

/// Nothing of ours may reach the canary: no Authorization, no secret.
fn assert_canary_clean(canary: &FakeRegistry) {
    for seen in canary.seen() {
        assert!(
            seen.header("authorization").is_none(),
            "canary got credentials: {seen:?}"
        );
        let text = format!("{seen:?}");
        assert!(
            !text.contains(PASSWORD) && !text.contains("TOKEN-SECRET"),
            "{text}"
        );
    }
}

fn assert_no_secrets(outputs: &[&str]) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("user:{PASSWORD}"));
    for out in outputs {
        for secret in [
            PASSWORD,
            b64.as_str(),
            "TOKEN-SECRET",
            "secret-state-",
            "AMZSECRET",
            "ATSECRET",
            "refresh-SECRET",
        ] {
            assert!(!out.contains(secret), "{secret:?} leaked in:\n{out}");
        }
    }
}

/// Scenario 22: the token expires during an upload and the blob PUT answers
/// 401. The token is refreshed and the upload sent again from a reopened source.
#[test]
fn a_401_under_a_streamed_put_refreshes_and_resends() {
    let src = Registry::start(RegistryConfig::anonymous());
    let (dir, digest, _) = layout_image(200);
    seed(dir.path(), "v1", &src.image("app:v1"));
    let target = FakeRegistry::start();
    let issued = bearer_guard(&target, 2);
    let challenge = format!(
        r#"Bearer realm="http://{}/token",service="fake",error="invalid_token""#,
        target.host()
    );
    target.rule(
        Rule::reply(
            "PUT",
            "/blobs/uploads/",
            Reply::error(401, "UNAUTHORIZED", "token expired")
                .header("WWW-Authenticate", &challenge),
        )
        .times(1),
    );
    let (code, out, err) = run(&[
        "copy",
        "-vvv",
        &src.image("app:v1"),
        &target.image("app:v1"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(target.has_manifest("app", &digest));
    assert!(
        issued.load(Ordering::SeqCst) >= 2,
        "the token was refreshed"
    );
    assert_no_secrets(&[&out, &err]);
}

/// Scenario 23: a registry that refuses every token: one refresh, then a
/// clear error, no loop.
#[test]
fn a_registry_refusing_every_token_fails_after_one_refresh() {
    let (fake, _) = basic_guarded_source(210);
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    fake.rule(Rule::map("GET", "/token", move |_, _| {
        counter.fetch_add(1, Ordering::SeqCst);
        Reply::status(200).body(br#"{"token":"TOKEN-SECRET-x"}"#.to_vec())
    }));
    fake.require_auth(FakeAuth {
        challenge: format!(
            r#"Bearer realm="http://{}/token",service="fake""#,
            fake.host()
        ),
        accept: Arc::new(|_| false),
    });
    let target = Registry::start(RegistryConfig::anonymous());
    let (code, out, err) = run(&[
        "copy",
        "-vvv",
        &fake.image("app:v1"),
        &target.image("app:v1"),
        "--src-creds",
        &format!("user:{PASSWORD}"),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("authentication to") && err.contains(&fake.host()),
        "{err}"
    );
    assert!(issued.load(Ordering::SeqCst) <= 2, "at most one refresh");
    assert!(fake.log().len() <= 5, "no auth loop: {:?}", fake.log());
    assert_no_secrets(&[&out, &err]);
}

/// Scenario 23: token endpoints that fail, talk nonsense or send too much.
#[test]
fn broken_token_endpoints_give_clear_errors() {
    let target = Registry::start(RegistryConfig::anonymous());
    let cases: Vec<(Reply, &str)> = vec![
        (
            Reply::status(500).body(b"TOKEN-SECRET oops".to_vec()),
            "answered 500",
        ),
        (
            Reply::status(200).body(b"<html>TOKEN-SECRET</html>".to_vec()),
            "unreadable answer",
        ),
        (
            Reply {
                status: 200,
                headers: vec![],
                body: b"{}".to_vec(),
                content_length: Some(100 * 1024 * 1024),
                chunked: false,
            },
            "larger than",
        ),
        (
            Reply::status(200).body(vec![b' '; 2 * 1024 * 1024]),
            "larger than",
        ),
        (
            Reply::status(200).body(br#"{"token":""}"#.to_vec()),
            "sent no token",
        ),
    ];
    for (reply, needle) in cases {
        let (dir, _, _) = layout_image(220);
        let fake = FakeRegistry::start();
        fake.load_layout(dir.path(), "app");
        fake.rule(Rule::reply("GET", "/token", reply));
        fake.require_auth(FakeAuth {
            challenge: format!(
                r#"Bearer realm="http://{}/token",service="fake""#,
                fake.host()
            ),
            accept: Arc::new(|_| false),
        });
        let (code, out, err) = run(&["copy", &fake.image("app:v1"), &target.image("app:v1")]);
        assert_eq!(code, 1, "{needle}: {err}");
        assert!(err.contains(needle), "expected {needle:?}: {err}");
        assert_no_secrets(&[&out, &err]);
    }
}

/// Scenario 26: realms that point at internal addresses, or are not http(s),
/// are refused before any credential is sent.
#[test]
fn hostile_realms_are_refused_before_credentials_go_anywhere() {
    let canary = FakeRegistry::start();
    let target = Registry::start(RegistryConfig::anonymous());
    let realms = [
        format!(
            "http://127.0.0.1:{}/token?secret=SHOULD-NOT-PRINT",
            canary.port
        ),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://10.1.2.3/token".to_string(),
        "http://[::1]:9/token".to_string(),
        "http://0.0.0.0/token".to_string(),
        "file:///etc/passwd".to_string(),
    ];
    for realm in realms {
        let (dir, _, _) = layout_image(230);
        let fake = FakeRegistry::start();
        fake.load_layout(dir.path(), "app");
        fake.require_auth(FakeAuth {
            challenge: format!(r#"Bearer realm="{realm}",service="fake""#),
            accept: Arc::new(|_| false),
        });
        // Named `localhost`, the registry is another host than 127.0.0.1.
        let src = format!("localhost:{}/app:v1", fake.port);
        let (code, out, err) = run(&[
            "copy",
            "-vvv",
            &src,
            &target.image("app:v1"),
            "--src-creds",
            &format!("user:{PASSWORD}"),
        ]);
        assert_eq!(code, 1, "{realm}: {err}");
        assert!(err.contains("refused"), "{realm}: {err}");
        assert!(
            !err.contains("SHOULD-NOT-PRINT"),
            "realm query printed: {err}"
        );
        assert_no_secrets(&[&out, &err]);
    }
    assert!(
        canary.seen().is_empty(),
        "the canary was contacted: {:?}",
        canary.log()
    );
}

/// Scenario 26: a token server on the registry's own host that redirects
/// to a private address is not followed.
#[test]
fn a_token_server_redirecting_to_a_private_address_is_not_followed() {
    let (dir, _, _) = layout_image(240);
    let fake = FakeRegistry::start();
    fake.load_layout(dir.path(), "app");
    fake.rule(Rule::reply(
        "GET",
        "/token",
        Reply::status(302).header("Location", "http://10.20.30.40/token"),
    ));
    fake.require_auth(FakeAuth {
        challenge: format!(
            r#"Bearer realm="http://{}/token",service="fake""#,
            fake.host()
        ),
        accept: Arc::new(|_| false),
    });
    let target = Registry::start(RegistryConfig::anonymous());
    let (code, _, err) = run(&[
        "copy",
        &fake.image("app:v1"),
        &target.image("app:v1"),
        "--src-creds",
        &format!("user:{PASSWORD}"),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("internal address"), "{err}");
}

/// Scenarios 27 and 30: a blob GET redirected to another origin (another
/// port) with a signed URL: the hop gets no Authorization, and the signature
/// never appears in any output even at -vvv.
#[test]
fn cross_origin_redirects_carry_no_credentials_and_print_no_signatures() {
    let (fake, layer) = basic_guarded_source(250);
    let canary = FakeRegistry::start();
    canary.add_blob(&fake.blob(&layer).unwrap());
    let hop = format!(
        "http://{}/v2/app/blobs/{layer}?X-Amz-Signature=AMZSECRET&access_token=ATSECRET",
        canary.host()
    );
    fake.rule(Rule::reply(
        "GET",
        &format!("/blobs/{layer}"),
        Reply::status(307).header("Location", &hop),
    ));
    let target = Registry::start(RegistryConfig::anonymous());
    let (code, out, err) = run(&[
        "copy",
        "-vvv",
        "--output",
        "json",
        &fake.image("app:v1"),
        &target.image("app:v1"),
        "--src-creds",
        &format!("user:{PASSWORD}"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        canary.seen().len(),
        1,
        "the blob came from the redirect target"
    );
    assert_canary_clean(&canary);
    assert_no_secrets(&[&out, &err]);
}

/// Scenario 27: a redirect target that answers 401 with its own challenge
/// gets neither our credentials nor a token exchange on our behalf.
#[test]
fn a_redirect_target_asking_for_credentials_gets_none() {
    let (fake, layer) = basic_guarded_source(260);
    let canary = FakeRegistry::start();
    canary.require_auth(FakeAuth {
        challenge: format!(
            r#"Bearer realm="http://{}/token",service="canary""#,
            canary.host()
        ),
        accept: Arc::new(|_| false),
    });
    let hop = format!("http://{}/v2/app/blobs/{layer}", canary.host());
    fake.rule(Rule::reply(
        "GET",
        &format!("/blobs/{layer}"),
        Reply::status(307).header("Location", &hop),
    ));
    let target = Registry::start(RegistryConfig::anonymous());
    let (code, out, err) = run(&[
        "copy",
        &fake.image("app:v1"),
        &target.image("app:v1"),
        "--src-creds",
        &format!("user:{PASSWORD}"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        !canary.log().iter().any(|(_, p, _)| p.starts_with("/token")),
        "no token exchange with a foreign origin: {:?}",
        canary.log()
    );
    assert_canary_clean(&canary);
    assert_no_secrets(&[&out, &err]);
}

/// Scenario 27: a redirect loop ends at the hop cap.
#[test]
fn redirect_loops_stop_at_the_cap() {
    let (fake, layer) = basic_guarded_source(270);
    let me = format!("http://{}/v2/app/blobs/{layer}", fake.host());
    fake.rule(Rule::reply(
        "GET",
        &format!("/blobs/{layer}"),
        Reply::status(307).header("Location", &me),
    ));
    let target = Registry::start(RegistryConfig::anonymous());
    let (code, _, err) = run(&[
        "copy",
        &fake.image("app:v1"),
        &target.image("app:v1"),
        "--src-creds",
        &format!("user:{PASSWORD}"),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("too many redirects"), "{err}");
    let gets = fake
        .log()
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with(&layer))
        .count();
    assert!(gets <= 11, "a loop is not retried: {gets}");
}

/// Scenario 28: upload Locations to another origin get no credentials; to a
/// private address on another host they are refused; a missing one is a
/// clear error.
#[test]
fn upload_locations_elsewhere_get_no_credentials() {
    let src = Registry::start(RegistryConfig::anonymous());
    let (dir, _, _) = layout_image(280);
    seed(dir.path(), "v1", &src.image("app:v1"));
    let canary = FakeRegistry::start();
    let cases = [
        (
            format!("http://{}/upload/1?_state=secret-state-1", canary.host()),
            "",
        ),
        ("http://10.9.9.9/upload".to_string(), "internal address"),
        (String::new(), "without a Location header"),
    ];
    for (location, needle) in cases {
        let target = FakeRegistry::start();
        let want = basic("user", PASSWORD);
        target.require_auth(FakeAuth {
            challenge: r#"Basic realm="fake""#.to_string(),
            accept: Arc::new(move |h| h == Some(want.as_str())),
        });
        let mut reply = Reply::status(202);
        if !location.is_empty() {
            reply = reply.header("Location", &location);
        }
        target.rule(Rule::reply("POST", "/blobs/uploads/", reply));
        let (code, out, err) = run(&[
            "copy",
            "-vvv",
            &src.image("app:v1"),
            &target.image("app:v1"),
            "--dest-creds",
            &format!("user:{PASSWORD}"),
        ]);
        assert_eq!(code, 1, "{location}: {err}");
        assert!(
            err.contains(needle),
            "{location}: expected {needle:?}: {err}"
        );
        assert_no_secrets(&[&out, &err]);
        assert!(!target.has_manifest("app", "v1"));
    }
    assert!(
        !canary.seen().is_empty(),
        "the cross-origin upload went to the canary, bare"
    );
    assert_canary_clean(&canary);
}

/// Scenario 29: foreign layers are not fetched, from their URL or the
/// source; the manifest is copied as is.
#[test]
fn foreign_layers_are_not_fetched() {
    let canary = FakeRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (_, base_digest) = w.image(&ImageSpec::new(
        "windows/amd64",
        vec![Layer::random(290, 1024)],
    ));
    w.tag(&[]);
    let base: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("blobs/sha256").join(&base_digest[7..])).unwrap(),
    )
    .unwrap();
    let foreign = format!("sha256:{}", "f".repeat(64));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": base["config"]["digest"], "size": base["config"]["size"]},
        "layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
             "digest": foreign, "size": 12345,
             "urls": [format!("http://{}/windows-base-layer", canary.host())]},
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
             "digest": base["layers"][0]["digest"], "size": base["layers"][0]["size"]}
        ]
    })
    .to_string();
    let src = FakeRegistry::start();
    src.load_layout(dir.path(), "app");
    src.add_manifest(
        "app",
        "win",
        "application/vnd.docker.distribution.manifest.v2+json",
        manifest.as_bytes(),
    );
    let target = FakeRegistry::start();
    let (code, out, err) = run(&[
        "copy",
        "--output",
        "json",
        &src.image("app:win"),
        &target.image("app:win"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        report(&out)["blobs"]["copied"],
        2,
        "config and the distributable layer"
    );
    assert!(target.has_manifest("app", "win"));
    assert!(
        canary.seen().is_empty(),
        "foreign URL fetched: {:?}",
        canary.log()
    );
    assert!(
        !src.log().iter().any(|(_, p, _)| p.contains(&foreign)),
        "foreign layer asked of the source"
    );
}

/// Scenario 21: `insufficient_scope` naming a scope we lacked gets one
/// retry with that scope added.
#[test]
fn insufficient_scope_is_retried_once_with_the_named_scope() {
    let src = Registry::start(RegistryConfig::anonymous());
    let (dir, digest, _) = layout_image(300);
    seed(dir.path(), "v1", &src.image("app:v1"));
    let target = FakeRegistry::start();
    let scopes_seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = scopes_seen.clone();
    target.rule(Rule::map("GET", "/token", move |seen, _| {
        record.lock().unwrap().push(seen.target.clone());
        Reply::status(200).body(br#"{"token":"TOKEN-SECRET-s"}"#.to_vec())
    }));
    target.require_auth(FakeAuth {
        challenge: format!(
            r#"Bearer realm="http://{}/token",service="fake""#,
            target.host()
        ),
        accept: Arc::new(|h| h.is_some_and(|h| h.starts_with("Bearer TOKEN-SECRET-"))),
    });
    let challenge = format!(
        r#"Bearer realm="http://{}/token",service="fake",scope="repository:app:pull,push repository:extra:pull",error="insufficient_scope""#,
        target.host()
    );
    target.rule(
        Rule::reply(
            "PUT",
            "/manifests/",
            Reply::error(401, "DENIED", "insufficient scope")
                .header("WWW-Authenticate", &challenge),
        )
        .times(1),
    );
    let (code, _, err) = run(&["copy", &src.image("app:v1"), &target.image("app:v1")]);
    assert_eq!(code, 0, "{err}");
    assert!(target.has_manifest("app", &digest));
    let seen = scopes_seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(!seen[0].contains("extra"), "{seen:?}");
    assert!(
        seen[1].contains("scope=repository%3Aextra%3Apull"),
        "{seen:?}"
    );
}

/// HTTP_PROXY is honoured: a registry reached through a proxy (the fake,
/// speaking absolute-form HTTP).
#[test]
fn http_proxy_from_the_environment_is_used() {
    let (dir, digest, _) = layout_image(310);
    let proxy = FakeRegistry::start();
    proxy.load_layout(dir.path(), "app");
    let target = Registry::start(RegistryConfig::anonymous());
    let proxy_url = format!("http://{}", proxy.host());
    let (code, _, err) = run_with_env(
        &[
            "copy",
            "--src-tls-verify=false",
            "registry.proxied.test/app:v1",
            &target.image("app:v1"),
        ],
        &[
            ("HTTP_PROXY", &proxy_url),
            ("HTTPS_PROXY", &proxy_url),
            ("NO_PROXY", "127.0.0.1"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(remote_digest(&target.image("app:v1")), digest);
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.target.starts_with("http://registry.proxied.test/v2/")),
        "requests went through the proxy: {:?}",
        proxy.log()
    );
}
