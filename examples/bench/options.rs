//! The command line (clap), and the options a run goes by once `--smoke` has filled in its
//! shorter defaults.

use std::time::Duration;

use clap::Parser;

/// Load generator for wecom-oidc: starts the server itself, measures it against baselines from
/// the same run, and prints a table of figures with their targets.
#[derive(Debug, Parser)]
#[command(name = "bench")]
pub struct Args {
    /// A few seconds: every figure must be a number (what CI runs).
    #[arg(long)]
    smoke: bool,
    /// Measured seconds per phase, after warm-up [default: 5, or 0.4 with --smoke].
    #[arg(long, value_name = "SECS", value_parser = phase_length)]
    duration: Option<Duration>,
    /// Concurrent browsers in the login phases (1 to 512) [default: 16, or 4 with --smoke].
    #[arg(long, value_name = "N")]
    browsers: Option<usize>,
    /// Concurrent keep-alive connections in single-endpoint phases (1 to 512) [default: 32, or 4
    /// with --smoke].
    #[arg(long, value_name = "N")]
    connections: Option<usize>,
    /// Do not pin the generator and the servers to CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Use the server binary already built instead of running `cargo build`.
    #[arg(long)]
    no_build: bool,
    /// Only sustained mixed traffic for SECS seconds (5 to 86400), instead of the benchmark.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(5..=86_400))]
    soak: Option<u64>,
    /// Add the store and instance comparison against this PostgreSQL server.
    #[arg(long, value_name = "postgres://USER@HOST:PORT/DB", value_parser = postgres_url)]
    store: Option<String>,
    /// Leave a PostgreSQL of this machine on the CPUs it has, instead of moving it off the
    /// server's CPU for the comparison (then it shares the server's core).
    #[arg(long)]
    store_cpus_as_they_are: bool,
    /// How many instances share the PostgreSQL store in the comparison (1 to 8).
    #[arg(long, value_name = "N", default_value_t = 2)]
    instances: usize,
    /// Internal: serve the static baseline on this port (the bench starts itself so).
    #[arg(long, value_name = "PORT", hide = true)]
    pub baseline_server: Option<u16>,
    /// Internal: serve the durable signed `/token` floor on this port (the bench starts itself so).
    #[arg(long, value_name = "PORT", hide = true)]
    pub floor_server: Option<u16>,
    /// Internal: how many codes per client the floor seeds (the profile scripts seed fewer).
    #[arg(long, value_name = "N", hide = true, default_value_t = crate::floor::FLOOR_CODES)]
    pub floor_codes: usize,
    /// Internal: the floor server is the memory floor, seeded with RS256,ES256 codes.
    #[arg(long, value_name = "RS256,ES256", hide = true, value_parser = crate::floor::Seeding::parse_memory)]
    pub floor_memory: Option<crate::floor::Seeding>,
    /// Internal: serve the WeCom simulator on this port (the bench starts itself so).
    #[arg(long, value_name = "PORT", hide = true)]
    pub simulator_server: Option<u16>,
}

fn phase_length(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(0.1..=120.0).contains(&secs) {
        return Err("must be between 0.1 and 120 seconds".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn postgres_url(s: &str) -> Result<String, String> {
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(s.to_string())
    } else {
        Err("must be a postgres:// URL".into())
    }
}

/// What a run goes by.
#[derive(Debug, Clone)]
pub struct Options {
    pub smoke: bool,
    /// Measured seconds per phase (after warm-up).
    pub duration: Duration,
    pub warmup: Duration,
    /// Concurrent browsers in the login phase.
    pub browsers: usize,
    /// Concurrent keep-alive connections in single-endpoint phases.
    pub connections: usize,
    pub cold_starts: usize,
    pub openssl_seconds: u32,
    pub pin: bool,
    pub build: bool,
    /// `--soak SECS`: the sustained mixed-traffic mode instead of the benchmark.
    pub soak: Option<Duration>,
    /// `--store`: a PostgreSQL server for the store and instance comparison.
    pub store: Option<String>,
    /// `--instances`: how many instances share the PostgreSQL store in the comparison.
    pub instances: usize,
    /// Whether a PostgreSQL of this machine is moved off the server's CPU (not
    /// `--store-cpus-as-they-are`).
    pub store_apart: bool,
}

impl From<Args> for Options {
    /// `--smoke` shortens every default; an option given explicitly wins over it.
    fn from(a: Args) -> Options {
        let smoke = a.smoke;
        Options {
            smoke,
            duration: a.duration.unwrap_or(pick(
                smoke,
                Duration::from_secs(5),
                Duration::from_millis(400),
            )),
            warmup: pick(smoke, Duration::from_secs(1), Duration::from_millis(100)),
            browsers: a.browsers.unwrap_or(pick(smoke, 16, 4)).clamp(1, 512),
            connections: a.connections.unwrap_or(pick(smoke, 32, 4)).clamp(1, 512),
            cold_starts: pick(smoke, 10, 2),
            openssl_seconds: pick(smoke, 3, 1),
            pin: !a.no_pin,
            build: !a.no_build,
            soak: a.soak.map(Duration::from_secs),
            store: a.store,
            instances: a.instances.clamp(1, 8),
            store_apart: !a.store_cpus_as_they_are,
        }
    }
}

/// The full run's default, or the smoke run's.
fn pick<T>(smoke: bool, full: T, short: T) -> T {
    if smoke {
        short
    } else {
        full
    }
}

impl Options {
    /// The options of a `/token` phase on prepared codes: a short warm-up, so that it does not
    /// eat the codes.
    pub fn for_token(&self) -> Options {
        Options {
            warmup: self.warmup / 5,
            ..self.clone()
        }
    }

    /// How long preparing codes for a `/token` phase may take.
    pub fn code_preparation_limit(&self) -> Duration {
        Duration::from_secs(if self.smoke { 5 } else { 15 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
    }

    fn options(args: &[&str]) -> Options {
        Options::from(parse(args).expect("valid arguments"))
    }

    #[test]
    fn smoke_shortens_the_defaults_and_explicit_options_win() {
        let full = options(&[]);
        assert_eq!((full.duration, full.browsers), (Duration::from_secs(5), 16));
        let smoke = options(&["--smoke"]);
        assert_eq!(
            (smoke.duration, smoke.browsers, smoke.cold_starts),
            (Duration::from_millis(400), 4, 2)
        );
        let both = options(&["--browsers", "8", "--smoke", "--duration", "1.5"]);
        assert_eq!(
            (both.duration, both.browsers),
            (Duration::from_millis(1500), 8)
        );
    }

    #[test]
    fn out_of_range_values_are_refused_or_clamped() {
        assert!(parse(&["--duration", "500"]).is_err());
        assert!(parse(&["--soak", "1"]).is_err());
        assert!(parse(&["--store", "mysql://db"]).is_err());
        assert_eq!(options(&["--browsers", "9999"]).browsers, 512);
        assert_eq!(options(&["--instances", "0"]).instances, 1);
    }
}
