//! Every random value the server hands out comes from here, and from the OS CSPRNG.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` random bytes from the operating system's CSPRNG, base64url-encoded without padding.
pub fn token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A random string of `len` characters from `[A-Za-z0-9]`.
///
/// WeCom only accepts `a-zA-Z0-9` (at most 128 bytes) in `state`, so upstream state uses this
/// alphabet. Rejection sampling keeps every character equally likely.
pub fn alphanumeric(len: usize) -> String {
    alphanumeric_from(&mut OsRng, len)
}

/// A request id of `len` characters from `[A-Za-z0-9]` (`web::request_log`), drawn from the
/// thread's CSPRNG (`rand::thread_rng`: ChaCha12, seeded and periodically reseeded from the OS).
/// Not a credential, so it need not cost a `getrandom` system call on every request, but still
/// unpredictable, so one request's id tells nothing about another's.
pub fn request_id(len: usize) -> String {
    alphanumeric_from(&mut rand::thread_rng(), len)
}

fn alphanumeric_from(rng: &mut impl RngCore, len: usize) -> String {
    from_alphabet_with(rng, ALNUM, len)
}

/// A random string of `len` characters of `alphabet` (ASCII, at most 256 characters), from the
/// OS CSPRNG, every character equally likely (e.g. RFC 8628 §6.1 user codes).
pub fn from_alphabet(alphabet: &[u8], len: usize) -> String {
    from_alphabet_with(&mut OsRng, alphabet, len)
}

fn from_alphabet_with(rng: &mut impl RngCore, alphabet: &[u8], len: usize) -> String {
    let n = alphabet.len();
    assert!((1..=256).contains(&n), "alphabet of 1 to 256 characters");
    // Bytes at or above the largest multiple of n would bias the first characters.
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        // A few bytes more than the characters still missing: a byte is refused with
        // probability (256 % n) / 256, 8/256 for `ALNUM`. Drawing a whole buffer for a short
        // string was most of a request id's cost (docs/performance.md).
        let draw = (len - out.len() + 8).min(buf.len());
        rng.fill_bytes(&mut buf[..draw]);
        for &b in &buf[..draw] {
            if usize::from(b) < limit {
                out.push(alphabet[usize::from(b) % n] as char);
                if out.len() == len {
                    break;
                }
            }
        }
    }
    out
}

/// SHA-256 of `secret`, base64url without padding: the form in which codes and tokens are stored,
/// so a copy of the database does not hand out working credentials.
pub fn hash_secret(secret: &str) -> String {
    (*SecretHash::of(secret)).to_owned()
}

/// Characters of an unpadded base64url SHA-256: 32 bytes are 43 characters (RFC 4648 §5).
const SECRET_HASH_LEN: usize = 43;

/// [`hash_secret`] built on the stack: `/userinfo` and introspection build one per request to
/// look a presented token up, and the store only borrows it. Derefs to the key's text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash([u8; SECRET_HASH_LEN]);

impl SecretHash {
    /// The stored form of `secret`.
    pub fn of(secret: &str) -> SecretHash {
        let mut text = [0u8; SECRET_HASH_LEN];
        // A SHA-256 is always 32 bytes, which always fill exactly 43 characters.
        let written = URL_SAFE_NO_PAD
            .encode_slice(Sha256::digest(secret.as_bytes()), &mut text)
            .unwrap_or(0);
        debug_assert_eq!(written, SECRET_HASH_LEN);
        SecretHash(text)
    }
}

impl std::ops::Deref for SecretHash {
    type Target = str;

    fn deref(&self) -> &str {
        // base64url's alphabet is ASCII, so this never fails; the check costs a few instructions.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Compares two secrets in constant time (with respect to their contents).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    // Hash first so that the comparison time does not depend on where the inputs differ or on
    // the length of the expected value.
    let ha = Sha256::digest(a);
    let hb = Sha256::digest(b);
    ha.ct_eq(&hb).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_are_unique_and_url_safe() {
        let set: HashSet<String> = (0..1000).map(|_| token(32)).collect();
        assert_eq!(set.len(), 1000);
        for t in &set {
            assert_eq!(t.len(), 43);
            assert!(t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }

    #[test]
    fn alphanumeric_state_fits_wecom_rules() {
        let s = alphanumeric(40);
        assert_eq!(s.len(), 40);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(alphanumeric(40), s);
    }

    #[test]
    fn every_character_of_the_alphabet_is_drawn_about_equally_often() {
        // 62 characters, 62,000 draws: each about 1,000 times; a bias of the first
        // (256 % 62 = 8) characters would give them about 1,210.
        let mut counts = [0u32; 256];
        for _ in 0..1000 {
            for b in request_id(62).bytes() {
                counts[usize::from(b)] += 1;
            }
        }
        for &c in ALNUM {
            let seen = counts[usize::from(c)];
            assert!(
                (850..1150).contains(&seen),
                "{} drawn {seen} times",
                c as char
            );
        }
        assert_eq!(counts.iter().sum::<u32>(), 62_000);
        // Lengths longer than one draw come out whole.
        assert_eq!(from_alphabet(b"ab", 300).len(), 300);
    }

    #[test]
    fn hash_secret_is_sha256_base64url() {
        // RFC 7636 appendix B: SHA-256 of the example verifier.
        assert_eq!(
            hash_secret("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn the_stored_form_is_base64url_sha256_for_every_token_length_we_issue_and_longer() {
        // Every `token(n)` we hand out (16 to 64 bytes: 22 to 86 characters), the lengths
        // around SHA-256's one-block limit (55 bytes), and a long JWT-sized input.
        let reference = |s: &str| URL_SAFE_NO_PAD.encode(Sha256::digest(s.as_bytes()));
        for n in [0, 1, 16, 24, 32, 40, 48, 64, 200] {
            let t = token(n);
            assert_eq!(hash_secret(&t), reference(&t), "{n} bytes");
        }
        for len in 0..=130 {
            let text: String = "aé".chars().cycle().take(len).collect();
            assert_eq!(&*SecretHash::of(&text), reference(&text), "{len}");
        }
        let long = "x.".repeat(4096);
        assert_eq!(&*SecretHash::of(&long), reference(&long));
    }

    #[test]
    fn constant_time_eq_compares_contents() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
