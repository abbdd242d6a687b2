//! `skopeo sync --src yaml` configs (skopeo-sync(1)): a map of registries,
//! each with `images` (tags, digests, or `[]` for all), `images-by-tag-regex`,
//! `images-by-semver`, `credentials`, `tls-verify` and `cert-dir`.
//!
//! The destination is skopeo's command-line argument, so the converter
//! takes it too ([`Destination`]), and names targets as skopeo does:
//! `DEST/LAST-PATH-ELEMENT`, or with `--scoped` `DEST/HOST/PATH` (Docker
//! Hub's single names as `docker.io/library/NAME`).

use serde_json::Value;

use super::regsync::header;
use super::yaml::{Entry, Node, s, strs, write};
use super::{Converted, Kind, job_name};

/// Where `skopeo sync` would have written.
#[derive(Debug, Clone)]
pub struct Destination {
    /// `HOST/PREFIX` (skopeo's DESTINATION argument).
    pub target: String,
    /// `--scoped`.
    pub scoped: bool,
}

impl Destination {
    fn name(&self, host: &str, repo: &str) -> String {
        let dest = self.target.trim_end_matches('/');
        let docker_hub = matches!(
            host,
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        );
        let full = match (docker_hub, repo.contains('/')) {
            (true, false) => format!("docker.io/library/{repo}"),
            (true, true) => format!("docker.io/{repo}"),
            _ => format!("{host}/{repo}"),
        };
        match self.scoped {
            true => format!("{dest}/{full}"),
            false => format!("{dest}/{}", repo.rsplit('/').next().unwrap_or(repo)),
        }
    }
}

pub(super) fn convert(
    doc: &Value,
    dest: &Destination,
    mut c: Converted,
) -> Result<Converted, String> {
    let root = doc
        .as_object()
        .ok_or("not a skopeo sync config (a map of registries at the top)")?;
    c.notes.push(
        "skopeo sync without --all copies one platform of a multi-arch image; ocirepl copies all (add platforms: [linux/amd64] for one)".into(),
    );
    let mut registries = Vec::new();
    let mut jobs = Jobs::default();
    for (host, cfg) in root {
        if let Some(r) = registry(host, cfg, &mut c) {
            registries.push(r);
        }
        let known = [
            "images",
            "images-by-tag-regex",
            "images-by-semver",
            "credentials",
            "tls-verify",
            "cert-dir",
        ];
        if !cfg.is_object() {
            c.misshapen(host, format!("{host}: not a mapping"));
        }
        c.unknown_keys(cfg, host, &format!("{host} "), &known);
        c.typed(
            cfg,
            host,
            &format!("{host} "),
            &[
                ("images", Kind::Map),
                ("images-by-tag-regex", Kind::Map),
                ("images-by-semver", Kind::Map),
                ("credentials", Kind::Map),
                ("tls-verify", Kind::Bool),
                ("cert-dir", Kind::Text),
            ],
        );
        jobs.of_registry(host, cfg, dest, &mut c);
    }
    if jobs.jobs.is_empty() {
        return Err("no images to sync".into());
    }
    let mut entries = vec![Entry::new("version", Node::Plain("1".into()))];
    if !registries.is_empty() {
        entries.push(Entry::new("registries", Node::Map(registries)));
    }
    entries.push(Entry::new("jobs", Node::List(jobs.jobs)).noted(c.notes[0].clone()));
    c.text = header(&c, "skopeo sync");
    write(&entries, 0, &mut c.text);
    Ok(c)
}

/// The jobs made so far, their names and targets.
#[derive(Default)]
struct Jobs {
    jobs: Vec<Node>,
    names: Vec<String>,
    targets: Vec<String>,
}

impl Jobs {
    /// The jobs of one registry's `images`, `images-by-tag-regex` and
    /// `images-by-semver`.
    fn of_registry(&mut self, host: &str, cfg: &Value, dest: &Destination, c: &mut Converted) {
        for (repo, refs) in cfg["images"].as_object().into_iter().flatten() {
            let path = format!("{host}.images.{repo}");
            let listed = refs.as_array().map_or(0, Vec::len);
            let misshapen = c.misshapen;
            let refs = c.strings(refs, &path, &format!("{host} images {repo}"));
            let (digests, tags): (Vec<&String>, Vec<&String>) =
                refs.iter().partition(|r| r.starts_with("sha256:"));
            for d in digests {
                c.leave_out(
                    &path,
                    format!("{host} images {repo}: {d} (a digest without a tag; copy it with `ocirepl copy`)"),
                );
            }
            // `[]` (or nothing) is every tag; a list with no tag left in
            // it, or one that cannot be read, is nothing.
            if (listed > 0 && tags.is_empty()) || c.misshapen > misshapen {
                continue;
            }
            let include = tags
                .iter()
                .map(|t| format!("regex:^{}$", regex::escape(t)))
                .collect();
            self.add((host, repo), include, dest, c);
        }
        for (repo, re) in cfg["images-by-tag-regex"].as_object().into_iter().flatten() {
            match re.as_str() {
                Some(re) => self.add((host, repo), vec![format!("regex:{re}")], dest, c),
                None => c.leave_out(
                    &format!("{host}.images-by-tag-regex.{repo}"),
                    format!("{host} images-by-tag-regex {repo}: not a string"),
                ),
            }
        }
        for (repo, range) in cfg["images-by-semver"].as_object().into_iter().flatten() {
            match range.as_str() {
                None => c.leave_out(
                    &format!("{host}.images-by-semver.{repo}"),
                    format!("{host} images-by-semver {repo}: not a string"),
                ),
                Some(r) if !r.contains("||") => {
                    c.notes.push(format!(
                        "{host}/{repo}: images-by-semver: read with Cargo's rules (comparators joined by commas)"
                    ));
                    self.add((host, repo), vec![format!("semver:{}", semver(r))], dest, c);
                }
                _ => c.leave_out(
                    &format!("{host}.images-by-semver.{repo}"),
                    format!("{host} images-by-semver {repo}: {range} (|| has no equivalent)"),
                ),
            }
        }
    }

    fn add(
        &mut self,
        (host, repo): (&str, &str),
        include: Vec<String>,
        dest: &Destination,
        c: &mut Converted,
    ) {
        let target = dest.name(host, repo);
        if self.targets.contains(&target) {
            c.notes.push(format!(
                "{host}/{repo} goes to {target} like another repository before it (skopeo names by the last path element; --scoped keeps them apart)"
            ));
        }
        self.targets.push(target.clone());
        let mut job = vec![
            Entry::new("name", s(&job_name(repo, &mut self.names))),
            Entry::new("source", s(&format!("{host}/{repo}"))),
            Entry::new("target", s(&target)),
        ];
        if !include.is_empty() {
            job.push(Entry::new(
                "tags",
                Node::Map(vec![Entry::new("include", strs(include))]),
            ));
        }
        self.jobs.push(Node::Map(job));
    }
}

/// `">= 3.12.0 < 4"` (Masterminds: spaces or commas) as Cargo's
/// comma-separated comparators.
fn semver(range: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for token in range.split([',', ' ']).filter(|t| !t.is_empty()) {
        match parts.last_mut() {
            // An operator alone (`>=` then `3.12.0`) joins its version.
            Some(last) if last.chars().all(|c| "<>=~^!".contains(c)) => last.push_str(token),
            _ => parts.push(token.to_string()),
        }
    }
    parts.join(", ")
}

fn registry(host: &str, cfg: &Value, c: &mut Converted) -> Option<Entry> {
    let mut fields = Vec::new();
    let path = format!("{host}.credentials");
    c.unknown_keys(
        &cfg["credentials"],
        &path,
        &format!("{host} credentials."),
        &["username", "password"],
    );
    if let Some(creds) = cfg["credentials"].as_object() {
        let var = format!(
            "{}_PASSWORD",
            host.to_ascii_uppercase()
                .chars()
                .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' })
                .collect::<String>()
        );
        match creds.get("username").and_then(Value::as_str) {
            Some(user) => {
                c.notes.push(format!(
                    "{host}: the password is read from {var}, not written in the config"
                ));
                fields.push(
                    Entry::new(
                        "creds",
                        Node::Map(vec![
                            Entry::new("username", s(user)),
                            Entry::new("password_env", s(&var)),
                        ]),
                    )
                    .noted(format!(
                        "skopeo had the password in the file; export {var} instead"
                    )),
                );
            }
            None => c.leave_out(&path, format!("{host} credentials without a username")),
        }
    }
    if let Some(v) = cfg["tls-verify"].as_bool() {
        fields.push(Entry::new("tls_verify", Node::Plain(v.to_string())));
    }
    if let Some(d) = cfg["cert-dir"].as_str() {
        fields.push(Entry::new("cert_dir", s(d)));
    }
    (!fields.is_empty()).then(|| Entry::new(host, Node::Map(fields)))
}
