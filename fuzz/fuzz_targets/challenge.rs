//! `WWW-Authenticate` parsing must never panic, whatever a server sends.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = ocirepl::transport::auth::parse_challenge_list(s);
    }
});
