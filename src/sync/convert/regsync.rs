//! regsync's config (version 1), as regclient documents it and its code
//! reads it: `creds`, `defaults` and `sync` entries of type `repository`,
//! `image` and `registry`.
//!
//! What shifts in meaning: regsync anchors its tag and repository regexes
//! by concatenation (`"^" + p + "$"`), kept verbatim; its `semverRange`
//! separates comparators with spaces (commas here) and lets prereleases
//! through; `platform` pushes the one child as the tag (here a one-platform
//! index); `platforms` keeps a sparse original index (here a new one).

use serde_json::Value;

use super::yaml::{Entry, Node, s, strs, write};
use super::{Converted, Kind, job_name};

/// A `creds` entry's keys that are converted.
const CRED_KEYS: [&str; 7] = [
    "registry",
    "user",
    "pass",
    "tls",
    "reqConcurrent",
    "reqPerSec",
    "mirrors",
];

/// A `creds` entry's keys that have no equivalent (listed when present).
const CRED_UNSUPPORTED: [&str; 13] = [
    "hostname",
    "credHelper",
    "credHost",
    "regcert",
    "clientCert",
    "clientKey",
    "pathPrefix",
    "repoAuth",
    "apiOpts",
    "blobChunk",
    "blobMax",
    "credExpire",
    "priority",
];

/// The keys `defaults` and a `sync` entry share.
const JOB_KEYS: [&str; 16] = [
    "interval",
    "schedule",
    "ratelimit",
    "backup",
    "mediaTypes",
    "includeExternal",
    "referrers",
    "referrerFilters",
    "digestTags",
    "forceRecursive",
    "hooks",
    "referrerSource",
    "referrerTarget",
    "referrerSlow",
    "fastCheck",
    "fastCopy",
];

/// `defaults` alone: how regsync itself runs (no equivalent in a job).
const DEFAULTS_ONLY: [&str; 6] = [
    "parallel",
    "blobLimit",
    "cacheCount",
    "cacheTime",
    "skipDockerConfig",
    "userAgent",
];

/// A `sync` entry alone.
const SYNC_ONLY: [&str; 8] = [
    "source",
    "target",
    "type",
    "tags",
    "tagSets",
    "repos",
    "platform",
    "platforms",
];

/// Where in the file a part is: its path (for its line) and how the
/// messages name it.
struct At {
    path: String,
    label: String,
}

impl At {
    fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

pub(super) fn convert(doc: &Value, mut c: Converted) -> Result<Converted, String> {
    let root = doc
        .as_object()
        .ok_or("not a regsync config (no mapping at the top)")?;
    match root.get("version").and_then(Value::as_u64) {
        None | Some(0) | Some(1) => {}
        Some(v) => {
            return Err(format!(
                "regsync config version {v}: this converter reads version 1"
            ));
        }
    }
    let mut entries = vec![Entry::new("version", Node::Plain("1".into()))];
    c.unknown_keys(doc, "", "", &["version", "creds", "defaults", "sync"]);
    // A key of the wrong shape would convert to nothing at all.
    for (key, list) in [("creds", true), ("defaults", false), ("sync", true)] {
        let v = root.get(key).unwrap_or(&Value::Null);
        let shaped = if list { v.is_array() } else { v.is_object() };
        if !v.is_null() && !shaped {
            let shape = if list { "a list" } else { "a mapping" };
            c.misshapen(key, format!("{key}: not {shape}"));
        }
    }
    let mut registries = Vec::new();
    for (i, cred) in root
        .get("creds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        registries.push(registry(cred, i, &mut c)?);
    }
    if !registries.is_empty() {
        entries.push(Entry::new("registries", Node::Map(registries)));
    }
    if let Some(d) = root.get("defaults") {
        let at = At {
            path: "defaults".into(),
            label: "defaults".into(),
        };
        let known: Vec<&str> = JOB_KEYS.iter().chain(&DEFAULTS_ONLY).copied().collect();
        c.unknown_keys(d, &at.path, "defaults ", &known);
        let fields = job_keys(d, &at, &mut c, true);
        if !fields.is_empty() {
            entries.push(Entry::new("defaults", Node::Map(fields)));
        }
    }
    let mut jobs = Vec::new();
    let mut names = Vec::new();
    for (i, entry) in root
        .get("sync")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(job) = sync_entry(entry, i, &mut names, &mut c) {
            jobs.push(Node::Map(job));
        }
    }
    if jobs.is_empty() {
        return Err("no sync entries".into());
    }
    entries.push(Entry::new("jobs", Node::List(jobs)));
    c.text = header(&c, "regsync");
    write(&entries, 0, &mut c.text);
    Ok(c)
}

/// The comment block at the top of a converted config.
pub(super) fn header(c: &Converted, tool: &str) -> String {
    let mut text = format!("# Converted from a {tool} config by `ocirepl config convert`.\n");
    if !c.unsupported.is_empty() {
        text.push_str("# Left out (no equivalent in ocirepl):\n");
        for u in &c.unsupported {
            text.push_str(&format!("#   - {u}\n"));
        }
    }
    text
}

/// A template value: `{{env "X"}}` or `{{file "P"}}`, else literal.
enum Templated {
    Literal(String),
    Env(String),
    File(String),
    Other(String),
}

fn templated(text: &str) -> Templated {
    let t = text.trim();
    if !t.contains("{{") {
        return Templated::Literal(text.to_string());
    }
    let inner = t
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .map(str::trim);
    let call = |name: &str| {
        inner
            .and_then(|i| i.strip_prefix(name))
            .map(str::trim)
            .and_then(|a| a.strip_prefix('"')?.strip_suffix('"'))
            .filter(|a| !a.contains('"'))
            .map(str::to_string)
    };
    if let Some(v) = call("env") {
        Templated::Env(v)
    } else if let Some(p) = call("file") {
        Templated::File(p)
    } else {
        Templated::Other(text.to_string())
    }
}

/// One `creds` entry as a `registries` entry.
fn registry(cred: &Value, i: usize, c: &mut Converted) -> Result<Entry, String> {
    let host = cred["registry"]
        .as_str()
        .ok_or(format!("creds[{i}] has no registry"))?;
    let at = At {
        path: format!("creds[{i}]"),
        label: format!("creds[{i}] ({host})"),
    };
    let known: Vec<&str> = CRED_KEYS.iter().chain(&CRED_UNSUPPORTED).copied().collect();
    c.unknown_keys(cred, &at.path, &format!("{at} "), &known);
    c.typed(
        cred,
        &at.path,
        &format!("{at} "),
        &[
            ("user", Kind::Scalar),
            ("pass", Kind::Scalar),
            ("tls", Kind::Text),
            ("reqConcurrent", Kind::Number),
            ("reqPerSec", Kind::Number),
            ("mirrors", Kind::List),
        ],
    );
    let mut fields = Vec::new();
    if let Some(creds) = login(cred, host, &at, c) {
        fields.push(creds);
    }
    match cred["tls"].as_str() {
        None | Some("enabled") => {}
        Some("insecure") => fields.push(Entry::new("tls_verify", Node::Plain("false".into()))),
        Some("disabled") => {
            fields.push(Entry::new("tls_verify", Node::Plain("false".into())).noted(
                "regsync: tls disabled (plain http); ocirepl tries https without checks, then http",
            ))
        }
        Some(other) => c.leave_out(&at.key("tls"), format!("{at} tls: {other:?}")),
    }
    if let Some(n) = cred["reqConcurrent"].as_u64() {
        fields.push(Entry::new("concurrency", Node::Plain(n.max(1).to_string())));
    }
    if let Some(r) = cred["reqPerSec"].as_f64().filter(|r| *r > 0.0) {
        fields.push(Entry::new(
            "requests_per_second",
            Node::Plain(r.to_string()),
        ));
    }
    if cred["mirrors"].is_array() {
        let mirrors = c.strings(
            &cred["mirrors"],
            &at.key("mirrors"),
            &format!("{at} mirrors"),
        );
        fields.push(
            Entry::new("mirrors", strs(mirrors)).noted(
                "tried in this order, before the registry; tags are resolved at the registry",
            ),
        );
    }
    for key in CRED_UNSUPPORTED {
        if cred.get(key).is_some() {
            c.leave_out(&at.key(key), format!("{at} {key}"));
        }
    }
    Ok(Entry::new(host, Node::Map(fields)))
}

/// A `creds` entry's `user` and `pass` as `creds`: a password from a
/// variable or file as regsync's template named it, a literal one moved
/// out of the config into a variable named after the registry.
fn login(cred: &Value, host: &str, at: &At, c: &mut Converted) -> Option<Entry> {
    // regsync reads both into strings: `pass: 123456` is the text 123456.
    let user = c.scalar(&cred["user"], &at.key("user"));
    let pass = c.scalar(&cred["pass"], &at.key("pass"));
    match (user.as_deref(), pass.as_deref()) {
        (Some(user), Some(pass)) => {
            let password = match templated(pass) {
                Templated::Env(v) => Entry::new("password_env", s(&v)),
                Templated::File(p) => Entry::new("password_file", s(&p)),
                Templated::Literal(_) => {
                    let var = format!(
                        "{}_PASSWORD",
                        host.to_ascii_uppercase()
                            .chars()
                            .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' })
                            .collect::<String>()
                    );
                    c.notes.push(format!(
                        "{at}: the password is read from {var}, not written in the config"
                    ));
                    Entry::new("password_env", s(&var)).noted(format!(
                        "regsync had the password in the file; export {var} instead"
                    ))
                }
                Templated::Other(t) => {
                    c.leave_out(&at.key("pass"), format!("{at} pass: the template {t:?}"));
                    Entry::new("password_env", s("SET_ME"))
                }
            };
            let user = match templated(user) {
                Templated::Literal(u) => u,
                _ => {
                    c.leave_out(
                        &at.key("user"),
                        format!("{at} user: a template (ocirepl takes the user name as written)"),
                    );
                    user.to_string()
                }
            };
            Some(Entry::new(
                "creds",
                Node::Map(vec![Entry::new("username", s(&user)), password]),
            ))
        }
        (None, None) => None,
        _ => {
            c.leave_out(
                &at.path,
                format!("{at}: user without pass, or pass without user"),
            );
            None
        }
    }
}

/// The keys a sync entry or `defaults` shares.
fn job_keys(v: &Value, at: &At, c: &mut Converted, defaults: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    job_kinds(v, at, c);
    if let Some(i) = v["interval"].as_str() {
        match every(i) {
            Some(e) => out.push(Entry::new("every", s(&e))),
            None => c.leave_out(
                &at.key("interval"),
                format!("{at} interval {i:?}: not a whole number of seconds, minutes or hours"),
            ),
        }
    }
    if let Some(sched) = v["schedule"].as_str() {
        out.push(Entry::new("schedule", s(sched)));
    }
    if let Some(min) = v["ratelimit"]["min"].as_u64() {
        out.push(Entry::new("ratelimit_min", Node::Plain(min.to_string())));
    }
    if v["ratelimit"]["retry"].is_string() {
        c.notes.push(format!(
            "{at}: ratelimit.retry: an image held back waits for the next run"
        ));
    }
    if let Some(b) = v["backup"].as_str() {
        match backup(b) {
            Some(p) => out.push(Entry::new("backup", s(&p)).noted(format!("regsync: {b}"))),
            None => c.leave_out(
                &at.key("backup"),
                format!("{at} backup {b:?}: a template other than {{{{.Ref.Tag}}}} and the date"),
            ),
        }
    }
    if v["mediaTypes"].is_array() {
        let types = c.strings(
            &v["mediaTypes"],
            &at.key("mediaTypes"),
            &format!("{at} mediaTypes"),
        );
        out.push(Entry::new("media_types", strs(types)));
    }
    if v["includeExternal"].as_bool() == Some(true) {
        out.push(Entry::new("include_foreign", Node::Plain("true".into())));
    }
    out.extend(referrers(v, at, c));
    for key in [
        "digestTags",
        "forceRecursive",
        "hooks",
        "referrerSource",
        "referrerTarget",
        "referrerSlow",
    ] {
        if v.get(key).is_some() {
            c.leave_out(&at.key(key), format!("{at} {key}"));
        }
    }
    if defaults {
        for key in DEFAULTS_ONLY {
            if v.get(key).is_some() {
                c.leave_out(
                    &at.key(key),
                    format!("{at} {key} (ocirepl: `sync -j N` for parallel copies)"),
                );
            }
        }
    }
    if v.get("fastCheck").is_some() || v.get("fastCopy").is_some() {
        c.notes.push(format!(
            "{at}: fastCheck: an unchanged tag costs one HEAD per side already"
        ));
    }
    out
}

/// The kinds of the job keys, each value of another kind listed.
fn job_kinds(v: &Value, at: &At, c: &mut Converted) {
    c.typed(
        v,
        &at.path,
        &format!("{at} "),
        &[
            ("interval", Kind::Text),
            ("schedule", Kind::Text),
            ("ratelimit", Kind::Map),
            ("backup", Kind::Text),
            ("mediaTypes", Kind::List),
            ("includeExternal", Kind::Bool),
            ("referrers", Kind::Bool),
            ("referrerFilters", Kind::List),
        ],
    );
    c.typed(
        &v["ratelimit"],
        &at.key("ratelimit"),
        &format!("{at} ratelimit."),
        &[("min", Kind::Number), ("retry", Kind::Text)],
    );
    c.unknown_keys(
        &v["ratelimit"],
        &at.key("ratelimit"),
        &format!("{at} ratelimit."),
        &["min", "retry"],
    );
}

/// `referrers` and `referrerFilters` as `referrers` and
/// `referrers_types` (artifact types only).
fn referrers(v: &Value, at: &At, c: &mut Converted) -> Vec<Entry> {
    let filters = v["referrerFilters"].as_array().into_iter().flatten();
    for (n, f) in filters.clone().enumerate() {
        let path = format!("{}[{n}]", at.key("referrerFilters"));
        let label = format!("{at} referrerFilters[{n}] ");
        if !f.is_object() {
            c.misshapen(&path, format!("{label}: not a mapping"));
        }
        c.unknown_keys(f, &path, &label, &["artifactType", "annotations"]);
        c.typed(f, &path, &label, &[("artifactType", Kind::Text)]);
        if f.get("annotations").is_some() {
            c.leave_out(
                &format!("{path}.annotations"),
                format!("{label}annotations (ocirepl selects referrers by artifact type only)"),
            );
        }
    }
    let mut out = Vec::new();
    if v["referrers"].as_bool() == Some(true) {
        out.push(Entry::new("referrers", Node::Plain("true".into())));
        let types: Vec<String> = filters
            .filter_map(|f| f["artifactType"].as_str().map(str::to_string))
            .collect();
        if !types.is_empty() {
            out.push(Entry::new("referrers_types", strs(types)));
        }
    }
    out
}

/// A Go duration (`60m`, `1h15m`, `30s`) as `every` takes it.
fn every(go: &str) -> Option<String> {
    let mut secs: u64 = 0;
    let mut num = String::new();
    for ch in go.trim().chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match ch {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        secs = secs.checked_add(n.checked_mul(unit)?)?;
    }
    if !num.is_empty() || secs == 0 {
        return None;
    }
    Some(match secs {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    })
}

/// A backup template made of `{{.Ref.Tag}}`, a date and literal text, as
/// a `backup` pattern.
fn backup(template: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("}}")? + i;
        let inner = rest[i + 2..end].trim();
        match inner {
            ".Ref.Tag" => out.push_str("{tag}"),
            i if i.starts_with("time.Now.Format") => out.push_str("{date}"),
            _ => return None,
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    // A backup elsewhere (a full reference) has no equivalent.
    crate::plan::BackupName::parse(&out).ok().map(|_| out)
}

/// regsync's anchoring, kept as it is: `"^" + p + "$"`.
fn anchored(pattern: &str) -> String {
    format!("regex:^{pattern}$")
}

/// `tags` / `tagSets` as include and exclude patterns.
fn tag_filters(v: &Value, at: &At, c: &mut Converted) -> Vec<Entry> {
    let mut sets: Vec<(String, &Value)> = v["tagSets"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(n, set)| (format!("{}[{n}]", at.key("tagSets")), set))
        .collect();
    if v["tags"].is_object() {
        sets.push((at.key("tags"), &v["tags"]));
    }
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for (path, set) in &sets {
        let label = format!("{at} {} ", &path[at.path.len() + 1..]);
        if !set.is_object() {
            c.misshapen(path, format!("{label}: not a mapping"));
        }
        c.unknown_keys(set, path, &label, &["allow", "deny", "semverRange"]);
        let mut list = |key: &str| {
            c.strings(
                &set[key],
                &format!("{path}.{key}"),
                &format!("{label}{key}"),
            )
        };
        let allow: Vec<String> = list("allow").iter().map(|p| anchored(p)).collect();
        let deny: Vec<String> = list("deny").iter().map(|p| anchored(p)).collect();
        let semver: Vec<String> = list("semverRange")
            .iter()
            .map(|r| {
                format!(
                    "semver:{}",
                    r.split_whitespace().collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        if sets.len() > 1 && (!deny.is_empty() || (!semver.is_empty() && !allow.is_empty())) {
            c.leave_out(path, format!(
                "{at} tagSets: a set that combines deny or semverRange with allow, beside other sets (ocirepl has one include and one exclude list)"
            ));
            continue;
        }
        if !semver.is_empty() {
            c.notes.push(format!(
                "{at}: semverRange: ocirepl's semver: leaves pre-releases out unless the range names one, and reads three-part versions"
            ));
        }
        if !semver.is_empty() && !allow.is_empty() {
            // Within one set regsync ANDs them: keep the range, and the
            // allow list as a further filter is not expressible.
            c.leave_out(
                path,
                format!("{at} tags: allow together with semverRange (both must match in regsync)"),
            );
        }
        include.extend(allow);
        include.extend(semver);
        exclude.extend(deny);
    }
    let mut out = Vec::new();
    if !include.is_empty() {
        out.push(Entry::new("include", strs(include)));
    }
    if !exclude.is_empty() {
        out.push(Entry::new("exclude", strs(exclude)));
    }
    match out.is_empty() {
        true => Vec::new(),
        false => vec![Entry::new("tags", Node::Map(out))
            .noted("regsync anchors a regex by text: ^ + pattern + $ (an alternation is only partly anchored)")],
    }
}

/// One `sync` entry as a job.
fn sync_entry(
    v: &Value,
    i: usize,
    names: &mut Vec<String>,
    c: &mut Converted,
) -> Option<Vec<Entry>> {
    let (Some(source), Some(target)) = (v["source"].as_str(), v["target"].as_str()) else {
        c.leave_out(
            &format!("sync[{i}]"),
            format!("sync[{i}]: no source or target"),
        );
        return None;
    };
    let at = At {
        path: format!("sync[{i}]"),
        label: format!("sync[{i}] ({source})"),
    };
    let known: Vec<&str> = JOB_KEYS.iter().chain(&SYNC_ONLY).copied().collect();
    c.unknown_keys(v, &at.path, &format!("{at} "), &known);
    let misshapen = c.misshapen;
    c.typed(
        v,
        &at.path,
        &format!("{at} "),
        &[
            ("type", Kind::Text),
            ("tags", Kind::Map),
            ("tagSets", Kind::List),
            ("repos", Kind::Map),
            ("platform", Kind::Text),
            ("platforms", Kind::List),
        ],
    );
    if source.contains("{{") || target.contains("{{") {
        c.leave_out(
            &at.key("source"),
            format!("{at}: a template in source or target"),
        );
        return None;
    }
    let kind = v["type"].as_str().unwrap_or("repository");
    let mut job = Vec::new();
    let mut tags = Vec::new();
    let (src, dst) = endpoints(v, kind, (source, target), &at, c, &mut tags)?;
    let name = job_name(
        dst.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("job"),
        names,
    );
    job.push(Entry::new("name", s(&name)));
    job.push(Entry::new("source", s(&src)));
    job.push(Entry::new("target", s(&dst)));
    if kind != "image" {
        tags.extend(tag_filters(v, &at, c));
    }
    job.extend(tags);
    if let Some(p) = v["platform"].as_str() {
        job.push(Entry::new("platforms", strs([p.to_string()])).noted(
            "regsync pushed that platform's image itself as the tag; ocirepl pushes a one-platform index",
        ));
    }
    if v["platforms"].is_array() {
        let platforms = c.strings(
            &v["platforms"],
            &at.key("platforms"),
            &format!("{at} platforms"),
        );
        job.push(
            Entry::new("platforms", strs(platforms))
                .noted("regsync kept the original index (sparse); ocirepl writes a new index of these platforms"),
        );
    }
    job.extend(job_keys(v, &at, c, false));
    // A filter that cannot be read would select more than regsync did.
    if c.misshapen > misshapen {
        c.leave_out(
            &at.path,
            format!("{at}: left out whole, a value in it is not of its kind"),
        );
        return None;
    }
    Some(job)
}

/// Where a `sync` entry reads and writes, by its `type`: a repository as
/// it is, a registry as a namespace with `repos` as its repository filter,
/// an image as its repository with the tag as the filter.
fn endpoints(
    v: &Value,
    kind: &str,
    (source, target): (&str, &str),
    at: &At,
    c: &mut Converted,
    tags: &mut Vec<Entry>,
) -> Option<(String, String)> {
    let ends = match kind {
        "repository" => (source.to_string(), target.to_string()),
        "registry" => {
            let label = format!("{at} repos.");
            c.unknown_keys(&v["repos"], &at.key("repos"), &label, &["allow", "deny"]);
            let repos = filters(&v["repos"], at, c);
            if !repos.is_empty() {
                tags.push(Entry::new("repositories", Node::Map(repos)));
            }
            (
                format!("{}/", source.trim_end_matches('/')),
                format!("{}/", target.trim_end_matches('/')),
            )
        }
        "image" => {
            let (s_repo, s_tag) = split_tag(source);
            let (t_repo, t_tag) = split_tag(target);
            if s_tag != t_tag {
                c.leave_out(
                    &at.key("target"),
                    format!("{at}: an image copied to another tag ({target})"),
                );
                return None;
            }
            tags.push(Entry::new(
                "tags",
                Node::Map(vec![Entry::new(
                    "include",
                    strs([format!("regex:^{}$", regex::escape(&s_tag))]),
                )]),
            ));
            (s_repo, t_repo)
        }
        other => {
            c.leave_out(&at.key("type"), format!("{at}: type {other:?}"));
            return None;
        }
    };
    Some(ends)
}

/// `repos` allow and deny as include and exclude patterns.
fn filters(v: &Value, at: &At, c: &mut Converted) -> Vec<Entry> {
    let mut list = |key: &str| -> Vec<String> {
        let path = format!("{}.{key}", at.key("repos"));
        let label = format!("{at} repos.{key}");
        c.strings(&v[key], &path, &label)
            .iter()
            .map(|p| anchored(p))
            .collect()
    };
    let mut out = Vec::new();
    let (allow, deny) = (list("allow"), list("deny"));
    if !allow.is_empty() {
        out.push(Entry::new("include", strs(allow)));
    }
    if !deny.is_empty() {
        out.push(Entry::new("exclude", strs(deny)));
    }
    out
}

/// `repo:tag` (or `repo`, for `latest`).
fn split_tag(r: &str) -> (String, String) {
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (r.to_string(), "latest".to_string()),
    }
}
