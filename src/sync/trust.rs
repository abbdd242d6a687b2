//! What a job trusts (`verify`, `on_unverified`, `verify_children`), from
//! the config or `copy`'s flags to a [`Requirement`]: key files and trusted
//! roots read once per path, identity patterns compiled as tag patterns
//! are.
//!
//! Owns reading key files and `trusted_root.json` files (bounded, each
//! error naming the file, found by `--check` before any request). Never
//! verifies anything: that is `crate::verify`, in the copy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::filter::Pattern;
use crate::verify::{Gate, Key, KeyError, Matcher, OnUnverified, Policy, Requirement, Root};

/// The largest key or trusted-root file read (the public-good root is
/// about 10 KiB).
const MAX_TRUST_FILE: u64 = 1024 * 1024;

/// One policy of `verify:`, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// PEM public keys: signed with any of them.
    pub keys: Option<Vec<Spanned<PathBuf>>>,
    /// Signed keylessly by this identity.
    pub keyless: Option<Spanned<RawKeyless>>,
    /// A `trusted_root.json`; the public-good one, embedded, by default.
    pub trusted_root: Option<Spanned<PathBuf>>,
    /// Keys: require a transparency-log entry (default false).
    pub tlog: Option<bool>,
    /// Keyless: require the certificate's SCT (default true).
    pub sct: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeyless {
    pub issuer: Spanned<String>,
    pub subject: Spanned<String>,
}

/// A policy as `copy`'s flags give it, or as the config gives it once
/// its places are set aside.
#[derive(Debug, Clone, Default)]
pub struct PolicySpec {
    pub keys: Vec<PathBuf>,
    /// (issuer, subject) patterns.
    pub keyless: Option<(String, String)>,
    pub trusted_root: Option<PathBuf>,
    pub tlog: bool,
    pub sct: bool,
}

/// Where a complaint about a policy belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Policy,
    Key(usize),
    Issuer,
    Subject,
    TrustedRoot,
}

/// Reads keys and roots once per path, whatever number of jobs name them.
#[derive(Default)]
pub struct Loader {
    keys: HashMap<PathBuf, Key>,
    roots: HashMap<Option<PathBuf>, Arc<Root>>,
}

impl Loader {
    /// The requirement these policies make (`None`: no policy, nothing
    /// verified). Every complaint comes back with the part it is about.
    pub fn requirement(
        &mut self,
        policies: &[PolicySpec],
        on_unverified: OnUnverified,
        children: bool,
    ) -> Result<Option<Gate>, Vec<(usize, Part, String)>> {
        if policies.is_empty() {
            return Ok(None);
        }
        let mut errors = Vec::new();
        let mut built = Vec::new();
        for (i, spec) in policies.iter().enumerate() {
            match self.policy(spec) {
                Ok(p) => built.push(p),
                Err(es) => errors.extend(es.into_iter().map(|(part, why)| (i, part, why))),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut requirement = Requirement::new(built);
        requirement.on_unverified = on_unverified;
        requirement.children = children;
        Ok(Some(Gate(Arc::new(requirement))))
    }

    fn policy(&mut self, spec: &PolicySpec) -> Result<Policy, Vec<(Part, String)>> {
        let mut errors = Vec::new();
        // Keys without a log need no root: the public one is not parsed.
        let rootless = spec.keyless.is_none() && !spec.tlog && spec.trusted_root.is_none();
        let root = match rootless {
            true => Root::none().map(Arc::new),
            false => self.root(spec.trusted_root.as_deref()),
        }
        .map_err(|e| errors.push((Part::TrustedRoot, e.to_string())))
        .ok();
        let policy = match (&spec.keys[..], &spec.keyless) {
            ([], None) | ([_, ..], Some(_)) => {
                errors.push((
                    Part::Policy,
                    "a verify policy names keys or keyless (one of them)".into(),
                ));
                None
            }
            (keys, None) => {
                let mut loaded = Vec::new();
                for (i, path) in keys.iter().enumerate() {
                    match self.key(path) {
                        Ok(k) => loaded.push(k),
                        Err(e) => errors.push((Part::Key(i), e.to_string())),
                    }
                }
                root.clone().map(|root| Policy::Keys {
                    keys: loaded,
                    tlog: spec.tlog,
                    root,
                })
            }
            ([], Some((issuer, subject))) => {
                let issuer = matcher(issuer).map_err(|e| errors.push((Part::Issuer, e)));
                let subject = matcher(subject).map_err(|e| errors.push((Part::Subject, e)));
                match (issuer, subject, root.clone()) {
                    (Ok(issuer), Ok(subject), Some(root)) => Some(Policy::Keyless {
                        issuer,
                        subject,
                        root,
                        sct: spec.sct,
                    }),
                    _ => None,
                }
            }
        };
        match policy {
            Some(p) if errors.is_empty() => Ok(p),
            _ => Err(errors),
        }
    }

    fn key(&mut self, path: &Path) -> Result<Key, KeyError> {
        if let Some(k) = self.keys.get(path) {
            return Ok(k.clone());
        }
        let name = path.display().to_string();
        let key = Key::from_pem(&name, &read_trust_file(path)?)?;
        self.keys.insert(path.to_path_buf(), key.clone());
        Ok(key)
    }

    fn root(&mut self, path: Option<&Path>) -> Result<Arc<Root>, KeyError> {
        let at = path.map(Path::to_path_buf);
        if let Some(r) = self.roots.get(&at) {
            return Ok(r.clone());
        }
        let root = Arc::new(match path {
            None => Root::public_good()?,
            Some(p) => Root::from_json(&p.display().to_string(), &read_trust_file(p)?)?,
        });
        self.roots.insert(at, root.clone());
        Ok(root)
    }
}

/// A key or root file's text, bounded; an error names the file.
fn read_trust_file(path: &Path) -> Result<String, KeyError> {
    let bad = |why: String| KeyError {
        name: path.display().to_string(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if meta.len() > MAX_TRUST_FILE {
        return Err(bad(format!("larger than {MAX_TRUST_FILE} bytes")));
    }
    std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))
}

/// An identity or issuer pattern: exact text, a glob over the whole
/// value, or `regex:` (which must match the whole value, as if anchored).
pub fn matcher(text: &str) -> Result<Matcher, String> {
    if text.is_empty() {
        return Err("an empty identity pattern would match nothing".into());
    }
    // An identity regex must match the whole identity: unanchored,
    // `regex:github.com/acme/` would take `https://evil.example/github.com/acme/`.
    let anchored = text
        .strip_prefix("regex:")
        .map(|re| format!("regex:^(?:{re})$"));
    let pattern = match Pattern::parse(anchored.as_deref().unwrap_or(text))? {
        Pattern::Semver(_) => {
            return Err(format!(
                "{text:?}: semver: ranges are for tags, not identities"
            ));
        }
        p => p,
    };
    let text = text.to_string();
    Ok(Matcher {
        text,
        test: Arc::new(move |s| pattern.matches(s)),
    })
}

/// `fail` or `skip`.
pub fn on_unverified(text: &str) -> Result<OnUnverified, String> {
    match text {
        "fail" => Ok(OnUnverified::Fail),
        "skip" => Ok(OnUnverified::Skip),
        other => Err(format!("on_unverified {other:?}: expected fail or skip")),
    }
}

impl RawPolicy {
    /// The policy without the places of its values.
    pub fn spec(&self) -> PolicySpec {
        PolicySpec {
            keys: self
                .keys
                .iter()
                .flatten()
                .map(|k| k.value.clone())
                .collect(),
            keyless: self
                .keyless
                .as_ref()
                .map(|k| (k.value.issuer.value.clone(), k.value.subject.value.clone())),
            trusted_root: self.trusted_root.as_ref().map(|r| r.value.clone()),
            tlog: self.tlog.unwrap_or(false),
            sct: self.sct.unwrap_or(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_patterns_match_whole_values() {
        let re = matcher(r"regex:https://github\.com/acme/.+").unwrap();
        assert!((re.test)(
            "https://github.com/acme/app/.github/workflows/r.yml@refs/tags/v1"
        ));
        assert!(!(re.test)("https://evil.example/https://github.com/acme/x"));
        let exact = matcher("release@acme.test").unwrap();
        assert!((exact.test)("release@acme.test") && !(exact.test)("xrelease@acme.test"));
        assert!(
            matcher("").is_err() && matcher("semver:1").is_err() && matcher("regex:(").is_err()
        );
    }
}
