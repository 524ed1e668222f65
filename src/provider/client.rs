//! Registered relying parties (clients) and how they authenticate at the token endpoint.

use std::collections::HashMap;

use crate::secret::Secret;

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
    /// The connector (upstream app) this client's logins go through; `None` is the provider's
    /// default connector. Config key `wecom_app`.
    pub connector: Option<String>,
}

impl Client {
    /// Public clients (no secret) must use PKCE (RFC 9700 §2.1.1).
    pub fn is_public(&self) -> bool {
        self.secret.is_none()
    }

    /// The sector identifier for pairwise subjects (OIDC Core §8.1): the host of the
    /// registered redirect URIs when they share one; otherwise (we support no
    /// `sector_identifier_uri`) the client id, so the client still gets a stable `sub` of its own.
    pub fn sector_identifier(&self) -> String {
        let mut hosts = self.redirect_uris.iter().map(|u| {
            url::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        });
        match hosts.next() {
            Some(Some(first)) if hosts.all(|h| h.as_deref() == Some(first.as_str())) => first,
            _ => self.id.clone(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> Client {
        Client {
            id: "c1".into(),
            name: "c1".into(),
            secret: None,
            redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
            settings: ClientSettings::default(),
        }
    }

    #[test]
    fn sector_is_the_shared_redirect_host_else_the_client_id_oidc_core_8_1() {
        assert_eq!(
            client(&["https://RP.example/cb", "https://rp.example/other"]).sector_identifier(),
            "rp.example"
        );
        assert_eq!(
            client(&["https://a.example/cb", "https://b.example/cb"]).sector_identifier(),
            "c1"
        );
    }
}
