//! `POST /v1/signout`: sign one person out everywhere, at an operator's request, through the
//! provider's one sign-out ([`crate::provider::offboarding`]) — the same effects as when the
//! upstream reports the person gone, recorded in the login event log with the actor.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::AdminContext;
use crate::provider::offboarding::{Reach, SignOut, SignOutError};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOutRequest {
    /// The connector (upstream app) that names the person; default: the first configured.
    #[serde(default)]
    pub connector: Option<String>,
    /// The person's id at the upstream (for WeCom: the UserId).
    pub user: String,
    /// Why, for the event log.
    #[serde(default)]
    pub reason: Option<String>,
    /// Who asks, for the event log.
    #[serde(default)]
    pub actor: Option<String>,
}

/// The longest user id, reason or actor accepted (WeCom's UserIds are at most 64 bytes).
const MAX_FIELD: usize = 256;

/// An admin API error: `{"error": …, "error_description": …}`.
pub(super) fn error(status: StatusCode, code: &str, description: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": code, "error_description": description.into() })),
    )
        .into_response()
}

/// `POST /v1/signout`.
pub(super) async fn signout(State(ctx): State<AdminContext>, body: Bytes) -> Response {
    let req: SignOutRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!(
                "the body must be {{\"user\": …, \"connector\"?, \"reason\"?, \"actor\"?}}: {e}"
            ),
            )
        }
    };
    let user = req.user.trim();
    let reason = req.reason.as_deref().map(str::trim).unwrap_or_default();
    let actor = req.actor.as_deref().map(str::trim).unwrap_or_default();
    if user.is_empty() {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "user is empty");
    }
    if [user, reason, actor]
        .iter()
        .any(|f| f.len() > MAX_FIELD || f.chars().any(char::is_control))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("user, reason and actor must be at most {MAX_FIELD} bytes without control characters"),
        );
    }
    let provider = &ctx.provider;
    let connector_id = req
        .connector
        .as_deref()
        .unwrap_or_else(|| provider.default_connector_id());
    let Some(connector) = provider.connector(connector_id) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_connector",
            format!("no upstream app (connector) {connector_id:?} is configured"),
        );
    };
    let user_id = match connector.local_user_id(user).await {
        Ok(id) => id,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                format!("cannot tell who {user:?} is: {e}"),
            )
        }
    };
    let done = provider
        .sign_out(&SignOut {
            connector_id,
            user_id: &user_id,
            reach: Reach::Realm,
            reason: if reason.is_empty() {
                "an operator's request"
            } else {
                reason
            },
            actor: if actor.is_empty() {
                "an operator"
            } else {
                actor
            },
        })
        .await;
    match done {
        Ok(summary) => Json(summary).into_response(),
        Err(SignOutError::UnknownConnector(id)) => error(
            StatusCode::NOT_FOUND,
            "unknown_connector",
            format!("no upstream app (connector) {id:?} is configured"),
        ),
        Err(e @ SignOutError::Store(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            format!("{e}; repeating the sign-out is safe"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::provider::client::ClientSettings;
    use crate::provider::testing::{app_client, harness};
    use crate::provider::Lifetimes;

    async fn call(ctx: &AdminContext, body: &str) -> (StatusCode, serde_json::Value) {
        crate::admin::post_in_process(
            super::super::router(ctx.clone()),
            "/v1/signout",
            body.to_owned(),
        )
        .await
    }

    #[tokio::test]
    async fn signout_answers_a_summary_and_refuses_bad_requests_with_json_errors() {
        let h = harness(
            vec![app_client(ClientSettings::default())],
            Lifetimes::default(),
        );
        h.seed_refresh_token("app", "grant-1").await;
        let clock: crate::clock::SharedClock = Arc::new(h.clock.clone());
        let (provider, _keys) = h.into_shared();
        let dir = tempfile::tempdir().unwrap();
        let ctx = AdminContext {
            config: Arc::new(crate::testkit::config(
                "https://sso.example.com",
                "127.0.0.1:0".parse().unwrap(),
                dir.path(),
                Vec::new(),
                Vec::new(),
            )),
            store: provider.store().clone(),
            provider,
            clock,
            reloader: Default::default(),
        };
        for (body, status, error) in [
            ("not json", StatusCode::BAD_REQUEST, "invalid_request"),
            (
                r#"{"user": " "}"#,
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
            (
                r#"{"user": "a\nb"}"#,
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
            (
                r#"{"user": "x", "extra": 1}"#,
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
            (
                r#"{"user": "zhangsan", "connector": "nope"}"#,
                StatusCode::NOT_FOUND,
                "unknown_connector",
            ),
        ] {
            let (s, v) = call(&ctx, body).await;
            assert_eq!(
                (s, v["error"].as_str()),
                (status, Some(error)),
                "{body}: {v}"
            );
            assert!(v["error_description"].is_string(), "{v}");
        }
        let (s, v) = call(
            &ctx,
            r#"{"user": "zhangsan", "reason": "left", "actor": "ops"}"#,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            v,
            serde_json::json!({"sessions": 0, "grants": 1, "refresh_tokens": 1, "logout_notifications": 0})
        );
        assert!(ctx.store.is_grant_revoked("grant-1").await.unwrap());
    }
}
