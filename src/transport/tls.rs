//! TLS material from a docker `certs.d` directory: `*.crt` files are extra
//! trusted CAs, a `NAME.cert` with its `NAME.key` is a client certificate.
//!
//! Owns reading and validating those files. Never weakens verification:
//! `--*-tls-verify=false` is decided by the transport, not here.

use std::path::Path;

/// Adds the directory's CAs and client identity to a client builder.
pub(super) fn apply_cert_dir(
    mut builder: reqwest::ClientBuilder,
    dir: &Path,
) -> Result<reqwest::ClientBuilder, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cert dir {}: {e}", dir.display()))?;
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in &paths {
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                let pem = read(path)?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|_| format!("{}: not a PEM certificate", path.display()))?;
                if certs.is_empty() {
                    return Err(format!("{}: no certificate in it", path.display()));
                }
                for c in certs {
                    builder = builder.add_root_certificate(c);
                }
            }
            Some("cert") => {
                let key_path = path.with_extension("key");
                if !key_path.exists() {
                    return Err(format!(
                        "{}: client certificate without its key {}",
                        path.display(),
                        key_path.display()
                    ));
                }
                let mut pem = read(path)?;
                pem.push(b'\n');
                pem.extend_from_slice(&read(&key_path)?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
                    format!("{}: not a PEM certificate and key pair", path.display())
                })?;
                builder = builder.identity(identity);
            }
            Some("key") if !path.with_extension("cert").exists() => {
                return Err(format!("{}: key without a .cert file", path.display()));
            }
            _ => {}
        }
    }
    Ok(builder)
}
