//! WeCom third-party apps (suites) end to end: the provider with a `wecom-suite` connector and
//! the simulator's service provider, served on ephemeral ports. Customer corps install the
//! suite (the simulator pushes `create_auth` to our command callback), WeCom's `suite_ticket`
//! arrives there too, and members of several corps log in to one client (wecom-api.md §8,
//! §11, §12).
//!
//! Logins walk the simulator's login pages: the suite's `ServiceApp` page (a member of any
//! installing corp picked as `CORPID/userid`), or for a 代开发 app the customer corp's own
//! `CorpApp` page.
//!
//! Run with `cargo test --test suite`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use wecom_oidc::clock::ManualClock;
use wecom_oidc::config::Config;
use wecom_oidc::connector::registry::ConnectorConfig;
use wecom_oidc::connector::wecom::CallbackSettings;
use wecom_oidc::connector::wecom_suite::AppKind;
use wecom_oidc::connector::wecom_suite::SuiteSettings;
use wecom_oidc::provider::Client;
use wecom_oidc::secret::Secret;
use wecom_oidc::simulator::{
    AppSpec, CallbackTarget, CorpSeed, Simulator, SimulatorConfig, SuiteKind, SuiteSpec,
    VisibleRange,
};

/// The simulator's primary corp (示例科技) and a second company; both have a `zhangsan`.
const CORP_A: &str = "ww7f3c2a1b9d8e6f50";
const CORP_B: &str = "wwb0b0b0b0b0b0b0b0";
const SUITE_ID: &str = "wwsuite00000000001";
const SUITE_SECRET: &str = "suite-secret-for-tests";
const CALLBACK_TOKEN: &str = "suiteCallbackToken";
const AES_KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
const STORE_KEY: &str = "store-key-for-the-suite-tests-0123456789";
const CLIENT: &str = "rp-suite";
const SECRET: &str = "rp-secret-for-suite-tests";
const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
const VERIFIER: &str = "suite-test-code-verifier-0123456789-abcdefghijklmnop";

/// The simulator on its own port (it outlives a provider restart).
async fn simulator(clock: &ManualClock) -> (Simulator, String) {
    simulator_with(clock, |_| {}).await
}

/// [`simulator`] with its configuration changed by `configure`.
async fn simulator_with(
    clock: &ManualClock,
    configure: fn(&mut SimulatorConfig),
) -> (Simulator, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut config = SimulatorConfig::demo(base.clone());
    configure(&mut config);
    let sim = Simulator::new(config, Arc::new(clock.clone()));
    sim.add_corp(
        CORP_B,
        CorpSeed::Second,
        AppSpec {
            agent_id: 1_000_003,
            secret: "corp-b-self-built-secret".into(),
            visible_range: VisibleRange::whole_corp(),
            trusted_domains: Vec::new(),
            legacy_app: false,
        },
    );
    let router = sim.router();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    (sim, base)
}

/// A running provider: its issuer and how to stop it.
struct Provider {
    issuer: String,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Provider {
    /// Stops it and waits until it has let go of its store.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.done.await;
    }
}

/// Starts a provider over `data` with one `wecom-suite` connector `suite` pointing at the
/// simulator, and registers its command callback as the suite's in the simulator.
async fn provider(
    sim: &Simulator,
    sim_base: &str,
    clock: &ManualClock,
    data: &Path,
    customize: fn(&mut SuiteSettings),
) -> Provider {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let issuer = format!("http://{addr}");
    let mut s = SuiteSettings::new(
        "suite",
        SUITE_ID,
        SUITE_SECRET,
        CallbackSettings {
            token: CALLBACK_TOKEN.into(),
            encoding_aes_key: AES_KEY.into(),
        },
        STORE_KEY,
    );
    s.api_base = sim_base.into();
    s.oauth_base = sim_base.into();
    s.sso_base = sim_base.into();
    customize(&mut s);
    let (s_id, s_kind) = (
        s.suite_id.clone(),
        match s.kind {
            AppKind::ThirdParty => SuiteKind::ThirdParty,
            AppKind::Customised => SuiteKind::Customised,
        },
    );
    let mut client = Client {
        id: CLIENT.into(),
        name: "RP of the suite".into(),
        secret: Some(Secret::new(SECRET.to_string())),
        redirect_uris: vec![REDIRECT_URI.into()],
        settings: Default::default(),
    };
    client.settings.connector = Some("suite".into());
    let config = Config {
        keys_reload_interval: wecom_oidc::tokens::shared::DEFAULT_RELOAD_INTERVAL_SECS,
        sled_cache_mb: wecom_oidc::config::DEFAULT_SLED_CACHE_MB,
        issuer: issuer.clone(),
        listen: addr,
        data_dir: data.join("store"),
        store: Default::default(),
        keys_dir: data.join("keys"),
        connectors: vec![Arc::new(s) as Arc<dyn ConnectorConfig>],
        deprecations: Vec::new(),
        clients: vec![client],
        lifetimes: Default::default(),
        limits: Default::default(),
        session: Default::default(),
        login_event_retention: wecom_oidc::config::DEFAULT_EVENT_RETENTION_DAYS * 86_400,
        playground: false,
        admin: None,
    };
    // A restarted provider may find the previous one still letting go of the sled directory.
    let mut tries = 0;
    let built = loop {
        match wecom_oidc::app::build(&config, Arc::new(clock.clone())).await {
            Ok(b) => break b,
            Err(e) if tries < 100 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("provider does not start: {e}"),
        }
    };
    let router = wecom_oidc::app::with_middleware(built.router);
    drop(built.provider);
    drop(built.store);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        let _ = wecom_oidc::server::serve(listener, router, async {
            let _ = stopped.await;
        })
        .await;
    });
    sim.add_suite(SuiteSpec {
        suite_id: s_id,
        kind: s_kind,
        suite_secret: SUITE_SECRET.into(),
        callback: CallbackTarget {
            url: format!("{issuer}/callback/suite/events"),
            token: CALLBACK_TOKEN.into(),
            encoding_aes_key: AES_KEY.into(),
        },
    });
    Provider { issuer, stop, done }
}

/// A desktop browser.
const DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64)";
/// WeCom's in-app browser (§9: `wxwork`).
const IN_APP: &str = "Mozilla/5.0 (iPhone) wxwork/4.1.0 MicroMessenger/7.0.1";

fn browser() -> reqwest::Client {
    browser_as(DESKTOP)
}

fn browser_as(user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .expect("client")
}

/// Where a login ends: the RP callback's query, or a page we showed instead.
#[derive(Debug)]
enum Outcome {
    Redirect(HashMap<String, String>),
    Page(reqwest::StatusCode, String),
}

/// `/authorize` with `scope`, then the login page WeCom would show: the suite's `ServiceApp`
/// page (where `member` of `corp` is picked as `CORPID/userid`) or, for a 代开发 app, the
/// corp's `CorpApp` page → our callback → the RP.
async fn login_with(p: &Provider, corp: &str, member: &str, scope: &str) -> Outcome {
    login_as(DESKTOP, p, corp, member, scope).await
}

/// [`login_with`] from a browser that sends `user_agent`.
async fn login_as(
    user_agent: &str,
    p: &Provider,
    corp: &str,
    member: &str,
    scope: &str,
) -> Outcome {
    let b = browser_as(user_agent);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let mut url = url::Url::parse(&format!("{}/authorize", p.issuer)).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("response_type", "code")
        .append_pair("scope", scope)
        .append_pair("state", "s1")
        .append_pair("nonce", "n1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut next = url.to_string();
    for _ in 0..8 {
        let resp = b.get(&next).send().await.expect("request");
        let status = resp.status();
        if !status.is_redirection() {
            return Outcome::Page(status, resp.text().await.unwrap_or_default());
        }
        let location = resp.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned();
        if location.starts_with(REDIRECT_URI) {
            let u = url::Url::parse(&location).expect("location");
            return Outcome::Redirect(u.query_pairs().into_owned().collect());
        }
        if location.contains("/wwlogin/sso/login") || location.contains("/connect/oauth2/authorize")
        {
            next = pick_member(&b, &location, corp, member).await;
            continue;
        }
        next = location;
    }
    panic!("too many redirects");
}

/// On the simulator's web login page at `page`, picks `member` of `corp` (its form posts the
/// page's parameters back with the choice); returns where the page redirects.
async fn pick_member(b: &reqwest::Client, page: &str, corp: &str, member: &str) -> String {
    let u = url::Url::parse(page).expect("login page URL");
    let q: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    // The web login's `ServiceApp`, or the in-app link with the SuiteID (§8, no agentid).
    let service_app = q
        .iter()
        .any(|(k, v)| k == "login_type" && v == "ServiceApp")
        || !q.iter().any(|(k, _)| k == "agentid");
    let shown = if service_app {
        assert!(
            q.iter()
                .any(|(k, v)| k == "appid" && v.starts_with("wwsuite")),
            "{page}"
        );
        format!("{corp}/{member}")
    } else {
        assert!(q.iter().any(|(k, v)| k == "appid" && v == corp), "{page}");
        member.to_owned()
    };
    let html = b
        .get(page)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains(&format!("member:{shown}")),
        "{shown} is offered: {html}"
    );
    let mut form = q;
    form.push(("choice".into(), format!("member:{shown}")));
    let mut action = u.clone();
    action.set_query(None);
    let resp = b.post(action).form(&form).send().await.expect("submit");
    assert!(resp.status().is_redirection(), "{}", resp.status());
    resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// `/authorize`, then straight back to our callback with `code` in place of WeCom's page (a
/// code the page issued earlier, or none at all).
async fn callback_with_code(p: &Provider, code: &str) -> reqwest::Response {
    let b = browser();
    let mut url = url::Url::parse(&format!("{}/authorize", p.issuer)).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", "s1")
        .append_pair(
            "code_challenge",
            &URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes())),
        )
        .append_pair("code_challenge_method", "S256");
    let resp = b.get(url.as_str()).send().await.expect("authorize");
    let to_wecom =
        url::Url::parse(resp.headers()["location"].to_str().expect("ascii")).expect("url");
    let q: HashMap<String, String> = to_wecom.query_pairs().into_owned().collect();
    b.get(format!(
        "{}?code={code}&state={}",
        q["redirect_uri"], q["state"]
    ))
    .send()
    .await
    .expect("callback")
}

async fn login(p: &Provider, _sim: &Simulator, corp: &str, member: &str) -> Outcome {
    login_with(p, corp, member, "openid profile offline_access").await
}

async fn tokens(p: &Provider, sim: &Simulator, corp: &str, member: &str) -> Value {
    tokens_with(p, sim, corp, member, "openid profile offline_access").await
}

async fn tokens_with(
    p: &Provider,
    _sim: &Simulator,
    corp: &str,
    member: &str,
    scope: &str,
) -> Value {
    let q = match login_with(p, corp, member, scope).await {
        Outcome::Redirect(q) => q,
        other => panic!("login failed: {other:?}"),
    };
    let code = q.get("code").unwrap_or_else(|| panic!("no code: {q:?}"));
    let resp = reqwest::Client::new()
        .post(format!("{}/token", p.issuer))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    resp.json().await.expect("token JSON")
}

async fn refresh(p: &Provider, refresh_token: &str) -> (reqwest::StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/token", p.issuer))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .expect("refresh request");
    let status = resp.status();
    (status, resp.json().await.expect("JSON"))
}

fn claims(token_response: &Value) -> Value {
    let jwt = token_response["id_token"].as_str().expect("id_token");
    let payload = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("JSON")
}

fn sub(token_response: &Value) -> String {
    claims(token_response)["sub"]
        .as_str()
        .expect("sub")
        .to_owned()
}

/// The `groups` claim of a token response.
fn groups(token_response: &Value) -> Vec<String> {
    claims(token_response)["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("groups: {}", claims(token_response)))
        .iter()
        .map(|g| g.as_str().expect("string").to_owned())
        .collect()
}

/// The ticket arrives and both corps install the suite, each delivery answered `success`.
async fn ticket_and_installs(sim: &Simulator) {
    for d in [
        sim.push_suite_ticket(SUITE_ID).await,
        sim.install_suite(SUITE_ID, CORP_A, VisibleRange::whole_corp())
            .await,
        sim.install_suite(SUITE_ID, CORP_B, VisibleRange::whole_corp())
            .await,
    ] {
        let d = d.expect("delivered");
        assert_eq!((d.status, d.body.as_str()), (200, "success"));
    }
}

fn clock() -> ManualClock {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    ManualClock::new(i64::try_from(now).expect("i64"))
}

/// §12: `zhangsan` of corp A and `zhangsan` of corp B are two people; one client, one suite,
/// two subjects. The suite token is fetched once for all of it, each corp token once.
#[tokio::test]
async fn members_of_two_installing_corps_get_distinct_subjects_from_one_client() {
    let clock = clock();
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, base) = simulator(&clock).await;
    let p = provider(&sim, &base, &clock, dir.path(), |_| {}).await;
    ticket_and_installs(&sim).await;

    let a = tokens(&p, &sim, CORP_A, "zhangsan").await;
    let b = tokens(&p, &sim, CORP_B, "zhangsan").await;
    let again = tokens(&p, &sim, CORP_A, "zhangsan").await;
    assert_ne!(sub(&a), sub(&b));
    assert_eq!(sub(&a), sub(&again), "open_userid is stable");
    assert!(
        sub(&a).starts_with("wo"),
        "sub is the open_userid: {}",
        sub(&a)
    );
    assert_eq!(claims(&a)["corp_id"], CORP_A);
    assert_eq!(claims(&b)["corp_id"], CORP_B);
    assert_eq!(
        sim.suite_calls(),
        (1, 2),
        "(get_suite_token, get_corp_token) calls"
    );
    // Inside WeCom: the OAuth link with the SuiteID (§8), same person, same subject.
    match login_as(IN_APP, &p, CORP_B, "zhangsan", "openid").await {
        Outcome::Redirect(q) => assert!(q.contains_key("code"), "{q:?}"),
        other => panic!("in-app login: {other:?}"),
    }
    // §7: a third-party app reads the id in place of a department name: `#id` in `groups`.
    let g = groups(&tokens_with(&p, &sim, CORP_A, "zhangsan", "openid groups").await);
    assert!(
        !g.is_empty() && g.iter().all(|x| x.starts_with('#')),
        "{g:?}"
    );
    p.stop().await;
}

/// `sub = "corp_userid"` gives `CorpID/userid`; `allowed_corps` refuses other corps' people
/// with an access-denied page.
#[tokio::test]
async fn allowed_corps_refuses_other_corps_and_corp_userid_subjects_name_the_corp() {
    let clock = clock();
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, base) = simulator(&clock).await;
    let p = provider(&sim, &base, &clock, dir.path(), |s| {
        s.subject = wecom_oidc::connector::wecom_suite::SuiteSubject::CorpUserid;
        s.allowed_corps = vec![CORP_A.into()];
    })
    .await;
    ticket_and_installs(&sim).await;
    let a = tokens(&p, &sim, CORP_A, "zhangsan").await;
    assert_eq!(sub(&a), format!("{CORP_A}/zhangsan"));
    match login(&p, &sim, CORP_B, "zhangsan").await {
        Outcome::Page(status, body) => {
            assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{body}");
            assert!(
                body.contains("not among the companies this service accepts"),
                "{body}"
            );
            assert!(body.contains("access_denied"), "the way back: {body}");
        }
        other => panic!("a page saying why: {other:?}"),
    }
    p.stop().await;
}

/// After `cancel_auth` the corp's people can no longer log in, and their grants end at the
/// next refresh; the other corp is untouched.
#[tokio::test]
async fn cancel_auth_ends_logins_and_refreshes_for_that_corp_only() {
    let clock = clock();
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, base) = simulator(&clock).await;
    let p = provider(&sim, &base, &clock, dir.path(), |_| {}).await;
    ticket_and_installs(&sim).await;
    let a = tokens(&p, &sim, CORP_A, "zhangsan").await;
    let b = tokens(&p, &sim, CORP_B, "zhangsan").await;

    // A code WeCom issued just before the corp removed the app.
    let late = sim.issue_suite_code(SUITE_ID, CORP_B, "zhangsan");
    let d = sim.cancel_suite(SUITE_ID, CORP_B).await.expect("delivered");
    assert_eq!((d.status, d.body.as_str()), (200, "success"));

    let (status, body) = refresh(&p, b["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let resp = callback_with_code(&p, &late).await;
    assert_eq!(resp.status(), reqwest::StatusCode::FORBIDDEN);
    let page = resp.text().await.expect("page");
    assert!(page.contains("has not installed this WeCom app"), "{page}");
    let (status, body) = refresh(&p, a["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    p.stop().await;
}

/// A restarted provider over the same sled directory still has the ticket and the permanent
/// codes: once every token has expired, logins of both corps fetch new ones without any new
/// push or install.
#[tokio::test]
async fn a_restart_loses_neither_the_ticket_nor_the_permanent_codes() {
    let clock = clock();
    let dir = tempfile::tempdir().expect("tempdir");
    // Tokens live 10 minutes here, so that they expire while the ticket (30 minutes) is
    // still good and no new one is pushed.
    let (sim, base) = simulator_with(&clock, |c| c.token_ttl = 600).await;
    let p = provider(&sim, &base, &clock, dir.path(), |_| {}).await;
    ticket_and_installs(&sim).await;
    let before = tokens(&p, &sim, CORP_B, "zhangsan").await;
    p.stop().await;

    let p = provider(&sim, &base, &clock, dir.path(), |_| {}).await;
    clock.advance(600 * 2);
    let after = tokens(&p, &sim, CORP_B, "zhangsan").await;
    assert_eq!(sub(&before), sub(&after));
    tokens(&p, &sim, CORP_A, "zhangsan").await;
    let (suite_calls, corp_calls) = sim.suite_calls();
    assert_eq!(suite_calls, 2, "one suite token before, one after expiry");
    assert_eq!(corp_calls, 3, "B before; B and A after expiry");
    p.stop().await;
}

/// The SuiteID of the 代开发 template.
const TEMPLATE: &str = "wwsuite0000000dk01";

/// A 代开发 connector for corp B's app made from [`TEMPLATE`].
fn customised(s: &mut SuiteSettings) {
    s.suite_id = TEMPLATE.into();
    s.kind = AppKind::Customised;
    s.corp_id = CORP_B.into();
    // The simulator gives the first installed app of a corp this AgentId.
    s.agent_id = 3_000_001;
    s.subject = wecom_oidc::connector::wecom_suite::SuiteSubject::CorpUserid;
}

/// The template's ticket arrives and corp B authorises the 代开发 app.
async fn template_installed_by_corp_b(sim: &Simulator) {
    for d in [
        sim.push_suite_ticket(TEMPLATE).await,
        sim.install_suite(TEMPLATE, CORP_B, VisibleRange::whole_corp())
            .await,
    ] {
        let d = d.expect("delivered");
        assert_eq!((d.status, d.body.as_str()), (200, "success"));
    }
    assert_eq!(sim.suite_agent_id(TEMPLATE, CORP_B), Some(3_000_001));
}

/// §12 代开发: a member of the customer corp logs in through the corp's own `CorpApp` page; the
/// token comes from the template's suite token and the corp's permanent code. Department names
/// are withheld until the corp's admin authorises them (§7): until then `groups` carries `#id`;
/// after `change_auth` the names.
#[tokio::test]
async fn a_member_of_a_customised_app_corp_logs_in_with_groups_as_ids_until_names_are_authorised() {
    let clock = clock();
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, base) = simulator(&clock).await;
    let p = provider(&sim, &base, &clock, dir.path(), customised).await;
    template_installed_by_corp_b(&sim).await;

    let t = tokens_with(&p, &sim, CORP_B, "zhangsan", "openid profile groups").await;
    assert_eq!(sub(&t), format!("{CORP_B}/zhangsan"));
    assert_eq!(claims(&t)["corp_id"], CORP_B);
    let before = groups(&t);
    assert!(
        !before.is_empty() && before.iter().all(|g| g.starts_with('#')),
        "{before:?}"
    );
    assert_eq!(sim.suite_calls(), (1, 1));

    let d = sim
        .authorise_department_names(TEMPLATE, CORP_B, true)
        .await
        .expect("delivered")
        .expect("change_auth pushed");
    assert_eq!((d.status, d.body.as_str()), (200, "success"));
    let after = groups(&tokens_with(&p, &sim, CORP_B, "zhangsan", "openid groups").await);
    assert_eq!(after.len(), before.len(), "{before:?} {after:?}");
    assert!(after.iter().all(|g| !g.starts_with('#')), "{after:?}");

    // A 代开发 connector serves its one corp: corp A's people are not offered (its page is
    // corp B's), and corp A's code would not be redeemed by corp B's token anyway.
    p.stop().await;
}

/// §8 `change_auth`: a corp that widens the app's visible range lets in the member it had
/// left out, without a restart; before that the member gets the page saying who can change it.
#[tokio::test]
async fn change_auth_widening_the_visible_range_lets_the_member_in() {
    let clock = clock();
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, base) = simulator(&clock).await;
    let p = provider(&sim, &base, &clock, dir.path(), |_| {}).await;
    sim.push_suite_ticket(SUITE_ID).await.expect("ticket");
    let only_lisi = VisibleRange {
        users: vec!["lisi".into()],
        ..VisibleRange::default()
    };
    sim.install_suite(SUITE_ID, CORP_A, only_lisi)
        .await
        .expect("installed");
    match login(&p, &sim, CORP_A, "zhangsan").await {
        Outcome::Page(status, body) => {
            assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{body}");
            assert!(body.contains("visible range"), "{body}");
        }
        other => panic!("refused: {other:?}"),
    }
    let d = sim
        .change_suite_auth(SUITE_ID, CORP_A, VisibleRange::whole_corp())
        .await
        .expect("delivered");
    assert_eq!((d.status, d.body.as_str()), (200, "success"));
    tokens(&p, &sim, CORP_A, "zhangsan").await;
    p.stop().await;
}

/// Before WeCom's first `suite_ticket` the provider stays ready (WeCom must reach its callback
/// to deliver the ticket) and `/readyz` says what it waits for; a login that gets that far
/// ends on a page explaining it, not a 500.
#[tokio::test]
async fn before_the_first_suite_ticket_readyz_and_the_login_explain_it() {
    let clock = clock();
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, base) = simulator(&clock).await;
    let p = provider(&sim, &base, &clock, dir.path(), |_| {}).await;
    let ready = reqwest::get(format!("{}/readyz", p.issuer))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), reqwest::StatusCode::OK);
    let body = ready.text().await.expect("body");
    assert!(body.contains("no suite_ticket received yet"), "{body}");

    let resp = callback_with_code(&p, "some-code").await;
    assert_eq!(resp.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let page = resp.text().await.expect("page");
    assert!(page.contains("suite_ticket"), "{page}");
    let _ = sim;
    p.stop().await;
}

/// The other reading of a 代开发 app's token (`corp_token = "gettoken"`: `gettoken` with the
/// permanent code as `corpsecret`) logs in the same member, with no `get_corp_token` call.
#[tokio::test]
async fn a_customised_app_may_take_its_corp_token_from_gettoken_with_the_permanent_code() {
    let clock = clock();
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, base) = simulator(&clock).await;
    let p = provider(&sim, &base, &clock, dir.path(), |s| {
        customised(s);
        s.corp_token = wecom_oidc::connector::wecom_suite::CorpTokenApi::Gettoken;
    })
    .await;
    template_installed_by_corp_b(&sim).await;
    let t = tokens(&p, &sim, CORP_B, "lisi").await;
    assert_eq!(sub(&t), format!("{CORP_B}/lisi"));
    assert_eq!(sim.suite_calls(), (1, 0), "no get_corp_token");
    assert_eq!(sim.gettoken_calls(), 1);
    p.stop().await;
}

/// §8: WeCom pushes a `suite_ticket` on its own every 10 minutes (here every 50 ms); the
/// provider keeps the latest, and a corp's install then works without any push by hand.
#[tokio::test]
async fn tickets_pushed_on_a_schedule_let_the_suite_work() {
    let clock = clock();
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, base) = simulator(&clock).await;
    let p = provider(&sim, &base, &clock, dir.path(), |_| {}).await;
    let pusher = sim.push_suite_tickets_every(SUITE_ID, std::time::Duration::from_millis(50));
    // Bounded wait for the schedule: at most 5 s.
    let mut waiting = true;
    for _ in 0..100 {
        let body = reqwest::get(format!("{}/readyz", p.issuer))
            .await
            .expect("readyz")
            .text()
            .await
            .expect("body");
        if !body.contains("no suite_ticket received yet") {
            waiting = false;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!waiting, "no ticket arrived");
    // Several tickets later, the latest still serves (WeCom accepts only the latest one).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let d = sim
        .install_suite(SUITE_ID, CORP_A, VisibleRange::whole_corp())
        .await
        .expect("delivered");
    assert_eq!((d.status, d.body.as_str()), (200, "success"));
    tokens(&p, &sim, CORP_A, "zhangsan").await;
    pusher.abort();
    p.stop().await;
}
