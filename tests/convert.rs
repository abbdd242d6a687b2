//! Switching in one command: a `skopeo sync` YAML and a regsync config,
//! converted by `ocirepl config convert` and run by `ocirepl sync` against
//! real registries, mirror the tags the original tools mirror (`skopeo
//! sync` itself for the skopeo form; regsync's documented filter rules for
//! the other). Given to `ocirepl sync` unconverted, each says what it is.

mod support;

use support::*;

fn seed_tags_named(reg: &Registry, repo: &str, tags: &[&str], seed_n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let mut entries = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let (b, d) = w.image(&ImageSpec::new(
            "linux/amd64",
            vec![Layer::random(seed_n + i as u64, 2048)],
        ));
        entries.push((t.to_string(), b, d));
    }
    let refs: Vec<(&str, &str, &[u8], &str)> = entries
        .iter()
        .map(|(t, b, d)| (t.as_str(), image::OCI_MANIFEST, b.as_slice(), d.as_str()))
        .collect();
    w.tag(&refs);
    for t in tags {
        seed(dir.path(), t, &reg.image(&format!("{repo}:{t}")));
    }
}

#[test]
fn a_converted_skopeo_sync_config_mirrors_what_skopeo_sync_mirrors() {
    let src = Registry::start(RegistryConfig::anonymous());
    let by_skopeo = Registry::start(RegistryConfig::anonymous());
    let by_ocirepl = Registry::start(RegistryConfig::anonymous());
    seed_tags_named(&src, "team/app", &["1.0", "2.0", "3.0"], 1000);
    seed_tags_named(&src, "busybox", &["1.36", "1.37"], 1010);
    seed_tags_named(
        &src,
        "nginx",
        &[
            "1.13.1-alpine-perl",
            "1.13.2-alpine-perl",
            "1.13.3-alpine-perl",
            "1.13.1",
        ],
        1020,
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.yml");
    std::fs::write(
        &file,
        format!(
            "{}:\n    images:\n        busybox: []\n        team/app:\n            - \"1.0\"\n            - \"3.0\"\n    images-by-tag-regex:\n        nginx: ^1\\.13\\.[12]-alpine-perl$\n    tls-verify: false\n",
            src.host()
        ),
    )
    .unwrap();
    let file_s = file.display().to_string();
    require("skopeo");
    let out = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "sync",
            "--src",
            "yaml",
            "--dest",
            "docker",
            "--dest-tls-verify=false",
        ])
        .arg(&file)
        .arg(by_skopeo.image("base"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let target = by_ocirepl.image("base");
    let (code, converted, err) = run(&[
        "config", "convert", "--from", "skopeo", "--target", &target, &file_s,
    ]);
    assert_eq!(code, 0, "{err}");
    let cfg = dir.path().join("mirror.yaml");
    std::fs::write(&cfg, &converted).unwrap();
    let (code, _, err) = sync(&[&cfg.display().to_string()]);
    assert_eq!(code, 0, "{err}\n{converted}");
    for repo in ["base/app", "base/busybox", "base/nginx"] {
        let theirs = tags_of(&by_skopeo.image(repo));
        assert!(!theirs.is_empty(), "{repo}");
        assert_eq!(
            tags_of(&by_ocirepl.image(repo)),
            theirs,
            "{repo}\n{converted}"
        );
    }
}

#[test]
fn a_converted_regsync_config_mirrors_by_regsyncs_rules_and_unconverted_files_say_what_they_are() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_tags_named(
        &src,
        "library/alpine",
        &[
            "latest", "edge", "3", "3.0", "3.19", "3x19", "13.1", "3.19-rc",
        ],
        1100,
    );
    seed_tags_named(&src, "library/busybox", &["latest", "1.36"], 1120);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("regsync.yml");
    std::fs::write(
        &file,
        format!(
            r#"version: 1
creds:
  - registry: {src}
    tls: disabled
    reqConcurrent: 4
sync:
  - source: {src}/library/busybox:latest
    target: {dst}/library/busybox:latest
    type: image
  - source: {src}/library/alpine
    target: {dst}/library/alpine
    type: repository
    tags:
      allow:
      - "latest"
      - "edge"
      - "3"
      - "3.\\d+"
      deny:
      - "3.0"
"#,
            src = src.host(),
            dst = dst.host()
        ),
    )
    .unwrap();
    let file_s = file.display().to_string();

    // Unconverted: `ocirepl sync` says what it is and how to convert it.
    let (code, _, err) = sync(&[&file_s]);
    assert_eq!(code, 2);
    assert!(
        err.contains("looks like a regsync config")
            && err.contains("config convert --from regsync"),
        "{err}"
    );

    let (code, converted, err) = run(&["config", "convert", "--from", "regsync", &file_s]);
    assert_eq!(code, 0, "{err}\n{converted}");
    let cfg = dir.path().join("mirror.yaml");
    std::fs::write(&cfg, &converted).unwrap();
    let (code, _, err) = sync(&[&cfg.display().to_string()]);
    assert_eq!(code, 0, "{err}\n{converted}");
    // regsync: ^latest$, ^edge$, ^3$, ^3.\d+$ (its dot unescaped), not ^3.0$.
    assert_eq!(
        tags_of(&dst.image("library/alpine")),
        vec!["3", "3.19", "3x19", "edge", "latest"]
    );
    assert_eq!(tags_of(&dst.image("library/busybox")), vec!["latest"]);

    // Something without an equivalent: listed, exit 1, the rest still printed.
    let with_hooks = std::fs::read_to_string(&file).unwrap().replace(
        "    type: repository\n",
        "    type: repository\n    digestTags: true\n",
    );
    std::fs::write(&file, with_hooks).unwrap();
    let (code, converted, err) = run(&["config", "convert", "--from", "regsync", &file_s]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not converted") && err.contains("digestTags"),
        "{err}"
    );
    assert!(
        converted.contains("jobs:") && converted.contains("digestTags"),
        "{converted}"
    );
}
