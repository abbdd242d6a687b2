//! diff_ids of a schema1 image's layers (the sha256 of each layer
//! uncompressed), which its schema2 config needs: computed by gunzipping a
//! layer while it streams to the target, or remembered from an earlier run.
//!
//! Owns the gunzip tap (with its cap against decompression bombs), the
//! per-image bookkeeping, and the [`DiffIdCache`] interface that the app
//! provides (a file, private to the user). A remembered diff_id is used
//! only for a layer that does not stream anyway: a layer that streams is
//! always hashed, and a cache that disagrees is corrected. Never writes a
//! manifest.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};

use futures::StreamExt;

use crate::digest::{Algorithm, Digest, Hasher};
use crate::store::{BlobStream, StoreError};

/// compressed digest → diff_id, remembered across runs.
pub trait DiffIdCache: Send + Sync {
    fn get(&self, compressed: &Digest) -> Option<Digest>;
    fn put(&self, compressed: &Digest, diff_id: &Digest);
    /// Makes what was put durable; failures are the cache's to log.
    fn save(&self) {}
}

/// Remembers nothing.
pub struct NoCache;

impl DiffIdCache for NoCache {
    fn get(&self, _: &Digest) -> Option<Digest> {
        None
    }
    fn put(&self, _: &Digest, _: &Digest) {}
}

/// The diff_ids one schema1 image needs, as they become known.
pub struct DiffIds<'a> {
    wanted: HashSet<Digest>,
    found: Mutex<HashMap<Digest, Digest>>,
    cache: &'a dyn DiffIdCache,
    pub max_uncompressed: u64,
}

impl<'a> DiffIds<'a> {
    pub fn new(
        wanted: HashSet<Digest>,
        cache: &'a dyn DiffIdCache,
        max_uncompressed: u64,
    ) -> DiffIds<'a> {
        DiffIds {
            wanted,
            found: Mutex::default(),
            cache,
            max_uncompressed,
        }
    }

    pub fn get(&self, compressed: &Digest) -> Option<Digest> {
        self.found.lock().ok()?.get(compressed).cloned()
    }

    /// A layer of this image whose diff_id is not known yet.
    pub fn wants(&self, d: &Digest) -> bool {
        self.wanted.contains(d) && self.get(d).is_none()
    }

    /// For a layer that will not stream: takes the remembered diff_id, if
    /// any. `false`: the layer must be read to learn it.
    pub fn found_in_cache(&self, d: &Digest) -> bool {
        match self.cache.get(d) {
            Some(id) => {
                self.keep(d, id);
                true
            }
            None => false,
        }
    }

    /// A diff_id computed from the bytes; it wins over a cache that says
    /// otherwise.
    pub fn computed(&self, compressed: &Digest, diff_id: Digest) {
        if let Some(cached) = self.cache.get(compressed)
            && cached != diff_id
        {
            tracing::warn!(layer = %compressed, "the diff_id cache was wrong about this layer; corrected");
        }
        self.cache.put(compressed, &diff_id);
        self.keep(compressed, diff_id);
    }

    fn keep(&self, compressed: &Digest, diff_id: Digest) {
        if let Ok(mut f) = self.found.lock() {
            f.insert(compressed.clone(), diff_id);
        }
    }

    pub fn save(&self) {
        self.cache.save();
    }
}

/// Where a tap leaves the diff_id.
pub type DiffIdSlot = Arc<Mutex<Option<Digest>>>;

/// The diff_id of a gzip layer as it streams past: a tap that gunzips
/// every chunk into a hasher, refusing more than `max` uncompressed bytes.
/// The result is ready once the stream has been read to its end.
pub fn gunzip_tap(inner: BlobStream, max: u64) -> (BlobStream, DiffIdSlot) {
    let slot: DiffIdSlot = Arc::default();
    let result = slot.clone();
    let sink = Sink {
        hasher: Some(Hasher::new(Algorithm::Sha256)),
        written: 0,
        max,
    };
    let decoder = flate2::write::MultiGzDecoder::new(sink);
    let stream =
        futures::stream::try_unfold((inner, Some(decoder)), move |(mut inner, mut decoder)| {
            let result = result.clone();
            async move {
                match inner.next().await {
                    Some(chunk) => {
                        let chunk = chunk?;
                        if let Some(d) = decoder.as_mut() {
                            d.write_all(&chunk).map_err(gzip_error)?;
                        }
                        Ok(Some((chunk, (inner, decoder))))
                    }
                    None => {
                        if let Some(d) = decoder.take() {
                            let mut sink = d.finish().map_err(gzip_error)?;
                            if let (Some(h), Ok(mut slot)) = (sink.hasher.take(), result.lock()) {
                                *slot = Some(h.finish());
                            }
                        }
                        Ok(None)
                    }
                }
            }
        });
    (stream.boxed(), slot)
}

/// Hashes what the decoder writes, up to `max` bytes.
struct Sink {
    hasher: Option<Hasher>,
    written: u64,
    max: u64,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written += buf.len() as u64;
        if self.written > self.max {
            return Err(std::io::Error::other(format!(
                "uncompressed layer larger than {} bytes (decompression bomb?)",
                self.max
            )));
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn gzip_error(e: std::io::Error) -> StoreError {
    let s = e.to_string();
    StoreError::Layer(if s.contains("decompression bomb") {
        s
    } else {
        format!("not a valid gzip stream: {s}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    async fn drain(chunks: Vec<Vec<u8>>, max: u64) -> (Result<Vec<u8>, String>, Option<Digest>) {
        let inner = futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed();
        let (mut s, slot) = gunzip_tap(inner, max);
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            match c {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => return (Err(e.to_string()), slot.lock().unwrap().clone()),
            }
        }
        (Ok(out), slot.lock().unwrap().clone())
    }

    #[tokio::test]
    async fn tap_passes_bytes_and_computes_the_diff_id() {
        let plain = b"hello layer".repeat(1000);
        let compressed = gz(&plain);
        let chunks: Vec<Vec<u8>> = compressed.chunks(7).map(<[u8]>::to_vec).collect();
        let (out, diff) = drain(chunks, u64::MAX).await;
        assert_eq!(out.unwrap(), compressed);
        assert_eq!(diff, Some(Digest::sha256(&plain)));
        // Concatenated gzip members are one stream (MultiGzDecoder).
        let two = [gz(b"ab"), gz(b"cd")].concat();
        let (_, diff) = drain(vec![two], u64::MAX).await;
        assert_eq!(diff, Some(Digest::sha256(b"abcd")));
    }

    #[tokio::test]
    async fn tap_stops_bombs_and_corrupt_gzip() {
        let zeros = vec![0u8; 10 * 1024 * 1024];
        let bomb = gz(&zeros);
        assert!(bomb.len() < 100 * 1024);
        let (out, diff) = drain(vec![bomb], 1024 * 1024).await;
        assert!(out.unwrap_err().contains("decompression bomb"));
        assert_eq!(diff, None);
        let (out, _) = drain(vec![b"definitely not gzip".to_vec()], u64::MAX).await;
        assert!(out.unwrap_err().contains("not a valid gzip"));
        let mut truncated = gz(&b"x".repeat(5000));
        truncated.truncate(truncated.len() - 10);
        let (out, _) = drain(vec![truncated], u64::MAX).await;
        assert!(out.is_err());
    }

    /// A cache that lies is corrected by a layer that streams.
    #[test]
    fn computed_diff_ids_win_over_the_cache() {
        struct Lying(Mutex<HashMap<Digest, Digest>>);
        impl DiffIdCache for Lying {
            fn get(&self, d: &Digest) -> Option<Digest> {
                self.0.lock().unwrap().get(d).cloned()
            }
            fn put(&self, d: &Digest, id: &Digest) {
                self.0.lock().unwrap().insert(d.clone(), id.clone());
            }
        }
        let layer = Digest::sha256(b"layer");
        let (wrong, right) = (Digest::sha256(b"wrong"), Digest::sha256(b"right"));
        let cache = Lying(Mutex::new(HashMap::from([(layer.clone(), wrong)])));
        let ids = DiffIds::new(HashSet::from([layer.clone()]), &cache, u64::MAX);
        assert!(ids.wants(&layer));
        ids.computed(&layer, right.clone());
        assert_eq!(ids.get(&layer), Some(right.clone()));
        assert_eq!(cache.get(&layer), Some(right));
        assert!(!ids.wants(&layer));
    }
}
