//! The ES256 signer (RFC 7518 §3.4): ECDSA over P-256 with SHA-256, the signature as the two
//! 32-byte big-endian integers R and S.
//!
//! josekit's own ES256 signer builds an OpenSSL signing context per signature (in OpenSSL 3 a
//! provider fetch with its lookups and allocations), asks for a DER signature and decodes the
//! DER back into R and S. This one hashes, signs the digest with the parsed key and pads R and
//! S: a quarter of the allocations of an ES256 token response and about 40,000 instructions
//! less (docs/performance.md). What is signed and how it verifies is unchanged.

use std::fmt;

use josekit::jws::{JwsAlgorithm, JwsSigner, ES256};
use josekit::JoseError;
use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};

/// The width of R and of S for P-256 (RFC 7518 §3.4).
const HALF: usize = 32;

/// An ES256 signer over a parsed P-256 private key.
#[derive(Clone)]
pub(crate) struct Es256Signer {
    key: EcKey<Private>,
}

impl Es256Signer {
    /// Parses a PEM P-256 private key (PKCS#8 or SEC 1). The error is a fixed description, as
    /// library messages may quote bytes of the key.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Es256Signer, &'static str> {
        let key = PKey::private_key_from_pem(pem)
            .and_then(|k| k.ec_key())
            .map_err(|_| "EC private key unusable for ES256")?;
        if key.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
            return Err("EC private key unusable for ES256");
        }
        key.check_key()
            .map_err(|_| "EC private key unusable for ES256")?;
        Ok(Es256Signer { key })
    }
}

// The key is never printed.
impl fmt::Debug for Es256Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Es256Signer").finish_non_exhaustive()
    }
}

impl JwsSigner for Es256Signer {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &ES256
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn signature_len(&self) -> usize {
        2 * HALF
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        let digest = openssl::sha::sha256(message);
        let fail = |e: openssl::error::ErrorStack| JoseError::InvalidSignature(e.into());
        let sig = EcdsaSig::sign(&digest, &self.key).map_err(fail)?;
        let mut out = sig.r().to_vec_padded(HALF as i32).map_err(fail)?;
        out.extend_from_slice(&sig.s().to_vec_padded(HALF as i32).map_err(fail)?);
        Ok(out)
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::JwsVerifier;

    #[test]
    fn signatures_are_r_and_s_that_josekits_es256_verifier_accepts_rfc7518_3_4() {
        let pem = crate::tokens::SigningAlg::Es256
            .generate_pem()
            .expect("generate");
        let signer = Es256Signer::from_pem(&pem).expect("parse");
        let pair = josekit::jwk::alg::ec::EcKeyPair::from_pem(
            &pem,
            Some(josekit::jwk::alg::ec::EcCurve::P256),
        )
        .expect("pair");
        let verifier = ES256
            .verifier_from_jwk(&pair.to_jwk_public_key())
            .expect("verifier");
        for message in [&b"header.payload"[..], b"", &[0xff; 1000]] {
            let signature = signer.sign(message).expect("sign");
            assert_eq!(signature.len(), 64);
            verifier.verify(message, &signature).expect("verifies");
            let mut tampered = message.to_vec();
            tampered.push(b'x');
            assert!(verifier.verify(&tampered, &signature).is_err());
        }
        // ECDSA draws a fresh k each time (OpenSSL's CSPRNG): two signatures differ.
        assert_ne!(
            signer.sign(b"m").expect("sign"),
            signer.sign(b"m").expect("sign")
        );
    }

    #[test]
    fn keys_of_other_curves_and_types_are_refused() {
        let p384 =
            EcKey::generate(&openssl::ec::EcGroup::from_curve_name(Nid::SECP384R1).expect("group"))
                .expect("key");
        let pem = PKey::from_ec_key(p384)
            .expect("pkey")
            .private_key_to_pem_pkcs8()
            .expect("pem");
        assert!(Es256Signer::from_pem(&pem).is_err());
        let rsa = openssl::rsa::Rsa::generate(2048).expect("rsa");
        let pem = PKey::from_rsa(rsa)
            .expect("pkey")
            .private_key_to_pem_pkcs8()
            .expect("pem");
        assert!(Es256Signer::from_pem(&pem).is_err());
        assert!(Es256Signer::from_pem(b"not a key").is_err());
    }
}
