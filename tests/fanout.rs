//! Read once, write many: several jobs sharing layers upload each blob to
//! a target registry once (the second user of a digest waits and mounts),
//! one source image to several targets read once from the source, one
//! target down leaving the others complete, and read mirrors (part of the
//! content, all of it, a lying one) against real registries and a fake.

mod support;

use std::collections::HashSet;

use support::*;

fn sync(args: &[&str]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().display().to_string();
    run_with_env(&[&["sync"], args].concat(), &[("HOME", home.as_str())])
}

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
        .map(|r| format!("  - name: {r}\n    source: {}/{r}\n    target: TARGET/{r}\n", src.host()))
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
            .filter_map(|a| a.path.split("digest=").nth(1).map(|d| d.split('&').next().unwrap_or(d).to_string()))
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
