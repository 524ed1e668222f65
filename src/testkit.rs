//! Support shared by the test suites (unit tests, `tests/`, the fuzz targets); not product.

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

#[cfg(test)]
mod tests {
    #[test]
    fn ci_is_read_from_the_environment_variable() {
        // Only reads; the variable itself is the CI system's.
        let expected = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert_eq!(super::in_ci(), expected);
    }
}
