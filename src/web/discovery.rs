//! Discovery metadata and the JWK Set, served from bytes serialized at startup and again at
//! each configuration reload (the JWKS also whenever the signing keys are reloaded from a
//! shared store). Header values are static (`from_static`): a `&str` would be copied into a new
//! buffer on every request. The handlers take only the parts of the state they read
//! ([`Documents`]), not a clone of the whole [`WebState`].

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;

use super::WebState;
use crate::provider::Provider;

/// Where the discovery document is served (Discovery 1.0 §4).
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Where the JWK Set is served (`jwks_uri` of the discovery document).
pub const JWKS_PATH: &str = "/jwks";

/// What the two documents are read from.
#[derive(Clone)]
pub struct Documents {
    discovery: Arc<ArcSwap<Bytes>>,
    provider: Arc<Provider>,
}

impl FromRef<WebState> for Documents {
    fn from_ref(s: &WebState) -> Self {
        Self {
            discovery: s.discovery.clone(),
            provider: s.provider.clone(),
        }
    }
}

/// A public JSON document any origin may read (`Access-Control-Allow-Origin: *`), cacheable
/// for `cache_control`'s time. Built as a response directly: the tuple form converts each
/// header through `IntoResponseParts` and grows the header map twice.
fn public_document(
    content_type: &'static str,
    cache_control: &'static str,
    body: Bytes,
) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    // Ours, then the edge's request id and `nosniff`.
    headers.reserve(5);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

impl Documents {
    /// The route and answer of a `GET` of `path` (the issuer's path already taken off), when
    /// it is one of the two documents: the routed handlers' answer, for the edge to give
    /// before routing ([`super::hot_routes`]); it depends on nothing in the request but its path.
    pub fn answer_get(&self, path: &str) -> Option<(&'static str, Response)> {
        match path {
            DISCOVERY_PATH => Some((DISCOVERY_PATH, self.discovery())),
            JWKS_PATH => Some((JWKS_PATH, self.jwks())),
            _ => None,
        }
    }

    fn discovery(&self) -> Response {
        // Swapped whole by a configuration reload (the signing algorithms may change).
        let body = Bytes::clone(&self.discovery.load());
        public_document("application/json", "public, max-age=3600", body)
    }

    fn jwks(&self) -> Response {
        // The key set in use now: a reload from a shared store swaps it as a whole. The cache
        // time is short enough that a rotated key is picked up quickly.
        let body = self.provider.keys().jwks_bytes();
        public_document("application/jwk-set+json", "public, max-age=300", body)
    }
}

/// `GET /.well-known/openid-configuration` (Discovery 1.0 §4).
pub async fn openid_configuration(State(d): State<Documents>) -> Response {
    d.discovery()
}

/// `GET /jwks` (RFC 7517 §5): the public signing keys.
pub async fn jwks(State(d): State<Documents>) -> Response {
    d.jwks()
}
