//! The file primitives of an OCI layout, hardened against what a damaged
//! or hostile directory can hold: reads that refuse anything but a regular
//! file (a FIFO would block forever, `/dev/zero` never ends) and stop at a
//! cap checked while reading, writes through a temporary sibling and a
//! rename, and a lock that serialises `index.json` updates across
//! processes.
//!
//! Owns those mechanics. Never decides what a layout means: `layout` does.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::digest::{Algorithm, Digest, Hasher};
use crate::store::StoreError;

/// Opens a regular file for reading, without blocking on a FIFO or a
/// device: `O_NONBLOCK`, then the file type of what was opened is checked.
pub fn open_regular(path: &Path) -> Result<Option<File>, StoreError> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| StoreError::io(path, e))?;
    if !meta.is_file() {
        return Err(StoreError::Protocol(format!(
            "{}: not a regular file (a FIFO, a device or a directory), refused",
            path.display()
        )));
    }
    Ok(Some(file))
}

/// Reads a whole regular file of at most `limit` bytes; the size is
/// checked while reading, not from metadata. `None`: there is no file.
pub fn read_capped(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(file) = open_regular(path)? else {
        return Ok(None);
    };
    let mut buf = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| StoreError::io(path, e))?;
    if buf.len() as u64 > limit {
        return Err(StoreError::TooLarge {
            what: path.display().to_string(),
            limit,
        });
    }
    Ok(Some(buf))
}

/// The digest of a regular file's bytes, with its size; `None` when there
/// is no such file.
pub fn hash_file(path: &Path, algorithm: Algorithm) -> Result<Option<(Digest, u64)>, StoreError> {
    let Some(mut file) = open_regular(path)? else {
        return Ok(None);
    };
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| StoreError::io(path, e))?;
        if n == 0 {
            return Ok(Some((hasher.finish(), size)));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

/// Writes a whole file through a temporary sibling and a rename.
pub fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| StoreError::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| StoreError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| StoreError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| StoreError::io(path, e.error))?;
    Ok(())
}

/// An exclusive lock across processes, held until dropped. It is taken on
/// `oci-layout`, a file every layout has and nobody replaces (`index.json`
/// itself is replaced by a rename, so a lock on it would not hold).
pub struct Lock(File);

impl Lock {
    pub fn take(path: &Path) -> Result<Lock, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .open(path)
            .map_err(|e| StoreError::io(path, e))?;
        file.lock().map_err(|e| StoreError::io(path, e))?;
        Ok(Lock(file))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_and_oversize_are_refused_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path and a mode; no other effects.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(read_capped(&fifo, 10).is_err(), "a FIFO must not block");
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(read_capped(&zero, 10).is_err());
        assert!(hash_file(&zero, Algorithm::Sha256).is_err());
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 11]).unwrap();
        assert!(matches!(
            read_capped(&big, 10),
            Err(StoreError::TooLarge { .. })
        ));
        assert_eq!(read_capped(&big, 11).unwrap().unwrap().len(), 11);
        assert!(read_capped(&dir.path().join("none"), 10).unwrap().is_none());
        assert_eq!(
            hash_file(&big, Algorithm::Sha256).unwrap(),
            Some((Digest::sha256(&[b'x'; 11]), 11))
        );
    }
}
