//! End-to-end tests of the operator experience (issue 6): health, readiness and metrics
//! endpoints, the `check` doctor against the WeCom simulator, snippets and client listings.
//! Each test starts its own demo (provider + simulator) on `127.0.0.1:0`.

use std::path::Path;
use std::sync::Arc;

mod common;

use common::{browser, config_file, png_size, Walk};

use reqwest::redirect::Policy;
use wecom_oidc::clock::SystemClock;
use wecom_oidc::demo::{self, RunningDemo};

async fn start_demo(auto_login: Option<&str>) -> RunningDemo {
    common::start_demo(auto_login, Vec::new()).await
}

/// Follows redirects by hand from `url` to the page they lead to.
async fn walk(client: &reqwest::Client, url: &str) -> Walk {
    common::walk(client, url, "").await
}

/// Runs `wecom-oidc --config CONFIG ARGS…` to its end.
async fn cli(config: &Path, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_wecom-oidc"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .await
        .expect("the CLI runs")
}

/// [`cli`] that must succeed: its stdout.
async fn cli_ok(config: &Path, args: &[&str]) -> String {
    let out = cli(config, args).await;
    common::assert_success(&out, &format!("{args:?}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn healthz_answers_ok_without_touching_dependencies() {
    let d = start_demo(None).await;
    let (status, body) = common::get_json_answer(format!("{}/healthz", d.issuer)).await;
    assert_eq!(status, 200);
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
    let (status, body) = common::get_json_answer(format!("{}/readyz", d.issuer)).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(d.simulator.gettoken_calls(), 1);
    // A second probe is served from the token cache: readiness does not spend WeCom's quota.
    let resp = reqwest::get(format!("{}/readyz", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(d.simulator.gettoken_calls(), 1);
}

#[tokio::test]
async fn readyz_is_unavailable_when_wecom_refuses_the_token() {
    let clock = wecom_oidc::clock::ManualClock::new(1_800_000_000);
    let d = common::start_demo_with(None, Vec::new(), None, Arc::new(clock.clone())).await;
    d.simulator.fail_next("/cgi-bin/gettoken", 60020, 1);
    let (status, body) = common::get_json_answer(format!("{}/readyz", d.issuer)).await;
    assert_eq!(status, 503);
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
    // Probes right after a failure do not call WeCom again (wrong secrets get the IP banned,
    // wecom-api.md §1) ...
    let calls = d.simulator.gettoken_calls();
    let resp = reqwest::get(format!("{}/readyz", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(d.simulator.gettoken_calls(), calls);
    // ... and once the pause is over and WeCom accepts, it is ready without a restart.
    clock.advance(wecom_oidc::web::health::READINESS_RETRY_SECS);
    let resp = reqwest::get(format!("{}/readyz", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(d.simulator.gettoken_calls(), calls + 1);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_logins_and_wecom_calls() {
    let d = start_demo(Some("zhangsan")).await;
    let b = browser();
    let page = walk(&b, &format!("{}/demo/login", d.issuer)).await;
    assert_eq!(page.status, 200, "the demo login completes");
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
    // Arbitrary methods and paths cannot mint new series.
    for m in ["FOO", "BAR"] {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        reqwest::Client::new()
            .request(method, format!("{}/token", d.issuer))
            .send()
            .await
            .unwrap();
    }
    let text = common::get_text(format!("{}/metrics", d.issuer)).await;
    assert!(
        text.contains("method=\"OTHER\",route=\"/token\",status=\"405\"} 2\n"),
        "{text}"
    );
    assert!(!text.contains("FOO"));
    // No concrete path or query (with its code) ever becomes a label.
    assert!(!text.contains('?'), "{text}");
    assert!(!text.contains("/callback/wecom"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// `wecom-oidc check` against the simulator.

use wecom_oidc::commands::doctor::{self, Level};
use wecom_oidc::simulator::{Simulator, SimulatorConfig};

/// A simulator served on its own port with connect info, so its `errmsg` carries
/// `from ip: 127.0.0.1` like WeCom's.
async fn start_simulator() -> (Simulator, String) {
    start_simulator_with(|_| {}).await
}

/// Like [`start_simulator`], with `adjust` applied to the simulated corp first.
async fn start_simulator_with(adjust: impl FnOnce(&mut SimulatorConfig)) -> (Simulator, String) {
    common::serve_simulator("", adjust).await
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
async fn check_finds_a_callback_domain_that_is_not_the_apps_trusted_domain() {
    let (_sim, base) =
        start_simulator_with(|c| c.trusted_domains = vec!["other.example.com".into()]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, &base, None, None);
    let report = doctor::check_file(&path, Arc::new(SystemClock)).await;
    assert!(!report.passed());
    let f = report
        .findings
        .iter()
        .find(|f| f.topic == "wecom login page")
        .expect("login page finding");
    assert_eq!(f.level, Level::Fail, "{f:?}");
    assert!(
        f.en.contains("sso.example.com:8443") && f.zh.contains("可信域名"),
        "{f:?}"
    );
    // The right domain passes.
    let (_sim, base) =
        start_simulator_with(|c| c.trusted_domains = vec!["sso.example.com:8443".into()]).await;
    let path = config_file(&dir, &base, None, None);
    let report = doctor::check_file(&path, Arc::new(SystemClock)).await;
    assert!(report.passed(), "{}", report.render());
}

#[tokio::test]
async fn check_finds_a_wrong_agent_id_40056() {
    let (_sim, base) = start_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, &base, None, None);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("agent_id = 1000002", "agent_id = 1000099");
    std::fs::write(&path, text).unwrap();
    let report = doctor::check_file(&path, Arc::new(SystemClock)).await;
    let f = report.wecom_error(40056).expect("40056 reported");
    assert!(
        f.en.contains("1000099") && f.zh.contains("AgentId"),
        "{f:?}"
    );
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
    let port = common::free_port();
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
    let out = cli(&good, &["check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("sso.example.com:8443"), "{stdout}");
    let dir2 = tempfile::tempdir().unwrap();
    let bad = config_file(&dir2, &base, None, Some("nope"));
    let out = cli(&bad, &["check"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("40001"));
}

// ---------------------------------------------------------------------------------------------
// `wecom-oidc snippet` and `clients list`.

use wecom_oidc::commands::snippet::{self as snippets, SnippetApp};
use wecom_oidc::provider::Client;
use wecom_oidc::secret::Secret;

const ISSUER: &str = "https://sso.example.com";

fn rp_client(id: &str, uri: &str) -> Client {
    Client {
        id: id.into(),
        name: id.into(),
        secret: Some(Secret::new("rp-secret-never-printed")),
        redirect_uris: vec![uri.into()],
        settings: Default::default(),
    }
}

/// A provider that gives every member an address (`[wecom] email = "template"`), the guides'
/// step 0 for applications that need one.
fn with_email() -> snippets::ProviderFacts {
    snippets::ProviderFacts {
        email: wecom_oidc::connector::wecom::EmailPolicy::Template(
            "{userid_lower}@corp.example.com".into(),
        ),
        email_verified: false,
    }
}

fn snippet(app: SnippetApp, id: &str, uri: &str) -> String {
    let s = snippets::render_for(app, ISSUER, &rp_client(id, uri), &with_email());
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert!(!s.text.contains("rp-secret-never-printed"));
    s.text
}

/// A minimal INI reader (Grafana's format): `[section]`, `key = value`, `#`/`;` comments.
fn parse_ini(
    text: &str,
) -> std::collections::HashMap<String, std::collections::HashMap<String, String>> {
    let mut out: std::collections::HashMap<String, std::collections::HashMap<String, String>> =
        Default::default();
    let mut section = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {} is not key = value: {line}", n + 1));
        assert!(!section.is_empty(), "key outside a section: {line}");
        out.entry(section.clone())
            .or_default()
            .insert(k.trim().to_owned(), v.trim().to_owned());
    }
    out
}

#[test]
fn grafana_snippet_is_ini_with_generic_oauth_endpoints_pkce_and_groups_role_mapping() {
    let uri = "https://grafana.example.com/login/generic_oauth";
    let text = snippet(SnippetApp::Grafana, "grafana", uri);
    let ini = parse_ini(&text);
    let g = &ini["auth.generic_oauth"];
    assert_eq!(g["client_id"], "grafana");
    assert_eq!(g["auth_url"], format!("{ISSUER}/authorize"));
    assert_eq!(g["token_url"], format!("{ISSUER}/token"));
    assert_eq!(g["api_url"], format!("{ISSUER}/userinfo"));
    assert_eq!(g["use_pkce"], "true");
    assert_eq!(
        g["client_secret"],
        "$__file{/etc/grafana/wecom-oidc-client-secret}"
    );
    assert_eq!(g["groups_attribute_path"], "groups");
    assert_eq!(g["email_attribute_path"], "email");
    assert_eq!(g["scopes"], "openid profile email groups");
    assert_eq!(
        g["signout_redirect_url"],
        format!(
            "{ISSUER}/logout?client_id=grafana&post_logout_redirect_uri=\
             https%3A%2F%2Fgrafana.example.com%2Flogin"
        )
    );
    // root_url (and its sub-path) stays the operator's.
    assert!(!ini.contains_key("server"));
    // Without an e-mail source, Grafana's own JMESPath fallback gives every member one.
    let s = snippets::render(
        SnippetApp::Grafana,
        ISSUER,
        &rp_client("grafana", "https://grafana.example.com/login/generic_oauth"),
    );
    let g = &parse_ini(&s.text)["auth.generic_oauth"];
    assert!(g["email_attribute_path"].starts_with("email || join("));
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
}

/// Turns the Ruby hash/array literal of gitlab.rb into JSON: `key:` → `"key":`, `ENV["X"]` →
/// `"$X"`, `#` comments dropped. Panics on anything else, so odd Ruby fails the test.
fn ruby_literal_to_json(src: &str) -> serde_json::Value {
    let mut out = String::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            let start = i;
            i += 1;
            while chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            out.extend(&chars[start..=i]);
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while chars[i].is_ascii_alphanumeric() || chars[i] == '_' {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if chars[i] == ':' {
                out.push_str(&format!("\"{word}\""));
            } else if word == "ENV" && chars[i] == '[' {
                let end = i + chars[i..].iter().position(|c| *c == ']').unwrap();
                let name: String = chars[i + 2..end - 1].iter().collect();
                out.push_str(&format!("\"${name}\""));
                i = end + 1;
            } else if word == "File" {
                // `File.read("PATH").strip` → "@PATH"
                let open = i + chars[i..].iter().position(|c| *c == '"').unwrap();
                let close = open + 1 + chars[open + 1..].iter().position(|c| *c == '"').unwrap();
                let path: String = chars[open + 1..close].iter().collect();
                let rest: String = chars[close..close + 8].iter().collect();
                assert_eq!(rest, "\").strip", "File.read(...).strip");
                out.push_str(&format!("\"@{path}\""));
                i = close + 8;
            } else if word == "true" || word == "false" {
                out.push_str(&word);
            } else {
                panic!("unexpected Ruby word {word}");
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    // Ruby allows trailing commas; JSON does not.
    let out = out.replace(",\n]", "\n]").replace(",\n}", "\n}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn gitlab_snippet_is_a_ruby_omniauth_provider_with_discovery_and_the_client() {
    let uri = "https://gitlab.example.com/users/auth/openid_connect/callback";
    let text = snippet(SnippetApp::Gitlab, "gitlab", uri);
    let rhs = text
        .split("gitlab_rails['omniauth_providers'] =")
        .nth(1)
        .expect("providers assignment");
    let providers = ruby_literal_to_json(rhs);
    let p = &providers[0];
    assert_eq!(p["name"], "openid_connect");
    assert_eq!(p["args"]["issuer"], ISSUER);
    assert_eq!(p["args"]["discovery"], true);
    assert_eq!(p["args"]["pkce"], true);
    assert_eq!(p["args"]["response_type"], "code");
    assert_eq!(p["args"]["client_options"]["identifier"], "gitlab");
    // A root-only file: gitlab-ctl reconfigure under sudo has no environment variable.
    assert_eq!(
        p["args"]["client_options"]["secret"],
        "@/etc/gitlab/wecom-oidc-client-secret"
    );
    assert_eq!(
        p["args"]["scope"],
        serde_json::json!(["openid", "profile", "email", "groups"])
    );
    assert_eq!(
        p["args"]["client_options"]["redirect_uri"],
        "https://gitlab.example.com/users/auth/openid_connect/callback"
    );
    assert!(text.contains("gitlab_rails['omniauth_allow_single_sign_on'] = ['openid_connect']"));
}

#[test]
fn oauth2_proxy_snippet_is_toml_with_oidc_issuer_and_pkce() {
    let uri = "https://app.example.com/oauth2/callback";
    let text = snippet(SnippetApp::Oauth2Proxy, "proxy", uri);
    let t: toml::Table = toml::from_str(&text).expect("valid TOML");
    assert_eq!(t["provider"].as_str(), Some("oidc"));
    assert_eq!(t["oidc_issuer_url"].as_str(), Some(ISSUER));
    assert_eq!(t["client_id"].as_str(), Some("proxy"));
    assert_eq!(
        t["redirect_url"].as_str(),
        Some("https://app.example.com/oauth2/callback")
    );
    assert_eq!(t["code_challenge_method"].as_str(), Some("S256"));
    assert_eq!(
        t["insecure_oidc_allow_unverified_email"].as_bool(),
        Some(true)
    );
    assert!(
        !t.contains_key("client_secret"),
        "secret comes from the environment"
    );
}

#[test]
fn mod_auth_openidc_snippet_is_apache_directives_with_metadata_url() {
    let uri = "https://www.example.com/protected/redirect_uri";
    let text = snippet(SnippetApp::ModAuthOpenidc, "apache", uri);
    let known = [
        "OIDCProviderMetadataURL",
        "OIDCClientID",
        "OIDCClientSecret",
        "OIDCRedirectURI",
        "OIDCCryptoPassphrase",
        "OIDCScope",
        "OIDCPKCEMethod",
        "OIDCRemoteUserClaim",
        "AuthType",
        "Require",
    ];
    let mut depth = 0;
    let mut directives = std::collections::HashMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("<Location ") && line.ends_with('>') {
            depth += 1;
            continue;
        }
        if line == "</Location>" {
            depth -= 1;
            continue;
        }
        let (name, args) = line.split_once(' ').expect("directive with arguments");
        assert!(known.contains(&name), "unknown directive {name}");
        directives.insert(name, args);
    }
    assert_eq!(depth, 0, "balanced <Location>");
    assert_eq!(
        directives["OIDCProviderMetadataURL"],
        format!("{ISSUER}/.well-known/openid-configuration")
    );
    assert_eq!(directives["OIDCClientID"], "apache");
    assert_eq!(
        directives["OIDCRedirectURI"],
        "https://www.example.com/protected/redirect_uri"
    );
    assert_eq!(directives["AuthType"], "openid-connect");
    assert!(text.contains("<Location \"/protected\">"));
}

#[test]
fn jupyterhub_snippet_is_python_assignments_for_generic_oauthenticator() {
    let uri = "https://hub.example.com/hub/oauth_callback";
    let text = snippet(SnippetApp::Jupyterhub, "hub", uri);
    let mut values = std::collections::HashMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line == "import os" {
            continue;
        }
        let (lhs, rhs) = line.split_once(" = ").expect("an assignment");
        assert!(
            lhs.starts_with("c.") && lhs.split('.').count() == 3,
            "not a traitlets assignment: {line}"
        );
        let rhs = rhs.replace("True", "true");
        let rhs = match rhs.strip_prefix("open(") {
            Some(path) => format!("[{}]", path.split(')').next().unwrap()),
            None => rhs,
        };
        let v: serde_json::Value =
            serde_json::from_str(&rhs).unwrap_or_else(|e| panic!("{e}: {line}"));
        values.insert(lhs.to_owned(), v);
    }
    let g = |k: &str| values[&format!("c.GenericOAuthenticator.{k}")].clone();
    assert_eq!(values["c.JupyterHub.authenticator_class"], "generic-oauth");
    assert_eq!(g("client_id"), "hub");
    assert_eq!(g("authorize_url"), format!("{ISSUER}/authorize"));
    assert_eq!(g("token_url"), format!("{ISSUER}/token"));
    assert_eq!(g("userdata_url"), format!("{ISSUER}/userinfo"));
    assert_eq!(
        g("oauth_callback_url"),
        "https://hub.example.com/hub/oauth_callback"
    );
    assert_eq!(
        g("client_secret"),
        serde_json::json!(["/etc/jupyterhub/wecom-oidc-client-secret"])
    );
    assert_eq!(
        g("scope"),
        serde_json::json!(["openid", "profile", "groups"])
    );
    assert_eq!(g("username_claim"), "preferred_username");
}

#[test]
fn synapse_snippet_is_yaml_oidc_provider_with_issuer_and_secret_file() {
    let uri = "https://matrix.example.com/_synapse/client/oidc/callback";
    let text = snippet(SnippetApp::Synapse, "matrix", uri);
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).expect("valid YAML");
    let p = &docs[0]["oidc_providers"][0];
    assert_eq!(p["idp_id"].as_str(), Some("wecom"));
    assert_eq!(p["issuer"].as_str(), Some(ISSUER));
    assert_eq!(p["client_id"].as_str(), Some("matrix"));
    assert!(p["client_secret_path"].as_str().is_some());
    assert!(p["client_secret"].is_badvalue());
    assert_eq!(p["pkce_method"].as_str(), Some("always"));
    assert_eq!(
        p["user_mapping_provider"]["config"]["localpart_template"].as_str(),
        Some("{{ user.preferred_username }}")
    );
    assert_eq!(p["scopes"][0].as_str(), Some("openid"));
    assert_eq!(p["backchannel_logout_enabled"].as_bool(), Some(true));
}

#[test]
fn snippet_warns_when_the_client_lacks_the_apps_callback_path() {
    let s = snippets::render(
        SnippetApp::Grafana,
        ISSUER,
        &rp_client("g", "https://grafana.example.com/wrong"),
    );
    assert!(
        s.warnings[0].contains("/login/generic_oauth"),
        "{:?}",
        s.warnings
    );
}

#[tokio::test]
async fn snippet_and_clients_list_commands_read_the_config_and_hide_secrets() {
    let (_sim, base) = start_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, &base, None, None);
    let stdout = cli_ok(&path, &["snippet", "grafana", "--client", "grafana"]).await;
    assert!(
        stdout.contains("auth_url = https://sso.example.com:8443/authorize"),
        "{stdout}"
    );
    assert!(!stdout.contains("grafana-secret-value"));

    let out = cli(&path, &["snippet", "gitlab", "--client", "nobody"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("registered: grafana"));

    let stdout = cli_ok(&path, &["clients", "list"]).await;
    assert!(
        stdout.contains("https://grafana.example.com/login/generic_oauth"),
        "{stdout}"
    );
    assert!(!stdout.contains("grafana-secret-value"));
}

// ---------------------------------------------------------------------------------------------
// The start page.

#[tokio::test]
async fn start_page_shows_issuer_links_wecom_app_and_clients_but_no_secret() {
    let mut extra = rp_client("grafana", "https://grafana.example.com/login/generic_oauth");
    extra.name = "Grafana <ops>".into();
    let d = common::start_demo(None, vec![extra]).await;
    // The start page at `query`, asked for in `languages` (`Accept-Language`).
    let start_page = async |query: &str, languages: &str| {
        let resp = reqwest::Client::new()
            .get(format!("{}/start{query}", d.issuer))
            .header("accept-language", languages)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    };
    let html = start_page("", "en-US,en;q=0.9").await;
    assert!(html.contains("name=\"viewport\""), "phone-readable");
    assert!(html.contains(&format!("{}/.well-known/openid-configuration", d.issuer)));
    assert!(html.contains(&format!("{}/jwks", d.issuer)));
    assert!(html.contains(&format!("{}/callback/wecom", d.issuer)));
    assert!(html.contains("ww7f3c2a1b9d8e6f50"), "the WeCom corp in use");
    assert!(html.contains("https://grafana.example.com/login/generic_oauth"));
    assert!(
        html.contains("Grafana &lt;ops&gt;") || html.contains("Grafana &#60;ops&#62;"),
        "escaped"
    );
    assert!(html.contains("jwks_uri"), "discovery viewer");
    assert!(html.contains("kty"), "JWKS viewer");
    assert!(html.contains("Registered clients"));
    assert!(!html.contains("rp-secret-never-printed"));
    assert!(!html.contains("demo-wecom-app-secret"));

    // Chinese by Accept-Language, and ui_locales wins over it (OIDC Core §3.1.2.1).
    let zh = start_page("", "zh-CN,zh;q=0.9").await;
    assert!(zh.contains("已注册应用") && zh.contains("lang=\"zh-CN\""));
    let en = start_page("?ui_locales=en", "zh-CN").await;
    assert!(en.contains("Registered clients"));

    // The demo keeps its own page at `/`.
    let root = common::get_text(format!("{}/", d.issuer)).await;
    assert!(root.contains("/demo/login"));
}

// ---------------------------------------------------------------------------------------------
// Structured logs.

/// Runs the demo with `--log-format format`, logs in once, opens an error page, stops it as
/// systemd does, and returns its stderr and the error page's request id.
async fn demo_logs(format: &str) -> (String, String) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let bin = env!("CARGO_BIN_EXE_wecom-oidc");
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(bin)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--auto-login",
            "zhangsan",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--log-format", format])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut issuer = None;
    while let Some(line) = stdout.next_line().await.unwrap() {
        if let Some(rest) = line.trim().strip_prefix("Issuer:") {
            issuer = Some(rest.trim().to_owned());
            break;
        }
    }
    let issuer = issuer.expect("the demo prints its issuer");

    let b = browser();
    let page = walk(&b, &format!("{issuer}/demo/login")).await;
    assert_eq!(page.status, 200);
    // An error page (unknown client): its request id must be in the log.
    let err = b
        .get(format!(
            "{issuer}/authorize?client_id=nobody&response_type=code&scope=openid"
        ))
        .send()
        .await
        .unwrap();
    assert!(err.status().is_client_error());
    let rid = err.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = err.text().await.unwrap();
    assert!(body.contains(&rid), "the page shows the request id");

    // A graceful stop (SIGTERM), as systemd does: the buffered access lines are written on the
    // way out (a kill -9 may lose the last ones, docs/deploying.md). The browser's idle
    // connections go first, so the server has none to wait for.
    drop(b);
    let pid = child.id().expect("the demo runs");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    if tokio::time::timeout(std::time::Duration::from_secs(15), child.wait())
        .await
        .is_err()
    {
        child.kill().await.unwrap();
    }
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .await
        .unwrap();
    // No query string, code, or secret reaches the log, in any format.
    assert!(!logs.contains("code="), "{logs}");
    assert!(!logs.contains("corpsecret"), "{logs}");
    assert!(!logs.contains("demo-wecom-app-secret"), "{logs}");
    assert!(!logs.contains("client_secret"), "{logs}");
    (logs, rid)
}

#[tokio::test]
async fn json_logs_have_one_line_per_request_with_request_id_and_no_codes_or_queries() {
    let (logs, rid) = demo_logs("json").await;
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let request_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    let callback = request_lines
        .iter()
        .find(|l| l["span"]["path"] == "/callback/wecom")
        .expect("a line for the WeCom callback");
    assert_eq!(callback["fields"]["status"], 302);
    assert!(callback["span"]["request_id"].as_str().unwrap().len() >= 16);
    assert!(request_lines.iter().any(|l| l["span"]["path"] == "/token"));
    // The error page's id is on its request line and on the detailed warning.
    assert!(request_lines
        .iter()
        .any(|l| l["span"]["request_id"] == rid.as_str() && l["fields"]["status"] == 400));
    assert!(lines
        .iter()
        .any(|l| l["fields"]["message"] == "showing error page"
            && l["span"]["request_id"] == rid.as_str()));
}

/// The plain-text format of a log file or pipe: each request's context written without a
/// `tracing` span, its access line straight into the log buffer (`logging::context`).
#[tokio::test]
async fn plain_text_logs_carry_each_requests_context_on_its_access_line_and_its_warnings() {
    let (logs, rid) = demo_logs("text").await;
    let context = format!("request{{request_id=\"{rid}\" method=GET path=/authorize}}: ");
    let with_context: Vec<&str> = logs.lines().filter(|l| l.contains(&context)).collect();
    assert!(
        with_context
            .iter()
            .any(|l| l.contains("  INFO request{request_id=\"",)
                && l.contains(": wecom_oidc::web::request_log: request status=400 latency_ms=")),
        "{logs}"
    );
    assert!(
        with_context
            .iter()
            .any(|l| l.contains("showing error page")),
        "the warning carries the request's context: {logs}"
    );
    let callback = logs
        .lines()
        .find(|l| l.contains(" method=GET path=/callback/wecom}: wecom_oidc::web::request_log: request status=302 "))
        .unwrap_or_else(|| panic!("a line for the WeCom callback: {logs}"));
    assert!(
        callback.contains("  INFO request{request_id=\""),
        "{callback}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains(" method=POST path=/token}: ")),
        "{logs}"
    );
    // Nothing at start or shutdown is an error (sled once logged one for a harmless clone of
    // its configuration).
    assert!(!logs.contains(" ERROR "), "{logs}");
}

// ---------------------------------------------------------------------------------------------
// Login event log.

#[tokio::test]
async fn login_events_record_who_which_client_where_outcome_and_reason() {
    let d = start_demo(Some("zhangsan")).await;
    let b = browser();
    let page = walk(&b, &format!("{}/demo/login", d.issuer)).await;
    assert_eq!(page.status, 200);
    let events = d.store.list_login_events(10).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.outcome, "success");
    assert_eq!(e.user_id.as_deref(), Some("zhangsan"));
    assert_eq!(e.client_id.as_deref(), Some("demo"));
    assert_eq!(e.address.as_deref(), Some("127.0.0.1"));
    assert!(e.request_id.is_some());
    assert!(e.expires_at - e.at == 30 * 86_400, "default retention");

    // A member WeCom knows but who is disabled is refused, and the reason is kept.
    assert!(d.simulator.set_member_status("zhangsan", 2));
    let b = browser();
    let _ = walk(&b, &format!("{}/demo/login", d.issuer)).await;
    let events = d.store.list_login_events(10).await.unwrap();
    assert_eq!(events.len(), 2);
    let refused = &events[0];
    assert_eq!(refused.outcome, "access_denied", "{refused:?}");
    assert_eq!(refused.client_id.as_deref(), Some("demo"));
    assert!(
        refused.reason.as_deref().unwrap_or("").contains("disabled"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn events_command_lists_the_stores_login_events() {
    let (_sim, base) = start_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, &base, None, None);
    {
        use wecom_oidc::storage::{LoginEvent, SledStore, Store};
        let store = SledStore::open(&dir.path().join("data")).unwrap();
        for (at, user) in [(1_700_000_000, "lisi"), (1_700_000_100, "zhangsan")] {
            store
                .create_login_event(&LoginEvent {
                    at,
                    user_id: Some(user.into()),
                    client_id: Some("grafana".into()),
                    address: Some("198.51.100.4".into()),
                    outcome: "success".into(),
                    grant: None,
                    reason: None,
                    request_id: None,
                    expires_at: at + 86_400,
                })
                .await
                .unwrap();
        }
        store.flush().await.unwrap();
    }
    let stdout = cli_ok(&path, &["events", "--limit", "1"]).await;
    assert!(stdout.contains("2023-11-14 22:15:00  success"), "{stdout}");
    assert!(
        stdout.contains("zhangsan") && !stdout.contains("lisi"),
        "{stdout}"
    );
    let lines: Vec<serde_json::Value> = cli_ok(&path, &["events", "--json"])
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["user_id"], "zhangsan");
}

// ---------------------------------------------------------------------------------------------
// Deployment examples.

fn example(path: &str) -> String {
    std::fs::read_to_string(format!("{}/examples/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("examples/{path}: {e}"))
}

#[test]
fn example_config_is_valid_and_keeps_secrets_in_the_environment() {
    let text = example("wecom-oidc.example.toml");
    let cfg = wecom_oidc::config::parse(&text, "examples/wecom-oidc.example.toml", &|name| {
        matches!(name, "WECOM_SECRET" | "GRAFANA_CLIENT_SECRET").then(|| "from-env".to_owned())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.login_event_retention, 90 * 86_400);
    assert!(!text.contains("secret ="), "secrets come from secret_env");
}

#[test]
fn systemd_unit_runs_check_then_serve_with_arguments_the_cli_accepts() {
    use clap::Parser;
    let unit = example("systemd/wecom-oidc.service");
    let ini = parse_ini(&unit);
    let service = &ini["Service"];
    for key in ["ExecStartPre", "ExecStart", "ExecReload"] {
        let args: Vec<&str> = service[key].split_whitespace().collect();
        assert_eq!(args[0], "/usr/local/bin/wecom-oidc");
        let cli =
            wecom_oidc::cli::Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(
            cli.config.as_deref(),
            Some(std::path::Path::new("/etc/wecom-oidc/wecom-oidc.toml"))
        );
    }
    assert!(service["ExecStart"].ends_with(" serve"));
    assert!(service["ExecStartPre"].ends_with(" check"));
    assert!(service["ExecReload"].ends_with(" admin reload"));
    assert_eq!(service["KillSignal"], "SIGTERM");
    assert_eq!(service["StateDirectory"], "wecom-oidc");
    let config = example("wecom-oidc.example.toml");
    assert!(
        config.contains("data_dir = \"/var/lib/wecom-oidc/data\""),
        "StateDirectory holds the store"
    );
}

#[test]
fn containerfile_entrypoint_and_cmd_are_accepted_by_the_cli() {
    use clap::Parser;
    let file = example("container/Containerfile");
    let line = |prefix: &str| -> String {
        file.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}"))[prefix.len()..]
            .trim()
            .to_owned()
    };
    let entry: Vec<String> = serde_json::from_str(&line("ENTRYPOINT")).unwrap();
    let cmd: Vec<String> = serde_json::from_str(&line("CMD")).unwrap();
    let argv: Vec<String> = entry.into_iter().chain(cmd).collect();
    let cli = wecom_oidc::cli::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(cli.command, Some(wecom_oidc::cli::Command::Serve)));
    assert_eq!(line("STOPSIGNAL"), "SIGTERM");
    assert_eq!(line("VOLUME"), "[\"/var/lib/wecom-oidc\"]");
}

// ---------------------------------------------------------------------------------------------
// Screenshots of every page we render, on a phone-sized window, in both languages.

#[tokio::test]
async fn every_page_renders_on_a_phone_in_chinese_and_english_headless_chromium() {
    if !common::chromium_for(
        "every_page_renders_on_a_phone_in_chinese_and_english_headless_chromium",
    ) {
        return;
    }
    let d = start_demo(None).await;
    let sim = format!("{}/wecom-sim", d.issuer);
    let callback = format!("{}/callback/wecom", d.issuer);
    let cb = url::form_urlencoded::byte_serialize(callback.as_bytes()).collect::<String>();
    let pages: Vec<(&str, String)> = vec![
        ("start", format!("{}/start", d.issuer)),
        ("demo-index", format!("{}/", d.issuer)),
        (
            "error",
            format!("{}/authorize?client_id=nobody&response_type=code&scope=openid", d.issuer),
        ),
        (
            "wecom-login",
            format!(
                "{sim}/wwlogin/sso/login?login_type=CorpApp&appid=ww7f3c2a1b9d8e6f50&agentid=1000002&redirect_uri={cb}&state=s1"
            ),
        ),
        // A phone outside WeCom gets the hand-off page (taken with an iPhone's User-Agent).
        (
            "handoff",
            format!(
                "{}/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid&state=s1",
                d.issuer,
                demo::DEMO_CLIENT_ID,
                url::form_urlencoded::byte_serialize(format!("{}/demo/callback", d.issuer).as_bytes())
                    .collect::<String>()
            ),
        ),
    ];
    let pages: Vec<(&str, String, Option<&str>)> = pages
        .into_iter()
        .map(|(name, url)| {
            let ua = (name == "handoff").then_some(IPHONE);
            (name, url, ua)
        })
        .collect();
    screenshots(&pages).await;
}

/// An iPhone's Safari.
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

/// Takes a phone-sized screenshot of each `(name, url, user agent)` in Chinese and English with
/// headless Chromium, and checks that each is phone-sized and not blank.
async fn screenshots(pages: &[(&str, String, Option<&str>)]) {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, url, user_agent) in pages {
        for lang in ["zh-CN", "en-US"] {
            let file = dir.join(format!("{name}-{lang}.png"));
            let mut extra = vec![format!("--lang={lang}"), format!("--accept-lang={lang}")];
            extra.extend(user_agent.map(|ua| format!("--user-agent={ua}")));
            common::chromium_screenshot(url, &file, (390, 844), &extra).await;
            let bytes = std::fs::read(&file).unwrap();
            assert_eq!(
                png_size(&bytes),
                (390, 844),
                "{name} {lang}: phone-sized shot"
            );
            assert!(bytes.len() > 4_000, "{name} {lang}: the page is not blank");
        }
    }
    eprintln!("screenshots in {}", dir.display());
}

/// The device verification pages (RFC 8628 §3.3) on a phone: the code entry, the code with its
/// QR code in an ordinary browser, and — inside WeCom, signed in silently by the simulator's
/// auto-login — the one-tap confirmation.
#[tokio::test]
async fn device_pages_render_on_a_phone_in_chinese_and_english_headless_chromium() {
    if !common::chromium_for(
        "device_pages_render_on_a_phone_in_chinese_and_english_headless_chromium",
    ) {
        return;
    }
    let mut settings = wecom_oidc::provider::client::ClientSettings::default();
    settings.grant_types = Some(vec![wecom_oidc::provider::GrantType::DeviceCode]);
    let device = common::client(
        "kubectl",
        Some("kubectl-secret"),
        "https://unused.example/cb",
        settings,
    );
    let d = common::start_demo(Some("zhangsan"), vec![device]).await;
    let (status, _, auth) = common::post_form(
        &format!("{}/device_authorization", d.issuer),
        &[("scope", "openid profile groups")],
        Some(("kubectl", "kubectl-secret")),
    )
    .await;
    assert_eq!(status, 200, "{auth}");
    let complete = auth["verification_uri_complete"]
        .as_str()
        .unwrap()
        .to_string();
    const WECOM: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0 wxwork/4.1.20 Language/zh";
    screenshots(&[
        ("device-enter", format!("{}/device", d.issuer), Some(IPHONE)),
        ("device-code", complete.clone(), Some(IPHONE)),
        ("device-confirm", complete, Some(WECOM)),
    ])
    .await;
}

// ---------------------------------------------------------------------------------------------
// `serve` mode end to end: start page at `/`, probes, graceful shutdown on SIGTERM.

#[tokio::test]
async fn serve_mode_shows_the_start_page_at_root_and_stops_cleanly_on_sigterm() {
    use tokio::io::AsyncBufReadExt;
    let (_sim, base) = start_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, &base, None, None);
    // An ephemeral port for the server: bound, read, released (the server binds it next).
    let port = common::free_port();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "data_dir =",
        &format!("listen = \"127.0.0.1:{port}\"\ndata_dir ="),
    );
    std::fs::write(&path, text).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wecom-oidc"))
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    // The "serving" line is logged once the listener is bound.
    loop {
        let line = stderr
            .next_line()
            .await
            .unwrap()
            .expect("server logs before exiting");
        if line.contains("wecom-oidc is serving") {
            break;
        }
    }
    let origin = format!("http://127.0.0.1:{port}");
    let b = browser();
    let root = b.get(format!("{origin}/")).send().await.unwrap();
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()["location"], "/start");
    let start = b.get(format!("{origin}/start")).send().await.unwrap();
    assert_eq!(start.status(), 200);
    let html = start.text().await.unwrap();
    assert!(html.contains("https://grafana.example.com/login/generic_oauth"));
    assert!(!html.contains("grafana-secret-value"));
    let ready = b.get(format!("{origin}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    let pid = child.id().expect("running").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let mut rest = Vec::new();
    while let Some(line) = stderr.next_line().await.unwrap() {
        rest.push(line);
    }
    let status = child.wait().await.unwrap();
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
}

// ---------------------------------------------------------------------------------------------
// Together with sessions (issue 4B) and several WeCom apps (issue 3).

/// A client registered for these tests: confidential, so no PKCE is needed to start a login.
fn confidential_rp() -> wecom_oidc::provider::Client {
    // The redirect URI is never contacted: the tests stop at the redirect's `Location`.
    common::client(
        "rp",
        Some("rp-secret-for-tests"),
        "http://127.0.0.1:9/cb",
        Default::default(),
    )
}

/// `/authorize` for [`confidential_rp`] with `extra` appended to the query.
fn rp_authorize(issuer: &str, extra: &str) -> String {
    format!(
        "{issuer}/authorize?client_id=rp&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb\
         &response_type=code&scope=openid&state=s{extra}"
    )
}

/// OIDC Core §3.1.2.1: `ui_locales` names the languages the person prefers for the pages we
/// show. The page for a WeCom deployment fault, shown after the WeCom round trip, follows the
/// authorization request's `ui_locales` over the browser's `Accept-Language`.
#[tokio::test]
async fn upstream_fault_page_follows_the_ui_locales_of_the_authorization_request() {
    let d = common::start_demo(Some("zhangsan"), vec![confidential_rp()]).await;
    for (ui_locales, accept_language, lang) in [
        ("en", "zh-CN,zh;q=0.9", "en"),
        ("zh-CN", "en-US,en;q=0.9", "zh-CN"),
    ] {
        // 60020: WeCom does not trust the server's IP, a fault the person cannot fix.
        d.simulator.fail_next("/cgi-bin/auth/getuserinfo", 60020, 1);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT_LANGUAGE,
            reqwest::header::HeaderValue::from_static(accept_language),
        );
        let b = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .default_headers(headers)
            .build()
            .expect("client");
        let url = rp_authorize(&d.issuer, &format!("&ui_locales={ui_locales}"));
        let page = walk(&b, &url).await;
        assert_eq!(page.status, 502, "the fault page, not a redirect");
        let body = page.body.expect("body");
        assert!(
            body.contains(&format!("<html lang=\"{lang}\">")),
            "ui_locales={ui_locales}: {body}"
        );
    }
}

/// With several WeCom apps (`more_wecom_apps`), a login through any of them is counted in
/// `/metrics`, written to the login event log with who logged in, every app is checked by
/// `/readyz` and shown on the start page.
#[tokio::test]
async fn every_wecom_app_is_counted_logged_and_checked_for_readiness() {
    let served = common::serve_branch_app(confidential_rp(), "lisi").await;
    let (issuer, store) = (served.issuer.clone(), served.store.clone());

    let w = common::walk(
        &browser(),
        &rp_authorize(&issuer, ""),
        "http://127.0.0.1:9/cb",
    )
    .await;
    w.redirect_query();
    let location = w.end;
    let callbacks: Vec<&str> = w
        .visited
        .iter()
        .filter_map(|u| u.strip_prefix(&format!("{issuer}/callback/")))
        .map(|rest| rest.split('?').next().unwrap_or_default())
        .collect();
    assert_eq!(
        callbacks,
        ["branch"],
        "the login went through the branch app"
    );
    assert!(location.contains("code="), "{location}");

    let events = store.list_login_events(10).await.expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].outcome, "success");
    assert_eq!(events[0].user_id.as_deref(), Some("lisi"), "{events:?}");
    assert_eq!(events[0].client_id.as_deref(), Some("rp"));

    let metrics = common::get_text(format!("{issuer}/metrics")).await;
    assert!(
        metrics.contains("wecom_oidc_logins_total{outcome=\"success\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "wecom_oidc_wecom_api_calls_total{endpoint=\"/cgi-bin/auth/getuserinfo\",errcode=\"0\"} 1"
        ),
        "the branch app's WeCom calls are counted: {metrics}"
    );

    let ready = common::get_json(format!("{issuer}/readyz")).await;
    let names: Vec<&str> = ready["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(names.contains(&"connector:wecom"), "{ready}");
    assert!(names.contains(&"connector:branch"), "{ready}");
    assert_eq!(ready["status"], "ready", "{ready}");

    // The start page lists each app's callback URL for the WeCom admin console.
    let start = common::get_text(format!("{issuer}/start")).await;
    for id in ["wecom", "branch"] {
        assert!(
            start.contains(&format!("{issuer}/callback/{id}")),
            "{id}: {start}"
        );
    }
}

/// With several WeCom apps (`[[wecom]]`), `check` asks WeCom about each one: a wrong secret in
/// the second app fails the check under that app's name, and the callback URL names the first.
#[tokio::test]
async fn check_tests_every_wecom_app_of_a_wecom_list() {
    let (sim, base) = start_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let single = std::fs::read_to_string(config_file(&dir, &base, None, None)).unwrap();
    let demo = SimulatorConfig::demo("http://unused");
    // A second app of the same corp (one corp's apps each have their own AgentId and secret).
    const BRANCH_AGENT: i64 = 1_000_005;
    assert!(sim.add_app(
        &demo.corp_id,
        wecom_oidc::simulator::AppSpec {
            agent_id: BRANCH_AGENT,
            secret: "branch-app-secret".into(),
            visible_range: Default::default(),
            trusted_domains: Vec::new(),
            legacy_app: false,
        },
    ));
    let app = |name: &str, agent: i64, secret: &str| {
        format!(
            "[[wecom]]\nname = \"{name}\"\ncorp_id = \"{}\"\nagent_id = {agent}\nsecret = \"{secret}\"\n\
             api_base = \"{base}\"\noauth_base = \"{base}\"\nsso_base = \"{base}\"\n",
            demo.corp_id
        )
    };
    let (head, tail) = single.split_once("[wecom]").unwrap();
    let (_, clients) = tail.split_once("[[clients]]").unwrap();
    let text = format!(
        "{head}{}{}[[clients]]{clients}",
        app("hq", demo.agent_id, &demo.secret),
        app("branch", BRANCH_AGENT, "wrong-secret-value")
    );
    let path = dir.path().join("several.toml");
    std::fs::write(&path, text).unwrap();
    let report = doctor::check_file(&path, Arc::new(SystemClock)).await;
    assert!(!report.passed(), "{}", report.render());
    let finding = |topic: &str| {
        report
            .findings
            .iter()
            .find(|f| f.topic == topic)
            .unwrap_or_else(|| panic!("no {topic} finding in {}", report.render()))
    };
    assert_eq!(finding("wecom (hq)").level, Level::Pass);
    assert_eq!(finding("wecom (branch)").level, Level::Fail);
    assert_eq!(finding("wecom (branch)").wecom_errcode, Some(40001));
    assert_eq!(finding("wecom login page (branch)").level, Level::Pass);
    assert_eq!(
        report.callback_url.as_deref(),
        Some("https://sso.example.com:8443/callback/hq")
    );
}

/// A login answered with a form_post page (response_mode=form_post, OAuth 2.0 Form Post
/// Response Mode §2) has no redirect to read: the event log and `/metrics` still record the
/// client and the OAuth error the page posts.
#[tokio::test]
async fn form_post_logins_are_logged_and_counted_with_their_client_and_error() {
    let d = common::start_demo(Some("zhangsan"), vec![confidential_rp()]).await;
    let url = rp_authorize(&d.issuer, "&response_mode=form_post");
    let page = walk(&browser(), &url).await;
    assert_eq!(page.status, 200, "the form_post page");
    // A disabled member is refused: the page posts error=access_denied.
    assert!(d.simulator.set_member_status("zhangsan", 2));
    let page = walk(&browser(), &url).await;
    assert_eq!(page.status, 200, "the form_post page");
    assert!(page.body.expect("body").contains("access_denied"));

    let events = d.store.list_login_events(10).await.expect("events");
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].outcome, "access_denied", "{events:?}");
    assert_eq!(events[1].outcome, "success", "{events:?}");
    for e in &events {
        assert_eq!(e.client_id.as_deref(), Some("rp"), "{e:?}");
    }
    let metrics = common::get_text(format!("{}/metrics", d.issuer)).await;
    for outcome in ["success", "access_denied"] {
        assert!(
            metrics.contains(&format!(
                "wecom_oidc_logins_total{{outcome=\"{outcome}\"}} 1"
            )),
            "{metrics}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The console at /admin: signed in through WeCom, admins from [admin], actions through the
// admin router, every page in both languages on a desktop and a phone.

mod console {
    use super::common::png_size;
    use super::common::{self, browser, ServeOptions, Served};
    use wecom_oidc::config::AdminSettings;

    async fn serve_console() -> Served {
        common::serve_with_simulator(
            ServeOptions {
                admin: Some(AdminSettings {
                    users: vec!["ZhouBa".into()],
                    // zhangsan carries the tag 管理员 in the demo directory.
                    groups: vec!["管理员".into()],
                    connector: None,
                    idle_timeout: 1800,
                }),
                ..Default::default()
            },
            |sim, base| vec![common::demo_app(sim, base, "wecom")],
        )
        .await
    }

    /// Signs `member` in at `/admin/login`, standing in for them at WeCom's login page; the
    /// page the console answers with.
    async fn sign_in(s: &Served, b: &reqwest::Client, member: &str) -> common::Walk {
        let sim = &s.simulator;
        let stand_in = |location: &str| {
            if !location.contains("/wecom-sim/") {
                return None;
            }
            let q = common::query(location);
            let callback = &q["redirect_uri"];
            let code = sim.issue_code(
                member,
                q.get("scope").map(String::as_str).unwrap_or(""),
                callback,
            );
            Some(format!("{callback}?code={code}&state={}", q["state"]))
        };
        common::walk_rewriting(b, &format!("{}/admin/login", s.issuer), "", stand_in).await
    }

    async fn page(s: &Served, b: &reqwest::Client, path: &str, lang: &str) -> (u16, String) {
        let r = b
            .get(format!("{}{path}", s.issuer))
            .header("accept-language", lang)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// The value of the first `name="csrf"` field.
    fn csrf(html: &str) -> String {
        let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
        html[at..at + html[at..].find('"').unwrap()].to_owned()
    }

    async fn post(
        s: &Served,
        b: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String) {
        let r = b
            .post(format!("{}{path}", s.issuer))
            .header("accept-language", "en")
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    #[tokio::test]
    async fn console_signs_admins_in_through_wecom_rotates_a_key_and_audits_it() {
        let s = serve_console().await;
        let b = browser();
        // Not signed in: every page leads to the sign-in.
        let r = b
            .get(format!("{}/admin/keys", s.issuer))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303);
        assert_eq!(common::location(&r), "/admin/login");

        // zhangsan is an admin through the tag 管理员 (groups), not by user id.
        let w = sign_in(&s, &b, "zhangsan").await;
        assert_eq!(w.status.as_u16(), 200, "{:?}", w.body);
        let set_cookie: Vec<_> = w
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let session = set_cookie
            .iter()
            .find(|c| c.starts_with("wecom_oidc_admin="))
            .expect("a console session cookie");
        assert!(
            session.contains("HttpOnly")
                && session.contains("SameSite=Strict")
                && session.contains("Path=/admin"),
            "{session}"
        );
        let (status, overview) = page(&s, &b, "/admin", "en").await;
        assert_eq!(status, 200);
        assert!(
            overview.contains("Upstream app") && overview.contains("access_token"),
            "{overview}"
        );

        // Keys: rotate through the console; the new key signs at once and the old stays published.
        let (_, keys) = page(&s, &b, "/admin/keys", "en").await;
        let old_kid = wecom_oidc_jwks_kids(&s).await;
        assert_eq!(old_kid.len(), 1);
        assert!(keys.contains(&old_kid[0]));
        let token = csrf(&keys);
        let (status, body) = post(&s, &b, "/admin/keys/rotate", &[("alg", "RS256")]).await;
        assert_eq!(status, 403, "no CSRF token, no action: {body}");
        let wrong = "x".repeat(43);
        let form = [("alg", "RS256"), ("csrf", wrong.as_str())];
        let (status, body) = post(&s, &b, "/admin/keys/rotate", &form).await;
        assert_eq!(status, 403, "a wrong CSRF token, no action: {body}");
        assert_eq!(wecom_oidc_jwks_kids(&s).await, old_kid, "nothing rotated");
        let form = [("alg", "RS256"), ("csrf", &token)];
        let (status, body) = post(&s, &b, "/admin/keys/rotate", &form).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("Key rotated"), "{body}");
        let kids = wecom_oidc_jwks_kids(&s).await;
        assert_eq!(kids.len(), 2, "old and new published: {kids:?}");
        let new_kid = kids.iter().find(|k| **k != old_kid[0]).unwrap().clone();
        assert!(body.contains(&new_kid), "{body}");
        let (_, keys) = page(&s, &b, "/admin/keys", "zh-CN").await;
        assert!(keys.contains("签名中") && keys.contains(&new_kid), "{keys}");

        // Sign a person out everywhere from the console (the route `admin signout` uses): lisi,
        // signed in at the provider from another browser, loses that session.
        let lisi_browser = browser();
        let _refused = sign_in(&s, &lisi_browser, "lisi").await;
        let form = [("user", "lisi"), ("csrf", &token)];
        let (status, body) = post(&s, &b, "/admin/signout", &form).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains("Signed out everywhere")
                && body.contains("lisi: ")
                && !body.contains("lisi: 0 sessions"),
            "{body}"
        );
        // Reload: this server was not started from a file, and the console says so plainly.
        let (status, body) = post(&s, &b, "/admin/reload", &[("csrf", &token)]).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains("not started from a configuration file"),
            "{body}"
        );

        // Every action is in the audit log with who asked.
        let (_, audit) = page(&s, &b, "/admin/audit", "en").await;
        assert!(
            audit.contains("keys.rotate")
                && audit.contains("signout")
                && audit.contains("console:wecom/zhangsan"),
            "{audit}"
        );
        assert!(audit.contains(&new_kid), "{audit}");
        let logged = s.store.list_audit_events(10).await.unwrap();
        assert!(
            logged
                .iter()
                .any(|e| e.action == "keys.rotate" && e.outcome == "ok"),
            "{logged:?}"
        );

        // Sessions, events and clients pages show what they should, and never a secret.
        let (_, sessions) = page(&s, &b, "/admin/sessions", "en").await;
        assert!(sessions.contains("zhangsan"), "{sessions}");
        let (_, events) = page(&s, &b, "/admin/events?person=zhang&outcome=success", "en").await;
        assert!(
            events.contains("<svg") && events.contains("zhangsan"),
            "{events}"
        );
        let (_, clients) = page(&s, &b, "/admin/clients", "en").await;
        assert!(
            !clients.contains("wecom-oidc-console"),
            "the console's own client is not listed"
        );

        // Signing out ends the console session.
        let (status, _) = post(&s, &b, "/admin/logout", &[("csrf", &token)]).await;
        assert_eq!(status, 200);
        let r = b.get(format!("{}/admin", s.issuer)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303);
    }

    async fn wecom_oidc_jwks_kids(s: &Served) -> Vec<String> {
        let jwks: serde_json::Value = common::get_json(format!("{}/jwks", s.issuer)).await;
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn a_member_who_is_no_admin_gets_a_clear_refusal_and_no_session() {
        let s = serve_console().await;
        let b = browser();
        let w = sign_in(&s, &b, "lisi").await;
        assert_eq!(w.status.as_u16(), 403);
        let body = w.body.unwrap();
        assert!(
            body.contains("不是本服务的管理员") || body.contains("not an administrator"),
            "{body}"
        );
        assert!(!w
            .headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("wecom_oidc_admin=")));
        let r = b.get(format!("{}/admin", s.issuer)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303, "still signed out");
    }

    #[tokio::test]
    async fn every_console_page_renders_in_chinese_and_english_on_a_desktop_and_a_phone() {
        if !common::chromium_for(
            "every_console_page_renders_in_chinese_and_english_on_a_desktop_and_a_phone",
        ) {
            return;
        }
        let s = serve_console().await;
        let b = browser();
        assert_eq!(sign_in(&s, &b, "ZhouBa").await.status.as_u16(), 200);
        // A failed login, so the events page and its chart have both kinds.
        let _ = sign_in(&s, &browser(), "lisi").await;
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let pages = [
            ("overview", "/admin", "上游应用", "Upstream app"),
            ("events", "/admin/events", "最近 24 小时", "last 24 hours"),
            (
                "sessions",
                "/admin/sessions",
                "现在已登录的人员",
                "Who is signed in now",
            ),
            (
                "clients",
                "/admin/clients",
                "已注册应用",
                "Registered clients",
            ),
            (
                "keys",
                "/admin/keys",
                "已公布的签名密钥",
                "Published signing keys",
            ),
            ("audit", "/admin/audit", "管理操作", "Operator actions"),
        ];
        let mut shots = Vec::new();
        for (name, path, zh_text, en_text) in pages {
            for (lang, text) in [("zh-CN", zh_text), ("en-US", en_text)] {
                let (status, html) = page(&s, &b, path, lang).await;
                assert_eq!(status, 200, "{name} {lang}");
                assert!(html.contains(text), "{name} {lang}: {text:?} missing");
                // The page as the browser got it (inline styles only: it renders the same from a
                // file, with no session cookie needed).
                let file = dir.join(format!("{name}-{lang}.html"));
                std::fs::write(&file, html).unwrap();
                for (device, size) in [("desktop", (1280, 900)), ("phone", (390, 844))] {
                    shots.push((format!("{name}-{lang}-{device}"), file.clone(), size));
                }
            }
        }
        // Several browsers at once: each mostly waits (start-up, load), little of it is CPU.
        for batch in shots.chunks(3) {
            let runs = batch.iter().map(|(shot, html, size)| {
                let png = dir.join(format!("{shot}.png"));
                async move {
                    let url = format!("file://{}", html.display());
                    common::chromium_screenshot(&url, &png, *size, &[]).await;
                    (shot.clone(), png, *size)
                }
            });
            for (shot, png, size) in futures_util::future::join_all(runs).await {
                let bytes = std::fs::read(&png).unwrap();
                assert_eq!(png_size(&bytes), size, "{shot}");
                assert!(bytes.len() > 8_000, "{shot}: the page is not blank");
            }
        }
        eprintln!("console screenshots in {}", dir.display());
    }
}
