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

use crate::procs::stat_fields_after_comm;
use crate::SERVER_CPU;

/// The local PostgreSQL's processes while they are kept off the server's CPU; their affinity is
/// given back on drop.
pub struct StoreCpus {
    /// Each process moved, with the affinity list it had; the postmaster first.
    moved: Vec<(u32, String)>,
    /// The affinity list they were given.
    set: String,
    /// What was done, for the result table.
    pub placement: String,
}

impl StoreCpus {
    /// Left as it is, with `why` for the table.
    fn unmoved(why: String) -> StoreCpus {
        StoreCpus {
            moved: Vec::new(),
            set: String::new(),
            placement: why,
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
            return Self::unmoved("as they are (the URL's host is not a loopback address)".into());
        };
        let Some(postmaster) = listening_pid(port) else {
            return Self::unmoved(format!(
                "as they are (no process found listening on port {port}, or its sockets may \
                 not be read)"
            ));
        };
        if !is_postgres(postmaster) {
            return Self::unmoved(format!(
                "as they are (process {postmaster} on port {port} is not PostgreSQL's postmaster)"
            ));
        }
        // Listed before the postmaster moves, so that a child started meanwhile is not taken
        // for one that had the moved setting of its own.
        let children = descendants(postmaster);
        let Some(before) = affinity(postmaster) else {
            return Self::unmoved(format!(
                "as they are (taskset may not read process {postmaster})"
            ));
        };
        let cpus = without_server_cpu(&before);
        if cpus.is_empty() {
            return Self::unmoved(
                "as they are (PostgreSQL may use no CPU but the server's)".into(),
            );
        }
        if !set_affinity(postmaster, &cpus) {
            // Without the postmaster, new backends would still land anywhere.
            return Self::unmoved(format!(
                "as they are (taskset may not move PostgreSQL's process {postmaster})"
            ));
        }
        let mut moved = vec![(postmaster, before)];
        for pid in children {
            if let Some(before) = affinity(pid).filter(|_| set_affinity(pid, &cpus)) {
                moved.push((pid, before));
            }
        }
        // A SIGKILL of the bench skips `Drop`: say how to undo it by hand.
        let undo: Vec<String> = moved
            .iter()
            .map(|(pid, before)| format!("taskset -a -p -c {before} {pid}"))
            .collect();
        eprintln!(
            "bench: PostgreSQL moved to CPU {cpus}; if the bench is killed before it restores \
             them: {}",
            undo.join("; ")
        );
        let placement = format!(
            "on CPU {cpus}, apart from the server's (PostgreSQL pid {postmaster} and {} \
             processes it started; backends started later inherit it)",
            moved.len().saturating_sub(1)
        );
        StoreCpus {
            moved,
            set: cpus,
            placement,
        }
    }

    /// Whether the store runs off the server's CPU.
    pub fn apart(&self) -> bool {
        !self.moved.is_empty()
    }
}

impl Drop for StoreCpus {
    fn drop(&mut self) {
        let Some((postmaster, postmaster_before)) = self.moved.first().cloned() else {
            return;
        };
        // Processes the postmaster started during the run inherited the setting: they get the
        // postmaster's own back, like it.
        let moved: Vec<u32> = self.moved.iter().map(|(pid, _)| *pid).collect();
        let set = cpus_of(&self.set);
        for pid in descendants(postmaster) {
            if !moved.contains(&pid) && affinity(pid).is_some_and(|a| cpus_of(&a) == set) {
                set_affinity(pid, &postmaster_before);
            }
        }
        for (pid, before) in self.moved.drain(..) {
            set_affinity(pid, &before);
        }
    }
}

/// Whether `pid` runs PostgreSQL's server (`postgres`, or `postmaster` on older packagings).
fn is_postgres(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|c| matches!(c.trim(), "postgres" | "postmaster"))
}

/// The CPUs of a `taskset` list (`0-3,6`) but the server's, as a list again.
fn without_server_cpu(list: &str) -> String {
    cpus_of(list)
        .into_iter()
        .filter(|c| *c != SERVER_CPU)
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The CPUs of a `taskset` list such as `0-3,6` (an unreadable item counts for nothing).
fn cpus_of(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    cpus.extend(a..=b);
                }
            }
            None => cpus.extend(item.parse::<usize>()),
        }
    }
    cpus
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

/// The parent of `pid`, from `/proc/PID/stat`.
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parent_in_stat(&stat)
}

fn parent_in_stat(stat: &str) -> Option<u32> {
    // After the command name: state (field 3), then the parent (field 4).
    stat_fields_after_comm(stat)?.get(1)?.parse().ok()
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
    fn the_server_cpu_is_taken_out_of_a_taskset_list() {
        assert_eq!(cpus_of("0-3,6"), vec![0, 1, 2, 3, 6]);
        assert_eq!(cpus_of(" 2 , x, 4-3"), vec![2]);
        assert_eq!(without_server_cpu("0,1"), "0");
        assert_eq!(without_server_cpu("0-3"), "0,2,3");
        assert_eq!(without_server_cpu("1"), "");
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
