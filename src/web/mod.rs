//! HTTP handlers: extract the request, call the OIDC core, map the result to a response.

pub mod cookies;
pub mod discovery;
pub mod error_page;
pub mod login;
pub mod login_events;
pub mod ops;
pub mod request_log;
pub mod start;
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
        .route("/token", post(token::token))
        .route(
            "/userinfo",
            get(userinfo::userinfo_get).post(userinfo::userinfo_post),
        )
        .with_state(state)
}
