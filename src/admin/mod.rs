//! The local admin endpoint: HTTP/1.1 over a Unix socket in the data directory.
//!
//! Commands that act on a running server (sign a person out everywhere, back up the store,
//! reload the configuration, `admin status`) cannot open the store themselves — sled allows one
//! process — so they ask the server through this socket. Who may ask is decided by the
//! operating system: the socket lives in a directory only the server's user can enter (0700),
//! and every connection's peer credentials are checked against that user as well, so a local
//! user of another account is refused even if the directory's mode is loosened by hand.
//!
//! The socket serves only [`router`]'s routes, never the public provider routes, and the public
//! listener never serves these.

pub mod audit;
mod backup;
pub mod client;
mod error;
pub mod keys;
mod signout;
mod socket;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::provider::Provider;
use crate::storage::Store;

pub use error::AdminError;
pub use signout::SignOutRequest;
pub use socket::{bind, serve, spawn, AdminListener, AdminSocketError};

/// Posts `json_body` to `path` of the admin router in-process (the console's actions go this
/// way, so they share the CLI's implementation and audit trail): the status and the answer's
/// JSON (`Null` when the answer is not JSON).
pub async fn post_in_process(
    router: Router,
    path: &str,
    json_body: String,
) -> (StatusCode, serde_json::Value) {
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .method(axum::http::Method::POST)
        .uri(path)
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(json_body));
    let Ok(req) = req else {
        return (StatusCode::INTERNAL_SERVER_ERROR, serde_json::Value::Null);
    };
    let Ok(resp) = router.oneshot(req).await;
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

/// Where the admin socket of a server with this configuration lives.
pub fn socket_path(config: &Config) -> PathBuf {
    socket_path_in(&config.data_dir)
}

/// The admin socket below a data directory: `<data_dir>/run/admin.sock`.
pub fn socket_path_in(data_dir: &Path) -> PathBuf {
    data_dir.join("run").join("admin.sock")
}

/// What the admin routes work on: the running server's own parts.
#[derive(Clone)]
pub struct AdminContext {
    /// The running configuration.
    pub config: Arc<Config>,
    /// The OIDC core.
    pub provider: Arc<Provider>,
    /// The store the server serves from.
    pub store: Arc<dyn Store>,
    /// The server's clock.
    pub clock: SharedClock,
    /// Re-reads the configuration file and key folder (`POST /v1/reload`). Set by `serve`
    /// once it knows the file; empty for a server not started from one (the demo).
    pub reloader: ReloaderSlot,
}

/// Where the server's [`crate::reload::Reloader`] goes once it is made.
pub type ReloaderSlot = Arc<std::sync::OnceLock<Arc<crate::reload::Reloader>>>;

/// The admin routes, under `/v1/`. Every request that changes something is written to the
/// audit log ([`audit`]).
pub fn router(ctx: AdminContext) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/backup", post(backup::backup))
        .route("/v1/signout", axum::routing::post(signout::signout))
        .route("/v1/keys/rotate", post(keys::rotate))
        .route("/v1/reload", post(reload))
        // After every route: a route added below this line would not be audited.
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            audit::record,
        ))
        .with_state(ctx)
}

/// `GET /v1/status`: enough to tell the CLI it reached the right server.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Status {
    /// The issuer the server serves.
    pub issuer: String,
    /// The server's version.
    pub version: String,
    /// The server's process id.
    pub pid: u32,
}

async fn status(axum::extract::State(ctx): axum::extract::State<AdminContext>) -> Json<Status> {
    Json(Status {
        issuer: ctx.config.issuer.to_string(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: std::process::id(),
    })
}

/// The body of `POST /v1/reload`.
#[derive(Debug, Default, Deserialize)]
pub struct ReloadRequest {
    /// Who asks (logged with the outcome).
    #[serde(default)]
    pub actor: Option<String>,
}

/// `POST /v1/reload`: 200 with what changed, or 422 with every problem of the file (the
/// running configuration keeps serving).
async fn reload(
    axum::extract::State(ctx): axum::extract::State<AdminContext>,
    body: Option<Json<ReloadRequest>>,
) -> Response {
    let actor = body
        .and_then(|Json(b)| b.actor)
        .unwrap_or_else(|| "admin socket".to_owned());
    let Some(reloader) = ctx.reloader.get().cloned() else {
        return (
            StatusCode::CONFLICT,
            Json(serde_json::json!({
                "error": "not_supported",
                "error_description": "this server was not started from a configuration file",
            })),
        )
            .into_response();
    };
    match reloader.reload(&actor).await {
        Ok(report) => Json(report).into_response(),
        Err(refused) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({
                "error": "invalid_configuration",
                "error_description": format!("{} has {} problem(s); the running configuration keeps serving", refused.file, refused.problems.len()),
                "problems": refused.problems,
            })),
        )
            .into_response(),
    }
}
