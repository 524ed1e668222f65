//! Who logged in: the one type both the upstream connectors (which produce it) and the store
//! (which keeps it inside sessions, codes and grants) use, so neither imports the other.

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
    /// URL of the person's picture (`picture`, OIDC Core §5.1), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// `gender` (OIDC Core §5.1: `female`, `male` or another value), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// Phone number (`phone_number`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Postal address as one formatted string (the `address` claim's `formatted` member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The id the upstream knows the person by *now*, when it differs from `user_id` (a WeCom
    /// UserId renamed after the first login keeps its first id as `user_id`, and so as `sub`).
    /// Connectors use it to re-check the person at refresh; it is never released as a claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_id: Option<String>,
    /// The connector (upstream app) that vouched for this person: every later question about
    /// them (a refresh, a session reused by another client) goes to this one and no other, since
    /// an upstream id names a person only within its upstream. Empty in records written before
    /// it was kept: those came from their client's own connector. Never released as a claim.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub connector_id: String,
    /// Further claims the connector vouches for (name → string value, e.g. the person's
    /// organisation within a multi-tenant upstream), released with the `profile` scope. A name
    /// the core releases itself is never taken from here.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub extra_claims: std::collections::BTreeMap<String, String>,
}
