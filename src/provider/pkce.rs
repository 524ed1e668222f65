//! Proof Key for Code Exchange (RFC 7636), S256 only: `plain` protects nothing against an
//! attacker who sees the authorization request (RFC 9700 §2.1.1).

use crate::random::{constant_time_eq, hash_secret};

/// Whether `s` is a valid `code_verifier` or S256 `code_challenge` shape: 43–128 characters of
/// `[A-Za-z0-9-._~]` (RFC 7636 §4.1, §4.2).
pub fn is_well_formed(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `verifier` matches the S256 `challenge` (RFC 7636 §4.6), compared in constant time.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    is_well_formed(verifier)
        && constant_time_eq(hash_secret(verifier).as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_example_verifies() {
        assert!(verify_s256(VERIFIER, CHALLENGE));
    }

    #[test]
    fn wrong_verifier_is_refused() {
        let mut wrong = VERIFIER.to_string();
        wrong.replace_range(0..1, "e");
        assert!(!verify_s256(&wrong, CHALLENGE));
    }

    #[test]
    fn plain_method_equivalent_is_refused() {
        // A client that sent the verifier itself as the challenge ("plain") must not pass.
        assert!(!verify_s256(VERIFIER, VERIFIER));
    }

    #[test]
    fn verifier_shape_is_enforced_rfc7636_section_4_1() {
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&"a".repeat(129)));
        assert!(is_well_formed(&"a".repeat(128)));
        assert!(!is_well_formed(&format!("{}+", "a".repeat(43))));
        assert!(!verify_s256("short", CHALLENGE));
    }
}
