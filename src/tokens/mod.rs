//! Signing keys (load, generate, JWKS) and the one signer of id_tokens.
//!
//! CONTRACT (implemented by the tokens work package):
//! - `KeyStore::load_or_generate(dir: &Path) -> Result<KeyStore, KeyError>`: loads every private
//!   key in `dir`; when there is none, generates an RSA-2048 RS256 key, writes it with mode 0600.
//!   `kid` = RFC 7638 thumbprint (base64url SHA-256 of the canonical JWK members).
//! - `KeyStore::jwks_bytes(&self) -> bytes::Bytes`: the public JWK Set, serialized once.
//! - `KeyStore::signing_alg(&self) -> &str` (`"RS256"`), `KeyStore::active_kid(&self) -> &str`.
//! - `KeyStore::sign_jwt(&self, claims: &serde_json::Map<String, Value>) -> Result<String, KeyError>`:
//!   compact JWS with header `{alg, kid, typ: "JWT"}`.
//! - `at_hash(access_token: &str, alg: &str) -> String`: OIDC Core 3.1.3.6.
