//! The state file (`--state FILE`): per target tag, the digest ocirepl
//! wrote and the source digest it was built from, with a fingerprint of the
//! options that shaped it. It lets a platform-filtered tag be checked with
//! a HEAD per side instead of reading its root, and an immutable tag cost
//! no request at all, across runs and restarts.
//!
//! Owns the file: JSON, written through a temporary file and a rename (a
//! crash leaves the old state or the new one), private to the user, capped
//! on read. A missing or unreadable state is an empty one: it is only ever
//! a shortcut, and every entry is checked against the target before it
//! decides anything that writes. Never talks to a registry.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::plan::{CopyOptions, Hint};
use crate::report::{Action, ImageReport};

/// The largest state file read.
const MAX_STATE_FILE: u64 = 64 * 1024 * 1024;

/// What a target tag got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub target: Digest,
    pub source: Digest,
    /// [`fingerprint`] of the options that shaped it.
    pub options: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    /// `TARGET_REPOSITORY:TAG` → entry.
    tags: BTreeMap<String, Entry>,
}

/// The state of a run (or of a daemon's life).
#[derive(Debug, Default)]
pub struct State {
    path: Option<PathBuf>,
    tags: Mutex<BTreeMap<String, Entry>>,
}

/// What decides the shape of a pushed image: two runs with the same
/// fingerprint and source digest push the same target digest.
pub fn fingerprint(options: &CopyOptions) -> String {
    format!(
        "{:?}|{:?}|{:?}",
        options.platforms, options.mode, options.format
    )
}

impl State {
    /// Reads the state at `path` (`None`: a run without a state file).
    pub fn open(path: Option<&Path>) -> State {
        let tags = path
            .and_then(|p| read(p).ok())
            .map(|f| f.tags)
            .unwrap_or_default();
        State {
            path: path.map(Path::to_path_buf),
            tags: Mutex::new(tags),
        }
    }

    /// The hint for a target tag, if it was built with these options.
    pub fn hint(&self, target: &str, options: &CopyOptions) -> Option<Hint> {
        let tags = self.tags.lock().ok()?;
        let e = tags.get(target)?;
        (e.options == fingerprint(options)).then(|| Hint {
            source: e.source.clone(),
            target: e.target.clone(),
        })
    }

    /// Whether ocirepl wrote (or found up to date) this target tag.
    pub fn knows(&self, target: &str) -> bool {
        self.tags.lock().is_ok_and(|t| t.contains_key(target))
    }

    /// Whether any tag of this target repository (`HOST/PATH`) is known.
    pub fn knows_repository(&self, repository: &str) -> bool {
        let prefix = format!("{repository}:");
        self.tags.lock().is_ok_and(|t| {
            t.range(prefix.clone()..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&prefix))
        })
    }

    /// Remembers what a copy did to its target tag.
    pub fn record(&self, report: &ImageReport, options: &CopyOptions) {
        if !matches!(report.action, Action::Copied | Action::UpToDate) {
            return;
        }
        let (Some(t), Some(s)) = (&report.target_digest, &report.source_digest) else {
            return;
        };
        let (Ok(target), Ok(source)) = (t.parse(), s.parse()) else {
            return;
        };
        if let Ok(mut tags) = self.tags.lock() {
            tags.insert(
                report.target.clone(),
                Entry {
                    target,
                    source,
                    options: fingerprint(options),
                },
            );
        }
    }

    /// Writes the state back (atomically). A failure is logged: the state
    /// is a shortcut, not a record anything depends on.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        let Ok(tags) = self.tags.lock() else { return };
        let file = File {
            version: 1,
            tags: tags.clone(),
        };
        if let Err(e) = write(path, &file) {
            tracing::warn!(path = %path.display(), "cannot save the state file: {e}");
        }
    }
}

fn read(path: &Path) -> std::io::Result<File> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() || meta.len() > MAX_STATE_FILE {
        return Err(std::io::Error::other("not a state file"));
    }
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(std::io::Error::other)
}

fn write(path: &Path, file: &File) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // NamedTempFile creates the file 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&serde_json::to_vec_pretty(file).map_err(std::io::Error::other)?)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlatformSelection;
    use crate::platform::Platform;

    fn report(target: &str, source: &Digest, pushed: &Digest) -> ImageReport {
        ImageReport {
            job: None,
            source_digest: Some(source.to_string()),
            target_digest: Some(pushed.to_string()),
            manifests_pushed: 1,
            ..crate::sync::select::report("j", "src".into(), target.into(), Action::Copied)
        }
    }

    #[test]
    fn remembers_across_runs_and_only_for_the_same_options() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let amd64 = CopyOptions {
            platforms: PlatformSelection::Only(vec![Platform::parse("linux/amd64").unwrap()]),
            ..CopyOptions::default()
        };
        let (s, t) = (Digest::sha256(b"index"), Digest::sha256(b"filtered"));
        let state = State::open(Some(&path));
        assert!(state.hint("r/a:1", &amd64).is_none());
        state.record(&report("r/a:1", &s, &t), &amd64);
        state.save();
        let again = State::open(Some(&path));
        assert!(again.knows("r/a:1"));
        assert!(again.knows_repository("r/a"));
        for other in ["r", "r/a/b", "r/"] {
            assert!(!again.knows_repository(other), "{other}");
        }
        assert_eq!(
            again.hint("r/a:1", &amd64),
            Some(Hint {
                source: s,
                target: t
            })
        );
        assert!(
            again.hint("r/a:1", &CopyOptions::default()).is_none(),
            "other options"
        );
        std::fs::write(&path, "garbage").unwrap();
        assert!(
            !State::open(Some(&path)).knows("r/a:1"),
            "a broken state is an empty one"
        );
    }
}
