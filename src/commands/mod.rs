//! Operator commands beside `serve` and `demo`: the `check` doctor, config `snippet`s for common
//! relying parties and the `clients list` view. They print for a person at a terminal and
//! never show a secret.

pub mod admin;
pub mod app_checks;
pub mod backup;
pub mod clients;
pub mod doctor;
pub mod login_events;
pub mod snippet;

use std::path::Path;

use crate::config;

/// `wecom-oidc snippet APP --client ID`: prints the block on stdout, remarks on stderr.
pub fn run_snippet(
    config_path: Option<&Path>,
    app: snippet::SnippetApp,
    client_id: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = config::load(config_path.unwrap_or(Path::new("wecom-oidc.toml")))?;
    let client = cfg
        .clients
        .iter()
        .find(|c| c.id == client_id)
        .ok_or_else(|| {
            let known: Vec<&str> = cfg.clients.iter().map(|c| c.id.as_str()).collect();
            format!(
                "no client {client_id:?} in the configuration (registered: {})",
                known.join(", ")
            )
        })?;
    // Another connector type than WeCom: assume no e-mail source (the snippet then says how the
    // application copes without one).
    let facts = match app_checks::wecom_app_of(&cfg, client) {
        Some(wecom) => snippet::ProviderFacts::of(wecom),
        None => snippet::ProviderFacts {
            email: crate::connector::wecom::EmailPolicy::Upstream,
            email_verified: false,
        },
    };
    let s = snippet::render_for(app, &cfg.issuer, client, &facts);
    print!("{}", s.text);
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

/// `wecom-oidc clients list`.
pub fn run_clients_list(config_path: Option<&Path>) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = config::load(config_path.unwrap_or(Path::new("wecom-oidc.toml")))?;
    print!("{}", clients::list(&cfg));
    Ok(())
}

/// `wecom-oidc events`: reads the configured store. sled allows one process at a time, so with
/// sled this runs while the server is stopped (or against a copy of `data_dir`); PostgreSQL may
/// be read while the servers run.
pub async fn run_events(
    config_path: Option<&Path>,
    limit: usize,
    json: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = config::load(config_path.unwrap_or(Path::new("wecom-oidc.toml")))?;
    let store = crate::app::open_store(&cfg)
        .await
        .map_err(|e| match cfg.store {
            config::StoreLocation::Sled => {
                format!("{e}; if the server is running, stop it first or point data_dir at a copy")
            }
            config::StoreLocation::Postgres(_) => e.to_string(),
        })?;
    let events = store.list_login_events(limit).await?;
    if json {
        print!("{}", login_events::json_lines(&events));
    } else {
        print!("{}", login_events::table(&events));
    }
    Ok(())
}
