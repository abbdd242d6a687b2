//! Scenario 7: a large blob copied monolithically and in chunks with
//! memory that does not grow with its size (peak RSS of the ocirepl
//! process, read from /proc while it runs). CI uses 256 MiB;
//! `scripts/bench.sh` goes to 2 GiB.

mod support;

use support::*;

const SIZE: usize = 256 * 1024 * 1024;
/// Generous for a process that streams: a few chunk buffers and the HTTP stack.
const MAX_RSS_KIB: u64 = 96 * 1024;

#[test]
fn a_large_blob_streams_with_flat_memory_in_both_modes() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    // Incompressible bytes stand in for a gzip layer: nothing here unpacks it.
    let data = image::noise(7, SIZE);
    let layer = Layer {
        diff_id: sha256(&data),
        gz: data,
    };
    let (bytes, layout_digest) = w.image(&ImageSpec::new("linux/amd64", vec![layer]));
    w.tag(&[("v1", image::OCI_MANIFEST, &bytes, &layout_digest)]);
    seed(dir.path(), "v1", &a.image("big:v1"));
    // skopeo may rewrite the manifest of a "gzip" layer that is not gzip: the
    // registry's digest is the one to keep.
    let digest = remote_digest(&a.image("big:v1"));
    let _ = bytes;
    let src = a.image("big:v1");

    for (tag, mode) in [
        ("mono", &["--upload-mode", "monolithic"][..]),
        (
            "chunked",
            &["--upload-mode", "chunked", "--chunk-size", "8388608"][..],
        ),
    ] {
        let dst = b.image(&format!("{tag}:v1"));
        let mut args = vec!["copy", src.as_str(), dst.as_str()];
        args.extend_from_slice(mode);
        let Peak {
            code,
            stderr: err,
            rss_kib: peak,
            ..
        } = run_sampled(&args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(remote_digest(&dst), digest);
        eprintln!(
            "{tag}: peak RSS {} MiB for a {} MiB blob",
            peak / 1024,
            SIZE / (1024 * 1024)
        );
        assert!(peak > 0 && peak < MAX_RSS_KIB, "{tag}: peak RSS {peak} KiB");
    }
    let manifest: serde_json::Value = serde_json::from_slice(&raw_manifest(&src)).unwrap();
    let chunks =
        |d: &serde_json::Value| (d["size"].as_u64().unwrap() as usize).div_ceil(8 * 1024 * 1024);
    let expected = chunks(&manifest["config"])
        + manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(chunks)
            .sum::<usize>();
    let patches = b
        .access_log()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, expected, "contiguous 8 MiB chunks");
    assert_eq!(b.open_uploads("mono") + b.open_uploads("chunked"), 0);
}
