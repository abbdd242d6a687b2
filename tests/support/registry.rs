//! A real CNCF distribution registry (Debian's `docker-registry`) on a free
//! 127.0.0.1 port with temporary storage, for the life of a test.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const REGISTRY_BIN: &str = "docker-registry";

/// How a test registry is configured.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// htpasswd users (user, password): Basic auth on every request.
    pub users: Vec<(String, String)>,
    /// (certificate, key): serve https.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// With `tls`: require client certificates signed by this CA.
    pub client_ca: Option<PathBuf>,
    /// (realm, signer certificate PEM): `auth: token` with this token server.
    pub token: Option<(String, String)>,
    /// `compatibility.schema1.enabled`: accept and serve schema1 manifests.
    pub schema1: bool,
    /// `storage.delete.enabled: false`: manifest DELETEs are refused.
    pub no_deletes: bool,
    /// (url, bearer token): `notifications:` to this endpoint, with the
    /// token in its `Authorization` header.
    pub notify: Option<(String, String)>,
}

impl RegistryConfig {
    pub fn anonymous() -> RegistryConfig {
        RegistryConfig::default()
    }

    pub fn htpasswd(user: &str, password: &str) -> RegistryConfig {
        RegistryConfig {
            users: vec![(user.to_string(), password.to_string())],
            ..RegistryConfig::default()
        }
    }

    pub fn with_tls(mut self, cert: &std::path::Path, key: &std::path::Path) -> RegistryConfig {
        self.tls = Some((cert.to_path_buf(), key.to_path_buf()));
        self
    }

    pub fn requiring_client_certs(mut self, ca: &std::path::Path) -> RegistryConfig {
        self.client_ca = Some(ca.to_path_buf());
        self
    }

    pub fn without_deletes() -> RegistryConfig {
        RegistryConfig {
            no_deletes: true,
            ..RegistryConfig::default()
        }
    }

    pub fn with_schema1() -> RegistryConfig {
        RegistryConfig {
            schema1: true,
            ..RegistryConfig::default()
        }
    }

    /// Sends its notification events to `url`, presenting `token`.
    pub fn notifying(url: &str, token: &str) -> RegistryConfig {
        RegistryConfig {
            notify: Some((url.to_string(), token.to_string())),
            ..RegistryConfig::default()
        }
    }

    pub fn token(realm: &str, signer_pem: &str) -> RegistryConfig {
        RegistryConfig {
            token: Some((realm.to_string(), signer_pem.to_string())),
            ..RegistryConfig::default()
        }
    }
}

/// A running registry; stopped (killed) when dropped.
pub struct Registry {
    pub port: u16,
    dir: TempDir,
    child: Child,
}

/// One line of the registry's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub method: String,
    pub path: String,
    /// As the registry logs it: `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: String,
    pub status: u16,
}

/// Fails loudly (never skips) when the registry binary is missing.
pub fn require(bin: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {bin}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{bin}` is not installed: run scripts/test.sh (it installs docker-registry and skopeo), \
         or apt-get install docker-registry skopeo"
    );
}

/// A port for a child process to listen on, below the kernel's ephemeral
/// range (32768 and up by default): a port the kernel handed us would be
/// free again once we close it, and any outgoing connection of the tests
/// running in parallel could take it before the child binds it. Each
/// process walks its own sequence from a random start, so parallel tests
/// never pick the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let _ = NEXT.compare_exchange(
        0,
        1 + std::process::id() * 7919 % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {}", LOW + SPAN);
}

impl Registry {
    pub fn start(config: RegistryConfig) -> Registry {
        require(REGISTRY_BIN);
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut auth = String::new();
        if !config.users.is_empty() {
            let path = dir.path().join("htpasswd");
            let mut f = std::fs::File::create(&path).expect("htpasswd");
            for (u, p) in &config.users {
                let hash = bcrypt::hash(p, 4).expect("bcrypt");
                writeln!(f, "{u}:{hash}").expect("write htpasswd");
            }
            auth = format!(
                "auth:\n  htpasswd:\n    realm: ocirepl-test\n    path: {}\n",
                path.display()
            );
        }
        if let Some((realm, pem)) = &config.token {
            let bundle = dir.path().join("token-signer.crt");
            std::fs::write(&bundle, pem).expect("rootcertbundle");
            auth = format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                super::token::SERVICE,
                super::token::ISSUER,
                bundle.display()
            );
        }
        let tls = match &config.tls {
            Some((cert, key)) => {
                let mut t = format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                );
                if let Some(ca) = &config.client_ca {
                    t.push_str(&format!("    clientcas:\n      - {}\n", ca.display()));
                }
                t
            }
            None => String::new(),
        };
        let compat = if config.schema1 {
            "compatibility:\n  schema1:\n    enabled: true\n"
        } else {
            ""
        };
        // Blob events are left out (2.8 filters by action only when a media
        // type is listed too); a failed delivery is retried every second.
        let notify = match &config.notify {
            Some((url, token)) => format!(
                "notifications:\n  endpoints:\n    - name: ocirepl\n      url: {url}\n      \
                 headers: {{Authorization: [\"Bearer {token}\"]}}\n      timeout: 2s\n      threshold: 3\n      \
                 backoff: 1s\n      ignore:\n        mediatypes: [application/octet-stream]\n        actions: [pull]\n"
            ),
            None => String::new(),
        };
        let yaml = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: {deletes}\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: ocirepl-test-secret\n{tls}\
             {auth}{compat}{notify}",
            root = dir.path().join("data").display(),
            deletes = !config.no_deletes,
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, yaml).expect("write config");
        let stdout = std::fs::File::create(dir.path().join("access.log")).expect("log");
        let stderr = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("start docker-registry");
        let reg = Registry { port, dir, child };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        panic!(
            "docker-registry did not listen on port {} within 15 s:\n{log}",
            self.port
        );
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/REPO`
    pub fn image(&self, repo_and_tag: &str) -> String {
        format!("{}/{}", self.host(), repo_and_tag)
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Every request the registry has answered so far.
    pub fn access_log(&self) -> Vec<Access> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines().filter_map(parse_access).collect()
    }

    /// The requests answered since `mark` (a previous `access_log().len()`).
    pub fn requests_since(&self, mark: usize) -> Vec<Access> {
        // A line is written when its handler finishes, which for a request the
        // client cut can be after the client gave up: wait for a quiet log.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = self.access_log().len();
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let now = self.access_log().len();
            if now == last || Instant::now() > deadline {
                break;
            }
            last = now;
        }
        self.access_log().into_iter().skip(mark).collect()
    }

    /// Upload sessions left open in a repository's storage. A live session
    /// has its `startedat` file; distribution 2.8 leaves a `hashstates`
    /// directory behind after a DELETE, which is not a session any more.
    pub fn open_uploads(&self, repo: &str) -> usize {
        let dir = self
            .storage()
            .join("docker/registry/v2/repositories")
            .join(repo)
            .join("_uploads");
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().join("startedat").exists())
                    .count()
            })
            .unwrap_or(0)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 200 2 "" "ua"`
fn parse_access(line: &str) -> Option<Access> {
    let request = line.split('"').nth(1)?;
    let mut parts = request.split(' ');
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let protocol = parts.next().unwrap_or_default().to_string();
    let after = line.split('"').nth(2)?.trim();
    let status = after.split(' ').next()?.parse().ok()?;
    Some(Access {
        method,
        path,
        protocol,
        status,
    })
}
