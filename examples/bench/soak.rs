//! `--soak SECS`: sustained mixed traffic — logins, refreshes and userinfo — against the
//! server, with requests, errors and RSS over time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::browser::{BenchClient, Browser};
use crate::options::Options;
use crate::procs::{build_server, clock_ticks, cpu_seconds, mb, status_kb};
use crate::servers::{clients_toml, start_server, wait_ready};
use crate::{err, Result};

/// Request and error counts of the soak workers.
#[derive(Default)]
struct SoakCounts {
    logins: AtomicU64,
    refreshes: AtomicU64,
    userinfo: AtomicU64,
    errors: AtomicU64,
}

/// A full login (authorize → simulator → callback → token) asking for `offline_access` (OIDC
/// Core §11: the refresh token needs it): the (access, refresh) pair.
async fn soak_login(b: &Browser, client: &BenchClient) -> Result<(String, String)> {
    let code = b.code(client, "openid profile offline_access").await?;
    let answer = b.token(client, &code).await?;
    let refresh = answer
        .refresh_token
        .ok_or_else(|| err("no refresh_token in the token response"))?;
    Ok((answer.access_token, refresh))
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
        let (mut at, mut rt) = match soak_login(&b, &client).await {
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
            match b.refresh(&client, &rt).await {
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
pub async fn soak(opts: &Options, pinned: bool, length: Duration) -> Result<bool> {
    let ticks = clock_ticks();
    let bin = build_server(opts)?;
    let tmp = tempfile::Builder::new()
        .prefix("wecom-oidc-soak-")
        .tempdir()?;
    let client = BenchClient::new("bench-rs256");
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
