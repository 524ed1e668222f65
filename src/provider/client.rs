//! Registered relying parties (clients) and how they authenticate at the token endpoint.

use std::collections::HashMap;

use crate::secret::Secret;
use crate::tokens::SigningAlg;

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    /// `client_id`.
    pub id: String,
    /// Human-readable name for our pages.
    pub name: String,
    /// The client secret; `None` for public clients.
    pub secret: Option<Secret>,
    /// Registered redirect URIs, compared by exact string match (RFC 9700 §4.1.1).
    pub redirect_uris: Vec<String>,
    /// Per-client options beyond the basics; `Default` is what a plain `[[clients]]` entry gets.
    pub settings: ClientSettings,
}

/// Per-client options (token formats, algorithms, logout URIs …). Every field has a default so
/// that a minimal client entry stays minimal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientSettings {
    /// The JWS algorithm of this client's id_tokens (OIDC Dynamic Client Registration §2
    /// `id_token_signed_response_alg`); `None`: the provider's default (RS256). Must have an
    /// active key at startup.
    pub id_token_signed_response_alg: Option<SigningAlg>,
    /// Where RP-Initiated Logout 1.0 §3 may send the browser after logout, by exact match.
    pub post_logout_redirect_uris: Vec<String>,
    /// Back-Channel Logout 1.0 §2.2: where logout tokens are POSTed.
    pub backchannel_logout_uri: Option<String>,
    /// Back-Channel Logout 1.0 §2.2: the client needs `sid` in id_tokens and logout tokens. We
    /// always send it, so this only documents the client's expectation.
    pub backchannel_logout_session_required: bool,
}

impl Client {
    /// Public clients (no secret) must use PKCE (RFC 9700 §2.1.1).
    pub fn is_public(&self) -> bool {
        self.secret.is_none()
    }

    /// Whether `uri` is a registered post-logout redirect URI, by exact string comparison
    /// (RP-Initiated Logout 1.0 §3).
    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.settings
            .post_logout_redirect_uris
            .iter()
            .any(|u| u == uri)
    }

    /// Whether `uri` is one of the registered redirect URIs, by exact string comparison.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|u| u == uri)
    }
}

/// All registered clients, by id.
#[derive(Debug, Clone, Default)]
pub struct ClientRegistry {
    clients: HashMap<String, Client>,
}

impl ClientRegistry {
    /// Builds the registry; later entries with a duplicate id replace earlier ones (config
    /// validation rejects duplicates before this point).
    pub fn new(clients: impl IntoIterator<Item = Client>) -> Self {
        Self {
            clients: clients.into_iter().map(|c| (c.id.clone(), c)).collect(),
        }
    }

    /// The client with `id`.
    pub fn get(&self, id: &str) -> Option<&Client> {
        self.clients.get(id)
    }

    /// Every client, sorted by id.
    pub fn all(&self) -> Vec<&Client> {
        let mut v: Vec<&Client> = self.clients.values().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}

/// The credentials a token-endpoint request presented (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    /// From `Authorization: Basic` (already form-urldecoded), if that header was used.
    pub basic: Option<(String, Secret)>,
    /// `client_id` from the request body.
    pub body_client_id: Option<String>,
    /// `client_secret` from the request body.
    pub body_client_secret: Option<Secret>,
}

impl ClientCredentials {
    /// Whether the client tried HTTP Basic authentication (decides the 401 challenge).
    pub fn used_basic(&self) -> bool {
        self.basic.is_some()
    }
}
