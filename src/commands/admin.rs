//! `wecom-oidc admin …`: asks the running server through its admin socket (`crate::admin`).

use std::path::{Path, PathBuf};

use axum::http::Method;

use crate::admin::client;
use crate::cli::{AdminArgs, AdminCommand};
use crate::config;

/// Where the running server's admin socket is: `--socket`, else the configuration's data
/// directory.
pub fn socket_of(config_path: Option<&Path>, socket: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(socket) = socket {
        return Ok(socket);
    }
    let path = config_path.unwrap_or(Path::new("wecom-oidc.toml"));
    let config = config::load(path).map_err(|e| e.to_string())?;
    Ok(crate::admin::socket_path(&config))
}

/// Runs one `admin` subcommand and prints the server's answer.
pub async fn run(
    config_path: Option<&Path>,
    args: AdminArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let socket = socket_of(config_path, args.socket)?;
    let (method, path, body) = match args.command {
        AdminCommand::Status => (Method::GET, "/v1/status", None),
        AdminCommand::Signout(a) => (
            Method::POST,
            "/v1/signout",
            Some(serde_json::json!({
                "user": a.user,
                "connector": a.connector,
                "reason": a.reason,
                "actor": actor(),
            })),
        ),
    };
    let answer = client::request(&socket, method, path, body).await?;
    let text = String::from_utf8_lossy(&answer.body);
    if !answer.status.is_success() {
        return Err(format!("the server refused ({}): {text}", answer.status).into());
    }
    println!("{text}");
    Ok(())
}

/// Who runs the command, for the event log: the login name of this process (the socket only
/// admits the server's own user or root, so this says which person used that account).
fn actor() -> String {
    let login = ["SUDO_USER", "LOGNAME", "USER"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()));
    match login {
        Some(name) => format!("{name} (wecom-oidc admin)"),
        None => "wecom-oidc admin".to_owned(),
    }
}
