//! What a test does when a service it needs is missing: skip on a developer's machine, fail in
//! CI. Test support, below every layer so any test code may use it.

/// A test cannot find a service it needs (PostgreSQL, nginx, Chromium …). Under `CI=true` the
/// test fails — a CI run must not pass by skipping what it was meant to exercise; elsewhere it
/// prints why, and the caller returns.
pub fn service_missing(test: &str, why: &str) {
    if in_ci() {
        panic!("{test}: {why} (required when CI=true)");
    }
    println!("{test}: skipped: {why}");
}

/// Whether this run is a CI run (`CI=true` or `CI=1`, as CI systems set it).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
