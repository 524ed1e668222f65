//! Providers started in process on `127.0.0.1:0` beside the WeCom simulator (the demo, or one
//! configured in code), and the configuration files of the commands that read one.

use super::*;

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
        listener: ephemeral_listener().await,
        issuer: None,
        auto_login: auto_login.map(str::to_owned),
        extra_clients: clients,
        data_dir,
        clock,
        lifetimes: Default::default(),
    }
}

/// The options of a demo with [`app_client`] registered and the simulator logging in
/// `zhangsan` at once (temporary data, the system clock).
pub async fn app_demo_options() -> DemoOptions {
    demo_options(
        Some("zhangsan"),
        vec![app_client()],
        None,
        Arc::new(SystemClock),
    )
    .await
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
    let listener = ephemeral_listener().await;
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
    )
    .with_hot_routes(built.hot);
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
    serve_simulator_with_clock(mount, Arc::new(SystemClock), adjust).await
}

/// [`serve_simulator`] on `clock` (a test that moves time moves the simulator's too).
pub async fn serve_simulator_with_clock(
    mount: &str,
    clock: SharedClock,
    adjust: impl FnOnce(&mut SimulatorConfig),
) -> (Simulator, String) {
    let listener = ephemeral_listener().await;
    let base = format!("http://{}{mount}", listener.local_addr().expect("addr"));
    let mut config = SimulatorConfig::demo(&base);
    adjust(&mut config);
    let sim = Simulator::new(config, clock);
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
