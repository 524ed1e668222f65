//! The admin routes' error answer: `{"error": "...", "error_description": "..."}` with a 4xx
//! (or a 500 for the server's own failure), as OAuth errors look, so the CLI and the console
//! read every route's failure the same way.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;

/// A failed admin request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The error code (`invalid_request`, `server_error` …).
    pub error: &'static str,
    /// What went wrong, in words.
    pub description: String,
}

impl AdminError {
    /// A request the route cannot act on (400 `invalid_request`).
    pub fn invalid_request(description: impl Into<String>) -> Self {
        AdminError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: description.into(),
        }
    }

    /// A failure of the server's own (500 `server_error`); the description names the cause,
    /// which for keys and the store never holds key material.
    pub fn server(cause: impl std::fmt::Display) -> Self {
        AdminError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: cause.to_string(),
        }
    }

    /// Reads a JSON request body (an empty body is `{}`), refusing anything else with
    /// `invalid_request` instead of axum's plain-text rejection.
    pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            body
        };
        serde_json::from_slice(body).map_err(|e| {
            AdminError::invalid_request(format!("the body is not the expected JSON: {e}"))
        })
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({
                "error": self.error,
                "error_description": self.description,
            })),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_is_an_empty_object_and_garbage_is_invalid_request() {
        let v: serde_json::Value = AdminError::parse_body(b"  ").unwrap();
        assert_eq!(v, serde_json::json!({}));
        let e = AdminError::parse_body::<serde_json::Value>(b"{nope").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.error, "invalid_request");
    }
}
