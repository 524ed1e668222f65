//! Discovery metadata and the JWK Set, served from bytes serialized at startup and again at
//! each configuration reload (the JWKS also whenever the signing keys are reloaded from a
//! shared store). Header values are static (`from_static`): a `&str` would be copied into a new
//! buffer on every request.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;

use super::WebState;

/// `GET /.well-known/openid-configuration` (Discovery 1.0 §4).
pub async fn openid_configuration(State(s): State<WebState>) -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        // Swapped whole by a configuration reload (the signing algorithms may change).
        bytes::Bytes::clone(&s.discovery.load()),
    )
}

/// `GET /jwks` (RFC 7517 §5): the public signing keys.
pub async fn jwks(State(s): State<WebState>) -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            ),
            // Short enough that a rotated key is picked up quickly.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        // The key set in use now: a reload from a shared store swaps it as a whole.
        s.provider.keys().jwks_bytes(),
    )
}
