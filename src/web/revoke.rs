//! `POST /revoke` (RFC 7009 §2) and `POST /introspect` (RFC 7662 §2): client-authenticated form
//! posts whose logic lives in the core.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::token::{client_form, oauth_error_response};
use super::WebState;
use crate::provider::params::Params;
use crate::provider::Client;

const NO_STORE: [(header::HeaderName, HeaderValue); 2] = [
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    (header::PRAGMA, HeaderValue::from_static("no-cache")),
];

/// The parameters of a client-authenticated form post, authenticated as at `/token` (RFC 7009
/// §2.1, RFC 7662 §2.1), the client, and whether it used Basic credentials (for the 401
/// challenge); or the finished error response.
#[allow(clippy::result_large_err)] // the Err is the finished response, returned at once
async fn authenticated(
    s: &WebState,
    headers: &HeaderMap,
    body: &str,
) -> Result<(Params, Arc<Client>, bool), Response> {
    let (params, creds) = client_form(headers, body)?;
    let used_basic = creds.used_basic();
    let client = s
        .provider
        .authenticate_client(&params, &creds)
        .await
        .map_err(|e| oauth_error_response(&e, used_basic))?;
    Ok((params, client, used_basic))
}

/// `POST /revoke`: 200 with an empty body whether or not the token was known (RFC 7009 §2.2).
/// Confidential clients authenticate as at `/token`; public clients name themselves with
/// `client_id` (§2.1, RFC 6749 §2.3).
pub async fn revoke(State(s): State<WebState>, headers: HeaderMap, body: String) -> Response {
    let (params, client, used_basic) = match authenticated(&s, &headers, &body).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    match s.provider.revoke(&client, &params).await {
        // The 200 promises the token is dead (RFC 7009 §2.2): only once that is on disk.
        Ok(()) => match super::durable(&s).await {
            Ok(()) => (StatusCode::OK, NO_STORE).into_response(),
            Err(e) => oauth_error_response(&e, used_basic),
        },
        Err(e) => oauth_error_response(&e, used_basic),
    }
}

/// `POST /introspect`: the RFC 7662 §2.2 JSON; public or unauthenticated clients get 401
/// `invalid_client` (§2.3).
pub async fn introspect(State(s): State<WebState>, headers: HeaderMap, body: String) -> Response {
    let (params, client, used_basic) = match authenticated(&s, &headers, &body).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    match s.provider.introspect(&client, &params).await {
        Ok(answer) => (StatusCode::OK, NO_STORE, Json(answer)).into_response(),
        Err(e) => oauth_error_response(&e, used_basic),
    }
}
