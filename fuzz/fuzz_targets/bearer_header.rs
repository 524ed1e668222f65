//! Fuzz target: `wecom_oidc::fuzzing::bearer_header` (see src/fuzzing.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wecom_oidc::fuzzing::bearer_header(data));
