//! The operator start page (`/start`, and `/` in `serve` mode): issuer, links to discovery and
//! JWKS, the WeCom app in use, the registered clients (ids and redirect URIs, never secrets), and
//! a viewer of the discovery document and the JWK Set. Bilingual by `ui_locales` /
//! `Accept-Language`, laid out for phones.

use std::sync::Arc;

use arc_swap::ArcSwap;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::error_page::prefers_chinese;

/// Where the start page lives in every mode (the demo keeps its own page at `/`).
pub const START_PATH: &str = "/start";

/// A client as the start page shows it: no secret field exists here, so none can leak.
#[derive(Debug, Clone)]
pub struct ClientRow {
    /// client_id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether it is a public (PKCE-only) client.
    pub public: bool,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
}

/// A connector as the start page shows it: what its type says of itself (never a secret).
#[derive(Debug, Clone)]
pub struct ConnectorRow {
    /// The connector id (`/callback/{id}`).
    pub id: String,
    /// (label, value) pairs from the connector's type.
    pub summary: Vec<(String, String)>,
    /// Our callback URL for this connector.
    pub callback_url: String,
}

/// What the start page shows, computed at start and at each configuration reload.
#[derive(Debug)]
pub struct StartInfo {
    /// Issuer identifier.
    pub issuer: String,
    /// Every connector logins go through, the default first.
    pub connectors: Vec<ConnectorRow>,
    /// Registered clients.
    pub clients: Vec<ClientRow>,
    /// Discovery document, pretty-printed.
    pub discovery: String,
    /// JWK Set, pretty-printed.
    pub jwks: String,
}

impl StartInfo {
    /// Pretty-prints `json` for the viewer; shows it raw if it is not JSON.
    pub fn pretty(json: &[u8]) -> String {
        serde_json::from_slice::<serde_json::Value>(json)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| String::from_utf8_lossy(json).into_owned())
    }
}

#[derive(Template)]
#[template(path = "start.html")]
struct StartPage<'a> {
    lang: &'a str,
    /// The issuer's path, before our own links.
    base: &'a str,
    zh: bool,
    issuer: &'a str,
    connectors: &'a [ConnectorRow],
    clients: &'a [ClientRow],
    discovery: &'a str,
    jwks: &'a str,
}

/// `ui_locales` on the start page, as on the authorization request (OIDC Core §3.1.2.1).
#[derive(Debug, Deserialize)]
pub struct LocaleQuery {
    ui_locales: Option<String>,
}

/// The `/start` route.
pub fn router(info: Arc<ArcSwap<StartInfo>>) -> Router {
    Router::new()
        .route(START_PATH, get(start_page))
        .with_state(info)
}

/// Renders the start page.
pub async fn start_page(
    State(info): State<Arc<ArcSwap<StartInfo>>>,
    Query(q): Query<LocaleQuery>,
    headers: HeaderMap,
) -> Response {
    let info = info.load();
    let zh = prefers_chinese(&headers, q.ui_locales.as_deref());
    let base = super::issuer_path::of(&info.issuer);
    let page = StartPage {
        lang: if zh { "zh-CN" } else { "en" },
        base: &base,
        zh,
        issuer: &info.issuer,
        connectors: &info.connectors,
        clients: &info.clients,
        discovery: &info.discovery,
        jwks: &info.jwks,
    };
    match page.render() {
        Ok(body) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::X_FRAME_OPTIONS, "DENY"),
            ],
            Html(body),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "start page rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}
