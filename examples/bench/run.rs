//! The benchmark: baselines, cold starts, every phase against the demo, then the table.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::browser::{BenchClient, Browser};
use crate::conn::{Conn, RequestSpec};
use crate::floor::{
    floor_client, seeded_codes, Seeding, FLOOR_CODES, FLOOR_ES256, FLOOR_ES256_VOLATILE,
    FLOOR_RS256,
};
use crate::options::Options;
use crate::phase::{hammer, ratio, PhaseResult};
use crate::phases::{logins, prepare_codes, simulator_only, token_phase, Exchanges, Logins};
use crate::procs::{build_server, clock_ticks, mb, peak_and_split, status_kb};
use crate::report::{alone_row, machine, median, openssl_speed, print_table, ratio_row, row, Row};
use crate::servers::{
    start_helper, start_helper_with, start_main, start_server, wait_ready, BASELINE_BODY,
};
use crate::{err, Result, GENERATOR_CPU, SERVER_CPU};

/// What was measured against the demo.
struct DemoFigures {
    idle_rss: f64,
    discovery: PhaseResult,
    jwks: PhaseResult,
    login: PhaseResult,
    userinfo: PhaseResult,
    token_rs: PhaseResult,
    alg_rs: String,
    /// `None` when the server refused the ES256 client or did not sign with ES256.
    token_es: Option<PhaseResult>,
    sim: PhaseResult,
    gettoken_calls: u64,
    peak_rss: f64,
    after_rss: f64,
    /// The codes the demo stored and exchanged (complete logins and the `/token` phases), for
    /// the memory floor.
    codes_rs: CodeCounts,
    codes_es: CodeCounts,
}

/// Codes of a client: how many the server stored, how many were exchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodeCounts {
    pub prepared: usize,
    pub sent: usize,
}

impl CodeCounts {
    /// The codes of `logged_in` complete logins (each stored one and exchanged it) and of a
    /// `/token` phase that sent `sent` of `prepared` codes.
    pub fn of(logged_in: usize, prepared: usize, sent: usize) -> Self {
        Self {
            prepared: logged_in + prepared,
            sent: logged_in + sent,
        }
    }
}

pub async fn run(opts: Options, pinned: bool) -> Result<bool> {
    let ticks = clock_ticks();
    let bin = build_server(&opts)?;
    let tmp = tempfile::Builder::new()
        .prefix("wecom-oidc-bench-")
        .tempdir()?;
    let begun = Instant::now();
    eprintln!(
        "bench: {} mode, {:?} per phase after {:?} warm-up, {} browsers, {} connections, {}",
        mode(&opts),
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
    let signs = openssl_speed(&opts, pinned);
    let base = static_baseline(&opts, pinned, ticks).await?;
    let floor = token_floor(&opts, pinned, ticks).await?;
    let cold = cold_starts(&opts, &bin, tmp.path(), pinned).await?;
    let demo = against_the_demo(&opts, &bin, tmp.path(), pinned, ticks, signs).await?;
    let memory = memory_floor(&opts, pinned, ticks, (demo.codes_rs, demo.codes_es)).await?;
    // `--store`: sled vs PostgreSQL, one vs several instances, on `serve` (the demo is stopped,
    // so these servers have the server core to themselves).
    let cluster_rows = match &opts.store {
        Some(pg) => {
            crate::stores::store_comparison(&opts, &bin, tmp.path(), pinned, ticks, pg).await?
        }
        None => Vec::new(),
    };

    let mut rows = table(&opts, signs, &base, &cold, &demo, &memory);
    rows.extend(floor_rows(&floor, &demo));
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
    let discovery = &demo.discovery;
    println!(
        "- generator CPU while measuring discovery: {:.0}% of its core (server {:.0}%)",
        100.0 * ratio(discovery.generator_cpu, discovery.seconds),
        100.0 * ratio(discovery.server_cpu, discovery.seconds)
    );
    println!();
    let title = format!(
        "## Results ({} mode, {:.0} s)",
        mode(&opts),
        begun.elapsed().as_secs_f64()
    );
    if !print_table(&title, &rows) {
        return Ok(false);
    }
    if opts.smoke {
        let phases = [
            &base,
            &floor.rs256,
            &floor.es256,
            &floor.es256_volatile,
            &demo.discovery,
            &demo.jwks,
            &demo.login,
            &demo.userinfo,
            &demo.token_rs,
            &demo.sim,
        ];
        // The memory floor may spend its few codes within the warm-up: only its errors count.
        let errors = phases
            .iter()
            .map(|p| p.errors + u64::from(p.requests == 0))
            .sum::<u64>()
            + memory.errors;
        if errors > 0 {
            eprintln!("bench: smoke failed: a phase had errors or no request");
            return Ok(false);
        }
        eprintln!("bench: smoke OK: every measurement produced a number");
    }
    Ok(true)
}

fn mode(opts: &Options) -> &'static str {
    if opts.smoke {
        "smoke"
    } else {
        "full"
    }
}

/// The static baseline: this binary as a server, same runtime and pinning as ours.
async fn static_baseline(opts: &Options, pinned: bool, ticks: f64) -> Result<PhaseResult> {
    eprintln!("bench: static 1 KB baseline…");
    let (guard, addr) =
        start_helper("baseline server", "--baseline-server", "/static", pinned).await?;
    let r = hammer(
        opts,
        addr,
        guard.pid(),
        ticks,
        RequestSpec::get("/static"),
        |b| b.len() == BASELINE_BODY,
    )
    .await?;
    eprintln!("bench:   {}", r.summary());
    Ok(r)
}

/// The floor of a signed `/token` (`floor`) on codes the floor seeded: durable RS256, durable
/// ES256, and ES256 without the flush.
struct Floor {
    rs256: PhaseResult,
    es256: PhaseResult,
    es256_volatile: PhaseResult,
}

async fn token_floor(opts: &Options, pinned: bool, ticks: f64) -> Result<Floor> {
    eprintln!("bench: /token floor (axum + sled + OpenSSL, nothing else)…");
    let (guard, addr) = start_helper("floor server", "--floor-server", "/ready", pinned).await?;
    let token_opts = opts.for_token();
    let mut phases = Vec::new();
    for (id, want) in [
        (FLOOR_RS256, "RS256"),
        (FLOOR_ES256, "ES256"),
        (FLOOR_ES256_VOLATILE, "ES256"),
    ] {
        let Exchanges { phase, alg, .. } = token_phase(
            &token_opts,
            &[addr],
            guard.pid(),
            ticks,
            &floor_client(id),
            seeded_codes(id, FLOOR_CODES),
        )
        .await?;
        if alg != want {
            return Err(err(format!(
                "the floor's {id} signed with {alg:?}, not {want}"
            )));
        }
        eprintln!("bench:   {id}: {}", phase.summary());
        phases.push(phase);
    }
    let mut phases = phases.into_iter();
    let mut next = || phases.next().ok_or_else(|| err("a floor phase is missing"));
    Ok(Floor {
        rs256: next()?,
        es256: next()?,
        es256_volatile: next()?,
    })
}

/// Our `/token` against its floor: what the server spends above the least the design allows.
fn floor_rows(floor: &Floor, d: &DemoFigures) -> Vec<Row> {
    let against = |name: &str, floor: &PhaseResult, ours: Option<&PhaseResult>| {
        let over_us = ours.map_or(f64::NAN, |p| {
            1e6 / p.per_cpu_second() - 1e6 / floor.per_cpu_second()
        });
        row(
            name,
            floor.throughput(),
            ours.map_or("-".into(), |p| {
                format!("ours {:.0}/CPU-s", p.per_cpu_second())
            }),
            ours.map_or("-".into(), |p| {
                format!(
                    "{:.2} ×, +{over_us:.0} µs",
                    ratio(p.per_cpu_second(), floor.per_cpu_second())
                )
            }),
            "baseline",
            None,
            vec![floor.per_cpu_second()],
        )
    };
    vec![
        against(
            "/token floor, RS256 (axum + sled + OpenSSL)",
            &floor.rs256,
            Some(&d.token_rs),
        ),
        against(
            "/token floor, ES256 (axum + sled + OpenSSL)",
            &floor.es256,
            d.token_es.as_ref(),
        ),
        against(
            "/token floor, ES256 without the flush (not durable)",
            &floor.es256_volatile,
            d.token_es.as_ref(),
        ),
    ]
}

/// Cold starts with existing keys, in ms to the first 200 (the first start generates the keys
/// and is not counted).
async fn cold_starts(opts: &Options, bin: &Path, tmp: &Path, pinned: bool) -> Result<Vec<f64>> {
    eprintln!("bench: cold start ×{}…", opts.cold_starts);
    let cold_dir = tmp.join("cold");
    std::fs::create_dir_all(&cold_dir)?;
    let mut cold = Vec::new();
    for i in 0..=opts.cold_starts {
        let since = Instant::now();
        let (mut guard, addr) = start_server(bin, &cold_dir, None, pinned)?;
        let took = wait_ready(&mut guard, addr, since, Some(&cold_dir.join("server.log"))).await?;
        drop(guard);
        if i > 0 {
            cold.push(took.as_secs_f64() * 1000.0);
        }
    }
    eprintln!("bench:   cold starts (ms): {cold:.1?}");
    Ok(cold)
}

/// Every phase against one demo server: discovery, JWKS, complete logins, `/userinfo`,
/// `/token` (RS256, then ES256 when the server takes the ES256 client), the simulator alone.
async fn against_the_demo(
    opts: &Options,
    bin: &Path,
    tmp: &Path,
    pinned: bool,
    ticks: f64,
    (rsa_signs, ec_signs): (f64, f64),
) -> Result<DemoFigures> {
    let dir = tmp.join("main");
    std::fs::create_dir_all(&dir)?;
    let rs = BenchClient::new("bench-rs256");
    let es = BenchClient::new("bench-es256");
    let (mut server, es_client) = start_main(bin, &dir, &rs, &es, pinned).await?;
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

    let json = |b: &[u8]| b.starts_with(b"{");
    eprintln!("bench: discovery…");
    let discovery = hammer(
        opts,
        addr,
        pid,
        ticks,
        RequestSpec::get("/.well-known/openid-configuration"),
        json,
    )
    .await?;
    discovery.report(pid)?;
    eprintln!("bench: JWKS…");
    let jwks = hammer(opts, addr, pid, ticks, RequestSpec::get("/jwks"), json).await?;
    jwks.report(pid)?;

    eprintln!("bench: complete logins, {} browsers…", opts.browsers);
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let browsers = (0..opts.browsers)
        .map(|_| Browser::new(&server.issuer))
        .collect::<Result<Vec<_>>>()?;
    let Logins {
        phase: login,
        completed: logged_in,
    } = logins(opts, browsers, pid, ticks, &rs, tokens.clone()).await?;
    login.report(pid)?;

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
    let userinfo = hammer(opts, addr, pid, ticks, spec, json).await?;
    userinfo.report(pid)?;

    // /token alone: codes prepared beforehand, each used once.
    let token_opts = opts.for_token();
    let codes_for = |signs: f64| -> usize {
        let est = if signs.is_finite() { signs } else { 2000.0 };
        let want = est * (token_opts.duration + token_opts.warmup).as_secs_f64() * 1.2;
        (want as usize).clamp(50, if opts.smoke { 500 } else { 30_000 })
    };
    let token_alone = async |client: &BenchClient, signs: f64, name: &str| {
        eprintln!("bench: preparing codes for /token ({name})…");
        let browsers = (0..opts.browsers)
            .map(|_| Browser::new(&server.issuer))
            .collect::<Result<Vec<_>>>()?;
        let codes = prepare_codes(
            browsers,
            client,
            codes_for(signs),
            opts.code_preparation_limit(),
        )
        .await?;
        let prepared = codes.len();
        eprintln!("bench: /token ({name}) on {prepared} prepared codes…");
        let x = token_phase(&token_opts, &[addr], pid, ticks, client, codes).await?;
        Ok::<_, crate::Error>((x.phase, x.alg, (prepared, x.codes_sent)))
    };
    let (token_rs, alg_rs, (prepared, sent)) = token_alone(&rs, rsa_signs, "RS256").await?;
    // Every complete login stored and exchanged a code of the RS256 client too.
    let codes_rs = CodeCounts::of(logged_in, prepared, sent);
    eprintln!(
        "bench:   {} (id_token alg {alg_rs}); server VmHWM {:.1} MB",
        token_rs.summary(),
        mb(status_kb(pid, "VmHWM")?)
    );
    let (token_es, codes_es) = match &es_client {
        Some(es) => {
            let (r, alg, (prepared, sent)) = token_alone(es, ec_signs, "ES256").await?;
            eprintln!("bench:   {} (id_token alg {alg})", r.summary());
            (
                (alg == "ES256").then_some(r),
                CodeCounts::of(0, prepared, sent),
            )
        }
        None => (None, CodeCounts::default()),
    };

    // gettoken calls made by the provider so far (the simulator-only phase below makes one of
    // its own, so read the counter first).
    let mut c = Conn::open(addr).await?;
    let gettoken_calls = gettoken_calls(&mut c, wecom_oidc::demo::SIMULATOR_PATH).await?;
    let sim = simulator_alone(opts, &mut c, &server.issuer, &rs, (addr, pid, ticks)).await?;
    sim.report(pid)?;

    let (peak_rss, split) = peak_and_split(pid)?;
    let after_rss = mb(status_kb(pid, "VmRSS")?);
    eprintln!("bench:   server {split}");
    if let Some(why) = server.guard.exited() {
        return Err(err(why));
    }
    Ok(DemoFigures {
        idle_rss,
        discovery,
        jwks,
        login,
        userinfo,
        token_rs,
        alg_rs,
        token_es,
        sim,
        gettoken_calls,
        peak_rss,
        after_rss,
        codes_rs,
        codes_es,
    })
}

/// The memory floor's peak RSS (`floor::Seeding::Memory`).
pub struct MemoryFloor {
    pub peak_rss: f64,
    /// Failed exchanges (the smoke run requires none).
    pub errors: u64,
}

/// The floor server seeded with as many RS256 and ES256 codes as a server under test stored,
/// with the server's sled settings, exchanging as many as it did: the least memory sled, axum
/// and OpenSSL hold after those code exchanges, with the smallest records a code exchange can
/// keep (no session, no login, no `/userinfo`, no simulator).
pub async fn memory_floor(
    opts: &Options,
    pinned: bool,
    ticks: f64,
    (rs, es): (CodeCounts, CodeCounts),
) -> Result<MemoryFloor> {
    eprintln!(
        "bench: memory floor (axum + sled with the server's cache + OpenSSL): {} + {} codes, \
         {} + {} exchanged…",
        rs.prepared, es.prepared, rs.sent, es.sent
    );
    let seeding = Seeding::memory_arg(rs.prepared, es.prepared);
    let (guard, addr) = start_helper_with(
        "memory floor",
        "--floor-server",
        &["--floor-memory".to_string(), seeding],
        "/ready",
        pinned,
    )
    .await?;
    let mut errors = 0;
    for (id, counts) in [(FLOOR_RS256, rs), (FLOOR_ES256, es)] {
        if counts.sent == 0 {
            continue;
        }
        let x = token_phase(
            &opts.for_token(),
            &[addr],
            guard.pid(),
            ticks,
            &floor_client(id),
            seeded_codes(id, counts.sent),
        )
        .await?;
        errors += x.phase.errors;
    }
    let (peak_rss, split) = peak_and_split(guard.pid())?;
    eprintln!("bench:   memory floor {split}");
    Ok(MemoryFloor { peak_rss, errors })
}

/// The simulator's `gettoken` counter, from its stats endpoint under `mount`.
pub async fn gettoken_calls(c: &mut Conn, mount: &str) -> Result<u64> {
    let path = format!("{mount}{}", wecom_oidc::simulator::STATS_PATH);
    let stats: wecom_oidc::simulator::SimulatorStats = c.get_json(&path).await?;
    Ok(stats.gettoken_calls)
}

/// The simulator's share of a login, measured alone on the demo's simulator: a real login URL
/// from `/authorize` and a WeCom token from `gettoken` first.
async fn simulator_alone(
    opts: &Options,
    c: &mut Conn,
    issuer: &str,
    rs: &BenchClient,
    (addr, pid, ticks): (SocketAddr, u32, f64),
) -> Result<PhaseResult> {
    eprintln!("bench: simulator alone (its share of a login)…");
    let upstream = Browser::new(issuer)?;
    let mut authorize = url::Url::parse(&format!("{issuer}/authorize"))?;
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
    let got: serde_json::Value = c
        .get_json(&format!(
            "{}/cgi-bin/gettoken?{}",
            wecom_oidc::demo::SIMULATOR_PATH,
            serde_urlencoded::to_string([
                ("corpid", corp_id.as_str()),
                ("corpsecret", &demo_secret)
            ])?
        ))
        .await?;
    let wecom_token = got["access_token"]
        .as_str()
        .ok_or_else(|| err("the simulator gave no access_token"))?;
    simulator_only(opts, addr, pid, ticks, &upstream_url, wecom_token).await
}

/// The rows of the benchmark proper, in the order of the table.
fn table(
    opts: &Options,
    (rsa_signs, ec_signs): (f64, f64),
    base: &PhaseResult,
    cold: &[f64],
    d: &DemoFigures,
    memory: &MemoryFloor,
) -> Vec<Row> {
    let cold_ms = median(cold.to_vec());
    let login_cpu_ms = 1000.0 * ratio(d.login.server_cpu, d.login.requests as f64);
    let sim_cpu_ms = 1000.0 * ratio(d.sim.server_cpu, d.sim.requests as f64);
    let own_cpu_ms = login_cpu_ms - sim_cpu_ms;
    let rs_ratio = ratio(d.token_rs.per_cpu_second(), rsa_signs);
    let es_target = "≥ 12000/CPU-s";
    vec![
        alone_row(
            "static 1 KB baseline (axum)",
            base.throughput(),
            "baseline",
            None,
            vec![base.per_cpu_second()],
        ),
        alone_row(
            "openssl speed, one core",
            format!("RSA-2048 {rsa_signs:.0} signs/s, ECDSA P-256 {ec_signs:.0} signs/s"),
            "baseline",
            None,
            vec![rsa_signs, ec_signs],
        ),
        ratio_row("discovery", &d.discovery, base, 0.8),
        ratio_row("JWKS", &d.jwks, base, 0.8),
        ratio_row("/userinfo", &d.userinfo, base, 0.6),
        row(
            "/token code exchange, RS256",
            format!(
                "{:.0}/CPU-s ({:.0}/s, {}, alg {})",
                d.token_rs.per_cpu_second(),
                d.token_rs.per_second(),
                d.token_rs.p50_p99(),
                d.alg_rs
            ),
            format!("RSA-2048 {rsa_signs:.0} signs/s"),
            format!("{rs_ratio:.2}"),
            "≥ 0.9 × signs/s per core",
            Some(rs_ratio >= 0.9 && d.token_rs.errors == 0 && d.alg_rs == "RS256"),
            vec![d.token_rs.per_cpu_second(), rs_ratio],
        ),
        match &d.token_es {
            Some(p) => row(
                "/token code exchange, ES256",
                p.throughput(),
                format!("ECDSA P-256 {ec_signs:.0} signs/s"),
                format!("{:.2}", ratio(p.per_cpu_second(), ec_signs)),
                es_target,
                Some(p.per_cpu_second() >= 12_000.0 && p.errors == 0),
                vec![p.per_cpu_second()],
            ),
            None => row(
                "/token code exchange, ES256",
                "n/a until ES256 keys land".into(),
                format!("ECDSA P-256 {ec_signs:.0} signs/s"),
                "-".into(),
                es_target,
                None,
                vec![],
            ),
        },
        alone_row(
            "complete logins",
            format!(
                "{:.0}/s with {} browsers ({}, server CPU {:.0}%)",
                d.login.per_second(),
                opts.browsers,
                d.login.p50_p99(),
                100.0 * ratio(d.login.server_cpu, d.login.seconds)
            ),
            "(none; see CPU per login)",
            if d.login.errors == 0 {
                None
            } else {
                Some(false)
            },
            vec![d.login.per_second(), d.login.percentile(0.99)],
        ),
        row(
            "our CPU per complete login",
            format!(
                "{own_cpu_ms:.3} ms (login {login_cpu_ms:.3} ms − simulator {sim_cpu_ms:.3} ms)"
            ),
            format!("RSA sign {:.3} ms", 1000.0 / rsa_signs),
            format!("{:.2} × one sign", own_cpu_ms * rsa_signs / 1000.0),
            "≤ 1 ms",
            Some(own_cpu_ms <= 1.0 && d.login.errors == 0 && d.sim.errors == 0),
            vec![own_cpu_ms],
        ),
        alone_row(
            "idle RSS",
            format!("{:.1} MB", d.idle_rss),
            "≤ 16 MB",
            Some(d.idle_rss <= 16.0),
            vec![d.idle_rss],
        ),
        row(
            "peak RSS under load (VmHWM)",
            format!("{:.1} MB (after load {:.1} MB)", d.peak_rss, d.after_rss),
            format!(
                "memory floor {:.1} MB (axum + sled, the server's cache, + OpenSSL; the demo's codes)",
                memory.peak_rss
            ),
            format!("{:.2} ×", ratio(d.peak_rss, memory.peak_rss)),
            "≤ 32 MB",
            Some(d.peak_rss <= 32.0),
            vec![d.peak_rss, memory.peak_rss],
        ),
        alone_row(
            "cold start, existing keys, to first 200",
            format!("{cold_ms:.1} ms median of {}", cold.len()),
            "≤ 50 ms",
            Some(cold_ms <= 50.0),
            vec![cold_ms],
        ),
        alone_row(
            "WeCom gettoken calls",
            format!(
                "{} in {} logins through WeCom (complete logins and prepared codes)",
                d.gettoken_calls,
                d.codes_rs.prepared + d.codes_es.prepared
            ),
            "exactly 1 per token lifetime",
            Some(d.gettoken_calls == 1),
            vec![d.gettoken_calls as f64],
        ),
    ]
}
