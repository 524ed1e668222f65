//! Narrow roles of the store: a layer depends on the part it uses, not on all of [`Store`]. A
//! connector keeps only upstream tokens, user links and cluster leases ([`UpstreamStore`]); it
//! gets a view of the full store in that role ([`upstream_role`]), and its tests implement the
//! role alone. The operator's console reads and writes only what an operator sees
//! ([`OperatorStore`]). The conformance suite covers these methods on every backend through [`Store`].

use std::sync::Arc;

use async_trait::async_trait;

use super::{AuditEvent, LoginEvent, Result, Session, Store, UpstreamToken};

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

/// What the operator's console reads and writes: who is signed in, the login event log and the
/// audit log of operator actions.
#[async_trait]
pub trait OperatorStore: Send + Sync + 'static {
    /// Live sessions, most recently used first ([`Store::list_sessions`]).
    async fn list_sessions(&self, now: i64, limit: usize) -> Result<Vec<Session>>;
    /// The newest login events ([`Store::list_login_events`]).
    async fn list_login_events(&self, limit: usize) -> Result<Vec<LoginEvent>>;
    /// Appends an operator action ([`Store::create_audit_event`]).
    async fn create_audit_event(&self, event: &AuditEvent) -> Result<()>;
    /// The newest operator actions ([`Store::list_audit_events`]).
    async fn list_audit_events(&self, limit: usize) -> Result<Vec<AuditEvent>>;
    /// Makes the writes so far durable ([`Store::flush`]).
    async fn flush(&self) -> Result<()>;
}

/// The operator role of a full store.
pub fn operator_role(store: Arc<dyn Store>) -> Arc<dyn OperatorStore> {
    Arc::new(OperatorView(store))
}

/// A full store seen in its operator role.
struct OperatorView(Arc<dyn Store>);

#[async_trait]
impl OperatorStore for OperatorView {
    async fn list_sessions(&self, now: i64, limit: usize) -> Result<Vec<Session>> {
        self.0.list_sessions(now, limit).await
    }
    async fn list_login_events(&self, limit: usize) -> Result<Vec<LoginEvent>> {
        self.0.list_login_events(limit).await
    }
    async fn create_audit_event(&self, event: &AuditEvent) -> Result<()> {
        self.0.create_audit_event(event).await
    }
    async fn list_audit_events(&self, limit: usize) -> Result<Vec<AuditEvent>> {
        self.0.list_audit_events(limit).await
    }
    async fn flush(&self) -> Result<()> {
        self.0.flush().await
    }
}
