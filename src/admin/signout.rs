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
