//! Phases: N workers in a closed loop, warm-up excluded, server CPU measured over the window.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::conn::{Reconnecting, RequestSpec};
use crate::options::Options;
use crate::procs::{context_switches, cpu_seconds, mb, status_kb};
use crate::{err, Result};

/// One measured phase.
#[derive(Debug, Clone, Default)]
pub struct PhaseResult {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    /// Server CPU-seconds used in the window.
    pub server_cpu: f64,
    /// Generator CPU-seconds used in the window.
    pub generator_cpu: f64,
    /// Context switches of the server's threads in the window.
    pub server_switches: u64,
    /// Latencies in microseconds, sorted.
    pub latencies: Vec<u64>,
}

impl PhaseResult {
    pub fn per_second(&self) -> f64 {
        ratio(self.requests as f64, self.seconds)
    }
    /// Requests per CPU-second of the server.
    pub fn per_cpu_second(&self) -> f64 {
        ratio(self.requests as f64, self.server_cpu)
    }
    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)] as f64 / 1000.0
    }
    /// `p50 … ms, p99 … ms`, as every row of the table gives them.
    pub fn p50_p99(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            self.percentile(0.5),
            self.percentile(0.99)
        )
    }
    /// `N/CPU-s (N/s, p50 … ms, p99 … ms)`.
    pub fn throughput(&self) -> String {
        format!(
            "{:.0}/CPU-s ({:.0}/s, {})",
            self.per_cpu_second(),
            self.per_second(),
            self.p50_p99()
        )
    }
    pub fn summary(&self) -> String {
        format!(
            "{} req in {:.2}s, {:.0}/s, server CPU {:.0}% ({:.1} µs/req, {:.2} context switches/req), generator CPU {:.0}%, {}, {} errors",
            self.requests,
            self.seconds,
            self.per_second(),
            100.0 * ratio(self.server_cpu, self.seconds),
            1e6 * ratio(self.server_cpu, self.requests as f64),
            ratio(self.server_switches as f64, self.requests as f64),
            100.0 * ratio(self.generator_cpu, self.seconds),
            self.p50_p99(),
            self.errors
        )
    }
    /// Prints the summary with the server's peak memory so far.
    pub fn report(&self, server_pid: u32) -> Result<()> {
        eprintln!(
            "bench:   {}; server VmHWM {:.1} MB",
            self.summary(),
            mb(status_kb(server_pid, "VmHWM")?)
        );
        Ok(())
    }
}

pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

/// What every worker shares.
pub struct Shared {
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

    /// A worker's closed loop until the phase stops, or until `next` has no more work: each
    /// `step` on the work `next` gave is timed and recorded. After a failure the worker pauses
    /// a moment, so that a broken server is not spun on.
    pub async fn work<T>(
        &self,
        mut next: impl FnMut() -> Option<T>,
        mut step: impl AsyncFnMut(T) -> Result<()>,
    ) {
        let mut local = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            let Some(work) = next() else {
                break;
            };
            let started = Instant::now();
            let outcome = step(work).await;
            let failed = outcome.is_err();
            self.record(started, outcome, &mut local);
            if failed {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(local);
    }

    /// [`Shared::work`] for workers that never run out of work.
    pub async fn work_forever(&self, mut step: impl AsyncFnMut() -> Result<()>) {
        self.work(|| Some(()), async |()| step().await).await
    }
}

/// Runs `workers` in a closed loop for warm-up + duration (or until they run out of work) and
/// measures the window after warm-up. Each worker is a future that loops until `stop`.
pub async fn measure<F, Fut>(
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
pub async fn hammer(
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
                let mut conn = Reconnecting::new(addr);
                shared
                    .work_forever(async || {
                        let a = conn.send(&spec).await?;
                        if a.status != 200 || !check(&a.body) {
                            return Err(err(format!("{} answered {}", spec.path, a.status)));
                        }
                        Ok(())
                    })
                    .await;
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

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
