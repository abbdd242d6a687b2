//! `ocirepl inspect`, `ocirepl tags` and `ocirepl index create` against real
//! registries.

mod support;

use serde_json::Value;
use support::fake::{FakeRegistry, Reply, Rule};
use support::*;

fn seed_layout<F: FnOnce(&LayoutWriter) -> (String, Vec<u8>, String)>(
    reg: &Registry,
    repo_tag: &str,
    f: F,
) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let w = LayoutWriter::new(dir.path());
    let (media_type, bytes, digest) = f(&w);
    w.tag(&[("v1", &media_type, &bytes, &digest)]);
    seed(dir.path(), "v1", &reg.image(repo_tag));
    bytes
}

#[test]
fn inspect_shows_an_index_an_image_and_the_raw_bytes() {
    let reg = Registry::start(RegistryConfig::anonymous());
    let index = seed_layout(&reg, "multi:v1", |w| {
        let (b, d) = w.index(&three_platforms(600));
        (image::OCI_INDEX.into(), b, d)
    });
    let (code, out, err) = run(&["inspect", &reg.image("multi:v1")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&sha256(&index)), "{out}");
    assert!(
        out.contains("Platforms:  linux/amd64, linux/arm64, linux/arm/v7"),
        "{out}"
    );
    assert_eq!(
        out.matches("application/vnd.oci.image.manifest.v1+json")
            .count(),
        3,
        "{out}"
    );

    let (code, out, _) = run(&["inspect", "--raw", &reg.image("multi:v1")]);
    assert_eq!(code, 0);
    assert_eq!(out.as_bytes(), index.as_slice());

    let (code, out, _) = run(&["inspect", "--output", "json", &reg.image("multi:v1")]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["digest"], sha256(&index).as_str());
    assert_eq!(v["children"].as_array().unwrap().len(), 3);
    assert_eq!(v["size"], index.len());

    let child = serde_json::from_slice::<Value>(&index).unwrap()["manifests"][2]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, out, err) = run(&[
        "inspect",
        "--output",
        "json",
        &format!("{}@{child}", reg.image("multi")),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["platforms"][0], "linux/arm/v7", "read from the config");
    assert_eq!(v["layers"].as_array().unwrap().len(), 2);

    let (code, _, err) = run(&["inspect", &reg.image("multi:missing")]);
    assert_eq!(code, 1);
    assert!(
        err.contains("multi:missing") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn tags_follow_pagination() {
    let reg = Registry::start(RegistryConfig::anonymous());
    let bytes = seed_layout(&reg, "many:v1", |w| {
        let (b, d) = w.image(&ImageSpec::new(
            "linux/amd64",
            vec![Layer::random(610, 100)],
        ));
        (image::OCI_MANIFEST.into(), b, d)
    });
    for i in 0..24 {
        put_manifest_raw(
            &reg.host(),
            "many",
            &format!("t{i:02}"),
            image::OCI_MANIFEST,
            &bytes,
        );
    }
    // Debian's distribution 2.8 ignores `n` (tag pagination came in 3.0):
    // the whole list arrives as one page.
    let (code, out, err) = run(&["tags", "--page-size", "10", &reg.image("many")]);
    assert_eq!(code, 0, "{err}");
    let tags: Vec<&str> = out.lines().collect();
    assert_eq!(tags.len(), 25, "{out}");
    assert!(tags.contains(&"v1") && tags.contains(&"t23"));
    let (code, out, _) = run(&["tags", "--output", "json", &reg.image("many")]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tags"].as_array().unwrap().len(), 25);
}

/// A registry that pages (`n`, `last`, relative `Link`), as distribution 3
/// and most hosted registries do.
#[test]
fn tags_follow_link_pages() {
    let fake = FakeRegistry::start();
    fake.rule(Rule::map("GET", "/tags/list", |seen, _| {
        let all: Vec<String> = (0..25).map(|i| format!("t{i:02}")).collect();
        let q: Vec<(String, String)> =
            url::form_urlencoded::parse(seen.target.split_once('?').map_or("", |x| x.1).as_bytes())
                .into_owned()
                .collect();
        let get = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        let n: usize = get("n").and_then(|n| n.parse().ok()).unwrap_or(100);
        let start = get("last")
            .and_then(|l| all.iter().position(|t| *t == l).map(|i| i + 1))
            .unwrap_or(0);
        let page: Vec<&String> = all.iter().skip(start).take(n).collect();
        let mut reply = Reply::status(200).body(
            serde_json::json!({"name": "app", "tags": page})
                .to_string()
                .into_bytes(),
        );
        if start + n < all.len() {
            let last = page.last().unwrap();
            reply = reply.header(
                "Link",
                &format!("</v2/app/tags/list?n={n}&last={last}>; rel=\"next\""),
            );
        }
        reply
    }));
    let (code, out, err) = run(&["tags", "--page-size", "10", &fake.image("app")]);
    assert_eq!(code, 0, "{err}");
    let tags: Vec<&str> = out.lines().collect();
    assert_eq!(tags.len(), 25);
    assert_eq!(tags[0], "t00");
    assert_eq!(tags[24], "t24");
    let pages = fake
        .log()
        .iter()
        .filter(|(_, p, _)| p.contains("/tags/list"))
        .count();
    assert_eq!(pages, 3, "three pages of at most 10");
}

#[test]
fn tags_never_follow_a_link_to_another_origin() {
    let fake = FakeRegistry::start();
    let canary = FakeRegistry::start();
    let link = format!(
        r#"<http://{}/v2/app/tags/list?last=a>; rel="next""#,
        canary.host()
    );
    fake.rule(Rule::reply(
        "GET",
        "/tags/list",
        Reply::status(200)
            .header("Link", &link)
            .body(br#"{"name":"app","tags":["a"]}"#.to_vec()),
    ));
    let (code, _, err) = run(&["tags", &fake.image("app")]);
    assert_eq!(code, 1);
    assert!(err.contains("another origin"), "{err}");
    assert!(canary.seen().is_empty());
}

#[test]
fn index_create_assembles_platform_images_with_annotations() {
    let a = Registry::start(RegistryConfig::anonymous());
    let b = Registry::start(RegistryConfig::anonymous());
    let mut digests = Vec::new();
    for (i, p) in ["linux/amd64", "linux/arm64/v8"].iter().enumerate() {
        let bytes = seed_layout(&a, &format!("app:{}", p.replace('/', "-")), |w| {
            let (b, d) = w.image(&ImageSpec::new(p, vec![Layer::random(620 + i as u64, 500)]));
            (image::OCI_MANIFEST.into(), b, d)
        });
        digests.push(sha256(&bytes));
    }
    let (code, out, err) = run(&[
        "index",
        "create",
        "--output",
        "json",
        &b.image("app:multi"),
        "--from",
        &a.image("app:linux-amd64"),
        "--from",
        &a.image("app:linux-arm64-v8"),
        "--annotation",
        "org.opencontainers.image.version=1.2.3",
    ]);
    assert_eq!(code, 0, "{err}");
    let rep: Value = serde_json::from_str(out.trim()).unwrap();
    let index: Value = serde_json::from_slice(&raw_manifest(&b.image("app:multi"))).unwrap();
    assert_eq!(
        rep["digest"],
        sha256(&raw_manifest(&b.image("app:multi"))).as_str()
    );
    assert_eq!(index["mediaType"], image::OCI_INDEX);
    assert_eq!(
        index["annotations"]["org.opencontainers.image.version"],
        "1.2.3"
    );
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries[0]["digest"], digests[0].as_str());
    assert_eq!(entries[0]["platform"]["architecture"], "amd64");
    assert_eq!(entries[1]["platform"]["variant"], "v8");
    // The children were copied into b by digest (no tags of their own).
    for d in &digests {
        assert_eq!(remote_digest(&format!("{}@{d}", b.image("app"))), *d);
    }
    let tags = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}", b.image("app")),
    ]);
    let tags: Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["multi"]));
    // skopeo can copy the result whole.
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}", b.image("app:multi")),
        &format!("docker://{}", a.image("back:multi")),
    ]);

    // An index given as --from is a usage error.
    let (code, _, err) = run(&[
        "index",
        "create",
        &b.image("app:x"),
        "--from",
        &b.image("app:multi"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a single-platform image"), "{err}");
    let (code, _, _) = run(&[
        "index",
        "create",
        &b.image("app:x"),
        "--from",
        &a.image("app:linux-amd64"),
        "--annotation",
        "novalue",
    ]);
    assert_eq!(code, 2);
}
