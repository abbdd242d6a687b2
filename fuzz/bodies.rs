//! What each fuzz target does with its input, shared by the cargo-fuzz
//! targets (`fuzz/fuzz_targets/`) and by `tests/fuzz_corpus.rs`, which
//! replays every corpus file as an ordinary test in CI.
//!
//! Each body feeds untrusted bytes to one parser of ocirepl and checks what
//! must hold for any input (no panic; digests cover what is read; lifetimes
//! bounded; references round-trip).

use std::path::Path;
use std::time::Duration;

use ocirepl::digest::{Algorithm, Digest};
use ocirepl::manifest::{Parsed, RawManifest};

/// `[docker://]HOST/REPO[:TAG][@DIGEST]` and `oci:PATH[:TAG]`.
pub fn reference(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(ocirepl::reference::ImageRef::Registry(r)) =
            ocirepl::reference::ImageRef::parse(s)
    {
        let again = ocirepl::reference::Reference::parse(&r.to_string()).expect("round trip");
        assert_eq!(again, r);
    }
}

/// `WWW-Authenticate` headers.
pub fn challenge(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = ocirepl::transport::challenge::parse_challenge_list(s);
    }
}

/// Manifests of every kind, with and without a Content-Type.
pub fn manifest(data: &[u8]) {
    let types = [
        None,
        Some("application/vnd.oci.image.index.v1+json"),
        Some("application/vnd.docker.distribution.manifest.v2+json"),
        Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
    ];
    for ct in types {
        let body = bytes::Bytes::copy_from_slice(data);
        let Ok(m) = RawManifest::from_body(body, ct, Algorithm::Sha256) else {
            continue;
        };
        assert_eq!(
            m.digest,
            Digest::sha256(m.content()),
            "the digest covers what is read"
        );
        match m.parse() {
            Ok(Parsed::Index(index)) => {
                let wanted = [ocirepl::platform::Platform::parse("linux/amd64").expect("platform")];
                let _ = ocirepl::manifest::index::select(&index, &wanted);
            }
            Ok(Parsed::Image(_)) => {
                let _ = ocirepl::manifest::oci::to_oci(&m, &Default::default());
            }
            _ => {}
        }
    }
}

/// Signed schema1: the JWS payload rule, the structure, the conversion.
pub fn schema1(data: &[u8]) {
    if let Ok(Some(payload)) = ocirepl::manifest::jws::signed_payload(data) {
        let _: serde_json::Value = serde_json::from_slice(&payload).expect("a payload is JSON");
    }
    if let Ok(s1) = ocirepl::manifest::schema1::Schema1::parse(data) {
        let layers: Vec<(Digest, u64)> = s1.layers().iter().map(|e| (e.blob.clone(), 1)).collect();
        let _ = s1.to_schema2(&layers);
    }
}

/// An upload session's `Range` and a resumed body's `Content-Range`.
pub fn range(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ocirepl::store::registry::range::received(s);
    let n = data.len() as u64;
    for (offset, size) in [
        (0, 0),
        (0, n),
        (n, n.wrapping_mul(3)),
        (u64::MAX, u64::MAX),
        (1, 0),
    ] {
        let _ = ocirepl::store::registry::range::continues_at(s, offset, size);
    }
}

/// A token server's JSON answer.
pub fn token(data: &[u8]) {
    if let Ok(answer) = ocirepl::transport::auth::parse_token_answer(data) {
        assert!(answer.lifetime <= Duration::from_secs(24 * 3600));
        assert!(!answer.token.is_empty());
    }
}

/// A sync config, parsed and validated.
pub fn sync_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(raw) = ocirepl::sync::config::parse(Path::new("fuzz.yaml"), text)
    {
        let _ = ocirepl::sync::job::validate(Path::new("fuzz.yaml"), raw);
    }
}

/// An OCI layout's `index.json`.
pub fn layout_index(data: &[u8]) {
    if let Ok(entries) = ocirepl::store::layout::index_entries(data) {
        for e in entries {
            if let Some(t) = e.tag {
                assert!(
                    !t.chars().any(char::is_control),
                    "a tag with control characters passed"
                );
            }
        }
    }
}

/// An image archive (tar, compressed or not): opened, its images read,
/// every manifest and blob it names looked up. Never a panic, whatever
/// the bytes.
pub fn archive(data: &[u8]) {
    use ocirepl::store::Store;
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("fuzz.tar");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        let Ok(reader) = ocirepl::store::archive::ArchiveReader::open(&path) else {
            return;
        };
        let store = reader.scoped(None);
        let Ok(tags) = store.tags().await else { return };
        for t in tags.iter().take(16) {
            let r = ocirepl::reference::ManifestRef::Tag(t.clone());
            if let Ok(m) = store.manifest_get(&r).await {
                let _ = store.blob_head(&m.digest).await;
            }
        }
    });
}
