//! The key manifest `keys.json`: which key files exist, their kid and algorithm, and which one
//! signs. It is what lets rotation keep a previous key published during a grace period.

use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{KeyError, SigningAlg};

/// File name of the manifest inside the key directory.
pub(crate) const MANIFEST_FILE: &str = "keys.json";

/// Whether a key signs new tokens or is only still published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Signs every new token. Exactly one key per algorithm is active.
    Active,
    /// No longer signs, but stays in the JWKS so that tokens it signed still verify until they
    /// expire (the rotation grace period).
    Retiring,
}

/// A key as a rotation sees it, whether the manifest or the shared store keeps it: both rotate
/// by [`retire_and_expire`]. Implemented by [`rotating_key!`] for records with the fields of
/// the same names.
pub(crate) trait RotatingKey {
    /// The key's `kid`.
    fn kid(&self) -> &str;
    /// The key's algorithm.
    fn alg(&self) -> SigningAlg;
    /// Active or retiring.
    fn status(&self) -> KeyStatus;
    /// For a retiring key, when its grace period ends.
    fn retire_at(&self) -> Option<i64>;
    /// Makes the key retiring until `at`.
    fn retire(&mut self, at: i64);
}

/// Implements [`RotatingKey`] for a key record with `kid`, `alg`, `status` and `retire_at` fields.
macro_rules! rotating_key {
    ($record:ty) => {
        impl $crate::tokens::manifest::RotatingKey for $record {
            fn kid(&self) -> &str {
                &self.kid
            }
            fn alg(&self) -> $crate::tokens::SigningAlg {
                self.alg
            }
            fn status(&self) -> $crate::tokens::KeyStatus {
                self.status
            }
            fn retire_at(&self) -> Option<i64> {
                self.retire_at
            }
            fn retire(&mut self, at: i64) {
                self.status = $crate::tokens::KeyStatus::Retiring;
                self.retire_at = Some(at);
            }
        }
    };
}
pub(crate) use rotating_key;

rotating_key!(ManifestEntry);

/// The rotation of `alg` at `now`, before the new key joins `keys`: the active key of `alg`
/// retires for `grace_secs`, then retiring keys whose grace period has ended leave. Returns the
/// retired key's kid and the keys that left.
pub(crate) fn retire_and_expire<K: RotatingKey>(
    keys: &mut Vec<K>,
    alg: SigningAlg,
    now: i64,
    grace_secs: i64,
) -> (Option<String>, Vec<K>) {
    let mut retired = None;
    for k in keys.iter_mut() {
        if k.alg() == alg && k.status() == KeyStatus::Active {
            k.retire(now.saturating_add(grace_secs.max(0)));
            retired = Some(k.kid().to_owned());
        }
    }
    let (expired, kept) = std::mem::take(keys).into_iter().partition(|k| {
        k.status() == KeyStatus::Retiring && k.retire_at().is_some_and(|t| t <= now)
    });
    *keys = kept;
    (retired, expired)
}

/// One key as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ManifestEntry {
    /// RFC 7638 thumbprint of the key; checked against the key file on every load.
    pub(crate) kid: String,
    /// The JWS algorithm the key signs with.
    pub(crate) alg: SigningAlg,
    /// File name of the PKCS#8 PEM private key, relative to the key directory.
    pub(crate) file: String,
    /// When the key was generated, seconds since the Unix epoch.
    pub(crate) created_at: i64,
    /// Active or retiring.
    pub(crate) status: KeyStatus,
    /// For a retiring key: when its grace period ends (seconds since the Unix epoch). After
    /// that it is no longer published, and the next rotation deletes it. `None`: kept until
    /// removed by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retire_at: Option<i64>,
}

/// The whole manifest. Unknown fields are ignored so that a later version may add some.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// Every key, in no particular order.
    pub(crate) keys: Vec<ManifestEntry>,
}

impl Manifest {
    /// Reads `dir/keys.json`; `Ok(None)` when it does not exist.
    pub(crate) fn read(dir: &Path) -> Result<Option<Manifest>, KeyError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(KeyError::Io {
                    action: "read",
                    path,
                    source,
                })
            }
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| KeyError::Manifest {
                path: path.clone(),
                // serde_json's message names a line and column, never the document's contents.
                reason: format!("not a valid key manifest: {e}"),
            })?;
        manifest.validate(&path)?;
        Ok(Some(manifest))
    }

    /// Checks what the types cannot: safe file names, unique kids and files, at least one active
    /// key and at most one per algorithm (each algorithm has one signer).
    fn validate(&self, path: &Path) -> Result<(), KeyError> {
        let bad = |reason: String| KeyError::Manifest {
            path: path.to_path_buf(),
            reason,
        };
        if self.keys.is_empty() {
            return Err(bad("lists no keys".to_owned()));
        }
        for (i, entry) in self.keys.iter().enumerate() {
            if !is_plain_file_name(&entry.file) {
                return Err(bad(format!(
                    "file {:?} must be a plain file name inside the key directory",
                    entry.file
                )));
            }
            if self.keys[..i].iter().any(|e| e.kid == entry.kid) {
                return Err(bad(format!("kid {:?} is listed twice", entry.kid)));
            }
            if self.keys[..i].iter().any(|e| e.file == entry.file) {
                return Err(bad(format!("file {:?} is listed twice", entry.file)));
            }
        }
        if !self.keys.iter().any(|e| e.status == KeyStatus::Active) {
            return Err(bad(
                "no key is marked active; at least one must be".to_owned()
            ));
        }
        for alg in SigningAlg::ALL {
            let n = self
                .keys
                .iter()
                .filter(|e| e.status == KeyStatus::Active && e.alg == alg)
                .count();
            if n > 1 {
                return Err(bad(format!(
                    "{n} {alg} keys are marked active; at most one per algorithm may be"
                )));
            }
        }
        Ok(())
    }

    /// Writes `dir/keys.json` atomically: a temporary file in the same directory, flushed to
    /// disk, then renamed over the old manifest, so a crash leaves either the old or the new one.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), KeyError> {
        let path = dir.join(MANIFEST_FILE);
        let io = |action: &'static str, path: PathBuf| {
            move |source: std::io::Error| KeyError::Io {
                action,
                path,
                source,
            }
        };
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| KeyError::Manifest {
            path: path.clone(),
            reason: format!("cannot serialize: {e}"),
        })?;
        json.push(b'\n');
        let mut tmp = tempfile::Builder::new()
            .prefix(".keys.json.")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(io("create a temporary file in", dir.to_path_buf()))?;
        tmp.write_all(&json)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(io("write", tmp.path().to_path_buf()))?;
        tmp.persist(&path)
            .map_err(|e| io("replace", path.clone())(e.error))?;
        sync_dir(dir)
    }
}

/// Flushes a directory's entries (a new or renamed file) to disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), KeyError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| KeyError::Io {
            action: "sync",
            path: dir.to_path_buf(),
            source,
        })
}

/// A single normal path component: no separators, no `..`, not hidden.
fn is_plain_file_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    ) && !name.starts_with('.')
        && !name.contains('\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kid: &str, file: &str, status: KeyStatus) -> ManifestEntry {
        ManifestEntry {
            kid: kid.to_owned(),
            alg: SigningAlg::Rs256,
            file: file.to_owned(),
            created_at: 1_700_000_000,
            status,
            retire_at: None,
        }
    }

    #[test]
    fn manifest_round_trips_through_an_atomic_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = Manifest {
            keys: vec![
                entry("a", "rs256-a.pem", KeyStatus::Active),
                entry("b", "rs256-b.pem", KeyStatus::Retiring),
            ],
        };
        manifest.write(dir.path()).expect("write");
        manifest.write(dir.path()).expect("overwrite");
        let read = Manifest::read(dir.path()).expect("read");
        assert_eq!(read, Some(manifest));
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("read_dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(MANIFEST_FILE)]);
    }

    #[test]
    fn missing_manifest_is_not_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Manifest::read(dir.path()).ok(), Some(None));
    }

    /// Whether a manifest listing `keys` passes validation.
    fn is_valid(keys: Vec<ManifestEntry>) -> bool {
        Manifest { keys }.validate(Path::new("keys.json")).is_ok()
    }

    #[test]
    fn manifest_may_have_one_active_key_per_algorithm() {
        let mut es = entry("b", "b.pem", KeyStatus::Active);
        es.alg = SigningAlg::Es256;
        assert!(is_valid(vec![entry("a", "a.pem", KeyStatus::Active), es]));
    }

    #[test]
    fn manifest_must_have_exactly_one_active_key() {
        assert!(!is_valid(vec![entry("a", "a.pem", KeyStatus::Retiring)]));
        assert!(!is_valid(vec![
            entry("a", "a.pem", KeyStatus::Active),
            entry("b", "b.pem", KeyStatus::Active),
        ]));
        assert!(!is_valid(Vec::new()));
    }

    #[test]
    fn manifest_file_names_cannot_leave_the_key_directory() {
        for file in [
            "../a.pem",
            "/etc/a.pem",
            "sub/a.pem",
            "..",
            ".",
            "",
            ".hidden.pem",
            "a\\b.pem",
        ] {
            assert!(
                !is_valid(vec![entry("a", file, KeyStatus::Active)]),
                "{file:?} accepted"
            );
        }
    }

    #[test]
    fn manifest_rejects_duplicate_kids_and_files() {
        for (kid, file) in [("a", "b.pem"), ("b", "a.pem")] {
            assert!(
                !is_valid(vec![
                    entry("a", "a.pem", KeyStatus::Active),
                    entry(kid, file, KeyStatus::Retiring),
                ]),
                "{kid} {file}"
            );
        }
    }

    #[test]
    fn corrupt_manifest_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(MANIFEST_FILE), b"{not json").expect("write");
        let err = Manifest::read(dir.path()).expect_err("corrupt manifest accepted");
        assert!(err.to_string().contains(MANIFEST_FILE), "{err}");
    }
}
