//! Test harness shared by the integration tests: real registries, test
//! images, skopeo as an independent reader and writer, and the ocirepl
//! binary as a user runs it.
#![allow(dead_code, unused_imports)]

pub mod fake;
pub mod image;
pub mod pki;
pub mod proxy;
pub mod registry;
pub mod token;

use std::path::Path;
use std::process::{Command, Output};

pub use image::{ImageSpec, Layer, LayoutWriter, three_platforms};
pub use registry::{Access, Registry, RegistryConfig, require};

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

/// PUTs a manifest with plain HTTP (for shapes skopeo cannot seed, like a
/// nested index); independent of ocirepl's own code.
pub fn put_manifest_raw(
    image_host: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) {
    let url = format!("http://{image_host}/v2/{repo}/manifests/{reference}");
    let body = bytes.to_vec();
    let media_type = media_type.to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let status = rt.block_on(async move {
        reqwest::Client::new()
            .put(&url)
            .header("Content-Type", media_type)
            .body(body)
            .send()
            .await
            .expect("PUT manifest")
            .status()
    });
    assert!(status.is_success(), "raw manifest PUT answered {status}");
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
