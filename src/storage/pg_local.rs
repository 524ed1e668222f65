//! Test support: a PostgreSQL server of the test's own, which the test may stop and start again
//! (a database restart under load). Like `.ci/pg`: a cluster in a temporary directory, on a free
//! loopback port and a socket directory of its own, run by an unprivileged user when the test
//! runs as root (initdb and postgres refuse root). Trust authentication on loopback only.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A private PostgreSQL server; stopped (immediately) and deleted when dropped.
pub struct LocalPostgres {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    /// `runuser -u postgres --` when running as root.
    run_as: Vec<String>,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`, as `.ci/pg` looks for it.
fn bindir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(path) = which("pg_ctl") {
        if let Some(dir) = std::fs::canonicalize(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_owned))
        {
            candidates.push(dir);
        }
    }
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut dirs: Vec<PathBuf> = versions.flatten().map(|e| e.path().join("bin")).collect();
        dirs.sort();
        candidates.extend(dirs.into_iter().rev());
    }
    candidates.into_iter().find(|d| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    })
}

fn which(name: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

/// Whether this process runs as root: the files it creates are then root's.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::tempfile().expect("a temporary file");
    probe.metadata().is_ok_and(|m| m.uid() == 0)
}

impl LocalPostgres {
    /// Creates and starts a server; `None` after [`crate::ci::service_missing`] when PostgreSQL
    /// is not installed (a failure under `CI=true`).
    pub fn start(test: &str) -> Option<LocalPostgres> {
        let Some(bindir) = bindir() else {
            crate::ci::service_missing(
                test,
                "PostgreSQL's server binaries (initdb, pg_ctl) are not installed \
                 (Debian: apt-get install postgresql; .ci/pg installs it)",
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("wecom-oidc-pg-")
            .tempdir()
            .expect("tempdir");
        let run_as = if is_root() {
            let owner = "postgres";
            let exists = Command::new("id")
                .arg(owner)
                .output()
                .is_ok_and(|o| o.status.success());
            if !exists {
                let made = Command::new("useradd")
                    .args([
                        "--system",
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                        owner,
                    ])
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(made, "cannot create the {owner} user to run PostgreSQL as");
            }
            let chowned = Command::new("chown")
                .arg("-R")
                .arg(owner)
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(chowned, "cannot hand {} to {owner}", dir.path().display());
            vec!["runuser".into(), "-u".into(), owner.into(), "--".into()]
        } else {
            Vec::new()
        };
        let pg = LocalPostgres {
            dir,
            bindir,
            port: 0,
            run_as,
        };
        let initdb = [
            "-U",
            "wecom_oidc",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ];
        pg.must_run("initdb", initdb);
        let mut pg = pg;
        for _ in 0..8 {
            pg.port = free_port();
            if pg.try_start() {
                return Some(pg);
            }
        }
        panic!("PostgreSQL did not start: {}", pg.log());
    }

    fn command(&self, program: &str) -> Command {
        let bin = self.bindir.join(program);
        match self.run_as.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        }
    }

    /// Runs `program -D <data directory> args…`.
    fn run<S: AsRef<OsStr>>(
        &self,
        program: &str,
        args: impl IntoIterator<Item = S>,
    ) -> std::io::Result<Output> {
        self.command(program)
            .arg("-D")
            .arg(self.data())
            .args(args)
            .output()
    }

    /// [`LocalPostgres::run`], failing the test unless the program succeeds.
    fn must_run<S: AsRef<OsStr>>(&self, program: &str, args: impl IntoIterator<Item = S>) {
        let out = self
            .run(program, args)
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn try_start(&self) -> bool {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=100 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let args = [OsStr::new("-l"), log.as_os_str()];
        let args = args
            .into_iter()
            .chain(["-w", "-t", "30", "-o", &options, "start"].map(OsStr::new));
        self.run("pg_ctl", args).is_ok_and(|o| o.status.success())
    }

    /// Starts the server again on its port (after [`LocalPostgres::stop`]).
    pub fn start_again(&self) {
        assert!(
            self.try_start(),
            "PostgreSQL did not start again: {}",
            self.log()
        );
    }

    /// Stops the server as an operator's restart does (`pg_ctl stop -m fast`: open sessions are
    /// ended, the data is checkpointed), and waits until it is down.
    pub fn stop(&self) {
        self.must_run("pg_ctl", ["-m", "fast", "-w", "-t", "30", "stop"]);
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://wecom_oidc@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
