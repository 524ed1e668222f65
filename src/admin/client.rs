//! The CLI's side of the admin socket: one request, one answer.

use std::path::Path;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// Why an admin request failed before the server answered.
#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    /// No server answers on the socket.
    #[error("no running server answers on {path} ({source}); start it, or pass the --config of the running server")]
    Unreachable {
        /// The socket path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The conversation broke off.
    #[error("admin request failed: {0}")]
    Http(String),
}

/// The server's answer: status and body.
#[derive(Debug)]
pub struct AdminResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body (JSON for every route).
    pub body: bytes::Bytes,
}

/// The largest answer read (a status, a list of sessions, a backup summary).
const MAX_ANSWER: usize = 16 << 20;

/// Sends one request to the server behind `socket`; `body`, when given, is sent as JSON.
pub async fn request(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<AdminResponse, AdminClientError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|source| AdminClientError::Unreachable {
            path: socket.display().to_string(),
            source,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| AdminClientError::Http(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "admin.local");
    let body = match body {
        Some(v) => {
            builder = builder.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let req = builder
        .body(body)
        .map_err(|e| AdminClientError::Http(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| AdminClientError::Http(e.to_string()))?;
    let status = resp.status();
    let body = axum::body::to_bytes(Body::new(resp.into_body()), MAX_ANSWER)
        .await
        .map_err(|e| AdminClientError::Http(e.to_string()))?;
    driver.abort();
    Ok(AdminResponse { status, body })
}
