//! The performance benchmark of issue 7: a load generator that starts `wecom-oidc demo` itself
//! and prints every figure of the issue beside its baseline, target and PASS/MISS.
//!
//! Run (from the repository root; builds the server binary itself when needed):
//!
//! ```text
//! cargo run --release --example bench            # full run, about 2 minutes of measurement
//! cargo run --release --example bench -- --smoke # a few seconds: every figure must be a number
//! cargo run --release --example bench -- --soak 600  # issue 8: sustained mixed traffic
//! ```
//!
//! `--soak SECS` (issue 8) runs only sustained mixed traffic — `--browsers` workers each
//! looping login → code exchange → (3 × userinfo, refresh) × 5 — and prints requests, errors
//! and the server's RSS every tenth of the run, then a summary; it fails on any error.
//!
//! How it measures (details and analysis in `docs/performance.md`):
//! - The server is `target/<profile>/wecom-oidc demo --listen 127.0.0.1:PORT --auto-login
//!   zhangsan --data-dir TMP --config TMP/clients.toml`, a child process pinned with `taskset` to
//!   CPU 1 while this generator pins itself to CPU 0 (when `taskset` exists and there are ≥ 2
//!   CPUs). It is killed on every exit path (a guard kills it on drop).
//! - Throughput is requests per second of wall time, and also requests per CPU-second of the
//!   server process (`/proc/PID/stat` utime+stime). Targets that are ratios are judged on the
//!   CPU-normalised figure, which stays meaningful on a machine shared with other work; the
//!   wall-clock ratio is printed beside it.
//! - Baselines from the same run: a static 1 KB axum handler served by this very binary in a
//!   child process (`--baseline-server`, same runtime and pinning as the server), and
//!   `openssl speed rsa2048 ecdsap256` on one core.
//!
//! - `--store postgres://USER@HOST:PORT/DB` adds the store and instance comparison: complete
//!   logins and `/token` against `wecom-oidc serve` (not the demo) with sled, with PostgreSQL,
//!   and with `--instances N` (default 2) instances over that PostgreSQL, the browsers and token
//!   connections spread round-robin over the instances. The WeCom simulator then runs in a child
//!   process of its own (`--simulator-server`), pinned with the servers. Each setup gets a fresh
//!   database (the URL's user must be allowed to create databases), dropped afterwards.
//!
//! Everything listens on loopback only, every phase has a bounded duration, and every request
//! has a timeout.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

/// CPU the generator runs on; the servers run on [`SERVER_CPU`].
const GENERATOR_CPU: usize = 0;
/// CPU the measured servers (ours, the baseline, openssl) run on.
const SERVER_CPU: usize = 1;
/// The member the simulator logs in at once.
const MEMBER: &str = "zhangsan";
/// Limit on any one request: a hung server fails the run instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit on waiting for a started server to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Size of the static baseline body.
const BASELINE_BODY: usize = 1024;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

fn err(msg: impl Into<String>) -> Error {
    msg.into().into()
}

/// Command-line options.
#[derive(Debug, Clone)]
struct Options {
    smoke: bool,
    /// Measured seconds per phase (after warm-up).
    duration: Duration,
    warmup: Duration,
    /// Concurrent browsers in the login phase.
    browsers: usize,
    /// Concurrent keep-alive connections in single-endpoint phases.
    connections: usize,
    cold_starts: usize,
    openssl_seconds: u32,
    pin: bool,
    build: bool,
    /// `--soak SECS`: the sustained mixed-traffic mode instead of the benchmark.
    soak: Option<Duration>,
    /// `--store`: a PostgreSQL server for the store and instance comparison.
    store: Option<String>,
    /// `--instances`: how many instances share the PostgreSQL store in the comparison.
    instances: usize,
}

impl Options {
    fn parse() -> Result<(Self, Option<u16>, Option<u16>)> {
        let mut o = Options {
            smoke: false,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            browsers: 16,
            connections: 32,
            cold_starts: 10,
            openssl_seconds: 3,
            pin: true,
            build: true,
            soak: None,
            store: None,
            instances: 2,
        };
        let mut baseline_port = None;
        let mut simulator_port = None;
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| err(format!("{name} needs a value")))
            };
            match a.as_str() {
                "--smoke" => {
                    o.smoke = true;
                    o.duration = Duration::from_millis(400);
                    o.warmup = Duration::from_millis(100);
                    o.browsers = 4;
                    o.connections = 4;
                    o.cold_starts = 2;
                    o.openssl_seconds = 1;
                }
                "--duration" => {
                    let secs: f64 = value("--duration")?.parse()?;
                    if !(0.1..=120.0).contains(&secs) {
                        return Err(err("--duration must be between 0.1 and 120 seconds"));
                    }
                    o.duration = Duration::from_secs_f64(secs);
                }
                "--browsers" => o.browsers = value("--browsers")?.parse::<usize>()?.clamp(1, 512),
                "--connections" => {
                    o.connections = value("--connections")?.parse::<usize>()?.clamp(1, 512)
                }
                "--soak" => {
                    let secs: u64 = value("--soak")?.parse()?;
                    if !(5..=86_400).contains(&secs) {
                        return Err(err("--soak must be between 5 and 86400 seconds"));
                    }
                    o.soak = Some(Duration::from_secs(secs));
                }
                "--no-pin" => o.pin = false,
                "--no-build" => o.build = false,
                "--baseline-server" => baseline_port = Some(value("--baseline-server")?.parse()?),
                "--simulator-server" => {
                    simulator_port = Some(value("--simulator-server")?.parse()?)
                }
                "--store" => {
                    let url = value("--store")?;
                    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                        return Err(err("--store must be a postgres:// URL"));
                    }
                    o.store = Some(url);
                }
                "--instances" => o.instances = value("--instances")?.parse::<usize>()?.clamp(1, 8),
                "-h" | "--help" => {
                    println!(
                        "usage: bench [--smoke] [--duration SECS] [--browsers N] \
                         [--connections N] [--no-pin] [--no-build] [--soak SECS] \
                         [--store postgres://USER@HOST:PORT/DB [--instances N]]"
                    );
                    std::process::exit(0);
                }
                other => return Err(err(format!("unknown argument {other:?} (try --help)"))),
            }
        }
        Ok((o, baseline_port, simulator_port))
    }
}

fn main() -> ExitCode {
    let (opts, baseline_port, simulator_port) = match Options::parse() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(port) = baseline_port {
        return baseline_server(port);
    }
    if let Some(port) = simulator_port {
        return simulator_server(port);
    }
    let pinned = opts.pin && can_pin();
    if pinned {
        // Pin before the runtime exists so every thread inherits the mask.
        let _ = Command::new("taskset")
            .args(["-a", "-p", "-c", &GENERATOR_CPU.to_string()])
            .arg(std::process::id().to_string())
            .stdout(Stdio::null())
            .status();
    }
    // One thread is plenty for a generator on one core, and keeps it off the server's core.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Workers are `spawn_local` tasks (no `Send` bounds, no cross-thread hand-offs).
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, run(opts, pinned)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Processes: building, pinning, spawning, killing, /proc.
// ---------------------------------------------------------------------------------------------

fn can_pin() -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus > SERVER_CPU
        && Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// `target/<profile>/`, from this example's own path (`target/<profile>/examples/bench`).
fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| err("cannot locate the target directory"))
}

/// Builds the server binary with the same profile as this example (a no-op when up to date).
fn build_server(opts: &Options) -> Result<PathBuf> {
    let bin = profile_dir()?.join("wecom-oidc");
    if opts.build {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--bin", "wecom-oidc"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        eprintln!("bench: building the server ({})…", bin.display());
        let status = cmd.status()?;
        if !status.success() {
            return Err(err("cargo build of the server failed"));
        }
    }
    if !bin.exists() {
        return Err(err(format!("{} does not exist", bin.display())));
    }
    Ok(bin)
}

/// A child process killed (SIGKILL) and reaped when dropped, whatever path leaves the scope.
struct Guard {
    child: Child,
    name: &'static str,
}

impl Guard {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited, and its stderr if so (for the error message).
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                let mut text = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut text);
                }
                Some(format!("{} exited ({status}): {}", self.name, text.trim()))
            }
            _ => None,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program args…`, pinned to the server CPU when `pinned`. `taskset` execs the program,
/// so the PID is the program's own.
fn spawn(
    name: &'static str,
    program: &Path,
    args: &[String],
    pinned: bool,
    log: Option<&Path>,
) -> Result<Guard> {
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", &SERVER_CPU.to_string()]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args).stdin(Stdio::null());
    match log {
        // The server's log goes to a file, as in production; read on failure.
        Some(path) => {
            let f = std::fs::File::create(path)?;
            cmd.stdout(Stdio::null()).stderr(f);
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        }
    }
    let child = cmd.spawn()?;
    Ok(Guard { child, name })
}

/// A free loopback port (bound and released; the server binds it right after).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Clock ticks per second for `/proc/PID/stat`.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32, ticks: f64) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces: fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| err("unreadable /proc/PID/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, utime field 14, stime field 15 (proc(5)).
    let utime: f64 = f.get(11).ok_or_else(|| err("no utime"))?.parse()?;
    let stime: f64 = f.get(12).ok_or_else(|| err("no stime"))?.parse()?;
    Ok((utime + stime) / ticks)
}

/// Context switches (voluntary + involuntary) of every thread of a process so far: each is a
/// hand-off between threads (a futex wait, a blocking read) or a preemption. Threads that ended
/// are not counted, so read it around a phase of threads that live through it.
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|status| {
            status
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("voluntary_ctxt_switches:")
                        .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// A `/proc/PID/status` value in kB (`VmRSS`, `VmHWM`).
fn status_kb(pid: u32, key: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| err(format!("no {key} in /proc/{pid}/status")))
}

// ---------------------------------------------------------------------------------------------
// The static baseline server (a child process running this binary).
// ---------------------------------------------------------------------------------------------

/// Serves a static 1 KB body on `127.0.0.1:port` with the runtime our server uses (tokio's
/// default multi-thread runtime, as `src/main.rs` builds it).
fn baseline_server(port: u16) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(_) => return ExitCode::FAILURE,
    };
    let served = runtime.block_on(async move {
        let body = Bytes::from(vec![b'x'; BASELINE_BODY]);
        let app = axum::Router::new().route(
            "/static",
            axum::routing::get(move || {
                let body = body.clone();
                async move { ([("content-type", "application/json")], body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        axum::serve(listener, app).await
    });
    if served.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `--simulator-server PORT`: the WeCom simulator alone (auto-login as [`MEMBER`]) under
/// `/wecom-sim`, for the `serve` instances of the store comparison.
fn simulator_server(port: u16) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(_) => return ExitCode::FAILURE,
    };
    let served = runtime.block_on(async move {
        let base = format!("http://127.0.0.1:{port}{SIM_MOUNT}");
        let mut config = wecom_oidc::simulator::SimulatorConfig::demo(&base);
        config.auto_login = Some(MEMBER.to_string());
        let sim =
            wecom_oidc::simulator::Simulator::new(config, Arc::new(wecom_oidc::clock::SystemClock));
        let app = axum::Router::new().nest(SIM_MOUNT, sim.router());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    if served.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------------------------
// A lean HTTP/1.1 keep-alive client (hyper's connection API): the generator must cost less than
// the servers it measures, and reqwest's pool and redirect machinery is not needed here.
// ---------------------------------------------------------------------------------------------

struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Conn {
            sender,
            host: addr.to_string(),
        })
    }

    async fn send(&mut self, spec: &RequestSpec) -> Result<Answer> {
        let mut b = Request::builder()
            .method(spec.method.clone())
            .uri(spec.path.as_str())
            .header(hyper::header::HOST, self.host.as_str());
        for (k, v) in &spec.headers {
            b = b.header(*k, v.as_str());
        }
        let req = b.body(Full::new(spec.body.clone()))?;
        let fut = async {
            self.sender.ready().await?;
            let resp = self.sender.send_request(req).await?;
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, Error>(Answer {
                status,
                location,
                body,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| err("request timed out"))?
    }
}

/// A response: status, `Location` and body.
struct Answer {
    status: u16,
    location: Option<String>,
    body: Bytes,
}

#[derive(Clone)]
struct RequestSpec {
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl RequestSpec {
    fn get(path: impl Into<String>) -> Self {
        RequestSpec {
            method: Method::GET,
            path: path.into(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Phases: N workers in a closed loop, warm-up excluded, server CPU measured over the window.
// ---------------------------------------------------------------------------------------------

/// One measured phase.
#[derive(Debug, Clone, Default)]
struct PhaseResult {
    requests: u64,
    errors: u64,
    seconds: f64,
    /// Server CPU-seconds used in the window.
    server_cpu: f64,
    /// Generator CPU-seconds used in the window.
    generator_cpu: f64,
    /// Context switches of the server's threads in the window.
    server_switches: u64,
    /// Latencies in microseconds, sorted.
    latencies: Vec<u64>,
}

impl PhaseResult {
    fn per_second(&self) -> f64 {
        ratio(self.requests as f64, self.seconds)
    }
    /// Requests per CPU-second of the server.
    fn per_cpu_second(&self) -> f64 {
        ratio(self.requests as f64, self.server_cpu)
    }
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)] as f64 / 1000.0
    }
    fn summary(&self) -> String {
        format!(
            "{} req in {:.2}s, {:.0}/s, server CPU {:.0}% ({:.1} µs/req, {:.2} context switches/req), generator CPU {:.0}%, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            self.requests,
            self.seconds,
            self.per_second(),
            100.0 * ratio(self.server_cpu, self.seconds),
            1e6 * ratio(self.server_cpu, self.requests as f64),
            ratio(self.server_switches as f64, self.requests as f64),
            100.0 * ratio(self.generator_cpu, self.seconds),
            self.percentile(0.5),
            self.percentile(0.99),
            self.errors
        )
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

/// What every worker shares.
struct Shared {
    measuring: AtomicBool,
    stop: AtomicBool,
    requests: AtomicU64,
    errors: AtomicU64,
    latencies: Mutex<Vec<u64>>,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn new() -> Arc<Shared> {
        Arc::new(Shared {
            measuring: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latencies: Mutex::new(Vec::new()),
            first_error: Mutex::new(None),
        })
    }

    fn record(&self, started: Instant, outcome: Result<()>, local: &mut Vec<u64>) {
        if !self.measuring.load(Ordering::Relaxed) {
            return;
        }
        match outcome {
            Ok(()) => {
                self.requests.fetch_add(1, Ordering::Relaxed);
                local.push(started.elapsed().as_micros() as u64);
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    *first = Some(e.to_string());
                }
            }
        }
    }

    fn flush(&self, local: Vec<u64>) {
        self.latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(local);
    }
}

/// Runs `workers` in a closed loop for warm-up + duration (or until they run out of work) and
/// measures the window after warm-up. Each worker is a future that loops until `stop`.
async fn measure<F, Fut>(
    opts: &Options,
    server_pid: u32,
    ticks: f64,
    workers: usize,
    make_worker: F,
) -> Result<PhaseResult>
where
    F: Fn(usize, Arc<Shared>) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let shared = Shared::new();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..workers {
        set.spawn_local(make_worker(i, shared.clone()));
    }
    let me = std::process::id();
    tokio::time::sleep(opts.warmup).await;
    shared.measuring.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    let (s0, g0) = (cpu_seconds(server_pid, ticks)?, cpu_seconds(me, ticks)?);
    let c0 = context_switches(server_pid);
    let deadline = tokio::time::sleep(opts.duration);
    tokio::pin!(deadline);
    // Ends at the deadline, or earlier when every worker ran out of work.
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            joined = set.join_next() => if joined.is_none() { break },
        }
    }
    shared.measuring.store(false, Ordering::SeqCst);
    let seconds = t0.elapsed().as_secs_f64();
    let (s1, g1) = (cpu_seconds(server_pid, ticks)?, cpu_seconds(me, ticks)?);
    let c1 = context_switches(server_pid);
    shared.stop.store(true, Ordering::SeqCst);
    // Workers stop after their current request, which is bounded by REQUEST_TIMEOUT.
    while set.join_next().await.is_some() {}
    let mut latencies =
        std::mem::take(&mut *shared.latencies.lock().unwrap_or_else(|p| p.into_inner()));
    latencies.sort_unstable();
    let errors = shared.errors.load(Ordering::SeqCst);
    if errors > 0 {
        let first = shared
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        eprintln!("bench:   {errors} errors, first: {first}");
    }
    Ok(PhaseResult {
        requests: shared.requests.load(Ordering::SeqCst),
        errors,
        seconds,
        server_cpu: s1 - s0,
        generator_cpu: g1 - g0,
        server_switches: c1.saturating_sub(c0),
        latencies,
    })
}

/// A phase hammering one request shape over `connections` keep-alive connections; `check`
/// validates each 200 body.
async fn hammer(
    opts: &Options,
    addr: SocketAddr,
    server_pid: u32,
    ticks: f64,
    spec: RequestSpec,
    check: fn(&[u8]) -> bool,
) -> Result<PhaseResult> {
    let spec = Arc::new(spec);
    measure(
        opts,
        server_pid,
        ticks,
        opts.connections,
        move |_, shared| {
            let spec = spec.clone();
            async move {
                let mut conn = None;
                let mut local = Vec::new();
                while !shared.stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let outcome = async {
                        if conn.is_none() {
                            conn = Some(Conn::open(addr).await?);
                        }
                        let c = conn.as_mut().ok_or_else(|| err("no connection"))?;
                        let a = match c.send(&spec).await {
                            Ok(x) => x,
                            Err(e) => {
                                conn = None;
                                return Err(e);
                            }
                        };
                        if a.status != 200 || !check(&a.body) {
                            return Err(err(format!("{} answered {}", spec.path, a.status)));
                        }
                        Ok(())
                    }
                    .await;
                    let failed = outcome.is_err();
                    shared.record(started, outcome, &mut local);
                    if failed {
                        // Do not spin on a broken server.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                shared.flush(local);
            }
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Browsers: the complete login, each browser with its own cookie jar.
// ---------------------------------------------------------------------------------------------

/// A registered bench client.
#[derive(Clone)]
struct BenchClient {
    id: String,
    secret: String,
    redirect_uri: String,
}

/// One browser with its own cookie jar, walking redirects by hand.
struct Browser {
    http: reqwest::Client,
    issuer: String,
    /// In the cluster comparison: the issuer every instance names in its redirects, sent to this
    /// browser's instance (`issuer`) instead, as a load balancer would.
    public_issuer: Option<String>,
}

/// A code ready for the token endpoint.
struct PreparedCode {
    code: String,
    verifier: String,
}

impl Browser {
    fn new(issuer: &str) -> Result<Browser> {
        Ok(Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(REQUEST_TIMEOUT)
                .build()?,
            issuer: issuer.to_string(),
            public_issuer: None,
        })
    }

    /// A browser whose requests to `public_issuer` go to `instance`.
    fn behind(public_issuer: &str, instance: &str) -> Result<Browser> {
        let mut b = Browser::new(instance)?;
        b.public_issuer = Some(public_issuer.to_string());
        Ok(b)
    }

    async fn location(&self, url: &str) -> Result<String> {
        let resp = self.http.get(url).send().await?;
        let status = resp.status();
        if !status.is_redirection() {
            return Err(err(format!("expected a redirect, got {status}")));
        }
        let loc = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| err("redirect without Location"))?;
        // Relative locations resolve against the issuer.
        let loc = url::Url::parse(&self.issuer)?.join(loc)?.to_string();
        match &self.public_issuer {
            Some(public) if loc.starts_with(&format!("{public}/")) => {
                Ok(format!("{}{}", self.issuer, &loc[public.len()..]))
            }
            _ => Ok(loc),
        }
    }

    /// authorize → simulator → callback: the code at the client's redirect URI.
    async fn code(&self, client: &BenchClient) -> Result<PreparedCode> {
        let state = wecom_oidc::random::alphanumeric(22);
        let nonce = wecom_oidc::random::alphanumeric(22);
        let verifier = wecom_oidc::random::token(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut authorize = url::Url::parse(&format!("{}/authorize", self.issuer))?;
        authorize
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", &client.redirect_uri)
            .append_pair("scope", "openid profile email")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            // A complete login every time: without it the browser's provider session would
            // answer from single sign-on and skip WeCom.
            .append_pair("prompt", "login");
        let upstream = self.location(authorize.as_str()).await?;
        let callback = self.location(&upstream).await?;
        let back = url::Url::parse(&self.location(&callback).await?)?;
        if !back.as_str().starts_with(&client.redirect_uri) {
            return Err(err("the login did not end at the client's redirect URI"));
        }
        let q: HashMap<_, _> = back.query_pairs().into_owned().collect();
        if q.get("state") != Some(&state) {
            return Err(err(format!(
                "the callback lost the state (error {:?})",
                q.get("error")
            )));
        }
        let code = q
            .get("code")
            .cloned()
            .ok_or_else(|| err(format!("no code (error {:?})", q.get("error"))))?;
        Ok(PreparedCode { code, verifier })
    }

    /// The token request (client_secret_basic, RFC 6749 §2.3.1), over this browser's
    /// connection (the RP's back channel, measured in the login phase).
    async fn token(&self, client: &BenchClient, code: &PreparedCode) -> Result<TokenAnswer> {
        let resp = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.code.as_str()),
                ("redirect_uri", client.redirect_uri.as_str()),
                ("code_verifier", code.verifier.as_str()),
            ])
            .send()
            .await?;
        token_answer(resp.status().as_u16(), &resp.bytes().await?)
    }

    async fn userinfo(&self, access_token: &str) -> Result<()> {
        let resp = self
            .http
            .get(format!("{}/userinfo", self.issuer))
            .bearer_auth(access_token)
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await?;
        if status != 200 || body.get("sub").is_none() {
            return Err(err(format!("userinfo answered {status}")));
        }
        Ok(())
    }
}

struct TokenAnswer {
    access_token: String,
    /// `alg` of the id_token's JOSE header.
    alg: String,
}

fn token_answer(status: u16, body: &[u8]) -> Result<TokenAnswer> {
    let v: serde_json::Value = serde_json::from_slice(body)?;
    if status != 200 {
        return Err(err(format!("token answered {status}: {}", v["error"])));
    }
    let access_token = v["access_token"]
        .as_str()
        .ok_or_else(|| err("no access_token"))?
        .to_string();
    let id_token = v["id_token"].as_str().ok_or_else(|| err("no id_token"))?;
    let header = id_token.split('.').next().unwrap_or("");
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header)?)?;
    Ok(TokenAnswer {
        access_token,
        alg: header["alg"].as_str().unwrap_or("").to_string(),
    })
}

/// Complete logins: authorize → simulator → callback → token → userinfo, `browsers` at once.
/// Keeps the last access token seen for the userinfo phase.
async fn logins(
    opts: &Options,
    issuer: &str,
    server_pid: u32,
    ticks: f64,
    client: &BenchClient,
    tokens: Arc<Mutex<Vec<String>>>,
) -> Result<PhaseResult> {
    let browsers: Vec<Arc<Browser>> = (0..opts.browsers)
        .map(|_| Browser::new(issuer).map(Arc::new))
        .collect::<Result<_>>()?;
    logins_with(opts, browsers, server_pid, ticks, client, tokens).await
}

/// [`logins`] with the given browsers (one worker each).
async fn logins_with(
    opts: &Options,
    browsers: Vec<Arc<Browser>>,
    server_pid: u32,
    ticks: f64,
    client: &BenchClient,
    tokens: Arc<Mutex<Vec<String>>>,
) -> Result<PhaseResult> {
    let workers = browsers.len();
    let client = client.clone();
    measure(opts, server_pid, ticks, workers, move |i, shared| {
        let browser = browsers[i].clone();
        let client = client.clone();
        let tokens = tokens.clone();
        async move {
            let mut local = Vec::new();
            while !shared.stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let outcome = async {
                    let code = browser.code(&client).await?;
                    let answer = browser.token(&client, &code).await?;
                    browser.userinfo(&answer.access_token).await?;
                    let mut t = tokens.lock().unwrap_or_else(|p| p.into_inner());
                    if t.len() < 64 {
                        t.push(answer.access_token);
                    }
                    Ok(())
                }
                .await;
                let failed = outcome.is_err();
                shared.record(started, outcome, &mut local);
                if failed {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            shared.flush(local);
        }
    })
    .await
}

/// Prepares up to `count` codes for `client` with `browsers` browsers, within `limit`.
async fn prepare_codes(
    issuer: &str,
    browsers: usize,
    client: &BenchClient,
    count: usize,
    limit: Duration,
) -> Result<Vec<PreparedCode>> {
    let browsers = (0..browsers)
        .map(|_| Browser::new(issuer))
        .collect::<Result<Vec<_>>>()?;
    prepare_codes_with(browsers, client, count, limit).await
}

/// [`prepare_codes`] with the given browsers.
async fn prepare_codes_with(
    browsers: Vec<Browser>,
    client: &BenchClient,
    count: usize,
    limit: Duration,
) -> Result<Vec<PreparedCode>> {
    let out = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let deadline = Instant::now() + limit;
    let mut set = tokio::task::JoinSet::new();
    for browser in browsers {
        let client = client.clone();
        let out = out.clone();
        set.spawn_local(async move {
            loop {
                if Instant::now() >= deadline
                    || out.lock().unwrap_or_else(|p| p.into_inner()).len() >= count
                {
                    return Ok::<_, Error>(());
                }
                let code = browser.code(&client).await?;
                out.lock().unwrap_or_else(|p| p.into_inner()).push(code);
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        joined??;
    }
    let codes = std::mem::take(&mut *out.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(codes)
}

/// `/token` alone on prepared codes; each code is used once. Returns the phase and the id_token
/// `alg` seen.
async fn token_phase(
    opts: &Options,
    addrs: &[SocketAddr],
    server_pid: u32,
    ticks: f64,
    client: &BenchClient,
    codes: Vec<PreparedCode>,
) -> Result<(PhaseResult, String)> {
    let codes = Arc::new(Mutex::new(codes));
    let alg = Arc::new(Mutex::new(String::new()));
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", client.id, client.secret))
    );
    let redirect_uri = client.redirect_uri.clone();
    let alg_out = alg.clone();
    let addrs = addrs.to_vec();
    let phase = measure(
        opts,
        server_pid,
        ticks,
        opts.connections,
        move |i, shared| {
            // Connections spread round-robin over the instances.
            let addr = addrs[i % addrs.len()];
            let codes = codes.clone();
            let basic = basic.clone();
            let redirect_uri = redirect_uri.clone();
            let alg = alg_out.clone();
            async move {
                let mut conn: Option<Conn> = None;
                let mut local = Vec::new();
                while !shared.stop.load(Ordering::Relaxed) {
                    let Some(code) = codes.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                        break;
                    };
                    let body = serde_urlencoded::to_string([
                        ("grant_type", "authorization_code"),
                        ("code", code.code.as_str()),
                        ("redirect_uri", redirect_uri.as_str()),
                        ("code_verifier", code.verifier.as_str()),
                    ])
                    .unwrap_or_default();
                    let spec = RequestSpec {
                        method: Method::POST,
                        path: "/token".into(),
                        headers: vec![
                            ("authorization", basic.clone()),
                            (
                                "content-type",
                                "application/x-www-form-urlencoded".to_string(),
                            ),
                        ],
                        body: Bytes::from(body),
                    };
                    let started = Instant::now();
                    let outcome = async {
                        if conn.is_none() {
                            conn = Some(Conn::open(addr).await?);
                        }
                        let c = conn.as_mut().ok_or_else(|| err("no connection"))?;
                        let a = match c.send(&spec).await {
                            Ok(x) => x,
                            Err(e) => {
                                conn = None;
                                return Err(e);
                            }
                        };
                        let answer = token_answer(a.status, &a.body)?;
                        let mut a = alg.lock().unwrap_or_else(|p| p.into_inner());
                        if a.is_empty() {
                            *a = answer.alg;
                        }
                        Ok(())
                    }
                    .await;
                    shared.record(started, outcome, &mut local);
                }
                shared.flush(local);
            }
        },
    )
    .await?;
    let alg = alg.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok((phase, alg))
}

/// The simulator's share of a login, measured alone: the PC login page (auto-login answers a
/// redirect with a code), `auth/getuserinfo` and `user/get`, exactly the three simulator
/// requests a login causes. `upstream_url` is a real login URL produced by `/authorize` (its
/// `state` is replaced each time); `access_token` is a WeCom token from `gettoken`.
async fn simulator_only(
    opts: &Options,
    addr: SocketAddr,
    server_pid: u32,
    ticks: f64,
    upstream_url: &str,
    access_token: &str,
) -> Result<PhaseResult> {
    let base = url::Url::parse(upstream_url)?;
    let mount = base
        .path()
        .split_once("/wwlogin/")
        .or_else(|| base.path().split_once("/connect/"))
        .map(|(prefix, _)| prefix.to_string())
        .ok_or_else(|| err("unexpected upstream login URL"))?;
    let token = access_token.to_string();
    measure(opts, server_pid, ticks, opts.browsers, move |_, shared| {
        let base = base.clone();
        let mount = mount.clone();
        let token = token.clone();
        async move {
            let mut conn: Option<Conn> = None;
            let mut local = Vec::new();
            while !shared.stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let outcome = sim_login(addr, &base, &mount, &token, &mut conn).await;
                let failed = outcome.is_err();
                if failed {
                    conn = None;
                }
                shared.record(started, outcome, &mut local);
                if failed {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            shared.flush(local);
        }
    })
    .await
}

/// One login's worth of simulator requests.
async fn sim_login(
    addr: SocketAddr,
    base: &url::Url,
    mount: &str,
    token: &str,
    conn: &mut Option<Conn>,
) -> Result<()> {
    if conn.is_none() {
        *conn = Some(Conn::open(addr).await?);
    }
    let c = conn.as_mut().ok_or_else(|| err("no connection"))?;
    let mut page = base.clone();
    let pairs: Vec<(String, String)> = base
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "state" {
                (k, wecom_oidc::random::alphanumeric(22))
            } else {
                (k, v)
            }
        })
        .collect();
    page.query_pairs_mut().clear().extend_pairs(pairs);
    let a = c
        .send(&RequestSpec::get(format!(
            "{}?{}",
            page.path(),
            page.query().unwrap_or("")
        )))
        .await?;
    let back = url::Url::parse(
        a.location
            .as_deref()
            .ok_or_else(|| err(format!("simulator login page answered {}", a.status)))?,
    )?;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| err("the simulator redirect has no code"))?;
    let q = |pairs: &[(&str, &str)]| serde_urlencoded::to_string(pairs).unwrap_or_default();
    for path in [
        format!(
            "{mount}/cgi-bin/auth/getuserinfo?{}",
            q(&[("access_token", token), ("code", &code)])
        ),
        format!(
            "{mount}/cgi-bin/user/get?{}",
            q(&[("access_token", token), ("userid", MEMBER)])
        ),
    ] {
        let a = c.send(&RequestSpec::get(path)).await?;
        let v: serde_json::Value = serde_json::from_slice(&a.body)?;
        if a.status != 200 || v["errcode"] != 0 {
            return Err(err(format!(
                "simulator API answered errcode {}",
                v["errcode"]
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The server under test.
// ---------------------------------------------------------------------------------------------

struct Server {
    guard: Guard,
    addr: SocketAddr,
    issuer: String,
}

/// Writes the bench clients and starts the demo; when `with_es256` and the server refuses the
/// per-client `id_token_signed_response_alg` setting, the caller retries without it.
fn start_server(
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
async fn wait_ready(
    guard: &mut Guard,
    addr: SocketAddr,
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
            if let Ok(Answer { status: 200, .. }) = c
                .send(&RequestSpec::get("/.well-known/openid-configuration"))
                .await
            {
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
fn clients_toml(rs: &BenchClient, es: Option<&BenchClient>) -> String {
    let mut s = format!(
        "[[clients]]\nid = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{}\"]\n",
        rs.id, rs.secret, rs.redirect_uri
    );
    if let Some(es) = es {
        s.push_str(&format!(
            "\n[[clients]]\nid = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{}\"]\nid_token_signed_response_alg = \"ES256\"\n",
            es.id, es.secret, es.redirect_uri
        ));
    }
    // One generator on one address is far over a real client's rate: raise the limits (the
    // limiter itself stays on the path and is measured) rather than benchmark 429s.
    s.push_str(
        "\n[limits]\ntoken_burst = 1000000\ntoken_per_minute = 1000000\ncallback_burst = 1000000\ncallback_per_minute = 1000000\nauthorize_burst = 1000000\nauthorize_per_minute = 1000000\n",
    );
    s
}

fn bench_client(id: &str) -> BenchClient {
    BenchClient {
        id: id.to_string(),
        secret: wecom_oidc::random::token(24),
        redirect_uri: "http://127.0.0.1/bench/callback".to_string(),
    }
}

/// Starts the demo, trying the ES256 client first. Returns the server, and the ES256 client
/// when the server accepted it.
async fn start_main(
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

/// `openssl speed` on the server's core: (RSA-2048 signs/s, ECDSA P-256 signs/s).
fn openssl_speed(opts: &Options, pinned: bool) -> (f64, f64) {
    let secs = opts.openssl_seconds.to_string();
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", &SERVER_CPU.to_string(), "openssl"]);
        c
    } else {
        Command::new("openssl")
    };
    cmd.args(["speed", "-seconds", &secs, "rsa2048", "ecdsap256"])
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    let text = match cmd.output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => {
            eprintln!("bench: openssl speed failed or is missing");
            return (f64::NAN, f64::NAN);
        }
    };
    parse_openssl(&text)
}

/// Reads the `sign/s` column of OpenSSL 1.1/3.x output:
/// `rsa 2048 bits 0.000640s 0.000019s   1562.5  52631.6` and
/// ` 256 bits ecdsa (nistp256)   0.0000s   0.0001s  38013.7  12543.0`.
fn parse_openssl(text: &str) -> (f64, f64) {
    let signs = |line: &str, after: &str| -> Option<f64> {
        let rest = line.split_once(after)?.1;
        rest.split_whitespace()
            .filter(|t| !t.ends_with('s'))
            .find_map(|t| t.parse::<f64>().ok())
    };
    let mut rsa = f64::NAN;
    let mut ec = f64::NAN;
    for line in text.lines() {
        let l = line.trim_start();
        if l.starts_with("rsa") && l.contains("2048 bits") {
            rsa = signs(l, "bits").unwrap_or(f64::NAN);
        } else if l.contains("ecdsa (nistp256)") {
            ec = signs(l, ")").unwrap_or(f64::NAN);
        }
    }
    (rsa, ec)
}

fn machine() -> Vec<(String, String)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let mem = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    vec![
        // Counted from /proc/cpuinfo: this process may already be pinned to one CPU.
        (
            "cpus".into(),
            cpuinfo
                .lines()
                .filter(|l| l.starts_with("processor"))
                .count()
                .to_string(),
        ),
        ("cpu".into(), model),
        ("memory".into(), mem),
        (
            "kernel".into(),
            read("/proc/sys/kernel/osrelease").trim().into(),
        ),
        ("load average".into(), read("/proc/loadavg").trim().into()),
    ]
}

fn mb(kb: f64) -> f64 {
    kb / 1024.0
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One line of the result table.
struct Row {
    figure: String,
    measured: String,
    baseline: String,
    ratio: String,
    target: String,
    result: &'static str,
    /// The numbers behind this row (smoke mode checks they are finite).
    numbers: Vec<f64>,
}

fn row(
    figure: &str,
    measured: String,
    baseline: String,
    ratio: String,
    target: &str,
    pass: Option<bool>,
    numbers: Vec<f64>,
) -> Row {
    Row {
        figure: figure.into(),
        measured,
        baseline,
        ratio,
        target: target.into(),
        result: match pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "info",
        },
        numbers,
    }
}

/// A throughput row judged on requests per server CPU-second against a baseline.
fn ratio_row(figure: &str, p: &PhaseResult, base: &PhaseResult, min: f64) -> Row {
    let r = ratio(p.per_cpu_second(), base.per_cpu_second());
    let wall = ratio(p.per_second(), base.per_second());
    row(
        figure,
        format!(
            "{:.0}/CPU-s ({:.0}/s, p50 {:.2} ms, p99 {:.2} ms)",
            p.per_cpu_second(),
            p.per_second(),
            p.percentile(0.5),
            p.percentile(0.99)
        ),
        format!(
            "static 1 KB: {:.0}/CPU-s ({:.0}/s)",
            base.per_cpu_second(),
            base.per_second()
        ),
        format!("{r:.2} (wall {wall:.2})"),
        &format!("≥ {min} × static"),
        Some(r >= min && p.errors == 0),
        vec![p.per_cpu_second(), base.per_cpu_second(), r],
    )
}

async fn run(opts: Options, pinned: bool) -> Result<bool> {
    if let Some(length) = opts.soak {
        return soak(&opts, pinned, length).await;
    }
    let ticks = clock_ticks();
    let bin = build_server(&opts)?;
    let tmp = tempfile::Builder::new()
        .prefix("wecom-oidc-bench-")
        .tempdir()?;
    let begun = Instant::now();
    eprintln!(
        "bench: {} mode, {:?} per phase after {:?} warm-up, {} browsers, {} connections, {}",
        if opts.smoke { "smoke" } else { "full" },
        opts.duration,
        opts.warmup,
        opts.browsers,
        opts.connections,
        if pinned {
            format!("generator pinned to CPU {GENERATOR_CPU}, servers to CPU {SERVER_CPU}")
        } else {
            "not pinned (no taskset or a single CPU)".to_string()
        }
    );
    let machine_before = machine();

    eprintln!("bench: openssl speed rsa2048 ecdsap256 (one core)…");
    let (rsa_signs, ec_signs) = openssl_speed(&opts, pinned);

    // Static baseline: this binary as a server, same runtime and pinning as ours.
    eprintln!("bench: static 1 KB baseline…");
    let base = {
        let port = free_port()?;
        let exe = std::env::current_exe()?;
        let mut guard = spawn(
            "baseline server",
            &exe,
            &["--baseline-server".to_string(), port.to_string()],
            pinned,
            None,
        )?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let since = Instant::now();
        loop {
            if let Some(why) = guard.exited() {
                return Err(err(why));
            }
            if let Ok(mut c) = Conn::open(addr).await {
                if c.send(&RequestSpec::get("/static")).await.is_ok() {
                    break;
                }
            }
            if since.elapsed() > START_TIMEOUT {
                return Err(err("the baseline server did not start"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let r = hammer(
            &opts,
            addr,
            guard.pid(),
            ticks,
            RequestSpec::get("/static"),
            |b| b.len() == BASELINE_BODY,
        )
        .await?;
        eprintln!("bench:   {}", r.summary());
        r
    };

    // Cold start with existing keys: the first start generates them (not measured).
    eprintln!("bench: cold start ×{}…", opts.cold_starts);
    let cold_dir = tmp.path().join("cold");
    std::fs::create_dir_all(&cold_dir)?;
    let mut cold = Vec::new();
    for i in 0..=opts.cold_starts {
        let since = Instant::now();
        let (mut guard, addr) = start_server(&bin, &cold_dir, None, pinned)?;
        let took = wait_ready(&mut guard, addr, since, Some(&cold_dir.join("server.log"))).await?;
        drop(guard);
        if i > 0 {
            cold.push(took.as_secs_f64() * 1000.0);
        }
    }
    let cold_ms = median(cold.clone());
    eprintln!("bench:   cold starts (ms): {cold:.1?}");

    // The server under test.
    let dir = tmp.path().join("main");
    std::fs::create_dir_all(&dir)?;
    let rs = bench_client("bench-rs256");
    let es = bench_client("bench-es256");
    let (mut server, es_client) = start_main(&bin, &dir, &rs, &es, pinned).await?;
    let pid = server.guard.pid();
    let addr = server.addr;
    tokio::time::sleep(if opts.smoke {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(1)
    })
    .await;
    let idle_rss = mb(status_kb(pid, "VmRSS")?);
    eprintln!("bench: idle RSS {idle_rss:.1} MB");

    eprintln!("bench: discovery…");
    let discovery = hammer(
        &opts,
        addr,
        pid,
        ticks,
        RequestSpec::get("/.well-known/openid-configuration"),
        |b| b.starts_with(b"{"),
    )
    .await?;
    eprintln!(
        "bench:   {}; server VmHWM {:.1} MB",
        discovery.summary(),
        mb(status_kb(pid, "VmHWM")?)
    );
    eprintln!("bench: JWKS…");
    let jwks = hammer(&opts, addr, pid, ticks, RequestSpec::get("/jwks"), |b| {
        b.starts_with(b"{")
    })
    .await?;
    eprintln!(
        "bench:   {}; server VmHWM {:.1} MB",
        jwks.summary(),
        mb(status_kb(pid, "VmHWM")?)
    );

    eprintln!("bench: complete logins, {} browsers…", opts.browsers);
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let login = logins(&opts, &server.issuer, pid, ticks, &rs, tokens.clone()).await?;
    eprintln!(
        "bench:   {}; server VmHWM {:.1} MB",
        login.summary(),
        mb(status_kb(pid, "VmHWM")?)
    );

    let access_token = tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .first()
        .cloned()
        .ok_or_else(|| err("no login completed, so there is no access token for /userinfo"))?;
    eprintln!("bench: /userinfo…");
    let mut spec = RequestSpec::get("/userinfo");
    spec.headers
        .push(("authorization", format!("Bearer {access_token}")));
    let userinfo = hammer(&opts, addr, pid, ticks, spec, |b| b.starts_with(b"{")).await?;
    eprintln!(
        "bench:   {}; server VmHWM {:.1} MB",
        userinfo.summary(),
        mb(status_kb(pid, "VmHWM")?)
    );

    // /token alone: codes prepared beforehand, each used once. The warm-up is short so that it
    // does not eat the prepared codes.
    let token_opts = Options {
        warmup: opts.warmup / 5,
        ..opts.clone()
    };
    let codes_for = |signs: f64| -> usize {
        let est = if signs.is_finite() { signs } else { 2000.0 };
        let want = est * (token_opts.duration + token_opts.warmup).as_secs_f64() * 1.2;
        (want as usize).clamp(50, if opts.smoke { 500 } else { 30_000 })
    };
    let prep_limit = if opts.smoke {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(15)
    };
    eprintln!("bench: preparing codes for /token (RS256)…");
    let codes = prepare_codes(
        &server.issuer,
        opts.browsers,
        &rs,
        codes_for(rsa_signs),
        prep_limit,
    )
    .await?;
    eprintln!("bench: /token (RS256) on {} prepared codes…", codes.len());
    let (token_rs, alg_rs) = token_phase(&token_opts, &[addr], pid, ticks, &rs, codes).await?;
    eprintln!(
        "bench:   {} (id_token alg {alg_rs}); server VmHWM {:.1} MB",
        token_rs.summary(),
        mb(status_kb(pid, "VmHWM")?)
    );

    let token_es = match &es_client {
        Some(es) => {
            eprintln!("bench: preparing codes for /token (ES256)…");
            let codes = prepare_codes(
                &server.issuer,
                opts.browsers,
                es,
                codes_for(ec_signs),
                prep_limit,
            )
            .await?;
            eprintln!("bench: /token (ES256) on {} prepared codes…", codes.len());
            let (r, alg) = token_phase(&token_opts, &[addr], pid, ticks, es, codes).await?;
            eprintln!("bench:   {} (id_token alg {alg})", r.summary());
            (alg == "ES256").then_some(r)
        }
        None => None,
    };

    // gettoken calls made by the provider so far (the simulator-only phase below makes one of
    // its own, so read the counter first).
    let stats_path = format!(
        "{}{}",
        wecom_oidc::demo::SIMULATOR_PATH,
        wecom_oidc::simulator::STATS_PATH
    );
    let mut c = Conn::open(addr).await?;
    let stats: wecom_oidc::simulator::SimulatorStats =
        serde_json::from_slice(&c.send(&RequestSpec::get(stats_path.as_str())).await?.body)?;
    let gettoken_calls = stats.gettoken_calls;

    eprintln!("bench: simulator alone (its share of a login)…");
    let upstream = Browser::new(&server.issuer)?;
    let mut authorize = url::Url::parse(&format!("{}/authorize", server.issuer))?;
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &rs.id)
        .append_pair("redirect_uri", &rs.redirect_uri)
        .append_pair("scope", "openid")
        .append_pair(
            "code_challenge",
            &URL_SAFE_NO_PAD.encode(Sha256::digest(b"x")),
        )
        .append_pair("code_challenge_method", "S256");
    let upstream_url = upstream.location(authorize.as_str()).await?;
    let corp_id = url::Url::parse(&upstream_url)?
        .query_pairs()
        .find(|(k, _)| k == "appid")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| err("the upstream login URL has no appid"))?;
    let demo_secret = wecom_oidc::simulator::SimulatorConfig::demo("http://unused").secret;
    let got = c
        .send(&RequestSpec::get(format!(
            "{}/cgi-bin/gettoken?{}",
            wecom_oidc::demo::SIMULATOR_PATH,
            serde_urlencoded::to_string([
                ("corpid", corp_id.as_str()),
                ("corpsecret", &demo_secret)
            ])?
        )))
        .await?;
    let wecom_token = serde_json::from_slice::<serde_json::Value>(&got.body)?["access_token"]
        .as_str()
        .ok_or_else(|| err("the simulator gave no access_token"))?
        .to_string();
    let sim = simulator_only(&opts, addr, pid, ticks, &upstream_url, &wecom_token).await?;
    eprintln!(
        "bench:   {}; server VmHWM {:.1} MB",
        sim.summary(),
        mb(status_kb(pid, "VmHWM")?)
    );

    let peak_rss = mb(status_kb(pid, "VmHWM")?);
    let after_rss = mb(status_kb(pid, "VmRSS")?);
    if let Some(why) = server.guard.exited() {
        return Err(err(why));
    }
    drop(server);
    // `--store`: sled vs PostgreSQL, one vs several instances, on `serve` (the demo is stopped,
    // so these servers have the server core to themselves).
    let cluster_rows = match &opts.store {
        Some(pg) => store_comparison(&opts, &bin, tmp.path(), pinned, ticks, pg).await?,
        None => Vec::new(),
    };

    // ---- the table ----
    let login_cpu_ms = 1000.0 * ratio(login.server_cpu, login.requests as f64);
    let sim_cpu_ms = 1000.0 * ratio(sim.server_cpu, sim.requests as f64);
    let own_cpu_ms = login_cpu_ms - sim_cpu_ms;
    let mut rows = vec![
        row(
            "static 1 KB baseline (axum)",
            format!(
                "{:.0}/CPU-s ({:.0}/s, p50 {:.2} ms, p99 {:.2} ms)",
                base.per_cpu_second(),
                base.per_second(),
                base.percentile(0.5),
                base.percentile(0.99)
            ),
            "-".into(),
            "-".into(),
            "baseline",
            None,
            vec![base.per_cpu_second()],
        ),
        row(
            "openssl speed, one core",
            format!("RSA-2048 {rsa_signs:.0} signs/s, ECDSA P-256 {ec_signs:.0} signs/s"),
            "-".into(),
            "-".into(),
            "baseline",
            None,
            vec![rsa_signs, ec_signs],
        ),
        ratio_row("discovery", &discovery, &base, 0.8),
        ratio_row("JWKS", &jwks, &base, 0.8),
        ratio_row("/userinfo", &userinfo, &base, 0.7),
    ];
    let rs_ratio = ratio(token_rs.per_cpu_second(), rsa_signs);
    rows.push(row(
        "/token code exchange, RS256",
        format!(
            "{:.0}/CPU-s ({:.0}/s, p50 {:.2} ms, p99 {:.2} ms, alg {alg_rs})",
            token_rs.per_cpu_second(),
            token_rs.per_second(),
            token_rs.percentile(0.5),
            token_rs.percentile(0.99)
        ),
        format!("RSA-2048 {rsa_signs:.0} signs/s"),
        format!("{rs_ratio:.2}"),
        "≥ 0.85 × signs/s per core",
        Some(rs_ratio >= 0.85 && token_rs.errors == 0 && alg_rs == "RS256"),
        vec![token_rs.per_cpu_second(), rs_ratio],
    ));
    rows.push(match &token_es {
        Some(p) => row(
            "/token code exchange, ES256",
            format!(
                "{:.0}/CPU-s ({:.0}/s, p50 {:.2} ms, p99 {:.2} ms)",
                p.per_cpu_second(),
                p.per_second(),
                p.percentile(0.5),
                p.percentile(0.99)
            ),
            format!("ECDSA P-256 {ec_signs:.0} signs/s"),
            format!("{:.2}", ratio(p.per_cpu_second(), ec_signs)),
            "≥ 15000/s on one core",
            Some(p.per_cpu_second() >= 15_000.0 && p.errors == 0),
            vec![p.per_cpu_second()],
        ),
        None => row(
            "/token code exchange, ES256",
            "n/a until ES256 keys land".into(),
            format!("ECDSA P-256 {ec_signs:.0} signs/s"),
            "-".into(),
            "≥ 15000/s on one core",
            None,
            vec![],
        ),
    });
    rows.push(row(
        "complete logins",
        format!(
            "{:.0}/s with {} browsers (p50 {:.2} ms, p99 {:.2} ms, server CPU {:.0}%)",
            login.per_second(),
            opts.browsers,
            login.percentile(0.5),
            login.percentile(0.99),
            100.0 * ratio(login.server_cpu, login.seconds)
        ),
        "-".into(),
        "-".into(),
        "(none; see CPU per login)",
        if login.errors == 0 { None } else { Some(false) },
        vec![login.per_second(), login.percentile(0.99)],
    ));
    rows.push(row(
        "our CPU per complete login",
        format!("{own_cpu_ms:.3} ms (login {login_cpu_ms:.3} ms − simulator {sim_cpu_ms:.3} ms)"),
        format!("RSA sign {:.3} ms", 1000.0 / rsa_signs),
        format!("{:.2} × one sign", own_cpu_ms * rsa_signs / 1000.0),
        "≤ 1 ms",
        Some(own_cpu_ms <= 1.0 && login.errors == 0 && sim.errors == 0),
        vec![own_cpu_ms],
    ));
    rows.push(row(
        "idle RSS",
        format!("{idle_rss:.1} MB"),
        "-".into(),
        "-".into(),
        "≤ 16 MB",
        Some(idle_rss <= 16.0),
        vec![idle_rss],
    ));
    rows.push(row(
        "peak RSS under load (VmHWM)",
        format!("{peak_rss:.1} MB (after load {after_rss:.1} MB)"),
        "-".into(),
        "-".into(),
        "≤ 32 MB",
        Some(peak_rss <= 32.0),
        vec![peak_rss],
    ));
    rows.push(row(
        "cold start, existing keys, to first 200",
        format!("{cold_ms:.1} ms median of {}", cold.len()),
        "-".into(),
        "-".into(),
        "≤ 50 ms",
        Some(cold_ms <= 50.0),
        vec![cold_ms],
    ));
    rows.push(row(
        "WeCom gettoken calls",
        format!(
            "{gettoken_calls} in {} logins + {} prepared codes",
            login.requests,
            token_rs.requests + token_es.as_ref().map_or(0, |p| p.requests)
        ),
        "-".into(),
        "-".into(),
        "exactly 1 per token lifetime",
        Some(gettoken_calls == 1),
        vec![gettoken_calls as f64],
    ));

    rows.extend(cluster_rows);

    println!();
    println!("## Machine");
    for (k, v) in &machine_before {
        println!("- {k}: {v}");
    }
    if let Some((_, load)) = machine().into_iter().find(|(k, _)| k == "load average") {
        println!("- load average at the end: {load}");
    }
    println!(
        "- pinning: {}",
        if pinned {
            format!("generator on CPU {GENERATOR_CPU}, servers and openssl on CPU {SERVER_CPU} (taskset)")
        } else {
            "none".into()
        }
    );
    println!(
        "- generator CPU while measuring discovery: {:.0}% of its core (server {:.0}%)",
        100.0 * ratio(discovery.generator_cpu, discovery.seconds),
        100.0 * ratio(discovery.server_cpu, discovery.seconds)
    );
    println!();
    println!(
        "## Results ({} mode, {:.0} s)",
        if opts.smoke { "smoke" } else { "full" },
        begun.elapsed().as_secs_f64()
    );
    println!("| figure | measured | baseline | ratio | target | result |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.figure, r.measured, r.baseline, r.ratio, r.target, r.result
        );
    }
    let missing: Vec<&str> = rows
        .iter()
        .filter(|r| r.numbers.iter().any(|n| !n.is_finite()))
        .map(|r| r.figure.as_str())
        .collect();
    if !missing.is_empty() {
        eprintln!("bench: no number for: {}", missing.join(", "));
        return Ok(false);
    }
    if opts.smoke {
        let errors = [&base, &discovery, &jwks, &login, &userinfo, &token_rs, &sim]
            .iter()
            .map(|p| p.errors + u64::from(p.requests == 0))
            .sum::<u64>();
        if errors > 0 {
            eprintln!("bench: smoke failed: a phase had errors or no request");
            return Ok(false);
        }
        eprintln!("bench: smoke OK: every measurement produced a number");
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// `--store`: sled vs PostgreSQL, one vs several instances (issue 9).
// ---------------------------------------------------------------------------------------------

/// Where the comparison's simulator mounts WeCom's paths.
const SIM_MOUNT: &str = "/wecom-sim";
/// The issuer every instance of the comparison names; each browser's requests to it go to its
/// own instance (see [`Browser::behind`]).
const CLUSTER_ISSUER: &str = "http://localhost";

/// Runs one SQL command with `psql` against `url`.
fn psql(url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .map_err(|e| err(format!("psql (installed with PostgreSQL): {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// A fresh database on the server of `base`, dropped on drop.
struct BenchDatabase {
    base: String,
    name: String,
    url: String,
}

impl BenchDatabase {
    fn create(base: &str) -> Result<BenchDatabase> {
        let name = format!(
            "wecom_oidc_bench_{}",
            wecom_oidc::random::alphanumeric(10).to_ascii_lowercase()
        );
        psql(base, &format!("CREATE DATABASE {name}"))?;
        let mut url = url::Url::parse(base)?;
        url.set_path(&format!("/{name}"));
        Ok(BenchDatabase {
            base: base.to_string(),
            name,
            url: url.to_string(),
        })
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        let _ = psql(
            &self.base,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// The `serve` configuration of one comparison instance.
fn serve_toml(
    addr: SocketAddr,
    dir: &Path,
    store: Option<&str>,
    sim_base: &str,
    rs: &BenchClient,
) -> String {
    let demo = wecom_oidc::simulator::SimulatorConfig::demo("http://unused");
    let store = store.map_or(String::new(), |url| format!("store = \"{url}\"\n"));
    format!(
        "issuer = \"{CLUSTER_ISSUER}\"\nlisten = \"{addr}\"\n{store}data_dir = \"{data}\"\nkeys_dir = \"{keys}\"\n\n\
         [wecom]\ncorp_id = \"{corp}\"\nagent_id = {agent}\nsecret = \"{secret}\"\n\
         api_base = \"{sim_base}\"\noauth_base = \"{sim_base}\"\nsso_base = \"{sim_base}\"\n\n{clients}",
        data = dir.join("data").display(),
        keys = dir.join("keys").display(),
        corp = demo.corp_id,
        agent = demo.agent_id,
        secret = demo.secret,
        clients = clients_toml(rs, None),
    )
}

/// Login and `/token` figures of one setup.
struct SetupResult {
    label: String,
    login: PhaseResult,
    token: PhaseResult,
    gettoken_calls: u64,
    /// `VmHWM` of the first instance after both phases, in MB (the simulator runs apart).
    peak_rss: f64,
}

/// One setup of the comparison.
struct Setup<'a> {
    label: String,
    /// A PostgreSQL URL, or `None` for sled in a data_dir of its own.
    store: Option<&'a str>,
    instances: usize,
    dir: PathBuf,
}

/// Runs complete logins and `/token` against the `serve` processes of `setup`.
async fn run_setup(
    opts: &Options,
    bin: &Path,
    pinned: bool,
    ticks: f64,
    setup: Setup<'_>,
) -> Result<SetupResult> {
    let Setup {
        label,
        store,
        instances,
        dir,
    } = setup;
    let dir = dir.as_path();
    std::fs::create_dir_all(dir)?;
    let exe = std::env::current_exe()?;
    let sim_port = free_port()?;
    let mut sim_guard = spawn(
        "simulator",
        &exe,
        &["--simulator-server".to_string(), sim_port.to_string()],
        pinned,
        None,
    )?;
    let sim_addr: SocketAddr = ([127, 0, 0, 1], sim_port).into();
    let sim_base = format!("http://{sim_addr}{SIM_MOUNT}");
    let since = Instant::now();
    loop {
        if let Some(why) = sim_guard.exited() {
            return Err(err(why));
        }
        if let Ok(mut c) = Conn::open(sim_addr).await {
            let path = format!("{SIM_MOUNT}{}", wecom_oidc::simulator::STATS_PATH);
            if c.send(&RequestSpec::get(path.as_str())).await.is_ok() {
                break;
            }
        }
        if since.elapsed() > START_TIMEOUT {
            return Err(err("the simulator did not start"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rs = bench_client("bench-rs256");
    let mut servers = Vec::new();
    for i in 0..instances {
        let idir = dir.join(format!("instance-{i}"));
        std::fs::create_dir_all(&idir)?;
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let file = idir.join("wecom-oidc.toml");
        std::fs::write(&file, serve_toml(addr, &idir, store, &sim_base, &rs))?;
        let log = idir.join("server.log");
        let guard = spawn(
            "wecom-oidc serve",
            bin,
            &[
                "--config".to_string(),
                file.display().to_string(),
                "serve".to_string(),
            ],
            pinned,
            Some(&log),
        )?;
        servers.push((guard, addr, log));
    }
    // All started at once (the first start on an empty database generates the keys once).
    for (guard, addr, log) in &mut servers {
        wait_ready(guard, *addr, Instant::now(), Some(log)).await?;
    }
    let pids: Vec<u32> = servers.iter().map(|(g, _, _)| g.pid()).collect();
    let addrs: Vec<SocketAddr> = servers.iter().map(|(_, a, _)| *a).collect();
    let behind = |i: usize| {
        Browser::behind(
            CLUSTER_ISSUER,
            &format!("http://{}", addrs[i % addrs.len()]),
        )
    };
    eprintln!(
        "bench: {label}: complete logins, {} browsers…",
        opts.browsers
    );
    let browsers = (0..opts.browsers)
        .map(|i| behind(i).map(Arc::new))
        .collect::<Result<Vec<_>>>()?;
    let cpu0: f64 = pids
        .iter()
        .map(|p| cpu_seconds(*p, ticks).unwrap_or(f64::NAN))
        .sum();
    let mut login = logins_with(
        opts,
        browsers,
        pids[0],
        ticks,
        &rs,
        Arc::new(Mutex::new(Vec::new())),
    )
    .await?;
    eprintln!("bench:   {}", login.summary());
    let token_opts = Options {
        warmup: opts.warmup / 5,
        ..opts.clone()
    };
    let want = if opts.smoke { 200 } else { 4_000 };
    let limit = if opts.smoke {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(15)
    };
    let browsers = (0..opts.browsers).map(behind).collect::<Result<Vec<_>>>()?;
    let codes = prepare_codes_with(browsers, &rs, want, limit).await?;
    eprintln!("bench: {label}: /token on {} prepared codes…", codes.len());
    let (mut token, _) = token_phase(&token_opts, &addrs, pids[0], ticks, &rs, codes).await?;
    let cpu1: f64 = pids
        .iter()
        .map(|p| cpu_seconds(*p, ticks).unwrap_or(f64::NAN))
        .sum();
    // `measure` samples the first instance's CPU only; with several instances the phases'
    // server CPU is not split per phase, so their per-CPU figures are left out (NaN → "-").
    if instances > 1 {
        login.server_cpu = f64::NAN;
        token.server_cpu = f64::NAN;
    }
    eprintln!(
        "bench:   {}; all instances used {:.2} CPU-s",
        token.summary(),
        cpu1 - cpu0
    );
    let mut c = Conn::open(sim_addr).await?;
    let path = format!("{SIM_MOUNT}{}", wecom_oidc::simulator::STATS_PATH);
    let stats: wecom_oidc::simulator::SimulatorStats =
        serde_json::from_slice(&c.send(&RequestSpec::get(path.as_str())).await?.body)?;
    for (guard, _, log) in &mut servers {
        if let Some(why) = guard.exited() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(err(format!("{why} {}", log.trim())));
        }
    }
    let peak_rss = mb(status_kb(pids[0], "VmHWM")?);
    Ok(SetupResult {
        label,
        login,
        token,
        gettoken_calls: stats.gettoken_calls,
        peak_rss,
    })
}

/// sled ×1, PostgreSQL ×1 and PostgreSQL ×`--instances`: rows for the table.
async fn store_comparison(
    opts: &Options,
    bin: &Path,
    tmp: &Path,
    pinned: bool,
    ticks: f64,
    pg: &str,
) -> Result<Vec<Row>> {
    let mut results = Vec::new();
    let sled = Setup {
        label: "sled, 1 instance".into(),
        store: None,
        instances: 1,
        dir: tmp.join("serve-sled"),
    };
    results.push(run_setup(opts, bin, pinned, ticks, sled).await?);
    let mut counts = vec![1];
    if opts.instances > 1 {
        counts.push(opts.instances);
    }
    for n in counts {
        let db = BenchDatabase::create(pg)?;
        let setup = Setup {
            label: format!("PostgreSQL, {n} instance{}", if n == 1 { "" } else { "s" }),
            store: Some(&db.url),
            instances: n,
            dir: tmp.join(format!("serve-pg-{n}")),
        };
        results.push(run_setup(opts, bin, pinned, ticks, setup).await?);
    }
    let per_cpu = |p: &PhaseResult| {
        if p.server_cpu.is_nan() {
            String::new()
        } else {
            format!("{:.0}/CPU-s, ", p.per_cpu_second())
        }
    };
    let mut rows = Vec::new();
    for r in &results {
        rows.push(row(
            &format!("serve, {}: complete logins", r.label),
            format!(
                "{}{:.0}/s with {} browsers (p50 {:.2} ms, p99 {:.2} ms)",
                per_cpu(&r.login),
                r.login.per_second(),
                opts.browsers,
                r.login.percentile(0.5),
                r.login.percentile(0.99)
            ),
            "-".into(),
            "-".into(),
            "(none; compare the setups)",
            if r.login.errors == 0 && r.login.requests > 0 {
                None
            } else {
                Some(false)
            },
            vec![r.login.per_second(), r.login.percentile(0.99)],
        ));
        rows.push(row(
            &format!("serve, {}: /token RS256", r.label),
            format!(
                "{}{:.0}/s (p50 {:.2} ms, p99 {:.2} ms)",
                per_cpu(&r.token),
                r.token.per_second(),
                r.token.percentile(0.5),
                r.token.percentile(0.99)
            ),
            "-".into(),
            "-".into(),
            "(none; compare the setups)",
            if r.token.errors == 0 && r.token.requests > 0 {
                None
            } else {
                Some(false)
            },
            vec![r.token.per_second(), r.token.percentile(0.99)],
        ));
        rows.push(row(
            &format!("serve, {}: peak RSS (VmHWM), simulator apart", r.label),
            format!("{:.1} MB", r.peak_rss),
            "-".into(),
            "-".into(),
            "(none; compare the setups)",
            None,
            vec![r.peak_rss],
        ));
        rows.push(row(
            &format!("serve, {}: WeCom gettoken calls", r.label),
            format!("{}", r.gettoken_calls),
            "-".into(),
            "-".into(),
            "exactly 1 for the whole cluster",
            Some(r.gettoken_calls == 1),
            vec![r.gettoken_calls as f64],
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_speed_sign_columns_are_read_from_openssl_3_output() {
        let out = "version: 3.0.19\n\
                   options: bn(64,64)\n\
                   \x20                 sign    verify    sign/s verify/s\n\
                   rsa 2048 bits 0.000669s 0.000019s   1495.0  52631.6\n\
                   \x20                             sign    verify    sign/s verify/s\n\
                   \x20256 bits ecdsa (nistp256)   0.0000s   0.0001s  43214.0  13862.4\n";
        assert_eq!(parse_openssl(out), (1495.0, 43214.0));
    }

    #[test]
    fn missing_openssl_figures_are_nan_so_the_smoke_run_fails() {
        let (rsa, ec) = parse_openssl("nothing useful");
        assert!(rsa.is_nan() && ec.is_nan());
    }

    #[test]
    fn percentiles_come_from_sorted_latencies() {
        let p = PhaseResult {
            latencies: (1..=100).map(|ms| ms * 1000).collect(),
            ..Default::default()
        };
        assert_eq!(p.percentile(0.5), 51.0);
        assert_eq!(p.percentile(0.99), 99.0);
        assert!(PhaseResult::default().percentile(0.5).is_nan());
    }
}

// ---------------------------------------------------------------------------------------------
// --soak: sustained mixed traffic (issue 8)
// ---------------------------------------------------------------------------------------------

/// Request and error counts of the soak workers.
#[derive(Default)]
struct SoakCounts {
    logins: AtomicU64,
    refreshes: AtomicU64,
    userinfo: AtomicU64,
    errors: AtomicU64,
}

/// One refresh (RFC 6749 §6) as the confidential bench client: the new (access, refresh) pair.
async fn soak_refresh(b: &Browser, client: &BenchClient, rt: &str) -> Result<(String, String)> {
    let resp = b
        .http
        .post(format!("{}/token", b.issuer))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await?;
    if status != 200 {
        return Err(err(format!("refresh answered {status}: {}", v["error"])));
    }
    let field = |k: &str| {
        v[k].as_str()
            .map(str::to_string)
            .ok_or_else(|| err(format!("no {k}")))
    };
    Ok((field("access_token")?, field("refresh_token")?))
}

/// A full login (authorize → simulator → callback) asking for `offline_access` (OIDC Core §11:
/// the refresh token needs it); the code at the client's redirect URI.
async fn soak_code(b: &Browser, client: &BenchClient) -> Result<PreparedCode> {
    let state = wecom_oidc::random::alphanumeric(22);
    let verifier = wecom_oidc::random::token(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut authorize = url::Url::parse(&format!("{}/authorize", b.issuer))?;
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", &client.redirect_uri)
        .append_pair("scope", "openid profile offline_access")
        .append_pair("state", &state)
        .append_pair("nonce", &wecom_oidc::random::alphanumeric(22))
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("prompt", "login");
    let upstream = b.location(authorize.as_str()).await?;
    let callback = b.location(&upstream).await?;
    let back = url::Url::parse(&b.location(&callback).await?)?;
    let q: HashMap<_, _> = back.query_pairs().into_owned().collect();
    if !back.as_str().starts_with(&client.redirect_uri) || q.get("state") != Some(&state) {
        return Err(err(format!("the login did not end at the client: {back}")));
    }
    let code = q
        .get("code")
        .cloned()
        .ok_or_else(|| err(format!("no code (error {:?})", q.get("error"))))?;
    Ok(PreparedCode { code, verifier })
}

/// A code exchange returning (access, refresh).
async fn soak_exchange(
    b: &Browser,
    client: &BenchClient,
    code: &PreparedCode,
) -> Result<(String, String)> {
    let resp = b
        .http
        .post(format!("{}/token", b.issuer))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.code.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", code.verifier.as_str()),
        ])
        .send()
        .await?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await?;
    if status != 200 {
        return Err(err(format!("token answered {status}: {}", v["error"])));
    }
    let field = |k: &str| {
        v[k].as_str()
            .map(str::to_string)
            .ok_or_else(|| err(format!("no {k} in the token response")))
    };
    Ok((field("access_token")?, field("refresh_token")?))
}

/// One worker's loop until `deadline`: every failure is counted, never fatal.
async fn soak_worker(b: Browser, client: BenchClient, deadline: Instant, counts: Arc<SoakCounts>) {
    let count = |r: &Result<()>, what: &AtomicU64| match r {
        Ok(()) => {
            what.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            if counts.errors.fetch_add(1, Ordering::Relaxed) < 10 {
                eprintln!("bench: soak error: {e}");
            }
        }
    };
    while Instant::now() < deadline {
        let login = async {
            let code = soak_code(&b, &client).await?;
            soak_exchange(&b, &client, &code).await
        }
        .await;
        let (mut at, mut rt) = match login {
            Ok(pair) => {
                count(&Ok(()), &counts.logins);
                pair
            }
            Err(e) => {
                count(&Err(e), &counts.logins);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        for _ in 0..5 {
            for _ in 0..3 {
                let r = b.userinfo(&at).await;
                count(&r, &counts.userinfo);
            }
            match soak_refresh(&b, &client, &rt).await {
                Ok((a, r)) => {
                    (at, rt) = (a, r);
                    count(&Ok(()), &counts.refreshes);
                }
                Err(e) => {
                    count(&Err(e), &counts.refreshes);
                    break;
                }
            }
        }
    }
}

/// `--soak SECS`: sustained logins, refreshes and userinfo against the release server; prints
/// requests, errors and RSS over time. Succeeds when no request failed.
async fn soak(opts: &Options, pinned: bool, length: Duration) -> Result<bool> {
    let ticks = clock_ticks();
    let bin = build_server(opts)?;
    let tmp = tempfile::Builder::new()
        .prefix("wecom-oidc-soak-")
        .tempdir()?;
    let client = bench_client("bench-rs256");
    let file = tmp.path().join("clients.toml");
    std::fs::write(&file, clients_toml(&client, None))?;
    let (mut guard, addr) = start_server(&bin, tmp.path(), Some(&file), pinned)?;
    wait_ready(
        &mut guard,
        addr,
        Instant::now(),
        Some(&tmp.path().join("server.log")),
    )
    .await?;
    let issuer = format!("http://{addr}");
    let pid = guard.pid();
    let workers = opts.browsers.min(64);
    eprintln!("bench: soak for {length:?} with {workers} workers against {issuer}");
    let counts = Arc::new(SoakCounts::default());
    let started = Instant::now();
    let deadline = started + length;
    let set = tokio::task::LocalSet::new();
    for _ in 0..workers {
        set.spawn_local(soak_worker(
            Browser::new(&issuer)?,
            client.clone(),
            deadline,
            counts.clone(),
        ));
    }
    let cpu0 = cpu_seconds(pid, ticks)?;
    let report = async {
        let step = length / 10;
        let mut rows = Vec::new();
        let mut last = (0u64, started);
        loop {
            tokio::time::sleep(step).await;
            let total = counts.logins.load(Ordering::Relaxed) * 4
                + counts.refreshes.load(Ordering::Relaxed)
                + counts.userinfo.load(Ordering::Relaxed);
            let now = Instant::now();
            let rate = (total - last.0) as f64 / now.duration_since(last.1).as_secs_f64();
            last = (total, now);
            let rss = status_kb(pid, "VmRSS").unwrap_or(f64::NAN);
            eprintln!(
                "bench: soak t={:>5.0}s  requests {total:>8}  ({rate:>6.0}/s)  errors {}  server RSS {:.1} MB",
                started.elapsed().as_secs_f64(),
                counts.errors.load(Ordering::Relaxed),
                mb(rss)
            );
            rows.push(rss);
            if now >= deadline {
                return rows;
            }
        }
    };
    let rss = set.run_until(report).await;
    set.await;
    let cpu = cpu_seconds(pid, ticks)? - cpu0;
    let (logins, refreshes, userinfo, errors) = (
        counts.logins.load(Ordering::Relaxed),
        counts.refreshes.load(Ordering::Relaxed),
        counts.userinfo.load(Ordering::Relaxed),
        counts.errors.load(Ordering::Relaxed),
    );
    // A login is four requests: authorize, simulator, callback, token.
    let requests = logins * 4 + refreshes + userinfo;
    let warm = rss.get(rss.len() / 3).copied().unwrap_or(f64::NAN);
    let end = rss.last().copied().unwrap_or(f64::NAN);
    let peak = rss.iter().copied().fold(f64::NAN, f64::max);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "soak: {secs:.0} s, {workers} workers: {requests} requests ({:.0}/s; {logins} logins, \
         {refreshes} refreshes, {userinfo} userinfo), {errors} errors; server CPU {cpu:.1} s; \
         RSS after warm-up {:.1} MB, peak {:.1} MB, end {:.1} MB ({:+.2} MB/min after warm-up)",
        requests as f64 / secs,
        mb(warm),
        mb(peak),
        mb(end),
        (mb(end) - mb(warm)) / (secs * 2.0 / 3.0 / 60.0),
    );
    Ok(errors == 0)
}
