//! Persistent state behind one small typed trait: pending authorization requests, authorization
//! codes, access tokens, revoked grants and the upstream token cache.
//!
//! Nothing backend-specific leaks out of this module: [`SledStore`] is the embedded default and
//! [`MemoryStore`] serves tests and a no-persistence mode; every backend passes the shared
//! [`conformance`] suite. Keys handed to the store are already hashed by the caller where they are
//! secrets (codes, tokens), so a copy of the database does not hand out working credentials.

pub mod conformance;
pub mod memory;
pub mod sled_store;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::connector::Identity;

pub use memory::MemoryStore;
pub use sled_store::SledStore;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No record under that key (or it has expired).
    #[error("not found")]
    NotFound,
    /// A record already exists under that key.
    #[error("already exists")]
    AlreadyExists,
    /// The backend failed (I/O, corruption, serialization).
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// Result alias for storage calls.
pub type Result<T> = std::result::Result<T, StorageError>;

/// A validated authorization request waiting for the upstream login to finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    /// The client that asked.
    pub client_id: String,
    /// The exact registered redirect URI the client sent.
    pub redirect_uri: String,
    /// Granted scopes (always contains `openid`).
    pub scopes: Vec<String>,
    /// The client's `state`, returned unchanged.
    pub state: Option<String>,
    /// The client's `nonce`, copied into the id_token.
    pub nonce: Option<String>,
    /// PKCE `code_challenge` (S256 only).
    pub code_challenge: Option<String>,
    /// `query` or `form_post`.
    pub response_mode: String,
    /// OIDC `max_age`, seconds.
    pub max_age: Option<i64>,
    /// OIDC `login_hint`.
    pub login_hint: Option<String>,
    /// OIDC `ui_locales`.
    pub ui_locales: Option<String>,
    /// Which connector handles the login.
    pub connector_id: String,
    /// Hash of the browser-binding cookie that started the flow.
    pub browser_binding: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which the request is dead.
    pub expires_at: i64,
}

/// An authorization code we issued. Stored under the hash of the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthCode {
    /// The client the code was issued to.
    pub client_id: String,
    /// The redirect URI of the authorization request; must match at `/token`.
    pub redirect_uri: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The client's `nonce`.
    pub nonce: Option<String>,
    /// PKCE `code_challenge` (S256), if the client sent one.
    pub code_challenge: Option<String>,
    /// Who logged in.
    pub identity: Identity,
    /// When the person authenticated upstream (Unix seconds).
    pub auth_time: i64,
    /// The grant this code starts; tokens issued from it carry the same id.
    pub grant_id: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Set once the code has been exchanged.
    pub redeemed: bool,
}

/// An access token we issued. Stored under the hash of the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    /// The client the token was issued to.
    pub client_id: String,
    /// The grant the token belongs to.
    pub grant_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Who the token speaks for.
    pub identity: Identity,
    /// When the person authenticated upstream.
    pub auth_time: i64,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A cached upstream credential (e.g. a WeCom app access_token), kept across restarts so a restart
/// does not cost a new upstream token. Its `Debug` output redacts the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamToken {
    /// The token itself.
    pub token: String,
    /// Unix seconds after which it must not be used.
    pub expires_at: i64,
}

// Written by hand so that the upstream credential never reaches a log line through `{:?}`.
impl fmt::Debug for UpstreamToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// One login attempt, for the operator's event log (`wecom-oidc events`). Kept until
/// `expires_at`, which the caller sets from the configured retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginEvent {
    /// When the login finished (Unix seconds).
    pub at: i64,
    /// Who logged in, when the upstream said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The client the login was for, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The address the browser came from, as this server saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `success`, or the OAuth error / failure class.
    pub outcome: String,
    /// Why it failed, in words (never a code, token or secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The request id of the callback, to find its log line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Unix seconds after which the event may be deleted.
    pub expires_at: i64,
}

/// The storage interface. Implementations must be safe to call from many tasks at once; the
/// single-use operations (`take_auth_request`, `redeem_auth_code`) must be atomic, so that two
/// racing requests never both succeed.
pub trait Store: Send + Sync + 'static {
    /// Stores a pending authorization request under `key`. `AlreadyExists` if taken.
    fn create_auth_request(&self, key: &str, req: &AuthRequest) -> Result<()>;
    /// Atomically removes and returns the request under `key` (single use). `NotFound` if absent.
    /// Expiry is the caller's check.
    fn take_auth_request(&self, key: &str) -> Result<AuthRequest>;

    /// Stores a new authorization code under `key` (the code's hash). `AlreadyExists` if taken.
    fn create_auth_code(&self, key: &str, code: &AuthCode) -> Result<()>;
    /// Atomically marks the code under `key` as redeemed and returns the record as it was
    /// *before* this call: a returned `redeemed == true` means the code had already been used.
    /// `NotFound` if absent.
    fn redeem_auth_code(&self, key: &str) -> Result<AuthCode>;

    /// Stores an access token under `key` (the token's hash). `AlreadyExists` if taken (a fresh
    /// random token never collides; refusing keeps an existing grant from being overwritten).
    fn create_access_token(&self, key: &str, token: &AccessToken) -> Result<()>;
    /// Returns the access token under `key`. `NotFound` if absent. Expiry and grant revocation
    /// are the caller's checks.
    fn find_access_token(&self, key: &str) -> Result<AccessToken>;
    /// Deletes the access token under `key`; deleting an absent token is not an error.
    fn delete_access_token(&self, key: &str) -> Result<()>;

    /// Records that every token of `grant_id` is revoked; the mark may be dropped after
    /// `keep_until` (Unix seconds), when every token of the grant has expired anyway. Revoking an
    /// already revoked grant keeps the later of the two `keep_until`s, so a second revocation
    /// never shortens the first.
    fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<()>;
    /// Whether `grant_id` has been revoked.
    fn is_grant_revoked(&self, grant_id: &str) -> Result<bool>;

    /// Returns the cached upstream token under `key`. `NotFound` if absent.
    fn find_upstream_token(&self, key: &str) -> Result<UpstreamToken>;
    /// Saves (replaces) the cached upstream token under `key`.
    fn save_upstream_token(&self, key: &str, token: &UpstreamToken) -> Result<()>;
    /// Deletes the cached upstream token under `key`; absent is not an error.
    fn delete_upstream_token(&self, key: &str) -> Result<()>;

    /// Deletes every record (login events included) whose expiry (or `keep_until`) is strictly
    /// before `now`; returns how many. Redeemed codes are kept until they expire, so a replayed code is still recognised.
    fn delete_expired(&self, now: i64) -> Result<usize>;

    /// Appends a login event. Events never overwrite one another, even when two logins finish
    /// in the same second.
    fn create_login_event(&self, event: &LoginEvent) -> Result<()>;
    /// The newest `limit` login events, newest first.
    fn list_login_events(&self, limit: usize) -> Result<Vec<LoginEvent>>;

    /// Makes every write so far durable (called on shutdown and by a periodic task).
    fn flush(&self) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_token_debug_redacts_the_token() {
        let token = UpstreamToken {
            token: "wecom-access-token-value".into(),
            expires_at: 1_700_000_000,
        };
        let shown = format!("{token:?}");
        assert!(!shown.contains("wecom-access-token-value"), "{shown}");
        assert!(shown.contains("1700000000"), "{shown}");
    }
}
