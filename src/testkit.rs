//! Support shared by the test suites (unit tests, `tests/`, the fuzz targets); not product.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::connector::registry::ConnectorConfig;
use crate::connector::wecom::WeComSettings;
use crate::provider::client::ClientSettings;
use crate::provider::Client;
use crate::secret::Secret;

pub use crate::ci::{in_ci, service_missing};

/// A client as tests register it: named after its id, one redirect URI.
pub fn client(
    id: &str,
    secret: Option<&str>,
    redirect_uri: &str,
    settings: ClientSettings,
) -> Client {
    Client {
        id: id.into(),
        name: id.into(),
        secret: secret.map(Secret::new),
        redirect_uris: vec![redirect_uri.into()],
        settings,
    }
}

/// A login for `grafana` refused (`access_denied`) at `at` for `reason`, of `user_id` when the
/// upstream named the person; kept for one second.
pub fn refused_login(at: i64, user_id: Option<&str>, reason: &str) -> crate::storage::LoginEvent {
    crate::storage::LoginEvent {
        at,
        user_id: user_id.map(str::to_owned),
        client_id: Some("grafana".into()),
        address: None,
        outcome: "access_denied".into(),
        grant: None,
        reason: Some(reason.into()),
        request_id: None,
        expires_at: at + 1,
    }
}

/// The settings of WeCom app `agent_id` of `corp_id` with every WeCom host at `base` (the
/// simulator, or a port nothing listens on).
pub fn wecom_app(base: &str, corp_id: &str, agent_id: i64, secret: &str) -> WeComSettings {
    WeComSettings {
        api_base: base.into(),
        oauth_base: base.into(),
        sso_base: base.into(),
        ..WeComSettings::new(corp_id, agent_id, secret)
    }
}

/// A configuration built in code, as `config::load` would give it for a file naming only the
/// issuer, the folders under `dir`, `connectors` and `clients`: every other setting default.
pub fn config(
    issuer: &str,
    listen: SocketAddr,
    dir: &Path,
    connectors: Vec<Arc<dyn ConnectorConfig>>,
    clients: Vec<Client>,
) -> Config {
    Config {
        issuer: issuer.into(),
        listen,
        data_dir: dir.join("store"),
        store: Default::default(),
        keys_dir: dir.join("keys"),
        connectors,
        deprecations: Vec::new(),
        clients,
        lifetimes: Default::default(),
        session: Default::default(),
        limits: Default::default(),
        login_event_retention: crate::config::DEFAULT_EVENT_RETENTION_DAYS * 86_400,
        playground: false,
        admin: None,
        keys_reload_interval: crate::tokens::shared::DEFAULT_RELOAD_INTERVAL_SECS,
        sled_cache_mb: crate::config::DEFAULT_SLED_CACHE_MB,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ci_is_read_from_the_environment_variable() {
        // Only reads; the variable itself is the CI system's.
        let expected = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert_eq!(super::in_ci(), expected);
    }
}
