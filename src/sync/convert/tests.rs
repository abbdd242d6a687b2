//! The examples each tool's documentation gives, converted, and read back
//! by ocirepl's own config validation.

use super::*;
use crate::sync::config::parse;
use crate::sync::job::validate;

/// `what` is among what the conversion left out, at `line`.
fn assert_listed(c: &Converted, line: usize, what: &str) {
    assert!(
        c.unsupported
            .iter()
            .any(|u| u.starts_with(&format!("line {line}: ")) && u.contains(what)),
        "{what} at line {line}: {:?}",
        c.unsupported
    );
}

fn valid(text: &str) -> crate::sync::job::Config {
    let path = std::path::Path::new("converted.yaml");
    let raw = parse(path, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    validate(path, raw).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// regsync's own complete example (regclient's docs/regsync.md).
const REGSYNC: &str = r#"x-sched-a: &sched-a "15 01 * * *"
version: 1
creds:
  - registry: localhost:5000
    tls: disabled
  - registry: docker.io
    user: "{{env \"HUB_USER\"}}"
    pass: "{{file \"/var/run/secrets/hub_token\"}}"
defaults:
  ratelimit:
    min: 100
    retry: 15m
  parallel: 2
sync:
  - source: busybox:latest
    target: localhost:5000/library/busybox:latest
    type: image
    interval: 60m
    backup: "backup-{{.Ref.Tag}}"
  - source: alpine
    target: localhost:5000/library/alpine
    type: repository
    tags:
      allow:
      - "latest"
      - "edge"
      - "3"
      - "3.\\d+"
      deny:
      - "3.0"
    schedule: *sched-a
    backup: "{{$t := time.Now}}{{printf \"%s/backups/%s:%s-%d%d%d\" .Ref.Registry .Ref.Repository .Ref.Tag $t.Year $t.Month $t.Day}}"
  - source: localreg:5000
    target: localcopy:5000
    type: registry
    repos:
      allow:
      - "team-x\/.*"
      deny:
      - ".*backup"
"#;

#[test]
fn regsyncs_own_example_converts_and_says_what_it_leaves_out() {
    let c = convert(From::Regsync, "regsync.yml", REGSYNC, None).unwrap();
    let config = valid(&c.text);
    assert_eq!(config.jobs.len(), 3, "{}", c.text);
    let alpine = &config.jobs[1];
    assert!(alpine.tags.admits("3.19") && alpine.tags.admits("edge") && !alpine.tags.admits("3.0"));
    // regsync's anchoring by text: `3.\d+` takes 3x19 too.
    assert!(alpine.tags.admits("3x19") && !alpine.tags.admits("13.1"));
    let busybox = &config.jobs[0];
    assert!(busybox.tags.admits("latest") && !busybox.tags.admits("1.36"));
    assert!(busybox.options.backup.is_some());
    let registry = &config.jobs[2];
    assert!(
        registry.repositories.admits("team-x/app")
            && !registry.repositories.admits("team-x/app-backup")
    );
    // The printf backup and the global parallel have no equivalent.
    assert!(
        c.unsupported.iter().any(|u| u.contains("backup")),
        "{:?}",
        c.unsupported
    );
    assert!(
        c.unsupported.iter().any(|u| u.contains("parallel")),
        "{:?}",
        c.unsupported
    );
    assert!(c.text.contains("password_file"), "{}", c.text);
    assert!(
        c.unsupported.iter().any(|u| u.contains("user: a template")),
        "{:?}",
        c.unsupported
    );
}

/// skopeo-sync(1)'s example.
const SKOPEO: &str = r#"registry.example.com:
    images:
        busybox: []
        redis:
            - "1.0"
            - "2.0"
            - "sha256:0000000000000000000000000000000011111111111111111111111111111111"
    images-by-tag-regex:
        nginx: ^1\.13\.[12]-alpine-perl$
    images-by-semver:
        alpine: ">= 3.12.0"
    credentials:
        username: john
        password: this is a secret
    tls-verify: true
    cert-dir: /home/john/certs
quay.io:
    tls-verify: false
    images:
        coreos/etcd:
            - latest
"#;

#[test]
fn skopeos_own_example_converts_with_skopeos_naming() {
    let dest = Destination {
        target: "mirror.example.net/base".into(),
        scoped: false,
    };
    let c = convert(From::Skopeo, "sync.yml", SKOPEO, Some(&dest)).unwrap();
    let config = valid(&c.text);
    let targets: Vec<String> = config
        .jobs
        .iter()
        .map(|j| j.targets[0].to_string())
        .collect();
    assert!(
        targets.contains(&"mirror.example.net/base/etcd".to_string()),
        "{targets:?}"
    );
    assert!(
        targets.contains(&"mirror.example.net/base/busybox".to_string()),
        "{targets:?}"
    );
    let redis = config.jobs.iter().find(|j| j.name == "redis").unwrap();
    assert!(redis.tags.admits("1.0") && !redis.tags.admits("1x0") && !redis.tags.admits("3.0"));
    let alpine = config.jobs.iter().find(|j| j.name == "alpine").unwrap();
    assert!(alpine.tags.admits("3.19.1") && !alpine.tags.admits("3.11.0"));
    assert!(
        c.unsupported.iter().any(|u| u.contains("sha256:0000")),
        "{:?}",
        c.unsupported
    );
    assert!(!c.text.contains("this is a secret"));
    let scoped = Destination {
        scoped: true,
        ..dest
    };
    let c = convert(From::Skopeo, "sync.yml", SKOPEO, Some(&scoped)).unwrap();
    assert!(
        c.text
            .contains("mirror.example.net/base/quay.io/coreos/etcd"),
        "{}",
        c.text
    );
}

#[test]
fn files_that_are_not_configs_say_where() {
    let e = convert(
        From::Regsync,
        "r.yml",
        "version: 1\nsync:\n\t- source: x\n",
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("line 3") && e.to_string().contains("tab"),
        "{e}"
    );
    assert!(convert(From::Regsync, "r.yml", "version: 2\nsync: []\n", None).is_err());
    assert!(convert(From::Skopeo, "s.yml", SKOPEO, None).is_err());
    assert_eq!(recognise(REGSYNC), Some(From::Regsync));
    assert_eq!(recognise(SKOPEO), Some(From::Skopeo));
    assert_eq!(recognise("version: 1\njobs: []\n"), None);
}

#[test]
fn keys_no_converter_knows_are_listed_with_their_lines() {
    let regsync = "version: 1\ncreds:\n  - registry: r.example\n    tlz: disabled\ndefaults:\n  intervall: 1h\n  ratelimit:\n    minimum: 5\nsync:\n  - source: a.example/app\n    target: r.example/app\n    tagSets:\n      - allow: [\"1\"]\n        alow: [\"2\"]\n    referrerFilters:\n      - annotations: {k: v}\n    x-note: mine\n";
    let c = convert(From::Regsync, "r.yml", regsync, None).unwrap();
    for (line, key) in [
        (4, "tlz"),
        (6, "intervall"),
        (8, "minimum"),
        (14, "alow"),
        (16, "annotations"),
    ] {
        assert_listed(&c, line, key);
    }
    assert_eq!(c.unsupported.len(), 5, "{:?}", c.unsupported);
    let creds_map = "version: 1\ncreds:\n  registry: r.example\nsync:\n  - source: a.example/app\n    target: r.example/app\n";
    let c = convert(From::Regsync, "r.yml", creds_map, None).unwrap();
    assert_eq!(c.unsupported, vec!["line 2: creds: not a list".to_string()]);
    // A registry left with no settings is still a valid entry.
    valid(&c.text);
    let skopeo =
        "quay.io:\n  images:\n    app: []\n  tls-verfy: false\n  credentials:\n    user: me\n";
    let dest = Destination {
        target: "mirror.example/base".into(),
        scoped: false,
    };
    let c = convert(From::Skopeo, "s.yml", skopeo, Some(&dest)).unwrap();
    for (line, key) in [(4, "tls-verfy"), (6, "user")] {
        assert_listed(&c, line, key);
    }
}

#[test]
fn unquoted_numbers_keep_the_text_the_file_wrote() {
    // YAML reads 1.10 as the number 1.1; regsync and skopeo, reading into
    // strings, keep "1.10". A list item that is a map is no tag at all.
    let skopeo =
        "quay.io:\n  images:\n    redis:\n      - 1.10\n      - 7\n    other:\n      - {a: b}\n";
    let dest = Destination {
        target: "mirror.example/base".into(),
        scoped: false,
    };
    let c = convert(From::Skopeo, "s.yml", skopeo, Some(&dest)).unwrap();
    let config = valid(&c.text);
    let redis = config.jobs.iter().find(|j| j.name == "redis").unwrap();
    assert!(redis.tags.admits("1.10") && redis.tags.admits("7") && !redis.tags.admits("1.1"));
    // `other` listed only something that is no tag: no job, and it is said.
    assert!(config.jobs.iter().all(|j| j.name != "other"), "{}", c.text);
    assert_listed(&c, 7, "not a string");
    let regsync = "version: 1\nsync:\n  - source: a.example/app\n    target: r.example/app\n    tags:\n      allow: [1.10, true]\n";
    let c = convert(From::Regsync, "r.yml", regsync, None).unwrap();
    let config = valid(&c.text);
    assert!(config.jobs[0].tags.admits("1.10") && config.jobs[0].tags.admits("true"));
    assert!(!config.jobs[0].tags.admits("1.1"));
}

#[test]
fn values_of_the_wrong_kind_are_listed_and_never_widen_a_job() {
    let dest = Destination {
        target: "mirror.example/base".into(),
        scoped: false,
    };
    // A tag given as a string, not a list: not "every tag".
    let skopeo =
        "quay.io:\n  images:\n    alpine: \"3.19\"\n    redis: [\"7\"]\n  tls-verify: \"false\"\n";
    let c = convert(From::Skopeo, "s.yml", skopeo, Some(&dest)).unwrap();
    let config = valid(&c.text);
    assert!(config.jobs.iter().all(|j| j.name != "alpine"), "{}", c.text);
    assert!(config.jobs.iter().any(|j| j.name == "redis"), "{}", c.text);
    for (line, what) in [(3, "not a list"), (5, "not true or false")] {
        assert_listed(&c, line, what);
    }
    // regsync: an allow list given as a string leaves its job out; a
    // numeric password is the text regsync would read.
    let regsync = "version: 1\ncreds:\n  - registry: r.example\n    user: bot\n    pass: 123456\ndefaults:\n  includeExternal: \"true\"\nsync:\n  - source: a.example/app\n    target: r.example/app\n    tags:\n      allow: \"v1\"\n  - source: a.example/ok\n    target: r.example/ok\n";
    let c = convert(From::Regsync, "r.yml", regsync, None).unwrap();
    let config = valid(&c.text);
    assert_eq!(config.jobs.len(), 1, "{}", c.text);
    assert_eq!(config.jobs[0].name, "ok");
    assert!(
        c.text.contains("\"username\": \"bot\"") || c.text.contains("username: \"bot\""),
        "{}",
        c.text
    );
    for (line, what) in [
        (7, "not true or false"),
        (12, "not a list"),
        (9, "left out whole"),
    ] {
        assert_listed(&c, line, what);
    }
    assert!(
        !c.unsupported.iter().any(|u| u.contains("pass")),
        "{:?}",
        c.unsupported
    );
}
