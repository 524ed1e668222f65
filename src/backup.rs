//! Backups of an embedded-store server: a copy of the store and of the key folder, written by
//! the running server into a new directory (`wecom-oidc backup`, through the admin socket), and
//! put back into a stopped server's directories by `wecom-oidc restore`.
//!
//! A backup directory holds `store/` (a sled database, see `storage::sled_copy` for what the
//! copy holds while the server keeps serving), `keys/` (the signing keys, owner-only) and
//! [`MANIFEST`], written last: a directory without it is an interrupted backup, and `restore`
//! refuses it. A PostgreSQL store is backed up with PostgreSQL's own tools (`pg_dump`), its
//! signing keys included, since they live in the database.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::storage::sled_copy::{self, CopySummary};
use crate::storage::{SledStore, StorageError, Store};

/// The file that marks a complete backup and describes it.
pub const MANIFEST: &str = "backup.json";

/// What a backup holds (its manifest, and the admin route's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The backup directory.
    pub to: String,
    /// When the backup began (Unix seconds).
    pub created_at: i64,
    /// The wecom-oidc release that wrote it.
    pub version: String,
    /// The store's copy.
    pub store: CopySummary,
    /// The files copied from the key folder.
    pub keys: Vec<String>,
    /// How long the backup took, in milliseconds.
    pub took_ms: u64,
}

/// What `restore` put back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restored {
    /// The backup's manifest.
    pub backup: Summary,
    /// The data directory written.
    pub data_dir: String,
    /// The key folder written.
    pub keys_dir: String,
}

/// Why a backup or a restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The target or source cannot be used as asked (the operator can fix it).
    #[error("{0}")]
    Refused(String),
    /// The store cannot be backed up by wecom-oidc (PostgreSQL: `pg_dump`).
    #[error("{0}")]
    Unsupported(String),
    /// Reading or writing failed.
    #[error("{0}")]
    Failed(String),
}

fn failed(what: &str, path: &Path, e: impl std::fmt::Display) -> BackupError {
    BackupError::Failed(format!("{what} {}: {e}", path.display()))
}

/// Whether `dir` exists and holds something.
fn is_non_empty(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// Backs up `store` and the key folder `keys_dir` into the new directory `to` (absent or
/// empty, absolute). On failure, what was written is removed again.
pub async fn backup(
    store: &dyn Store,
    keys_dir: &Path,
    to: &Path,
    now: i64,
) -> Result<Summary, BackupError> {
    if !to.is_absolute() {
        return Err(BackupError::Refused(format!(
            "the backup directory must be an absolute path (got {})",
            to.display()
        )));
    }
    if store.is_shared() {
        return Err(BackupError::Unsupported(
            "the store is PostgreSQL: back it up with pg_dump (the signing keys are in the \
             database too); see docs/deploying.md"
                .into(),
        ));
    }
    if is_non_empty(to) {
        return Err(BackupError::Refused(format!(
            "{} is not empty: a backup goes into a new directory",
            to.display()
        )));
    }
    let started = Instant::now();
    let created = !to.exists();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(to)
        .map_err(|e| failed("cannot create", to, e))?;
    let result = write_backup(store, keys_dir, to, now, started).await;
    if result.is_err() {
        // Leave the directory as it was found, so that the same command can be repeated.
        let _ = fs::remove_dir_all(to.join("store"));
        let _ = fs::remove_dir_all(to.join("keys"));
        let _ = fs::remove_file(to.join(MANIFEST));
        if created {
            let _ = fs::remove_dir(to);
        }
    }
    result
}

async fn write_backup(
    store: &dyn Store,
    keys_dir: &Path,
    to: &Path,
    now: i64,
    started: Instant,
) -> Result<Summary, BackupError> {
    let copy = store
        .backup_to(&to.join("store"))
        .await
        .map_err(|e| match e {
            StorageError::Backend(m) => BackupError::Failed(m),
            other => BackupError::Failed(other.to_string()),
        })?;
    let keys = copy_keys(keys_dir, &to.join("keys"))?;
    let summary = Summary {
        to: to.display().to_string(),
        created_at: now,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        store: copy,
        keys,
        took_ms: started.elapsed().as_millis() as u64,
    };
    write_synced(
        &to.join(MANIFEST),
        &serde_json::to_vec_pretty(&summary).unwrap_or_default(),
    )?;
    sync_dir(to)?;
    Ok(summary)
}

/// Copies the regular files of the key folder (keys, manifest; symlinks followed, as mounted
/// secrets use them) into the new owner-only folder `to`; the copies are owner-only too.
fn copy_keys(from: &Path, to: &Path) -> Result<Vec<String>, BackupError> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(to)
        .map_err(|e| failed("cannot create", to, e))?;
    let mut names = Vec::new();
    let entries = match fs::read_dir(from) {
        Ok(entries) => entries,
        // No key folder yet: the server has not generated a key (it would have at start).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(failed("cannot read", from, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| failed("cannot read", from, e))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let bytes = fs::read(&path).map_err(|e| failed("cannot read", &path, e))?;
        let name = entry.file_name();
        write_synced(&to.join(&name), &bytes)?;
        names.push(name.to_string_lossy().into_owned());
    }
    names.sort();
    sync_dir(to)?;
    Ok(names)
}

/// Writes a new owner-only file and waits until it is on disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| failed("cannot create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| failed("cannot write", path, e))
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| failed("cannot sync", dir, e))
}

/// Reads the manifest of the backup in `from`.
pub fn read_manifest(from: &Path) -> Result<Summary, BackupError> {
    let path = from.join(MANIFEST);
    let bytes = fs::read(&path).map_err(|e| {
        BackupError::Refused(format!(
            "{} is not a complete backup (cannot read {MANIFEST}: {e})",
            from.display()
        ))
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        BackupError::Refused(format!("{} is not a backup manifest: {e}", path.display()))
    })
}

/// Puts the backup in `from` back as the store in `data_dir` and the keys in `keys_dir`, for a
/// server that is stopped. Without `force`, a data directory or key folder that holds
/// something is refused; with it, they are replaced — but only if the data directory holds a
/// store (or nothing), and only if no server holds that store open. Everything is checked
/// before anything is changed.
pub fn restore(
    from: &Path,
    data_dir: &Path,
    keys_dir: &Path,
    force: bool,
) -> Result<Restored, BackupError> {
    let backup = read_manifest(from)?;
    let data_used = holds_more_than_run(data_dir);
    let keys_used = is_non_empty(keys_dir);
    if !force && (data_used || keys_used) {
        let which = match (data_used, keys_used) {
            (true, true) => format!("{} and {}", data_dir.display(), keys_dir.display()),
            (true, false) => data_dir.display().to_string(),
            _ => keys_dir.display().to_string(),
        };
        return Err(BackupError::Refused(format!(
            "{which} already hold(s) data: restoring replaces it. Stop the server and pass \
             --force to replace it"
        )));
    }
    if data_used {
        let names = entry_names(data_dir);
        let is_store = names.iter().any(|n| n == "conf") && names.iter().any(|n| n == "db");
        if !is_store {
            return Err(BackupError::Refused(format!(
                "{} holds something other than a store: is data_dir right? Nothing was changed",
                data_dir.display()
            )));
        }
        // Opening takes sled's lock: it fails while a server holds the store.
        if let Err(e) = SledStore::open(data_dir) {
            return Err(BackupError::Refused(format!(
                "cannot take over the store in {} ({e}): stop the server first. Nothing was \
                 changed",
                data_dir.display()
            )));
        }
    }
    // Checked; from here on the directories are replaced.
    if data_used {
        for name in entry_names(data_dir) {
            // The admin socket's folder belongs to the server's next start, not to the store.
            if name == "run" {
                continue;
            }
            let path = data_dir.join(&name);
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(|e| failed("cannot remove", &path, e))?;
        }
    }
    restore_store(&from.join("store"), data_dir)?;
    restore_keys(&from.join("keys"), keys_dir)?;
    Ok(Restored {
        backup,
        data_dir: data_dir.display().to_string(),
        keys_dir: keys_dir.display().to_string(),
    })
}

/// Copies the backup's store into the (now empty but for `run/`) data directory.
fn restore_store(from: &Path, data_dir: &Path) -> Result<CopySummary, BackupError> {
    // The copy goes beside, then moves in: sled wants an empty directory, `run/` may be there.
    let staging = data_dir.with_file_name(format!(
        ".{}.restoring",
        data_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let _ = fs::remove_dir_all(&staging);
    let copy = sled_copy::copy_dir(from, &staging, &crate::storage::sled_store::REINDEX)
        .map_err(|e| BackupError::Failed(e.to_string()))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|e| failed("cannot create", data_dir, e))?;
    for name in entry_names(&staging) {
        let (src, dst) = (staging.join(&name), data_dir.join(&name));
        fs::rename(&src, &dst).map_err(|e| failed("cannot move into place", &dst, e))?;
    }
    let _ = fs::remove_dir(&staging);
    sync_dir(data_dir)?;
    // The copy is checked as the server will open it (format version, every tree).
    SledStore::open(data_dir).map_err(|e| BackupError::Failed(e.to_string()))?;
    Ok(copy)
}

/// Replaces the key folder's files with the backup's.
fn restore_keys(from: &Path, keys_dir: &Path) -> Result<(), BackupError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(keys_dir)
        .map_err(|e| failed("cannot create", keys_dir, e))?;
    for name in entry_names(keys_dir) {
        let path = keys_dir.join(&name);
        if path.is_file() {
            fs::remove_file(&path).map_err(|e| failed("cannot remove", &path, e))?;
        }
    }
    for name in entry_names(from) {
        let bytes = fs::read(from.join(&name)).map_err(|e| failed("cannot read", from, e))?;
        write_synced(&keys_dir.join(&name), &bytes)?;
    }
    sync_dir(keys_dir)
}

fn entry_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Whether the data directory holds anything besides the admin socket's `run/` folder.
fn holds_more_than_run(dir: &Path) -> bool {
    entry_names(dir).iter().any(|n| n != "run")
}

/// The absolute form of `path`, relative ones taken from the current directory: the server
/// that writes a backup runs elsewhere than the command that asks for it.
pub fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_owned())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryStore, Session};

    fn session() -> Session {
        Session {
            sid: "sid".into(),
            identity: crate::identity::Identity {
                user_id: "alice".into(),
                ..Default::default()
            },
            connector_id: "wecom".into(),
            auth_time: 1,
            last_seen: 1,
            expires_at: i64::MAX,
            clients: vec![],
        }
    }

    #[tokio::test]
    async fn a_backup_restores_the_store_and_keys_and_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (data, keys, to) = (
            dir.path().join("data"),
            dir.path().join("keys"),
            dir.path().join("b"),
        );
        fs::create_dir(&keys).expect("keys");
        fs::write(keys.join("keys.json"), "{}").expect("write");
        let store = SledStore::open(&data).expect("open");
        store.create_session("k", &session()).await.expect("create");
        let summary = backup(&store, &keys, &to, 7).await.expect("backup");
        assert_eq!(summary.store.trees["sessions"], 1);
        assert_eq!(summary.keys, ["keys.json"]);
        assert_eq!(read_manifest(&to).expect("manifest"), summary);

        // The server still holds its store: even --force does not take it over.
        let held = restore(&to, &data, &keys, true).expect_err("held");
        assert!(held.to_string().contains("stop the server"), "{held}");
        drop(store);
        let refused = restore(&to, &data, &keys, false).expect_err("not empty");
        assert!(refused.to_string().contains("--force"), "{refused}");

        let (data2, keys2) = (dir.path().join("data2"), dir.path().join("keys2"));
        restore(&to, &data2, &keys2, false).expect("restore into new directories");
        let back = SledStore::open(&data2).expect("open");
        assert_eq!(back.find_session("k").await.expect("session"), session());
        assert_eq!(fs::read(keys2.join("keys.json")).expect("keys"), b"{}");
        drop(back);
        restore(&to, &data, &keys, true).expect("restore with --force");
    }

    #[tokio::test]
    async fn a_backup_needs_an_absolute_empty_target_and_a_backup_capable_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::temporary().expect("store");
        let keys = dir.path().join("keys");
        let relative = backup(&store, &keys, Path::new("b"), 0).await;
        assert!(matches!(relative, Err(BackupError::Refused(_))));
        fs::write(dir.path().join("x"), "x").expect("write");
        let full = backup(&store, &keys, dir.path(), 0).await;
        assert!(matches!(full, Err(BackupError::Refused(_))));
        let memory = backup(&MemoryStore::new(), &keys, &dir.path().join("m"), 0).await;
        assert!(matches!(memory, Err(BackupError::Failed(_))));
        assert!(
            !dir.path().join("m").exists(),
            "a failed backup leaves nothing"
        );
    }

    #[test]
    fn an_interrupted_backup_is_not_restored() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("store")).expect("mkdir");
        let err = restore(
            dir.path(),
            &dir.path().join("d"),
            &dir.path().join("k"),
            false,
        );
        assert!(matches!(err, Err(BackupError::Refused(m)) if m.contains(MANIFEST)));
    }
}
