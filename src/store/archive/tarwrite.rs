//! Writing one volume of an archive: a tar with deterministic headers
//! (mode, owner and time fixed, so that the same content packs to the same
//! bytes), compressed as asked, counted and hashed on its way to the file.
//! Never decides what goes in or in which order: that is `pack`'s.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use bytes::Bytes;

use super::ArchiveError;
use super::body::Compression;
use crate::digest::{Algorithm, Digest, Hasher};

/// One file of the archive and where its bytes come from.
pub(super) struct Spec {
    pub name: String,
    pub data: Data,
    pub size: u64,
}

pub(super) enum Data {
    Bytes(Bytes),
    File(PathBuf),
    Dir,
}

/// Counts what reaches the file, and hashes it on a thread of its own (on
/// these machines a core is free while the other copies).
struct Hashing<W: Write> {
    inner: W,
    to_hasher: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    hasher: Option<std::thread::JoinHandle<Digest>>,
    written: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
        let hasher = std::thread::spawn(move || {
            let mut h = Hasher::new(Algorithm::Sha256);
            while let Ok(chunk) = rx.recv() {
                h.update(&chunk);
            }
            h.finish()
        });
        Hashing {
            inner,
            to_hasher: Some(tx),
            hasher: Some(hasher),
            written: 0,
        }
    }

    /// The SHA-256 of everything written.
    fn digest(&mut self) -> std::io::Result<Digest> {
        drop(self.to_hasher.take());
        self.hasher
            .take()
            .ok_or_else(|| std::io::Error::other("hashed twice"))?
            .join()
            .map_err(|_| std::io::Error::other("the hashing thread failed"))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(tx) = &self.to_hasher {
            tx.send(buf[..n].to_vec())
                .map_err(|_| std::io::Error::other("the hashing thread stopped"))?;
        }
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes one volume's tar (compressed as asked); returns the file's size
/// and SHA-256.
pub(super) fn write_tar(
    file: File,
    specs: &[Spec],
    compression: Option<Compression>,
) -> Result<(u64, String), ArchiveError> {
    let io = |e: std::io::Error| ArchiveError::Read(format!("writing the archive: {e}"));
    // Buffered before the hashing, so that it and the file see 1 MiB writes.
    let out = BufWriter::with_capacity(1024 * 1024, Hashing::new(file));
    let out = match compression {
        None | Some(Compression::None) => fill(out, specs).map_err(io)?,
        Some(Compression::Gzip) => {
            let enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            fill(enc, specs).map_err(io)?.finish().map_err(io)?
        }
        Some(Compression::Zstd) => {
            let enc = zstd::stream::write::Encoder::new(out, 3).map_err(io)?;
            fill(enc, specs).map_err(io)?.finish().map_err(io)?
        }
    };
    let mut hashed = out.into_inner().map_err(|e| io(e.into_error()))?;
    hashed.inner.sync_all().map_err(io)?;
    let digest = hashed.digest().map_err(io)?;
    Ok((hashed.written, digest.hex().to_string()))
}

/// Appends each file to a tar on `w`, deterministic headers, and ends it.
fn fill<W: Write>(w: W, specs: &[Spec]) -> std::io::Result<W> {
    let mut b = tar::Builder::new(w);
    for s in specs {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match &s.data {
            Data::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, &s.name, std::io::empty())?;
            }
            Data::Bytes(bytes) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(s.size);
                b.append_data(&mut h, &s.name, bytes.as_ref())?;
            }
            Data::File(path) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(s.size);
                let f = std::io::BufReader::with_capacity(1024 * 1024, File::open(path)?);
                b.append_data(&mut h, &s.name, f.take(s.size))?;
            }
        }
    }
    b.into_inner()
}
