//! An upstream's access token (for WeCom: the app's `access_token`, wecom-api.md §1), cached in
//! memory and in the store so a restart costs no fetch, fetched by one caller at a time (single
//! flight), refreshed shortly before it expires and replaced when the upstream rejects it.
//! Connectors supply only the fetch ([`TokenSource`]) and the store key.
//!
//! Single flight holds across processes too: when several instances share one store, the one
//! that needs a token first re-reads the store, then takes the store lease `{key}:gettoken`
//! ([`UpstreamStore::acquire_lease`]) and alone fetches; the others find the lease taken, wait
//! (bounded) and read the token it stored. So the cluster fetches one token per lifetime, as
//! upstream rate limits ask (WeCom: "do not call gettoken on every request"), even when every
//! instance starts at the same moment.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::clock::SharedClock;
use crate::connector::ConnectorError;
use crate::metrics::{Metrics, TokenCacheEvent, Upstream};
use crate::random::{self, constant_time_eq};
use crate::storage::{StorageError, UpstreamStore, UpstreamToken};

/// Upper bound on the lifetime we believe (WeCom says 7200 s): a larger value would only keep a
/// token the upstream may have revoked, and the clamp keeps `now + lifetime` far from overflow.
const MAX_LIFETIME_SECS: i64 = 24 * 3600;
/// How long before expiry we stop using a token, at most. Token endpoints are rate limited and
/// may return the same token inside its validity window (WeCom, wecom-api.md §1), so the margin
/// is a small fraction of the lifetime: one fetch per token lifetime, never more.
const MAX_REFRESH_MARGIN_SECS: i64 = 300;

/// How a connector obtains a new token from its upstream.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A new token and its lifetime in seconds (both checked by the implementation: a
    /// non-empty token of a plausible size, a positive lifetime).
    async fn fetch(&self) -> Result<(String, i64), ConnectorError>;
}
/// How long the lease around one fetch lasts (seconds). Longer than an API client's request
/// timeout, so a slow fetch keeps its lease; short enough that an instance that
/// died holding it delays the others by only this much.
const FETCH_LEASE_SECS: i64 = 15;
/// How long a caller waits for another instance's fetch before giving up: a lapsed lease
/// (its holder died) is taken over well within it.
const MAX_WAIT: Duration = Duration::from_secs(FETCH_LEASE_SECS as u64 + 5);
/// How often a waiting caller looks for the token another instance is fetching.
const WAIT_POLL: Duration = Duration::from_millis(50);

/// A token and the Unix second from which we no longer use it.
#[derive(Clone)]
struct CachedToken {
    token: String,
    usable_until: i64,
}

/// One upstream app's access token. Shared by every login of the connector.
pub struct TokenCache {
    source: Box<dyn TokenSource>,
    store: Arc<dyn UpstreamStore>,
    clock: SharedClock,
    /// Store key, e.g. `wecom:{corp_id}:{agent_id}` (WeCom tokens are per app).
    key: String,
    /// Held across a fetch, so concurrent callers that find no token wait for the one fetch
    /// instead of each asking the upstream.
    cached: Mutex<Option<CachedToken>>,
    /// Counts hits and refreshes, under `upstream`'s name.
    metrics: Arc<Metrics>,
    upstream: Upstream,
    /// This cache's holder id for the fetch lease: random per process, so two instances
    /// never mistake each other's lease for their own.
    lease_owner: String,
}

crate::secret::debug_showing!(TokenCache: key);

impl TokenCache {
    /// A cache of the tokens `source` fetches, kept in `store` under `key`.
    pub fn new(
        source: Box<dyn TokenSource>,
        store: Arc<dyn UpstreamStore>,
        clock: SharedClock,
        key: String,
    ) -> Self {
        Self {
            source,
            store,
            clock,
            key,
            cached: Mutex::new(None),
            metrics: Arc::new(Metrics::new()),
            upstream: Upstream::new("upstream"),
            lease_owner: random::token(16),
        }
    }

    /// The same cache, counting hits and refreshes into `metrics` as `upstream`'s cache.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>, upstream: Upstream) -> Self {
        metrics.register_token_cache(upstream);
        self.metrics = metrics;
        self.upstream = upstream;
        self
    }

    /// Until when the token in use is usable (Unix seconds), without fetching one: `None` when
    /// no token has been fetched yet, or a fetch is running.
    pub async fn usable_until(&self) -> Option<i64> {
        if let Ok(cached) = self.cached.try_lock() {
            if let Some(t) = cached.as_ref() {
                return Some(t.usable_until);
            }
        }
        self.load(self.clock.now(), None)
            .await
            .map(|t| t.usable_until)
    }

    /// A usable token: from memory, else from the store, else fetched.
    pub async fn get(&self) -> Result<String, ConnectorError> {
        let mut cached = self.cached.lock().await;
        let now = self.clock.now();
        if let Some(t) = cached.as_ref().filter(|t| now < t.usable_until) {
            self.metrics
                .record_token_cache(self.upstream, TokenCacheEvent::MemoryHit);
            return Ok(t.token.clone());
        }
        if let Some(t) = self.load(now, None).await {
            self.metrics
                .record_token_cache(self.upstream, TokenCacheEvent::StoreHit);
            let token = t.token.clone();
            *cached = Some(t);
            return Ok(token);
        }
        self.fetch_shared(&mut cached, None).await
    }

    /// Runs `call` with a usable token; when the upstream answers one of `rejected` (its
    /// "invalid / expired token" codes — it may revoke a token early), replaces the token and
    /// retries exactly once.
    pub async fn call_with<T, F, Fut>(&self, rejected: &[i64], call: F) -> Result<T, ConnectorError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ConnectorError>>,
    {
        let token = self.get().await?;
        match call(token.clone()).await {
            Err(ConnectorError::Upstream { code, .. }) if rejected.contains(&code) => {
                let fresh = self.replace(&token).await?;
                call(fresh).await
            }
            other => other,
        }
    }

    /// Replaces `rejected`, which the upstream refused (WeCom: 40014 invalid, 42001 expired):
    /// forgets it in memory and in the store and fetches a new one. When another caller has
    /// already replaced it, that replacement is returned without a new fetch.
    pub async fn replace(&self, rejected: &str) -> Result<String, ConnectorError> {
        let mut cached = self.cached.lock().await;
        let now = self.clock.now();
        if let Some(t) = cached.as_ref().filter(|t| now < t.usable_until) {
            if !constant_time_eq(t.token.as_bytes(), rejected.as_bytes()) {
                return Ok(t.token.clone());
            }
        }
        *cached = None;
        self.metrics
            .record_token_cache(self.upstream, TokenCacheEvent::Replace);
        // The rejected token is not deleted from the store: another instance may already have
        // saved its replacement there, which a delete would throw away. It is skipped instead,
        // and overwritten by the replacement.
        self.fetch_shared(&mut cached, Some(rejected)).await
    }

    /// The persisted token, if the store has one that is still usable and is not `rejected`. A
    /// store failure is logged and treated as a miss: the login can still go on with a fresh
    /// token.
    async fn load(&self, now: i64, rejected: Option<&str>) -> Option<CachedToken> {
        match self.store.find_upstream_token(&self.key).await {
            Ok(t) if now < t.expires_at && !t.token.is_empty() => {
                if rejected.is_some_and(|r| constant_time_eq(r.as_bytes(), t.token.as_bytes())) {
                    return None;
                }
                Some(CachedToken {
                    token: t.token,
                    usable_until: t.expires_at,
                })
            }
            Ok(_) | Err(StorageError::NotFound) => None,
            Err(e) => {
                tracing::warn!(key = %self.key, error = %e, "cannot read the cached upstream token");
                None
            }
        }
    }

    /// A new token for the whole cluster: under the store's lease, exactly one caller among
    /// every instance sharing the store asks the upstream; the others wait for the token it
    /// stores (at most [`MAX_WAIT`]). A store that cannot grant leases is logged and this
    /// instance fetches by itself: a login matters more than one extra fetch.
    async fn fetch_shared(
        &self,
        cached: &mut Option<CachedToken>,
        rejected: Option<&str>,
    ) -> Result<String, ConnectorError> {
        // Named `…:gettoken` since the first release: instances of mixed versions share it.
        let lease = format!("{}:gettoken", self.key);
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            let now = self.clock.now();
            let until = now.saturating_add(FETCH_LEASE_SECS);
            match self
                .store
                .acquire_lease(&lease, &self.lease_owner, now, until)
                .await
            {
                Ok(true) => {
                    // Re-read under the lease: the previous holder may have stored a token just
                    // before letting go of it.
                    let result = match self.load(now, rejected).await {
                        Some(t) => {
                            self.metrics
                                .record_token_cache(self.upstream, TokenCacheEvent::StoreHit);
                            let token = t.token.clone();
                            *cached = Some(t);
                            Ok(token)
                        }
                        None => {
                            self.count_fetch(rejected);
                            self.fetch_into(cached).await
                        }
                    };
                    if let Err(e) = self.store.release_lease(&lease, &self.lease_owner).await {
                        // It lapses by itself after FETCH_LEASE_SECS.
                        tracing::warn!(key = %self.key, error = %e, "cannot release the token fetch lease");
                    }
                    return result;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(key = %self.key, error = %e, "cannot take the token fetch lease; fetching without it");
                    self.count_fetch(rejected);
                    return self.fetch_into(cached).await;
                }
            }
            // Another instance holds the lease: wait for the token it is fetching.
            if tokio::time::Instant::now() >= deadline {
                return Err(ConnectorError::Unavailable(
                    "another instance is fetching the upstream access token and has not finished"
                        .into(),
                ));
            }
            tokio::time::sleep(WAIT_POLL).await;
            if let Some(t) = self.load(self.clock.now(), rejected).await {
                self.metrics
                    .record_token_cache(self.upstream, TokenCacheEvent::StoreHit);
                let token = t.token.clone();
                *cached = Some(t);
                return Ok(token);
            }
        }
    }

    /// Counts a fetch: a refresh, unless it replaces a rejected token (counted as a
    /// replacement already).
    fn count_fetch(&self, rejected: Option<&str>) {
        if rejected.is_none() {
            self.metrics
                .record_token_cache(self.upstream, TokenCacheEvent::Refresh);
        }
    }

    /// Fetches a token, then keeps it in `cached` and in the store.
    async fn fetch_into(&self, cached: &mut Option<CachedToken>) -> Result<String, ConnectorError> {
        // Counting the lifetime from before the call errs on the early side.
        let now = self.clock.now();
        let (token, lifetime) = self.source.fetch().await?;
        if token.is_empty() || lifetime <= 0 {
            return Err(ConnectorError::Unavailable(
                "the upstream answered without a usable token".into(),
            ));
        }
        let lifetime = lifetime.min(MAX_LIFETIME_SECS);
        let margin = (lifetime / 10).min(MAX_REFRESH_MARGIN_SECS);
        let entry = CachedToken {
            token: token.clone(),
            usable_until: now.saturating_add(lifetime - margin),
        };
        let record = UpstreamToken {
            token: token.clone(),
            expires_at: entry.usable_until,
        };
        if let Err(e) = self.store.save_upstream_token(&self.key, &record).await {
            // Only the restart optimisation is lost; the in-memory copy still serves.
            tracing::warn!(key = %self.key, error = %e, "cannot persist the upstream token");
        }
        *cached = Some(entry);
        Ok(token)
    }
}
