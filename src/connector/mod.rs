//! The upstream connector trait and the identity it produces.
//!
//! The OIDC core knows nothing about WeCom: it asks a [`Connector`] for the URL to send the
//! browser to and, when the browser comes back, for the [`Identity`] of the person who logged in.

pub mod wecom;

use std::collections::HashMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Who logged in, as told by the upstream. Connector-specific data never leaves the connector
/// except through these fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Identity {
    /// The upstream's stable user id (for WeCom: the UserId). Becomes `sub`.
    pub user_id: String,
    /// A short login name (`preferred_username`).
    pub username: String,
    /// Display name (`name`), if the upstream knows one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail address, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the upstream vouches for `email`.
    #[serde(default)]
    pub email_verified: bool,
    /// Group names (departments, tags …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

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

/// An upstream identity provider.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Short id used in URLs (`/callback/{id}`), e.g. `wecom`.
    fn id(&self) -> &str;

    /// The URL to send the browser to so the person logs in upstream.
    fn login_url(&self, req: &LoginRequest<'_>) -> Result<String, ConnectorError>;

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

    /// Re-checks a person at refresh time (still a member? still active?) and returns their
    /// current identity; `AccessDenied` ends the grant. Connectors that cannot tell return the
    /// identity unchanged.
    async fn refresh(&self, identity: &Identity) -> Result<Identity, ConnectorError> {
        Ok(identity.clone())
    }

    /// Whether the upstream can serve logins now (credentials accepted, reachable), for
    /// `/readyz`. Connectors that cannot tell without a login say yes.
    async fn check_ready(&self) -> Result<(), ConnectorError> {
        Ok(())
    }
}
