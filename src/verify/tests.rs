//! The verifier against real signatures made by cosign for other projects'
//! tests (`tests/fixtures/verify/`, with their sources and licences): a
//! key-only signature, a keyed one with a Rekor SET, a keyless one (Fulcio
//! certificate, SCT, SET) under the public-good root as `sigstore-verify`
//! embeds it, a v0.3 bundle, and each turned down for the right reason.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/verify");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{path}")).unwrap()
}

fn legacy(dir: &str) -> Signature {
    let annotations: BTreeMap<String, String> =
        serde_json::from_str(&read(&format!("containers-image/{dir}/annotations.json"))).unwrap();
    Signature::Legacy {
        manifest: Digest::sha256(dir.as_bytes()),
        payload: Bytes::from(
            std::fs::read(format!("{FIXTURES}/containers-image/{dir}/payload.json")).unwrap(),
        ),
        annotations,
    }
}

fn manifest_digest(dir: &str) -> Digest {
    Digest::sha256(
        &std::fs::read(format!("{FIXTURES}/containers-image/{dir}/manifest.json")).unwrap(),
    )
}

fn key(name: &str) -> Key {
    Key::from_pem(name, &read(&format!("containers-image/{name}"))).unwrap()
}

fn exact(text: &str) -> Matcher {
    let want = text.to_string();
    Matcher {
        text: text.to_string(),
        test: Arc::new(move |s| s == want),
    }
}

fn public_good() -> Arc<Root> {
    Arc::new(Root::public_good().unwrap())
}

fn keys(names: &[&str], tlog: bool) -> Requirement {
    Requirement::new(vec![Policy::Keys {
        keys: names.iter().map(|n| key(n)).collect(),
        tlog,
        root: public_good(),
    }])
}

fn verified(v: &Verdict) -> bool {
    matches!(v, Verdict::Verified { .. })
}

fn why(v: &Verdict) -> String {
    match v {
        Verdict::Unverified { why } => why.clone(),
        other => panic!("verified: {other:?}"),
    }
}

#[test]
fn a_key_only_signature_passes_with_its_key_and_nothing_else() {
    let dir = "dir-img-cosign-valid";
    let image = manifest_digest(dir);
    let sig = legacy(dir);
    let v = check(
        &image,
        std::slice::from_ref(&sig),
        &keys(&["cosign.pub"], false),
    );
    assert!(verified(&v), "{v:?}");
    assert!(
        why(&check(
            &image,
            std::slice::from_ref(&sig),
            &keys(&["cosign2.pub"], false)
        ))
        .contains("not signed by these keys")
    );
    assert!(
        why(&check(
            &image,
            std::slice::from_ref(&sig),
            &keys(&["cosign.pub"], true)
        ))
        .contains("transparency log")
    );
    assert!(why(&check(&image, &[], &keys(&["cosign.pub"], false))).contains("no signature"));
}

#[test]
fn a_signature_beside_another_manifest_is_over_another_digest() {
    let dir = "dir-img-cosign-modified-manifest";
    let image = manifest_digest(dir);
    let v = check(&image, &[legacy(dir)], &keys(&["cosign.pub"], false));
    assert!(why(&v).contains("another digest"), "{v:?}");
}

#[test]
fn a_keyed_signature_with_a_rekor_set_is_checked_against_the_log() {
    let dir = "dir-img-cosign-key-rekor-valid";
    let image = manifest_digest(dir);
    let v = check(&image, &[legacy(dir)], &keys(&["cosign2.pub"], true));
    assert!(verified(&v), "{v:?}");
    // The SET is over the entry: another log key (a root without public-good
    // Rekor) cannot pass it.
    let empty = Arc::new(Root::from_json("empty", r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[],"certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[]}"#).unwrap());
    let req = Requirement::new(vec![Policy::Keys {
        keys: vec![key("cosign2.pub")],
        tlog: true,
        root: empty,
    }]);
    assert!(!verified(&check(&image, &[legacy(dir)], &req)));
}

#[test]
fn a_keyless_signature_passes_for_its_identity_and_issuer_only() {
    let dir = "dir-img-cosign-fulcio-rekor-valid";
    let image = manifest_digest(dir);
    let keyless = |issuer: &str, subject: &str| {
        Requirement::new(vec![Policy::Keyless {
            issuer: exact(issuer),
            subject: exact(subject),
            root: public_good(),
            sct: true,
        }])
    };
    let v = check(
        &image,
        &[legacy(dir)],
        &keyless("https://github.com/login/oauth", "mitr@redhat.com"),
    );
    match &v {
        Verdict::Verified { signer, .. } => assert!(signer.contains("mitr@redhat.com"), "{signer}"),
        other => panic!("{other:?}"),
    }
    let v = check(
        &image,
        &[legacy(dir)],
        &keyless("https://github.com/login/oauth", "someone@else"),
    );
    assert!(why(&v).contains("not \"someone@else\""), "{v:?}");
    let v = check(
        &image,
        &[legacy(dir)],
        &keyless("https://accounts.google.com", "mitr@redhat.com"),
    );
    assert!(why(&v).contains("issuer"), "{v:?}");
    // A key policy does not take a keyless signature.
    assert!(!verified(&check(
        &image,
        &[legacy(dir)],
        &keys(&["cosign2.pub"], true)
    )));
}

#[test]
fn a_v03_bundle_is_verified_and_an_attestation_is_not_a_signature() {
    let json = Bytes::from(read("cosign/oci-attestation.sigstore.json"));
    let image: Digest = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
        .parse()
        .unwrap();
    let root = Arc::new(
        Root::from_json(
            "trusted_root_pgi.json",
            &read("cosign/trusted_root_pgi.json"),
        )
        .unwrap(),
    );
    let sig = Signature::Bundle {
        manifest: Digest::sha256(b"referrer"),
        json,
    };
    let mut req = Requirement::new(vec![Policy::Keyless {
        issuer: exact("https://github.com/login/oauth"),
        subject: exact("cody@soyland.com"),
        root,
        sct: true,
    }]);
    let v = check(&image, std::slice::from_ref(&sig), &req);
    assert!(
        why(&v).contains("an attestation"),
        "by default only signatures count: {v:?}"
    );
    req.predicate = "https://cosign.sigstore.dev/attestation/v1".into();
    let v = check(&image, std::slice::from_ref(&sig), &req);
    assert!(verified(&v), "{v:?}");
    let other: Digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
        .parse()
        .unwrap();
    assert!(
        !verified(&check(&other, std::slice::from_ref(&sig), &req)),
        "another digest"
    );
}

#[test]
fn payloads_are_read_strictly() {
    let dir = "dir-img-cosign-valid";
    let image = manifest_digest(dir);
    let Signature::Legacy {
        annotations,
        payload,
        manifest,
    } = legacy(dir)
    else {
        unreachable!()
    };
    let mut trailing = payload.to_vec();
    trailing.extend_from_slice(b" {}");
    let dup = String::from_utf8(payload.to_vec()).unwrap().replacen(
        "{\"critical\":",
        "{\"critical\":{},\"critical\":",
        1,
    );
    for bad in [trailing, dup.into_bytes(), b"[]".to_vec()] {
        let sig = Signature::Legacy {
            manifest: manifest.clone(),
            payload: Bytes::from(bad),
            annotations: annotations.clone(),
        };
        let v = check(&image, &[sig], &keys(&["cosign.pub"], false));
        assert!(why(&v).contains("payload"), "{v:?}");
    }
}
