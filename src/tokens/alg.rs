//! The signing algorithms the key store supports, and per algorithm: key generation, parsing of
//! a PKCS#8 PEM private key, its public JWK members and its josekit signer.
//!
//! Adding an algorithm means adding a [`SigningAlg`] variant and one arm in each `match` here.

use std::fmt;
use std::str::FromStr;

use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::ed::{EdCurve, EdKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jwk::{Jwk, KeyPair};
use josekit::jws::{EdDSA, JwsSigner, JwsVerifier, ES256, RS256};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::KeyError;

/// RSA modulus size for generated keys and the minimum accepted on load (RFC 7518 §3.3: "a key of
/// size 2048 bits or larger MUST be used").
const RSA_BITS: u32 = 2048;

/// A JWS algorithm (RFC 7518 §3.1, RFC 8037 §3.1) that the key store can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA key of at least 2048 bits. The one every OIDC client
    /// must support (OIDC Core §15.1), hence the default.
    #[serde(rename = "RS256")]
    Rs256,
    /// ECDSA with P-256 and SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// EdDSA with Ed25519 (RFC 8037). Ed448 keys are rejected.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    /// The JWS `alg` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    /// The JWK `kty` of keys for this algorithm.
    pub(crate) fn key_type(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RSA",
            SigningAlg::Es256 => "EC",
            SigningAlg::EdDsa => "OKP",
        }
    }

    /// Prefix of key file names, so an operator can tell the keys apart with `ls`.
    pub(crate) fn file_prefix(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "rs256",
            SigningAlg::Es256 => "es256",
            SigningAlg::EdDsa => "eddsa",
        }
    }

    /// Every supported algorithm, in the order key files of unknown type are tried.
    pub(crate) const ALL: [SigningAlg; 3] =
        [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa];

    /// The public members of the JWK (besides `kty`), as RFC 7638 §3.2 lists them. Only these
    /// are copied into the JWKS, so no private member can ever leak into it.
    fn public_members(self) -> &'static [&'static str] {
        match self {
            SigningAlg::Rs256 => &["n", "e"],
            SigningAlg::Es256 => &["crv", "x", "y"],
            SigningAlg::EdDsa => &["crv", "x"],
        }
    }

    /// Generates a new private key, returned as PKCS#8 PEM.
    pub(crate) fn generate_pem(self) -> Result<Vec<u8>, KeyError> {
        let fail = |_| KeyError::Generate {
            alg: self.as_str(),
            reason: "the crypto library could not generate the key".to_owned(),
        };
        // `to_pem_private_key` writes PKCS#8 ("BEGIN PRIVATE KEY") for every key type.
        Ok(match self {
            SigningAlg::Rs256 => RS256
                .generate_key_pair(RSA_BITS)
                .map_err(fail)?
                .to_pem_private_key(),
            SigningAlg::Es256 => ES256
                .generate_key_pair()
                .map_err(fail)?
                .to_pem_private_key(),
            SigningAlg::EdDsa => EdDSA
                .generate_key_pair(EdCurve::Ed25519)
                .map_err(fail)?
                .to_pem_private_key(),
        })
    }

    /// Parses a PEM private key of this algorithm's type into its public JWK members and a
    /// signer. The error is a fixed description: library messages are not passed on because they
    /// may quote bytes of the key.
    pub(crate) fn parse_pem(self, pem: &[u8]) -> Result<ParsedKey, &'static str> {
        if contains(pem, b"ENCRYPTED PRIVATE KEY") {
            return Err(
                "encrypted private keys are not supported; store it unencrypted with mode 0600",
            );
        }
        let (jwk, signer): (Jwk, Box<dyn JwsSigner>) = match self {
            SigningAlg::Rs256 => {
                let pair = RsaKeyPair::from_pem(pem).map_err(|_| "not a PEM RSA private key")?;
                if pair.key_len() * 8 < RSA_BITS {
                    return Err("RSA key shorter than 2048 bits (RFC 7518 §3.3)");
                }
                let signer = RS256
                    .signer_from_pem(pem)
                    .map_err(|_| "RSA private key unusable for RS256")?;
                (pair.to_jwk_public_key(), Box::new(signer))
            }
            SigningAlg::Es256 => {
                let pair = EcKeyPair::from_pem(pem, Some(EcCurve::P256))
                    .map_err(|_| "not a PEM P-256 EC private key")?;
                let signer = super::es256::Es256Signer::from_pem(pem)?;
                (pair.to_jwk_public_key(), Box::new(signer))
            }
            SigningAlg::EdDsa => {
                let pair = EdKeyPair::from_pem(pem).map_err(|_| "not a PEM Ed25519 private key")?;
                if pair.curve() != EdCurve::Ed25519 {
                    return Err("Ed448 keys are not supported, only Ed25519");
                }
                let signer = EdDSA
                    .signer_from_pem(pem)
                    .map_err(|_| "Ed25519 private key unusable for EdDSA")?;
                (pair.to_jwk_public_key(), Box::new(signer))
            }
        };
        let mut members = Map::new();
        members.insert("kty".to_owned(), Value::from(self.key_type()));
        for name in self.public_members() {
            let value = jwk
                .parameter(name)
                .and_then(Value::as_str)
                .ok_or("the public key lacks a required JWK member")?;
            members.insert((*name).to_owned(), Value::from(value));
        }
        Ok(ParsedKey { members, signer })
    }

    /// A verifier for this algorithm from a key's public JWK members (as [`ParsedKey::members`]
    /// holds them), used to check tokens we issued earlier (`id_token_hint`).
    pub(crate) fn verifier(
        self,
        members: &Map<String, Value>,
    ) -> Result<Box<dyn JwsVerifier>, &'static str> {
        let jwk = Jwk::from_map(members.clone()).map_err(|_| "not a valid public JWK")?;
        Ok(match self {
            SigningAlg::Rs256 => Box::new(
                RS256
                    .verifier_from_jwk(&jwk)
                    .map_err(|_| "RSA public key unusable for RS256")?,
            ),
            SigningAlg::Es256 => Box::new(
                ES256
                    .verifier_from_jwk(&jwk)
                    .map_err(|_| "EC public key unusable for ES256")?,
            ),
            SigningAlg::EdDsa => Box::new(
                EdDSA
                    .verifier_from_jwk(&jwk)
                    .map_err(|_| "Ed25519 public key unusable for EdDSA")?,
            ),
        })
    }

    /// Finds which supported algorithm `pem` is a key for.
    pub(crate) fn detect(pem: &[u8]) -> Option<(SigningAlg, ParsedKey)> {
        Self::ALL
            .into_iter()
            .find_map(|alg| alg.parse_pem(pem).ok().map(|parsed| (alg, parsed)))
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlg {
    type Err = KeyError;

    /// Parses a JWS `alg` value; names are case-sensitive (RFC 7515 §4.1.1).
    fn from_str(s: &str) -> Result<Self, KeyError> {
        SigningAlg::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| KeyError::UnsupportedAlg(s.to_owned()))
    }
}

/// A private key parsed from PEM.
pub(crate) struct ParsedKey {
    /// `kty` and the public members, in JWK order; the input of the thumbprint and of the JWKS.
    pub(crate) members: Map<String, Value>,
    /// The signer, built once here so that signing does no parsing.
    pub(crate) signer: Box<dyn JwsSigner>,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alg_names_round_trip_and_are_case_sensitive() {
        for alg in SigningAlg::ALL {
            assert_eq!(alg.as_str().parse::<SigningAlg>().ok(), Some(alg));
            let json = serde_json::to_string(&alg).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", alg.as_str()));
        }
        assert!("rs256".parse::<SigningAlg>().is_err());
        assert!("none".parse::<SigningAlg>().is_err());
    }

    #[test]
    fn each_generated_key_is_detected_as_its_own_alg() {
        for alg in SigningAlg::ALL {
            let pem = alg.generate_pem().expect("generate");
            assert!(
                pem.starts_with(b"-----BEGIN PRIVATE KEY-----"),
                "{alg} PKCS#8"
            );
            let (detected, parsed) = SigningAlg::detect(&pem).expect("detect");
            assert_eq!(detected, alg);
            let names: Vec<&str> = parsed.members.keys().map(String::as_str).collect();
            let mut expected = vec!["kty"];
            expected.extend_from_slice(alg.public_members());
            assert_eq!(names, expected);
            for other in SigningAlg::ALL.into_iter().filter(|o| *o != alg) {
                assert!(
                    other.parse_pem(&pem).is_err(),
                    "{alg} key parsed as {other}"
                );
            }
        }
    }

    #[test]
    fn encrypted_and_garbage_pem_are_rejected() {
        let encrypted =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(SigningAlg::Rs256.parse_pem(encrypted).is_err());
        assert!(SigningAlg::detect(b"hello").is_none());
        assert!(SigningAlg::detect(b"").is_none());
    }
}
