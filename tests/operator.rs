//! End-to-end tests of the operator experience (issue 6): health, readiness and metrics
//! endpoints, the `check` doctor against the WeCom simulator, snippets and client listings.
//! Each test starts its own demo (provider + simulator) on `127.0.0.1:0`.

use std::sync::Arc;

use reqwest::redirect::Policy;
use wecom_oidc::clock::SystemClock;
use wecom_oidc::demo::{self, DemoOptions, RunningDemo};

async fn start_demo(auto_login: Option<&str>) -> RunningDemo {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    demo::spawn(DemoOptions {
        listener,
        issuer: None,
        auto_login: auto_login.map(str::to_owned),
        extra_clients: Vec::new(),
        data_dir: None,
        clock: Arc::new(SystemClock),
    })
    .await
    .expect("demo starts")
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// Follows redirects by hand from `url`; returns the final response.
async fn walk(client: &reqwest::Client, base: &str, url: &str) -> reqwest::Response {
    let mut next = url.to_owned();
    for _ in 0..10 {
        let resp = client.get(&next).send().await.expect("request");
        if !resp.status().is_redirection() {
            return resp;
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .expect("redirect has a Location")
            .to_owned();
        next = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
    }
    panic!("more than 10 redirects from {url}");
}

#[tokio::test]
async fn healthz_answers_ok_without_touching_dependencies() {
    let d = start_demo(None).await;
    let resp = reqwest::get(format!("{}/healthz", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(
        d.simulator.gettoken_calls(),
        0,
        "liveness must not call WeCom"
    );
}

#[tokio::test]
async fn readyz_is_ready_when_store_keys_and_wecom_token_are_available() {
    let d = start_demo(None).await;
    let resp = reqwest::get(format!("{}/readyz", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(d.simulator.gettoken_calls(), 1);
    // A second probe is served from the token cache: readiness does not spend WeCom's quota.
    let resp = reqwest::get(format!("{}/readyz", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(d.simulator.gettoken_calls(), 1);
}

#[tokio::test]
async fn readyz_is_unavailable_when_wecom_refuses_the_token() {
    let d = start_demo(None).await;
    d.simulator.fail_next("/cgi-bin/gettoken", 60020, 1);
    let resp = reqwest::get(format!("{}/readyz", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "not ready");
    let failing: Vec<&serde_json::Value> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failing.len(), 1, "{body}");
    assert_eq!(failing[0]["name"], "connector:wecom");
    assert!(failing[0]["detail"].as_str().unwrap().contains("60020"));
    // Once WeCom accepts again, the service becomes ready without a restart.
    let resp = reqwest::get(format!("{}/readyz", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_logins_and_wecom_calls() {
    let d = start_demo(Some("zhangsan")).await;
    let b = browser();
    let page = walk(&b, &d.issuer, &format!("{}/demo/login", d.issuer)).await;
    assert_eq!(page.status(), 200, "the demo login completes");
    let resp = reqwest::get(format!("{}/metrics", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    assert!(
        text.contains(
            "wecom_oidc_http_requests_total{method=\"GET\",route=\"/callback/{connector}\",status=\"302\"} 1\n"
        ),
        "{text}"
    );
    assert!(text.contains(
        "wecom_oidc_http_requests_total{method=\"POST\",route=\"/token\",status=\"200\"} 1\n"
    ));
    assert!(text.contains("wecom_oidc_logins_total{outcome=\"success\"} 1\n"));
    assert!(text.contains(
        "wecom_oidc_wecom_api_calls_total{endpoint=\"/cgi-bin/gettoken\",errcode=\"0\"} 1\n"
    ));
    assert!(text.contains(
        "wecom_oidc_wecom_api_calls_total{endpoint=\"/cgi-bin/auth/getuserinfo\",errcode=\"0\"} 1\n"
    ));
    assert!(text.contains("wecom_oidc_wecom_token_cache_total{result=\"refresh\"} 1\n"));
    assert!(text.contains(
        "wecom_oidc_wecom_api_duration_seconds_count{endpoint=\"/cgi-bin/user/get\"} 1\n"
    ));
    // No concrete path or query (with its code) ever becomes a label.
    assert!(!text.contains('?'), "{text}");
    assert!(!text.contains("/callback/wecom"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// `wecom-oidc check` against the simulator.

use std::path::PathBuf;
use wecom_oidc::ops::doctor::{self, Level};
use wecom_oidc::simulator::{Simulator, SimulatorConfig};

/// A simulator served on its own port with connect info, so its `errmsg` carries
/// `from ip: 127.0.0.1` like WeCom's.
async fn start_simulator() -> (Simulator, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sim = Simulator::new(SimulatorConfig::demo(&base), Arc::new(SystemClock));
    let app = sim.router();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    (sim, base)
}

/// A config file for the simulator's corp with `corp_id` and `secret` (the demo corp's own
/// when `None`), in a fresh folder.
fn config_file(
    dir: &tempfile::TempDir,
    api_base: &str,
    corp_id: Option<&str>,
    secret: Option<&str>,
) -> PathBuf {
    let demo = SimulatorConfig::demo("http://unused");
    let text = format!(
        r#"
issuer = "https://sso.example.com:8443"
data_dir = "{data}"
keys_dir = "{keys}"
[wecom]
corp_id = "{corp}"
agent_id = {agent}
secret = "{secret}"
api_base = "{api_base}"
[[clients]]
id = "grafana"
secret = "grafana-secret-value"
redirect_uris = ["https://grafana.example.com/login/generic_oauth"]
"#,
        data = dir.path().join("data").display(),
        keys = dir.path().join("keys").display(),
        corp = corp_id.unwrap_or(&demo.corp_id),
        agent = demo.agent_id,
        secret = secret.unwrap_or(&demo.secret),
    );
    let path = dir.path().join("wecom-oidc.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn check_passes_a_correct_config_and_prints_trusted_domain_with_port() {
    let (_sim, base) = start_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, &base, None, None);
    let report = doctor::check_file(&path, Arc::new(SystemClock)).await;
    assert!(report.passed(), "{}", report.render());
    assert_eq!(
        report.trusted_domain.as_deref(),
        Some("sso.example.com:8443")
    );
    assert_eq!(
        report.callback_url.as_deref(),
        Some("https://sso.example.com:8443/callback/wecom")
    );
    let text = report.render();
    assert!(text.contains("可信域名"), "{text}");
    assert!(text.contains("PASS"), "{text}");
    // Missing keys are a warning, and the doctor does not create them.
    assert!(report
        .findings
        .iter()
        .any(|f| f.topic == "keys" && f.level == Level::Warn));
    assert!(!dir.path().join("keys").exists());
}

#[tokio::test]
async fn check_explains_a_wrong_secret_40001_and_never_prints_it() {
    let (_sim, base) = start_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, &base, None, Some("wrong-secret-value"));
    let report = doctor::check_file(&path, Arc::new(SystemClock)).await;
    assert!(!report.passed());
    let f = report.wecom_error(40001).expect("40001 reported");
    assert!(
        f.en.contains("Secret") && f.zh.contains("应用管理"),
        "{f:?}"
    );
    let text = report.render();
    assert!(!text.contains("wrong-secret-value"), "{text}");
    assert!(!text.contains("grafana-secret-value"), "{text}");
    assert!(text.contains("FAIL"));
}

#[tokio::test]
async fn check_explains_a_wrong_corp_id_40013() {
    let (_sim, base) = start_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, &base, Some("wwnotthiscorp000000"), None);
    let report = doctor::check_file(&path, Arc::new(SystemClock)).await;
    let f = report.wecom_error(40013).expect("40013 reported");
    assert!(f.zh.contains("企业ID") && f.en.contains("CorpID"), "{f:?}");
}

#[tokio::test]
async fn check_shows_the_ip_wecom_saw_for_an_untrusted_ip_60020() {
    let (sim, base) = start_simulator().await;
    sim.fail_next("/cgi-bin/gettoken", 60020, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, &base, None, None);
    let report = doctor::check_file(&path, Arc::new(SystemClock)).await;
    let f = report.wecom_error(60020).expect("60020 reported");
    assert!(f.en.contains("add 127.0.0.1"), "{f:?}");
    assert!(f.zh.contains("企业可信IP"), "{f:?}");
}

#[tokio::test]
async fn check_explains_each_other_gettoken_error_the_simulator_can_inject() {
    let (sim, base) = start_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, &base, None, None);
    for code in [40091, 50003, 45009, 48002] {
        sim.fail_next("/cgi-bin/gettoken", code, 1);
        let report = doctor::check_file(&path, Arc::new(SystemClock)).await;
        assert!(!report.passed(), "{code}");
        assert!(
            report.wecom_error(code).is_some(),
            "{code}: {}",
            report.render()
        );
    }
}

#[tokio::test]
async fn check_reports_an_unreachable_wecom_and_an_invalid_file() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind, read the port, drop the listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = config_file(&dir, &format!("http://127.0.0.1:{port}"), None, None);
    let report = doctor::check_file(&path, Arc::new(SystemClock)).await;
    assert!(!report.passed());
    assert!(report.render().contains("cannot reach WeCom"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "issuer = \"ftp://x\"\n").unwrap();
    let report = doctor::check_file(&bad, Arc::new(SystemClock)).await;
    assert!(!report.passed());
    assert!(report.render().contains("wecom"), "{}", report.render());
}

#[tokio::test]
async fn check_command_exit_code_says_pass_or_fail() {
    let (_sim, base) = start_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let good = config_file(&dir, &base, None, None);
    let bin = env!("CARGO_BIN_EXE_wecom-oidc");
    let run = |path: PathBuf| {
        tokio::process::Command::new(bin)
            .arg("--config")
            .arg(path)
            .arg("check")
            .output()
    };
    let out = run(good).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sso.example.com:8443"), "{stdout}");
    let dir2 = tempfile::tempdir().unwrap();
    let bad = config_file(&dir2, &base, None, Some("nope"));
    let out = run(bad).await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("40001"));
}
