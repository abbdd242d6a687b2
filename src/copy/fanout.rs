//! Read once, write many: one image copied to several targets reads the
//! source once. Each target's copy runs as its own image (its own checks,
//! mounts, retries, report and failure), through a [`SharedSource`] handle
//! that answers from what another target's copy already read:
//!
//! - a manifest HEAD or GET is made once and its answer shared;
//! - a blob is streamed from the source once, verified, into a temporary
//!   file (the spill); every target reads that file at its own pace while
//!   it grows, so a slow target never holds a fast one back and memory
//!   stays bounded whatever the layer size; disk holds the image's blobs
//!   until the last target is done with the image;
//! - pulls reserved against a budget (Docker Hub) are charged once.
//!
//! Owns the spill and what is shared. Never decides what to copy, and
//! never writes to a target.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{OnceCell, mpsc, watch};

use crate::digest::{Digest, verify_stream};
use crate::manifest::RawManifest;
use crate::manifest::referrers::Listed;
use crate::reference::ManifestRef;
use crate::store::{Blob, BlobStream, Location, Store, StoreError};

/// The most of a spill file read (or buffered for writing) at once.
const READ_CHUNK: usize = 1024 * 1024;
/// Bytes of a blob kept in memory for the targets that keep up with the
/// source; a target further behind reads them back from the spill file.
/// (Small under test, so that the file path is exercised.)
const WINDOW: u64 = if cfg!(test) {
    256 * 1024
} else {
    32 * 1024 * 1024
};

/// What the targets of one image share of its source.
pub struct SharedSource {
    src: Arc<dyn Store>,
    dir: tempfile::TempDir,
    heads: Cells<Option<Digest>>,
    manifests: Cells<RawManifest>,
    referrers: Mutex<HashMap<ReferrersAsked, Arc<OnceCell<ReferrerList>>>>,
    spills: Mutex<HashMap<Digest, Arc<Spill>>>,
    /// Pulls reserved so far for all targets together.
    reserved: Mutex<u64>,
    next_file: AtomicU64,
}

type Cells<T> = Mutex<HashMap<ManifestRef, Arc<OnceCell<T>>>>;
/// What the referrers API listed (`None`: the source has no such API).
type ReferrerList = Option<Vec<Listed>>;
/// A subject and the artifact types asked for.
type ReferrersAsked = (Digest, Vec<String>);

/// One target's view of the shared source (a [`Store`]).
pub struct Handle {
    shared: Arc<SharedSource>,
    /// Pulls this target's copy asked to reserve.
    asked: AtomicU64,
}

/// A blob on its way from the source: the last [`WINDOW`] bytes in
/// memory for the targets that keep up (shared, never copied), and all of
/// it in the spill file for a target that falls behind or comes late.
struct Spill {
    path: PathBuf,
    state: Mutex<Window>,
    /// Ticks whenever bytes arrive, reach the disk, or the pump ends.
    changed: watch::Sender<()>,
}

/// What a spill holds so far.
#[derive(Default)]
struct Window {
    /// Recent chunks, with the offset of each.
    chunks: VecDeque<(u64, Bytes)>,
    received: u64,
    on_disk: u64,
    end: Option<Result<(), Failed>>,
}

impl Window {
    fn held(&self) -> u64 {
        self.chunks.iter().map(|(_, b)| b.len() as u64).sum()
    }

    /// Bytes from `at` to the end of the chunk holding it, if in memory.
    fn at(&self, at: u64) -> Option<Bytes> {
        self.chunks
            .iter()
            .find(|(o, b)| *o <= at && at < o + b.len() as u64)
            .map(|(o, b)| b.slice((at - o) as usize..))
    }

    /// Drops the oldest chunks beyond the window, as far as they are on disk.
    fn trim(&mut self) {
        while self.held() > WINDOW {
            match self.chunks.front() {
                Some((o, b)) if o + b.len() as u64 <= self.on_disk => {
                    self.chunks.pop_front();
                }
                _ => break,
            }
        }
    }
}

/// A pump's failure, passed on to every target reading it.
#[derive(Debug, Clone)]
struct Failed {
    message: String,
    transient: bool,
}

impl SharedSource {
    /// Shares `src` between the targets of one image; the spill files live
    /// in a temporary directory (`$TMPDIR`) removed when this is dropped.
    pub fn new(src: Arc<dyn Store>) -> Result<Arc<SharedSource>, StoreError> {
        let dir = tempfile::Builder::new()
            .prefix("ocirepl-fanout-")
            .tempdir()
            .map_err(|e| StoreError::io(std::env::temp_dir(), e))?;
        Ok(Arc::new(SharedSource {
            src,
            dir,
            heads: Mutex::default(),
            manifests: Mutex::default(),
            referrers: Mutex::default(),
            spills: Mutex::default(),
            reserved: Mutex::new(0),
            next_file: AtomicU64::new(0),
        }))
    }

    /// A view for one more target.
    pub fn handle(self: &Arc<Self>) -> Handle {
        Handle {
            shared: self.clone(),
            asked: AtomicU64::new(0),
        }
    }

    /// The spill of `blob`, started if no pump holds or is filling it (a
    /// pump that failed is replaced: a retry reads the source again).
    fn spill(&self, blob: &Blob, open: Opener) -> Result<Arc<Spill>, StoreError> {
        let mut spills = self
            .spills
            .lock()
            .map_err(|_| StoreError::Protocol("the spill table is poisoned".into()))?;
        if let Some(s) = spills.get(&blob.digest)
            && !s.state.lock().is_ok_and(|w| matches!(w.end, Some(Err(_))))
        {
            return Ok(s.clone());
        }
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        let spill = Arc::new(Spill {
            path: self.dir.path().join(format!("blob-{n}")),
            state: Mutex::default(),
            changed: watch::channel(()).0,
        });
        spills.insert(blob.digest.clone(), spill.clone());
        tokio::spawn(pump(self.src.clone(), blob.clone(), open, spill.clone()));
        Ok(spill)
    }
}

/// Where a pump reads a blob from: the source repository, or one of a
/// foreign layer's URLs.
#[derive(Clone)]
enum Opener {
    Repository,
    Url(String),
}

/// Streams a blob from the source, verified, into its spill: memory for
/// the readers that keep up, a file (written by a thread of its own) for
/// the rest. The last chunk arrives only once size and digest are checked.
async fn pump(src: Arc<dyn Store>, blob: Blob, open: Opener, spill: Arc<Spill>) {
    let result = fill(src.as_ref(), &blob, open, &spill).await;
    let end = result.map_err(|e| Failed {
        transient: e.is_transient(),
        message: e.to_string(),
    });
    spill.update(|w| w.end = Some(end));
}

impl Spill {
    fn update(&self, f: impl FnOnce(&mut Window)) {
        if let Ok(mut w) = self.state.lock() {
            f(&mut w);
        }
        self.changed.send_replace(());
    }
}

async fn fill(
    src: &dyn Store,
    blob: &Blob,
    open: Opener,
    spill: &Arc<Spill>,
) -> Result<(), StoreError> {
    let stream = match open {
        Opener::Repository => src.blob_get(blob).await?,
        Opener::Url(url) => src.blob_get_url(&url, blob).await?,
    };
    let mut verified = verify_stream(stream, blob.digest.clone(), blob.size);
    let file = std::fs::File::create(&spill.path).map_err(|e| StoreError::io(&spill.path, e))?;
    let (to_disk, chunks) = mpsc::channel::<Bytes>(DISK_QUEUE);
    let writer = tokio::task::spawn_blocking({
        let spill = spill.clone();
        move || write_spill(file, chunks, &spill)
    });
    while let Some(chunk) = verified.next().await {
        let chunk = chunk?;
        let len = chunk.len() as u64;
        spill.update(|w| {
            w.chunks.push_back((w.received, chunk.clone()));
            w.received += len;
            w.trim();
        });
        if to_disk.send(chunk).await.is_err() {
            break;
        }
    }
    drop(to_disk);
    match writer.await {
        Ok(result) => result,
        Err(e) => Err(StoreError::Protocol(format!(
            "the spill writer failed: {e}"
        ))),
    }
}

/// Chunks waiting for the disk; a slower disk then slows the pump.
const DISK_QUEUE: usize = 64;

/// Appends chunks to the spill file in large writes, saying how far the
/// file is written after each.
fn write_spill(
    file: std::fs::File,
    mut chunks: mpsc::Receiver<Bytes>,
    spill: &Spill,
) -> Result<(), StoreError> {
    use std::io::Write;
    let io = |e| StoreError::io(&spill.path, e);
    let mut out = std::io::BufWriter::with_capacity(READ_CHUNK, file);
    let mut buffered = 0u64;
    while let Some(chunk) = chunks.blocking_recv() {
        out.write_all(&chunk).map_err(io)?;
        buffered += chunk.len() as u64;
        if out.buffer().is_empty() || chunks.is_empty() {
            out.flush().map_err(io)?;
            let done = buffered;
            spill.update(|w| {
                w.on_disk = done;
                w.trim();
            });
        }
    }
    out.flush().map_err(io)?;
    spill.update(|w| {
        w.on_disk = buffered;
        w.trim();
    });
    Ok(())
}

/// One target's place in a spill.
struct Reader {
    spill: Arc<Spill>,
    changed: watch::Receiver<()>,
    file: Option<std::fs::File>,
    at: u64,
}

/// What a reader can do next.
enum Next {
    Bytes(Bytes),
    /// Fallen behind the window: read this much from the file.
    Disk(u64),
    Wait,
    Done,
    Failed(Failed),
}

/// A target's read of a spill: from memory while it keeps up, from the
/// file when it falls behind, waiting for more until the pump ends (a
/// failed pump ends the read with its error).
fn read_spill(spill: Arc<Spill>) -> BlobStream {
    let reader = Reader {
        changed: spill.changed.subscribe(),
        spill,
        file: None,
        at: 0,
    };
    futures::stream::try_unfold(reader, |mut r| async move {
        loop {
            r.changed.borrow_and_update();
            match next(&r) {
                Next::Bytes(b) => {
                    r.at += b.len() as u64;
                    return Ok(Some((b, r)));
                }
                Next::Disk(n) => {
                    let b = read_disk(&mut r, n).await?;
                    r.at += b.len() as u64;
                    return Ok(Some((b, r)));
                }
                Next::Done => return Ok(None),
                Next::Failed(f) => {
                    return Err(StoreError::Relayed {
                        message: f.message,
                        transient: f.transient,
                    });
                }
                Next::Wait => {
                    if r.changed.changed().await.is_err() {
                        return Err(StoreError::Protocol(
                            "a shared blob read stopped before it ended".into(),
                        ));
                    }
                }
            }
        }
    })
    .boxed()
}

fn next(r: &Reader) -> Next {
    let Ok(w) = r.spill.state.lock() else {
        return Next::Failed(Failed {
            message: "a shared blob's state is poisoned".into(),
            transient: false,
        });
    };
    if r.at < w.received {
        return match w.at(r.at) {
            Some(b) => Next::Bytes(b),
            None if r.at < w.on_disk => Next::Disk((w.on_disk - r.at).min(READ_CHUNK as u64)),
            None => Next::Wait,
        };
    }
    match &w.end {
        Some(Ok(())) => Next::Done,
        Some(Err(f)) => Next::Failed(f.clone()),
        None => Next::Wait,
    }
}

/// `n` bytes of the spill file from the reader's place (all on disk).
async fn read_disk(r: &mut Reader, n: u64) -> Result<Bytes, StoreError> {
    use std::io::{Read, Seek};
    let path = r.spill.path.clone();
    let at = r.at;
    let file = match r.file.take() {
        Some(f) => f,
        None => std::fs::File::open(&path).map_err(|e| StoreError::io(&path, e))?,
    };
    let (file, bytes) = tokio::task::spawn_blocking(move || {
        let io = |e| StoreError::io(&path, e);
        let mut file = file;
        file.seek(std::io::SeekFrom::Start(at)).map_err(io)?;
        let mut buf = vec![0u8; n as usize];
        file.read_exact(&mut buf).map_err(io)?;
        Ok::<_, StoreError>((file, Bytes::from(buf)))
    })
    .await
    .map_err(|e| StoreError::Protocol(format!("a spill read failed: {e}")))??;
    r.file = Some(file);
    Ok(bytes)
}

/// The answer cached under `key`, made once by whichever target asks first
/// (a failure is not cached: the next target asks again).
async fn once<T: Clone, F, Fut>(
    cells: &Mutex<HashMap<ManifestRef, Arc<OnceCell<T>>>>,
    key: &ManifestRef,
    make: F,
) -> Result<T, StoreError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let cell = match cells.lock() {
        Ok(mut c) => c.entry(key.clone()).or_default().clone(),
        Err(_) => Arc::default(),
    };
    cell.get_or_try_init(make).await.cloned()
}

#[async_trait]
impl Store for Handle {
    fn describe(&self) -> String {
        self.shared.src.describe()
    }

    fn location(&self) -> Location {
        self.shared.src.location()
    }

    async fn manifest_head(&self, r: &ManifestRef) -> Result<Option<Digest>, StoreError> {
        let src = &self.shared.src;
        once(&self.shared.heads, r, || src.manifest_head(r)).await
    }

    async fn manifest_get(&self, r: &ManifestRef) -> Result<RawManifest, StoreError> {
        let src = &self.shared.src;
        once(&self.shared.manifests, r, || src.manifest_get(r)).await
    }

    async fn manifest_put(&self, r: &ManifestRef, _: &RawManifest) -> Result<(), StoreError> {
        Err(StoreError::Unsupported(format!(
            "{}: a source is never written ({r})",
            self.describe()
        )))
    }

    async fn blob_head(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        self.shared.src.blob_head(digest).await
    }

    async fn blob_get(&self, blob: &Blob) -> Result<BlobStream, StoreError> {
        Ok(read_spill(self.shared.spill(blob, Opener::Repository)?))
    }

    async fn blob_get_url(&self, url: &str, blob: &Blob) -> Result<BlobStream, StoreError> {
        Ok(read_spill(
            self.shared.spill(blob, Opener::Url(url.to_string()))?,
        ))
    }

    async fn blob_put(&self, blob: &Blob, _: BlobStream) -> Result<(), StoreError> {
        Err(StoreError::Unsupported(format!(
            "{}: a source is never written ({})",
            self.describe(),
            blob.digest
        )))
    }

    async fn tags(&self) -> Result<Vec<String>, StoreError> {
        self.shared.src.tags().await
    }

    async fn referrers(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<Option<Vec<Listed>>, StoreError> {
        let cell = match self.shared.referrers.lock() {
            Ok(mut c) => c
                .entry((subject.clone(), artifact_types.to_vec()))
                .or_default()
                .clone(),
            Err(_) => Arc::default(),
        };
        let src = &self.shared.src;
        cell.get_or_try_init(|| src.referrers(subject, artifact_types))
            .await
            .cloned()
    }

    /// Every byte a target reads went through the pump's verifier first.
    fn verifies_blobs(&self) -> bool {
        true
    }

    async fn settled(&self) -> Result<(), StoreError> {
        self.shared.src.settled().await
    }

    fn states_pull_budget(&self) -> bool {
        self.shared.src.states_pull_budget()
    }

    /// Each target's copy reserves what it would pull; the source is
    /// charged only for what goes beyond what another target reserved
    /// already, since the pulls themselves are shared.
    fn reserve_pulls(&self, n: u64, keep: u64) -> Result<(), StoreError> {
        let asked = self.asked.fetch_add(n, Ordering::Relaxed) + n;
        let Ok(mut reserved) = self.shared.reserved.lock() else {
            return self.shared.src.reserve_pulls(n, keep);
        };
        if asked > *reserved {
            self.shared.src.reserve_pulls(asked - *reserved, keep)?;
            *reserved = asked;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::layout::LayoutStore;

    /// A layout holding one blob, as the source.
    fn source_with(data: &[u8]) -> (tempfile::TempDir, Arc<dyn Store>, Blob) {
        let dir = tempfile::tempdir().unwrap();
        let d = Digest::sha256(data);
        let blobs = dir.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join(d.hex()), data).unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("index.json"),
            r#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
        let store: Arc<dyn Store> = Arc::new(LayoutStore::open(dir.path(), false).unwrap());
        (dir, store, Blob::new(d, data.len() as u64))
    }

    async fn all(mut s: BlobStream) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn every_target_reads_the_whole_blob_from_one_spill() {
        let data: Vec<u8> = (0..3 * READ_CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let (_dir, src, blob) = source_with(&data);
        let shared = SharedSource::new(src).unwrap();
        let (a, b) = (shared.handle(), shared.handle());
        let (ra, rb) = tokio::join!(a.blob_get(&blob), b.blob_get(&blob));
        let (ra, rb) = tokio::join!(all(ra.unwrap()), all(rb.unwrap()));
        assert_eq!(ra.unwrap(), data);
        assert_eq!(rb.unwrap(), data);
        assert_eq!(shared.spills.lock().unwrap().len(), 1, "one spill");
        // A target that comes late reads the finished spill: the first
        // bytes are out of the memory window by now, so from the file.
        let spill = shared
            .spills
            .lock()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone();
        let first_in_memory = spill.state.lock().unwrap().chunks.front().map(|(o, _)| *o);
        assert!(
            first_in_memory > Some(0),
            "the window moved on: {first_in_memory:?}"
        );
        let late = all(shared.handle().blob_get(&blob).await.unwrap()).await;
        assert_eq!(late.unwrap(), data);
    }

    #[tokio::test]
    async fn a_source_that_lies_fails_every_reader_and_a_retry_pumps_again() {
        let (_dir, src, blob) = source_with(b"the real bytes");
        let lie = Blob::new(Digest::sha256(b"other bytes"), blob.size);
        // The layout stores blobs by digest: ask for the real file under a
        // descriptor whose digest it does not match.
        let path = _dir.path().join("blobs/sha256").join(lie.digest.hex());
        std::fs::copy(
            _dir.path().join("blobs/sha256").join(blob.digest.hex()),
            path,
        )
        .unwrap();
        let shared = SharedSource::new(src).unwrap();
        let e = all(shared.handle().blob_get(&lie).await.unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Relayed {
                    transient: false,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("digest"), "{e}");
        let again = shared.handle().blob_get(&lie).await.unwrap();
        assert!(all(again).await.is_err());
        assert_eq!(shared.next_file.load(Ordering::Relaxed), 2, "pumped again");
    }
}
