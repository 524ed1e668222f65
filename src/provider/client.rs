//! Registered relying parties (clients) and how they authenticate at the token endpoint.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

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
    /// Whether `offline_access` (refresh tokens) may be granted; `None` means the default:
    /// allowed for confidential clients, not for public ones.
    pub allow_offline_access: Option<bool>,
    /// The one token-endpoint authentication method the client must use; `None` means the
    /// default: `client_secret_basic` or `client_secret_post` for a client with a secret,
    /// `private_key_jwt` for one with only a JWKS, `none` for a public client.
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// SHA-256 of the client secret, when the configuration holds the hash instead of the
    /// secret itself (32 bytes).
    pub secret_sha256: Option<Vec<u8>>,
    /// The client's public keys for `private_key_jwt` (RFC 7523), a JWK Set.
    pub jwks: Option<serde_json::Value>,
    /// Opaque (default) or JWT (RFC 9068) access tokens.
    pub access_token_format: AccessTokenFormat,
    /// The `aud` of the client's JWT access tokens (a resource server's identifier); `None`
    /// uses the client id.
    pub access_token_audience: Option<String>,
    /// The connector (upstream app) this client's logins go through; `None` is the provider's
    /// default connector. Config key `wecom_app`.
    pub connector: Option<String>,
    /// Which relying-party software the client is (config keys `app`, `app_config`); read only
    /// by `wecom-oidc check`, never by the protocol.
    pub app: Option<ClientApp>,
    /// The grant types the client may use (config key `grant_types`); `None` means the default:
    /// `authorization_code` and `refresh_token`.
    pub grant_types: Option<Vec<GrantType>>,
    /// The scopes a `client_credentials` grant may carry (RFC 6749 §4.4.2); none by default.
    pub client_credentials_scopes: Vec<String>,
}

/// A grant type a client may use at the token endpoint (RFC 7591 §2 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// RFC 6749 §4.1.
    AuthorizationCode,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 8628 §3.4.
    DeviceCode,
    /// RFC 6749 §4.4.
    ClientCredentials,
}

impl GrantType {
    /// Every grant type, in the order discovery lists them.
    pub const ALL: [GrantType; 4] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::DeviceCode,
        GrantType::ClientCredentials,
    ];

    /// What a client gets without `grant_types`.
    pub const DEFAULT: [GrantType; 2] = [GrantType::AuthorizationCode, GrantType::RefreshToken];

    /// The `grant_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::ClientCredentials => "client_credentials",
        }
    }

    /// The grant type called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }
}

/// The relying-party software behind a client, as the operator declared it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientApp {
    /// A `wecom-oidc snippet` application name (`grafana`, `kubernetes` …).
    pub name: Option<String>,
    /// That application's own configuration file (e.g. `/etc/grafana/grafana.ini`).
    pub config: Option<std::path::PathBuf>,
}

/// A client authentication method at the token, revocation and introspection endpoints
/// (OIDC Core §9, RFC 7591 §2 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the client secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523 §2.2, OIDC Core §9).
    PrivateKeyJwt,
    /// No authentication: a public client that only names itself.
    None,
}

impl AuthMethod {
    /// Every method, in the order discovery lists them.
    pub const ALL: [AuthMethod; 4] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
        AuthMethod::None,
    ];

    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    /// The method called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// The format of a client's access tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccessTokenFormat {
    /// A random string, meaningful only to us.
    #[default]
    Opaque,
    /// A signed JWT (RFC 9068) that resource servers can verify with our JWKS.
    Jwt,
}

impl Client {
    /// Public clients (no credential at all: no secret, no secret hash, no JWKS) must use PKCE
    /// (RFC 9700 §2.1.1).
    pub fn is_public(&self) -> bool {
        self.secret.is_none()
            && self.settings.secret_sha256.is_none()
            && self.settings.jwks.is_none()
    }

    /// Whether the client may be granted `offline_access` (see [`ClientSettings`]).
    pub fn allows_offline_access(&self) -> bool {
        self.settings
            .allow_offline_access
            .unwrap_or(!self.is_public())
    }

    /// Whether the client may use `grant` (its `grant_types`, or the default ones). A public
    /// client never uses `client_credentials`: it has no credentials to present.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        if grant == GrantType::ClientCredentials && self.is_public() {
            return false;
        }
        match &self.settings.grant_types {
            Some(list) => list.contains(&grant),
            None => GrantType::DEFAULT.contains(&grant),
        }
    }

    /// Whether the client may authenticate with `method`.
    pub fn accepts_auth_method(&self, method: AuthMethod) -> bool {
        if let Some(only) = self.settings.token_endpoint_auth_method {
            return only == method;
        }
        let has_secret = self.secret.is_some() || self.settings.secret_sha256.is_some();
        match method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => has_secret,
            AuthMethod::PrivateKeyJwt => !has_secret && self.settings.jwks.is_some(),
            AuthMethod::None => self.is_public(),
        }
    }

    /// Whether `given` is this client's secret, compared in constant time against the secret or
    /// its SHA-256 (a fast hash is enough: secrets are high-entropy random values, and the token
    /// endpoint must stay fast).
    pub fn secret_matches(&self, given: &str) -> bool {
        if let Some(secret) = &self.secret {
            return secret.matches(given);
        }
        if let Some(hash) = &self.settings.secret_sha256 {
            use sha2::{Digest, Sha256};
            use subtle::ConstantTimeEq;
            let given = Sha256::digest(given.as_bytes());
            return given.as_slice().ct_eq(hash.as_slice()).into();
        }
        false
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

/// All registered clients, by id. A handle: clones share one set, which [`ClientRegistry::replace`]
/// swaps atomically (a configuration reload), so a request that already holds a [`Client`]
/// finishes with the registration it started with.
#[derive(Clone, Default)]
pub struct ClientRegistry {
    clients: Arc<ArcSwap<HashMap<String, Arc<Client>>>>,
}

impl std::fmt::Debug for ClientRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.all()).finish()
    }
}

impl ClientRegistry {
    /// Builds the registry; later entries with a duplicate id replace earlier ones (config
    /// validation rejects duplicates before this point).
    pub fn new(clients: impl IntoIterator<Item = Client>) -> Self {
        Self {
            clients: Arc::new(ArcSwap::from_pointee(Self::map(clients))),
        }
    }

    fn map(clients: impl IntoIterator<Item = Client>) -> HashMap<String, Arc<Client>> {
        clients
            .into_iter()
            .map(|c| (c.id.clone(), Arc::new(c)))
            .collect()
    }

    /// The client with `id`, as registered now.
    pub fn get(&self, id: &str) -> Option<Arc<Client>> {
        self.clients.load().get(id).cloned()
    }

    /// Every client, sorted by id.
    pub fn all(&self) -> Vec<Arc<Client>> {
        let mut v: Vec<Arc<Client>> = self.clients.load().values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Replaces every registration at once (every clone of this registry sees the new set).
    pub fn replace(&self, clients: impl IntoIterator<Item = Client>) {
        self.clients.store(Arc::new(Self::map(clients)));
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
    use sha2::{Digest, Sha256};

    fn client(secret: Option<&str>, settings: ClientSettings) -> Client {
        Client {
            id: "c".into(),
            name: "c".into(),
            secret: secret.map(Secret::new),
            redirect_uris: vec!["https://c.example/cb".into()],
            settings,
        }
    }

    fn client_with_uris(uris: &[&str]) -> Client {
        Client {
            id: "c1".into(),
            name: "c1".into(),
            secret: None,
            redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
            settings: ClientSettings::default(),
        }
    }

    #[test]
    fn hashed_secret_matches_only_the_secret_it_hashes() {
        let settings = ClientSettings {
            secret_sha256: Some(Sha256::digest(b"s3cret-value").to_vec()),
            ..ClientSettings::default()
        };
        let c = client(None, settings);
        assert!(!c.is_public());
        assert!(c.secret_matches("s3cret-value"));
        assert!(!c.secret_matches("s3cret-valuE"));
        assert!(!c.secret_matches(""));
    }

    #[test]
    fn default_auth_methods_follow_the_credential_kind_oidc_core_9() {
        let confidential = client(Some("x"), ClientSettings::default());
        assert!(confidential.accepts_auth_method(AuthMethod::ClientSecretBasic));
        assert!(confidential.accepts_auth_method(AuthMethod::ClientSecretPost));
        assert!(!confidential.accepts_auth_method(AuthMethod::None));
        assert!(!confidential.accepts_auth_method(AuthMethod::PrivateKeyJwt));
        let public = client(None, ClientSettings::default());
        assert!(public.accepts_auth_method(AuthMethod::None));
        assert!(!public.accepts_auth_method(AuthMethod::ClientSecretPost));
        let pinned = client(
            Some("x"),
            ClientSettings {
                token_endpoint_auth_method: Some(AuthMethod::ClientSecretPost),
                ..ClientSettings::default()
            },
        );
        assert!(!pinned.accepts_auth_method(AuthMethod::ClientSecretBasic));
        assert!(pinned.accepts_auth_method(AuthMethod::ClientSecretPost));
    }

    #[test]
    fn offline_access_defaults_to_confidential_clients_only() {
        assert!(client(Some("x"), ClientSettings::default()).allows_offline_access());
        assert!(!client(None, ClientSettings::default()).allows_offline_access());
        let spa = client(
            None,
            ClientSettings {
                allow_offline_access: Some(true),
                ..ClientSettings::default()
            },
        );
        assert!(spa.allows_offline_access());
    }

    #[test]
    fn sector_is_the_shared_redirect_host_else_the_client_id_oidc_core_8_1() {
        assert_eq!(
            client_with_uris(&["https://RP.example/cb", "https://rp.example/other"])
                .sector_identifier(),
            "rp.example"
        );
        assert_eq!(
            client_with_uris(&["https://a.example/cb", "https://b.example/cb"]).sector_identifier(),
            "c1"
        );
    }
}
