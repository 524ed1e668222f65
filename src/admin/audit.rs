//! The audit trail of the admin routes: every request that changes something (any method but
//! `GET`) is written to the store's audit log with who asked, what, of whom, and how it ended,
//! and logged. It wraps the admin router, so a request from the CLI over the socket and one from
//! the console in-process leave the same record.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::AdminContext;
use crate::storage::AuditEvent;

/// The largest request or answer body read for the record (admin bodies are small).
const MAX_BODY: usize = 1 << 20;
/// The longest `detail` kept (the answer, or its error description).
const MAX_DETAIL: usize = 600;
/// Who asked, when the request does not say: only the server's own user can reach the socket.
pub const SOCKET_ACTOR: &str = "admin socket";

/// Records every non-`GET` request and its answer.
pub async fn record(State(ctx): State<AdminContext>, req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    let action = action_of(req.uri().path());
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let asked: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let text = |k: &str| asked.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let actor = text("actor").unwrap_or_else(|| SOCKET_ACTOR.to_owned());
    let target = text("user").or_else(|| text("alg")).or_else(|| text("to"));
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = response.status();
    let (parts, body) = response.into_parts();
    let answer = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let answered: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
    let (outcome, detail) = if status.is_success() {
        ("ok".to_owned(), compact(&answered))
    } else {
        let code = answered
            .get("error")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("http {}", status.as_u16()));
        let why = answered
            .get("error_description")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| compact(&answered));
        (code, why)
    };
    let now = ctx.clock.now();
    tracing::info!(
        target: "audit",
        actor = %actor,
        action = %action,
        target = target.as_deref().unwrap_or("-"),
        outcome = %outcome,
        "admin action"
    );
    let event = AuditEvent {
        at: now,
        actor,
        action,
        target,
        outcome,
        detail: (!detail.is_empty()).then_some(detail),
        expires_at: now.saturating_add(ctx.config.login_event_retention),
    };
    if let Err(e) = ctx.store.create_audit_event(&event).await {
        tracing::error!(error = %e, "cannot write the audit log");
    }
    Response::from_parts(parts, Body::from(answer))
}

/// `/v1/keys/rotate` → `keys.rotate`.
fn action_of(path: &str) -> String {
    path.trim_start_matches("/v1/")
        .trim_matches('/')
        .replace('/', ".")
}

/// The JSON on one line, cut to [`MAX_DETAIL`] characters.
fn compact(v: &serde_json::Value) -> String {
    if v.is_null() {
        return String::new();
    }
    let s = v.to_string();
    match s.char_indices().nth(MAX_DETAIL) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_named_after_their_route() {
        assert_eq!(action_of("/v1/keys/rotate"), "keys.rotate");
        assert_eq!(action_of("/v1/signout"), "signout");
    }

    #[test]
    fn details_are_cut_on_a_character_boundary() {
        let long = serde_json::json!("字".repeat(2 * MAX_DETAIL));
        let d = compact(&long);
        assert!(d.ends_with('…'));
        assert_eq!(d.chars().count(), MAX_DETAIL + 1);
    }
}
