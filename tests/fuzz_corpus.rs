//! The fuzz corpus (`fuzz/corpus/<target>/`) replayed as ordinary tests:
//! every input a fuzzer found interesting, and every crash it ever found
//! (kept there once fixed), goes through the same checks on every CI run.

#[path = "../fuzz/bodies.rs"]
mod bodies;

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        let result = std::panic::catch_unwind(|| body(&data));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
        n += 1;
    }
    assert!(n > 0, "the {target} corpus is empty");
}

#[test]
fn references() {
    replay("reference", bodies::reference);
}

#[test]
fn challenges() {
    replay("challenge", bodies::challenge);
}

#[test]
fn manifests() {
    replay("manifest", bodies::manifest);
}

#[test]
fn schema1() {
    replay("schema1", bodies::schema1);
}

#[test]
fn ranges() {
    replay("range", bodies::range);
}

#[test]
fn tokens() {
    replay("token", bodies::token);
}

#[test]
fn sync_configs() {
    replay("sync_config", bodies::sync_config);
}

#[test]
fn layout_indexes() {
    replay("layout_index", bodies::layout_index);
}

#[test]
fn archives() {
    replay("archive", bodies::archive);
}
