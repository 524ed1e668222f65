//! The one middleware that looks at every routed request: counts each request under its route
//! template and status, and each login callback under its outcome and in the login event log
//! ([`super::login_events`]).

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::login_events::{login_outcome, record_callback, EventLogState};
use crate::metrics::Metrics;

/// The route template of the login callback, whose answers are counted as login outcomes.
pub(crate) const CALLBACK_ROUTE: &str = "/callback/{connector}";

/// What [`observe`] records into.
#[derive(Clone)]
pub struct ObserveState {
    /// Request and login counters.
    pub metrics: Arc<Metrics>,
    /// The login event log.
    pub events: EventLogState,
}

/// Middleware: counts each request under its route template (never the concrete path, which
/// would make one series per code or token), and each login callback under its outcome and in
/// the login event log. One middleware for both, because every layer on the router is a boxed
/// service cloned on each request (docs/performance.md, "middleware").
pub async fn observe(State(s): State<ObserveState>, request: Request, next: Next) -> Response {
    // Custom methods are folded into one label by the registry. The method is a `Method`
    // (cheap to clone) and the route an `Arc<str>`: nothing is allocated per request.
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let is_callback = route == CALLBACK_ROUTE;
    let response = if is_callback {
        record_callback(&s.events, request, next).await
    } else {
        next.run(request).await
    };
    s.metrics
        .record_request(method.as_str(), route, response.status().as_u16());
    if is_callback {
        s.metrics.record_login(login_outcome(&response));
    }
    response
}
