//! Per-registry caps across a whole run: `requests_per_second` spaces the
//! requests a registry gets, `bandwidth` the blob bytes; measured on the
//! registry's own access log and the run's wall time.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// The `[06/Dec/2026:23:35:24 +0000]` second of each access-log line.
fn seconds(reg: &Registry, mark: usize) -> Vec<String> {
    let text = std::fs::read_to_string(reg.storage().parent().unwrap().join("access.log")).unwrap();
    text.lines()
        .skip(mark)
        .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_string()))
        .collect()
}

#[test]
fn requests_per_second_spaces_a_run_and_bandwidth_its_bytes() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_tags(&src, "many", 40, 1, 600);
    let dir = tempfile::tempdir().unwrap();
    let job = |caps: &str| {
        config(
            dir.path(),
            &format!(
                "version: 1\nregistries:\n  \"{}\":\n{caps}jobs:\n  - name: many\n    source: {}\n    target: {}\n",
                src.host(),
                src.image("many"),
                dst.image("many")
            ),
        )
    };
    let free = job("    concurrency: 16\n");
    let (code, _, err) = sync(&[&free.display().to_string()]);
    assert_eq!(code, 0, "{err}");

    // Unchanged: a tag list and 40 HEADs at the source, 5 a second.
    let capped = job("    requests_per_second: 5\n");
    let mark = src.access_log().len();
    let started = Instant::now();
    let (code, _, err) = sync(&[&capped.display().to_string()]);
    let took = started.elapsed();
    assert_eq!(code, 0, "{err}");
    let stamps = seconds(&src, mark);
    assert!(stamps.len() >= 41, "{} requests", stamps.len());
    eprintln!("{} requests in {took:?}", stamps.len());
    let expected = Duration::from_millis(200 * (stamps.len() as u64 - 1));
    assert!(took >= expected, "{took:?} < {expected:?}");
    assert!(took < expected + Duration::from_secs(3), "{took:?}");
    let mut per_second = std::collections::BTreeMap::<&str, usize>::new();
    for s in &stamps {
        *per_second.entry(s.as_str()).or_default() += 1;
    }
    assert!(per_second.values().all(|n| *n <= 6), "{per_second:?}");

    // 50 MiB of layer at 10 MiB/s: about five seconds.
    let layout = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(layout.path());
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(610, 50 * 1024 * 1024)],
    ));
    w.tag(&[(
        "big",
        image::OCI_MANIFEST,
        bytes.as_slice(),
        digest.as_str(),
    )]);
    seed(layout.path(), "big", &src.image("big:1"));
    let big = config(
        dir.path(),
        &format!(
            "version: 1\nregistries:\n  \"{}\":\n    bandwidth: 10MiB/s\njobs:\n  - name: big\n    source: {}\n    target: {}\n",
            src.host(),
            src.image("big"),
            dst.image("big")
        ),
    );
    let started = Instant::now();
    let (code, _, err) = sync(&[&big.display().to_string()]);
    let took = started.elapsed();
    assert_eq!(code, 0, "{err}");
    eprintln!("50 MiB at 10 MiB/s: {took:?}");
    assert!(took >= Duration::from_millis(4700), "{took:?}");
    assert!(took < Duration::from_secs(9), "{took:?}");
    assert_eq!(remote_digest(&dst.image("big:1")), digest);
}
