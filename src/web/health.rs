//! Health and metrics endpoints: `/healthz` (liveness), `/readyz` (readiness: store open, keys
//! loaded, upstream token obtainable) and `/metrics` (Prometheus text format). The middleware
//! that feeds the metrics is [`super::observe`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::clock::SharedClock;
use crate::connector::Connector;
use crate::metrics::Metrics;
use crate::storage::{StorageError, Store};
use crate::tokens::KeyRing;

/// After a failed upstream check, `/readyz` repeats that answer for this many seconds instead of
/// calling the upstream again: probes every few seconds with a wrong WeCom secret would
/// otherwise get the server's IP banned from `gettoken` for an hour (wecom-api.md §1).
pub const READINESS_RETRY_SECS: i64 = 30;
/// A key no record is stored under: reading it proves the store answers without touching data.
const READINESS_PROBE_KEY: &str = "readyz-probe";

/// What the health and metrics endpoints look at.
#[derive(Clone)]
pub struct HealthState {
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
pub fn router(state: HealthState) -> Router {
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
pub async fn readyz(State(s): State<HealthState>) -> Response {
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
        let ok = result.is_ok();
        let detail = match result {
            Ok(()) => match c.readiness_note().await {
                Some(note) => note,
                None => "upstream token and data API available".into(),
            },
            Err(e) => e,
        };
        checks.push(Check {
            name: format!("connector:{}", c.id()),
            ok,
            detail,
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
pub async fn metrics(State(s): State<HealthState>) -> Response {
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
