//! Referrers travel with their images (`--referrers`). Debian's registry 2.8
//! has no referrers API, so it shows the tag-schema and cosign fallbacks:
//! signatures laid out as cosign lays them out, an SBOM and an attestation
//! as OCI 1.1 artifacts with a `subject`, a signature of the SBOM, per-child
//! signatures under a platform filter, a referrer added later,
//! `--referrers-type`. A fake with the API (paginated, filtered) shows the
//! API path, and a lying one the bounds.

mod support;

use support::fake::FakeRegistry;
use support::*;

const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
const SIG_LAYER: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SBOM: &str = "application/spdx+json";
const INTOTO: &str = "application/vnd.in-toto+json";

/// Where blobs and manifests are put: a real registry (plain HTTP, as any
/// client would) or the fake.
enum At<'a> {
    Real(&'a Registry),
    Fake(&'a FakeRegistry),
}

impl At<'_> {
    fn blob(&self, repo: &str, data: &[u8]) -> String {
        match self {
            At::Fake(f) => f.add_blob(data),
            At::Real(r) => upload_blob(&r.host(), repo, data),
        }
    }

    fn manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> String {
        match self {
            At::Fake(f) => f.add_manifest(repo, reference, media_type, bytes),
            At::Real(r) => put_manifest_raw(&r.host(), repo, reference, media_type, bytes),
        }
        sha256(bytes)
    }
}

/// An OCI 1.1 artifact (`artifactType`, empty config, one layer) naming
/// `subject`; pushed by digest. Returns (digest, size).
fn artifact(
    at: &At,
    repo: &str,
    kind: &str,
    content: &[u8],
    subject: (&str, usize),
    note: &str,
) -> (String, usize) {
    let empty = at.blob(repo, b"{}");
    let layer = at.blob(repo, content);
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": image::OCI_MANIFEST,
        "artifactType": kind,
        "config": {"mediaType": EMPTY_CONFIG, "digest": empty, "size": 2},
        "layers": [{"mediaType": kind, "digest": layer, "size": content.len()}],
        "subject": {"mediaType": image::OCI_MANIFEST, "digest": subject.0, "size": subject.1},
        "annotations": {"org.example.note": note},
    })
    .to_string();
    let d = sha256(m.as_bytes());
    at.manifest(repo, &d, image::OCI_MANIFEST, m.as_bytes());
    (d, m.len())
}

/// A signature as cosign stores it without the API: an image manifest with
/// a simple-signing layer and the signature annotation, tagged
/// `sha256-<hex>.sig`.
fn cosign_signature(at: &At, repo: &str, subject: &str) -> String {
    let payload = format!(
        r#"{{"critical":{{"image":{{"docker-manifest-digest":"{subject}"}},"type":"cosign container image signature"}}}}"#
    );
    let config = br#"{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_d = at.blob(repo, config);
    let layer = at.blob(repo, payload.as_bytes());
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": image::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": config.len()},
        "layers": [{"mediaType": SIG_LAYER, "digest": layer, "size": payload.len(),
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQDfakesignature=="}}],
    })
    .to_string();
    let tag = format!("sha256-{}.sig", &subject["sha256:".len()..]);
    at.manifest(repo, &tag, image::OCI_MANIFEST, m.as_bytes())
}

/// The tag-schema index (`sha256-<hex>`) an OCI 1.1 client writes where
/// the registry has no referrers API.
fn fallback_index(at: &At, repo: &str, subject: &str, entries: &[(&str, usize, &str)]) {
    let list: Vec<serde_json::Value> = entries
        .iter()
        .map(|(d, size, kind)| serde_json::json!({"mediaType": image::OCI_MANIFEST, "digest": d, "size": size, "artifactType": kind}))
        .collect();
    let index =
        serde_json::json!({"schemaVersion": 2, "mediaType": image::OCI_INDEX, "manifests": list})
            .to_string();
    at.manifest(
        repo,
        &format!("sha256-{}", &subject["sha256:".len()..]),
        image::OCI_INDEX,
        index.as_bytes(),
    );
}

fn one_image(at: &At, repo: &str, tag: &str, seed_n: u64) -> (String, usize) {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(seed_n, 4096)],
    ));
    w.tag(&[(tag, image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
    match at {
        At::Real(r) => seed(dir.path(), tag, &r.image(&format!("{repo}:{tag}"))),
        At::Fake(f) => f.load_layout(dir.path(), repo),
    }
    (digest, bytes.len())
}

fn copy_json(args: &[&str]) -> serde_json::Value {
    let (code, out, err) = run(&[&["copy", "--output", "json"], args].concat());
    assert_eq!(code, 0, "{err}{out}");
    report(&out)
}

fn index_entries(image_ref: &str) -> Vec<String> {
    let out = skopeo_output(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{image_ref}"),
    ]);
    if !out.status.success() {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect()
}

fn exists(reg: &Registry, repo: &str, reference: &str) -> bool {
    skopeo_output(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}", reg.image(&format!("{repo}{reference}"))),
    ])
    .status
    .success()
}

#[test]
fn signatures_sboms_and_attestations_travel_through_the_fallbacks() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    let at = At::Real(&src);
    let (img, img_size) = one_image(&at, "app", "1", 10);
    let sig = cosign_signature(&at, "app", &img);
    let sbom = artifact(
        &at,
        "app",
        SBOM,
        b"{\"spdxVersion\":\"SPDX-2.3\"}",
        (&img, img_size),
        "sbom",
    );
    let att = artifact(
        &at,
        "app",
        INTOTO,
        b"{\"_type\":\"https://in-toto.io/Statement/v1\"}",
        (&img, img_size),
        "provenance",
    );
    fallback_index(
        &at,
        "app",
        &img,
        &[(&sbom.0, sbom.1, SBOM), (&att.0, att.1, INTOTO)],
    );
    // A signature of the SBOM: a referrer of a referrer.
    let sbom_sig = artifact(
        &at,
        "app",
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        b"sig",
        (&sbom.0, sbom.1),
        "sbom-signature",
    );
    fallback_index(
        &at,
        "app",
        &sbom.0,
        &[(
            &sbom_sig.0,
            sbom_sig.1,
            "application/vnd.dev.cosign.artifact.sig.v1+json",
        )],
    );
    // The target already lists a referrer it got elsewhere: it must stay.
    let (theirs, theirs_size) = artifact(
        &At::Real(&dst),
        "app",
        "application/x-theirs",
        b"x",
        (&img, img_size),
        "theirs",
    );
    fallback_index(
        &At::Real(&dst),
        "app",
        &img,
        &[(&theirs, theirs_size, "application/x-theirs")],
    );

    // inspect lists them, with where each was found.
    let (code, out, err) = run(&[
        "inspect",
        "--referrers",
        "--output",
        "json",
        &src.image("app:1"),
    ]);
    assert_eq!(code, 0, "{err}");
    let seen: serde_json::Value = serde_json::from_str(&out).unwrap();
    let kinds: Vec<&str> = seen["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["artifact_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            SBOM,
            INTOTO,
            "application/vnd.dev.cosign.artifact.sig.v1+json"
        ],
        "{out}"
    );
    let places: Vec<&str> = seen["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["found_in"].as_str().unwrap())
        .collect();
    assert_eq!(places[..2], ["referrers", "referrers"]);
    assert!(
        places[2].starts_with("tag sha256-") && places[2].ends_with(".sig"),
        "{out}"
    );

    let r = copy_json(&["--referrers", &src.image("app:1"), &dst.image("app:1")]);
    assert_eq!(r["referrers"]["copied"], 4, "{r}");
    assert!(exists(&dst, "app", &format!("@{sig}")));
    assert!(exists(&dst, "app", &format!(":sha256-{}.sig", &img[7..])));
    let listed = index_entries(&dst.image(&format!("app:sha256-{}", &img[7..])));
    for want in [&sbom.0, &att.0, &theirs] {
        assert!(
            listed.contains(want),
            "{want} not in the target's index: {listed:?}"
        );
    }
    assert_eq!(
        index_entries(&dst.image(&format!("app:sha256-{}", &sbom.0[7..]))),
        vec![sbom_sig.0.clone()]
    );

    // Unchanged: every referrer is found in place, nothing is written.
    let mark = dst.access_log().len();
    let r = copy_json(&["--referrers", &src.image("app:1"), &dst.image("app:1")]);
    assert_eq!(r["action"], "up-to-date");
    assert_eq!(r["referrers"]["present"], 4, "{r}");
    assert_eq!(r["referrers"]["copied"], 0, "{r}");
    let writes: Vec<_> = dst
        .requests_since(mark)
        .into_iter()
        .filter(|a| a.method != "GET" && a.method != "HEAD")
        .collect();
    assert!(writes.is_empty(), "{writes:?}");

    // A referrer added later travels on the next run, merged into the index.
    let vex = artifact(
        &at,
        "app",
        "application/vnd.openvex+json",
        b"{}",
        (&img, img_size),
        "vex",
    );
    fallback_index(
        &at,
        "app",
        &img,
        &[
            (&sbom.0, sbom.1, SBOM),
            (&att.0, att.1, INTOTO),
            (&vex.0, vex.1, "application/vnd.openvex+json"),
        ],
    );
    let r = copy_json(&["--referrers", &src.image("app:1"), &dst.image("app:1")]);
    assert_eq!(r["referrers"]["copied"], 1, "{r}");
    let listed = index_entries(&dst.image(&format!("app:sha256-{}", &img[7..])));
    assert_eq!(listed.len(), 4, "sbom, att, vex and theirs: {listed:?}");

    // --referrers-type keeps only those types.
    let only = Registry::start(RegistryConfig::anonymous());
    let r = copy_json(&[
        "--referrers",
        "--referrers-type",
        SBOM,
        &src.image("app:1"),
        &only.image("app:1"),
    ]);
    assert_eq!(r["referrers"]["copied"], 1, "{r}");
    assert!(exists(&only, "app", &format!("@{}", sbom.0)));
    assert!(!exists(&only, "app", &format!("@{}", att.0)));
    assert!(!exists(&only, "app", &format!(":sha256-{}.sig", &img[7..])));
}

#[test]
fn with_a_platform_filter_kept_children_bring_theirs_and_the_index_s_stay() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, index) = w.index(&three_platforms(500));
    w.tag(&[("1", image::OCI_INDEX, bytes.as_slice(), index.as_str())]);
    seed(dir.path(), "1", &src.image("multi:1"));
    let at = At::Real(&src);
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let children: Vec<(String, String)> = doc["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap().to_string(),
                m["platform"]["architecture"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (child, _) in &children {
        cosign_signature(&at, "multi", child);
    }
    cosign_signature(&at, "multi", &index);
    let r = copy_json(&[
        "--referrers",
        "--platform",
        "linux/amd64",
        &src.image("multi:1"),
        &dst.image("multi:1"),
    ]);
    assert_eq!(
        r["referrers"]["copied"], 1,
        "the amd64 child's signature: {r}"
    );
    assert_eq!(
        r["referrers"]["left_behind"], 1,
        "the index's signature: {r}"
    );
    let note = r["referrers"]["notes"][0].as_str().unwrap();
    assert!(
        note.contains(&index) && note.contains("platform filter"),
        "{note}"
    );
    for (child, arch) in &children {
        let there = exists(&dst, "multi", &format!(":sha256-{}.sig", &child[7..]));
        assert_eq!(there, arch == "amd64", "{arch}");
    }
}

#[test]
fn the_referrers_api_is_used_paginated_and_filtered() {
    let fake = FakeRegistry::start();
    fake.with_referrers_api(2);
    let at = At::Fake(&fake);
    let (img, size) = one_image(&at, "app", "1", 700);
    let mut want = Vec::new();
    for i in 0..5 {
        let kind = if i % 2 == 0 { SBOM } else { INTOTO };
        want.push((
            artifact(
                &at,
                "app",
                kind,
                format!("content {i}").as_bytes(),
                (&img, size),
                &format!("n{i}"),
            ),
            kind,
        ));
    }
    // Into a registry without the API: they arrive, and the tag-schema index lists them.
    let dst = Registry::start(RegistryConfig::anonymous());
    let r = copy_json(&["--referrers", &fake.image("app:1"), &dst.image("app:1")]);
    assert_eq!(r["referrers"]["copied"], 5, "{r}");
    assert_eq!(
        index_entries(&dst.image(&format!("app:sha256-{}", &img[7..]))).len(),
        5
    );
    let pages = fake
        .log()
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.contains(&format!("/referrers/{img}")))
        .count();
    assert_eq!(pages, 3, "5 referrers, 2 per page");

    // Filtered by the API itself.
    let only = Registry::start(RegistryConfig::anonymous());
    let r = copy_json(&[
        "--referrers",
        "--referrers-type",
        INTOTO,
        &fake.image("app:1"),
        &only.image("app:1"),
    ]);
    assert_eq!(r["referrers"]["copied"], 2, "{r}");
    assert!(fake.seen().iter().any(|s| {
        s.target
            .contains("artifactType=application%2Fvnd.in-toto%2Bjson")
    }));

    // Into a registry with the API: no tag-schema index is written.
    let target = FakeRegistry::start();
    target.with_referrers_api(10);
    let r = copy_json(&["--referrers", &fake.image("app:1"), &target.image("app:1")]);
    assert_eq!(r["referrers"]["copied"], 5, "{r}");
    assert!(!target.has_manifest("app", &format!("sha256-{}", &img[7..])));
}

#[test]
fn a_lying_referrers_answer_is_bounded_and_refused() {
    let fake = FakeRegistry::start();
    fake.with_referrers_api(2000);
    let at = At::Fake(&fake);
    let (img, size) = one_image(&at, "app", "1", 800);
    let (other, other_size) = one_image(&at, "app", "2", 810);
    // Listed for `img` (through the tag schema) but naming another subject.
    let liar = artifact(&at, "app", SBOM, b"lie", (&other, other_size), "liar");
    fallback_index(&at, "app", &img, &[(&liar.0, liar.1, SBOM)]);
    // A loop: a referrer of a referrer that lists the first one again.
    let a = artifact(&at, "app", INTOTO, b"a", (&img, size), "a");
    let b = artifact(&at, "app", INTOTO, b"b", (&a.0, a.1), "b");
    fallback_index(&at, "app", &b.0, &[(&a.0, a.1, INTOTO)]);
    let dst = Registry::start(RegistryConfig::anonymous());
    let r = copy_json(&["--referrers", &fake.image("app:1"), &dst.image("app:1")]);
    assert_eq!(r["referrers"]["copied"], 2, "a and b once each: {r}");
    assert_eq!(r["referrers"]["left_behind"], 1, "{r}");
    assert!(
        r["referrers"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("names"),
        "{r}"
    );
    assert!(!exists(&dst, "app", &format!("@{}", liar.0)));

    // A list of 1,500 referrers is refused.
    for i in 0..1500u32 {
        artifact(
            &at,
            "app",
            SBOM,
            &i.to_be_bytes(),
            (&other, other_size),
            "many",
        );
    }
    let (code, _, err) = run(&[
        "copy",
        "--referrers",
        &fake.image("app:2"),
        &dst.image("app:2"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("more than 1000"), "{err}");
}

#[test]
fn sync_jobs_carry_referrers_when_asked() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    let at = At::Real(&src);
    let (img, size) = one_image(&at, "app", "1", 900);
    let sbom = artifact(&at, "app", SBOM, b"{}", (&img, size), "sbom");
    fallback_index(&at, "app", &img, &[(&sbom.0, sbom.1, SBOM)]);
    cosign_signature(&at, "app", &img);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mirror.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: 1\ndefaults:\n  referrers: true\n  referrers_types: [\"{SBOM}\"]\njobs:\n  - name: app\n    source: {}/app\n    target: {}/app\n    tags: {{include: [\"1\"]}}\n",
            src.host(),
            dst.host()
        ),
    )
    .unwrap();
    let (code, out, err) = run(&["sync", "--output", "json", &cfg.display().to_string()]);
    assert_eq!(code, 0, "{err}{out}");
    assert!(out.contains("\"referrers\":{\"copied\":1"), "{out}");
    assert!(exists(&dst, "app", &format!("@{}", sbom.0)));
    assert!(
        !exists(&dst, "app", &format!(":sha256-{}.sig", &img[7..])),
        "the type filter applies"
    );
}
