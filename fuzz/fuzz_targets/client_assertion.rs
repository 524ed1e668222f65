//! Fuzz target: `wecom_oidc::fuzzing::client_assertion` (see src/fuzzing.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wecom_oidc::fuzzing::client_assertion(data));
