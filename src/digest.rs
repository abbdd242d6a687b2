//! Content digests: the validated [`Digest`] type, hashing, and the stream
//! adapter that checks size and digest while bytes pass through.
//!
//! Owns digest syntax (checked before a digest ever reaches a URL or a path),
//! the supported algorithms (sha256, sha512) and integrity verification.
//! Never does I/O of its own: it wraps streams that others open.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use sha2::Digest as _;

/// A hash algorithm the OCI image spec registers and we can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the lower-case hex encoding.
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A digest like `sha256:3f1a…`, validated: known algorithm, exact length,
/// lower-case hex only. Safe to put in a URL path or a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {0:?}: expected ALGORITHM:HEX")]
    Syntax(String),
    #[error("unsupported digest algorithm {0:?} (supported: sha256, sha512)")]
    Algorithm(String),
    #[error("invalid digest {0:?}: wrong length or not lower-case hex")]
    Encoding(String),
}

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The sha256 digest of `data`.
    pub fn sha256(data: &[u8]) -> Digest {
        Digest::of(Algorithm::Sha256, data)
    }

    pub fn of(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut h = Hasher::new(algorithm);
        h.update(data);
        h.finish()
    }

    /// A short form for human messages: `sha256:3f1a2b3c4d5e`.
    pub fn short(&self) -> String {
        format!("{}:{}", self.algorithm.name(), &self.hex[..12])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Syntax(s.to_string()))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            a if !a.is_empty()
                && a.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b)
                }) =>
            {
                return Err(DigestError::Algorithm(a.to_string()));
            }
            _ => return Err(DigestError::Syntax(s.to_string())),
        };
        let valid = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(DigestError::Encoding(s.to_string()));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental hashing with the algorithm a digest names.
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

/// What went wrong when bytes did not match their descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrityError {
    #[error("body ended after {got} bytes, descriptor says {expected}")]
    TooShort { expected: u64, got: u64 },
    #[error("body is longer than the descriptor's {expected} bytes")]
    TooLong { expected: u64 },
    #[error("digest mismatch: expected {expected}, got {actual}")]
    Mismatch { expected: Digest, actual: Digest },
}

/// Checks a fully buffered body (a manifest, a config) against its descriptor.
pub fn verify_bytes(data: &[u8], expected: &Digest, size: u64) -> Result<(), IntegrityError> {
    let got = data.len() as u64;
    if got < size {
        return Err(IntegrityError::TooShort {
            expected: size,
            got,
        });
    }
    if got > size {
        return Err(IntegrityError::TooLong { expected: size });
    }
    let actual = Digest::of(expected.algorithm(), data);
    if &actual != expected {
        return Err(IntegrityError::Mismatch {
            expected: expected.clone(),
            actual,
        });
    }
    Ok(())
}

/// Wraps a byte stream so that it yields exactly `size` bytes hashing to
/// `expected`, or an error.
///
/// The check happens *before* the final chunk is handed on: once the count
/// reaches `size` the adapter makes sure the source has nothing more to say
/// and that the digest matches, and only then releases the last bytes. A
/// consumer streaming into an upload therefore never delivers a complete,
/// wrong body: a lying source fails the upload instead of committing it.
pub fn verify_stream<E>(
    inner: BoxStream<'static, Result<Bytes, E>>,
    expected: Digest,
    size: u64,
) -> BoxStream<'static, Result<Bytes, E>>
where
    E: From<IntegrityError> + Send + 'static,
{
    struct State<E> {
        inner: BoxStream<'static, Result<Bytes, E>>,
        hasher: Option<Hasher>,
        seen: u64,
        expected: Digest,
        size: u64,
    }
    let state = State {
        inner,
        hasher: Some(Hasher::new(expected.algorithm())),
        seen: 0,
        expected,
        size,
    };
    futures::stream::try_unfold(state, |mut st| async move {
        let Some(mut hasher) = st.hasher.take() else {
            return Ok(None);
        };
        loop {
            let chunk = match st.inner.next().await {
                Some(chunk) => chunk?,
                None => {
                    // A non-empty body that reached its size returned below, so
                    // here either it is short or the descriptor says 0 bytes.
                    if st.seen < st.size {
                        return Err(IntegrityError::TooShort {
                            expected: st.size,
                            got: st.seen,
                        }
                        .into());
                    }
                    check_digest(hasher, &st.expected)?;
                    return Ok(None);
                }
            };
            if chunk.is_empty() {
                continue;
            }
            st.seen += chunk.len() as u64;
            if st.seen > st.size {
                return Err(IntegrityError::TooLong { expected: st.size }.into());
            }
            hasher.update(&chunk);
            if st.seen < st.size {
                st.hasher = Some(hasher);
                return Ok(Some((chunk, st)));
            }
            // The last byte is in hand: the source must be at its end.
            while let Some(extra) = st.inner.next().await {
                if !extra?.is_empty() {
                    return Err(IntegrityError::TooLong { expected: st.size }.into());
                }
            }
            check_digest(hasher, &st.expected)?;
            return Ok(Some((chunk, st)));
        }
    })
    .boxed()
}

fn check_digest(hasher: Hasher, expected: &Digest) -> Result<(), IntegrityError> {
    let actual = hasher.finish();
    if &actual == expected {
        Ok(())
    } else {
        Err(IntegrityError::Mismatch {
            expected: expected.clone(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::sha256(b""));
        assert_eq!(d.short(), "sha256:e3b0c44298fc");
        let long = format!("sha512:{}", "a".repeat(128));
        assert_eq!(
            long.parse::<Digest>().unwrap().algorithm(),
            Algorithm::Sha512
        );
    }

    #[test]
    fn rejects_abuse_before_any_use() {
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "sha256:../../x",
            "sha256:abc",
            upper.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            "md5:d41d8cd98f00b204e9800998ecf8427e".parse::<Digest>(),
            Err(DigestError::Algorithm(a)) if a == "md5"
        ));
        assert!(matches!(
            format!("sha384:{}", "0".repeat(96)).parse::<Digest>(),
            Err(DigestError::Algorithm(_))
        ));
        assert!(matches!(
            "SHA256:abc".parse::<Digest>(),
            Err(DigestError::Syntax(_))
        ));
    }

    #[derive(Debug, PartialEq)]
    enum E {
        Integrity(IntegrityError),
        Source,
    }
    impl From<IntegrityError> for E {
        fn from(e: IntegrityError) -> Self {
            E::Integrity(e)
        }
    }

    async fn run(
        chunks: Vec<Result<&'static [u8], E>>,
        expected: Digest,
        size: u64,
    ) -> (Vec<u8>, Option<E>) {
        let inner = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| c.map(Bytes::from_static))
                .collect::<Vec<_>>(),
        )
        .boxed();
        let mut s = verify_stream(inner, expected, size);
        let mut out = Vec::new();
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    #[tokio::test]
    async fn stream_passes_exact_body() {
        let d = Digest::sha256(b"hello world");
        let (out, err) = run(vec![Ok(b"hello"), Ok(b""), Ok(b" world")], d, 11).await;
        assert_eq!(out, b"hello world");
        assert_eq!(err, None);
        let (out, err) = run(vec![], Digest::sha256(b""), 0).await;
        assert!(out.is_empty() && err.is_none());
    }

    #[tokio::test]
    async fn stream_withholds_last_chunk_of_a_wrong_body() {
        let d = Digest::sha256(b"hello world");
        let (out, err) = run(vec![Ok(b"hello"), Ok(b" w0rld")], d.clone(), 11).await;
        assert_eq!(out, b"hello", "the final chunk must not be released");
        assert!(matches!(
            err,
            Some(E::Integrity(IntegrityError::Mismatch { .. }))
        ));

        let (out, err) = run(vec![Ok(b"hello")], d.clone(), 11).await;
        assert_eq!(out, b"hello");
        assert_eq!(
            err,
            Some(E::Integrity(IntegrityError::TooShort {
                expected: 11,
                got: 5
            }))
        );

        let (_, err) = run(vec![Ok(b"hello world!")], d.clone(), 11).await;
        assert_eq!(
            err,
            Some(E::Integrity(IntegrityError::TooLong { expected: 11 }))
        );

        let (out, err) = run(vec![Ok(b"hello world"), Ok(b"!")], d.clone(), 11).await;
        assert!(
            out.is_empty(),
            "trailing data must hold back the last chunk"
        );
        assert_eq!(
            err,
            Some(E::Integrity(IntegrityError::TooLong { expected: 11 }))
        );

        let (_, err) = run(vec![Ok(b"hello"), Err(E::Source)], d, 11).await;
        assert_eq!(err, Some(E::Source));
    }

    #[test]
    fn verify_bytes_checks_size_then_digest() {
        let d = Digest::sha256(b"abc");
        assert!(verify_bytes(b"abc", &d, 3).is_ok());
        assert!(matches!(
            verify_bytes(b"ab", &d, 3),
            Err(IntegrityError::TooShort { .. })
        ));
        assert!(matches!(
            verify_bytes(b"abcd", &d, 3),
            Err(IntegrityError::TooLong { .. })
        ));
        assert!(matches!(
            verify_bytes(b"abd", &d, 3),
            Err(IntegrityError::Mismatch { .. })
        ));
    }
}
