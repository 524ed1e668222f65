//! Changing a running server's configuration without a restart (`SIGHUP`, `POST /v1/reload`):
//! re-reads the configuration file and the key folder, validates them as a start would, and
//! swaps in what can change live while requests keep flowing.
//!
//! Live: the clients (`[[clients]]`), the signing keys of `keys_dir`, `[limits]`, `[tokens]` and
//! `[session]`. Each sits behind a handle the request path reads once per request (the client
//! registry, the key ring, the rate limiters, the CORS origins, the discovery and start page
//! snapshots), so a request in flight finishes with what it started with and sessions,
//! pending logins and connections are untouched.
//!
//! Not live — they name what the process was built around: the issuer (every token, cookie
//! and callback URL carries it), `listen`, `data_dir`, `store` and its password, the sled
//! cache, `keys_dir` itself and `keys_reload_interval`, the connectors (each holds an upstream
//! identity, a token cache and callback routes), `[events]` and `[ui]`. A change to one of these
//! is reported as a "needs a restart" line and the running value stays; the reload still
//! applies the live parts.
//!
//! A file with problems is refused whole, with the same list of problems `config::load` gives
//! at start (plus what only a running server can check: a client's signing algorithm without a
//! key, a client of a connector the server does not run), and the running configuration keeps
//! serving.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde::Serialize;

use crate::clock::SharedClock;
use crate::config::{self, Config};
use crate::provider::{discovery, Client, Provider};
use crate::tokens::{KeyStore, SigningAlg};
use crate::web::cors::CorsPolicy;
use crate::web::rate_limit::RateLimiters;
use crate::web::start::{ClientRow, ConnectorRow, StartInfo};

/// Top-level keys a running server cannot take over, each with why.
const RESTART_KEYS: &[(&str, &str)] = &[
    ("issuer", "tokens, cookies and callback URLs carry it"),
    ("listen", "the socket is bound at start"),
    ("data_dir", "the store and the admin socket live there"),
    ("store", "the store is opened at start"),
    ("sled_cache_mb", "the store is opened at start"),
    (
        "keys_dir",
        "the key folder is chosen at start (keys in it are reloaded)",
    ),
    (
        "keys_reload_interval",
        "the shared-key reloader starts with the server",
    ),
    (
        "connectors",
        "connectors hold upstream identities, tokens and routes",
    ),
    (
        "wecom",
        "connectors hold upstream identities, tokens and routes",
    ),
    ("events", "the event log's settings are read at start"),
    ("ui", "the pages' routes are built at start"),
];

/// The parts of a running server a reload replaces, as handles shared with the routes.
#[derive(Clone)]
pub struct LiveParts {
    /// The OIDC core (its clients, lifetimes, session settings, pending cap, key ring).
    pub provider: Arc<Provider>,
    /// The discovery document the routes serve.
    pub discovery: Arc<ArcSwap<Bytes>>,
    /// The rate limiters of `/token`, the callback and `/authorize`.
    pub limiters: RateLimiters,
    /// The origins the browser-facing APIs answer.
    pub cors: CorsPolicy,
    /// The start page's snapshot.
    pub start: Arc<ArcSwap<StartInfo>>,
    /// The start page's connector rows (connectors do not change live).
    pub connector_rows: Vec<ConnectorRow>,
    /// Whether a connector issues pairwise subjects (discovery says so).
    pub pairwise: bool,
    /// The server's own clients (`[ui] playground`, the `[admin]` console), kept registered
    /// across reloads.
    pub internal_clients: Vec<Client>,
    /// Whether the keys live in a shared store (then `keys_dir` is not read).
    pub keys_in_store: bool,
    /// The server's clock.
    pub clock: SharedClock,
}

/// The start page's snapshot for these clients and keys.
pub fn start_info(
    issuer: &str,
    connectors: &[ConnectorRow],
    clients: &[Client],
    discovery: &Bytes,
    keys: &KeyStore,
) -> StartInfo {
    StartInfo {
        issuer: issuer.to_owned(),
        connectors: connectors.to_vec(),
        clients: clients
            .iter()
            .map(|c| ClientRow {
                id: c.id.clone(),
                name: c.name.clone(),
                public: c.is_public(),
                redirect_uris: c.redirect_uris.clone(),
            })
            .collect(),
        discovery: StartInfo::pretty(discovery),
        jwks: StartInfo::pretty(&keys.jwks_bytes()),
    }
}

/// What a reload changed.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ReloadReport {
    /// Clients registered now.
    pub clients: usize,
    /// Signing keys published now.
    pub keys: usize,
    /// One line per change applied, then one "needs a restart" line per change not applied.
    pub changes: Vec<String>,
}

/// A reload refused: the running configuration keeps serving.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: the configuration was not reloaded; {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
pub struct ReloadRefused {
    /// The configuration file.
    pub file: String,
    /// Every problem, each naming its key.
    pub problems: Vec<String>,
}

/// Reloads a running server's configuration; one reload at a time.
pub struct Reloader {
    path: PathBuf,
    live: LiveParts,
    state: Mutex<Applied>,
}

struct Applied {
    /// The configuration whose live parts are in use.
    config: Config,
    /// The file's restart-only keys as the server started with them (never updated: a change
    /// stays "needs a restart" until the restart).
    started: toml::Table,
}

impl Reloader {
    /// A reloader for the server started from `path` with `config`.
    pub fn new(path: &Path, config: Config, live: LiveParts) -> Self {
        // Read once more for the raw keys; a file changed in between only moves a "needs a
        // restart" line to the first reload.
        let started = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
            .unwrap_or_default();
        Self {
            path: path.to_owned(),
            live,
            state: Mutex::new(Applied {
                config,
                started: restart_keys(&started),
            }),
        }
    }

    /// Re-reads the file and the key folder and applies them, or refuses them whole. Runs the
    /// file and key reading off the async workers. `actor` says who asked (logged).
    pub async fn reload(self: &Arc<Self>, actor: &str) -> Result<ReloadReport, ReloadRefused> {
        let this = self.clone();
        let result = tokio::task::spawn_blocking(move || this.reload_now())
            .await
            .unwrap_or_else(|e| {
                Err(ReloadRefused {
                    file: self.path.display().to_string(),
                    problems: vec![format!("the reload stopped: {e}")],
                })
            });
        match &result {
            Ok(report) => {
                tracing::info!(
                    actor,
                    clients = report.clients,
                    keys = report.keys,
                    "configuration reloaded"
                );
                for change in &report.changes {
                    tracing::info!(actor, "reload: {change}");
                }
            }
            Err(refused) => {
                tracing::error!(actor, file = %refused.file, "configuration NOT reloaded; the running configuration keeps serving");
                for p in &refused.problems {
                    tracing::error!(actor, "reload: {p}");
                }
            }
        }
        result
    }

    /// The reload itself, blocking.
    pub fn reload_now(&self) -> Result<ReloadReport, ReloadRefused> {
        let mut applied = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let file = self.path.display().to_string();
        let refuse = |problems| ReloadRefused {
            file: file.clone(),
            problems,
        };
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| refuse(vec![format!("cannot read the file: {e}")]))?;
        let new = config::parse(&text, &file, &|name| std::env::var(name).ok())
            .map_err(|e| refuse(e.problems))?;
        let table: toml::Table = toml::from_str(&text).unwrap_or_default();
        for deprecation in &new.deprecations {
            tracing::warn!(config = %file, "deprecated configuration: {deprecation}");
        }

        let l = &self.live;
        let keys = if l.keys_in_store {
            None
        } else {
            // The folder the server started with: a new `keys_dir` needs a restart.
            Some(
                KeyStore::load_or_generate_with(
                    &applied.config.keys_dir,
                    SigningAlg::Rs256,
                    l.clock.as_ref(),
                )
                .map_err(|e| refuse(vec![format!("keys_dir: {e}")]))?,
            )
        };
        let old_keys = l.provider.keys();
        let keys_now: &KeyStore = keys.as_ref().unwrap_or(&old_keys);
        let problems = self.running_problems(&new, keys_now);
        if !problems.is_empty() {
            return Err(refuse(problems));
        }
        let algs: Vec<&str> = keys_now
            .signing_algs()
            .into_iter()
            .map(SigningAlg::as_str)
            .collect();
        let issuer = l.provider.issuer();
        let doc = discovery::metadata_json_full(issuer, &algs, l.pairwise)
            .map_err(|e| refuse(vec![format!("discovery: {e}")]))?;

        let mut changes = client_changes(&applied.config.clients, &new.clients);
        changes.extend(key_changes(&old_keys, keys_now));
        let a = &applied.config;
        for (changed, what) in [
            (a.limits != new.limits, "[limits]"),
            (a.lifetimes != new.lifetimes, "[tokens]"),
            (a.session != new.session, "[session]"),
        ] {
            if changed {
                changes.push(format!("{what} changed"));
            }
        }
        // Compared by value where the configuration has one (a key written out with its default
        // is no change), by the file's text for the connectors, whose settings are opaque here.
        let raw = restart_keys(&table);
        let raw_changed = |k: &str| applied.started.get(k) != raw.get(k);
        for (key, why) in RESTART_KEYS {
            let changed = match *key {
                "issuer" => a.issuer != new.issuer,
                "listen" => a.listen != new.listen,
                "data_dir" => a.data_dir != new.data_dir,
                "store" => a.store != new.store,
                "sled_cache_mb" => a.sled_cache_mb != new.sled_cache_mb,
                "keys_dir" => a.keys_dir != new.keys_dir,
                "keys_reload_interval" => a.keys_reload_interval != new.keys_reload_interval,
                "events" => a.login_event_retention != new.login_event_retention,
                "ui" => a.playground != new.playground,
                other => raw_changed(other),
            };
            if changed {
                changes.push(format!(
                    "needs a restart: `{key}` changed; the running server keeps the value it started with ({why})"
                ));
            }
        }

        // Apply: keys first, so a client that needs a new key's algorithm finds it.
        let keys_now: Arc<KeyStore> = match keys {
            Some(k) => {
                l.provider.key_ring().replace(k);
                l.provider.keys()
            }
            None => old_keys,
        };
        let mut clients = new.clients.clone();
        clients.extend(l.internal_clients.iter().cloned());
        l.provider.reconfigure(
            clients,
            new.lifetimes,
            new.session,
            new.limits.max_pending_authorizations as usize,
        );
        l.cors.refresh(l.provider.clients());
        l.limiters.reconfigure(&new.limits);
        l.start.store(Arc::new(start_info(
            issuer,
            &l.connector_rows,
            &new.clients,
            &doc,
            &keys_now,
        )));
        l.discovery.store(Arc::new(doc));
        let report = ReloadReport {
            clients: new.clients.len(),
            keys: keys_now.keys().len(),
            changes,
        };
        // Keep the running values of what did not change live, so the next reload compares
        // the live parts against what is in use.
        applied.config = Config {
            clients: new.clients,
            lifetimes: new.lifetimes,
            session: new.session,
            limits: new.limits,
            ..applied.config.clone()
        };
        Ok(report)
    }

    /// What only the running server can check about `new`: every problem at once.
    fn running_problems(&self, new: &Config, keys: &KeyStore) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, c) in new.clients.iter().enumerate() {
            if let Some(alg) = c.settings.id_token_signed_response_alg {
                if !keys.has_alg(alg) {
                    problems.push(format!(
                        "clients[{i}].id_token_signed_response_alg: there is no active {} key: run `wecom-oidc keys generate --alg {}`, then reload",
                        alg.as_str(),
                        alg.as_str()
                    ));
                }
            }
            if let Some(connector) = &c.settings.connector {
                if self.live.provider.connector(connector).is_none() {
                    problems.push(format!(
                        "clients[{i}].connector: the running server has no connector {connector:?}; a new connector needs a restart"
                    ));
                }
            }
            if self.live.internal_clients.iter().any(|p| p.id == c.id) {
                problems.push(format!(
                    "clients[{i}].id: {:?} is reserved for the server's own pages ([ui] playground, [admin] console)",
                    c.id
                ));
            }
        }
        problems
    }
}

/// The restart-only top-level entries of a configuration file.
fn restart_keys(table: &toml::Table) -> toml::Table {
    table
        .iter()
        .filter(|(k, _)| RESTART_KEYS.iter().any(|(r, _)| r == k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Added, changed and removed clients, by id.
fn client_changes(old: &[Client], new: &[Client]) -> Vec<String> {
    // `Debug` shows every setting but redacts secrets: compare those apart (neither value is
    // an attacker's guess, so no constant-time comparison is needed).
    let by_id = |clients: &[Client]| -> BTreeMap<String, _> {
        clients
            .iter()
            .map(|c| {
                let secret = c.secret.as_ref().map(|s| s.expose().to_owned());
                (c.id.clone(), (format!("{c:?}"), secret))
            })
            .collect()
    };
    let (old, new) = (by_id(old), by_id(new));
    let d = differences(&old, &new);
    let lines = |ids: Vec<&str>, verb: &str| -> Vec<String> {
        ids.iter()
            .map(|id| format!("clients: {verb} {id:?}"))
            .collect()
    };
    [
        lines(d.added, "added"),
        lines(d.changed, "changed"),
        lines(d.removed, "removed"),
    ]
    .concat()
}

/// Keys published or no longer published, by kid.
fn key_changes(old: &KeyStore, new: &KeyStore) -> Vec<String> {
    let by_kid = |k: &KeyStore| -> BTreeMap<String, String> {
        k.keys()
            .iter()
            .map(|i| (i.kid.clone(), format!("{} {:?}", i.alg.as_str(), i.status)))
            .collect()
    };
    let (old, new) = (by_kid(old), by_kid(new));
    let d = differences(&old, &new);
    let added = d
        .added
        .iter()
        .map(|kid| format!("keys: added {kid} ({})", new[*kid]));
    let changed = d
        .changed
        .iter()
        .map(|kid| format!("keys: {kid} is now {}", new[*kid]));
    let removed = d.removed.iter().map(|kid| format!("keys: removed {kid}"));
    added.chain(changed).chain(removed).collect()
}

/// The entries added to, changed in and removed from `old`, by key.
struct Differences<'a> {
    added: Vec<&'a str>,
    changed: Vec<&'a str>,
    removed: Vec<&'a str>,
}

fn differences<'a, T: PartialEq>(
    old: &'a BTreeMap<String, T>,
    new: &'a BTreeMap<String, T>,
) -> Differences<'a> {
    let mut d = Differences {
        added: Vec::new(),
        changed: Vec::new(),
        removed: Vec::new(),
    };
    for (id, now) in new {
        match old.get(id) {
            None => d.added.push(id),
            Some(was) if was != now => d.changed.push(id),
            Some(_) => {}
        }
    }
    d.removed = old
        .keys()
        .filter(|id| !new.contains_key(*id))
        .map(String::as_str)
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const NOW: i64 = 1_900_000_000;

    fn file(dir: &Path, clients: &str, extra: &str) -> String {
        format!(
            r#"
issuer = "https://sso.example.com"
data_dir = "{data}"
keys_dir = "{keys}"
{extra}
[wecom]
corp_id = "ww0123456789abcdef"
agent_id = 1000002
secret = "app-secret"
api_base = "http://127.0.0.1:9"
oauth_base = "http://127.0.0.1:9"
sso_base = "http://127.0.0.1:9"
{clients}
"#,
            data = dir.join("data").display(),
            keys = dir.join("keys").display(),
        )
    }

    const ONE: &str = r#"
[[clients]]
id = "one"
secret = "one-secret"
redirect_uris = ["https://one.example/cb"]
"#;

    const TWO: &str = r#"
[[clients]]
id = "two"
public = true
redirect_uris = ["https://two.example/cb"]
"#;

    async fn running(dir: &Path) -> (Arc<Reloader>, Arc<Provider>, PathBuf) {
        let path = dir.join("wecom-oidc.toml");
        std::fs::write(&path, file(dir, ONE, "")).unwrap();
        let config = config::load(&path).unwrap();
        let app = crate::app::build(&config, Arc::new(ManualClock::new(NOW)))
            .await
            .unwrap();
        let provider = app.provider.clone();
        (
            Arc::new(Reloader::new(&path, config, app.live)),
            provider,
            path,
        )
    }

    #[tokio::test]
    async fn a_reload_swaps_clients_lifetimes_and_session_settings_for_every_holder() {
        let dir = tempfile::tempdir().unwrap();
        let (reloader, provider, path) = running(dir.path()).await;
        let clients = provider.clients().clone();
        std::fs::write(
            &path,
            file(
                dir.path(),
                &format!("{ONE}{TWO}"),
                "[tokens]\naccess_token_ttl = 600\n[session]\nttl = 3600\n[limits]\nmax_pending_authorizations = 500",
            ),
        )
        .unwrap();
        let report = reloader.reload("test").await.unwrap();
        assert_eq!(report.clients, 2);
        assert_eq!(
            report.changes,
            [
                "clients: added \"two\"",
                "[limits] changed",
                "[tokens] changed",
                "[session] changed"
            ]
        );
        // Every holder of the registry sees the new set.
        assert!(clients.get("two").is_some_and(|c| c.is_public()));
        // The routes' snapshots follow: CORS answers the new public client's origin, the start
        // page lists it.
        assert!(reloader.live.cors.allow("https://two.example").is_some());
        assert!(reloader
            .live
            .start
            .load()
            .clients
            .iter()
            .any(|c| c.id == "two"));
        assert_eq!(provider.lifetimes().access_token, 600);
        assert_eq!(provider.session_settings().ttl, 3600);
        // Nothing changed since: nothing to report.
        assert!(reloader.reload("test").await.unwrap().changes.is_empty());
    }

    #[tokio::test]
    async fn a_refused_file_names_the_problems_of_a_start_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (reloader, provider, path) = running(dir.path()).await;
        let broken = file(dir.path(), TWO, "[tokens]\naccess_token_ttl = 1\nshade = 2");
        std::fs::write(&path, &broken).unwrap();
        let refused = reloader.reload("test").await.unwrap_err();
        assert_eq!(refused.problems, config::load(&path).unwrap_err().problems);
        assert_eq!(refused.problems.len(), 2, "{:?}", refused.problems);
        assert!(provider.clients().get("two").is_none());
        assert!(provider.clients().get("one").is_some());
        assert_eq!(provider.lifetimes().access_token, 3600);
    }

    #[tokio::test]
    async fn restart_only_keys_are_reported_until_the_restart_and_unknown_connectors_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (reloader, provider, path) = running(dir.path()).await;
        // The default written out is no change.
        std::fs::write(&path, file(dir.path(), ONE, "listen = \"0.0.0.0:8080\"")).unwrap();
        assert!(reloader.reload("test").await.unwrap().changes.is_empty());
        let moved = file(dir.path(), ONE, "listen = \"127.0.0.1:9999\"")
            .replace("app-secret", "new-app-secret");
        std::fs::write(&path, &moved).unwrap();
        for _ in 0..2 {
            let report = reloader.reload("test").await.unwrap();
            assert_eq!(report.changes.len(), 2, "{:?}", report.changes);
            assert!(report.changes[0].starts_with("needs a restart: `listen` changed"));
            assert!(report.changes[1].starts_with("needs a restart: `wecom` changed"));
        }
        assert_eq!(provider.issuer(), "https://sso.example.com");
        let elsewhere = format!("{ONE}connector = \"branch\"\n");
        let text = format!(
            "{}\n[[connectors]]\ntype = \"wecom\"\nid = \"branch\"\ncorp_id = \"ww0123456789abcdef\"\nagent_id = 1000003\nsecret = \"s\"\n",
            file(dir.path(), &elsewhere, "").replace("[wecom]", "[[connectors]]\ntype = \"wecom\"\nid = \"wecom\"")
        );
        std::fs::write(&path, text).unwrap();
        let refused = reloader.reload("test").await.unwrap_err();
        assert!(
            refused
                .problems
                .iter()
                .any(|p| p.contains("no connector \"branch\"")),
            "{:?}",
            refused.problems
        );
    }
}
