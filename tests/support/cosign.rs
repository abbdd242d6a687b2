//! Signatures made the way cosign makes them, for images in a real
//! registry: keys generated here, the simple-signing payload, the `.sig`
//! manifest under cosign's tag, and Sigstore bundle v0.3 referrers. Written
//! from cosign's published layout, independently of `src/verify` (which
//! must accept them).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::json;

use super::http::{put_manifest_raw, upload_blob};
use super::image::{OCI_MANIFEST, sha256};

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// A cosign key pair (ECDSA P-256, as `cosign generate-key-pair` makes).
pub struct KeyPair {
    key: SigningKey,
    pub public_pem: String,
}

impl KeyPair {
    pub fn generate() -> KeyPair {
        let kp = rcgen::KeyPair::generate().expect("key pair");
        let key = SigningKey::from_pkcs8_pem(&kp.serialize_pem()).expect("p256 key");
        let public_pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("public PEM");
        KeyPair { key, public_pem }
    }

    /// Writes the public key as `DIR/NAME`, as a user keeps `cosign.pub`.
    pub fn write_public(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.public_pem).expect("write the public key");
        path
    }

    /// DER ECDSA over SHA-256 of `data`, base64 (cosign's annotation).
    pub fn sign(&self, data: &[u8]) -> String {
        let sig: p256::ecdsa::Signature = self.key.sign(data);
        base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
    }
}

/// The simple-signing payload cosign signs for `digest`, named as
/// `reference` (HOST/REPO).
pub fn payload(reference: &str, digest: &str) -> Vec<u8> {
    json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

/// One signature layer: the payload and the layer's annotations.
pub struct Layer {
    pub payload: Vec<u8>,
    pub annotations: serde_json::Map<String, serde_json::Value>,
}

impl Layer {
    /// `key`'s signature of `digest` (named `reference`).
    pub fn keyed(key: &KeyPair, reference: &str, digest: &str) -> Layer {
        let payload = payload(reference, digest);
        let mut annotations = serde_json::Map::new();
        annotations.insert(SIGNATURE.into(), key.sign(&payload).into());
        Layer {
            payload,
            annotations,
        }
    }
}

/// cosign's tag for the signatures of `digest`.
pub fn sig_tag(digest: &str) -> String {
    format!("sha256-{}.sig", &digest["sha256:".len()..])
}

/// Pushes a legacy signature manifest (a simple-signing layer per
/// signature, cosign's config) under `sha256-<hex>.sig` in `host/repo`;
/// returns its digest.
pub fn push_sig(host: &str, repo: &str, digest: &str, layers: &[Layer]) -> String {
    let m = sig_manifest(host, repo, layers);
    put_manifest_raw(host, repo, &sig_tag(digest), OCI_MANIFEST, m.as_bytes());
    sha256(m.as_bytes())
}

/// The `.sig` manifest for these layers, its blobs uploaded.
pub fn sig_manifest(host: &str, repo: &str, layers: &[Layer]) -> String {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        let d = upload_blob(host, repo, &l.payload);
        diff_ids.push(d.clone());
        descriptors.push(json!({
            "mediaType": SIMPLE_SIGNING,
            "size": l.payload.len(),
            "digest": d,
            "annotations": l.annotations,
        }));
    }
    let config = json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    })
    .to_string();
    let config_d = upload_blob(host, repo, config.as_bytes());
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_d},
        "layers": descriptors,
    })
    .to_string()
}

/// A test Sigstore: a Fulcio-like CA and a Rekor-like log key, with the
/// `trusted_root.json` that trusts them. Signing certificates it issues
/// carry Fulcio's identity extensions; log entries carry a signed entry
/// timestamp (SET) as Rekor's would.
pub struct TestSigstore {
    ca_key: rcgen::KeyPair,
    ca_params: rcgen::CertificateParams,
    ca_der: Vec<u8>,
    pub ca_pem: String,
    log: SigningKey,
    log_spki: Vec<u8>,
}

/// A keyless signer: a key and the certificate the test CA issued for it.
pub struct Identity {
    key: SigningKey,
    pub cert_pem: String,
    /// The issuing CA's certificate (cosign's `chain` annotation).
    pub chain_pem: String,
}

/// When the test log says every entry was made (2024-01-01T12:00:00Z),
/// inside every certificate's validity.
pub const INTEGRATED_TIME: i64 = 1_704_110_400;

fn der_utf8(s: &str) -> Vec<u8> {
    assert!(s.len() < 128);
    let mut v = vec![0x0C, s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

impl TestSigstore {
    pub fn new(name: &str) -> TestSigstore {
        use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa};
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "ocirepl-test");
        dn.push(DnType::CommonName, format!("{name} fulcio"));
        ca_params.distinguished_name = dn;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        ca_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        ca_params.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let log = KeyPair::generate().key;
        let log_spki = log
            .verifying_key()
            .to_public_key_der()
            .expect("log key DER")
            .as_bytes()
            .to_vec();
        TestSigstore {
            ca_der: ca.der().to_vec(),
            ca_pem: ca.pem(),
            ca_key,
            ca_params,
            log,
            log_spki,
        }
    }

    /// A signing certificate for `subject` (an e-mail) from `issuer`.
    pub fn identity(&self, subject: &str, issuer: &str) -> Identity {
        use rcgen::{CertificateParams, CustomExtension, DistinguishedName, SanType};
        let kp = rcgen::KeyPair::generate().expect("leaf key");
        let mut leaf = CertificateParams::default();
        leaf.distinguished_name = DistinguishedName::new();
        leaf.subject_alt_names = vec![SanType::Rfc822Name(subject.try_into().expect("e-mail"))];
        leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
        leaf.custom_extensions = vec![CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
            der_utf8(issuer),
        )];
        leaf.not_before = rcgen::date_time_ymd(2024, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2024, 1, 2);
        let issuer_ca = rcgen::Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = leaf.signed_by(&kp, &issuer_ca).expect("leaf certificate");
        Identity {
            key: SigningKey::from_pkcs8_pem(&kp.serialize_pem()).expect("p256 key"),
            cert_pem: cert.pem(),
            chain_pem: self.ca_pem.clone(),
        }
    }

    fn log_id(&self) -> Vec<u8> {
        use sha2::Digest as _;
        sha2::Sha256::digest(&self.log_spki).to_vec()
    }

    /// The trusted root that trusts this CA and log, written to `path`.
    pub fn write_trusted_root(&self, path: &Path) -> PathBuf {
        let b64 = base64::engine::general_purpose::STANDARD;
        let root = json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{
                "baseUrl": "https://rekor.test",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64.encode(&self.log_spki),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2020-01-01T00:00:00Z"},
                },
                "logId": {"keyId": b64.encode(self.log_id())},
            }],
            "certificateAuthorities": [{
                "subject": {"organization": "ocirepl-test", "commonName": "test fulcio"},
                "uri": "https://fulcio.test",
                "certChain": {"certificates": [{"rawBytes": b64.encode(&self.ca_der)}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            }],
            "ctlogs": [],
            "timestampAuthorities": [],
        });
        std::fs::write(path, root.to_string()).expect("write the trusted root");
        path.to_path_buf()
    }

    /// Rekor's bundle annotation for a hashedrekord entry of `payload`
    /// signed as `signature_b64` by the holder of `cert_pem`.
    fn rekor_bundle(&self, payload: &[u8], signature_b64: &str, cert_pem: &str) -> String {
        use sha2::Digest as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hex::encode(sha2::Sha256::digest(payload))}},
                "signature": {"content": signature_b64, "publicKey": {"content": b64.encode(cert_pem)}},
            },
        });
        let body_b64 = b64.encode(body.to_string());
        let log_id = hex::encode(self.log_id());
        // RFC 8785 canonical JSON of the four fields, as Rekor signs them.
        let signed = format!(
            r#"{{"body":"{body_b64}","integratedTime":{INTEGRATED_TIME},"logID":"{log_id}","logIndex":7}}"#
        );
        let set: p256::ecdsa::Signature = self.log.sign(signed.as_bytes());
        json!({
            "SignedEntryTimestamp": b64.encode(set.to_der().as_bytes()),
            "Payload": {"body": body_b64, "integratedTime": INTEGRATED_TIME, "logIndex": 7, "logID": log_id},
        })
        .to_string()
    }
}

impl Layer {
    /// A keyless signature of `digest` by `who`, logged in `log`'s
    /// transparency log.
    pub fn keyless(log: &TestSigstore, who: &Identity, reference: &str, digest: &str) -> Layer {
        let payload = payload(reference, digest);
        let sig: p256::ecdsa::Signature = who.key.sign(&payload);
        let sig_b64 = base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes());
        let mut annotations = serde_json::Map::new();
        annotations.insert(
            "dev.sigstore.cosign/bundle".into(),
            log.rekor_bundle(&payload, &sig_b64, &who.cert_pem).into(),
        );
        annotations.insert(SIGNATURE.into(), sig_b64.into());
        annotations.insert(
            "dev.sigstore.cosign/certificate".into(),
            who.cert_pem.clone().into(),
        );
        annotations.insert(
            "dev.sigstore.cosign/chain".into(),
            who.chain_pem.clone().into(),
        );
        Layer {
            payload,
            annotations,
        }
    }
}

/// A cosign v3 signature: a Sigstore bundle v0.3 holding a DSSE envelope
/// over an in-toto statement naming `digest`, signed with `key`
/// (`predicate`: cosign's signature predicate, or an attestation's).
pub fn bundle(key: &KeyPair, digest: &str, predicate: &str) -> Vec<u8> {
    use sha2::Digest as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": &digest["sha256:".len()..]}}],
        "predicateType": predicate,
        "predicate": {},
    })
    .to_string();
    let payload_type = "application/vnd.in-toto+json";
    let pae = format!(
        "DSSEv1 {} {payload_type} {} {statement}",
        payload_type.len(),
        statement.len()
    );
    let sig = key.sign(pae.as_bytes());
    // A key-only bundle still carries its log entry (not checked without
    // a log, but it must agree with the envelope).
    let entry = json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hex::encode(sha2::Sha256::digest(pae.as_bytes()))},
            "payloadHash": {"algorithm": "sha256", "value": hex::encode(sha2::Sha256::digest(statement.as_bytes()))},
            "signatures": [{"signature": sig, "verifier": b64.encode(&key.public_pem)}],
        },
    });
    json!({
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {
            "publicKey": {"hint": ""},
            "tlogEntries": [{
                "logIndex": "1",
                "logId": {"keyId": b64.encode(sha2::Sha256::digest(b"no log"))},
                "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                "canonicalizedBody": b64.encode(entry.to_string()),
            }],
        },
        "dsseEnvelope": {
            "payload": b64.encode(&statement),
            "payloadType": payload_type,
            "signatures": [{"sig": sig, "keyid": ""}],
        },
    })
    .to_string()
    .into_bytes()
}

/// Pushes `bundle` as cosign v3 does on a registry without the referrers
/// API: a referrer manifest by digest naming `subject`, listed in the
/// tag-schema index `sha256-<hex>`. Returns the referrer's digest.
pub fn push_bundle(host: &str, repo: &str, subject: (&str, usize), bundle: &[u8]) -> String {
    let empty = upload_blob(host, repo, b"{}");
    let layer = upload_blob(host, repo, bundle);
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_V03,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": empty},
        "layers": [{"mediaType": BUNDLE_V03, "size": bundle.len(), "digest": layer}],
        "subject": {"mediaType": OCI_MANIFEST, "size": subject.1, "digest": subject.0},
        "annotations": {"dev.sigstore.bundle.content": "dsse-envelope",
                        "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1"},
    })
    .to_string();
    let d = sha256(m.as_bytes());
    put_manifest_raw(host, repo, &d, OCI_MANIFEST, m.as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": d, "size": m.len(), "artifactType": BUNDLE_V03}],
    })
    .to_string();
    let tag = format!("sha256-{}", &subject.0["sha256:".len()..]);
    put_manifest_raw(
        host,
        repo,
        &tag,
        "application/vnd.oci.image.index.v1+json",
        index.as_bytes(),
    );
    d
}
