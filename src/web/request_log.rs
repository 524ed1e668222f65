//! One log line per request, carrying a request id. The id comes from a well-formed incoming
//! `X-Request-Id` (set by a trusted front proxy) or is drawn from the CSPRNG; it is put on the
//! request (so the HTML error page shows the same id), on the response, and on the tracing span
//! every log event of the request runs in.
//!
//! Only the method and the path are logged, never the query string or the body: `/callback`
//! queries carry WeCom codes, `/authorize` queries carry state and PKCE values, `/token` bodies
//! carry codes and client secrets, and simulator URLs carry app secrets.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Response};
use axum::middleware::Next;
use axum::Router;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::random;

/// The header that carries the request id, in and out.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id we adopt.
const MAX_INCOMING_ID: usize = 64;

/// The request id of a request that went through [`layer`], if any.
pub fn request_id(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_well_formed(v))
}

/// Whether an incoming id is safe to adopt and to write into a log line.
fn is_well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_INCOMING_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Middleware: makes sure the request has a well-formed id and echoes it on the response.
async fn assign_request_id(mut request: Request, next: Next) -> Response<Body> {
    let id = match request_id(request.headers()) {
        Some(id) => id.to_owned(),
        None => random::alphanumeric(16),
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID_HEADER, v.clone());
        let mut response = next.run(request).await;
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
        response
    } else {
        next.run(request).await
    }
}

/// Adds the request id and the per-request log line to every route of `router`.
pub fn layer(router: Router) -> Router {
    router
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    tracing::info_span!(
                        "request",
                        request_id = request_id(request.headers()).unwrap_or("-"),
                        method = %request.method(),
                        // The path only: see the module docs for why never the query.
                        path = %request.uri().path(),
                    )
                })
                .on_request(())
                .on_response(
                    |response: &Response<Body>, latency: Duration, _span: &Span| {
                        tracing::info!(
                            status = response.status().as_u16(),
                            latency_ms = latency.as_millis() as u64,
                            "request"
                        );
                    },
                )
                .on_failure(()),
        )
        .layer(axum::middleware::from_fn(assign_request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_incoming_ids_are_adopted() {
        assert!(is_well_formed("abc-DEF_123"));
        assert!(!is_well_formed(""));
        assert!(!is_well_formed("a b"));
        assert!(!is_well_formed("x\u{7f}"));
        assert!(!is_well_formed(&"a".repeat(65)));
    }
}
