//! JWK thumbprints (RFC 7638), which give every key its `kid`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::KeyError;

/// The RFC 7638 SHA-256 thumbprint of `jwk`, base64url-encoded without padding.
///
/// RFC 7638 §3.2: only the required members of the key type take part (RSA: `e`, `kty`, `n`;
/// EC: `crv`, `kty`, `x`, `y`; OKP (RFC 8037 §2): `crv`, `kty`, `x`; oct: `k`, `kty`), in
/// lexicographic order, with no whitespace; every other member (`kid`, `alg`, `use`, private
/// members …) is ignored, so the thumbprint of a private JWK equals that of its public half.
pub fn jwk_thumbprint(jwk: &Value) -> Result<String, KeyError> {
    let obj = jwk.as_object().ok_or_else(|| KeyError::InvalidJwk {
        reason: "not a JSON object".to_owned(),
    })?;
    let kty = obj
        .get("kty")
        .and_then(Value::as_str)
        .ok_or_else(|| KeyError::InvalidJwk {
            reason: "member \"kty\" is missing or not a string".to_owned(),
        })?;
    // Already in lexicographic order (RFC 7638 §3.3 step 1).
    let required: &[&str] = match kty {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "oct" => &["k", "kty"],
        other => {
            return Err(KeyError::InvalidJwk {
                reason: format!("unsupported key type {other:?}"),
            })
        }
    };
    let mut canonical = String::with_capacity(512);
    canonical.push('{');
    for (i, name) in required.iter().enumerate() {
        let value = obj
            .get(*name)
            .and_then(Value::as_str)
            .ok_or_else(|| KeyError::InvalidJwk {
                reason: format!("member {name:?} is missing or not a string"),
            })?;
        if i > 0 {
            canonical.push(',');
        }
        // RFC 7638 §3.3: member names and string values are written as JSON strings, with no
        // whitespace; serde_json's string encoding escapes exactly what JSON requires.
        canonical.push_str(&Value::from(*name).to_string());
        canonical.push(':');
        canonical.push_str(&Value::from(value).to_string());
    }
    canonical.push('}');
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    /// RFC 7638 §3.1: the example RSA key.
    fn rfc7638_example() -> Value {
        json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        })
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        assert_eq!(
            jwk_thumbprint(&rfc7638_example()).ok().as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    /// The thumbprint of the RFC 7638 example changed by `change`.
    fn thumbprint_of_example_with(change: impl FnOnce(&mut Map<String, Value>)) -> Option<String> {
        let mut jwk = rfc7638_example();
        if let Some(obj) = jwk.as_object_mut() {
            change(obj);
        }
        jwk_thumbprint(&jwk).ok()
    }

    #[test]
    fn thumbprint_ignores_optional_and_private_members() {
        let with_extras = thumbprint_of_example_with(|obj| {
            obj.remove("kid");
            obj.insert("use".into(), json!("sig"));
            obj.insert("d".into(), json!("c2VjcmV0"));
        });
        assert_eq!(with_extras, jwk_thumbprint(&rfc7638_example()).ok());
    }

    #[test]
    fn thumbprint_depends_on_required_members() {
        let other = thumbprint_of_example_with(|obj| {
            obj.insert("e".into(), json!("AQAC"));
        });
        assert!(other.is_some());
        assert_ne!(other, jwk_thumbprint(&rfc7638_example()).ok());
    }

    #[test]
    fn thumbprint_rejects_missing_members_and_unknown_types() {
        assert!(jwk_thumbprint(&json!({"kty": "RSA", "e": "AQAB"})).is_err());
        assert!(jwk_thumbprint(&json!({"kty": "EC", "crv": "P-256", "x": "AA"})).is_err());
        assert!(jwk_thumbprint(&json!({"kty": "XYZ"})).is_err());
        assert!(jwk_thumbprint(&json!({"e": "AQAB", "n": "AA"})).is_err());
        assert!(jwk_thumbprint(&json!(["kty", "RSA"])).is_err());
        assert!(jwk_thumbprint(&json!({"kty": "RSA", "e": 65537, "n": "AA"})).is_err());
    }

    #[test]
    fn thumbprint_covers_ec_and_okp_members() {
        let ec = json!({"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ", "d": "ZA"});
        let ec_public = json!({"y": "eQ", "x": "eA", "kty": "EC", "crv": "P-256"});
        assert_eq!(jwk_thumbprint(&ec).ok(), jwk_thumbprint(&ec_public).ok());
        // Computed independently: SHA-256 of the canonical form written out by hand.
        let okp = json!({"kty": "OKP", "crv": "Ed25519", "x": "eA"});
        let expected =
            URL_SAFE_NO_PAD.encode(Sha256::digest(br#"{"crv":"Ed25519","kty":"OKP","x":"eA"}"#));
        assert_eq!(jwk_thumbprint(&okp).ok(), Some(expected));
    }
}
