//! Outside programs: nginx in front of a provider, and the real `wecom-oidc` binary.

use super::*;

/// The nginx binary for `test`; `None` (after [`service_missing`], which fails the test under
/// `CI=true`) when it is not installed.
///
/// [`service_missing`]: wecom_oidc::testkit::service_missing
pub fn nginx_for(test: &str) -> Option<std::path::PathBuf> {
    let found = nginx_binary();
    if found.is_none() {
        wecom_oidc::testkit::service_missing(
            test,
            "nginx is not installed (apt-get install nginx)",
        );
    }
    found
}

/// Where Chromium is (`.ci/test` installs Debian's `chromium` package).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether headless Chromium can run for `test`; `false` (after [`service_missing`], which
/// fails the test under `CI=true`) when it is not installed.
///
/// [`service_missing`]: wecom_oidc::testkit::service_missing
pub fn chromium_for(test: &str) -> bool {
    let found = std::path::Path::new(CHROMIUM).exists();
    if !found {
        wecom_oidc::testkit::service_missing(
            test,
            &format!("{CHROMIUM} is absent; install it (apt-get install -y chromium) to take screenshots"),
        );
    }
    found
}

/// Headless Chromium's screenshot of `url` in a window of `width` × `height` into `png`, with
/// `extra` arguments (language, user agent); bounded by a minute, and it must succeed.
pub async fn chromium_screenshot(
    url: &str,
    png: &std::path::Path,
    (width, height): (u32, u32),
    extra: &[String],
) {
    let _ = std::fs::remove_file(png);
    let profile = tempfile::tempdir().expect("tempdir");
    let run = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("chromium finishes within a minute")
        .expect("start chromium");
    assert!(status.success(), "chromium failed on {url} ({extra:?})");
}

/// Width and height from a PNG's IHDR chunk.
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    (w, h)
}

/// Asserts that a command `what` succeeded; its stderr is the failure message.
pub fn assert_success(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A listener on an ephemeral loopback port (`127.0.0.1:0`).
pub async fn ephemeral_listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an ephemeral port")
}

/// A port nobody listens on now (for what must know its port before it starts: nginx, an
/// issuer naming its port).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The nginx binary, if installed (`.ci/test` installs Debian's `nginx` package).
pub fn nginx_binary() -> Option<std::path::PathBuf> {
    [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/bin/nginx",
        "/usr/bin/nginx",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.is_file())
}

/// A running nginx, stopped on drop.
pub struct Nginx {
    /// The nginx process.
    pub child: tokio::process::Child,
    prefix: tempfile::TempDir,
}

impl Nginx {
    /// What nginx logged (for failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts nginx in the foreground with its own prefix, configuration, pid and logs in a
/// temporary directory, listening on `port` with `site` included.
pub async fn start_nginx(
    bin: &std::path::Path,
    prefix: tempfile::TempDir,
    site: &str,
    port: u16,
) -> Nginx {
    let p = prefix.path();
    std::fs::write(p.join("wecom-oidc.conf"), site).expect("site");
    for d in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(p.join("tmp").join(d)).expect("temp dirs");
    }
    let main = format!(
        r#"
# A foreground, single-process nginx owned by the test (no system service, no root paths).
daemon off;
master_process off;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {p}/access.log;
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    include {p}/wecom-oidc.conf;
}}
"#,
        p = p.display()
    );
    std::fs::write(p.join("nginx.conf"), main).expect("nginx.conf");
    let child = tokio::process::Command::new(bin)
        .arg("-p")
        .arg(p)
        .arg("-c")
        .arg(p.join("nginx.conf"))
        .arg("-e")
        .arg(p.join("error.log"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start nginx");
    let mut nginx = Nginx { child, prefix };
    // Bounded wait until it accepts connections (or has exited).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return nginx;
        }
        if let Ok(Some(status)) = nginx.child.try_wait() {
            panic!("nginx exited with {status}:\n{}", nginx.error_log());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nginx did not start listening:\n{}",
            nginx.error_log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The real binary
// ---------------------------------------------------------------------------------------------

/// One running `wecom-oidc serve` process (the real binary), with its JSON log.
pub struct Instance {
    /// The process.
    pub child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its log so far (JSON lines), for failure messages.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
    /// Its configuration file.
    pub config: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Instance {
    /// Starts an instance with the configuration `make_config` writes for its folder and
    /// waits until it serves.
    pub async fn start(make_config: impl FnOnce(&std::path::Path) -> String) -> Instance {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("wecom-oidc.toml");
        std::fs::write(&config, make_config(dir.path())).expect("write config");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wecom-oidc"))
            .arg("--config")
            .arg(&config)
            .args(["--log-format", "json", "serve"])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start wecom-oidc");
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut base = None;
        while let Ok(Some(line)) = lines.next_line().await {
            log.lock().unwrap().push(line.clone());
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v["fields"]["message"] == "wecom-oidc is serving" {
                let listen = v["fields"]["listen"].as_str().expect("listen").to_owned();
                base = Some(format!("http://{listen}"));
                break;
            }
        }
        let Some(base) = base else {
            panic!(
                "the instance exited before serving:\n{}",
                log.lock().unwrap().join("\n")
            );
        };
        // Keep draining the log so the process never blocks on a full pipe.
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Instance {
            child,
            base,
            log,
            config,
            _dir: dir,
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}
