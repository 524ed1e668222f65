//! The key store: loads (or, on first start, generates) the signing keys in the key directory,
//! publishes their public halves as a JWK Set, and signs JWTs with the active key.
//!
//! Layout of the key directory:
//! - one PKCS#8 PEM file per private key, named `<alg>-<kid>.pem` (e.g. `rs256-NzbL….pem`),
//!   created with mode 0600;
//! - `keys.json`, the manifest: for each key its kid, alg, file, created_at and status
//!   (`active` or `retiring`), replaced atomically. Exactly one key is active and signs; retiring
//!   keys stay in the JWKS so tokens they signed keep verifying during a rotation grace period.
//!
//! Without a manifest, a directory with no key file gets a freshly generated key (and a
//! manifest); a directory with exactly one key file uses it as the active key without writing
//! anything, so a read-only mounted key works; several key files without a manifest are an
//! error, because which one signs would be a guess. Files other than `*.pem` (the README,
//! editor leftovers) are ignored. A key file that cannot be read or parsed, or whose kid
//! disagrees with the manifest, stops the start with an error naming it: silently generating a
//! new key would invalidate every token already issued.
//!
//! One process owns the key directory: two servers starting at the same time on an empty shared
//! directory would each generate a key.

mod files;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::{fmt, fs};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use josekit::jws::{JwsSigner, JwsVerifier};
use serde::Serialize;
use serde_json::{Map, Value};

use self::files::{
    adopt, create_key_dir, generate, load_from_manifest, manifest_or_adopt, new_key_file,
    pem_files, public_jwk,
};
use super::manifest::{retire_and_expire, Manifest, MANIFEST_FILE};
use super::{JwksVerifier, KeyError, KeyStatus, SigningAlg};
use crate::clock::{Clock, SystemClock};

/// Public facts about one key in the store (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's `kid`: its RFC 7638 thumbprint.
    pub kid: String,
    /// The algorithm it signs with.
    pub alg: SigningAlg,
    /// Whether it signs new tokens or is only still published.
    pub status: KeyStatus,
    /// When it was generated (seconds since the Unix epoch), if a manifest records it.
    pub created_at: Option<i64>,
    /// For a retiring key, when its grace period ends (seconds since the Unix epoch).
    pub retire_at: Option<i64>,
    /// The PEM file it was loaded from.
    pub path: PathBuf,
}

/// The provider's signing keys: one active key per algorithm with its ready-built signer, a
/// verifier for every published key, and the JWK Set of every published key. Immutable once
/// loaded; share it behind an `Arc`.
pub struct KeyStore {
    active_kid: String,
    alg: SigningAlg,
    /// One per algorithm that has an active key; the default (RS256 when present) first.
    signers: Vec<ActiveSigner>,
    /// Every published key, to verify tokens we issued (`id_token_hint`, logout).
    verifiers: Vec<(String, SigningAlg, Box<dyn JwsVerifier>)>,
    jwks: Bytes,
    keys: Vec<KeyInfo>,
    /// A relying party's view of [`KeyStore::jwks_bytes`] (JWT access tokens), built on first
    /// use.
    own_verifier: OnceLock<Option<JwksVerifier>>,
}

/// The signer of one algorithm, built once at load so signing does no key parsing.
struct ActiveSigner {
    alg: SigningAlg,
    kid: String,
    signer: Box<dyn JwsSigner>,
}

/// The protected header of the JWTs we sign, in the member order josekit writes.
#[derive(Serialize)]
struct ProtectedHeader<'a> {
    typ: &'a str,
    kid: &'a str,
    alg: &'a str,
}

/// A key read from disk (or from a shared store, `tokens::shared`), before the key store is
/// assembled.
pub(super) struct LoadedKey {
    pub(super) info: KeyInfo,
    /// `kty` and the public members.
    pub(super) members: Map<String, Value>,
    pub(super) signer: Box<dyn JwsSigner>,
}

/// What `keys rotate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new active key.
    pub new_key: KeyInfo,
    /// The kid of the key of the same algorithm that became retiring, if there was one.
    pub retired: Option<String>,
    /// Kids of retiring keys whose grace period had ended, deleted from the manifest and disk.
    pub removed: Vec<String>,
}

impl KeyStore {
    /// Loads every private key listed in `dir`; when there is none, generates an RS256
    /// (RSA-2048) key and writes it with mode 0600. Creates `dir` (mode 0700) if missing.
    pub fn load_or_generate(dir: &Path) -> Result<KeyStore, KeyError> {
        Self::load_or_generate_with(dir, SigningAlg::Rs256, &SystemClock)
    }

    /// Like [`KeyStore::load_or_generate`], but a generated key uses `new_key_alg` and its
    /// `created_at` comes from `clock`. The algorithm only matters when a key is generated:
    /// existing keys keep theirs. Retiring keys whose grace period ended before `clock.now()`
    /// are no longer published (the next rotation deletes them; loading never writes).
    pub fn load_or_generate_with(
        dir: &Path,
        new_key_alg: SigningAlg,
        clock: &dyn Clock,
    ) -> Result<KeyStore, KeyError> {
        create_key_dir(dir)?;
        let (active, retiring) = match Manifest::read(dir)? {
            Some(manifest) => load_from_manifest(dir, &manifest, clock.now())?,
            None => {
                let files = pem_files(dir)?;
                match files.as_slice() {
                    [] => (vec![generate(dir, new_key_alg, clock)?], Vec::new()),
                    [only] => (vec![adopt(only)?], Vec::new()),
                    _ => {
                        return Err(KeyError::AmbiguousKeys {
                            dir: dir.to_path_buf(),
                            count: files.len(),
                        })
                    }
                }
            }
        };
        Self::assemble(active, retiring)
    }

    /// Builds the store from the active keys (at least one) and the keys that are only still
    /// published.
    pub(super) fn assemble(
        mut active: Vec<LoadedKey>,
        retiring: Vec<LoadedKey>,
    ) -> Result<KeyStore, KeyError> {
        // The default signer: RS256 when there is such a key, since every client must accept it
        // (OIDC Core §15.1); otherwise the first active key.
        active.sort_by_key(|k| k.info.alg != SigningAlg::Rs256);
        let default = active.first().ok_or_else(|| KeyError::Manifest {
            path: PathBuf::from(MANIFEST_FILE),
            reason: "no active key".to_owned(),
        })?;
        let (active_kid, alg) = (default.info.kid.clone(), default.info.alg);
        // Active keys first in the JWKS: some clients try keys in order when a token has no kid.
        let published: Vec<&LoadedKey> = active.iter().chain(&retiring).collect();
        let jwks_keys: Vec<Value> = published.iter().map(|k| public_jwk(k)).collect();
        let mut jwks = Map::new();
        jwks.insert("keys".to_owned(), Value::Array(jwks_keys));
        let jwks = Bytes::from(Value::Object(jwks).to_string());
        let mut verifiers = Vec::with_capacity(published.len());
        for key in &published {
            let verifier =
                key.info
                    .alg
                    .verifier(&key.members)
                    .map_err(|reason| KeyError::InvalidKey {
                        path: key.info.path.clone(),
                        reason: reason.to_owned(),
                    })?;
            verifiers.push((key.info.kid.clone(), key.info.alg, verifier));
        }
        let mut infos: Vec<KeyInfo> = active.iter().map(|k| k.info.clone()).collect();
        infos.extend(retiring.into_iter().map(|k| k.info));
        let signers = active
            .into_iter()
            .map(|k| ActiveSigner {
                alg: k.info.alg,
                kid: k.info.kid,
                signer: k.signer,
            })
            .collect();
        Ok(KeyStore {
            active_kid,
            alg,
            signers,
            verifiers,
            jwks,
            keys: infos,
            own_verifier: OnceLock::new(),
        })
    }

    /// Verifiers for the keys in our JWKS (every published key, so tokens signed before a
    /// rotation still verify), as a relying party would build them; `None` only if our own JWKS
    /// were unusable.
    pub fn jwks_verifier(&self) -> Option<&JwksVerifier> {
        self.own_verifier
            .get_or_init(|| {
                let set: Value = serde_json::from_slice(&self.jwks).ok()?;
                match JwksVerifier::from_jwks(&set) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        tracing::error!(error = %e, "our own JWKS cannot verify tokens");
                        None
                    }
                }
            })
            .as_ref()
    }

    /// The public JWK Set (RFC 7517 §5) of every published key, serialized once at load:
    /// `{"keys":[{"kty","use":"sig","alg","kid",…public members}]}`.
    pub fn jwks_bytes(&self) -> Bytes {
        self.jwks.clone()
    }

    /// The `kid` of the key that signs by default.
    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// The JWS `alg` of the default signing key (`"RS256"` unless no RS256 key exists).
    pub fn signing_alg(&self) -> &str {
        self.alg.as_str()
    }

    /// The algorithms that have an active key, the default first: exactly the
    /// `id_token_signing_alg_values_supported` of discovery.
    pub fn signing_algs(&self) -> Vec<SigningAlg> {
        self.signers.iter().map(|s| s.alg).collect()
    }

    /// Whether an active key signs with `alg`.
    pub fn has_alg(&self, alg: SigningAlg) -> bool {
        self.signers.iter().any(|s| s.alg == alg)
    }

    /// Every published key, the active ones first.
    pub fn keys(&self) -> &[KeyInfo] {
        &self.keys
    }

    /// Signs `claims` (any JSON object: a claims struct or a map) as a compact JWS (RFC 7515 §7.1) with the default key and header
    /// `{"typ":"JWT","kid":<active kid>,"alg":<signing alg>}`.
    pub fn sign_jwt<C: Serialize + ?Sized>(&self, claims: &C) -> Result<String, KeyError> {
        self.sign_jwt_with(self.alg, "JWT", claims)
    }

    /// Signs `claims` with the active key of `alg` and header `typ` (e.g. `logout+jwt`,
    /// Back-Channel Logout 1.0 §2.4). `UnsupportedAlg` when no key of `alg` is active.
    pub fn sign_jwt_with<C: Serialize + ?Sized>(
        &self,
        alg: SigningAlg,
        typ: &str,
        claims: &C,
    ) -> Result<String, KeyError> {
        let active = self
            .signers
            .iter()
            .find(|s| s.alg == alg)
            .ok_or_else(|| KeyError::UnsupportedAlg(alg.as_str().to_owned()))?;
        let json = |e: serde_json::Error| KeyError::Sign {
            reason: format!("cannot serialize the claims: {e}"),
        };
        let payload = serde_json::to_vec(claims).map_err(json)?;
        // RFC 7515 §7.1, written here rather than by josekit's `serialize_compact`, which
        // builds the header as a JSON map per call (a third of a token response's allocations
        // besides the signature). The header is the one it writes: `typ`, `kid`, then `alg`.
        let header = serde_json::to_vec(&ProtectedHeader {
            typ,
            kid: active.signer.key_id().unwrap_or(&active.kid),
            alg: active.signer.algorithm().name(),
        })
        .map_err(json)?;
        let b64 = |bytes: usize| bytes.div_ceil(3) * 4;
        let mut jws = String::with_capacity(
            b64(header.len()) + b64(payload.len()) + b64(active.signer.signature_len()) + 2,
        );
        URL_SAFE_NO_PAD.encode_string(&header, &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jws);
        // The error comes from the crypto library's signing step; it has no claim values.
        let signature = active
            .signer
            .sign(jws.as_bytes())
            .map_err(|e| KeyError::Sign {
                reason: e.to_string(),
            })?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
        Ok(jws)
    }

    /// Verifies the signature of a compact JWS that one of our published keys made (found by
    /// the header's `kid`, whose `alg` must match the key's) and returns its claims. Nothing
    /// else is checked: `iss`, `aud` and expiry are the caller's, since `id_token_hint` accepts
    /// expired tokens (OIDC Core §3.1.2.1). `alg: none` never verifies.
    pub fn verify_jwt(&self, jwt: &str) -> Result<Map<String, Value>, KeyError> {
        self.verify_jwt_with_typ(jwt).map(|(_, claims)| claims)
    }

    /// Like [`KeyStore::verify_jwt`], also returning the header's `typ`, which tells our kinds
    /// of JWT apart (`JWT` id_tokens, `at+jwt` access tokens, `logout+jwt` logout tokens).
    pub fn verify_jwt_with_typ(
        &self,
        jwt: &str,
    ) -> Result<(Option<String>, Map<String, Value>), KeyError> {
        let invalid = |reason: &str| KeyError::Verify {
            reason: reason.to_owned(),
        };
        let (payload, header) = josekit::jws::deserialize_compact_with_selector(jwt, |header| {
            let kid = header.key_id();
            let alg = header.algorithm();
            Ok(self
                .verifiers
                .iter()
                .find(|(k, a, _)| Some(k.as_str()) == kid && Some(a.as_str()) == alg)
                .map(|(_, _, v)| v.as_ref()))
        })
        .map_err(|_| invalid("not a JWT signed by one of our published keys"))?;
        match serde_json::from_slice::<Value>(&payload) {
            Ok(Value::Object(claims)) => Ok((header.token_type().map(str::to_owned), claims)),
            _ => Err(invalid("the payload is not a JSON object")),
        }
    }

    /// Adds an active key of `alg` to the key directory (`keys generate`), creating the
    /// directory and manifest as needed. Refuses when a key of `alg` is already active: replacing
    /// one is a rotation, which keeps the old key published.
    pub fn generate_key(
        dir: &Path,
        alg: SigningAlg,
        clock: &dyn Clock,
    ) -> Result<KeyInfo, KeyError> {
        create_key_dir(dir)?;
        let mut manifest = manifest_or_adopt(dir)?;
        if manifest
            .keys
            .iter()
            .any(|e| e.alg == alg && e.status == KeyStatus::Active)
        {
            return Err(KeyError::AlreadyActive(alg.as_str()));
        }
        let (info, entry) = new_key_file(dir, alg, clock)?;
        manifest.keys.push(entry);
        manifest.write(dir)?;
        Ok(info)
    }

    /// Rotates the key of `alg` (`keys rotate`): a new key becomes active; the previous active
    /// key of `alg`, if any, stays published as retiring for `grace_secs` so tokens it signed
    /// keep verifying; retiring keys whose grace period has ended are deleted. The manifest is
    /// replaced atomically after the new key file is on disk, so a crash leaves a working
    /// directory. The running server picks the change up at its next start.
    pub fn rotate(
        dir: &Path,
        alg: SigningAlg,
        grace_secs: i64,
        clock: &dyn Clock,
    ) -> Result<Rotation, KeyError> {
        create_key_dir(dir)?;
        let mut manifest = manifest_or_adopt(dir)?;
        let now = clock.now();
        let (info, entry) = new_key_file(dir, alg, clock)?;
        let (retired, expired) = retire_and_expire(&mut manifest.keys, alg, now, grace_secs);
        manifest.keys.push(entry);
        manifest.write(dir)?;
        // Only once the manifest no longer lists them: a crash before this leaves stray files,
        // which loading ignores with a warning.
        for e in &expired {
            if let Err(err) = fs::remove_file(dir.join(&e.file)) {
                tracing::warn!(file = %e.file, error = %err, "could not delete an expired key file");
            }
        }
        Ok(Rotation {
            new_key: info,
            retired,
            removed: expired.into_iter().map(|e| e.kid).collect(),
        })
    }

    /// Every key the manifest of `dir` lists, including retiring keys past their grace period
    /// (`keys list`). A directory without manifest lists its only key file, if any.
    pub fn list(dir: &Path) -> Result<Vec<KeyInfo>, KeyError> {
        match Manifest::read(dir)? {
            Some(m) => Ok(m
                .keys
                .iter()
                .map(|e| KeyInfo {
                    kid: e.kid.clone(),
                    alg: e.alg,
                    status: e.status,
                    created_at: Some(e.created_at),
                    retire_at: e.retire_at,
                    path: dir.join(&e.file),
                })
                .collect()),
            None => match pem_files(dir) {
                Ok(files) if files.len() == 1 => Ok(vec![adopt(&files[0])?.info]),
                Ok(files) if files.is_empty() => Ok(Vec::new()),
                Ok(files) => Err(KeyError::AmbiguousKeys {
                    dir: dir.to_path_buf(),
                    count: files.len(),
                }),
                Err(KeyError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    Ok(Vec::new())
                }
                Err(e) => Err(e),
            },
        }
    }
}

impl KeyStore {
    /// Signs `claims` like [`KeyStore::sign_jwt`] but with header `typ` set to `typ`, e.g.
    /// `at+jwt` for JWT access tokens (RFC 9068 §2.1), so that one kind of token cannot be
    /// passed off as another.
    pub fn sign_jwt_typed<C: Serialize + ?Sized>(
        &self,
        claims: &C,
        typ: &str,
    ) -> Result<String, KeyError> {
        self.sign_jwt_with(self.alg, typ, claims)
    }
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signer holds the private key: it is never printed.
        f.debug_struct("KeyStore")
            .field("active_kid", &self.active_kid)
            .field("alg", &self.alg)
            .field("signing_algs", &self.signing_algs())
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
