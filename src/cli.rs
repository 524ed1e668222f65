//! Command-line interface: `serve` (default), `demo` and `keys`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::clock::Clock;
use crate::tokens::{KeyStatus, KeyStore, SigningAlg};

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
    /// Manage the signing keys: generate, list, rotate. Restart the server to publish changes.
    Keys(KeysArgs),
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
    /// Act on the running server through its local admin socket (`<data_dir>/run/admin.sock`,
    /// usable only by the server's own user).
    Admin(AdminArgs),
    /// Back up the running server's store and signing keys into a new directory (the server
    /// writes it, through its admin socket; it keeps serving meanwhile).
    Backup(BackupArgs),
    /// Put a backup back as the store and signing keys of the configuration; run it while the
    /// server is stopped.
    Restore(RestoreArgs),
}

/// Options of `backup`.
#[derive(Debug, Clone, clap::Args)]
pub struct BackupArgs {
    /// The new backup directory (absent or empty).
    #[arg(long)]
    pub to: PathBuf,
    /// The admin socket (default: `<data_dir>/run/admin.sock` of the configuration file).
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

/// Options of `restore`.
#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    /// The backup directory (written by `backup`).
    #[arg(long)]
    pub from: PathBuf,
    /// Replace a store and key folder that already hold data.
    #[arg(long)]
    pub force: bool,
}

/// Options of `admin`.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// The admin socket (default: `<data_dir>/run/admin.sock` of the configuration file).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// What to ask the server.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// `admin` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Show which server answers (issuer, version, process id).
    Status,
    /// Re-read the configuration file and key folder (as `kill -HUP` does) and print what
    /// changed, or every problem of the file (then the running configuration keeps serving).
    Reload,
    /// Sign a person out everywhere: their sessions, grants, refresh and access tokens end at
    /// once on every instance, and their clients get back-channel logout tokens.
    Signout(SignoutArgs),
}

/// Options of `admin signout`.
#[derive(Debug, Clone, clap::Args)]
pub struct SignoutArgs {
    /// The person's id at the upstream (for WeCom: the UserId).
    pub user: String,
    /// The connector (upstream app) that names them (default: the first configured).
    #[arg(long)]
    pub connector: Option<String>,
    /// Why, for the login event log.
    #[arg(long)]
    pub reason: Option<String>,
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
    pub app: crate::commands::snippet::SnippetApp,
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

/// Options of `keys`.
#[derive(Debug, Clone, clap::Args)]
pub struct KeysArgs {
    /// The key directory (default: `keys_dir` of the configuration file, else `keys`).
    #[arg(long, global = true)]
    pub dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub action: KeysAction,
}

/// `keys` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysAction {
    /// Add an active key for an algorithm that has none (first key: RS256).
    Generate {
        /// RS256 (default), ES256 or EdDSA (Ed25519).
        #[arg(long, default_value = "RS256", value_parser = parse_alg)]
        alg: SigningAlg,
    },
    /// Show every key: status, algorithm, kid, dates, file.
    List,
    /// Make a new key active; the previous key of that algorithm stays published (retiring) for
    /// the grace period so tokens it signed keep verifying, then goes at a later rotation.
    Rotate {
        /// RS256 (default), ES256 or EdDSA.
        #[arg(long, default_value = "RS256", value_parser = parse_alg)]
        alg: SigningAlg,
        /// How long the previous key stays published: `24h` (default), `90m`, `2d`, `3600s`.
        #[arg(long, default_value = "24h", value_parser = parse_duration_secs)]
        grace: i64,
    },
}

fn parse_alg(s: &str) -> Result<SigningAlg, String> {
    s.parse::<SigningAlg>().map_err(|e| e.to_string())
}

/// Parses `90`, `90s`, `15m`, `24h` or `2d` into seconds.
pub fn parse_duration_secs(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 24h, 90m, 2d or 3600s"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// The key directory for `keys`: `--dir`, else `keys_dir` from the configuration file (only
/// that key is read, so the rest of the file need not be complete), else `keys`.
pub fn keys_dir(args: &KeysArgs, config: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(d) = &args.dir {
        return Ok(d.clone());
    }
    let default_file = Path::new("wecom-oidc.toml");
    let file = match config {
        Some(f) => Some(f),
        None if default_file.exists() => Some(default_file),
        None => None,
    };
    if let Some(f) = file {
        let text =
            std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        let table: toml::Table = toml::from_str(&text)
            .map_err(|e| format!("{}: not valid TOML: {}", f.display(), e.message()))?;
        if let Some(v) = table.get("keys_dir") {
            return v
                .as_str()
                .map(PathBuf::from)
                .ok_or_else(|| format!("{}: keys_dir must be a string", f.display()));
        }
    }
    Ok(PathBuf::from("keys"))
}

/// Runs `keys`; returns what to print.
pub fn run_keys(
    args: &KeysArgs,
    config: Option<&Path>,
    clock: &dyn Clock,
) -> Result<String, String> {
    let dir = keys_dir(args, config)?;
    match &args.action {
        KeysAction::Generate { alg } => {
            let k = KeyStore::generate_key(&dir, *alg, clock).map_err(|e| e.to_string())?;
            Ok(format!(
                "generated {} key {} in {}\nrestart the server to publish it\n",
                k.alg,
                k.kid,
                k.path.display()
            ))
        }
        KeysAction::List => {
            let keys = KeyStore::list(&dir).map_err(|e| e.to_string())?;
            if keys.is_empty() {
                return Ok(format!(
                    "no keys in {} (one is generated at first start)\n",
                    dir.display()
                ));
            }
            Ok(render_key_list(keys, clock.now()))
        }
        KeysAction::Rotate { alg, grace } => {
            let r = KeyStore::rotate(&dir, *alg, *grace, clock).map_err(|e| e.to_string())?;
            Ok(render_rotation(
                r,
                *grace,
                "restart the server to sign with the new key",
            ))
        }
    }
}

/// What `keys rotate` prints: the new key, the retiring and removed ones, then `next_step`
/// (what the operator still has to do, if anything, for servers to sign with it).
fn render_rotation(r: crate::tokens::Rotation, grace: i64, next_step: &str) -> String {
    let mut out = format!("new active {} key {}\n", r.new_key.alg, r.new_key.kid);
    if let Some(old) = r.retired {
        out.push_str(&format!(
            "previous key {old} stays published for {grace} s (retiring)\n"
        ));
    }
    for kid in r.removed {
        out.push_str(&format!("removed expired key {kid}\n"));
    }
    out.push_str(next_step);
    out.push('\n');
    out
}

/// The `keys list` table.
fn render_key_list(keys: Vec<crate::tokens::KeyInfo>, now: i64) -> String {
    let mut out = format!(
        "{:<9} {:<6} {:<44} {:<11} {:<11} FILE\n",
        "STATUS", "ALG", "KID", "CREATED", "RETIRE_AT"
    );
    for k in keys {
        let status = match (k.status, k.retire_at) {
            (KeyStatus::Active, _) => "active",
            (KeyStatus::Retiring, Some(t)) if t <= now => "expired",
            (KeyStatus::Retiring, _) => "retiring",
        };
        let opt = |t: Option<i64>| t.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<9} {:<6} {:<44} {:<11} {:<11} {}\n",
            status,
            k.alg.as_str(),
            k.kid,
            opt(k.created_at),
            opt(k.retire_at),
            k.path.display()
        ));
    }
    out
}

/// Runs `keys` against the signing keys kept in a shared store (PostgreSQL): the same commands
/// and output as [`run_keys`]; running instances pick a change up at their next key reload, so
/// no restart is needed.
pub async fn run_keys_in_store(
    args: &KeysArgs,
    store: &dyn crate::storage::Store,
    clock: &dyn Clock,
) -> Result<String, String> {
    use crate::tokens::shared;
    let reload = "every running instance publishes it within keys_reload_interval";
    match &args.action {
        KeysAction::Generate { alg } => {
            let k = shared::generate_in_store(store, *alg, clock)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "generated {} key {} in the store\n{reload}\n",
                k.alg, k.kid
            ))
        }
        KeysAction::List => {
            let keys = shared::list_in_store(store)
                .await
                .map_err(|e| e.to_string())?;
            if keys.is_empty() {
                return Ok("no keys in the store (one is generated at first start)\n".to_owned());
            }
            Ok(render_key_list(keys, clock.now()))
        }
        KeysAction::Rotate { alg, grace } => {
            let r = shared::rotate_in_store(store, *alg, *grace, clock)
                .await
                .map_err(|e| e.to_string())?;
            Ok(render_rotation(r, *grace, reload))
        }
    }
}

#[cfg(test)]
mod keys_tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn grace_durations_parse_with_units() {
        assert_eq!(parse_duration_secs("24h"), Ok(86_400));
        assert_eq!(parse_duration_secs("90m"), Ok(5_400));
        assert_eq!(parse_duration_secs("2d"), Ok(172_800));
        assert_eq!(parse_duration_secs("3600"), Ok(3_600));
        assert!(parse_duration_secs("1w").is_err());
        assert!(parse_duration_secs("h").is_err());
        assert!(parse_duration_secs("99999999999999999999d").is_err());
    }

    #[test]
    fn keys_cli_generates_lists_and_rotates() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("k");
        let clock = ManualClock::new(1_000);
        let args = |action| KeysArgs {
            dir: Some(dir.clone()),
            action,
        };
        let out = run_keys(
            &args(KeysAction::Generate {
                alg: SigningAlg::Rs256,
            }),
            None,
            &clock,
        )
        .expect("generate");
        assert!(out.contains("generated RS256"), "{out}");
        // A second active RS256 key is a rotation, not a generation.
        assert!(run_keys(
            &args(KeysAction::Generate {
                alg: SigningAlg::Rs256
            }),
            None,
            &clock
        )
        .is_err());
        run_keys(
            &args(KeysAction::Generate {
                alg: SigningAlg::EdDsa,
            }),
            None,
            &clock,
        )
        .expect("EdDSA");
        let out = run_keys(
            &args(KeysAction::Rotate {
                alg: SigningAlg::Rs256,
                grace: 60,
            }),
            None,
            &clock,
        )
        .expect("rotate");
        assert!(out.contains("stays published"), "{out}");
        let list = run_keys(&args(KeysAction::List), None, &clock).expect("list");
        assert_eq!(list.matches("active").count(), 2, "{list}");
        assert_eq!(list.matches("retiring").count(), 1, "{list}");
    }

    #[test]
    fn keys_rotate_prints_the_new_retiring_and_removed_keys_then_the_next_step() {
        let rotation = |retired: Option<&str>, removed: &[&str]| crate::tokens::Rotation {
            new_key: crate::tokens::KeyInfo {
                kid: "NEW".into(),
                alg: SigningAlg::Es256,
                status: crate::tokens::KeyStatus::Active,
                created_at: None,
                retire_at: None,
                path: PathBuf::new(),
            },
            retired: retired.map(str::to_owned),
            removed: removed.iter().map(|k| k.to_string()).collect(),
        };
        assert_eq!(
            render_rotation(rotation(Some("OLD"), &["GONE1", "GONE2"]), 3600, "restart"),
            "new active ES256 key NEW\n\
             previous key OLD stays published for 3600 s (retiring)\n\
             removed expired key GONE1\n\
             removed expired key GONE2\n\
             restart\n"
        );
        assert_eq!(
            render_rotation(rotation(None, &[]), 60, "reload"),
            "new active ES256 key NEW\nreload\n"
        );
    }

    #[test]
    fn keys_dir_comes_from_the_config_file_when_not_given() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = tmp.path().join("c.toml");
        std::fs::write(&cfg, "keys_dir = \"/srv/oidc/keys\"\n").expect("write");
        let args = KeysArgs {
            dir: None,
            action: KeysAction::List,
        };
        assert_eq!(
            keys_dir(&args, Some(&cfg)),
            Ok(PathBuf::from("/srv/oidc/keys"))
        );
    }
}
