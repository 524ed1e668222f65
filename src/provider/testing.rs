//! Test support for the core's unit tests: a provider on a memory store, fast ES256 keys, a
//! manual clock and a connector whose refresh answer the test decides.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::client::ClientSettings;
use super::{Client, ClientRegistry, Lifetimes, Provider, ProviderParts};
use crate::clock::{Clock, ManualClock};
use crate::connector::{Connector, ConnectorError, Identity, LoginRequest};
use crate::secret::Secret;
use crate::storage::{MemoryStore, RefreshToken, Store};
use crate::tokens::{KeyRing, KeyStore, SigningAlg};

/// The start of every test clock.
pub const T0: i64 = 1_800_000_000;

/// What [`StubConnector::refresh`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshAnswer {
    /// The identity, unchanged.
    Same,
    /// `AccessDenied`.
    Denied,
    /// `Unavailable`.
    Down,
}

/// A connector that never logs anyone in and refreshes as told.
#[derive(Debug)]
pub struct StubConnector {
    /// The next refresh answer.
    pub answer: Mutex<RefreshAnswer>,
    /// Its id.
    pub id: &'static str,
    /// Its realm.
    pub realm: &'static str,
}

impl StubConnector {
    /// A stub with id `id` in realm `realm` that refreshes people unchanged.
    pub fn named(id: &'static str, realm: &'static str) -> Self {
        Self {
            answer: Mutex::new(RefreshAnswer::Same),
            id,
            realm,
        }
    }
}

#[async_trait]
impl Connector for StubConnector {
    fn id(&self) -> &str {
        self.id
    }
    fn realm(&self) -> &str {
        self.realm
    }
    fn login_url(&self, _: &LoginRequest<'_>) -> Result<String, ConnectorError> {
        Ok("https://upstream.example/login".into())
    }
    async fn handle_callback(
        &self,
        _: &HashMap<String, String>,
        _: &[String],
    ) -> Result<Identity, ConnectorError> {
        Err(ConnectorError::Cancelled)
    }
    async fn refresh(&self, identity: &Identity) -> Result<Identity, ConnectorError> {
        let answer = *self
            .answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match answer {
            RefreshAnswer::Same => Ok(identity.clone()),
            RefreshAnswer::Denied => Err(ConnectorError::AccessDenied("disabled".into())),
            RefreshAnswer::Down => Err(ConnectorError::Unavailable("timeout".into())),
        }
    }
}

/// A provider for unit tests and its moving parts.
pub struct Harness {
    /// The provider.
    pub provider: Provider,
    /// Its clock.
    pub clock: ManualClock,
    /// Its connector.
    pub connector: Arc<StubConnector>,
    /// Keeps the key directory alive.
    _keys: tempfile::TempDir,
}

/// The confidential test client `app` with secret `app-secret`.
pub fn app_client(settings: ClientSettings) -> Client {
    Client {
        id: "app".into(),
        name: "app".into(),
        secret: Some(Secret::new("app-secret")),
        redirect_uris: vec!["https://app.example/cb".into()],
        settings,
    }
}

/// `app`'s credentials by HTTP Basic.
pub fn app_basic() -> super::ClientCredentials {
    super::ClientCredentials {
        basic: Some(("app".into(), Secret::new("app-secret"))),
        ..super::ClientCredentials::default()
    }
}

/// Request parameters from pairs.
pub fn params(pairs: &[(&str, &str)]) -> super::params::Params {
    super::params::Params::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

/// A provider with `clients` and `lifetimes`.
pub fn harness(clients: Vec<Client>, lifetimes: Lifetimes) -> Harness {
    harness_with_sessions(clients, lifetimes, Default::default())
}

/// A provider with `clients`, `lifetimes` and provider sessions as `session` says.
pub fn harness_with_sessions(
    clients: Vec<Client>,
    lifetimes: Lifetimes,
    session: super::SessionSettings,
) -> Harness {
    harness_on(clients, lifetimes, session, Arc::new(MemoryStore::new()))
}

/// [`harness_with_sessions`] on `store`.
pub fn harness_on(
    clients: Vec<Client>,
    lifetimes: Lifetimes,
    session: super::SessionSettings,
    store: Arc<dyn Store>,
) -> Harness {
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().expect("tempdir");
    let keys =
        KeyStore::load_or_generate_with(dir.path(), SigningAlg::Es256, &clock).expect("keys");
    let connector = Arc::new(StubConnector::named("stub", "stub"));
    let provider = Provider::new(ProviderParts {
        issuer: "https://sso.example.com".into(),
        clients: ClientRegistry::new(clients),
        store,
        keys: Arc::new(KeyRing::fixed(keys)),
        clock: Arc::new(clock.clone()),
        lifetimes,
        connector: connector.clone(),
        session,
    });
    Harness {
        provider,
        clock,
        connector,
        _keys: dir,
    }
}

impl Harness {
    /// The provider to share (an admin route's context) and what keeps its keys alive.
    pub fn into_shared(self) -> (Arc<Provider>, tempfile::TempDir) {
        (Arc::new(self.provider), self._keys)
    }

    /// Stores a fresh refresh token of `client_id` for grant `grant_id`; returns the token.
    pub async fn seed_refresh_token(&self, client_id: &str, grant_id: &str) -> String {
        let token = crate::random::token(32);
        let now = self.clock.now();
        self.provider
            .store()
            .create_refresh_token(
                &crate::random::hash_secret(&token),
                &RefreshToken {
                    client_id: client_id.into(),
                    grant_id: grant_id.into(),
                    scopes: vec!["openid".into(), "offline_access".into()],
                    identity: Identity {
                        user_id: "zhangsan".into(),
                        username: "zhangsan".into(),
                        ..Identity::default()
                    },
                    auth_time: now,
                    issued_at: now,
                    expires_at: now + self.provider.lifetimes().refresh_token,
                    spent: false,
                },
            )
            .await
            .expect("seed");
        token
    }

    /// Sets what the connector answers at refresh.
    pub fn upstream(&self, answer: RefreshAnswer) {
        *self
            .connector
            .answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = answer;
    }
}
