//! The regsync keys a mirror job takes: `backup` keeps the image a tag
//! named before it moves (and pruning never deletes it), `media_types`
//! copies only manifests of the listed types, `repair` heals a target that
//! lost a blob behind the mirror's back. Against real registries.

mod support;

use support::*;

/// One small image under `repo:tag`; its digest.
fn push_image(reg: &Registry, repo_tag: &str, seed_n: u64) -> String {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(seed_n, 8192)],
    ));
    w.tag(&[("t", image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
    seed(dir.path(), "t", &reg.image(repo_tag));
    digest
}

#[test]
fn backup_keeps_the_old_image_before_the_tag_moves_and_prune_keeps_backups() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    let first = push_image(&src, "app:v1", 800);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: app\n    source: {}\n    target: {}\n    backup: \"{{tag}}-was-{{digest}}\"\n    prune: true\n",
            src.image("app"),
            dst.image("app")
        ),
    );
    let cfg = cfg.display().to_string();
    let (code, _, err) = sync(&[&cfg]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tags_of(&dst.image("app")), vec!["v1"]);

    // The source's v1 moves to another image.
    let second = push_image(&src, "app:v1", 801);
    let mark = dst.access_log().len();
    let (code, out, err) = sync(&[&cfg, "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let backup = format!("v1-was-{}", &first[7..19]);
    assert_eq!(remote_digest(&dst.image(&format!("app:{backup}"))), first);
    assert_eq!(remote_digest(&dst.image("app:v1")), second);
    let r = &reports(&out)[0];
    assert!(r["reason"].as_str().unwrap().contains(&backup), "{r}");
    // The backup tag was written before v1 moved.
    let puts: Vec<String> = dst
        .requests_since(mark)
        .into_iter()
        .filter(|a| a.method == "PUT" && a.path.contains("/manifests/"))
        .map(|a| a.path)
        .collect();
    assert_eq!(
        puts,
        vec![
            format!("/v2/app/manifests/{backup}"),
            "/v2/app/manifests/v1".to_string()
        ]
    );
    // The source has no backup tag; prune leaves it anyway.
    let (code, _, err) = sync(&[&cfg]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tags_of(&dst.image("app")), vec!["v1".to_string(), backup]);
}

#[test]
fn media_types_copy_only_what_they_list() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    push_image(&src, "mixed:single", 810);
    let layout = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(layout.path());
    let (bytes, index) = w.index(&three_platforms(811));
    w.tag(&[("multi", image::OCI_INDEX, bytes.as_slice(), index.as_str())]);
    seed(layout.path(), "multi", &src.image("mixed:multi"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: mixed\n    source: {}\n    target: {}\n    media_types: [{}]\n",
            src.image("mixed"),
            dst.image("mixed"),
            image::OCI_INDEX
        ),
    );
    let (code, out, err) = sync(&[&cfg.display().to_string(), "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tags_of(&dst.image("mixed")), vec!["multi"]);
    let skipped = reports(&out)
        .into_iter()
        .find(|r| r["source"].as_str().unwrap().ends_with(":single"))
        .unwrap();
    assert_eq!(skipped["action"], "skipped");
    assert!(
        skipped["reason"].as_str().unwrap().contains("media_types"),
        "{skipped}"
    );
}

#[test]
fn repair_heals_a_target_that_lost_a_blob() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    push_image(&src, "app:v1", 820);
    let dir = tempfile::tempdir().unwrap();
    let job = |repair: bool| {
        config(
            dir.path(),
            &format!(
                "version: 1\njobs:\n  - name: app\n    source: {}\n    target: {}\n    repair: {repair}\n",
                src.image("app"),
                dst.image("app")
            ),
        )
        .display()
        .to_string()
    };
    let (code, _, err) = sync(&[&job(false)]);
    assert_eq!(code, 0, "{err}");
    // The layer's data goes from the target's storage, behind its back.
    let manifest: serde_json::Value =
        serde_json::from_slice(&raw_manifest(&dst.image("app:v1"))).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let hex = &layer[7..];
    let data = dst
        .storage()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex);
    std::fs::remove_dir_all(&data).unwrap();
    assert!(!blob_exists(&dst.host(), "app", &layer));

    // Without repair, the tag is up to date and nothing is noticed.
    let (code, out, _) = sync(&[&job(false), "--output", "json"]);
    assert_eq!(code, 0);
    assert_eq!(reports(&out)[0]["action"], "up-to-date");
    assert!(!blob_exists(&dst.host(), "app", &layer));

    let (code, out, err) = sync(&[&job(true), "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let r = &reports(&out)[0];
    assert_eq!(r["action"], "copied", "{r}");
    assert!(r["reason"].as_str().unwrap().contains("repaired"), "{r}");
    assert!(blob_exists(&dst.host(), "app", &layer));
    // Whole again: a repair run now finds nothing missing.
    let (_, out, _) = sync(&[&job(true), "--output", "json"]);
    assert_eq!(reports(&out)[0]["action"], "up-to-date");
}
