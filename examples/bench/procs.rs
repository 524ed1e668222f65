//! Child processes and what `/proc` says about them: building the server, pinning, spawning,
//! killing, CPU time, context switches and memory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::options::Options;
use crate::{err, Result, SERVER_CPU};

pub fn can_pin() -> bool {
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
pub fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| err("cannot locate the target directory"))
}

/// Builds the server binary with the same profile as this example (a no-op when up to date).
pub fn build_server(opts: &Options) -> Result<PathBuf> {
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
pub struct Guard {
    child: Child,
    pub name: &'static str,
}

impl Guard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited, and its stderr if so (for the error message).
    pub fn exited(&mut self) -> Option<String> {
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
pub fn spawn(
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
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Clock ticks per second for `/proc/PID/stat`.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// The fields of a `/proc/PID/stat` line after the command name (which may itself hold spaces
/// and parentheses): the first is the state, field 3 of proc(5).
pub fn stat_fields_after_comm(stat: &str) -> Option<Vec<&str>> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32, ticks: f64) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let f = stat_fields_after_comm(&stat).ok_or_else(|| err("unreadable /proc/PID/stat"))?;
    // After ')': state is field 3, utime field 14, stime field 15 (proc(5)).
    let utime: f64 = f.get(11).ok_or_else(|| err("no utime"))?.parse()?;
    let stime: f64 = f.get(12).ok_or_else(|| err("no stime"))?.parse()?;
    Ok((utime + stime) / ticks)
}

/// Context switches (voluntary + involuntary) of every thread of a process so far: each is a
/// hand-off between threads (a futex wait, a blocking read) or a preemption. Threads that ended
/// are not counted, so read it around a phase of threads that live through it.
pub fn context_switches(pid: u32) -> u64 {
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
pub fn status_kb(pid: u32, key: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| err(format!("no {key} in /proc/{pid}/status")))
}

/// CPU seconds used so far by all of `pids` together (NaN when one cannot be read).
pub fn total_cpu_seconds(pids: &[u32], ticks: f64) -> f64 {
    pids.iter()
        .map(|p| cpu_seconds(*p, ticks).unwrap_or(f64::NAN))
        .sum()
}

/// Kibibytes to mebibytes.
pub fn mb(kb: f64) -> f64 {
    kb / 1024.0
}

/// `VmHWM` of `pid` in MB, and a line that gives it with the anonymous and file-backed parts of
/// the process's resident set now.
pub fn peak_and_split(pid: u32) -> Result<(f64, String)> {
    let peak = mb(status_kb(pid, "VmHWM")?);
    let line = format!(
        "VmHWM {peak:.1} MB (now {:.1} MB anonymous, {:.1} MB file pages)",
        mb(status_kb(pid, "RssAnon")?),
        mb(status_kb(pid, "RssFile")?)
    );
    Ok((peak, line))
}
