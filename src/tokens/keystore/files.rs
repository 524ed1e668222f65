//! The key directory on disk: creating it owner-only, reading or adopting the manifest, writing
//! new key files with mode 0600, loading and parsing each key file, and generating keys.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{KeyInfo, LoadedKey};
use crate::clock::Clock;
use crate::tokens::manifest::{sync_dir, Manifest, ManifestEntry, MANIFEST_FILE};
use crate::tokens::{jwk_thumbprint, KeyError, KeyStatus, SigningAlg};

/// Creates the key directory, owner-only, if missing.
pub(super) fn create_key_dir(dir: &Path) -> Result<(), KeyError> {
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
pub(super) fn manifest_or_adopt(dir: &Path) -> Result<Manifest, KeyError> {
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
pub(super) fn new_key_file(
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

/// The public JWK of a key, members in the conventional order.
pub(super) fn public_jwk(key: &LoadedKey) -> Value {
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
pub(super) fn load_from_manifest(
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
pub(super) fn adopt(path: &Path) -> Result<LoadedKey, KeyError> {
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
pub(super) fn generate(
    dir: &Path,
    alg: SigningAlg,
    clock: &dyn Clock,
) -> Result<LoadedKey, KeyError> {
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
pub(super) fn write_new_key_file(path: &Path, pem: &[u8]) -> Result<(), KeyError> {
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
pub(super) fn pem_files(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
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
