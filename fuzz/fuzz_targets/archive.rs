//! Fuzz target `archive`: see `fuzz/bodies.rs` for what it checks.
#![no_main]
#[path = "../bodies.rs"]
#[allow(dead_code)]
mod bodies;
libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::archive(data));
