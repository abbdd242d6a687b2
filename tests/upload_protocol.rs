//! Upload protocol details a real registry will not show on demand, against
//! the scripted fake: a minimum chunk length, and a refused mount whose
//! upload session is then used.

mod support;

use support::fake::{FakeRegistry, Reply, Rule};
use support::*;

fn layout_with_layer(size: usize, seed_n: u64) -> (tempfile::TempDir, String, Layer) {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let layer = Layer::random(seed_n, size);
    let (bytes, digest) = w.image(&ImageSpec::new("linux/amd64", vec![layer.clone()]));
    w.tag(&[("v1", image::OCI_MANIFEST, &bytes, &digest)]);
    (dir, digest, layer)
}

/// `OCI-Chunk-Min-Length` on the session wins over a smaller --chunk-size.
#[test]
fn chunks_respect_the_registrys_minimum() {
    let (dir, digest, layer) = layout_with_layer(600 * 1024, 1300);
    let src = FakeRegistry::start();
    src.load_layout(dir.path(), "app");
    let dst = FakeRegistry::start();
    dst.rule(Rule::map("POST", "/blobs/uploads/", |_, r| {
        r.header("OCI-Chunk-Min-Length", "200000")
    }));
    let (code, _, err) = run(&[
        "copy",
        "--upload-mode",
        "chunked",
        "--chunk-size",
        "65536",
        &src.image("app:v1"),
        &dst.image("app:v1"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(dst.has_manifest("app", &digest));
    let layer_digest = sha256(&layer.gz);
    assert_eq!(dst.blob(&layer_digest).unwrap(), layer.gz);
    let sizes: Vec<usize> = dst
        .seen()
        .iter()
        .filter(|s| s.method == "PATCH" && s.body.len() > 1000)
        .map(|s| s.body.len())
        .collect();
    assert!(!sizes.is_empty());
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&n| n == 200_000),
        "{sizes:?}"
    );
}

/// A mount the registry refuses (202) opens a session; the upload uses it
/// instead of opening another.
#[test]
fn a_refused_mount_session_is_used() {
    let (dir, digest, _) = layout_with_layer(50 * 1024, 1310);
    let reg = FakeRegistry::start();
    reg.load_layout(dir.path(), "base");
    // The fake keeps blobs for every repository: make the target repository ask for them.
    reg.rule(Rule::reply(
        "HEAD",
        "/v2/derived/blobs/",
        Reply::status(404),
    ));
    let (code, _, err) = run(&["copy", &reg.image("base:v1"), &reg.image("derived:v1")]);
    assert_eq!(code, 0, "{err}");
    assert!(reg.has_manifest("derived", &digest));
    let posts: Vec<_> = reg
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST" && !s.target.contains("from=derived"))
        .collect();
    assert_eq!(
        posts.len(),
        2,
        "one mount attempt per blob and nothing more: {:?}",
        posts.iter().map(|p| &p.target).collect::<Vec<_>>()
    );
    assert!(
        posts
            .iter()
            .all(|p| p.target.contains("mount=") && p.target.contains("from=base"))
    );
    let puts = reg
        .seen()
        .into_iter()
        .filter(|s| s.method == "PUT" && s.path().contains("/blobs/uploads/"))
        .count();
    assert_eq!(
        puts, 2,
        "each blob uploaded into the session its mount opened"
    );
}
