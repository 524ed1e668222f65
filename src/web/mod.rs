//! HTTP handlers: extract the request, call the OIDC core, map the result to a response.

pub mod cookies;
pub mod discovery;
pub mod error_page;
pub mod html;
pub mod login;
pub mod logout;
pub mod token;
pub mod userinfo;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;

use crate::provider::Provider;

/// What every handler shares.
#[derive(Clone)]
pub struct WebState {
    /// The OIDC core.
    pub provider: Arc<Provider>,
    /// Discovery document, serialized once.
    pub discovery: Bytes,
    /// JWK Set, serialized once.
    pub jwks: Bytes,
    /// Whether cookies carry `Secure` (issuer is https).
    pub secure_cookies: bool,
    /// Outgoing HTTP (back-channel logout deliveries); no redirects followed.
    pub http: reqwest::Client,
}

/// The provider's routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/jwks", get(discovery::jwks))
        .route(
            "/authorize",
            get(login::authorize_get).post(login::authorize_post),
        )
        .route("/callback/{connector}", get(login::callback))
        .route("/logout", get(logout::logout_get).post(logout::logout_post))
        .route("/token", post(token::token))
        .route(
            "/userinfo",
            get(userinfo::userinfo_get).post(userinfo::userinfo_post),
        )
        .with_state(state)
}
