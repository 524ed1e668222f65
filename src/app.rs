//! Assembles the server from a validated config: store, keys, connector, OIDC core, routes,
//! middleware; serves it with graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use tokio::net::TcpListener;

use crate::clock::SharedClock;
use crate::config::{Config, StoreLocation};
use crate::connector::catalog;
use crate::connector::registry::{ConnectorConfig, OpenDeps};
use crate::connector::{Connector, ConnectorError};
use crate::login_events::RecordingConnector;
use crate::metrics::Metrics;
use crate::provider::{discovery, ClientRegistry, Provider, ProviderParts};
use crate::storage::{PostgresStore, SledStore, Store};
use crate::tokens::{KeyRing, KeyStore, SigningAlg};
use crate::web::health::HealthState;
use crate::web::login_events::EventLogState;
use crate::web::start::ConnectorRow;
use crate::web::{self, WebState};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened.
    #[error("cannot open the store in {dir}: {source}")]
    Store {
        /// data_dir, or the PostgreSQL URL (which holds no password).
        dir: String,
        /// Cause.
        source: crate::storage::StorageError,
    },
    /// The signing keys could not be loaded or generated.
    #[error("signing keys: {0}")]
    Keys(#[from] crate::tokens::KeyError),
    /// The connector could not be built.
    #[error("WeCom connector: {0}")]
    Connector(#[from] crate::connector::ConnectorError),
    /// A registered client uses the playground's reserved client id.
    #[error(
        "clients: the client id {:?} is reserved for the [ui] playground",
        crate::relying_party::PLAYGROUND_CLIENT_ID
    )]
    PlaygroundClientId,
    /// A registered client uses the console's reserved client id.
    #[error(
        "clients: the client id {:?} is reserved for the [admin] console",
        crate::console::CONSOLE_CLIENT_ID
    )]
    ConsoleClientId,
    /// A configured WeCom verification file could not be read.
    #[error("wecom.verify_files: {0}")]
    VerifyFile(String),
    /// A client asks for id_tokens in an algorithm that has no active key.
    #[error(
        "client {client:?} has id_token_signed_response_alg = {alg:?} but there is no active {alg} key: run `wecom-oidc keys generate --alg {alg}`"
    )]
    MissingKey {
        /// The client id.
        client: String,
        /// The algorithm.
        alg: &'static str,
    },
    /// The outgoing HTTP client could not be built (TLS roots).
    #[error("HTTP client: {0}")]
    Http(String),
    /// Discovery metadata could not be built.
    #[error("{0}")]
    Discovery(#[from] discovery::DiscoveryError),
}

/// A built server, ready to serve.
pub struct App {
    /// All routes with middleware.
    pub router: Router,
    /// The OIDC core.
    pub provider: Arc<Provider>,
    /// The store (flushed on shutdown).
    pub store: Arc<dyn Store>,
    /// The metrics registry behind `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The routes the edge answers before routing ([`web::edge::Edge::with_hot_routes`]).
    pub hot: web::hot_routes::HotRoutes,
    /// The admin routes (`crate::admin::router`), for the admin socket; the console calls
    /// the same router in-process.
    pub admin: Router,
    /// What a configuration reload changes while the server serves (`crate::reload`).
    pub live: crate::reload::LiveParts,
    /// Where `serve` puts its reloader for the admin routes (`POST /v1/reload`).
    pub reloader: crate::admin::ReloaderSlot,
}

/// Opens the store and keys and builds the provider with its routes.
pub async fn build(config: &Config, clock: SharedClock) -> Result<App, StartError> {
    let store = open_store(config).await?;
    build_on(config, clock, store).await
}

/// Opens the configured store: sled in `data_dir`, or PostgreSQL (connected, schema migrated).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    match &config.store {
        StoreLocation::Sled => Ok(Arc::new(
            SledStore::open_with_cache(&config.data_dir, config.sled_cache_mb << 20).map_err(
                |source| StartError::Store {
                    dir: config.data_dir.display().to_string(),
                    source,
                },
            )?,
        )),
        StoreLocation::Postgres(pg) => {
            let failed = |source| StartError::Store {
                dir: pg.url.clone(),
                source,
            };
            let connect = pg
                .connect_config()
                .map_err(|e| failed(crate::storage::StorageError::Backend(e)))?;
            let store = PostgresStore::connect(connect).await.map_err(failed)?;
            tracing::info!(url = %pg.url, "store: PostgreSQL");
            Ok(Arc::new(store))
        }
    }
}

/// Builds the provider on an already opened store that one process owns, with the signing keys
/// of `keys_dir`.
pub fn build_with_store(
    config: &Config,
    clock: SharedClock,
    store: Arc<dyn Store>,
) -> Result<App, StartError> {
    let keys = Arc::new(KeyRing::fixed(KeyStore::load_or_generate_with(
        &config.keys_dir,
        SigningAlg::Rs256,
        clock.as_ref(),
    )?));
    build_with_store_and_keys(config, clock, store, keys)
}

/// The signing keys for `store`: those kept in the store when it is shared by several instances
/// ([`Store::is_shared`]; generated there, once, at the cluster's first start), else those of
/// `keys_dir`.
pub async fn load_keys(
    config: &Config,
    store: &dyn Store,
    clock: &SharedClock,
) -> Result<Arc<KeyRing>, StartError> {
    let ring = if store.is_shared() {
        KeyRing::load_shared(store, SigningAlg::Rs256, clock.as_ref()).await?
    } else {
        KeyRing::fixed(KeyStore::load_or_generate_with(
            &config.keys_dir,
            SigningAlg::Rs256,
            clock.as_ref(),
        )?)
    };
    Ok(Arc::new(ring))
}

/// Builds the provider on `store` with the keys of [`load_keys`]; on a shared store, also
/// starts the task that re-reads the keys every `keys_reload_interval` seconds, so a rotation
/// made through any instance's configuration reaches this one.
pub async fn build_on(
    config: &Config,
    clock: SharedClock,
    store: Arc<dyn Store>,
) -> Result<App, StartError> {
    let keys = load_keys(config, store.as_ref(), &clock).await?;
    if store.is_shared() {
        // Lives as long as the runtime: a server process serves until it exits.
        drop(crate::tokens::shared::spawn_reloader(
            keys.clone(),
            store.clone(),
            clock.clone(),
            Duration::from_secs(config.keys_reload_interval),
        ));
    }
    build_with_store_and_keys(config, clock, store, keys)
}

/// Builds the provider on an opened store with already loaded keys.
pub fn build_with_store_and_keys(
    config: &Config,
    clock: SharedClock,
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
) -> Result<App, StartError> {
    let initial_keys = keys.current();
    // A client's id_token algorithm needs a key now, not a failed token request later.
    for c in &config.clients {
        if let Some(alg) = c.settings.id_token_signed_response_alg {
            if !initial_keys.has_alg(alg) {
                return Err(StartError::MissingKey {
                    client: c.id.clone(),
                    alg: alg.as_str(),
                });
            }
        }
    }
    let algs: Vec<&str> = initial_keys
        .signing_algs()
        .into_iter()
        .map(SigningAlg::as_str)
        .collect();
    // Every type settles what depends on the other connectors (e.g. WeCom's home corp), whether
    // the configuration came from a file (which does this too) or was built in code.
    let mut configs: Vec<Box<dyn ConnectorConfig>> =
        config.connectors.iter().map(|c| c.clone_box()).collect();
    let problems = catalog::finish_all(&mut configs);
    if !problems.is_empty() {
        return Err(StartError::Connector(ConnectorError::Unavailable(
            problems.join("; "),
        )));
    }
    if configs.is_empty() {
        return Err(StartError::Connector(ConnectorError::Unavailable(
            "no connector configured".to_owned(),
        )));
    }
    let verify_paths: Vec<std::path::PathBuf> =
        configs.iter().flat_map(|c| c.root_files()).collect();
    let verify_files = web::verify::load(&verify_paths).map_err(StartError::VerifyFile)?;
    let pairwise = configs.iter().any(|c| c.is_pairwise());
    let metrics = Arc::new(Metrics::new());
    // Every connector counts its calls into the one registry and notes who each callback
    // authenticated, for the login event log.
    let deps = OpenDeps {
        store: crate::storage::upstream_role(store.clone()),
        clock: clock.clone(),
        metrics: metrics.clone(),
    };
    let recording = configs
        .iter()
        .map(|c| -> Result<Arc<RecordingConnector>, StartError> {
            Ok(Arc::new(RecordingConnector::new(
                c.open(&deps)?,
                clock.clone(),
            )))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut opened: Vec<Arc<dyn Connector>> = recording
        .iter()
        .map(|c| c.clone() as Arc<dyn Connector>)
        .collect();
    let connector = opened.remove(0);
    let more_connectors = opened;
    let health_state = HealthState {
        store: store.clone(),
        keys: keys.clone(),
        connectors: std::iter::once(connector.clone())
            .chain(more_connectors.iter().cloned())
            .collect(),
        metrics: metrics.clone(),
        clock: clock.clone(),
        recent_failures: Default::default(),
    };
    // `[ui] playground`: an internal confidential client for the "try a login" page.
    let playground = config
        .playground
        .then(|| crate::relying_party::playground_client(&config.issuer));
    let mut clients = config.clients.clone();
    if let Some((client, _)) = &playground {
        if clients.iter().any(|c| c.id == client.id) {
            return Err(StartError::PlaygroundClientId);
        }
        clients.push(client.clone());
    }
    // `[admin]`: the console's own internal client, on the connector admins sign in through.
    let console = config
        .admin
        .as_ref()
        .map(|settings| crate::console::console_client(&config.issuer, settings));
    if let Some((client, _)) = &console {
        if clients.iter().any(|c| c.id == client.id) {
            return Err(StartError::ConsoleClientId);
        }
        clients.push(client.clone());
    }
    // One registry handle shared by the provider, the event log and CORS: a reload replaces
    // the set in it for all of them at once.
    let registry = ClientRegistry::new(clients);
    let event_log = EventLogState {
        store: store.clone(),
        clock: clock.clone(),
        retention: config.login_event_retention,
        clients: registry.clone(),
    };
    let mut provider = Provider::new(ProviderParts {
        issuer: config.issuer.clone(),
        clients: registry,
        store: store.clone(),
        keys: keys.clone(),
        clock: clock.clone(),
        lifetimes: config.lifetimes,
        connector,
        session: config.session,
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(web::logout::BACKCHANNEL_TIMEOUT)
        .build()
        .map_err(|e| StartError::Http(e.to_string()))?;
    provider = provider
        .with_max_pending_authorizations(config.limits.max_pending_authorizations as usize)
        .with_event_retention(config.login_event_retention)
        .with_logout_notifier(Arc::new(web::logout::HttpLogoutNotifier::new(http.clone())));
    for more in more_connectors {
        provider = provider.with_connector(more);
    }
    let provider = Arc::new(provider);
    let discovery_bytes = discovery::metadata_json_full(&config.issuer, &algs, pairwise)?;
    let state = WebState {
        provider: provider.clone(),
        discovery: Arc::new(ArcSwap::from_pointee(discovery_bytes.clone())),
        cookies: web::cookies::CookieScope::for_issuer(&config.issuer),
        http,
    };
    let connector_rows: Vec<ConnectorRow> = configs
        .iter()
        .map(|c| ConnectorRow {
            id: c.id().to_owned(),
            summary: c.summary(),
            callback_url: provider.callback_url(c.id()),
        })
        .collect();
    let start_info = Arc::new(ArcSwap::from_pointee(crate::reload::start_info(
        &config.issuer,
        &connector_rows,
        &config.clients,
        &discovery_bytes,
        &initial_keys,
    )));
    let live = crate::reload::LiveParts {
        provider: provider.clone(),
        discovery: state.discovery.clone(),
        limiters: web::rate_limit::RateLimiters::new(&config.limits),
        cors: web::cors::CorsPolicy::public_client_origins(provider.clients()),
        start: start_info.clone(),
        connector_rows,
        pairwise,
        internal_clients: playground
            .iter()
            .chain(console.iter())
            .map(|(c, _)| c.clone())
            .collect(),
        keys_in_store: store.is_shared(),
        clock: clock.clone(),
    };
    let hot = web::hot_routes::HotRoutes::new(&state, live.cors.clone(), metrics.clone());
    let mut router = web::router_live(state, live.limiters.clone(), live.cors.clone())
        .merge(web::verify::router(verify_files));
    if let Some((_, secret)) = playground {
        router = router.merge(crate::relying_party::playground_router(
            &config.issuer,
            secret,
            &config.clients,
            configs[0].claim_origins(),
        ));
    }
    let reloader = crate::admin::ReloaderSlot::default();
    let admin = crate::admin::router(crate::admin::AdminContext {
        config: Arc::new(config.clone()),
        provider: provider.clone(),
        store: store.clone(),
        clock: clock.clone(),
        reloader: reloader.clone(),
    });
    if let (Some((_, secret)), Some(settings)) = (console, &config.admin) {
        router = router.merge(crate::console::router(crate::console::ConsoleParts {
            settings: settings.clone(),
            client_secret: secret,
            provider: provider.clone(),
            store: crate::storage::operator_role(store.clone()),
            admin: admin.clone(),
            connectors: recording,
            connector_rows: live.connector_rows.clone(),
            readiness_failures: health_state.recent_failures.clone(),
            clock: clock.clone(),
        }));
    }
    let router = router
        .merge(web::health::router(health_state))
        .merge(web::start::router(start_info))
        .layer(web::observe::ObserveLayer::new(
            web::observe::ObserveState {
                metrics: metrics.clone(),
                events: event_log,
            },
        ));
    Ok(App {
        router,
        provider,
        store,
        metrics,
        hot,
        admin,
        live,
        reloader,
    })
}

/// Puts the router behind the rules every request gets: body limit, deadline,
/// `X-Content-Type-Options`, `Retry-After` on `503`s and the request log with its id
/// ([`web::edge`]).
pub fn with_middleware(router: Router) -> web::edge::Edge {
    with_middleware_at(router, "")
}

/// [`with_middleware`] for a server whose issuer is `issuer`: when it has a path, requests
/// under that path are routed without it, and requests without it as they come (a proxy that
/// strips the path), see [`web::issuer_path`].
pub fn with_middleware_at(router: Router, issuer: &str) -> web::edge::Edge {
    let router =
        router.fallback(|| async { (StatusCode::NOT_FOUND, "not found\n").into_response() });
    web::edge::Edge::new(router, &web::issuer_path::of(issuer))
}

pub use web::edge::{REQUEST_TIMEOUT, RETRY_AFTER_SECS};

/// Serves `router` on `listener` until Ctrl-C or SIGTERM, then flushes the store.
pub async fn serve(
    listener: TcpListener,
    router: web::edge::Edge,
    store: Arc<dyn Store>,
) -> std::io::Result<()> {
    let flusher = spawn_maintenance(store.clone());
    // With the peer address (the rate limits of `web::rate_limit` key on it) and the header
    // timeout and size limits `axum::serve` lacks (slow-loris): see `crate::server`.
    crate::server::serve(listener, router, shutdown_signal()).await?;
    flusher.abort();
    if let Err(e) = store.flush().await {
        tracing::error!(error = %e, "final store flush failed");
    }
    Ok(())
}

/// Periodically deletes expired records.
pub fn spawn_maintenance(store: Arc<dyn Store>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let now = crate::clock::Clock::now(&crate::clock::SystemClock);
            match store.delete_expired(now).await {
                Ok(n) if n > 0 => tracing::debug!(deleted = n, "expired records removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
