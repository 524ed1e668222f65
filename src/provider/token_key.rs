//! The store key of a presented credential, built on the stack: the same text as
//! `random::hash_secret` (base64url of its SHA-256, no padding), without the heap `String`.
//! `/userinfo` and introspection build one per request, and the store only borrows it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Characters of an unpadded base64url SHA-256: 32 bytes are 43 characters (RFC 4648 §5).
const LEN: usize = 43;

/// A credential's store key. Derefs to the key's text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenKey([u8; LEN]);

impl TokenKey {
    /// The key of `secret`, as `random::hash_secret(secret)` spells it.
    pub fn of(secret: &str) -> TokenKey {
        let mut text = [0u8; LEN];
        // A SHA-256 is always 32 bytes, which always fill exactly 43 characters.
        let written = URL_SAFE_NO_PAD
            .encode_slice(Sha256::digest(secret.as_bytes()), &mut text)
            .unwrap_or(0);
        debug_assert_eq!(written, LEN);
        TokenKey(text)
    }
}

impl std::ops::Deref for TokenKey {
    type Target = str;

    fn deref(&self) -> &str {
        // base64url's alphabet is ASCII, so this never fails; the check costs a few instructions.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random;

    #[test]
    fn the_stack_key_is_the_stored_key_for_every_token_length_we_issue_and_longer() {
        // Every `random::token(n)` we hand out (n = 16, 24, 32, 40, 48, 64 bytes: 22 to 86
        // characters), the lengths around SHA-256's one-block limit (55 bytes), a JWT's `jti`,
        // and a long JWT-sized input: the key must be exactly the one tokens are stored under.
        for n in [0, 1, 16, 24, 32, 40, 48, 64, 200] {
            let token = random::token(n);
            assert_eq!(
                &*TokenKey::of(&token),
                random::hash_secret(&token),
                "{n} bytes"
            );
        }
        for len in 0..=130 {
            let text: String = "aé".chars().cycle().take(len).collect();
            assert_eq!(&*TokenKey::of(&text), random::hash_secret(&text), "{len}");
        }
        let long = "x.".repeat(4096);
        assert_eq!(&*TokenKey::of(&long), random::hash_secret(&long));
    }

    #[test]
    fn rfc7636_appendix_b_example() {
        assert_eq!(
            &*TokenKey::of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
