//! Authentication against real registries: htpasswd over https with a test
//! CA, and `auth: token` with a token server that signs JWTs the registry
//! trusts and grants only what its policy allows.

mod support;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use support::pki::server_pki;
use support::token::{Policy, TokenServer};
use support::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Seeds `repo:v1` (single image) into an anonymous registry.
fn seeded_source(seed_n: u64) -> (Registry, String) {
    let reg = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![
            Layer::random(seed_n, 32 * 1024),
            Layer::random(seed_n + 1, 2048),
        ],
    ));
    w.tag(&[("v1", image::OCI_MANIFEST, &bytes, &digest)]);
    seed(dir.path(), "v1", &reg.image("app:v1"));
    (reg, digest)
}

fn policy() -> Policy {
    Policy {
        users: HashMap::from([
            ("alice".to_string(), ("alice-pw".to_string(), true)),
            ("reader".to_string(), ("reader-pw".to_string(), false)),
        ]),
        refresh_tokens: HashMap::from([
            ("refresh-abc".to_string(), "alice".to_string()),
            ("refresh-next".to_string(), "alice".to_string()),
        ]),
        ..Policy::default()
    }
}

fn token_registry(p: Policy) -> (TokenServer, Registry) {
    let ts = TokenServer::start(p);
    let reg = Registry::start(RegistryConfig::token(&ts.realm(), &ts.signer.cert_pem));
    (ts, reg)
}

#[test]
fn https_registry_with_a_test_ca_through_cert_dir() {
    let (src, digest) = seeded_source(100);
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = server_pki(pki_dir.path());
    let tls = Registry::start(
        RegistryConfig::htpasswd("alice", "tls-pw").with_tls(&pki.server_cert, &pki.server_key),
    );
    let cert_dir = pki.client_cert_dir.display().to_string();

    let (code, _, err) = run(&[
        "copy",
        &src.image("app:v1"),
        &tls.image("app:v1"),
        "--dest-cert-dir",
        &cert_dir,
        "--dest-creds",
        "alice:tls-pw",
    ]);
    assert_eq!(code, 0, "{err}");
    let read = skopeo(&[
        "inspect",
        "--no-tags",
        "--cert-dir",
        &cert_dir,
        "--creds",
        "alice:tls-pw",
        "--format",
        "{{.Digest}}",
        &format!("docker://{}", tls.image("app:v1")),
    ]);
    assert_eq!(read.trim(), digest);

    // Without the CA the certificate is refused, naming the registry.
    let (code, _, err) = run(&[
        "copy",
        &src.image("app:v1"),
        &tls.image("app:v2"),
        "--dest-tls-verify",
        "--dest-creds",
        "alice:tls-pw",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&tls.host()) && err.to_lowercase().contains("certificate"),
        "{err}"
    );

    // --dest-tls-verify=false accepts it.
    let (code, _, err) = run(&[
        "copy",
        &src.image("app:v1"),
        &tls.image("app:v3"),
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:tls-pw",
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn token_registry_one_token_per_scope_set_and_pull_only_cannot_push() {
    let (src, digest) = seeded_source(110);
    let (ts, reg) = token_registry(policy());

    let (code, _, err) = run(&[
        "copy",
        &src.image("app:v1"),
        &reg.image("team/app:v1"),
        "--dest-creds",
        "alice:alice-pw",
    ]);
    assert_eq!(code, 0, "{err}");
    let reqs = ts.requests();
    assert_eq!(reqs.len(), 1, "one token for one scope set: {reqs:?}");
    assert_eq!(
        reqs[0].scopes,
        vec!["repository:team/app:pull,push".to_string()]
    );
    assert_eq!(reqs[0].user.as_deref(), Some("alice"));
    let read = skopeo(&[
        "inspect",
        "--no-tags",
        "--tls-verify=false",
        "--creds",
        "alice:alice-pw",
        "--format",
        "{{.Digest}}",
        &format!("docker://{}", reg.image("team/app:v1")),
    ]);
    assert_eq!(read.trim(), digest);

    // A user whose tokens only allow pull really cannot push.
    let (code, _, err) = run(&[
        "copy",
        &src.image("app:v1"),
        &reg.image("team/other:v1"),
        "--dest-creds",
        "reader:reader-pw",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&reg.host()), "{err}");
    assert!(!err.contains("reader-pw"), "{err}");

    // Wrong password: the token server refuses, the message names registry and user.
    let (code, _, err) = run(&[
        "copy",
        &src.image("app:v1"),
        &reg.image("team/app:v2"),
        "--dest-creds",
        "alice:WRONG",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&reg.host()) && err.contains("alice") && !err.contains("WRONG"),
        "{err}"
    );
}

#[test]
fn mount_across_repositories_with_the_right_scopes() {
    let (src, _) = seeded_source(120);
    let (ts, reg) = token_registry(policy());
    let creds = [
        "--src-creds",
        "alice:alice-pw",
        "--dest-creds",
        "alice:alice-pw",
    ];
    let mut args = vec![
        "copy".to_string(),
        src.image("app:v1"),
        reg.image("base/app:v1"),
    ];
    args.extend(creds.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = run(&argv);
    assert_eq!(code, 0, "{err}");

    let mark = reg.access_log().len();
    let before = ts.requests().len();
    let (code, out, err) = run(&[
        "copy",
        "--output",
        "json",
        &reg.image("base/app:v1"),
        &reg.image("derived/app:v1"),
        "--src-creds",
        "alice:alice-pw",
        "--dest-creds",
        "alice:alice-pw",
    ]);
    assert_eq!(code, 0, "{err}");
    let rep = report(&out);
    assert_eq!(rep["blobs"]["mounted"], 3, "{rep}");
    assert_eq!(rep["blobs"]["copied"], 0, "{rep}");
    let log = reg.requests_since(mark);
    let mounts: Vec<_> = log
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("mount="))
        .collect();
    assert_eq!(mounts.len(), 3, "{log:?}");
    assert!(mounts.iter().all(|r| r.status == 201), "{mounts:?}");
    assert!(
        !log.iter()
            .any(|r| r.method == "PUT" && r.path.contains("/blobs/")),
        "no bytes moved: {log:?}"
    );
    let scopes: Vec<Vec<String>> = ts.requests()[before..]
        .iter()
        .map(|r| r.scopes.clone())
        .collect();
    assert!(
        scopes.contains(&vec![
            "repository:derived/app:pull,push".to_string(),
            "repository:base/app:pull".to_string()
        ]),
        "mount asks pull+push on the target and pull on the source: {scopes:?}"
    );
    assert!(
        scopes.contains(&vec!["repository:base/app:pull".to_string()]),
        "{scopes:?}"
    );
}

/// Credentials from each place a docker or podman user keeps them.
#[test]
fn credentials_from_env_files_identity_tokens_and_helpers() {
    let (src, _) = seeded_source(130);
    let (ts, reg) = token_registry(Policy {
        rotate_to: Some("refresh-next".to_string()),
        ..policy()
    });
    let home = tempfile::tempdir().unwrap();
    let h = home.path().display().to_string();
    let copy = |tag: &str, env: &[(&str, &str)]| {
        let mut env = env.to_vec();
        if !env.iter().any(|(k, _)| *k == "HOME") {
            env.push(("HOME", &h));
        }
        run_with_env(
            &[
                "copy",
                &src.image("app:v1"),
                &reg.image(&format!("app:{tag}")),
            ],
            &env,
        )
    };

    // 1. Environment.
    let (code, _, err) = copy("env", &[("OCIREPL_DEST_CREDS", "alice:alice-pw")]);
    assert_eq!(code, 0, "{err}");

    // 2. docker config.json auths, found through DOCKER_CONFIG.
    let docker = home.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            reg.host(),
            b64("alice:alice-pw")
        ),
    )
    .unwrap();
    let (code, _, err) = copy(
        "config",
        &[("DOCKER_CONFIG", &docker.display().to_string())],
    );
    assert_eq!(code, 0, "{err}");

    // 3. identitytoken: the OAuth2 refresh-token grant (POST form).
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"refresh-abc"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    // A same-registry copy: the target needs two scope sets (its own, and
    // the mount's), so it exchanges the refresh token twice.
    let before = ts.requests().len();
    let (code, _, err) = run_with_env(
        &[
            "copy",
            &reg.image("app:env"),
            &reg.image("mirror/app:identity"),
            "--src-creds",
            "alice:alice-pw",
        ],
        &[
            ("HOME", &h),
            ("DOCKER_CONFIG", &docker.display().to_string()),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let posts: Vec<_> = ts.requests()[before..]
        .iter()
        .filter(|r| r.method == "POST")
        .cloned()
        .collect();
    assert_eq!(posts[0].refresh_token.as_deref(), Some("refresh-abc"));
    // The server rotated the refresh token: later exchanges use the new one.
    assert!(posts.len() >= 2, "{posts:?}");
    assert!(
        posts[1..]
            .iter()
            .all(|r| r.refresh_token.as_deref() == Some("refresh-next")),
        "{posts:?}"
    );

    // 4. A credential helper on PATH, named by credHelpers.
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-testhelper");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread server\necho \"{\\\"ServerURL\\\":\\\"$server\\\",\\\"Username\\\":\\\"alice\\\",\\\"Secret\\\":\\\"alice-pw\\\"}\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"testhelper"}}}}"#, reg.host()),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (code, _, err) = copy(
        "helper",
        &[
            ("DOCKER_CONFIG", &docker.display().to_string()),
            ("PATH", &path),
        ],
    );
    assert_eq!(code, 0, "{err}");

    // 5. containers auth.json with a host/namespace key (longest prefix wins).
    let auth_json = home.path().join("auth.json");
    std::fs::write(
        &auth_json,
        format!(
            r#"{{"auths":{{"{host}":{{"auth":"{wrong}"}},"{host}/app":{{"auth":"{right}"}}}}}}"#,
            host = reg.host(),
            wrong = b64("alice:not-this-one"),
            right = b64("alice:alice-pw")
        ),
    )
    .unwrap();
    let (code, _, err) = copy(
        "authjson",
        &[("REGISTRY_AUTH_FILE", &auth_json.display().to_string())],
    );
    assert_eq!(code, 0, "{err}");

    // 6. The refresh token flag, with the GET fallback when POST is refused.
    let (code, _, err) = copy(
        "flag-token",
        &[("OCIREPL_DEST_REGISTRY_TOKEN", "refresh-abc")],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn oauth_post_refused_falls_back_to_get() {
    let (src, _) = seeded_source(140);
    let (ts, reg) = token_registry(Policy {
        no_oauth_post: true,
        ..policy()
    });
    let (code, _, err) = run(&[
        "copy",
        &src.image("app:v1"),
        &reg.image("app:v1"),
        "--dest-registry-token",
        "refresh-abc",
    ]);
    assert_eq!(code, 0, "{err}");
    let methods: Vec<String> = ts.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(
        methods,
        vec!["GET"],
        "the POST was refused (404) and not recorded"
    );
    let posts = ts
        .fake
        .log()
        .iter()
        .filter(|(m, _, s)| m == "POST" && *s == 404)
        .count();
    assert_eq!(posts, 1);
}

#[test]
fn malformed_auth_files_name_the_file_and_line() {
    let (src, _) = seeded_source(150);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("auth.json");
    std::fs::write(
        &bad,
        "{\n  \"auths\": {\n    \"x\": {\"auth\": \"SECRETVALUE\"\n",
    )
    .unwrap();
    let (code, _, err) = run(&[
        "copy",
        &src.image("app:v1"),
        &src.image("other:v1"),
        "--authfile",
        &bad.display().to_string(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&bad.display().to_string()) && err.contains("line"),
        "{err}"
    );
    assert!(!err.contains("SECRETVALUE"), "{err}");
}

#[test]
fn client_certificates_from_the_cert_dir() {
    let (src, digest) = seeded_source(160);
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = server_pki(pki_dir.path());
    let mtls = Registry::start(
        RegistryConfig::anonymous()
            .with_tls(&pki.server_cert, &pki.server_key)
            .requiring_client_certs(&pki.ca_cert),
    );
    let with_identity = pki.client_identity_dir.display().to_string();
    let (code, _, err) = run(&[
        "copy",
        &src.image("app:v1"),
        &mtls.image("app:v1"),
        "--dest-cert-dir",
        &with_identity,
    ]);
    assert_eq!(code, 0, "{err}");
    let read = skopeo(&[
        "inspect",
        "--no-tags",
        "--cert-dir",
        &with_identity,
        "--format",
        "{{.Digest}}",
        &format!("docker://{}", mtls.image("app:v1")),
    ]);
    assert_eq!(read.trim(), digest);

    // Only the CA, no client certificate: the registry refuses the handshake.
    let (code, _, err) = run(&[
        "copy",
        &src.image("app:v1"),
        &mtls.image("app:v2"),
        "--dest-cert-dir",
        &pki.client_cert_dir.display().to_string(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&mtls.host()), "{err}");
}
