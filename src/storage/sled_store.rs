//! The embedded default [`Store`]: sled, one tree per record kind, values as JSON, and the
//! single-use operations made atomic with sled's own atomic primitives.
//!
//! # Durability
//!
//! sled's background thread writes dirty data every [`FLUSH_EVERY_MS`] milliseconds, and dropping
//! the store (or calling [`Store::flush`]) writes the rest. That alone would let a crash lose the
//! writes of the last window — a refresh token, a session or a code a client already received.
//! So every response that hands out or ends a credential first waits on the group-commit
//! [`Durability`](super::Durability) barrier, which flushes once for all concurrent requests:
//! nothing a client has seen is lost on `kill -9`. Writes no response depends on (a pending
//! authorization request) ride on the periodic flush; losing one costs a repeated login.
//!
//! The flush itself runs on one dedicated thread of the store ("sled-flush"): a flush request
//! is queued, the thread takes every request queued so far, flushes once and wakes them all
//! together. No blocking-pool task per flush, and concurrent flushes share one `fsync`.
//!
//! # Memory
//!
//! sled keeps recently used pages in a cache of [`DEFAULT_CACHE_BYTES`] unless the store is
//! opened with another size ([`SledStore::open_with_cache`], config key `sled_cache_mb`); sled's
//! own default is 1 GiB, which lets a busy server grow to hold every record it ever wrote.
//!
//! # Pending authorization requests
//!
//! `count_auth_requests` must be cheap, and sled's `Tree::len` scans the tree, so the store
//! keeps a counter: set from one scan at open, then moved by every create, take and sweep.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{
    AccessToken, AuditEvent, AuthCode, AuthRequest, CheckedAccessToken, DeviceAuthorization,
    DeviceChange, LoginEvent, RefreshToken, Result, Rotation, Session, StorageError, Store,
    Subject, SubjectGrants, SubjectMark, UpstreamToken,
};

use super::cluster::LeaseRecord;
use super::sled_reopen::Slot;

mod checked;
mod device;
mod expiry;
mod flusher;
mod rotation;
mod table;
#[cfg(test)]
mod tests;
use super::SigningKeySet;
use expiry::build_index as build_expiry_index;
use expiry::Ends;
use flusher::Flusher;
use table::{sled_error, Table, Write};

/// How a backup's copy of this store rebuilds its expiry index ([`super::sled_copy`]).
pub const REINDEX: super::sled_copy::Reindex = super::sled_copy::Reindex {
    tree: expiry::TREE,
    build: expiry::build_index,
};

/// How often, in milliseconds, sled writes dirty data to disk in the background: the most a crash
/// can lose. Short enough that a crash costs a handful of logins, long enough that a busy server
/// does not sync once per request.
pub const FLUSH_EVERY_MS: u64 = 200;

/// The size of sled's page cache unless configured (`sled_cache_mb`): enough for the hot
/// records of a deployment (live codes, sessions and tokens of a few thousand people); older
/// pages are read back from disk when needed.
pub const DEFAULT_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// A [`Store`] on an embedded sled database.
///
/// Cheap to share behind an `Arc`; every method is safe to call from many threads at once.
pub struct SledStore {
    /// The open database, reopened after an I/O failure (`sled_reopen`); shared with the
    /// blocking-pool tasks that sweep and the flusher thread.
    slot: Arc<Slot<Trees>>,
    /// The dedicated flusher (module docs).
    flusher: Flusher,
}

impl Drop for SledStore {
    fn drop(&mut self) {
        self.flusher.stop();
    }
}

/// The database and its trees; every operation here is synchronous.
struct Trees {
    db: sled::Db,
    auth_requests: Table,
    auth_codes: Table,
    access_tokens: Table,
    revoked_grants: Table,
    upstream_tokens: Table,
    refresh_tokens: Table,
    used_jtis: Table,
    user_links: Table,
    sessions: Table,
    login_events: Table,
    audit_events: Table,
    subject_marks: Table,
    /// The expiry index (`expiry`): what the sweep reads.
    expiry: sled::Tree,
    /// Pending authorization requests (see the module docs).
    pending_auth_requests: AtomicUsize,
    /// Access tokens decoded before, by their stored bytes (`/userinfo` reads one repeatedly).
    access_token_decodes: super::decode_cache::DecodeCache<AccessToken>,
}

/// The record stored for a used single-use identifier.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct UsedJti {
    /// Unix seconds after which the record may be dropped.
    expires_at: i64,
}

/// The record stored for a revoked grant.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct RevokedGrant {
    /// Unix seconds after which the mark may be dropped.
    keep_until: i64,
}

/// A record the expiry sweep removes once its end has passed.
pub(super) trait Expiring: DeserializeOwned {
    /// Unix seconds after which the record may be dropped.
    fn end(&self) -> i64;
}

/// Which field ends each kind of record the sweep looks at.
macro_rules! expiring {
    ($($t:ty => $field:ident),* $(,)?) => {
        $(impl $crate::storage::sled_store::Expiring for $t {
            fn end(&self) -> i64 {
                self.$field
            }
        })*
    };
}
pub(super) use expiring;

expiring!(
    AuthRequest => expires_at,
    AuthCode => expires_at,
    AccessToken => expires_at,
    RevokedGrant => keep_until,
    UpstreamToken => expires_at,
    RefreshToken => expires_at,
    UsedJti => expires_at,
    Session => expires_at,
    SubjectMark => keep_until,
    LoginEvent => expires_at,
    AuditEvent => expires_at,
    LeaseRecord => until,
);

impl SledStore {
    /// Opens (or creates) the database in the directory `path`.
    ///
    /// Fails with `StorageError::Backend` if the directory cannot be created or another process
    /// holds the database open, and — without changing anything in it — if the directory holds
    /// something other than a sled database (a wrong `data_dir`) or a database sled cannot read
    /// (corrupt, or another sled version).
    pub fn open(path: &Path) -> Result<SledStore> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// [`SledStore::open`] with a page cache of `cache_bytes` (module docs, "Memory").
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<SledStore> {
        check_foreign(path)?;
        // sled creates `blobs/` before it reads the database; if the open fails, take back
        // what it created so a failed start leaves the directory as it was.
        let blobs = path.join("blobs");
        let had_blobs = blobs.exists();
        let opened = Self::with_config(
            sled::Config::new().path(path).cache_capacity(cache_bytes),
            &path.display().to_string(),
            true,
        );
        if opened.is_err() && !had_blobs {
            let _ = std::fs::remove_dir(&blobs); // only if still empty
        }
        opened
    }

    /// A fresh database in a temporary location that is deleted when the store is dropped (tests).
    pub fn temporary() -> Result<SledStore> {
        Self::with_config(
            sled::Config::new()
                .temporary(true)
                .cache_capacity(DEFAULT_CACHE_BYTES),
            "a temporary store",
            false,
        )
    }

    fn with_config(config: sled::Config, label: &str, reopenable: bool) -> Result<SledStore> {
        // Set before the first clone: sled logs an error when a shared configuration is
        // changed (it takes that for one already in use).
        let config = config.flush_every_ms(Some(FLUSH_EVERY_MS));
        let trees = open_trees(config.clone(), label)?;
        // A temporary database is gone once closed: it cannot be reopened.
        let reopen: Option<Box<dyn Fn() -> Result<Trees> + Send + Sync>> = if reopenable {
            let label = label.to_owned();
            Some(Box::new(move || open_trees(config.clone(), &label)))
        } else {
            None
        };
        let slot = Slot::new(trees, reopen);
        Ok(SledStore {
            flusher: Flusher::start(slot.clone())?,
            slot,
        })
    }

    /// The open database, or `Unavailable` while it is reopened.
    fn trees(&self) -> Result<Arc<Trees>> {
        self.slot.get()
    }

    /// Passes `result` on, starting a reopening first if it is an I/O failure.
    fn watch<T>(&self, result: Result<T>) -> Result<T> {
        self.slot.watch(result)
    }
}

/// Opens the database and its trees (at start, and again after an I/O failure).
fn open_trees(config: sled::Config, label: &str) -> Result<Trees> {
    let db = config
        .open()
        // At open an I/O error (another process holds the lock, no permission) is no
        // passing outage: the server does not start.
        .map_err(|e| StorageError::Backend(format!("sled open on database: {e}")))?;
    // Before any record tree is opened (or created): a newer release's store is refused
    // untouched (`sled_format`).
    super::sled_format::check_and_stamp(&db, label, build_expiry_index)?;
    let auth_requests = Table::open(&db, "auth_requests")?;
    let pending = auth_requests.tree.len();
    let trees = Trees {
        auth_requests,
        pending_auth_requests: AtomicUsize::new(pending),
        auth_codes: Table::open(&db, "auth_codes")?,
        access_tokens: Table::open(&db, "access_tokens")?,
        revoked_grants: Table::open(&db, "revoked_grants")?,
        upstream_tokens: Table::open(&db, "upstream_tokens")?,
        refresh_tokens: Table::open(&db, "refresh_tokens")?,
        used_jtis: Table::open(&db, "used_jtis")?,
        user_links: Table::open(&db, "user_links")?,
        sessions: Table::open(&db, "sessions")?,
        login_events: Table::open(&db, "login_events")?,
        audit_events: Table::open(&db, "audit_events")?,
        subject_marks: Table::open(&db, "subject_marks")?,
        expiry: db
            .open_tree(expiry::TREE)
            .map_err(|e| sled_error("open_tree", expiry::TREE, &e))?,
        access_token_decodes: Default::default(),
        db,
    };
    Ok(trees)
}

/// Refuses a non-empty directory that is not a sled database: sled would add its files beside
/// whatever is there (a mistyped `data_dir` pointing at a home or keys directory).
fn check_foreign(path: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return Ok(()); // absent: sled creates it (or reports why it cannot)
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let is_sled = names.iter().any(|n| n == "conf") && names.iter().any(|n| n == "db");
    if names.is_empty() || is_sled {
        return Ok(());
    }
    Err(StorageError::Backend(format!(
        "{} is not empty and holds no database (no `conf` and `db` files): is data_dir right? \
         Nothing was changed",
        path.display()
    )))
}

// The records hold identities and upstream credentials; there is nothing useful and safe to show.
impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

impl Trees {
    fn create_auth_request(&self, key: &str, req: &AuthRequest) -> Result<()> {
        self.auth_requests.create(key, req)?;
        self.pending_auth_requests.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn take_auth_request(&self, key: &str) -> Result<AuthRequest> {
        let taken = self.auth_requests.take(key);
        // A removed record counts as gone even if it cannot be decoded.
        if !matches!(taken, Err(StorageError::NotFound)) {
            self.uncount_auth_requests(1);
        }
        taken
    }

    fn count_auth_requests(&self) -> Result<usize> {
        Ok(self.pending_auth_requests.load(Ordering::Relaxed))
    }

    fn create_auth_code(&self, key: &str, code: &AuthCode) -> Result<()> {
        self.auth_codes.create(key, code)
    }

    fn redeem_auth_code(&self, key: &str) -> Result<AuthCode> {
        // Of two racing redemptions only one turns `redeemed` from false to true; the other
        // judges again and sees it true (RFC 6749 section 4.1.2: a code is single use).
        self.auth_codes
            .flip_once(key, |c: &mut AuthCode| &mut c.redeemed)
    }

    fn create_access_token(&self, key: &str, token: &AccessToken) -> Result<()> {
        self.access_tokens.create(key, token)
    }

    fn find_access_token(&self, key: &str) -> Result<AccessToken> {
        self.find_access_token_shared(key).map(Arc::unwrap_or_clone)
    }

    fn delete_access_token(&self, key: &str) -> Result<()> {
        self.access_tokens.delete(key)
    }

    fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<()> {
        let table = &self.revoked_grants;
        let value = table.encode(&RevokedGrant { keep_until })?;
        // Keep the later `keep_until` of concurrent or repeated revocations: a swap loop so a
        // shorter one can never overwrite a longer one that landed in between.
        loop {
            let current = table.sled("get", table.tree.get(grant_id))?;
            if let Some(bytes) = &current {
                // An undecodable mark is replaced by this one; the grant stays revoked either way.
                if let Ok(existing) = table.decode::<RevokedGrant>(bytes) {
                    if existing.keep_until >= keep_until {
                        break;
                    }
                }
            }
            table.index(Some(keep_until), grant_id.as_bytes())?;
            if table.swap(grant_id.as_bytes(), current.as_deref(), Some(value.clone()))? {
                break;
            }
        }
        // Not flushed here: the revocation, token and logout responses wait on the
        // group-commit barrier (module docs), so concurrent revocations share one flush.
        Ok(())
    }

    fn is_grant_revoked(&self, grant_id: &str) -> Result<bool> {
        self.revoked_grants.sled(
            "contains_key",
            self.revoked_grants.tree.contains_key(grant_id),
        )
    }

    fn create_refresh_token(&self, key: &str, token: &RefreshToken) -> Result<()> {
        self.refresh_tokens.create(key, token)
    }

    fn find_refresh_token(&self, key: &str) -> Result<RefreshToken> {
        self.refresh_tokens.find(key)
    }

    fn create_used_jti(&self, key: &str, expires_at: i64) -> Result<()> {
        self.used_jtis.create(key, &UsedJti { expires_at })
    }

    fn create_session(&self, key: &str, session: &Session) -> Result<()> {
        self.sessions.create(key, session)
    }

    fn find_session(&self, key: &str) -> Result<Session> {
        self.sessions.find(key)
    }

    fn touch_session(&self, key: &str, client_id: &str, now: i64) -> Result<Session> {
        // Two clients logging in through the same session at once must both end up in
        // `clients`, so neither write may overwrite the other's.
        self.sessions.update_found(key, |mut session: Session| {
            session.touch(client_id, now);
            Ok((session.clone(), Write::Put(session)))
        })
    }

    fn take_session(&self, key: &str) -> Result<Session> {
        self.sessions.take(key)
    }

    fn take_sessions_of(&self, subject: &Subject) -> Result<Vec<Session>> {
        let table = &self.sessions;
        let mut taken = Vec::new();
        for entry in table.tree.iter() {
            let (key, value) = table.sled("iter", entry)?;
            let Ok(session) = table.decode::<Session>(&value) else {
                continue;
            };
            if !subject.owns_session(&session) {
                continue;
            }
            // Only the exact record judged: a session taken by a racing logout meanwhile is
            // that logout's to announce.
            let swapped = table.sled(
                "compare_and_swap",
                table
                    .tree
                    .compare_and_swap(&key, Some(&value), None::<sled::IVec>),
            )?;
            if swapped.is_ok() {
                taken.push(session);
            }
        }
        Ok(taken)
    }

    fn find_grants_of(&self, subject: &Subject, now: i64) -> Result<SubjectGrants> {
        let mut found = SubjectGrants::default();
        self.each(&self.auth_codes, |c: AuthCode| {
            if c.expires_at >= now && subject.owns(&c.identity) {
                found.add(&c.grant_id, false);
            }
        })?;
        self.each(&self.access_tokens, |t: AccessToken| {
            if t.expires_at >= now && subject.owns(&t.identity) {
                found.add(&t.grant_id, false);
            }
        })?;
        self.each(&self.refresh_tokens, |t: RefreshToken| {
            if t.expires_at >= now && subject.owns(&t.identity) {
                found.add(&t.grant_id, !t.spent);
            }
        })?;
        Ok(found)
    }

    /// Calls `f` with every decodable record of `table` (an undecodable one is skipped).
    fn each<T: DeserializeOwned>(&self, table: &Table, mut f: impl FnMut(T)) -> Result<()> {
        for entry in table.tree.iter() {
            let (_, value) = table.sled("iter", entry)?;
            if let Ok(record) = table.decode(&value) {
                f(record);
            }
        }
        Ok(())
    }

    fn find_subject_mark(&self, key: &str) -> Result<i64> {
        self.subject_marks
            .find::<SubjectMark>(key)
            .map(|m| m.not_before)
    }

    fn save_subject_mark(&self, key: &str, mark: SubjectMark) -> Result<()> {
        let table = &self.subject_marks;
        // A swap loop, as in `revoke_grant`: a racing earlier mark never replaces a later one.
        loop {
            let current = table.sled("get", table.tree.get(key))?;
            let merged = match &current {
                Some(bytes) => match table.decode::<SubjectMark>(bytes) {
                    Ok(existing) => existing.merge(mark),
                    Err(_) => mark,
                },
                None => mark,
            };
            table.index(Some(merged.keep_until), key.as_bytes())?;
            let swapped = table.sled(
                "compare_and_swap",
                table
                    .tree
                    .compare_and_swap(key, current, Some(table.encode(&merged)?)),
            )?;
            if swapped.is_ok() {
                return Ok(());
            }
        }
    }

    fn find_upstream_token(&self, key: &str) -> Result<UpstreamToken> {
        self.upstream_tokens.find(key)
    }

    fn save_upstream_token(&self, key: &str, token: &UpstreamToken) -> Result<()> {
        self.upstream_tokens.save(key, token)
    }

    fn delete_upstream_token(&self, key: &str) -> Result<()> {
        self.upstream_tokens.delete(key)
    }

    fn find_user_link(&self, key: &str) -> Result<String> {
        self.user_links.find(key)
    }

    fn save_user_link(&self, key: &str, value: &str) -> Result<()> {
        self.user_links.save(key, &value)
    }

    fn delete_expired(&self, now: i64) -> Result<usize> {
        // Only what came due in the index, never a scan of the record trees (`expiry`).
        self.sweep_index(now)
    }

    fn create_login_event(&self, event: &LoginEvent) -> Result<()> {
        self.append(&self.login_events, event.at, event)
    }

    fn list_login_events(&self, limit: usize) -> Result<Vec<LoginEvent>> {
        self.login_events.newest(limit)
    }

    fn create_audit_event(&self, event: &AuditEvent) -> Result<()> {
        self.append(&self.audit_events, event.at, event)
    }

    /// Appends `record` to a log table. Key: zero-padded time, then sled's unique monotonic id,
    /// so keys sort by time and two records of the same second never collide.
    fn append<T: Ends>(&self, table: &Table, at: i64, record: &T) -> Result<()> {
        let id = table.sled("generate_id", self.db.generate_id())?;
        let key = format!("{:020}-{id:020}", at.max(0));
        table.create(&key, record)
    }

    fn list_sessions(&self, now: i64, limit: usize) -> Result<Vec<Session>> {
        let mut live = Vec::new();
        for entry in self.sessions.tree.iter() {
            let (_, value) = self.sessions.sled("iter", entry)?;
            match self.sessions.decode::<Session>(&value) {
                Ok(s) if s.expires_at >= now => live.push(s),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "skipping an undecodable session"),
            }
        }
        live.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
        live.truncate(limit);
        Ok(live)
    }

    fn flush(&self) -> Result<()> {
        // All trees share one log, so flushing the database makes every tree durable.
        self.db
            .flush()
            .map_err(|e| sled_error("flush", "database", &e))?;
        Ok(())
    }
}

impl Trees {
    /// Lowers the pending-request counter by `n`, never below zero.
    fn uncount_auth_requests(&self, n: usize) {
        let _ =
            self.pending_auth_requests
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                    Some(c.saturating_sub(n))
                });
    }
}

/// The shared signing key set and named leases (`storage::cluster`). Their trees are opened on
/// use: these calls are rare (a start, a key reload, one `gettoken` per token lifetime) and sled
/// caches open trees.
impl Trees {
    /// Key of the one signing key set in its tree.
    const KEY_SET: &'static str = "current";

    pub(super) fn find_signing_keys_now(&self) -> Result<SigningKeySet> {
        Table::open(&self.db, "signing_keys")?.find(Self::KEY_SET)
    }

    pub(super) fn save_signing_keys_now(
        &self,
        expected_version: Option<i64>,
        set: &SigningKeySet,
    ) -> Result<()> {
        let table = Table::open(&self.db, "signing_keys")?;
        let Some(expected) = expected_version else {
            return table.create(Self::KEY_SET, set);
        };
        // Only over exactly the set that was compared: a concurrent change makes the swap fail
        // and the comparison is made again on the newer set.
        table.update_found(Self::KEY_SET, |stored: SigningKeySet| {
            if stored.version != expected {
                return Err(StorageError::AlreadyExists);
            }
            Ok(((), Write::Put(set.clone())))
        })
    }

    pub(super) fn acquire_lease_now(
        &self,
        name: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<bool> {
        // Someone taking, extending or releasing it meanwhile makes it judged again.
        Table::open(&self.db, "leases")?.update(name, |lease: Option<LeaseRecord>| {
            Ok(
                match LeaseRecord::claim(lease.as_ref(), owner, now, until) {
                    Some(ours) => (true, Write::Put(ours)),
                    None => (false, Write::Keep),
                },
            )
        })
    }

    pub(super) fn release_lease_now(&self, name: &str, owner: &str) -> Result<()> {
        Table::open(&self.db, "leases")?.update(name, |lease: Option<LeaseRecord>| match lease {
            Some(l) if l.owner == owner => Ok(((), Write::Remove)),
            // Gone, or lapsed and taken by someone else: theirs now.
            _ => Ok(((), Write::Keep)),
        })
    }
}

/// Runs `f` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Backend(format!("sled task failed: {e}")))?
}

/// Writes `impl Store for SledStore`: the listed methods pass `Trees`' answer through `watch`,
/// then come the impl's other items. The macro emits the whole impl so that `async_trait` sees
/// the expanded methods.
macro_rules! sled_store_impl {
    (
        same_name { $($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)* }
        renamed { $($alias:ident($($a_arg:ident: $a_ty:ty),*) -> $a_ret:ty => $target:ident;)* }
        $($rest:tt)*
    ) => {
        #[async_trait]
        impl Store for SledStore {
            $(async fn $name(&self, $($arg: $ty),*) -> Result<$ret> {
                self.watch(self.trees()?.$name($($arg),*))
            })*
            $(async fn $alias(&self, $($a_arg: $a_ty),*) -> Result<$a_ret> {
                self.watch(self.trees()?.$target($($a_arg),*))
            })*
            $($rest)*
        }
    };
}

sled_store_impl! {
    // Each runs `Trees`' method of the same name on the caller's thread: one key's read or write
    // is quick, and `watch` notes a failure that calls for reopening the database.
    same_name {
        create_auth_request(key: &str, req: &AuthRequest) -> ();
        take_auth_request(key: &str) -> AuthRequest;
        count_auth_requests() -> usize;
        create_auth_code(key: &str, code: &AuthCode) -> ();
        redeem_auth_code(key: &str) -> AuthCode;
        create_access_token(key: &str, token: &AccessToken) -> ();
        find_access_token(key: &str) -> AccessToken;
        find_subject_mark(key: &str) -> i64;
        delete_access_token(key: &str) -> ();
        revoke_grant(grant_id: &str, keep_until: i64) -> ();
        is_grant_revoked(grant_id: &str) -> bool;
        create_refresh_token(key: &str, token: &RefreshToken) -> ();
        find_refresh_token(key: &str) -> RefreshToken;
        create_used_jti(key: &str, expires_at: i64) -> ();
        create_session(key: &str, session: &Session) -> ();
        find_session(key: &str) -> Session;
        touch_session(key: &str, client_id: &str, now: i64) -> Session;
        take_session(key: &str) -> Session;
        find_upstream_token(key: &str) -> UpstreamToken;
        save_upstream_token(key: &str, token: &UpstreamToken) -> ();
        delete_upstream_token(key: &str) -> ();
        find_user_link(key: &str) -> String;
        save_user_link(key: &str, value: &str) -> ();
        create_login_event(event: &LoginEvent) -> ();
        create_audit_event(event: &AuditEvent) -> ();
    }
    // The same, for `Trees`' methods whose own name differs.
    renamed {
        rotate_refresh_token(key: &str, rotation: &Rotation<'_>) -> RefreshToken
            => rotate_refresh_token_now;
        create_device_authorization(device_key: &str, user_key: &str, record: &DeviceAuthorization)
            -> () => create_device_authorization_now;
        find_device_authorization(user_key: &str) -> (String, DeviceAuthorization)
            => find_device_authorization_now;
        update_device_authorization(device_key: &str, change: DeviceChange<'_>)
            -> DeviceAuthorization => update_device_authorization_now;
        find_access_token_checked(key: &str) -> CheckedAccessToken
            => find_access_token_checked_now;
        find_signing_keys() -> SigningKeySet => find_signing_keys_now;
        save_signing_keys(expected_version: Option<i64>, set: &SigningKeySet)
            -> () => save_signing_keys_now;
        acquire_lease(name: &str, owner: &str, now: i64, until: i64) -> bool => acquire_lease_now;
        release_lease(name: &str, owner: &str) -> () => release_lease_now;
    }

    async fn take_sessions_of(&self, subject: &Subject) -> Result<Vec<Session>> {
        // Scans: on the blocking pool, like the expiry sweep.
        let trees = self.trees()?;
        let subject = subject.clone();
        self.watch(blocking(move || trees.take_sessions_of(&subject)).await)
    }

    async fn find_grants_of(&self, subject: &Subject, now: i64) -> Result<SubjectGrants> {
        let trees = self.trees()?;
        let subject = subject.clone();
        self.watch(blocking(move || trees.find_grants_of(&subject, now)).await)
    }

    async fn save_subject_mark(&self, key: &str, not_before: i64, keep_until: i64) -> Result<()> {
        self.watch(self.trees()?.save_subject_mark(
            key,
            SubjectMark {
                not_before,
                keep_until,
            },
        ))
    }

    async fn delete_expired(&self, now: i64) -> Result<usize> {
        // On the blocking pool: a large backlog of due entries (the first sweep after a long
        // stop) must not hold a runtime thread for the length of the sweep.
        let trees = self.trees()?;
        self.watch(blocking(move || trees.delete_expired(now)).await)
    }

    async fn list_login_events(&self, limit: usize) -> Result<Vec<LoginEvent>> {
        // Up to `limit` records read and decoded: on the blocking pool, like the sweep.
        let trees = self.trees()?;
        self.watch(blocking(move || trees.list_login_events(limit)).await)
    }

    async fn backup_to(&self, dir: &Path) -> Result<super::sled_copy::CopySummary> {
        let (inner, dir) = (self.trees()?, dir.to_owned());
        // Reads every record and writes as many: the blocking pool, never a runtime thread.
        blocking(move || super::sled_copy::copy_db(&inner.db, &dir, &REINDEX)).await
    }

    async fn list_sessions(&self, now: i64, limit: usize) -> Result<Vec<Session>> {
        // A scan of every session: on the blocking pool.
        let trees = self.trees()?;
        self.watch(blocking(move || trees.list_sessions(now, limit)).await)
    }

    async fn list_audit_events(&self, limit: usize) -> Result<Vec<AuditEvent>> {
        let trees = self.trees()?;
        self.watch(blocking(move || trees.audit_events.newest(limit)).await)
    }

    async fn flush(&self) -> Result<()> {
        // An fsync, which may take milliseconds: on the flusher thread, never a runtime thread.
        self.flusher.flush().await
    }

    fn is_persistent(&self) -> bool {
        true
    }
}
