//! Credentials, and every place they come from: flags and environment,
//! auth files (podman's `containers/auth.json`, docker's `config.json`),
//! credential helpers (`docker-credential-NAME get`), and the variables and
//! files a sync config names (`named`). The one home of secrets: the
//! transport takes a [`Credentials`] from here and decides where it may go.
//!
//! Owns lookup order and key matching: the first source that knows the
//! registry wins; inside a file `credHelpers` for the host, then the
//! `auths` entry with the longest matching `host/namespace/repo` prefix,
//! then `credsStore`. Docker Hub's aliases name one entry, which is never
//! used for any other host. Never prints a secret: errors name the file,
//! the line, the helper and the registry, not the values.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::reference::DOCKER_HUB;
mod named;
mod secret;
mod service;

pub use named::{from_env, from_file};
pub use secret::Credentials;
pub use service::ServiceSecret;

/// How long a credential helper may take before we give up on it.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(10);
/// The most we read of a helper's answer or an auth file.
const MAX_HELPER_OUTPUT: u64 = 64 * 1024;
/// The key docker uses for Docker Hub in `config.json` and with helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// docker-credential helpers answer this (exit 1) when they have nothing.
const HELPER_NOT_FOUND: &str = "credentials not found";

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("credential helper docker-credential-{helper} for {registry}: {message}")]
    Helper {
        helper: String,
        registry: String,
        message: String,
    },
    /// A secret a config names by variable or file could not be read.
    #[error("registry {registry}: {message}")]
    Named { registry: String, message: String },
}

/// What a user said about credentials for one side of a copy or one
/// registry of a sync config; [`resolve`] turns it into credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialSource {
    /// `USER:PASS`
    pub creds: Option<Credentials>,
    /// An OAuth2 refresh token (`--*-registry-token`).
    pub registry_token: Option<String>,
    /// `--*-no-creds`: anonymous, whatever the files say.
    pub no_creds: bool,
    /// `--authfile` / `--src-authfile` / `--dest-authfile`.
    pub authfile: Option<PathBuf>,
}

/// The environment the default auth files are found through (injectable
/// so tests never read the real home directory).
#[derive(Debug, Clone)]
pub struct Env {
    pub registry_auth_file: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    pub docker_config: Option<PathBuf>,
    pub home: Option<PathBuf>,
    /// `PATH` for credential helpers; `None` inherits ours.
    pub helper_path: Option<std::ffi::OsString>,
    pub helper_timeout: Duration,
}

impl Default for Env {
    fn default() -> Self {
        Env {
            registry_auth_file: None,
            xdg_runtime_dir: None,
            xdg_config_home: None,
            docker_config: None,
            home: None,
            helper_path: None,
            helper_timeout: HELPER_TIMEOUT,
        }
    }
}

impl Env {
    pub fn from_process() -> Env {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Env {
            registry_auth_file: var("REGISTRY_AUTH_FILE"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            docker_config: var("DOCKER_CONFIG"),
            home: var("HOME"),
            ..Env::default()
        }
    }

    /// Auth files in the order they are consulted.
    pub fn default_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Some(f) = &self.registry_auth_file {
            files.push(f.clone());
        }
        if let Some(d) = &self.xdg_runtime_dir {
            files.push(d.join("containers/auth.json"));
        }
        match (&self.xdg_config_home, &self.home) {
            (Some(d), _) => files.push(d.join("containers/auth.json")),
            (None, Some(h)) => files.push(h.join(".config/containers/auth.json")),
            _ => {}
        }
        if let Some(d) = &self.docker_config {
            files.push(d.join("config.json"));
        }
        if let Some(h) = &self.home {
            files.push(h.join(".docker/config.json"));
        }
        files
    }
}

/// The credentials for `registry` (`host[:port]`) and `repository`, or
/// `None` for anonymous access.
pub fn resolve(
    flags: &CredentialSource,
    env: &Env,
    registry: &str,
    repository: &str,
) -> Result<Option<Credentials>, CredentialError> {
    if flags.no_creds {
        return Ok(None);
    }
    if let Some(c) = &flags.creds {
        return Ok(Some(c.clone()));
    }
    if let Some(token) = &flags.registry_token {
        return Ok(Some(Credentials::identity_token("", token)));
    }
    let files = match &flags.authfile {
        Some(f) => vec![f.clone()],
        None => env.default_files(),
    };
    for path in files {
        let explicit = flags.authfile.as_ref() == Some(&path);
        let Some(file) = AuthFile::load(&path, explicit)? else {
            continue;
        };
        if let Some(c) = file.lookup(env, registry, repository)? {
            tracing::debug!(file = %path.display(), registry, "credentials found");
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// One `auth.json` / `config.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(skip)]
    path: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl AuthFile {
    /// Reads a file; a missing default file is `None`, a missing explicit
    /// one (`--authfile`) is an error, a malformed one always is.
    pub fn load(path: &Path, must_exist: bool) -> Result<Option<AuthFile>, CredentialError> {
        let err = |message: String| CredentialError::File {
            path: path.to_path_buf(),
            message,
        };
        let mut text = Vec::new();
        match std::fs::File::open(path) {
            Ok(f) => {
                f.take(MAX_HELPER_OUTPUT * 16)
                    .read_to_end(&mut text)
                    .map_err(|e| err(e.to_string()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        }
        let mut file: AuthFile = serde_json::from_slice(&text).map_err(|e| {
            // serde_json's message quotes no input, only the position.
            err(format!(
                "invalid JSON at line {} column {}: {}",
                e.line(),
                e.column(),
                classify_json_error(&e)
            ))
        })?;
        file.path = path.to_path_buf();
        Ok(Some(file))
    }

    /// The credentials this file holds for a registry and repository.
    pub fn lookup(
        &self,
        env: &Env,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Credentials>, CredentialError> {
        let host = normalize_key(registry);
        if let Some(helper) = self
            .cred_helpers
            .iter()
            .find(|(k, _)| normalize_key(k) == host)
            .map(|(_, v)| v)
        {
            return run_helper(env, helper, registry);
        }
        // Longest prefix: host/ns/repo, host/ns, host.
        let wanted = format!("{host}/{repository}");
        let mut best: Option<(usize, &AuthEntry, &str)> = None;
        for (key, entry) in &self.auths {
            let k = normalize_key(key);
            let matches = k == host
                || k == wanted
                || (wanted.starts_with(&k) && wanted.as_bytes().get(k.len()) == Some(&b'/'));
            if matches && best.is_none_or(|(len, _, _)| k.len() > len) {
                best = Some((k.len(), entry, key));
            }
        }
        if let Some((_, entry, key)) = best
            && let Some(c) = self.decode(entry, key)?
        {
            return Ok(Some(c));
        }
        match &self.creds_store {
            Some(store) if !store.is_empty() => run_helper(env, store, registry),
            _ => Ok(None),
        }
    }

    fn decode(&self, entry: &AuthEntry, key: &str) -> Result<Option<Credentials>, CredentialError> {
        let bad = |what: &str| CredentialError::File {
            path: self.path.clone(),
            message: format!("entry {key:?}: {what}"),
        };
        let (mut user, mut pass) = (entry.username.clone(), entry.password.clone());
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad("\"auth\" is not base64"))?;
            let text = String::from_utf8(raw).map_err(|_| bad("\"auth\" is not UTF-8"))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| bad("\"auth\" is not USER:PASSWORD"))?;
            user = Some(u.to_string());
            pass = Some(p.to_string());
        }
        if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::identity_token(
                user.as_deref().unwrap_or(""),
                token,
            )));
        }
        match (user, pass) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials::basic(&u, &p))),
            _ => Ok(None),
        }
    }
}

fn classify_json_error(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Eof => "unexpected end of file",
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/` →
/// `host:5000`; `host/ns/repo` stays.
pub fn normalize_key(key: &str) -> String {
    let k = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let k = k
        .strip_suffix("/v1/")
        .or_else(|| k.strip_suffix("/v2/"))
        .unwrap_or(k);
    let k = k.trim_end_matches('/');
    let (host, rest) = match k.split_once('/') {
        Some((h, r)) => (h, Some(r)),
        None => (k, None),
    };
    let host = match host {
        "docker.io" | "index.docker.io" | DOCKER_HUB => "docker.io",
        h => h,
    };
    match rest {
        Some(r) => format!("{host}/{r}"),
        None => host.to_string(),
    }
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-NAME get`. Its output is never echoed: it may
/// hold the secret even when it is malformed.
fn run_helper(
    env: &Env,
    name: &str,
    registry: &str,
) -> Result<Option<Credentials>, CredentialError> {
    let server = if normalize_key(registry) == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    };
    let err = |message: String| CredentialError::Helper {
        helper: name.to_string(),
        registry: registry.to_string(),
        message,
    };
    if name.is_empty() || name.contains(['/', '\\']) {
        return Err(err("invalid helper name".into()));
    }
    let mut cmd = Command::new(format!("docker-credential-{name}"));
    if let Some(path) = &env.helper_path {
        cmd.env("PATH", path);
    }
    let mut child = cmd
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => err("not found on PATH".into()),
            _ => err(format!("cannot start it: {e}")),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let mut stdout = child.stdout.take().ok_or_else(|| err("no stdout".into()))?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(MAX_HELPER_OUTPUT).read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + env.helper_timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(format!(
                    "no answer within {} ms",
                    env.helper_timeout.as_millis()
                )));
            }
            Err(e) => return Err(err(format!("waiting for it failed: {e}"))),
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        if String::from_utf8_lossy(&out).contains(HELPER_NOT_FOUND) {
            return Ok(None);
        }
        return Err(err(format!(
            "it failed ({})",
            status
                .code()
                .map_or("killed".to_string(), |c| format!("exit code {c}"))
        )));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out)
        .map_err(|_| err("it printed something that is not its JSON answer".into()))?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    // docker's convention: user "<token>" means the secret is an identity token.
    if answer.username == "<token>" {
        return Ok(Some(Credentials::identity_token("", &answer.secret)));
    }
    Ok(Some(Credentials::basic(&answer.username, &answer.secret)))
}

#[cfg(test)]
mod tests;
