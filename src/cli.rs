//! Command-line interface: `serve` (default) and `demo`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// An OpenID Connect provider that logs people in with WeCom (企业微信).
#[derive(Debug, Parser)]
#[command(name = "wecom-oidc", version, about)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "WECOM_OIDC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on stderr: `text` for people, `json` (one object per line) for collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "WECOM_OIDC_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the request span's fields (request_id, method, path).
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the provider from the configuration file (default `wecom-oidc.toml`).
    Serve,
    /// Run the provider with a built-in WeCom simulator and a demo client: try everything on one
    /// machine, no WeCom account needed. `--config` adds the `[[clients]]` of that file.
    Demo(DemoArgs),
    /// Check the configuration: validate the file, ask WeCom for a token and explain any error
    /// in plain words (zh/en), print the trusted domain and callback URL to enter in the WeCom
    /// admin console. Exits non-zero when logins cannot work.
    Check,
    /// Print a ready configuration block for an application (Grafana, GitLab, oauth2-proxy,
    /// mod_auth_openidc, JupyterHub, Synapse) that logs in through this provider.
    Snippet(SnippetArgs),
    /// Show the registered clients (ids, types, redirect URIs; never secrets).
    Clients(ClientsArgs),
    /// List the newest login events (who, which client, when, from where, outcome, reason)
    /// from the store; run it while the server is stopped.
    Events(EventsArgs),
}

/// Options of `events`.
#[derive(Debug, Clone, clap::Args)]
pub struct EventsArgs {
    /// How many events, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Options of `snippet`.
#[derive(Debug, Clone, clap::Args)]
pub struct SnippetArgs {
    /// The application to configure.
    #[arg(value_enum)]
    pub app: crate::ops::snippet::SnippetApp,
    /// The client id (from `[[clients]]`) the application uses.
    #[arg(long)]
    pub client: String,
}

/// Options of `clients`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientsArgs {
    /// What to do with the clients.
    #[command(subcommand)]
    pub command: ClientsCommand,
}

/// `clients` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ClientsCommand {
    /// List every registered client.
    List,
}

/// Options of `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Issuer URL (what browsers and clients use to reach this server).
    /// Default: http://localhost:PORT, or http://ADDR:PORT when listening on a specific address.
    #[arg(long)]
    pub issuer: Option<String>,
    /// Make the simulated WeCom login pages complete at once as this member (for unattended
    /// clients that only follow redirects), e.g. `zhangsan`.
    #[arg(long)]
    pub auto_login: Option<String>,
    /// Keep the demo's keys and store here (default: a fresh temporary folder).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}
