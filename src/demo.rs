//! `wecom-oidc demo`: the provider, the WeCom simulator and a demo relying party on one port, so
//! the whole flow can be tried in a browser with no WeCom account. The demo client is a real
//! relying party built on the `openidconnect` crate: it discovers the provider, logs in with
//! PKCE + nonce + state, verifies the id_token against the JWKS and calls userinfo.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreClient, CoreIdTokenClaims, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use tokio::net::TcpListener;
use tokio::sync::OnceCell;

use crate::app;
use crate::cli::DemoArgs;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{self, Config};
use crate::connector::wecom::WeComSettings;
use crate::provider::{Client, Lifetimes};
use crate::random;
use crate::secret::Secret;
use crate::simulator::{Simulator, SimulatorConfig};
use crate::storage::{SledStore, Store};
use crate::web::rate_limit::RateLimits;

/// The demo client's id.
pub const DEMO_CLIENT_ID: &str = "demo";
/// Where the simulator is mounted.
pub const SIMULATOR_PATH: &str = "/wecom-sim";
const STATE_COOKIE: &str = "demo_rp_state";

/// What a demo needs to start.
pub struct DemoOptions {
    /// A bound listener (tests bind `127.0.0.1:0`).
    pub listener: TcpListener,
    /// The issuer URL; `None` derives it from the listener's address.
    pub issuer: Option<String>,
    /// Member the simulator logs in at once.
    pub auto_login: Option<String>,
    /// More clients to register beside the demo client.
    pub extra_clients: Vec<Client>,
    /// Where keys and the store go; `None` uses a temporary folder removed at exit.
    pub data_dir: Option<PathBuf>,
    /// The clock.
    pub clock: SharedClock,
}

/// A running demo.
pub struct RunningDemo {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its issuer URL.
    pub issuer: String,
    /// The simulator (tests inspect and steer it).
    pub simulator: Simulator,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Keeps the temporary data folder alive.
    _tmp: Option<tempfile::TempDir>,
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// The server could not be built.
    #[error(transparent)]
    Start(#[from] app::StartError),
    /// I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Extra clients file.
    #[error(transparent)]
    Config(#[from] config::ConfigErrors),
}

/// The issuer to use when none is given: loopback listeners keep their address, wildcard ones
/// become `localhost`.
pub fn default_issuer(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("http://localhost:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("http://localhost:{}", a.port()),
        SocketAddr::V4(a) => format!("http://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("http://[{}]:{}", a.ip(), a.port()),
    }
}

/// Builds the demo and returns its router and handles; the caller serves the router.
pub fn build(opts: DemoOptions) -> Result<(Router, RunningDemo, TcpListener), DemoError> {
    build_with(opts, |_, _| {})
}

/// Like [`build`], with `customize` changing the WeCom connector's settings and the
/// simulator's configuration before either is built (tests of the WeCom options).
pub fn build_with(
    opts: DemoOptions,
    customize: impl FnOnce(&mut WeComSettings, &mut SimulatorConfig),
) -> Result<(Router, RunningDemo, TcpListener), DemoError> {
    build_full(opts, RateLimits::default(), customize)
}

/// Like [`build_with`], with the rate limits of `[limits]` (the demo's `--config` may raise
/// them for load tests).
pub fn build_full(
    opts: DemoOptions,
    limits: RateLimits,
    customize: impl FnOnce(&mut WeComSettings, &mut SimulatorConfig),
) -> Result<(Router, RunningDemo, TcpListener), DemoError> {
    let addr = opts.listener.local_addr()?;
    let issuer = opts
        .issuer
        .unwrap_or_else(|| default_issuer(addr))
        .trim_end_matches('/')
        .to_string();
    let issuer_url = url::Url::parse(&issuer)
        .map_err(|e| DemoError::Invalid(format!("--issuer {issuer:?} is not a URL: {e}")))?;
    let host_port = match (issuer_url.host_str(), issuer_url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        _ => {
            return Err(DemoError::Invalid(format!(
                "--issuer {issuer:?} has no host"
            )))
        }
    };
    let (data_dir, tmp) = match opts.data_dir {
        Some(d) => (d, None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("wecom-oidc-demo-")
                .tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };

    let mut sim_config = SimulatorConfig::demo(format!("{issuer}{SIMULATOR_PATH}"));
    sim_config.trusted_domains = vec![host_port];
    sim_config.auto_login = opts.auto_login.clone();
    let mut wecom = WeComSettings {
        corp_id: sim_config.corp_id.clone(),
        agent_id: sim_config.agent_id,
        secret: sim_config.secret.clone(),
        api_base: format!("{issuer}{SIMULATOR_PATH}"),
        oauth_base: format!("{issuer}{SIMULATOR_PATH}"),
        sso_base: format!("{issuer}{SIMULATOR_PATH}"),
        timeout: Duration::from_secs(5),
        ..WeComSettings::new("", 0, "")
    };
    customize(&mut wecom, &mut sim_config);
    let simulator = Simulator::new(sim_config, opts.clock.clone());

    let demo_secret = random::token(24);
    let redirect_uri = format!("{issuer}/demo/callback");
    let mut clients = vec![Client {
        id: DEMO_CLIENT_ID.into(),
        name: "wecom-oidc demo".into(),
        secret: Some(Secret::new(demo_secret.clone())),
        redirect_uris: vec![redirect_uri.clone()],
        settings: Default::default(),
    }];
    for c in opts.extra_clients {
        if clients.iter().any(|x| x.id == c.id) {
            return Err(DemoError::Invalid(format!(
                "client id {:?} is used twice (the demo client is {DEMO_CLIENT_ID:?})",
                c.id
            )));
        }
        clients.push(c);
    }
    let config = Config {
        keys_reload_interval: crate::tokens::shared::DEFAULT_RELOAD_INTERVAL_SECS,
        issuer: issuer.clone(),
        listen: addr,
        data_dir: data_dir.join("store"),
        store: Default::default(),
        keys_dir: data_dir.join("keys"),
        connectors: vec![Arc::new(wecom)],
        deprecations: Vec::new(),
        clients: clients.clone(),
        lifetimes: Lifetimes::default(),
        login_event_retention: config::DEFAULT_EVENT_RETENTION_DAYS * 86_400,
        playground: false,
        session: Default::default(),
        limits,
    };
    let store: Arc<dyn Store> =
        Arc::new(
            SledStore::open(&config.data_dir).map_err(|source| app::StartError::Store {
                dir: config.data_dir.display().to_string(),
                source,
            })?,
        );
    ensure_demo_keys(&config, opts.clock.as_ref())?;
    let built = app::build_with_store(&config, opts.clock, store.clone())?;

    let rp = Arc::new(DemoRp {
        base: "/demo",
        client_id: DEMO_CLIENT_ID.into(),
        issuer: issuer.clone(),
        client_secret: demo_secret,
        redirect_uri,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| DemoError::Invalid(format!("HTTP client: {e}")))?,
        oidc: OnceCell::new(),
        pending: Mutex::new(HashMap::new()),
        clients: client_rows(&clients),
        auto_login: opts.auto_login,
    });
    let router = built
        .router
        .merge(demo_router(rp))
        .nest(SIMULATOR_PATH, simulator.router());
    let running = RunningDemo {
        addr,
        issuer,
        simulator,
        store,
        _tmp: tmp,
    };
    Ok((app::with_middleware(router), running, opts.listener))
}

/// The demo signs with RS256 and ES256 out of the box (and with any other algorithm a client
/// asks for), so that clients can try `id_token_signed_response_alg` without running
/// `keys generate` first. RS256 is generated first and stays the default.
fn ensure_demo_keys(config: &Config, clock: &dyn crate::clock::Clock) -> Result<(), DemoError> {
    use crate::tokens::{KeyStatus, KeyStore, SigningAlg};
    let mut wanted = vec![SigningAlg::Rs256, SigningAlg::Es256];
    for c in &config.clients {
        if let Some(alg) = c.settings.id_token_signed_response_alg {
            if !wanted.contains(&alg) {
                wanted.push(alg);
            }
        }
    }
    let keys_error = |e| DemoError::Start(app::StartError::Keys(e));
    let present = KeyStore::list(&config.keys_dir).map_err(keys_error)?;
    for alg in wanted {
        let active = present
            .iter()
            .any(|k| k.alg == alg && k.status == KeyStatus::Active);
        if !active {
            KeyStore::generate_key(&config.keys_dir, alg, clock).map_err(keys_error)?;
        }
    }
    Ok(())
}

/// Starts the demo in the background (tests) and returns once it accepts connections.
pub async fn spawn(opts: DemoOptions) -> Result<RunningDemo, DemoError> {
    let (router, running, listener) = build(opts)?;
    tokio::spawn(async move {
        // The production connection layer (peer address for the rate limits, header timeout).
        let _ = crate::server::serve(listener, router, std::future::pending()).await;
    });
    Ok(running)
}

/// Like [`spawn`], with [`build_with`]'s `customize`.
pub async fn spawn_with(
    opts: DemoOptions,
    customize: impl FnOnce(&mut WeComSettings, &mut SimulatorConfig),
) -> Result<RunningDemo, DemoError> {
    let (router, running, listener) = build_with(opts, customize)?;
    tokio::spawn(async move {
        // With the peer address, as `spawn` does.
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Ok(running)
}

/// `wecom-oidc demo`.
pub async fn run(args: DemoArgs, extra: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let (extra_clients, limits, profile) = match &extra {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let name = path.display().to_string();
            let (clients, limits) =
                config::parse_demo_file(&text, &name, &|n| std::env::var(n).ok())?;
            // The simulated app's e-mail policy and claim mapping may come from the file too,
            // so guides can be followed against the demo as written.
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| format!("{name}: not valid TOML: {}", e.message()))?;
            let profile = crate::connector::wecom::demo_profile(&table)
                .map_err(|problems| format!("{name}: {}", problems.join("; ")))?;
            (clients, limits, profile)
        }
        None => (Vec::new(), None, None),
    };
    let limits = limits.unwrap_or_else(RateLimits::demo);
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let (router, running, listener) = build_full(
        DemoOptions {
            listener,
            issuer: args.issuer,
            auto_login: args.auto_login,
            extra_clients,
            data_dir: args.data_dir,
            clock: Arc::new(SystemClock),
        },
        limits,
        |w, _| {
            if let Some(profile) = profile {
                w.profile = profile;
            }
        },
    )?;
    println!("wecom-oidc demo is running.");
    println!("  Open in a browser:  {}/", running.issuer);
    println!("  Issuer:             {}", running.issuer);
    println!(
        "  Discovery:          {}/.well-known/openid-configuration",
        running.issuer
    );
    println!("  WeCom simulator:    {}{SIMULATOR_PATH}", running.issuer);
    println!("Press Ctrl-C to stop.");
    app::serve(listener, router, running.store.clone()).await?;
    Ok(())
}

type DemoOidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

struct Pending {
    verifier: String,
    nonce: String,
    created: Instant,
}

/// What the start page shows of each client: never its secret.
fn client_rows(clients: &[Client]) -> Vec<ClientRow> {
    clients
        .iter()
        .map(|c| ClientRow {
            id: c.id.clone(),
            public: c.is_public(),
            redirect_uris: c.redirect_uris.clone(),
        })
        .collect()
}

struct ClientRow {
    id: String,
    public: bool,
    redirect_uris: Vec<String>,
}

/// The demo relying party; also the operators' "try a login" playground in `serve` mode.
pub(crate) struct DemoRp {
    /// Path prefix of its pages: `/demo` in the demo, `/playground` in serve mode.
    base: &'static str,
    client_id: String,
    issuer: String,
    client_secret: String,
    redirect_uri: String,
    http: reqwest::Client,
    oidc: OnceCell<DemoOidcClient>,
    pending: Mutex<HashMap<String, Pending>>,
    clients: Vec<ClientRow>,
    auto_login: Option<String>,
}

/// At most this many logins may be in flight in the demo; older ones are dropped.
const MAX_PENDING: usize = 1000;

impl DemoRp {
    async fn client(&self) -> Result<&DemoOidcClient, String> {
        self.oidc
            .get_or_try_init(|| async {
                let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| e.to_string())?;
                let meta = CoreProviderMetadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(|e| format!("discovery failed: {e}"))?;
                let redirect =
                    RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| e.to_string())?;
                Ok::<_, String>(
                    CoreClient::from_provider_metadata(
                        meta,
                        ClientId::new(self.client_id.clone()),
                        Some(ClientSecret::new(self.client_secret.clone())),
                    )
                    .set_redirect_uri(redirect),
                )
            })
            .await
    }
}

fn demo_router(rp: Arc<DemoRp>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/demo/login", get(login))
        .route("/demo/callback", get(callback))
        .with_state(rp)
}

/// The client id of the playground's own internal client (serve mode, `[ui] playground`).
pub const PLAYGROUND_CLIENT_ID: &str = "wecom-oidc-playground";

/// The playground's internal client: confidential, a fresh secret per process, redirected to
/// `/playground/callback` on this issuer.
pub fn playground_client(issuer: &str) -> (Client, String) {
    let secret = random::token(24);
    (
        Client {
            id: PLAYGROUND_CLIENT_ID.into(),
            name: "wecom-oidc playground".into(),
            secret: Some(Secret::new(secret.clone())),
            redirect_uris: vec![format!("{issuer}/playground/callback")],
            settings: Default::default(),
        },
        secret,
    )
}

/// The operators' "try a login" playground (`[ui] playground = true`): a real relying party on
/// its own client that runs a code flow (PKCE, nonce, state) against this provider and shows the
/// id_token header and claims, the verified signature and the userinfo answer.
pub fn playground_router(issuer: &str, client_secret: String, clients: &[Client]) -> Router {
    let rp = Arc::new(DemoRp {
        base: "/playground",
        client_id: PLAYGROUND_CLIENT_ID.into(),
        issuer: issuer.to_string(),
        client_secret,
        redirect_uri: format!("{issuer}/playground/callback"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default(),
        oidc: OnceCell::new(),
        pending: Mutex::new(HashMap::new()),
        clients: client_rows(clients),
        auto_login: None,
    });
    Router::new()
        .route("/playground", get(index))
        .route("/playground/login", get(login))
        .route("/playground/callback", get(callback))
        .with_state(rp)
}

#[derive(Template)]
#[template(path = "demo/index.html")]
struct IndexPage<'a> {
    issuer: &'a str,
    simulator: Option<String>,
    login_url: &'a str,
    clients: &'a [ClientRow],
    auto_login: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "demo/result.html")]
struct ResultPage {
    home: &'static str,
    ok: bool,
    subject: String,
    alg: String,
    header: String,
    claims: String,
    userinfo: String,
    error: String,
}

fn html(t: &impl Template) -> Response {
    match t.render() {
        // The demo's pages get the same security headers as the provider's own.
        Ok(body) => crate::web::html::page(StatusCode::OK, body, crate::web::html::PAGE_CSP),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

async fn index(State(rp): State<Arc<DemoRp>>) -> Response {
    let login_url = format!("{}/login", rp.base);
    html(&IndexPage {
        issuer: &rp.issuer,
        simulator: (rp.base == "/demo").then(|| format!("{}{SIMULATOR_PATH}", rp.issuer)),
        login_url: &login_url,
        clients: &rp.clients,
        auto_login: rp.auto_login.as_deref(),
    })
}

fn home(rp: &DemoRp) -> &'static str {
    if rp.base == "/demo" {
        "/"
    } else {
        "/playground"
    }
}

fn failure(rp: &DemoRp, msg: impl Into<String>) -> Response {
    let mut r = html(&ResultPage {
        home: home(rp),
        ok: false,
        subject: String::new(),
        alg: String::new(),
        header: String::new(),
        claims: String::new(),
        userinfo: String::new(),
        error: msg.into(),
    });
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r
}

async fn login(State(rp): State<Arc<DemoRp>>) -> Response {
    let client = match rp.client().await {
        Ok(c) => c,
        Err(e) => return failure(&rp, e),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    {
        let mut pending = rp.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, p| p.created.elapsed() < Duration::from_secs(600));
        if pending.len() >= MAX_PENDING {
            if let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone())
            {
                pending.remove(&oldest);
            }
        }
        pending.insert(
            csrf.secret().clone(),
            Pending {
                verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
                created: Instant::now(),
            },
        );
    }
    let cookie = format!(
        "{STATE_COOKIE}={}; Path={}; HttpOnly; SameSite=Lax",
        csrf.secret(),
        rp.base
    );
    let mut resp = (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

async fn callback(
    State(rp): State<Arc<DemoRp>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    if let Some(err) = params.get("error") {
        return failure(
            &rp,
            format!(
                "{err}: {}",
                params
                    .get("error_description")
                    .map(String::as_str)
                    .unwrap_or("")
            ),
        );
    }
    let (Some(code), Some(state)) = (params.get("code"), params.get("state")) else {
        return failure(&rp, "the callback carries no code or state");
    };
    if params.get("iss").map(String::as_str) != Some(rp.issuer.as_str()) {
        return failure(
            &rp,
            "the callback's iss does not match the issuer (RFC 9207)",
        );
    }
    let cookie_ok = cookie_value(&headers, STATE_COOKIE)
        .is_some_and(|c| random::constant_time_eq(c.as_bytes(), state.as_bytes()));
    if !cookie_ok {
        return failure(&rp, "state does not match this browser's login");
    }
    let Some(pending) = rp
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(state)
    else {
        return failure(&rp, "unknown or already used state");
    };
    match finish(&rp, code, pending).await {
        Ok(page) => html(&page),
        Err(e) => failure(&rp, e),
    }
}

async fn finish(rp: &DemoRp, code: &str, pending: Pending) -> Result<ResultPage, String> {
    let client = rp.client().await?;
    let token = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&rp.http)
        .await
        .map_err(|e| format!("token request failed: {e}"))?;
    let id_token = token
        .id_token()
        .ok_or("the token response has no id_token")?;
    let verifier = client.id_token_verifier();
    let claims: &CoreIdTokenClaims = id_token
        .claims(&verifier, &Nonce::new(pending.nonce))
        .map_err(|e| format!("id_token rejected: {e}"))?;
    let alg = id_token.signing_alg().map_err(|e| e.to_string())?;
    if let Some(expected) = claims.access_token_hash() {
        let signing_key = id_token.signing_key(&verifier).map_err(|e| e.to_string())?;
        let actual = AccessTokenHash::from_token(token.access_token(), alg, signing_key)
            .map_err(|e| e.to_string())?;
        if &actual != expected {
            return Err("at_hash does not match the access token".into());
        }
    }
    let userinfo: CoreUserInfoClaims = client
        .user_info(token.access_token().clone(), None)
        .map_err(|e| e.to_string())?
        .request_async(&rp.http)
        .await
        .map_err(|e| format!("userinfo failed: {e}"))?;
    let raw = id_token.to_string();
    let header_json = raw
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_default();
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    Ok(ResultPage {
        home: home(rp),
        ok: true,
        subject: claims.subject().to_string(),
        alg: serde_json::to_value(alg)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        header: pretty(&header_json),
        claims: pretty(&serde_json::to_value(claims).map_err(|e| e.to_string())?),
        userinfo: pretty(&serde_json::to_value(&userinfo).map_err(|e| e.to_string())?),
        error: String::new(),
    })
}
