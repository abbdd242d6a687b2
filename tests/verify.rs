//! Verify before mirror, against a real registry: images signed the way
//! cosign signs them (keys and a test CA made here,
//! `tests/support/cosign.rs`), and each way an image must be kept out
//! (unsigned, another key, a signature over another digest, another
//! identity, another root), in `copy` and in `sync`. Nothing unverified
//! reaches the target: no tag, no blob, no upload started. (Debian's
//! skopeo is built with sigstore disabled, so it cannot be the second
//! verifier here; signatures cosign itself made are checked in
//! `src/verify/tests.rs` and, through an OCI layout, below.)

mod support;

use support::cosign::{self, KeyPair};
use support::*;

/// Writes that reached a registry since `mark`.
fn writes_since(reg: &Registry, mark: usize) -> Vec<String> {
    reg.requests_since(mark)
        .into_iter()
        .filter(|a| matches!(a.method.as_str(), "POST" | "PUT" | "PATCH"))
        .map(|a| format!("{} {}", a.method, a.path))
        .collect()
}

/// The four tags every test starts from: `good` signed by `acme`, `other`
/// signed by another key, `none` unsigned, `moved` with a signature by
/// `acme` whose payload names `good`'s digest.
struct Signed {
    src: Registry,
    dir: tempfile::TempDir,
    acme_pub: std::path::PathBuf,
    digests: std::collections::BTreeMap<String, String>,
    good_signature: String,
}

fn signed_source() -> Signed {
    let src = Registry::start(RegistryConfig::anonymous());
    let host = src.host();
    let named = format!("{host}/app");
    let seeded = seed_images(&src, "app", &["good", "other", "none", "moved"], 9100, 4096);
    let digests: std::collections::BTreeMap<String, String> = seeded.into_iter().collect();
    let acme = KeyPair::generate();
    let stranger = KeyPair::generate();
    let good_signature = cosign::push_sig(
        &host,
        "app",
        &digests["good"],
        &[cosign::Layer::keyed(&acme, &named, &digests["good"])],
    );
    cosign::push_sig(
        &host,
        "app",
        &digests["other"],
        &[cosign::Layer::keyed(&stranger, &named, &digests["other"])],
    );
    // A valid signature by the right key, over another image, attached
    // where `moved`'s signatures go.
    cosign::push_sig(
        &host,
        "app",
        &digests["moved"],
        &[cosign::Layer::keyed(&acme, &named, &digests["good"])],
    );
    let dir = tempfile::tempdir().unwrap();
    let acme_pub = acme.write_public(dir.path(), "acme.pub");
    Signed {
        src,
        dir,
        acme_pub,
        digests,
        good_signature,
    }
}

#[test]
fn copy_lets_in_only_what_the_key_signed_and_writes_nothing_for_the_rest() {
    let s = signed_source();
    let dst = Registry::start(RegistryConfig::anonymous());
    let key = s.acme_pub.display().to_string();

    let (code, out, err) = run(&[
        "copy",
        "--output",
        "json",
        "--verify-key",
        &key,
        &s.src.image("app:good"),
        &dst.image("app:good"),
    ]);
    assert_eq!(code, 0, "{err}");
    let r = report(&out);
    assert_eq!(r["action"], "copied");
    assert_eq!(r["target_digest"], s.digests["good"]);
    assert!(
        r["verification"]["signer"]
            .as_str()
            .unwrap()
            .ends_with("acme.pub"),
        "{r}"
    );
    assert_eq!(r["verification"]["signature"], s.good_signature);
    assert_eq!(remote_digest(&dst.image("app:good")), s.digests["good"]);

    for (tag, why) in [
        ("other", "not signed by these keys"),
        ("none", "no signature"),
        ("moved", "over another digest"),
    ] {
        let mark = dst.access_log().len();
        let (code, out, err) = run(&[
            "copy",
            "--output",
            "json",
            "--verify-key",
            &key,
            &s.src.image(&format!("app:{tag}")),
            &dst.image(&format!("app:{tag}")),
        ]);
        assert_eq!(code, 1, "{tag}: {err}");
        let r = report(&out);
        assert_eq!(r["action"], "unverified", "{tag}: {r}");
        assert!(r["reason"].as_str().unwrap().contains(why), "{tag}: {r}");
        assert!(
            r["reason"].as_str().unwrap().contains(&s.digests[tag]),
            "{r}"
        );
        assert!(err.contains("unverified"), "{err}");
        assert_eq!(writes_since(&dst, mark), Vec::<String>::new(), "{tag}");
        assert!(!tags_of(&dst.image("app")).contains(&tag.to_string()));
    }

    // Told to skip, an unverified image is still not copied, and the run
    // does not fail.
    let (code, out, err) = run(&[
        "copy",
        "--output",
        "json",
        "--verify-key",
        &key,
        "--on-unverified",
        "skip",
        &s.src.image("app:none"),
        &dst.image("app:none"),
    ]);
    assert_eq!(code, 0, "{err}");
    let r = report(&out);
    assert_eq!(r["action"], "unverified");
    assert!(r["error"].is_null(), "{r}");
    assert_eq!(tags_of(&dst.image("app")), vec!["good".to_string()]);

    // With the signatures copied along, the mirror can itself be a
    // verified source; a whole image hung under the cosign `.sbom` tag of
    // the signed image is not what the signature covers, and stays.
    let sbom_tag = cosign::sig_tag(&s.digests["good"]).replace(".sig", ".sbom");
    let unsigned = raw_manifest(&s.src.image("app:none"));
    put_manifest_raw(
        &s.src.host(),
        "app",
        &sbom_tag,
        image::OCI_MANIFEST,
        &unsigned,
    );
    let (code, _, err) = run(&[
        "copy",
        "--referrers",
        "--verify-key",
        &key,
        &s.src.image("app:good"),
        &dst.image("app:good"),
    ]);
    assert_eq!(code, 0, "{err}");
    let mirrored = tags_of(&dst.image("app"));
    assert!(
        mirrored.contains(&cosign::sig_tag(&s.digests["good"])),
        "{mirrored:?}"
    );
    assert!(!mirrored.contains(&sbom_tag), "{mirrored:?}");
    let third = Registry::start(RegistryConfig::anonymous());
    let (code, out, err) = run(&[
        "copy",
        "--output",
        "json",
        "--verify-key",
        &key,
        &dst.image("app:good"),
        &third.image("app:good"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report(&out)["verification"]["signature"], s.good_signature);
}

#[test]
fn plan_shows_each_verdict_and_bad_key_files_stop_before_any_request() {
    let s = signed_source();
    let dst = Registry::start(RegistryConfig::anonymous());
    let key = s.acme_pub.display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: signed\n    source: {}\n    target: {}\n    verify:\n      - keys: [{key}]\n",
            s.src.image("app"),
            dst.image("app")
        ),
    );
    let mark = dst.access_log().len();
    let (code, out, err) = sync(&[&cfg.display().to_string(), "--plan", "--output", "json"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(writes_since(&dst, mark), Vec::<String>::new());
    let verdicts: std::collections::BTreeMap<String, String> = reports(&out)
        .iter()
        .map(|r| {
            let tag = r["source"]
                .as_str()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .to_string();
            (tag, r["action"].as_str().unwrap().to_string())
        })
        .collect();
    // cosign's .sig tags are signatures, not images to judge.
    assert_eq!(verdicts.len(), 4, "{out}");
    assert_eq!(verdicts["good"], "copy", "{out}");
    for t in ["other", "none", "moved"] {
        assert_eq!(verdicts[t], "unverified", "{t}: {out}");
    }

    // A key file that is not a key: a usage error naming it, no request.
    let bad = s.dir.path().join("not-a-key.pub");
    std::fs::write(&bad, "hello").unwrap();
    let mark = s.src.access_log().len();
    let (code, _, err) = run(&[
        "copy",
        "--verify-key",
        &bad.display().to_string(),
        &s.src.image("app:good"),
        &dst.image("app:good"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not-a-key.pub"), "{err}");
    assert!(s.src.requests_since(mark).is_empty());
}

#[test]
fn a_sync_job_mirrors_only_signed_tags_and_an_unchanged_rerun_asks_for_no_signature() {
    let s = signed_source();
    let dst = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let write = |on: &str, key: &str| {
        config(
            dir.path(),
            &format!(
                "version: 1\njobs:\n  - name: signed\n    source: {}\n    target: {}\n    tags:\n      include: [\"good\", \"other\", \"none\", \"moved\"]\n    verify:\n      - keys: [{key}]\n    on_unverified: {on}\n",
                s.src.image("app"),
                dst.image("app")
            ),
        )
    };
    let key = s.acme_pub.display().to_string();
    let cfg = write("fail", &key);
    let cfg_s = cfg.display().to_string();
    let (code, out, err) = sync(&[&cfg_s, "--output", "json"]);
    assert_eq!(code, 1, "{err}");
    let rs = reports(&out);
    let action = |t: &str| {
        rs.iter()
            .find(|r| r["source"].as_str().unwrap().ends_with(&format!(":{t}")))
            .map(|r| r["action"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(action("good"), "copied");
    for t in ["other", "none", "moved"] {
        assert_eq!(action(t), "unverified");
    }
    assert_eq!(tags_of(&dst.image("app")), vec!["good".to_string()]);

    // Skip: the same verdicts, exit 0.
    let cfg = write("skip", &key);
    let (code, _, err) = sync(&[&cfg.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("3 unverified"), "{err}");

    // An unchanged re-run of the signed tag alone: one HEAD per side, no
    // signature fetched.
    let only_good = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: signed\n    source: {}\n    target: {}\n    tags:\n      include: [\"good\"]\n    verify:\n      - keys: [{key}]\n",
            s.src.image("app"),
            dst.image("app")
        ),
    );
    let mark = s.src.access_log().len();
    let (code, _, err) = sync(&[&only_good.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let asked: Vec<String> = s
        .src
        .requests_since(mark)
        .into_iter()
        .map(|a| format!("{} {}", a.method, a.path))
        .collect();
    assert!(
        asked
            .iter()
            .all(|a| !a.contains(".sig") && !a.contains("/blobs/")),
        "{asked:?}"
    );
    assert_eq!(
        asked.iter().filter(|a| a.starts_with("HEAD")).count(),
        1,
        "{asked:?}"
    );

    // A key file that cannot be read is found by --check, with its line.
    let broken = write("fail", "/nonexistent/acme.pub");
    let (code, _, err) = sync(&[&broken.display().to_string(), "--check"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("mirror.yaml:") && err.contains("/nonexistent/acme.pub"),
        "{err}"
    );

    // Settings of a verification nobody asked for are a mistake too.
    let orphan = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: signed\n    source: {}\n    target: {}\n    on_unverified: skip\n",
            s.src.image("app"),
            dst.image("app")
        ),
    );
    let (code, _, err) = sync(&[&orphan.display().to_string(), "--check"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("on_unverified without verify"), "{err}");
}

#[test]
fn keyless_signatures_pass_for_the_right_identity_from_the_right_root_only() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    let host = src.host();
    let seeded = seed_images(
        &src,
        "app",
        &["release", "intruder", "unlogged", "untimed"],
        9300,
        4096,
    );
    let sigstore = cosign::TestSigstore::new("acme");
    let elsewhere = cosign::TestSigstore::new("elsewhere");
    let issuer = "https://issuer.acme.test";
    let release = sigstore.identity("release@acme.test", issuer);
    let named = format!("{host}/app");
    cosign::push_sig(
        &host,
        "app",
        &seeded[0].1,
        &[cosign::Layer::keyless(
            &sigstore,
            &release,
            &named,
            &seeded[0].1,
        )],
    );
    // Same identity and issuer, from a CA nobody trusts here (logged in
    // the trusted log), and from the trusted CA but in another log.
    let forged = elsewhere.identity("release@acme.test", issuer);
    cosign::push_sig(
        &host,
        "app",
        &seeded[1].1,
        &[cosign::Layer::keyless(
            &sigstore,
            &forged,
            &named,
            &seeded[1].1,
        )],
    );
    cosign::push_sig(
        &host,
        "app",
        &seeded[2].1,
        &[cosign::Layer::keyless(
            &elsewhere,
            &release,
            &named,
            &seeded[2].1,
        )],
    );
    // A certificate long expired, with nothing that proves it was valid
    // when it signed (no log entry).
    let mut untimed = cosign::Layer::keyless(&sigstore, &release, &named, &seeded[3].1);
    untimed.annotations.remove("dev.sigstore.cosign/bundle");
    cosign::push_sig(&host, "app", &seeded[3].1, &[untimed]);
    let dir = tempfile::tempdir().unwrap();
    let root = sigstore.write_trusted_root(&dir.path().join("trusted_root.json"));
    let root = root.display().to_string();
    let copy = |tag: &str, subject: &str, to: &str| {
        run(&[
            "copy",
            "--output",
            "json",
            "--verify-issuer",
            issuer,
            "--verify-subject",
            subject,
            "--trusted-root",
            &root,
            "--insecure-ignore-sct",
            &src.image(&format!("app:{tag}")),
            &dst.image(&format!("app:{to}")),
        ])
    };
    let (code, out, err) = copy("release", r"regex:^release@acme\.test$", "release");
    assert_eq!(code, 0, "{err}");
    let r = report(&out);
    assert_eq!(r["action"], "copied");
    assert_eq!(
        r["verification"]["signer"],
        format!("release@acme.test (issuer {issuer})")
    );

    let (code, out, _) = copy("release", "someone-else@acme.test", "other");
    assert_eq!(code, 1);
    let r = report(&out);
    assert_eq!(r["action"], "unverified");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("not \"someone-else@acme.test\""),
        "{r}"
    );

    let (code, out, _) = copy("intruder", "release@acme.test", "intruder");
    assert_eq!(code, 1);
    let r = report(&out);
    assert_eq!(r["action"], "unverified");
    let why = r["reason"].as_str().unwrap().to_lowercase();
    assert!(why.contains("certificate") || why.contains("chain"), "{r}");
    let (code, out, _) = copy("unlogged", "release@acme.test", "unlogged");
    assert_eq!(code, 1);
    let r = report(&out);
    assert!(r["reason"].as_str().unwrap().contains("No log key"), "{r}");
    let (code, out, _) = copy("untimed", "release@acme.test", "untimed");
    assert_eq!(code, 1);
    let r = report(&out);
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("no proof of when it was signed"),
        "{r}"
    );
    assert_eq!(tags_of(&dst.image("app")), vec!["release".to_string()]);

    // Without --insecure-ignore-sct, a certificate with no SCT is refused.
    let (code, out, _) = run(&[
        "copy",
        "--output",
        "json",
        "--verify-issuer",
        issuer,
        "--verify-subject",
        "release@acme.test",
        "--trusted-root",
        &root,
        &src.image("app:release"),
        &dst.image("app:again"),
    ]);
    assert_eq!(code, 1);
    let r = report(&out);
    assert_eq!(r["action"], "unverified");
    assert!(
        r["reason"].as_str().unwrap().to_lowercase().contains("sct"),
        "{r}"
    );

    // The same policy in a sync job.
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: keyless\n    source: {}\n    target: {}\n    verify:\n      - keyless:\n          issuer: {issuer}\n          subject: \"regex:^release@acme\\\\.test$\"\n        trusted_root: {root}\n        sct: false\n",
            src.image("app"),
            dst.image("mirror")
        ),
    );
    let (code, _, err) = sync(&[&cfg.display().to_string()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(tags_of(&dst.image("mirror")), vec!["release".to_string()]);
}

#[test]
fn cosign_v3_bundles_count_as_signatures_and_attestations_do_not() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    let host = src.host();
    let seeded = seed_images(&src, "app", &["signed", "attested"], 9400, 4096);
    let key = KeyPair::generate();
    let size = |tag: &str| raw_manifest(&src.image(&format!("app:{tag}"))).len();
    let signed = (seeded[0].1.as_str(), size("signed"));
    let referrer = cosign::push_bundle(
        &host,
        "app",
        signed,
        &cosign::bundle(&key, signed.0, "https://sigstore.dev/cosign/sign/v1"),
    );
    let attested = (seeded[1].1.as_str(), size("attested"));
    cosign::push_bundle(
        &host,
        "app",
        attested,
        &cosign::bundle(&key, attested.0, "https://slsa.dev/provenance/v1"),
    );
    let dir = tempfile::tempdir().unwrap();
    let pem = key
        .write_public(dir.path(), "release.pub")
        .display()
        .to_string();
    let copy = |tag: &str| {
        run(&[
            "copy",
            "--output",
            "json",
            "--verify-key",
            &pem,
            &src.image(&format!("app:{tag}")),
            &dst.image(&format!("app:{tag}")),
        ])
    };
    let (code, out, err) = copy("signed");
    assert_eq!(code, 0, "{err}");
    assert_eq!(report(&out)["verification"]["signature"], referrer);
    let (code, out, _) = copy("attested");
    assert_eq!(code, 1);
    let r = report(&out);
    assert_eq!(r["action"], "unverified");
    assert!(
        r["reason"].as_str().unwrap().contains("an attestation"),
        "{r}"
    );
}

#[test]
fn a_filtered_copy_is_covered_by_the_index_signature_unless_children_must_be_signed() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    let host = src.host();
    let layout = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(layout.path());
    let (bytes, index) = w.index(&three_platforms(9500));
    w.tag(&[("1.0", image::OCI_INDEX, bytes.as_slice(), index.as_str())]);
    seed(layout.path(), "1.0", &src.image("multi:1.0"));
    let children: Vec<(String, String)> = serde_json::from_slice::<serde_json::Value>(&bytes)
        .unwrap()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            (
                format!(
                    "{}/{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                ),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let key = KeyPair::generate();
    let named = format!("{host}/multi");
    cosign::push_sig(
        &host,
        "multi",
        &index,
        &[cosign::Layer::keyed(&key, &named, &index)],
    );
    let dir = tempfile::tempdir().unwrap();
    let pem = key.write_public(dir.path(), "k.pub").display().to_string();
    let copy = |extra: &[&str], to: &str| {
        let mut args = vec![
            "copy",
            "--output",
            "json",
            "--verify-key",
            &pem,
            "--platform",
            "linux/amd64",
        ];
        args.extend_from_slice(extra);
        let src_image = src.image("multi:1.0");
        let dst_image = dst.image(to);
        let all: Vec<&str> = args
            .into_iter()
            .chain([src_image.as_str(), dst_image.as_str()])
            .collect();
        run(&all)
    };
    let (code, out, err) = copy(&[], "multi:filtered");
    assert_eq!(code, 0, "{err}");
    assert_eq!(report(&out)["action"], "copied");

    let (code, out, _) = copy(&["--verify-children"], "multi:each");
    assert_eq!(code, 1);
    let r = report(&out);
    let amd64 = &children.iter().find(|(p, _)| p == "linux/amd64").unwrap().1;
    assert!(
        r["reason"].as_str().unwrap().contains(amd64.as_str()),
        "{r}"
    );
    assert!(!tags_of(&dst.image("multi")).contains(&"each".to_string()));

    cosign::push_sig(
        &host,
        "multi",
        amd64,
        &[cosign::Layer::keyed(&key, &named, amd64)],
    );
    let (code, out, err) = copy(&["--verify-children"], "multi:each");
    assert_eq!(code, 0, "{err}");
    assert_eq!(report(&out)["verification"]["children_verified"], 1);
}

/// The containers/image test vectors (real cosign signatures) in an OCI
/// layout beside the manifest they sign: the gate passes with the right
/// key (the copy then stops at the image's blobs, which the vectors do
/// not include), and not with another key or beside another manifest.
#[test]
fn signatures_cosign_made_pass_the_gate_through_an_oci_layout() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/verify/containers-image");
    let dst = Registry::start(RegistryConfig::anonymous());
    let layout_for = |dir: &str| {
        let layout = tempfile::tempdir().unwrap();
        let w = LayoutWriter::new(layout.path());
        let manifest = std::fs::read(fixtures.join(dir).join("manifest.json")).unwrap();
        let media_type =
            serde_json::from_slice::<serde_json::Value>(&manifest).unwrap()["mediaType"]
                .as_str()
                .unwrap()
                .to_string();
        let digest = w.blob(&manifest);
        let payload = std::fs::read(fixtures.join(dir).join("payload.json")).unwrap();
        let annotations: serde_json::Value = serde_json::from_slice(
            &std::fs::read(fixtures.join(dir).join("annotations.json")).unwrap(),
        )
        .unwrap();
        let payload_d = w.blob(&payload);
        let config = w.blob(b"{}");
        let (sig, sig_d) = w.json(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": image::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": config},
            "layers": [{"mediaType": cosign::SIMPLE_SIGNING, "size": payload.len(), "digest": payload_d, "annotations": annotations}],
        }));
        let sig_tag = cosign::sig_tag(&digest);
        w.tag(&[
            (
                "signed",
                media_type.as_str(),
                manifest.as_slice(),
                digest.as_str(),
            ),
            (
                sig_tag.as_str(),
                image::OCI_MANIFEST,
                sig.as_slice(),
                sig_d.as_str(),
            ),
        ]);
        layout
    };
    let gate = |dir: &str, key: &str| {
        let layout = layout_for(dir);
        let (_, out, _) = run(&[
            "copy",
            "--output",
            "json",
            "--verify-key",
            &fixtures.join(key).display().to_string(),
            &format!("oci:{}:signed", layout.path().display()),
            &dst.image("vector:signed"),
        ]);
        report(&out)
    };
    let passed = gate("dir-img-cosign-valid", "cosign.pub");
    assert_eq!(passed["action"], "failed", "{passed}");
    assert!(
        passed["error"].as_str().unwrap().contains("blob"),
        "{passed}"
    );
    let other_key = gate("dir-img-cosign-valid", "cosign2.pub");
    assert_eq!(other_key["action"], "unverified", "{other_key}");
    let modified = gate("dir-img-cosign-modified-manifest", "cosign.pub");
    assert_eq!(modified["action"], "unverified", "{modified}");
    assert!(
        modified["reason"]
            .as_str()
            .unwrap()
            .contains("another digest"),
        "{modified}"
    );
}

/// A lying source (a fake: no real registry serves these on demand): a
/// signature layer that claims 100 MiB, ten thousand listed signatures, a
/// referrer that is the image itself. Each is a quick `unverified` naming
/// the image, never a pass, never a large read.
#[test]
fn hostile_signatures_are_bounded_verdicts() {
    use support::fake::FakeRegistry;
    let fake = FakeRegistry::start();
    let dst = Registry::start(RegistryConfig::anonymous());
    let load = |tag: &str, seed_n: u64| {
        let dir = tempfile::tempdir().unwrap();
        let w = LayoutWriter::new(dir.path());
        let (bytes, digest) = w.image(&ImageSpec::new(
            "linux/amd64",
            vec![Layer::random(seed_n, 2048)],
        ));
        w.tag(&[(tag, image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
        fake.load_layout(dir.path(), "app");
        (digest, bytes.len())
    };
    let key = KeyPair::generate();
    let (huge, _) = load("huge", 9600);
    let absent = sha256(b"never served");
    let sig = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": image::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": fake.add_blob(b"{}")},
        "layers": [{"mediaType": cosign::SIMPLE_SIGNING, "size": 100u64 << 20, "digest": absent,
                    "annotations": {cosign::SIGNATURE: key.sign(b"x")}}],
    })
    .to_string();
    fake.add_manifest(
        "app",
        &cosign::sig_tag(&huge),
        image::OCI_MANIFEST,
        sig.as_bytes(),
    );

    let (many, _) = load("many", 9601);
    let entries: Vec<serde_json::Value> = (0..10_000u32)
        .map(|i| {
            serde_json::json!({"mediaType": image::OCI_MANIFEST, "digest": sha256(&i.to_be_bytes()),
                                     "size": 100, "artifactType": cosign::BUNDLE_V03})
        })
        .collect();
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": image::OCI_INDEX, "manifests": entries}).to_string();
    fake.add_manifest(
        "app",
        &format!("sha256-{}", &many[7..]),
        image::OCI_INDEX,
        index.as_bytes(),
    );

    let (itself, size) = load("itself", 9602);
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": image::OCI_INDEX, "manifests": [
        {"mediaType": image::OCI_MANIFEST, "digest": itself, "size": size, "artifactType": cosign::BUNDLE_V03}]})
    .to_string();
    fake.add_manifest(
        "app",
        &format!("sha256-{}", &itself[7..]),
        image::OCI_INDEX,
        index.as_bytes(),
    );

    // Seventy signature referrers, none by the key: judged one at a time,
    // the first 64 examined, the rest never read.
    let (junk, junk_size) = load("junk", 9603);
    let stranger = KeyPair::generate();
    let empty = fake.add_blob(b"{}");
    let mut listed = Vec::new();
    for i in 0..70u32 {
        let bundle = cosign::bundle(&stranger, &junk, "https://sigstore.dev/cosign/sign/v1");
        let mut bundle = bundle;
        bundle.extend_from_slice(format!("{:width$}", "", width = i as usize).as_bytes());
        let layer = fake.add_blob(&bundle);
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": image::OCI_MANIFEST, "artifactType": cosign::BUNDLE_V03,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": empty},
            "layers": [{"mediaType": cosign::BUNDLE_V03, "size": bundle.len(), "digest": layer}],
            "subject": {"mediaType": image::OCI_MANIFEST, "size": junk_size, "digest": junk},
        })
        .to_string();
        let d = sha256(m.as_bytes());
        fake.add_manifest("app", &d, image::OCI_MANIFEST, m.as_bytes());
        listed.push(serde_json::json!({"mediaType": image::OCI_MANIFEST, "digest": d, "size": m.len(), "artifactType": cosign::BUNDLE_V03}));
    }
    let index =
        serde_json::json!({"schemaVersion": 2, "mediaType": image::OCI_INDEX, "manifests": listed})
            .to_string();
    fake.add_manifest(
        "app",
        &format!("sha256-{}", &junk[7..]),
        image::OCI_INDEX,
        index.as_bytes(),
    );

    let dir = tempfile::tempdir().unwrap();
    let pem = key.write_public(dir.path(), "k.pub").display().to_string();
    for (tag, digest, why) in [
        ("huge", &huge, "more than the 1048576 read"),
        ("many", &many, "more than"),
        ("itself", &itself, "names no subject"),
        ("junk", &junk, "the first 64 signatures were examined"),
    ] {
        let (code, out, err) = run(&[
            "copy",
            "--output",
            "json",
            "--verify-key",
            &pem,
            &fake.image(&format!("app:{tag}")),
            &dst.image(&format!("app:{tag}")),
        ]);
        assert_eq!(code, 1, "{tag}: {err}");
        let r = report(&out);
        assert_eq!(r["action"], "unverified", "{tag}: {r}");
        let reason = r["reason"].as_str().unwrap();
        assert!(
            reason.contains(why) && reason.contains(digest.as_str()),
            "{tag}: {r}"
        );
    }
    assert!(
        fake.log()
            .iter()
            .all(|(_, path, _)| !path.contains(&absent)),
        "the 100 MiB layer was asked for"
    );
    assert!(tags_of(&dst.image("app")).is_empty());
}

/// A tag that moves while ocirepl works (a FAKE source answering the tag
/// with one image, then another): the digest judged is the digest pushed,
/// from bytes read once; the other image is never pushed unverified.
#[test]
fn a_tag_that_moves_during_the_copy_never_lets_the_other_image_in() {
    use support::fake::{FakeRegistry, Reply, Rule};
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate();
    let pem = key.write_public(dir.path(), "k.pub").display().to_string();
    for (first, later) in [("signed", "unsigned"), ("unsigned", "signed")] {
        let fake = FakeRegistry::start();
        let dst = Registry::start(RegistryConfig::anonymous());
        let mut images = std::collections::BTreeMap::new();
        for (name, seed_n) in [("signed", 9700u64), ("unsigned", 9701)] {
            let layout = tempfile::tempdir().unwrap();
            let w = LayoutWriter::new(layout.path());
            let (bytes, digest) = w.image(&ImageSpec::new(
                "linux/amd64",
                vec![Layer::random(seed_n, 2048)],
            ));
            w.tag(&[(name, image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
            fake.load_layout(layout.path(), "app");
            images.insert(name, (bytes, digest));
        }
        let signed = &images["signed"].1;
        let layer = cosign::Layer::keyed(&key, &fake.image("app"), signed);
        let payload = fake.add_blob(&layer.payload);
        let sig = serde_json::json!({
            "schemaVersion": 2, "mediaType": image::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": fake.add_blob(b"{}")},
            "layers": [{"mediaType": cosign::SIMPLE_SIGNING, "size": layer.payload.len(), "digest": payload, "annotations": layer.annotations}],
        })
        .to_string();
        fake.add_manifest(
            "app",
            &cosign::sig_tag(signed),
            image::OCI_MANIFEST,
            sig.as_bytes(),
        );
        // The tag names `later`; its first answer (HEAD or GET) is `first`.
        let (later_bytes, _) = &images[later];
        fake.add_manifest("app", "moving", image::OCI_MANIFEST, later_bytes);
        let (bytes, digest) = images[first].clone();
        let answer = Reply::status(200)
            .header("Content-Type", image::OCI_MANIFEST)
            .header("Docker-Content-Digest", &digest)
            .body(bytes);
        fake.rule(Rule::reply("GET", "/manifests/moving", answer.clone()).times(1));
        fake.rule(Rule::reply("HEAD", "/manifests/moving", answer).times(1));
        let (code, out, err) = run(&[
            "copy",
            "--output",
            "json",
            "--verify-key",
            &pem,
            &fake.image("app:moving"),
            &dst.image("app:moving"),
        ]);
        let r = report(&out);
        match first {
            "signed" => {
                assert_eq!(code, 0, "{err}");
                assert_eq!(r["target_digest"], digest.as_str(), "{r}");
                assert_eq!(remote_digest(&dst.image("app:moving")), digest);
            }
            _ => {
                assert_eq!(code, 1, "{err}");
                assert_eq!(r["action"], "unverified", "{r}");
                assert!(
                    r["reason"].as_str().unwrap().contains(digest.as_str()),
                    "{r}"
                );
                assert!(tags_of(&dst.image("app")).is_empty());
            }
        }
    }
}
