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

fn seed_many(reg: &Registry, repo: &str, n: usize, layers: usize, seed_n: u64) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let base = Layer::random(seed_n, 64 * 1024);
    let mut tags = Vec::new();
    for i in 0..n {
        let mut ls = vec![base.clone()];
        for j in 1..layers {
            ls.push(Layer::random(
                seed_n + (i * layers + j) as u64,
                1024 * (1 + (i + j) % 64),
            ));
        }
        let (b, d) = w.image(&ImageSpec::new("linux/amd64", ls));
        tags.push((format!("t{i:02}"), b, d));
    }
    let entries: Vec<(&str, &str, &[u8], &str)> = tags
        .iter()
        .map(|(t, b, d)| (t.as_str(), image::OCI_MANIFEST, b.as_slice(), d.as_str()))
        .collect();
    w.tag(&entries);
    for (t, _, _) in &tags {
        seed(dir.path(), t, &reg.image(&format!("{repo}:{t}")));
    }
    tags.into_iter().map(|(t, _, _)| t).collect()
}

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
    let tags = seed_many(&src, "mirror", 20, 3, 1100);
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
    seed_many(&src, "load", 50, 5, 1200);
    let home = tempfile::tempdir().unwrap();
    let mut child = ocirepl()
        .args([
            "copy",
            "-q",
            "--all-tags",
            "--jobs",
            "16",
            &src.image("load"),
            &dst.image("load"),
        ])
        .env("HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut peak_rss, mut peak_fds) = (0u64, 0usize);
    loop {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            for line in s.lines() {
                if let Some(v) = line.strip_prefix("VmHWM:") {
                    peak_rss =
                        peak_rss.max(v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0));
                }
            }
        }
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", child.id())) {
            peak_fds = peak_fds.max(fds.count());
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "50 images × 5 layers: peak RSS {} MiB, peak fds {peak_fds}",
        peak_rss / 1024
    );
    assert!(peak_rss < 128 * 1024, "peak RSS {peak_rss} KiB");
    assert!(peak_fds < 128, "peak open fds {peak_fds}");
    let posts = dst
        .access_log()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(
        posts,
        1 + 50 * 5,
        "the shared base once, 4 own layers and a config per image"
    );
}
