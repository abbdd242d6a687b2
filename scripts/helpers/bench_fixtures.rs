//! Writes the benchmark images of `scripts/bench.sh` as OCI layouts:
//! big (4 layers × 128 MiB, incompressible), many (40 tags × 3 layers ×
//! 1 MiB sharing a base layer), multi (3 platforms × 2 layers × 8 MiB).
//!
//! bench_fixtures DIR [SCALE]   (SCALE divides the big layers, for quick runs)
//! bench_fixtures DIR curve     (one image per layer size: 1 MiB, 256 MiB, 2 GiB)
//! bench_fixtures DIR chaos     (scripts/chaos.sh: 16 single-arch tags and 4
//!                               3-platform indexes in one layout, tags printed)

#[allow(dead_code)]
#[path = "../../tests/support/image.rs"]
mod image;

use image::{ImageSpec, Layer, LayoutWriter};

const MIB: usize = 1024 * 1024;

/// A layer of incompressible bytes, gzipped (so every tool sees real gzip).
fn layer(seed: u64, size: usize) -> Layer {
    let tar = image::tar_with_file(&format!("f{seed}"), &image::noise(seed, size));
    Layer {
        gz: image::gzip(&tar),
        diff_id: image::sha256(&tar),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("DIR"));
    let second = args.next();
    if second.as_deref() == Some("curve") {
        for (name, size) in [("1m", MIB), ("256m", 256 * MIB), ("2g", 2048 * MIB)] {
            let layout = dir.join(name);
            let w = LayoutWriter::new(&layout);
            let (b, d) = w.image(&ImageSpec::new("linux/amd64", vec![layer(500, size)]));
            w.tag(&[("v1", image::OCI_MANIFEST, &b, &d)]);
        }
        return;
    }
    if second.as_deref() == Some("chaos") {
        chaos(&dir.join("chaos"));
        return;
    }
    let scale: usize = second.and_then(|s| s.parse().ok()).unwrap_or(1).max(1);

    let big_dir = dir.join("big");
    let w = LayoutWriter::new(&big_dir);
    let layers = (0..4).map(|i| layer(100 + i, 128 * MIB / scale)).collect();
    let (b, d) = w.image(&ImageSpec::new("linux/amd64", layers));
    w.tag(&[("v1", image::OCI_MANIFEST, &b, &d)]);

    let mid_dir = dir.join("mid");
    let w = LayoutWriter::new(&mid_dir);
    let layers = (0..2).map(|i| layer(150 + i, 64 * MIB / scale)).collect();
    let (b, d) = w.image(&ImageSpec::new("linux/amd64", layers));
    w.tag(&[("v1", image::OCI_MANIFEST, &b, &d)]);

    let many_dir = dir.join("many");
    let w = LayoutWriter::new(&many_dir);
    let base = layer(200, MIB);
    let mut tags = Vec::new();
    for i in 0..40u64 {
        let spec = ImageSpec::new(
            "linux/amd64",
            vec![
                base.clone(),
                layer(300 + 2 * i, MIB),
                layer(301 + 2 * i, MIB),
            ],
        );
        let (b, d) = w.image(&spec);
        tags.push((format!("t{i:02}"), b, d));
    }
    let entries: Vec<(&str, &str, &[u8], &str)> = tags
        .iter()
        .map(|(t, b, d)| (t.as_str(), image::OCI_MANIFEST, b.as_slice(), d.as_str()))
        .collect();
    w.tag(&entries);

    let multi_dir = dir.join("multi");
    let w = LayoutWriter::new(&multi_dir);
    let specs: Vec<ImageSpec> = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            ImageSpec::new(
                p,
                vec![
                    layer(400 + 2 * i as u64, 8 * MIB),
                    layer(401 + 2 * i as u64, 8 * MIB),
                ],
            )
        })
        .collect();
    let (b, d) = w.index(&specs);
    w.tag(&[("v1", image::OCI_INDEX, &b, &d)]);
    for (t, _, _) in &tags {
        println!("{t}");
    }
}

/// Images for `scripts/chaos.sh`: single-arch tags sharing a base layer
/// and multi-arch indexes, all different, in one layout.
fn chaos(dir: &std::path::Path) {
    let w = LayoutWriter::new(dir);
    let base = layer(600, 256 * 1024);
    let mut tags = Vec::new();
    for i in 0..16u64 {
        let spec = ImageSpec::new(
            "linux/amd64",
            vec![
                base.clone(),
                layer(700 + 2 * i, 256 * 1024),
                layer(701 + 2 * i, 128 * 1024),
            ],
        );
        let (b, d) = w.image(&spec);
        tags.push((format!("s{i:02}"), image::OCI_MANIFEST, b, d));
    }
    for i in 0..4u64 {
        let specs: Vec<ImageSpec> = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
            .iter()
            .enumerate()
            .map(|(p, platform)| {
                let seed = 800 + 10 * i + 2 * p as u64;
                ImageSpec::new(
                    platform,
                    vec![
                        base.clone(),
                        layer(seed, 512 * 1024),
                        layer(seed + 1, 64 * 1024),
                    ],
                )
            })
            .collect();
        let (b, d) = w.index(&specs);
        tags.push((format!("m{i}"), image::OCI_INDEX, b, d));
    }
    let entries: Vec<(&str, &str, &[u8], &str)> = tags
        .iter()
        .map(|(t, mt, b, d)| (t.as_str(), *mt, b.as_slice(), d.as_str()))
        .collect();
    w.tag(&entries);
    for (t, _, _, _) in &tags {
        println!("{t}");
    }
}
