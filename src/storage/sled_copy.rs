//! A copy of a sled database into a fresh one, tree by tree: how a running server backs up its
//! store, and how `restore` puts a backup back.
//!
//! # Why a copy of the records, and what it holds
//!
//! A sled database cannot be copied file by file while it is open: sled rewrites its segments
//! in place in the background, so the files are consistent only when no process has them open.
//! Two ways remain while the server runs:
//!
//! - stopping every write (a barrier in front of every write path) and copying the trees: a
//!   state the server passed through, but every login and refresh waits for the whole copy,
//!   seconds on a large store;
//! - copying the trees while writes go on, which is what [`copy_db`] does. Every tree is read
//!   through an iterator opened after the backup began, and sled's operations on a key are
//!   linearizable: a write that completed before the backup began is seen. Every credential a
//!   client held when the backup began (the response that gave it waited for its write, see
//!   `Durability`) is therefore in the copy. Writes made during the copy may or may not be, tree
//!   by tree — a refresh during the backup may leave the old token spent in the copy and the new
//!   one absent — which is what restoring any backup means for what happened after it: those
//!   clients log in again.
//!
//! The copy's expiry index is built again from the records it holds: copied while writes go on,
//! the source's index may miss a record of the copy (one the sweep removed, with its entry,
//! between the copy of its tree and the copy of the index), which no sweep of the restored store
//! would then find.
//!
//! sled's own `Db::export`/`import` copy the same records but panic on an I/O error: a full
//! backup disk would take a server thread down. This copy returns the error instead.

use std::collections::BTreeMap;
use std::path::Path;

use super::sled_format::{self, FORMAT_VERSION};
use super::{Result, StorageError};

/// What a copy holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CopySummary {
    /// Records per tree (sled's default tree holds the format version).
    pub trees: BTreeMap<String, u64>,
    /// Records in all.
    pub records: u64,
    /// The store format of the copy.
    pub format_version: u32,
}

fn backend(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(format!("{what}: {e}"))
}

/// Opens the sled database in `dir`, creating it if absent; `what` names the step in the error.
fn open_db(dir: &Path, what: &str) -> Result<sled::Db> {
    sled::Config::new()
        .path(dir)
        .open()
        .map_err(|e| backend(what, e))
}

/// How a copy rebuilds its expiry index from the records it holds (the store module's own,
/// passed in so that this module needs nothing of it).
pub struct Reindex {
    /// The index tree's name.
    pub tree: &'static str,
    /// Writes the index entries of every record in the database.
    pub build: fn(&sled::Db) -> Result<u64>,
}

/// Copies every tree of `src` into a new sled database in `dir`, which must be absent or
/// empty, and flushes it.
pub fn copy_db(src: &sled::Db, dir: &Path, reindex: &Reindex) -> Result<CopySummary> {
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(StorageError::Backend(format!(
            "{} is not empty: a copy goes into a new directory",
            dir.display()
        )));
    }
    let dst = open_db(dir, "cannot create the copy")?;
    let mut summary = CopySummary {
        trees: BTreeMap::new(),
        records: 0,
        format_version: FORMAT_VERSION,
    };
    for name in src.tree_names() {
        let from = src
            .open_tree(&name)
            .map_err(|e| backend("cannot open a tree to copy", e))?;
        let to = dst
            .open_tree(&name)
            .map_err(|e| backend("cannot create a tree in the copy", e))?;
        let mut n = 0;
        for entry in from.iter() {
            let (k, v) = entry.map_err(|e| backend("cannot read the store", e))?;
            to.insert(k, v)
                .map_err(|e| backend("cannot write the copy", e))?;
            n += 1;
        }
        summary.records += n;
        summary
            .trees
            .insert(String::from_utf8_lossy(&name).into_owned(), n);
    }
    summary.format_version = sled_format::read_version(&dst)?.unwrap_or(0);
    if summary.format_version >= 2 {
        // From version 2 on (a store of an older one gets its index when it is opened).
        (reindex.build)(&dst)?;
        let name = reindex.tree;
        let index = dst
            .open_tree(name)
            .map_err(|e| backend("cannot write the copy", e))?;
        let (now, before) = (index.len() as u64, summary.trees.insert(name.into(), 0));
        summary.records = summary.records - before.unwrap_or(0) + now;
        summary.trees.insert(name.into(), now);
    }
    dst.flush()
        .map_err(|e| backend("cannot write the copy", e))?;
    Ok(summary)
}

/// Copies the database in `from` (a backup, not open elsewhere) into a new one in `to`,
/// refusing a backup whose format is newer than this release knows.
pub fn copy_dir(from: &Path, to: &Path, reindex: &Reindex) -> Result<CopySummary> {
    if !from.join("conf").is_file() || !from.join("db").is_file() {
        return Err(StorageError::Backend(format!(
            "{} holds no store (no `conf` and `db` files)",
            from.display()
        )));
    }
    let src = open_db(
        from,
        &format!("cannot open the store in {}", from.display()),
    )?;
    if let Some(v) = sled_format::read_version(&src)? {
        if v > FORMAT_VERSION {
            return Err(StorageError::Backend(format!(
                "the store in {} has format version {v}, newer than this wecom-oidc knows \
                 (version {FORMAT_VERSION}): restore it with that release (or newer). Nothing \
                 was changed",
                from.display()
            )));
        }
    }
    copy_db(&src, to, reindex)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the store's index: one entry per record of `used_jtis`, so that these
    /// tests see the copy call it and count its tree (the real index: `sled_store::expiry`).
    const MARKS: Reindex = Reindex {
        tree: "marks",
        build: |db| {
            let marks = db.open_tree("marks").expect("marks");
            // Like the real one, it never creates a record tree.
            if db.tree_names().iter().any(|n| &n[..] == b"used_jtis") {
                for record in db.open_tree("used_jtis").expect("used_jtis").iter() {
                    let (key, _) = record.expect("read");
                    marks.insert(key, &[]).expect("mark");
                }
            }
            Ok(marks.len() as u64)
        },
    };

    fn stamp(db: &sled::Db) {
        sled_format::check_and_stamp(db, "src", MARKS.build).expect("stamp");
    }

    #[test]
    fn a_copy_holds_every_tree_and_record_and_the_format_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = sled::Config::new()
            .path(dir.path().join("src"))
            .open()
            .expect("open");
        stamp(&src);
        for i in 0..50u32 {
            src.open_tree("sessions")
                .expect("tree")
                .insert(i.to_be_bytes(), &b"s"[..])
                .expect("insert");
        }
        src.open_tree("refresh_tokens")
            .expect("tree")
            .insert("rt", "record")
            .expect("insert");
        let summary = copy_db(&src, &dir.path().join("copy"), &MARKS).expect("copy");
        assert_eq!(summary.trees["sessions"], 50);
        assert_eq!(summary.trees["refresh_tokens"], 1);
        assert_eq!(summary.format_version, FORMAT_VERSION);
        drop(src);
        let back =
            copy_dir(&dir.path().join("copy"), &dir.path().join("back"), &MARKS).expect("back");
        assert_eq!(back, summary);
        let db = sled::open(dir.path().join("back")).expect("open");
        assert_eq!(
            sled_format::stored(&db, "refresh_tokens", "rt"),
            Some(sled::IVec::from("record"))
        );
    }

    #[test]
    fn a_copy_rebuilds_its_index_from_the_records_it_holds() {
        let src = sled::Config::new().temporary(true).open().expect("open");
        stamp(&src);
        // A record whose entry the source lacks, as a sweep racing the copy can leave it.
        src.open_tree("used_jtis")
            .expect("tree")
            .insert("jti", &br#"{"expires_at":5}"#[..])
            .expect("insert");
        let dir = tempfile::tempdir().expect("tempdir");
        let summary = copy_db(&src, &dir.path().join("copy"), &MARKS).expect("copy");
        assert_eq!(summary.trees["used_jtis"], 1);
        let db = sled::open(dir.path().join("copy")).expect("open");
        assert_eq!(db.open_tree("marks").expect("index").len(), 1);
        assert_eq!(summary.trees["marks"], 1);
    }

    #[test]
    fn a_copy_never_goes_into_a_directory_that_holds_something() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("keep.txt"), "x").expect("write");
        let src = sled::Config::new().temporary(true).open().expect("open");
        assert!(copy_db(&src, dir.path(), &MARKS).is_err());
        assert_eq!(
            std::fs::read(dir.path().join("keep.txt")).expect("read"),
            b"x"
        );
    }

    #[test]
    fn a_backup_from_a_newer_release_is_not_restored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let newer = sled::open(dir.path().join("b")).expect("open");
        newer
            .insert(
                sled_format::VERSION_KEY,
                (FORMAT_VERSION + 1).to_string().as_bytes(),
            )
            .expect("insert");
        drop(newer);
        let err =
            copy_dir(&dir.path().join("b"), &dir.path().join("to"), &MARKS).expect_err("newer");
        assert!(err.to_string().contains("newer"), "{err}");
        assert!(!dir.path().join("to").exists());
    }
}
