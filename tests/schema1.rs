//! Docker schema1 sources (issue 4): a real registry with schema1 enabled,
//! seeded by skopeo (`--format v2s1`), copied by ocirepl to a registry that
//! refuses schema1, and compared with skopeo's own conversion.

mod support;

use serde_json::Value;
use support::*;

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// A schema1 registry holding `old:v1`: three layers and two empty history
/// entries, pushed by skopeo as signed schema1.
fn schema1_source() -> Registry {
    let reg = Registry::start(RegistryConfig::with_schema1());
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let mut spec = ImageSpec::new(
        "linux/amd64",
        vec![
            Layer::random(500, 64 * 1024),
            Layer::random(501, 8 * 1024),
            Layer::random(502, 1024),
        ],
    );
    spec.empty_after = vec![0, 2];
    let (bytes, digest) = w.image(&spec);
    w.tag(&[("v1", image::OCI_MANIFEST, &bytes, &digest)]);
    skopeo(&[
        "copy",
        "--format",
        "v2s1",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", dir.path().display()),
        &format!("docker://{}", reg.image("old:v1")),
    ]);
    let raw = raw_manifest(&reg.image("old:v1"));
    assert_eq!(json(&raw)["schemaVersion"], 1, "seeded as schema1");
    reg
}

fn config_of(reg: &Registry, image: &str) -> Value {
    let out = skopeo(&[
        "inspect",
        "--config",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}", reg.image(image)),
    ]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn schema1_is_converted_for_a_target_that_refuses_it_like_skopeo_does() {
    let src = schema1_source();
    let dst = Registry::start(RegistryConfig::anonymous());
    let home = tempfile::tempdir().unwrap();
    let h = home.path().display().to_string();
    let (code, out, err) = run_with_env(
        &[
            "copy",
            "--output",
            "json",
            &src.image("old:v1"),
            &dst.image("new:v1"),
        ],
        &[("HOME", &h)],
    );
    assert_eq!(code, 0, "{err}");
    let rep = report(&out);
    assert_eq!(rep["digest_preserved"], false);
    assert!(rep["reason"].as_str().unwrap().contains("schema1"), "{rep}");
    let ours = json(&raw_manifest(&dst.image("new:v1")));
    assert_eq!(
        ours["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        rep["target_digest"],
        sha256(&raw_manifest(&dst.image("new:v1"))).as_str()
    );

    // skopeo's own conversion of the same source.
    skopeo(&[
        "copy",
        "--format",
        "v2s2",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}", src.image("old:v1")),
        &format!("docker://{}", dst.image("skopeo:v1")),
    ]);
    let theirs = json(&raw_manifest(&dst.image("skopeo:v1")));
    let digests = |m: &Value| -> Vec<String> {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        digests(&ours),
        digests(&theirs),
        "same layers in the same order"
    );
    let (our_cfg, their_cfg) = (config_of(&dst, "new:v1"), config_of(&dst, "skopeo:v1"));
    assert_eq!(
        our_cfg["rootfs"]["diff_ids"], their_cfg["rootfs"]["diff_ids"],
        "same diff_ids"
    );
    assert_eq!(
        our_cfg["history"].as_array().unwrap().len(),
        their_cfg["history"].as_array().unwrap().len(),
        "same number of history entries"
    );
    assert_eq!(our_cfg["architecture"], "amd64");

    // A re-run reads no layer from the source again: diff_ids come from the cache.
    let mark = src.access_log().len();
    let (code, _, err) = run_with_env(
        &["copy", &src.image("old:v1"), &dst.image("new:v1")],
        &[("HOME", &h)],
    );
    assert_eq!(code, 0, "{err}");
    let layer_gets: Vec<_> = src
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/"))
        .collect();
    assert!(layer_gets.is_empty(), "{layer_gets:?}");
    assert_eq!(
        json(&raw_manifest(&dst.image("new:v1"))),
        ours,
        "the same conversion again"
    );
}

#[test]
fn schema1_stays_schema1_where_the_target_takes_it_unless_told_otherwise() {
    let src = schema1_source();
    let dst = Registry::start(RegistryConfig::with_schema1());
    let (code, out, err) = run(&[
        "copy",
        "--output",
        "json",
        &src.image("old:v1"),
        &dst.image("old:v1"),
    ]);
    assert_eq!(code, 0, "{err}");
    let rep = report(&out);
    assert_eq!(rep["digest_preserved"], true);
    // Debian's distribution 2.8 re-signs schema1 on push with its own key: the
    // signatures differ, the payload and so the digest do not.
    assert_eq!(
        remote_digest(&dst.image("old:v1")),
        remote_digest(&src.image("old:v1"))
    );
    assert_eq!(
        rep["target_digest"],
        remote_digest(&src.image("old:v1")).as_str()
    );
    assert_eq!(
        json(&raw_manifest(&dst.image("old:v1")))["schemaVersion"],
        1
    );

    let (code, out, err) = run(&[
        "copy",
        "--output",
        "json",
        "--format",
        "v2s2",
        &src.image("old:v1"),
        &dst.image("forced:v1"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report(&out)["digest_preserved"], false);
    assert_eq!(
        json(&raw_manifest(&dst.image("forced:v1")))["schemaVersion"],
        2
    );

    let (code, _, err) = run(&[
        "copy",
        "--format",
        "oci",
        &src.image("old:v1"),
        &dst.image("oci:v1"),
    ]);
    assert_eq!(code, 0, "{err}");
    let oci = json(&raw_manifest(&dst.image("oci:v1")));
    assert_eq!(oci["mediaType"], image::OCI_MANIFEST);
    assert_eq!(oci["config"]["mediaType"], image::OCI_CONFIG);
}
