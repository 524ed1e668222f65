//! Baselines and the report: `openssl speed`, the machine, and the result table with its
//! PASS/MISS verdicts.

use std::process::{Command, Stdio};

use crate::options::Options;
use crate::phase::{ratio, PhaseResult};
use crate::SERVER_CPU;

/// `openssl speed` on the server's core: (RSA-2048 signs/s, ECDSA P-256 signs/s).
pub fn openssl_speed(opts: &Options, pinned: bool) -> (f64, f64) {
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
pub fn parse_openssl(text: &str) -> (f64, f64) {
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

pub fn machine() -> Vec<(String, String)> {
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

pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One line of the result table.
pub struct Row {
    figure: String,
    measured: String,
    baseline: String,
    ratio: String,
    target: String,
    result: &'static str,
    /// The numbers behind this row (smoke mode checks they are finite).
    numbers: Vec<f64>,
}

pub fn row(
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

/// A row without a baseline.
pub fn alone_row(
    figure: &str,
    measured: String,
    target: &str,
    pass: Option<bool>,
    numbers: Vec<f64>,
) -> Row {
    row(
        figure,
        measured,
        "-".into(),
        "-".into(),
        target,
        pass,
        numbers,
    )
}

/// The verdict of a phase measured for information: a MISS only when it failed.
pub fn failed_or_info(p: &PhaseResult) -> Option<bool> {
    if p.errors == 0 && p.requests > 0 {
        None
    } else {
        Some(false)
    }
}

/// A throughput row judged on requests per server CPU-second against a baseline.
pub fn ratio_row(figure: &str, p: &PhaseResult, base: &PhaseResult, min: f64) -> Row {
    let r = ratio(p.per_cpu_second(), base.per_cpu_second());
    let wall = ratio(p.per_second(), base.per_second());
    row(
        figure,
        p.throughput(),
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

/// Prints the table; false when a row has a number that is not finite.
pub fn print_table(title: &str, rows: &[Row]) -> bool {
    println!("{title}");
    println!("| figure | measured | baseline | ratio | target | result |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
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
        return false;
    }
    true
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
    fn a_row_without_a_finite_number_fails_the_table() {
        let good = alone_row("a", "1".into(), "t", None, vec![1.0]);
        assert!(print_table("## test", &[good]));
        let bad = alone_row("b", "NaN".into(), "t", None, vec![f64::NAN]);
        assert!(!print_table("## test", &[bad]));
    }
}
