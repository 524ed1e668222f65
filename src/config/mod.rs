//! The configuration file (TOML) and its validation. `load` reports every problem at once,
//! each naming its key, so an operator fixes the file in one pass.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use std::sync::Arc;

use crate::connector::registry::ConnectorConfig;
use crate::provider::{Client, Lifetimes, SessionSettings};
use crate::secret::Secret;
use crate::web::rate_limit::RateLimits;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Issuer identifier, no trailing slash.
    pub issuer: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the embedded store lives.
    pub data_dir: PathBuf,
    /// Which store holds the state (`store =`): sled in `data_dir` unless a PostgreSQL URL is
    /// given.
    pub store: StoreLocation,
    /// Where signing keys live.
    pub keys_dir: PathBuf,
    /// The upstreams (`[[connectors]]`), in configuration order; the first is the default for
    /// clients that name none. Never empty.
    pub connectors: Vec<Arc<dyn ConnectorConfig>>,
    /// Deprecated forms found in the file, each with its replacement (logged at start).
    pub deprecations: Vec<String>,
    /// Registered clients.
    pub clients: Vec<Client>,
    /// Credential lifetimes.
    pub lifetimes: Lifetimes,
    /// Provider session lifetimes (`[session]`).
    pub session: SessionSettings,
    /// Rate limits on `/token` and the login callback (`[limits]`).
    pub limits: RateLimits,
    /// How long login events are kept, in seconds (`[events] retention_days`).
    pub login_event_retention: i64,
    /// `[ui] playground`: the operators' "try a login" page at `/playground` (off by default).
    pub playground: bool,
    /// `[admin]`: the web console at `/admin` and who may use it; `None` (the default): no
    /// console.
    pub admin: Option<AdminSettings>,
    /// `keys_reload_interval`: how often (seconds) a running instance re-reads the signing keys
    /// of a shared store, i.e. how soon a `keys rotate` reaches every instance.
    pub keys_reload_interval: u64,
    /// `sled_cache_mb`: the page cache of the embedded sled store, in MiB
    /// ([`DEFAULT_SLED_CACHE_MB`] unless set; unused with PostgreSQL).
    pub sled_cache_mb: u64,
}

/// Where the provider's state lives: top-level `store` (absent: sled in `data_dir`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded sled database in `data_dir` (one instance).
    #[default]
    Sled,
    /// PostgreSQL, for one or several instances.
    Postgres(PostgresLocation),
}

/// `store = "postgres://user@host:port/db"`, with the password from the environment.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresLocation {
    /// The URL as configured (it holds no password: one in it is refused).
    pub url: String,
    /// From the variable `store_password_env` names, else `PGPASSWORD`; none for
    /// password-less (e.g. peer or certificate) logins.
    pub password: Option<Secret>,
}

// The URL holds no secret; the password is `Secret`, whose Debug is redacted anyway.
impl std::fmt::Debug for PostgresLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLocation")
            .field("url", &self.url)
            .field("password", &self.password)
            .finish()
    }
}

impl PostgresLocation {
    /// The driver's connection config: the URL's settings plus the password.
    pub fn connect_config(&self) -> Result<tokio_postgres::Config, String> {
        let mut config = crate::storage::postgres::parse_url(&self.url)?;
        if let Some(pw) = &self.password {
            config.password(pw.expose());
        }
        Ok(config)
    }
}

/// Default `[events] retention_days`.
pub const DEFAULT_EVENT_RETENTION_DAYS: i64 = 30;

/// The sled page cache unless `sled_cache_mb` says otherwise (see `storage::sled_store`).
pub const DEFAULT_SLED_CACHE_MB: u64 = crate::storage::sled_store::DEFAULT_CACHE_BYTES >> 20;

/// Every problem found in a configuration file.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigErrors {
    /// Which file.
    pub file: String,
    /// One line per problem, each starting with the key it concerns.
    pub problems: Vec<String>,
}

impl ConfigErrors {
    fn render(&self) -> String {
        let mut s = format!("{} has {} problem(s):", self.file, self.problems.len());
        for p in &self.problems {
            s.push_str("\n  - ");
            s.push_str(p);
        }
        s
    }
}

/// Reads and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        file: file.clone(),
        problems: vec![format!("cannot read the file: {e}")],
    })?;
    parse(&text, &file, &|name| std::env::var(name).ok())
}

/// Parses and validates configuration text; `env` looks up environment variables (injected so
/// tests need not touch the process environment).
pub fn parse(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    validated(text, file, env, |v, table| v.config(table))
}

/// Parses only the `[[clients]]` of a file (the demo's `--config` adds them to its own client).
pub fn parse_clients(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Client>, ConfigErrors> {
    validated(text, file, env, |v, table| Some(v.clients(table)))
}

/// What a demo's `--config` file adds: clients, and optionally `[limits]` and `[tokens]`.
pub type DemoFile = (Vec<Client>, Option<RateLimits>, Option<Lifetimes>);

/// What the demo takes from its `--config` file: the `[[clients]]` and, optionally, `[limits]`
/// (load tests raise the rate limits) and `[tokens]` (interop tests shorten the device flow's
/// timings); every other key is ignored.
pub fn parse_demo_file(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<DemoFile, ConfigErrors> {
    validated(text, file, env, |v, table| {
        let clients = v.clients(table);
        let limits = v
            .section(table, "limits", None, |v, t| Some(Some(v.limits(t))))
            .flatten();
        // The device flow's timings, so unattended clients can see `slow_down` and expiry soon.
        let lifetimes = v
            .section(table, "tokens", None, |v, t| Some(v.lifetimes(t)))
            .flatten();
        Some((clients, limits, lifetimes))
    })
}

/// Reads `text` as TOML and `read`s it with a fresh validator: what `read` made, or every
/// problem named on the way (a value is only returned when there are none).
fn validated<T>(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
    read: impl FnOnce(&mut Validator<'_>, &Table) -> Option<T>,
) -> Result<T, ConfigErrors> {
    let table: Table = toml::from_str(text).map_err(|e| ConfigErrors {
        file: file.to_string(),
        problems: vec![format!("not valid TOML: {}", e.message())],
    })?;
    let mut v = Validator::new(env);
    match read(&mut v, &table) {
        Some(value) if v.problems.is_empty() => Ok(value),
        _ => Err(ConfigErrors {
            file: file.to_string(),
            problems: v.problems,
        }),
    }
}

use crate::validate::Validator;

pub use admin::AdminSettings;

const TOP_KEYS: &[&str] = &[
    "issuer",
    "listen",
    "data_dir",
    "store",
    "store_password_env",
    "keys_dir",
    "keys_reload_interval",
    "sled_cache_mb",
    "connectors",
    "wecom",
    "clients",
    "tokens",
    "limits",
    "session",
    "events",
    "ui",
    "admin",
];
const UI_KEYS: &[&str] = &["playground"];
const SESSION_KEYS: &[&str] = &["ttl", "idle_timeout", "recheck_after"];
const EVENTS_KEYS: &[&str] = &["retention_days"];
const TOKEN_KEYS: &[&str] = &[
    "auth_request_ttl",
    "code_ttl",
    "access_token_ttl",
    "id_token_ttl",
    "refresh_token_ttl",
    "grant_max_lifetime",
    "device_code_ttl",
    "device_poll_interval",
];
const LIMIT_KEYS: &[&str] = &[
    "token_burst",
    "token_per_minute",
    "callback_burst",
    "callback_per_minute",
    "authorize_burst",
    "authorize_per_minute",
    "device_burst",
    "device_per_minute",
    "max_pending_authorizations",
];

impl Validator<'_> {
    fn config(&mut self, t: &Table) -> Option<Config> {
        self.unknown_keys(t, "", TOP_KEYS);
        let issuer = self
            .required_string(t, "issuer", "issuer")
            .and_then(|s| self.issuer(&s));
        let listen = match self.string(t, "listen", "listen") {
            None => Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
            Some(s) => match s.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.problem(
                        "listen",
                        format!("{s:?} is not an address like 0.0.0.0:8080"),
                    );
                    None
                }
            },
        };
        let data_dir = PathBuf::from(
            self.string(t, "data_dir", "data_dir")
                .unwrap_or_else(|| "data".into()),
        );
        let keys_dir = PathBuf::from(
            self.string(t, "keys_dir", "keys_dir")
                .unwrap_or_else(|| "keys".into()),
        );
        let store = self.store(t);
        let (connectors, deprecations) = self.connectors(t);
        let clients = self.clients(t);
        if let Some(connectors) = &connectors {
            for (i, c) in clients.iter().enumerate() {
                if let Some(id) = &c.settings.connector {
                    if !connectors.iter().any(|k| k.id() == id) {
                        self.problem(
                            &format!("clients[{i}].connector"),
                            format!(
                                "no connector is named {id:?} (wecom_app is the older name of this key)"
                            ),
                        );
                    }
                }
            }
        }
        if t.get("clients").is_none() {
            self.problem(
                "clients",
                "no [[clients]] registered: no application could log in",
            );
        }
        let lifetimes = self.section(t, "tokens", Lifetimes::default(), |v, tt| v.lifetimes(tt));
        let session = self.section(t, "session", SessionSettings::default(), |v, st| {
            Some(v.session(st))
        });
        let limits = self.section(t, "limits", RateLimits::default(), |v, lt| {
            Some(v.limits(lt))
        });
        let keys_reload_interval =
            match self.integer(t, "keys_reload_interval", "keys_reload_interval") {
                None => Some(crate::tokens::shared::DEFAULT_RELOAD_INTERVAL_SECS),
                Some(n) if (1..=3600).contains(&n) => Some(n as u64),
                Some(n) => {
                    self.problem(
                        "keys_reload_interval",
                        format!("{n} is not between 1 and 3600 seconds"),
                    );
                    None
                }
            };
        let sled_cache_mb = match self.integer(t, "sled_cache_mb", "sled_cache_mb") {
            None => Some(DEFAULT_SLED_CACHE_MB),
            Some(n) if (1..=65_536).contains(&n) => Some(n as u64),
            Some(n) => {
                self.problem(
                    "sled_cache_mb",
                    format!("{n} is not between 1 and 65536 MiB"),
                );
                None
            }
        };
        let default_retention = DEFAULT_EVENT_RETENTION_DAYS * 86_400;
        let login_event_retention = self.section(t, "events", default_retention, |v, et| {
            v.unknown_keys(et, "events", EVENTS_KEYS);
            match v.integer(et, "events.retention_days", "retention_days") {
                None => Some(default_retention),
                Some(d) if (1..=3650).contains(&d) => Some(d * 86_400),
                Some(_) => {
                    v.problem("events.retention_days", "must be between 1 and 3650 days");
                    None
                }
            }
        });
        // `[ui]` that is not a table is a noted problem: the file is refused whatever this says.
        let playground = self
            .section(t, "ui", false, |v, ut| {
                v.unknown_keys(ut, "ui", UI_KEYS);
                match ut.get("playground") {
                    None => Some(false),
                    Some(Value::Boolean(b)) => Some(*b),
                    Some(_) => {
                        v.problem("ui.playground", "must be true or false");
                        Some(false)
                    }
                }
            })
            .unwrap_or(false);
        let connector_ids: Option<Vec<String>> = connectors
            .as_ref()
            .map(|cs| cs.iter().map(|c| c.id().to_owned()).collect());
        let admin = admin::parse(self, t.get("admin"), connector_ids.as_deref());
        Some(Config {
            admin: admin?,
            playground,
            keys_reload_interval: keys_reload_interval?,
            sled_cache_mb: sled_cache_mb?,
            session: session?,
            limits: limits?,
            login_event_retention: login_event_retention?,
            issuer: issuer?,
            listen: listen?,
            data_dir,
            store: store?,
            keys_dir,
            connectors: connectors?,
            deprecations,
            clients,
            lifetimes: lifetimes?,
        })
    }

    /// `store` and `store_password_env`.
    fn store(&mut self, t: &Table) -> Option<StoreLocation> {
        let url = self.string(t, "store", "store");
        let password_env = self.string(t, "store_password_env", "store_password_env");
        let Some(url) = url else {
            if t.contains_key("store") {
                return None; // not a string: reported
            }
            if password_env.is_some() {
                self.problem(
                    "store_password_env",
                    "is only used with store = \"postgres://…\"",
                );
            }
            return Some(StoreLocation::Sled);
        };
        if let Err(e) = crate::storage::postgres::parse_url(&url) {
            // Not quoted: a malformed URL may still hold a password.
            self.problem("store", e);
            return None;
        }
        let password = match password_env {
            Some(name) => match (self.env)(&name) {
                Some(v) if !v.is_empty() => Some(Secret::new(v)),
                _ => {
                    self.problem(
                        "store_password_env",
                        format!("the environment variable {name} is not set"),
                    );
                    return None;
                }
            },
            None => (self.env)("PGPASSWORD")
                .filter(|v| !v.is_empty())
                .map(Secret::new),
        };
        Some(StoreLocation::Postgres(PostgresLocation { url, password }))
    }

    fn issuer(&mut self, raw: &str) -> Option<String> {
        let trimmed = raw.trim_end_matches('/');
        let url = match url::Url::parse(trimmed) {
            Ok(u) => u,
            Err(e) => {
                self.problem("issuer", format!("{raw:?} is not an absolute URL ({e})"));
                return None;
            }
        };
        // Discovery §3 / Core §2: the issuer is an https URL with no query or fragment;
        // plain http is tolerated only on loopback for local trials.
        let loopback = matches!(
            url.host_str(),
            Some("localhost") | Some("127.0.0.1") | Some("[::1]")
        );
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            self.problem(
                "issuer",
                "must use https (http is only allowed for localhost/127.0.0.1)",
            );
        }
        if url.query().is_some() || url.fragment().is_some() {
            self.problem("issuer", "must not contain a query or a fragment");
        }
        if url.username() != "" || url.password().is_some() {
            self.problem("issuer", "must not contain credentials");
        }
        if let Some(segment) = crate::web::issuer_path::collision(trimmed) {
            self.problem(
                "issuer",
                format!("its path must not start with /{segment}: the server has a route there (e.g. use /sso)"),
            );
        }
        Some(trimmed.to_string())
    }

    fn session(&mut self, t: &Table) -> SessionSettings {
        self.unknown_keys(t, "session", SESSION_KEYS);
        let d = SessionSettings::default();
        let ttl = match self.integer(t, "session.ttl", "ttl") {
            None => d.ttl,
            Some(n) if (60..=30 * 86400).contains(&n) => n,
            Some(_) => {
                self.problem(
                    "session.ttl",
                    "must be between 60 seconds and 30 days (2592000)",
                );
                d.ttl
            }
        };
        let idle_timeout = match self.integer(t, "session.idle_timeout", "idle_timeout") {
            None => None,
            Some(n) if (60..=ttl).contains(&n) => Some(n),
            Some(_) => {
                self.problem(
                    "session.idle_timeout",
                    "must be between 60 seconds and session.ttl",
                );
                None
            }
        };
        // A session younger than this is trusted as it is; older, it asks the upstream again
        // before serving a client. Above `ttl` it would never ask.
        let recheck_after = match self.integer(t, "session.recheck_after", "recheck_after") {
            None => d.recheck_after,
            Some(n) if (60..=ttl).contains(&n) => n,
            Some(_) => {
                self.problem(
                    "session.recheck_after",
                    "must be between 60 seconds and session.ttl",
                );
                d.recheck_after
            }
        };
        SessionSettings {
            ttl,
            idle_timeout,
            recheck_after,
        }
    }

    fn limits(&mut self, t: &Table) -> RateLimits {
        self.unknown_keys(t, "limits", LIMIT_KEYS);
        let d = RateLimits::default();
        let mut get = |name: &str, default: u32| -> u32 {
            let key = format!("limits.{name}");
            match self.integer(t, &key, name) {
                None => default,
                Some(n) if (1..=1_000_000).contains(&n) => n as u32,
                Some(_) => {
                    self.problem(&key, "must be between 1 and 1000000");
                    default
                }
            }
        };
        let mut limits = RateLimits {
            token_burst: get("token_burst", d.token_burst),
            token_per_minute: get("token_per_minute", d.token_per_minute),
            callback_burst: get("callback_burst", d.callback_burst),
            callback_per_minute: get("callback_per_minute", d.callback_per_minute),
            authorize_burst: get("authorize_burst", d.authorize_burst),
            authorize_per_minute: get("authorize_per_minute", d.authorize_per_minute),
            device_burst: get("device_burst", d.device_burst),
            device_per_minute: get("device_per_minute", d.device_per_minute),
            max_pending_authorizations: d.max_pending_authorizations,
        };
        let key = "limits.max_pending_authorizations";
        match self.integer(t, key, "max_pending_authorizations") {
            None => {}
            Some(n) if (100..=100_000_000).contains(&n) => {
                limits.max_pending_authorizations = n as u32
            }
            Some(_) => self.problem(key, "must be between 100 and 100000000"),
        }
        limits
    }

    fn lifetimes(&mut self, t: &Table) -> Option<Lifetimes> {
        self.unknown_keys(t, "tokens", TOKEN_KEYS);
        let d = Lifetimes::default();
        let mut get = |name: &str, default: i64, min: i64, max: i64| -> i64 {
            let key = format!("tokens.{name}");
            match self.integer(t, &key, name) {
                None => default,
                Some(n) if (min..=max).contains(&n) => n,
                Some(_) => {
                    self.problem(&key, format!("must be between {min} and {max} seconds"));
                    default
                }
            }
        };
        Some(Lifetimes {
            auth_request: get("auth_request_ttl", d.auth_request, 60, 3600),
            code: get("code_ttl", d.code, 10, 600),
            access_token: get("access_token_ttl", d.access_token, 60, 86400),
            id_token: get("id_token_ttl", d.id_token, 60, 86400),
            refresh_token: get("refresh_token_ttl", d.refresh_token, 60, 366 * 86400),
            grant: t
                .get("grant_max_lifetime")
                .map(|_| get("grant_max_lifetime", 0, 60, 3660 * 86400)),
            device_code: get("device_code_ttl", d.device_code, 5, 3600),
            device_poll_interval: get("device_poll_interval", d.device_poll_interval, 1, 60),
        })
    }
}

mod admin;
mod clients;
mod connectors;
#[cfg(test)]
mod tests;
