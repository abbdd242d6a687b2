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

use super::config::{ConfigError, ConfigErrors, RawConfig, RawJob, error_at, read};
use super::filter::{Filter, Pattern};
use super::schedule::Schedule;
use super::trust::{self, Loader, Part, PolicySpec};
use crate::plan::{BackupName, CopyOptions, Format, Mode, PlatformSelection};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::verify::{Gate, OnUnverified};

/// The only config version this build reads.
pub const VERSION: u32 = 1;
/// Docker Hub pulls kept in reserve unless a job says otherwise.
pub const DEFAULT_RATELIMIT_MIN: u32 = 10;
/// Tags one prune may delete unless a job says otherwise.
pub const DEFAULT_PRUNE_MAX: usize = 10;

pub use super::registries::{Creds, DEFAULT_DEBOUNCE, RegistrySettings, Service};
use super::registries::{registry, service};

/// A validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub jobs: Vec<Job>,
    pub registries: Vec<RegistrySettings>,
    /// The daemon's triggers, when the config has a `service:` block.
    pub service: Option<Service>,
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
        let (filter, immutable, repositories) = self.filters(raw, defaults);
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

    /// `tags` (filter and immutable patterns) and `repositories`, the
    /// job's own or the defaults'.
    fn filters(&mut self, raw: &RawJob, defaults: &RawJob) -> (Filter, Vec<Pattern>, Filter) {
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
        (filter, immutable, repositories)
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

pub(super) fn looks_like_host(s: &str) -> bool {
    s.contains(['.', ':']) || s == "localhost"
}
