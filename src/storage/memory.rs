//! In-memory [`Store`]: the same semantics as the sled backend without persistence, for tests and
//! a no-persistence mode (everything is lost on restart).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{
    AccessToken, AuditEvent, AuthCode, AuthRequest, DeviceAuthorization, DeviceChange, LoginEvent,
    RefreshToken, Result, Rotation, Session, StorageError, Store, Subject, SubjectGrants,
    SubjectMark, UpstreamToken,
};

use super::cluster::LeaseRecord;
use super::SigningKeySet;

/// Device authorizations by device key, and the user-code index.
type DeviceMaps = (
    HashMap<String, DeviceAuthorization>,
    HashMap<String, String>,
);

/// Events by (time, sequence number): ordered, and never two under one key.
struct Timeline<T> {
    last_seq: u64,
    events: BTreeMap<(i64, u64), T>,
}

impl<T> Default for Timeline<T> {
    fn default() -> Self {
        Self {
            last_seq: 0,
            events: BTreeMap::new(),
        }
    }
}

impl<T: Clone> Timeline<T> {
    fn push(&mut self, at: i64, event: T) {
        self.last_seq += 1;
        self.events.insert((at, self.last_seq), event);
    }

    /// Up to `limit` events, newest first.
    fn newest(&self, limit: usize) -> Vec<T> {
        self.events.values().rev().take(limit).cloned().collect()
    }

    /// Drops the events whose `expires_at` is before `now`; returns how many.
    fn sweep(&mut self, now: i64, expires_at: impl Fn(&T) -> i64) -> usize {
        let before = self.events.len();
        self.events.retain(|_, e| expires_at(e) >= now);
        before - self.events.len()
    }
}

/// A [`Store`] kept in process memory: one `Mutex<HashMap>` per record kind.
///
/// Every operation holds the lock of its map for its whole read-modify-write, which is what makes
/// `take_auth_request` and `redeem_auth_code` atomic. Only `rotate_refresh_token` holds two locks
/// at once (refresh tokens, then access tokens) and nothing takes them the other way round, so
/// there is no lock order to get wrong.
#[derive(Default)]
pub struct MemoryStore {
    auth_requests: Mutex<HashMap<String, AuthRequest>>,
    auth_codes: Mutex<HashMap<String, AuthCode>>,
    access_tokens: Mutex<HashMap<String, AccessToken>>,
    /// Revoked grant id → `keep_until` (Unix seconds).
    revoked_grants: Mutex<HashMap<String, i64>>,
    upstream_tokens: Mutex<HashMap<String, UpstreamToken>>,
    refresh_tokens: Mutex<HashMap<String, RefreshToken>>,
    /// Used single-use identifier → expiry (Unix seconds).
    used_jtis: Mutex<HashMap<String, i64>>,
    user_links: Mutex<HashMap<String, String>>,
    sessions: Mutex<HashMap<String, Session>>,
    /// Device authorizations by device key, and user key → device key (one lock for both, so
    /// a new authorization is never half there).
    devices: Mutex<DeviceMaps>,
    subject_marks: Mutex<HashMap<String, SubjectMark>>,
    login_events: Mutex<Timeline<LoginEvent>>,
    audit_events: Mutex<Timeline<AuditEvent>>,
    /// The shared signing key set, and leases by name.
    cluster: (
        Mutex<Option<SigningKeySet>>,
        Mutex<HashMap<String, LeaseRecord>>,
    ),
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

// Records hold identities and upstream credentials: show only how many there are.
impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("auth_requests", &lock(&self.auth_requests).len())
            .field("auth_codes", &lock(&self.auth_codes).len())
            .field("access_tokens", &lock(&self.access_tokens).len())
            .field("revoked_grants", &lock(&self.revoked_grants).len())
            .field("upstream_tokens", &lock(&self.upstream_tokens).len())
            .field("refresh_tokens", &lock(&self.refresh_tokens).len())
            .field("used_jtis", &lock(&self.used_jtis).len())
            .field("user_links", &lock(&self.user_links).len())
            .field("sessions", &lock(&self.sessions).len())
            .field("devices", &lock(&self.devices).0.len())
            .field("login_events", &lock(&self.login_events).events.len())
            .finish()
    }
}

/// Locks `map`, recovering from poisoning.
///
/// A poisoned lock only means another thread panicked while holding it. Every critical section
/// here is a single insert, remove or field update that cannot leave a map half-changed, so the
/// data is still consistent and refusing all further storage calls would turn one panic into an
/// outage.
fn lock<T>(map: &Mutex<T>) -> MutexGuard<'_, T> {
    map.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Inserts `value` under `key` unless the key is taken.
fn insert_new<V: Clone>(map: &Mutex<HashMap<String, V>>, key: &str, value: &V) -> Result<()> {
    match lock(map).entry(key.to_owned()) {
        Entry::Occupied(_) => Err(StorageError::AlreadyExists),
        Entry::Vacant(slot) => {
            slot.insert(value.clone());
            Ok(())
        }
    }
}

/// A copy of the value under `key`.
fn find<V: Clone>(map: &Mutex<HashMap<String, V>>, key: &str) -> Result<V> {
    lock(map).get(key).cloned().ok_or(StorageError::NotFound)
}

/// Changes the value under `key` in place with `change`, under the map's lock (so two racing
/// changes are applied one after the other), and answers what `change` answers.
fn update<V, R>(
    map: &Mutex<HashMap<String, V>>,
    key: &str,
    change: impl FnOnce(&mut V) -> R,
) -> Result<R> {
    lock(map)
        .get_mut(key)
        .map(change)
        .ok_or(StorageError::NotFound)
}

/// Removes every entry whose expiry is strictly before `now`; returns how many went.
fn sweep<V>(map: &Mutex<HashMap<String, V>>, now: i64, expiry: impl Fn(&V) -> i64) -> usize {
    let mut map = lock(map);
    let before = map.len();
    map.retain(|_, v| expiry(v) >= now);
    before - map.len()
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_auth_request(&self, key: &str, req: &AuthRequest) -> Result<()> {
        insert_new(&self.auth_requests, key, req)
    }

    async fn take_auth_request(&self, key: &str) -> Result<AuthRequest> {
        lock(&self.auth_requests)
            .remove(key)
            .ok_or(StorageError::NotFound)
    }

    async fn count_auth_requests(&self) -> Result<usize> {
        Ok(lock(&self.auth_requests).len())
    }

    async fn create_auth_code(&self, key: &str, code: &AuthCode) -> Result<()> {
        insert_new(&self.auth_codes, key, code)
    }

    async fn redeem_auth_code(&self, key: &str) -> Result<AuthCode> {
        update(&self.auth_codes, key, |code| {
            let before = code.clone();
            code.redeemed = true;
            before
        })
    }

    async fn create_access_token(&self, key: &str, token: &AccessToken) -> Result<()> {
        insert_new(&self.access_tokens, key, token)
    }

    async fn find_access_token(&self, key: &str) -> Result<AccessToken> {
        find(&self.access_tokens, key)
    }

    async fn delete_access_token(&self, key: &str) -> Result<()> {
        lock(&self.access_tokens).remove(key);
        Ok(())
    }

    async fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<()> {
        lock(&self.revoked_grants)
            .entry(grant_id.to_owned())
            .and_modify(|kept| *kept = (*kept).max(keep_until))
            .or_insert(keep_until);
        Ok(())
    }

    async fn is_grant_revoked(&self, grant_id: &str) -> Result<bool> {
        Ok(lock(&self.revoked_grants).contains_key(grant_id))
    }

    async fn create_refresh_token(&self, key: &str, token: &RefreshToken) -> Result<()> {
        insert_new(&self.refresh_tokens, key, token)
    }

    async fn find_refresh_token(&self, key: &str) -> Result<RefreshToken> {
        find(&self.refresh_tokens, key)
    }

    async fn rotate_refresh_token(
        &self,
        key: &str,
        rotation: &Rotation<'_>,
    ) -> Result<RefreshToken> {
        // Both maps' locks for the whole check-and-write (refresh tokens first, the one place
        // that holds two): nothing can fail between the writes, and a racing rotation of the
        // same token waits for this one and then finds it spent.
        let mut refresh = lock(&self.refresh_tokens);
        let mut access = lock(&self.access_tokens);
        let before = refresh.get(key).cloned().ok_or(StorageError::NotFound)?;
        if before.spent {
            return Ok(before);
        }
        if refresh.contains_key(rotation.refresh_key) || access.contains_key(rotation.access_key) {
            return Err(StorageError::AlreadyExists);
        }
        // Copies first: nothing is left to fail once the first map changes.
        let (successor, access_token) = (rotation.refresh.clone(), rotation.access.clone());
        if let Some(old) = refresh.get_mut(key) {
            old.spent = true;
        }
        refresh.insert(rotation.refresh_key.to_owned(), successor);
        access.insert(rotation.access_key.to_owned(), access_token);
        Ok(before)
    }

    async fn create_device_authorization(
        &self,
        device_key: &str,
        user_key: &str,
        record: &DeviceAuthorization,
    ) -> Result<()> {
        let mut devices = lock(&self.devices);
        if devices.0.contains_key(device_key) || devices.1.contains_key(user_key) {
            return Err(StorageError::AlreadyExists);
        }
        devices.0.insert(device_key.to_owned(), record.clone());
        devices.1.insert(user_key.to_owned(), device_key.to_owned());
        Ok(())
    }

    async fn find_device_authorization(
        &self,
        user_key: &str,
    ) -> Result<(String, DeviceAuthorization)> {
        let devices = lock(&self.devices);
        let device_key = devices.1.get(user_key).ok_or(StorageError::NotFound)?;
        let record = devices.0.get(device_key).ok_or(StorageError::NotFound)?;
        Ok((device_key.clone(), record.clone()))
    }

    async fn update_device_authorization(
        &self,
        device_key: &str,
        change: DeviceChange<'_>,
    ) -> Result<DeviceAuthorization> {
        let mut devices = lock(&self.devices);
        let record = devices
            .0
            .get_mut(device_key)
            .ok_or(StorageError::NotFound)?;
        let before = record.clone();
        change(record);
        Ok(before)
    }

    async fn create_used_jti(&self, key: &str, expires_at: i64) -> Result<()> {
        insert_new(&self.used_jtis, key, &expires_at)
    }

    async fn create_session(&self, key: &str, session: &Session) -> Result<()> {
        insert_new(&self.sessions, key, session)
    }

    async fn find_session(&self, key: &str) -> Result<Session> {
        find(&self.sessions, key)
    }

    async fn touch_session(&self, key: &str, client_id: &str, now: i64) -> Result<Session> {
        update(&self.sessions, key, |session| {
            session.touch(client_id, now);
            session.clone()
        })
    }

    async fn take_session(&self, key: &str) -> Result<Session> {
        lock(&self.sessions)
            .remove(key)
            .ok_or(StorageError::NotFound)
    }

    async fn take_sessions_of(&self, subject: &Subject) -> Result<Vec<Session>> {
        let mut sessions = lock(&self.sessions);
        let keys: Vec<String> = sessions
            .iter()
            .filter(|(_, s)| subject.owns_session(s))
            .map(|(k, _)| k.clone())
            .collect();
        Ok(keys.iter().filter_map(|k| sessions.remove(k)).collect())
    }

    async fn find_grants_of(&self, subject: &Subject, now: i64) -> Result<SubjectGrants> {
        let mut found = SubjectGrants::default();
        for c in lock(&self.auth_codes).values() {
            if c.expires_at >= now && subject.owns(&c.identity) {
                found.add(&c.grant_id, false);
            }
        }
        for t in lock(&self.access_tokens).values() {
            if t.expires_at >= now && subject.owns(&t.identity) {
                found.add(&t.grant_id, false);
            }
        }
        for t in lock(&self.refresh_tokens).values() {
            if t.expires_at >= now && subject.owns(&t.identity) {
                found.add(&t.grant_id, !t.spent);
            }
        }
        Ok(found)
    }

    async fn save_subject_mark(&self, key: &str, not_before: i64, keep_until: i64) -> Result<()> {
        let mark = SubjectMark {
            not_before,
            keep_until,
        };
        lock(&self.subject_marks)
            .entry(key.to_owned())
            .and_modify(|m| *m = m.merge(mark))
            .or_insert(mark);
        Ok(())
    }

    async fn find_subject_mark(&self, key: &str) -> Result<i64> {
        lock(&self.subject_marks)
            .get(key)
            .map(|m| m.not_before)
            .ok_or(StorageError::NotFound)
    }

    async fn find_upstream_token(&self, key: &str) -> Result<UpstreamToken> {
        find(&self.upstream_tokens, key)
    }

    async fn save_upstream_token(&self, key: &str, token: &UpstreamToken) -> Result<()> {
        lock(&self.upstream_tokens).insert(key.to_owned(), token.clone());
        Ok(())
    }

    async fn find_user_link(&self, key: &str) -> Result<String> {
        find(&self.user_links, key)
    }

    async fn save_user_link(&self, key: &str, value: &str) -> Result<()> {
        lock(&self.user_links).insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn delete_upstream_token(&self, key: &str) -> Result<()> {
        lock(&self.upstream_tokens).remove(key);
        Ok(())
    }

    async fn delete_expired(&self, now: i64) -> Result<usize> {
        Ok(sweep(&self.auth_requests, now, |r| r.expires_at)
            + sweep(&self.auth_codes, now, |c| c.expires_at)
            + sweep(&self.access_tokens, now, |t| t.expires_at)
            + sweep(&self.revoked_grants, now, |keep_until| *keep_until)
            + sweep(&self.upstream_tokens, now, |t| t.expires_at)
            + sweep(&self.refresh_tokens, now, |t| t.expires_at)
            + sweep(&self.used_jtis, now, |expires_at| *expires_at)
            + sweep(&self.sessions, now, |s| s.expires_at)
            + sweep(&self.subject_marks, now, |m| m.keep_until)
            + {
                let mut devices = lock(&self.devices);
                let (records, users) = &mut *devices;
                let before = records.len();
                records.retain(|_, d| d.keep_until >= now);
                users.retain(|_, device_key| records.contains_key(device_key));
                before - records.len()
            }
            + lock(&self.login_events).sweep(now, |e| e.expires_at)
            + lock(&self.audit_events).sweep(now, |e| e.expires_at)
            + self.sweep_leases(now))
    }

    async fn create_login_event(&self, event: &LoginEvent) -> Result<()> {
        lock(&self.login_events).push(event.at, event.clone());
        Ok(())
    }

    async fn list_login_events(&self, limit: usize) -> Result<Vec<LoginEvent>> {
        Ok(lock(&self.login_events).newest(limit))
    }

    async fn list_sessions(&self, now: i64, limit: usize) -> Result<Vec<Session>> {
        let mut live: Vec<Session> = lock(&self.sessions)
            .values()
            .filter(|s| s.expires_at >= now)
            .cloned()
            .collect();
        live.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
        live.truncate(limit);
        Ok(live)
    }

    async fn create_audit_event(&self, event: &AuditEvent) -> Result<()> {
        lock(&self.audit_events).push(event.at, event.clone());
        Ok(())
    }

    async fn list_audit_events(&self, limit: usize) -> Result<Vec<AuditEvent>> {
        Ok(lock(&self.audit_events).newest(limit))
    }

    async fn flush(&self) -> Result<()> {
        // Nothing to make durable: this backend keeps nothing across restarts by design.
        Ok(())
    }

    async fn find_signing_keys(&self) -> Result<SigningKeySet> {
        lock(&self.cluster.0).clone().ok_or(StorageError::NotFound)
    }

    async fn save_signing_keys(
        &self,
        expected_version: Option<i64>,
        set: &SigningKeySet,
    ) -> Result<()> {
        let mut current = lock(&self.cluster.0);
        match (current.as_ref(), expected_version) {
            (None, None) => {}
            (Some(stored), Some(v)) if stored.version == v => {}
            (None, Some(_)) => return Err(StorageError::NotFound),
            _ => return Err(StorageError::AlreadyExists),
        }
        *current = Some(set.clone());
        Ok(())
    }

    async fn acquire_lease(&self, name: &str, owner: &str, now: i64, until: i64) -> Result<bool> {
        let mut leases = lock(&self.cluster.1);
        match LeaseRecord::claim(leases.get(name), owner, now, until) {
            Some(ours) => {
                leases.insert(name.to_owned(), ours);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<()> {
        let mut leases = lock(&self.cluster.1);
        if leases.get(name).is_some_and(|l| l.owner == owner) {
            leases.remove(name);
        }
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        false
    }
}

/// The named leases (`storage::cluster`).
impl MemoryStore {
    /// Deletes the leases that lapsed before `now`.
    pub(super) fn sweep_leases(&self, now: i64) -> usize {
        let mut leases = lock(&self.cluster.1);
        let before = leases.len();
        leases.retain(|_, l| l.until >= now);
        before - leases.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_store_passes_the_conformance_suite() {
        conformance::run_all(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn debug_output_shows_counts_not_records() {
        let store = MemoryStore::new();
        store
            .save_upstream_token(
                "wecom",
                &UpstreamToken {
                    token: "upstream-secret".into(),
                    expires_at: 10,
                },
            )
            .await
            .expect("save");
        let shown = format!("{store:?}");
        assert!(!shown.contains("upstream-secret"), "{shown}");
        assert!(shown.contains("upstream_tokens: 1"), "{shown}");
    }
}
