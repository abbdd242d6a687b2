//! Test-time PKI: a CA and a server certificate for 127.0.0.1 (TLS tests),
//! and an ES256 key with a self-signed certificate that signs registry
//! tokens (the registry trusts it through `rootcertbundle`).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::DecodePrivateKey;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// Files for a TLS registry and its clients.
pub struct ServerPki {
    /// A docker `certs.d`-style directory holding only `ca.crt`.
    pub client_cert_dir: PathBuf,
    /// The same plus a client certificate (`client.cert`, `client.key`).
    pub client_identity_dir: PathBuf,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// Writes a CA and a server certificate for 127.0.0.1 and localhost into `dir`.
pub fn server_pki(dir: &Path) -> ServerPki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ocirepl test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server cert");

    let client_cert_dir = dir.join("certs.d");
    std::fs::create_dir_all(&client_cert_dir).expect("certs.d");
    std::fs::write(client_cert_dir.join("ca.crt"), ca_cert.pem()).expect("ca.crt");
    let client_key = KeyPair::generate().expect("client key");
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ocirepl test client");
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params
        .signed_by(&client_key, &issuer)
        .expect("client cert");
    let client_identity_dir = dir.join("certs-with-client.d");
    std::fs::create_dir_all(&client_identity_dir).expect("certs dir");
    std::fs::write(client_identity_dir.join("ca.crt"), ca_cert.pem()).expect("ca.crt");
    std::fs::write(client_identity_dir.join("client.cert"), client_cert.pem())
        .expect("client.cert");
    std::fs::write(
        client_identity_dir.join("client.key"),
        client_key.serialize_pem(),
    )
    .expect("client.key");
    let ca_path = dir.join("ca.crt");
    std::fs::write(&ca_path, ca_cert.pem()).expect("ca.crt");

    let server_cert = dir.join("server.crt");
    let server_key = dir.join("server.key");
    std::fs::write(&server_cert, cert.pem()).expect("server.crt");
    std::fs::write(&server_key, key.serialize_pem()).expect("server.key");
    ServerPki {
        client_cert_dir,
        client_identity_dir,
        ca_cert: ca_path,
        server_cert,
        server_key,
    }
}

/// Signs JWTs the way a docker token server does (ES256, `x5c` header).
#[derive(Clone)]
pub struct TokenSigner {
    key: p256::ecdsa::SigningKey,
    cert_der: Vec<u8>,
    pub cert_pem: String,
}

impl TokenSigner {
    pub fn new() -> TokenSigner {
        let kp = KeyPair::generate().expect("token key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ocirepl test token signer");
        let cert = params.self_signed(&kp).expect("token cert");
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&kp.serialize_pem()).expect("p256 key");
        TokenSigner {
            key,
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
        }
    }

    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let std = base64::engine::general_purpose::STANDARD;
        let header =
            serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [std.encode(&self.cert_der)]});
        let input = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        );
        let sig: p256::ecdsa::Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64.encode(sig.to_bytes()))
    }
}
