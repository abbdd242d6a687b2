//! The diff_id cache file (`~/.cache/ocirepl/diff-ids.json`): compressed
//! layer digest → diff_id, so that a re-run of a schema1 conversion does
//! not read layers the target already has.
//!
//! Owns the file and its privacy: the directory is created `0700`, the file
//! written `0600` and atomically, and a file that another user owns or
//! others may write is ignored (its entries could forge a config). The
//! copy engine corrects any entry a streamed layer contradicts. Never
//! fails a copy: a cache that cannot be read or written is only slower.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::copy::DiffIdCache;
use crate::digest::Digest;

/// The most of the file we read: a few hundred bytes per layer.
const MAX_CACHE_FILE: u64 = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct FileCache {
    path: Option<PathBuf>,
    map: Mutex<HashMap<String, String>>,
}

impl FileCache {
    /// Opens the cache (missing, unreadable or untrusted: empty).
    pub fn open(path: Option<PathBuf>) -> FileCache {
        let map = path
            .as_deref()
            .and_then(|p| read_private(p).ok().flatten())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        FileCache {
            path,
            map: Mutex::new(map),
        }
    }

    fn write(&self, path: &Path) -> std::io::Result<()> {
        let map = self
            .map
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // NamedTempFile creates the file 0600.
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(&serde_json::to_vec(&*map).map_err(std::io::Error::other)?)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// The file's bytes if it is ours alone; `None` if it is missing or not to
/// be trusted.
fn read_private(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_file() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        tracing::warn!(path = %path.display(), "ignoring a diff_id cache that is not private to this user");
        return Ok(None);
    }
    if meta.len() > MAX_CACHE_FILE {
        return Ok(None);
    }
    std::fs::read(path).map(Some)
}

impl DiffIdCache for FileCache {
    fn get(&self, compressed: &Digest) -> Option<Digest> {
        let map = self.map.lock().ok()?;
        map.get(&compressed.to_string())?.parse().ok()
    }

    fn put(&self, compressed: &Digest, diff_id: &Digest) {
        if let Ok(mut map) = self.map.lock() {
            map.insert(compressed.to_string(), diff_id.to_string());
        }
    }

    fn save(&self) {
        let Some(path) = &self.path else { return };
        if let Err(e) = self.write(path) {
            tracing::debug!(path = %path.display(), "cannot save the diff_id cache: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trips_privately_and_ignores_what_others_can_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/diff-ids.json");
        let a = Digest::sha256(b"a");
        let b = Digest::sha256(b"b");
        let c = FileCache::open(Some(path.clone()));
        assert_eq!(c.get(&a), None);
        c.put(&a, &b);
        c.save();
        let mode = std::fs::metadata(&path).unwrap().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().mode();
        assert_eq!(dir_mode & 0o077, 0, "{dir_mode:o}");
        assert_eq!(FileCache::open(Some(path.clone())).get(&a), Some(b));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(FileCache::open(Some(path.clone())).get(&a), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(FileCache::open(Some(path)).get(&a), None);
    }
}
