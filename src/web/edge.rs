//! The edge of the server: the one service every request passes before routing, applying the
//! rules every request gets, in one future:
//!
//! - the issuer's path taken off the front of the path ([`super::issuer_path`]);
//! - a `GET` of a hot route answered without the router ([`super::hot_routes`]), once the
//!   header-count and body-size checks below have passed;
//! - the request id, the request's log scope and its access line ([`super::request_log`]);
//! - at most [`crate::server::MAX_HEADERS`] header fields on an HTTP/1 request (`431`, RFC 6585
//!   §5; HTTP/2 bounds its header block itself, and lets a client send each cookie as a field of
//!   its own, RFC 9113 §8.2.3);
//! - the body limit: a `Content-Length` over [`MAX_BODY`] is answered `413` at once, a longer
//!   streamed body fails when read (the extractors answer `413`); every `413` carries
//!   `Connection: close`, since the unread body leaves the connection unusable (RFC 9112 §9.6);
//! - the deadline: a request still being worked on [`REQUEST_TIMEOUT`] after it arrived is
//!   answered `503`; the timer is armed only when the request first waits, so a request answered
//!   on its first poll never registers one;
//! - `Retry-After` on every `503` that has none (RFC 9110 §10.2.3, §15.6.4);
//! - `X-Content-Type-Options: nosniff` on every response that has none;
//! - a request dropped before its answer (the client went away, or the shutdown's drain ran
//!   out) still gets its access line, with status `499` as nginx logs it.
//!
//! These were once seven tower layers around a router nested in a second router: each layer's
//! future moved inside the next, the outer router cloned a boxed service and the body was boxed
//! twice. One hand-written service does the same work with one future and one boxed body
//! (docs/performance.md, "the middleware as one service").

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use axum::routing::future::RouteFuture;
use axum::Router;
use bytes::Bytes;
use http_body_util::Limited;
use tokio::time::{Instant, Sleep};
use tower::Service;

use super::hot_routes::{HotFuture, HotRoutes};
use super::{issuer_path, request_log};

/// Largest request body we read; OAuth requests are small (RFC 9700 §4.16 asks for limits).
pub const MAX_BODY: usize = 64 * 1024;

/// The longest a request is worked on before it is answered `503`: nothing hangs longer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Seconds a client is asked to wait before retrying a `503` (the store down or full, a
/// request that timed out): long enough for a database restart to be under way, short enough
/// that a person retrying by hand finds it back.
pub const RETRY_AFTER_SECS: u32 = 5;

/// The router behind the rules of the module docs. Cheap to clone (one per connection).
#[derive(Clone)]
pub struct Edge {
    router: Router,
    /// The issuer's path (`""` when it has none).
    prefix: Arc<str>,
    timeout: Duration,
    /// Answered before routing when present ([`super::hot_routes`]).
    hot: Option<HotRoutes>,
}

impl Edge {
    /// `router` behind the edge for a server whose issuer has the path `prefix`
    /// ([`issuer_path::of`]).
    pub fn new(router: Router, prefix: &str) -> Self {
        Self {
            router,
            prefix: prefix.into(),
            timeout: REQUEST_TIMEOUT,
            hot: None,
        }
    }

    /// The same edge answering the requests of `hot` itself, without the router (which still
    /// serves them the same way when they reach it).
    pub fn with_hot_routes(mut self, hot: HotRoutes) -> Self {
        self.hot = Some(hot);
        self
    }

    /// The same edge with another deadline (tests).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The router's work on a request that passed the edge's rules.
    fn routed<B>(
        &mut self,
        mut parts: axum::http::request::Parts,
        body: B,
        id: &HeaderValue,
        scope: &mut request_log::Scope,
    ) -> Work
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        // Handlers read the id from the request (a hot route does not need it).
        parts
            .headers
            .insert(request_log::REQUEST_ID_HEADER, id.clone());
        let request = Request::from_parts(parts, Body::new(Limited::new(body, MAX_BODY)));
        let _entered = scope.enter();
        Work::Routed {
            future: self.router.call(request),
        }
    }
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("hot_routes", &self.hot.is_some())
            .finish_non_exhaustive()
    }
}

/// The declared body length, when it is a number.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

impl<B> Service<Request<B>> for Edge
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = EdgeFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // A `Router` is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> EdgeFuture {
        let arrived = Instant::now();
        // The line shows the path as it arrived, with the issuer's path if it had it.
        let id = request_log::id_for(request.headers());
        let mut scope = request_log::Scope::new(&id, request.method(), request.uri().path());
        let request = issuer_path::strip(&self.prefix, request);
        let (parts, body) = request.into_parts();
        // Counted as they arrived, before the request id is added; HTTP/1 only (module docs).
        let fields = if parts.version <= axum::http::Version::HTTP_11 {
            parts.headers.len()
        } else {
            0
        };
        let refused = if fields > crate::server::MAX_HEADERS {
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        } else {
            match content_length(&parts.headers) {
                Some(declared) if declared > MAX_BODY as u64 => Some(StatusCode::PAYLOAD_TOO_LARGE),
                _ => None,
            }
        };
        let work = match (refused, &mut self.hot) {
            (Some(status), _) => Work::Refused { status },
            (None, Some(hot)) => match hot.route(parts) {
                Ok(future) => Work::Hot { future },
                Err(parts) => self.routed(parts, body, &id, &mut scope),
            },
            (None, None) => self.routed(parts, body, &id, &mut scope),
        };
        EdgeFuture {
            work,
            sleep: None,
            arrived,
            timeout: self.timeout,
            scope,
            id: Some(id),
        }
    }
}

pin_project_lite::pin_project! {
    /// What a request gets: the router's answer, a hot route's answered before routing, or a
    /// refusal before routing.
    #[project = WorkProj]
    enum Work {
        Routed { #[pin] future: RouteFuture<Infallible> },
        Hot { #[pin] future: HotFuture },
        Refused { status: StatusCode },
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Edge`].
    pub struct EdgeFuture {
        #[pin]
        work: Work,
        // Armed at the first `Pending` of the router's future, for `arrived + timeout`.
        #[pin]
        sleep: Option<Sleep>,
        arrived: Instant,
        timeout: Duration,
        scope: request_log::Scope,
        // Taken when the answer leaves; still here when the future is dropped unanswered.
        id: Option<HeaderValue>,
    }

    impl PinnedDrop for EdgeFuture {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.id.is_some() {
                this.scope.line(CLIENT_CLOSED, this.arrived.elapsed());
            }
        }
    }
}

/// The status an access line shows for a request dropped before its answer (nginx's 499,
/// "client closed request"); no client ever receives it.
const CLIENT_CLOSED: StatusCode = match StatusCode::from_u16(499) {
    Ok(status) => status,
    Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
};

impl Future for EdgeFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let entered = this.scope.enter();
        let answered = match this.work.project() {
            WorkProj::Refused { status } => Poll::Ready(refusal(*status)),
            WorkProj::Hot { future } => future.poll(cx),
            WorkProj::Routed { future } => future.poll(cx).map(|Ok(response)| response),
        };
        let mut response = match answered {
            Poll::Ready(response) => response,
            Poll::Pending => {
                if this.sleep.is_none() {
                    this.sleep.set(Some(tokio::time::sleep_until(
                        *this.arrived + *this.timeout,
                    )));
                }
                match this.sleep.as_pin_mut().map(|s| s.poll(cx)) {
                    Some(Poll::Ready(())) => status_only(StatusCode::SERVICE_UNAVAILABLE),
                    _ => return Poll::Pending,
                }
            }
        };
        drop(entered);
        finish(&mut response);
        this.scope.line(response.status(), this.arrived.elapsed());
        if let Some(id) = this.id.take() {
            response
                .headers_mut()
                .insert(request_log::REQUEST_ID_HEADER, id);
        }
        Poll::Ready(Ok(response))
    }
}

/// The headers every answer gets (module docs).
fn finish(response: &mut Response<Body>) {
    let status = response.status();
    let headers = response.headers_mut();
    if !headers.contains_key(header::X_CONTENT_TYPE_OPTIONS) {
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE && !headers.contains_key(header::RETRY_AFTER) {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

fn status_only(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// The answer to a request refused before routing: a body declared longer than [`MAX_BODY`]
/// (`413`, RFC 9110 §15.5.14) or too many header fields (`431`, RFC 6585 §5).
fn refusal(status: StatusCode) -> Response<Body> {
    let text = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "length limit exceeded"
    } else {
        "too many header fields"
    };
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use std::sync::Mutex;
    use tower::ServiceExt;

    fn app() -> Edge {
        let router = Router::new()
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
            )
            .route("/down", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
            .route(
                "/limited",
                get(|| async {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::RETRY_AFTER, "42")],
                    )
                }),
            )
            .route(
                "/sniffable",
                get(|| async { ([(header::X_CONTENT_TYPE_OPTIONS, "other")], "x") }),
            )
            .route(
                "/echo-id",
                get(|headers: HeaderMap| async move {
                    request_log::request_id(&headers)
                        .unwrap_or("none")
                        .to_owned()
                }),
            )
            .route(
                "/form",
                post(|body: Bytes| async move { body.len().to_string() }),
            );
        Edge::new(router, "/sso")
    }

    async fn send(edge: Edge, request: Request<Body>) -> Response<Body> {
        edge.oneshot(request).await.expect("infallible")
    }

    async fn get_path(path: &str) -> Response<Body> {
        send(
            app(),
            Request::get(path).body(Body::empty()).expect("request"),
        )
        .await
    }

    /// The lines the default subscriber would write while `f` runs, in our plain format.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn capture(&self) -> tracing::subscriber::DefaultGuard {
            let sink = self.clone();
            tracing::subscriber::set_default(
                tracing_subscriber::fmt()
                    .with_ansi(false)
                    .without_time()
                    .fmt_fields(crate::logging::PlainFields)
                    .event_format(crate::logging::PlainText)
                    .with_writer(move || sink.clone())
                    .finish(),
            )
        }

        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("lines").clone()).expect("utf-8")
        }
    }

    /// The access lines of requests answered through the server's own log writer (the line
    /// written straight into its buffer, `logging::context`), as `main` sets it up.
    #[tokio::test(start_paused = true)]
    async fn through_the_log_writer_every_request_gets_its_line_even_one_dropped_unanswered() {
        let lines = Lines::default();
        let writer = crate::logging::LogWriter::new(Box::new(lines.clone()), true);
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_ansi(false)
                .fmt_fields(crate::logging::PlainFields)
                .event_format(crate::logging::PlainText)
                .with_writer(writer.clone())
                .finish(),
        );
        let answered = get_path("/sso/now").await;
        let id = answered.headers()[request_log::REQUEST_ID_HEADER].clone();
        let request = Request::get("/slow")
            .header(request_log::REQUEST_ID_HEADER, "gone-client-2")
            .body(Body::empty())
            .expect("request");
        let _ = tokio::time::timeout(Duration::from_secs(1), app().call(request)).await;
        writer.flush();
        let text = lines.text();
        assert!(
            text.contains(&format!(
                "  INFO request{{request_id=\"{}\" method=GET path=/sso/now}}: wecom_oidc::web::request_log: request status=200 latency_ms=0\n",
                id.to_str().expect("id")
            )),
            "{text}"
        );
        assert!(
            text.contains("  INFO request{request_id=\"gone-client-2\" method=GET path=/slow}: wecom_oidc::web::request_log: request status=499 latency_ms=1000\n"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 2, "{text}");
    }

    /// Other formats lay out spans their own way: a request runs in a `tracing` span there.
    #[tokio::test]
    async fn in_the_json_format_the_access_line_carries_the_request_span() {
        let lines = Lines::default();
        let sink = lines.clone();
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .json()
                .with_current_span(true)
                .with_writer(move || sink.clone())
                .finish(),
        );
        let answered = get_path("/now").await;
        let id = answered.headers()[request_log::REQUEST_ID_HEADER].clone();
        let text = lines.text();
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["fields"]["status"], 200, "{text}");
        assert_eq!(line["span"]["name"], "request", "{text}");
        assert_eq!(
            line["span"]["request_id"],
            id.to_str().expect("id"),
            "{text}"
        );
        assert_eq!(line["span"]["path"], "/now", "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_still_working_after_the_limit_is_answered_503_with_retry_after_and_logged() {
        let lines = Lines::default();
        let _guard = lines.capture();
        let answer = get_path("/slow").await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            answer.headers()[header::RETRY_AFTER],
            RETRY_AFTER_SECS.to_string().as_str()
        );
        assert_eq!(answer.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let id = answer.headers()[request_log::REQUEST_ID_HEADER]
            .to_str()
            .expect("id")
            .to_owned();
        let text = lines.text();
        assert!(
            text.contains(&format!(
                "request{{request_id=\"{id}\" method=GET path=/slow}}: wecom_oidc::web::request_log: request status=503 latency_ms=30000\n"
            )),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_waits_but_ends_within_the_limit_gets_its_own_answer() {
        assert_eq!(get_path("/waits").await.status(), StatusCode::OK);
        assert_eq!(get_path("/now").await.status(), StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_counts_from_the_arrival_not_from_the_first_wait() {
        let mut edge = app();
        let call = ServiceExt::<Request<Body>>::ready(&mut edge)
            .await
            .expect("ready")
            .call(Request::get("/waits").body(Body::empty()).expect("request"));
        // The request sits unpolled for 2 s (a busy worker): 2 + 29 s is past the limit.
        tokio::time::advance(Duration::from_secs(2)).await;
        let answer = call.await.expect("response");
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn every_503_says_when_to_retry_rfc9110_10_2_3_unless_it_already_does() {
        let down = get_path("/down").await;
        assert_eq!(
            down.headers()[header::RETRY_AFTER],
            RETRY_AFTER_SECS.to_string().as_str()
        );
        assert_eq!(
            get_path("/limited").await.headers()[header::RETRY_AFTER],
            "42"
        );
        assert!(!get_path("/now")
            .await
            .headers()
            .contains_key(header::RETRY_AFTER));
    }

    #[tokio::test]
    async fn every_answer_says_nosniff_unless_its_handler_chose_otherwise() {
        for path in ["/now", "/down", "/nowhere"] {
            assert_eq!(
                get_path(path).await.headers()[header::X_CONTENT_TYPE_OPTIONS],
                "nosniff",
                "{path}"
            );
        }
        assert_eq!(
            get_path("/sniffable").await.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "other"
        );
    }

    #[tokio::test]
    async fn a_body_declared_too_long_is_refused_413_with_connection_close_rfc9112_9_6() {
        let lines = Lines::default();
        let _guard = lines.capture();
        let answer = send(
            app(),
            Request::post("/form")
                .header(header::CONTENT_LENGTH, (MAX_BODY + 1).to_string())
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(answer.headers()[header::CONNECTION], "close");
        assert_eq!(answer.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(answer
            .headers()
            .contains_key(request_log::REQUEST_ID_HEADER));
        assert!(
            lines
                .text()
                .contains("path=/form}: wecom_oidc::web::request_log: request status=413"),
            "{}",
            lines.text()
        );
    }

    #[tokio::test]
    async fn more_header_fields_than_the_limit_are_refused_431_rfc6585_5() {
        let with_fields = |n: usize| {
            let mut request = Request::get("/now");
            for i in 0..n {
                request = request.header(format!("x-field-{i}"), "v");
            }
            request.body(Body::empty()).expect("request")
        };
        let limit = crate::server::MAX_HEADERS;
        assert_eq!(
            send(app(), with_fields(limit)).await.status(),
            StatusCode::OK
        );
        let refused = send(app(), with_fields(limit + 1)).await;
        assert_eq!(
            refused.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        assert_eq!(refused.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }

    #[tokio::test]
    async fn an_http2_request_may_carry_each_cookie_as_a_field_of_its_own_rfc9113_8_2_3() {
        let mut request = Request::get("/now").version(axum::http::Version::HTTP_2);
        for i in 0..crate::server::MAX_HEADERS + 10 {
            request = request.header(header::COOKIE, format!("c{i}=v"));
        }
        let request = request.body(Body::empty()).expect("request");
        assert_eq!(send(app(), request).await.status(), StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_dropped_before_its_answer_still_gets_its_access_line_with_499() {
        let lines = Lines::default();
        let _guard = lines.capture();
        let request = Request::get("/slow")
            .header(request_log::REQUEST_ID_HEADER, "gone-client-1")
            .body(Body::empty())
            .expect("request");
        let mut edge = app();
        let pending = edge.call(request);
        // The client goes away after a second: hyper drops the response future.
        let _ = tokio::time::timeout(Duration::from_secs(1), pending).await;
        let text = lines.text();
        assert!(
            text.contains(
                "request{request_id=\"gone-client-1\" method=GET path=/slow}: wecom_oidc::web::request_log: request status=499 latency_ms=1000\n"
            ),
            "{text}"
        );
        assert_eq!(text.matches("status=").count(), 1, "{text}");
    }

    #[tokio::test]
    async fn a_streamed_body_over_the_limit_is_refused_413_with_connection_close() {
        let chunks =
            (0..MAX_BODY / 1024 + 1).map(|_| Ok::<_, Infallible>(Bytes::from(vec![b'a'; 1024])));
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let answer = send(app(), Request::post("/form").body(body).expect("request")).await;
        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(answer.headers()[header::CONNECTION], "close");
        let fits = send(
            app(),
            Request::post("/form")
                .body(Body::from(vec![b'a'; MAX_BODY]))
                .expect("request"),
        )
        .await;
        assert_eq!(fits.status(), StatusCode::OK);
        assert!(!fits.headers().contains_key(header::CONNECTION));
    }

    #[tokio::test]
    async fn the_request_id_reaches_the_handler_and_the_answer_and_a_proxy_id_is_kept() {
        let answer = get_path("/echo-id").await;
        let id = answer.headers()[request_log::REQUEST_ID_HEADER].clone();
        let body = axum::body::to_bytes(answer.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(body, id.as_bytes());
        let proxied = send(
            app(),
            Request::get("/echo-id")
                .header(request_log::REQUEST_ID_HEADER, "front-1")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(proxied.headers()[request_log::REQUEST_ID_HEADER], "front-1");
    }

    #[tokio::test]
    async fn the_issuer_path_is_routed_without_it_and_logged_as_it_arrived() {
        let lines = Lines::default();
        let _guard = lines.capture();
        assert_eq!(get_path("/sso/now").await.status(), StatusCode::OK);
        assert_eq!(get_path("/now").await.status(), StatusCode::OK);
        let text = lines.text();
        assert!(text.contains("method=GET path=/sso/now}"), "{text}");
        assert!(text.contains("method=GET path=/now}"), "{text}");
    }
}
