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
        AdminCommand::Reload => (
            Method::POST,
            "/v1/reload",
            Some(serde_json::json!({ "actor": actor() })),
        ),
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
        return Err(refusal(answer.status, &text).into());
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

/// The server's refusal for a person: its description and, for a refused configuration, one
/// problem per line (as `check` and a start print them).
fn refusal(status: axum::http::StatusCode, body: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return format!("the server refused ({status}): {body}");
    };
    // The error code (what a script matches on) and its description (what a person reads).
    let what = match (v["error"].as_str(), v["error_description"].as_str()) {
        (Some(code), Some(description)) => format!("{code}: {description}"),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => body.to_owned(),
    };
    let mut out = format!("the server refused ({status}): {what}");
    for p in v["problems"].as_array().into_iter().flatten() {
        out.push_str("\n  - ");
        out.push_str(p.as_str().unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_configuration_is_printed_one_problem_per_line() {
        let body = serde_json::json!({
            "error": "invalid_configuration",
            "error_description": "f.toml has 2 problem(s)",
            "problems": ["issuer: must use https", "clients[0].id: is missing"],
        });
        let text = refusal(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            &body.to_string(),
        );
        assert_eq!(
            text,
            "the server refused (422 Unprocessable Entity): invalid_configuration: f.toml has 2 problem(s)\n  - issuer: must use https\n  - clients[0].id: is missing"
        );
    }
}
