//! One log line per request, carrying a request id. The id comes from a well-formed incoming
//! `X-Request-Id` (set by a trusted front proxy) or is drawn from the CSPRNG; it is put on the
//! request (so the HTML error page shows the same id), on the response, and on the tracing span
//! every log event of the request runs in.
//!
//! Only the method and the path are logged, never the query string or the body: `/callback`
//! queries carry WeCom codes, `/authorize` queries carry state and PKCE values, `/token` bodies
//! carry codes and client secrets, and simulator URLs carry app secrets.
//!
//! The edge service ([`super::edge`]) opens the span and writes the line, instead of
//! `TraceLayer` plus a `from_fn` middleware: every request passes it, and the generic pair cost
//! two boxed services cloned per request and a second span callback (docs/performance.md,
//! "request log").

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use tracing::Span;

use crate::random;

/// The header that carries the request id, in and out.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id we adopt.
const MAX_INCOMING_ID: usize = 64;

/// Length of a request id we draw.
const NEW_ID_LEN: usize = 16;

/// The request id of a request that went through [`super::edge`], if any.
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

/// The id for a request: its own well-formed `X-Request-Id`, or a new random one.
pub(crate) fn id_for(headers: &axum::http::HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(REQUEST_ID_HEADER) {
        if v.to_str().is_ok_and(is_well_formed) {
            return v.clone();
        }
    }
    // Alphanumeric, so always a valid header value; the string's buffer becomes the value's
    // (`from_str` would copy it into a second one).
    HeaderValue::from_maybe_shared(bytes::Bytes::from(
        random::request_id(NEW_ID_LEN).into_bytes(),
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The span a request runs in: every log line of the request carries its id, method and path.
/// The path only: see the module docs for why never the query.
pub(crate) fn span(id: &HeaderValue, method: &Method, path: &str) -> Span {
    tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or("-"),
        method = %method,
        path = %path,
    )
}

/// The access line of a request answered `status` after `latency`, written in its span.
pub(crate) fn line(status: StatusCode, latency: Duration) {
    tracing::info!(
        status = status.as_u16(),
        latency_ms = latency.as_millis() as u64,
        "request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_incoming_ids_are_adopted() {
        assert!(is_well_formed("abc-DEF_123"));
        for refused in ["", "a b", "x\u{7f}", &"a".repeat(65)] {
            assert!(!is_well_formed(refused), "{refused:?}");
        }
    }

    #[test]
    fn a_request_without_a_usable_id_gets_a_new_random_one() {
        let mut h = axum::http::HeaderMap::new();
        let a = id_for(&h);
        let b = id_for(&h);
        assert_eq!(a.len(), NEW_ID_LEN);
        assert_ne!(a, b);
        assert!(a
            .to_str()
            .unwrap()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric()));
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("front-proxy_1"));
        assert_eq!(id_for(&h), "front-proxy_1");
        h.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_static("not well formed"),
        );
        assert_eq!(id_for(&h).len(), NEW_ID_LEN);
    }
}
