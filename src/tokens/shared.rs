//! Signing keys kept in a shared store, so that every instance of a cluster signs with the same
//! keys and publishes the same JWKS.
//!
//! The key set is one record ([`SigningKeySet`]) replaced by compare-and-swap on its version:
//! - at first start, every instance that finds no set generates one and tries to *insert* it;
//!   exactly one insert wins and every instance (the losers re-read) uses the winner's keys;
//! - `keys rotate` / `keys generate` read the set, change it and write it back only if nobody
//!   changed it meanwhile (else they retry on the new set);
//! - a running instance re-reads the set every `keys_reload_interval` seconds ([`KeyRing`],
//!   [`spawn_reloader`]) and, when the version changed (or a retiring key's grace period ended),
//!   swaps its [`KeyStore`] — signers, verifiers and the pre-serialised JWKS bytes together — in
//!   one pointer swap, so a request sees the old set or the new one, never a mix.
//!
//! The single-machine default (sled in `data_dir`) keeps its keys in `keys_dir` on disk as
//! before (`tokens::keystore`); this module is used when the store is shared.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;

use super::keystore::{KeyInfo, KeyStore, LoadedKey, Rotation};
use super::manifest::{retire_and_expire, rotating_key};
use super::{jwk_thumbprint, KeyError, KeyStatus, SigningAlg};
use crate::clock::{Clock, SharedClock};
use crate::storage::{SigningKeySet, StorageError, Store, StoredSigningKey};

/// How often a running instance re-reads the shared key set by default (seconds): a rotation
/// is published by every instance within this time.
pub const DEFAULT_RELOAD_INTERVAL_SECS: u64 = 30;

/// How many times a key change is retried when another instance changed the set at the same
/// moment. Each retry means someone else succeeded, so this is only reached under a storm.
const MAX_SWAP_ATTEMPTS: usize = 8;

/// What `KeyInfo::path` says for a key that lives in the store rather than in a file.
const IN_STORE: &str = "(store)";

/// The signing keys a running server uses, replaceable while it serves: a reload swaps the
/// whole [`KeyStore`] at once. Readers take a cheap snapshot ([`KeyRing::current`]) and use it
/// for the whole operation, so one token is signed and its `kid` named by the same key set.
pub struct KeyRing {
    current: RwLock<Loaded>,
}

struct Loaded {
    keys: Arc<KeyStore>,
    /// The [`SigningKeySet::version`] the keys came from; `None` for keys from `keys_dir`.
    version: Option<i64>,
    /// The earliest grace-period end among the published retiring keys: the set must be
    /// re-assembled then, even if nobody changed it, so the expired key leaves the JWKS.
    next_expiry: Option<i64>,
}

impl Loaded {
    /// Keys from `keys_dir`: no store version, no grace period to watch.
    fn from_dir(keys: KeyStore) -> Loaded {
        Loaded {
            keys: Arc::new(keys),
            version: None,
            next_expiry: None,
        }
    }
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.current())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Keys that never change while the server runs (loaded from `keys_dir`).
    pub fn fixed(keys: KeyStore) -> KeyRing {
        KeyRing {
            current: RwLock::new(Loaded::from_dir(keys)),
        }
    }

    /// The key set of `store`, generated there if the store has none yet (and exactly once
    /// when several instances start at the same moment). A new set starts with one `new_key_alg`
    /// key.
    pub async fn load_shared(
        store: &dyn Store,
        new_key_alg: SigningAlg,
        clock: &dyn Clock,
    ) -> Result<KeyRing, KeyError> {
        let now = clock.now();
        let set = find_or_create(store, new_key_alg, now).await?;
        let loaded = assemble(&set, now)?;
        Ok(KeyRing {
            current: RwLock::new(loaded),
        })
    }

    /// The key set in use now.
    pub fn current(&self) -> Arc<KeyStore> {
        // A poisoned lock only means a panic elsewhere while swapping an `Arc`: the value
        // inside is still a whole key set.
        match self.current.read() {
            Ok(l) => l.keys.clone(),
            Err(poisoned) => poisoned.into_inner().keys.clone(),
        }
    }

    /// Swaps in a key set re-read from `keys_dir` (after a rotation made by the running server),
    /// without dropping the tokens the previous set signed: a rotation keeps the old key
    /// published, so they keep verifying.
    pub fn replace(&self, keys: KeyStore) {
        let kid = keys.active_kid().to_owned();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Loaded::from_dir(keys);
        tracing::info!(active_kid = %kid, "signing keys reloaded from the key directory");
    }

    /// Re-reads the key set of `store` and swaps it in when it changed (or a retiring key's
    /// grace period ended). Returns whether it swapped. A key set that cannot be used (a
    /// broken record) is an error and the keys in use stay.
    pub async fn reload(&self, store: &dyn Store, now: i64) -> Result<bool, KeyError> {
        let (version, next_expiry) = {
            let l = self.current.read().unwrap_or_else(|p| p.into_inner());
            (l.version, l.next_expiry)
        };
        let set = find_set(store)
            .await?
            .ok_or_else(|| store_error("the key set has disappeared from the store"))?;
        let expired = next_expiry.is_some_and(|t| t <= now);
        if version == Some(set.version) && !expired {
            return Ok(false);
        }
        let loaded = assemble(&set, now)?;
        let kid = loaded.keys.active_kid().to_owned();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        tracing::info!(version = set.version, active_kid = %kid, "signing keys reloaded from the store");
        Ok(true)
    }
}

/// Re-reads the shared key set every `interval` (see [`KeyRing::reload`]) until the task is
/// aborted. Failures are logged and the keys in use stay.
pub fn spawn_reloader(
    ring: Arc<KeyRing>,
    store: Arc<dyn Store>,
    clock: SharedClock,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick fires at once; the set was just loaded.
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = ring.reload(store.as_ref(), clock.now()).await {
                tracing::warn!(error = %e, "cannot reload the signing keys; keeping the current ones");
            }
        }
    })
}

/// `keys generate` against a shared store: adds an active key of `alg`; refuses when one is
/// already active (replacing it is a rotation).
pub async fn generate_in_store(
    store: &dyn Store,
    alg: SigningAlg,
    clock: &dyn Clock,
) -> Result<KeyInfo, KeyError> {
    change_set(store, clock, |set, now| {
        if set
            .keys
            .iter()
            .any(|k| k.alg == alg && k.status == KeyStatus::Active)
        {
            return Err(KeyError::AlreadyActive(alg.as_str()));
        }
        let key = new_stored_key(alg, now)?;
        let info = info_of(&key);
        set.keys.push(key);
        Ok(info)
    })
    .await
}

/// `keys rotate` against a shared store: a new key of `alg` becomes active, the previous one
/// stays published as retiring for `grace_secs`, retiring keys past their grace period are
/// removed. Every running instance picks it up at its next reload.
pub async fn rotate_in_store(
    store: &dyn Store,
    alg: SigningAlg,
    grace_secs: i64,
    clock: &dyn Clock,
) -> Result<Rotation, KeyError> {
    change_set(store, clock, |set, now| {
        let key = new_stored_key(alg, now)?;
        let (retired, removed) = retire_and_expire(&mut set.keys, alg, now, grace_secs);
        let new_key = info_of(&key);
        set.keys.push(key);
        Ok(Rotation {
            new_key,
            retired,
            removed: removed.into_iter().map(|k| k.kid).collect(),
        })
    })
    .await
}

/// `keys list` against a shared store: every key of the set (retiring ones past their grace
/// period included); empty when the store has no set yet.
pub async fn list_in_store(store: &dyn Store) -> Result<Vec<KeyInfo>, KeyError> {
    let set = find_set(store).await?;
    Ok(set.iter().flat_map(|s| &s.keys).map(info_of).collect())
}

/// Reads the set, applies `change` to a copy and writes it back with the next version if the
/// stored version is still the one read; on a conflict, starts over on the newer set. A store
/// without a set starts from an empty one (its first write is an insert, which also loses
/// against a concurrent first start).
async fn change_set<T>(
    store: &dyn Store,
    clock: &dyn Clock,
    change: impl Fn(&mut SigningKeySet, i64) -> Result<T, KeyError>,
) -> Result<T, KeyError> {
    for _ in 0..MAX_SWAP_ATTEMPTS {
        let found = find_set(store).await?;
        let expected = found.as_ref().map(|s| s.version);
        let mut set = found.unwrap_or(SigningKeySet {
            version: 0,
            keys: Vec::new(),
        });
        let out = change(&mut set, clock.now())?;
        set.version = expected.unwrap_or(0) + 1;
        // Never write a set that could not be served.
        assemble(&set, clock.now())?;
        match store.save_signing_keys(expected, &set).await {
            Ok(()) => return Ok(out),
            Err(StorageError::AlreadyExists) => continue,
            Err(e) => return Err(store_error(&e.to_string())),
        }
    }
    Err(store_error("the key set kept changing under us; try again"))
}

rotating_key!(StoredSigningKey);

/// The stored set, `None` when the store has none yet.
async fn find_set(store: &dyn Store) -> Result<Option<SigningKeySet>, KeyError> {
    match store.find_signing_keys().await {
        Ok(set) => Ok(Some(set)),
        Err(StorageError::NotFound) => Ok(None),
        Err(e) => Err(store_error(&e.to_string())),
    }
}

/// The stored set, or a new one with one `alg` key made at `now` inserted if absent. Of several instances
/// inserting at once, one wins; the others read and use its set.
async fn find_or_create(
    store: &dyn Store,
    alg: SigningAlg,
    now: i64,
) -> Result<SigningKeySet, KeyError> {
    if let Some(set) = find_set(store).await? {
        return Ok(set);
    }
    let set = SigningKeySet {
        version: 1,
        keys: vec![new_stored_key(alg, now)?],
    };
    match store.save_signing_keys(None, &set).await {
        Ok(()) => {
            tracing::info!(kid = %set.keys[0].kid, %alg, "generated the cluster's first signing key in the store");
            Ok(set)
        }
        Err(StorageError::AlreadyExists) => match store.find_signing_keys().await {
            Ok(set) => Ok(set),
            Err(e) => Err(store_error(&e.to_string())),
        },
        Err(e) => Err(store_error(&e.to_string())),
    }
}

/// Builds the key store of `set` as of `now` (retiring keys past their grace period are no
/// longer published), checking every key against its recorded kid and algorithm.
fn assemble(set: &SigningKeySet, now: i64) -> Result<Loaded, KeyError> {
    let mut active: Vec<LoadedKey> = Vec::new();
    let mut retiring = Vec::new();
    let mut next_expiry: Option<i64> = None;
    for stored in &set.keys {
        if stored.status == KeyStatus::Retiring {
            match stored.retire_at {
                Some(t) if t <= now => continue,
                Some(t) => next_expiry = Some(next_expiry.map_or(t, |n| n.min(t))),
                None => {}
            }
        }
        let key = load_stored(stored)?;
        match stored.status {
            KeyStatus::Active if active.iter().all(|a| a.info.alg != stored.alg) => {
                active.push(key)
            }
            KeyStatus::Active => {
                return Err(store_error(&format!(
                    "more than one active {} key",
                    stored.alg
                )))
            }
            KeyStatus::Retiring => retiring.push(key),
        }
    }
    if active.is_empty() {
        return Err(store_error("no key is active"));
    }
    Ok(Loaded {
        keys: Arc::new(KeyStore::assemble(active, retiring)?),
        version: Some(set.version),
        next_expiry,
    })
}

/// Parses one stored key and checks its kid.
fn load_stored(stored: &StoredSigningKey) -> Result<LoadedKey, KeyError> {
    let parsed = stored
        .alg
        .parse_pem(stored.private_pem.as_bytes())
        .map_err(|reason| store_error(&format!("key {} ({}): {reason}", stored.kid, stored.alg)))?;
    let kid = jwk_thumbprint(&Value::Object(parsed.members.clone()))?;
    if kid != stored.kid {
        return Err(store_error(&format!(
            "key recorded as {} has the RFC 7638 thumbprint {kid}",
            stored.kid
        )));
    }
    Ok(LoadedKey {
        info: info_of(stored),
        members: parsed.members,
        signer: parsed.signer,
    })
}

/// Generates a key of `alg`, active from `now`.
fn new_stored_key(alg: SigningAlg, now: i64) -> Result<StoredSigningKey, KeyError> {
    let pem = alg.generate_pem()?;
    let parsed = alg.parse_pem(&pem).map_err(|reason| KeyError::Generate {
        alg: alg.as_str(),
        reason: reason.to_owned(),
    })?;
    let kid = jwk_thumbprint(&Value::Object(parsed.members))?;
    let private_pem = String::from_utf8(pem).map_err(|_| KeyError::Generate {
        alg: alg.as_str(),
        reason: "the PEM is not ASCII".to_owned(),
    })?;
    Ok(StoredSigningKey {
        kid,
        alg,
        private_pem,
        created_at: now,
        status: KeyStatus::Active,
        retire_at: None,
    })
}

fn info_of(k: &StoredSigningKey) -> KeyInfo {
    KeyInfo {
        kid: k.kid.clone(),
        alg: k.alg,
        status: k.status,
        created_at: Some(k.created_at),
        retire_at: k.retire_at,
        path: PathBuf::from(IN_STORE),
    }
}

fn store_error(reason: &str) -> KeyError {
    KeyError::Store {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::storage::MemoryStore;

    fn kids(keys: &KeyStore) -> Vec<String> {
        let v: Value = serde_json::from_slice(&keys.jwks_bytes()).expect("JWKS");
        v["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    }

    /// A new memory store, a clock, and the key ring of the ES256 key set started in the store.
    async fn ring_in_new_store() -> (MemoryStore, ManualClock, KeyRing) {
        let store = MemoryStore::new();
        let clock = ManualClock::new(1_000);
        let ring = KeyRing::load_shared(&store, SigningAlg::Es256, &clock)
            .await
            .expect("load");
        (store, clock, ring)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn instances_starting_at_once_on_an_empty_store_generate_exactly_one_key_set() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(1_000));
        let starts: Vec<_> = (0..6)
            .map(|_| {
                let (store, clock) = (store.clone(), clock.clone());
                tokio::spawn(async move {
                    KeyRing::load_shared(store.as_ref(), SigningAlg::Es256, clock.as_ref())
                        .await
                        .expect("load")
                })
            })
            .collect();
        let mut jwks = Vec::new();
        for s in starts {
            jwks.push(s.await.expect("join").current().jwks_bytes());
        }
        assert!(
            jwks.iter().all(|j| *j == jwks[0]),
            "every instance has the same JWKS"
        );
        let set = store.find_signing_keys().await.expect("set");
        assert_eq!(set.version, 1);
        assert_eq!(set.keys.len(), 1, "one key generated for all");
    }

    #[tokio::test]
    async fn a_rotation_in_the_store_is_swapped_in_by_the_next_reload() {
        let (store, clock, ring) = ring_in_new_store().await;
        let before = ring.current();
        let old = before.active_kid().to_owned();
        assert!(
            !ring.reload(&store, clock.now()).await.expect("reload"),
            "nothing changed"
        );
        let r = rotate_in_store(&store, SigningAlg::Es256, 600, &clock)
            .await
            .expect("rotate");
        assert_eq!(r.retired.as_deref(), Some(old.as_str()));
        // Not until the reload: the keys in use are one consistent snapshot.
        assert_eq!(ring.current().active_kid(), old);
        assert!(ring.reload(&store, clock.now()).await.expect("reload"));
        let after = ring.current();
        assert_eq!(after.active_kid(), r.new_key.kid);
        assert_eq!(kids(&after), vec![r.new_key.kid.clone(), old.clone()]);
        // A token signed before the swap still verifies after it (the old key is retiring).
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "zhangsan".into());
        let jwt = before.sign_jwt(&claims).expect("sign");
        assert!(after.verify_jwt(&jwt).is_ok());
        // The snapshot taken before keeps working for whoever still holds it.
        assert_eq!(before.active_kid(), old);
    }

    #[tokio::test]
    async fn a_retiring_key_leaves_the_jwks_when_its_grace_period_ends_without_any_change() {
        let (store, clock, ring) = ring_in_new_store().await;
        let r = rotate_in_store(&store, SigningAlg::Es256, 10, &clock)
            .await
            .expect("rotate");
        assert!(ring.reload(&store, clock.now()).await.expect("reload"));
        assert_eq!(kids(&ring.current()).len(), 2);
        clock.advance(9);
        assert!(!ring.reload(&store, clock.now()).await.expect("reload"));
        clock.advance(1);
        assert!(ring.reload(&store, clock.now()).await.expect("reload"));
        assert_eq!(kids(&ring.current()), vec![r.new_key.kid]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_key_changes_are_all_kept() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(1_000));
        KeyRing::load_shared(store.as_ref(), SigningAlg::Es256, clock.as_ref())
            .await
            .expect("load");
        let rotations: Vec<_> = (0..3)
            .map(|_| {
                let (store, clock) = (store.clone(), clock.clone());
                tokio::spawn(async move {
                    rotate_in_store(store.as_ref(), SigningAlg::Es256, 3600, clock.as_ref())
                        .await
                        .expect("rotate")
                })
            })
            .collect();
        let mut new_kids = Vec::new();
        for r in rotations {
            new_kids.push(r.await.expect("join").new_key.kid);
        }
        let set = store.find_signing_keys().await.expect("set");
        assert_eq!(set.version, 4, "one version per change");
        assert_eq!(set.keys.len(), 4, "the first key and three rotated ones");
        for kid in &new_kids {
            assert!(set.keys.iter().any(|k| &k.kid == kid), "{kid} was lost");
        }
        let active: Vec<_> = set
            .keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active)
            .collect();
        assert_eq!(active.len(), 1, "one active key per algorithm");
    }

    #[tokio::test]
    async fn a_broken_key_set_in_the_store_is_refused_and_the_keys_in_use_stay() {
        let (store, clock, ring) = ring_in_new_store().await;
        let kid = ring.current().active_kid().to_owned();
        let mut set = store.find_signing_keys().await.expect("set");
        set.keys[0].kid = "not-its-thumbprint".into();
        set.version += 1;
        store
            .save_signing_keys(Some(set.version - 1), &set)
            .await
            .expect("save");
        let err = ring
            .reload(&store, clock.now())
            .await
            .expect_err("broken set accepted");
        assert!(err.to_string().contains("not-its-thumbprint"), "{err}");
        assert!(!err.to_string().contains("PRIVATE"), "{err}");
        assert_eq!(ring.current().active_kid(), kid);
    }

    #[tokio::test]
    async fn keys_generate_in_the_store_adds_an_algorithm_once() {
        let store = MemoryStore::new();
        let clock = ManualClock::new(1_000);
        assert!(list_in_store(&store).await.expect("list").is_empty());
        KeyRing::load_shared(&store, SigningAlg::Es256, &clock)
            .await
            .expect("load");
        let ed = generate_in_store(&store, SigningAlg::EdDsa, &clock)
            .await
            .expect("generate");
        assert!(matches!(
            generate_in_store(&store, SigningAlg::EdDsa, &clock).await,
            Err(KeyError::AlreadyActive(_))
        ));
        let listed = list_in_store(&store).await.expect("list");
        assert_eq!(listed.len(), 2);
        assert!(listed
            .iter()
            .any(|k| k.kid == ed.kid && k.alg == SigningAlg::EdDsa));
        let ring = KeyRing::load_shared(&store, SigningAlg::Es256, &clock)
            .await
            .expect("load");
        assert!(ring.current().has_alg(SigningAlg::EdDsa));
        assert!(ring.current().has_alg(SigningAlg::Es256));
    }
}
