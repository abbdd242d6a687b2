//! The transfer engine against real registries (issue 5): every tag of a
//! repository concurrently, each shared blob uploaded once, an up-to-date
//! re-run costing one HEAD per tag, chunked and single-POST uploads, and two
//! processes copying the same image at once.

mod support;

use serde_json::Value;
use support::*;

fn reports(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn all_tags_share_blobs_and_an_up_to_date_rerun_is_one_head_per_tag() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    seed_tags(&a, "many", 6, 2, 800);
    let (code, out, err) = run(&[
        "copy",
        "--all-tags",
        "--output",
        "json",
        &a.image("many"),
        &b.image("mirror"),
    ]);
    assert_eq!(code, 0, "{err}");
    let reps = reports(&out);
    assert_eq!(reps.len(), 6);
    assert!(
        reps.iter()
            .all(|r| r["action"] == "copied" && r["digest_preserved"] == true)
    );
    for i in 0..6 {
        assert_eq!(
            remote_digest(&b.image(&format!("mirror:t{i:02}"))),
            remote_digest(&a.image(&format!("many:t{i:02}")))
        );
    }
    // 6 configs + 6 own layers + 1 shared base: each uploaded once, whatever
    // the concurrency; one more POST, a mount of an uploaded blob from the
    // repository itself, taught the run that lookups can be one POST.
    let log = b.access_log();
    let posts: Vec<_> = log.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 14, "{posts:?}");
    assert_eq!(posts.iter().filter(|r| r.status == 201).count(), 1);
    assert_eq!(
        log.iter()
            .filter(|r| r.method == "PUT" && r.path.contains("/blobs/"))
            .count(),
        13
    );
    // The target's tag list said every tag was missing: no manifest HEAD.
    assert!(
        !log.iter()
            .any(|r| r.method == "HEAD" && r.path.contains("/manifests/")),
        "{log:?}"
    );

    let (mark_a, mark_b) = (a.access_log().len(), b.access_log().len());
    let (code, out, err) = run(&[
        "copy",
        "--all-tags",
        "--output",
        "json",
        &a.image("many"),
        &b.image("mirror"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(reports(&out).iter().all(|r| r["action"] == "up-to-date"));
    let on_b = b.requests_since(mark_b);
    assert_eq!(on_b.len(), 7, "the tag list and one HEAD per tag: {on_b:?}");
    assert_eq!(on_b.iter().filter(|r| r.method == "HEAD").count(), 6);
    let on_a = a.requests_since(mark_a);
    assert_eq!(on_a.len(), 7, "the tag list and one HEAD per tag: {on_a:?}");

    let (code, _, err) = run(&[
        "copy",
        "--all-tags",
        &a.image("many:t01"),
        &b.image("mirror"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("without tag"), "{err}");
}

#[test]
fn chunked_uploads_send_contiguous_patches() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let layer = Layer::random(810, 3 * 1024 * 1024 + 100);
    let (bytes, digest) = w.image(&ImageSpec::new("linux/amd64", vec![layer.clone()]));
    w.tag(&[("v1", image::OCI_MANIFEST, &bytes, &digest)]);
    seed(dir.path(), "v1", &a.image("big:v1"));

    let (code, _, err) = run(&[
        "copy",
        "--upload-mode",
        "chunked",
        "--chunk-size",
        "1048576",
        &a.image("big:v1"),
        &b.image("big:v1"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(remote_digest(&b.image("big:v1")), digest);
    let patches = b
        .access_log()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    let expected = layer.gz.len().div_ceil(1024 * 1024) + 1; // the layer's chunks and the config's one
    assert_eq!(patches, expected);
    assert_eq!(b.open_uploads("big"), 0);
    // skopeo reads the layer back whole.
    let out = tempfile::tempdir().unwrap();
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}", b.image("big:v1")),
        &format!("oci:{}:v1", out.path().display()),
    ]);
    assert_eq!(
        std::fs::read(
            out.path()
                .join("blobs/sha256")
                .join(&sha256(&layer.gz)[7..])
        )
        .unwrap(),
        layer.gz
    );
}

#[test]
fn single_post_falls_back_once_where_the_registry_ignores_it() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    seed_tags(&a, "sp", 1, 2, 820);
    let (code, _, err) = run(&[
        "copy",
        "--upload-mode",
        "single-post",
        "--jobs",
        "1",
        &a.image("sp:t00"),
        &b.image("sp:t00"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        remote_digest(&b.image("sp:t00")),
        remote_digest(&a.image("sp:t00"))
    );
    // Debian's distribution 2.8 answers a single POST with 202 and drops the body:
    // tried once, remembered for the rest of the run.
    let single = b
        .access_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("digest="))
        .count();
    assert_eq!(single, 1);
    assert_eq!(b.open_uploads("sp"), 0, "{:?}", b.access_log());
}

#[test]
fn two_processes_copying_the_same_image_both_succeed() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    seed_tags(&a, "race", 1, 2, 830);
    let src = a.image("race:t00");
    let dst = b.image("race:t00");
    let spawn = || {
        let (src, dst) = (src.clone(), dst.clone());
        std::thread::spawn(move || run(&["copy", &src, &dst]))
    };
    let (p1, p2) = (spawn(), spawn());
    let (r1, r2) = (p1.join().unwrap(), p2.join().unwrap());
    assert_eq!(r1.0, 0, "{}", r1.2);
    assert_eq!(r2.0, 0, "{}", r2.2);
    assert_eq!(remote_digest(&dst), remote_digest(&src));
    assert_eq!(b.open_uploads("race"), 0);
}

/// `--all-tags` honours the same reading limits as a single copy.
#[test]
fn all_tags_applies_every_reading_flag() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    seed_tags(&a, "lim", 2, 2, 840);
    let (code, _, err) = run(&[
        "copy",
        "--all-tags",
        "--max-manifest-size",
        "100",
        &a.image("lim"),
        &b.image("lim"),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("larger than 100"), "{err}");
}

/// One run writing two repositories of a target (what sync will do): the
/// second mounts what the first uploaded instead of sending it again.
#[test]
fn a_run_mounts_from_repositories_it_already_wrote() {
    use ocirepl::copy::{Replicator, RunSettings, Task};
    use ocirepl::credentials::Env;
    use ocirepl::plan::{CopyJob, CopyOptions};
    use ocirepl::reference::ImageRef;
    use ocirepl::store::{Access, Role, Stores};

    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    seed_tags(&a, "one", 1, 3, 850);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let reports = rt.block_on(async {
        let stores = Stores::new(Env::default());
        let access = Access::default();
        let source = ImageRef::parse(&a.image("one:t00")).unwrap();
        let src = stores.open(&source, &access, Role::Source).unwrap();
        let task = |to: &str| {
            let target = ImageRef::parse(&b.image(to)).unwrap();
            Task::new(
                CopyJob::new(source.clone(), target.clone(), CopyOptions::default()).unwrap(),
                src.clone(),
                stores.open(&target, &access, Role::Target).unwrap(),
            )
        };
        let tasks = vec![task("first:t00"), task("second:t00")];
        let settings = RunSettings {
            jobs: 1,
            ..RunSettings::default()
        };
        Replicator::new(settings).run_all(&tasks).await
    });
    // The two checks overlap and the copies take turns in either order:
    // whichever went first uploaded, the other mounted from it.
    let (up, down) = if reports[0].blobs.copied > 0 {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!(reports[up].blobs.copied, 4, "{reports:?}");
    assert_eq!(reports[down].blobs.mounted, 4, "{reports:?}");
    assert_eq!(reports[down].blobs.copied, 0);
    let (from, into) = [("from=first", "/v2/second/"), ("from=second", "/v2/first/")][up];
    let mounts = b
        .access_log()
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.path.starts_with(into)
                && r.path.contains(from)
                && r.status == 201
        })
        .count();
    assert_eq!(mounts, 4);
    assert_eq!(
        remote_digest(&b.image("second:t00")),
        remote_digest(&a.image("one:t00"))
    );
}
