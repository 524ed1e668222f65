//! `wecom-oidc demo`: the provider, the WeCom simulator and a demo relying party on one port, so
//! the whole flow can be tried in a browser with no WeCom account. The demo client is the
//! built-in relying party of [`crate::relying_party`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::web::edge::Edge;
use tokio::net::TcpListener;

use crate::app;
use crate::cli::DemoArgs;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{self, Config};
use crate::connector::wecom::WeComSettings;
use crate::provider::{Client, Lifetimes};
use crate::random;
use crate::relying_party;
use crate::secret::Secret;
use crate::simulator::{Simulator, SimulatorConfig};
use crate::storage::{SledStore, Store};
use crate::web::rate_limit::RateLimits;

/// The demo client's id.
pub const DEMO_CLIENT_ID: &str = "demo";
/// Where the simulator is mounted.
pub const SIMULATOR_PATH: &str = "/wecom-sim";

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
    /// Credential lifetimes (the `[tokens]` of `--config`).
    pub lifetimes: Lifetimes,
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
    /// What the admin routes act on (`admin::router`): tests serve them on a socket of their
    /// own, as `serve` does.
    pub admin: crate::admin::AdminContext,
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
pub fn build(opts: DemoOptions) -> Result<(Edge, RunningDemo, TcpListener), DemoError> {
    build_with(opts, |_, _| {})
}

/// Like [`build`], with `customize` changing the WeCom connector's settings and the
/// simulator's configuration before either is built (tests of the WeCom options).
pub fn build_with(
    opts: DemoOptions,
    customize: impl FnOnce(&mut WeComSettings, &mut SimulatorConfig),
) -> Result<(Edge, RunningDemo, TcpListener), DemoError> {
    build_full(opts, RateLimits::default(), customize)
}

/// Like [`build_with`], with the rate limits of `[limits]` (the demo's `--config` may raise
/// them for load tests).
pub fn build_full(
    opts: DemoOptions,
    limits: RateLimits,
    customize: impl FnOnce(&mut WeComSettings, &mut SimulatorConfig),
) -> Result<(Edge, RunningDemo, TcpListener), DemoError> {
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
    let origins = crate::connector::registry::ConnectorConfig::claim_origins(&wecom);

    let demo_secret = random::token(24);
    let redirect_uri = format!("{issuer}/demo/callback");
    let mut clients = vec![Client {
        id: DEMO_CLIENT_ID.into(),
        name: "wecom-oidc demo".into(),
        secret: Some(Secret::new(demo_secret.clone())),
        redirect_uris: vec![redirect_uri.clone()],
        settings: crate::provider::client::ClientSettings {
            // The result page's "log out" comes back to the demo's home.
            post_logout_redirect_uris: vec![format!("{issuer}/")],
            ..Default::default()
        },
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
        sled_cache_mb: crate::config::DEFAULT_SLED_CACHE_MB,
        issuer: issuer.clone(),
        listen: addr,
        data_dir: data_dir.join("store"),
        store: Default::default(),
        keys_dir: data_dir.join("keys"),
        connectors: vec![Arc::new(wecom)],
        deprecations: Vec::new(),
        clients: clients.clone(),
        lifetimes: opts.lifetimes,
        login_event_retention: config::DEFAULT_EVENT_RETENTION_DAYS * 86_400,
        playground: false,
        admin: None,
        session: Default::default(),
        limits,
    };
    let store: Arc<dyn Store> = Arc::new(
        SledStore::open_with_cache(&config.data_dir, config.sled_cache_mb << 20).map_err(
            |source| app::StartError::Store {
                dir: config.data_dir.display().to_string(),
                source,
            },
        )?,
    );
    ensure_demo_keys(&config, opts.clock.as_ref())?;
    let built = app::build_with_store(&config, opts.clock.clone(), store.clone())?;
    let admin = crate::admin::AdminContext {
        config: Arc::new(config.clone()),
        provider: built.provider.clone(),
        store: store.clone(),
        clock: opts.clock,
        // The demo's configuration is built in code: nothing to re-read.
        reloader: Default::default(),
    };

    let rp = relying_party::demo_router(
        &issuer,
        DEMO_CLIENT_ID,
        demo_secret,
        redirect_uri,
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| DemoError::Invalid(format!("HTTP client: {e}")))?,
        &clients,
        opts.auto_login,
        format!("{issuer}{SIMULATOR_PATH}"),
        origins,
    );
    let hot = built.hot;
    let router = built
        .router
        .merge(rp)
        .nest(SIMULATOR_PATH, simulator.router());
    let running = RunningDemo {
        addr,
        issuer,
        simulator,
        store,
        admin,
        _tmp: tmp,
    };
    // An `--issuer` with a path: its pages and the simulator are reached under it as well.
    let router = app::with_middleware_at(router, &running.issuer).with_hot_routes(hot);
    Ok((router, running, opts.listener))
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
        // The production connection layer, as `spawn` does.
        let _ = crate::server::serve(listener, router, std::future::pending()).await;
    });
    Ok(running)
}

/// `wecom-oidc demo`.
pub async fn run(args: DemoArgs, extra: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let (extra_clients, limits, lifetimes, profile) = match &extra {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let name = path.display().to_string();
            let (clients, limits, lifetimes) =
                config::parse_demo_file(&text, &name, &|n| std::env::var(n).ok())?;
            // The simulated app's e-mail policy and claim mapping may come from the file too,
            // so guides can be followed against the demo as written.
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| format!("{name}: not valid TOML: {}", e.message()))?;
            let profile = crate::connector::wecom::demo_profile(&table)
                .map_err(|problems| format!("{name}: {}", problems.join("; ")))?;
            (clients, limits, lifetimes, profile)
        }
        None => (Vec::new(), None, None, None),
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
            lifetimes: lifetimes.unwrap_or_default(),
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
