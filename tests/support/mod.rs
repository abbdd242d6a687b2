//! Test harness shared by the integration tests: real registries, test
//! images, skopeo as an independent reader and writer, and the ocirepl
//! binary as a user runs it.
#![allow(dead_code, unused_imports)]

pub mod cosign;
pub mod fake;
pub mod http;
pub mod image;
pub mod pki;
pub mod proxy;
pub mod registry;
pub mod token;

use std::path::Path;
use std::process::{Command, Output};

pub use http::{manifest_digest, put_manifest_raw, upload_blob};
pub use image::{ImageSpec, Layer, LayoutWriter, three_platforms};
pub use registry::{Access, Registry, RegistryConfig, free_port, require};

/// Runs skopeo with `args`; panics with its stderr when it fails.
pub fn skopeo(args: &[&str]) -> String {
    let out = skopeo_output(args);
    assert!(
        out.status.success(),
        "skopeo {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn skopeo_output(args: &[&str]) -> Output {
    require("skopeo");
    Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .expect("run skopeo")
}

/// Pushes a layout image into a registry with skopeo (all platforms).
pub fn seed(layout: &Path, tag: &str, target: &str) {
    let src = format!("oci:{}:{tag}", layout.display());
    let dst = format!("docker://{target}");
    skopeo(&["copy", "--all", "--dest-tls-verify=false", &src, &dst]);
}

/// The exact manifest bytes a registry serves for an image, read by skopeo.
pub fn raw_manifest(image: &str) -> Vec<u8> {
    skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ])
    .into_bytes()
}

/// The digest a registry serves for a reference, read by skopeo.
pub fn remote_digest(image: &str) -> String {
    let out = skopeo(&[
        "inspect",
        "--no-tags",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{image}"),
    ]);
    out.trim().to_string()
}

/// The ocirepl binary, built by cargo for this test run.
pub fn ocirepl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ocirepl"))
}

/// Runs ocirepl and returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    run_with_env(args, &[])
}

pub fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = ocirepl();
    cmd.args(args)
        .env_remove("OCIREPL_SRC_CREDS")
        .env_remove("OCIREPL_DEST_CREDS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run ocirepl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Parses the single JSON report ocirepl printed with `--output json`.
pub fn report(stdout: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no report in {stdout:?}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad report {line:?}: {e}"))
}

/// SHA-256 of bytes, `sha256:HEX`.
pub fn sha256(data: &[u8]) -> String {
    image::sha256(data)
}

/// Whether a blob exists in a registry (plain HTTP HEAD, independent of ocirepl).
pub fn blob_exists(host: &str, repo: &str, digest: &str) -> bool {
    let url = format!("http://{host}/v2/{repo}/blobs/{digest}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async move {
        reqwest::Client::new()
            .head(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
}

/// Seeds `n` tags `t00`, `t01`… into `repo`: single-platform images of
/// `layers` layers, the first shared by all (1 to 64 KiB each otherwise).
pub fn seed_tags(reg: &Registry, repo: &str, n: usize, layers: usize, seed_n: u64) -> Vec<String> {
    let dir = tempfile::tempdir().expect("layout dir");
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

/// What a process used at its peak, sampled from /proc while it ran.
pub struct Peak {
    pub code: i32,
    pub stderr: String,
    pub rss_kib: u64,
    pub fds: usize,
}

/// Runs ocirepl (empty HOME), sampling its peak RSS and open descriptors.
pub fn run_sampled(args: &[&str]) -> Peak {
    use std::process::Stdio;
    let home = tempfile::tempdir().expect("home");
    let mut child = ocirepl()
        .args(args)
        .env("HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ocirepl");
    let (mut rss_kib, mut fds) = (0u64, 0usize);
    loop {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            for line in s.lines() {
                if let Some(v) = line.strip_prefix("VmHWM:") {
                    rss_kib =
                        rss_kib.max(v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0));
                }
            }
        }
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{}/fd", child.id())) {
            fds = fds.max(dir.count());
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    Peak {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        rss_kib,
        fds,
    }
}

/// Tags a registry lists for a repository, sorted (skopeo, independent of
/// ocirepl); none when it lists nothing.
pub fn tags_of(image_repo: &str) -> Vec<String> {
    let out = skopeo_output(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{image_repo}"),
    ]);
    if !out.status.success() {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list-tags json");
    let mut tags: Vec<String> = v["Tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

/// Writes a sync config as `DIR/mirror.yaml`.
pub fn config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("mirror.yaml");
    std::fs::write(&path, text).expect("write the config");
    path
}

/// `ocirepl sync ARGS` in a fresh `HOME` (no credentials, no cache).
pub fn sync(args: &[&str]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().display().to_string();
    run_with_env(&[&["sync"], args].concat(), &[("HOME", home.as_str())])
}

/// The per-image reports of a `sync --output json` run (every line must
/// be JSON; the summary line left out).
pub fn reports(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("summary").is_none())
        .collect()
}

/// One small image (one random layer of `size` bytes) per tag in
/// `repo`; returns (tag, digest).
pub fn seed_images(
    reg: &Registry,
    repo: &str,
    tags: &[&str],
    seed_n: u64,
    size: usize,
) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let w = image::LayoutWriter::new(dir.path());
    let mut out = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let (bytes, digest) = w.image(&image::ImageSpec::new(
            "linux/amd64",
            vec![image::Layer::random(seed_n + i as u64, size)],
        ));
        w.tag(&[(t, image::OCI_MANIFEST, bytes.as_slice(), digest.as_str())]);
        seed(dir.path(), t, &reg.image(&format!("{repo}:{t}")));
        out.push((t.to_string(), digest));
    }
    out
}
