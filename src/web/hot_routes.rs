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
use axum::extract::{FromRef, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method};
use axum::response::Response;
use http_body::Body as _;
use tower::{Layer, Service};

use super::cors::{Cors, CorsFuture, CorsLayer, CorsPolicy};
use super::discovery::Documents;
use super::userinfo::{self, UserinfoGet};
use super::WebState;
use crate::metrics::Metrics;

/// The hot routes of one server; cloned with the edge, once per connection.
#[derive(Clone)]
pub struct HotRoutes {
    documents: Documents,
    userinfo: Cors<UserinfoGet>,
    metrics: Arc<Metrics>,
}

impl HotRoutes {
    /// The hot routes of `state`, `/userinfo` under `cors` (the policy the router's
    /// `/userinfo` has), counted in `metrics`.
    pub fn new(state: &WebState, cors: CorsPolicy, metrics: Arc<Metrics>) -> Self {
        Self {
            documents: Documents::from_ref(state),
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
        let metrics = self.metrics.clone();
        if parts.uri.path() == userinfo::PATH {
            // A `GET`'s body means nothing to `/userinfo` (the routed handler ignores it too).
            let request = Request::from_parts(parts, Body::empty());
            // Both services are always ready (`poll_ready` answers `Ready` at once), as the
            // router's own routes are.
            let future = self.userinfo.call(request);
            return Ok(HotFuture {
                state: HotState::Userinfo { future },
                route: userinfo::PATH,
                metrics,
            });
        }
        let (route, response) = self.documents.answer_get(parts.uri.path()).ok_or(parts)?;
        Ok(HotFuture {
            state: HotState::Ready {
                response: Some(response),
            },
            route,
            metrics,
        })
    }
}

type UserinfoFuture = CorsFuture<<UserinfoGet as Service<Request>>::Future>;

pin_project_lite::pin_project! {
    #[project = HotProj]
    enum HotState {
        Ready { response: Option<Response> },
        Userinfo { #[pin] future: UserinfoFuture },
    }
}

pin_project_lite::pin_project! {
    /// The answer of a hot route, counted when it is answered, like a routed one.
    pub struct HotFuture {
        #[pin]
        state: HotState,
        route: &'static str,
        metrics: Arc<Metrics>,
    }
}

impl Future for HotFuture {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let this = self.project();
        let mut response = match this.state.project() {
            HotProj::Ready { response } => response.take().expect("polled after completion"),
            HotProj::Userinfo { future } => {
                let Ok(response) = std::task::ready!(future.poll(cx));
                response
            }
        };
        set_content_length(&mut response);
        this.metrics
            .record_request("GET", this.route, response.status().as_u16());
        Poll::Ready(response)
    }
}

/// `Content-Length: 0` on an empty answer. hyper writes the length of any other body of known
/// size itself, over HTTP/1 and HTTP/2 alike, but leaves it out of an empty HTTP/2 answer,
/// where axum's routes write it; a number of our own would cost an allocation per request.
fn set_content_length(response: &mut Response) {
    if response.body().size_hint().exact() == Some(0)
        && !response.headers().contains_key(header::CONTENT_LENGTH)
    {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{AccessToken, MemoryStore, Store};
    use crate::testkit;
    use axum::http::{HeaderMap, StatusCode};
    use axum::Router;
    use bytes::Bytes;
    use tower::ServiceExt;

    use super::super::discovery::{DISCOVERY_PATH, JWKS_PATH};
    use super::super::edge::Edge;
    use super::super::request_log::REQUEST_ID_HEADER;

    const ISSUER: &str = "https://sso.example.com/sso";
    const SPA_ORIGIN: &str = "https://spa.example";
    const TOKEN: &str = "a-live-opaque-access-token";

    /// A server whose store holds one live access token, [`TOKEN`], of a person.
    async fn app(dir: &std::path::Path) -> crate::app::App {
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
        let store = Arc::new(MemoryStore::new());
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        let token = AccessToken {
            client_id: "spa".into(),
            grant_id: "grant-1".into(),
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            identity: crate::identity::Identity {
                user_id: "zhangsan".into(),
                username: "zhangsan".into(),
                name: Some("张三".into()),
                email: Some("zhangsan@example.com".into()),
                ..Default::default()
            },
            auth_time: now,
            userinfo_claims: Vec::new(),
            client_only: false,
            issued_at: now,
            expires_at: now + 3600,
        };
        store
            .create_access_token(&crate::random::hash_secret(TOKEN), &token)
            .await
            .expect("stored");
        crate::app::build_with_store(&config, Arc::new(crate::clock::SystemClock), store)
            .expect("the provider builds")
    }

    /// The same server three ways: its hot routes in front of a router that has none of their
    /// routes (so whatever they answer, they answered themselves), its hot routes in front of
    /// its own router (as served), and its router alone.
    struct Edges {
        hot_only: Edge,
        served: Edge,
        routed: Edge,
        metrics: Arc<Metrics>,
    }

    async fn edges(dir: &std::path::Path) -> Edges {
        let built = app(dir).await;
        Edges {
            hot_only: crate::app::with_middleware_at(Router::new(), ISSUER)
                .with_hot_routes(built.hot.clone()),
            served: crate::app::with_middleware_at(built.router.clone(), ISSUER)
                .with_hot_routes(built.hot),
            routed: crate::app::with_middleware_at(built.router, ISSUER),
            metrics: built.metrics,
        }
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
        let exact = http_body::Body::size_hint(&body).exact();
        let body = axum::body::to_bytes(body, 1 << 20).await.expect("body");
        let mut headers = parts.headers;
        // Each answer has an id of its own.
        assert!(headers.remove(REQUEST_ID_HEADER).is_some());
        // An empty answer says so; any other's length the server writes from the body's exact
        // size when the answer has none (hyper, RFC 9112 §6.3), as axum's routes write it; a
        // `HEAD`'s is the length a `GET` would have (RFC 9110 §9.3.2).
        match headers.remove(header::CONTENT_LENGTH) {
            Some(_) if is_head => {}
            Some(length) => assert_eq!(length, body.len().to_string().as_str()),
            None => assert!(!body.is_empty() && exact == Some(body.len() as u64)),
        }
        (parts.status, headers, body)
    }

    fn counted(metrics: &Metrics, method: &str, route: &str, status: u16) -> u64 {
        let series = format!(
            "wecom_oidc_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} "
        );
        metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .map_or(0, |n| n.parse().expect("a count"))
    }

    /// A `GET` answered at the edge is exactly the router's answer, headers (`Content-Length`
    /// included) and body: Discovery 1.0 §4, RFC 7517 §5, OIDC Core §5.3 with its claims and
    /// RFC 6750 §3's challenges, the CORS headers of `/userinfo`; under the issuer's path and
    /// without it; and it is counted under the same route.
    #[tokio::test]
    async fn a_hot_route_answers_what_the_router_answers_and_is_counted_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = edges(dir.path()).await;
        let live = format!("Bearer {TOKEN}");
        let bearer = [(header::AUTHORIZATION, live.as_str())];
        let spa = [
            (header::AUTHORIZATION, live.as_str()),
            (header::ORIGIN, SPA_ORIGIN),
        ];
        let unknown = [(header::AUTHORIZATION, "Bearer not-a-token")];
        let cases: [(&str, &[Field], StatusCode); 7] = [
            (DISCOVERY_PATH, &[], StatusCode::OK),
            (JWKS_PATH, &[], StatusCode::OK),
            (userinfo::PATH, &bearer, StatusCode::OK),
            (userinfo::PATH, &spa, StatusCode::OK),
            (userinfo::PATH, &[], StatusCode::UNAUTHORIZED),
            (userinfo::PATH, &unknown, StatusCode::UNAUTHORIZED),
            (
                userinfo::PATH,
                &[(header::AUTHORIZATION, "Basic eDp5")],
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (path, headers, status) in cases {
            for prefix in ["/sso", ""] {
                let at = format!("{prefix}{path}");
                let hot = send(e.hot_only.clone(), Method::GET, &at, headers).await;
                let routed = send(e.routed.clone(), Method::GET, &at, headers).await;
                assert_eq!(hot.0, status, "{at} {headers:?}");
                assert_eq!(hot, routed, "{at} {headers:?}");
            }
        }
        // The person's claims, readable by the allowed origin.
        let (_, headers, body) = send(e.hot_only.clone(), Method::GET, userinfo::PATH, &spa).await;
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], SPA_ORIGIN);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let claims: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(claims["sub"], "zhangsan");
        assert_eq!(claims["name"], "张三");
        let m = &e.metrics;
        assert_eq!(counted(m, "GET", DISCOVERY_PATH, 200), 4);
        assert_eq!(counted(m, "GET", JWKS_PATH, 200), 4);
        assert_eq!(counted(m, "GET", userinfo::PATH, 200), 9);
        assert_eq!(counted(m, "GET", userinfo::PATH, 401), 8);
        assert_eq!(counted(m, "GET", userinfo::PATH, 400), 4);
    }

    /// Only a `GET` of the exact path is answered at the edge: `HEAD` (RFC 9110 §9.3.2), a
    /// CORS preflight, other methods and other paths are the router's.
    #[tokio::test]
    async fn other_methods_and_paths_are_left_to_the_router() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = edges(dir.path()).await;
        let (status, _, _) = send(e.hot_only.clone(), Method::HEAD, JWKS_PATH, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "not a hot route");
        let (status, headers, body) = send(e.served.clone(), Method::HEAD, JWKS_PATH, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/jwk-set+json");
        assert!(body.is_empty());
        let (status, headers, _) = send(e.served.clone(), Method::POST, DISCOVERY_PATH, &[]).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(headers.contains_key(header::ALLOW));
        let preflight = [
            (header::ORIGIN, SPA_ORIGIN),
            (header::ACCESS_CONTROL_REQUEST_METHOD, "GET"),
        ];
        let (status, headers, _) = send(
            e.served.clone(),
            Method::OPTIONS,
            userinfo::PATH,
            &preflight,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], SPA_ORIGIN);
        for path in [
            "/jwks/",
            "/JWKS",
            "/userinfo/x",
            "/.well-known/openid-configuration/x",
        ] {
            let (status, _, _) = send(e.served.clone(), Method::GET, path, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
        let m = &e.metrics;
        assert_eq!(counted(m, "HEAD", JWKS_PATH, 200), 1);
        assert_eq!(counted(m, "POST", DISCOVERY_PATH, 405), 1);
        assert_eq!(counted(m, "OPTIONS", userinfo::PATH, 204), 1);
    }
}
