//! The configuration file (TOML) and its validation. `load` reports every problem at once,
//! each naming its key, so an operator fixes the file in one pass.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use crate::connector::wecom::{
    CallbackSettings, ClaimSource, EmailPolicy, GroupOptions, PrivateInfo, ProfileMapping,
    SubjectMode, WeComSettings,
};
use crate::provider::client::{AccessTokenFormat, AuthMethod, ClientSettings};
use crate::provider::{Client, Lifetimes, SessionSettings};
use crate::secret::Secret;
use crate::tokens::SigningAlg;
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
    /// The WeCom app logins go through (the first of a `[[wecom]]` list).
    pub wecom: WeComSettings,
    /// Further WeCom apps of a `[[wecom]]` list, chosen by clients with `wecom_app = "name"`.
    pub more_wecom_apps: Vec<WeComSettings>,
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
    /// `keys_reload_interval`: how often (seconds) a running instance re-reads the signing keys
    /// of a shared store, i.e. how soon a `keys rotate` reaches every instance.
    pub keys_reload_interval: u64,
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
    let table: Table = toml::from_str(text).map_err(|e| ConfigErrors {
        file: file.to_string(),
        problems: vec![format!("not valid TOML: {}", e.message())],
    })?;
    let mut v = Validator {
        problems: Vec::new(),
        env,
    };
    let cfg = v.config(&table);
    match cfg {
        Some(c) if v.problems.is_empty() => Ok(c),
        _ => Err(ConfigErrors {
            file: file.to_string(),
            problems: v.problems,
        }),
    }
}

/// Parses only the `[[clients]]` of a file (the demo's `--config` adds them to its own client).
pub fn parse_clients(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Client>, ConfigErrors> {
    let table: Table = toml::from_str(text).map_err(|e| ConfigErrors {
        file: file.to_string(),
        problems: vec![format!("not valid TOML: {}", e.message())],
    })?;
    let mut v = Validator {
        problems: Vec::new(),
        env,
    };
    let clients = v.clients(&table);
    if v.problems.is_empty() {
        Ok(clients)
    } else {
        Err(ConfigErrors {
            file: file.to_string(),
            problems: v.problems,
        })
    }
}

/// What the demo takes from its `--config` file: the `[[clients]]` and, optionally, `[limits]`
/// (load tests raise the rate limits); every other key is ignored.
pub fn parse_demo_file(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<Client>, Option<RateLimits>), ConfigErrors> {
    let table: Table = toml::from_str(text).map_err(|e| ConfigErrors {
        file: file.to_string(),
        problems: vec![format!("not valid TOML: {}", e.message())],
    })?;
    let mut v = Validator {
        problems: Vec::new(),
        env,
    };
    let clients = v.clients(&table);
    let limits = match table.get("limits") {
        None => None,
        Some(Value::Table(t)) => Some(v.limits(t)),
        Some(_) => {
            v.problem("limits", "must be a table ([limits])");
            None
        }
    };
    if v.problems.is_empty() {
        Ok((clients, limits))
    } else {
        Err(ConfigErrors {
            file: file.to_string(),
            problems: v.problems,
        })
    }
}

struct Validator<'a> {
    problems: Vec<String>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

const TOP_KEYS: &[&str] = &[
    "issuer",
    "listen",
    "data_dir",
    "store",
    "store_password_env",
    "keys_dir",
    "keys_reload_interval",
    "wecom",
    "clients",
    "tokens",
    "limits",
    "session",
    "events",
    "ui",
];
const UI_KEYS: &[&str] = &["playground"];
const SESSION_KEYS: &[&str] = &["ttl", "idle_timeout"];
const EVENTS_KEYS: &[&str] = &["retention_days"];
const WECOM_KEYS: &[&str] = &[
    "name",
    "corp_id",
    "agent_id",
    "secret",
    "secret_env",
    "api_base",
    "oauth_base",
    "sso_base",
    "timeout_secs",
    "privateinfo",
    "email",
    "email_template",
    "email_verified",
    "name_claim",
    "username_claim",
    "sub",
    "groups",
    "groups_cache_secs",
    "callback_token",
    "callback_token_env",
    "callback_aes_key",
    "callback_aes_key_env",
    "verify_files",
    "pairwise_salt",
    "pairwise_salt_env",
];
const CLIENT_KEYS: &[&str] = &[
    "wecom_app",
    "app",
    "app_config",
    "id",
    "name",
    "secret",
    "secret_env",
    "redirect_uris",
    "public",
    "id_token_signed_response_alg",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "allow_offline_access",
    "token_endpoint_auth_method",
    "secret_sha256",
    "jwks",
    "jwks_file",
    "access_token_format",
    "access_token_audience",
];
const TOKEN_KEYS: &[&str] = &[
    "auth_request_ttl",
    "code_ttl",
    "access_token_ttl",
    "id_token_ttl",
    "refresh_token_ttl",
    "grant_max_lifetime",
];
const LIMIT_KEYS: &[&str] = &[
    "token_burst",
    "token_per_minute",
    "callback_burst",
    "callback_per_minute",
    "authorize_burst",
    "authorize_per_minute",
    "max_pending_authorizations",
];

impl Validator<'_> {
    fn problem(&mut self, key: &str, msg: impl std::fmt::Display) {
        self.problems.push(format!("{key}: {msg}"));
    }

    fn unknown_keys(&mut self, t: &Table, prefix: &str, allowed: &[&str]) {
        for k in t.keys() {
            if !allowed.contains(&k.as_str()) {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                self.problem(
                    &key,
                    format!("unknown key (expected one of: {})", allowed.join(", ")),
                );
            }
        }
    }

    fn string(&mut self, t: &Table, key: &str, name: &str) -> Option<String> {
        match t.get(name) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.problem(key, format!("must be a string, found {}", other.type_str()));
                None
            }
        }
    }

    fn required_string(&mut self, t: &Table, key: &str, name: &str) -> Option<String> {
        let s = self.string(t, key, name);
        match s {
            Some(s) if !s.trim().is_empty() => Some(s),
            Some(_) => {
                self.problem(key, "must not be empty");
                None
            }
            None => {
                if !t.contains_key(name) {
                    self.problem(key, "is required");
                }
                None
            }
        }
    }

    fn integer(&mut self, t: &Table, key: &str, name: &str) -> Option<i64> {
        match t.get(name) {
            None => None,
            Some(Value::Integer(i)) => Some(*i),
            Some(other) => {
                self.problem(
                    key,
                    format!("must be an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn secret(&mut self, t: &Table, key: &str) -> Option<Secret> {
        let direct = self.string(t, &format!("{key}.secret"), "secret");
        let env_name = self.string(t, &format!("{key}.secret_env"), "secret_env");
        match (direct, env_name) {
            (Some(_), Some(_)) => {
                self.problem(
                    &format!("{key}.secret"),
                    "set either secret or secret_env, not both",
                );
                None
            }
            (Some(s), None) if s.is_empty() => {
                self.problem(&format!("{key}.secret"), "must not be empty");
                None
            }
            (Some(s), None) => Some(Secret::new(s)),
            (None, Some(var)) => match (self.env)(&var) {
                Some(s) if !s.is_empty() => Some(Secret::new(s)),
                _ => {
                    self.problem(
                        &format!("{key}.secret_env"),
                        format!("environment variable {var} is not set or empty"),
                    );
                    None
                }
            },
            (None, None) => None,
        }
    }

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
        let mut more_wecom_apps = Vec::new();
        let wecom = match t.get("wecom") {
            Some(Value::Table(w)) => self.wecom(w),
            // Several WeCom apps (corps or agents) in one provider: `[[wecom]]` with a `name`
            // each; the first is the default for clients that name none.
            Some(Value::Array(list)) if !list.is_empty() => {
                let mut apps: Vec<WeComSettings> = Vec::new();
                let mut complete = true;
                for (i, item) in list.iter().enumerate() {
                    let before = self.problems.len();
                    let app = match item {
                        Value::Table(w) => {
                            let app = self.wecom(w);
                            if !w.contains_key("name") {
                                self.problem(
                                    "wecom.name",
                                    "is required for each [[wecom]] app (e.g. name = \"hq\")",
                                );
                            }
                            app
                        }
                        _ => {
                            self.problem("wecom", "must be a table");
                            None
                        }
                    };
                    // The app's problems name it: `wecom[1].secret_env: …`.
                    for p in &mut self.problems[before..] {
                        if let Some(rest) = p.strip_prefix("wecom") {
                            *p = format!("wecom[{i}]{rest}");
                        }
                    }
                    match app {
                        Some(a) if apps.iter().any(|b| b.id == a.id) => {
                            self.problem(
                                &format!("wecom[{i}].name"),
                                format!("duplicate WeCom app name {:?}", a.id),
                            );
                            complete = false;
                        }
                        Some(a) => apps.push(a),
                        None => complete = false,
                    }
                }
                if complete {
                    let first = apps.remove(0);
                    more_wecom_apps = apps;
                    Some(first)
                } else {
                    None
                }
            }
            Some(_) => {
                self.problem("wecom", "must be a table ([wecom]) or a list ([[wecom]])");
                None
            }
            None => {
                self.problem("wecom", "the [wecom] section is required");
                None
            }
        };
        let clients = self.clients(t);
        if let Some(w) = &wecom {
            for (i, c) in clients.iter().enumerate() {
                if let Some(app) = &c.settings.connector {
                    if w.id != *app && !more_wecom_apps.iter().any(|a| a.id == *app) {
                        self.problem(
                            &format!("clients[{i}].wecom_app"),
                            format!("no [[wecom]] app is named {app:?}"),
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
        let lifetimes = match t.get("tokens") {
            None => Some(Lifetimes::default()),
            Some(Value::Table(tt)) => self.lifetimes(tt),
            Some(_) => {
                self.problem("tokens", "must be a table ([tokens])");
                None
            }
        };
        let session = match t.get("session") {
            None => Some(SessionSettings::default()),
            Some(Value::Table(st)) => Some(self.session(st)),
            Some(_) => {
                self.problem("session", "must be a table ([session])");
                None
            }
        };
        let limits = match t.get("limits") {
            None => Some(RateLimits::default()),
            Some(Value::Table(lt)) => Some(self.limits(lt)),
            Some(_) => {
                self.problem("limits", "must be a table ([limits])");
                None
            }
        };
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
        let login_event_retention = match t.get("events") {
            None => Some(DEFAULT_EVENT_RETENTION_DAYS * 86_400),
            Some(Value::Table(et)) => {
                self.unknown_keys(et, "events", EVENTS_KEYS);
                match self.integer(et, "events.retention_days", "retention_days") {
                    None => Some(DEFAULT_EVENT_RETENTION_DAYS * 86_400),
                    Some(d) if (1..=3650).contains(&d) => Some(d * 86_400),
                    Some(_) => {
                        self.problem("events.retention_days", "must be between 1 and 3650 days");
                        None
                    }
                }
            }
            Some(_) => {
                self.problem("events", "must be a table ([events])");
                None
            }
        };
        let playground = match t.get("ui") {
            None => false,
            Some(Value::Table(ut)) => {
                self.unknown_keys(ut, "ui", UI_KEYS);
                match ut.get("playground") {
                    None => false,
                    Some(Value::Boolean(b)) => *b,
                    Some(_) => {
                        self.problem("ui.playground", "must be true or false");
                        false
                    }
                }
            }
            Some(_) => {
                self.problem("ui", "must be a table ([ui])");
                false
            }
        };
        Some(Config {
            playground,
            keys_reload_interval: keys_reload_interval?,
            session: session?,
            limits: limits?,
            login_event_retention: login_event_retention?,
            issuer: issuer?,
            listen: listen?,
            data_dir,
            store: store?,
            keys_dir,
            wecom: wecom?,
            more_wecom_apps,
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
        Some(trimmed.to_string())
    }

    fn wecom(&mut self, w: &Table) -> Option<WeComSettings> {
        self.unknown_keys(w, "wecom", WECOM_KEYS);
        let id = match self.string(w, "wecom.name", "name") {
            None => Some(WeComSettings::DEFAULT_ID.to_string()),
            Some(n) if crate::connector::wecom::is_app_id(&n) => Some(n),
            Some(n) => {
                self.problem(
                    "wecom.name",
                    format!("{n:?} must be 1-32 lower-case letters, digits, '-' or '_'"),
                );
                None
            }
        };
        let corp_id = self.required_string(w, "wecom.corp_id", "corp_id");
        let agent_id = self.integer(w, "wecom.agent_id", "agent_id");
        if agent_id.is_none() && !w.contains_key("agent_id") {
            self.problem(
                "wecom.agent_id",
                "is required (the AgentId of the WeCom app)",
            );
        }
        let secret = self.secret(w, "wecom");
        if secret.is_none() && !w.contains_key("secret") && !w.contains_key("secret_env") {
            self.problem(
                "wecom.secret_env",
                "the app secret is required: set secret_env = \"WECOM_SECRET\" (or secret)",
            );
        }
        let mut base = |name: &str, default: &str| -> Option<String> {
            let key = format!("wecom.{name}");
            let s = self
                .string(w, &key, name)
                .unwrap_or_else(|| default.to_string());
            let s = s.trim_end_matches('/').to_string();
            match url::Url::parse(&s) {
                Ok(u) if u.scheme() == "https" || u.scheme() == "http" => Some(s),
                _ => {
                    self.problem(&key, format!("{s:?} is not an http(s) URL"));
                    None
                }
            }
        };
        let api_base = base("api_base", WeComSettings::DEFAULT_API_BASE);
        let oauth_base = base("oauth_base", WeComSettings::DEFAULT_OAUTH_BASE);
        let sso_base = base("sso_base", WeComSettings::DEFAULT_SSO_BASE);
        let timeout = match self.integer(w, "wecom.timeout_secs", "timeout_secs") {
            None => Some(Duration::from_secs(5)),
            Some(n) if (1..=60).contains(&n) => Some(Duration::from_secs(n as u64)),
            Some(_) => {
                self.problem("wecom.timeout_secs", "must be between 1 and 60");
                None
            }
        };
        if let Some(id) = agent_id {
            if id <= 0 {
                self.problem("wecom.agent_id", "must be a positive integer");
            }
        }
        let defaults = WeComSettings::new("", 0, "");
        let privateinfo = self.choice(
            w,
            "wecom.privateinfo",
            "privateinfo",
            defaults.privateinfo,
            PrivateInfo::parse,
            "never, always, when_requested",
        );
        let profile = self.profile_mapping(w);
        let subject = self.choice(
            w,
            "wecom.sub",
            "sub",
            defaults.subject,
            SubjectMode::parse,
            "userid, lowercase, pairwise",
        );
        let groups = self.group_options(w);
        let callback = self.callback_settings(w);
        let verify_files = self.verify_files(w);
        let pairwise_salt = self.secret_pair(w, "wecom", "pairwise_salt");
        if subject == Some(SubjectMode::Pairwise) {
            if let Some(salt) = pairwise_salt.as_ref() {
                if salt.as_ref().is_none_or(|s| s.len() < 16) {
                    self.problem(
                        "wecom.pairwise_salt_env",
                        "sub = \"pairwise\" needs a secret pairwise_salt of at least 16 characters (never change it: every sub would change)",
                    );
                }
            }
        }
        Some(WeComSettings {
            id: id?,
            corp_id: corp_id?,
            agent_id: agent_id.filter(|i| *i > 0)?,
            secret: secret?.expose().to_string(),
            api_base: api_base?,
            oauth_base: oauth_base?,
            sso_base: sso_base?,
            timeout: timeout?,
            privateinfo: privateinfo?,
            profile: profile?,
            subject: subject?,
            groups: groups?,
            callback: callback?,
            verify_files: verify_files?,
            pairwise_salt: pairwise_salt?,
        })
    }

    /// A secret given directly (`name`) or through an environment variable (`name_env`).
    fn secret_pair(&mut self, t: &Table, prefix: &str, name: &str) -> Option<Option<String>> {
        let env_name = format!("{name}_env");
        let key = format!("{prefix}.{name}");
        let direct = self.string(t, &key, name);
        let var = self.string(t, &format!("{key}_env"), &env_name);
        match (direct, var) {
            (Some(_), Some(_)) => {
                self.problem(&key, format!("set either {name} or {env_name}, not both"));
                None
            }
            (Some(v), None) if v.is_empty() => {
                self.problem(&key, "must not be empty");
                None
            }
            (Some(v), None) => Some(Some(v)),
            (None, Some(var)) => match (self.env)(&var) {
                Some(v) if !v.is_empty() => Some(Some(v)),
                _ => {
                    self.problem(
                        &format!("{key}_env"),
                        format!("environment variable {var} is not set or empty"),
                    );
                    None
                }
            },
            (None, None) if t.contains_key(name) || t.contains_key(&env_name) => None,
            (None, None) => Some(None),
        }
    }

    /// `callback_token(_env)` and `callback_aes_key(_env)`: both or neither.
    fn callback_settings(&mut self, w: &Table) -> Option<Option<CallbackSettings>> {
        let token = self.secret_pair(w, "wecom", "callback_token");
        let aes = self.secret_pair(w, "wecom", "callback_aes_key");
        match (token?, aes?) {
            (None, None) => Some(None),
            (Some(token), Some(encoding_aes_key)) => {
                let settings = CallbackSettings {
                    token,
                    encoding_aes_key,
                };
                match settings.problem() {
                    None => Some(Some(settings)),
                    Some(problem) => {
                        self.problem("wecom.callback_aes_key", problem);
                        None
                    }
                }
            }
            (Some(_), None) => {
                self.problem(
                    "wecom.callback_aes_key_env",
                    "is required with callback_token (the EncodingAESKey of the callback URL)",
                );
                None
            }
            (None, Some(_)) => {
                self.problem(
                    "wecom.callback_token_env",
                    "is required with callback_aes_key (the Token of the callback URL)",
                );
                None
            }
        }
    }

    /// `verify_files = ["path/WW_verify_<token>.txt"]` (wecom-api.md §9). Only the name is
    /// checked here; the files are read at startup.
    fn verify_files(&mut self, w: &Table) -> Option<Vec<PathBuf>> {
        let list = match w.get("verify_files") {
            None => return Some(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(_) => {
                self.problem("wecom.verify_files", "must be a list of file paths");
                return None;
            }
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, v) in list.iter().enumerate() {
            let key = format!("wecom.verify_files[{i}]");
            let Some(path) = v.as_str() else {
                self.problem(&key, "must be a string");
                ok = false;
                continue;
            };
            let path = PathBuf::from(path);
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !crate::connector::wecom::is_verify_file_name(name) {
                self.problem(
                    &key,
                    "the file name must be WW_verify_<letters and digits>.txt, as downloaded from the WeCom admin console",
                );
                ok = false;
                continue;
            }
            out.push(path);
        }
        ok.then_some(out)
    }

    fn boolean(&mut self, t: &Table, key: &str, name: &str) -> Option<bool> {
        match t.get(name) {
            None => None,
            Some(Value::Boolean(b)) => Some(*b),
            Some(_) => {
                self.problem(key, "must be true or false");
                None
            }
        }
    }

    /// A string that must be one of a few words; `None` (after a problem) when it is not.
    fn choice<T>(
        &mut self,
        t: &Table,
        key: &str,
        name: &str,
        default: T,
        parse: fn(&str) -> Option<T>,
        allowed: &str,
    ) -> Option<T> {
        match self.string(t, key, name) {
            None if t.contains_key(name) => None,
            None => Some(default),
            Some(s) => match parse(&s) {
                Some(v) => Some(v),
                None => {
                    self.problem(key, format!("{s:?} is not one of: {allowed}"));
                    None
                }
            },
        }
    }

    /// `email`, `email_template`, `email_verified`, `name_claim`, `username_claim`.
    fn profile_mapping(&mut self, w: &Table) -> Option<ProfileMapping> {
        let d = ProfileMapping::default();
        let name = self.choice(
            w,
            "wecom.name_claim",
            "name_claim",
            d.name,
            ClaimSource::parse,
            ClaimSource::NAMES,
        );
        let preferred_username = self.choice(
            w,
            "wecom.username_claim",
            "username_claim",
            d.preferred_username,
            ClaimSource::parse,
            ClaimSource::NAMES,
        );
        let template = self.string(w, "wecom.email_template", "email_template");
        let email = match (self.string(w, "wecom.email", "email").as_deref(), template) {
            (None | Some("upstream"), None) => Some(EmailPolicy::Upstream),
            (Some("template"), Some(t)) => match EmailPolicy::template_problem(&t) {
                None => Some(EmailPolicy::Template(t)),
                Some(problem) => {
                    self.problem("wecom.email_template", problem);
                    None
                }
            },
            (Some("template"), None) => {
                self.problem(
                    "wecom.email_template",
                    "is required with email = \"template\" (e.g. \"{userid_lower}@corp.example.com\")",
                );
                None
            }
            (None | Some("upstream"), Some(_)) => {
                self.problem(
                    "wecom.email_template",
                    "is only used with email = \"template\"",
                );
                None
            }
            (Some(other), _) => {
                self.problem(
                    "wecom.email",
                    format!("{other:?} is not one of: upstream, template"),
                );
                None
            }
        };
        let email_verified = self
            .boolean(w, "wecom.email_verified", "email_verified")
            .unwrap_or(d.email_verified);
        Some(ProfileMapping {
            name: name?,
            preferred_username: preferred_username?,
            email: email?,
            email_verified,
        })
    }

    /// `groups = ["names", "paths", "ids", "tags"]` and `groups_cache_secs`.
    fn group_options(&mut self, w: &Table) -> Option<GroupOptions> {
        let mut options = GroupOptions::default();
        match w.get("groups") {
            None => {}
            Some(Value::Array(a)) => {
                let mut kinds = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v.as_str() {
                        Some(s) => kinds.push(s),
                        None => self.problem(&format!("wecom.groups[{i}]"), "must be a string"),
                    }
                }
                match options.with_kinds(kinds) {
                    Ok(o) => options = o,
                    Err(e) => {
                        self.problem("wecom.groups", e);
                        return None;
                    }
                }
            }
            Some(_) => {
                self.problem(
                    "wecom.groups",
                    "must be a list such as [\"names\", \"paths\", \"tags\"]",
                );
                return None;
            }
        }
        match self.integer(w, "wecom.groups_cache_secs", "groups_cache_secs") {
            None => {}
            Some(n) if (10..=86_400).contains(&n) => {
                options.cache_ttl = Duration::from_secs(n.unsigned_abs())
            }
            Some(_) => {
                self.problem("wecom.groups_cache_secs", "must be between 10 and 86400");
                return None;
            }
        }
        Some(options)
    }

    fn clients(&mut self, t: &Table) -> Vec<Client> {
        let list = match t.get("clients") {
            None => return Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => {
                self.problem("clients", "must be an array of tables ([[clients]])");
                return Vec::new();
            }
        };
        let mut out: Vec<Client> = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let key = format!("clients[{i}]");
            let Value::Table(c) = item else {
                self.problem(&key, "must be a table");
                continue;
            };
            if let Some(client) = self.client(c, &key) {
                if out.iter().any(|o| o.id == client.id) {
                    self.problem(
                        &format!("{key}.id"),
                        format!("duplicate client id {:?}", client.id),
                    );
                } else {
                    out.push(client);
                }
            }
        }
        out
    }

    fn client(&mut self, c: &Table, key: &str) -> Option<Client> {
        self.unknown_keys(c, key, CLIENT_KEYS);
        let id = self.required_string(c, &format!("{key}.id"), "id");
        if let Some(id) = &id {
            if id.len() > 255
                || id
                    .chars()
                    .any(|ch| ch.is_control() || ch == ' ' || ch == ':')
            {
                self.problem(
                    &format!("{key}.id"),
                    "must be at most 255 characters, without spaces, colons or control characters",
                );
            }
        }
        let public = match c.get("public") {
            None => false,
            Some(Value::Boolean(b)) => *b,
            Some(_) => {
                self.problem(&format!("{key}.public"), "must be true or false");
                false
            }
        };
        let secret = self.secret(c, key);
        let extra = self.client_settings(c, key, public, secret.is_some());
        let has_other_credential = c.contains_key("secret_sha256")
            || c.contains_key("jwks")
            || c.contains_key("jwks_file");
        if public && secret.is_some() {
            self.problem(
                &format!("{key}.secret"),
                "a public client has no secret (remove secret/secret_env or public = true)",
            );
        }
        if !public
            && secret.is_none()
            && !c.contains_key("secret")
            && !c.contains_key("secret_env")
            && !has_other_credential
        {
            self.problem(
                &format!("{key}.secret_env"),
                "a confidential client needs secret, secret_env, secret_sha256 or jwks (or set public = true and use PKCE)",
            );
        }
        let uris = match c.get("redirect_uris") {
            Some(Value::Array(a)) if !a.is_empty() => {
                let mut uris = Vec::new();
                for (j, u) in a.iter().enumerate() {
                    let ukey = format!("{key}.redirect_uris[{j}]");
                    match u {
                        Value::String(s) => {
                            if let Some(s) = self.redirect_uri(s, &ukey) {
                                uris.push(s);
                            }
                        }
                        _ => self.problem(&ukey, "must be a string"),
                    }
                }
                uris
            }
            _ => {
                self.problem(
                    &format!("{key}.redirect_uris"),
                    "is required: a non-empty list of exact redirect URIs",
                );
                Vec::new()
            }
        };
        let name = self.string(c, &format!("{key}.name"), "name");
        let wecom_app = self.string(c, &format!("{key}.wecom_app"), "wecom_app");
        let app = self.client_app(c, key);
        // Checked even when other settings failed, so every problem is reported at once.
        let mut logout = ClientSettings::default();
        self.logout_and_alg_settings(c, key, &mut logout);
        let mut extra = extra;
        if let Some(settings) = extra.as_mut() {
            settings.id_token_signed_response_alg = logout.id_token_signed_response_alg;
            settings.post_logout_redirect_uris = logout.post_logout_redirect_uris;
            settings.backchannel_logout_uri = logout.backchannel_logout_uri;
            settings.backchannel_logout_session_required =
                logout.backchannel_logout_session_required;
        }
        let id = id?;
        let settings = extra?;
        if !public
            && secret.is_none()
            && settings.secret_sha256.is_none()
            && settings.jwks.is_none()
        {
            return None;
        }
        Some(Client {
            name: name.unwrap_or_else(|| id.clone()),
            id,
            secret: if public { None } else { secret },
            redirect_uris: uris,
            settings: ClientSettings {
                connector: wecom_app,
                app,
                ..settings
            },
        })
    }

    /// `app` (which relying party the client is: a `wecom-oidc snippet` name) and `app_config`
    /// (that application's own configuration file), read only by `check`.
    fn client_app(&mut self, c: &Table, key: &str) -> Option<crate::provider::client::ClientApp> {
        let app_key = format!("{key}.app");
        let name = self.string(c, &app_key, "app");
        let config = self.string(c, &format!("{key}.app_config"), "app_config");
        let name = match name {
            Some(n) if crate::ops::snippet::SnippetApp::parse(&n).is_none() => {
                let known: Vec<&str> = crate::ops::snippet::SnippetApp::ALL
                    .iter()
                    .map(|a| a.name())
                    .collect();
                self.problem(
                    &app_key,
                    format!("{n:?} is not one of {}", known.join(", ")),
                );
                return None;
            }
            other => other,
        };
        (name.is_some() || config.is_some()).then(|| crate::provider::client::ClientApp {
            name,
            config: config.map(PathBuf::from),
        })
    }

    /// The logout and id_token algorithm options of a client (added to `settings`).
    fn logout_and_alg_settings(&mut self, c: &Table, key: &str, settings: &mut ClientSettings) {
        let alg_key = format!("{key}.id_token_signed_response_alg");
        if let Some(alg) = self.string(c, &alg_key, "id_token_signed_response_alg") {
            // OIDC Core §16.14 / RFC 8725 §3.1: `none` is never accepted.
            match alg.parse::<SigningAlg>() {
                Ok(a) => settings.id_token_signed_response_alg = Some(a),
                Err(_) => self.problem(
                    &alg_key,
                    format!("{alg:?} is not one of RS256, ES256, EdDSA"),
                ),
            }
        }
        let plr_key = format!("{key}.post_logout_redirect_uris");
        match c.get("post_logout_redirect_uris") {
            None => {}
            Some(Value::Array(a)) => {
                for (j, u) in a.iter().enumerate() {
                    let ukey = format!("{plr_key}[{j}]");
                    match u {
                        Value::String(s) => {
                            if let Some(s) = self.redirect_uri(s, &ukey) {
                                settings.post_logout_redirect_uris.push(s);
                            }
                        }
                        _ => self.problem(&ukey, "must be a string"),
                    }
                }
            }
            Some(_) => self.problem(&plr_key, "must be a list of exact URIs"),
        }
        let bcl_key = format!("{key}.backchannel_logout_uri");
        if let Some(u) = self.string(c, &bcl_key, "backchannel_logout_uri") {
            // Back-Channel Logout 1.0 §2.2: an absolute http(s) URI without a fragment.
            match url::Url::parse(&u) {
                Ok(parsed)
                    if matches!(parsed.scheme(), "https" | "http")
                        && parsed.fragment().is_none() =>
                {
                    settings.backchannel_logout_uri = Some(u)
                }
                _ => self.problem(
                    &bcl_key,
                    format!("{u:?} is not an absolute http(s) URI without a fragment"),
                ),
            }
        }
        match c.get("backchannel_logout_session_required") {
            None => {}
            Some(Value::Boolean(b)) => settings.backchannel_logout_session_required = *b,
            Some(_) => self.problem(
                &format!("{key}.backchannel_logout_session_required"),
                "must be true or false",
            ),
        }
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
        SessionSettings { ttl, idle_timeout }
    }

    /// The per-client options beyond id, secret and redirect URIs; `None` if any is invalid.
    fn client_settings(
        &mut self,
        c: &Table,
        key: &str,
        public: bool,
        has_secret: bool,
    ) -> Option<ClientSettings> {
        let before = self.problems.len();
        let mut settings = ClientSettings {
            allow_offline_access: self.boolean(
                c,
                &format!("{key}.allow_offline_access"),
                "allow_offline_access",
            ),
            ..ClientSettings::default()
        };
        let hash_key = format!("{key}.secret_sha256");
        if let Some(h) = self.string(c, &hash_key, "secret_sha256") {
            match decode_sha256(&h) {
                Some(bytes) => settings.secret_sha256 = Some(bytes),
                None => self.problem(
                    &hash_key,
                    "must be the SHA-256 of the secret as 64 hex digits or 43 base64url characters",
                ),
            }
            if has_secret || c.contains_key("secret") || c.contains_key("secret_env") {
                self.problem(
                    &hash_key,
                    "set either secret/secret_env or secret_sha256, not both",
                );
            }
        }
        let jwks_key = format!("{key}.jwks");
        let inline = self.string(c, &jwks_key, "jwks");
        let file = self.string(c, &format!("{key}.jwks_file"), "jwks_file");
        let jwks_text = match (inline, file) {
            (Some(_), Some(_)) => {
                self.problem(&jwks_key, "set either jwks or jwks_file, not both");
                None
            }
            (Some(text), None) => Some((jwks_key.clone(), text)),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) => Some((format!("{key}.jwks_file"), text)),
                Err(e) => {
                    self.problem(
                        &format!("{key}.jwks_file"),
                        format!("cannot read {path}: {e}"),
                    );
                    None
                }
            },
            (None, None) => None,
        };
        if let Some((k, text)) = jwks_text {
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(set) => match crate::tokens::JwksVerifier::from_jwks(&set) {
                    Ok(_) => settings.jwks = Some(set),
                    Err(e) => self.problem(&k, e),
                },
                Err(_) => self.problem(&k, "is not valid JSON (expected {\"keys\":[...]})"),
            }
        }
        if public && (settings.secret_sha256.is_some() || settings.jwks.is_some()) {
            self.problem(
                &format!("{key}.public"),
                "a public client has no credentials (remove secret_sha256/jwks or public = true)",
            );
        }
        let method_key = format!("{key}.token_endpoint_auth_method");
        if let Some(m) = self.string(c, &method_key, "token_endpoint_auth_method") {
            let has_secret = has_secret || settings.secret_sha256.is_some();
            match AuthMethod::parse(&m) {
                None => self.problem(
                    &method_key,
                    "must be client_secret_basic, client_secret_post, private_key_jwt or none",
                ),
                Some(AuthMethod::None) if !public => self.problem(
                    &method_key,
                    "none is only for public clients (public = true)",
                ),
                Some(AuthMethod::PrivateKeyJwt) if settings.jwks.is_none() => self.problem(
                    &method_key,
                    "private_key_jwt needs the client's jwks or jwks_file",
                ),
                Some(AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost)
                    if !has_secret =>
                {
                    self.problem(
                        &method_key,
                        format!("{m} needs secret, secret_env or secret_sha256"),
                    )
                }
                Some(method) => settings.token_endpoint_auth_method = Some(method),
            }
        }
        let format_key = format!("{key}.access_token_format");
        match self
            .string(c, &format_key, "access_token_format")
            .as_deref()
        {
            None | Some("opaque") => {}
            Some("jwt") => settings.access_token_format = AccessTokenFormat::Jwt,
            Some(_) => self.problem(&format_key, "must be \"opaque\" or \"jwt\""),
        }
        settings.access_token_audience = self.string(
            c,
            &format!("{key}.access_token_audience"),
            "access_token_audience",
        );
        (self.problems.len() == before).then_some(settings)
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

    fn redirect_uri(&mut self, s: &str, key: &str) -> Option<String> {
        match url::Url::parse(s) {
            Ok(u) => {
                if !s.is_ascii() || s.chars().any(|c| c.is_ascii_control() || c == ' ') {
                    self.problem(
                        key,
                        "must be a URI of printable ASCII (percent-encode other characters)",
                    );
                    return None;
                }
                // RFC 6749 §3.1.2: absolute, no fragment.
                if u.fragment().is_some() || s.contains('#') {
                    self.problem(key, "must not contain a fragment (#)");
                    return None;
                }
                if matches!(u.scheme(), "javascript" | "data" | "file" | "vbscript") {
                    self.problem(key, format!("the {} scheme is not allowed", u.scheme()));
                    return None;
                }
                if u.scheme() == "http"
                    && !matches!(
                        u.host_str(),
                        Some("localhost") | Some("127.0.0.1") | Some("[::1]")
                    )
                {
                    tracing::warn!(
                        key,
                        "redirect URI uses plain http on a non-loopback host (RFC 9700 §4.1 advises https)"
                    );
                }
                Some(s.to_string())
            }
            Err(e) => {
                self.problem(key, format!("{s:?} is not an absolute URI ({e})"));
                None
            }
        }
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
        })
    }
}

/// A SHA-256 given as 64 hex digits or as 43 base64url characters (no padding).
fn decode_sha256(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let s = s.trim();
    let bytes = if s.len() == 64 {
        hex::decode(s).ok()?
    } else {
        URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?
    };
    (bytes.len() == 32).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "WECOM_SECRET" => Some("wecom-app-secret".into()),
            "GRAFANA_SECRET" => Some("grafana-client-secret".into()),
            _ => None,
        }
    }

    const GOOD: &str = r#"
issuer = "https://sso.example.com/"
listen = "127.0.0.1:9000"
[wecom]
corp_id = "ww7f3c2a1b9d8e6f50"
agent_id = 1000002
secret_env = "WECOM_SECRET"
[[clients]]
id = "grafana"
secret_env = "GRAFANA_SECRET"
redirect_uris = ["https://grafana.example.com/login/generic_oauth"]
[[clients]]
id = "cli"
public = true
redirect_uris = ["http://127.0.0.1:8400/callback"]
"#;

    #[test]
    fn valid_file_parses_with_defaults_and_env_secrets() {
        let c = parse(GOOD, "t.toml", &env).unwrap();
        assert_eq!(c.issuer, "https://sso.example.com");
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.wecom.secret, "wecom-app-secret");
        assert_eq!(c.wecom.api_base, WeComSettings::DEFAULT_API_BASE);
        assert_eq!(c.clients.len(), 2);
        assert!(c.clients[1].is_public());
        assert_eq!(
            c.clients[0].secret.as_ref().unwrap().expose(),
            "grafana-client-secret"
        );
        assert_eq!(c.lifetimes, Lifetimes::default());
        assert_eq!(c.login_event_retention, 30 * 86_400);
        assert_eq!(c.session, SessionSettings::default());
    }

    #[test]
    fn store_is_sled_unless_a_postgres_url_is_given_with_the_password_from_the_environment() {
        assert_eq!(
            parse(GOOD, "t.toml", &env).unwrap().store,
            StoreLocation::Sled
        );
        let env_pw = |name: &str| match name {
            "DB_PASSWORD" => Some("db-secret-pw".to_owned()),
            "PGPASSWORD" => Some("pg-fallback-pw".to_owned()),
            other => env(other),
        };
        let url = "postgres://wecom@db.internal:5432/wecom_oidc";
        let text = format!("store = \"{url}\"\nstore_password_env = \"DB_PASSWORD\"\n{GOOD}");
        let StoreLocation::Postgres(pg) = parse(&text, "t.toml", &env_pw).unwrap().store else {
            panic!("not postgres");
        };
        assert_eq!(pg.url, url);
        assert_eq!(
            pg.password.as_ref().map(Secret::expose),
            Some("db-secret-pw")
        );
        assert!(!format!("{pg:?}").contains("db-secret-pw"));
        assert!(pg.connect_config().is_ok());
        // Without store_password_env, PGPASSWORD (as libpq reads it).
        let text = format!("store = \"{url}\"\n{GOOD}");
        let StoreLocation::Postgres(pg) = parse(&text, "t.toml", &env_pw).unwrap().store else {
            panic!("not postgres");
        };
        assert_eq!(
            pg.password.as_ref().map(Secret::expose),
            Some("pg-fallback-pw")
        );
    }

    #[test]
    fn bad_store_settings_are_reported_naming_the_key_without_the_password() {
        for (line, key) in [
            ("store = \"mysql://wecom@db/x\"", "store:"),
            ("store = \"postgres://wecom:hunter2@db/x\"", "store:"),
            ("store = \"postgres://db/x\"", "store:"),
            ("store = 5", "store:"),
            (
                "store = \"postgres://wecom@db/x\"\nstore_password_env = \"UNSET_VAR\"",
                "store_password_env:",
            ),
            (
                "store_password_env = \"DB_PASSWORD\"",
                "store_password_env:",
            ),
        ] {
            let text = format!("{line}\n{GOOD}");
            let all = parse(&text, "t.toml", &env)
                .unwrap_err()
                .problems
                .join("\n");
            assert!(all.starts_with(key), "{line}: {all}");
            assert!(!all.contains("hunter2"), "{all}");
        }
    }

    #[test]
    fn session_table_and_logout_client_settings_are_parsed() {
        let text = format!("{GOOD}\n[session]\nttl = 3600\nidle_timeout = 600\n").replace(
            "redirect_uris = [\"https://grafana.example.com/login/generic_oauth\"]",
            "redirect_uris = [\"https://grafana.example.com/login/generic_oauth\"]\n\
             id_token_signed_response_alg = \"ES256\"\n\
             post_logout_redirect_uris = [\"https://grafana.example.com/\"]\n\
             backchannel_logout_uri = \"https://grafana.example.com/bcl\"\n\
             backchannel_logout_session_required = true",
        );
        let c = parse(&text, "t.toml", &env).unwrap();
        assert_eq!(c.session.ttl, 3600);
        assert_eq!(c.session.idle_timeout, Some(600));
        let s = &c.clients[0].settings;
        assert_eq!(s.id_token_signed_response_alg, Some(SigningAlg::Es256));
        assert_eq!(
            s.post_logout_redirect_uris,
            ["https://grafana.example.com/"]
        );
        assert_eq!(
            s.backchannel_logout_uri.as_deref(),
            Some("https://grafana.example.com/bcl")
        );
        assert!(s.backchannel_logout_session_required);
    }

    #[test]
    fn keys_reload_interval_defaults_to_30_s_and_is_bounded() {
        assert_eq!(
            parse(GOOD, "t.toml", &env).unwrap().keys_reload_interval,
            30
        );
        let set = format!("keys_reload_interval = 2\n{GOOD}");
        assert_eq!(parse(&set, "t.toml", &env).unwrap().keys_reload_interval, 2);
        for bad in ["0", "3601", "\"30s\""] {
            let text = format!("keys_reload_interval = {bad}\n{GOOD}");
            let all = parse(&text, "t.toml", &env)
                .unwrap_err()
                .problems
                .join("\n");
            assert!(all.contains("keys_reload_interval:"), "{bad}: {all}");
        }
    }

    #[test]
    fn alg_none_and_bad_session_values_are_reported() {
        let text = format!("{GOOD}\n[session]\nttl = 5\ncolour = 1\n").replace(
            "public = true",
            "public = true\nid_token_signed_response_alg = \"none\"\nbackchannel_logout_uri = \"ftp://x\"",
        );
        let all = parse(&text, "t.toml", &env)
            .unwrap_err()
            .problems
            .join("\n");
        for key in [
            "clients[1].id_token_signed_response_alg:",
            "clients[1].backchannel_logout_uri:",
            "session.ttl:",
            "session.colour:",
        ] {
            assert!(all.contains(key), "missing {key} in:\n{all}");
        }
    }

    #[test]
    fn event_retention_is_read_in_days_and_bounded() {
        let t = format!("{GOOD}\n[events]\nretention_days = 7\n");
        assert_eq!(
            parse(&t, "t", &env).unwrap().login_event_retention,
            7 * 86_400
        );
        let t = format!("{GOOD}\n[events]\nretention_days = 0\n");
        let err = parse(&t, "t", &env).unwrap_err();
        assert!(err
            .problems
            .iter()
            .any(|p| p.starts_with("events.retention_days:")));
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_its_key() {
        let text = r#"
issuer = "http://sso.example.com?x=1"
listen = "nowhere"
colour = "blue"
[wecom]
agent_id = "x"
secret_env = "MISSING_VAR"
[[clients]]
id = "a"
redirect_uris = ["https://a.example/cb#frag"]
[[clients]]
id = "a"
public = true
secret = "s"
redirect_uris = []
[tokens]
code_ttl = 100000
"#;
        let err = parse(text, "bad.toml", &env).unwrap_err();
        let all = err.problems.join("\n");
        for key in [
            "issuer:",
            "listen:",
            "colour:",
            "wecom.corp_id:",
            "wecom.agent_id:",
            "wecom.secret_env:",
            "clients[0].secret_env:",
            "clients[0].redirect_uris[0]:",
            "clients[1].secret:",
            "clients[1].redirect_uris:",
            "tokens.code_ttl:",
        ] {
            assert!(all.contains(key), "missing problem for {key} in:\n{all}");
        }
        assert!(err.to_string().starts_with("bad.toml has "));
    }

    #[test]
    fn secrets_never_appear_in_errors_or_debug() {
        let c = parse(GOOD, "t.toml", &env).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("grafana-client-secret"));
        assert!(!dbg.contains("wecom-app-secret"));
    }

    #[test]
    fn plain_http_issuer_is_allowed_only_on_loopback() {
        let t = GOOD.replace("https://sso.example.com/", "http://127.0.0.1:8080");
        assert_eq!(
            parse(&t, "t", &env).unwrap().issuer,
            "http://127.0.0.1:8080"
        );
        let t = GOOD.replace("https://sso.example.com/", "http://sso.example.com");
        assert!(parse(&t, "t", &env).is_err());
    }

    #[test]
    fn grant_and_client_auth_keys_are_parsed() {
        use sha2::{Digest, Sha256};
        let hash = hex::encode(Sha256::digest(b"a-high-entropy-secret"));
        let jwk = josekit::jwk::Jwk::generate_ec_key(josekit::jwk::alg::ec::EcCurve::P256)
            .expect("key")
            .to_public_key()
            .expect("public");
        let jwks = serde_json::json!({ "keys": [serde_json::Value::Object(jwk.as_ref().clone())] })
            .to_string()
            .replace('"', "\\\"");
        let text = format!(
            r#"{GOOD}
[[clients]]
id = "hashed"
secret_sha256 = "{hash}"
token_endpoint_auth_method = "client_secret_post"
access_token_format = "jwt"
access_token_audience = "https://api.example.com"
allow_offline_access = false
redirect_uris = ["https://h.example/cb"]
[[clients]]
id = "pkj"
jwks = "{jwks}"
redirect_uris = ["https://p.example/cb"]
[tokens]
refresh_token_ttl = 86400
grant_max_lifetime = 604800
[limits]
token_burst = 10
callback_per_minute = 30
authorize_burst = 40
"#
        );
        let c = parse(&text, "t.toml", &env).expect("valid");
        let hashed = &c.clients[2];
        assert!(!hashed.is_public());
        assert!(hashed.secret_matches("a-high-entropy-secret"));
        assert_eq!(
            hashed.settings.token_endpoint_auth_method,
            Some(AuthMethod::ClientSecretPost)
        );
        assert_eq!(hashed.settings.access_token_format, AccessTokenFormat::Jwt);
        assert!(!hashed.allows_offline_access());
        let pkj = &c.clients[3];
        assert!(!pkj.is_public());
        assert!(pkj.accepts_auth_method(AuthMethod::PrivateKeyJwt));
        assert!(!pkj.accepts_auth_method(AuthMethod::ClientSecretBasic));
        assert_eq!(c.lifetimes.refresh_token, 86400);
        assert_eq!(c.lifetimes.grant, Some(604800));
        assert_eq!(c.limits.token_burst, 10);
        assert_eq!(c.limits.callback_per_minute, 30);
        assert_eq!(c.limits.authorize_burst, 40);
        assert_eq!(
            c.limits.authorize_per_minute,
            RateLimits::default().authorize_per_minute
        );
        assert_eq!(
            c.limits.token_per_minute,
            RateLimits::default().token_per_minute
        );
        // The defaults: 30-day refresh tokens, no absolute grant limit.
        let d = parse(GOOD, "t.toml", &env).expect("valid");
        assert_eq!(d.lifetimes.refresh_token, 30 * 24 * 3600);
        assert_eq!(d.lifetimes.grant, None);
        assert!(d.clients[0].allows_offline_access());
        assert!(!d.clients[1].allows_offline_access());
    }

    #[test]
    fn inconsistent_client_auth_settings_are_reported_naming_their_keys() {
        let text = format!(
            r#"{GOOD}
[[clients]]
id = "a"
secret = "s"
secret_sha256 = "not-a-hash"
token_endpoint_auth_method = "private_key_jwt"
access_token_format = "paseto"
redirect_uris = ["https://a.example/cb"]
[[clients]]
id = "b"
public = true
token_endpoint_auth_method = "client_secret_basic"
jwks = "{{not json"
redirect_uris = ["https://b.example/cb"]
[[clients]]
id = "c"
secret = "s"
token_endpoint_auth_method = "none"
redirect_uris = ["https://c.example/cb"]
[limits]
token_burst = 0
"#
        );
        let err = parse(&text, "bad.toml", &env).expect_err("invalid");
        let all = err.problems.join("\n");
        for key in [
            "clients[2].secret_sha256:",
            "clients[2].token_endpoint_auth_method:",
            "clients[2].access_token_format:",
            "clients[3].jwks:",
            "clients[3].token_endpoint_auth_method:",
            "clients[4].token_endpoint_auth_method:",
            "limits.token_burst:",
        ] {
            assert!(all.contains(key), "missing problem for {key} in:\n{all}");
        }
    }

    #[test]
    fn max_pending_authorizations_is_read_bounded_and_defaults_to_100k() {
        let d = parse(GOOD, "t.toml", &env).expect("valid");
        assert_eq!(d.limits.max_pending_authorizations, 100_000);
        let text = format!("{GOOD}\n[limits]\nmax_pending_authorizations = 5000\n");
        let c = parse(&text, "t.toml", &env).expect("valid");
        assert_eq!(c.limits.max_pending_authorizations, 5000);
        for bad in ["0", "99", "1000000000", "\"many\""] {
            let text = format!("{GOOD}\n[limits]\nmax_pending_authorizations = {bad}\n");
            let err = parse(&text, "t.toml", &env).expect_err(bad);
            assert!(
                err.problems
                    .iter()
                    .any(|p| p.starts_with("limits.max_pending_authorizations:")),
                "{bad}: {:?}",
                err.problems
            );
        }
    }

    #[test]
    fn invalid_toml_is_reported_not_panicked() {
        let err = parse("issuer = ", "t", &env).unwrap_err();
        assert!(err.problems[0].starts_with("not valid TOML"));
    }

    #[test]
    fn wecom_profile_groups_sub_callback_and_verify_keys_parse() {
        let t = GOOD.replace(
            "secret_env = \"WECOM_SECRET\"\n",
            r#"secret_env = "WECOM_SECRET"
privateinfo = "when_requested"
email = "template"
email_template = "{userid_lower}@corp.example.com"
email_verified = true
name_claim = "alias"
username_claim = "userid_lower"
sub = "lowercase"
groups = ["paths", "tags"]
groups_cache_secs = 120
callback_token = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
callback_aes_key = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
verify_files = ["/srv/WW_verify_Ab12.txt"]
"#,
        );
        let c = parse(&t, "t.toml", &env).unwrap();
        let w = &c.wecom;
        assert_eq!(w.privateinfo, PrivateInfo::WhenRequested);
        assert_eq!(
            w.profile.email,
            EmailPolicy::Template("{userid_lower}@corp.example.com".into())
        );
        assert!(w.profile.email_verified);
        assert_eq!(w.profile.name, ClaimSource::Alias);
        assert_eq!(w.profile.preferred_username, ClaimSource::UseridLower);
        assert_eq!(w.subject, SubjectMode::Lowercase);
        assert!(w.groups.paths && w.groups.tags && !w.groups.names && !w.groups.ids);
        assert_eq!(w.groups.cache_ttl, Duration::from_secs(120));
        assert!(w.callback.is_some());
        assert_eq!(
            w.verify_files,
            vec![PathBuf::from("/srv/WW_verify_Ab12.txt")]
        );
        // The callback keys never reach Debug output.
        assert!(!format!("{c:?}").contains("hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"));
    }

    #[test]
    fn bad_wecom_option_values_are_each_reported_naming_the_key() {
        let t = GOOD.replace(
            "secret_env = \"WECOM_SECRET\"\n",
            r#"secret_env = "WECOM_SECRET"
privateinfo = "sometimes"
email = "template"
name_claim = "nickname"
sub = "pairwise-ish"
groups = ["roles"]
callback_token = "t"
verify_files = ["/srv/config.toml"]
"#,
        );
        let err = parse(&t, "t.toml", &env).unwrap_err();
        let all = err.problems.join("\n");
        for key in [
            "wecom.privateinfo:",
            "wecom.email_template:",
            "wecom.name_claim:",
            "wecom.sub:",
            "wecom.groups:",
            "wecom.callback_aes_key_env:",
            "wecom.verify_files[0]:",
        ] {
            assert!(all.contains(key), "missing problem for {key} in:\n{all}");
        }
    }

    #[test]
    fn wecom_defaults_are_silent_login_upstream_email_and_userid_sub() {
        let w = parse(GOOD, "t.toml", &env).unwrap().wecom;
        assert_eq!(w.privateinfo, PrivateInfo::Never);
        assert_eq!(w.profile, ProfileMapping::default());
        assert_eq!(w.subject, SubjectMode::Userid);
        assert_eq!(w.groups, GroupOptions::default());
        assert!(w.callback.is_none() && w.verify_files.is_empty());
    }

    #[test]
    fn several_wecom_apps_parse_and_clients_must_name_an_existing_one() {
        let t = r#"
issuer = "https://sso.example.com"
[[wecom]]
name = "hq"
corp_id = "ww7f3c2a1b9d8e6f50"
agent_id = 1000002
secret_env = "WECOM_SECRET"
[[wecom]]
name = "branch"
corp_id = "ww0000000000000001"
agent_id = 1000005
secret = "branch-secret"
[[clients]]
id = "grafana"
secret_env = "GRAFANA_SECRET"
redirect_uris = ["https://grafana.example.com/login/generic_oauth"]
wecom_app = "branch"
"#;
        let c = parse(t, "t.toml", &env).unwrap();
        assert_eq!(c.wecom.id, "hq");
        assert_eq!(c.more_wecom_apps.len(), 1);
        assert_eq!(c.more_wecom_apps[0].id, "branch");
        assert_eq!(c.clients[0].settings.connector.as_deref(), Some("branch"));

        let bad = t
            .replace("wecom_app = \"branch\"", "wecom_app = \"nowhere\"")
            .replace("secret = \"branch-secret\"", "");
        let err = parse(&bad, "t.toml", &env).unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("wecom[1].secret_env:"), "{all}");
        let dup = t.replace("name = \"branch\"", "name = \"hq\"");
        let err = parse(&dup, "t.toml", &env).unwrap_err();
        assert!(err.problems.join("\n").contains("wecom[1].name:"), "{err}");
        let unknown = t.replace("wecom_app = \"branch\"", "wecom_app = \"nowhere\"");
        let err = parse(&unknown, "t.toml", &env).unwrap_err();
        assert!(
            err.problems.join("\n").contains("clients[0].wecom_app:"),
            "{err}"
        );
    }
}
