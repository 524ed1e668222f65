//! Changes without restarts and an issuer with a path, end to end.
//!
//! The reload tests run the real `wecom-oidc serve` (a signal needs a process) against the WeCom
//! simulator on its own port: `kill -HUP` in the middle of a login, a broken file refused over
//! the admin socket, keys added to the folder. The issuer-path tests log in with the
//! `openidconnect` relying party against a provider served under `/sso`, directly and through
//! nginx stripping the path with `examples/nginx/wecom-oidc-path.conf`.

mod common;

use std::time::Duration;

use axum::http::Method;
use openidconnect::core::{CoreIdTokenClaims, CoreUserInfoClaims};
use openidconnect::{OAuth2TokenResponse, TokenResponse};
use reqwest::StatusCode;
use serde_json::Value;
use wecom_oidc::simulator::Simulator;

use common::{
    authorize_url, browser, free_port, location, query, str_of, walk, Instance, APP, APP_CB,
    APP_SECRET,
};

const APP_CB2: &str = "http://127.0.0.1:9/app/callback-v2";
const NEW: &str = "new-app";
const NEW_SECRET: &str = "new-app-secret-0123456789abcdef";
const NEW_CB: &str = "http://127.0.0.1:9/new/callback";

// ---------------------------------------------------------------------------------------------
// Changes without restarts

/// The simulator on a port of its own, logging everyone in as zhangsan at once.
async fn start_simulator() -> (Simulator, String) {
    common::serve_simulator("/wecom-sim", |c| c.auto_login = Some("zhangsan".into())).await
}

/// `/authorize` at `issuer` for a code to `redirect_uri`, with `extra` parameters.
fn authorize(issuer: &str, client_id: &str, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    params.extend_from_slice(extra);
    authorize_url(issuer, &params)
}

/// A configuration on the simulator at `sim`, listening on `port` with the issuer's `path`,
/// with `clients` (TOML) and `extra` top-level keys.
fn config_text(
    (port, path): (u16, &str),
    sim: &str,
    dir: &std::path::Path,
    clients: &str,
    extra: &str,
) -> String {
    format!(
        r#"
issuer = "http://127.0.0.1:{port}{path}"
listen = "127.0.0.1:{port}"
data_dir = "{data}"
keys_dir = "{keys}"
{extra}

{wecom}
{clients}
"#,
        data = dir.join("data").display(),
        keys = dir.join("keys").display(),
        wecom = common::wecom_section(sim),
    )
}

fn app_client(redirect_uris: &[&str]) -> String {
    format!(
        "[[clients]]\nid = \"{APP}\"\nsecret = \"{APP_SECRET}\"\nredirect_uris = {redirect_uris:?}\n"
    )
}

fn new_client(extra: &str) -> String {
    format!(
        "[[clients]]\nid = \"{NEW}\"\nsecret = \"{NEW_SECRET}\"\nredirect_uris = [\"{NEW_CB}\"]\n{extra}\n"
    )
}

/// A running server with the configuration file it was started from.
struct Running {
    node: Instance,
    port: u16,
    /// The issuer's path.
    path: &'static str,
    sim: String,
    folder: std::path::PathBuf,
    _sim: Simulator,
}

impl Running {
    async fn start(clients: &str) -> Running {
        Running::start_at(clients, "").await
    }

    /// [`Running::start`] with an issuer whose path is `path`.
    async fn start_at(clients: &str, path: &'static str) -> Running {
        let (sim, sim_base) = start_simulator().await;
        let port = free_port();
        let mut folder = None;
        let node = Instance::start(|dir| {
            folder = Some(dir.to_owned());
            config_text((port, path), &sim_base, dir, clients, "")
        })
        .await;
        Running {
            node,
            port,
            path,
            sim: sim_base,
            folder: folder.expect("the folder"),
            _sim: sim,
        }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.path)
    }

    /// Rewrites the configuration file with `clients` and `extra` top-level keys.
    fn rewrite(&self, clients: &str, extra: &str) {
        let text = config_text(
            (self.port, self.path),
            &self.sim,
            &self.folder,
            clients,
            extra,
        );
        std::fs::write(&self.node.config, text).expect("rewrite the configuration");
    }

    fn socket(&self) -> std::path::PathBuf {
        wecom_oidc::admin::socket_path_in(&self.folder.join("data"))
    }

    /// `kill -HUP`, then waits (bounded) for the reload's outcome line.
    async fn hangup(&self, outcome: &str) {
        let seen = |log: &str| log.matches(outcome).count();
        let before = seen(&self.node.log());
        let pid = self.node.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while seen(&self.node.log()) == before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {outcome:?} after SIGHUP:\n{}",
                self.node.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `POST /v1/reload` on the admin socket: status and JSON answer.
    async fn admin_reload(&self) -> (StatusCode, Value) {
        let answer = wecom_oidc::admin::client::request(
            &self.socket(),
            Method::POST,
            "/v1/reload",
            Some(serde_json::json!({ "actor": "test" })),
        )
        .await
        .expect("the admin socket answers");
        let status = StatusCode::from_u16(answer.status.as_u16()).expect("status");
        (status, serde_json::from_slice(&answer.body).expect("JSON"))
    }

    /// A complete login of `client` to `redirect_uri` in `b`: the code, then tokens.
    async fn login(&self, b: &reqwest::Client, client: (&str, &str), redirect_uri: &str) -> Value {
        let url = authorize(&self.issuer(), client.0, redirect_uri, &[("state", "s")]);
        let end = walk(b, &url, redirect_uri).await.redirect_query();
        self.redeem(client, redirect_uri, &end["code"]).await
    }

    async fn redeem(&self, client: (&str, &str), redirect_uri: &str, code: &str) -> Value {
        let (status, body) = common::token(
            &self.issuer(),
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

/// `GET path` on an open HTTP/1.1 connection, kept open: the status.
async fn get_on(conn: &mut tokio::net::TcpStream, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .expect("Content-Length");
        if body.len() >= length {
            return head[9..12].parse().expect("status");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_changes_redirect_uris_mid_login_and_the_pending_login_and_new_client_both_work() {
    let s = Running::start(&app_client(&[APP_CB])).await;
    let b = browser();
    // A login in flight: the browser is at WeCom when the configuration changes.
    let start = authorize(&s.issuer(), APP, APP_CB, &[("state", "in-flight")]);
    let resp = b.get(&start).send().await.expect("authorize");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let at_wecom = location(&resp);
    assert!(at_wecom.starts_with(&s.sim), "{at_wecom}");
    // An open keep-alive connection, used before and after the reload.
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
        .await
        .expect("connect");
    assert_eq!(get_on(&mut conn, "/healthz").await, 200);

    s.rewrite(
        &format!("{}{}", app_client(&[APP_CB, APP_CB2]), new_client("")),
        "",
    );
    s.hangup("configuration reloaded").await;
    assert_eq!(
        get_on(&mut conn, "/healthz").await,
        200,
        "the connection outlived the reload"
    );
    let log = s.node.log();
    assert!(log.contains(r#"clients: changed \"app\""#), "{log}");
    assert!(log.contains(r#"clients: added \"new-app\""#), "{log}");

    // The login that started before the reload finishes at the URI it asked for.
    let end = walk(&b, &at_wecom, APP_CB).await.redirect_query();
    assert_eq!(end["state"], "in-flight");
    s.redeem((APP, APP_SECRET), APP_CB, &end["code"]).await;
    // The new redirect URI and the new client work; the session from before the reload still
    // logs the browser in without going back to WeCom.
    for (client, uri) in [((APP, APP_SECRET), APP_CB2), ((NEW, NEW_SECRET), NEW_CB)] {
        let url = authorize(&s.issuer(), client.0, uri, &[]);
        let w = walk(&b, &url, uri).await;
        assert!(
            !w.visited.iter().any(|u| u.starts_with(&s.sim)),
            "single sign-on survived the reload: {:?}",
            w.visited
        );
        s.redeem(client, uri, &w.redirect_query()["code"]).await;
    }

    // A redirect URI the reload removes is refused from then on.
    s.rewrite(&app_client(&[APP_CB2]), "");
    s.hangup("configuration reloaded").await;
    let refused = b
        .get(authorize(&s.issuer(), APP, APP_CB, &[]))
        .send()
        .await
        .expect("authorize");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.headers().get("location").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_is_refused_with_every_problem_and_the_running_configuration_keeps_serving() {
    let s = Running::start(&app_client(&[APP_CB])).await;
    s.rewrite(
        &format!(
            "{}{}",
            app_client(&["not a URL"]),
            new_client("token_endpoint_auth_method = \"carrier_pigeon\"")
        ),
        "colour = \"red\"\n[limits]\ntoken_burst = 0",
    );
    let expected = wecom_oidc::config::load(&s.node.config)
        .expect_err("the file is broken")
        .problems;
    assert!(expected.len() >= 3, "{expected:?}");

    // The admin route: 422 with exactly the problems a start would report.
    let (status, body) = s.admin_reload().await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "invalid_configuration");
    let problems: Vec<String> = serde_json::from_value(body["problems"].clone()).expect("list");
    assert_eq!(problems, expected);

    // The CLI (the broken file cannot tell it where the socket is: --socket does).
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wecom-oidc"))
        .arg("admin")
        .arg("--socket")
        .arg(s.socket())
        .arg("reload")
        .output()
        .await
        .expect("admin reload");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    for p in &expected {
        assert!(
            said.contains(&format!("\n  - {p}")),
            "{p} missing in {said}"
        );
    }

    // SIGHUP: refused and logged, problem by problem; the process serves on.
    s.hangup("configuration NOT reloaded").await;
    let log = s.node.log();
    for p in &expected {
        let quoted = serde_json::to_string(&format!("reload: {p}")).expect("JSON string");
        assert!(log.contains(&quoted), "{p} missing in the log");
    }
    s.login(&browser(), (APP, APP_SECRET), APP_CB).await;

    // A valid file that also changes what needs a restart: the live part applies, the rest is
    // reported and keeps its running value.
    s.rewrite(
        &format!("{}{}", app_client(&[APP_CB]), new_client("")),
        "sled_cache_mb = 16",
    );
    let (status, body) = s.admin_reload().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["clients"], 2);
    let changes = body["changes"].to_string();
    assert!(changes.contains("clients: added"), "{changes}");
    assert!(
        changes.contains("needs a restart: `sled_cache_mb` changed"),
        "{changes}"
    );
    s.login(&browser(), (NEW, NEW_SECRET), NEW_CB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_added_to_the_folder_appear_in_the_jwks_after_a_reload() {
    let s = Running::start(&app_client(&[APP_CB])).await;
    let jwks = || async {
        let v = common::get_json(format!("{}/jwks", s.issuer())).await;
        v["keys"].as_array().expect("keys").clone()
    };
    assert_eq!(jwks().await.len(), 1);

    // A client that needs an ES256 key before there is one: refused, named.
    let es256_client = new_client("id_token_signed_response_alg = \"ES256\"");
    s.rewrite(&format!("{}{es256_client}", app_client(&[APP_CB])), "");
    let (status, body) = s.admin_reload().await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["problems"].to_string().contains("no active ES256 key"),
        "{body}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wecom-oidc"))
        .args(["keys", "generate", "--alg", "ES256", "--dir"])
        .arg(s.folder.join("keys"))
        .output()
        .expect("keys generate");
    common::assert_success(&out, "keys generate");
    s.hangup("configuration reloaded").await;
    assert!(s.node.log().contains("keys: added"), "{}", s.node.log());

    let keys = jwks().await;
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k["kty"] == "EC" && k["alg"] == "ES256"));
    let discovery =
        common::get_json(format!("{}/.well-known/openid-configuration", s.issuer())).await;
    assert!(discovery["id_token_signing_alg_values_supported"]
        .to_string()
        .contains("ES256"));
    let tokens = s.login(&browser(), (NEW, NEW_SECRET), NEW_CB).await;
    let header = common::header_of(str_of(&tokens, "id_token"));
    assert_eq!(header["alg"], "ES256");
    assert!(keys.iter().any(|k| k["kid"] == header["kid"]));
}

// ---------------------------------------------------------------------------------------------
// An issuer with a path

/// A full login of the `openidconnect` relying party at `issuer` (discovery, authorize with
/// PKCE and nonce, code exchange, id_token verification against the JWKS, userinfo).
async fn openidconnect_login(issuer: &str) {
    let login = common::rp_login(issuer, (APP, APP_SECRET, APP_CB)).await;
    assert!(login
        .auth_url
        .as_str()
        .starts_with(&format!("{issuer}/authorize?")));
    assert_eq!(
        login.query["iss"], issuer,
        "RFC 9207 iss is the issuer with its path"
    );
    let (rp, token) = (&login.rp, &login.token);
    let id_token = token.id_token().expect("id_token");
    let claims: &CoreIdTokenClaims = id_token
        .claims(&rp.id_token_verifier(), &login.nonce)
        .expect("a valid id_token");
    assert_eq!(claims.issuer().as_str(), issuer);
    assert_eq!(claims.subject().as_str(), "zhangsan");
    let info: CoreUserInfoClaims = rp
        .user_info(token.access_token().clone(), None)
        .expect("userinfo endpoint")
        .request_async(&login.http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), "zhangsan");
}

#[tokio::test]
async fn an_issuer_with_a_path_serves_every_endpoint_under_it_and_the_openidconnect_rp_logs_in() {
    let served = common::serve_with_simulator(
        common::ServeOptions {
            auto_login: Some("zhangsan"),
            clients: vec![common::app_client()],
            issuer_path: "/sso",
            ..Default::default()
        },
        |sim, base| vec![common::demo_app(sim, base, "wecom")],
    )
    .await;
    let issuer = served.issuer.clone();
    assert!(issuer.ends_with("/sso"));
    openidconnect_login(&issuer).await;

    // Cookies are scoped to the issuer's path; the callback is under it.
    let b = browser();
    let resp = b
        .get(authorize(&issuer, APP, APP_CB, &[]))
        .send()
        .await
        .expect("authorize");
    let cookie = resp.headers()["set-cookie"].to_str().expect("cookie");
    assert!(cookie.contains("; Path=/sso;"), "{cookie}");
    let at_wecom = location(&resp);
    let redirect_uri = query(&at_wecom)["redirect_uri"].clone();
    assert_eq!(redirect_uri, format!("{issuer}/callback/wecom"));
    // The start page links under the path.
    let start = common::get_text_with(&b, format!("{issuer}/start")).await;
    assert!(start.contains("href=\"/sso/healthz\""), "{start}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_under_an_issuer_path_answers_with_and_without_it_and_sends_the_root_to_its_start_page(
) {
    let s = Running::start_at(&app_client(&[APP_CB]), "/sso").await;
    let root = format!("http://127.0.0.1:{}", s.port);
    for bare in [format!("{root}/sso"), format!("{root}/sso/")] {
        let resp = browser().get(&bare).send().await.expect("root");
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{bare}");
        assert_eq!(location(&resp), "/sso/start");
    }
    for discovery in [
        format!("{root}/sso/.well-known/openid-configuration"),
        format!("{root}/.well-known/openid-configuration"),
    ] {
        let doc = common::get_json(&discovery).await;
        assert_eq!(doc["issuer"], s.issuer(), "{discovery}");
        assert_eq!(doc["token_endpoint"], format!("{}/token", s.issuer()));
    }
    let tokens = s.login(&browser(), (APP, APP_SECRET), APP_CB).await;
    assert_eq!(
        common::claims_of(str_of(&tokens, "id_token"))["iss"],
        s.issuer()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_with_a_path_works_behind_nginx_stripping_the_path() {
    let Some(nginx_bin) =
        common::nginx_for("an_issuer_with_a_path_works_behind_nginx_stripping_the_path")
    else {
        return;
    };
    let port = free_port();
    let served = common::serve_with_simulator(
        common::ServeOptions {
            auto_login: Some("zhangsan"),
            clients: vec![common::app_client()],
            issuer_path: "/sso",
            public_base: Some(format!("http://127.0.0.1:{port}")),
            ..Default::default()
        },
        |sim, base| vec![common::demo_app(sim, base, "wecom")],
    )
    .await;
    let backend = served
        .sim_base
        .strip_prefix("http://")
        .and_then(|a| a.strip_suffix("/wecom-sim"))
        .expect("backend address")
        .to_owned();
    let site = nginx_site(&backend, port);
    let nginx = common::start_nginx(
        &nginx_bin,
        tempfile::tempdir().expect("tempdir"),
        &site,
        port,
    )
    .await;
    let issuer = served.issuer.clone();
    assert_eq!(issuer, format!("http://127.0.0.1:{port}/sso"));
    openidconnect_login(&issuer).await;
    // `/sso` itself leads to the start page, under the path.
    let bare = format!("http://127.0.0.1:{port}/sso");
    let resp = browser().get(bare).send().await.expect("/sso");
    assert_eq!(resp.status(), StatusCode::FOUND, "{}", nginx.error_log());
    let target = url::Url::parse(&issuer)
        .and_then(|u| u.join(&location(&resp)))
        .expect("Location");
    assert_eq!(target.as_str(), format!("{issuer}/start"));
    let page = browser()
        .get(format!("{issuer}/start"))
        .send()
        .await
        .expect("start");
    assert_eq!(page.status(), StatusCode::OK);
}

/// `examples/nginx/wecom-oidc-path.conf` on plain HTTP at `port`, proxying to `backend`. Every
/// substituted line must be found, so a change to the example's shape fails this test rather
/// than silently testing something else.
fn nginx_site(backend: &str, port: u16) -> String {
    let example = include_str!("../examples/nginx/wecom-oidc-path.conf");
    let (mut listens, mut certs, mut passes) = (0, 0, 0);
    let mut out = String::new();
    for line in example.lines() {
        let t = line.trim();
        if t == "listen 443 ssl;" {
            out.push_str(&format!("    listen 127.0.0.1:{port};\n"));
            listens += 1;
        } else if t.starts_with("ssl_certificate") {
            certs += 1;
        } else if t == "proxy_pass http://127.0.0.1:8080/;" {
            out.push_str(&format!("        proxy_pass http://{backend}/;\n"));
            passes += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert_eq!(
        (listens, certs, passes),
        (1, 2, 1),
        "the example changed shape"
    );
    out
}
