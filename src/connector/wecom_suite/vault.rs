//! Secrets the suite keeps in the store — the latest `suite_ticket` and each customer corp's
//! `permanent_code` (wecom-api.md §8) — sealed with AES-256-GCM under a key from the
//! configuration (`store_key` / `store_key_env`), so a copy of the store alone gives neither.
//!
//! The record's store key is the AEAD's associated data: a sealed permanent code moved under
//! another corp's key does not open.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};

/// Format marker of a sealed value, so a future key or cipher change can be told apart.
const PREFIX: &str = "v1:";
/// GCM nonce length (NIST SP 800-38D: 96 bits).
const NONCE: usize = 12;
/// GCM tag length.
const TAG: usize = 16;

/// AES-256-GCM with a key derived from the configured secret. `Debug` shows nothing.
#[derive(Clone)]
pub(crate) struct Vault {
    key: [u8; 32],
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault([redacted])")
    }
}

/// Why a sealed value did not open (wrong key, tampered, or not a sealed value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a sealed suite secret cannot be opened (wrong store_key, or the record was altered)")]
pub(crate) struct SealError;

impl Vault {
    /// The key is SHA-256 of the configured secret: operators may give any long random string
    /// (the configuration requires at least 32 characters), not only 32 raw bytes.
    pub(crate) fn new(secret: &str) -> Self {
        Self {
            key: openssl::sha::sha256(secret.as_bytes()),
        }
    }

    /// `v1:` ‖ base64(nonce ‖ ciphertext ‖ tag), bound to `record_key`.
    pub(crate) fn seal(&self, record_key: &str, plain: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE];
        openssl::rand::rand_bytes(&mut nonce).map_err(|_| SealError)?;
        let mut tag = [0u8; TAG];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            record_key.as_bytes(),
            plain.as_bytes(),
            &mut tag,
        )
        .map_err(|_| SealError)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// The plaintext of a value [`Self::seal`]ed under `record_key`.
    pub(crate) fn open(&self, record_key: &str, sealed: &str) -> Result<String, SealError> {
        let raw = STANDARD
            .decode(sealed.strip_prefix(PREFIX).ok_or(SealError)?)
            .map_err(|_| SealError)?;
        if raw.len() < NONCE + TAG {
            return Err(SealError);
        }
        let (nonce, rest) = raw.split_at(NONCE);
        let (ct, tag) = rest.split_at(rest.len() - TAG);
        let plain = decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(nonce),
            record_key.as_bytes(),
            ct,
            tag,
        )
        .map_err(|_| SealError)?;
        String::from_utf8(plain).map_err(|_| SealError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_opens_only_with_its_key_and_record() {
        let v = Vault::new("a-long-store-key-for-the-suite-tests-0123");
        let sealed = v.seal("corp:A", "permanent-code-1").expect("seals");
        assert!(!sealed.contains("permanent-code-1"));
        assert_eq!(v.open("corp:A", &sealed).as_deref(), Ok("permanent-code-1"));
        assert_eq!(v.open("corp:B", &sealed), Err(SealError));
        let other = Vault::new("another-long-store-key-for-the-suite-0123");
        assert_eq!(other.open("corp:A", &sealed), Err(SealError));
        assert_eq!(v.open("corp:A", "permanent-code-1"), Err(SealError));
        assert!(!format!("{v:?}").contains("store-key"));
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let v = Vault::new("a-long-store-key-for-the-suite-tests-0123");
        assert_ne!(v.seal("k", "x").ok(), v.seal("k", "x").ok());
    }
}
