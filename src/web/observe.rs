//! The one layer that looks at every routed request: counts each request under its route
//! template and status, and each login callback under its outcome and in the login event log
//! ([`super::login_events`]).
//!
//! A hand-written layer rather than `axum::middleware::from_fn`: `from_fn` clones its state
//! and the wrapped route and boxes a future on every request; here an ordinary request costs
//! one small future around the route's own (docs/performance.md, "the middleware as one
//! service"). Only the login callback, which records an event, takes a boxed future.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use tower::{Layer, Service, ServiceExt};

use super::login_events::{login_outcome, record_callback, EventLogState};
use crate::metrics::Metrics;

/// The route template of the login callback, whose answers are counted as login outcomes.
pub(crate) const CALLBACK_ROUTE: &str = "/callback/{connector}";

/// What [`ObserveLayer`] records into.
#[derive(Clone)]
pub struct ObserveState {
    /// Request and login counters.
    pub metrics: Arc<Metrics>,
    /// The login event log.
    pub events: EventLogState,
}

/// Counts each request under its route template (never the concrete path, which would make
/// one series per code or token), and each login callback under its outcome and in the login
/// event log. One layer for both: every layer on the router is a boxed service cloned on each
/// request.
#[derive(Clone)]
pub struct ObserveLayer {
    state: Arc<ObserveState>,
}

impl ObserveLayer {
    /// The layer recording into `state`.
    pub fn new(state: ObserveState) -> Self {
        Self {
            state: Arc::new(state),
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service of [`ObserveLayer`].
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    state: Arc<ObserveState>,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The method is a `Method` (cheap to clone) and the route an `Arc<str>`: nothing is
        // allocated per request. Custom methods are folded into one label by the registry.
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let state = self.state.clone();
        let is_callback = route.as_ref().map(MatchedPath::as_str) == Some(CALLBACK_ROUTE);
        let answer = if is_callback {
            let inner = self.inner.clone();
            let callback_state = state.clone();
            Answer::Callback {
                future: Box::pin(async move {
                    record_callback(&callback_state.events, request, |request| async move {
                        match inner.oneshot(request).await {
                            Ok(response) => response,
                            Err(never) => match never {},
                        }
                    })
                    .await
                }),
            }
        } else {
            Answer::Plain {
                future: self.inner.call(request),
            }
        };
        ObserveFuture {
            answer,
            method,
            route,
            state,
        }
    }
}

pin_project_lite::pin_project! {
    #[project = AnswerProj]
    enum Answer<F> {
        Plain { #[pin] future: F },
        Callback { future: Pin<Box<dyn Future<Output = Response> + Send>> },
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Observe`].
    pub struct ObserveFuture<F> {
        #[pin]
        answer: Answer<F>,
        method: Method,
        route: Option<MatchedPath>,
        state: Arc<ObserveState>,
    }
}

impl<F> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (response, is_callback) = match this.answer.project() {
            AnswerProj::Plain { future } => match std::task::ready!(future.poll(cx)) {
                Ok(response) => (response, false),
                Err(never) => match never {},
            },
            AnswerProj::Callback { future } => (std::task::ready!(future.as_mut().poll(cx)), true),
        };
        let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        this.state
            .metrics
            .record_request(this.method.as_str(), route, response.status().as_u16());
        if is_callback {
            this.state.metrics.record_login(login_outcome(&response));
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ClientRegistry;
    use crate::storage::MemoryStore;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Router;

    #[tokio::test]
    async fn each_request_is_counted_under_its_route_template_method_and_status() {
        let metrics = Arc::new(Metrics::new());
        let router = Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .fallback(|| async { StatusCode::NOT_FOUND })
            .layer(ObserveLayer::new(ObserveState {
                metrics: metrics.clone(),
                events: EventLogState {
                    store: Arc::new(MemoryStore::new()),
                    clock: Arc::new(crate::clock::SystemClock),
                    retention: 60,
                    clients: ClientRegistry::new([]),
                },
            }));
        for path in ["/items/secret-code-1", "/items/secret-code-2", "/nowhere"] {
            router
                .clone()
                .oneshot(
                    axum::http::Request::get(path)
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("infallible");
        }
        let text = metrics.render();
        assert!(
            text.contains(
                "wecom_oidc_http_requests_total{method=\"GET\",route=\"/items/{id}\",status=\"200\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "wecom_oidc_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1\n"
            ),
            "{text}"
        );
        assert!(!text.contains("secret-code"), "{text}");
    }
}
