//! `wecom-oidc backup --to DIR` (asks the running server, `crate::admin`) and
//! `wecom-oidc restore --from DIR [--force]` (writes the stopped server's directories,
//! `crate::backup`).

use std::path::Path;

use axum::http::Method;

use crate::admin::client;
use crate::backup;
use crate::cli::{BackupArgs, RestoreArgs};
use crate::config::{self, StoreLocation};

/// Asks the running server for a backup into `--to` and prints its summary.
pub async fn backup(
    config_path: Option<&Path>,
    args: BackupArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let socket = super::admin::socket_of(config_path, args.socket)?;
    let to = backup::absolute(&args.to)?;
    let body = serde_json::json!({ "to": to });
    let answer = client::request(&socket, Method::POST, "/v1/backup", Some(body)).await?;
    let text = String::from_utf8_lossy(&answer.body);
    if !answer.status.is_success() {
        return Err(format!("the server refused the backup ({}): {text}", answer.status).into());
    }
    println!("{text}");
    Ok(())
}

/// Restores `--from` into the configuration's data directory and key folder.
pub fn restore(
    config_path: Option<&Path>,
    args: &RestoreArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = config::load(config_path.unwrap_or(Path::new("wecom-oidc.toml")))?;
    if config.store != StoreLocation::Sled {
        return Err(
            "the store is PostgreSQL: restore it with pg_restore (see docs/deploying.md)".into(),
        );
    }
    let restored = backup::restore(&args.from, &config.data_dir, &config.keys_dir, args.force)?;
    println!("{}", serde_json::to_string_pretty(&restored)?);
    Ok(())
}
