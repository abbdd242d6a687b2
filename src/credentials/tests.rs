use super::*;

use std::os::unix::fs::PermissionsExt;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A directory with auth files and helper scripts, and an `Env` that sees
/// only it.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let h = Home {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(h.dir.path().join("bin")).unwrap();
        h
    }

    fn env(&self) -> Env {
        Env {
            home: Some(self.dir.path().to_path_buf()),
            helper_path: Some(
                format!("{}:/usr/bin:/bin", self.dir.path().join("bin").display()).into(),
            ),
            helper_timeout: Duration::from_millis(1500),
            ..Env::default()
        }
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn helper(&self, name: &str, script: &str) {
        let p = self.write(
            &format!("bin/docker-credential-{name}"),
            &format!("#!/bin/sh\n{script}\n"),
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn resolve_in(
    env: &Env,
    registry: &str,
    repo: &str,
) -> Result<Option<Credentials>, CredentialError> {
    resolve(&CredentialSource::default(), env, registry, repo)
}

#[test]
fn default_files_in_precedence_order() {
    let env = Env {
        registry_auth_file: Some("/r/auth.json".into()),
        xdg_runtime_dir: Some("/run/u".into()),
        docker_config: Some("/dc".into()),
        home: Some("/h".into()),
        ..Env::default()
    };
    let files: Vec<String> = env
        .default_files()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "/r/auth.json",
            "/run/u/containers/auth.json",
            "/h/.config/containers/auth.json",
            "/dc/config.json",
            "/h/.docker/config.json"
        ]
    );
    let with_xdg = Env {
        xdg_config_home: Some("/x".into()),
        home: Some("/h".into()),
        ..Env::default()
    };
    assert_eq!(
        with_xdg.default_files()[0],
        PathBuf::from("/x/containers/auth.json")
    );
}

#[test]
fn keys_normalise_docker_hub_aliases_and_schemes() {
    for k in [
        "https://index.docker.io/v1/",
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "http://docker.io/",
    ] {
        assert_eq!(normalize_key(k), "docker.io", "{k}");
    }
    assert_eq!(normalize_key("https://quay.io"), "quay.io");
    assert_eq!(
        normalize_key("localhost:5000/ns/repo"),
        "localhost:5000/ns/repo"
    );
    assert_eq!(normalize_key("http://host:5000/v2/"), "host:5000");
    assert_eq!(
        normalize_key("docker.io/library/alpine"),
        "docker.io/library/alpine"
    );
}

#[test]
fn auths_entries_decode_and_longest_prefix_wins() {
    let home = Home::new();
    home.write(
        ".docker/config.json",
        &format!(
            r#"{{"auths": {{
                "reg.example": {{"auth": "{}"}},
                "reg.example/team": {{"auth": "{}"}},
                "reg.example/team/app": {{"username": "app", "password": "p3"}},
                "tok.example": {{"auth": "{}", "identitytoken": "refresh-tok"}},
                "https://index.docker.io/v1/": {{"auth": "{}"}}
            }}}}"#,
            b64("host:p1"),
            b64("team:p2"),
            b64("tokuser:"),
            b64("hubuser:hubpw")
        ),
    );
    let env = home.env();
    let get = |reg: &str, repo: &str| resolve_in(&env, reg, repo).unwrap();
    assert_eq!(
        get("reg.example", "other/x"),
        Some(Credentials::basic("host", "p1"))
    );
    assert_eq!(
        get("reg.example", "team/x"),
        Some(Credentials::basic("team", "p2"))
    );
    assert_eq!(
        get("reg.example", "team/app"),
        Some(Credentials::basic("app", "p3"))
    );
    // A prefix must end at a path boundary: team-b is not under team.
    assert_eq!(
        get("reg.example", "team-b/x"),
        Some(Credentials::basic("host", "p1"))
    );
    assert_eq!(
        get("tok.example", "a"),
        Some(Credentials::identity_token("tokuser", "refresh-tok"))
    );
    assert_eq!(
        get(crate::reference::DOCKER_HUB, "library/alpine"),
        Some(Credentials::basic("hubuser", "hubpw"))
    );
    // Docker Hub's entry is never used for another host.
    assert_eq!(get("docker.io.evil.example", "library/alpine"), None);
    assert_eq!(get("quay.io", "a/b"), None);
}

#[test]
fn containers_auth_json_beats_docker_config_and_flags_beat_files() {
    let home = Home::new();
    home.write(
        ".docker/config.json",
        &format!(r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#, b64("docker:d")),
    );
    home.write(
        ".config/containers/auth.json",
        &format!(r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#, b64("podman:p")),
    );
    let env = home.env();
    assert_eq!(
        resolve_in(&env, "r.io", "a").unwrap(),
        Some(Credentials::basic("podman", "p"))
    );
    let flags = CredentialSource {
        creds: Some(Credentials::basic("flag", "f")),
        ..CredentialSource::default()
    };
    assert_eq!(
        resolve(&flags, &env, "r.io", "a").unwrap(),
        Some(Credentials::basic("flag", "f"))
    );
    let anon = CredentialSource {
        no_creds: true,
        ..CredentialSource::default()
    };
    assert_eq!(resolve(&anon, &env, "r.io", "a").unwrap(), None);
    let token = CredentialSource {
        registry_token: Some("rt".into()),
        ..CredentialSource::default()
    };
    assert_eq!(
        resolve(&token, &env, "r.io", "a").unwrap(),
        Some(Credentials::identity_token("", "rt"))
    );
    // An explicit authfile replaces the default files.
    let explicit = home.write(
        "other.json",
        &format!(
            r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#,
            b64("explicit:e")
        ),
    );
    let with_file = CredentialSource {
        authfile: Some(explicit),
        ..CredentialSource::default()
    };
    assert_eq!(
        resolve(&with_file, &env, "r.io", "a").unwrap(),
        Some(Credentials::basic("explicit", "e"))
    );
    let missing = CredentialSource {
        authfile: Some(home.dir.path().join("nope.json")),
        ..CredentialSource::default()
    };
    assert!(
        resolve(&missing, &env, "r.io", "a")
            .unwrap_err()
            .to_string()
            .contains("nope.json")
    );
}

#[test]
fn cred_helpers_beat_creds_store_and_get_the_server_on_stdin() {
    let home = Home::new();
    // The helper answers only for the server it is asked about.
    home.helper(
        "specific",
        r#"read server; if [ "$server" = "r.io" ]; then echo '{"ServerURL":"r.io","Username":"hu","Secret":"hs"}'; else echo "credentials not found in native keychain"; exit 1; fi"#,
    );
    home.helper(
        "store",
        r#"read server; echo "{\"Username\":\"store\",\"Secret\":\"$server\"}""#,
    );
    home.helper(
        "tok",
        r#"echo '{"Username":"<token>","Secret":"identity"}'"#,
    );
    home.write(
        ".docker/config.json",
        r#"{"auths":{"r.io":{}},"credHelpers":{"r.io":"specific","t.io":"tok"},"credsStore":"store"}"#,
    );
    let env = home.env();
    assert_eq!(
        resolve_in(&env, "r.io", "a").unwrap(),
        Some(Credentials::basic("hu", "hs"))
    );
    assert_eq!(
        resolve_in(&env, "t.io", "a").unwrap(),
        Some(Credentials::identity_token("", "identity"))
    );
    // Other hosts go to the store, which is asked about Docker Hub by its legacy key.
    assert_eq!(
        resolve_in(&env, "o.io", "a").unwrap(),
        Some(Credentials::basic("store", "o.io"))
    );
    assert_eq!(
        resolve_in(&env, crate::reference::DOCKER_HUB, "library/a").unwrap(),
        Some(Credentials::basic("store", "https://index.docker.io/v1/"))
    );
}

#[test]
fn broken_helpers_fail_clearly_without_echoing_output() {
    let home = Home::new();
    home.helper("garbage", "echo 'not json SECRET-IN-GARBAGE'");
    home.helper(
        "fails",
        "echo 'SECRET-IN-FAILURE' >&2; echo 'SECRET-ON-STDOUT'; exit 3",
    );
    home.helper("hangs", "sleep 30");
    home.write(
        ".docker/config.json",
        r#"{"credHelpers":{"g.io":"garbage","f.io":"fails","h.io":"hangs","m.io":"missing"}}"#,
    );
    let env = home.env();
    let msg = |reg: &str| resolve_in(&env, reg, "a").unwrap_err().to_string();
    let g = msg("g.io");
    assert!(
        g.contains("docker-credential-garbage") && g.contains("g.io") && !g.contains("SECRET"),
        "{g}"
    );
    let f = msg("f.io");
    assert!(f.contains("exit code 3") && !f.contains("SECRET"), "{f}");
    let started = Instant::now();
    let h = msg("h.io");
    assert!(h.contains("no answer within"), "{h}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the helper was not killed"
    );
    assert!(msg("m.io").contains("not found on PATH"));
}

#[test]
fn malformed_files_name_the_file_and_line_not_the_content() {
    let home = Home::new();
    let p = home.write(
        ".docker/config.json",
        "{\n  \"auths\": {\n    \"r.io\": {\"auth\": \"SECRET\"\n  }\n",
    );
    let e = resolve_in(&home.env(), "r.io", "a")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&p.display().to_string()) && e.contains("line"),
        "{e}"
    );
    assert!(!e.contains("SECRET"), "{e}");
    home.write(
        ".docker/config.json",
        r#"{"auths":{"r.io":{"auth":"%%%SECRET"}}}"#,
    );
    let e = resolve_in(&home.env(), "r.io", "a")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not base64") && !e.contains("SECRET"), "{e}");
}
