//! Tag and repository filters of a mirror job: patterns (glob, `regex:`,
//! `semver:`), include / exclude, the newest N versions, and immutable tags.
//!
//! Owns the pattern language and what a "version" is: after an optional
//! leading `v`, a SemVer 2.0 version, or a shorter `MAJOR.MINOR` / `MAJOR`
//! read with `.0` (`v3.19` is 3.19.0). Pure: never lists a registry.

use std::cmp::Ordering;

use globset::GlobMatcher;
use regex::Regex;
use semver::{Version, VersionReq};

/// The longest pattern accepted: a filter, not a program.
const MAX_PATTERN_LEN: usize = 1024;
/// The compiled size a `regex:` pattern may reach.
const MAX_REGEX_SIZE: usize = 1 << 20;

/// One pattern of a filter.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// A glob over the whole name (`*`, `?`, `[...]`, `{a,b}`).
    Glob(GlobMatcher),
    /// A regular expression, unanchored, as written.
    Regex(Regex),
    /// A SemVer range over tags that are versions; `None` is `semver:*`,
    /// which takes every version, pre-releases included.
    Semver(Option<VersionReq>),
}

impl Pattern {
    /// Parses `glob`, `regex:RE` or `semver:RANGE`.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text.len() > MAX_PATTERN_LEN {
            return Err(format!(
                "a pattern is longer than {MAX_PATTERN_LEN} characters"
            ));
        }
        if let Some(re) = text.strip_prefix("regex:") {
            return regex::RegexBuilder::new(re)
                .size_limit(MAX_REGEX_SIZE)
                .dfa_size_limit(MAX_REGEX_SIZE)
                .build()
                .map(Pattern::Regex)
                .map_err(|e| {
                    // regex explains over several lines; the last one says what is wrong.
                    let text = e.to_string();
                    let why = text
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("");
                    format!(
                        "invalid regular expression {re:?}: {}",
                        why.trim_start_matches("error: ")
                    )
                });
        }
        if let Some(range) = text.strip_prefix("semver:") {
            let range = range.trim();
            if range == "*" {
                return Ok(Pattern::Semver(None));
            }
            return VersionReq::parse(range)
                .map(|r| Pattern::Semver(Some(r)))
                .map_err(|e| format!("invalid version range {range:?}: {e}"));
        }
        globset::Glob::new(text)
            .map(|g| Pattern::Glob(g.compile_matcher()))
            .map_err(|e| format!("invalid pattern {text:?}: {}", e.kind()))
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Glob(g) => g.is_match(name),
            Pattern::Regex(r) => r.is_match(name),
            Pattern::Semver(range) => match (version_of(name), range) {
                (Some(_), None) => true,
                (Some(v), Some(r)) => r.matches(&v),
                (None, _) => false,
            },
        }
    }
}

/// The version a tag names, if it names one: `1.2.3`, `v1.2.3-rc.1+b5`,
/// `3.19` (3.19.0), `v3` (3.0.0).
pub fn version_of(tag: &str) -> Option<Version> {
    let bare = tag.strip_prefix('v').unwrap_or(tag);
    if let Ok(v) = Version::parse(bare) {
        return Some(v);
    }
    // Shorter forms: digits only, one or two parts, no pre-release.
    let parts: Vec<&str> = bare.split('.').collect();
    let numeric = |p: &&str| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p.len() == 1 || !p.starts_with('0'))
    };
    if parts.is_empty() || parts.len() > 2 || !parts.iter().all(numeric) {
        return None;
    }
    let n = |i: usize| parts.get(i).map_or(Some(0), |p| p.parse::<u64>().ok());
    Some(Version::new(n(0)?, n(1)?, 0))
}

/// Which names of a listing a job keeps.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Any match keeps; empty keeps everything.
    pub include: Vec<Pattern>,
    /// Any match drops.
    pub exclude: Vec<Pattern>,
    /// Then only the tags of the N highest versions (tags that are not
    /// versions are dropped).
    pub latest: Option<usize>,
}

impl Filter {
    /// Whether `name` passes include and exclude (not `latest`, which looks
    /// at the whole listing).
    pub fn admits(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.matches(name)))
            && !self.exclude.iter().any(|p| p.matches(name))
    }

    /// The names of `listing` the job keeps, in listing order.
    pub fn apply(&self, listing: &[String]) -> Vec<String> {
        let admitted: Vec<&String> = listing.iter().filter(|t| self.admits(t)).collect();
        let Some(n) = self.latest else {
            return admitted.into_iter().cloned().collect();
        };
        let mut versions: Vec<Version> = admitted.iter().filter_map(|t| version_of(t)).collect();
        versions.sort_by(|a, b| b.cmp_precedence(a));
        versions.dedup_by(|a, b| a.cmp_precedence(b) == Ordering::Equal);
        versions.truncate(n);
        admitted
            .into_iter()
            .filter(|t| {
                version_of(t).is_some_and(|v| {
                    versions
                        .iter()
                        .any(|k| k.cmp_precedence(&v) == Ordering::Equal)
                })
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    fn tags(s: &[&str]) -> Vec<String> {
        s.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn globs_match_whole_tags() {
        assert!(p("3.*").matches("3.19"));
        assert!(!p("3.*").matches("13.1"));
        assert!(p("*-rc*").matches("3.20-rc1"));
        assert!(p("v?.[0-9]").matches("v1.2"));
        assert!(p("{edge,latest}").matches("edge"));
        assert!(Pattern::parse("[unclosed").is_err());
    }

    #[test]
    fn regexes_are_unanchored_as_written() {
        assert!(p("regex:^edge$").matches("edge"));
        assert!(!p("regex:^edge$").matches("edge-1"));
        assert!(p("regex:rc").matches("3.20-rc1"), "unanchored");
        assert!(Pattern::parse("regex:(").is_err());
        assert!(Pattern::parse(&format!("regex:{}", "a{1000}".repeat(100))).is_err());
        assert!(Pattern::parse(&"x".repeat(2000)).is_err());
    }

    #[test]
    fn versions_and_ranges() {
        assert_eq!(version_of("3.19"), Some(Version::new(3, 19, 0)));
        assert_eq!(version_of("v3"), Some(Version::new(3, 0, 0)));
        assert_eq!(
            version_of("1.2.3-rc.1").map(|v| v.pre.to_string()),
            Some("rc.1".into())
        );
        for not in [
            "latest",
            "edge",
            "3.19-alpine",
            "1.2.3.4",
            "01.2",
            "",
            "v",
            "3.",
        ] {
            assert_eq!(version_of(not), None, "{not}");
        }
        let r = p("semver:>=3.18, <4");
        assert!(
            r.matches("3.18") && r.matches("v3.19.1") && !r.matches("4.0") && !r.matches("3.17")
        );
        assert!(
            !r.matches("3.19.0-rc1"),
            "pre-releases only where a comparator names one"
        );
        assert!(!r.matches("latest"));
        let any = p("semver:*");
        assert!(any.matches("3.19.0-rc1") && any.matches("1") && !any.matches("edge"));
        assert!(Pattern::parse("semver:>>1").is_err());
    }

    #[test]
    fn include_exclude_and_latest() {
        let listing = tags(&[
            "3.17",
            "3.18",
            "3.18.1",
            "v3.19",
            "3.20-rc1",
            "3.20.0-rc.1",
            "edge",
            "latest",
            "4.0",
        ]);
        let f = Filter {
            include: vec![p("3.*"), p("regex:^edge$"), p("semver:>=3.18, <4")],
            exclude: vec![p("*-rc*")],
            latest: None,
        };
        assert_eq!(
            f.apply(&listing),
            tags(&["3.17", "3.18", "3.18.1", "v3.19", "edge"])
        );
        let newest = Filter {
            latest: Some(2),
            ..f.clone()
        };
        // Versions only, by precedence: 3.19.0 and 3.18.1; edge drops.
        assert_eq!(newest.apply(&listing), tags(&["3.18.1", "v3.19"]));
        let everything = Filter::default();
        assert_eq!(everything.apply(&listing), listing);
        // Tags naming one version count once.
        let same = tags(&["1.2", "1.2.0", "v1.2.0", "1.1"]);
        let one = Filter {
            latest: Some(1),
            ..Filter::default()
        };
        assert_eq!(one.apply(&same), tags(&["1.2", "1.2.0", "v1.2.0"]));
    }
}
