//! Verifying compact JWS signatures against a JWK Set (RFC 7515, RFC 7517): client assertions
//! (`private_key_jwt`, RFC 7523) against a client's registered keys, and our own JWT access
//! tokens (RFC 9068) against our published keys.
//!
//! Only the signature and the header are checked here; what the claims must say is the caller's
//! business. `none` and the HMAC algorithms are never accepted: a JWK Set holds public keys.

use josekit::jwk::Jwk;
use josekit::jws::{
    EdDSA, JwsVerifier, ES256, ES384, ES512, PS256, PS384, PS512, RS256, RS384, RS512,
};
use serde_json::{Map, Value};

/// The JWS algorithms a [`JwksVerifier`] accepts (advertised for client assertions in discovery's
/// `token_endpoint_auth_signing_alg_values_supported`).
pub const VERIFY_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];

/// Why a JWS was not accepted. The messages never quote the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The JWK Set itself is unusable (not `{"keys":[…]}` or no usable signing key).
    #[error("unusable JWK Set: {0}")]
    BadKeySet(String),
    /// The token is not a compact JWS with a JSON object header and payload.
    #[error("malformed JWS")]
    Malformed,
    /// The header names an algorithm we do not accept (`none`, HMAC, unknown).
    #[error("JWS algorithm not accepted")]
    UnsupportedAlg,
    /// No key of the set fits the header's `kid` and `alg`, or none verifies the signature.
    #[error("JWS signature does not verify with any registered key")]
    BadSignature,
}

/// A verified JWS: its header and its claims.
pub type Verified = (Map<String, Value>, Map<String, Value>);

/// One usable key: its `kid`, and a verifier per algorithm it may be used with.
struct KeyEntry {
    kid: Option<String>,
    verifiers: Vec<Box<dyn JwsVerifier>>,
}

/// Verifiers built once from a JWK Set.
pub struct JwksVerifier {
    keys: Vec<KeyEntry>,
}

impl std::fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksVerifier")
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// The algorithms a key may verify: its `alg` if it names one, else every accepted algorithm of
/// its key type (RFC 7517 §4.4 makes `alg` optional).
fn algs_for(jwk: &Jwk) -> Vec<&'static str> {
    if let Some(alg) = jwk.algorithm() {
        return VERIFY_ALGS.iter().copied().filter(|a| *a == alg).collect();
    }
    match (jwk.key_type(), jwk.curve()) {
        ("RSA", _) => vec!["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
        ("EC", Some("P-256")) => vec!["ES256"],
        ("EC", Some("P-384")) => vec!["ES384"],
        ("EC", Some("P-521")) => vec!["ES512"],
        ("OKP", Some("Ed25519")) => vec!["EdDSA"],
        _ => Vec::new(),
    }
}

fn verifier(alg: &str, jwk: &Jwk) -> Option<Box<dyn JwsVerifier>> {
    let v: Box<dyn JwsVerifier> = match alg {
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk).ok()?),
        "RS384" => Box::new(RS384.verifier_from_jwk(jwk).ok()?),
        "RS512" => Box::new(RS512.verifier_from_jwk(jwk).ok()?),
        "PS256" => Box::new(PS256.verifier_from_jwk(jwk).ok()?),
        "PS384" => Box::new(PS384.verifier_from_jwk(jwk).ok()?),
        "PS512" => Box::new(PS512.verifier_from_jwk(jwk).ok()?),
        "ES256" => Box::new(ES256.verifier_from_jwk(jwk).ok()?),
        "ES384" => Box::new(ES384.verifier_from_jwk(jwk).ok()?),
        "ES512" => Box::new(ES512.verifier_from_jwk(jwk).ok()?),
        "EdDSA" => Box::new(EdDSA.verifier_from_jwk(jwk).ok()?),
        _ => return None,
    };
    Some(v)
}

impl JwksVerifier {
    /// Builds verifiers from a JWK Set (`{"keys":[…]}`). Keys meant for encryption (`use` other
    /// than `sig`) and keys of unsupported types are skipped; a set with no usable key is an error.
    pub fn from_jwks(set: &Value) -> Result<Self, VerifyError> {
        let keys = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| VerifyError::BadKeySet("expected {\"keys\":[...]}".into()))?;
        let mut entries = Vec::new();
        for key in keys {
            let Some(map) = key.as_object() else {
                continue;
            };
            // A private key in a client's registration would be a leak waiting to happen, but
            // its public half still verifies; josekit ignores the private members.
            let Ok(jwk) = Jwk::from_map(map.clone()) else {
                continue;
            };
            // The verifiers are built without the kid: josekit would otherwise insist on a kid
            // in every header, and the kid is matched here instead.
            let mut bare = map.clone();
            bare.remove("kid");
            let Ok(bare) = Jwk::from_map(bare) else {
                continue;
            };
            if jwk.key_use().is_some_and(|u| u != "sig") {
                continue;
            }
            let verifiers: Vec<Box<dyn JwsVerifier>> = algs_for(&jwk)
                .into_iter()
                .filter_map(|alg| verifier(alg, &bare))
                .collect();
            if !verifiers.is_empty() {
                entries.push(KeyEntry {
                    kid: jwk.key_id().map(str::to_string),
                    verifiers,
                });
            }
        }
        if entries.is_empty() {
            return Err(VerifyError::BadKeySet(
                "no usable signing key (RSA, EC P-256/384/521 or Ed25519)".into(),
            ));
        }
        Ok(Self { keys: entries })
    }

    /// Verifies a compact JWS and returns its header and claims. The key is chosen by the
    /// header's `kid` when present, otherwise every key whose algorithm fits is tried.
    pub fn verify(&self, token: &str) -> Result<Verified, VerifyError> {
        let header = decode_header(token)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(VerifyError::Malformed)?;
        if !VERIFY_ALGS.contains(&alg) {
            return Err(VerifyError::UnsupportedAlg);
        }
        let kid = header.get("kid").and_then(Value::as_str);
        for entry in &self.keys {
            if kid.is_some() && entry.kid.as_deref() != kid {
                continue;
            }
            for v in entry
                .verifiers
                .iter()
                .filter(|v| v.algorithm().name() == alg)
            {
                if let Ok((payload, _)) = josekit::jws::deserialize_compact(token, v.as_ref()) {
                    let claims: Map<String, Value> =
                        serde_json::from_slice(&payload).map_err(|_| VerifyError::Malformed)?;
                    return Ok((header, claims));
                }
            }
        }
        Err(VerifyError::BadSignature)
    }
}

/// The decoded header of a compact JWS, without verifying anything.
pub fn decode_header(token: &str) -> Result<Map<String, Value>, VerifyError> {
    decode_part(token, 0)
}

/// The decoded payload of a compact JWS, *without verifying the signature*: only for choosing
/// which key set to verify with (a client assertion's `iss`), never for trusting the contents.
pub fn decode_unverified_claims(token: &str) -> Result<Map<String, Value>, VerifyError> {
    decode_part(token, 1)
}

fn decode_part(token: &str, index: usize) -> Result<Map<String, Value>, VerifyError> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(VerifyError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(parts[index])
        .map_err(|_| VerifyError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| VerifyError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::JwsHeader;

    fn sign(jwk: &Jwk, alg: &str, kid: Option<&str>, claims: &Value) -> String {
        let mut h = JwsHeader::new();
        h.set_token_type("JWT");
        if let Some(k) = kid {
            h.set_key_id(k);
        }
        let payload = serde_json::to_vec(claims).expect("json");
        match alg {
            "RS256" => josekit::jws::serialize_compact(
                &payload,
                &h,
                &RS256.signer_from_jwk(jwk).expect("signer"),
            ),
            "ES256" => josekit::jws::serialize_compact(
                &payload,
                &h,
                &ES256.signer_from_jwk(jwk).expect("signer"),
            ),
            _ => unreachable!("test helper"),
        }
        .expect("sign")
    }

    fn public_set(jwk: &Jwk, kid: &str) -> Value {
        let mut public = jwk.to_public_key().expect("public");
        public.set_key_id(kid);
        serde_json::json!({ "keys": [Value::Object(public.as_ref().clone())] })
    }

    #[test]
    fn signature_from_a_registered_key_verifies_rfc7515() {
        let key = Jwk::generate_ec_key(josekit::jwk::alg::ec::EcCurve::P256).expect("key");
        let v = JwksVerifier::from_jwks(&public_set(&key, "k1")).expect("set");
        let token = sign(&key, "ES256", Some("k1"), &serde_json::json!({"iss": "a"}));
        let (header, claims) = v.verify(&token).expect("verifies");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(claims["iss"], "a");
        // Without a kid the key is found by algorithm.
        let token = sign(&key, "ES256", None, &serde_json::json!({"iss": "b"}));
        assert_eq!(v.verify(&token).expect("verifies").1["iss"], "b");
    }

    #[test]
    fn another_keys_signature_alg_none_and_tampering_are_refused() {
        let key = Jwk::generate_ec_key(josekit::jwk::alg::ec::EcCurve::P256).expect("key");
        let other = Jwk::generate_ec_key(josekit::jwk::alg::ec::EcCurve::P256).expect("key");
        let v = JwksVerifier::from_jwks(&public_set(&key, "k1")).expect("set");
        let forged = sign(
            &other,
            "ES256",
            Some("k1"),
            &serde_json::json!({"iss": "a"}),
        );
        assert_eq!(v.verify(&forged), Err(VerifyError::BadSignature));
        // alg=none with an empty signature.
        let none = format!(
            "{}.{}.",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                br#"{"alg":"none"}"#
            ),
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                br#"{"iss":"a"}"#
            )
        );
        assert_eq!(v.verify(&none), Err(VerifyError::UnsupportedAlg));
        let good = sign(&key, "ES256", Some("k1"), &serde_json::json!({"iss": "a"}));
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        parts[1] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"iss":"evil"}"#,
        );
        assert_eq!(v.verify(&parts.join(".")), Err(VerifyError::BadSignature));
        assert_eq!(v.verify("not-a-jwt"), Err(VerifyError::Malformed));
    }

    #[test]
    fn rsa_key_without_alg_verifies_rs256() {
        let key = Jwk::generate_rsa_key(2048).expect("key");
        let v = JwksVerifier::from_jwks(&public_set(&key, "r")).expect("set");
        let token = sign(&key, "RS256", Some("r"), &serde_json::json!({"sub": "x"}));
        assert_eq!(v.verify(&token).expect("verifies").1["sub"], "x");
    }

    #[test]
    fn set_without_usable_keys_is_refused() {
        assert!(JwksVerifier::from_jwks(&serde_json::json!({"keys": []})).is_err());
        assert!(JwksVerifier::from_jwks(&serde_json::json!({"kty": "RSA"})).is_err());
        assert!(JwksVerifier::from_jwks(
            &serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})
        )
        .is_err());
    }
}
