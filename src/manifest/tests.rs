use super::*;
use crate::media;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn image(media_type_field: bool) -> String {
    let mt = if media_type_field {
        format!(r#""mediaType":"{}","#, media::OCI_MANIFEST)
    } else {
        String::new()
    };
    format!(
        r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"{}","digest":"{D1}","size":7}},"layers":[{{"mediaType":"{}","digest":"{D2}","size":9}}]}}"#,
        media::OCI_CONFIG,
        media::OCI_LAYER_GZIP
    )
}

fn raw(body: &str, ct: Option<&str>) -> Result<RawManifest, ManifestError> {
    RawManifest::from_body(Bytes::from(body.to_string()), ct, Algorithm::Sha256)
}

#[test]
fn keeps_bytes_and_digests_them() {
    let body = image(true);
    let m = raw(&body, Some(media::OCI_MANIFEST)).unwrap();
    assert_eq!(m.bytes, body.as_bytes());
    assert_eq!(m.digest, Digest::sha256(body.as_bytes()));
    assert_eq!(m.media_type, MediaType::OciManifest);
    match m.parse().unwrap() {
        Parsed::Image(i) => {
            assert_eq!(i.config.digest.to_string(), D1);
            assert_eq!(i.layers.len(), 1);
            assert_eq!(i.layers[0].size, 9);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn media_type_from_header_field_or_shape() {
    // Content-Type parameters are ignored.
    let m = raw(
        &image(true),
        Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
    );
    assert_eq!(m.unwrap().media_type, MediaType::OciManifest);
    // No field: the header decides (Docker v2s2 bodies without mediaType do not exist, but
    // OCI ones do).
    assert_eq!(
        raw(&image(false), Some(media::DOCKER_V2S2))
            .unwrap()
            .media_type,
        MediaType::DockerV2S2
    );
    // Neither: the shape decides.
    assert_eq!(
        raw(&image(false), None).unwrap().media_type,
        MediaType::OciManifest
    );
    assert_eq!(
        raw(&image(false), Some("application/octet-stream"))
            .unwrap()
            .media_type,
        MediaType::OciManifest
    );
    let idx = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{D1}","size":3}}]}}"#,
        media::OCI_MANIFEST
    );
    assert_eq!(raw(&idx, None).unwrap().media_type, MediaType::OciIndex);
}

#[test]
fn rejects_contradictions_and_ambiguity() {
    assert!(matches!(
        raw(&image(true), Some(media::DOCKER_V2S2)),
        Err(ManifestError::MediaTypeMismatch { .. })
    ));
    let both = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{D1}","size":1}},"layers":[],"manifests":[]}}"#
    );
    assert!(matches!(
        raw(&both, None),
        Err(ManifestError::Ambiguous(..))
    ));
    let idx_with_layers = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","layers":[]}}"#,
        media::OCI_INDEX
    );
    assert!(matches!(
        raw(&idx_with_layers, None),
        Err(ManifestError::Ambiguous(..))
    ));
}

#[test]
fn rejects_bad_json() {
    for bad in [
        "",
        "{",
        "[]",
        r#"{"schemaVersion":2} trailing"#,
        r#"{"schemaVersion":2,"schemaVersion":2,"manifests":[]}"#,
        r#"{"mediaType":"a","mediaType":"b"}"#,
    ] {
        assert!(
            matches!(raw(bad, None), Err(ManifestError::Json(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(
        raw(r#"{"schemaVersion":3}"#, None),
        Err(ManifestError::SchemaVersion(3))
    ));
    assert!(matches!(
        raw(r#"{"schemaVersion":2}"#, None),
        Err(ManifestError::Unknown)
    ));
}

#[test]
fn descriptors_are_validated_on_parse() {
    let bad_digest = image(true).replace(D2, "sha256:../../x");
    let m = raw(&bad_digest, None).unwrap();
    assert!(m.parse().is_err());
    let negative = image(true).replace(r#""size":9"#, r#""size":-9"#);
    assert!(raw(&negative, None).unwrap().parse().is_err());
}

#[test]
fn unknown_artifact_types_are_kept() {
    let art = image(false).replacen(
        "{",
        r#"{"mediaType":"application/vnd.example.thing+json","#,
        1,
    );
    let m = raw(&art, Some("application/vnd.example.thing+json")).unwrap();
    assert_eq!(m.media_type.as_str(), "application/vnd.example.thing+json");
    assert!(matches!(m.parse().unwrap(), Parsed::Image(_)));
    let opaque = raw(
        r#"{"mediaType":"application/vnd.example.blob+json","x":1}"#,
        None,
    )
    .unwrap();
    assert!(matches!(opaque.parse().unwrap(), Parsed::Opaque));
}

#[test]
fn schema1_signed_digest_is_over_the_stripped_payload() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = format!(
        "{{\n   \"schemaVersion\": 1,\n   \"name\": \"a/b\",\n   \"tag\": \"t\",\n   \"fsLayers\": [{{\"blobSum\": \"{D1}\"}}],\n   \"history\": [{{\"v1Compatibility\": \"{{}}\"}}]\n}}"
    );
    // libtrust cuts the document before its closing "\n}" and signs that prefix.
    let cut = payload.len() - 2;
    let protected = b64.encode(format!(
        r#"{{"formatLength":{cut},"formatTail":"{}","time":"2020-01-01T00:00:00Z"}}"#,
        b64.encode("\n}")
    ));
    let signed = format!(
        "{},\n   \"signatures\": [{{\"header\": {{}}, \"signature\": \"x\", \"protected\": \"{protected}\"}}]\n}}",
        &payload[..cut]
    );
    let m = raw(&signed, Some(media::DOCKER_V2S1_SIGNED)).unwrap();
    assert_eq!(m.media_type, MediaType::DockerV2S1Signed);
    assert_eq!(m.digest, Digest::sha256(payload.as_bytes()));
    assert_ne!(m.digest, Digest::sha256(signed.as_bytes()));
    match m.parse().unwrap() {
        Parsed::Schema1(s) => assert_eq!(s.fs_layers.len(), 1),
        other => panic!("{other:?}"),
    }
    // Without a header the signature block identifies it.
    assert_eq!(
        raw(&signed, None).unwrap().media_type,
        MediaType::DockerV2S1Signed
    );
    assert_eq!(
        raw(&payload, None).unwrap().media_type,
        MediaType::DockerV2S1
    );
}
