//! The configuration file (TOML) and its validation. `load` reports every problem at once,
//! each naming its key, so an operator fixes the file in one pass.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use crate::connector::wecom::WeComSettings;
use crate::provider::{Client, Lifetimes};
use crate::secret::Secret;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Issuer identifier, no trailing slash.
    pub issuer: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the embedded store lives.
    pub data_dir: PathBuf,
    /// Where signing keys live.
    pub keys_dir: PathBuf,
    /// The WeCom app logins go through.
    pub wecom: WeComSettings,
    /// Registered clients.
    pub clients: Vec<Client>,
    /// Credential lifetimes.
    pub lifetimes: Lifetimes,
    /// How long login events are kept, in seconds (`[events] retention_days`).
    pub login_event_retention: i64,
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

struct Validator<'a> {
    problems: Vec<String>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

const TOP_KEYS: &[&str] = &[
    "issuer", "listen", "data_dir", "keys_dir", "wecom", "clients", "tokens", "events",
];
const EVENTS_KEYS: &[&str] = &["retention_days"];
const WECOM_KEYS: &[&str] = &[
    "corp_id",
    "agent_id",
    "secret",
    "secret_env",
    "api_base",
    "oauth_base",
    "sso_base",
    "timeout_secs",
];
const CLIENT_KEYS: &[&str] = &[
    "id",
    "name",
    "secret",
    "secret_env",
    "redirect_uris",
    "public",
];
const TOKEN_KEYS: &[&str] = &[
    "auth_request_ttl",
    "code_ttl",
    "access_token_ttl",
    "id_token_ttl",
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
        let wecom = match t.get("wecom") {
            Some(Value::Table(w)) => self.wecom(w),
            Some(_) => {
                self.problem("wecom", "must be a table ([wecom])");
                None
            }
            None => {
                self.problem("wecom", "the [wecom] section is required");
                None
            }
        };
        let clients = self.clients(t);
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
        Some(Config {
            login_event_retention: login_event_retention?,
            issuer: issuer?,
            listen: listen?,
            data_dir,
            keys_dir,
            wecom: wecom?,
            clients,
            lifetimes: lifetimes?,
        })
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
        Some(WeComSettings {
            corp_id: corp_id?,
            agent_id: agent_id.filter(|i| *i > 0)?,
            secret: secret?.expose().to_string(),
            api_base: api_base?,
            oauth_base: oauth_base?,
            sso_base: sso_base?,
            timeout: timeout?,
        })
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
        if public && secret.is_some() {
            self.problem(
                &format!("{key}.secret"),
                "a public client has no secret (remove secret/secret_env or public = true)",
            );
        }
        if !public && secret.is_none() && !c.contains_key("secret") && !c.contains_key("secret_env")
        {
            self.problem(
                &format!("{key}.secret_env"),
                "a confidential client needs secret or secret_env (or set public = true and use PKCE)",
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
        let id = id?;
        if !public && secret.is_none() {
            return None;
        }
        Some(Client {
            name: name.unwrap_or_else(|| id.clone()),
            id,
            secret: if public { None } else { secret },
            redirect_uris: uris,
            settings: Default::default(),
        })
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
        })
    }
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
    fn invalid_toml_is_reported_not_panicked() {
        let err = parse("issuer = ", "t", &env).unwrap_err();
        assert!(err.problems[0].starts_with("not valid TOML"));
    }
}
