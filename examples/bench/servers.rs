//! The servers: `wecom-oidc demo` under test, and the helper servers this binary runs as child
//! processes of its own (the static baseline, the simulator of the store comparison).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::browser::BenchClient;
use crate::conn::{Answer, Conn, RequestSpec};
use crate::procs::{free_port, spawn, Guard};
use crate::{err, Result, MEMBER, START_TIMEOUT};

/// Size of the static baseline body.
pub const BASELINE_BODY: usize = 1024;
/// Where the helper simulator mounts WeCom's paths.
pub const SIM_MOUNT: &str = "/wecom-sim";
/// The discovery document: what a started server must answer before it counts as ready.
const DISCOVERY: &str = "/.well-known/openid-configuration";

/// Binds `127.0.0.1:port` and runs `serve` on it with the runtime our server uses (tokio's
/// default multi-thread runtime, as `src/main.rs` builds it).
pub fn serve_helper<F, Fut>(port: u16, serve: F) -> ExitCode
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(_) => return ExitCode::FAILURE,
    };
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        serve(listener).await
    });
    if served.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `--baseline-server PORT`: a static 1 KB body at `/static`.
pub fn baseline_server(port: u16) -> ExitCode {
    serve_helper(port, |listener| async move {
        let body = Bytes::from(vec![b'x'; BASELINE_BODY]);
        let app = axum::Router::new().route(
            "/static",
            axum::routing::get(move || {
                let body = body.clone();
                async move { ([("content-type", "application/json")], body) }
            }),
        );
        axum::serve(listener, app).await
    })
}

/// `--simulator-server PORT`: the WeCom simulator alone (auto-login as [`MEMBER`]) under
/// [`SIM_MOUNT`], for the `serve` instances of the store comparison.
pub fn simulator_server(port: u16) -> ExitCode {
    serve_helper(port, |listener| async move {
        let base = format!("http://127.0.0.1:{port}{SIM_MOUNT}");
        let mut config = wecom_oidc::simulator::SimulatorConfig::demo(&base);
        config.auto_login = Some(MEMBER.to_string());
        let sim =
            wecom_oidc::simulator::Simulator::new(config, Arc::new(wecom_oidc::clock::SystemClock));
        let app = axum::Router::new().nest(SIM_MOUNT, sim.router());
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    })
}

/// Starts this binary as the helper server `flag` selects and waits until `ready_path` answers.
pub async fn start_helper(
    name: &'static str,
    flag: &str,
    ready_path: &str,
    pinned: bool,
) -> Result<(Guard, SocketAddr)> {
    start_helper_with(name, flag, &[], ready_path, pinned).await
}

/// [`start_helper`] with more arguments after `flag PORT`.
pub async fn start_helper_with(
    name: &'static str,
    flag: &str,
    more: &[String],
    ready_path: &str,
    pinned: bool,
) -> Result<(Guard, SocketAddr)> {
    let port = free_port()?;
    let exe = std::env::current_exe()?;
    let mut args = vec![flag.to_string(), port.to_string()];
    args.extend_from_slice(more);
    let mut guard = spawn(name, &exe, &args, pinned, None)?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_answering(&mut guard, addr, ready_path, Instant::now(), None).await?;
    Ok((guard, addr))
}

/// The server under test.
pub struct Server {
    pub guard: Guard,
    pub addr: SocketAddr,
    pub issuer: String,
}

/// Starts the demo on a free port, with the clients of `clients_file` when given.
pub fn start_server(
    bin: &Path,
    data_dir: &Path,
    clients_file: Option<&Path>,
    pinned: bool,
) -> Result<(Guard, SocketAddr)> {
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut args = vec![
        "demo".to_string(),
        "--listen".into(),
        addr.to_string(),
        "--auto-login".into(),
        MEMBER.into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ];
    if let Some(f) = clients_file {
        args.push("--config".into());
        args.push(f.display().to_string());
    }
    let guard = spawn(
        "wecom-oidc demo",
        bin,
        &args,
        pinned,
        Some(&data_dir.join("server.log")),
    )?;
    Ok((guard, addr))
}

/// Polls discovery until it answers 200; returns the time from `since`.
pub async fn wait_ready(
    guard: &mut Guard,
    addr: SocketAddr,
    since: Instant,
    log: Option<&Path>,
) -> Result<Duration> {
    wait_answering(guard, addr, DISCOVERY, since, log).await
}

/// Polls `path` until it answers 200; returns the time from `since`. A child that exits
/// meanwhile fails the wait with its stderr, or its `log` when it writes one.
async fn wait_answering(
    guard: &mut Guard,
    addr: SocketAddr,
    path: &str,
    since: Instant,
    log: Option<&Path>,
) -> Result<Duration> {
    let deadline = since + START_TIMEOUT;
    loop {
        if let Some(why) = guard.exited() {
            let log = log
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            return Err(err(format!("{why} {}", log.trim())));
        }
        if let Ok(mut c) = Conn::open(addr).await {
            if let Ok(Answer { status: 200, .. }) = c.send(&RequestSpec::get(path)).await {
                return Ok(since.elapsed());
            }
        }
        if Instant::now() >= deadline {
            return Err(err(format!(
                "{} did not answer within {START_TIMEOUT:?}",
                guard.name
            )));
        }
        // Polling granularity of the cold-start figure.
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// The bench clients' settings file for `demo --config`. `bench-es256` asks for ES256 id_tokens
/// through the per-client `id_token_signed_response_alg` setting (OIDC Dynamic Client
/// Registration §2); a server without that setting refuses the file and the bench retries
/// without it.
pub fn clients_toml(rs: &BenchClient, es: Option<&BenchClient>) -> String {
    let client = |c: &BenchClient| {
        format!(
            "[[clients]]\nid = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{}\"]\n",
            c.id, c.secret, c.redirect_uri
        )
    };
    let mut s = client(rs);
    if let Some(es) = es {
        s.push('\n');
        s.push_str(&client(es));
        s.push_str("id_token_signed_response_alg = \"ES256\"\n");
    }
    // One generator on one address is far over a real client's rate: raise the limits (the
    // limiter itself stays on the path and is measured) rather than benchmark 429s.
    s.push_str(
        "\n[limits]\ntoken_burst = 1000000\ntoken_per_minute = 1000000\ncallback_burst = 1000000\ncallback_per_minute = 1000000\nauthorize_burst = 1000000\nauthorize_per_minute = 1000000\n",
    );
    s
}

/// Starts the demo, trying the ES256 client first. Returns the server, and the ES256 client
/// when the server accepted it.
pub async fn start_main(
    bin: &Path,
    dir: &Path,
    rs: &BenchClient,
    es: &BenchClient,
    pinned: bool,
) -> Result<(Server, Option<BenchClient>)> {
    let file = dir.join("clients.toml");
    let log = dir.join("server.log");
    for with_es in [true, false] {
        std::fs::write(&file, clients_toml(rs, with_es.then_some(es)))?;
        let (mut guard, addr) = start_server(bin, dir, Some(&file), pinned)?;
        match wait_ready(&mut guard, addr, Instant::now(), Some(&log)).await {
            Ok(_) => {
                return Ok((
                    Server {
                        guard,
                        addr,
                        issuer: format!("http://{addr}"),
                    },
                    with_es.then(|| es.clone()),
                ))
            }
            // Whatever the reason the ES256 client is refused (today: the config key does not
            // exist yet), the rest is still measured and ES256 is reported as n/a.
            Err(e) if with_es => {
                let why = if e.to_string().contains("id_token_signed_response_alg") {
                    "this server has no per-client id_token_signed_response_alg yet".to_string()
                } else {
                    format!("the server refused the ES256 client: {e}")
                };
                eprintln!("bench: {why}; ES256 is n/a");
            }
            Err(e) => return Err(e),
        }
    }
    Err(err("the server did not start"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_es256_client_asks_for_es256_and_limits_are_raised() {
        let rs = BenchClient::new("bench-rs256");
        let es = BenchClient::new("bench-es256");
        let both = clients_toml(&rs, Some(&es));
        assert_eq!(both.matches("[[clients]]").count(), 2);
        let es_part = &both[both.find("bench-es256").expect("es client")..];
        assert!(es_part.contains("id_token_signed_response_alg = \"ES256\""));
        assert!(!clients_toml(&rs, None).contains("id_token_signed_response_alg"));
        assert!(both.contains("[limits]\ntoken_burst = 1000000"));
    }
}
