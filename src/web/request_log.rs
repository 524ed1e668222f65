//! One log line per request, carrying a request id. The id comes from a well-formed incoming
//! `X-Request-Id` (set by a trusted front proxy) or is drawn from the CSPRNG; it is put on the
//! request the router gets (so the HTML error page shows the same id; the edge's hot routes
//! show no page), on the response, and on the scope every log line of the request is written
//! in ([`Scope`]).
//!
//! Only the method and the path are logged, never the query string or the body: `/callback`
//! queries carry WeCom codes, `/authorize` queries carry state and PKCE values, `/token` bodies
//! carry codes and client secrets, and simulator URLs carry app secrets.
//!
//! The edge service ([`super::edge`]) opens the scope and writes the line, instead of
//! `TraceLayer` plus a `from_fn` middleware: every request passes it, and the generic pair cost
//! two boxed services cloned per request and a second span callback (docs/performance.md,
//! "request log").

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use tracing::Span;

use crate::logging::context::{self, RequestContext};

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

/// What a request's log lines run in: its id, method and path, as a [`RequestContext`] when
/// the plain-text format writes the lines (the cheaper way, [`context`] docs),
/// else as a `tracing` span. The path only: see the module docs for why never the query.
pub(crate) enum Scope {
    Context(RequestContext),
    Span(Span),
}

/// The guard of [`Scope::enter`].
// The guards are held for what their drop does, never read.
#[allow(dead_code)]
pub(crate) enum Entered<'a> {
    Context(context::Entered<'a>),
    Span(tracing::span::Entered<'a>),
}

impl Scope {
    pub(crate) fn new(id: &HeaderValue, method: &Method, path: &str) -> Self {
        // A well-formed id or one we drew: letters, digits, `-` and `_` (`is_well_formed`).
        let id = id.to_str().unwrap_or("-");
        if let Some(context) = RequestContext::for_current_format(id, method.as_str(), path) {
            Self::Context(context)
        } else {
            Self::Span(tracing::info_span!(
                "request",
                request_id = id,
                method = %method,
                path = %path,
            ))
        }
    }

    /// Makes this the scope of the log lines written until the guard is dropped.
    pub(crate) fn enter(&mut self) -> Entered<'_> {
        match self {
            Self::Context(context) => Entered::Context(context.enter()),
            Self::Span(span) => Entered::Span(span.enter()),
        }
    }

    /// The access line of a request answered `status` after `latency`.
    pub(crate) fn line(&mut self, status: StatusCode, latency: Duration) {
        let latency_ms = latency.as_millis() as u64;
        match self {
            Self::Context(context) => context.access_line(status.as_u16(), latency_ms),
            Self::Span(span) => {
                let _entered = span.enter();
                tracing::info!(status = status.as_u16(), latency_ms, "request");
            }
        }
    }
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
