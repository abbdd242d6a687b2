//! The sync config file (version 1), as written: YAML read with
//! `serde-saphyr` (maintained, keeps the line and column of every value;
//! `serde_yaml` is archived), unknown keys and duplicate keys refused, and
//! every later complaint tied to `FILE:LINE:COLUMN`.
//!
//! Owns the file's syntax and its size and shape budgets. Never interprets
//! a value: `job` turns these raw records into validated jobs.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::{Location, MessageFormatter, Spanned, UserMessageFormatter};

/// The largest config file read.
const MAX_CONFIG_FILE: u64 = 4 * 1024 * 1024;

/// A complaint about the config, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no single place.
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file.display(), self.message),
            l => write!(
                f,
                "{}:{l}:{}: {}",
                self.file.display(),
                self.column,
                self.message
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every complaint about a config, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for ConfigErrors {}

/// The file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub version: Spanned<u32>,
    #[serde(default)]
    pub defaults: Option<Spanned<RawJob>>,
    #[serde(default)]
    pub registries: HashMap<Spanned<String>, Spanned<RawRegistry>>,
    pub jobs: Spanned<Vec<Spanned<RawJob>>>,
    /// `--daemon`: triggers (registry events and webhooks).
    #[serde(default)]
    pub service: Option<Spanned<RawService>>,
}

/// The daemon's triggers, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// The variable holding the bearer token every `/v1` request presents.
    pub token_env: Option<Spanned<String>>,
    /// The variable holding GitHub's webhook secret (HMAC instead of the token).
    pub github_secret_env: Option<Spanned<String>>,
    /// Events for one job within this long start one run (`2s`).
    pub debounce: Option<Spanned<String>>,
}

/// A job, or the defaults (which may not name, source or target).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    pub name: Option<Spanned<String>>,
    pub source: Option<Spanned<String>>,
    pub target: Option<Spanned<String>>,
    /// Several targets, each written from one read of the source.
    pub targets: Option<Spanned<Vec<Spanned<String>>>>,
    pub tags: Option<RawTags>,
    pub repositories: Option<RawPatterns>,
    pub platforms: Option<Vec<Spanned<String>>>,
    pub mode: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
    /// Docker Hub pulls kept in reserve (`ratelimit-remaining`).
    pub ratelimit_min: Option<Spanned<u32>>,
    /// `--daemon`: a 5-field cron line, or `every` a duration.
    pub schedule: Option<Spanned<String>>,
    pub every: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub jitter: Option<Spanned<String>>,
    /// Signatures, SBOMs and attestations travel too (`copy --referrers`).
    pub referrers: Option<bool>,
    pub referrers_types: Option<Vec<String>>,
    /// Only images signed as one of these policies says are copied.
    pub verify: Option<Spanned<Vec<Spanned<super::trust::RawPolicy>>>>,
    /// `fail` (default) or `skip`: what an unverified image does to the run.
    pub on_unverified: Option<Spanned<String>>,
    /// Each kept child of an index must be signed itself.
    pub verify_children: Option<Spanned<bool>>,
    /// Keep the image a tag named under this tag before it moves.
    pub backup: Option<Spanned<String>>,
    /// Copy only manifests of these media types.
    pub media_types: Option<Vec<Spanned<String>>>,
    /// Check images already in place too, and send what is missing.
    pub repair: Option<bool>,
    /// Fetch foreign layers from their URLs (`copy --include-foreign`).
    pub include_foreign: Option<bool>,
    /// Delete target tags the filters select that the source no longer has.
    pub prune: Option<bool>,
    pub prune_max: Option<Spanned<usize>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTags {
    pub include: Option<Vec<Spanned<String>>>,
    pub exclude: Option<Vec<Spanned<String>>>,
    pub latest: Option<Spanned<usize>>,
    pub immutable: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPatterns {
    pub include: Option<Vec<Spanned<String>>>,
    pub exclude: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    pub creds: Option<Spanned<RawCreds>>,
    pub tls_verify: Option<bool>,
    pub cert_dir: Option<PathBuf>,
    /// Requests in flight to this registry.
    pub concurrency: Option<Spanned<usize>>,
    /// Read mirrors (`HOST[/PREFIX]`), tried in order before this registry.
    pub mirrors: Option<Vec<Spanned<String>>>,
    /// Resolve tags at the mirrors too.
    pub mirror_tags: Option<bool>,
    /// Other names the registry calls itself in the events it sends.
    pub aliases: Option<Vec<Spanned<String>>>,
    /// Requests per second at most, across every job of a run.
    pub requests_per_second: Option<Spanned<f64>>,
    /// Blob bytes per second at most, up and down together (`50MiB/s`).
    pub bandwidth: Option<Spanned<String>>,
    /// How namespaces are listed: catalog, dockerhub, github, quay,
    /// harbor or gitlab.
    pub discovery: Option<Spanned<String>>,
    /// Where that API answers, when not where it usually does.
    pub discovery_url: Option<Spanned<String>>,
}

/// `{username, password_env}`, `{username, password_file}` or `{authfile}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCreds {
    pub username: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<PathBuf>>,
    pub authfile: Option<Spanned<PathBuf>>,
}

/// Reads and parses a config file; syntax errors, wrong types and unknown
/// or duplicate keys come back with their place.
pub fn read(path: &Path) -> Result<RawConfig, ConfigError> {
    let at = |message: String| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| at(e.to_string()))?;
    if !meta.is_file() {
        return Err(at("not a regular file".into()));
    }
    if meta.len() > MAX_CONFIG_FILE {
        return Err(at(format!("larger than {MAX_CONFIG_FILE} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
    parse(path, &text)
}

/// Parses config text (`path` names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_depth: 32,
            max_nodes: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_documents: 1,
        },
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let e = e.without_snippet();
        let message = UserMessageFormatter
            .format_message(e)
            .escape_debug()
            .to_string();
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        ConfigError {
            file: path.to_path_buf(),
            line,
            column,
            message,
        }
    })
}

/// A complaint about the value at `at`.
pub fn error_at(file: &Path, at: &Location, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        line: at.line(),
        column: at.column(),
        message: message.into(),
    }
}
