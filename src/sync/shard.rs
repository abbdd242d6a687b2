//! Shards: which images of a run belong to shard I of N, so that N
//! processes (a Kubernetes Indexed Job) share a mirror without talking to
//! each other.
//!
//! Owns the assignment: an image (job name, target repository, tag) goes
//! to shard `u64(first 8 bytes of SHA-256(job \0 repository \0 tag)) mod N`
//! (big-endian). That is stable across runs, machines and versions (never
//! Rust's seeded hasher), so shards are disjoint and together complete.
//! Never lists or copies anything.

use sha2::Digest as _;

/// Shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// `I/N` (0-based).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("--shard {text:?}: expected INDEX/COUNT, like 0/4"))?;
        let (index, count) = (i.trim().parse::<u64>(), n.trim().parse::<u64>());
        match (index, count) {
            (Ok(index), Ok(count)) if count > 0 && index < count => Ok(Shard { index, count }),
            (_, Ok(count)) if count > 0 => Err(format!(
                "--shard {text:?}: INDEX must be a whole number below COUNT (0/{count} .. {}/{count})",
                count - 1
            )),
            _ => Err(format!(
                "--shard {text:?}: expected INDEX/COUNT, whole numbers with INDEX below COUNT, like 0/4"
            )),
        }
    }

    /// Shard `index` from `JOB_COMPLETION_INDEX` (Kubernetes Indexed Jobs).
    pub fn from_completion_index(value: Option<&str>, count: u64) -> Result<Shard, String> {
        let v =
            value.ok_or("--shards needs JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job)")?;
        Shard::parse(&format!("{v}/{count}"))
    }

    /// Whether this shard owns the image.
    pub fn owns(&self, job: &str, repository: &str, tag: &str) -> bool {
        shard_of(job, repository, tag, self.count) == self.index
    }
}

/// The shard of an image among `count`.
pub fn shard_of(job: &str, repository: &str, tag: &str, count: u64) -> u64 {
    let mut h = sha2::Sha256::new();
    for part in [job, repository, tag] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first) % count.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(Shard::parse("0/4"), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(Shard::parse("3/4").unwrap().index, 3);
        for bad in ["4/4", "1/0", "-1/4", "a/b", "2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Shard::from_completion_index(Some("2"), 3),
            Ok(Shard { index: 2, count: 3 })
        );
        assert!(Shard::from_completion_index(None, 3).is_err());
        let out_of_range = Shard::from_completion_index(Some("7"), 3).unwrap_err();
        assert!(out_of_range.contains("(0/3 .. 2/3)"), "{out_of_range}");
        assert!(Shard::parse("9/16").is_ok());
        assert!(
            Shard::parse("16/16")
                .unwrap_err()
                .contains("(0/16 .. 15/16)")
        );
        assert!(!Shard::parse("1/0").unwrap_err().contains(".."));
    }

    #[test]
    fn the_assignment_is_stable() {
        // Fixed values (also computed by hand with Python's hashlib): a
        // change here would re-shard every running mirror.
        assert_eq!(
            shard_of("alpine", "registry.example.com/mirror/alpine", "3.19", 16),
            3
        );
        assert_eq!(shard_of("j", "r/a", "1", 1_000_003), 535_373);
        assert_eq!(shard_of("j", "r/a", "2", 1_000_003), 590_732);
        assert_eq!(shard_of("j", "r", "t", 1), 0);
    }

    /// 10,000 tags over 16 shards land within ±10 % of even, disjoint and
    /// complete.
    #[test]
    fn ten_thousand_tags_split_evenly_over_sixteen_shards() {
        let shards: Vec<Shard> = (0..16).map(|index| Shard { index, count: 16 }).collect();
        let mut counts = [0usize; 16];
        for i in 0..10_000 {
            let tag = format!("v{}.{}.{}", i / 100, (i / 10) % 10, i % 10);
            let owners: Vec<&Shard> = shards
                .iter()
                .filter(|s| s.owns("mirror", "reg.example/team/app", &tag))
                .collect();
            assert_eq!(owners.len(), 1, "{tag}");
            counts[owners[0].index as usize] += 1;
        }
        let even = 10_000.0 / 16.0;
        for (i, c) in counts.iter().enumerate() {
            let off = (*c as f64 - even).abs() / even;
            assert!(
                off <= 0.10,
                "shard {i}: {c} images ({:.1}% off)",
                off * 100.0
            );
        }
    }
}
