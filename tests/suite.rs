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

mod common;

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use wecom_oidc::clock::ManualClock;
use wecom_oidc::connector::registry::ConnectorConfig;
use wecom_oidc::connector::wecom::CallbackSettings;
use wecom_oidc::connector::wecom_suite::AppKind;
use wecom_oidc::connector::wecom_suite::SuiteSettings;
use wecom_oidc::provider::Client;
use wecom_oidc::secret::Secret;
use wecom_oidc::simulator::{
    AppSpec, CallbackTarget, CorpSeed, Delivery, Simulator, SimulatorConfig, SuiteKind, SuiteSpec,
    VisibleRange,
};

use common::{
    browser_as, claims_of, code_form, location, pkce, query, refresh_form, str_of, Outcome,
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

/// The simulator on its own port (it outlives a provider restart), with its configuration
/// changed by `configure` and corp B added.
async fn simulator_with(
    clock: &ManualClock,
    configure: fn(&mut SimulatorConfig),
) -> (Simulator, String) {
    let (sim, base) =
        common::serve_simulator_with_clock("", Arc::new(clock.clone()), configure).await;
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
    let listener = common::ephemeral_listener().await;
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
    let connectors = vec![Arc::new(s) as Arc<dyn ConnectorConfig>];
    let config = wecom_oidc::testkit::config(&issuer, addr, data, connectors, vec![client]);
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
    let router = wecom_oidc::app::with_middleware(built.router).with_hot_routes(built.hot);
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

/// What each test starts from: a clock, a data folder, the simulator and a provider over them.
struct World {
    clock: ManualClock,
    dir: tempfile::TempDir,
    sim: Simulator,
    base: String,
    p: Provider,
}

/// A [`World`] whose `wecom-suite` connector `customize` changes.
async fn world(customize: fn(&mut SuiteSettings)) -> World {
    world_with(|_| {}, customize).await
}

/// [`world`] with the simulator's configuration changed by `configure`.
async fn world_with(
    configure: fn(&mut SimulatorConfig),
    customize: fn(&mut SuiteSettings),
) -> World {
    let clock = clock();
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, base) = simulator_with(&clock, configure).await;
    let p = provider(&sim, &base, &clock, dir.path(), customize).await;
    World {
        clock,
        dir,
        sim,
        base,
        p,
    }
}

/// A [`world`] where WeCom's ticket has arrived and both corps have installed the suite.
async fn installed(customize: fn(&mut SuiteSettings)) -> World {
    let w = world(customize).await;
    ticket_and_installs(&w.sim).await;
    w
}

/// A desktop browser.
const DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64)";
/// WeCom's in-app browser (§9: `wxwork`).
const IN_APP: &str = "Mozilla/5.0 (iPhone) wxwork/4.1.0 MicroMessenger/7.0.1";

/// `/authorize` of our client with `scope`, PKCE and `state=s1`.
fn authorize_url(p: &Provider, scope: &str) -> String {
    let challenge = common::s256(VERIFIER);
    let client = (CLIENT, REDIRECT_URI);
    common::code_request_url(&p.issuer, client, scope, ("s1", "n1"), &pkce(&challenge))
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
    let mut next = authorize_url(p, scope);
    for _ in 0..8 {
        let resp = b.get(&next).send().await.expect("request");
        let status = resp.status();
        if !status.is_redirection() {
            return Outcome::Page(status, resp.text().await.unwrap_or_default());
        }
        let location = location(&resp);
        if location.starts_with(REDIRECT_URI) {
            return Outcome::Redirect(query(&location));
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
    location(&resp)
}

/// `/authorize`, then straight back to our callback with `code` in place of WeCom's page (a
/// code the page issued earlier, or none at all).
async fn callback_with_code(p: &Provider, code: &str) -> reqwest::Response {
    let b = browser_as(DESKTOP);
    let resp = b
        .get(authorize_url(p, "openid"))
        .send()
        .await
        .expect("authorize");
    let q = query(&location(&resp));
    b.get(format!(
        "{}?code={code}&state={}",
        q["redirect_uri"], q["state"]
    ))
    .send()
    .await
    .expect("callback")
}

async fn login(w: &World, corp: &str, member: &str) -> Outcome {
    login_with(&w.p, corp, member, "openid profile offline_access").await
}

async fn tokens(w: &World, corp: &str, member: &str) -> Value {
    tokens_with(w, corp, member, "openid profile offline_access").await
}

async fn tokens_with(w: &World, corp: &str, member: &str, scope: &str) -> Value {
    let q = login_with(&w.p, corp, member, scope).await.query();
    let code = q.get("code").unwrap_or_else(|| panic!("no code: {q:?}"));
    let form = code_form(code, REDIRECT_URI, &[("code_verifier", VERIFIER)]);
    let (status, body) = common::token(&w.p.issuer, (CLIENT, SECRET), &form).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    body
}

async fn refresh(w: &World, refresh_token: &str) -> (reqwest::StatusCode, Value) {
    common::token(&w.p.issuer, (CLIENT, SECRET), &refresh_form(refresh_token)).await
}

fn claims(token_response: &Value) -> Value {
    claims_of(str_of(token_response, "id_token"))
}

fn sub(token_response: &Value) -> String {
    str_of(&claims(token_response), "sub").to_owned()
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

/// Asserts that a callback of the simulator was delivered and answered `success`.
fn answered_success(d: Result<Delivery, String>) {
    let d = d.expect("delivered");
    assert_eq!((d.status, d.body.as_str()), (200, "success"));
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
        answered_success(d);
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
    let w = installed(|_| {}).await;

    let a = tokens(&w, CORP_A, "zhangsan").await;
    let b = tokens(&w, CORP_B, "zhangsan").await;
    let again = tokens(&w, CORP_A, "zhangsan").await;
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
        w.sim.suite_calls(),
        (1, 2),
        "(get_suite_token, get_corp_token) calls"
    );
    // Inside WeCom: the OAuth link with the SuiteID (§8), same person, same subject.
    match login_as(IN_APP, &w.p, CORP_B, "zhangsan", "openid").await {
        Outcome::Redirect(q) => assert!(q.contains_key("code"), "{q:?}"),
        other => panic!("in-app login: {other:?}"),
    }
    // §7: a third-party app reads the id in place of a department name: `#id` in `groups`.
    let g = groups(&tokens_with(&w, CORP_A, "zhangsan", "openid groups").await);
    assert!(
        !g.is_empty() && g.iter().all(|x| x.starts_with('#')),
        "{g:?}"
    );
    // The suite's WeCom calls are counted under WeCom's metric families, like a self-built
    // app's: one suite token, two corp tokens.
    let (status, metrics) = common::get(format!("{}/metrics", w.p.issuer)).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    for (endpoint, n) in [
        ("/cgi-bin/service/get_suite_token", "1"),
        ("/cgi-bin/service/get_corp_token", "2"),
    ] {
        let line = format!(
            "wecom_oidc_wecom_api_calls_total{{endpoint=\"{endpoint}\",errcode=\"0\"}} {n}"
        );
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(
        common::has_metric_line(
            &metrics,
            &[
                "wecom_oidc_wecom_api_calls_total",
                "/cgi-bin/service/auth/getuserinfo3rd"
            ]
        ),
        "{metrics}"
    );
    w.p.stop().await;
}

/// `sub = "corp_userid"` gives `CorpID/userid`; `allowed_corps` refuses other corps' people
/// with an access-denied page.
#[tokio::test]
async fn allowed_corps_refuses_other_corps_and_corp_userid_subjects_name_the_corp() {
    let w = installed(|s| {
        s.subject = wecom_oidc::connector::wecom_suite::SuiteSubject::CorpUserid;
        s.allowed_corps = vec![CORP_A.into()];
    })
    .await;
    let a = tokens(&w, CORP_A, "zhangsan").await;
    assert_eq!(sub(&a), format!("{CORP_A}/zhangsan"));
    match login(&w, CORP_B, "zhangsan").await {
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
    w.p.stop().await;
}

/// After `cancel_auth` the corp's people can no longer log in, and their grants end at the
/// next refresh; the other corp is untouched.
#[tokio::test]
async fn cancel_auth_ends_logins_and_refreshes_for_that_corp_only() {
    let w = installed(|_| {}).await;
    let a = tokens(&w, CORP_A, "zhangsan").await;
    let b = tokens(&w, CORP_B, "zhangsan").await;

    // A code WeCom issued just before the corp removed the app.
    let late = w.sim.issue_suite_code(SUITE_ID, CORP_B, "zhangsan");
    answered_success(w.sim.cancel_suite(SUITE_ID, CORP_B).await);

    let (status, body) = refresh(&w, b["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let resp = callback_with_code(&w.p, &late).await;
    assert_eq!(resp.status(), reqwest::StatusCode::FORBIDDEN);
    let page = resp.text().await.expect("page");
    assert!(page.contains("has not installed this WeCom app"), "{page}");
    let (status, body) = refresh(&w, a["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    w.p.stop().await;
}

/// A restarted provider over the same sled directory still has the ticket and the permanent
/// codes: once every token has expired, logins of both corps fetch new ones without any new
/// push or install.
#[tokio::test]
async fn a_restart_loses_neither_the_ticket_nor_the_permanent_codes() {
    // Tokens live 10 minutes here, so that they expire while the ticket (30 minutes) is
    // still good and no new one is pushed.
    let w = world_with(|c| c.token_ttl = 600, |_| {}).await;
    ticket_and_installs(&w.sim).await;
    let before = tokens(&w, CORP_B, "zhangsan").await;
    let World {
        clock,
        dir,
        sim,
        base,
        p,
    } = w;
    p.stop().await;

    let p = provider(&sim, &base, &clock, dir.path(), |_| {}).await;
    let w = World {
        clock,
        dir,
        sim,
        base,
        p,
    };
    w.clock.advance(600 * 2);
    let after = tokens(&w, CORP_B, "zhangsan").await;
    assert_eq!(sub(&before), sub(&after));
    tokens(&w, CORP_A, "zhangsan").await;
    let (suite_calls, corp_calls) = w.sim.suite_calls();
    assert_eq!(suite_calls, 2, "one suite token before, one after expiry");
    assert_eq!(corp_calls, 3, "B before; B and A after expiry");
    w.p.stop().await;
}

/// The SuiteID of the 代开发 template.
const TEMPLATE: &str = "wwsuite0000000dk01";

/// A 代开发 connector for corp B's app made from [`TEMPLATE`].
fn customised(s: &mut SuiteSettings) {
    s.suite_id = TEMPLATE.into();
    // The simulator gives the first installed app of a corp this AgentId.
    *s = s.clone().customised(CORP_B, 3_000_001);
}

/// The template's ticket arrives and corp B authorises the 代开发 app.
async fn template_installed_by_corp_b(sim: &Simulator) {
    for d in [
        sim.push_suite_ticket(TEMPLATE).await,
        sim.install_suite(TEMPLATE, CORP_B, VisibleRange::whole_corp())
            .await,
    ] {
        answered_success(d);
    }
    assert_eq!(sim.suite_agent_id(TEMPLATE, CORP_B), Some(3_000_001));
}

/// §12 代开发: a member of the customer corp logs in through the corp's own `CorpApp` page; the
/// token comes from the template's suite token and the corp's permanent code. Department names
/// are withheld until the corp's admin authorises them (§7): until then `groups` carries `#id`;
/// after `change_auth` the names.
#[tokio::test]
async fn a_member_of_a_customised_app_corp_logs_in_with_groups_as_ids_until_names_are_authorised() {
    let w = world(customised).await;
    template_installed_by_corp_b(&w.sim).await;

    let t = tokens_with(&w, CORP_B, "zhangsan", "openid profile groups").await;
    assert_eq!(sub(&t), format!("{CORP_B}/zhangsan"));
    assert_eq!(claims(&t)["corp_id"], CORP_B);
    let before = groups(&t);
    assert!(
        !before.is_empty() && before.iter().all(|g| g.starts_with('#')),
        "{before:?}"
    );
    assert_eq!(w.sim.suite_calls(), (1, 1));

    let d = w
        .sim
        .authorise_department_names(TEMPLATE, CORP_B, true)
        .await
        .expect("delivered")
        .expect("change_auth pushed");
    assert_eq!((d.status, d.body.as_str()), (200, "success"));
    let after = groups(&tokens_with(&w, CORP_B, "zhangsan", "openid groups").await);
    assert_eq!(after.len(), before.len(), "{before:?} {after:?}");
    assert!(after.iter().all(|g| !g.starts_with('#')), "{after:?}");

    // A 代开发 connector serves its one corp: corp A's people are not offered (its page is
    // corp B's), and corp A's code would not be redeemed by corp B's token anyway.
    w.p.stop().await;
}

/// §8 `change_auth`: a corp that widens the app's visible range lets in the member it had
/// left out, without a restart; before that the member gets the page saying who can change it.
#[tokio::test]
async fn change_auth_widening_the_visible_range_lets_the_member_in() {
    let w = world(|_| {}).await;
    w.sim.push_suite_ticket(SUITE_ID).await.expect("ticket");
    let only_lisi = VisibleRange {
        users: vec!["lisi".into()],
        ..VisibleRange::default()
    };
    w.sim
        .install_suite(SUITE_ID, CORP_A, only_lisi)
        .await
        .expect("installed");
    match login(&w, CORP_A, "zhangsan").await {
        Outcome::Page(status, body) => {
            assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{body}");
            assert!(body.contains("visible range"), "{body}");
        }
        other => panic!("refused: {other:?}"),
    }
    answered_success(
        w.sim
            .change_suite_auth(SUITE_ID, CORP_A, VisibleRange::whole_corp())
            .await,
    );
    tokens(&w, CORP_A, "zhangsan").await;
    w.p.stop().await;
}

/// Before WeCom's first `suite_ticket` the provider stays ready (WeCom must reach its callback
/// to deliver the ticket) and `/readyz` says what it waits for; a login that gets that far
/// ends on a page explaining it, not a 500.
#[tokio::test]
async fn before_the_first_suite_ticket_readyz_and_the_login_explain_it() {
    let w = world(|_| {}).await;
    let (status, body) = common::get(format!("{}/readyz", w.p.issuer)).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(body.contains("no suite_ticket received yet"), "{body}");

    let resp = callback_with_code(&w.p, "some-code").await;
    assert_eq!(resp.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let page = resp.text().await.expect("page");
    assert!(page.contains("suite_ticket"), "{page}");
    w.p.stop().await;
}

/// The other reading of a 代开发 app's token (`corp_token = "gettoken"`: `gettoken` with the
/// permanent code as `corpsecret`) logs in the same member, with no `get_corp_token` call.
#[tokio::test]
async fn a_customised_app_may_take_its_corp_token_from_gettoken_with_the_permanent_code() {
    let w = world(|s| {
        customised(s);
        s.corp_token = wecom_oidc::connector::wecom_suite::CorpTokenApi::Gettoken;
    })
    .await;
    template_installed_by_corp_b(&w.sim).await;
    let t = tokens(&w, CORP_B, "lisi").await;
    assert_eq!(sub(&t), format!("{CORP_B}/lisi"));
    assert_eq!(w.sim.suite_calls(), (1, 0), "no get_corp_token");
    assert_eq!(w.sim.gettoken_calls(), 1);
    w.p.stop().await;
}

/// §8: WeCom pushes a `suite_ticket` on its own every 10 minutes (here every 50 ms); the
/// provider keeps the latest, and a corp's install then works without any push by hand.
#[tokio::test]
async fn tickets_pushed_on_a_schedule_let_the_suite_work() {
    let w = world(|_| {}).await;
    let pusher = w
        .sim
        .push_suite_tickets_every(SUITE_ID, std::time::Duration::from_millis(50));
    // Bounded wait for the schedule: at most 5 s.
    let mut waiting = true;
    for _ in 0..100 {
        let body = common::get_text(format!("{}/readyz", w.p.issuer)).await;
        if !body.contains("no suite_ticket received yet") {
            waiting = false;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!waiting, "no ticket arrived");
    // Several tickets later, the latest still serves (WeCom accepts only the latest one).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    answered_success(
        w.sim
            .install_suite(SUITE_ID, CORP_A, VisibleRange::whole_corp())
            .await,
    );
    tokens(&w, CORP_A, "zhangsan").await;
    pusher.abort();
    w.p.stop().await;
}
