//! Secrets a config names rather than holds: a password in an environment
//! variable (`password_env`) or in the first line of a file
//! (`password_file`), as Kubernetes mounts them.
//!
//! Owns reading them, bounded. A missing variable or an unreadable file is
//! an error naming the variable or the path and the registry, never the
//! value.

use std::io::Read;
use std::path::Path;

use super::{CredentialError, Credentials};

/// The most of a password file read.
const MAX_PASSWORD_FILE: u64 = 64 * 1024;

/// `username` with the password in environment variable `variable`; an
/// empty variable is an unset one.
pub fn from_env(
    registry: &str,
    username: &str,
    variable: &str,
) -> Result<Credentials, CredentialError> {
    let password = std::env::var(variable)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| CredentialError::Named {
            registry: registry.to_string(),
            message: format!("environment variable {variable} (password_env) is not set"),
        })?;
    Ok(Credentials::basic(username, &password))
}

/// `username` with the password on the first line of `path`.
pub fn from_file(
    registry: &str,
    username: &str,
    path: &Path,
) -> Result<Credentials, CredentialError> {
    let why = |e: String| CredentialError::Named {
        registry: registry.to_string(),
        message: format!("password_file {}: {e}", path.display()),
    };
    let meta = std::fs::metadata(path).map_err(|e| why(e.to_string()))?;
    if !meta.is_file() || meta.len() > MAX_PASSWORD_FILE {
        return Err(why("not a small regular file".into()));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PASSWORD_FILE).read_to_string(&mut text))
        .map_err(|e| why(e.to_string()))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(why("empty".into()));
    }
    Ok(Credentials::basic(username, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_give_their_first_line_and_errors_never_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\r\nsecond line\n").unwrap();
        assert_eq!(
            from_file("r.io", "robot", &p).unwrap(),
            Credentials::basic("robot", "s3cret")
        );
        std::fs::write(&p, "\n").unwrap();
        let e = from_file("r.io", "robot", &p).unwrap_err().to_string();
        assert!(e.contains("r.io") && e.contains("empty"), "{e}");
        let e = from_file("r.io", "robot", dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a small regular file"), "{e}");
        let e = from_env("r.io", "robot", "OCIREPL_TEST_SURELY_UNSET_VARIABLE")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("OCIREPL_TEST_SURELY_UNSET_VARIABLE") && e.contains("not set"),
            "{e}"
        );
    }
}
