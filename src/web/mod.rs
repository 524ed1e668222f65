//! HTTP handlers: extract the request, call the OIDC core, map the result to a response.

pub mod cookies;
pub mod cors;
pub mod device;
pub mod discovery;
pub mod edge;
pub mod error_page;
pub mod handoff_page;
pub mod health;
pub mod hot_routes;
pub mod html;
pub mod issuer_path;
pub mod login;
pub mod login_events;
pub mod logout;
pub mod observe;
pub mod query;
pub mod rate_limit;
pub mod request_log;
pub mod revoke;
pub mod start;
#[cfg(test)]
pub(crate) mod testing;
pub mod token;
pub mod upstream_events;
pub mod userinfo;
pub mod verify;

use std::sync::Arc;

use axum::middleware::from_fn_with_state;
use axum::routing::{get, get_service, post};
use axum::Router;
use bytes::Bytes;

use crate::provider::Provider;

/// What every handler shares.
#[derive(Clone)]
pub struct WebState {
    /// The OIDC core.
    pub provider: Arc<Provider>,
    /// Discovery document, serialized at start and at each configuration reload.
    pub discovery: Arc<arc_swap::ArcSwap<Bytes>>,
    /// Our cookies' `Secure` and `Path` (from the issuer).
    pub cookies: cookies::CookieScope,
    /// Outgoing HTTP (back-channel logout deliveries); no redirects followed.
    pub http: reqwest::Client,
}

/// Awaits the store's group-commit durability barrier ([`Provider::durable`]) before a response
/// that hands out or ends a credential. A failed flush means the writes may be lost in a crash,
/// so the credential must not leave: `temporarily_unavailable` (RFC 6749 §4.1.2.1, §5.2).
pub(crate) async fn durable(s: &WebState) -> Result<(), crate::provider::OAuthError> {
    s.provider.durable().await.map_err(|e| {
        // Logged by the store's flush round already (at most once a minute while it fails).
        tracing::debug!(error = %e, "store flush failed; answering temporarily_unavailable");
        crate::provider::OAuthError::new(
            crate::provider::ErrorCode::TemporarilyUnavailable,
            "the server cannot store the grant right now; try again",
        )
    })
}

/// Largest form body a rate limiter reads (the body limit layer of `app` is the same size).
pub const MAX_FORM_BODY: usize = 64 * 1024;

/// The provider's routes with default rate limits.
pub fn router(state: WebState) -> Router {
    router_with(state, &rate_limit::RateLimits::default())
}

/// The provider's routes, with CORS on the endpoints browser apps call and rate limits on
/// `/token` (shared with `/revoke` and `/introspect`), the login callback and the logins
/// `/authorize` starts.
pub fn router_with(state: WebState, limits: &rate_limit::RateLimits) -> Router {
    let cors = cors::CorsPolicy::public_client_origins(state.provider.clients());
    router_live(state, rate_limit::RateLimiters::new(limits), cors)
}

/// [`router_with`] on limiters and a CORS policy the caller keeps, to change them while the
/// routes serve (a configuration reload).
pub fn router_live(
    state: WebState,
    limiters: rate_limit::RateLimiters,
    cors: cors::CorsPolicy,
) -> Router {
    let spa_api = cors::CorsLayer::new(cors);
    Router::new()
        .route(
            discovery::DISCOVERY_PATH,
            get(discovery::openid_configuration).options(cors::public_preflight),
        )
        .route(
            discovery::JWKS_PATH,
            get(discovery::jwks).options(cors::public_preflight),
        )
        .route(
            "/authorize",
            get(login::authorize_get)
                .post(login::authorize_post)
                .layer(from_fn_with_state(
                    limiters.clone(),
                    rate_limit::authorize_budget,
                )),
        )
        .route(
            "/callback/{connector}",
            get(login::callback).layer(from_fn_with_state(
                limiters.clone(),
                rate_limit::limit_callback,
            )),
        )
        .route(
            "/callback/{connector}/events",
            get(upstream_events::upstream_event).post(upstream_events::upstream_event),
        )
        .route(
            "/token",
            post(token::token)
                .layer(from_fn_with_state(
                    limiters.clone(),
                    rate_limit::limit_token,
                ))
                .layer(spa_api.clone()),
        )
        // RFC 8628: the device's request is a client request like /token (same budget); the
        // verification page has a per-address budget of its own, which bounds user-code guesses.
        .route(
            "/device_authorization",
            post(device::device_authorization).layer(from_fn_with_state(
                limiters.clone(),
                rate_limit::limit_token,
            )),
        )
        .route(
            "/device",
            get(device::page)
                .post(device::answer)
                .layer(from_fn_with_state(
                    limiters.clone(),
                    rate_limit::limit_device,
                )),
        )
        .route(
            "/device/login",
            get(device::login).layer(from_fn_with_state(
                limiters.clone(),
                rate_limit::limit_device,
            )),
        )
        .route("/logout", get(logout::logout_get).post(logout::logout_post))
        .route(
            userinfo::PATH,
            // The one `GET` implementation, which the edge's hot routes call as well.
            get_service(userinfo::UserinfoGet::new(state.clone()))
                .post(userinfo::userinfo_post)
                .layer(spa_api.clone()),
        )
        // Revocation and introspection authenticate clients like /token, so the same per
        // client and address budget keeps them from being used to guess client secrets.
        .route(
            "/revoke",
            post(revoke::revoke)
                .layer(from_fn_with_state(
                    limiters.clone(),
                    rate_limit::limit_token,
                ))
                .layer(spa_api),
        )
        .route(
            "/introspect",
            post(revoke::introspect).layer(from_fn_with_state(limiters, rate_limit::limit_token)),
        )
        .with_state(state)
}
