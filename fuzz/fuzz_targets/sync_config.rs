//! Fuzz target `sync_config`: see `fuzz/bodies.rs` for what it checks.
#![no_main]
#[path = "../bodies.rs"]
#[allow(dead_code)]
mod bodies;
libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::sync_config(data));
