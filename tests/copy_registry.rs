//! `ocirepl copy` between real registries (Debian's docker-registry), with
//! skopeo seeding the sources and reading back what ocirepl wrote.

mod support;

use support::*;

/// Seeds `repo:tag` in `reg` with a single-platform image; returns its digest.
fn seed_single(reg: &Registry, repo_tag: &str, seed_n: u64) -> String {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let spec = ImageSpec::new(
        "linux/amd64",
        vec![
            Layer::random(seed_n, 64 * 1024),
            Layer::random(seed_n + 1, 8 * 1024),
        ],
    );
    let (bytes, digest) = w.image(&spec);
    w.tag(&[("v1", image::OCI_MANIFEST, &bytes, &digest)]);
    seed(dir.path(), "v1", &reg.image(repo_tag));
    digest
}

/// Seeds `repo:tag` with the three-platform OCI index; returns its digest.
fn seed_index(reg: &Registry, repo_tag: &str, seed_n: u64) -> String {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.index(&three_platforms(seed_n));
    w.tag(&[("v1", image::OCI_INDEX, &bytes, &digest)]);
    seed(dir.path(), "v1", &reg.image(repo_tag));
    digest
}

fn json_copy(src: &str, dst: &str, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec!["copy", "--output", "json", src, dst];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args);
    let rep = if out.trim().is_empty() {
        serde_json::Value::Null
    } else {
        report(&out)
    };
    (code, rep, err)
}

#[test]
fn single_arch_copy_is_byte_exact_and_a_rerun_only_heads() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    let digest = seed_single(&a, "app:v1", 1);

    let (code, rep, err) = json_copy(&a.image("app:v1"), &b.image("app:v1"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["action"], "copied");
    assert_eq!(rep["source_digest"], digest.as_str());
    assert_eq!(rep["target_digest"], digest.as_str());
    assert_eq!(rep["digest_preserved"], true);
    assert_eq!(rep["blobs"]["copied"], 3, "config and two layers");
    assert_eq!(
        raw_manifest(&b.image("app:v1")),
        raw_manifest(&a.image("app:v1"))
    );
    assert_eq!(remote_digest(&b.image("app:v1")), digest);
    assert_eq!(b.open_uploads("app"), 0, "no upload session left behind");

    // A re-run does one HEAD per side and nothing else.
    let (mark_a, mark_b) = (a.access_log().len(), b.access_log().len());
    let (code, rep, err) = json_copy(&a.image("app:v1"), &b.image("app:v1"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["action"], "up-to-date");
    assert_eq!(rep["bytes_copied"], 0);
    let on_b = b.requests_since(mark_b);
    let on_a = a.requests_since(mark_a);
    assert_eq!(on_b.len(), 1, "target saw {on_b:?}");
    assert_eq!(on_b[0].method, "HEAD");
    assert_eq!(on_b[0].path, "/v2/app/manifests/v1");
    assert_eq!(on_a.len(), 1, "source saw {on_a:?}");
    assert_eq!(on_a[0].method, "HEAD");
}

#[test]
fn oci_index_lands_children_first_tag_last_and_shared_layers_once() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    let digest = seed_index(&a, "multi:v1", 10);

    let (code, rep, err) = json_copy(&a.image("multi:v1"), &b.image("mirror/multi:v1"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["digest_preserved"], true);
    assert_eq!(rep["target_digest"], digest.as_str());
    // 3 configs + 3 own layers + 1 shared base layer.
    assert_eq!(rep["blobs"]["copied"], 7);
    assert_eq!(rep["manifests_pushed"], 4);
    assert_eq!(
        raw_manifest(&b.image("mirror/multi:v1")),
        raw_manifest(&a.image("multi:v1"))
    );

    let log = b.access_log();
    let uploads = log
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/"))
        .count();
    assert_eq!(uploads, 7, "each distinct blob uploaded once: {log:?}");
    let manifest_puts: Vec<&Access> = log
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/manifests/"))
        .collect();
    assert_eq!(manifest_puts.len(), 4);
    let last_blob_put = log
        .iter()
        .rposition(|r| r.method == "PUT" && r.path.contains("/blobs/"))
        .unwrap();
    let first_manifest_put = log
        .iter()
        .position(|r| r.method == "PUT" && r.path.contains("/manifests/"))
        .unwrap();
    assert!(
        last_blob_put < first_manifest_put,
        "blobs before manifests: {log:?}"
    );
    for child in &manifest_puts[..3] {
        assert!(
            child.path.contains("/manifests/sha256:"),
            "children by digest: {child:?}"
        );
        assert_eq!(child.status, 201);
    }
    assert_eq!(
        manifest_puts[3].path, "/v2/mirror/multi/manifests/v1",
        "the tag moves last"
    );

    // Every child is readable by digest in the target.
    let index: serde_json::Value =
        serde_json::from_slice(&raw_manifest(&b.image("mirror/multi:v1"))).unwrap();
    for m in index["manifests"].as_array().unwrap() {
        let child = format!(
            "{}@{}",
            b.image("mirror/multi"),
            m["digest"].as_str().unwrap()
        );
        assert_eq!(remote_digest(&child), m["digest"].as_str().unwrap());
    }
}

#[test]
fn docker_manifest_list_is_copied_as_is() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    seed_index(&a, "oci:v1", 20);
    // skopeo converts the OCI index into a Docker manifest list with v2s2 children.
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
    let source_raw = raw_manifest(&a.image("docker:v1"));
    let source: serde_json::Value = serde_json::from_slice(&source_raw).unwrap();
    assert_eq!(
        source["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );

    let (code, rep, err) = json_copy(&a.image("docker:v1"), &b.image("docker:v1"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["digest_preserved"], true);
    assert_eq!(raw_manifest(&b.image("docker:v1")), source_raw);
    assert_eq!(remote_digest(&b.image("docker:v1")), sha256(&source_raw));
}

#[test]
fn copy_to_another_repository_and_tag_and_by_digest() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    let digest = seed_single(&a, "src/app:1.0", 30);

    let (code, rep, err) = json_copy(&a.image("src/app:1.0"), &b.image("team/other:stable"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["target"], b.image("team/other:stable"));
    assert_eq!(remote_digest(&b.image("team/other:stable")), digest);

    // DST without a tag takes the source's tag.
    let (code, _, err) = json_copy(&a.image("src/app:1.0"), &b.image("same"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(remote_digest(&b.image("same:1.0")), digest);

    // By digest, to a DST without tag: pushed by digest only, no tag created.
    let by_digest = format!("{}@{digest}", a.image("src/app"));
    let (code, rep, err) = json_copy(&by_digest, &b.image("pinned"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["target_digest"], digest.as_str());
    assert_eq!(
        remote_digest(&format!("{}@{digest}", b.image("pinned"))),
        digest
    );
    // distribution answers 404 for the tag list of a repository without tags.
    let tags = skopeo_output(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}", b.image("pinned")),
    ]);
    let stdout = String::from_utf8_lossy(&tags.stdout);
    let no_tags = String::from_utf8_lossy(&tags.stderr).contains("404")
        || serde_json::from_str::<serde_json::Value>(&stdout)
            .is_ok_and(|v| v["Tags"].as_array().is_none_or(|t| t.is_empty()));
    assert!(no_tags, "a digest-only push created a tag: {stdout}");

    // By digest to a tag.
    let (code, _, err) = json_copy(&by_digest, &b.image("pinned:v9"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(remote_digest(&b.image("pinned:v9")), digest);
}

#[test]
fn registry_to_layout_to_registry_keeps_every_digest() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    let digest = seed_index(&a, "multi:v1", 40);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let oci = format!("oci:{}:snap", layout.display());

    let (code, rep, err) = json_copy(&a.image("multi:v1"), &oci, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["target_digest"], digest.as_str());
    // skopeo reads the layout we wrote.
    let via_skopeo = skopeo(&["inspect", "--raw", &oci]);
    assert_eq!(via_skopeo.as_bytes(), raw_manifest(&a.image("multi:v1")));

    let (code, rep, err) = json_copy(&oci, &b.image("back:v1"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["digest_preserved"], true);
    assert_eq!(remote_digest(&b.image("back:v1")), digest);
    assert_eq!(
        raw_manifest(&b.image("back:v1")),
        raw_manifest(&a.image("multi:v1"))
    );

    // layout to layout, no server involved; and a re-run is up to date.
    let copy2 = format!("oci:{}", dir.path().join("copy2").display());
    let (code, _, err) = json_copy(&oci, &copy2, &[]);
    assert_eq!(code, 0, "{err}");
    let (code, rep, _) = json_copy(&oci, &copy2, &[]);
    assert_eq!(code, 0);
    assert_eq!(rep["action"], "up-to-date");
    let again = skopeo(&["inspect", "--raw", &format!("{copy2}:snap")]);
    assert_eq!(again, via_skopeo);
}

#[test]
fn htpasswd_target_with_dest_creds_and_env() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::htpasswd("alice", "s3cret-pw"));
    let digest = seed_single(&a, "app:v1", 50);

    let (code, rep, err) = json_copy(
        &a.image("app:v1"),
        &b.image("app:v1"),
        &["--dest-creds", "alice:s3cret-pw"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(rep["target_digest"], digest.as_str());
    let read_back = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:s3cret-pw",
        "--format",
        "{{.Digest}}",
        &format!("docker://{}", b.image("app:v1")),
    ]);
    assert_eq!(read_back.trim(), digest);

    // The same through the environment, to another tag.
    let (code, _, err) = run_with_env(
        &["copy", &a.image("app:v1"), &b.image("app:v2")],
        &[("OCIREPL_DEST_CREDS", "alice:s3cret-pw")],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn wrong_credentials_fail_with_the_registry_named_and_no_password() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::htpasswd("alice", "right-pw"));
    seed_single(&a, "app:v1", 60);
    let (code, out, err) = run(&[
        "copy",
        "-vv",
        &a.image("app:v1"),
        &b.image("app:v1"),
        "--dest-creds",
        "alice:WRONG-pw-canary",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&b.host()), "names the registry: {err}");
    assert!(err.contains("alice"), "names the user: {err}");
    assert!(err.contains("authentication"), "{err}");
    assert!(!err.contains("WRONG-pw-canary") && !out.contains("WRONG-pw-canary"));
    // base64 of the credentials must not leak either.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode("alice:WRONG-pw-canary");
    assert!(!err.contains(&b64));

    // No credentials at all.
    let (code, _, err) = run(&["copy", &a.image("app:v1"), &b.image("app:v1")]);
    assert_eq!(code, 1);
    assert!(err.contains("requires credentials"), "{err}");
}

#[test]
fn failures_name_what_failed() {
    let a = Registry::start(RegistryConfig::anonymous());
    seed_single(&a, "app:v1", 70);

    // Missing tag: exit 1, names the reference.
    let (code, out, err) = run(&[
        "copy",
        "--output",
        "json",
        &a.image("app:nope"),
        &a.image("x:1"),
    ]);
    assert_eq!(code, 1);
    let rep = report(&out);
    assert_eq!(rep["action"], "failed");
    let msg = rep["error"].as_str().unwrap();
    assert!(
        msg.contains(&a.image("app:nope")) && msg.contains("not found"),
        "{msg}"
    );
    assert!(err.is_empty() || !err.contains("panicked"), "{err}");

    // Malformed reference: exit 2.
    let (code, _, err) = run(&["copy", "Bad/UPPER:case", &a.image("x:1")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid reference") && err.contains("SRC"),
        "{err}"
    );
    let (code, _, err) = run(&["copy", &a.image("app:v1"), "127.0.0.1:99999/x"]);
    assert_eq!(code, 2);
    assert!(err.contains("port"), "{err}");
    let (code, _, _) = run(&["copy", &a.image("app:v1")]);
    assert_eq!(code, 2, "missing argument is a usage error");

    // Connection refused: exit 1, names the host.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (code, _, err) = run(&["copy", &a.image("app:v1"), &format!("127.0.0.1:{dead}/x:1")]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("127.0.0.1:{dead}")), "{err}");
    assert!(err.contains("connect"), "{err}");
}
