//! Several provider processes over one PostgreSQL store behave as one provider.
//!
//! Each test starts real `wecom-oidc serve` processes (the binary Cargo built for this test) on
//! their own loopback ports, all with the same issuer and one fresh PostgreSQL database, in
//! front of a WeCom simulator served by the test itself. The test plays the load balancer: it
//! sends each request of a login to the instance it chooses, by rewriting the issuer's origin in
//! the URLs the provider redirects to. Without `WECOM_OIDC_TEST_PG` (a PostgreSQL URL whose user
//! may create databases) every test prints a skip line and returns.
//!
//! The last test puts the real nginx (`examples/nginx/wecom-oidc.conf`) in front of two
//! instances and logs in through it.

use std::time::Duration;

use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::process::Command;
use wecom_oidc::simulator::{Simulator, STATS_PATH};

mod common;

use common::{
    browser, code_form, header_of, location, query, refresh_form, start_nginx, str_of, Instance,
    APP, APP_CB, APP_SECRET,
};

/// What every instance calls itself; the test rewrites it to the instance it picks.
/// (`localhost`, so that it is the prefix of no other URL of the test, all on 127.0.0.1.)
const ISSUER: &str = "http://localhost";
const APP2: &str = "app2";
const APP2_CB: &str = "http://127.0.0.1:9/app2/callback";
/// The Token and EncodingAESKey of WeCom's callback URL (wecom-api.md §11 sample keys).
const CALLBACK_TOKEN: &str = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
const CALLBACK_AES_KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
/// How often instances re-read the shared signing keys in these tests (seconds).
const RELOAD_SECS: u64 = 1;

/// The PostgreSQL server to use (`WECOM_OIDC_TEST_PG`), or `None` (after printing why) to skip.
fn pg_url(test: &str) -> Option<String> {
    wecom_oidc::storage::postgres::testing::test_url(test)
}

/// A database of its own on the server of `base` (created now, dropped on drop), so that tests
/// running at the same time never see each other's records.
struct TestDatabase {
    base: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create(base: &str) -> TestDatabase {
        let name = format!(
            "wecom_oidc_cluster_{}",
            wecom_oidc::random::alphanumeric(12).to_ascii_lowercase()
        );
        psql(base, &format!("CREATE DATABASE {name}"));
        let mut url = url::Url::parse(base).expect("WECOM_OIDC_TEST_PG is a URL");
        url.set_path(&format!("/{name}"));
        TestDatabase {
            base: base.to_owned(),
            name,
            url: url.to_string(),
        }
    }
}

/// Runs one SQL command with `psql` (installed with PostgreSQL), failing the test if it fails.
fn psql(url: &str, sql: &str) {
    let out = std::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .expect("run psql (installed with PostgreSQL)");
    common::assert_success(&out, &format!("psql {sql:?}"));
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // The instances are gone by now (fields drop in order: the cluster's nodes first).
        let _ = std::process::Command::new("psql")
            .args(["-X", "-q", "-d", &self.base, "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// The WeCom simulator, served by the test on its own port; logins complete at once as
/// `zhangsan`.
struct Sim {
    sim: Simulator,
    base: String,
}

async fn start_simulator() -> Sim {
    let (sim, base) = common::serve_simulator("/wecom-sim", |c| {
        c.auto_login = Some("zhangsan".into());
    })
    .await;
    Sim { sim, base }
}

impl Sim {
    /// `gettoken` calls so far, as a process outside the simulator reads them.
    async fn gettoken_calls(&self) -> u64 {
        let stats = common::get_json(format!("{}{STATS_PATH}", self.base)).await;
        let calls = stats["gettoken_calls"].as_u64().expect("gettoken_calls");
        assert_eq!(calls, self.sim.gettoken_calls());
        calls
    }
}

/// The configuration every instance of a test shares (each gets its own copy of the file, with
/// its own `data_dir` and `keys_dir`, which a shared store does not use for keys or records).
fn config_text(store_url: &str, sim: &Sim, issuer: &str, dir: &std::path::Path) -> String {
    config_text_with(store_url, sim, issuer, dir, None)
}

/// [`config_text`] whose client `APP` registers `backchannel` as its back-channel logout URI.
/// Every instance takes WeCom's callbacks (with [`CALLBACK_TOKEN`] and [`CALLBACK_AES_KEY`]).
fn config_text_with(
    store_url: &str,
    sim: &Sim,
    issuer: &str,
    dir: &std::path::Path,
    backchannel: Option<&str>,
) -> String {
    let backchannel = backchannel
        .map(|uri| format!("backchannel_logout_uri = \"{uri}\""))
        .unwrap_or_default();
    format!(
        r#"
issuer = "{issuer}"
listen = "127.0.0.1:0"
store = "{store_url}"
data_dir = "{data}"
keys_dir = "{keys}"
keys_reload_interval = {RELOAD_SECS}

{wecom}callback_token = "{CALLBACK_TOKEN}"
callback_aes_key = "{CALLBACK_AES_KEY}"

[[clients]]
id = "{APP}"
secret = "{APP_SECRET}"
redirect_uris = ["{APP_CB}"]
{backchannel}

[[clients]]
id = "{APP2}"
secret = "{APP_SECRET}"
redirect_uris = ["{APP2_CB}"]

[limits]
token_burst = 10000
token_per_minute = 100000
callback_burst = 10000
callback_per_minute = 100000
"#,
        data = dir.join("data").display(),
        keys = dir.join("keys").display(),
        wecom = common::wecom_section(&sim.base),
    )
}

impl Instance {
    /// `url` (one of the issuer's) as sent to this instance.
    fn at(&self, url: &str) -> String {
        match of_issuer(url) {
            Some(path) => format!("{}{path}", self.base),
            None => url.to_owned(),
        }
    }
}

/// The path (and query) of `url` if it is one of the issuer's URLs.
fn of_issuer(url: &str) -> Option<&str> {
    url.strip_prefix(ISSUER).filter(|p| p.starts_with('/'))
}

/// A cluster of `n` instances over one fresh database, all started at the same time.
struct Cluster {
    nodes: Vec<Instance>,
    sim: Sim,
    _db: TestDatabase,
}

async fn start_cluster(pg: &str, n: usize) -> Cluster {
    start_cluster_with(pg, n, None).await
}

/// [`start_cluster`] with [`config_text_with`]`(…, backchannel)`.
async fn start_cluster_with(pg: &str, n: usize, backchannel: Option<&str>) -> Cluster {
    let db = TestDatabase::create(pg).await;
    let sim = start_simulator().await;
    let starts = (0..n).map(|_| {
        let text =
            |dir: &std::path::Path| config_text_with(&db.url, &sim, ISSUER, dir, backchannel);
        Instance::start(text)
    });
    let nodes = futures_util::future::join_all(starts).await;
    Cluster {
        nodes,
        sim,
        _db: db,
    }
}

fn authorize_url(client_id: &str, cb: &str, extra: &[(&str, &str)]) -> String {
    let (scope, state_and_nonce) = ("openid profile offline_access", ("st-123", "n-456"));
    common::code_request_url(ISSUER, (client_id, cb), scope, state_and_nonce, extra)
}

/// Follows the redirects of a login from `start` until one reaches `cb`, sending the first
/// request to `hops[0]` and every later request to the issuer to the next instance of `hops`
/// in turn (the simulator's pages are visited where they are). Returns the final URL and the
/// instances used, in order.
async fn walk(
    b: &reqwest::Client,
    start: &str,
    cb: &str,
    hops: &[&Instance],
) -> (String, Vec<String>) {
    let mut url = start.to_owned();
    let mut used = Vec::new();
    let mut next = 0;
    for _ in 0..12 {
        if url.starts_with(cb) {
            return (url, used);
        }
        let target = if of_issuer(&url).is_some() {
            let node = hops[next % hops.len()];
            next += 1;
            used.push(node.base.clone());
            node.at(&url)
        } else {
            url.clone()
        };
        let resp = b.get(&target).send().await.expect("request");
        assert!(
            resp.status().is_redirection(),
            "expected a redirect from {target}, got {}: {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
        // A relative redirect stays on the origin that sent it.
        let base = url::Url::parse(&target).expect("url");
        url = base.join(&location(&resp)).expect("Location").to_string();
    }
    panic!("too many redirects from {start}");
}

/// Logs `b` in for `client_id` with the authorize request at `first` and the WeCom callback at
/// `second`; returns the code.
async fn login(
    b: &reqwest::Client,
    client_id: &str,
    cb: &str,
    first: &Instance,
    second: &Instance,
) -> String {
    let (url, _) = walk(b, &authorize_url(client_id, cb, &[]), cb, &[first, second]).await;
    let q = query(&url);
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"));
    assert_eq!(
        q.get("iss").map(String::as_str),
        Some(ISSUER),
        "RFC 9207 iss"
    );
    q.get("code").cloned().expect("code in the redirect")
}

async fn token(node: &Instance, form: &[(&str, &str)]) -> (StatusCode, Value) {
    common::token(&node.base, (APP, APP_SECRET), form).await
}

async fn redeem(node: &Instance, code: &str) -> (StatusCode, Value) {
    token(node, &code_form(code, APP_CB, &[])).await
}

async fn refresh(node: &Instance, refresh_token: &str) -> (StatusCode, Value) {
    token(node, &refresh_form(refresh_token)).await
}

async fn userinfo(node: &Instance, access_token: &str) -> StatusCode {
    common::userinfo(&node.base, access_token).await.status()
}

async fn jwks(node: &Instance) -> String {
    common::get_text(format!("{}/jwks", node.base)).await
}

fn kids(jwks: &str) -> Vec<String> {
    common::kids_of(&serde_json::from_str(jwks).expect("JWKS JSON"))
}

/// The `kid` in the header of a compact JWS.
fn header_kid(jwt: &str) -> String {
    str_of(&header_of(jwt), "kid").to_owned()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_started_on_one_instance_finishes_on_others() {
    let Some(pg) = pg_url("a_login_started_on_one_instance_finishes_on_others") else {
        return;
    };
    let c = start_cluster(&pg, 3).await;
    let [a, b, d] = [&c.nodes[0], &c.nodes[1], &c.nodes[2]];
    let browser = browser();
    // /authorize on A, WeCom's callback on B.
    let (url, used) = walk(&browser, &authorize_url(APP, APP_CB, &[]), APP_CB, &[a, b]).await;
    assert_eq!(
        used,
        vec![a.base.clone(), b.base.clone()],
        "authorize on A, callback on B"
    );
    let code = query(&url).get("code").cloned().expect("code");
    // /token on the third instance, /userinfo back on the first.
    let (status, tokens) = redeem(d, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}\n{}", d.log());
    let at = str_of(&tokens, "access_token");
    assert_eq!(userinfo(a, at).await, StatusCode::OK);
    assert_eq!(userinfo(b, at).await, StatusCode::OK);
    // The id_token names a key every instance publishes.
    let kid = header_kid(str_of(&tokens, "id_token"));
    for node in &c.nodes {
        assert!(
            kids(&jwks(node).await).contains(&kid),
            "{} lacks {kid}",
            node.base
        );
    }
    // A refresh at yet another instance.
    let (status, refreshed) = refresh(b, str_of(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(
        userinfo(d, str_of(&refreshed, "access_token")).await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_and_a_refresh_token_redeemed_at_two_instances_at_once_succeed_exactly_once() {
    let Some(pg) =
        pg_url("a_code_and_a_refresh_token_redeemed_at_two_instances_at_once_succeed_exactly_once")
    else {
        return;
    };
    let c = start_cluster(&pg, 2).await;
    let [a, b] = [&c.nodes[0], &c.nodes[1]];
    for round in 0..3 {
        // The code, at both instances at once.
        let code = login(&browser(), APP, APP_CB, a, b).await;
        let (ra, rb) = tokio::join!(redeem(a, &code), redeem(b, &code));
        let results = [ra, rb];
        let winners = common::winners(&results);
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let loser = results
            .iter()
            .find(|(s, _)| *s != StatusCode::OK)
            .expect("a loser");
        assert_eq!(loser.0, StatusCode::BAD_REQUEST);
        assert_eq!(loser.1["error"], "invalid_grant");
        // The replay revoked the grant everywhere (RFC 6749 §4.1.2): the winner's tokens are
        // dead at both instances.
        let at = str_of(winners[0], "access_token");
        assert_eq!(userinfo(a, at).await, StatusCode::UNAUTHORIZED);
        assert_eq!(userinfo(b, at).await, StatusCode::UNAUTHORIZED);
        let (s, _) = refresh(b, str_of(winners[0], "refresh_token")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "a revoked grant cannot refresh");

        // A refresh token, at both instances at once.
        let code = login(&browser(), APP, APP_CB, b, a).await;
        let (s, tokens) = redeem(a, &code).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        let rt = str_of(&tokens, "refresh_token");
        let (ra, rb) = tokio::join!(refresh(a, rt), refresh(b, rt));
        let results = [ra, rb];
        let winners = common::winners(&results);
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        // Reuse of the spent token revoked the grant (RFC 9700 §4.14.2): the winner's new
        // refresh token and access token no longer work, at either instance.
        let (s, body) = refresh(a, str_of(winners[0], "refresh_token")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(
            userinfo(b, str_of(winners[0], "access_token")).await,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_from_one_instance_is_honoured_by_prompt_none_on_another_and_logout_ends_it_everywhere(
) {
    let Some(pg) = pg_url("a_session_from_one_instance_is_honoured_by_prompt_none_on_another_and_logout_ends_it_everywhere") else {
        return;
    };
    let c = start_cluster(&pg, 3).await;
    let [a, b, d] = [&c.nodes[0], &c.nodes[1], &c.nodes[2]];
    let browser = browser();
    let code = login(&browser, APP, APP_CB, a, a).await;
    let (s, _) = redeem(a, &code).await;
    assert_eq!(s, StatusCode::OK);
    let calls_before = c.sim.gettoken_calls().await;
    // prompt=none for another client at B: a code straight away, no WeCom round trip.
    let silent = authorize_url(APP2, APP2_CB, &[("prompt", "none")]);
    let resp = browser.get(b.at(&silent)).send().await.expect("authorize");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let to = location(&resp);
    assert!(to.starts_with(APP2_CB), "{to}");
    assert!(query(&to).contains_key("code"), "{to}");
    assert_eq!(c.sim.gettoken_calls().await, calls_before);
    // Logout at D ends the session at every instance.
    let resp = browser
        .get(d.at(&format!("{ISSUER}/logout")))
        .send()
        .await
        .expect("logout");
    assert!(
        resp.status().is_success() || resp.status().is_redirection(),
        "{}",
        resp.status()
    );
    for node in [a, b, d] {
        let resp = browser
            .get(node.at(&silent))
            .send()
            .await
            .expect("authorize");
        let to = location(&resp);
        assert_eq!(
            query(&to).get("error").map(String::as_str),
            Some("login_required"),
            "{} still honours the ended session: {to}",
            node.base
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_publishes_the_same_keys_and_a_rotation_on_one_reaches_all_in_bounded_time()
{
    let Some(pg) = pg_url(
        "every_instance_publishes_the_same_keys_and_a_rotation_on_one_reaches_all_in_bounded_time",
    ) else {
        return;
    };
    // Started at the same moment on an empty database: one key set, generated once.
    let c = start_cluster(&pg, 3).await;
    let first = jwks(&c.nodes[0]).await;
    assert_eq!(kids(&first).len(), 1, "{first}");
    for node in &c.nodes[1..] {
        assert_eq!(
            jwks(node).await,
            first,
            "{} publishes another JWKS",
            node.base
        );
    }
    let old_kid = kids(&first)[0].clone();
    // `keys rotate` with the configuration of one instance (the same store).
    let out = Command::new(env!("CARGO_BIN_EXE_wecom-oidc"))
        .arg("--config")
        .arg(&c.nodes[1].config)
        .args(["keys", "rotate", "--grace", "1h"])
        .output()
        .await
        .expect("keys rotate");
    common::assert_success(&out, "keys rotate");
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(printed.contains(&old_kid), "{printed}");
    // Every instance publishes the new key within the reload interval; the poll is bounded
    // well beyond it (a slow machine), and stops as soon as every instance has it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(RELOAD_SECS * 5 + 20);
    let mut published: Vec<String>;
    loop {
        published = Vec::new();
        for node in &c.nodes {
            published.push(jwks(node).await);
        }
        let all_new = published.iter().all(|j| kids(j).len() == 2);
        if all_new {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotation did not reach every instance: {published:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        published.iter().all(|j| *j == published[0]),
        "{published:?}"
    );
    let new_kids = kids(&published[0]);
    assert!(
        new_kids.contains(&old_kid),
        "the old key stays published for the grace period"
    );
    let new_kid = new_kids
        .iter()
        .find(|k| **k != old_kid)
        .expect("new kid")
        .clone();
    // New tokens from every instance are signed with the new key.
    let browser = browser();
    for node in &c.nodes {
        let code = login(&browser, APP, APP_CB, node, node).await;
        let (s, tokens) = redeem(node, &code).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        assert_eq!(
            header_kid(str_of(&tokens, "id_token")),
            new_kid,
            "{}",
            node.base
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_fetches_one_wecom_token_when_every_instance_starts_and_logs_in_at_once() {
    let Some(pg) = pg_url(
        "the_cluster_fetches_one_wecom_token_when_every_instance_starts_and_logs_in_at_once",
    ) else {
        return;
    };
    let c = start_cluster(&pg, 3).await;
    assert_eq!(
        c.sim.gettoken_calls().await,
        0,
        "no token before the first login"
    );
    // Four logins per instance, all at once, each callback on its own instance.
    let logins = (0..12).map(|i| {
        let node = &c.nodes[i % c.nodes.len()];
        async move {
            let code = login(&browser(), APP, APP_CB, node, node).await;
            let (s, tokens) = redeem(node, &code).await;
            assert_eq!(s, StatusCode::OK, "{tokens}");
            assert_eq!(
                userinfo(node, str_of(&tokens, "access_token")).await,
                StatusCode::OK
            );
        }
    });
    futures_util::future::join_all(logins).await;
    assert_eq!(
        c.sim.gettoken_calls().await,
        1,
        "one gettoken for the whole cluster\n{}",
        c.nodes
            .iter()
            .map(Instance::log)
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
}

// ---------------------------------------------------------------------------------------------
// A WeCom third-party app (suite) served by three instances.

const SUITE_ID: &str = "wwsuite00000000001";
const SUITE_SECRET: &str = "suite-secret-for-the-cluster";
const SUITE_TOKEN: &str = "suiteCallbackToken";
const SUITE_AES_KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";

/// [`config_text`] with a `wecom-suite` connector `suite` for client [`APP`].
fn suite_config_text(store_url: &str, sim: &Sim, dir: &std::path::Path) -> String {
    config_text(store_url, sim, ISSUER, dir)
        .replacen(
            &format!("[[clients]]\nid = \"{APP}\"\n"),
            &format!("[[clients]]\nid = \"{APP}\"\nconnector = \"suite\"\n"),
            1,
        )
        .replacen(
            "[[clients]]",
            &format!(
                r#"[[connectors]]
id = "suite"
type = "wecom-suite"
suite_id = "{SUITE_ID}"
suite_secret = "{SUITE_SECRET}"
callback_token = "{SUITE_TOKEN}"
callback_aes_key = "{SUITE_AES_KEY}"
store_key = "store-key-of-the-cluster-suite-0123456789"
api_base = "{sim}"
oauth_base = "{sim}"
sso_base = "{sim}"

[[clients]]"#,
                sim = sim.base
            ),
            1,
        )
}

/// wecom-api.md §8: the suite_ticket pushed to one instance serves all; however many
/// instances log people in at once, the cluster fetches one `suite_access_token` and one
/// token of the installing corp per lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_fetch_one_suite_token_and_one_corp_token() {
    let Some(pg) = pg_url("three_instances_fetch_one_suite_token_and_one_corp_token") else {
        return;
    };
    let db = TestDatabase::create(&pg).await;
    let sim = start_simulator().await;
    let starts = (0..3).map(|_| Instance::start(|dir| suite_config_text(&db.url, &sim, dir)));
    let nodes = futures_util::future::join_all(starts).await;
    // WeCom pushes to the one callback URL; here it reaches the first instance.
    sim.sim.add_suite(wecom_oidc::simulator::SuiteSpec {
        suite_id: SUITE_ID.into(),
        kind: wecom_oidc::simulator::SuiteKind::ThirdParty,
        suite_secret: SUITE_SECRET.into(),
        callback: wecom_oidc::simulator::CallbackTarget {
            url: format!("{}/callback/suite/events", nodes[0].base),
            token: SUITE_TOKEN.into(),
            encoding_aes_key: SUITE_AES_KEY.into(),
        },
    });
    let corp = sim.sim.config().corp_id.clone();
    for d in [
        sim.sim.push_suite_ticket(SUITE_ID).await,
        sim.sim
            .install_suite(
                SUITE_ID,
                &corp,
                wecom_oidc::simulator::VisibleRange::whole_corp(),
            )
            .await,
    ] {
        let d = d.expect("delivered");
        assert_eq!(
            (d.status, d.body.as_str()),
            (200, "success"),
            "{}",
            nodes[0].log()
        );
    }
    // Four logins per instance, all at once, each on its own instance (the suite's
    // `ServiceApp` page completes as `zhangsan` of the installing corp).
    let corp = &corp;
    let logins = (0..12).map(|i| {
        let node = &nodes[i % nodes.len()];
        async move {
            let code = login(&browser(), APP, APP_CB, node, node).await;
            let (s, tokens) = redeem(node, &code).await;
            assert_eq!(s, StatusCode::OK, "{tokens}");
            let claims = common::claims_of(str_of(&tokens, "id_token"));
            assert_eq!(claims["corp_id"], corp.as_str(), "{claims}");
        }
    });
    futures_util::future::join_all(logins).await;
    assert_eq!(
        sim.sim.suite_calls(),
        (1, 1),
        "(get_suite_token, get_corp_token) for the whole cluster\n{}",
        nodes
            .iter()
            .map(Instance::log)
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    drop(nodes);
    drop(db);
}

// ---------------------------------------------------------------------------------------------
// nginx in front of two instances, with the example configuration.

// ---- Offboarding: a person signed out everywhere ----

/// What a signed-out person still holds at `node` ([`common::still_working`]); only for
/// checks after the sign-out (a working refresh would rotate `refresh`).
async fn still_works(
    node: &Instance,
    b: &reqwest::Client,
    access: &str,
    refresh: &str,
) -> Vec<&'static str> {
    let mut held = common::Held {
        client: (APP, APP_SECRET),
        access: access.to_owned(),
        refresh: refresh.to_owned(),
        silent: (APP2, APP2_CB),
    };
    common::still_working(&node.base, b, &mut held).await
}

/// The login event log of the cluster (read through `node`'s configuration), newest first.
fn events_of(node: &Instance) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wecom-oidc"))
        .arg("--config")
        .arg(&node.config)
        .args(["events", "--json"])
        .output()
        .expect("wecom-oidc events");
    common::assert_success(&out, "wecom-oidc events");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event as JSON"))
        .collect()
}

/// Logs zhangsan in for `APP` (authorize at `a`, WeCom callback at `b`) and gives `APP2` a
/// code through the session; the access and refresh tokens of `APP`.
async fn signed_in(browser: &reqwest::Client, a: &Instance, b: &Instance) -> (String, String) {
    let code = login(browser, APP, APP_CB, a, b).await;
    let (s, tokens) = redeem(a, &code).await;
    assert_eq!(s, StatusCode::OK, "{tokens}");
    let access = str_of(&tokens, "access_token").to_owned();
    let refresh = str_of(&tokens, "refresh_token").to_owned();
    for node in [a, b] {
        assert_eq!(userinfo(node, &access).await, StatusCode::OK);
    }
    (access, refresh)
}

/// A two-instance cluster whose client `APP` has a back-channel logout endpoint, with zhangsan
/// signed in ([`signed_in`]).
struct Offboarding {
    c: Cluster,
    /// The logout tokens the endpoint received.
    got: common::Received,
    /// zhangsan's browser.
    browser: reqwest::Client,
    /// zhangsan's access and refresh tokens for `APP`.
    access: String,
    refresh: String,
}

/// The [`Offboarding`] cluster; `None` (after printing why, under `test`) without PostgreSQL.
async fn cluster_with_zhangsan(test: &str) -> Option<Offboarding> {
    let pg = pg_url(test)?;
    let (bcl, got) = common::logout_receiver().await;
    let c = start_cluster_with(&pg, 2, Some(&bcl)).await;
    let browser = browser();
    let (access, refresh) = signed_in(&browser, &c.nodes[0], &c.nodes[1]).await;
    Some(Offboarding {
        c,
        got,
        browser,
        access,
        refresh,
    })
}

/// After zhangsan's sign-out: no instance honours his session, access or refresh token any
/// more, and `APP` was sent one logout token for his session within 5 s.
async fn assert_refused_everywhere(z: &Offboarding) {
    let mut left: Vec<(String, Vec<&str>)> = Vec::new();
    for node in &z.c.nodes {
        let held = still_works(node, &z.browser, &z.access, &z.refresh).await;
        left.push((node.base.clone(), held));
    }
    let tokens = common::wait_for_logout_tokens(&z.got, 1, Duration::from_secs(5)).await;
    let logs: Vec<String> = z.c.nodes.iter().map(|n| n.log()).collect();
    assert!(
        left.iter().all(|(_, w)| w.is_empty()),
        "still working after the sign-out: {left:?}\n{}",
        logs.join("\n")
    );
    assert_one_logout_token_for_zhangsan(&tokens);
}

/// The `signed_out` entry of the cluster's login event log, read through `node`: its reason.
fn sign_out_reason(node: &Instance) -> String {
    let events = events_of(node);
    let e = events
        .iter()
        .find(|e| e["outcome"] == "signed_out")
        .expect("the sign-out is in the login event log");
    assert_eq!(e["user_id"], "zhangsan");
    e["reason"].as_str().expect("reason").to_owned()
}

/// The logout token `got` received: for zhangsan's session, to `APP`.
fn assert_one_logout_token_for_zhangsan(tokens: &[String]) {
    assert_eq!(
        tokens.len(),
        1,
        "one back-channel logout for the one session: {tokens:?}"
    );
    let claims = common::claims_of(&tokens[0]);
    assert_eq!(claims["sub"], "zhangsan");
    assert_eq!(claims["aud"], APP);
    assert!(claims["sid"].is_string(), "{claims}");
    assert!(claims["events"]
        .get("http://schemas.openid.net/event/backchannel-logout")
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_deleted_in_wecom_is_refused_by_every_instance_within_5_s_of_the_callback() {
    let Some(z) = cluster_with_zhangsan(
        "a_member_deleted_in_wecom_is_refused_by_every_instance_within_5_s_of_the_callback",
    )
    .await
    else {
        return;
    };
    // WeCom tells instance B; the load balancer may send the person's next requests anywhere.
    let target = wecom_oidc::simulator::CallbackTarget {
        url: format!("{}/callback/wecom/events", z.c.nodes[1].base),
        token: CALLBACK_TOKEN.into(),
        encoding_aes_key: CALLBACK_AES_KEY.into(),
    };
    let started = std::time::Instant::now();
    let delivery =
        z.c.sim
            .sim
            .delete_member_and_notify("zhangsan", &target)
            .await
            .expect("delivered");
    assert_eq!(delivery.status, 200, "{}", delivery.body);
    assert_refused_everywhere(&z).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    println!("deleted member refused everywhere and client told in {elapsed:?}");
    let reason = sign_out_reason(&z.c.nodes[0]);
    assert!(reason.contains("deleted"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_signout_from_the_cli_ends_a_persons_session_and_tokens_on_every_instance() {
    let Some(z) = cluster_with_zhangsan(
        "admin_signout_from_the_cli_ends_a_persons_session_and_tokens_on_every_instance",
    )
    .await
    else {
        return;
    };
    let [a, b] = [&z.c.nodes[0], &z.c.nodes[1]];
    // The operator asks instance B, through its admin socket, by the person's WeCom UserId.
    let out = Command::new(env!("CARGO_BIN_EXE_wecom-oidc"))
        .arg("--config")
        .arg(&b.config)
        .args(["admin", "signout", "zhangsan", "--reason", "laptop stolen"])
        .env_remove("SUDO_USER")
        .env("LOGNAME", "ops-li")
        .env("USER", "ops-li")
        .output()
        .await
        .expect("wecom-oidc admin signout");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(
        summary,
        serde_json::json!({"sessions": 1, "grants": 1, "refresh_tokens": 1, "logout_notifications": 1}),
    );
    // The member is still active in WeCom: only the sign-out refuses them.
    assert_refused_everywhere(&z).await;
    let reason = sign_out_reason(a);
    assert!(
        reason.contains("ops-li") && reason.contains("laptop stolen"),
        "{reason}"
    );
    // A new login works again: the sign-out ends what was, not the person. (Credentials from
    // logins in the second of the sign-out are void too: the store counts whole seconds.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let code = login(&z.browser, APP, APP_CB, a, b).await;
    assert_eq!(redeem(b, &code).await.0, StatusCode::OK);
    // Bad requests get the admin API's JSON errors.
    let out = Command::new(env!("CARGO_BIN_EXE_wecom-oidc"))
        .arg("--config")
        .arg(&a.config)
        .args(["admin", "signout", "zhangsan", "--connector", "nope"])
        .output()
        .await
        .expect("wecom-oidc admin signout");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown_connector"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `examples/nginx/wecom-oidc.conf` with the instances, the listen address and the certificate
/// substituted. Every substituted line must be found, so a change to the example's shape
/// fails this test rather than silently testing something else.
fn nginx_site(upstreams: &[&Instance], listen: &str, cert: &str, key: &str) -> String {
    let example = include_str!("../examples/nginx/wecom-oidc.conf");
    let mut out = String::new();
    let (mut servers, mut listens, mut certs) = (0, 0, 0);
    for line in example.lines() {
        let t = line.trim();
        if t.starts_with("server 127.0.0.1:") {
            // The example's instance lines: replaced by ours, with the same options.
            if servers == 0 {
                let options = t.split_once(' ').map(|x| x.1).unwrap_or_default();
                let options = options.split_once(' ').map(|x| x.1).unwrap_or_default();
                for node in upstreams {
                    let addr = node.base.trim_start_matches("http://");
                    out.push_str(&format!("    server {addr} {options}\n"));
                }
            }
            servers += 1;
            continue;
        }
        if t == "listen 443 ssl;" {
            out.push_str(&format!("    listen {listen} ssl;\n"));
            listens += 1;
            continue;
        }
        if let Some(rest) = t.strip_prefix("ssl_certificate ") {
            assert!(rest.ends_with(';'), "{line}");
            out.push_str(&format!("    ssl_certificate {cert};\n"));
            certs += 1;
            continue;
        }
        if let Some(rest) = t.strip_prefix("ssl_certificate_key ") {
            assert!(rest.ends_with(';'), "{line}");
            out.push_str(&format!("    ssl_certificate_key {key};\n"));
            certs += 1;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(
        servers >= 2 && listens == 1 && certs == 2,
        "the example changed shape"
    );
    out
}

/// A test CA and a certificate it issued for 127.0.0.1 (openssl CLI); returns the CA
/// certificate (for the client to trust), the server certificate and its key.
fn test_certificates(dir: &std::path::Path) -> (String, String, String) {
    let path = |name: &str| dir.join(name).display().to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        common::assert_success(&out, &format!("openssl {args:?}"));
    };
    let (ca, ca_key) = (path("ca.pem"), path("ca-key.pem"));
    let (cert, key, csr, ext) = (
        path("cert.pem"),
        path("key.pem"),
        path("cert.csr"),
        path("ext.cnf"),
    );
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=wecom-oidc test CA",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &key,
        "-out",
        &csr,
    ]);
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    (ca, cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_with_the_example_config_in_front_of_two_instances_logs_people_in() {
    let Some(pg) = pg_url("nginx_with_the_example_config_in_front_of_two_instances_logs_people_in")
    else {
        return;
    };
    let Some(nginx_bin) =
        common::nginx_for("nginx_with_the_example_config_in_front_of_two_instances_logs_people_in")
    else {
        return;
    };
    let db = TestDatabase::create(&pg).await;
    let sim = start_simulator().await;
    // nginx cannot listen on port 0 and tell us the port, and the issuer must be known before
    // the instances start: take a free port from the kernel and hand it to nginx. Another
    // process could take it in between; nginx then fails to start and says so.
    let port = common::free_port();
    let issuer = format!("https://127.0.0.1:{port}");
    let starts = (0..2).map(|_| {
        let text = |dir: &std::path::Path| config_text(&db.url, &sim, &issuer, dir);
        Instance::start(text)
    });
    let mut nodes = futures_util::future::join_all(starts).await;
    let prefix = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = test_certificates(prefix.path());
    let site = nginx_site(
        &nodes.iter().collect::<Vec<_>>(),
        &format!("127.0.0.1:{port}"),
        &cert,
        &key,
    );
    let nginx = start_nginx(&nginx_bin, prefix, &site, port).await;
    let root = reqwest::Certificate::from_pem(&std::fs::read(&ca).expect("CA")).expect("PEM");
    let client = || {
        reqwest::Client::builder()
            .add_root_certificate(root.clone())
            .cookie_store(true)
            .redirect(Policy::none())
            .build()
            .expect("client")
    };

    // Discovery through nginx names the public issuer.
    let discovery = common::get_json_with(
        &client(),
        format!("{issuer}/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(discovery["issuer"], issuer.as_str());
    let readyz = format!("{issuer}/readyz");
    let ready = client().get(readyz).send().await.expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK, "{}", nginx.error_log());

    // Logins through nginx, which spreads their requests over both instances.
    let login_through = |b: reqwest::Client| {
        let issuer = issuer.clone();
        async move {
            let mut url = authorize_url(APP, APP_CB, &[]).replace(ISSUER, &issuer);
            for _ in 0..12 {
                if url.starts_with(APP_CB) {
                    break;
                }
                let resp = b.get(&url).send().await.expect("request");
                assert!(resp.status().is_redirection(), "{url}: {}", resp.status());
                let base = url::Url::parse(&url).expect("url");
                url = base.join(&location(&resp)).expect("Location").to_string();
            }
            let q = query(&url);
            assert_eq!(
                q.get("iss"),
                Some(&issuer),
                "RFC 9207 iss is the public issuer"
            );
            let code = q.get("code").cloned().expect("code");
            let resp = b
                .post(format!("{issuer}/token"))
                .basic_auth(APP, Some(APP_SECRET))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", APP_CB),
                ])
                .send()
                .await
                .expect("token");
            assert_eq!(resp.status(), StatusCode::OK);
            let tokens: Value = resp.json().await.expect("token JSON");
            let resp = b
                .get(format!("{issuer}/userinfo"))
                .bearer_auth(str_of(&tokens, "access_token"))
                .send()
                .await
                .expect("userinfo");
            assert_eq!(resp.status(), StatusCode::OK);
            let info: Value = resp.json().await.expect("userinfo JSON");
            assert_eq!(info["sub"], "zhangsan");
        }
    };
    for _ in 0..3 {
        login_through(client()).await;
    }
    let requests = |node: &Instance| node.log().matches("\"message\":\"request\"").count();
    // Access lines are buffered and written at least every 0.5 s (docs/deploying.md): wait for
    // them, boundedly, rather than read a log that is behind.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !nodes.iter().all(|n| requests(n) > 0) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        nodes.iter().all(|n| requests(n) > 0),
        "nginx used both instances: {:?}",
        nodes.iter().map(requests).collect::<Vec<_>>()
    );

    // One instance stops (a rolling restart): logins through nginx go on.
    let mut stopped = nodes.remove(0);
    stopped.child.kill().await.expect("kill");
    for _ in 0..3 {
        login_through(client()).await;
    }
    assert_eq!(
        sim.gettoken_calls().await,
        1,
        "one WeCom token for the cluster"
    );
}
