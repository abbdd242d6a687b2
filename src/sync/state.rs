//! The state file (`--state FILE`): per target tag, the digest ocirepl
//! wrote and the source digest it was built from, with a fingerprint of the
//! options that shaped it. It lets a platform-filtered tag be checked with
//! a HEAD per side instead of reading its root, across runs and restarts.
//!
//! Owns the file: JSON, written through a temporary file and a rename (a
//! crash leaves the old state or the new one), private to the user, capped
//! on read, and held by one process at a time (a lock on `FILE.lock`). A
//! state that cannot be read is reported and treated as empty: it is only
//! ever a shortcut. It is never trusted over the target: what the target
//! holds is read from the target (its tag list, a HEAD) before anything is
//! skipped. Never talks to a registry.

use std::collections::BTreeMap;
use std::fs::{File as FsFile, OpenOptions, TryLockError};
use std::io::{Read, Write};
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
    /// Each job's last run (`sync --status`, `/v1/status`).
    #[serde(default)]
    runs: BTreeMap<String, RunRecord>,
}

/// How a job's last run went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// RFC 3339.
    pub started: String,
    pub ended: String,
    /// `ok`, or `failed` when an image failed it.
    pub result: String,
    /// What started it: `schedule`, `start`, `event` or `request`.
    pub cause: String,
    /// Images by action.
    pub images: BTreeMap<String, u64>,
    /// The first error of the run, if any.
    pub last_error: Option<String>,
}

/// The state of a run (or of a daemon's life).
#[derive(Debug, Default)]
pub struct State {
    path: Option<PathBuf>,
    tags: Mutex<BTreeMap<String, Entry>>,
    runs: Mutex<BTreeMap<String, RunRecord>>,
    /// The lock on `FILE.lock`, held while this state lives.
    _lock: Option<FsFile>,
}

/// Why a state file cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the state file {} is in use by another ocirepl process (it holds {}); two runs on one state file would overwrite each other's entries: give each its own --state",
        path.display(), lock.display()
    )]
    InUse { path: PathBuf, lock: PathBuf },
    #[error("the state file {}: cannot lock {}: {source}", path.display(), lock.display())]
    Lock {
        path: PathBuf,
        lock: PathBuf,
        source: std::io::Error,
    },
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
    /// Takes the state at `path` for this process (`None`: a run without a
    /// state file). A file another process holds is refused; one that
    /// cannot be read is reported (naming the file and what is wrong) and
    /// treated as empty.
    pub fn open(path: Option<&Path>) -> Result<State, StateError> {
        let Some(path) = path else {
            return Ok(State::default());
        };
        let lock = lock(path)?;
        let file = match read(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => {
                tracing::warn!(
                    "the state file {} cannot be read ({e}); starting from an empty state",
                    path.display()
                );
                File::default()
            }
        };
        Ok(State {
            path: Some(path.to_path_buf()),
            tags: Mutex::new(file.tags),
            runs: Mutex::new(file.runs),
            _lock: Some(lock),
        })
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

    /// Remembers how a job's run went.
    pub fn record_run(&self, job: &str, run: RunRecord) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.insert(job.to_string(), run);
        }
    }

    /// Each job's last run.
    pub fn runs(&self) -> BTreeMap<String, RunRecord> {
        self.runs.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The runs a state file records, read without taking it (another
    /// process may hold it): `sync --status`.
    pub fn read_runs(path: &Path) -> std::io::Result<BTreeMap<String, RunRecord>> {
        read(path).map(|f| f.runs)
    }

    /// Writes the state back (atomically). A failure is logged: the state
    /// is a shortcut, not a record anything depends on.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        let Ok(tags) = self.tags.lock() else { return };
        let file = File {
            version: 1,
            tags: tags.clone(),
            runs: self.runs(),
        };
        if let Err(e) = write(path, &file) {
            tracing::warn!(path = %path.display(), "cannot save the state file: {e}");
        }
    }
}

/// The lock beside the state file: the file itself is replaced by a
/// rename on every save, so a lock on it would not outlive the first save.
fn lock(path: &Path) -> Result<FsFile, StateError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock = PathBuf::from(name);
    let failed = |source| StateError::Lock {
        path: path.to_path_buf(),
        lock: lock.clone(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(failed)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StateError::InUse {
            path: path.to_path_buf(),
            lock,
        }),
        Err(TryLockError::Error(e)) => Err(failed(e)),
    }
}

fn read(path: &Path) -> std::io::Result<File> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_STATE_FILE {
        return Err(std::io::Error::other(format!(
            "{} bytes, more than the {MAX_STATE_FILE} a state file may have",
            meta.len()
        )));
    }
    // Capped while reading too: the file may grow after the metadata.
    let mut bytes = Vec::new();
    std::io::Read::take(FsFile::open(path)?, MAX_STATE_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_STATE_FILE {
        return Err(std::io::Error::other(
            "it grew past its cap while being read",
        ));
    }
    let file: File = serde_json::from_slice(&bytes)
        .map_err(|e| std::io::Error::other(format!("not a state file: {e}")))?;
    if file.version != 1 {
        return Err(std::io::Error::other(format!(
            "version {} (this ocirepl reads version 1)",
            file.version
        )));
    }
    Ok(file)
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
        let state = State::open(Some(&path)).unwrap();
        assert!(state.hint("r/a:1", &amd64).is_none());
        state.record(&report("r/a:1", &s, &t), &amd64);
        state.save();
        drop(state);
        let again = State::open(Some(&path)).unwrap();
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
    }

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let first = State::open(Some(&path)).unwrap();
        let second = State::open(Some(&path)).unwrap_err().to_string();
        assert!(
            second.contains("in use by another ocirepl process"),
            "{second}"
        );
        assert!(second.contains(&path.display().to_string()), "{second}");
        drop(first);
        assert!(
            State::open(Some(&path)).is_ok(),
            "free once the first is gone"
        );
    }

    #[test]
    fn unreadable_states_are_empty_and_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let good = r#"{"version":1,"tags":{}}"#;
        let cases: [(&[u8], &str); 5] = [
            (b"garbage", "not a state file"),
            (&good.as_bytes()[..10], "not a state file"),
            (
                br#"{"version":1,"tags":{"r/a:1":{"target":7}}}"#,
                "not a state file",
            ),
            (br#"{"version":9,"tags":{}}"#, "version 9"),
            (good.as_bytes(), ""),
        ];
        for (bytes, why) in cases {
            std::fs::write(&path, bytes).unwrap();
            match read(&path) {
                Ok(_) => assert!(why.is_empty(), "{why}"),
                Err(e) => assert!(!why.is_empty() && e.to_string().contains(why), "{e}"),
            }
            let state = State::open(Some(&path)).unwrap();
            assert!(state.tags.lock().unwrap().is_empty());
        }
        let big = std::fs::File::create(&path).unwrap();
        big.set_len(MAX_STATE_FILE + 1).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("more than"));
    }
}
