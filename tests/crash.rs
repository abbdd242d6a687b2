//! Scenario 4: `kill -9` at arbitrary points of a 20-tag mirror job. After
//! every kill each tag in the target names a complete image (its manifest
//! and every blob it references are there), and a final run converges.
//! Scenario 6 (scaled to CI): 50 images × 5 layers at --jobs 16 with bounded
//! memory and file descriptors.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// Every tag present in `repo` names a manifest whose blobs all exist.
fn assert_complete(reg: &Registry, repo: &str, tags: &[String]) -> usize {
    let mut present = 0;
    for t in tags {
        let out = skopeo_output(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}", reg.image(&format!("{repo}:{t}"))),
        ]);
        if !out.status.success() {
            continue;
        }
        present += 1;
        let m: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut digests = vec![m["config"]["digest"].as_str().unwrap().to_string()];
        digests.extend(
            m["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["digest"].as_str().unwrap().to_string()),
        );
        for d in digests {
            assert!(
                blob_exists(&reg.host(), repo, &d),
                "{repo}:{t} references missing blob {d}"
            );
        }
    }
    present
}

#[test]
fn kill_9_at_any_point_leaves_complete_tags_and_a_rerun_converges() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    let tags = seed_tags(&src, "mirror", 20, 3, 1100);
    let home = tempfile::tempdir().unwrap();
    // Deterministic "random" kill points between 30 and 250 ms.
    let mut x: u64 = 0x9E37_79B9;
    for round in 0..8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let after = Duration::from_millis(30 + x % 220);
        let mut child = ocirepl()
            .args([
                "copy",
                "-q",
                "--all-tags",
                "--jobs",
                "2",
                &src.image("mirror"),
                &dst.image("mirror"),
            ])
            .env("HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(after);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let present = assert_complete(&dst, "mirror", &tags);
        eprintln!("round {round}: killed after {after:?}, {present} complete tags");
    }
    let before = dst.open_uploads("mirror");
    let (code, _, err) = run(&[
        "copy",
        "--all-tags",
        &src.image("mirror"),
        &dst.image("mirror"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(assert_complete(&dst, "mirror", &tags), 20);
    for t in &tags {
        assert_eq!(
            remote_digest(&dst.image(&format!("mirror:{t}"))),
            remote_digest(&src.image(&format!("mirror:{t}")))
        );
    }
    assert!(
        dst.open_uploads("mirror") <= before,
        "the successful run left no session of its own"
    );
}

#[test]
fn many_images_at_high_concurrency_stay_bounded() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_tags(&src, "load", 50, 5, 1200);
    let peak = run_sampled(&[
        "copy",
        "-q",
        "--all-tags",
        "--jobs",
        "16",
        &src.image("load"),
        &dst.image("load"),
    ]);
    assert_eq!(peak.code, 0, "{}", peak.stderr);
    eprintln!(
        "50 images × 5 layers: peak RSS {} MiB, peak fds {}",
        peak.rss_kib / 1024,
        peak.fds
    );
    assert!(peak.rss_kib < 128 * 1024, "peak RSS {} KiB", peak.rss_kib);
    assert!(peak.fds < 128, "peak open fds {}", peak.fds);
    let uploads = dst
        .access_log()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/"))
        .count();
    assert_eq!(
        uploads,
        1 + 50 * 5,
        "the shared base once, 4 own layers and a config per image"
    );
}
