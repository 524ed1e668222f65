//! One sled tree holding one record kind as JSON ([`Table`]), with the single-use operations
//! made atomic by sled's compare-and-swap, and how sled's and serde's errors become the store's.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::expiry::{self, Ends};
use crate::storage::{Result, StorageError};

/// A sled error as a backend error. sled's messages name files, offsets and tree names, never
/// values.
///
/// An I/O error (the disk full, or failing) is [`StorageError::Unavailable`]: the request may
/// succeed once space returns. Anything else (corruption, a bug) is `Backend`.
pub(super) fn sled_error(op: &str, tree: &str, err: &sled::Error) -> StorageError {
    let message = format!("sled {op} on {tree}: {err}");
    match err {
        sled::Error::Io(_) => StorageError::Unavailable(message),
        _ => StorageError::Backend(message),
    }
}

/// A serde_json error as a backend error, *without* serde_json's message: it quotes offending
/// values (`invalid type: string "alice"`), and records hold identities. The class and position
/// are enough to diagnose.
fn codec_error(op: &str, tree: &str, err: &serde_json::Error) -> StorageError {
    StorageError::Backend(format!(
        "cannot {op} a record in {tree}: {:?} error at line {} column {}",
        err.classify(),
        err.line(),
        err.column()
    ))
}

/// What [`Table::update`] writes once it has judged the record.
pub(super) enum Write<T> {
    /// Nothing.
    Keep,
    /// This record, created or replaced.
    Put(T),
    /// Nothing any more: the record is removed.
    Remove,
}

/// One sled tree holding one record kind, named for error messages.
pub(super) struct Table {
    pub(super) tree: sled::Tree,
    pub(super) name: &'static str,
    /// Where the records' ends are indexed; `None` for a kind that never expires.
    pub(super) index: Option<expiry::Index>,
}

impl Table {
    pub(super) fn open(db: &sled::Db, name: &'static str) -> Result<Table> {
        let tree = db
            .open_tree(name)
            .map_err(|e| sled_error("open_tree", name, &e))?;
        let index = expiry::index_for(db, name)?;
        Ok(Table { tree, name, index })
    }

    pub(super) fn encode<T: Serialize>(&self, record: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(record).map_err(|e| codec_error("encode", self.name, &e))
    }

    pub(super) fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| codec_error("decode", self.name, &e))
    }

    pub(super) fn sled<T>(&self, op: &str, result: sled::Result<T>) -> Result<T> {
        result.map_err(|e| sled_error(op, self.name, &e))
    }

    /// Inserts `record` under `key` unless the key is taken, in one atomic step.
    pub(super) fn create<T: Ends>(&self, key: &str, record: &T) -> Result<()> {
        let value = self.encode(record)?;
        // Index first (`expiry`): if the create loses, the entry is stale and the sweep drops it.
        self.index(record.ends_at(), key.as_bytes())?;
        // compare-and-swap from "absent": two racing creates cannot both succeed.
        if self.swap(key.as_bytes(), None, Some(value))? {
            Ok(())
        } else {
            Err(StorageError::AlreadyExists)
        }
    }

    /// Inserts or replaces `record` under `key`.
    pub(super) fn save<T: Ends>(&self, key: &str, record: &T) -> Result<()> {
        let value = self.encode(record)?;
        self.index(record.ends_at(), key.as_bytes())?;
        self.sled("insert", self.tree.insert(key, value))?;
        Ok(())
    }

    pub(super) fn find<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        match self.sled("get", self.tree.get(key))? {
            Some(bytes) => self.decode(&bytes),
            None => Err(StorageError::NotFound),
        }
    }

    /// Removes and returns the record under `key`; sled's `remove` is atomic, so of two racing
    /// takes only one gets the record.
    pub(super) fn take<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        match self.sled("remove", self.tree.remove(key))? {
            Some(bytes) => self.decode(&bytes),
            None => Err(StorageError::NotFound),
        }
    }

    /// The last `limit` records in key order, last first (a log table's newest).
    pub(super) fn newest<T: DeserializeOwned>(&self, limit: usize) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for entry in self.tree.iter().rev() {
            if out.len() >= limit {
                break;
            }
            let (_, value) = self.sled("iter", entry)?;
            match self.decode(&value) {
                Ok(record) => out.push(record),
                Err(err) => {
                    tracing::warn!(error = %err, tree = self.name, "skipping an undecodable record")
                }
            }
        }
        Ok(out)
    }

    pub(super) fn delete(&self, key: &str) -> Result<()> {
        self.sled("remove", self.tree.remove(key))?;
        Ok(())
    }

    /// Writes `new` (or removes the key, for `None`) only if the stored value is still exactly
    /// `current` (`None`: absent); false when something else was written meanwhile.
    pub(super) fn swap(
        &self,
        key: &[u8],
        current: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool> {
        let swapped = self.sled(
            "compare_and_swap",
            self.tree.compare_and_swap(key, current, new),
        )?;
        Ok(swapped.is_ok())
    }

    /// Reads the record under `key` (`None`: absent) and lets `change` judge it: `change` gives
    /// the answer and what to write. The write lands only over exactly the value read (a
    /// compare-and-swap loop rather than `fetch_and_update`, whose closure cannot report a
    /// decode error); when another write came in between, `change` judges the newer record. So
    /// of two racing single-use calls only one sees the record unused.
    pub(super) fn update<T, R>(
        &self,
        key: &str,
        mut change: impl FnMut(Option<T>) -> Result<(R, Write<T>)>,
    ) -> Result<R>
    where
        T: Ends + DeserializeOwned,
    {
        loop {
            let current = self.sled("get", self.tree.get(key))?;
            let record: Option<T> = current.as_deref().map(|b| self.decode(b)).transpose()?;
            let before = record.as_ref().and_then(Ends::ends_at);
            let (answer, write) = change(record)?;
            let new = match write {
                Write::Keep => return Ok(answer),
                Write::Put(record) => {
                    // A record whose end stays has its entry already (a touched session).
                    let end = record.ends_at();
                    if end != before {
                        self.index(end, key.as_bytes())?;
                    }
                    Some(self.encode(&record)?)
                }
                Write::Remove => None,
            };
            if self.swap(key.as_bytes(), current.as_deref(), new)? {
                return Ok(answer);
            }
        }
    }

    /// Sets the single-use flag `flag` of the record under `key` (`NotFound` if absent) unless
    /// it is set already, and answers the record as it was before. The write lands only over
    /// exactly the value read, as in [`Table::update`], so of two racing calls one sees the flag
    /// clear. The record is not cloned for the write: the flag is set for
    /// the encoding and cleared again for the answer (this is every `/token`'s code redemption).
    /// A flag is not an end: the record's index entry stays as it is.
    pub(super) fn flip_once<T>(&self, key: &str, flag: impl Fn(&mut T) -> &mut bool) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
    {
        loop {
            let current = self
                .sled("get", self.tree.get(key))?
                .ok_or(StorageError::NotFound)?;
            let mut record: T = self.decode(&current)?;
            if *flag(&mut record) {
                return Ok(record);
            }
            *flag(&mut record) = true;
            let new = self.encode(&record)?;
            *flag(&mut record) = false;
            if self.swap(key.as_bytes(), Some(&current), Some(new))? {
                return Ok(record);
            }
        }
    }

    /// [`Table::update`] of a record that must exist (`NotFound` otherwise).
    pub(super) fn update_found<T, R>(
        &self,
        key: &str,
        mut change: impl FnMut(T) -> Result<(R, Write<T>)>,
    ) -> Result<R>
    where
        T: Ends + DeserializeOwned,
    {
        self.update(key, |record| change(record.ok_or(StorageError::NotFound)?))
    }
}
