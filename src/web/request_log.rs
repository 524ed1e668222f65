//! One log line per request, carrying a request id. The id comes from a well-formed incoming
//! `X-Request-Id` (set by a trusted front proxy) or is drawn from the CSPRNG; it is put on the
//! request (so the HTML error page shows the same id), on the response, and on the tracing span
//! every log event of the request runs in.
//!
//! Only the method and the path are logged, never the query string or the body: `/callback`
//! queries carry WeCom codes, `/authorize` queries carry state and PKCE values, `/token` bodies
//! carry codes and client secrets, and simulator URLs carry app secrets.
//!
//! The layer is one hand-written tower service around the whole router (see
//! `app::with_middleware`), not `TraceLayer` plus a `from_fn` middleware: every request passes
//! it, and the generic pair cost two boxed services cloned per request and a second span
//! callback (docs/performance.md, "request log").

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{HeaderName, HeaderValue, Request, Response};
use tower::{Layer, Service};
use tracing::Span;

use crate::random;

/// The header that carries the request id, in and out.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id we adopt.
const MAX_INCOMING_ID: usize = 64;

/// Length of a request id we draw.
const NEW_ID_LEN: usize = 16;

/// The request id of a request that went through [`RequestLogLayer`], if any.
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
fn id_for(headers: &axum::http::HeaderMap) -> HeaderValue {
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

/// Adds the request id and the per-request log line to every request of the wrapped service.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestLogLayer;

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> RequestLog<S> {
        RequestLog { inner }
    }
}

/// The service of [`RequestLogLayer`].
#[derive(Debug, Clone)]
pub struct RequestLog<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestLog<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = LogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let id = id_for(request.headers());
        let span = tracing::info_span!(
            "request",
            request_id = id.to_str().unwrap_or("-"),
            method = %request.method(),
            // The path only: see the module docs for why never the query.
            path = %request.uri().path(),
        );
        request.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        LogFuture {
            inner,
            span,
            id: Some(id),
            start: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    /// Runs the request inside its span; on the response, adds the id and writes the line.
    pub struct LogFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        id: Option<HeaderValue>,
        start: Instant,
    }
}

impl<F, ResBody, E> Future for LogFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let mut result = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &mut result {
            tracing::info!(
                status = response.status().as_u16(),
                latency_ms = this.start.elapsed().as_millis() as u64,
                "request"
            );
            if let Some(id) = this.id.take() {
                response.headers_mut().insert(REQUEST_ID_HEADER, id);
            }
        }
        Poll::Ready(result)
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
