//! The operators' web console at `/admin` (`[admin]` in the configuration; off without it).
//!
//! Operators sign in through the upstream itself: the console is a client of this very provider
//! ([`CONSOLE_CLIENT_ID`], internal, confidential, on the `[admin] connector`), runs a code flow
//! with state and PKCE, and redeems the code in-process at the provider's token endpoint logic;
//! the identity the connector vouched for (upstream user id, groups) then decides who is an admin
//! ([`crate::config::AdminSettings::admits`]). Its own short session (idle timeout, HttpOnly,
//! SameSite=Strict, Secure on https) and a CSRF token on every form guard the pages; its actions
//! go through the admin router in-process, so the CLI and the console share one implementation
//! and one audit trail.

mod actions;
mod auth;
mod chart;
mod pages;
mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::routing::{get, post};
use axum::Router;

use crate::clock::SharedClock;
use crate::config::AdminSettings;
use crate::login_events::RecordingConnector;
use crate::provider::{Client, Provider};
use crate::random;
use crate::secret::Secret;
use crate::storage::OperatorStore;
use crate::web::start::ConnectorRow;

/// The client id of the console's own internal client.
pub const CONSOLE_CLIENT_ID: &str = "wecom-oidc-console";
/// Where the console lives.
pub const CONSOLE_PATH: &str = "/admin";

/// The console's internal client: confidential, a fresh secret per process, redirected to
/// `/admin/callback`, on the connector admins sign in through.
pub fn console_client(issuer: &str, settings: &AdminSettings) -> (Client, String) {
    let secret = random::token(24);
    let mut client = Client {
        id: CONSOLE_CLIENT_ID.into(),
        name: "wecom-oidc console".into(),
        secret: Some(Secret::new(secret.clone())),
        redirect_uris: vec![format!("{issuer}{CONSOLE_PATH}/callback")],
        settings: Default::default(),
    };
    client.settings.connector = settings.connector.clone();
    (client, secret)
}

/// What the console works with.
pub struct ConsoleParts {
    /// Who may sign in.
    pub settings: AdminSettings,
    /// The console client's secret (from [`console_client`]).
    pub client_secret: String,
    /// The OIDC core (sign-in, keys, clients).
    pub provider: Arc<Provider>,
    /// The store in its operator role.
    pub store: Arc<dyn OperatorStore>,
    /// The admin router, called in-process for every action.
    pub admin: Router,
    /// Every connector, the default first, with the faults it kept.
    pub connectors: Vec<Arc<RecordingConnector>>,
    /// What the start page shows of each connector (same order).
    pub connector_rows: Vec<ConnectorRow>,
    /// The readiness check's last failure per connector id (`/readyz`).
    pub readiness_failures: Arc<Mutex<HashMap<String, (i64, String)>>>,
    /// The clock.
    pub clock: SharedClock,
}

/// The console's shared state.
pub(crate) struct Console {
    parts: ConsoleParts,
    secure: bool,
    sessions: session::Sessions,
    logins: auth::PendingLogins,
}

/// The console's routes under `/admin`.
pub fn router(parts: ConsoleParts) -> Router {
    let secure = parts.provider.issuer().starts_with("https://");
    let state = Arc::new(Console {
        sessions: session::Sessions::new(parts.settings.idle_timeout),
        logins: auth::PendingLogins::default(),
        parts,
        secure,
    });
    Router::new()
        .route("/admin", get(pages::overview))
        .route("/admin/", get(pages::overview))
        .route("/admin/events", get(pages::events))
        .route("/admin/sessions", get(pages::sessions))
        .route("/admin/clients", get(pages::clients))
        .route("/admin/keys", get(pages::keys))
        .route("/admin/audit", get(pages::audit))
        .route("/admin/lang", get(auth::language))
        .route("/admin/login", get(auth::login))
        .route("/admin/callback", get(auth::callback))
        .route("/admin/logout", post(auth::logout))
        .route("/admin/signout", post(actions::signout))
        .route("/admin/keys/rotate", post(actions::rotate))
        .route("/admin/reload", post(actions::reload))
        .with_state(state)
}
