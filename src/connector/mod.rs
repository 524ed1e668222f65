//! The upstream connector trait and the identity it produces.
//!
//! The OIDC core knows nothing about WeCom: it asks a [`Connector`] for the URL to send the
//! browser to and, when the browser comes back, for the [`Identity`] of the person who logged in.

mod handoff;
pub use crate::identity::Identity;

pub mod catalog;
pub mod registry;
pub mod token_cache;
pub mod wecom;
pub mod wecom_suite;

use std::collections::HashMap;

use async_trait::async_trait;

pub use self::handoff::{Bilingual, Handoff};

/// What the core tells a connector when it starts a login.
#[derive(Debug, Clone)]
pub struct LoginRequest<'a> {
    /// Opaque state the upstream must hand back unchanged; `[A-Za-z0-9]`, at most 64 chars.
    pub state: &'a str,
    /// Absolute URL of our callback for this connector.
    pub callback_url: &'a str,
    /// Scopes the client asked for (the connector may ask the upstream for more data).
    pub scopes: &'a [String],
    /// The browser's `User-Agent`, to pick the in-app or the PC login.
    pub user_agent: Option<&'a str>,
    /// OIDC `login_hint`, passed on where the upstream can use it.
    pub login_hint: Option<&'a str>,
    /// OIDC `ui_locales` (space-separated BCP 47 tags), for the upstream's page language.
    pub ui_locales: Option<&'a str>,
}

/// Why a connector could not produce an identity.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The person cancelled or refused the upstream login.
    #[error("the login was cancelled at the upstream")]
    Cancelled,
    /// The upstream authenticated someone who may not log in here (e.g. not a corp member).
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The upstream knows the person, but the upstream app's own access rules leave them out
    /// (for WeCom: outside the app's visible range). Ends a login with `access_denied` and a
    /// grant at refresh, like [`Self::AccessDenied`], and the person is told who can change it.
    #[error("not permitted to use this app: {0}")]
    NotPermitted(String),
    /// The upstream rejected the authorization code (invalid, reused or expired).
    #[error("the upstream rejected the login code: {0}")]
    InvalidCode(String),
    /// The upstream answered with an error that is a configuration or server fault.
    #[error("upstream error {code}: {message}")]
    Upstream {
        /// The upstream's own error code.
        code: i64,
        /// The upstream's message (never contains secrets).
        message: String,
    },
    /// The upstream could not be reached or timed out.
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
}

/// What to tell the person, and the operator, about a login failure that is not theirs to fix
/// and that the client application could not explain (a configuration fault or rate limiting
/// at the upstream). The web layer shows it as an error page instead of redirecting an opaque
/// `server_error` to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureNotice {
    /// For the person, in Chinese.
    pub zh: String,
    /// For the person, in English.
    pub en: String,
    /// For the operator's log: what exactly to fix, and where.
    pub operator: String,
    /// Whether waiting helps (rate limiting) rather than a configuration change.
    pub temporary: bool,
}

/// A request the upstream pushes to us on its own (WeCom's server callbacks, wecom-api.md §11).
#[derive(Debug, Clone, Copy)]
pub struct UpstreamEvent<'a> {
    /// `POST` (a message) rather than `GET` (URL verification).
    pub is_post: bool,
    /// Query parameters, percent-decoded only (a `+` stays a `+`: WeCom's base64 needs it).
    pub query: &'a HashMap<String, String>,
    /// The request body.
    pub body: &'a [u8],
}

/// What a connector made of an upstream event: the body to answer with, and the people it says
/// may no longer log in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventReply {
    /// The body of the HTTP 200 answer.
    pub body: String,
    /// People the event removed (the core signs each out everywhere it reaches).
    pub departures: Vec<Departure>,
}

impl EventReply {
    /// An answer with `body` and nobody removed.
    pub fn body(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            departures: Vec::new(),
        }
    }
}

/// A person the upstream says may no longer log in through this connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    /// Their `Identity::user_id` as this connector gives it (following renames).
    pub user_id: String,
    /// `true` when they are gone from the whole realm (left, deleted, disabled); `false` when
    /// only this connector's own access rules leave them out (e.g. a WeCom app's visible range).
    pub whole_realm: bool,
    /// Why, in words (no codes, tokens or secrets), for the login event log.
    pub reason: String,
}

/// Why an upstream event was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// This connector (or its configuration) takes no events.
    #[error("this connector receives no upstream events")]
    NotSupported,
    /// The event failed a check (signature, decryption …) or could not be recorded.
    #[error("upstream event rejected: {0}")]
    Rejected(String),
}

/// One line of what a connector tells an operator about its state (the console's health view):
/// never a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// What it is about.
    pub label: Bilingual,
    /// Its value now.
    pub value: Bilingual,
    /// Whether it is as it should be (the console marks the others).
    pub ok: bool,
}

/// Where a claim's value comes from upstream, for the demo's claims page (e.g. `email` ← WeCom
/// `user/get` `email`, else `biz_mail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOrigin {
    /// The claim name.
    pub claim: String,
    /// The upstream call and field(s) it is read from.
    pub from: Bilingual,
}

/// An upstream identity provider.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Short id used in URLs (`/callback/{id}`), e.g. `wecom`.
    fn id(&self) -> &str;

    /// The URL to send the browser to so the person logs in upstream.
    fn login_url(&self, req: &LoginRequest<'_>) -> Result<String, ConnectorError>;

    /// A hand-off page instead of [`Self::login_url`], when this browser cannot complete the
    /// upstream login by itself (e.g. a phone outside the upstream's app). `None` (the default):
    /// redirect to [`Self::login_url`].
    fn handoff(&self, _req: &LoginRequest<'_>) -> Result<Option<Handoff>, ConnectorError> {
        Ok(None)
    }

    /// The state the upstream handed back on the callback, if any.
    fn callback_state<'a>(&self, params: &'a HashMap<String, String>) -> Option<&'a str> {
        params.get("state").map(String::as_str)
    }

    /// Turns the callback's query parameters into an identity.
    async fn handle_callback(
        &self,
        params: &HashMap<String, String>,
        scopes: &[String],
    ) -> Result<Identity, ConnectorError>;

    /// A clear notice for `error` when it is a fault of the deployment the person should see
    /// explained (and the operator told how to fix), `None` for ordinary login failures, which
    /// go back to the client as OAuth errors.
    fn failure_notice(&self, _error: &ConnectorError) -> Option<FailureNotice> {
        None
    }

    /// The namespace in which this connector's upstream ids name people (for WeCom: the
    /// CorpID). Connectors of one realm know the same person by the same id and `sub`, so a
    /// provider session made through one may serve clients of another after that one has
    /// re-checked the person ([`Self::refresh`]); across realms it never does.
    fn realm(&self) -> &str {
        self.id()
    }

    /// Whether this connector gives each client its own `sub` (OIDC Core §8.1 pairwise).
    fn is_pairwise(&self) -> bool {
        false
    }

    /// Whether this browser signs the person in upstream without a page of the upstream's own
    /// (an upstream app's in-app browser). A page that would otherwise offer a "sign in" button
    /// (the device verification page) then starts the login at once. `false` by default.
    fn signs_in_silently(&self, _user_agent: Option<&str>) -> bool {
        false
    }

    /// The pairwise `sub` of `identity` for the client whose sector identifier is `sector`;
    /// `None` when subjects are public (the default).
    fn pairwise_subject(&self, _identity: &Identity, _sector: &str) -> Option<String> {
        None
    }

    /// Handles an event the upstream pushed to `/callback/{id}/events` and returns the body to
    /// answer with (HTTP 200) and the people it removed. Connectors without events keep the
    /// default.
    async fn handle_event(&self, _event: &UpstreamEvent<'_>) -> Result<EventReply, EventError> {
        Err(EventError::NotSupported)
    }

    /// The `Identity::user_id` this connector gives the person the upstream knows by
    /// `upstream_id` now (an operator names people by their upstream id). The default: the
    /// same id.
    async fn local_user_id(&self, upstream_id: &str) -> Result<String, ConnectorError> {
        Ok(upstream_id.to_owned())
    }

    /// Re-checks a person at refresh time (still a member? still active?) and returns their
    /// current identity; `AccessDenied` ends the grant. Connectors that cannot tell return the
    /// identity unchanged.
    async fn refresh(&self, identity: &Identity) -> Result<Identity, ConnectorError> {
        Ok(identity.clone())
    }

    /// What an operator should see of this connector's state (for WeCom: the app token's
    /// remaining life, the directory read, the last callback received). Connectors with
    /// nothing to tell keep the default.
    async fn status(&self) -> Vec<StatusLine> {
        Vec::new()
    }

    /// Whether the upstream can serve logins now (credentials accepted, reachable), for
    /// `/readyz`. Connectors that cannot tell without a login say yes.
    async fn check_ready(&self) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// What `/readyz` should say of a connector that is ready but cannot serve logins yet for
    /// a reason the operator must see (e.g. it waits for the upstream to push a credential,
    /// which it could not receive if it were taken out of the load balancer). `None` (the
    /// default): nothing to add.
    async fn readiness_note(&self) -> Option<String> {
        None
    }
}
