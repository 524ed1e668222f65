//! Narrow roles of the store: a layer depends on the part it uses, not on all of [`Store`]. A
//! connector keeps only upstream tokens, user links and cluster leases ([`UpstreamStore`]); it
//! gets a view of the full store in that role ([`upstream_role`]), and its tests implement the
//! role alone. The conformance suite covers these methods on every backend through [`Store`].

use std::sync::Arc;

use async_trait::async_trait;

use super::{Result, Store, UpstreamToken};

/// What a connector keeps in the store.
#[async_trait]
pub trait UpstreamStore: Send + Sync + 'static {
    /// The cached upstream token under `key`. `NotFound` if absent.
    async fn find_upstream_token(&self, key: &str) -> Result<UpstreamToken>;
    /// Saves (replaces) the cached upstream token under `key`.
    async fn save_upstream_token(&self, key: &str, token: &UpstreamToken) -> Result<()>;
    /// Deletes the cached upstream token under `key`; absent is not an error.
    async fn delete_upstream_token(&self, key: &str) -> Result<()>;
    /// The upstream user link under `key` ([`Store::find_user_link`]). `NotFound` if absent.
    async fn find_user_link(&self, key: &str) -> Result<String>;
    /// Saves (replaces) the upstream user link under `key`.
    async fn save_user_link(&self, key: &str, value: &str) -> Result<()>;
    /// Takes the lease `name` for `owner` ([`Store::acquire_lease`]).
    async fn acquire_lease(&self, name: &str, owner: &str, now: i64, until: i64) -> Result<bool>;
    /// Releases the lease `name` if `owner` holds it ([`Store::release_lease`]).
    async fn release_lease(&self, name: &str, owner: &str) -> Result<()>;
    /// Whether several server processes share this store ([`Store::is_shared`]).
    fn is_shared(&self) -> bool {
        false
    }
}

/// The connector role of a full store.
pub fn upstream_role(store: Arc<dyn Store>) -> Arc<dyn UpstreamStore> {
    Arc::new(UpstreamView(store))
}

/// A full store seen in its connector role.
struct UpstreamView(Arc<dyn Store>);

#[async_trait]
impl UpstreamStore for UpstreamView {
    async fn find_upstream_token(&self, key: &str) -> Result<UpstreamToken> {
        self.0.find_upstream_token(key).await
    }
    async fn save_upstream_token(&self, key: &str, token: &UpstreamToken) -> Result<()> {
        self.0.save_upstream_token(key, token).await
    }
    async fn delete_upstream_token(&self, key: &str) -> Result<()> {
        self.0.delete_upstream_token(key).await
    }
    async fn find_user_link(&self, key: &str) -> Result<String> {
        self.0.find_user_link(key).await
    }
    async fn save_user_link(&self, key: &str, value: &str) -> Result<()> {
        self.0.save_user_link(key, value).await
    }
    async fn acquire_lease(&self, name: &str, owner: &str, now: i64, until: i64) -> Result<bool> {
        self.0.acquire_lease(name, owner, now, until).await
    }
    async fn release_lease(&self, name: &str, owner: &str) -> Result<()> {
        self.0.release_lease(name, owner).await
    }
    fn is_shared(&self) -> bool {
        self.0.is_shared()
    }
}
