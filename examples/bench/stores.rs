//! `--store`: sled vs PostgreSQL, one vs several instances, on `wecom-oidc serve`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::browser::{BenchClient, Browser};
use crate::conn::Conn;
use crate::options::Options;
use crate::phase::{ratio, PhaseResult};
use crate::phases::{logins, prepare_codes, token_phase, Logins};
use crate::procs::{free_port, mb, spawn, status_kb, total_cpu_seconds};
use crate::report::{alone_row, failed_or_info, row, Row};
use crate::run::{gettoken_calls, memory_floor, CodeCounts};
use crate::servers::{clients_toml, start_helper, wait_ready, SIM_MOUNT};
use crate::store_cpus::StoreCpus;
use crate::{err, Result};

/// The issuer every instance of the comparison names; each browser's requests to it go to its
/// own instance (see [`Browser::behind`]).
const CLUSTER_ISSUER: &str = "http://localhost";

/// Runs one SQL command with `psql` against `url`.
fn psql(url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-w",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
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
    /// The codes the setup stored (one per login, and the prepared ones) and exchanged.
    codes: CodeCounts,
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
    let stats_path = format!("{SIM_MOUNT}{}", wecom_oidc::simulator::STATS_PATH);
    let (_sim_guard, sim_addr) =
        start_helper("simulator", "--simulator-server", &stats_path, pinned).await?;
    let sim_base = format!("http://{sim_addr}{SIM_MOUNT}");
    let rs = BenchClient::new("bench-rs256");
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
    // Browsers spread round-robin over the instances.
    let browsers = || {
        (0..opts.browsers)
            .map(|i| {
                Browser::behind(
                    CLUSTER_ISSUER,
                    &format!("http://{}", addrs[i % addrs.len()]),
                )
            })
            .collect::<Result<Vec<_>>>()
    };
    eprintln!(
        "bench: {label}: complete logins, {} browsers…",
        opts.browsers
    );
    let cpu0 = total_cpu_seconds(&pids, ticks);
    let Logins {
        phase: mut login,
        completed: logged_in,
    } = logins(
        opts,
        browsers()?,
        pids[0],
        ticks,
        &rs,
        Arc::new(Mutex::new(Vec::new())),
    )
    .await?;
    eprintln!("bench:   {}", login.summary());
    let want = if opts.smoke { 200 } else { 4_000 };
    let codes = prepare_codes(browsers()?, &rs, want, opts.code_preparation_limit()).await?;
    let prepared = codes.len();
    eprintln!("bench: {label}: /token on {prepared} prepared codes…");
    let exchanged = token_phase(&opts.for_token(), &addrs, pids[0], ticks, &rs, codes).await?;
    let codes = CodeCounts::of(logged_in, prepared, exchanged.codes_sent);
    let mut token = exchanged.phase;
    let cpu1 = total_cpu_seconds(&pids, ticks);
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
    let gettoken_calls = gettoken_calls(&mut Conn::open(sim_addr).await?, SIM_MOUNT).await?;
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
        gettoken_calls,
        peak_rss,
        codes,
    })
}

/// The target of one instance on PostgreSQL: complete logins per second at least this share of
/// sled's, on the same machine with the same browsers.
const PG_LOGINS_SHARE: f64 = 0.7;

/// Complete logins on PostgreSQL against sled, one instance each: judged per second of wall
/// time (what a deployment sees), with the ratio per CPU-second of the server beside it.
fn pg_against_sled(sled: &SetupResult, pg: &SetupResult, browsers: usize, apart: bool) -> Row {
    let wall = ratio(pg.login.per_second(), sled.login.per_second());
    let per_cpu = ratio(pg.login.per_cpu_second(), sled.login.per_cpu_second());
    row(
        "serve, PostgreSQL, 1 instance: complete logins against sled",
        format!(
            "{:.0}/s with {browsers} browsers, PostgreSQL {}",
            pg.login.per_second(),
            if apart {
                "off the server's CPU"
            } else {
                "where it was"
            }
        ),
        format!("sled: {:.0}/s", sled.login.per_second()),
        format!("{wall:.2} (per CPU-s of the server {per_cpu:.2})"),
        &format!("≥ {PG_LOGINS_SHARE} × sled"),
        Some(
            wall >= PG_LOGINS_SHARE
                && failed_or_info(&pg.login).is_none()
                && failed_or_info(&sled.login).is_none(),
        ),
        // Judged on the wall-clock ratio; the per-CPU one is shown (a short smoke phase may
        // measure no CPU tick).
        vec![wall],
    )
}

/// sled ×1, PostgreSQL ×1 and PostgreSQL ×`--instances`: rows for the table.
pub async fn store_comparison(
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
    // The least memory sled holds after as many code exchanges (run before PostgreSQL moves).
    let sled_floor = memory_floor(
        opts,
        pinned,
        ticks,
        (results[0].codes, CodeCounts::default()),
    )
    .await?;
    let mut counts = vec![1];
    if opts.instances > 1 {
        counts.push(opts.instances);
    }
    let store_cpus = StoreCpus::keep_apart(pg, pinned, opts.store_apart);
    eprintln!("bench: PostgreSQL's processes: {}", store_cpus.placement);
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
    // A phase measured for comparison between the setups.
    let compared = |label: &str, what: &str, p: &PhaseResult, browsers: &str| {
        alone_row(
            &format!("serve, {label}: {what}"),
            format!(
                "{}{:.0}/s{browsers} ({})",
                per_cpu(p),
                p.per_second(),
                p.p50_p99()
            ),
            "(none; compare the setups)",
            failed_or_info(p),
            vec![p.per_second(), p.percentile(0.99)],
        )
    };
    let mut rows = vec![alone_row(
        "serve, PostgreSQL: its processes' CPUs",
        store_cpus.placement.clone(),
        "(none; where the database ran)",
        None,
        Vec::new(),
    )];
    rows.push(pg_against_sled(
        &results[0],
        &results[1],
        opts.browsers,
        store_cpus.apart(),
    ));
    for (i, r) in results.iter().enumerate() {
        let browsers = format!(" with {} browsers", opts.browsers);
        rows.push(compared(&r.label, "complete logins", &r.login, &browsers));
        rows.push(compared(&r.label, "/token RS256", &r.token, ""));
        let peak = format!("serve, {}: peak RSS (VmHWM), simulator apart", r.label);
        rows.push(if i == 0 {
            // A floor whose exchanges failed gives no number (a smoke run then fails).
            let floor = if sled_floor.errors == 0 {
                sled_floor.peak_rss
            } else {
                f64::NAN
            };
            row(
                &peak,
                format!("{:.1} MB", r.peak_rss),
                format!("memory floor {floor:.1} MB (the same codes)"),
                format!("{:.2} ×", ratio(r.peak_rss, floor)),
                "(none; compare the setups)",
                None,
                vec![r.peak_rss, floor],
            )
        } else {
            alone_row(
                &peak,
                format!("{:.1} MB", r.peak_rss),
                "(none; compare the setups)",
                None,
                vec![r.peak_rss],
            )
        });
        rows.push(alone_row(
            &format!("serve, {}: WeCom gettoken calls", r.label),
            format!("{}", r.gettoken_calls),
            "exactly 1 for the whole cluster",
            Some(r.gettoken_calls == 1),
            vec![r.gettoken_calls as f64],
        ));
    }
    Ok(rows)
}
