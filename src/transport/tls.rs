//! TLS material from a docker `certs.d` directory: `*.crt` files are extra
//! trusted CAs, a `NAME.cert` with its `NAME.key` is a client certificate,
//! and the rustls configuration built from them.
//!
//! Owns reading and validating those files, and one deliberate acceptance:
//! a certificate placed in the directory is trusted *as itself* when the
//! registry presents exactly it, hostname still checked. That is the
//! self-signed certificate docker's documentation tells people to make
//! (`openssl req -x509 ... -addext subjectAltName=...`, so `CA:TRUE` on
//! the leaf), which docker and skopeo accept and webpki refuses as
//! `CaUsedAsEndEntity`. Never weakens anything else: `--*-tls-verify=false`
//! is decided by the transport, not here.
//!
//! The system's roots are read once per process, at its first handshake
//! (a few hundred files under `/etc/ssl/certs`, a few milliseconds a
//! plain-http run has no use for); every client of every registry shares
//! them.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error as TlsError, SignatureScheme};

/// What a `certs.d` directory holds.
#[derive(Debug)]
pub(super) struct CertDir {
    /// Extra trusted certificates (`*.crt`), DER.
    pub cas: Vec<CertificateDer<'static>>,
    /// The client certificate chain and key (`NAME.cert` + `NAME.key`).
    pub identity: Option<Identity>,
}

/// A client certificate chain and its key.
pub(super) type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Reads a `certs.d` directory.
pub(super) fn read_cert_dir(dir: &Path) -> Result<CertDir, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cert dir {}: {e}", dir.display()))?;
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut out = CertDir {
        cas: Vec::new(),
        identity: None,
    };
    for path in &paths {
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                let certs: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_slice_iter(&read(path)?)
                        .collect::<Result<_, _>>()
                        .map_err(|_| format!("{}: not a PEM certificate", path.display()))?;
                if certs.is_empty() {
                    return Err(format!("{}: no certificate in it", path.display()));
                }
                out.cas.extend(certs);
            }
            Some("cert") => {
                let key_path = path.with_extension("key");
                if !key_path.exists() {
                    return Err(format!(
                        "{}: client certificate without its key {}",
                        path.display(),
                        key_path.display()
                    ));
                }
                let (cert_pem, key_pem) = (read(path)?, read(&key_path)?);
                let bad = || format!("{}: not a PEM certificate and key pair", path.display());
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
                    .collect::<Result<_, _>>()
                    .map_err(|_| bad())?;
                let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| bad())?;
                if chain.is_empty() {
                    return Err(bad());
                }
                out.identity = Some((chain, key));
            }
            Some("key") if !path.with_extension("cert").exists() => {
                return Err(format!("{}: key without a .cert file", path.display()));
            }
            _ => {}
        }
    }
    Ok(out)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// How a registry's certificate is checked: not at all when `insecure`;
/// against the system's roots plus the cert dir's CAs and pinned
/// certificates when there is a cert dir; else the system's roots alone,
/// loaded at the process's first handshake (a plain-http run never reads
/// them).
pub(super) fn verifier(
    dir: Option<&CertDir>,
    insecure: bool,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    let provider = provider();
    let Some(dir) = dir.filter(|_| !insecure) else {
        let check = if insecure {
            Check::Nothing
        } else {
            Check::SystemRoots
        };
        return Ok(Arc::new(Checked { provider, check }));
    };
    let inner = rustls_platform_verifier::Verifier::new_with_extra_roots(dir.cas.clone(), provider)
        .map_err(|e| format!("cannot use the cert dir's certificates: {e}"))?;
    Ok(Arc::new(Pinned {
        inner,
        pinned: dir.cas.clone(),
    }))
}

/// The system's roots, read once per process, at the first handshake.
fn system_roots(
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<&'static rustls_platform_verifier::Verifier, TlsError> {
    static SYSTEM: OnceLock<Result<rustls_platform_verifier::Verifier, String>> = OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|e| format!("cannot load the system's certificates: {e}"))
        })
        .as_ref()
        .map_err(|e| TlsError::General(e.clone()))
}

/// A rustls configuration over `verifier`, presenting `identity` when
/// given; ALPN offers HTTP/2 unless `http1_only`.
pub(super) fn client_config(
    verifier: Arc<dyn ServerCertVerifier>,
    identity: Option<&Identity>,
    http1_only: bool,
) -> Result<rustls::ClientConfig, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(|e| format!("the client certificate: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = if http1_only {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// Handshake signatures checked with the provider's algorithms, and the
/// certificate as `check` says.
#[derive(Debug)]
struct Checked {
    provider: Arc<rustls::crypto::CryptoProvider>,
    check: Check,
}

#[derive(Debug, Clone, Copy)]
enum Check {
    /// `--*-tls-verify=false`: any certificate for any name, as docker's
    /// insecure registries.
    Nothing,
    SystemRoots,
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self.check {
            Check::Nothing => Ok(ServerCertVerified::assertion()),
            Check::SystemRoots => system_roots(&self.provider)?.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The platform verifier, plus exact matches of certificates placed in
/// the cert dir (see the module doc).
#[derive(Debug)]
struct Pinned {
    inner: rustls_platform_verifier::Verifier,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let refused = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(ok) => return Ok(ok),
            Err(e) => e,
        };
        if !self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Err(refused);
        }
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&parsed, server_name)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
