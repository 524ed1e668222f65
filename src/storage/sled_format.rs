//! The format version of a sled store: written when a store is created, checked every time one
//! is opened, so that a release never reads records it does not understand.
//!
//! A store written by an older release is brought up to date (every step is listed in
//! [`migrate`]); a store written by a newer release is refused before anything in it is
//! touched, as PostgreSQL refuses "database files are incompatible with server": the newer
//! release may have changed what a record means, and an older binary would misread it or, worse,
//! rewrite it. The PostgreSQL backend does the same with its `schema_version` table.
//!
//! The version lives in sled's default tree (which no record kind uses) under [`VERSION_KEY`],
//! as decimal ASCII, so an operator can read it with any sled tool.
//!
//! # Compatibility promise
//!
//! Every release can open the stores of every earlier release. `tests/fixtures/` keeps one data
//! directory per release (made by `tests/reliability2.rs`'s fixture generator) and the test
//! suite opens each one and refreshes a token from it.
//!
//! Version 2 adds the expiry index (`sled_store::expiry`). A release of version 1 refuses a
//! version 2 store, which is what it must do: it would write records without index entries,
//! records no later sweep would find.

use super::{Result, StorageError};

/// The format this release writes. Raise it (and add the step to [`migrate`]) whenever a record
/// changes in a way an older release would misread; a field added with `#[serde(default)]` is
/// not such a change.
pub const FORMAT_VERSION: u32 = 2;

/// Where the version is kept in sled's default tree.
pub const VERSION_KEY: &[u8] = b"wecom-oidc.format_version";

/// What [`check_and_stamp`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// An empty database: stamped with [`FORMAT_VERSION`].
    Created,
    /// A store of this format.
    Current,
    /// A store of an older format, migrated from `from`. Version 0 is a store written before
    /// the version was recorded (its records are read as they are).
    Migrated {
        /// The version found.
        from: u32,
    },
}

/// Builds a store's expiry index from its records (the 1 → 2 step); the store module passes
/// its own, so that this module needs nothing of it.
pub type BuildIndex = fn(&sled::Db) -> Result<u64>;

/// Reads the version of the database `db` (just opened, before any record tree is), migrates
/// an older one and stamps it, refuses a newer one. `path` names the store in messages.
pub fn check_and_stamp(db: &sled::Db, path: &str, build_index: BuildIndex) -> Result<Opened> {
    let found = read_version(db)?;
    let opened = match found {
        Some(v) if v == FORMAT_VERSION => return Ok(Opened::Current),
        Some(v) if v > FORMAT_VERSION => {
            return Err(StorageError::Backend(format!(
                "the store in {path} has format version {v}, newer than this wecom-oidc \
                 ({version}) knows (version {FORMAT_VERSION}): a newer release wrote it, and \
                 this one could misread it. Run that release (or newer), or restore a backup \
                 made by this one. Nothing was changed",
                version = env!("CARGO_PKG_VERSION"),
            )))
        }
        Some(v) => {
            migrate(db, v, build_index)?;
            Opened::Migrated { from: v }
        }
        None if is_empty(db) => Opened::Created,
        None => {
            migrate(db, 0, build_index)?;
            Opened::Migrated { from: 0 }
        }
    };
    db.insert(VERSION_KEY, FORMAT_VERSION.to_string().as_bytes())
        .map_err(|e| {
            StorageError::Backend(format!("sled cannot record the format version: {e}"))
        })?;
    // The stamp is what a later release reads first: make it durable before any record is
    // written under the new format.
    db.flush().map_err(|e| {
        StorageError::Backend(format!("sled cannot record the format version: {e}"))
    })?;
    if let Opened::Migrated { from } = opened {
        tracing::info!(
            from,
            to = FORMAT_VERSION,
            store = path,
            "store format migrated"
        );
    }
    Ok(opened)
}

/// The recorded version, `None` if there is none.
pub fn read_version(db: &sled::Db) -> Result<Option<u32>> {
    let raw = db
        .get(VERSION_KEY)
        .map_err(|e| StorageError::Backend(format!("sled cannot read the format version: {e}")))?;
    let Some(raw) = raw else {
        return Ok(None);
    };
    std::str::from_utf8(&raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            StorageError::Backend(
                "the store's format version is unreadable: is this a wecom-oidc store? \
                 Nothing was changed"
                    .into(),
            )
        })
}

/// Whether the database holds nothing at all: no record in any tree.
fn is_empty(db: &sled::Db) -> bool {
    db.tree_names()
        .iter()
        .all(|name| db.open_tree(name).map(|t| t.is_empty()).unwrap_or(false))
}

/// Brings a store of version `from` (older than [`FORMAT_VERSION`]) up to date, one step per
/// version. Each step must be idempotent: a crash between a step and the stamp repeats it.
fn migrate(db: &sled::Db, from: u32, build_index: BuildIndex) -> Result<()> {
    for version in from..FORMAT_VERSION {
        match version {
            // 0 → 1: the version started being recorded; the records are unchanged.
            0 => {}
            // 1 → 2: the expiry index (`sled_store::expiry`), built from one scan of every
            // tree. A release that knows only version 1 refuses the store from now on: it would
            // write records without index entries, which no sweep would ever find.
            1 => {
                let entries = build_index(db)?;
                tracing::info!(entries, "expiry index built");
            }
            _ => unreachable!("no format step from version {version}"),
        }
    }
    Ok(())
}

/// The value under `key` in `tree` of `db`, for tests that look behind the store.
#[cfg(test)]
pub(crate) fn stored(db: &sled::Db, tree: &str, key: &str) -> Option<sled::IVec> {
    db.open_tree(tree)
        .expect("open tree")
        .get(key)
        .expect("read")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These tests are about the version; the index step has its own (`sled_store::expiry`).
    fn no_index(_: &sled::Db) -> Result<u64> {
        Ok(0)
    }

    fn db(dir: &std::path::Path) -> sled::Db {
        sled::Config::new().path(dir).open().expect("open")
    }

    #[test]
    fn a_new_store_is_stamped_and_reopens_as_current() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = db(dir.path());
        assert_eq!(
            check_and_stamp(&first, "x", no_index).expect("open"),
            Opened::Created
        );
        drop(first);
        let again = db(dir.path());
        assert_eq!(
            check_and_stamp(&again, "x", no_index).expect("open"),
            Opened::Current
        );
        assert_eq!(read_version(&again).expect("read"), Some(FORMAT_VERSION));
    }

    #[test]
    fn an_unversioned_store_with_records_is_migrated_from_version_0() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = db(dir.path());
        old.open_tree("sessions")
            .expect("tree")
            .insert("k", "v")
            .expect("insert");
        assert_eq!(
            check_and_stamp(&old, "x", no_index).expect("open"),
            Opened::Migrated { from: 0 }
        );
        assert_eq!(read_version(&old).expect("read"), Some(FORMAT_VERSION));
        assert_eq!(stored(&old, "sessions", "k"), Some(sled::IVec::from("v")));
    }

    #[test]
    fn a_store_from_a_newer_release_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let newer = db(dir.path());
        let future = (FORMAT_VERSION + 1).to_string();
        newer
            .insert(VERSION_KEY, future.as_bytes())
            .expect("insert");
        let err = check_and_stamp(&newer, "/srv/store", no_index).expect_err("refused");
        let message = err.to_string();
        assert!(
            message.contains(&format!("format version {future}")),
            "{message}"
        );
        assert!(message.contains("newer"), "{message}");
        assert!(message.contains("/srv/store"), "{message}");
        assert_eq!(
            newer.get(VERSION_KEY).expect("get"),
            Some(sled::IVec::from(future.as_bytes()))
        );
    }

    #[test]
    fn an_unreadable_version_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let odd = db(dir.path());
        odd.insert(VERSION_KEY, &b"\xff\x01"[..]).expect("insert");
        assert!(check_and_stamp(&odd, "x", no_index).is_err());
    }
}
