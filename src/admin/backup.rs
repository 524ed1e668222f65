//! `POST /v1/backup` `{"to": "<absolute dir>"}`: the running server writes a backup of its
//! store and key folder into a new directory (`crate::backup`) and answers its summary.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::AdminContext;
use crate::backup::{self, BackupError};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BackupRequest {
    /// The new backup directory (absolute: the server's working directory is not the caller's).
    to: std::path::PathBuf,
}

pub(super) async fn backup(
    State(ctx): State<AdminContext>,
    body: Result<Json<BackupRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(body) => body,
        Err(e) => return refusal(StatusCode::BAD_REQUEST, "invalid_request", &e.body_text()),
    };
    let now = ctx.clock.now();
    match backup::backup(ctx.store.as_ref(), &ctx.config.keys_dir, &req.to, now).await {
        Ok(summary) => {
            tracing::info!(
                to = %summary.to,
                records = summary.store.records,
                took_ms = summary.took_ms,
                "backup written"
            );
            Json(summary).into_response()
        }
        Err(e) => {
            tracing::warn!(to = %req.to.display(), error = %e, "backup failed");
            let (status, code) = match e {
                BackupError::Refused(_) => (StatusCode::CONFLICT, "invalid_target"),
                BackupError::Unsupported(_) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_store")
                }
                BackupError::Failed(_) => (StatusCode::UNPROCESSABLE_ENTITY, "backup_failed"),
            };
            refusal(status, code, &e.to_string())
        }
    }
}

fn refusal(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": error, "error_description": description })),
    )
        .into_response()
}
