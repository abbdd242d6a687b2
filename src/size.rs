//! Byte sizes as people write them: `700MiB`, `4.7GB`, `1G`, `512`.
//! Binary units (`KiB`, `MiB`, `GiB`, `TiB`, and `K`, `M`, `G`, `T` alone)
//! are powers of 1024; decimal ones (`kB`, `MB`, `GB`, `TB`) of 1000.
//!
//! Owns parsing and nothing else: pure.

/// Parses a size; a mistake says what was expected.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?}: expected a size like 700MiB, 4GB, 1G or 512 (bytes)");
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let factor: f64 = match unit.trim() {
        "" | "B" | "b" => 1.0,
        "K" | "k" | "KiB" | "kiB" => 1024.0,
        "M" | "MiB" => 1024.0 * 1024.0,
        "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return Err(bad()),
    };
    let bytes = number * factor;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 / 2.0 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("700MiB"), Ok(700 * 1024 * 1024));
        assert_eq!(parse_size("4GB"), Ok(4_000_000_000));
        assert_eq!(parse_size("1.5G"), Ok(1_610_612_736));
        assert_eq!(parse_size(" 2 TiB "), Ok(2 << 40));
        for bad in ["", "G", "-1M", "1X", "0", "1e30TB", "nan"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
