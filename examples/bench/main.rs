//! The performance benchmark: a load generator that starts `wecom-oidc demo` itself and prints
//! every figure beside its baseline, target and PASS/MISS.
//!
//! Run (from the repository root; builds the server binary itself when needed):
//!
//! ```text
//! cargo run --release --example bench            # full run, about 2 minutes of measurement
//! cargo run --release --example bench -- --smoke # a few seconds: every figure must be a number
//! cargo run --release --example bench -- --soak 600  # sustained mixed traffic
//! cargo run --release --example bench -- --help  # every option
//! ```
//!
//! `--soak SECS` runs only sustained mixed traffic — `--browsers` workers each looping login →
//! code exchange → (3 × userinfo, refresh) × 5 — and prints requests, errors and the server's
//! RSS every tenth of the run, then a summary; it fails on any error.
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
//!   `openssl speed rsa2048 ecdsap256` on one core, and the floor of a durable signed `/token`
//!   (`--floor-server`: the least a code exchange does, written with the same crates; see
//!   `floor`) for both algorithms.
//!
//! - `--store postgres://USER@HOST:PORT/DB` adds the store and instance comparison: complete
//!   logins and `/token` against `wecom-oidc serve` (not the demo) with sled, with PostgreSQL,
//!   and with `--instances N` (default 2) instances over that PostgreSQL, the browsers and token
//!   connections spread round-robin over the instances. The WeCom simulator then runs in a child
//!   process of its own (`--simulator-server`), pinned with the servers. Each setup gets a fresh
//!   database (the URL's user must be allowed to create databases), dropped afterwards. A
//!   PostgreSQL on this machine is moved off the server's CPU for those phases (`store_cpus`;
//!   `--store-cpus-as-they-are` leaves it where it is).
//!
//! Everything listens on loopback only, every phase has a bounded duration, and every request
//! has a timeout.
//!
//! The modules: `options` (the command line), `procs` (child processes and `/proc`), `conn`
//! (the lean HTTP client), `phase` (closed-loop measurement), `browser` (the login walk),
//! `phases` (what is measured), `servers` (the servers under test and the helper servers),
//! `report` (baselines and the result table), `floor` (the `/token` floor), `run` (the benchmark), `stores` (`--store`),
//! `store_cpus` (a local PostgreSQL kept off the server's CPU) and `soak` (`--soak`).

mod browser;
mod conn;
mod floor;
mod options;
mod phase;
mod phases;
mod procs;
mod report;
mod run;
mod servers;
mod soak;
mod store_cpus;
mod stores;

use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use clap::Parser;

use options::{Args, Options};

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

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

fn err(msg: impl Into<String>) -> Error {
    msg.into().into()
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(port) = args.baseline_server {
        return servers::baseline_server(port);
    }
    if let Some(port) = args.floor_server {
        let seeding = args
            .floor_memory
            .unwrap_or(floor::Seeding::Cpu(args.floor_codes));
        return floor::floor_server(port, seeding);
    }
    if let Some(port) = args.simulator_server {
        return servers::simulator_server(port);
    }
    let opts = Options::from(args);
    let pinned = opts.pin && procs::can_pin();
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
    let outcome = match opts.soak {
        Some(length) => local.block_on(&runtime, soak::soak(&opts, pinned, length)),
        None => local.block_on(&runtime, run::run(opts, pinned)),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
