//! Where an archive's bytes are read from, without extracting it.
//!
//! - An uncompressed archive is read in place: its headers once (seeking
//!   over the data), then each file by offset, as many at once as the copy
//!   wants.
//! - A compressed one (`.tar.zst`, `.tar.gz`, told by their magic bytes,
//!   not their names) is read in one pass: a thread decompresses it into a
//!   spool file (one tar, not files on disk) while it finds its entries,
//!   and each file can be read as soon as its bytes are in the spool, so
//!   blobs move while the archive is still being read. The spool is
//!   removed with the archive's store; it may not grow past
//!   [`MAX_EXPANSION`] times the compressed size (a bomb).
//!
//! A split archive's volumes (`PATH`, `PATH.2`, `PATH.3`, …) are read
//! alike, each its own tar. Owns offsets and waiting; never interprets an
//! entry.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;

use super::ArchiveError;
use super::entries::{Entries, Entry, scan};
use crate::store::BlobStream;

/// How much larger than its compressed file a spool may grow: image
/// layers are compressed already, so a real archive barely expands.
pub const MAX_EXPANSION: u64 = 64;
/// A spool may always reach this, whatever the ratio (small archives).
const MIN_SPOOL: u64 = 256 * 1024 * 1024;
/// Files of one split archive: each a thread and a decoder when
/// compressed; more is not an archive anyone carries.
pub const MAX_VOLUMES: usize = 1024;
/// The most of a file read at once.
const READ_CHUNK: usize = 1024 * 1024;

/// How a volume is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From a file's first bytes.
    pub fn sniff(path: &Path) -> Result<Compression, ArchiveError> {
        let mut magic = [0u8; 4];
        let mut f = File::open(path).map_err(|e| ArchiveError::io(path, e))?;
        let n = f.read(&mut magic).map_err(|e| ArchiveError::io(path, e))?;
        Ok(match &magic[..n] {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
            _ => Compression::None,
        })
    }
}

/// The volumes of an archive whose first file is `first`: `first`, then
/// `first.2`, `first.3`, … while they exist.
pub fn volumes(first: &Path) -> Vec<PathBuf> {
    let mut out = vec![first.to_path_buf()];
    for n in 2..=MAX_VOLUMES {
        let mut name = first.as_os_str().to_owned();
        name.push(format!(".{n}"));
        let p = PathBuf::from(name);
        if !p.is_file() {
            break;
        }
        out.push(p);
    }
    out
}

/// An archive's bytes.
pub enum Body {
    /// The volumes as opened when their headers were read (held open, so
    /// that a file swapped under the name later is not read).
    Plain {
        volumes: Vec<(PathBuf, Arc<File>)>,
        entries: Entries,
    },
    /// The spools, and their directories: removed with the body (the
    /// passes still running are told to stop), whatever the threads do.
    Spooled {
        spools: Vec<Arc<Spool>>,
        _dirs: Vec<tempfile::TempDir>,
    },
}

impl Body {
    /// Opens the volumes: in place when uncompressed, else spooled.
    pub fn open(volumes: Vec<PathBuf>) -> Result<Body, ArchiveError> {
        let kinds = volumes
            .iter()
            .map(|v| Compression::sniff(v))
            .collect::<Result<Vec<_>, _>>()?;
        if kinds.iter().all(|k| *k == Compression::None) {
            let mut entries = Entries::default();
            let mut lengths = Vec::new();
            let mut opened = Vec::new();
            for (i, v) in volumes.iter().enumerate() {
                let f = File::open(v).map_err(|e| ArchiveError::io(v, e))?;
                lengths.push(f.metadata().map_err(|e| ArchiveError::io(v, e))?.len());
                let file = Arc::new(f);
                let mut r = std::io::BufReader::with_capacity(64 * 1024, &*file);
                let mut skip = |r: &mut std::io::BufReader<&File>, n: u64| {
                    let n = i64::try_from(n).map_err(std::io::Error::other)?;
                    r.seek_relative(n)
                };
                scan(&mut r, i, &mut entries, &mut skip, &mut |_, _| {})
                    .map_err(|e| ArchiveError::entry(v, e))?;
                opened.push((v.clone(), file));
            }
            entries
                .check_extents(&lengths)
                .map_err(|e| ArchiveError::entry(&volumes[0], e))?;
            return Ok(Body::Plain {
                volumes: opened,
                entries,
            });
        }
        let mut spools = Vec::new();
        let mut dirs = Vec::new();
        for (i, (v, k)) in volumes.iter().zip(kinds).enumerate() {
            let (spool, dir) = Spool::start(v, k, i)?;
            spools.push(spool);
            dirs.push(dir);
        }
        Ok(Body::Spooled {
            spools,
            _dirs: dirs,
        })
    }

    /// Waits for every spool's pass to end; its error if one failed.
    pub async fn whole(&self) -> Result<(), ArchiveError> {
        if let Body::Spooled { spools, .. } = self {
            for s in spools {
                s.ended().await?;
            }
        }
        Ok(())
    }

    /// Where `name`'s bytes are; a spooled archive waits until its
    /// headers have been read that far (or to the end).
    pub async fn find(&self, name: &str) -> Result<Option<Entry>, ArchiveError> {
        match self {
            Body::Plain { entries, .. } => Ok(entries.get(name)),
            Body::Spooled { spools, .. } => {
                let mut found: Option<Entry> = None;
                for s in spools {
                    if let Some(e) = s.find(name).await? {
                        match found {
                            None => found = Some(e),
                            Some(f) if f.size == e.size => {}
                            Some(_) => {
                                return Err(ArchiveError::Read(format!(
                                    "entry {name:?} is in two volumes, with other sizes"
                                )));
                            }
                        }
                    }
                }
                Ok(found)
            }
        }
    }

    /// A whole small file, refused past `cap` bytes.
    pub async fn read(&self, name: &str, cap: u64) -> Result<Option<Bytes>, ArchiveError> {
        let Some(e) = self.find(name).await? else {
            return Ok(None);
        };
        if e.size > cap {
            return Err(ArchiveError::TooLarge {
                name: name.to_string(),
                size: e.size,
                cap,
            });
        }
        let mut stream = self.stream_entry(e)?;
        let mut out = Vec::with_capacity(e.size as usize);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(|e| ArchiveError::Read(e.to_string()))?);
        }
        Ok(Some(Bytes::from(out)))
    }

    /// A file's bytes as they can be read.
    pub fn stream_entry(&self, e: Entry) -> Result<BlobStream, ArchiveError> {
        match self {
            Body::Plain { volumes, .. } => {
                let (path, file) = volumes
                    .get(e.volume)
                    .ok_or_else(|| ArchiveError::Read(format!("no volume {}", e.volume + 1)))?;
                Ok(read_range(
                    path.clone(),
                    Some(file.clone()),
                    e.offset,
                    e.size,
                    None,
                ))
            }
            Body::Spooled { spools, .. } => {
                let s = spools
                    .get(e.volume)
                    .ok_or_else(|| ArchiveError::Read(format!("no volume {}", e.volume + 1)))?;
                Ok(read_range(
                    s.path.clone(),
                    None,
                    e.offset,
                    e.size,
                    Some(s.clone()),
                ))
            }
        }
    }
}

/// Bytes `[offset, offset + size)` of `path`, in chunks; with a spool,
/// each chunk waits until the spool holds it.
fn read_range(
    path: PathBuf,
    file: Option<Arc<File>>,
    offset: u64,
    size: u64,
    spool: Option<Arc<Spool>>,
) -> BlobStream {
    struct At {
        path: PathBuf,
        file: Option<Arc<File>>,
        next: u64,
        end: u64,
        spool: Option<Arc<Spool>>,
    }
    let at = At {
        path,
        file,
        next: offset,
        end: offset + size,
        spool,
    };
    futures::stream::try_unfold(at, |mut at| async move {
        if at.next >= at.end {
            return Ok(None);
        }
        let n = (at.end - at.next).min(READ_CHUNK as u64);
        if let Some(s) = &at.spool {
            s.wait_for(at.next + n).await.map_err(|e| e.into_store())?;
        }
        let file = match &at.file {
            Some(f) => f.clone(),
            None => {
                let f = Arc::new(
                    File::open(&at.path).map_err(|e| crate::store::StoreError::io(&at.path, e))?,
                );
                at.file = Some(f.clone());
                f
            }
        };
        let (path, from) = (at.path.clone(), at.next);
        let bytes = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; n as usize];
            file.read_exact_at(&mut buf, from)
                .map_err(|e| crate::store::StoreError::io(&path, e))?;
            Ok::<_, crate::store::StoreError>(Bytes::from(buf))
        })
        .await
        .map_err(|e| {
            crate::store::StoreError::Protocol(format!("an archive read failed: {e}"))
        })??;
        at.next += n;
        Ok(Some((bytes, at)))
    })
    .boxed()
}

/// A compressed volume being decompressed into a spool file.
pub struct Spool {
    path: PathBuf,
    state: Mutex<SpoolState>,
    changed: watch::Sender<()>,
    /// Set when nobody reads the archive any more: the pass stops.
    cancelled: std::sync::atomic::AtomicBool,
}

impl Drop for Body {
    fn drop(&mut self) {
        if let Body::Spooled { spools, .. } = self {
            for s in spools {
                s.cancelled
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

#[derive(Default)]
struct SpoolState {
    entries: Entries,
    /// Bytes of the spool written so far.
    written: u64,
    /// How the pass ended (`Some(Ok)`: every header read).
    end: Option<Result<(), ArchiveError>>,
}

impl Spool {
    fn start(
        path: &Path,
        kind: Compression,
        volume: usize,
    ) -> Result<(Arc<Spool>, tempfile::TempDir), ArchiveError> {
        let dir = tempfile::Builder::new()
            .prefix("ocirepl-spool-")
            .tempdir()
            .map_err(|e| ArchiveError::io(std::env::temp_dir(), e))?;
        let spool = Arc::new(Spool {
            path: dir.path().join("archive.tar"),
            state: Mutex::default(),
            changed: watch::channel(()).0,
            cancelled: std::sync::atomic::AtomicBool::new(false),
        });
        let (source, me) = (path.to_path_buf(), spool.clone());
        std::thread::spawn(move || {
            // A panic in the pass still ends it, so that no reader waits
            // for ever.
            let end = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                me.fill(&source, kind, volume)
            }))
            .unwrap_or_else(|_| {
                Err(ArchiveError::Read(format!(
                    "{}: reading it failed unexpectedly",
                    source.display()
                )))
            });
            me.update(|s| s.end = Some(end));
        });
        Ok((spool, dir))
    }

    fn update(&self, f: impl FnOnce(&mut SpoolState)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
        self.changed.send_replace(());
    }

    /// The one pass: decompress, copy into the spool, read every header.
    fn fill(&self, source: &Path, kind: Compression, volume: usize) -> Result<(), ArchiveError> {
        let file = File::open(source).map_err(|e| ArchiveError::io(source, e))?;
        let compressed = file
            .metadata()
            .map_err(|e| ArchiveError::io(source, e))?
            .len();
        let cap = MIN_SPOOL.max(compressed.saturating_mul(MAX_EXPANSION));
        let decoded: Box<dyn Read> = match kind {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::new(file).map_err(|e| ArchiveError::io(source, e))?,
            ),
            Compression::None => Box::new(file),
        };
        let out = File::create(&self.path).map_err(|e| ArchiveError::io(&self.path, e))?;
        let tee = Tee {
            inner: decoded,
            out: std::io::BufWriter::with_capacity(READ_CHUNK, out),
            written: 0,
            told: 0,
            cap,
            spool: self,
            source,
        };
        let mut tee = tee;
        let mut entries = Entries::default();
        let mut skip = |t: &mut Tee<'_>, n: u64| {
            let copied = std::io::copy(&mut t.by_ref().take(n), &mut std::io::sink())?;
            match copied == n {
                true => Ok(()),
                false => Err(std::io::Error::other(format!(
                    "{} bytes of an entry missing",
                    n - copied
                ))),
            }
        };
        // Readers learn each entry as its header is read (admitted already
        // by the scan's own table, so the shared one cannot refuse it).
        let mut publish = |v: usize, h: &super::entries::Header| {
            self.update(|s| {
                let _ = s.entries.admit(v, h);
            })
        };
        scan(&mut tee, volume, &mut entries, &mut skip, &mut publish)
            .map_err(|e| ArchiveError::entry(source, e))?;
        // Whatever follows the end-of-archive blocks is read too, so that a
        // file's last bytes are in the spool before anyone is told.
        std::io::copy(&mut tee, &mut std::io::sink()).map_err(|e| {
            ArchiveError::Tar(source.to_path_buf(), format!("reading the end: {e}"))
        })?;
        tee.out
            .flush()
            .map_err(|e| ArchiveError::io(&self.path, e))?;
        let total = tee.written;
        self.update(|s| s.written = total);
        Ok(())
    }

    /// Waits until the spool holds `end` bytes, or fails with the pass.
    async fn wait_for(&self, end: u64) -> Result<(), ArchiveError> {
        let mut changed = self.changed.subscribe();
        loop {
            changed.borrow_and_update();
            {
                let s = self
                    .state
                    .lock()
                    .map_err(|_| ArchiveError::Read("a spool's state is poisoned".into()))?;
                if s.written >= end {
                    return Ok(());
                }
                match &s.end {
                    Some(Err(e)) => return Err(e.clone()),
                    Some(Ok(())) => {
                        return Err(ArchiveError::Read(format!(
                            "the archive ended before byte {end}"
                        )));
                    }
                    None => {}
                }
            }
            if changed.changed().await.is_err() {
                return Err(ArchiveError::Read("an archive read stopped".into()));
            }
        }
    }

    /// Waits for the pass to end.
    async fn ended(&self) -> Result<(), ArchiveError> {
        let mut changed = self.changed.subscribe();
        loop {
            changed.borrow_and_update();
            if let Some(end) = self
                .state
                .lock()
                .map_err(|_| ArchiveError::Read("a spool's state is poisoned".into()))?
                .end
                .clone()
            {
                return end;
            }
            if changed.changed().await.is_err() {
                return Err(ArchiveError::Read("an archive read stopped".into()));
            }
        }
    }

    /// Where `name` is, once its header is read; `None` once the pass is
    /// over without it.
    async fn find(&self, name: &str) -> Result<Option<Entry>, ArchiveError> {
        let mut changed = self.changed.subscribe();
        loop {
            changed.borrow_and_update();
            {
                let s = self
                    .state
                    .lock()
                    .map_err(|_| ArchiveError::Read("a spool's state is poisoned".into()))?;
                if let Some(e) = s.entries.get(name) {
                    return Ok(Some(e));
                }
                match &s.end {
                    Some(Err(e)) => return Err(e.clone()),
                    Some(Ok(())) => return Ok(None),
                    None => {}
                }
            }
            if changed.changed().await.is_err() {
                return Err(ArchiveError::Read("an archive read stopped".into()));
            }
        }
    }
}

/// Copies what is read into the spool, counting, within the cap.
struct Tee<'a> {
    inner: Box<dyn Read>,
    out: std::io::BufWriter<File>,
    written: u64,
    /// What readers were last told is in the file.
    told: u64,
    cap: u64,
    spool: &'a Spool,
    source: &'a Path,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self
            .spool
            .cancelled
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(std::io::Error::other("nobody reads the archive any more"));
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Ok(0);
        }
        self.written += n as u64;
        if self.written > self.cap {
            return Err(std::io::Error::other(format!(
                "{} expands past {} bytes, more than {MAX_EXPANSION} times its size: a decompression bomb",
                self.source.display(),
                self.cap
            )));
        }
        self.out.write_all(&buf[..n])?;
        // Readers are told about what reached the file, half a buffer at
        // a time (and all of it at the end of the pass).
        if self.out.buffer().len() >= READ_CHUNK / 2 {
            self.out.flush()?;
        }
        let on_file = self.written - self.out.buffer().len() as u64;
        if on_file > self.told {
            self.told = on_file;
            self.spool.update(|s| s.written = on_file);
        }
        Ok(n)
    }
}
