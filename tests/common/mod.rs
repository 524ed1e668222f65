//! Helpers the end-to-end test binaries share (each `tests/*.rs` file is a crate of its own and
//! includes this module with `mod common;`): browsers and redirect walks, token and userinfo
//! requests, JWT decoding, PKCE values, and providers started in process on `127.0.0.1:0`
//! beside the WeCom simulator (the demo, or one configured in code).
//!
//! Each binary uses a part of it, hence `dead_code` is allowed here and only here.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::header::HeaderMap;
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use wecom_oidc::clock::{SharedClock, SystemClock};
use wecom_oidc::config::Config;
use wecom_oidc::connector::registry::ConnectorConfig;
use wecom_oidc::connector::wecom::WeComSettings;
use wecom_oidc::demo::{self, DemoOptions, RunningDemo};
use wecom_oidc::provider::Client;
use wecom_oidc::simulator::{AppSpec, Simulator, SimulatorConfig};
use wecom_oidc::storage::Store;

// Not every binary uses both (and `dead_code` does not cover re-exports).
#[allow(unused_imports)]
pub use wecom_oidc::testkit::{client, wecom_app};

/// The code verifier of RFC 7636 appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// Its S256 code challenge (RFC 7636 appendix B).
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The S256 code challenge of `verifier` (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Browsers and redirects
// ---------------------------------------------------------------------------------------------

/// What every test browser is: it keeps cookies and walks redirects by hand, so each hop can be
/// checked.
pub fn browser_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
}

/// A browser with its own cookie jar (per host: one session cookie serves every instance on
/// 127.0.0.1) that follows no redirects.
pub fn browser() -> reqwest::Client {
    browser_builder().build().expect("client")
}

/// A [`browser`] that sends `user_agent` (WeCom's in-app browser, or a desktop one).
pub fn browser_as(user_agent: &str) -> reqwest::Client {
    browser_builder()
        .user_agent(user_agent)
        .build()
        .expect("client")
}

/// The `Location` of a redirect, which must have one.
pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location in a {} answer", resp.status()))
        .to_str()
        .expect("ASCII Location")
        .to_owned()
}

/// The query parameters of `url`.
pub fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .expect("URL")
        .query_pairs()
        .into_owned()
        .collect()
}

/// `{issuer}/authorize` with `params`, in order.
pub fn authorize_url(issuer: &str, params: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&format!("{issuer}/authorize")).expect("issuer URL");
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

/// Where a walk of redirects ended.
#[derive(Debug)]
pub struct Walk {
    /// Every URL requested, in order.
    pub visited: Vec<String>,
    /// The redirect target the walk stopped at, or the URL of the page it ended on.
    pub end: String,
    /// The status of the last response.
    pub status: StatusCode,
    /// The body of the final page, when the walk ended on one (not on a redirect).
    pub body: Option<String>,
    /// The headers of the last response.
    pub headers: HeaderMap,
}

impl Walk {
    /// Whether the walk went through the demo's WeCom simulator.
    pub fn went_through_wecom(&self) -> bool {
        self.visited
            .iter()
            .any(|u| u.contains(demo::SIMULATOR_PATH))
    }

    /// A query parameter of the URL the walk ended at.
    pub fn param(&self, name: &str) -> Option<String> {
        query(&self.end).remove(name)
    }

    /// The query of the redirect the walk stopped at; panics when it ended on a page.
    pub fn redirect_query(&self) -> HashMap<String, String> {
        if let Some(body) = &self.body {
            panic!(
                "expected a redirect, the walk ended on a {} page at {}: {body}",
                self.status, self.end
            );
        }
        query(&self.end)
    }
}

/// Where a browser's login ends: the RP callback's query, or a page we showed instead.
#[derive(Debug)]
pub enum Outcome {
    /// At the client's redirect URI, with this query.
    Redirect(HashMap<String, String>),
    /// On a page of ours.
    Page(StatusCode, String),
}

impl Outcome {
    /// The query of the client redirect; panics on a page.
    pub fn query(self) -> HashMap<String, String> {
        match self {
            Outcome::Redirect(q) => q,
            Outcome::Page(status, body) => panic!("a page {status} instead of a redirect: {body}"),
        }
    }
}

impl From<Walk> for Outcome {
    fn from(w: Walk) -> Outcome {
        match w.body {
            None => Outcome::Redirect(query(&w.end)),
            Some(body) => Outcome::Page(w.status, body),
        }
    }
}

/// Follows redirects from `start` (relative ones against the URL that sent them) until one
/// points at a URL starting with `stop`, or an answer is not a redirect (with an empty `stop`,
/// until a page).
pub async fn walk(b: &reqwest::Client, start: &str, stop: &str) -> Walk {
    walk_rewriting(b, start, stop, |_| None).await
}

/// Like [`walk`]; a redirect for which `rewrite` returns a URL goes there instead (a test that
/// stands in for the member at WeCom's login page mints the code here).
pub async fn walk_rewriting(
    b: &reqwest::Client,
    start: &str,
    stop: &str,
    rewrite: impl FnMut(&str) -> Option<String>,
) -> Walk {
    try_walk(b, start, stop, rewrite).await.expect("request")
}

/// Like [`walk_rewriting`]; `Err` on a transport error (the server is gone).
pub async fn try_walk(
    b: &reqwest::Client,
    start: &str,
    stop: &str,
    mut rewrite: impl FnMut(&str) -> Option<String>,
) -> Result<Walk, reqwest::Error> {
    let mut url = url::Url::parse(start).expect("start URL");
    let mut visited = Vec::new();
    for _ in 0..12 {
        visited.push(url.to_string());
        let resp = b.get(url.clone()).send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if !status.is_redirection() {
            let body = resp.text().await?;
            return Ok(Walk {
                visited,
                end: url.to_string(),
                status,
                body: Some(body),
                headers,
            });
        }
        let next = url.join(&location(&resp)).expect("Location URL");
        if !stop.is_empty() && next.as_str().starts_with(stop) {
            return Ok(Walk {
                visited,
                end: next.to_string(),
                status,
                body: None,
                headers,
            });
        }
        url = match rewrite(next.as_str()) {
            Some(other) => url::Url::parse(&other).expect("rewritten URL"),
            None => next,
        };
    }
    panic!("too many redirects: {visited:?}");
}

// ---------------------------------------------------------------------------------------------
// Requests to the provider
// ---------------------------------------------------------------------------------------------

/// POSTs `form` to `url`, with HTTP Basic credentials when given: the status, the headers and
/// the JSON body (`Null` when the body is not JSON).
pub async fn post_form(
    url: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = reqwest::Client::new().post(url).form(form);
    if let Some((user, password)) = basic {
        req = req.basic_auth(user, Some(password));
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

/// The form of the authorization_code grant (RFC 6749 §4.1.3) for `code` and `redirect_uri`,
/// with `extra` parameters after it.
pub fn code_form<'a>(
    code: &'a str,
    redirect_uri: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    form.extend_from_slice(extra);
    form
}

/// A token request of `client` (HTTP Basic with `secret`) at `issuer`: status and JSON body.
pub async fn token(
    issuer: &str,
    (client, secret): (&str, &str),
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let (status, _, body) =
        post_form(&format!("{issuer}/token"), form, Some((client, secret))).await;
    (status, body)
}

/// `GET {issuer}/userinfo` with `access_token` as the bearer token.
pub async fn userinfo(issuer: &str, access_token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{issuer}/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo request")
}

/// A relying party of the `openidconnect` crate, as a client application would set it up.
pub type Rp = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The `openidconnect` relying party of client `client_id`, set up from `issuer`'s discovery
/// document, and the HTTP client (following no redirects) it talks with.
pub async fn discover_rp(
    issuer: &str,
    client_id: &str,
    secret: &str,
    redirect_uri: &str,
) -> (Rp, reqwest::Client) {
    use openidconnect::core::{CoreClient, CoreProviderMetadata};
    use openidconnect::{ClientId, ClientSecret, IssuerUrl, RedirectUrl};
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let issuer = IssuerUrl::new(issuer.to_owned()).expect("issuer URL");
    let meta = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .expect("discovery");
    let rp = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(client_id.into()),
        Some(ClientSecret::new(secret.into())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect_uri.into()).expect("redirect URI"));
    (rp, http)
}

/// `v[key]`, which must be a string.
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// The claims of a JWT, unverified (the tests that need it verify signatures separately).
pub fn claims_of(jwt: &str) -> Value {
    jwt_part(jwt, 1)
}

/// The JOSE header of a JWT.
pub fn header_of(jwt: &str) -> Value {
    jwt_part(jwt, 0)
}

fn jwt_part(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).expect("a JWT part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

// ---------------------------------------------------------------------------------------------
// Config files
// ---------------------------------------------------------------------------------------------

/// A `wecom-oidc.toml` in `dir` for the commands that read a config file (`check`, `snippet`,
/// `events`…): the simulator's demo app with its WeCom APIs and login pages at `api_base`, the
/// demo corp's id and secret unless `corp_id` or `secret` say otherwise, and a `grafana` client.
pub fn config_file(
    dir: &tempfile::TempDir,
    api_base: &str,
    corp_id: Option<&str>,
    secret: Option<&str>,
) -> PathBuf {
    config_file_with(dir, api_base, corp_id, secret, "")
}

/// [`config_file`] with `wecom_lines` added to its `[wecom]` table.
pub fn config_file_with(
    dir: &tempfile::TempDir,
    api_base: &str,
    corp_id: Option<&str>,
    secret: Option<&str>,
    wecom_lines: &str,
) -> PathBuf {
    let text = format!(
        r#"
issuer = "https://sso.example.com:8443"
data_dir = "{data}"
keys_dir = "{keys}"
{wecom}{wecom_lines}[[clients]]
id = "grafana"
secret = "grafana-secret-value"
redirect_uris = ["https://grafana.example.com/login/generic_oauth"]
"#,
        data = dir.path().join("data").display(),
        keys = dir.path().join("keys").display(),
        wecom = wecom_section_of(api_base, corp_id, secret),
    );
    let path = dir.path().join("wecom-oidc.toml");
    std::fs::write(&path, text).expect("write the config file");
    path
}

// ---------------------------------------------------------------------------------------------
// Providers
// ---------------------------------------------------------------------------------------------

/// The demo (provider + WeCom simulator) on `127.0.0.1:0` with `clients` registered beside the
/// demo client, a temporary data folder and the system clock.
pub async fn start_demo(auto_login: Option<&str>, clients: Vec<Client>) -> RunningDemo {
    start_demo_with(auto_login, clients, None, Arc::new(SystemClock)).await
}

/// [`start_demo`] with its data in `data_dir` (`None`: a temporary folder) and `clock`.
pub async fn start_demo_with(
    auto_login: Option<&str>,
    clients: Vec<Client>,
    data_dir: Option<PathBuf>,
    clock: SharedClock,
) -> RunningDemo {
    demo::spawn(demo_options(auto_login, clients, data_dir, clock).await)
        .await
        .expect("demo starts")
}

/// [`start_demo_with`] with the rate limits `limits`, served by the production server (peer
/// addresses reach the limiters).
pub async fn start_demo_with_limits(
    auto_login: Option<&str>,
    clients: Vec<Client>,
    data_dir: Option<PathBuf>,
    clock: SharedClock,
    limits: wecom_oidc::web::rate_limit::RateLimits,
) -> RunningDemo {
    let (router, running, listener) = demo::build_full(
        demo_options(auto_login, clients, data_dir, clock).await,
        limits,
        |_, _| {},
    )
    .expect("demo");
    tokio::spawn(wecom_oidc::server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    running
}

/// The options of [`start_demo_with`], on a freshly bound ephemeral port.
pub async fn demo_options(
    auto_login: Option<&str>,
    clients: Vec<Client>,
    data_dir: Option<PathBuf>,
    clock: SharedClock,
) -> DemoOptions {
    DemoOptions {
        listener: tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
        issuer: None,
        auto_login: auto_login.map(str::to_owned),
        extra_clients: clients,
        data_dir,
        clock,
        lifetimes: Default::default(),
    }
}

/// A provider configured in code (no demo) and the WeCom simulator, served on one ephemeral
/// port by the real server with the real middleware.
pub struct Served {
    /// The provider's issuer; the simulator is at [`Served::sim_base`].
    pub issuer: String,
    /// Where the simulator is mounted (every WeCom host of its apps).
    pub sim_base: String,
    /// The simulator (tests inspect and steer it).
    pub simulator: Simulator,
    /// The provider's store.
    pub store: Arc<dyn Store>,
    /// Keeps the data folder alive.
    _dir: tempfile::TempDir,
}

/// What [`serve_with_simulator`] starts besides the connectors.
#[derive(Default)]
pub struct ServeOptions {
    /// The member the simulator logs in at once (`None`: the tests mint codes).
    pub auto_login: Option<&'static str>,
    /// The registered clients.
    pub clients: Vec<Client>,
    /// The store; `None`: sled in a temporary folder, as `serve` opens it.
    pub store: Option<Arc<dyn Store>>,
    /// `[ui] playground`.
    pub playground: bool,
    /// `[admin]`: the console and its admins.
    pub admin: Option<wecom_oidc::config::AdminSettings>,
    /// The issuer's path (`""`, or e.g. `"/sso"`): the provider is served under it.
    pub issuer_path: &'static str,
    /// Where browsers reach the provider, when not directly (a proxy in front); the issuer is
    /// this plus `issuer_path`. `None`: `http://` and the listening address.
    pub public_base: Option<String>,
}

/// Serves a provider whose connectors `apps` makes, given the simulator (to add corps and apps
/// to) and its base URL, beside that simulator at `http://ADDRESS/wecom-sim`.
pub async fn serve_with_simulator(
    options: ServeOptions,
    apps: impl FnOnce(&Simulator, &str) -> Vec<WeComSettings>,
) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let issuer = format!(
        "{}{}",
        options
            .public_base
            .clone()
            .unwrap_or_else(|| format!("http://{addr}")),
        options.issuer_path
    );
    let sim_base = format!("http://{addr}/wecom-sim");
    let mut sim_config = SimulatorConfig::demo(sim_base.clone());
    sim_config.auto_login = options.auto_login.map(str::to_owned);
    let simulator = Simulator::new(sim_config, Arc::new(SystemClock));
    let connectors = apps(&simulator, &sim_base)
        .into_iter()
        .map(|s| Arc::new(s) as Arc<dyn ConnectorConfig>)
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        playground: options.playground,
        admin: options.admin,
        ..wecom_oidc::testkit::config(&issuer, addr, dir.path(), connectors, options.clients)
    };
    let built = match options.store {
        Some(store) => wecom_oidc::app::build_with_store(&config, Arc::new(SystemClock), store),
        None => wecom_oidc::app::build(&config, Arc::new(SystemClock)).await,
    }
    .expect("the provider builds");
    let router = wecom_oidc::app::with_middleware_at(
        built.router.nest("/wecom-sim", simulator.router()),
        &issuer,
    );
    tokio::spawn(wecom_oidc::server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    Served {
        issuer,
        sim_base,
        simulator,
        store: built.store,
        _dir: dir,
    }
}

/// A simulator of the demo corp served on a port of its own at `mount` (`""` or e.g.
/// `"/wecom-sim"`), with `adjust` applied to its corp first; with connect info, so its
/// `errmsg` carries `from ip: 127.0.0.1` like WeCom's. Returns it and its base URL.
pub async fn serve_simulator(
    mount: &str,
    adjust: impl FnOnce(&mut SimulatorConfig),
) -> (Simulator, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}{mount}", listener.local_addr().expect("addr"));
    let mut config = SimulatorConfig::demo(&base);
    adjust(&mut config);
    let sim = Simulator::new(config, Arc::new(SystemClock));
    let app = if mount.is_empty() {
        sim.router()
    } else {
        axum::Router::new().nest(mount, sim.router())
    };
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    (sim, base)
}

/// The `[wecom]` section of a configuration file for the simulator's demo app, with every
/// WeCom host at `sim` (the simulator's base URL).
pub fn wecom_section(sim: &str) -> String {
    wecom_section_of(sim, None, None)
}

/// [`wecom_section`] with another corp id or secret than the demo corp's.
pub fn wecom_section_of(sim: &str, corp_id: Option<&str>, secret: Option<&str>) -> String {
    let demo = SimulatorConfig::demo("http://unused");
    format!(
        "[wecom]\ncorp_id = \"{}\"\nagent_id = {}\nsecret = \"{}\"\napi_base = \"{sim}\"\noauth_base = \"{sim}\"\nsso_base = \"{sim}\"\n",
        corp_id.unwrap_or(&demo.corp_id),
        demo.agent_id,
        secret.unwrap_or(&demo.secret)
    )
}

/// The simulator's demo app as a connector with id `id`.
pub fn demo_app(simulator: &Simulator, base: &str, id: &str) -> WeComSettings {
    let c = simulator.config();
    WeComSettings {
        id: id.into(),
        ..wecom_app(base, &c.corp_id, c.agent_id, &c.secret)
    }
}

/// The AgentId of the demo corp's second app (`branch`).
pub const BRANCH_AGENT: i64 = 1_000_005;

/// Two apps of the demo corp: `wecom` (the demo app, the default) and `branch` (a second app
/// with its own AgentId and secret, added to the simulator here).
pub fn demo_corp_with_branch_app(simulator: &Simulator, base: &str) -> Vec<WeComSettings> {
    let corp = simulator.config().corp_id.clone();
    assert!(simulator.add_app(
        &corp,
        AppSpec {
            agent_id: BRANCH_AGENT,
            secret: "branch-app-secret".into(),
            visible_range: Default::default(),
            trusted_domains: Vec::new(),
            legacy_app: false,
        },
    ));
    let branch = WeComSettings {
        id: "branch".into(),
        ..wecom_app(base, &corp, BRANCH_AGENT, "branch-app-secret")
    };
    vec![demo_app(simulator, base, "wecom"), branch]
}

/// The demo corp with its `branch` app ([`demo_corp_with_branch_app`]) served with `client`
/// registered to log in through `branch`, the simulator logging in `member` at once.
pub async fn serve_branch_app(mut client: Client, member: &'static str) -> Served {
    client.settings.connector = Some("branch".into());
    let options = ServeOptions {
        auto_login: Some(member),
        clients: vec![client],
        ..Default::default()
    };
    serve_with_simulator(options, demo_corp_with_branch_app).await
}

// ---------------------------------------------------------------------------------------------
// nginx in front of a provider
// ---------------------------------------------------------------------------------------------

/// The nginx binary, if installed (`.ci/test` installs Debian's `nginx` package).
pub fn nginx_binary() -> Option<std::path::PathBuf> {
    [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/bin/nginx",
        "/usr/bin/nginx",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.is_file())
}

/// A running nginx, stopped on drop.
pub struct Nginx {
    /// The nginx process.
    pub child: tokio::process::Child,
    prefix: tempfile::TempDir,
}

impl Nginx {
    /// What nginx logged (for failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts nginx in the foreground with its own prefix, configuration, pid and logs in a
/// temporary directory, listening on `port` with `site` included.
pub async fn start_nginx(
    bin: &std::path::Path,
    prefix: tempfile::TempDir,
    site: &str,
    port: u16,
) -> Nginx {
    let p = prefix.path();
    std::fs::write(p.join("wecom-oidc.conf"), site).expect("site");
    for d in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(p.join("tmp").join(d)).expect("temp dirs");
    }
    let main = format!(
        r#"
# A foreground, single-process nginx owned by the test (no system service, no root paths).
daemon off;
master_process off;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {p}/access.log;
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    include {p}/wecom-oidc.conf;
}}
"#,
        p = p.display()
    );
    std::fs::write(p.join("nginx.conf"), main).expect("nginx.conf");
    let child = tokio::process::Command::new(bin)
        .arg("-p")
        .arg(p)
        .arg("-c")
        .arg(p.join("nginx.conf"))
        .arg("-e")
        .arg(p.join("error.log"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start nginx");
    let mut nginx = Nginx { child, prefix };
    // Bounded wait until it accepts connections (or has exited).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return nginx;
        }
        if let Ok(Some(status)) = nginx.child.try_wait() {
            panic!("nginx exited with {status}:\n{}", nginx.error_log());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nginx did not start listening:\n{}",
            nginx.error_log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The real binary
// ---------------------------------------------------------------------------------------------

/// One running `wecom-oidc serve` process (the real binary), with its JSON log.
pub struct Instance {
    /// The process.
    pub child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its log so far (JSON lines), for failure messages.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
    /// Its configuration file.
    pub config: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Instance {
    /// Starts an instance with the configuration `make_config` writes for its folder and
    /// waits until it serves.
    pub async fn start(make_config: impl FnOnce(&std::path::Path) -> String) -> Instance {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("wecom-oidc.toml");
        std::fs::write(&config, make_config(dir.path())).expect("write config");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wecom-oidc"))
            .arg("--config")
            .arg(&config)
            .args(["--log-format", "json", "serve"])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start wecom-oidc");
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut base = None;
        while let Ok(Some(line)) = lines.next_line().await {
            log.lock().unwrap().push(line.clone());
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v["fields"]["message"] == "wecom-oidc is serving" {
                let listen = v["fields"]["listen"].as_str().expect("listen").to_owned();
                base = Some(format!("http://{listen}"));
                break;
            }
        }
        let Some(base) = base else {
            panic!(
                "the instance exited before serving:\n{}",
                log.lock().unwrap().join("\n")
            );
        };
        // Keep draining the log so the process never blocks on a full pipe.
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Instance {
            child,
            base,
            log,
            config,
            _dir: dir,
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

// ---------------------------------------------------------------------------------------------
// Back-channel logout
// ---------------------------------------------------------------------------------------------

/// Bodies a client's back-channel logout endpoint received, in order.
pub type Received = Arc<std::sync::Mutex<Vec<String>>>;

/// A client's back-channel logout endpoint (Back-Channel Logout 1.0 §2.5) on `127.0.0.1:0`
/// that answers 200 and keeps every body: its URL and what it received.
pub async fn logout_receiver() -> (String, Received) {
    use axum::routing::post;
    let got: Received = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/bcl",
        post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("lock").push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/bcl"), got)
}

/// The `logout_token`s `got` has received so far.
pub fn logout_tokens(got: &Received) -> Vec<String> {
    got.lock()
        .expect("lock")
        .iter()
        .filter_map(|body| {
            url::form_urlencoded::parse(body.as_bytes())
                .find(|(k, _)| k == "logout_token")
                .map(|(_, v)| v.into_owned())
        })
        .collect()
}

/// Waits (polling, at most `limit`) until `got` has received `n` logout tokens; returns them.
pub async fn wait_for_logout_tokens(
    got: &Received,
    n: usize,
    limit: std::time::Duration,
) -> Vec<String> {
    let until = std::time::Instant::now() + limit;
    loop {
        let tokens = logout_tokens(got);
        if tokens.len() >= n || std::time::Instant::now() >= until {
            return tokens;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// What a person holds at a provider, to check after a sign-out everywhere.
pub struct Held<'a> {
    /// A client and its secret, which hold `access` and `refresh`.
    pub client: (&'a str, &'a str),
    /// An access token.
    pub access: String,
    /// A refresh token; replaced by its successor whenever a check refreshes successfully.
    pub refresh: String,
    /// A client id and redirect URI the browser's session would give a code silently.
    pub silent: (&'a str, &'a str),
}

/// What of `held` still works at the provider at `base` for `browser`: the access token at
/// userinfo and at introspection (RFC 7662 `active`), the refresh token, the session (a
/// `prompt=none` request answered with a code).
/// Empty once the person is signed out everywhere.
pub async fn still_working(
    base: &str,
    browser: &reqwest::Client,
    held: &mut Held<'_>,
) -> Vec<&'static str> {
    let mut working = Vec::new();
    if userinfo(base, &held.access).await.status() == StatusCode::OK {
        working.push("access token at userinfo");
    }
    let (_, _, introspection) = post_form(
        &format!("{base}/introspect"),
        &[("token", &held.access)],
        Some(held.client),
    )
    .await;
    if introspection["active"] == true {
        working.push("access token at introspection");
    }
    let (client, redirect_uri) = held.silent;
    let silent = authorize_url(
        base,
        &[
            ("client_id", client),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
        ],
    );
    let resp = browser.get(&silent).send().await.expect("authorize");
    if resp.status().is_redirection() && query(&location(&resp)).contains_key("code") {
        working.push("session");
    }
    let (status, body) = token(
        base,
        held.client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &held.refresh),
        ],
    )
    .await;
    if status == StatusCode::OK {
        working.push("refresh token");
        held.refresh = str_of(&body, "refresh_token").to_owned();
    }
    working
}
