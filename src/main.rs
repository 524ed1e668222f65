//! The `wecom-oidc` binary: parses the command line and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use wecom_oidc::cli::{Cli, ClientsCommand, Command, LogFormat};
use wecom_oidc::clock::SystemClock;
use wecom_oidc::{app, commands, config, demo};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(cli.config).await,
            Command::Demo(args) => demo::run(args, cli.config).await,
            Command::Keys(args) => keys(&args, cli.config.as_deref()).await,
            Command::Check => commands::doctor::run(cli.config.as_deref(), Arc::new(SystemClock))
                .await
                .map_err(Into::into),
            Command::Snippet(args) => {
                commands::run_snippet(cli.config.as_deref(), args.app, &args.client)
            }
            Command::Events(args) => {
                commands::run_events(cli.config.as_deref(), args.limit, args.json).await
            }
            Command::Admin(args) => commands::admin::run(cli.config.as_deref(), args).await,
            Command::Backup(args) => commands::backup::backup(cli.config.as_deref(), args).await,
            Command::Restore(args) => commands::backup::restore(cli.config.as_deref(), &args),
            Command::Clients(args) => match args.command {
                ClientsCommand::List => commands::run_clients_list(cli.config.as_deref()),
            },
        }
    });
    // The runtime first: connections still open after the shutdown's drain are dropped with
    // it, and each request dropped unanswered appends its access line (status 499). Then the
    // buffered access lines (`logging::LogWriter`) go out before the process ends.
    drop(runtime);
    log.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config_path: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let path = config_path.unwrap_or_else(|| PathBuf::from("wecom-oidc.toml"));
    let config = config::load(&path)?;
    for deprecation in &config.deprecations {
        tracing::warn!(config = %path.display(), "deprecated configuration: {deprecation}");
    }
    // `build_on`: on a store shared by several instances the signing keys come from the store
    // and are re-read every `keys_reload_interval` seconds.
    let store = app::open_store(&config).await?;
    let clock: wecom_oidc::clock::SharedClock = Arc::new(SystemClock);
    let built = app::build_on(&config, clock.clone(), store).await?;
    let reloader = Arc::new(wecom_oidc::reload::Reloader::new(
        &path,
        config.clone(),
        built.live.clone(),
    ));
    spawn_reload_on_hangup(reloader.clone());
    // The admin routes (socket and console) reload through the same reloader.
    let _ = built.reloader.set(reloader);
    // The local admin socket: commands that act on this running server go through it.
    let admin = wecom_oidc::admin::spawn(
        &wecom_oidc::admin::socket_path(&config),
        built.admin.clone(),
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    // The bound address, not the configured one: with port 0 the kernel picks it, and whoever
    // started the process (a test, a supervisor) learns it here.
    let bound = listener.local_addr().unwrap_or(config.listen);
    tracing::info!(issuer = %config.issuer, listen = %bound, "wecom-oidc is serving");
    // The start page is `/` in serve mode only; the demo keeps its own page at `/`.
    // In the browser's terms: under the issuer's path, however the request arrived.
    let start = format!(
        "{}{}",
        wecom_oidc::web::issuer_path::of(&config.issuer),
        wecom_oidc::web::start::START_PATH
    );
    let hot = built.hot;
    let router = built.router.route(
        "/",
        axum::routing::get(move || async move { axum::response::Redirect::to(&start) }),
    );
    app::serve(
        listener,
        app::with_middleware_at(router, &config.issuer).with_hot_routes(hot),
        built.store,
    )
    .await?;
    if let Some(admin) = admin {
        admin.abort();
        let _ = std::fs::remove_file(wecom_oidc::admin::socket_path(&config));
    }
    Ok(())
}

/// `SIGHUP` reloads the configuration (`wecom_oidc::reload`); the outcome is logged.
fn spawn_reload_on_hangup(reloader: Arc<wecom_oidc::reload::Reloader>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP cannot be caught; reload through `wecom-oidc admin reload`");
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            // Refusals are logged by the reloader with every problem.
            let _ = reloader.reload("SIGHUP").await;
        }
    });
}

/// `keys`: against the store when the configuration names a shared one (PostgreSQL), else
/// against the key directory.
async fn keys(
    args: &wecom_oidc::cli::KeysArgs,
    config_path: Option<&std::path::Path>,
) -> Result<(), Box<dyn std::error::Error>> {
    let shared = match config_path {
        Some(p) if args.dir.is_none() => {
            let config = config::load(p)?;
            (config.store != wecom_oidc::config::StoreLocation::Sled).then_some(config)
        }
        _ => None,
    };
    let out = match shared {
        Some(config) => {
            let store = app::open_store(&config).await?;
            wecom_oidc::cli::run_keys_in_store(args, store.as_ref(), &SystemClock).await?
        }
        None => wecom_oidc::cli::run_keys(args, config_path, &SystemClock)?,
    };
    print!("{out}");
    Ok(())
}

fn init_tracing(format: LogFormat) -> wecom_oidc::logging::LogWriter {
    use tracing_subscriber::EnvFilter;
    // sled logs record keys at trace level: keep it at info whatever RUST_LOG asks.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("sled=info".parse().expect("static directive"));
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    // Access lines are buffered except for a person at a terminal (`logging` module docs).
    let writer = wecom_oidc::logging::LogWriter::stderr(!terminal);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(writer.clone());
    match format {
        // Colours for a person at a terminal; a log file gets the same line without escape
        // codes from a formatter that skips the styling work (docs/performance.md).
        LogFormat::Text if terminal => builder.init(),
        LogFormat::Text => builder
            .fmt_fields(wecom_oidc::logging::PlainFields)
            .event_format(wecom_oidc::logging::PlainText)
            .init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
    writer
}
