//! Archives with tools nobody here wrote: skopeo reads what ocirepl
//! writes (`oci-archive:` with digests kept through a registry,
//! `docker-archive:` with the image ID kept), ocirepl reads what skopeo
//! and `podman save` write (both formats, several images), `podman load`
//! of an ocirepl archive gives the same image ID and digest; and the air
//! gap as a user runs it: a sync export, a new tag, an incremental export
//! and its import, compressed and split archives, and an import killed
//! half way and run again.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

/// One image of a config and two layers under `repo:tag`; its digest.
fn seed_image(reg: &Registry, repo: &str, tag: &str, seed_n: u64) -> String {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![
            Layer::random(seed_n, 64 * 1024),
            Layer::random(seed_n + 1, 16 * 1024),
        ],
    ));
    w.tag(&[(tag, image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
    seed(dir.path(), tag, &reg.image(&format!("{repo}:{tag}")));
    digest
}

/// The config digest (the image ID) a registry's manifest names.
fn config_digest(image: &str) -> String {
    let m: serde_json::Value = serde_json::from_slice(&raw_manifest(image)).unwrap();
    m["config"]["digest"].as_str().unwrap().to_string()
}

/// podman's image store is one per machine: its tests take turns.
static PODMAN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn podman(args: &[&str]) -> String {
    require("podman");
    let out = Command::new("podman")
        .args(args)
        .output()
        .expect("run podman");
    assert!(
        out.status.success(),
        "podman {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn skopeo_and_podman_read_what_ocirepl_writes() {
    let _podman = PODMAN.lock().unwrap_or_else(|e| e.into_inner());
    let reg = Registry::start(RegistryConfig::anonymous());
    let digest = seed_image(&reg, "app", "1.0", 3000);
    let dir = tempfile::tempdir().unwrap();
    let oci = dir.path().join("app.tar");
    let (code, _, err) = run(&[
        "copy",
        &reg.image("app:1.0"),
        &format!("oci-archive:{}", path(&oci)),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("inventory"), "{err}");
    // skopeo through a registry: the digest survives.
    let back = Registry::start(RegistryConfig::anonymous());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", path(&oci)),
        &format!("docker://{}", back.image("app:1.0")),
    ]);
    assert_eq!(remote_digest(&back.image("app:1.0")), digest);
    // skopeo as docker-archive (manifest.json): it builds its own manifest,
    // but the config (the image ID) is the same.
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", path(&oci)),
        &format!("docker://{}", back.image("app:docker")),
    ]);
    assert_eq!(
        config_digest(&back.image("app:docker")),
        config_digest(&reg.image("app:1.0"))
    );
    // podman load: the same image ID and digest.
    podman(&["rmi", "-a", "-f"]);
    let loaded = podman(&["load", "-i", &path(&oci)]);
    assert!(loaded.contains(&reg.image("app:1.0")), "{loaded}");
    let inspected = podman(&[
        "inspect",
        "--format",
        "{{.Id}} {{.Digest}}",
        &reg.image("app:1.0"),
    ]);
    let id = config_digest(&reg.image("app:1.0"));
    assert!(
        inspected.contains(id.trim_start_matches("sha256:")),
        "{inspected} vs {id}"
    );
    assert!(inspected.contains(&digest), "{inspected} vs {digest}");
    podman(&["rmi", "-a", "-f"]);
}

#[test]
fn ocirepl_reads_what_skopeo_and_podman_write() {
    let _podman = PODMAN.lock().unwrap_or_else(|e| e.into_inner());
    let reg = Registry::start(RegistryConfig::anonymous());
    let one = seed_image(&reg, "one", "1", 3100);
    seed_image(&reg, "two", "2", 3200);
    let dir = tempfile::tempdir().unwrap();
    let dst = Registry::start(RegistryConfig::anonymous());
    // skopeo's oci-archive: the digest is kept.
    let sk_oci = dir.path().join("sk-oci.tar");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}", reg.image("one:1")),
        &format!("oci-archive:{}:r.io/one:1", path(&sk_oci)),
    ]);
    let (code, _, err) = run(&[
        "copy",
        &format!("oci-archive:{}", path(&sk_oci)),
        &dst.image("one:oci"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(remote_digest(&dst.image("one:oci")), one);
    // skopeo's docker-archive: a manifest is built, the image ID kept, and
    // the report says why the digest is new.
    let sk_docker = dir.path().join("sk-docker.tar");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}", reg.image("one:1")),
        &format!("docker-archive:{}:r.io/one:1", path(&sk_docker)),
    ]);
    let (code, out, err) = run(&[
        "copy",
        "--output",
        "json",
        &format!("docker-archive:{}:r.io/one:1", path(&sk_docker)),
        &dst.image("one:docker"),
    ]);
    assert_eq!(code, 0, "{err}");
    let r = report(&out);
    assert!(
        r["reason"].as_str().unwrap().contains("docker-archive"),
        "{r}"
    );
    assert_eq!(
        config_digest(&dst.image("one:docker")),
        config_digest(&reg.image("one:1"))
    );
    // podman save: several images in one docker-archive (-m), and oci-archive.
    podman(&["rmi", "-a", "-f"]);
    podman(&["pull", "-q", "--tls-verify=false", &reg.image("one:1")]);
    podman(&["pull", "-q", "--tls-verify=false", &reg.image("two:2")]);
    let pm = dir.path().join("podman-m.tar");
    podman(&[
        "save",
        "-m",
        "-o",
        &path(&pm),
        &reg.image("one:1"),
        &reg.image("two:2"),
    ]);
    for (name, tag) in [(reg.image("one:1"), "m-one"), (reg.image("two:2"), "m-two")] {
        let (code, _, err) = run(&[
            "copy",
            &format!("docker-archive:{}:{name}", path(&pm)),
            &dst.image(&format!("podman:{tag}")),
        ]);
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(
        config_digest(&dst.image("podman:m-two")),
        config_digest(&reg.image("two:2"))
    );
    let po = dir.path().join("podman-oci.tar");
    podman(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        &path(&po),
        &reg.image("one:1"),
    ]);
    let (code, _, err) = run(&[
        "copy",
        &format!("oci-archive:{}", path(&po)),
        &dst.image("podman:oci"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        config_digest(&dst.image("podman:oci")),
        config_digest(&reg.image("one:1"))
    );
    podman(&["rmi", "-a", "-f"]);
}

/// A sync config mirroring `app` and `multi` from `src` into `dst`.
fn mirror_config(dir: &Path, src: &Registry, dst_host: &str) -> String {
    config(
        dir,
        &format!(
            "version: 1\njobs:\n  - name: app\n    source: {s}/app\n    target: {d}/mirror/app\n  - name: multi\n    source: {s}/multi\n    target: {d}/mirror/multi\n    platforms: [linux/amd64]\n",
            s = src.host(),
            d = dst_host
        ),
    )
    .display()
    .to_string()
}

fn seed_multi(reg: &Registry, tag: &str, seed_n: u64) -> String {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.index(&three_platforms(seed_n));
    w.tag(&[(tag, image::OCI_INDEX, bytes.as_slice(), digest.as_str())]);
    seed(dir.path(), tag, &reg.image(&format!("multi:{tag}")));
    digest
}

#[test]
fn an_air_gap_round_trip_then_an_incremental_one() {
    let src = Registry::start(RegistryConfig::anonymous());
    let app1 = seed_image(&src, "app", "1.0", 3300);
    seed_multi(&src, "1", 3400);
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.tar");
    let dst = Registry::start(RegistryConfig::anonymous());
    let cfg = mirror_config(dir.path(), &src, &dst.host());
    let (code, out, err) = sync(&["--to-archive", &path(&first), "--output", "json", &cfg]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("oci-archive:"), "{out}");
    assert!(first.with_extension("tar.inventory.json").is_file());
    let (code, _, err) = sync(&["--from-archive", &path(&first), &cfg]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(remote_digest(&dst.image("mirror/app:1.0")), app1);
    let filtered = remote_digest(&dst.image("mirror/multi:1"));

    // A new tag in the source: the incremental export carries only it.
    let app2 = seed_image(&src, "app", "2.0", 3500);
    let second = dir.path().join("second.tar");
    let since = dir.path().join("first.tar.inventory.json");
    let (code, _, err) = sync(&[
        "--to-archive",
        &path(&second),
        "--since",
        &path(&since),
        &cfg,
    ]);
    assert_eq!(code, 0, "{err}");
    let (a, b) = (
        std::fs::metadata(&first).unwrap().len(),
        std::fs::metadata(&second).unwrap().len(),
    );
    assert!(b < a, "the increment ({b}) is smaller than the first ({a})");
    assert!(
        b < 2 * 80 * 1024 + 64 * 1024,
        "only the new image's bytes: {b}"
    );

    // Into a registry that never took the first archive: refused, no tag.
    let fresh = Registry::start(RegistryConfig::anonymous());
    std::fs::create_dir_all(dir.path().join("fresh")).unwrap();
    let fresh_cfg = mirror_config(&dir.path().join("fresh"), &src, &fresh.host());
    let (code, _, err) = sync(&["--from-archive", &path(&second), &fresh_cfg]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("import the earlier export"), "{err}");
    assert!(
        tags_of(&fresh.image("mirror/app")).is_empty(),
        "no tag moved"
    );
    // Into the one that did: the new tag arrives, the rest is up to date.
    let (code, _, err) = sync(&["--from-archive", &path(&second), &cfg]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(remote_digest(&dst.image("mirror/app:2.0")), app2);
    assert_eq!(remote_digest(&dst.image("mirror/multi:1")), filtered);
}

#[test]
fn compressed_and_split_archives_round_trip() {
    let src = Registry::start(RegistryConfig::anonymous());
    let app = seed_image(&src, "app", "1.0", 3600);
    seed_multi(&src, "1", 3700);
    let dir = tempfile::tempdir().unwrap();
    let cfg = mirror_config(dir.path(), &src, "unused.example");
    for (name, flags) in [
        ("z.tar.zst", vec!["--compress", "zstd"]),
        ("g.tar.gz", vec!["--compress", "gzip"]),
        ("split.tar", vec!["--volume-size", "96KiB"]),
    ] {
        let file = dir.path().join(name);
        let mut args = vec!["--to-archive".to_string(), path(&file)];
        args.extend(flags.iter().map(|s| s.to_string()));
        args.push(cfg.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = sync(&args);
        assert_eq!(code, 0, "{name}: {err}");
        if name == "split.tar" {
            assert!(dir.path().join("split.tar.2").is_file(), "{err}");
            for v in ["split.tar", "split.tar.2", "split.tar.3"] {
                let size = std::fs::metadata(dir.path().join(v)).map_or(0, |m| m.len());
                assert!(
                    size <= 96 * 1024 || err.contains("a volume of its own"),
                    "{v}: {size}"
                );
            }
        }
        let dst = Registry::start(RegistryConfig::anonymous());
        let (code, _, err) = run(&[
            "copy",
            &format!("oci-archive:{}:{}/app:1.0", path(&file), src.host()),
            &dst.image("app:1.0"),
        ]);
        assert_eq!(code, 0, "{name}: {err}");
        assert_eq!(remote_digest(&dst.image("app:1.0")), app, "{name}");
    }
    // A volume missing from a split set: refused, naming it.
    std::fs::remove_file(dir.path().join("split.tar.2")).unwrap();
    let dst = Registry::start(RegistryConfig::anonymous());
    let (code, _, err) = run(&[
        "copy",
        &format!(
            "oci-archive:{}:{}/app:1.0",
            path(&dir.path().join("split.tar")),
            src.host()
        ),
        &dst.image("app:1.0"),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn an_import_killed_half_way_finishes_when_run_again() {
    let src = Registry::start(RegistryConfig::anonymous());
    let tags = seed_tags(&src, "app", 8, 3, 3800);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("all.tar");
    let dst = Registry::start(RegistryConfig::anonymous());
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: app\n    source: {}/app\n    target: {}/app\n",
            src.host(),
            dst.host()
        ),
    )
    .display()
    .to_string();
    let (code, _, err) = sync(&["--to-archive", &path(&archive), &cfg]);
    assert_eq!(code, 0, "{err}");
    // Uploads that completed (a PUT cut by the kill is logged too).
    let blob_puts = |log: &[Access]| {
        log.iter()
            .filter(|a| a.method == "PUT" && a.path.contains("/blobs/uploads/") && a.status == 201)
            .count()
    };
    // Killed once a few blobs have landed.
    let home = tempfile::tempdir().unwrap();
    let mut child = ocirepl()
        .args([
            "sync",
            "--jobs",
            "1",
            "--from-archive",
            &path(&archive),
            &cfg,
        ])
        .env("HOME", home.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while blob_puts(&dst.access_log()) < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    let before = dst.access_log().len();
    let landed = blob_puts(&dst.access_log());
    assert!(landed >= 3, "{landed}");
    let (code, _, err) = sync(&["--from-archive", &path(&archive), &cfg]);
    assert_eq!(code, 0, "{err}");
    for t in &tags {
        assert_eq!(
            remote_digest(&dst.image(&format!("app:{t}"))),
            remote_digest(&src.image(&format!("app:{t}")))
        );
    }
    let again = blob_puts(&dst.access_log()[before..]);
    // 8 images × 3 layers sharing a base, and a config each: 25 blobs.
    assert!(
        again <= 25 - landed,
        "what arrived is not sent again: {again} after {landed}"
    );
}

#[test]
fn two_jobs_shaping_one_source_tag_differently_cannot_share_its_name() {
    let src = Registry::start(RegistryConfig::anonymous());
    seed_multi(&src, "1", 3900);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: whole\n    source: {s}/multi\n    target: t.example/whole\n  - name: amd64\n    source: {s}/multi\n    target: t.example/amd64\n    platforms: [linux/amd64]\n  - name: again\n    source: {s}/multi\n    target: t.example/again\n",
            s = src.host()
        ),
    );
    let archive = dir.path().join("x.tar");
    let (code, _, err) = sync(&["--to-archive", &path(&archive), &cfg.display().to_string()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("shaped differently"), "{err}");
    // The same shape twice is one image, exported once.
    let (code, out, _) = run(&[
        "tags",
        "--output",
        "json",
        &format!("oci-archive:{}", path(&archive)),
    ]);
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(listed["images"].as_array().unwrap().len(), 1, "{listed}");
}
