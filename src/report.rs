//! What happened, per image: the report printed as JSON for machines and as
//! a line for people.
//!
//! Owns the report's shape (its JSON field names are an interface).
//! Never prints on its own: the app chooses where reports go.

use serde::Serialize;

/// What the copy did to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Copied,
    UpToDate,
    Failed,
    /// Left alone on purpose (an immutable tag already there, a pull
    /// budget kept in reserve); `reason` says why.
    Skipped,
    /// `--plan`: this image would be copied (`bytes_copied` is what would move).
    Copy,
    /// A target tag deleted by `prune: true` (the source no longer has it).
    Pruned,
    /// `--plan`: this target tag would be pruned.
    Prune,
    /// Not copied: no signature passed the job's `verify` policies;
    /// `reason` says why. Fails the run unless `on_unverified: skip`
    /// (then `error` is empty).
    Unverified,
}

/// Who signed a verified image (`verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// The policy that passed, as written (`keys acme.pub`, `keyless …`).
    pub policy: String,
    /// The key file, or the identity and its issuer.
    pub signer: String,
    /// The signature manifest that carried the signature.
    pub signature: String,
    /// With `verify_children`: the kept children, each verified too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children_verified: Option<u64>,
}

/// What happened to an image's referrers (`--referrers`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReferrerCounts {
    pub copied: u64,
    /// Already in the target.
    pub present: u64,
    /// Not copied; `notes` says why.
    pub left_behind: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlobCounts {
    pub copied: u64,
    /// Linked from another repository of the same registry, no bytes moved.
    pub mounted: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    /// The mirror job it belongs to (sync only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    pub source: String,
    pub target: String,
    pub source_digest: Option<String>,
    pub target_digest: Option<String>,
    pub digest_preserved: bool,
    pub action: Action,
    pub blobs: BlobCounts,
    pub manifests_pushed: u64,
    pub bytes_copied: u64,
    pub duration_ms: u64,
    /// Why `target_digest` differs from `source_digest` (platform filter,
    /// conversion), or where an unwrapped image came from.
    pub reason: Option<String>,
    /// With `--referrers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrers: Option<ReferrerCounts>,
    /// With `verify`: the signature that let the image in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    pub error: Option<String>,
    /// The failure is a usage error (a selection the image cannot satisfy).
    #[serde(skip)]
    pub usage_error: bool,
}

impl ImageReport {
    /// Whether this image fails the run (exit 1, or 2 for a usage error).
    pub fn failed(&self) -> bool {
        self.action == Action::Failed || (self.action == Action::Unverified && self.error.is_some())
    }

    /// One line for a person (and a line on referrers, when they travel).
    pub fn human(&self) -> String {
        let mut line = self.main_line();
        if let Some(v) = &self.verification {
            line.push_str(&format!(
                "\n  verified: signed by {} ({}; signature {})",
                v.signer, v.policy, v.signature
            ));
            if let Some(n) = v.children_verified {
                line.push_str(&format!(", and each of its {n} kept children"));
            }
        }
        if let Some(r) = &self.referrers {
            line.push_str(&format!(
                "\n  referrers: {} copied, {} already there, {} left behind",
                r.copied, r.present, r.left_behind
            ));
            for n in &r.notes {
                line.push_str(&format!("\n    {n}"));
            }
        }
        line
    }

    fn main_line(&self) -> String {
        match self.action {
            Action::Copied => {
                let mut line = format!(
                    "copied {} -> {} ({}; {} blobs copied, {} mounted, {} already there, {})",
                    self.source,
                    self.target,
                    self.target_digest.as_deref().unwrap_or("?"),
                    self.blobs.copied,
                    self.blobs.mounted,
                    self.blobs.skipped,
                    human_bytes(self.bytes_copied),
                );
                match (&self.reason, self.digest_preserved) {
                    (Some(r), true) => line.push_str(&format!("\n  note: {r}")),
                    (Some(r), false) => line.push_str(&format!(
                        "\n  new digest ({r}); the source was {}",
                        self.source_digest.as_deref().unwrap_or("?")
                    )),
                    (None, _) => {}
                }
                line
            }
            Action::UpToDate => format!(
                "up to date {} ({})",
                self.target,
                self.target_digest.as_deref().unwrap_or("?")
            ),
            Action::Failed => format!(
                "error: copying {} to {}: {}",
                self.source,
                self.target,
                self.error.as_deref().unwrap_or("unknown error")
            ),
            Action::Skipped => format!(
                "skip {}: {}",
                self.target,
                self.reason.as_deref().unwrap_or("left alone")
            ),
            Action::Copy => format!(
                "copy {} -> {} ({} to move)",
                self.source,
                self.target,
                human_bytes(self.bytes_copied)
            ),
            Action::Unverified => format!(
                "{} {}: {}",
                if self.error.is_some() {
                    "error: unverified"
                } else {
                    "skip unverified"
                },
                self.source,
                self.reason.as_deref().unwrap_or("no signature passed")
            ),
            Action::Pruned => format!("pruned {} (gone from {})", self.target, self.source),
            Action::Prune => format!("prune {} (gone from {})", self.target, self.source),
        }
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_field_names_are_stable() {
        let r = ImageReport {
            job: None,
            source: "a".into(),
            target: "b".into(),
            source_digest: Some("sha256:x".into()),
            target_digest: Some("sha256:x".into()),
            digest_preserved: true,
            action: Action::UpToDate,
            blobs: BlobCounts {
                copied: 1,
                mounted: 0,
                skipped: 2,
            },
            manifests_pushed: 0,
            bytes_copied: 3,
            duration_ms: 4,
            reason: None,
            referrers: None,
            verification: None,
            error: None,
            usage_error: false,
        };
        let v = serde_json::to_value(&r).unwrap();
        for key in [
            "source",
            "target",
            "source_digest",
            "target_digest",
            "digest_preserved",
            "action",
            "blobs",
            "bytes_copied",
            "duration_ms",
            "error",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["action"], "up-to-date");
        assert_eq!(v["blobs"]["skipped"], 2);
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
