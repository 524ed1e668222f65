//! CORS (Fetch standard, "CORS protocol") for browser apps: single-page apps fetch discovery, the
//! JWKS, and call `/token`, `/userinfo` and `/revoke` from JavaScript. `/authorize` is a
//! top-level navigation and gets no CORS headers.
//!
//! - Discovery and the JWKS are public documents: any origin may read them.
//! - `/token`, `/userinfo` and `/revoke` answer only origins derived from the registered
//!   redirect URIs of *public* clients (`scheme://host[:port]`). That is the safer choice than
//!   `*`: only the web origins the operator registered for a browser app can read token responses
//!   from script, which narrows what an XSS on an unrelated site or a malicious page can do with
//!   a stolen code or token; confidential clients run on servers and do not need CORS. No
//!   endpoint sends `Access-Control-Allow-Credentials`: none of them uses cookies.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use arc_swap::ArcSwap;

use crate::provider::ClientRegistry;

/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";
/// What a preflight from an allowed origin is told beside the origin: the methods and request
/// headers it may use, and for how long it may remember that.
const PREFLIGHT_GRANTS: [(HeaderName, &str); 3] = [
    (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
    (
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "Authorization, Content-Type",
    ),
    (header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE),
];

/// Which origins may read an endpoint's responses.
#[derive(Debug, Clone)]
pub enum CorsPolicy {
    /// Any origin (`*`).
    Any,
    /// Only these exact origins (`scheme://host[:port]`); a handle whose set a configuration
    /// reload replaces ([`CorsPolicy::refresh`]).
    Origins(Arc<ArcSwap<HashSet<String>>>),
}

impl CorsPolicy {
    /// The origins of the public clients' redirect URIs.
    pub fn public_client_origins(clients: &ClientRegistry) -> Self {
        Self::Origins(Arc::new(ArcSwap::from_pointee(Self::origins_of(clients))))
    }

    /// Recomputes the origins from `clients` (after a configuration reload).
    pub fn refresh(&self, clients: &ClientRegistry) {
        if let Self::Origins(set) = self {
            set.store(Arc::new(Self::origins_of(clients)));
        }
    }

    fn origins_of(clients: &ClientRegistry) -> HashSet<String> {
        clients
            .all()
            .into_iter()
            .filter(|c| c.is_public())
            .flat_map(|c| c.redirect_uris.clone())
            .filter_map(|u| url::Url::parse(&u).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null")
            .collect()
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    pub(crate) fn allow(&self, origin: &str) -> Option<HeaderValue> {
        match self {
            Self::Any => Some(HeaderValue::from_static("*")),
            Self::Origins(set) if set.load().contains(origin) => HeaderValue::from_str(origin).ok(),
            Self::Origins(_) => None,
        }
    }
}

fn origin(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The answer to a preflight whose origin gets `allowed` (none: the browser will refuse).
fn preflight_answer(allowed: Option<HeaderValue>) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(allowed) = allowed {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        for (name, value) in PREFLIGHT_GRANTS {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    resp
}

/// `OPTIONS` on the public documents (discovery, JWKS), which any origin may read: a preflight
/// gets the same answer as from [`CorsLayer`] with [`CorsPolicy::Any`]; any other `OPTIONS` gets the
/// `405` the route would give. Their `GET` handlers send `Access-Control-Allow-Origin: *`
/// themselves, so these hot routes need no CORS middleware (docs/performance.md).
pub async fn public_preflight(headers: HeaderMap) -> Response {
    if !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET,HEAD")],
        )
            .into_response();
    }
    let allowed = origin(&headers).and_then(|o| CorsPolicy::Any.allow(&o));
    preflight_answer(allowed)
}

/// The CORS rules of [`CorsPolicy`] on the routes it wraps: answers preflights (`OPTIONS` with
/// `Access-Control-Request-Method`) itself and adds `Access-Control-Allow-Origin` to the
/// responses of allowed origins. A hand-written layer rather than `from_fn`, which cloned the
/// policy and the wrapped route and boxed a future on every request (docs/performance.md).
#[derive(Debug, Clone)]
pub struct CorsLayer {
    policy: CorsPolicy,
}

impl CorsLayer {
    /// The layer applying `policy`.
    pub fn new(policy: CorsPolicy) -> Self {
        Self { policy }
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Cors<S> {
        Cors {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service of [`CorsLayer`].
#[derive(Debug, Clone)]
pub struct Cors<S> {
    inner: S,
    policy: CorsPolicy,
}

impl<S> Service<Request> for Cors<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let headers = request.headers();
        let allowed = headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .and_then(|o| self.policy.allow(o));
        let is_preflight = request.method() == Method::OPTIONS
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if is_preflight {
            return CorsFuture {
                state: CorsState::Preflight {
                    answer: Some(preflight_answer(allowed)),
                },
            };
        }
        CorsFuture {
            state: CorsState::Routed {
                future: self.inner.call(request),
                allowed,
                // The answer depends on the Origin header: caches must keep them apart.
                vary: matches!(self.policy, CorsPolicy::Origins(_)),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Cors`].
    pub struct CorsFuture<F> {
        #[pin]
        state: CorsState<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = CorsProj]
    enum CorsState<F> {
        // A preflight, answered without the route.
        Preflight { answer: Option<Response> },
        // Any other request, answered by the route.
        Routed { #[pin] future: F, allowed: Option<HeaderValue>, vary: bool },
    }
}

impl<F> Future for CorsFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            CorsProj::Preflight { answer } => {
                Poll::Ready(Ok(answer.take().expect("polled after completion")))
            }
            CorsProj::Routed {
                future,
                allowed,
                vary,
            } => {
                let Ok(mut response) = std::task::ready!(future.poll(cx));
                let h = response.headers_mut();
                if *vary {
                    h.append(header::VARY, HeaderValue::from_static("Origin"));
                }
                if let Some(allowed) = allowed.take() {
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
                    // Lets scripts read the challenge of a 401 (RFC 6750 §3).
                    h.insert(
                        header::ACCESS_CONTROL_EXPOSE_HEADERS,
                        HeaderValue::from_static("WWW-Authenticate, Retry-After"),
                    );
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Client;

    fn registry() -> ClientRegistry {
        ClientRegistry::new([
            Client {
                id: "spa".into(),
                name: "spa".into(),
                secret: None,
                redirect_uris: vec![
                    "https://spa.example/cb".into(),
                    "http://localhost:5173/callback".into(),
                ],
                settings: Default::default(),
            },
            Client {
                id: "server".into(),
                name: "server".into(),
                secret: Some(crate::secret::Secret::new("s")),
                redirect_uris: vec!["https://server.example/cb".into()],
                settings: Default::default(),
            },
        ])
    }

    #[test]
    fn only_public_client_redirect_origins_are_allowed() {
        let p = CorsPolicy::public_client_origins(&registry());
        assert_eq!(
            p.allow("https://spa.example"),
            Some(HeaderValue::from_static("https://spa.example"))
        );
        assert!(p.allow("http://localhost:5173").is_some());
        assert!(p.allow("https://server.example").is_none());
        assert!(p.allow("https://evil.example").is_none());
        assert!(p.allow("https://spa.example.evil.example").is_none());
    }

    async fn through_layer(policy: CorsPolicy, request: Request) -> Response {
        use tower::ServiceExt;
        let routes = axum::Router::new()
            .route(
                "/userinfo",
                axum::routing::get(|| async { "claims" }).post(|| async { "claims" }),
            )
            .layer(CorsLayer::new(policy));
        routes.oneshot(request).await.expect("infallible")
    }

    fn from_origin(method: Method, origin: &str) -> axum::http::request::Builder {
        axum::http::Request::builder()
            .method(method)
            .uri("/userinfo")
            .header(header::ORIGIN, origin)
    }

    #[tokio::test]
    async fn a_preflight_is_answered_by_the_layer_for_allowed_origins_only() {
        let p = CorsPolicy::public_client_origins(&registry());
        let preflight = |origin| {
            from_origin(Method::OPTIONS, origin)
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .body(axum::body::Body::empty())
                .expect("request")
        };
        let allowed = through_layer(p.clone(), preflight("https://spa.example")).await;
        assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
        let h = allowed.headers();
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://spa.example"
        );
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], PREFLIGHT_MAX_AGE);
        assert_eq!(h[header::VARY], "Origin");
        assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
        let refused = through_layer(p, preflight("https://evil.example")).await;
        assert_eq!(refused.status(), StatusCode::NO_CONTENT);
        assert!(!refused
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    }

    #[tokio::test]
    async fn answers_name_allowed_origins_and_always_vary_on_origin() {
        let p = CorsPolicy::public_client_origins(&registry());
        let request = |origin| {
            from_origin(Method::POST, origin)
                .body(axum::body::Body::empty())
                .expect("request")
        };
        let allowed = through_layer(p.clone(), request("http://localhost:5173")).await;
        assert_eq!(allowed.status(), StatusCode::OK);
        let h = allowed.headers();
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://localhost:5173"
        );
        assert_eq!(
            h[header::ACCESS_CONTROL_EXPOSE_HEADERS],
            "WWW-Authenticate, Retry-After"
        );
        assert_eq!(h[header::VARY], "Origin");
        let other = through_layer(p.clone(), request("https://server.example")).await;
        assert_eq!(other.status(), StatusCode::OK);
        assert!(!other
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        assert_eq!(other.headers()[header::VARY], "Origin");
        let any = through_layer(CorsPolicy::Any, request("https://evil.example")).await;
        assert_eq!(any.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!any.headers().contains_key(header::VARY));
    }

    #[test]
    fn a_reload_changes_the_allowed_origins_of_every_clone() {
        let clients = registry();
        let p = CorsPolicy::public_client_origins(&clients);
        let layer_copy = p.clone();
        clients.replace([Client {
            id: "spa2".into(),
            name: "spa2".into(),
            secret: None,
            redirect_uris: vec!["https://new-spa.example/cb".into()],
            settings: Default::default(),
        }]);
        p.refresh(&clients);
        assert!(layer_copy.allow("https://new-spa.example").is_some());
        assert!(layer_copy.allow("https://spa.example").is_none());
    }
}
