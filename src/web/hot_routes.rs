//! The requests the edge answers without the router: a `GET` of the discovery document, of
//! the JWK Set and of `/userinfo`. They are the most requested URLs of a provider (every
//! relying party's start, every token's key lookup, every session's claims), and for them the
//! router's matching, its per-route boxed services and the extraction would cost about as much
//! as the answer (docs/performance.md, "hot routes answered at the edge").
//!
//! Each answer is the routed handler's, from the same function, with the same CORS rules, and
//! is counted in the metrics under the same route template. Every other method of these paths
//! (`HEAD`, a CORS preflight, a `POST`) and every other path is routed as usual, so the router
//! keeps serving all of them on its own as well.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::Method;
use axum::response::Response;
use tower::{Layer, Service};

use super::cors::{Cors, CorsFuture, CorsLayer, CorsPolicy};
use super::discovery::PublicDocuments;
use super::userinfo::{self, UserinfoGet};
use super::WebState;
use crate::metrics::Metrics;

/// The hot routes of one server; cloned with the edge, once per connection.
#[derive(Clone)]
pub struct HotRoutes {
    documents: PublicDocuments,
    userinfo: Cors<UserinfoGet>,
    metrics: Arc<Metrics>,
}

impl HotRoutes {
    /// The hot routes of `state`, `/userinfo` under `cors` (the policy the router's
    /// `/userinfo` has), counted in `metrics`.
    pub fn new(state: &WebState, cors: CorsPolicy, metrics: Arc<Metrics>) -> Self {
        Self {
            documents: PublicDocuments::new(state),
            userinfo: CorsLayer::new(cors).layer(UserinfoGet::new(state.clone())),
            metrics,
        }
    }

    /// The answer to the request of `parts` (the issuer's path already taken off) when it is
    /// a hot route, or `parts` back.
    // `parts` is moved in and out, not boxed: a box would cost an allocation per request.
    #[allow(clippy::result_large_err)]
    pub(crate) fn route(&mut self, parts: Parts) -> Result<HotFuture, Parts> {
        if parts.method != Method::GET {
            return Err(parts);
        }
        if parts.uri.path() == userinfo::PATH {
            // A `GET`'s body means nothing to `/userinfo` (the routed handler ignores it too).
            let request = Request::from_parts(parts, Body::empty());
            return Ok(HotFuture {
                state: HotState::Userinfo {
                    future: self.userinfo.call(request),
                    metrics: self.metrics.clone(),
                },
            });
        }
        let (route, response) = self.documents.answer_get(parts.uri.path()).ok_or(parts)?;
        self.metrics
            .record_request("GET", route, response.status().as_u16());
        Ok(HotFuture {
            state: HotState::Ready {
                response: Some(response),
            },
        })
    }
}

type UserinfoFuture = CorsFuture<<UserinfoGet as Service<Request>>::Future>;

pin_project_lite::pin_project! {
    #[project = HotProj]
    enum HotState {
        // A document, counted already.
        Ready { response: Option<Response> },
        // Counted when it is answered: its status is known then.
        Userinfo { #[pin] future: UserinfoFuture, metrics: Arc<Metrics> },
    }
}

pin_project_lite::pin_project! {
    /// The answer of a hot route.
    pub struct HotFuture {
        #[pin]
        state: HotState,
    }
}

impl Future for HotFuture {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        match self.project().state.project() {
            HotProj::Ready { response } => {
                Poll::Ready(response.take().expect("polled after completion"))
            }
            HotProj::Userinfo { future, metrics } => {
                let Ok(response) = std::task::ready!(future.poll(cx));
                metrics.record_request("GET", userinfo::PATH, response.status().as_u16());
                Poll::Ready(response)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStore;
    use crate::testkit;
    use axum::http::{header, HeaderMap, StatusCode};
    use bytes::Bytes;
    use tower::ServiceExt;

    use super::super::discovery::{DISCOVERY_PATH, JWKS_PATH};
    use super::super::edge::Edge;
    use super::super::request_log::REQUEST_ID_HEADER;

    const ISSUER: &str = "https://sso.example.com/sso";
    const SPA_ORIGIN: &str = "https://spa.example";

    fn app(dir: &std::path::Path) -> crate::app::App {
        let config = testkit::config(
            ISSUER,
            "127.0.0.1:0".parse().expect("addr"),
            dir,
            vec![Arc::new(testkit::wecom_app(
                "http://127.0.0.1:9",
                "ww-corp",
                1_000_002,
                "secret",
            ))],
            vec![testkit::client(
                "spa",
                None,
                &format!("{SPA_ORIGIN}/cb"),
                Default::default(),
            )],
        );
        crate::app::build_with_store(
            &config,
            Arc::new(crate::clock::SystemClock),
            Arc::new(MemoryStore::new()),
        )
        .expect("the provider builds")
    }

    /// The same server twice: with its hot routes, and with the router alone.
    fn edges(built: crate::app::App) -> (Edge, Edge) {
        let routed = crate::app::with_middleware_at(built.router.clone(), ISSUER);
        let hot = crate::app::with_middleware_at(built.router, ISSUER).with_hot_routes(built.hot);
        (hot, routed)
    }

    type Field<'a> = (header::HeaderName, &'a str);

    async fn send(
        edge: Edge,
        method: Method,
        path: &str,
        headers: &[Field<'_>],
    ) -> (StatusCode, HeaderMap, Bytes) {
        let is_head = method == Method::HEAD;
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let request = request.body(Body::empty()).expect("request");
        let response = edge.oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.expect("body");
        let mut headers = parts.headers;
        // Each answer has an id of its own.
        assert!(headers.remove(REQUEST_ID_HEADER).is_some());
        // axum writes the length the server writes anyway from the body's exact size
        // (hyper's `Content-Length` for a known length, RFC 9112 §6.3); a `HEAD`'s is the
        // length a `GET` would have (RFC 9110 §9.3.2).
        if let Some(length) = headers.remove(header::CONTENT_LENGTH) {
            assert!(is_head || length == body.len().to_string().as_str());
        }
        (parts.status, headers, body)
    }

    fn counted(metrics: &str, method: &str, route: &str, status: u16) -> u64 {
        let series = format!(
            "wecom_oidc_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} "
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .map_or(0, |n| n.parse().expect("a count"))
    }

    /// A `GET` answered at the edge is exactly the router's answer (Discovery 1.0 §4, RFC 7517
    /// §5, OIDC Core §5.3 with RFC 6750 §3's challenges, the CORS headers of `/userinfo`),
    /// under the issuer's path too, and is counted under the same route.
    #[tokio::test]
    async fn a_hot_route_answers_what_the_router_answers_and_is_counted_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let built = app(dir.path());
        let metrics = built.metrics.clone();
        let (hot, routed) = edges(built);
        let bearer = [(header::AUTHORIZATION, "Bearer not-a-token")];
        let spa = [
            (header::AUTHORIZATION, "Bearer not-a-token"),
            (header::ORIGIN, SPA_ORIGIN),
        ];
        let cases: [(&str, &[Field], StatusCode); 6] = [
            (DISCOVERY_PATH, &[], StatusCode::OK),
            (JWKS_PATH, &[], StatusCode::OK),
            (userinfo::PATH, &[], StatusCode::UNAUTHORIZED),
            (userinfo::PATH, &bearer, StatusCode::UNAUTHORIZED),
            (userinfo::PATH, &spa, StatusCode::UNAUTHORIZED),
            (
                userinfo::PATH,
                &[(header::AUTHORIZATION, "Basic eDp5")],
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (path, headers, status) in cases {
            for prefix in ["/sso", ""] {
                let at = format!("{prefix}{path}");
                let fast = send(hot.clone(), Method::GET, &at, headers).await;
                let slow = send(routed.clone(), Method::GET, &at, headers).await;
                assert_eq!(fast.0, status, "{at} {headers:?}");
                assert_eq!(fast, slow, "{at} {headers:?}");
            }
        }
        // The allowed origin is told so, and may read the challenge.
        let fast = send(hot.clone(), Method::GET, userinfo::PATH, &spa).await;
        assert_eq!(fast.1[header::ACCESS_CONTROL_ALLOW_ORIGIN], SPA_ORIGIN);
        assert!(fast.1.contains_key(header::WWW_AUTHENTICATE));
        let text = metrics.render();
        assert_eq!(counted(&text, "GET", DISCOVERY_PATH, 200), 4, "{text}");
        assert_eq!(counted(&text, "GET", JWKS_PATH, 200), 4, "{text}");
        assert_eq!(counted(&text, "GET", userinfo::PATH, 401), 13, "{text}");
        assert_eq!(counted(&text, "GET", userinfo::PATH, 400), 4, "{text}");
    }

    /// Only a `GET` of the exact path is answered at the edge: `HEAD` (RFC 9110 §9.3.2), a
    /// CORS preflight, other methods and other paths are the router's.
    #[tokio::test]
    async fn other_methods_and_paths_are_left_to_the_router() {
        let dir = tempfile::tempdir().expect("tempdir");
        let built = app(dir.path());
        let metrics = built.metrics.clone();
        let (hot, _) = edges(built);
        let (status, headers, body) = send(hot.clone(), Method::HEAD, JWKS_PATH, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/jwk-set+json");
        assert!(body.is_empty());
        let (status, headers, _) = send(hot.clone(), Method::POST, DISCOVERY_PATH, &[]).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(headers.contains_key(header::ALLOW));
        let preflight = [
            (header::ORIGIN, SPA_ORIGIN),
            (header::ACCESS_CONTROL_REQUEST_METHOD, "GET"),
        ];
        let (status, headers, _) =
            send(hot.clone(), Method::OPTIONS, userinfo::PATH, &preflight).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], SPA_ORIGIN);
        for path in [
            "/jwks/",
            "/JWKS",
            "/userinfo/x",
            "/.well-known/openid-configuration/x",
        ] {
            let (status, _, _) = send(hot.clone(), Method::GET, path, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
        let text = metrics.render();
        assert_eq!(counted(&text, "HEAD", JWKS_PATH, 200), 1, "{text}");
        assert_eq!(counted(&text, "POST", DISCOVERY_PATH, 405), 1, "{text}");
        assert_eq!(counted(&text, "OPTIONS", userinfo::PATH, 204), 1, "{text}");
    }
}
