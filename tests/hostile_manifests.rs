//! Hostile manifests (RELIABILITY scenarios 32 to 37) from the scripted
//! fake: oversized, lying, malformed and ambiguous manifests, abused
//! descriptors, index graphs, broken schema1 and gzip bombs. Each is
//! refused with a clear message, and nothing is pushed for that image.

mod support;

use support::fake::{FakeRegistry, Rule};
use support::*;

const MIB: usize = 1024 * 1024;

fn d(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// A fake serving `app:v1` with these bytes and Content-Type.
fn serving(content_type: &str, body: &[u8]) -> FakeRegistry {
    let fake = FakeRegistry::start();
    fake.add_manifest("app", "v1", content_type, body);
    fake
}

/// Runs a copy to a fresh fake target and expects failure naming `needle`,
/// with no manifest pushed.
fn refused(src: &FakeRegistry, needle: &str, extra: &[&str]) -> String {
    let target = FakeRegistry::start();
    let (src_image, dst_image) = (src.image("app:v1"), target.image("app:v1"));
    let mut args = vec!["copy", src_image.as_str(), dst_image.as_str()];
    args.extend_from_slice(extra);
    let (code, _, err) = run(&args);
    assert_eq!(code, 1, "{needle}: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !target
            .log()
            .iter()
            .any(|(m, p, _)| m == "PUT" && p.contains("/manifests/")),
        "a manifest was pushed"
    );
    err
}

/// Scenario 32: manifests too large to hold, however they come.
#[test]
fn oversized_manifests_are_refused_before_buffering() {
    let big = format!(r#"{{"schemaVersion":2,"pad":"{}"}}"#, "x".repeat(5 * MIB));
    refused(
        &serving(image::OCI_MANIFEST, big.as_bytes()),
        "larger than 4194304",
        &[],
    );

    let fake = serving(image::OCI_MANIFEST, b"{}");
    fake.rule(Rule::map("GET", "/manifests/", |_, mut r| {
        r.body = vec![b' '; 100 * MIB];
        r.chunked = true;
        r
    }));
    fake.rule(Rule::map("HEAD", "/manifests/", |_, mut r| {
        r.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("docker-content-digest"));
        r
    }));
    refused(&fake, "larger than", &[]);

    // Content-Length says little, the body is more: only what was stated is read.
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (img, _) = w.image(&ImageSpec::new("linux/amd64", vec![Layer::random(700, 10)]));
    let fake = serving(image::OCI_MANIFEST, &img);
    fake.rule(Rule::map("GET", "/manifests/", |_, mut r| {
        r.content_length = Some(40);
        r
    }));
    refused(&fake, "manifest", &[]);

    // The cap is configurable.
    let ok = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[],"pad":"{}"}}"#,
        image::OCI_INDEX,
        "x".repeat(2 * MIB)
    );
    refused(
        &serving(image::OCI_INDEX, ok.as_bytes()),
        "larger than 1048576",
        &["--max-manifest-size", "1048576"],
    );
}

/// Scenario 34: abused descriptors are refused before any request for them.
#[test]
fn abused_descriptors_are_refused_before_any_request() {
    for (digest, size, needle) in [
        (
            "sha256:../../x".to_string(),
            "1".to_string(),
            "invalid digest",
        ),
        (d('A'), "1".to_string(), "invalid digest"),
        ("sha256:abc".to_string(), "1".to_string(), "invalid digest"),
        (
            "md5:d41d8cd98f00b204e9800998ecf8427e".to_string(),
            "1".to_string(),
            "unsupported digest algorithm",
        ),
        (
            format!("sha384:{}", "0".repeat(96)),
            "1".to_string(),
            "unsupported digest algorithm",
        ),
        (d('1'), "-5".to_string(), "invalid value"),
    ] {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":2}},"layers":[{{"mediaType":"{}","digest":"{digest}","size":{size}}}]}}"#,
            image::OCI_MANIFEST,
            image::OCI_CONFIG,
            d('c'),
            image::OCI_LAYER
        );
        let fake = serving(image::OCI_MANIFEST, body.as_bytes());
        refused(&fake, needle, &[]);
        assert!(
            !fake.log().iter().any(|(_, p, _)| p.contains("/blobs/")),
            "a blob was requested: {:?}",
            fake.log()
        );
    }
}

/// Scenario 34: a blob whose real size differs from its descriptor, and a
/// descriptor size of 2^62 (never allocated, never uploaded).
#[test]
fn sizes_that_lie_are_caught() {
    for stated in [5u64, 1 << 62] {
        let fake = FakeRegistry::start();
        let layer = fake.add_blob(b"0123456789");
        let config = fake.add_blob(b"{}");
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{config}","size":2}},"layers":[{{"mediaType":"{}","digest":"{layer}","size":{stated}}}]}}"#,
            image::OCI_MANIFEST,
            image::OCI_CONFIG,
            image::OCI_LAYER
        );
        fake.add_manifest("app", "v1", image::OCI_MANIFEST, body.as_bytes());
        refused(&fake, &layer, &[]);
    }
}

/// Scenario 35: malformed and ambiguous manifests; Content-Type parameters
/// are fine; an unknown artifact type is copied byte-exact.
#[test]
fn malformed_and_ambiguous_manifests() {
    let both = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{}","size":1}},"layers":[],"manifests":[]}}"#,
        d('1')
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (image::OCI_MANIFEST, "{not json".into(), "not valid JSON"),
        (
            image::OCI_MANIFEST,
            r#"{"schemaVersion":2,"config":{}} trailing"#.into(),
            "not valid JSON",
        ),
        (
            image::OCI_INDEX,
            r#"{"schemaVersion":2,"manifests":[],"manifests":[]}"#.into(),
            "duplicate field",
        ),
        (image::OCI_MANIFEST, both, "ambiguous"),
        (
            "application/vnd.docker.distribution.manifest.v2+json",
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[]}}"#,
                image::OCI_INDEX
            ),
            "mediaType",
        ),
    ];
    for (ct, body, needle) in cases {
        refused(&serving(ct, body.as_bytes()), needle, &[]);
    }

    // Parameters on the Content-Type are ignored.
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (img, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(710, 100)],
    ));
    w.tag(&[("v1", image::OCI_MANIFEST, &img, &digest)]);
    let fake = FakeRegistry::start();
    fake.load_layout(dir.path(), "app");
    fake.add_manifest(
        "app",
        "v1",
        &format!("{}; charset=utf-8", image::OCI_MANIFEST),
        &img,
    );
    let target = FakeRegistry::start();
    let (code, _, err) = run(&["copy", &fake.image("app:v1"), &target.image("app:v1")]);
    assert_eq!(code, 0, "{err}");
    assert!(target.has_manifest("app", &digest));

    // An unknown artifact media type travels byte-exact where the target takes it...
    let art = format!(
        r#"{{"mediaType":"application/vnd.example.thing+json","payload":"{}"}}"#,
        "z".repeat(10)
    );
    let fake = serving("application/vnd.example.thing+json", art.as_bytes());
    let target = FakeRegistry::start();
    let (code, _, err) = run(&["copy", &fake.image("app:v1"), &target.image("app:v1")]);
    assert_eq!(code, 0, "{err}");
    assert!(target.has_manifest("app", &sha256(art.as_bytes())));
    // ...and where it does not, the error names the type.
    let real = Registry::start(RegistryConfig::anonymous());
    let (code, _, err) = run(&["copy", &fake.image("app:v1"), &real.image("app:v1")]);
    assert_eq!(code, 1);
    eprintln!("refused unknown type: {err}");
    assert!(err.contains("application/vnd.example.thing+json"), "{err}");
}

/// Scenario 36: index graphs: too deep, huge but repetitive, and cycles.
#[test]
fn index_graphs_are_bounded() {
    // 100-deep nesting: each index holds the next.
    let fake = FakeRegistry::start();
    let mut child = serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": image::OCI_INDEX, "manifests": []}),
    )
    .unwrap();
    for _ in 0..100 {
        fake.add_manifest("app", &sha256(&child), image::OCI_INDEX, &child);
        child = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": image::OCI_INDEX,
            "manifests": [{"mediaType": image::OCI_INDEX, "digest": sha256(&child), "size": child.len()}]})).unwrap();
    }
    fake.add_manifest("app", "v1", image::OCI_INDEX, &child);
    refused(&fake, "nested deeper than 8", &[]);
    assert!(fake.log().len() < 20, "stopped early: {}", fake.log().len());

    // 25 000 entries (near the 4 MiB cap) naming one child: fetched once.
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (img, img_d) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(720, 100)],
    ));
    w.tag(&[]);
    let entry =
        serde_json::json!({"mediaType": image::OCI_MANIFEST, "digest": img_d, "size": img.len()});
    let wide = serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": image::OCI_INDEX,
        "manifests": vec![entry; 25_000]}),
    )
    .unwrap();
    assert!(wide.len() < 4 * MIB);
    let fake = FakeRegistry::start();
    fake.load_layout(dir.path(), "app");
    fake.add_manifest("app", "v1", image::OCI_INDEX, &wide);
    let target = FakeRegistry::start();
    let (code, _, err) = run(&["copy", &fake.image("app:v1"), &target.image("app:v1")]);
    assert_eq!(code, 0, "{err}");
    let child_gets = fake
        .log()
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with(&img_d))
        .count();
    assert_eq!(child_gets, 1);

    // A 2-cycle served by a liar: B's digest answers with A's bytes.
    let fake = FakeRegistry::start();
    let b_digest = d('b');
    let a = serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": image::OCI_INDEX,
        "manifests": [{"mediaType": image::OCI_INDEX, "digest": b_digest, "size": 200}]}),
    )
    .unwrap();
    fake.add_manifest("app", "v1", image::OCI_INDEX, &a);
    fake.add_manifest("app", &b_digest, image::OCI_INDEX, &a);
    refused(&fake, "digest mismatch", &[]);
}

fn schema1_doc(fs: &[String], history: &[String]) -> Vec<u8> {
    let fs: Vec<String> = fs
        .iter()
        .map(|b| format!(r#"{{"blobSum":"{b}"}}"#))
        .collect();
    let h: Vec<String> = history
        .iter()
        .map(|v| {
            format!(
                r#"{{"v1Compatibility":{}}}"#,
                serde_json::to_string(v).unwrap()
            )
        })
        .collect();
    format!(r#"{{"schemaVersion":1,"name":"app","tag":"v1","architecture":"amd64","fsLayers":[{}],"history":[{}]}}"#, fs.join(","), h.join(",")).into_bytes()
}

/// Scenario 37: broken schema1 structure, gzip bombs and corrupt gzip.
#[test]
fn schema1_structure_errors_bombs_and_corrupt_gzip() {
    const V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    let id = |c: char| c.to_string().repeat(64);
    let fake = FakeRegistry::start();
    let layer = fake.add_blob(&gzip(b"layer"));
    let v1 = |i: &str, p: Option<&str>| match p {
        Some(p) => format!(r#"{{"id":"{i}","parent":"{p}"}}"#),
        None => format!(r#"{{"id":"{i}"}}"#),
    };
    let cases = [
        (
            schema1_doc(&[layer.clone(), layer.clone()], &[v1(&id('a'), None)]),
            "fsLayers but 1 history",
        ),
        (
            schema1_doc(std::slice::from_ref(&layer), &[v1("bad-id", None)]),
            "is not 64",
        ),
        (
            schema1_doc(
                &[layer.clone(), layer.clone()],
                &[v1(&id('b'), Some(&id('c'))), v1(&id('a'), None)],
            ),
            "parent chain",
        ),
    ];
    for (doc, needle) in cases {
        fake.add_manifest("app", "v1", V1, &doc);
        refused(&fake, needle, &["--format", "v2s2"]);
    }

    // A gzip bomb: 256 members of 1 MiB of zeros each (one stream to a
    // multi-member decoder) in a few hundred KiB, capped at 16 MiB.
    let member = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![0u8; MIB]).unwrap();
        e.finish().unwrap()
    };
    let bomb = member.repeat(256);
    assert!(bomb.len() < 2 * MIB, "{}", bomb.len());
    let fake = FakeRegistry::start();
    let bomb_d = fake.add_blob(&bomb);
    fake.add_manifest(
        "app",
        "v1",
        V1,
        &schema1_doc(&[bomb_d], &[v1(&id('a'), None)]),
    );
    refused(
        &fake,
        "decompression bomb",
        &[
            "--format",
            "v2s2",
            "--max-uncompressed-layer",
            &(16 * MIB).to_string(),
        ],
    );

    let fake = FakeRegistry::start();
    let corrupt = fake.add_blob(b"\x1f\x8b\x08\x00this is not deflate at all");
    fake.add_manifest(
        "app",
        "v1",
        V1,
        &schema1_doc(&[corrupt], &[v1(&id('a'), None)]),
    );
    refused(&fake, "gzip", &["--format", "v2s2"]);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    image::gzip(data)
}

/// Scenario 39: a signed schema1 document whose JWS header makes the
/// digested payload the pinned document while the full bytes name the
/// attacker's layers. The pin must never be satisfied by other content.
#[test]
fn a_schema1_signature_cannot_swap_the_pinned_content() {
    use base64::Engine as _;
    const SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let fake = FakeRegistry::start();
    let honest = fake.add_blob(&gzip(b"the layer the user pinned"));
    let evil = fake.add_blob(&gzip(b"the attacker's layer"));
    let id = "a".repeat(64);
    let history = [format!(r#"{{"id":"{id}"}}"#)];
    let pinned = schema1_doc(std::slice::from_ref(&honest), &history);
    let pinned_digest = sha256(&pinned);
    let attacker = schema1_doc(std::slice::from_ref(&evil), &history);
    // formatLength 0 and formatTail = the pinned document: the payload the
    // digest covers is the pinned one; the rest of the bytes are not.
    let protected =
        b64(format!(r#"{{"formatLength":0,"formatTail":"{}"}}"#, b64(&pinned)).as_bytes());
    let forged = format!(
        r#"{},"signatures":[{{"header":{{}},"signature":"x","protected":"{protected}"}}]}}"#,
        String::from_utf8_lossy(&attacker[..attacker.len() - 1])
    );
    fake.add_manifest("app", &pinned_digest, SIGNED, forged.as_bytes());

    let target = FakeRegistry::start();
    let src = format!("{}/app@{pinned_digest}", fake.host());
    let dst = target.image("app:v1");
    for format in ["auto", "v2s2"] {
        let (code, _, err) = run(&["copy", &src, &dst, "--format", format]);
        assert_eq!(code, 1, "{format}: {err}");
        assert!(err.contains("signed schema1"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(
        !target
            .log()
            .iter()
            .any(|(m, _, _)| m == "PUT" || m == "POST"),
        "something was written: {:?}",
        target.log()
    );
    assert!(
        !fake.log().iter().any(|(_, p, _)| p.contains(&evil)),
        "the attacker's layer was read"
    );
}
