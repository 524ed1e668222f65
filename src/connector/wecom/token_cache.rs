//! The app's WeCom access_token (wecom-api.md §1): cached in memory and in the [`Store`] so a
//! restart costs no `gettoken`, fetched by one caller at a time (single flight), refreshed
//! shortly before it expires and replaced when WeCom rejects it (40014 / 42001).
//!
//! Single flight holds across processes too: when several instances share one store, the one
//! that needs a token first re-reads the store, then takes the store lease
//! `wecom:{corp_id}:{agent_id}:gettoken` ([`Store::acquire_lease`]) and alone calls `gettoken`;
//! the others find the lease taken, wait (bounded) and read the token it stored. So the cluster
//! fetches one token per lifetime, as WeCom's rate limits and its "do not call gettoken on every
//! request" rule ask, even when every instance starts at the same moment.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::api::ApiClient;
use crate::clock::SharedClock;
use crate::connector::ConnectorError;
use crate::metrics::{Metrics, TokenCacheEvent};
use crate::random::{self, constant_time_eq};
use crate::storage::{StorageError, UpstreamStore, UpstreamToken};

/// Upper bound on the lifetime we believe. WeCom says 7200 s; a larger value would only keep a
/// token WeCom may have revoked, and the clamp keeps `now + lifetime` far from overflow.
const MAX_LIFETIME_SECS: i64 = 24 * 3600;
/// How long before expiry we stop using a token, at most. `gettoken` is rate limited and may
/// return the same token inside its validity window (wecom-api.md §1), so the margin is a small
/// fraction of the lifetime: one `gettoken` per token lifetime, never more.
const MAX_REFRESH_MARGIN_SECS: i64 = 300;
/// WeCom's documented maximum length of an access_token (wecom-api.md §1).
const MAX_TOKEN_BYTES: usize = 512;
/// How long the lease around one `gettoken` lasts (seconds). Longer than the API client's
/// request timeout, so a slow `gettoken` keeps its lease; short enough that an instance that
/// died holding it delays the others by only this much.
const FETCH_LEASE_SECS: i64 = 15;
/// How long a caller waits for another instance's `gettoken` before giving up: a lapsed lease
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

/// One app's access_token. Shared by every login of the connector.
pub(crate) struct TokenCache {
    api: ApiClient,
    store: Arc<dyn UpstreamStore>,
    clock: SharedClock,
    /// Store key: `wecom:{corp_id}:{agent_id}` (tokens are per app).
    key: String,
    corp_id: String,
    secret: String,
    /// Held across `gettoken`, so concurrent callers that find no token wait for the one fetch
    /// instead of each calling WeCom.
    cached: Mutex<Option<CachedToken>>,
    /// Counts hits and refreshes.
    metrics: Arc<Metrics>,
    /// This cache's holder id for the `gettoken` lease: random per process, so two instances
    /// never mistake each other's lease for their own.
    lease_owner: String,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("key", &self.key)
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache for the app `agent_id` of `corp_id`.
    pub(crate) fn new(
        api: ApiClient,
        store: Arc<dyn UpstreamStore>,
        clock: SharedClock,
        corp_id: &str,
        agent_id: i64,
        secret: &str,
    ) -> Self {
        Self {
            api,
            store,
            clock,
            key: format!("wecom:{corp_id}:{agent_id}"),
            corp_id: corp_id.to_owned(),
            secret: secret.to_owned(),
            cached: Mutex::new(None),
            metrics: Arc::new(Metrics::new()),
            lease_owner: random::token(16),
        }
    }

    /// The same cache, counting hits and refreshes into `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// A usable token: from memory, else from the store, else from `gettoken`.
    pub(crate) async fn get(&self) -> Result<String, ConnectorError> {
        let mut cached = self.cached.lock().await;
        let now = self.clock.now();
        if let Some(t) = cached.as_ref().filter(|t| now < t.usable_until) {
            self.metrics.record_token_cache(TokenCacheEvent::MemoryHit);
            return Ok(t.token.clone());
        }
        if let Some(t) = self.load(now, None).await {
            self.metrics.record_token_cache(TokenCacheEvent::StoreHit);
            let token = t.token.clone();
            *cached = Some(t);
            return Ok(token);
        }
        self.fetch_shared(&mut cached, None).await
    }

    /// Replaces `rejected`, which WeCom answered with 40014 (invalid) or 42001 (expired):
    /// forgets it in memory and in the store and fetches a new one. When another caller has
    /// already replaced it, that replacement is returned without a new `gettoken`.
    pub(crate) async fn replace(&self, rejected: &str) -> Result<String, ConnectorError> {
        let mut cached = self.cached.lock().await;
        let now = self.clock.now();
        if let Some(t) = cached.as_ref().filter(|t| now < t.usable_until) {
            if !constant_time_eq(t.token.as_bytes(), rejected.as_bytes()) {
                return Ok(t.token.clone());
            }
        }
        *cached = None;
        self.metrics.record_token_cache(TokenCacheEvent::Replace);
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
                tracing::warn!(key = %self.key, error = %e, "cannot read the cached WeCom token");
                None
            }
        }
    }

    /// A new token for the whole cluster: under the store's `gettoken` lease, exactly one caller
    /// among every instance sharing the store calls WeCom; the others wait for the token it
    /// stores (at most [`MAX_WAIT`]). A store that cannot grant leases is logged and this
    /// instance fetches by itself: a login matters more than one extra `gettoken`.
    async fn fetch_shared(
        &self,
        cached: &mut Option<CachedToken>,
        rejected: Option<&str>,
    ) -> Result<String, ConnectorError> {
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
                            self.metrics.record_token_cache(TokenCacheEvent::StoreHit);
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
                        tracing::warn!(key = %self.key, error = %e, "cannot release the gettoken lease");
                    }
                    return result;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(key = %self.key, error = %e, "cannot take the gettoken lease; fetching without it");
                    self.count_fetch(rejected);
                    return self.fetch_into(cached).await;
                }
            }
            // Another instance holds the lease: wait for the token it is fetching.
            if tokio::time::Instant::now() >= deadline {
                return Err(ConnectorError::Unavailable(
                    "another instance is fetching the WeCom access_token and has not finished"
                        .into(),
                ));
            }
            tokio::time::sleep(WAIT_POLL).await;
            if let Some(t) = self.load(self.clock.now(), rejected).await {
                self.metrics.record_token_cache(TokenCacheEvent::StoreHit);
                let token = t.token.clone();
                *cached = Some(t);
                return Ok(token);
            }
        }
    }

    /// Counts a `gettoken` call: a refresh, unless it replaces a rejected token (counted as a
    /// replacement already).
    fn count_fetch(&self, rejected: Option<&str>) {
        if rejected.is_none() {
            self.metrics.record_token_cache(TokenCacheEvent::Refresh);
        }
    }

    /// Calls `gettoken`, then keeps the token in `cached` and in the store.
    async fn fetch_into(&self, cached: &mut Option<CachedToken>) -> Result<String, ConnectorError> {
        // Counting the lifetime from before the call errs on the early side.
        let now = self.clock.now();
        let response = self.api.get_token(&self.corp_id, &self.secret).await?;
        let token = response
            .access_token
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_BYTES)
            .ok_or_else(|| {
                ConnectorError::Unavailable("WeCom gettoken answered without a usable token".into())
            })?;
        let lifetime = response
            .expires_in
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                ConnectorError::Unavailable("WeCom gettoken answered without expires_in".into())
            })?
            .min(MAX_LIFETIME_SECS);
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
            tracing::warn!(key = %self.key, error = %e, "cannot persist the WeCom token");
        }
        *cached = Some(entry);
        Ok(token)
    }
}
