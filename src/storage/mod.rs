//! Persistent state behind one small typed trait: pending authorization requests, authorization
//! codes, access tokens, refresh tokens, used client-assertion ids, revoked grants and the
//! upstream token cache.
//!
//! Nothing backend-specific leaks out of this module: [`SledStore`] is the embedded default,
//! [`PostgresStore`] serves several instances at once and [`MemoryStore`] serves tests and a
//! no-persistence mode; every backend passes the shared
//! [`conformance`] suite. Keys handed to the store are already hashed by the caller where they are
//! secrets (codes, tokens), so a copy of the database does not hand out working credentials.

pub mod cluster;
#[cfg(any(test, feature = "testkit"))]
pub mod conformance;
mod decode_cache;
pub mod device;
pub mod durability;
#[cfg(any(test, feature = "testkit"))]
pub mod hooked;
pub mod marks;
pub mod memory;
#[cfg(any(test, feature = "testkit"))]
pub mod outage;
#[cfg(any(test, feature = "testkit"))]
pub mod pg_local;
pub mod postgres;
pub mod roles;
pub mod sled_copy;
pub mod sled_format;
mod sled_reopen;
pub mod sled_store;
pub mod unavailable;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::identity::Identity;

pub use cluster::{SigningKeySet, StoredSigningKey};
pub use device::{DeviceAuthorization, DeviceChange, DeviceStatus};
pub use durability::Durability;
pub use marks::{subject_mark_key, CheckedAccessToken, SubjectMarks};
pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use roles::{operator_role, upstream_role, OperatorStore, UpstreamStore};
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
    /// The backend failed (corruption, serialization, a bug).
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The backend cannot be reached or cannot write right now — the database is down or
    /// restarting, no pooled connection came free in time, the disk is full — and the same
    /// request may well succeed later. Nothing was changed by the failed call that a client
    /// was told about: callers answer "temporarily unavailable", never a credential.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
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
    /// The `claims` request parameter (OIDC Core §5.5), reduced to what we release.
    #[serde(default, skip_serializing_if = "ClaimsRequest::is_empty")]
    pub claims: ClaimsRequest,
    /// Which connector handles the login.
    pub connector_id: String,
    /// Hash of the browser-binding cookie that started the flow.
    pub browser_binding: String,
    /// For the login of a device verification page (RFC 8628 §3.3): the user code to return
    /// to once the person is signed in, instead of a code for the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_user_code: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which the request is dead.
    pub expires_at: i64,
}

/// Claims a client asked for one by one with the `claims` request parameter (OIDC Core §5.5),
/// already reduced by the provider to names it can supply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    /// Claim names for the id_token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token: Vec<String>,
    /// Claim names for the userinfo response.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub userinfo: Vec<String>,
}

impl ClaimsRequest {
    /// Whether nothing was asked for.
    pub fn is_empty(&self) -> bool {
        self.id_token.is_empty() && self.userinfo.is_empty()
    }
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
    /// The provider session the code was issued from (the id_token's `sid`, Back-Channel
    /// Logout 1.0 §2.1). Absent in records written before sessions existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Claims requested individually for the id_token and userinfo (OIDC Core §5.5).
    #[serde(default, skip_serializing_if = "ClaimsRequest::is_empty")]
    pub claims: ClaimsRequest,
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
    /// Claims requested individually for userinfo (OIDC Core §5.5), beyond the scopes'.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub userinfo_claims: Vec<String>,
    /// Issued to the client itself (`client_credentials`, RFC 6749 §4.4): no person stands
    /// behind it, so it opens no userinfo.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_only: bool,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A provider session: who logged in upstream, when, and which clients they have since logged
/// into without a new upstream login (so a logout can reach every one of them). Stored under the
/// hash of the session cookie's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The public session id sent as `sid` in id_tokens and logout tokens (Back-Channel
    /// Logout 1.0 §2.1). Random and unrelated to the cookie, so it reveals nothing about it.
    pub sid: String,
    /// Who logged in.
    pub identity: Identity,
    /// The connector that authenticated them.
    pub connector_id: String,
    /// When they authenticated upstream (Unix seconds): the id_token's `auth_time`.
    pub auth_time: i64,
    /// Last time the session was used (Unix seconds), for the idle timeout.
    pub last_seen: i64,
    /// Unix seconds after which the session is dead whatever its use.
    pub expires_at: i64,
    /// Client ids that received a code through this session, in first-login order.
    pub clients: Vec<String>,
}

impl Session {
    /// Records a use by `client_id` at `now` (the update every backend applies atomically).
    pub fn touch(&mut self, client_id: &str, now: i64) {
        self.last_seen = self.last_seen.max(now);
        if !self.clients.iter().any(|c| c == client_id) {
            self.clients.push(client_id.to_owned());
        }
    }

    /// Whether `other` is a session of the same person.
    pub fn is_same_person(&self, other: &Session) -> bool {
        self.identity.user_id == other.identity.user_id
    }

    /// Takes over the clients of `previous`, the browser's session this one replaces, when it
    /// was the same person's, so that a later logout still reaches them (theirs first, in their
    /// order). Another person's session hands nothing over. Whether it was the same person.
    pub fn carry_over(&mut self, previous: &Session) -> bool {
        if !self.is_same_person(previous) {
            return false;
        }
        let own = std::mem::replace(&mut self.clients, previous.clients.clone());
        for client in own {
            if !self.clients.contains(&client) {
                self.clients.push(client);
            }
        }
        true
    }
}

/// What a finished upstream login writes ([`Store::start_login`]): the session it starts, the
/// browser's session it ends, and the authorization code it issues.
#[derive(Debug, Clone, Copy)]
pub struct NewLogin<'a> {
    /// The store key (cookie hash) of the browser's previous session, which ends.
    pub previous: Option<&'a str>,
    /// The store key (cookie hash) of the new session.
    pub session_key: &'a str,
    /// The new session, the client it was started for already in `clients`.
    pub session: &'a Session,
    /// The code issued from the session, under its store key (the code's hash); none for the
    /// sign-in of a device verification page, which issues no code.
    pub code: Option<(&'a str, &'a AuthCode)>,
}

/// A refresh token we issued (OIDC Core §12, RFC 6749 §6). Stored under the hash of the token.
/// Each use spends it and issues a successor (rotation, RFC 9700 §4.14.2); a spent token is kept
/// until it expires so that a replay is recognised and revokes the grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshToken {
    /// The client the token was issued to.
    pub client_id: String,
    /// The grant the token belongs to (shared with the code and access tokens it came from).
    pub grant_id: String,
    /// The scopes of the grant; a refresh may narrow the access token's scope, never this one
    /// (RFC 6749 §6).
    pub scopes: Vec<String>,
    /// Who the grant speaks for, as last confirmed by the connector.
    pub identity: Identity,
    /// When the person authenticated upstream (kept in every refreshed id_token, OIDC Core §12.2).
    pub auth_time: i64,
    /// When this token was issued (Unix seconds).
    pub issued_at: i64,
    /// Unix seconds after which the token is dead.
    pub expires_at: i64,
    /// Set once the token has been exchanged for its successor.
    pub spent: bool,
}

/// What replaces a refresh token when it is used ([`Store::rotate_refresh_token`]): its successor
/// and the access token issued beside it. Stored together with the spending of the old token,
/// all or nothing, so that no failure between the writes leaves a client whose token is spent
/// and which never received the next one.
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    /// The successor's key (the new token's hash).
    pub refresh_key: &'a str,
    /// The successor.
    pub refresh: &'a RefreshToken,
    /// The new access token's key (the token's or its `jti`'s hash).
    pub access_key: &'a str,
    /// The new access token.
    pub access: &'a AccessToken,
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
    /// The grant the login was for when it was not a browser's code flow: `device_code` for
    /// the sign-in of a device verification page (RFC 8628).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// Why it failed, in words (never a code, token or secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The request id of the callback, to find its log line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Unix seconds after which the event may be deleted.
    pub expires_at: i64,
}

/// One operator action (the console's or the admin socket's), for the audit log. Kept until
/// `expires_at`, which the caller sets from the configured retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When it was asked for (Unix seconds).
    pub at: i64,
    /// Who asked (e.g. `console:wecom/zhangsan`, `cli`).
    pub actor: String,
    /// What was asked (e.g. `keys.rotate`).
    pub action: String,
    /// What it was asked of (a person, an algorithm), when anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `ok`, or the error the action ended with.
    pub outcome: String,
    /// What it did or why it failed, in words (never a code, token or secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Unix seconds after which the event may be deleted.
    pub expires_at: i64,
}

/// Whose records a sign-out reaches ([`Store::take_sessions_of`], [`Store::find_grants_of`]): one
/// person's `Identity::user_id` as vouched for by any of `connectors` (the upstream apps of their
/// realm, or one app). Records written before identities named their connector (empty
/// `connector_id`) match on the user id alone: over-reaching there ends a stale grant, which is
/// the safe side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `Identity::user_id` (the `sub` before any pairwise mapping).
    pub user_id: String,
    /// Connector ids whose records count.
    pub connectors: Vec<String>,
}

impl Subject {
    /// Whether a code, token or grant record for `identity` belongs to this subject. A record
    /// for a client with pairwise subjects carries the client's `sub` as `user_id` and the
    /// person's own id as `upstream_id`.
    pub fn owns(&self, identity: &Identity) -> bool {
        (identity.user_id == self.user_id
            || identity.upstream_id.as_deref() == Some(self.user_id.as_str()))
            && (identity.connector_id.is_empty()
                || self.connectors.contains(&identity.connector_id))
    }

    /// Whether `session` belongs to this subject.
    pub fn owns_session(&self, session: &Session) -> bool {
        session.identity.user_id == self.user_id && self.connectors.contains(&session.connector_id)
    }
}

/// The grants a subject holds now ([`Store::find_grants_of`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectGrants {
    /// Ids of the grants of their unexpired codes, access tokens and refresh tokens.
    pub grant_ids: std::collections::BTreeSet<String>,
    /// How many of their refresh tokens are live (unspent, unexpired).
    pub live_refresh_tokens: usize,
}

impl SubjectGrants {
    /// Adds a record of `grant_id`; `live_refresh` when it is a live refresh token.
    pub fn add(&mut self, grant_id: &str, live_refresh: bool) {
        self.grant_ids.insert(grant_id.to_owned());
        if live_refresh {
            self.live_refresh_tokens += 1;
        }
    }
}

/// A subject mark ([`Store::save_subject_mark`]) as the embedded backends keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectMark {
    /// Credentials from logins before this (Unix seconds) are void.
    pub not_before: i64,
    /// Unix seconds after which the mark may be dropped.
    pub keep_until: i64,
}

impl SubjectMark {
    /// The mark that keeps the later of both times of `self` and `other`.
    pub fn merge(self, other: SubjectMark) -> SubjectMark {
        SubjectMark {
            not_before: self.not_before.max(other.not_before),
            keep_until: self.keep_until.max(other.keep_until),
        }
    }
}

/// The storage interface. Implementations must be safe to call from many tasks at once; the
/// single-use operations (`take_auth_request`, `redeem_auth_code`, `rotate_refresh_token`,
/// `create_used_jti`) must be atomic, so that two racing requests never both succeed.
///
/// The methods are async so that a networked backend waits without holding a runtime thread.
/// A backend whose calls are short and CPU-bound (memory, sled) may do them inline; anything
/// that can block for long (an `fsync`, a scan of every record) must leave the runtime threads
/// (`spawn_blocking`) so that other requests keep being served meanwhile.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a pending authorization request under `key`. `AlreadyExists` if taken.
    async fn create_auth_request(&self, key: &str, req: &AuthRequest) -> Result<()>;
    /// Atomically removes and returns the request under `key` (single use). `NotFound` if absent.
    /// Expiry is the caller's check.
    async fn take_auth_request(&self, key: &str) -> Result<AuthRequest>;
    /// How many authorization requests are pending (created, not yet taken or swept), including
    /// expired ones not yet swept. Must be cheap (no scan): `/authorize` asks on every request to
    /// cap the pending set against floods.
    async fn count_auth_requests(&self) -> Result<usize>;
    /// Stores a pending authorization request under `key` unless `cap` or more are pending
    /// ([`Store::count_auth_requests`]): `Ok(false)` at the cap, and nothing is stored.
    /// `AlreadyExists` if the key is taken. The default counts, then creates; a networked
    /// backend does both in one statement (one round trip).
    async fn create_auth_request_within(
        &self,
        key: &str,
        req: &AuthRequest,
        cap: usize,
    ) -> Result<bool> {
        if self.count_auth_requests().await? >= cap {
            return Ok(false);
        }
        self.create_auth_request(key, req).await?;
        Ok(true)
    }

    /// Stores a new authorization code under `key` (the code's hash). `AlreadyExists` if taken.
    async fn create_auth_code(&self, key: &str, code: &AuthCode) -> Result<()>;
    /// Atomically marks the code under `key` as redeemed and returns the record as it was
    /// *before* this call: a returned `redeemed == true` means the code had already been used.
    /// `NotFound` if absent.
    async fn redeem_auth_code(&self, key: &str) -> Result<AuthCode>;
    /// [`Store::redeem_auth_code`], and the sign-out marks of the code's person read with it
    /// ([`SubjectMarks`]): a code exchange needs both, and a networked backend answers them in
    /// one round trip. A mark saved after this call is not in them; the sign-out that saved it
    /// also revokes the grants of the person's codes, this one's included. When the code was
    /// already redeemed (`redeemed == true`) the marks may be empty: a replay is refused
    /// whatever they say (RFC 6749 §4.1.2), so a backend need not read them.
    async fn redeem_auth_code_marked(&self, key: &str) -> Result<(AuthCode, SubjectMarks)> {
        let code = self.redeem_auth_code(key).await?;
        let marks = SubjectMarks::read(self, &code.identity).await?;
        Ok((code, marks))
    }

    /// Stores an access token under `key` (the token's hash). `AlreadyExists` if taken (a fresh
    /// random token never collides; refusing keeps an existing grant from being overwritten).
    async fn create_access_token(&self, key: &str, token: &AccessToken) -> Result<()>;
    /// Returns the access token under `key`. `NotFound` if absent. Expiry and grant revocation
    /// are the caller's checks.
    async fn find_access_token(&self, key: &str) -> Result<AccessToken>;
    /// [`Store::find_access_token`] with what voids it besides its expiry, the grant's
    /// revocation and its person's sign-out marks: what every use of an access token checks, in
    /// one call (one round trip for a networked backend). `NotFound` if absent.
    async fn find_access_token_checked(&self, key: &str) -> Result<CheckedAccessToken> {
        CheckedAccessToken::read(self, key).await
    }
    /// Deletes the access token under `key`; deleting an absent token is not an error.
    async fn delete_access_token(&self, key: &str) -> Result<()>;

    /// Records that every token of `grant_id` is revoked; the mark may be dropped after
    /// `keep_until` (Unix seconds), when every token of the grant has expired anyway. Revoking an
    /// already revoked grant keeps the later of the two `keep_until`s, so a second revocation
    /// never shortens the first.
    async fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<()>;
    /// Whether `grant_id` has been revoked.
    async fn is_grant_revoked(&self, grant_id: &str) -> Result<bool>;

    /// Stores a new provider session under `key` (the cookie's hash). `AlreadyExists` if taken.
    async fn create_session(&self, key: &str, session: &Session) -> Result<()>;
    /// Returns the session under `key`. `NotFound` if absent; expiry is the caller's check.
    async fn find_session(&self, key: &str) -> Result<Session>;
    /// Atomically sets `last_seen` to `now` and adds `client_id` to the session's clients (once),
    /// returning the updated session: two clients logging in through one session at the same
    /// time must both be remembered for logout. `NotFound` if absent.
    async fn touch_session(&self, key: &str, client_id: &str, now: i64) -> Result<Session>;
    /// Atomically removes and returns the session under `key`, so that of two racing logouts only
    /// one notifies the clients. `NotFound` if absent.
    async fn take_session(&self, key: &str) -> Result<Session>;
    /// A finished upstream login's writes: takes the previous session (if `login.previous` names
    /// one that exists), stores `login.session` with the previous session's clients carried over
    /// ([`Session::carry_over`]), and stores the code. Returns the previous session as taken.
    /// `AlreadyExists` if the session's or the code's key is taken.
    ///
    /// The default makes the three calls one after another; a networked backend does them in
    /// one transaction (all or nothing, one commit). Either way the caller's durability barrier
    /// comes after, before the code is handed out.
    async fn start_login(&self, login: &NewLogin<'_>) -> Result<Option<Session>> {
        let previous = match login.previous {
            Some(key) => match self.take_session(key).await {
                Ok(session) => Some(session),
                Err(StorageError::NotFound) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let mut session = login.session.clone();
        if let Some(previous) = &previous {
            session.carry_over(previous);
        }
        self.create_session(login.session_key, &session).await?;
        if let Some((key, code)) = login.code {
            self.create_auth_code(key, code).await?;
        }
        Ok(previous)
    }

    /// [`Store::start_login`], and `event`, the login event that records this login. The default
    /// makes the calls one after another (the event last); a networked backend writes the event
    /// in the login's transaction: one commit, and no login without its event.
    async fn start_login_recorded(
        &self,
        login: &NewLogin<'_>,
        event: &LoginEvent,
    ) -> Result<Option<Session>> {
        let previous = self.start_login(login).await?;
        self.create_login_event(event).await?;
        Ok(previous)
    }

    /// Stores a new refresh token under `key` (the token's hash). `AlreadyExists` if taken.
    async fn create_refresh_token(&self, key: &str, token: &RefreshToken) -> Result<()>;
    /// Returns the refresh token under `key` without changing it. `NotFound` if absent.
    async fn find_refresh_token(&self, key: &str) -> Result<RefreshToken>;
    /// Rotates the refresh token under `key` (RFC 9700 §4.14.2) in one transaction: marks it
    /// spent and stores `rotation`'s successor and access token, all or nothing. Returns the
    /// record as it was *before* this call: a returned `spent == true` means it had already been
    /// used, and then nothing was written; so of two racing rotations exactly one sees
    /// `spent == false` and stores its tokens. `NotFound` if absent; `AlreadyExists` if a new
    /// key is taken. On any error nothing was written: the old token is still unspent (a failure
    /// whose outcome the backend cannot know, such as a connection lost during the commit, is
    /// the one exception, and is reported `Unavailable`).
    async fn rotate_refresh_token(
        &self,
        key: &str,
        rotation: &Rotation<'_>,
    ) -> Result<RefreshToken>;

    /// Stores a new device authorization (RFC 8628 §3.2) under `device_key` (the device code's
    /// hash), to be found by `user_key` (the user code's hash). `AlreadyExists` if either key is
    /// taken: a user code collided, so the caller draws another.
    async fn create_device_authorization(
        &self,
        device_key: &str,
        user_key: &str,
        record: &DeviceAuthorization,
    ) -> Result<()>;
    /// The device key and record of the device authorization whose user code hashes to
    /// `user_key`. `NotFound` if absent; expiry is the caller's check.
    async fn find_device_authorization(
        &self,
        user_key: &str,
    ) -> Result<(String, DeviceAuthorization)>;
    /// Atomically applies `change` to the device authorization under `device_key` and returns
    /// the record as it was *before*: of two racing changes each sees the other's result, so an
    /// approval is answered once and its tokens issued once. `NotFound` if absent.
    async fn update_device_authorization(
        &self,
        device_key: &str,
        change: DeviceChange<'_>,
    ) -> Result<DeviceAuthorization>;

    /// Records a single-use identifier (a client assertion's `jti`, RFC 7523 §3) until
    /// `expires_at`. `AlreadyExists` if it was recorded before: of two racing calls with the same
    /// key exactly one succeeds.
    async fn create_used_jti(&self, key: &str, expires_at: i64) -> Result<()>;

    /// Returns the cached upstream token under `key`. `NotFound` if absent.
    async fn find_upstream_token(&self, key: &str) -> Result<UpstreamToken>;
    /// Saves (replaces) the cached upstream token under `key`.
    async fn save_upstream_token(&self, key: &str, token: &UpstreamToken) -> Result<()>;
    /// Deletes the cached upstream token under `key`; absent is not an error.
    async fn delete_upstream_token(&self, key: &str) -> Result<()>;

    /// Returns the value of the upstream user link under `key` (a connector's record that a
    /// renamed upstream user keeps their `sub`, e.g. WeCom's `NewUserID`). `NotFound` if absent.
    /// Links never expire: a `sub` must stay stable for as long as the account exists.
    async fn find_user_link(&self, key: &str) -> Result<String>;
    /// Saves (replaces) the upstream user link under `key`.
    async fn save_user_link(&self, key: &str, value: &str) -> Result<()>;

    /// Atomically removes and returns every session of `subject` (a sign-out everywhere): a
    /// session taken here is not also taken by a racing logout, so its clients are told once.
    async fn take_sessions_of(&self, subject: &Subject) -> Result<Vec<Session>>;
    /// The grants of `subject`'s codes, access tokens and refresh tokens that have not expired
    /// at `now`, and how many of those refresh tokens are live.
    async fn find_grants_of(&self, subject: &Subject, now: i64) -> Result<SubjectGrants>;
    /// Records that every credential of the subject under `key` from a login before
    /// `not_before` is void; the mark may be dropped after `keep_until`. A later `not_before`
    /// and a later `keep_until` win over earlier ones (a repeated sign-out never shortens one).
    async fn save_subject_mark(&self, key: &str, not_before: i64, keep_until: i64) -> Result<()>;
    /// The `not_before` of the subject mark under `key`. `NotFound` if there is none.
    async fn find_subject_mark(&self, key: &str) -> Result<i64>;

    /// Deletes every record (login events included) whose expiry (or `keep_until`) is strictly
    /// before `now`; returns how many. Redeemed codes and spent refresh tokens are kept until they
    /// expire, so a replay is still recognised.
    async fn delete_expired(&self, now: i64) -> Result<usize>;

    /// Appends a login event. Events never overwrite one another, even when two logins finish
    /// in the same second.
    async fn create_login_event(&self, event: &LoginEvent) -> Result<()>;
    /// The newest `limit` login events, newest first.
    async fn list_login_events(&self, limit: usize) -> Result<Vec<LoginEvent>>;

    /// Live sessions (`expires_at >= now`), the most recently used first, at most `limit`: the
    /// operator's "who is signed in now". A scan; not for the login path.
    async fn list_sessions(&self, now: i64, limit: usize) -> Result<Vec<Session>>;

    /// Appends an operator action to the audit log; like login events, two never overwrite one
    /// another. Swept by [`Store::delete_expired`].
    async fn create_audit_event(&self, event: &AuditEvent) -> Result<()>;
    /// The newest `limit` audit events, newest first.
    async fn list_audit_events(&self, limit: usize) -> Result<Vec<AuditEvent>>;

    /// The signing key set shared by every instance over this store ([`SigningKeySet`]).
    /// `NotFound` if none was saved yet.
    async fn find_signing_keys(&self) -> Result<SigningKeySet>;
    /// Saves the signing key set atomically, by compare-and-swap on its version: with
    /// `expected_version == None` only if no set exists yet (of several instances starting at
    /// once, exactly one insert succeeds); with `Some(v)` only if the stored set still has version
    /// `v`. `AlreadyExists` when the condition fails (someone else changed the set first: re-read
    /// and retry); `NotFound` when `Some(v)` is expected but there is no set. Never swept.
    async fn save_signing_keys(
        &self,
        expected_version: Option<i64>,
        set: &SigningKeySet,
    ) -> Result<()>;

    /// Takes the lease `name` for `owner` until `until` (Unix seconds) if it is free at `now`:
    /// never taken, released, lapsed (`until <= now`), or already `owner`'s (which extends it).
    /// Returns whether `owner` holds it now. Atomic: of racing owners exactly one gets a free
    /// lease. What it guards is the caller's business (e.g. one upstream token fetch for a whole
    /// cluster); lapsed leases may be swept by [`Store::delete_expired`].
    async fn acquire_lease(&self, name: &str, owner: &str, now: i64, until: i64) -> Result<bool>;
    /// Releases the lease `name` if `owner` holds it; otherwise (absent, lapsed and taken by
    /// another) changes nothing. Not an error either way.
    async fn release_lease(&self, name: &str, owner: &str) -> Result<()>;

    /// Makes every write so far durable (called on shutdown and by the group-commit
    /// [`Durability`] barrier before a response hands out a credential).
    async fn flush(&self) -> Result<()>;

    /// Whether records survive a restart once [`Store::flush`] returns (a disk backend); `false`
    /// for a store that keeps nothing across restarts, whose durability barrier is then free.
    fn is_persistent(&self) -> bool;

    /// Writes a copy of the store into the new directory `dir` while the server keeps serving
    /// (`storage::sled_copy` says what the copy holds). A store with backup tools of its own
    /// (PostgreSQL: `pg_dump`) or nothing to back up answers `Backend` with what to use instead.
    async fn backup_to(&self, dir: &std::path::Path) -> Result<sled_copy::CopySummary> {
        let _ = dir;
        Err(StorageError::Backend(
            "this store is not backed up through wecom-oidc: back up its database with the \
             database's own tools (PostgreSQL: pg_dump)"
                .into(),
        ))
    }

    /// Whether several server processes use this store at once (PostgreSQL): the signing keys
    /// then live in the store ([`Store::find_signing_keys`]) instead of `keys_dir`, so every
    /// instance signs with the same keys. `false` for a store one process owns (sled, memory).
    fn is_shared(&self) -> bool {
        false
    }
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
