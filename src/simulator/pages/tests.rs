use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use tower::ServiceExt;

use super::super::{AppSpec, CodeGrant, CorpSeed, SimulatorConfig, SimulatorQuirks, VisibleRange};
use super::*;
use crate::clock::ManualClock;

const CORP: &str = "ww7f3c2a1b9d8e6f50";
const BASE: &str = "http://127.0.0.1:9/wecom-sim";
/// A redirect URI on the primary app's trusted domain.
const CB: &str = "http://app.example.com:8080/cb";

fn setup(config: impl FnOnce(&mut SimulatorConfig)) -> Simulator {
    let mut c = SimulatorConfig::demo(BASE);
    c.trusted_domains = vec!["app.example.com:8080".into()];
    config(&mut c);
    Simulator::new(c, Arc::new(ManualClock::new(1_700_000_000)))
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

async fn send(sim: &Simulator, req: Request<Body>) -> Answer {
    let res = match sim.router().oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    let status = res.status();
    let location = res
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body is readable");
    Answer {
        status,
        location,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(sim: &Simulator, uri: &str) -> Answer {
    send(sim, Request::get(uri).body(Body::empty()).expect("valid")).await
}

async fn post(sim: &Simulator, path: &str, form: &[(&str, &str)]) -> Answer {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("valid");
    send(sim, req).await
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The legacy QR login page of app `agentid` of corp `appid`, back to `redirect_uri`, state `a`.
fn qr_connect(appid: &str, agentid: i64, redirect_uri: &str) -> String {
    let redirect_uri = encode(redirect_uri);
    format!(
        "/wwopen/sso/qrConnect?appid={appid}&agentid={agentid}&redirect_uri={redirect_uri}&state=a"
    )
}

fn sso_form<'a>(redirect_uri: &'a str, state: &'a str, choice: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("login_type", "CorpApp"),
        ("appid", CORP),
        ("agentid", "1000002"),
        ("redirect_uri", redirect_uri),
        ("state", state),
        ("choice", choice),
    ]
}

/// Picks `choice` on the web login page (`/wwlogin/sso/login`) of the primary app.
async fn scan(sim: &Simulator, redirect_uri: &str, state: &str, choice: &str) -> Answer {
    post(
        sim,
        "/wwlogin/sso/login",
        &sso_form(redirect_uri, state, choice),
    )
    .await
}

/// Picks `choice` on the in-app page of the primary app, with `scope`, state `S1`, back to
/// [`CB`].
async fn in_app(sim: &Simulator, scope: &str, choice: &str) -> Answer {
    let form = [
        ("appid", CORP),
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", scope),
        ("state", "S1"),
        ("agentid", "1000002"),
        ("choice", choice),
    ];
    post(sim, "/connect/oauth2/authorize", &form).await
}

/// Splits a callback URL into its base and its query pairs.
fn callback(location: &str) -> (String, Vec<(String, String)>) {
    let url = url::Url::parse(location).expect("absolute callback URL");
    let pairs = url.query_pairs().into_owned().collect();
    let mut base = url.clone();
    base.set_query(None);
    (base.to_string(), pairs)
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// WeCom refuses on the page itself: no redirect, and the page names `needle`.
#[track_caller]
fn assert_error_page(answer: &Answer, needle: &str) {
    assert!(answer.location.is_none(), "{}", answer.body);
    assert!(
        answer.body.contains(needle),
        "missing {needle}: {}",
        answer.body
    );
}

/// The person refused (§3): back to [`CB`] with `state` and no `code`.
fn assert_refused(answer: &Answer, state: &str) {
    let expected = format!("{CB}?state={state}");
    assert_eq!(answer.location.as_deref(), Some(expected.as_str()));
}

/// What the code of a redirect back to the client stands for (redeeming it).
fn grant_of(sim: &Simulator, answer: &Answer) -> CodeGrant {
    let (_, pairs) = callback(answer.location.as_deref().expect("Location"));
    let code = value(&pairs, "code").expect("code");
    sim.redeem_code(code).expect("the code is live")
}

#[tokio::test]
async fn sso_login_page_lists_seeded_members_and_choices() {
    let sim = setup(|_| {});
    let uri = format!(
        "/wwlogin/sso/login?login_type=CorpApp&appid={CORP}&agentid=1000002&redirect_uri={}&state=abc&lang=zh",
        encode(CB)
    );
    let a = get(&sim, &uri).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    for needle in [
        "张三",
        "value=\"member:zhangsan\"",
        "value=\"member:ZhouBa\"",
        "value=\"external\"",
        "value=\"cancel\"",
        "扫码登录为",
        "action=\"http://127.0.0.1:9/wecom-sim/wwlogin/sso/login\"",
        "name=\"state\" value=\"abc\"",
    ] {
        assert!(a.body.contains(needle), "missing {needle}");
    }
    assert!(!a.body.contains("src=\"http"), "no external assets");
}

#[tokio::test]
async fn scanning_as_member_redirects_with_code_and_state() {
    let sim = setup(|_| {});
    let a = scan(&sim, CB, "xyz123", "member:zhangsan").await;
    assert_eq!(a.status, StatusCode::FOUND);
    let (base, pairs) = callback(a.location.as_deref().expect("Location"));
    assert_eq!(base, CB);
    assert_eq!(value(&pairs, "state"), Some("xyz123"));
    let code = value(&pairs, "code").expect("code");
    assert!(code.len() <= 512);
    let grant = sim.redeem_code(code).expect("the code is live");
    assert!(matches!(grant.subject, Subject::Member(ref u) if u == "zhangsan"));
    assert!(!grant.private_info, "web login codes carry no user_ticket");
}

#[tokio::test]
async fn callback_joins_existing_query_with_ampersand_and_keeps_empty_state() {
    let sim = setup(|_| {});
    let a = scan(&sim, &format!("{CB}?x=1"), "", "member:lisi").await;
    let location = a.location.expect("Location");
    assert!(
        location.starts_with("http://app.example.com:8080/cb?x=1&code="),
        "{location}"
    );
    assert!(
        location.ends_with("&state="),
        "state is always present: {location}"
    );
}

#[tokio::test]
async fn cancel_has_no_code() {
    let sim = setup(|_| {});
    let a = scan(&sim, CB, "st", "cancel").await;
    assert_eq!(a.status, StatusCode::FOUND);
    assert_refused(&a, "st");
}

#[tokio::test]
async fn not_a_member_choice_yields_a_non_member_code() {
    let sim = setup(|_| {});
    let a = scan(&sim, CB, "st", "external").await;
    assert!(matches!(
        grant_of(&sim, &a).subject,
        Subject::NonMember {
            external_userid: None,
            ..
        }
    ));
}

#[tokio::test]
async fn untrusted_redirect_domain_is_not_redirected_to() {
    let sim = setup(|_| {});
    let evil = "http://evil.example.com/cb";
    let uri = format!(
        "/connect/oauth2/authorize?appid={CORP}&redirect_uri={}&response_type=code&scope=snsapi_base&state=s&agentid=1000002",
        encode(evil)
    );
    let a = get(&sim, &uri).await;
    assert!(!a.status.is_redirection());
    assert_error_page(&a, "redirect_uri需使用应用可信域名");
    // The port is part of the domain: same host, other port is untrusted too.
    let a = scan(
        &sim,
        "http://app.example.com:9999/cb",
        "s",
        "member:zhangsan",
    )
    .await;
    assert_error_page(&a, "redirect_uri需使用应用可信域名");
    // auto_login does not bypass the domain rule.
    let sim = setup(|c| c.auto_login = Some("zhangsan".into()));
    let a = get(&sim, &uri).await;
    assert!(a.location.is_none());
}

#[tokio::test]
async fn auto_login_redirects_at_once_as_the_member() {
    let sim = setup(|c| c.auto_login = Some("ZHANGSAN".into()));
    let uri = format!(
        "/connect/oauth2/authorize?appid={CORP}&redirect_uri={}&response_type=code&scope=snsapi_privateinfo&state=abc&agentid=1000002",
        encode(CB)
    );
    let a = get(&sim, &uri).await;
    assert_eq!(a.status, StatusCode::FOUND);
    let (base, pairs) = callback(a.location.as_deref().expect("Location"));
    assert_eq!(base, CB);
    assert_eq!(pairs.len(), 2);
    assert_eq!(pairs[0].0, "code");
    assert_eq!(pairs[1], ("state".to_string(), "abc".to_string()));
    let grant = sim.redeem_code(&pairs[0].1).expect("live");
    assert!(matches!(grant.subject, Subject::Member(ref u) if u == "zhangsan"));
    assert!(grant.private_info);
}

#[tokio::test]
async fn auto_login_as_unknown_member_shows_an_error() {
    let sim = setup(|c| c.auto_login = Some("nobody".into()));
    let a = get(&sim, &qr_connect(CORP, 1_000_002, CB)).await;
    assert_error_page(&a, "nobody");
}

#[tokio::test]
async fn privateinfo_asks_for_confirmation_before_redirecting() {
    let sim = setup(|_| {});
    let a = in_app(&sim, "snsapi_privateinfo", "member:zhangsan").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.location.is_none());
    assert!(a.body.contains("value=\"agree:zhangsan\""), "{}", a.body);
    assert!(a.body.contains("value=\"deny\""));
    let a = in_app(&sim, "snsapi_privateinfo", "agree:zhangsan").await;
    let grant = grant_of(&sim, &a);
    assert!(grant.private_info);
    assert!(!grant.device_id.is_empty(), "in-app logins have a DeviceId");
    assert_refused(&in_app(&sim, "snsapi_privateinfo", "deny").await, "S1");
}

#[tokio::test]
async fn base_scope_redirects_without_confirmation() {
    let sim = setup(|_| {});
    let a = in_app(&sim, "snsapi_base", "member:lisi").await;
    assert!(!grant_of(&sim, &a).private_info);
}

#[tokio::test]
async fn privateinfo_without_agentid_errors_unless_fallback_is_configured() {
    let sim = setup(|_| {});
    let form = |choice| {
        vec![
            ("appid", CORP),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", "snsapi_privateinfo"),
            ("choice", choice),
        ]
    };
    let a = post(&sim, "/connect/oauth2/authorize", &form("member:zhangsan")).await;
    assert_error_page(&a, "40056");
    sim.set_quirks(SimulatorQuirks {
        privateinfo_without_agentid_falls_back: true,
        ..SimulatorQuirks::default()
    });
    let a = post(&sim, "/connect/oauth2/authorize", &form("member:zhangsan")).await;
    assert!(a.location.is_some(), "falls back to snsapi_base");
    assert!(!grant_of(&sim, &a).private_info);
}

#[tokio::test]
async fn invalid_parameters_show_an_error_and_never_redirect() {
    let sim = setup(|_| {});
    let cb = encode(CB);
    let long_state = "a".repeat(129);
    let cases = [
        (format!("/connect/oauth2/authorize?appid=wwother&redirect_uri={cb}&response_type=code&scope=snsapi_base"), "40013"),
        (format!("/connect/oauth2/authorize?appid={CORP}&redirect_uri={cb}&response_type=token&scope=snsapi_base"), "response_type"),
        (format!("/connect/oauth2/authorize?appid={CORP}&redirect_uri={cb}&response_type=code&scope=snsapi_userinfo"), "scope"),
        (format!("/connect/oauth2/authorize?appid={CORP}&redirect_uri={cb}&response_type=code&scope=snsapi_base&agentid=1"), "40056"),
        (format!("/connect/oauth2/authorize?appid={CORP}&redirect_uri={cb}&response_type=code&scope=snsapi_base&state=a-b"), "state"),
        (format!("/connect/oauth2/authorize?appid={CORP}&redirect_uri={cb}&response_type=code&scope=snsapi_base&state={long_state}"), "state"),
        (format!("/connect/oauth2/authorize?appid={CORP}&redirect_uri=notaurl&response_type=code&scope=snsapi_base"), "redirect_uri"),
        (format!("/wwlogin/sso/login?login_type=ServiceApp&appid={CORP}&agentid=1000002&redirect_uri={cb}"), "login_type"),
        (format!("/wwlogin/sso/login?login_type=CorpApp&appid={CORP}&redirect_uri={cb}"), "40056"),
        (format!("/wwopen/sso/qrConnect?appid={CORP}&agentid=1000002&redirect_uri=javascript%3Aalert(1)"), "redirect_uri"),
    ];
    for (uri, needle) in cases {
        let a = get(&sim, &uri).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_error_page(&a, needle);
    }
    for choice in ["member:nobody", "bogus"] {
        assert!(
            scan(&sim, CB, "s", choice).await.location.is_none(),
            "{choice}"
        );
    }
}

#[tokio::test]
async fn page_language_follows_lang_then_accept_language() {
    let sim = setup(|_| {});
    let base = qr_connect(CORP, 1_000_002, CB);
    let a = get(&sim, &format!("{base}&lang=en")).await;
    assert!(a.body.contains("Scan as") && a.body.contains("lang=\"en\""));
    let req = Request::get(&base)
        .header(header::ACCEPT_LANGUAGE, "en-US,en;q=0.9,zh-CN;q=0.8")
        .body(Body::empty())
        .expect("valid");
    assert!(send(&sim, req)
        .await
        .body
        .contains("Not a member (external WeChat user)"));
    let a = get(&sim, &base).await;
    assert!(a.body.contains("扫码登录为") && a.body.contains("lang=\"zh-CN\""));
    let a = post(
        &sim,
        "/wwopen/sso/qrConnect",
        &[("appid", CORP), ("lang", "en")],
    )
    .await;
    assert!(
        a.body.contains("Cannot log in"),
        "error pages are translated too"
    );
}

#[tokio::test]
async fn page_escapes_reflected_parameters() {
    let sim = setup(|c| c.trusted_domains.clear());
    let cb = "http://app.example.com/cb?x=\"><script>";
    let a = get(&sim, &qr_connect(CORP, 1_000_002, cb)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.body.contains("<script>"));
}

#[test]
fn state_rule_is_alphanumeric_up_to_128_bytes() {
    assert!(is_valid_state(""));
    assert!(is_valid_state(&"Z9".repeat(64)));
    assert!(!is_valid_state(&"a".repeat(129)));
    assert!(!is_valid_state("a b"));
    assert!(!is_valid_state("状态"));
}

const SECOND: &str = "ww2b2b2b2b2b2b2b2b";
/// A redirect URI on the trusted domain of [`SECOND`]'s app.
const SECOND_CB: &str = "https://rp.second.example/cb";

fn second_corp(sim: &Simulator) {
    sim.add_corp(
        SECOND,
        CorpSeed::Second,
        AppSpec {
            agent_id: 1_000_005,
            secret: "second-secret".into(),
            visible_range: VisibleRange::whole_corp(),
            trusted_domains: vec!["rp.second.example".into()],
            legacy_app: false,
        },
    );
}

#[tokio::test]
async fn pages_serve_every_corp_and_app_and_bind_codes_to_it() {
    let sim = setup(|_| {});
    second_corp(&sim);
    let cb = SECOND_CB;
    let uri = format!(
        "/wwlogin/sso/login?login_type=CorpApp&appid={SECOND}&agentid=1000005&redirect_uri={}&state=s",
        encode(cb)
    );
    let a = get(&sim, &uri).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("张三丰") && a.body.contains("远航贸易"));
    assert!(
        !a.body.contains("孙七"),
        "the primary corp's members are not listed"
    );
    let a = get(&sim, &uri.replace("1000005", "1000002")).await;
    assert!(
        a.body.contains("40056"),
        "the primary corp's agentid is not this corp's"
    );
    let a = get(
        &sim,
        &uri.replace("rp.second.example", "app.example.com%3A8080"),
    )
    .await;
    assert!(a.location.is_none(), "each app has its own trusted domains");
    let form = [
        ("login_type", "CorpApp"),
        ("appid", SECOND),
        ("agentid", "1000005"),
        ("redirect_uri", cb),
        ("state", "s"),
        ("choice", "member:zhangsan"),
    ];
    let a = post(&sim, "/wwlogin/sso/login", &form).await;
    let (_, pairs) = callback(a.location.as_deref().expect("Location"));
    let code = value(&pairs, "code").expect("code");
    assert!(matches!(
        sim.redeem_code(code),
        Err(super::super::CodeError::UntrustedDomain)
    ));
    let a = post(&sim, "/wwlogin/sso/login", &form).await;
    let (_, pairs) = callback(a.location.as_deref().expect("Location"));
    let app = AppKey {
        corp_id: SECOND.into(),
        agent_id: 1_000_005,
    };
    let grant = sim
        .redeem_code_as(value(&pairs, "code").expect("code"), &app)
        .expect("live");
    assert!(matches!(grant.subject, Subject::Member(ref u) if u == "zhangsan"));
}

#[tokio::test]
async fn auto_login_applies_to_the_primary_corp_only() {
    let sim = setup(|c| c.auto_login = Some("zhangsan".into()));
    second_corp(&sim);
    let a = get(&sim, &qr_connect(SECOND, 1_000_005, SECOND_CB)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.location.is_none(),
        "the other corp's zhangsan is another person"
    );
}

#[tokio::test]
async fn linked_members_are_listed_and_log_in_as_corp_slash_userid() {
    let sim = setup(|_| {});
    second_corp(&sim);
    assert!(sim.link_corp(CORP, SECOND, vec![3]));
    let a = get(&sim, &qr_connect(CORP, 1_000_002, CB)).await;
    assert!(
        a.body
            .contains(&format!("value=\"member:{SECOND}/wangfang\"")),
        "{}",
        a.body
    );
    assert!(
        !a.body.contains(&format!("member:{SECOND}/zhangsan")),
        "销售 is not shared"
    );
    let a = in_app(&sim, "snsapi_base", &format!("member:{SECOND}/WANGFANG")).await;
    let grant = grant_of(&sim, &a);
    assert!(
        matches!(grant.subject, Subject::Linked { ref corp_id, ref userid } if corp_id == SECOND && userid == "wangfang")
    );
    let a = post(
        &sim,
        "/wwopen/sso/qrConnect",
        &[
            ("appid", CORP),
            ("agentid", "1000002"),
            ("redirect_uri", CB),
            ("choice", &format!("member:{SECOND}/zhangsan")),
        ],
    )
    .await;
    // A member outside the shared departments cannot be picked.
    assert_error_page(&a, &format!("{SECOND}/zhangsan"));
}

#[tokio::test]
async fn large_corp_page_lists_a_bounded_number_of_members() {
    let sim = setup(|_| {});
    sim.add_corp(
        "wwlarge",
        CorpSeed::Large { members: 1_000 },
        AppSpec {
            agent_id: 7,
            secret: "s".into(),
            visible_range: VisibleRange::whole_corp(),
            trusted_domains: vec![],
            legacy_app: false,
        },
    );
    let a = get(&sim, &qr_connect("wwlarge", 7, CB)).await;
    assert_eq!(
        a.body.matches("value=\"member:").count(),
        MAX_LISTED_MEMBERS
    );
}

/// §8: a suite's pages — `login_type=ServiceApp` with the SuiteID, and the in-app link with the
/// SuiteID — offer the members of the installing corps only, and mint a code that
/// `getuserinfo3rd` (not `auth/getuserinfo`) redeems.
#[tokio::test]
async fn suite_pages_offer_installing_corps_and_refuse_unknown_suites() {
    use crate::simulator::suite::unreachable_suite;
    use crate::simulator::SuiteKind;
    let sim = setup(|_| {});
    sim.add_suite(unreachable_suite("wwsuite1", SuiteKind::ThirdParty));
    let cb = encode("https://rp.example.com/cb");
    let web = format!(
        "/wwlogin/sso/login?login_type=ServiceApp&appid=wwsuite1&redirect_uri={cb}&state=S1"
    );
    let page = get(&sim, &web).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("member:"),
        "nobody installed yet: {}",
        page.body
    );
    // Installing needs a delivery target; the state change happens before the push.
    let _ = sim
        .install_suite("wwsuite1", CORP, VisibleRange::whole_corp())
        .await;
    let page = get(&sim, &web).await;
    assert!(
        page.body.contains(&format!("member:{CORP}/zhangsan")),
        "{}",
        page.body
    );
    let form = [
        ("login_type", "ServiceApp"),
        ("appid", "wwsuite1"),
        ("redirect_uri", "https://rp.example.com/cb"),
        ("state", "S1"),
        ("choice", &format!("member:{CORP}/zhangsan")),
    ];
    let done = post(&sim, "/wwlogin/sso/login", &form).await;
    let (base, pairs) = callback(done.location.as_deref().expect("redirect"));
    assert_eq!(base, "https://rp.example.com/cb");
    assert!(value(&pairs, "code").is_some() && value(&pairs, "state") == Some("S1"));

    let in_app = format!("/connect/oauth2/authorize?appid=wwsuite1&redirect_uri={cb}&response_type=code&scope=snsapi_base&state=S1");
    assert!(get(&sim, &in_app)
        .await
        .body
        .contains(&format!("member:{CORP}/lisi")));
    let unknown = get(
        &sim,
        &format!("/wwlogin/sso/login?login_type=ServiceApp&appid=wwnosuch&redirect_uri={cb}"),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}
