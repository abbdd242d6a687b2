//! Mirror jobs as the run uses them: the raw config validated, defaults
//! merged into each job, references parsed, patterns compiled, and
//! credentials described (not yet read) per registry.
//!
//! Owns the config's meaning and every semantic complaint (duplicate job
//! names, a bad pattern or range, a target equal to its source, defaults
//! that name a source), each tied to its place in the file. Never contacts
//! a registry.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::config::{ConfigError, ConfigErrors, RawConfig, RawCreds, RawJob, error_at, read};
use super::filter::{Filter, Pattern};
use super::schedule::Schedule;
use super::trust::{self, Loader, Part, PolicySpec};
use crate::plan::{BackupName, CopyOptions, Format, Mode, PlatformSelection};
use crate::platform::Platform;
use crate::reference::{ImageRef, Reference};
use crate::store::{Caps, Discovery, DiscoveryApi};
use crate::verify::{Gate, OnUnverified};

/// The only config version this build reads.
pub const VERSION: u32 = 1;
/// Docker Hub pulls kept in reserve unless a job says otherwise.
pub const DEFAULT_RATELIMIT_MIN: u32 = 10;
/// Tags one prune may delete unless a job says otherwise.
pub const DEFAULT_PRUNE_MAX: usize = 10;

/// A validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub jobs: Vec<Job>,
    pub registries: Vec<RegistrySettings>,
    /// The daemon's triggers, when the config has a `service:` block.
    pub service: Option<Service>,
}

/// Events for one job within this long start one run, unless the config
/// says otherwise.
pub const DEFAULT_DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(2);

/// The `service:` block: how `/v1` requests prove who sent them, and how
/// events are gathered into runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The environment variable with the bearer token (read at start).
    pub token_env: String,
    /// The environment variable with GitHub's webhook secret.
    pub github_secret_env: Option<String>,
    pub debounce: std::time::Duration,
}

/// Where a job reads or writes: one repository, or every repository
/// under a prefix of a registry (`ghcr.io/acme/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Repository(Reference),
    Namespace {
        /// A reference to `REGISTRY/PREFIX` (or a placeholder repository
        /// when the prefix is empty), for the registry's name and address.
        at: Reference,
        /// With its trailing slash; empty for a whole registry.
        prefix: String,
    },
}

impl Config {
    /// Jobs without a schedule (a daemon runs none of those).
    pub fn unscheduled(&self) -> Vec<&str> {
        self.jobs
            .iter()
            .filter(|j| j.schedule.is_none())
            .map(|j| j.name.as_str())
            .collect()
    }
}

impl Endpoint {
    pub fn registry(&self) -> &str {
        match self {
            Endpoint::Repository(r) | Endpoint::Namespace { at: r, .. } => r.registry(),
        }
    }

    /// Why a job reading `self` may not write `target`: the target is the
    /// source however either spells its registry (`localhost:5000` and
    /// `127.0.0.1:5000` are one server, see [`crate::reference::Place`]),
    /// or one namespace lies inside the other on one registry, so that a
    /// run writes repositories it reads (a loop, or a source overwritten).
    pub fn overlaps(&self, target: &Endpoint) -> Option<String> {
        match (self, target) {
            (Endpoint::Repository(s), Endpoint::Repository(t)) if s.same_repository(t) => {
                Some(match s.registry() == t.registry() {
                    true => "the target is the source".to_string(),
                    false => format!(
                        "the target is the source: {} and {} reach the same registry",
                        s.registry(),
                        t.registry()
                    ),
                })
            }
            (
                Endpoint::Namespace { at: s, prefix: sp },
                Endpoint::Namespace { at: t, prefix: tp },
            ) if s.place().same(&t.place())
                && (sp.starts_with(tp.as_str()) || tp.starts_with(sp.as_str())) =>
            {
                let (sn, tn) = (self.to_string(), target.to_string());
                Some(match sp == tp {
                    true => format!("the target is the source: {sn} and {tn} are one namespace"),
                    false => format!(
                        "the target namespace {tn} overlaps the source namespace {sn}: a run would write repositories it reads"
                    ),
                })
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Repository(r) => r.fmt(f),
            Endpoint::Namespace { at, prefix } => write!(f, "{}/{prefix}", at.registry()),
        }
    }
}

/// One mirror job.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub source: Endpoint,
    /// `target`, or each of `targets` (one read of the source for all).
    pub targets: Vec<Endpoint>,
    pub tags: Filter,
    /// Tags that never change once in the target: listed there, never checked again.
    pub immutable: Vec<Pattern>,
    /// For a namespace job, which repositories below the prefix.
    pub repositories: Filter,
    pub options: CopyOptions,
    pub ratelimit_min: u32,
    /// `--daemon` only.
    pub schedule: Option<Schedule>,
    pub prune: bool,
    pub prune_max: usize,
}

/// How a registry's password is found (read when the registry is first used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creds {
    Env { username: String, variable: String },
    File { username: String, path: PathBuf },
    Authfile(PathBuf),
}

/// The `registries:` entry for one `HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    pub host: String,
    pub creds: Option<Creds>,
    pub tls_verify: Option<bool>,
    pub cert_dir: Option<PathBuf>,
    pub concurrency: Option<usize>,
    /// Read mirrors: (registry, prefix ending in `/` or empty).
    pub mirrors: Vec<(String, String)>,
    pub mirror_tags: bool,
    /// Names the registry calls itself in its events (`request.host`).
    pub aliases: Vec<String>,
    pub caps: Caps,
    pub discovery: Discovery,
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let raw = read(path).map_err(|e| ConfigErrors(vec![e]))?;
    validate(path, raw)
}

/// Validates parsed config text.
pub fn validate(file: &Path, raw: RawConfig) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    if raw.version.value != VERSION {
        errors.push(error_at(
            file,
            &raw.version.referenced,
            format!(
                "unsupported config version {} (this ocirepl reads version {VERSION})",
                raw.version.value
            ),
        ));
    }
    let defaults = raw.defaults.map(|d| d.value).unwrap_or_default();
    for field in [&defaults.name, &defaults.source, &defaults.target]
        .into_iter()
        .flatten()
    {
        errors.push(error_at(
            file,
            &field.referenced,
            "defaults cannot set name, source or target",
        ));
    }
    if let Some(t) = &defaults.targets {
        errors.push(error_at(file, &t.referenced, "defaults cannot set targets"));
    }
    let mut names = HashSet::new();
    let mut jobs = Vec::new();
    let mut trust = Loader::default();
    if raw.jobs.value.is_empty() {
        errors.push(error_at(file, &raw.jobs.referenced, "no jobs"));
    }
    for spanned in raw.jobs.value {
        let mut v = Validator {
            file,
            errors: &mut errors,
            trust: &mut trust,
        };
        let Some(job) = v.job(&spanned, &defaults) else {
            continue;
        };
        if names.insert(job.name.clone()) {
            jobs.push(job);
        } else {
            let at = spanned
                .value
                .name
                .as_ref()
                .map_or(&spanned.referenced, |n| &n.referenced);
            errors.push(error_at(
                file,
                at,
                format!("duplicate job name {:?}", job.name),
            ));
        }
    }
    let registries = raw
        .registries
        .into_iter()
        .filter_map(|(host, r)| registry(file, &host, r.value, &mut errors))
        .collect();
    let service = raw.service.and_then(|s| service(file, s, &mut errors));
    if errors.is_empty() {
        Ok(Config {
            file: file.to_path_buf(),
            jobs,
            registries,
            service,
        })
    } else {
        // A mistake in `defaults` is found once per job that inherits it.
        errors.sort_by(|a, b| (a.line, a.column, &a.message).cmp(&(b.line, b.column, &b.message)));
        errors.dedup();
        Err(ConfigErrors(errors))
    }
}

/// Collects complaints while turning raw jobs into jobs.
struct Validator<'a> {
    file: &'a Path,
    errors: &'a mut Vec<ConfigError>,
    /// Key files and trusted roots, read once for all jobs.
    trust: &'a mut Loader,
}

impl Validator<'_> {
    fn complain<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        self.errors
            .push(error_at(self.file, &at.referenced, message));
    }

    fn job(&mut self, spanned: &Spanned<RawJob>, defaults: &RawJob) -> Option<Job> {
        let before = self.errors.len();
        let raw = &spanned.value;
        let (Some(name), Some(source)) = (&raw.name, &raw.source) else {
            self.complain(spanned, "a job needs name, source and target (or targets)");
            return None;
        };
        let written: Vec<&Spanned<String>> = match (&raw.target, &raw.targets) {
            (Some(t), None) => vec![t],
            (None, Some(ts)) if !ts.value.is_empty() => ts.value.iter().collect(),
            (None, Some(ts)) => {
                self.complain(ts, "targets is empty");
                return None;
            }
            (Some(t), Some(_)) => {
                self.complain(t, "give target or targets, not both");
                return None;
            }
            (None, None) => {
                self.complain(spanned, "a job needs name, source and target (or targets)");
                return None;
            }
        };
        if name.value.is_empty()
            || !name
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.complain(
                name,
                format!("job name {:?}: use letters, digits, - and _", name.value),
            );
        }
        let src = self.endpoint(source);
        let mut targets = Vec::new();
        for (i, target) in written.iter().enumerate() {
            let Some(dst) = self.endpoint(target) else {
                continue;
            };
            if let Some(src) = &src {
                self.check_pair(src, &dst, target);
            }
            let repeated = targets
                .iter()
                .any(|earlier: &Endpoint| earlier.overlaps(&dst).is_some());
            if repeated {
                self.complain(
                    target,
                    format!(
                        "target {} is given twice (or inside another target)",
                        written[i].value
                    ),
                );
            }
            targets.push(dst);
        }
        let pick = |j: &Option<Vec<Spanned<String>>>, d: &Option<Vec<Spanned<String>>>| {
            j.clone().or_else(|| d.clone()).unwrap_or_default()
        };
        let none = Default::default();
        let (jt, dt) = (
            raw.tags.as_ref().unwrap_or(&none),
            defaults.tags.as_ref().unwrap_or(&none),
        );
        let filter = Filter {
            include: self.patterns(&pick(&jt.include, &dt.include)),
            exclude: self.patterns(&pick(&jt.exclude, &dt.exclude)),
            latest: jt.latest.as_ref().or(dt.latest.as_ref()).map(|l| l.value),
        };
        let immutable = self.patterns(&pick(&jt.immutable, &dt.immutable));
        let nr = Default::default();
        let (jr, dr) = (
            raw.repositories.as_ref().unwrap_or(&nr),
            defaults.repositories.as_ref().unwrap_or(&nr),
        );
        let repositories = Filter {
            include: self.patterns(&pick(&jr.include, &dr.include)),
            exclude: self.patterns(&pick(&jr.exclude, &dr.exclude)),
            latest: None,
        };
        let mut options = self.options(raw, defaults);
        if raw.referrers.or(defaults.referrers).unwrap_or(false) {
            let types = raw
                .referrers_types
                .clone()
                .or_else(|| defaults.referrers_types.clone());
            options.referrers = Some(types.unwrap_or_default());
        }
        options.verify = self.verify(raw, defaults);
        let ratelimit_min = raw
            .ratelimit_min
            .as_ref()
            .or(defaults.ratelimit_min.as_ref())
            .map_or(DEFAULT_RATELIMIT_MIN, |r| r.value);
        options.pull_reserve = Some(u64::from(ratelimit_min));
        let schedule = self.schedule(raw, defaults);
        let prune_max = raw
            .prune_max
            .as_ref()
            .or(defaults.prune_max.as_ref())
            .map_or(DEFAULT_PRUNE_MAX, |p| p.value);
        if self.errors.len() > before {
            return None;
        }
        Some(Job {
            name: name.value.clone(),
            source: src?,
            targets,
            tags: filter,
            immutable,
            repositories,
            options,
            ratelimit_min,
            schedule,
            prune: raw.prune.or(defaults.prune).unwrap_or(false),
            prune_max,
        })
    }

    /// A source and one target that cannot go together.
    fn check_pair(&mut self, src: &Endpoint, dst: &Endpoint, at: &Spanned<String>) {
        match (src, dst) {
            (a, b) if let Some(why) = a.overlaps(b) => self.complain(at, why),
            (Endpoint::Namespace { .. }, Endpoint::Repository(_))
            | (Endpoint::Repository(_), Endpoint::Namespace { .. }) => self.complain(
                at,
                "source and target must both be repositories, or both namespaces (ending in /)",
            ),
            _ => {}
        }
    }

    /// `schedule` or `every` (the job's, else the defaults'), with its
    /// `timezone` and `jitter`.
    fn schedule(&mut self, raw: &RawJob, defaults: &RawJob) -> Option<Schedule> {
        let own = raw.schedule.is_some() || raw.every.is_some();
        let from = if own { raw } else { defaults };
        let pick = |j: &Option<Spanned<String>>, d: &Option<Spanned<String>>| {
            j.clone().or_else(|| d.clone())
        };
        let timezone = pick(&raw.timezone, &defaults.timezone);
        let jitter = pick(&raw.jitter, &defaults.jitter);
        let text = |s: &Option<Spanned<String>>| s.as_ref().map(|v| v.value.clone());
        let parsed = Schedule::parse(
            text(&from.schedule).as_deref(),
            text(&from.every).as_deref(),
            text(&timezone).as_deref(),
            text(&jitter).as_deref(),
        );
        match parsed {
            Ok(s) => s,
            Err(e) => {
                let key = match e.key {
                    "schedule" => &from.schedule,
                    "every" => &from.every,
                    "timezone" => &timezone,
                    _ => &jitter,
                };
                let at = key
                    .iter()
                    .chain(
                        [&from.schedule, &from.every, &timezone, &jitter]
                            .into_iter()
                            .flatten(),
                    )
                    .next()
                    .map_or(serde_saphyr::Location::UNKNOWN, |s| s.referenced);
                self.errors.push(error_at(self.file, &at, e.message));
                None
            }
        }
    }

    fn endpoint(&mut self, s: &Spanned<String>) -> Option<Endpoint> {
        let text = s.value.trim();
        if text.starts_with("oci:") {
            self.complain(
                s,
                "sync mirrors registries; use `ocirepl copy` for oci: layouts",
            );
            return None;
        }
        let bare = text.strip_prefix("docker://").unwrap_or(text);
        let parsed = match bare.strip_suffix('/') {
            Some(prefix) => namespace(prefix),
            None => Reference::parse(bare)
                .map(Endpoint::Repository)
                .map_err(|e| e.to_string()),
        };
        match parsed {
            Ok(Endpoint::Repository(r)) if r.tag().is_some() || r.digest().is_some() => {
                self.complain(
                    s,
                    format!("{text:?}: a job names repositories, without tag or digest"),
                );
                None
            }
            Ok(e) => Some(e),
            Err(e) => {
                self.complain(s, e);
                None
            }
        }
    }

    fn patterns(&mut self, raw: &[Spanned<String>]) -> Vec<Pattern> {
        raw.iter()
            .filter_map(|p| match Pattern::parse(&p.value) {
                Ok(pattern) => Some(pattern),
                Err(e) => {
                    self.complain(p, e);
                    None
                }
            })
            .collect()
    }

    /// `verify` (the job's, else the defaults'), with `on_unverified`
    /// and `verify_children`; key and root files are read here, so that
    /// `--check` finds an unreadable one before any request.
    fn verify(&mut self, raw: &RawJob, defaults: &RawJob) -> Option<Gate> {
        let on = match raw
            .on_unverified
            .as_ref()
            .or(defaults.on_unverified.as_ref())
        {
            Some(o) => match trust::on_unverified(&o.value) {
                Ok(on) => on,
                Err(e) => {
                    self.complain(o, e);
                    OnUnverified::Fail
                }
            },
            None => OnUnverified::Fail,
        };
        let children = raw
            .verify_children
            .as_ref()
            .or(defaults.verify_children.as_ref())
            .is_some_and(|c| c.value);
        let Some(policies) = raw.verify.as_ref().or(defaults.verify.as_ref()) else {
            // Settings of a verification nobody asked for are a mistake.
            if let Some(o) = &raw.on_unverified {
                self.complain(o, "on_unverified without verify (here or in defaults)");
            }
            if let Some(c) = &raw.verify_children {
                self.complain(c, "verify_children without verify (here or in defaults)");
            }
            return None;
        };
        let specs: Vec<PolicySpec> = policies.value.iter().map(|p| p.value.spec()).collect();
        match self.trust.requirement(&specs, on, children) {
            Ok(gate) => gate,
            Err(errors) => {
                for (i, part, why) in errors {
                    let p = &policies.value[i];
                    let at = match part {
                        Part::Key(k) => p.value.keys.as_ref().map(|ks| ks[k].referenced),
                        Part::Issuer => p.value.keyless.as_ref().map(|k| k.value.issuer.referenced),
                        Part::Subject => {
                            p.value.keyless.as_ref().map(|k| k.value.subject.referenced)
                        }
                        Part::TrustedRoot => p.value.trusted_root.as_ref().map(|r| r.referenced),
                        Part::Policy => None,
                    };
                    let at = at.unwrap_or(p.referenced);
                    self.errors
                        .push(error_at(self.file, &at, format!("verify: {why}")));
                }
                None
            }
        }
    }

    fn options(&mut self, raw: &RawJob, defaults: &RawJob) -> CopyOptions {
        let mut options = CopyOptions::default();
        if let Some(ps) = raw.platforms.as_ref().or(defaults.platforms.as_ref()) {
            let mut platforms = Vec::new();
            for p in ps {
                match Platform::parse(&p.value) {
                    Ok(platform) => platforms.push(platform),
                    Err(e) => self.complain(p, e.to_string()),
                }
            }
            if !platforms.is_empty() {
                options.platforms = PlatformSelection::Only(platforms);
            }
        }
        if let Some(m) = raw.mode.as_ref().or(defaults.mode.as_ref()) {
            match m.value.as_str() {
                "verbatim" => options.mode = Mode::Verbatim,
                "prefer-index" => options.mode = Mode::PreferIndex,
                "normalise-index" => options.mode = Mode::NormaliseIndex,
                other => self.complain(
                    m,
                    format!("mode {other:?}: expected verbatim, prefer-index or normalise-index"),
                ),
            }
        }
        if let Some(b) = raw.backup.as_ref().or(defaults.backup.as_ref()) {
            match BackupName::parse(&b.value) {
                Ok(name) => options.backup = Some(name),
                Err(e) => self.complain(b, e),
            }
        }
        if let Some(types) = raw.media_types.as_ref().or(defaults.media_types.as_ref()) {
            for t in types {
                if !t.value.contains('/') {
                    self.complain(t, format!("{:?} is not a media type", t.value));
                }
            }
            options.media_types = Some(types.iter().map(|t| t.value.clone()).collect());
        }
        options.repair = raw.repair.or(defaults.repair).unwrap_or(false);
        options.include_foreign = raw
            .include_foreign
            .or(defaults.include_foreign)
            .unwrap_or(false);
        if let Some(f) = raw.format.as_ref().or(defaults.format.as_ref()) {
            match f.value.as_str() {
                "auto" => options.format = Format::Auto,
                "v2s2" => options.format = Format::V2s2,
                "oci" => options.format = Format::Oci,
                other => self.complain(f, format!("format {other:?}: expected auto, v2s2 or oci")),
            }
        }
        options
    }
}

/// `REGISTRY/PREFIX` (without the trailing slash) → a namespace. A
/// first component that is not a host (no dot, colon or `localhost`) is
/// a Docker Hub namespace, as in a reference.
fn namespace(text: &str) -> Result<Endpoint, String> {
    let (host, path) = match text.split_once('/') {
        Some((h, p)) if looks_like_host(h) => (h, p),
        None if looks_like_host(text) => (text, ""),
        _ => ("docker.io", text),
    };
    // Parse through a placeholder repository, so that the registry is
    // normalised and the path validated exactly as in a reference.
    let probe = match path {
        "" => format!("{host}/x"),
        p => format!("{host}/{p}/x"),
    };
    let at = Reference::parse(&probe).map_err(|e| format!("{text:?}/: {e}"))?;
    let prefix = match path {
        "" => String::new(),
        p => format!("{p}/"),
    };
    Ok(Endpoint::Namespace { at, prefix })
}

/// `service:`: the token variable is required (no `/v1` request is ever
/// taken without proof of its sender); variables are named, not valued.
fn service(
    file: &Path,
    raw: Spanned<super::config::RawService>,
    errors: &mut Vec<ConfigError>,
) -> Option<Service> {
    let before = errors.len();
    let variable = |v: &Spanned<String>, errors: &mut Vec<ConfigError>| {
        let ok = !v.value.is_empty()
            && v.value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            errors.push(error_at(
                file,
                &v.referenced,
                format!("{:?} is not an environment variable name", v.value),
            ));
        }
        v.value.clone()
    };
    let token_env = match &raw.value.token_env {
        Some(v) => variable(v, errors),
        None => {
            errors.push(error_at(
                file,
                &raw.referenced,
                "service needs token_env: the variable holding the token /v1 requests present",
            ));
            String::new()
        }
    };
    let github_secret_env = raw
        .value
        .github_secret_env
        .as_ref()
        .map(|v| variable(v, errors));
    let debounce = match &raw.value.debounce {
        None => DEFAULT_DEBOUNCE,
        Some(d) => match debounce(&d.value) {
            Ok(d) if d <= std::time::Duration::from_secs(3600) => d,
            Ok(_) => {
                errors.push(error_at(file, &d.referenced, "debounce: at most 1h"));
                DEFAULT_DEBOUNCE
            }
            Err(e) => {
                errors.push(error_at(file, &d.referenced, format!("debounce: {e}")));
                DEFAULT_DEBOUNCE
            }
        },
    };
    (errors.len() == before).then_some(Service {
        token_env,
        github_secret_env,
        debounce,
    })
}

/// `50MiB/s` (a size as `--volume-size` takes it, per second).
fn bandwidth(text: &str) -> Result<u64, String> {
    let size = text
        .trim()
        .strip_suffix("/s")
        .ok_or_else(|| format!("bandwidth {text:?}: a size per second, like 50MiB/s"))?;
    match crate::size::parse_size(size) {
        Ok(0) => Err(format!("bandwidth {text:?}: above 0")),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("bandwidth {e}")),
    }
}

/// `200ms`, or a duration as `every` takes it (`2s`).
fn debounce(text: &str) -> Result<std::time::Duration, String> {
    match text.trim().strip_suffix("ms") {
        Some(ms) => ms
            .parse::<u64>()
            .map(std::time::Duration::from_millis)
            .map_err(|_| format!("{text:?}: expected milliseconds (200ms) or 2s, 1m")),
        None => super::schedule::duration(text),
    }
}

fn looks_like_host(s: &str) -> bool {
    s.contains(['.', ':']) || s == "localhost"
}

fn registry(
    file: &Path,
    host: &Spanned<String>,
    raw: super::config::RawRegistry,
    errors: &mut Vec<ConfigError>,
) -> Option<RegistrySettings> {
    let probe = format!("{}/x", host.value);
    let Ok(ImageRef::Registry(r)) = ImageRef::parse(&probe) else {
        errors.push(error_at(
            file,
            &host.referenced,
            format!("{:?} is not HOST[:PORT]", host.value),
        ));
        return None;
    };
    let creds = match &raw.creds {
        None => None,
        Some(c) => match creds(&c.value) {
            Ok(c) => Some(c),
            Err(why) => {
                errors.push(error_at(file, &c.referenced, why));
                return None;
            }
        },
    };
    if let Some(c) = &raw.concurrency
        && c.value == 0
    {
        errors.push(error_at(
            file,
            &c.referenced,
            "concurrency must be at least 1",
        ));
    }
    let mut caps = Caps::default();
    if let Some(r) = &raw.requests_per_second {
        match r.value {
            v if v > 0.0 && v.is_finite() => caps.requests_per_second = Some(v),
            _ => errors.push(error_at(
                file,
                &r.referenced,
                "requests_per_second must be a number above 0",
            )),
        }
    }
    if let Some(b) = &raw.bandwidth {
        match bandwidth(&b.value) {
            Ok(n) => caps.bytes_per_second = Some(n),
            Err(why) => errors.push(error_at(file, &b.referenced, why)),
        }
    }
    let mut discovery = Discovery::default();
    if let Some(d) = &raw.discovery {
        match DiscoveryApi::parse(&d.value) {
            Some(api) => discovery.api = api,
            None => errors.push(error_at(
                file,
                &d.referenced,
                format!(
                    "discovery {:?}: catalog, dockerhub, github, quay, harbor or gitlab",
                    d.value
                ),
            )),
        }
    }
    if let Some(u) = &raw.discovery_url {
        match url::Url::parse(&u.value) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                discovery.url = Some(u.value.trim_end_matches('/').to_string());
            }
            _ => errors.push(error_at(
                file,
                &u.referenced,
                format!("discovery_url {:?}: an http(s) URL", u.value),
            )),
        }
    }
    let mut mirrors = Vec::new();
    for m in raw.mirrors.iter().flatten() {
        match mirror(&m.value) {
            Ok(parsed) if parsed.0 == r.registry() => errors.push(error_at(
                file,
                &m.referenced,
                format!("{:?} is the registry itself, not a mirror of it", m.value),
            )),
            Ok(parsed) => mirrors.push(parsed),
            Err(why) => errors.push(error_at(file, &m.referenced, why)),
        }
    }
    Some(RegistrySettings {
        host: r.registry().to_string(),
        creds,
        tls_verify: raw.tls_verify,
        cert_dir: raw.cert_dir,
        concurrency: raw.concurrency.map(|c| c.value),
        mirrors,
        mirror_tags: raw.mirror_tags.unwrap_or(false),
        caps,
        discovery,
        aliases: raw
            .aliases
            .iter()
            .flatten()
            .map(|a| a.value.to_ascii_lowercase())
            .collect(),
    })
}

/// A read mirror, `HOST[/PREFIX]`: (registry, prefix ending in `/` or
/// empty). The host is required: a mirror is never Docker Hub by default.
fn mirror(text: &str) -> Result<(String, String), String> {
    let text = text.trim().trim_end_matches('/');
    let (host, path) = text.split_once('/').unwrap_or((text, ""));
    if !looks_like_host(host) {
        return Err(format!(
            "mirror {text:?}: expected HOST[/PREFIX], with a host (a dot, a port or localhost)"
        ));
    }
    let probe = match path {
        "" => format!("{host}/x"),
        p => format!("{host}/{p}/x"),
    };
    let at = Reference::parse(&probe).map_err(|e| format!("mirror {text:?}: {e}"))?;
    let prefix = match path {
        "" => String::new(),
        p => format!("{p}/"),
    };
    Ok((at.registry().to_string(), prefix))
}

fn creds(c: &RawCreds) -> Result<Creds, String> {
    let username = c.username.as_ref().map(|u| u.value.clone());
    match (username, &c.password_env, &c.password_file, &c.authfile) {
        (Some(username), Some(v), None, None) => Ok(Creds::Env {
            username,
            variable: v.value.clone(),
        }),
        (Some(username), None, Some(p), None) => Ok(Creds::File {
            username,
            path: p.value.clone(),
        }),
        (None, None, None, Some(a)) => Ok(Creds::Authfile(a.value.clone())),
        _ => {
            Err("creds: give username with password_env or password_file, or authfile alone".into())
        }
    }
}
