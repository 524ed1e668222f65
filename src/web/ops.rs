//! Operations endpoints: `/healthz` (liveness), `/readyz` (readiness: store open, keys loaded,
//! upstream token obtainable) and `/metrics` (Prometheus text format), plus the middleware that
//! counts requests by route template and status and login callbacks by outcome.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::clock::SharedClock;
use crate::connector::Connector;
use crate::metrics::Metrics;
use crate::storage::{StorageError, Store};
use crate::tokens::KeyRing;
use crate::web::login_events::EventLogState;

/// The route template of the login callback, whose answers are counted as login outcomes.
pub(crate) const CALLBACK_ROUTE: &str = "/callback/{connector}";
/// After a failed upstream check, `/readyz` repeats that answer for this many seconds instead of
/// calling the upstream again: probes every few seconds with a wrong WeCom secret would
/// otherwise get the server's IP banned from `gettoken` for an hour (wecom-api.md §1).
pub const READINESS_RETRY_SECS: i64 = 30;
/// A key no record is stored under: reading it proves the store answers without touching data.
const READINESS_PROBE_KEY: &str = "readyz-probe";

/// What the operations endpoints look at.
#[derive(Clone)]
pub struct OpsState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The signing keys.
    pub keys: Arc<KeyRing>,
    /// The upstream connectors.
    pub connectors: Vec<Arc<dyn Connector>>,
    /// The metrics registry `/metrics` renders.
    pub metrics: Arc<Metrics>,
    /// The clock.
    pub clock: SharedClock,
    /// Per connector id: when its readiness check last failed and why.
    pub recent_failures: Arc<Mutex<HashMap<String, (i64, String)>>>,
}

/// `/healthz`, `/readyz` and `/metrics`.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Liveness: the process is up and serving HTTP. Never touches dependencies, so a slow WeCom
/// does not get a healthy process restarted.
pub async fn healthz() -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({"status": "ok"})),
    )
        .into_response()
}

/// One readiness check's result.
#[derive(Debug, Serialize)]
struct Check {
    name: String,
    ok: bool,
    detail: String,
}

/// Readiness: 200 when the store answers, signing keys are loaded and every connector can
/// obtain its upstream token (WeCom: cached or fresh from `gettoken`); 503 with the failing
/// checks otherwise. Details name the failure, never a credential.
pub async fn readyz(State(s): State<OpsState>) -> Response {
    let mut checks = Vec::new();
    let store_check = match s.store.find_upstream_token(READINESS_PROBE_KEY).await {
        Ok(_) | Err(StorageError::NotFound) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    checks.push(Check {
        name: "store".into(),
        ok: store_check.is_ok(),
        detail: store_check.err().unwrap_or_else(|| "open".into()),
    });
    let keys = s.keys.current();
    let keys_ok = !keys.keys().is_empty() && !keys.active_kid().is_empty();
    checks.push(Check {
        name: "keys".into(),
        ok: keys_ok,
        detail: if keys_ok {
            format!(
                "{} key(s), active {}",
                keys.keys().len(),
                keys.signing_alg()
            )
        } else {
            "no signing key loaded".into()
        },
    });
    for c in &s.connectors {
        let now = s.clock.now();
        let remembered = s
            .recent_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(c.id())
            .filter(|(at, _)| now < at.saturating_add(READINESS_RETRY_SECS))
            .map(|(_, why)| why.clone());
        let result = match remembered {
            Some(why) => Err(format!(
                "{why} (rechecked at most every {READINESS_RETRY_SECS} s)"
            )),
            None => {
                // A configuration fault carries its fix (e.g. 60020: the trusted IP to add).
                let result = c
                    .check_ready()
                    .await
                    .map_err(|e| match c.failure_notice(&e) {
                        Some(notice) => format!("{e}. Fix: {}", notice.operator),
                        None => e.to_string(),
                    });
                let mut failures = s.recent_failures.lock().unwrap_or_else(|p| p.into_inner());
                match &result {
                    Ok(()) => {
                        failures.remove(c.id());
                    }
                    Err(e) => {
                        tracing::warn!(connector = c.id(), error = %e, "readiness check failed");
                        failures.insert(c.id().to_owned(), (now, e.clone()));
                    }
                }
                result
            }
        };
        checks.push(Check {
            name: format!("connector:{}", c.id()),
            ok: result.is_ok(),
            detail: match result {
                Ok(()) => "upstream token and data API available".into(),
                Err(e) => e,
            },
        });
    }
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({
            "status": if ready { "ready" } else { "not ready" },
            "checks": checks,
        })),
    )
        .into_response()
}

/// The metrics in the Prometheus text exposition format 0.0.4.
pub async fn metrics(State(s): State<OpsState>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        s.metrics.render(),
    )
        .into_response()
}

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
        super::login_events::record_callback(&s.events, request, next).await
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

/// What a form_post page sends the client (OAuth 2.0 Form Post Response Mode §2), attached to
/// the page's response for the login metrics and event log: a page has no `Location` to read the
/// outcome from. Holds no code or token.
#[derive(Debug, Clone)]
pub(crate) struct FormPostSent {
    /// Where the page posts to (the registered redirect URI).
    pub(crate) redirect_uri: String,
    /// The OAuth `error`, when the answer is one.
    pub(crate) error: Option<String>,
    /// The `error_description`, when given.
    pub(crate) error_description: Option<String>,
}

impl FormPostSent {
    /// The non-secret parts of `params` posted to `redirect_uri`.
    pub(crate) fn new(redirect_uri: &str, params: &[(String, String)]) -> Self {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        Self {
            redirect_uri: redirect_uri.to_owned(),
            error: get("error"),
            error_description: get("error_description"),
        }
    }
}

/// The outcome of a login callback from its answer: a redirect or form_post page carrying
/// `error` is that OAuth error (Core §3.1.2.6), any other redirect or form_post page is a
/// success, an error page is `rejected` (4xx) or `server_error` (5xx).
pub(crate) fn login_outcome(response: &Response) -> &'static str {
    let status = response.status();
    let error = if status.is_redirection() {
        response
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url::Url::parse(l).ok())
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "error")
                    .map(|(_, v)| v.into_owned())
            })
    } else if let Some(sent) = response.extensions().get::<FormPostSent>() {
        sent.error.clone()
    } else if status.is_success() {
        return "success";
    } else if status.is_server_error() {
        return "server_error";
    } else {
        return "rejected";
    };
    match error.as_deref() {
        None => "success",
        Some("access_denied") => "access_denied",
        Some("login_required") => "login_required",
        Some("temporarily_unavailable") => "temporarily_unavailable",
        Some("server_error") => "server_error",
        Some(_) => "other_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn redirect(location: &str) -> Response {
        let mut r = StatusCode::FOUND.into_response();
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_str(location).unwrap());
        r
    }

    #[test]
    fn login_outcome_reads_the_oauth_error_of_the_redirect_core_3_1_2_6() {
        assert_eq!(
            login_outcome(&redirect("https://rp.example/cb?code=x&state=y")),
            "success"
        );
        assert_eq!(
            login_outcome(&redirect(
                "https://rp.example/cb?error=access_denied&state=y"
            )),
            "access_denied"
        );
        assert_eq!(
            login_outcome(&redirect("https://rp.example/cb?error=weird")),
            "other_error"
        );
        assert_eq!(
            login_outcome(&StatusCode::BAD_REQUEST.into_response()),
            "rejected"
        );
        assert_eq!(
            login_outcome(&StatusCode::SERVICE_UNAVAILABLE.into_response()),
            "server_error"
        );
    }

    fn form_post(params: &[(&str, &str)]) -> Response {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut r = StatusCode::OK.into_response();
        r.extensions_mut()
            .insert(FormPostSent::new("https://rp.example/cb", &params));
        r
    }

    #[test]
    fn login_outcome_reads_the_oauth_error_of_a_form_post_page_form_post_2() {
        assert_eq!(
            login_outcome(&form_post(&[("code", "x"), ("state", "y")])),
            "success"
        );
        assert_eq!(
            login_outcome(&form_post(&[("error", "access_denied"), ("state", "y")])),
            "access_denied"
        );
    }
}
