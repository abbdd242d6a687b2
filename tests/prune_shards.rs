//! Guarded pruning and shards against real registries: a stale tag goes, a
//! tag outside the filters stays, a stale tag sharing its digest with a
//! kept one is left with the reason, prune_max stops everything, deletes
//! disabled are a clear error; three shard processes split a job exactly,
//! and JOB_COMPLETION_INDEX gives the same share as --shard.

mod support;

use ocirepl::sync::shard::shard_of;
use std::collections::HashSet;

use support::*;

fn sync(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().display().to_string();
    let mut all = vec![("HOME", home.as_str())];
    all.extend_from_slice(env);
    run_with_env(&[&["sync"], args].concat(), &all)
}

#[test]
fn pruning_deletes_stale_tags_inside_the_filters_only() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_images(&src, "app", &["1.0", "1.1"], 100, 2048);
    // The target also has a stale 1.2, a 1.3 that is 1.0's manifest under
    // another name, and a tag outside the filters.
    let target_only = seed_images(&dst, "app", &["1.2", "local"], 200, 2048);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: app\n    source: {}/app\n    target: {}/app\n    tags: {{include: [\"1.*\"]}}\n    prune: true\n",
            src.host(),
            dst.host()
        ),
    );
    let cfg = cfg.display().to_string();
    // The plan lists what would go and deletes nothing.
    let (code, out, err) = sync(&["--plan", "--output", "json", &cfg], &[]);
    assert_eq!(code, 0, "{err}");
    let planned: Vec<String> = reports(&out)
        .iter()
        .filter(|r| r["action"] == "prune")
        .map(|r| r["target"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(planned, [dst.image("app:1.2")]);
    assert!(tags_of(&dst.image("app")).contains(&"1.2".to_string()));

    let (code, out, err) = sync(&["--output", "json", &cfg], &[]);
    assert_eq!(code, 0, "{err}{out}");
    assert_eq!(tags_of(&dst.image("app")), ["1.0", "1.1", "local"]);
    assert!(
        reports(&out).iter().any(|r| r["action"] == "pruned"),
        "{out}"
    );
    assert_eq!(target_only.len(), 2);

    // A stale tag that shares its digest with a tag that stays: distribution
    // deletes by digest, which would take 1.0 too, so 1.3 stays, with why.
    let m = raw_manifest(&dst.image("app:1.0"));
    put_manifest_raw(&dst.host(), "app", "1.3", image::OCI_MANIFEST, &m);
    let (code, out, err) = sync(&["--output", "json", &cfg], &[]);
    assert_eq!(code, 0, "{err}{out}");
    let kept = reports(&out)
        .into_iter()
        .find(|r| r["target"] == dst.image("app:1.3"))
        .unwrap_or_else(|| panic!("no report for 1.3: {out}"));
    assert_eq!(kept["action"], "skipped");
    assert!(
        kept["reason"]
            .as_str()
            .unwrap()
            .contains("deletes by digest only"),
        "{kept}"
    );
    assert_eq!(tags_of(&dst.image("app")), ["1.0", "1.1", "1.3", "local"]);
}

#[test]
fn prune_max_stops_everything_and_disabled_deletes_are_a_clear_error() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    seed_images(&src, "app", &["1.0"], 300, 2048);
    seed_images(&dst, "app", &["1.7", "1.8", "1.9"], 310, 2048);
    let dir = tempfile::tempdir().unwrap();
    let write = |host: &str, max: usize| {
        config(
            dir.path(),
            &format!(
                "version: 1\njobs:\n  - name: app\n    source: {}/app\n    target: {host}/app\n    prune: true\n    prune_max: {max}\n",
                src.host()
            ),
        )
        .display()
        .to_string()
    };
    let (code, _, err) = sync(&[&write(&dst.host(), 2)], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("3 tags would be pruned, more than prune_max 2"),
        "{err}"
    );
    assert!(err.contains("1.7") && err.contains("1.9"), "{err}");
    assert_eq!(
        tags_of(&dst.image("app")),
        ["1.0", "1.7", "1.8", "1.9"],
        "the copy still happened"
    );

    let locked = Registry::start(RegistryConfig::without_deletes());
    seed_images(&locked, "app", &["1.7"], 320, 2048);
    let (code, _, err) = sync(&[&write(&locked.host(), 10)], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refuses to delete manifests"), "{err}");
    assert_eq!(
        tags_of(&locked.image("app")),
        ["1.0", "1.7"],
        "copies are not failed by it"
    );
}

#[test]
fn shards_split_a_job_exactly_and_follow_job_completion_index() {
    let src = Registry::start(RegistryConfig::anonymous());
    let dst = Registry::start(RegistryConfig::anonymous());
    let tags = seed_tags(&src, "app", 12, 1, 400);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "version: 1\njobs:\n  - name: app\n    source: {}/app\n    target: {}/app\n",
            src.host(),
            dst.host()
        ),
    );
    let cfg = cfg.display().to_string();
    let share = |args: &[&str], env: &[(&str, &str)]| -> HashSet<String> {
        let (code, out, err) = sync(&[args, &["--plan", "--output", "json", &cfg]].concat(), env);
        assert_eq!(code, 0, "{err}");
        reports(&out)
            .iter()
            .map(|r| r["target"].as_str().unwrap().to_string())
            .collect()
    };
    let shares: Vec<HashSet<String>> = (0..3)
        .map(|i| share(&["--shard", &format!("{i}/3")], &[]))
        .collect();
    let union: HashSet<String> = shares.iter().flatten().cloned().collect();
    let all: HashSet<String> = tags
        .iter()
        .map(|t| dst.image(&format!("app:{t}")))
        .collect();
    assert_eq!(union, all, "together complete");
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        assert!(
            shares[a].is_disjoint(&shares[b]),
            "shards {a} and {b} overlap"
        );
    }
    // Each share is the documented function's, whatever the random port
    // makes of the hash (an empty share is then legitimate, not a failure).
    for (i, share) in shares.iter().enumerate() {
        let expected: HashSet<String> = tags
            .iter()
            .filter(|t| shard_of("app", &dst.image("app"), t, 3) == i as u64)
            .map(|t| dst.image(&format!("app:{t}")))
            .collect();
        assert_eq!(share, &expected, "shard {i}");
    }
    assert_eq!(
        share(&["--shards", "3"], &[("JOB_COMPLETION_INDEX", "1")]),
        shares[1]
    );
    let (code, _, err) = sync(&["--shards", "3", &cfg], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("JOB_COMPLETION_INDEX"), "{err}");

    // The shards copy for real, each its share, and the union is the job.
    for i in 0..3 {
        let (code, _, err) = sync(&["--shard", &format!("{i}/3"), &cfg], &[]);
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(tags_of(&dst.image("app")).len(), 12);
}
