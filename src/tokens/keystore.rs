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

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::Bytes;
use josekit::jws::{JwsHeader, JwsSigner, JwsVerifier};
use serde_json::{Map, Value};

use super::manifest::{sync_dir, Manifest, ManifestEntry, MANIFEST_FILE};
use super::{jwk_thumbprint, JwksVerifier, KeyError, KeyStatus, SigningAlg};
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

    /// Signs `claims` as a compact JWS (RFC 7515 §7.1) with the default key and header
    /// `{"typ":"JWT","kid":<active kid>,"alg":<signing alg>}`.
    pub fn sign_jwt(&self, claims: &Map<String, Value>) -> Result<String, KeyError> {
        self.sign_jwt_with(self.alg, "JWT", claims)
    }

    /// Signs `claims` with the active key of `alg` and header `typ` (e.g. `logout+jwt`,
    /// Back-Channel Logout 1.0 §2.4). `UnsupportedAlg` when no key of `alg` is active.
    pub fn sign_jwt_with(
        &self,
        alg: SigningAlg,
        typ: &str,
        claims: &Map<String, Value>,
    ) -> Result<String, KeyError> {
        let active = self
            .signers
            .iter()
            .find(|s| s.alg == alg)
            .ok_or_else(|| KeyError::UnsupportedAlg(alg.as_str().to_owned()))?;
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Sign {
            reason: format!("cannot serialize the claims: {e}"),
        })?;
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(active.kid.clone());
        josekit::jws::serialize_compact(&payload, &header, active.signer.as_ref()).map_err(
            // The error comes from the crypto library's signing step; it has no claim values.
            |e| KeyError::Sign {
                reason: e.to_string(),
            },
        )
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
        let mut retired = None;
        for e in &mut manifest.keys {
            if e.alg == alg && e.status == KeyStatus::Active {
                e.status = KeyStatus::Retiring;
                e.retire_at = Some(now.saturating_add(grace_secs.max(0)));
                retired = Some(e.kid.clone());
            }
        }
        let (expired, kept): (Vec<ManifestEntry>, Vec<ManifestEntry>) =
            manifest.keys.into_iter().partition(|e| {
                e.status == KeyStatus::Retiring && e.retire_at.is_some_and(|t| t <= now)
            });
        manifest.keys = kept;
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

/// Creates the key directory, owner-only, if missing.
fn create_key_dir(dir: &Path) -> Result<(), KeyError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| KeyError::Io {
            action: "create the key directory",
            path: dir.to_path_buf(),
            source,
        })
}

/// The manifest of `dir`; a directory without one gets one listing its only key file (or no
/// key), so the CLI can add keys next to a key that was put there by hand.
fn manifest_or_adopt(dir: &Path) -> Result<Manifest, KeyError> {
    if let Some(m) = Manifest::read(dir)? {
        return Ok(m);
    }
    let files = pem_files(dir)?;
    match files.as_slice() {
        [] => Ok(Manifest::default()),
        [only] => {
            let key = adopt(only)?;
            let file = only
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| KeyError::InvalidKey {
                    path: only.clone(),
                    reason: "the file name is not UTF-8".to_owned(),
                })?
                .to_owned();
            Ok(Manifest {
                keys: vec![ManifestEntry {
                    kid: key.info.kid,
                    alg: key.info.alg,
                    file,
                    created_at: 0,
                    status: KeyStatus::Active,
                    retire_at: None,
                }],
            })
        }
        _ => Err(KeyError::AmbiguousKeys {
            dir: dir.to_path_buf(),
            count: files.len(),
        }),
    }
}

/// Generates a key of `alg` and writes its file (mode 0600); returns its facts and the manifest
/// entry that makes it active. The caller writes the manifest.
fn new_key_file(
    dir: &Path,
    alg: SigningAlg,
    clock: &dyn Clock,
) -> Result<(KeyInfo, ManifestEntry), KeyError> {
    let pem = alg.generate_pem()?;
    let parsed = alg.parse_pem(&pem).map_err(|reason| KeyError::Generate {
        alg: alg.as_str(),
        reason: reason.to_owned(),
    })?;
    let kid = jwk_thumbprint(&Value::Object(parsed.members.clone()))?;
    let file = format!("{}-{kid}.pem", alg.file_prefix());
    let path = dir.join(&file);
    write_new_key_file(&path, &pem)?;
    let created_at = clock.now();
    tracing::info!(file = %path.display(), %kid, %alg, "generated a new signing key");
    Ok((
        KeyInfo {
            kid: kid.clone(),
            alg,
            status: KeyStatus::Active,
            created_at: Some(created_at),
            retire_at: None,
            path,
        },
        ManifestEntry {
            kid,
            alg,
            file,
            created_at,
            status: KeyStatus::Active,
            retire_at: None,
        },
    ))
}

impl KeyStore {
    /// Signs `claims` like [`KeyStore::sign_jwt`] but with header `typ` set to `typ`, e.g.
    /// `at+jwt` for JWT access tokens (RFC 9068 §2.1), so that one kind of token cannot be
    /// passed off as another.
    pub fn sign_jwt_typed(
        &self,
        claims: &Map<String, Value>,
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

/// The public JWK of a key, members in the conventional order.
fn public_jwk(key: &LoadedKey) -> Value {
    let mut jwk = Map::new();
    jwk.insert("kty".to_owned(), Value::from(key.info.alg.key_type()));
    // RFC 7517 §4.2: these keys only ever sign.
    jwk.insert("use".to_owned(), Value::from("sig"));
    jwk.insert("alg".to_owned(), Value::from(key.info.alg.as_str()));
    jwk.insert("kid".to_owned(), Value::from(key.info.kid.as_str()));
    for (name, value) in &key.members {
        if name != "kty" {
            jwk.insert(name.clone(), value.clone());
        }
    }
    Value::Object(jwk)
}

/// Loads every key the manifest lists (the active one, and the retiring ones in manifest order)
/// and warns about key files it does not list.
fn load_from_manifest(
    dir: &Path,
    manifest: &Manifest,
    now: i64,
) -> Result<(Vec<LoadedKey>, Vec<LoadedKey>), KeyError> {
    let mut active: Vec<LoadedKey> = Vec::new();
    let mut retiring = Vec::with_capacity(manifest.keys.len());
    for entry in &manifest.keys {
        if entry.status == KeyStatus::Retiring && entry.retire_at.is_some_and(|t| t <= now) {
            // Grace period over: tokens it signed have expired, so it is no longer published.
            continue;
        }
        let key = load_entry(dir, entry)?;
        match key.info.status {
            KeyStatus::Active if active.iter().all(|a| a.info.alg != key.info.alg) => {
                active.push(key)
            }
            KeyStatus::Active => return Err(one_active_key_error(dir)),
            KeyStatus::Retiring => retiring.push(key),
        }
    }
    if active.is_empty() {
        return Err(one_active_key_error(dir));
    }
    // A key file the manifest does not list is left by an interrupted generation or rotation, or
    // put there by hand; it is not published, so it must not be used, but the operator should
    // know about it.
    for path in pem_files(dir)? {
        let listed = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|name| manifest.keys.iter().any(|e| e.file == name));
        if !listed {
            tracing::warn!(
                file = %path.display(),
                "key file is not listed in {MANIFEST_FILE}; ignoring it"
            );
        }
    }
    Ok((active, retiring))
}

/// Already checked when the manifest is read; repeated here rather than assumed.
fn one_active_key_error(dir: &Path) -> KeyError {
    KeyError::Manifest {
        path: dir.join(MANIFEST_FILE),
        reason: "at least one key, and at most one per algorithm, must be marked active".to_owned(),
    }
}

fn load_entry(dir: &Path, entry: &ManifestEntry) -> Result<LoadedKey, KeyError> {
    let path = dir.join(&entry.file);
    let pem = read_key_file(&path)?;
    let parsed = entry.alg.parse_pem(&pem).map_err(|reason| {
        let reason = match SigningAlg::detect(&pem) {
            Some((actual, _)) => format!(
                "holds a key for {actual} but {MANIFEST_FILE} says {}",
                entry.alg
            ),
            None => reason.to_owned(),
        };
        KeyError::InvalidKey {
            path: path.clone(),
            reason,
        }
    })?;
    let kid = jwk_thumbprint(&Value::Object(parsed.members.clone()))?;
    if kid != entry.kid {
        return Err(KeyError::KidMismatch {
            path,
            expected: entry.kid.clone(),
            actual: kid,
        });
    }
    Ok(LoadedKey {
        info: KeyInfo {
            kid,
            alg: entry.alg,
            status: entry.status,
            created_at: Some(entry.created_at),
            retire_at: entry.retire_at,
            path,
        },
        members: parsed.members,
        signer: parsed.signer,
    })
}

/// Uses the only key file of a directory without manifest, whatever its algorithm.
fn adopt(path: &Path) -> Result<LoadedKey, KeyError> {
    let pem = read_key_file(path)?;
    let (alg, parsed) = SigningAlg::detect(&pem).ok_or_else(|| KeyError::InvalidKey {
        path: path.to_path_buf(),
        reason: "not a PEM private key for RS256 (RSA ≥ 2048 bits), ES256 (P-256) or EdDSA \
                 (Ed25519)"
            .to_owned(),
    })?;
    let kid = jwk_thumbprint(&Value::Object(parsed.members.clone()))?;
    tracing::info!(file = %path.display(), %kid, %alg, "using the only key file; no {MANIFEST_FILE}");
    Ok(LoadedKey {
        info: KeyInfo {
            kid,
            alg,
            status: KeyStatus::Active,
            created_at: None,
            retire_at: None,
            path: path.to_path_buf(),
        },
        members: parsed.members,
        signer: parsed.signer,
    })
}

/// Generates a key, writes it (mode 0600) and a manifest naming it active.
fn generate(dir: &Path, alg: SigningAlg, clock: &dyn Clock) -> Result<LoadedKey, KeyError> {
    let (_, entry) = new_key_file(dir, alg, clock)?;
    Manifest {
        keys: vec![entry.clone()],
    }
    .write(dir)?;
    // Load what was written, so the running key is exactly the stored one.
    load_entry(dir, &entry)
}

/// Creates `path` with mode 0600 from the start (never write-then-chmod, which leaves a window
/// where the key is readable) and refuses to overwrite an existing file.
fn write_new_key_file(path: &Path, pem: &[u8]) -> Result<(), KeyError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| KeyError::Io {
            action: "create",
            path: path.to_path_buf(),
            source,
        })?;
    if let Err(source) = file.write_all(pem).and_then(|()| file.sync_all()) {
        // A truncated key file would stop the next start; better no file at all.
        drop(file);
        let _ = fs::remove_file(path);
        return Err(KeyError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        });
    }
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Reads a key file, warning when its mode lets anyone but the owner read it.
fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    let io = |action: &'static str| {
        move |source: std::io::Error| KeyError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut file = fs::File::open(path).map_err(io("open"))?;
    // Metadata of the opened file, not of the path, so it describes what we actually read.
    let meta = file.metadata().map_err(io("inspect"))?;
    if !meta.is_file() {
        return Err(KeyError::InvalidKey {
            path: path.to_path_buf(),
            reason: "not a regular file".to_owned(),
        });
    }
    if meta.mode() & 0o077 != 0 {
        tracing::warn!(
            file = %path.display(),
            mode = format_args!("{:o}", meta.mode() & 0o777),
            "private key file is accessible by group or others; chmod 600 it"
        );
    }
    let mut pem = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).min(1 << 20));
    file.read_to_end(&mut pem).map_err(io("read"))?;
    Ok(pem)
}

/// The `*.pem` files of `dir` (following symlinks, as mounted secrets use them), sorted by name.
fn pem_files(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let entries = fs::read_dir(dir).map_err(|source| KeyError::Io {
        action: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| KeyError::Io {
            action: "list",
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let is_pem = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("pem"));
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if is_pem && !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use josekit::jwk::Jwk;
    use josekit::jws::{EdDSA, JwsVerifier, ES256, RS256};
    use serde_json::json;

    fn jwks_keys(store: &KeyStore) -> Vec<Map<String, Value>> {
        let jwks: Value = serde_json::from_slice(&store.jwks_bytes()).expect("JWKS is JSON");
        jwks["keys"]
            .as_array()
            .expect("keys array")
            .iter()
            .map(|k| k.as_object().expect("JWK object").clone())
            .collect()
    }

    fn pem_names(dir: &Path) -> Vec<String> {
        pem_files(dir)
            .expect("list")
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect()
    }

    fn claims() -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("iss".into(), json!("https://op.example"));
        claims.insert("sub".into(), json!("zhangsan"));
        claims.insert("aud".into(), json!("client-1"));
        claims.insert("iat".into(), json!(1_700_000_000));
        claims.insert("exp".into(), json!(1_700_000_600));
        claims.insert("name".into(), json!("张三"));
        claims
    }

    /// Verifies `jwt` with the JWKS key of `kid` the way a relying party would, and returns its
    /// header and claims.
    fn verify(store: &KeyStore, jwt: &str) -> (Value, Map<String, Value>) {
        let header_b64 = jwt.split('.').next().expect("header part");
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).expect("base64url"))
                .expect("header JSON");
        let kid = header["kid"].as_str().expect("kid in header");
        let jwk = jwks_keys(store)
            .into_iter()
            .find(|k| k["kid"] == kid)
            .expect("kid is in the JWKS");
        let jwk = Jwk::from_map(jwk).expect("JWK");
        let verifier: Box<dyn JwsVerifier> = match header["alg"].as_str() {
            Some("RS256") => Box::new(RS256.verifier_from_jwk(&jwk).expect("verifier")),
            Some("ES256") => Box::new(ES256.verifier_from_jwk(&jwk).expect("verifier")),
            Some("EdDSA") => Box::new(EdDSA.verifier_from_jwk(&jwk).expect("verifier")),
            other => panic!("unexpected alg {other:?}"),
        };
        let (payload, _) =
            josekit::jwt::decode_with_verifier(jwt, verifier.as_ref()).expect("signature verifies");
        (header, payload.claims_set().clone())
    }

    #[test]
    fn empty_dir_generates_exactly_one_rs256_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("README.md"), "# keys\n").expect("readme");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        assert_eq!(store.signing_alg(), "RS256");
        assert_eq!(pem_names(dir.path()).len(), 1);
        assert_eq!(jwks_keys(&store).len(), 1);
        assert_eq!(store.keys().len(), 1);
        assert_eq!(store.keys()[0].status, KeyStatus::Active);
        let manifest = Manifest::read(dir.path())
            .expect("manifest")
            .expect("written");
        assert_eq!(manifest.keys.len(), 1);
        assert_eq!(manifest.keys[0].kid, store.active_kid());
        assert_eq!(manifest.keys[0].alg, SigningAlg::Rs256);
        assert_eq!(pem_names(dir.path()), vec![manifest.keys[0].file.clone()]);
    }

    #[test]
    fn missing_key_dir_is_created_owner_only() {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("a").join("keys");
        let store = KeyStore::load_or_generate(&dir).expect("load");
        assert_eq!(pem_names(&dir).len(), 1);
        assert!(!store.active_kid().is_empty());
        let mode = fs::metadata(&dir).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn generated_key_file_has_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        let meta = fs::metadata(&store.keys()[0].path).expect("stat");
        assert_eq!(meta.mode() & 0o777, 0o600);
        let pem = fs::read_to_string(&store.keys()[0].path).expect("read");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");
    }

    #[test]
    fn kid_is_stable_across_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = KeyStore::load_or_generate(dir.path()).expect("first load");
        let second = KeyStore::load_or_generate(dir.path()).expect("second load");
        assert_eq!(first.active_kid(), second.active_kid());
        assert_eq!(first.jwks_bytes(), second.jwks_bytes());
        assert_eq!(pem_names(dir.path()).len(), 1, "no second key generated");
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint_of_the_published_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        let jwk = Value::Object(jwks_keys(&store).remove(0));
        assert_eq!(
            jwk_thumbprint(&jwk).ok().as_deref(),
            Some(store.active_kid())
        );
        assert_eq!(jwk["kid"], store.active_kid());
    }

    #[test]
    fn jwks_holds_only_public_members() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        let keys = jwks_keys(&store);
        let names: Vec<&str> = keys[0].keys().map(String::as_str).collect();
        assert_eq!(names, ["kty", "use", "alg", "kid", "n", "e"]);
        assert_eq!(keys[0]["kty"], "RSA");
        assert_eq!(keys[0]["use"], "sig");
        assert_eq!(keys[0]["alg"], "RS256");
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(!keys[0].contains_key(private), "JWKS leaks {private}");
        }
        // RSA-2048: a 256-byte modulus is 342 base64url characters.
        assert_eq!(keys[0]["n"].as_str().map(str::len), Some(342));
    }

    #[test]
    fn signed_jwt_verifies_against_the_jwks_and_names_kid_alg_typ() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        let jwt = store.sign_jwt(&claims()).expect("sign");
        let (header, payload) = verify(&store, &jwt);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], store.active_kid());
        assert_eq!(header.as_object().map(Map::len), Some(3), "{header}");
        assert_eq!(payload, claims());
    }

    #[test]
    fn jwt_signed_before_restart_verifies_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let jwt = KeyStore::load_or_generate(dir.path())
            .expect("first load")
            .sign_jwt(&claims())
            .expect("sign");
        let restarted = KeyStore::load_or_generate(dir.path()).expect("second load");
        assert_eq!(verify(&restarted, &jwt).1, claims());
    }

    #[test]
    fn es256_and_eddsa_keys_are_generated_signed_with_and_reloaded() {
        for alg in [SigningAlg::Es256, SigningAlg::EdDsa] {
            let dir = tempfile::tempdir().expect("tempdir");
            let clock = ManualClock::new(1_234);
            let store = KeyStore::load_or_generate_with(dir.path(), alg, &clock).expect("generate");
            assert_eq!(store.signing_alg(), alg.as_str());
            assert_eq!(store.keys()[0].created_at, Some(1_234));
            let jwt = store.sign_jwt(&claims()).expect("sign");
            let (header, payload) = verify(&store, &jwt);
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(payload, claims());
            let key = jwks_keys(&store).remove(0);
            assert!(!key.contains_key("d"), "{alg} JWKS leaks d");
            // Reloading (even when asked for RS256) keeps the existing key and its alg.
            let reloaded = KeyStore::load_or_generate_with(dir.path(), SigningAlg::Rs256, &clock)
                .expect("reload");
            assert_eq!(reloaded.active_kid(), store.active_kid());
            assert_eq!(reloaded.signing_alg(), alg.as_str());
        }
    }

    #[test]
    fn corrupt_key_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        let path = store.keys()[0].path.clone();
        let secret = "c2VjcmV0LWtleS1tYXRlcmlhbA";
        fs::write(
            &path,
            format!("-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n"),
        )
        .expect("corrupt");
        let err = KeyStore::load_or_generate(dir.path()).expect_err("corrupt key accepted");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(!message.contains(secret), "error quotes the key: {message}");
        assert!(matches!(err, KeyError::InvalidKey { .. }));
        // Not silently replaced by a new key.
        assert_eq!(pem_names(dir.path()).len(), 1);
    }

    #[test]
    fn corrupt_lone_key_file_without_manifest_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mine.pem");
        fs::write(&path, "not a key").expect("write");
        let err = KeyStore::load_or_generate(dir.path()).expect_err("garbage accepted");
        assert!(err.to_string().contains("mine.pem"), "{err}");
        assert_eq!(pem_names(dir.path()), vec!["mine.pem".to_owned()]);
    }

    #[test]
    fn missing_key_file_listed_in_manifest_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        let path = store.keys()[0].path.clone();
        fs::remove_file(&path).expect("remove");
        let err = KeyStore::load_or_generate(dir.path()).expect_err("missing key accepted");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn key_file_swapped_behind_the_manifest_is_a_kid_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        let other = SigningAlg::Rs256.generate_pem().expect("generate");
        fs::write(&store.keys()[0].path, other).expect("swap");
        let err = KeyStore::load_or_generate(dir.path()).expect_err("swapped key accepted");
        assert!(matches!(err, KeyError::KidMismatch { .. }), "{err}");
    }

    #[test]
    fn key_of_another_type_than_the_manifest_says_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        let ec = SigningAlg::Es256.generate_pem().expect("generate");
        fs::write(&store.keys()[0].path, ec).expect("swap");
        let err = KeyStore::load_or_generate(dir.path()).expect_err("EC key accepted as RS256");
        assert!(err.to_string().contains("ES256"), "{err}");
    }

    #[test]
    fn lone_key_file_without_manifest_is_used_without_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pem = SigningAlg::EdDsa.generate_pem().expect("generate");
        write_new_key_file(&dir.path().join("operator.pem"), &pem).expect("write");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        assert_eq!(store.signing_alg(), "EdDSA");
        assert!(Manifest::read(dir.path()).expect("read").is_none());
        let again = KeyStore::load_or_generate(dir.path()).expect("reload");
        assert_eq!(again.active_kid(), store.active_kid());
    }

    #[test]
    fn several_key_files_without_manifest_are_ambiguous() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["a.pem", "b.pem"] {
            let pem = SigningAlg::Es256.generate_pem().expect("generate");
            write_new_key_file(&dir.path().join(name), &pem).expect("write");
        }
        let err = KeyStore::load_or_generate(dir.path()).expect_err("guessed a key");
        assert!(
            matches!(err, KeyError::AmbiguousKeys { count: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn retiring_key_stays_published_but_does_not_sign() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Two keys made in their own directories, then brought together by a manifest, as a
        // rotation would leave them.
        let old_dir = tempfile::tempdir().expect("tempdir");
        let new_dir = tempfile::tempdir().expect("tempdir");
        let old = KeyStore::load_or_generate(old_dir.path()).expect("old");
        let new = KeyStore::load_or_generate_with(
            new_dir.path(),
            SigningAlg::Es256,
            &ManualClock::new(2_000),
        )
        .expect("new");
        let old_jwt = old.sign_jwt(&claims()).expect("sign");
        let mut entries = Vec::new();
        for (store, status) in [(&new, KeyStatus::Active), (&old, KeyStatus::Retiring)] {
            let info = &store.keys()[0];
            let file = info
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name");
            fs::copy(&info.path, dir.path().join(file)).expect("copy");
            entries.push(ManifestEntry {
                kid: info.kid.clone(),
                alg: info.alg,
                file: file.to_owned(),
                created_at: info.created_at.unwrap_or_default(),
                status,
                retire_at: None,
            });
        }
        entries.reverse(); // manifest order must not decide which key signs
        Manifest { keys: entries }
            .write(dir.path())
            .expect("manifest");

        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        assert_eq!(store.active_kid(), new.active_kid());
        assert_eq!(store.signing_alg(), "ES256");
        let kids: Vec<Value> = jwks_keys(&store).iter().map(|k| k["kid"].clone()).collect();
        assert_eq!(kids, [json!(new.active_kid()), json!(old.active_kid())]);
        // Tokens of the retiring key still verify; new tokens come from the active key.
        assert_eq!(verify(&store, &old_jwt).1, claims());
        let (header, _) = verify(&store, &store.sign_jwt(&claims()).expect("sign"));
        assert_eq!(header["kid"], new.active_kid());
    }

    #[test]
    fn key_file_not_in_manifest_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        let stray = SigningAlg::Rs256.generate_pem().expect("generate");
        write_new_key_file(&dir.path().join("stray.pem"), &stray).expect("write");
        let reloaded = KeyStore::load_or_generate(dir.path()).expect("reload");
        assert_eq!(reloaded.active_kid(), store.active_kid());
        assert_eq!(jwks_keys(&reloaded).len(), 1);
    }

    #[test]
    fn group_readable_key_file_still_loads() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        fs::set_permissions(&store.keys()[0].path, fs::Permissions::from_mode(0o640))
            .expect("chmod");
        // Only a warning: refusing to start over a mode would be harsher than the risk.
        let reloaded = KeyStore::load_or_generate(dir.path()).expect("reload");
        assert_eq!(reloaded.active_kid(), store.active_kid());
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        let debug = format!("{store:?}");
        assert!(debug.contains(store.active_kid()));
        let n = jwks_keys(&store)[0]["n"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!debug.contains(&n[..40]));
        assert!(!debug.contains("PRIVATE"));
    }

    #[test]
    fn key_store_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<KeyStore>();
    }

    #[test]
    fn one_active_key_per_algorithm_each_signs_its_own_tokens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000);
        for alg in [SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa] {
            KeyStore::generate_key(dir.path(), alg, &clock).expect("generate");
        }
        let store =
            KeyStore::load_or_generate_with(dir.path(), SigningAlg::Rs256, &clock).expect("load");
        // RS256 is the default whatever the order the keys were made in (OIDC Core §15.1).
        assert_eq!(store.signing_alg(), "RS256");
        assert_eq!(store.signing_algs().len(), 3);
        for alg in SigningAlg::ALL {
            let jwt = store.sign_jwt_with(alg, "JWT", &claims()).expect("sign");
            let (header, payload) = verify(&store, &jwt);
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(payload, claims());
            assert_eq!(
                store.verify_jwt(&jwt).expect("own token verifies"),
                claims()
            );
        }
        assert!(matches!(
            KeyStore::generate_key(dir.path(), SigningAlg::Es256, &clock),
            Err(KeyError::AlreadyActive("ES256"))
        ));
    }

    #[test]
    fn verify_jwt_refuses_tampered_foreign_and_alg_none_tokens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::load_or_generate(dir.path()).expect("load");
        let jwt = store.sign_jwt(&claims()).expect("sign");
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"lisi"}"#);
        assert!(store.verify_jwt(&parts.join(".")).is_err(), "tampered");
        let other_dir = tempfile::tempdir().expect("tempdir");
        let other = KeyStore::load_or_generate(other_dir.path()).expect("other");
        assert!(
            store
                .verify_jwt(&other.sign_jwt(&claims()).expect("sign"))
                .is_err(),
            "foreign"
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(format!(
                r#"{{"alg":"none","kid":"{}"}}"#,
                store.active_kid()
            )),
            URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#)
        );
        assert!(store.verify_jwt(&none).is_err(), "alg none");
        assert!(store.verify_jwt("not a jwt").is_err());
    }

    #[test]
    fn rotation_keeps_the_old_key_published_for_the_grace_period_then_removes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000);
        let first =
            KeyStore::load_or_generate_with(dir.path(), SigningAlg::Rs256, &clock).expect("first");
        let old_jwt = first.sign_jwt(&claims()).expect("sign");
        let r = KeyStore::rotate(dir.path(), SigningAlg::Rs256, 3_600, &clock).expect("rotate");
        assert_eq!(r.retired.as_deref(), Some(first.active_kid()));
        let mode = fs::metadata(&r.new_key.path).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o600, "new private key file is owner-only");

        let during = KeyStore::load_or_generate_with(dir.path(), SigningAlg::Rs256, &clock)
            .expect("during grace");
        assert_eq!(during.active_kid(), r.new_key.kid);
        assert_eq!(jwks_keys(&during).len(), 2);
        assert_eq!(
            verify(&during, &old_jwt).1,
            claims(),
            "old tokens still verify"
        );

        clock.advance(3_600);
        let after = KeyStore::load_or_generate_with(dir.path(), SigningAlg::Rs256, &clock)
            .expect("after grace");
        assert_eq!(
            jwks_keys(&after).len(),
            1,
            "expired retiring key unpublished"
        );
        assert_eq!(pem_names(dir.path()).len(), 2, "loading never deletes");
        let r2 = KeyStore::rotate(dir.path(), SigningAlg::Rs256, 60, &clock).expect("rotate");
        assert_eq!(r2.removed, vec![first.active_kid().to_owned()]);
        assert_eq!(pem_names(dir.path()).len(), 2, "expired key file deleted");
    }

    #[test]
    fn rotation_adopts_a_lone_key_file_without_manifest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pem = SigningAlg::Es256.generate_pem().expect("generate");
        write_new_key_file(&dir.path().join("mine.pem"), &pem).expect("write");
        let clock = ManualClock::new(5);
        let r = KeyStore::rotate(dir.path(), SigningAlg::Es256, 10, &clock).expect("rotate");
        assert!(r.retired.is_some());
        let listed = KeyStore::list(dir.path()).expect("list");
        assert_eq!(listed.len(), 2);
    }
}
