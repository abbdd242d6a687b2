//! Hardening (RELIABILITY scenarios 40 to 45 and the review findings of
//! issue 11): absurd token numbers, layouts that never end, block, lose
//! tags or hold damaged blobs, refresh tokens and redirects, index width,
//! listing size, empty environment variables, escapes in layout tags.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use support::fake::{FakeAuth, FakeRegistry, Reply, Rule};
use support::*;

/// A layout holding one small image under each of `tags`; returns the dir.
fn layout_with_tags(tags: &[&str], seed_n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let mut entries = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let layers = vec![
            Layer::random(seed_n, 8 * 1024),
            Layer::random(seed_n + 1 + i as u64, 4096),
        ];
        let (bytes, digest) = w.image(&ImageSpec::new("linux/amd64", layers));
        entries.push((t.to_string(), bytes, digest));
    }
    let refs: Vec<(&str, &str, &[u8], &str)> = entries
        .iter()
        .map(|(t, b, d)| (t.as_str(), image::OCI_MANIFEST, b.as_slice(), d.as_str()))
        .collect();
    w.tag(&refs);
    dir
}

/// Runs ocirepl under `timeout(1)`: a hang is a failure, not a stuck suite.
fn run_bounded(args: &[&str]) -> (i32, String) {
    let out = Command::new("timeout")
        .arg("30")
        .arg(env!("CARGO_BIN_EXE_ocirepl"))
        .args(args)
        .output()
        .expect("timeout");
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(code, 124, "ocirepl hung: {args:?}");
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Scenario 40: token answers with absurd numbers never panic (debug
/// builds check overflow), and the copy goes on.
#[test]
fn absurd_token_lifetimes_do_not_panic() {
    let src = layout_with_tags(&["v1"], 4000);
    for token in [
        r#"{"token":"TOKEN-A","expires_in":18446744073709551615}"#,
        r#"{"token":"TOKEN-A","expires_in":-5}"#,
        r#"{"token":"TOKEN-A","expires_in":0}"#,
        r#"{"token":"TOKEN-A","expires_in":1.5}"#,
        r#"{"token":"TOKEN-A","expires_in":"soon","issued_at":"9999999-01-01T00:00:00Z"}"#,
        r#"{"token":"TOKEN-A","issued_at":"-99999999999999999999-01-01T00:00:00Z"}"#,
    ] {
        let fake = FakeRegistry::start();
        fake.load_layout(src.path(), "app");
        fake.rule(Rule::reply(
            "GET",
            "/token",
            Reply::status(200).body(token.as_bytes().to_vec()),
        ));
        fake.require_auth(FakeAuth {
            challenge: format!(
                r#"Bearer realm="http://{}/token",service="fake""#,
                fake.host()
            ),
            accept: Arc::new(|h| h == Some("Bearer TOKEN-A")),
        });
        let dst = tempfile::tempdir().unwrap();
        let target = format!("oci:{}:v1", dst.path().display());
        let (code, _, err) = run(&["copy", &fake.image("app:v1"), &target]);
        assert_eq!(code, 0, "{token}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Scenario 41: a layout whose index.json or manifest never ends, blocks,
/// or is huge: refused in bounded time and memory.
#[test]
fn layout_reads_are_bounded_and_never_block() {
    let out = tempfile::tempdir().unwrap();
    let target = format!("oci:{}:v1", out.path().display());
    // index.json → /dev/zero, a FIFO, a 5 GiB sparse file.
    for case in ["zero", "fifo", "huge"] {
        let src = layout_with_tags(&["v1"], 4100);
        let index = src.path().join("index.json");
        std::fs::remove_file(&index).unwrap();
        match case {
            "zero" => std::os::unix::fs::symlink("/dev/zero", &index).unwrap(),
            "fifo" => {
                let ok = Command::new("mkfifo")
                    .arg(&index)
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "mkfifo");
            }
            _ => std::fs::File::create(&index)
                .unwrap()
                .set_len(5 << 30)
                .unwrap(),
        }
        let source = format!("oci:{}:v1", src.path().display());
        let (code, err) = run_bounded(&["copy", &source, &target]);
        assert_eq!(code, 1, "{case}: {err}");
        assert!(
            err.contains("not a regular file") || err.contains("larger than"),
            "{case}: {err}"
        );
    }
    // A manifest blob that is /dev/zero.
    let src = layout_with_tags(&["v1"], 4200);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.path().join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = src
        .path()
        .join("blobs/sha256")
        .join(&digest["sha256:".len()..]);
    std::fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &blob).unwrap();
    let (code, err) = run_bounded(&["copy", &format!("oci:{}:v1", src.path().display()), &target]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

/// Scenario 42: six processes writing one layout: every tag survives, and
/// index.json is valid JSON whatever the interleaving.
#[test]
fn concurrent_writers_of_one_layout_lose_no_tag() {
    let tags = ["a", "b", "c", "d", "e", "f"];
    let src = layout_with_tags(&tags, 4300);
    let out = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let children: Vec<_> = tags
            .iter()
            .map(|t| {
                ocirepl()
                    .args([
                        "copy",
                        "-q",
                        &format!("oci:{}:{t}", src.path().display()),
                        &format!("oci:{}:{t}{round}", out.path().display()),
                    ])
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
    }
    // The same tag from six writers at once: one of them wins, cleanly.
    let children: Vec<_> = tags
        .iter()
        .map(|t| {
            ocirepl()
                .args([
                    "copy",
                    "-q",
                    &format!("oci:{}:{t}", src.path().display()),
                    &format!("oci:{}:same", out.path().display()),
                ])
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("index.json")).unwrap())
            .expect("valid JSON");
    let mut names: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    names.sort();
    let mut want: Vec<String> = (0..3)
        .flat_map(|r| tags.iter().map(move |t| format!("{t}{r}")))
        .chain(["same".to_string()])
        .collect();
    want.sort();
    assert_eq!(names, want);
}

/// Scenario 43: a blob in a layout target that does not match its name
/// (truncated, or other bytes of the same length) is written again.
#[test]
fn a_damaged_layout_blob_is_written_again() {
    let src = layout_with_tags(&["v1", "v2"], 4400);
    let out = tempfile::tempdir().unwrap();
    let copy = |tag: &str| {
        let (code, _, err) = run(&[
            "copy",
            &format!("oci:{}:{tag}", src.path().display()),
            &format!("oci:{}:{tag}", out.path().display()),
        ]);
        assert_eq!(code, 0, "{err}");
    };
    copy("v1");
    // The base layer, shared by v1 and v2.
    let blobs = out.path().join("blobs/sha256");
    let largest = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let intact = std::fs::read(&largest).unwrap();
    for damage in ["truncate", "same-length"] {
        match damage {
            "truncate" => std::fs::write(&largest, &intact[..intact.len() / 2]).unwrap(),
            _ => std::fs::write(&largest, vec![b'x'; intact.len()]).unwrap(),
        }
        let index = out.path().join("index.json");
        let keep = std::fs::read(&index).unwrap();
        copy("v2");
        assert_eq!(
            std::fs::read(&largest).unwrap(),
            intact,
            "{damage}: not rewritten"
        );
        // Forget v2 so that the next round copies it again.
        std::fs::write(&index, keep).unwrap();
    }
}

/// A source layout is never written, even to give it an index.json.
#[test]
fn a_source_layout_is_never_written() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let (code, out, err) = run(&["tags", &format!("oci:{}", src.path().display())]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().is_empty(), "{out}");
    assert!(
        !src.path().join("index.json").exists(),
        "a source layout was written"
    );
}

/// Scenario 45: a tag name with terminal escapes in a layout's index.json
/// is printed escaped.
#[test]
fn escapes_in_layout_tags_never_reach_the_terminal() {
    let src = layout_with_tags(&["v1"], 4500);
    let index_path = src.path().join("index.json");
    let text = std::fs::read_to_string(&index_path).unwrap();
    std::fs::write(
        &index_path,
        text.replace("\"v1\"", "\"v1\\u001b[2J\\u0007\""),
    )
    .unwrap();
    let (code, out, err) = run(&["tags", &format!("oci:{}", src.path().display())]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        !err.contains('\u{1b}') && !out.contains('\u{1b}'),
        "{err:?}"
    );
    assert!(err.contains("\\u{1b}"), "{err}");
}

/// The refresh token travels in a POST body: a 307 from the token server
/// to another origin is never followed.
#[test]
fn a_refresh_token_post_is_never_redirected() {
    let canary = FakeRegistry::start();
    let src = layout_with_tags(&["v1"], 4600);
    let fake = FakeRegistry::start();
    fake.load_layout(src.path(), "app");
    fake.rule(Rule::reply(
        "POST",
        "/token",
        Reply::status(307).header("Location", &format!("http://{}/steal", canary.host())),
    ));
    fake.require_auth(FakeAuth {
        challenge: format!(
            r#"Bearer realm="http://{}/token",service="fake""#,
            fake.host()
        ),
        accept: Arc::new(|h| h == Some("Bearer never")),
    });
    let dst = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&[
        "copy",
        "--src-registry-token",
        "refresh-SECRET-99",
        &fake.image("app:v1"),
        &format!("oci:{}:v1", dst.path().display()),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("redirected"), "{err}");
    assert!(
        canary.log().is_empty(),
        "the canary was reached: {:?}",
        canary.seen()
    );
    assert!(!err.contains("refresh-SECRET"), "{err}");
}

/// An index of 1,500 distinct children is refused before any child is
/// fetched; the cap is a flag.
#[test]
fn a_wide_index_is_refused_before_its_children_are_fetched() {
    let entries: Vec<String> = (0..1500u32)
        .map(|i| {
            let d = sha256(&i.to_be_bytes());
            format!(
                r#"{{"mediaType":"{}","digest":"{d}","size":100,"platform":{{"os":"linux","architecture":"amd64"}}}}"#,
                image::OCI_MANIFEST
            )
        })
        .collect();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}}"#,
        image::OCI_INDEX,
        entries.join(",")
    );
    let fake = FakeRegistry::start();
    fake.add_manifest("app", "v1", image::OCI_INDEX, index.as_bytes());
    let dst = tempfile::tempdir().unwrap();
    let target = format!("oci:{}:v1", dst.path().display());
    let (code, _, err) = run(&["copy", &fake.image("app:v1"), &target]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("more than 1024 distinct child manifests"),
        "{err}"
    );
    let child_gets = fake
        .log()
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.contains("/manifests/sha256:"))
        .count();
    assert_eq!(child_gets, 1, "only the root, by digest: {:?}", fake.log());
    let (code, _, err) = run(&[
        "copy",
        "--max-index-children",
        "2000",
        &fake.image("app:v1"),
        &target,
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not found"),
        "with a wider cap it reads children: {err}"
    );
}

/// A tag listing is capped in total (64 MiB), not only per page.
#[test]
fn tag_listings_are_capped_in_total() {
    let fake = FakeRegistry::start();
    let pages = Arc::new(AtomicUsize::new(0));
    let counter = pages.clone();
    let page_tags: Vec<String> = (0..36_000).map(|i| format!("{i:0>100}")).collect();
    let body = serde_json::json!({"name": "app", "tags": page_tags})
        .to_string()
        .into_bytes();
    assert!(body.len() < 4 * 1024 * 1024 && body.len() > 3 * 1024 * 1024);
    fake.rule(Rule::map("GET", "/tags/list", move |_, _| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Reply::status(200)
            .header("Content-Type", "application/json")
            .header(
                "Link",
                &format!("</v2/app/tags/list?last={n}>; rel=\"next\""),
            )
            .body(body.clone())
    }));
    let (code, _, err) = run(&["tags", &fake.image("app")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("larger than 67108864"), "{err}");
    assert!(
        pages.load(Ordering::SeqCst) <= 20,
        "read {} pages",
        pages.load(Ordering::SeqCst)
    );
}

/// Item 7: CI templates export missing secrets as empty strings; an empty
/// variable is "not set", never a usage error.
#[test]
fn empty_environment_variables_mean_unset() {
    let src = layout_with_tags(&["v1"], 4700);
    let reg = Registry::start(RegistryConfig::anonymous());
    let home = tempfile::tempdir().unwrap();
    let home = home.path().display().to_string();
    let (code, _, err) = run_with_env(
        &[
            "copy",
            &format!("oci:{}:v1", src.path().display()),
            &reg.image("app:v1"),
        ],
        &[
            ("HOME", home.as_str()),
            ("OCIREPL_SRC_CREDS", ""),
            ("OCIREPL_DEST_CREDS", ""),
            ("OCIREPL_SRC_REGISTRY_TOKEN", ""),
            ("OCIREPL_AUTHFILE", ""),
            ("REGISTRY_AUTH_FILE", ""),
            ("DOCKER_CONFIG", ""),
            ("XDG_RUNTIME_DIR", ""),
        ],
    );
    assert_eq!(code, 0, "{err}");
}

/// Item 8: the scripts run the binary where cargo builds it.
#[test]
fn scripts_find_the_binary_where_cargo_builds_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (dir, want) in [
        ("/tmp/elsewhere-target", "/tmp/elsewhere-target".to_string()),
        ("rel-target", root.join("rel-target").display().to_string()),
    ] {
        let out = Command::new("bash")
            .current_dir(root)
            .env("CARGO_TARGET_DIR", dir)
            .args(["-c", ". scripts/lib.sh && cargo_target_dir"])
            .output()
            .expect("bash");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want);
    }
    for script in ["scripts/demo.sh", "scripts/bench.sh"] {
        let text = std::fs::read_to_string(root.join(script)).unwrap();
        assert!(
            !text.contains("target/release/"),
            "{script} hard-codes target/release"
        );
        assert!(text.contains("cargo_target_dir"), "{script}");
    }
}
