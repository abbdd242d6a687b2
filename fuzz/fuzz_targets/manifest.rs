//! Manifest detection and parsing of hostile bodies must never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let body = bytes::Bytes::copy_from_slice(data);
    if let Ok(m) = ocirepl::manifest::RawManifest::from_body(body, None, ocirepl::digest::Algorithm::Sha256) {
        let _ = m.parse();
    }
});
