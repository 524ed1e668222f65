//! The OpenID Connect core: validates authorization requests, turns an upstream identity into an
//! authorization code, exchanges codes for tokens and answers userinfo. It returns values and
//! OAuth errors, never HTTP: the web layer decides how errors are shown.

pub mod authorize;
pub mod claims;
pub mod client;
pub mod client_assertion;
pub mod client_credentials;
pub mod device;
pub mod discovery;
pub mod error;
pub mod handoff;
pub mod introspect;
pub mod logout;
pub mod offboarding;
pub mod params;
pub mod pkce;
pub mod refresh;
pub mod request;
pub mod response;
pub mod revoke;
pub mod scopes;
pub mod session;
#[cfg(test)]
pub(crate) mod testing;
pub mod token;
pub mod userinfo;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::clock::SharedClock;
use crate::connector::Connector;
use crate::storage::Store;
use crate::tokens::{KeyRing, KeyStore};

pub use client::{
    AccessTokenFormat, AuthMethod, Client, ClientCredentials, ClientRegistry, GrantType,
};
pub use error::{ErrorCode, OAuthError};
pub use session::SessionSettings;

/// How long each kind of credential lives, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// A pending authorization request (the person is at the upstream login page).
    pub auth_request: i64,
    /// An authorization code; short, since it only bridges a redirect (RFC 6749 §4.1.2).
    pub code: i64,
    /// An access token.
    pub access_token: i64,
    /// An id_token.
    pub id_token: i64,
    /// A refresh token (each rotation starts a new one, RFC 9700 §4.14.2).
    pub refresh_token: i64,
    /// The longest a grant may be kept alive by refreshing, from the original login; `None`
    /// means no limit beyond `refresh_token` inactivity.
    pub grant: Option<i64>,
    /// A device authorization's codes (RFC 8628 §3.2 `expires_in`).
    pub device_code: i64,
    /// The least seconds between two polls of a device (RFC 8628 §3.2 `interval`; 5 is the
    /// RFC's default).
    pub device_poll_interval: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            auth_request: 600,
            code: 60,
            access_token: 3600,
            id_token: 3600,
            refresh_token: 30 * 24 * 3600,
            grant: None,
            device_code: 600,
            device_poll_interval: 5,
        }
    }
}

/// Everything the OIDC core needs, shared behind an `Arc`.
pub struct Provider {
    issuer: String,
    clients: ClientRegistry,
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
    clock: SharedClock,
    // The settings below are swapped whole by a configuration reload (`Provider::reconfigure`);
    // an operation reads each once, so it never mixes an old and a new value.
    lifetimes: ArcSwap<Lifetimes>,
    connectors: HashMap<String, Arc<dyn Connector>>,
    default_connector: String,
    session: ArcSwap<SessionSettings>,
    /// Group-commit barrier awaited before a credential leaves the server.
    durability: crate::storage::Durability,
    /// The most authorization requests that may wait for an upstream login at once.
    max_pending_authorizations: AtomicUsize,
    /// Sends the logout tokens of a sign-out everywhere (the web layer's HTTP client).
    notifier: Option<std::sync::Arc<dyn offboarding::LogoutNotifier>>,
    /// How long login events (a sign-out is one) are kept, seconds.
    event_retention: i64,
}

/// Default cap on pending authorization requests: at about 1 KiB each, 100 MiB of store at most,
/// and far above what a company logs in within [`Lifetimes::auth_request`].
pub const DEFAULT_MAX_PENDING_AUTHORIZATIONS: usize = 100_000;

crate::secret::debug_showing!(Provider: issuer, clients, lifetimes);

/// Builds a [`Provider`].
pub struct ProviderParts {
    /// The issuer identifier, without a trailing slash.
    pub issuer: String,
    /// Registered clients.
    pub clients: ClientRegistry,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Signing keys (replaced while serving when they live in a shared store).
    pub keys: Arc<KeyRing>,
    /// The clock.
    pub clock: SharedClock,
    /// Credential lifetimes.
    pub lifetimes: Lifetimes,
    /// The upstream connector every login goes through.
    pub connector: Arc<dyn Connector>,
    /// Provider session lifetimes.
    pub session: SessionSettings,
}

impl Provider {
    /// Assembles the provider.
    pub fn new(parts: ProviderParts) -> Self {
        let id = parts.connector.id().to_string();
        let mut connectors = HashMap::new();
        connectors.insert(id.clone(), parts.connector);
        Self {
            issuer: parts.issuer,
            clients: parts.clients,
            keys: parts.keys,
            clock: parts.clock,
            lifetimes: ArcSwap::from_pointee(parts.lifetimes),
            connectors,
            default_connector: id,
            session: ArcSwap::from_pointee(parts.session),
            durability: crate::storage::Durability::new(parts.store.clone()),
            store: parts.store,
            max_pending_authorizations: AtomicUsize::new(DEFAULT_MAX_PENDING_AUTHORIZATIONS),
            notifier: None,
            event_retention: 30 * 86_400,
        }
    }

    /// Sends the logout tokens of sign-outs everywhere through `notifier` (without one they
    /// are logged as unsent).
    pub fn with_logout_notifier(
        mut self,
        notifier: std::sync::Arc<dyn offboarding::LogoutNotifier>,
    ) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Keeps the login events the provider writes (sign-outs) for `seconds`.
    pub fn with_event_retention(mut self, seconds: i64) -> Self {
        self.event_retention = seconds;
        self
    }

    /// Caps the pending authorization requests (`[limits] max_pending_authorizations`): past
    /// the cap `/authorize` answers `temporarily_unavailable` instead of storing more, so a
    /// flood cannot fill the disk. Expired requests leave the count when they are swept.
    pub fn with_max_pending_authorizations(self, max: usize) -> Self {
        self.max_pending_authorizations
            .store(max, Ordering::Relaxed);
        self
    }

    /// Applies a reloaded configuration's live settings: the registered clients, credential
    /// and session lifetimes, and the pending-authorization cap. Requests already running keep
    /// what they read; the next ones see the new values. Records already written (codes,
    /// tokens, sessions) keep the expiry they were given.
    pub fn reconfigure(
        &self,
        clients: Vec<Client>,
        lifetimes: Lifetimes,
        session: SessionSettings,
        max_pending_authorizations: usize,
    ) {
        self.clients.replace(clients);
        self.lifetimes.store(Arc::new(lifetimes));
        self.session.store(Arc::new(session));
        self.max_pending_authorizations
            .store(max_pending_authorizations, Ordering::Relaxed);
    }

    /// Adds another connector (e.g. a second WeCom app), reachable by its id from clients
    /// whose `ClientSettings::connector` names it. A connector with an id already present
    /// replaces it.
    pub fn with_connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connectors
            .insert(connector.id().to_string(), connector);
        self
    }

    /// Hands an event the upstream pushed (e.g. a WeCom contact-change callback) to the
    /// connector `connector_id`, signs out everyone it says may no longer log in, and returns
    /// the body to answer with; `NotSupported` for an unknown connector. A sign-out that fails
    /// fails the event, so the upstream sends it again.
    pub async fn upstream_event(
        &self,
        connector_id: &str,
        event: &crate::connector::UpstreamEvent<'_>,
    ) -> Result<String, crate::connector::EventError> {
        let Some(c) = self.connectors.get(connector_id) else {
            return Err(crate::connector::EventError::NotSupported);
        };
        let reply = c.handle_event(event).await?;
        for d in &reply.departures {
            self.sign_out(&offboarding::SignOut {
                connector_id,
                user_id: &d.user_id,
                reach: if d.whole_realm {
                    offboarding::Reach::Realm
                } else {
                    offboarding::Reach::Connector
                },
                reason: &d.reason,
                actor: "upstream event",
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "could not sign out a person the upstream removed");
                crate::connector::EventError::Rejected(e.to_string())
            })?;
        }
        Ok(reply.body)
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Registered clients.
    pub fn clients(&self) -> &ClientRegistry {
        &self.clients
    }

    /// The signing keys in use now. Take this snapshot once per operation, so that one token is
    /// signed, and its `kid` named, by the same key set even if a reload swaps it meanwhile.
    pub fn keys(&self) -> Arc<KeyStore> {
        self.keys.current()
    }

    /// The replaceable key set itself (to reload it).
    pub fn key_ring(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Waits until every store write made so far by the caller is durable, sharing one flush
    /// with every concurrent caller (group commit, see [`crate::storage::durability`]). Awaited
    /// once per response that hands out a credential (token response, code redirect, session
    /// cookie) or confirms its end (revocation, logout), so a crash right after the response
    /// never loses it.
    pub async fn durable(&self) -> Result<(), crate::storage::StorageError> {
        self.durability.barrier().await
    }

    /// Credential lifetimes.
    pub fn lifetimes(&self) -> Lifetimes {
        **self.lifetimes.load()
    }

    /// The id of the default connector (the first configured).
    pub fn default_connector_id(&self) -> &str {
        &self.default_connector
    }

    /// The connector with `id`.
    pub fn connector(&self, id: &str) -> Option<&Arc<dyn Connector>> {
        self.connectors.get(id)
    }

    /// Current time from the injected clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// `issuer` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// The callback URL the upstream sends the browser back to.
    pub fn callback_url(&self, connector_id: &str) -> String {
        self.url(&format!("/callback/{connector_id}"))
    }
}
