//! TLS as docker users set it up: the self-signed certificate docker's
//! documentation tells people to make (scenario 44), and a `certs.d`
//! client certificate presented to its registry only, never to a host a
//! redirect points at. Over HTTPS the registry speaks HTTP/2, whose
//! per-connection window a Go server keeps at 1 MiB: blob bodies go on
//! HTTP/1.1 connections of their own, everything else multiplexes.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use support::pki::server_pki;
use support::*;

/// `openssl req` exactly as docker's "Deploy a registry server" page has it
/// (`-newkey rsa:4096 -nodes -sha256 ... -addext subjectAltName -x509`).
fn docker_documented_cert(dir: &Path, san: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    require("openssl");
    let (key, crt) = (dir.join("domain.key"), dir.join("domain.crt"));
    let out = Command::new("openssl")
        .args(["req", "-newkey", "rsa:4096", "-nodes", "-sha256", "-keyout"])
        .arg(&key)
        .args([
            "-addext",
            &format!("subjectAltName = {san}"),
            "-x509",
            "-days",
            "365",
            "-subj",
            "/CN=registry",
        ])
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (crt, key)
}

fn certs_d(dir: &Path, ca: &Path) -> String {
    let d = dir.join("certs.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(ca, d.join("ca.crt")).unwrap();
    d.display().to_string()
}

#[test]
fn a_self_signed_certificate_made_as_docker_documents_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    let (crt, key) = docker_documented_cert(&good, "IP:127.0.0.1,DNS:localhost");
    let reg = Registry::start(RegistryConfig::anonymous().with_tls(&crt, &key));
    let layout = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(layout.path());
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(9900, 4096)],
    ));
    w.tag(&[("v1", image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
    let src = format!("oci:{}:v1", layout.path().display());

    let trusted = certs_d(&good, &crt);
    let (code, _, err) = run(&[
        "copy",
        "--dest-cert-dir",
        &trusted,
        &src,
        &reg.image("app:v1"),
    ]);
    assert_eq!(code, 0, "{err}");

    // Without the cert dir a loopback registry is asked over plain http; the
    // error says that it speaks https and what to do.
    let (code, _, err) = run(&["copy", &src, &reg.image("app:v3")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("it speaks https"), "{err}");
    // Asked for TLS without the cert dir, the system's roots (read at this
    // first handshake) do not know the certificate.
    let (code, _, err) = run(&["copy", "--dest-tls-verify=true", &src, &reg.image("app:v3")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // Another self-signed certificate is still refused.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let (other_crt, _) = docker_documented_cert(&other, "IP:127.0.0.1,DNS:localhost");
    let untrusted = certs_d(&other, &other_crt);
    let (code, _, err) = run(&[
        "copy",
        "--dest-cert-dir",
        &untrusted,
        &src,
        &reg.image("app:v2"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // The exact certificate, but for another name: the hostname still counts.
    let named = dir.path().join("named");
    std::fs::create_dir_all(&named).unwrap();
    let (named_crt, named_key) = docker_documented_cert(&named, "DNS:myregistry.domain.com");
    let named_reg = Registry::start(RegistryConfig::anonymous().with_tls(&named_crt, &named_key));
    let (code, _, err) = run(&[
        "copy",
        "--dest-cert-dir",
        &certs_d(&named, &named_crt),
        &src,
        &named_reg.image("app:v1"),
    ]);
    assert_eq!(code, 1, "{err}");
}

/// A minimal HTTPS server that asks for (but does not require) a client
/// certificate, records whether each connection presented one, and
/// answers every request with `reply(path)`.
struct Recorder {
    port: u16,
    saw_client_cert: Arc<Mutex<Vec<bool>>>,
}

impl Recorder {
    fn start(
        pki: &support::pki::ServerPki,
        reply: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Recorder {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.server_cert)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&pki.server_key).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&pki.ca_cert).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .allow_unauthenticated()
            .build()
            .unwrap();
        let config = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let saw = Arc::new(Mutex::new(Vec::new()));
        let seen = saw.clone();
        let reply = Arc::new(reply);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        continue;
                    };
                    let (acceptor, seen, reply) = (acceptor.clone(), seen.clone(), reply.clone());
                    tokio::spawn(async move {
                        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
                        let Ok(tls) = acceptor.accept(sock).await else {
                            return;
                        };
                        seen.lock()
                            .unwrap()
                            .push(tls.get_ref().1.peer_certificates().is_some());
                        let mut tls = BufReader::new(tls);
                        let mut line = String::new();
                        if tls.read_line(&mut line).await.is_err() {
                            return;
                        }
                        let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                        loop {
                            let mut h = String::new();
                            if tls.read_line(&mut h).await.is_err() || h.trim().is_empty() {
                                break;
                            }
                        }
                        let _ = tls.get_mut().write_all(reply(&path).as_bytes()).await;
                        let _ = tls.get_mut().shutdown().await;
                    });
                }
            });
        });
        Recorder {
            port,
            saw_client_cert: saw,
        }
    }
}

#[test]
fn a_client_certificate_goes_to_its_registry_only() {
    let dir = tempfile::tempdir().unwrap();
    let pki = server_pki(dir.path());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[]}}"#,
        image::OCI_MANIFEST,
        sha256(b"{}")
    );
    let storage = Recorder::start(&pki, move |_| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{manifest}",
            image::OCI_MANIFEST,
            manifest.len()
        )
    });
    let storage_port = storage.port;
    let registry = Recorder::start(&pki, move |path| {
        if path.contains("/manifests/") {
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: https://127.0.0.1:{storage_port}/m\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        } else {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
        }
    });
    let (code, out, err) = run(&[
        "inspect",
        "--src-cert-dir",
        &pki.client_identity_dir.display().to_string(),
        &format!("127.0.0.1:{}/app:v1", registry.port),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(image::OCI_MANIFEST), "{out}");
    let reg_saw = registry.saw_client_cert.lock().unwrap().clone();
    let storage_saw = storage.saw_client_cert.lock().unwrap().clone();
    assert!(
        reg_saw.contains(&true),
        "the registry got no client certificate: {reg_saw:?}"
    );
    assert!(!storage_saw.is_empty(), "the redirect was not followed");
    assert!(
        !storage_saw.contains(&true),
        "a redirect target got the client certificate"
    );
}

/// Issue 13: with a cert dir (ocirepl's own rustls configuration) and with
/// `--dest-tls-verify=false` (reqwest's), a blob body of 1 MiB or more is
/// uploaded and downloaded on HTTP/1.1 while HEADs, small blobs and
/// manifests stay on HTTP/2. The registry's access log names the protocol
/// of each request.
#[test]
fn blob_bodies_travel_on_http1_beside_http2_for_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let pki = server_pki(dir.path());
    let reg =
        Registry::start(RegistryConfig::anonymous().with_tls(&pki.server_cert, &pki.server_key));
    let layout = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(layout.path());
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(77, 3 << 20), Layer::random(78, 2048)],
    ));
    w.tag(&[("v1", image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
    let src = format!("oci:{}:v1", layout.path().display());
    // The system's roots alone (shared by every client) do not know the CA;
    // for a loopback registry ocirepl then tries plain http, which a TLS
    // port refuses.
    let (code, _, err) = run(&["copy", &src, &reg.image("refused:v1")]);
    assert_eq!(code, 1, "{err}");
    let certs = pki.client_cert_dir.display().to_string();
    for (repo, flag) in [
        ("verified", format!("--dest-cert-dir={certs}")),
        ("unverified", "--dest-tls-verify=false".to_string()),
    ] {
        let (code, _, err) = run(&["copy", &flag, &src, &reg.image(&format!("{repo}:v1"))]);
        assert_eq!(code, 0, "{err}");
        let log: Vec<Access> = reg
            .access_log()
            .into_iter()
            .filter(|a| a.path.starts_with(&format!("/v2/{repo}/")))
            .collect();
        let big_put = log
            .iter()
            .filter(|a| a.method == "PUT" && a.path.contains("/blobs/uploads/"))
            .filter(|a| a.protocol == "HTTP/1.1")
            .count();
        assert_eq!(big_put, 1, "{repo}: {log:#?}");
        let on_h2 = |method: &str, part: &str| {
            log.iter()
                .filter(|a| a.method == method && a.path.contains(part))
                .all(|a| a.protocol == "HTTP/2.0")
        };
        assert!(on_h2("HEAD", "/blobs/"), "{repo}: {log:#?}");
        assert!(on_h2("PUT", "/manifests/"), "{repo}: {log:#?}");
        let small_puts = log
            .iter()
            .filter(|a| a.method == "PUT" && a.path.contains("/blobs/uploads/"))
            .filter(|a| a.protocol == "HTTP/2.0")
            .count();
        assert_eq!(small_puts, 2, "config and small layer on HTTP/2: {log:#?}");
    }

    // Downloads: to another registry, so that nothing can be mounted.
    let other =
        Registry::start(RegistryConfig::anonymous().with_tls(&pki.server_cert, &pki.server_key));
    let flag = format!("--src-cert-dir={certs}");
    let dflag = format!("--dest-cert-dir={certs}");
    let (code, _, err) = run(&[
        "copy",
        &flag,
        &dflag,
        &reg.image("verified:v1"),
        &other.image("back:v1"),
    ]);
    assert_eq!(code, 0, "{err}");
    let gets: Vec<Access> = reg
        .access_log()
        .into_iter()
        .filter(|a| a.method == "GET" && a.path.starts_with("/v2/verified/"))
        .collect();
    let blob_gets = |protocol: &str| {
        gets.iter()
            .filter(|a| a.path.contains("/blobs/") && a.protocol == protocol)
            .count()
    };
    assert_eq!(blob_gets("HTTP/1.1"), 1, "the 3 MiB layer: {gets:#?}");
    assert_eq!(
        blob_gets("HTTP/2.0"),
        2,
        "config and small layer: {gets:#?}"
    );
    assert!(
        gets.iter()
            .filter(|a| a.path.contains("/manifests/"))
            .all(|a| a.protocol == "HTTP/2.0"),
        "{gets:#?}"
    );
}
