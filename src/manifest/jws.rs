//! The payload of a signed Docker schema1 manifest ("pretty JWS"): the
//! document as it was before libtrust spliced a `signatures` array into it.
//!
//! Owns the one rule that keeps a digest pin honest: the payload is
//! `bytes[..formatLength] + formatTail` as the protected header says, and it
//! must be the very document we were given minus its signatures. Registries
//! digest and parse the payload; if the full bytes said something else, a
//! copy that walked them would push other layers under a digest the user
//! pinned (RELIABILITY scenario 39). Never verifies the signatures
//! themselves: registries re-sign schema1 and nothing trusts libtrust keys.

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::ManifestError;

/// The payload the signatures cover, or `None` when the document carries
/// no `signatures` (an unsigned document served as signed: its bytes are
/// its payload). A signature block that does not describe this very
/// document is an error, never a fallback to the full bytes.
pub fn signed_payload(bytes: &[u8]) -> Result<Option<Bytes>, ManifestError> {
    #[derive(Deserialize)]
    struct Signed {
        signatures: Option<Vec<Signature>>,
    }
    #[derive(Deserialize)]
    struct Signature {
        protected: String,
    }
    let signed: Signed = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let Some(signatures) = signed.signatures else {
        return Ok(None);
    };
    let mut cut: Option<(usize, Vec<u8>)> = None;
    for s in &signatures {
        let this = protected_header(&s.protected)?;
        match &cut {
            None => cut = Some(this),
            Some(first) if *first == this => {}
            Some(_) => return Err(bad("its signatures disagree on the payload".into())),
        }
    }
    let (length, tail) = cut.ok_or_else(|| bad("an empty signatures array".into()))?;
    let head = bytes
        .get(..length)
        .ok_or_else(|| bad(format!("formatLength {length} is past the end")))?;
    // libtrust inserts the signatures between the head and the tail, so the
    // document must end with the tail and the two must not overlap.
    if head.len() + tail.len() > bytes.len() || !bytes.ends_with(&tail) {
        return Err(bad("formatTail is not the end of the document".into()));
    }
    let payload = [head, &tail].concat();
    same_document(bytes, &payload)?;
    Ok(Some(Bytes::from(payload)))
}

/// `formatLength` and the decoded `formatTail` of one protected header.
fn protected_header(protected: &str) -> Result<(usize, Vec<u8>), ManifestError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Protected {
        format_length: usize,
        format_tail: String,
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64
        .decode(protected.trim_end_matches('='))
        .map_err(|_| bad("a protected header is not base64url".into()))?;
    let p: Protected = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("a protected header is unreadable: {e}")))?;
    let tail = b64
        .decode(p.format_tail.trim_end_matches('='))
        .map_err(|_| bad("formatTail is not base64url".into()))?;
    Ok((p.format_length, tail))
}

/// The full document, without its `signatures`, must say exactly what the
/// payload says.
fn same_document(full: &[u8], payload: &[u8]) -> Result<(), ManifestError> {
    let mut full: Value = serde_json::from_slice(full).map_err(|e| bad(e.to_string()))?;
    let payload: Value = serde_json::from_slice(payload)
        .map_err(|e| bad(format!("the signed payload is not JSON: {e}")))?;
    if let Some(obj) = full.as_object_mut() {
        obj.remove("signatures");
    }
    if full != payload {
        return Err(ManifestError::Ambiguous(
            "a signed payload",
            "a document that says something else",
        ));
    }
    Ok(())
}

fn bad(why: String) -> ManifestError {
    ManifestError::Signature(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn doc(layer: &str) -> String {
        format!(
            "{{\n   \"schemaVersion\": 1,\n   \"fsLayers\": [{{\"blobSum\": \"{layer}\"}}],\n   \"history\": [{{\"v1Compatibility\": \"{{}}\"}}]\n}}"
        )
    }

    /// Signs the way libtrust does: cut before the closing "\n}", splice.
    fn sign(payload: &str, length: usize, tail: &[u8]) -> String {
        let protected = b64(format!(
            r#"{{"formatLength":{length},"formatTail":"{}"}}"#,
            b64(tail)
        )
        .as_bytes());
        format!(
            "{},\n   \"signatures\": [{{\"header\": {{}}, \"signature\": \"x\", \"protected\": \"{protected}\"}}]\n}}",
            &payload[..payload.len() - 2]
        )
    }

    #[test]
    fn honest_signature_gives_the_payload() {
        let p = doc(D1);
        let signed = sign(&p, p.len() - 2, b"\n}");
        assert_eq!(signed_payload(signed.as_bytes()).unwrap().unwrap(), p);
        assert_eq!(signed_payload(p.as_bytes()).unwrap(), None);
    }

    #[test]
    fn a_payload_that_is_another_document_is_refused() {
        // Scenario 39: formatLength 0 and formatTail = the pinned document,
        // while the full bytes carry other layers.
        let pinned = doc(D1);
        let attacker = doc(D2);
        let forged = sign(&attacker, 0, pinned.as_bytes());
        // The tail is not even the end of the document.
        assert!(signed_payload(forged.as_bytes()).is_err());
        // Even when the forger splices its own layers in where the
        // signatures go, so that head + tail is exactly the pinned document.
        let cut = pinned.len() - 2;
        let forged = format!(
            "{},\n \"fsLayers\": [{{\"blobSum\": \"{D2}\"}}], \"signatures\": [{{\"protected\": \"{}\"}}]\n}}",
            &pinned[..cut],
            b64(format!(r#"{{"formatLength":{cut},"formatTail":"{}"}}"#, b64(b"\n}")).as_bytes())
        );
        let err = signed_payload(forged.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("ambiguous"), "{err}");
    }

    #[test]
    fn broken_signature_blocks_are_errors() {
        let p = doc(D1);
        for bad in [
            sign(&p, p.len() + 10, b"\n}"),
            sign(&p, p.len() - 2, b"not the tail"),
            format!("{},\"signatures\":[]}}", &p[..p.len() - 2]),
            format!(
                "{},\"signatures\":[{{\"protected\":\"!!\"}}]}}",
                &p[..p.len() - 2]
            ),
        ] {
            assert!(signed_payload(bad.as_bytes()).is_err(), "{bad}");
        }
        // Two signatures that cut the document differently.
        let one = sign(&p, p.len() - 2, b"\n}");
        let other = b64(br#"{"formatLength":3,"formatTail":"fQ"}"#);
        let two = one.replacen(
            "\"signatures\": [",
            &format!("\"signatures\": [{{\"protected\": \"{other}\"}}, "),
            1,
        );
        assert!(signed_payload(two.as_bytes()).is_err());
    }

    #[test]
    fn absurd_lengths_do_not_panic() {
        let p = doc(D1);
        for n in [usize::MAX, usize::MAX / 2, 0] {
            let _ = signed_payload(sign(&p, n, b"\n}").as_bytes());
        }
    }
}
