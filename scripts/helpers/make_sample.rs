//! Regenerates the bundled sample under `examples/sample/`: a small OCI
//! layout holding a three-platform index (linux/amd64, linux/arm64,
//! linux/arm/v7) whose images share a base layer. Deterministic: running
//! it again writes the same bytes.
//!
//! cargo run --example make_sample -- examples/sample

#[allow(dead_code)]
#[path = "../../tests/support/image.rs"]
mod image;

use image::{ImageSpec, Layer, LayoutWriter, gzip, sha256, tar_with_file};

fn text_layer(name: &str, text: &str) -> Layer {
    let tar = tar_with_file(name, text.as_bytes());
    Layer {
        gz: gzip(&tar),
        diff_id: sha256(&tar),
    }
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/sample".to_string());
    let root = std::path::Path::new(&out);
    if root.exists() {
        std::fs::remove_dir_all(root).expect("remove the old sample");
    }
    let base = text_layer("etc/ocirepl-sample", "a layer shared by every platform\n");
    let specs: Vec<ImageSpec> = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
        .iter()
        .map(|p| {
            let own = text_layer(
                "hello.txt",
                &format!("hello from the ocirepl sample for {p}\n"),
            );
            ImageSpec::new(p, vec![base.clone(), own])
        })
        .collect();
    let w = LayoutWriter::new(root);
    let (bytes, digest) = w.index(&specs);
    w.tag(&[("1.0", image::OCI_INDEX, &bytes, &digest)]);
    println!("{digest}");
}
