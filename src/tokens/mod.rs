//! Signing keys (load, generate, JWKS) and the one signer of id_tokens, plus the two hashes that
//! tie keys and tokens together: the RFC 7638 thumbprint (the `kid`) and OIDC's `at_hash`.

mod alg;
mod error;
mod es256;
mod jwk;
mod keystore;
mod manifest;
pub mod shared;
pub mod verify;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256, Sha384, Sha512};

pub use alg::SigningAlg;
pub use error::KeyError;
pub use jwk::jwk_thumbprint;
pub use keystore::{KeyInfo, KeyStore, Rotation};
pub use manifest::KeyStatus;
pub use shared::KeyRing;
pub use verify::{JwksVerifier, VerifyError};

/// The `at_hash` claim for `access_token` in an ID Token signed with `alg` (OIDC Core §3.1.3.6,
/// same rule for `c_hash` in §3.3.2.11): base64url of the left-most half of the hash of the
/// token's ASCII octets, where the hash is the one of the JWS algorithm.
///
/// - `*256` algorithms (RS256, ES256, PS256, HS256, ES256K): SHA-256, 16 bytes kept.
/// - `*384`: SHA-384, 24 bytes kept; `*512`: SHA-512, 32 bytes kept.
/// - `EdDSA`: OIDC Core 1.0 (even with errata set 2) names no hash for it, since the `alg` does
///   not fix the curve. The OpenID Connect WG's consensus (openid/connect issue #1125), followed
///   by openidconnect-rs, Keycloak and zitadel, is the hash of the curve's signature scheme:
///   SHA-512 for Ed25519 (RFC 8032 §5.1). This key store only makes Ed25519 EdDSA keys, so
///   `EdDSA` (and the fully specified `Ed25519` of RFC 9864) use SHA-512.
///
/// Callers pass [`KeyStore::signing_alg`], which is always one of the above. An unknown `alg`
/// falls back to SHA-256 with a warning rather than failing the token response.
pub fn at_hash(access_token: &str, alg: &str) -> String {
    let token = access_token.as_bytes();
    let digest: Vec<u8> = match alg {
        "RS256" | "ES256" | "PS256" | "HS256" | "ES256K" => Sha256::digest(token).to_vec(),
        "RS384" | "ES384" | "PS384" | "HS384" => Sha384::digest(token).to_vec(),
        "RS512" | "ES512" | "PS512" | "HS512" | "EdDSA" | "Ed25519" => {
            Sha512::digest(token).to_vec()
        }
        other => {
            tracing::warn!(alg = other, "no known hash for at_hash; using SHA-256");
            Sha256::digest(token).to_vec()
        }
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_oidc_core_example() {
        // OIDC Core 1.0 Appendix A.4 (response_type=id_token token): the RS256 ID Token's
        // at_hash for this access token.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn at_hash_keeps_the_left_half_of_the_algs_hash() {
        let token = "an-access-token";
        let half = |d: &[u8]| URL_SAFE_NO_PAD.encode(&d[..d.len() / 2]);
        let sha256 = half(&Sha256::digest(token));
        let sha384 = half(&Sha384::digest(token));
        let sha512 = half(&Sha512::digest(token));
        assert_eq!(at_hash(token, "ES256"), sha256);
        assert_eq!(at_hash(token, "PS256"), sha256);
        assert_eq!(at_hash(token, "RS384"), sha384);
        assert_eq!(at_hash(token, "RS512"), sha512);
        // 16, 24 and 32 bytes kept: 22, 32 and 43 base64url characters.
        assert_eq!(sha256.len(), 22);
        assert_eq!(sha384.len(), 32);
        assert_eq!(sha512.len(), 43);
    }

    #[test]
    fn at_hash_for_ed25519_eddsa_uses_sha512() {
        let token = "an-access-token";
        let d = Sha512::digest(token);
        assert_eq!(at_hash(token, "EdDSA"), URL_SAFE_NO_PAD.encode(&d[..32]));
        assert_eq!(at_hash(token, "Ed25519"), at_hash(token, "EdDSA"));
    }
}
