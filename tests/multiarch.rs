//! Multi-arch images, platform filters, modes and format conversion against
//! real registries (issue 4), checked with skopeo.

mod support;

use serde_json::Value;
use support::*;

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Seeds the three-platform OCI index as `repo:v1`; returns the index bytes.
fn seed_index(reg: &Registry, repo_tag: &str, seed_n: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.index(&three_platforms(seed_n));
    w.tag(&[("v1", image::OCI_INDEX, &bytes, &digest)]);
    seed(dir.path(), "v1", &reg.image(repo_tag));
    bytes
}

fn copy_json(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["copy", "--output", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    let rep = if out.trim().is_empty() {
        Value::Null
    } else {
        report(&out)
    };
    (code, rep, err)
}

fn head_status(reg: &Registry, image: &str) -> bool {
    skopeo_output(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}", reg.image(image)),
    ])
    .status
    .success()
}

#[test]
fn platform_filter_two_of_three_is_a_new_reported_index() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    let source = seed_index(&a, "multi:v1", 400);
    let source_digest = sha256(&source);
    let src_index = json(&source);

    let (code, rep, err) = copy_json(&[
        &a.image("multi:v1"),
        &b.image("multi:v1"),
        "--platform",
        "linux/amd64,linux/arm/v7",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["digest_preserved"], false);
    assert_eq!(rep["source_digest"], source_digest.as_str());
    assert!(
        rep["reason"].as_str().unwrap().contains("platform filter"),
        "{rep}"
    );
    let target = raw_manifest(&b.image("multi:v1"));
    assert_eq!(rep["target_digest"], sha256(&target).as_str());
    let t = json(&target);
    let kept: Vec<&str> = t["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(kept, vec!["amd64", "arm"], "source order kept");
    assert_eq!(
        t["annotations"]["dev.ocirepl.source.digest"],
        source_digest.as_str()
    );
    assert_eq!(
        t["annotations"]["dev.ocirepl.dropped-platforms"],
        "linux/arm64"
    );
    // Kept children are there by digest; the dropped one is not.
    for m in src_index["manifests"].as_array().unwrap() {
        let present = head_status(&b, &format!("multi@{}", m["digest"].as_str().unwrap()));
        assert_eq!(present, m["platform"]["architecture"] != "arm64", "{m}");
    }
    // The children landed before the index (distribution 2.8 checks), and a re-run is up to date.
    let (code, rep, err) = copy_json(&[
        &a.image("multi:v1"),
        &b.image("multi:v1"),
        "--platform",
        "linux/amd64,linux/arm/v7",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["action"], "up-to-date");
}

#[test]
fn one_platform_with_and_without_unwrap() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    let source = json(&seed_index(&a, "multi:v1", 410));
    let arm64 = source["manifests"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    let (code, rep, err) = copy_json(&[
        &a.image("multi:v1"),
        &b.image("one:index"),
        "--platform",
        "linux/arm64",
    ]);
    assert_eq!(code, 0, "{err}");
    let t = json(&raw_manifest(&b.image("one:index")));
    assert_eq!(t["mediaType"], image::OCI_INDEX);
    assert_eq!(t["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(rep["digest_preserved"], false);

    let (code, rep, err) = copy_json(&[
        &a.image("multi:v1"),
        &b.image("one:image"),
        "--platform",
        "linux/arm64/v8",
        "--unwrap",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(remote_digest(&b.image("one:image")), arm64);
    assert_eq!(rep["digest_preserved"], true);
    assert_eq!(rep["target_digest"], arm64.as_str());
    assert!(
        rep["reason"]
            .as_str()
            .unwrap()
            .contains("unwrapped from index"),
        "{rep}"
    );
}

#[test]
fn impossible_selections_are_usage_errors_before_any_write() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    seed_index(&a, "multi:v1", 420);
    let mark = b.access_log().len();
    let (code, _, err) = copy_json(&[
        &a.image("multi:v1"),
        &b.image("x:1"),
        "--platform",
        "linux/amd64,linux/arm64",
        "--unwrap",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("exactly one") && err.contains("2 matched"),
        "{err}"
    );
    let (code, _, err) = copy_json(&[
        &a.image("multi:v1"),
        &b.image("x:1"),
        "--platform",
        "windows/amd64",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no platform") && err.contains("linux/arm/v7"),
        "lists what there is: {err}"
    );
    let writes = b
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.method != "HEAD" && r.method != "GET")
        .count();
    assert_eq!(writes, 0);
    let (code, _, err) = run(&[
        "copy",
        &a.image("multi:v1"),
        &b.image("x:1"),
        "--platform",
        "linux",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid platform"), "{err}");
    let (code, _, _) = run(&["copy", &a.image("multi:v1"), &b.image("x:1"), "--unwrap"]);
    assert_eq!(code, 2, "--unwrap needs --platform");
}

#[test]
fn docker_list_filter_with_a_variant() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    seed_index(&a, "oci:v1", 430);
    skopeo(&[
        "copy",
        "--all",
        "--format",
        "v2s2",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}", a.image("oci:v1")),
        &format!("docker://{}", a.image("docker:v1")),
    ]);
    let (code, rep, err) = copy_json(&[
        &a.image("docker:v1"),
        &b.image("docker:arm"),
        "--platform",
        "linux/arm/v7",
    ]);
    assert_eq!(code, 0, "{err}");
    let t = json(&raw_manifest(&b.image("docker:arm")));
    assert_eq!(
        t["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(t["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(t["manifests"][0]["platform"]["variant"], "v7");
    assert_eq!(rep["blobs"]["copied"], 3, "config, shared base, own layer");
}

#[test]
fn attestations_follow_the_image_they_describe() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let specs = three_platforms(440);
    let mut entries = Vec::new();
    let mut attestations = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let (bytes, digest) = w.image(spec);
        entries.push(serde_json::json!({"mediaType": image::OCI_MANIFEST, "digest": digest, "size": bytes.len(),
            "platform": {"os": spec.os, "architecture": spec.arch, "variant": spec.variant}}));
        let (ab, ad) = w.attestation(&digest, i as u64);
        attestations.push(serde_json::json!({"mediaType": image::OCI_MANIFEST, "digest": ad, "size": ab.len(),
            "platform": {"os": "unknown", "architecture": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": digest}}));
    }
    for e in &mut entries {
        if e["platform"]["variant"].is_null() {
            e["platform"].as_object_mut().unwrap().remove("variant");
        }
    }
    entries.extend(attestations);
    let (bytes, digest) = w.json(&serde_json::json!({"schemaVersion": 2, "mediaType": image::OCI_INDEX, "manifests": entries}));
    w.tag(&[("v1", image::OCI_INDEX, &bytes, &digest)]);
    seed(dir.path(), "v1", &a.image("att:v1"));

    let (code, _, err) = copy_json(&[
        &a.image("att:v1"),
        &b.image("att:v1"),
        "--platform",
        "linux/arm64",
    ]);
    assert_eq!(code, 0, "{err}");
    let t = json(&raw_manifest(&b.image("att:v1")));
    let kept = t["manifests"].as_array().unwrap();
    assert_eq!(kept.len(), 2, "arm64 and its attestation: {t}");
    assert_eq!(kept[0]["platform"]["architecture"], "arm64");
    assert_eq!(
        kept[1]["annotations"]["vnd.docker.reference.digest"],
        kept[0]["digest"]
    );
    // Unfiltered, the whole index (6 entries) travels byte-exact.
    let (code, rep, err) = copy_json(&[&a.image("att:v1"), &b.image("att:all")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["digest_preserved"], true);
    assert_eq!(raw_manifest(&b.image("att:all")), bytes);
}

#[test]
fn nested_index_and_artifact_with_subject_are_copied_byte_exact() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    let inner = seed_index(&a, "nested:inner", 450);
    let outer = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": image::OCI_INDEX,
        "manifests": [{"mediaType": image::OCI_INDEX, "digest": sha256(&inner), "size": inner.len()}]
    }))
    .unwrap();
    put_manifest_raw(&a.host(), "nested", "outer", image::OCI_INDEX, &outer);
    let (code, rep, err) = copy_json(&[&a.image("nested:outer"), &b.image("nested:outer")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        rep["manifests_pushed"], 5,
        "3 images, the inner index, the outer one"
    );
    assert_eq!(raw_manifest(&b.image("nested:outer")), outer);
    assert_eq!(
        remote_digest(&format!("{}@{}", b.image("nested"), sha256(&inner))),
        sha256(&inner)
    );

    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (img, img_d) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(451, 100)],
    ));
    let empty = w.blob(b"{}");
    let sbom = w.blob(b"sbom-content");
    let (art, art_d) = w.json(
        &serde_json::json!({"schemaVersion": 2, "mediaType": image::OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.example.sbom", "digest": sbom, "size": 12}],
        "subject": {"mediaType": image::OCI_MANIFEST, "digest": img_d, "size": img.len()}}),
    );
    w.tag(&[
        ("img", image::OCI_MANIFEST, &img, &img_d),
        ("sbom", image::OCI_MANIFEST, &art, &art_d),
    ]);
    seed(dir.path(), "img", &a.image("app:img"));
    seed(dir.path(), "sbom", &a.image("app:sbom"));
    let (code, rep, err) = copy_json(&[&a.image("app:sbom"), &b.image("app:sbom")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["digest_preserved"], true);
    assert_eq!(raw_manifest(&b.image("app:sbom")), art);
    assert_eq!(rep["blobs"]["copied"], 2);
}

#[test]
fn normalise_index_wraps_a_single_image() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (img, img_d) = w.image(&ImageSpec::new(
        "linux/arm/v6",
        vec![Layer::random(460, 1000)],
    ));
    w.tag(&[("v1", image::OCI_MANIFEST, &img, &img_d)]);
    seed(dir.path(), "v1", &a.image("single:v1"));
    let (code, rep, err) = copy_json(&[
        &a.image("single:v1"),
        &b.image("single:v1"),
        "--mode",
        "normalise-index",
    ]);
    assert_eq!(code, 0, "{err}");
    let t = json(&raw_manifest(&b.image("single:v1")));
    assert_eq!(t["mediaType"], image::OCI_INDEX);
    assert_eq!(t["manifests"][0]["digest"], img_d.as_str());
    assert_eq!(t["manifests"][0]["platform"]["architecture"], "arm");
    assert_eq!(t["manifests"][0]["platform"]["variant"], "v6");
    assert!(
        rep["reason"].as_str().unwrap().contains("normalised"),
        "{rep}"
    );
    assert_eq!(
        remote_digest(&format!("{}@{img_d}", b.image("single"))),
        img_d
    );
    // An index source is left as it is.
    seed_index(&a, "multi:v1", 461);
    let (code, rep, _) = copy_json(&[
        &a.image("multi:v1"),
        &b.image("multi:v1"),
        "--mode",
        "normalise-index",
    ]);
    assert_eq!(code, 0);
    assert_eq!(rep["digest_preserved"], true);
}

#[test]
fn format_oci_converts_docker_lists_media_types_only() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    seed_index(&a, "oci:v1", 470);
    skopeo(&[
        "copy",
        "--all",
        "--format",
        "v2s2",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}", a.image("oci:v1")),
        &format!("docker://{}", a.image("docker:v1")),
    ]);
    let docker = json(&raw_manifest(&a.image("docker:v1")));
    let (code, rep, err) = copy_json(&[
        &a.image("docker:v1"),
        &b.image("conv:v1"),
        "--format",
        "oci",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["digest_preserved"], false);
    let t = json(&raw_manifest(&b.image("conv:v1")));
    assert_eq!(t["mediaType"], image::OCI_INDEX);
    for (i, m) in t["manifests"].as_array().unwrap().iter().enumerate() {
        assert_eq!(m["mediaType"], image::OCI_MANIFEST);
        assert_eq!(m["platform"], docker["manifests"][i]["platform"]);
        let child = json(&raw_manifest(&format!(
            "{}@{}",
            b.image("conv"),
            m["digest"].as_str().unwrap()
        )));
        let src_child = json(&raw_manifest(&format!(
            "{}@{}",
            a.image("docker"),
            docker["manifests"][i]["digest"].as_str().unwrap()
        )));
        assert_eq!(child["config"]["mediaType"], image::OCI_CONFIG);
        assert_eq!(
            child["config"]["digest"], src_child["config"]["digest"],
            "blobs untouched"
        );
        assert_eq!(child["layers"][0]["mediaType"], image::OCI_LAYER);
    }
    // skopeo agrees it is a valid OCI image.
    let inspected = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}", b.image("conv:v1")),
    ]);
    assert!(inspected.contains("\"Digest\""), "{inspected}");
}
