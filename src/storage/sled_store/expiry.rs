//! The expiry index of the sled store: one tree whose keys sort by the end of the record they
//! name, so the sweep reads only what has expired instead of every record of every tree.
//!
//! # Layout
//!
//! A key in the [`TREE`] tree is the record's end (Unix seconds, big-endian, with the sign bit
//! flipped so that negative ends sort before positive ones), one byte naming the record kind
//! ([`KINDS`]), then the record's own key; the value is empty. The sweep reads the range of ends
//! before `now`; for each entry it reads that one record and judges its real end.
//!
//! # Why the index may be wrong, and why that is safe
//!
//! sled has no atomicity across trees without a transaction, and a transaction takes sled's
//! global write lock: too slow for every `/token`. So every write that sets or moves an end
//! writes the index entry *first* and the record second. sled recovers a prefix of its log after
//! a crash, so a recovered record always has its entry. What can be left over is the reverse: an
//! entry whose record is gone (taken, deleted, never written because its create lost a race) or
//! now ends later (a record replaced or extended wrote an entry of its own). The sweep drops such
//! an entry without touching the record. A write that changes a record but not its end (a code
//! marked redeemed, a session touched) writes no entry: the entry of its end is still there.
//!
//! A store of format version 1 has no index; opening it builds one from one scan of every tree
//! ([`build_index`], a step of `sled_format`'s migration).

use serde::Serialize;

use super::{
    sled_error, AccessToken, AuditEvent, AuthCode, AuthRequest, Expiring, LeaseRecord, LoginEvent,
    RefreshToken, RevokedGrant, Session, SubjectMark, Table, Trees, UpstreamToken, UsedJti,
};
use crate::storage::device::DeviceAuthorization;
use crate::storage::{Result, StorageError};

/// The name of the index tree.
pub(in crate::storage) const TREE: &str = "expiry";

/// How the sweep reads the end of one kind of record from its stored bytes (`None`: it cannot
/// be decoded).
type EndOf = fn(&[u8]) -> Option<i64>;

fn end_of<T: Expiring>(bytes: &[u8]) -> Option<i64> {
    serde_json::from_slice::<T>(bytes).ok().map(|r| r.end())
}

/// Every record kind that expires: its tree, its tag in index keys, and how to read its end.
/// A tag is stored on disk: never renumber one, only add.
const KINDS: &[(&str, u8, EndOf)] = &[
    ("auth_requests", 1, end_of::<AuthRequest>),
    ("auth_codes", 2, end_of::<AuthCode>),
    ("access_tokens", 3, end_of::<AccessToken>),
    ("revoked_grants", 4, end_of::<RevokedGrant>),
    ("upstream_tokens", 5, end_of::<UpstreamToken>),
    ("refresh_tokens", 6, end_of::<RefreshToken>),
    ("used_jtis", 7, end_of::<UsedJti>),
    ("sessions", 8, end_of::<Session>),
    ("subject_marks", 9, end_of::<SubjectMark>),
    ("login_events", 10, end_of::<LoginEvent>),
    ("audit_events", 11, end_of::<AuditEvent>),
    ("leases", 12, end_of::<LeaseRecord>),
    ("device_authorizations", 13, end_of::<DeviceAuthorization>),
    (
        "device_user_codes",
        14,
        end_of::<super::device::UserCodeEntry>,
    ),
];

/// The tag of the auth-request kind, whose removals move the pending-request counter.
const AUTH_REQUESTS: u8 = 1;

/// The tag of the user-code kind: the lookup half of a device authorization, not counted as a
/// record of its own when swept (the authorization it points to is).
const DEVICE_USER_CODES: u8 = 14;

/// The index tree and the tag of one record kind: what a [`Table`] of an expiring kind carries.
#[derive(Clone)]
pub(super) struct Index {
    tree: sled::Tree,
    tag: u8,
}

/// The index of the record kind stored in the tree `name`, or `None` for a kind that never
/// expires (user links, signing keys).
pub(super) fn index_for(db: &sled::Db, name: &str) -> Result<Option<Index>> {
    let Some(&(_, tag, _)) = KINDS.iter().find(|(n, _, _)| *n == name) else {
        return Ok(None);
    };
    let tree = db
        .open_tree(TREE)
        .map_err(|e| sled_error("open_tree", TREE, &e))?;
    Ok(Some(Index { tree, tag }))
}

/// The first bytes of an index key: `end` in an order that sorts like the number.
fn end_prefix(end: i64) -> [u8; 8] {
    ((end as u64) ^ (1 << 63)).to_be_bytes()
}

/// The index key naming the record `key` of kind `tag` that ends at `end`.
fn entry_key(end: i64, tag: u8, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + key.len());
    out.extend_from_slice(&end_prefix(end));
    out.push(tag);
    out.extend_from_slice(key);
    out
}

/// An index key taken apart: end, tag, record key (`None` if it is not one of ours).
fn split_entry(entry: &[u8]) -> Option<(i64, u8, &[u8])> {
    let (end, rest) = entry.split_first_chunk::<8>()?;
    let (&tag, key) = rest.split_first()?;
    Some(((u64::from_be_bytes(*end) ^ (1 << 63)) as i64, tag, key))
}

/// A record type the store writes, and the end by which the index finds it (`None`: it never
/// expires).
pub(super) trait Ends: Serialize {
    fn ends_at(&self) -> Option<i64>;
}

impl<T: Expiring + Serialize> Ends for T {
    fn ends_at(&self) -> Option<i64> {
        Some(self.end())
    }
}

impl Ends for &str {
    fn ends_at(&self) -> Option<i64> {
        None
    }
}

impl Ends for crate::storage::SigningKeySet {
    fn ends_at(&self) -> Option<i64> {
        None
    }
}

impl Table {
    /// Writes the index entry for the record under `key` ending at `end` (nothing for a kind
    /// that never expires). Called *before* the record is written (module docs).
    pub(super) fn index(&self, end: Option<i64>, key: &[u8]) -> Result<()> {
        if let (Some(index), Some(end)) = (&self.index, end) {
            let entry = entry_key(end, index.tag, key);
            self.sled("insert", index.tree.insert(entry, &[]))?;
        }
        Ok(())
    }

    /// Judges the record `key` for an index entry that ended at `entry_end`, before `now`.
    fn sweep_one(&self, key: &[u8], entry_end: i64, end_of: EndOf, now: i64) -> Result<Judged> {
        let Some(value) = self.sled("get", self.tree.get(key))? else {
            // Taken, deleted, or its create lost a race — or not written *yet*: a writer puts
            // the entry first, and a record created with an end already close to passing (a
            // client assertion's `jti` with `exp = now + 1`) may still be on its way. Dropping
            // the entry then would leave that record unindexed for ever, so an entry without a
            // record is kept until it is [`ABSENT_GRACE_SECS`] overdue.
            return Ok(if entry_end < now.saturating_sub(ABSENT_GRACE_SECS) {
                Judged::Stale
            } else {
                Judged::Raced
            });
        };
        let Some(end) = end_of(&value) else {
            // Never removed unread: the record stays, as it would have without the index, and
            // its entry goes so the warning is not repeated at every sweep.
            tracing::warn!(
                tree = self.name,
                "skipping an undecodable record in the expiry sweep"
            );
            return Ok(Judged::Stale);
        };
        if end >= now {
            return Ok(Judged::Stale); // extended since: its own, later entry covers it
        }
        // Remove only the exact value judged expired: if a concurrent call replaced it since (a
        // fresh upstream token under the same key, a code being redeemed), the swap fails and
        // the entry stays for a later sweep to judge the newer record.
        if self.swap(key, Some(&value), None)? {
            Ok(Judged::Removed)
        } else {
            Ok(Judged::Raced)
        }
    }
}

/// How long past its end an index entry whose record is absent is kept (see
/// [`Table::sweep_one`]): far longer than any write takes between its entry and its record.
const ABSENT_GRACE_SECS: i64 = 300;

/// What the sweep made of one index entry.
enum Judged {
    /// The record expired and was removed; the entry goes too.
    Removed,
    /// The entry names no expired record; it goes, the record (if any) stays.
    Stale,
    /// The record changed while being judged, or may still be on its way; the entry stays for
    /// the next sweep.
    Raced,
}

impl Trees {
    /// Deletes every record whose end is strictly before `now`, reading only the index entries
    /// that came due and their records; returns how many records went.
    pub(super) fn sweep_index(&self, now: i64) -> Result<usize> {
        let leases = Table::open(&self.db, "leases")?;
        let (devices, user_codes) = self.device_tables()?;
        let tables: [&Table; 14] = [
            &self.auth_requests,
            &self.auth_codes,
            &self.access_tokens,
            &self.revoked_grants,
            &self.upstream_tokens,
            &self.refresh_tokens,
            &self.used_jtis,
            &self.sessions,
            &self.subject_marks,
            &self.login_events,
            &self.audit_events,
            &leases,
            &devices,
            &user_codes,
        ];
        debug_assert!(
            tables.len() == KINDS.len() && tables.iter().zip(KINDS).all(|(t, k)| t.name == k.0)
        );
        let index = &self.expiry;
        let mut removed = 0;
        for entry in index.range(..end_prefix(now)) {
            let (entry, _) = entry.map_err(|e| sled_error("iter", TREE, &e))?;
            let judged = match split_entry(&entry) {
                Some((end, tag, key)) if (1..=tables.len()).contains(&usize::from(tag)) => {
                    let at = usize::from(tag) - 1;
                    let judged = tables[at].sweep_one(key, end, KINDS[at].2, now)?;
                    if matches!(judged, Judged::Removed) {
                        removed += usize::from(tag != DEVICE_USER_CODES);
                        // Counted at once: a later error must not leave the count too high.
                        if tag == AUTH_REQUESTS {
                            self.uncount_auth_requests(1);
                        }
                    }
                    judged
                }
                // Not an entry this release writes: nothing to judge it by.
                _ => Judged::Stale,
            };
            if !matches!(judged, Judged::Raced) {
                index
                    .remove(&entry)
                    .map_err(|e| sled_error("remove", TREE, &e))?;
            }
        }
        Ok(removed)
    }
}

/// Writes an index entry for every record of every expiring kind in `db` (one scan of each
/// tree): the migration step that gives a store of format version 1 its index. Idempotent, as a
/// migration step must be: an entry written twice is the same key. A record that cannot be
/// decoded gets no entry and stays, as the sweep before the index left it.
pub(in crate::storage) fn build_index(db: &sled::Db) -> Result<u64> {
    let backend = |what: &str, e: sled::Error| {
        StorageError::Backend(format!("sled cannot build the expiry index ({what}): {e}"))
    };
    let index = db.open_tree(TREE).map_err(|e| backend("open", e))?;
    let (mut written, present) = (0, db.tree_names());
    for &(name, tag, end_of) in KINDS {
        // Never creates a tree (a backup's copy holds the trees its source had).
        if !present.iter().any(|n| &n[..] == name.as_bytes()) {
            continue;
        }
        let tree = db.open_tree(name).map_err(|e| backend("open", e))?;
        for record in tree.iter() {
            let (key, value) = record.map_err(|e| backend("read", e))?;
            if let Some(end) = end_of(&value) {
                index
                    .insert(entry_key(end, tag, &key), &[])
                    .map_err(|e| backend("write", e))?;
                written += 1;
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
