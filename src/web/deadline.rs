//! The request deadline: a request still being worked on after its limit is answered `503`
//! (the caller adds `Retry-After`), so nothing hangs longer.
//!
//! Unlike `tower_http::timeout`, the timer is armed only once the request first waits: most
//! requests (discovery, the JWKS, a `/userinfo` read from a local store) are answered on their
//! first poll, and a timer entry registered and cancelled for each of them was a measurable
//! part of their cost (docs/performance.md). The deadline still counts from the moment the
//! request arrived, so a request that waits gets exactly the same limit as before.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response, StatusCode};
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

/// Answers `status` to requests not answered within `limit` (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    limit: Duration,
    status: StatusCode,
}

impl DeadlineLayer {
    /// A deadline of `limit` that answers `status` when it passes.
    pub fn new(limit: Duration, status: StatusCode) -> Self {
        Self { limit, status }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            limit: self.limit,
            status: self.status,
        }
    }
}

/// The service of [`DeadlineLayer`].
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
    status: StatusCode,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Deadline<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        DeadlineFuture {
            started: Instant::now(),
            inner: self.inner.call(request),
            sleep: None,
            limit: self.limit,
            status: self.status,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Deadline`].
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        // Armed at the first `Pending` of `inner`, for `started + limit`.
        #[pin]
        sleep: Option<Sleep>,
        started: Instant,
        limit: Duration,
        status: StatusCode,
    }
}

impl<F, ResBody, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(done) = this.inner.poll(cx) {
            return Poll::Ready(done);
        }
        if this.sleep.is_none() {
            this.sleep
                .set(Some(tokio::time::sleep_until(*this.started + *this.limit)));
        }
        match this.sleep.as_pin_mut().map(|s| s.poll(cx)) {
            Some(Poll::Ready(())) => {
                let mut response = Response::new(ResBody::default());
                *response.status_mut() = *this.status;
                Poll::Ready(Ok(response))
            }
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    fn app() -> Deadline<Router> {
        DeadlineLayer::new(Duration::from_secs(30), StatusCode::SERVICE_UNAVAILABLE).layer(
            Router::new()
                .route("/now", get(|| async { "at once" }))
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(31)).await;
                        "too late"
                    }),
                )
                .route(
                    "/waits",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(29)).await;
                        "in time"
                    }),
                ),
        )
    }

    async fn status(path: &str) -> StatusCode {
        app()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response")
            .status()
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_still_working_after_the_limit_is_answered_503() {
        assert_eq!(status("/slow").await, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_waits_but_ends_within_the_limit_gets_its_own_answer() {
        assert_eq!(status("/waits").await, StatusCode::OK);
        assert_eq!(status("/now").await, StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_counts_from_the_arrival_not_from_the_first_wait() {
        let mut svc = app();
        let call = ServiceExt::<Request<Body>>::ready(&mut svc)
            .await
            .expect("ready")
            .call(Request::get("/waits").body(Body::empty()).expect("request"));
        // The request sits unpolled for 2 s (a busy worker): 2 + 29 s is past the limit.
        tokio::time::advance(Duration::from_secs(2)).await;
        let answer = call.await.expect("response");
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
