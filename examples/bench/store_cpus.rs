//! `--store` on this machine: a local PostgreSQL kept off the server's CPU.
//!
//! A pinned run gives the server under test a CPU of its own and the generator another. A
//! PostgreSQL on the same machine is, like the generator, a party the measurement needs but
//! does not measure. Left where it is, Linux wakes each backend on the CPU of the process that
//! woke it (wake-affine scheduling): the backends answering the server run on the server's own
//! core, so the server and its database share one core, which no deployment with a database
//! server does. So when the run is pinned and the store's URL names this machine, the bench
//! moves the PostgreSQL server listening on that port, and every process it has started, to
//! every CPU but the server's (backends started later inherit the postmaster's affinity), and
//! gives each its own affinity back at the end. `--store-cpus-as-they-are` leaves them alone,
//! to measure the shared core.

use std::process::{Command, Stdio};

use crate::SERVER_CPU;

/// The local PostgreSQL's processes while they are kept off the server's CPU; their affinity is
/// given back on drop.
pub struct StoreCpus {
    /// Each process moved, with the affinity list it had.
    moved: Vec<(u32, String)>,
    /// What was done, for the result table.
    pub placement: String,
    /// Whether the store runs off the server's CPU.
    pub apart: bool,
}

impl StoreCpus {
    /// Left as it is, with `why` for the table.
    fn unmoved(why: String) -> StoreCpus {
        StoreCpus {
            moved: Vec::new(),
            placement: why,
            apart: false,
        }
    }

    /// Moves the PostgreSQL server of `url` off [`SERVER_CPU`] when `pinned`, `wanted`, and it
    /// runs on this machine.
    pub fn keep_apart(url: &str, pinned: bool, wanted: bool) -> StoreCpus {
        if !pinned {
            return Self::unmoved("as they are (the run is not pinned)".into());
        }
        if !wanted {
            return Self::unmoved("as they are (--store-cpus-as-they-are)".into());
        }
        let Some(port) = local_port(url) else {
            return Self::unmoved("as they are (the database is not on this machine)".into());
        };
        let Some(postmaster) = listening_pid(port) else {
            return Self::unmoved(format!(
                "as they are (no process of this machine visibly listens on port {port})"
            ));
        };
        let cpus = other_cpus();
        if cpus.is_empty() {
            return Self::unmoved("as they are (no CPU besides the server's)".into());
        }
        let Some(before) = affinity(postmaster).filter(|_| set_affinity(postmaster, &cpus)) else {
            // Without the postmaster, new backends would still land anywhere.
            return Self::unmoved(format!(
                "as they are (taskset may not move PostgreSQL's process {postmaster})"
            ));
        };
        let mut moved = vec![(postmaster, before)];
        for pid in descendants(postmaster) {
            if let Some(before) = affinity(pid).filter(|_| set_affinity(pid, &cpus)) {
                moved.push((pid, before));
            }
        }
        let placement = format!(
            "on CPU {cpus}, apart from the server's (PostgreSQL pid {postmaster} and {} \
             processes it started; backends started later inherit it)",
            moved.len().saturating_sub(1)
        );
        StoreCpus {
            moved,
            placement,
            apart: true,
        }
    }
}

impl Drop for StoreCpus {
    fn drop(&mut self) {
        for (pid, before) in self.moved.drain(..) {
            set_affinity(pid, &before);
        }
    }
}

/// The port of `url` when its host is this machine's loopback.
fn local_port(url: &str) -> Option<u16> {
    let url = url::Url::parse(url).ok()?;
    let local = match url.host()? {
        // A postgres:// URL is not special to the URL standard: its IPv4 host stays a name.
        url::Host::Domain(d) => {
            d == "localhost"
                || d.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    local.then(|| url.port().unwrap_or(5432))
}

/// The socket inodes listening on TCP `port` (IPv4 and IPv6), from `/proc/net`.
fn listening_inodes(port: u16) -> Vec<u64> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        inodes.extend(
            text.lines()
                .skip(1)
                .filter_map(|line| listening_inode(line, port)),
        );
    }
    inodes
}

/// The inode of one `/proc/net/tcp` line when it is a socket listening on `port`.
fn listening_inode(line: &str, port: u16) -> Option<u64> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let local_port = fields.get(1)?.rsplit_once(':')?.1;
    const LISTEN: &str = "0A";
    (u16::from_str_radix(local_port, 16).ok()? == port && *fields.get(3)? == LISTEN)
        .then(|| fields.get(9)?.parse().ok())
        .flatten()
}

/// The process holding a socket listening on `port`.
fn listening_pid(port: u16) -> Option<u32> {
    let wanted: Vec<String> = listening_inodes(port)
        .into_iter()
        .map(|i| format!("socket:[{i}]"))
        .collect();
    if wanted.is_empty() {
        return None;
    }
    pids().into_iter().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|target| wanted.iter().any(|w| target.as_os_str() == w.as_str()))
            })
        })
    })
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The parent of `pid`, from `/proc/PID/stat` (the field after the command name, which may
/// itself hold spaces and parentheses).
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parent_in_stat(&stat)
}

fn parent_in_stat(stat: &str) -> Option<u32> {
    let (_, after) = stat.rsplit_once(')')?;
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Every process started by `root`, and by those, and so on.
fn descendants(root: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = pids()
        .into_iter()
        .filter_map(|p| Some((p, parent(p)?)))
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let of = found[i];
        found.extend(all.iter().filter(|(_, pp)| *pp == of).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

/// Every CPU of the machine but the server's, as a `taskset` list.
fn other_cpus() -> String {
    // Counted from /proc/cpuinfo: this process is already pinned to one CPU.
    let n = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    (0..n)
        .filter(|c| *c != SERVER_CPU)
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The affinity list of `pid` (`taskset -p -c`), e.g. `0,1`.
fn affinity(pid: u32) -> Option<String> {
    let out = Command::new("taskset")
        .args(["-p", "-c", &pid.to_string()])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status
        .success()
        .then(|| text.rsplit_once(':').map(|(_, l)| l.trim().to_string()))
        .flatten()
        .filter(|l| !l.is_empty())
}

/// Moves every thread of `pid` to the CPUs of `list`.
fn set_affinity(pid: u32, list: &str) -> bool {
    Command::new("taskset")
        .args(["-a", "-p", "-c", list, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_loopback_host_is_this_machine() {
        assert_eq!(local_port("postgres://u@127.0.0.1:6543/db"), Some(6543));
        assert_eq!(local_port("postgres://u@localhost/db"), Some(5432));
        assert_eq!(local_port("postgresql://u@[::1]:7000/db"), Some(7000));
        assert_eq!(local_port("postgres://u@db.example.com:5432/db"), None);
        assert_eq!(local_port("postgres://u@10.0.0.5/db"), None);
    }

    #[test]
    fn a_listening_socket_is_told_from_a_connection_on_the_same_port() {
        // Real lines of /proc/net/tcp: port 0x1538 = 5432, state 0A = LISTEN, 01 = ESTABLISHED.
        let listen = "   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 \
                      00000000   999        0 123456 1 0000000000000000 100 0 0 10 0";
        let conn = "   1: 0100007F:1538 0100007F:D431 01 00000000:00000000 00:00000000 \
                    00000000   999        0 654321 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(listening_inode(listen, 5432), Some(123456));
        assert_eq!(listening_inode(listen, 5433), None);
        assert_eq!(listening_inode(conn, 5432), None);
        assert_eq!(listening_inode("garbage", 5432), None);
    }

    #[test]
    fn the_parent_is_read_after_a_command_name_with_spaces_and_parentheses() {
        assert_eq!(
            parent_in_stat("42 (postgres: a (b) c) S 7 42 42 0"),
            Some(7)
        );
        assert_eq!(parent_in_stat("42 no-parenthesis"), None);
    }

    #[test]
    fn this_process_is_found_listening_on_its_own_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert_eq!(listening_pid(port), Some(std::process::id()));
        drop(listener);
        assert_eq!(listening_pid(port), None);
    }
}
