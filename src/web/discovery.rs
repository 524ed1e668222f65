//! Discovery metadata and the JWK Set, served from bytes serialized at startup and again at
//! each configuration reload (the JWKS also whenever the signing keys are reloaded from a
//! shared store). Header values are static (`from_static`): a `&str` would be copied into a new
//! buffer on every request.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;

use super::WebState;

/// A public JSON document any origin may read (`Access-Control-Allow-Origin: *`), cacheable
/// for `cache_control`'s time.
fn public_document(
    content_type: &'static str,
    cache_control: &'static str,
    body: bytes::Bytes,
) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(cache_control),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        body,
    )
}

/// `GET /.well-known/openid-configuration` (Discovery 1.0 §4).
pub async fn openid_configuration(State(s): State<WebState>) -> impl IntoResponse {
    // Swapped whole by a configuration reload (the signing algorithms may change).
    let body = bytes::Bytes::clone(&s.discovery.load());
    public_document("application/json", "public, max-age=3600", body)
}

/// `GET /jwks` (RFC 7517 §5): the public signing keys.
pub async fn jwks(State(s): State<WebState>) -> impl IntoResponse {
    // The key set in use now: a reload from a shared store swaps it as a whole. The cache time
    // is short enough that a rotated key is picked up quickly.
    let body = s.provider.keys().jwks_bytes();
    public_document("application/jwk-set+json", "public, max-age=300", body)
}
