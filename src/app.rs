//! Assembles the server from a validated config: store, keys, connector, OIDC core, routes,
//! middleware; serves it with graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::connector::wecom::WeComConnector;
use crate::connector::Connector;
use crate::provider::{discovery, ClientRegistry, Provider, ProviderParts};
use crate::storage::{SledStore, Store};
use crate::tokens::{KeyStore, SigningAlg};
use crate::web::{self, WebState};

/// Largest request body we read; OAuth requests are small (RFC 9700 §4.16 asks for limits).
const MAX_BODY: usize = 64 * 1024;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened.
    #[error("cannot open the store in {dir}: {source}")]
    Store {
        /// data_dir.
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
}

/// Opens the store and keys and builds the provider with its routes.
pub fn build(config: &Config, clock: SharedClock) -> Result<App, StartError> {
    let store: Arc<dyn Store> =
        Arc::new(
            SledStore::open(&config.data_dir).map_err(|source| StartError::Store {
                dir: config.data_dir.display().to_string(),
                source,
            })?,
        );
    build_with_store(config, clock, store)
}

/// Builds the provider on an already opened store.
pub fn build_with_store(
    config: &Config,
    clock: SharedClock,
    store: Arc<dyn Store>,
) -> Result<App, StartError> {
    let keys = Arc::new(KeyStore::load_or_generate_with(
        &config.keys_dir,
        SigningAlg::Rs256,
        clock.as_ref(),
    )?);
    // A client's id_token algorithm needs a key now, not a failed token request later.
    for c in &config.clients {
        if let Some(alg) = c.settings.id_token_signed_response_alg {
            if !keys.has_alg(alg) {
                return Err(StartError::MissingKey {
                    client: c.id.clone(),
                    alg: alg.as_str(),
                });
            }
        }
    }
    let algs: Vec<&str> = keys
        .signing_algs()
        .into_iter()
        .map(SigningAlg::as_str)
        .collect();
    let apps = std::iter::once(&config.wecom).chain(&config.more_wecom_apps);
    let verify_paths: Vec<std::path::PathBuf> =
        apps.clone().flat_map(|a| a.verify_files.clone()).collect();
    let verify_files = web::verify::load(&verify_paths).map_err(StartError::VerifyFile)?;
    let pairwise = apps
        .clone()
        .any(|a| a.subject == crate::connector::wecom::SubjectMode::Pairwise);
    let connector: Arc<dyn Connector> = Arc::new(WeComConnector::new(
        config.wecom.clone(),
        store.clone(),
        clock.clone(),
    )?);
    let mut provider = Provider::new(ProviderParts {
        issuer: config.issuer.clone(),
        clients: ClientRegistry::new(config.clients.clone()),
        store: store.clone(),
        keys: keys.clone(),
        clock: clock.clone(),
        lifetimes: config.lifetimes,
        connector,
        session: config.session,
    });
    provider =
        provider.with_max_pending_authorizations(config.limits.max_pending_authorizations as usize);
    for app in &config.more_wecom_apps {
        provider = provider.with_connector(Arc::new(WeComConnector::new(
            app.clone(),
            store.clone(),
            clock.clone(),
        )?));
    }
    let provider = Arc::new(provider);
    let state = WebState {
        provider: provider.clone(),
        discovery: discovery::metadata_json_full(&config.issuer, &algs, pairwise)?,
        jwks: keys.jwks_bytes(),
        secure_cookies: config.issuer.starts_with("https://"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(web::logout::BACKCHANNEL_TIMEOUT)
            .build()
            .map_err(|e| StartError::Http(e.to_string()))?,
    };
    Ok(App {
        router: web::router_with(state, &config.limits).merge(web::verify::router(verify_files)),
        provider,
        store,
    })
}

/// Adds the middleware every route gets.
pub fn with_middleware(router: Router) -> Router {
    router
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n").into_response() })
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
}

/// Serves `router` on `listener` until Ctrl-C or SIGTERM, then flushes the store.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    store: Arc<dyn Store>,
) -> std::io::Result<()> {
    let flusher = spawn_maintenance(store.clone());
    // With the peer address (the rate limits of `web::rate_limit` key on it) and the header
    // timeout and size limits `axum::serve` lacks (slow-loris): see `crate::server`.
    crate::server::serve(listener, router, shutdown_signal()).await?;
    flusher.abort();
    if let Err(e) = store.flush() {
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
            let s = store.clone();
            let now = crate::clock::Clock::now(&crate::clock::SystemClock);
            match tokio::task::spawn_blocking(move || s.delete_expired(now)).await {
                Ok(Ok(n)) if n > 0 => tracing::debug!(deleted = n, "expired records removed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "expiry sweep failed"),
                _ => {}
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
