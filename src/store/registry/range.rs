//! The two `Range` dialects of the distribution API, as pure parsing: an
//! upload session's `Range: 0-N` (how much it holds) and a blob GET's
//! `Content-Range: bytes A-B/SIZE` (where a resumed body starts).
//!
//! Owns the arithmetic and its edge cases (Debian's 2.8 `0-0`, ends of
//! 2^64-1). Never sends anything.

/// An upload session's `Range: 0-N` → N+1 bytes received. `0-0` is read as
/// none (Debian's 2.8 says it for 0 and for 1 byte; a 416 tells them
/// apart); a start other than 0 or an end that overflows is not an answer.
pub fn received(range: &str) -> Option<u64> {
    let (a, b) = range.trim().trim_start_matches("bytes=").split_once('-')?;
    let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
    match (a, b) {
        (0, 0) => Some(0),
        (0, b) => b.checked_add(1),
        _ => None,
    }
}

/// Whether a 206's `Content-Range` continues a blob of `size` bytes exactly
/// at `offset`: `bytes OFFSET-(SIZE-1)/SIZE` (or `/*`).
pub fn continues_at(content_range: &str, offset: u64, size: u64) -> bool {
    let Some(rest) = content_range.trim().strip_prefix("bytes ") else {
        return false;
    };
    let Some((span, total)) = rest.split_once('/') else {
        return false;
    };
    let Some((a, b)) = span.split_once('-') else {
        return false;
    };
    let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) else {
        return false;
    };
    let total_ok = total == "*" || total.parse::<u64>() == Ok(size);
    a == offset && Some(b) == size.checked_sub(1) && total_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ranges() {
        assert_eq!(
            received("0-0"),
            Some(0),
            "Debian's 2.8: 0 or 1, read as 0 first"
        );
        assert_eq!(received("0-9"), Some(10));
        assert_eq!(received("bytes=0-99"), Some(100));
        assert_eq!(received("5-9"), None);
        assert_eq!(received("garbage"), None);
        assert_eq!(received("0-18446744073709551615"), None);
        assert_eq!(received("0-99999999999999999999999"), None);
    }

    #[test]
    fn resumed_bodies_start_exactly_where_asked() {
        assert!(continues_at("bytes 100-999/1000", 100, 1000));
        assert!(continues_at("bytes 100-999/*", 100, 1000));
        assert!(!continues_at("bytes 0-999/1000", 100, 1000));
        assert!(!continues_at("bytes 100-998/1000", 100, 1000));
        assert!(!continues_at("bytes 100-999/2000", 100, 1000));
        assert!(!continues_at(
            "bytes 0-18446744073709551615/18446744073709551615",
            0,
            0
        ));
        assert!(!continues_at("items 100-999/1000", 100, 1000));
        assert!(!continues_at("", 0, 0));
    }
}
