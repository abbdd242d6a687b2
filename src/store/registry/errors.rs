//! What a registry's unexpected answer means, sorted once for every
//! endpoint: denied, a refused manifest (and why), or a plain transport
//! failure that keeps the registry's own words.
//!
//! Owns the status and error-code tables of the distribution API. Never
//! retries or decides anything: callers branch on the kinds.

use reqwest::StatusCode;

use crate::media::{Kind, MediaType};
use crate::store::{Rejection, StoreError};
use crate::transport::TransportError;

/// An answer to any request: credentials refused or access forbidden
/// become [`StoreError::Denied`]; everything else stays a transport error.
pub(super) fn sorted(e: TransportError) -> StoreError {
    let denied = match &e {
        TransportError::Auth { .. } => true,
        TransportError::Status(r) => {
            r.status == StatusCode::FORBIDDEN || r.has_code("DENIED") || r.has_code("UNAUTHORIZED")
        }
        _ => false,
    };
    if denied {
        StoreError::Denied { source: e }
    } else {
        StoreError::Transport(e)
    }
}

/// An answer to a manifest PUT of `media_type`.
pub(super) fn rejected_manifest(e: TransportError, media_type: &MediaType) -> StoreError {
    match rejection(&e, media_type) {
        Some(why) => StoreError::Rejected { why, source: e },
        None => sorted(e),
    }
}

fn rejection(e: &TransportError, media_type: &MediaType) -> Option<Rejection> {
    let r = e.registry_error()?;
    let code = |c: &str| r.has_code(c);
    let schema1 = media_type.kind() == Kind::Schema1;
    match r.status.as_u16() {
        400 if code("MANIFEST_BLOB_UNKNOWN") || code("BLOB_UNKNOWN") => {
            Some(Rejection::UnknownBlob)
        }
        // Seed 003's registries answer 404 right after the upload of what
        // the manifest references: not consistent yet.
        404 => Some(Rejection::UnknownBlob),
        415 => Some(Rejection::UnsupportedType),
        400 if schema1
            && (code("MANIFEST_INVALID") || code("MANIFEST_UNVERIFIED") || code("UNSUPPORTED")) =>
        {
            Some(Rejection::UnsupportedType)
        }
        400 if code("MANIFEST_INVALID") || code("UNSUPPORTED") => Some(Rejection::Invalid),
        // Debian's distribution 2.8 without schema1 answers 500 UNKNOWN
        // ("manifest schema v1 unsupported" only in its own log).
        500 if schema1 && code("UNKNOWN") => Some(Rejection::UnsupportedType),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::RegistryError;
    use reqwest::Method;

    fn answer(status: u16, code: &str) -> TransportError {
        let url = url::Url::parse("http://r/v2/a/manifests/t").unwrap();
        let body = format!(r#"{{"errors":[{{"code":"{code}","message":"m"}}]}}"#);
        TransportError::Status(Box::new(RegistryError::new(
            Method::PUT,
            &url,
            StatusCode::from_u16(status).unwrap(),
            body.as_bytes(),
        )))
    }

    #[test]
    fn manifest_refusals_by_meaning() {
        let s1 = MediaType::DockerV2S1Signed;
        let oci = MediaType::OciManifest;
        let why =
            |status, code, m: &MediaType| rejected_manifest(answer(status, code), m).rejection();
        assert_eq!(
            why(400, "MANIFEST_BLOB_UNKNOWN", &oci),
            Some(Rejection::UnknownBlob)
        );
        assert_eq!(why(400, "BLOB_UNKNOWN", &oci), Some(Rejection::UnknownBlob));
        assert_eq!(why(404, "NAME_UNKNOWN", &oci), Some(Rejection::UnknownBlob));
        assert_eq!(why(415, "", &oci), Some(Rejection::UnsupportedType));
        assert_eq!(
            why(400, "MANIFEST_INVALID", &s1),
            Some(Rejection::UnsupportedType)
        );
        assert_eq!(why(400, "MANIFEST_INVALID", &oci), Some(Rejection::Invalid));
        assert_eq!(why(500, "UNKNOWN", &s1), Some(Rejection::UnsupportedType));
        assert_eq!(why(500, "UNKNOWN", &oci), None);
        assert!(matches!(
            rejected_manifest(answer(403, "DENIED"), &oci),
            StoreError::Denied { .. }
        ));
        assert!(matches!(
            rejected_manifest(answer(502, ""), &oci),
            StoreError::Transport(_)
        ));
    }
}
