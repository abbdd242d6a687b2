//! Read once, write many: several jobs sharing layers upload each blob to
//! a target registry once (the second user of a digest waits and mounts),
//! one source image to several targets read once from the source, one
//! target down leaving the others complete, and read mirrors (part of the
//! content, all of it, a lying one) against real registries and a fake.

mod support;

use std::collections::HashSet;

use support::*;

/// Blob uploads a registry completed (the PUT that closes a session).
fn uploads(reg: &Registry) -> Vec<Access> {
    reg.access_log()
        .into_iter()
        .filter(|a| a.method == "PUT" && a.path.contains("/blobs/uploads/") && a.status == 201)
        .collect()
}

/// `repos` repositories of `tags` images each, every image sharing one
/// base layer and each repository sharing a second one; returns the
/// number of distinct blobs.
fn seed_shared(reg: &Registry, repos: &[&str], tags: usize, seed_n: u64) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let base = Layer::random(seed_n, 96 * 1024);
    let mut blobs = HashSet::new();
    for (r, repo) in repos.iter().enumerate() {
        let shared = Layer::random(seed_n + 100 + r as u64, 48 * 1024);
        for t in 0..tags {
            let own = Layer::random(seed_n + 1000 + (r * tags + t) as u64, 8 * 1024);
            let spec = ImageSpec::new("linux/amd64", vec![base.clone(), shared.clone(), own]);
            let (bytes, digest) = w.image(&spec);
            let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            blobs.insert(m["config"]["digest"].as_str().unwrap().to_string());
            for l in m["layers"].as_array().unwrap() {
                blobs.insert(l["digest"].as_str().unwrap().to_string());
            }
            let tag = format!("t{t}");
            w.tag(&[(&tag, image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
            seed(dir.path(), &tag, &reg.image(&format!("{repo}:{tag}")));
        }
    }
    blobs.len()
}

#[test]
fn jobs_sharing_layers_upload_each_blob_to_a_registry_once() {
    let src = Registry::start(RegistryConfig::anonymous());
    let repos = ["a", "b", "c", "d"];
    let distinct = seed_shared(&src, &repos, 3, 2000);
    let jobs: String = repos
        .iter()
        .map(|r| {
            format!(
                "  - name: {r}\n    source: {}/{r}\n    target: TARGET/{r}\n",
                src.host()
            )
        })
        .collect();
    for round in 0..2 {
        let dst = Registry::start(RegistryConfig::anonymous());
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(
            dir.path(),
            &format!("version: 1\njobs:\n{}", jobs.replace("TARGET", &dst.host())),
        );
        let (code, _, err) = sync(&[&cfg.display().to_string()]);
        assert_eq!(code, 0, "{err}");
        let up = uploads(&dst);
        let digests: HashSet<String> = up
            .iter()
            .filter_map(|a| {
                a.path
                    .split("digest=")
                    .nth(1)
                    .map(|d| d.split('&').next().unwrap_or(d).to_string())
            })
            .collect();
        assert_eq!(
            up.len(),
            distinct,
            "round {round}: {distinct} distinct blobs, each uploaded once (the rest mounted): {} uploads of {} digests",
            up.len(),
            digests.len()
        );
    }
}

#[test]
fn three_targets_from_one_read_of_the_source() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.index(&three_platforms(2100));
    w.tag(&[("1.0", image::OCI_INDEX, bytes.as_slice(), digest.as_str())]);
    seed(dir.path(), "1.0", &src.image("multi:1.0"));
    let seeded = src.access_log().len();
    let dsts: Vec<Registry> = (0..3)
        .map(|_| Registry::start(RegistryConfig::anonymous()))
        .collect();

    // `copy SRC DST DST DST`
    let mut args = vec![
        "copy".to_string(),
        "--output".into(),
        "json".into(),
        src.image("multi:1.0"),
    ];
    args.extend(dsts.iter().map(|d| d.image("multi:1.0")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3, "one report per target: {out}");
    for d in &dsts {
        assert_eq!(remote_digest(&d.image("multi:1.0")), digest);
    }
    let after_copy = src.access_log();
    let gets = blob_gets_since(&after_copy[seeded..]);
    assert!(!gets.is_empty());
    assert!(
        gets.values().all(|n| *n == 1),
        "each blob read once: {gets:?}"
    );
    let manifest_gets = after_copy[seeded..]
        .iter()
        .filter(|a| a.method == "GET" && a.path.contains("/manifests/"))
        .count();
    assert_eq!(manifest_gets, 4, "the index and its 3 children, once each");

    // The same as a sync job with `targets`, into new repositories.
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: multi\n    source: {}/multi\n    targets:\n{}",
            src.host(),
            dsts.iter()
                .map(|d| format!("      - {}/mirrored\n", d.host()))
                .collect::<String>()
        ),
    );
    let before = src.access_log().len();
    let (code, out, err) = sync(&["--output", "json", &cfg.display().to_string()]);
    assert_eq!(code, 0, "{err}{out}");
    for d in &dsts {
        assert_eq!(remote_digest(&d.image("mirrored:1.0")), digest);
    }
    let gets = blob_gets_since(&src.access_log()[before..]);
    assert!(
        gets.values().all(|n| *n == 1),
        "each blob read once: {gets:?}"
    );
}

fn blob_gets_since(log: &[Access]) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for a in log {
        if a.method == "GET" && a.path.contains("/blobs/sha256:") {
            let d = a.path.rsplit('/').next().unwrap_or_default().to_string();
            *out.entry(d).or_default() += 1;
        }
    }
    out
}

#[test]
fn one_target_down_leaves_the_others_complete() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(2200, 300 * 1024), Layer::random(2201, 4096)],
    ));
    w.tag(&[(
        "1.0",
        image::OCI_MANIFEST,
        bytes.as_slice(),
        digest.as_str(),
    )]);
    seed(dir.path(), "1.0", &src.image("app:1.0"));
    let (a, b) = (
        Registry::start(RegistryConfig::anonymous()),
        Registry::start(RegistryConfig::anonymous()),
    );
    let down = format!("127.0.0.1:{}", free_port());
    let (code, out, err) = run(&[
        "copy",
        "--output",
        "json",
        &src.image("app:1.0"),
        &a.image("app:1.0"),
        &format!("{down}/app:1.0"),
        &b.image("app:1.0"),
    ]);
    assert_eq!(code, 1, "{err}");
    let reports: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 3, "{out}");
    let failed: Vec<&serde_json::Value> =
        reports.iter().filter(|r| r["action"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(
        failed[0]["target"].as_str().unwrap().starts_with(&down),
        "{out}"
    );
    for r in [&a, &b] {
        assert_eq!(remote_digest(&r.image("app:1.0")), digest);
    }
    let gets = blob_gets_since(&src.access_log());
    assert!(gets.values().all(|n| *n == 1), "{gets:?}");
}

/// An image of a config and two layers, pushed to `reg` as `repo:1.0`;
/// returns (manifest digest, layer digests and sizes).
fn seed_small(reg: &Registry, repo: &str, seed_n: u64) -> (String, Vec<(String, u64)>) {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![
            Layer::random(seed_n, 200 * 1024),
            Layer::random(seed_n + 1, 100 * 1024),
        ],
    ));
    w.tag(&[(
        "1.0",
        image::OCI_MANIFEST,
        bytes.as_slice(),
        digest.as_str(),
    )]);
    seed(dir.path(), "1.0", &reg.image(&format!("{repo}:1.0")));
    let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let layers = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect();
    (digest, layers)
}

fn mirror_config(dir: &std::path::Path, origin: &str, mirrors: &[String], target: &str) -> String {
    let list: String = mirrors.iter().map(|m| format!("\"{m}\", ")).collect();
    config(
        dir,
        &format!(
            "version: 1\nregistries:\n  \"{origin}\":\n    mirrors: [{}]\njobs:\n  - name: app\n    source: {origin}/app\n    target: {target}/app\n",
            list.trim_end_matches(", ")
        ),
    )
    .display()
    .to_string()
}

#[test]
fn read_mirrors_serve_what_they_hold_and_the_origin_the_rest() {
    let origin = Registry::start(RegistryConfig::anonymous());
    let mirror = Registry::start(RegistryConfig::anonymous());
    let (digest, layers) = seed_small(&origin, "app", 2300);
    // The mirror holds the image under its prefix, less one layer.
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}", origin.image("app:1.0")),
        &format!("docker://{}", mirror.image("cache/app:1.0")),
    ]);
    let (gone, gone_size) = &layers[1];
    let url = format!("http://{}/v2/cache/app/blobs/{gone}", mirror.host());
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::Client::new()
                .delete(&url)
                .send()
                .await
                .unwrap()
                .status()
        });
    assert!(status.is_success(), "DELETE blob: {status}");
    let mark = origin.access_log().len();
    let dst = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let cfg = mirror_config(
        dir.path(),
        &origin.host(),
        &[format!("{}/cache", mirror.host())],
        &dst.host(),
    );
    let (code, out, err) = sync(&["--output", "json", &cfg]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(remote_digest(&dst.image("app:1.0")), digest);
    let at_origin = &origin.access_log()[mark..];
    let blob_gets: Vec<&Access> = at_origin
        .iter()
        .filter(|a| a.method == "GET" && a.path.contains("/blobs/"))
        .collect();
    assert_eq!(
        blob_gets.len(),
        1,
        "only the layer the mirror lacks: {at_origin:?}"
    );
    assert!(blob_gets[0].path.ends_with(gone.as_str()));
    assert!(
        !at_origin
            .iter()
            .any(|a| a.method == "GET" && a.path.contains("/manifests/")),
        "the tag is resolved by HEAD at the origin, the manifest read from the mirror: {at_origin:?}"
    );
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let read = &summary["summary"]["read"];
    assert!(read[mirror.host()].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(read[origin.host()].as_u64(), Some(*gone_size), "{summary}");
}

#[test]
fn a_mirror_holding_everything_spares_the_origin_every_blob() {
    let origin = Registry::start(RegistryConfig::anonymous());
    let mirror = Registry::start(RegistryConfig::anonymous());
    let (digest, _) = seed_small(&origin, "app", 2400);
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}", origin.image("app:1.0")),
        &format!("docker://{}", mirror.image("app:1.0")),
    ]);
    let mark = origin.access_log().len();
    let dst = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    // A dead mirror first: skipped with a warning, the next one used.
    let dead = format!("127.0.0.1:{}", free_port());
    let cfg = mirror_config(
        dir.path(),
        &origin.host(),
        &[dead.clone(), mirror.host()],
        &dst.host(),
    );
    let (code, _, err) = sync(&[&cfg]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("read mirror") && err.contains(&dead),
        "a warning names it: {err}"
    );
    assert_eq!(remote_digest(&dst.image("app:1.0")), digest);
    let at_origin = &origin.access_log()[mark..];
    assert!(
        !at_origin
            .iter()
            .any(|a| a.method == "GET" && a.path.contains("/blobs/")),
        "no blob GET at the origin: {at_origin:?}"
    );
}

#[test]
fn a_lying_mirror_is_skipped_and_nothing_bad_is_pushed() {
    use support::fake::{FakeRegistry, Rule};
    let origin = Registry::start(RegistryConfig::anonymous());
    let (digest, layers) = seed_small(&origin, "app", 2500);
    // The fake mirror holds the image, but serves one layer with a byte flipped.
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}", origin.image("app:1.0")),
        &format!("oci:{}:1.0", layout.display()),
    ]);
    let liar = FakeRegistry::start();
    liar.load_layout(&layout, "app");
    let flipped = layers[0].0.clone();
    liar.rule(Rule::map(
        "GET",
        &format!("/blobs/{flipped}"),
        |_, mut reply| {
            if let Some(b) = reply.body.get_mut(10) {
                *b ^= 0xff;
            }
            reply
        },
    ));
    let dst = Registry::start(RegistryConfig::anonymous());
    let cfg = mirror_config(dir.path(), &origin.host(), &[liar.host()], &dst.host());
    let (code, _, err) = sync(&[&cfg]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("read mirror") && err.contains("skipped"),
        "{err}"
    );
    assert_eq!(remote_digest(&dst.image("app:1.0")), digest);
    assert!(blob_exists(&dst.host(), "app", &flipped));
    let from_origin = origin
        .access_log()
        .iter()
        .filter(|a| a.method == "GET" && a.path.ends_with(flipped.as_str()))
        .count();
    assert!(
        from_origin >= 1,
        "the lied-about layer came from the origin"
    );
}

#[test]
fn a_slow_target_does_not_hold_the_others_back() {
    use support::proxy::{Fault, FaultProxy, ProxyRule};
    let src = Registry::start(RegistryConfig::anonymous());
    let (digest, _) = seed_small(&src, "app", 2600);
    let (a, b, slow) = (
        Registry::start(RegistryConfig::anonymous()),
        Registry::start(RegistryConfig::anonymous()),
        Registry::start(RegistryConfig::anonymous()),
    );
    let proxy = FaultProxy::start(slow.port);
    proxy.rule(
        ProxyRule::new(
            "PUT",
            "/blobs/uploads/",
            Fault::Delay(std::time::Duration::from_secs(3)),
        )
        .times(10),
    );
    let (code, out, err) = run(&[
        "copy",
        "--output",
        "json",
        &src.image("app:1.0"),
        &a.image("app:1.0"),
        &proxy.image("app:1.0"),
        &b.image("app:1.0"),
    ]);
    assert_eq!(code, 0, "{err}");
    let took: Vec<(String, u64)> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|r| {
            (
                r["target"].as_str().unwrap().to_string(),
                r["duration_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    let slowest = took
        .iter()
        .find(|(t, _)| t.contains(&proxy.host()))
        .unwrap()
        .1;
    assert!(slowest >= 3000, "{took:?}");
    for (t, ms) in &took {
        if !t.contains(&proxy.host()) {
            assert!(
                *ms < 2000,
                "a fast target finished at its own speed: {took:?}"
            );
        }
    }
    for r in [&a, &b, &slow] {
        assert_eq!(remote_digest(&r.image("app:1.0")), digest);
    }
}
