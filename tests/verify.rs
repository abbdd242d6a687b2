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

fn sync(args: &[&str]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().display().to_string();
    run_with_env(&[&["sync"], args].concat(), &[("HOME", home.as_str())])
}

fn reports(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("summary").is_none())
        .collect()
}

/// One small image per tag in `host/repo`; returns (tag, digest).
fn seed_images(reg: &Registry, repo: &str, tags: &[&str], seed_n: u64) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let mut out = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let (bytes, digest) = w.image(&ImageSpec::new(
            "linux/amd64",
            vec![Layer::random(seed_n + i as u64, 4096)],
        ));
        w.tag(&[(t, image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
        seed(dir.path(), t, &reg.image(&format!("{repo}:{t}")));
        out.push((t.to_string(), digest));
    }
    out
}

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
    let seeded = seed_images(&src, "app", &["good", "other", "none", "moved"], 9100);
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
    // verified source.
    let (code, _, err) = run(&[
        "copy",
        "--referrers",
        "--verify-key",
        &key,
        &s.src.image("app:good"),
        &dst.image("app:good"),
    ]);
    assert_eq!(code, 0, "{err}");
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
}
