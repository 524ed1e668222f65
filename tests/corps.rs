//! WeCom as real corps use it, end to end through the real HTTP server and the WeCom simulator:
//! several corps whose members share UserIds, several apps of one corp with their own visible
//! ranges, linked corps, data APIs that refuse an untrusted IP while `gettoken` works, rate-limit
//! back-off, and a 50,000-member corp.
//!
//! The simulator hosts every corp on one base URL, as WeCom does; each provider app points at it
//! with its own CorpID, AgentId and secret. Logins mint the member's code with
//! `Simulator::issue_code_for` for the app the provider sent the browser to, exactly as that
//! app's login page would.
//!
//! Run with `cargo test --test corps`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use wecom_oidc::clock::SystemClock;
use wecom_oidc::connector::wecom::{PrivateInfo, WeComSettings};
use wecom_oidc::simulator::{AppSpec, CorpSeed, Simulator, VisibleRange};

mod common;

use common::{browser_as as browser, claims_of as claims, Outcome};

/// The simulator's primary corp (the demo corp, 示例科技) and its app.
const CORP_A: &str = "ww7f3c2a1b9d8e6f50";
/// Another company, whose directory also has a `zhangsan`.
const CORP_B: &str = "wwb0b0b0b0b0b0b0b0";
/// A corp linked (上下游) to corp A.
const CORP_L: &str = "wwl1l1l1l1l1l1l1l1";
/// A generated corp of 50,000 members.
const CORP_BIG: &str = "wwbig0000000000000";
/// The secret of every client `rp-<app>`.
const SECRET: &str = "rp-secret-for-corps-tests";
/// Never contacted: the tests read the code from the redirect's `Location`.
const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
/// The PKCE code verifier of every login (RFC 7636 §4.1: 43 to 128 characters).
const VERIFIER: &str = "corps-test-code-verifier-0123456789-abcdefghijklmnop";

/// One provider app (connector) and its client `rp-<name>`.
struct AppDef {
    name: &'static str,
    corp: &'static str,
    agent: i64,
    secret: &'static str,
    customize: fn(&mut WeComSettings),
}

fn app(name: &'static str, corp: &'static str, agent: i64, secret: &'static str) -> AppDef {
    AppDef {
        name,
        corp,
        agent,
        secret,
        customize: |_| {},
    }
}

/// The provider and the simulator, served on one ephemeral port.
struct World {
    issuer: String,
    sim: Simulator,
    _served: common::Served,
}

/// The home corp's app `hq` (the simulator's demo app).
fn hq() -> AppDef {
    app("hq", CORP_A, 1_000_002, "demo-wecom-app-secret")
}

/// A provider with the home corp's app `hq` alone; `trusted`: whether the corp's trusted IPs
/// (企业可信IP) include ours (wecom-api.md §1).
async fn hq_world(trusted: bool) -> World {
    let hq = vec![hq()];
    world(hq, |sim| {
        assert!(sim.set_ip_trusted(CORP_A, 1_000_002, trusted));
    })
    .await
}

/// Starts a provider with `apps` (the first is the default and its corp the home corp) over a
/// simulator that `prepare` has populated.
async fn world(apps: Vec<AppDef>, prepare: impl FnOnce(&Simulator)) -> World {
    let clients = apps
        .iter()
        .map(|a| {
            let redirect = REDIRECT_URI;
            let mut c = common::client(
                &format!("rp-{}", a.name),
                Some(SECRET),
                redirect,
                Default::default(),
            );
            c.name = format!("RP of {}", a.name);
            c.settings.connector = Some(a.name.into());
            c
        })
        .collect();
    let options = common::ServeOptions {
        clients,
        ..Default::default()
    };
    let served = common::serve_with_simulator(options, |sim, sim_base| {
        prepare(sim);
        apps.iter()
            .map(|a| {
                let mut s = WeComSettings {
                    id: a.name.into(),
                    ..common::wecom_app(sim_base, a.corp, a.agent, a.secret)
                };
                (a.customize)(&mut s);
                s
            })
            .collect()
    })
    .await;
    World {
        issuer: served.issuer.clone(),
        sim: served.simulator.clone(),
        _served: served,
    }
}

fn spec(agent: i64, secret: &str, range: VisibleRange) -> AppSpec {
    AppSpec {
        agent_id: agent,
        secret: secret.into(),
        visible_range: range,
        trusted_domains: Vec::new(),
        legacy_app: false,
    }
}

/// Walks `/authorize` for `client` → the simulator's login page of the app the provider chose
/// (where `member` "logs in": their code is minted for that very app) → our callback → the RP.
/// `member == None` expects no upstream login at all (a session or an error answers).
async fn login(
    w: &World,
    b: &reqwest::Client,
    client: &str,
    scope: &str,
    member: Option<&str>,
    prompt: Option<&str>,
) -> Outcome {
    let challenge = common::s256(VERIFIER);
    let mut extra = common::pkce(&challenge).to_vec();
    extra.extend(prompt.map(|p| ("prompt", p)));
    let client = (client, REDIRECT_URI);
    let url = common::code_request_url(&w.issuer, client, scope, ("s1", "n1"), &extra);
    let stand_in = |location: &str| {
        if !location.contains("/wecom-sim/") {
            return None;
        }
        let member = member.expect("an upstream login was not expected here");
        let q = common::query(location);
        let scope = q.get("scope").map(String::as_str).unwrap_or("");
        let agent: i64 = q["agentid"].parse().expect("agentid");
        let callback = &q["redirect_uri"];
        let code = w
            .sim
            .issue_code_for(&q["appid"], agent, member, scope, callback);
        Some(format!("{callback}?code={code}&state={}", q["state"]))
    };
    common::walk_rewriting(b, &url, REDIRECT_URI, stand_in)
        .await
        .into()
}

/// The token response for `code`, which must succeed.
async fn redeem(w: &World, client: &str, query: &HashMap<String, String>) -> Value {
    let code = query
        .get("code")
        .unwrap_or_else(|| panic!("no code in {query:?}"));
    let form = common::code_form(code, REDIRECT_URI, &[("code_verifier", VERIFIER)]);
    let (status, body) = common::token(&w.issuer, (client, SECRET), &form).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    body
}

/// A refresh: the status and the JSON answer.
async fn refresh(w: &World, client: &str, refresh_token: &str) -> (reqwest::StatusCode, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    common::token(&w.issuer, (client, SECRET), &form).await
}

async fn userinfo(w: &World, access_token: &str) -> Value {
    common::userinfo(&w.issuer, access_token)
        .await
        .json()
        .await
        .expect("userinfo JSON")
}

/// A login of `member` for `client` that must succeed: the token response.
async fn login_tokens(
    w: &World,
    b: &reqwest::Client,
    client: &str,
    scope: &str,
    member: &str,
) -> Value {
    let q = login(w, b, client, scope, Some(member), None).await.query();
    redeem(w, client, &q).await
}

/// The home corp (A) and another corp (B), both with a `zhangsan`; apps `hq` (A) and `branch`
/// (B).
async fn two_corps() -> World {
    world(
        vec![hq(), app("branch", CORP_B, 1_000_003, "corp-b-app-secret")],
        |sim| {
            sim.add_corp(
                CORP_B,
                CorpSeed::Second,
                spec(1_000_003, "corp-b-app-secret", VisibleRange::whole_corp()),
            );
        },
    )
    .await
}

/// The security property of several corps: two corps' members with one UserId never share a
/// `sub`, a session or a refresh (wecom-api.md §12).
#[tokio::test]
async fn two_corps_members_with_one_userid_never_share_a_sub_a_session_or_a_refresh() {
    let w = two_corps().await;
    let b = browser("Mozilla/5.0 (X11; Linux x86_64)");
    let scope = "openid profile offline_access";

    let a_tokens = login_tokens(&w, &b, "rp-hq", scope, "zhangsan").await;
    let a = claims(a_tokens["id_token"].as_str().expect("id_token"));
    // The home corp's subjects are what a single-corp deployment gives: unchanged.
    assert_eq!(a["sub"], "zhangsan");
    assert_eq!(a["name"], "张三");

    // The same browser, a client of corp B's app: A's session says nothing about B's people.
    let q = login(&w, &b, "rp-branch", scope, None, Some("none"))
        .await
        .query();
    assert_eq!(q["error"], "login_required", "{q:?}");

    let b_tokens = login_tokens(&w, &b, "rp-branch", scope, "zhangsan").await;
    let bz = claims(b_tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(bz["sub"], format!("{CORP_B}/zhangsan"));
    assert_ne!(bz["name"], "张三", "corp B's zhangsan is another person");

    // And now B's session does not serve A's client either... but the browser's session is
    // B's now: prompt=none for A's client is a new login.
    let q = login(&w, &b, "rp-hq", scope, None, Some("none"))
        .await
        .query();
    assert_eq!(q["error"], "login_required", "{q:?}");

    // userinfo answers for the person each token was issued to.
    let ua = userinfo(&w, a_tokens["access_token"].as_str().expect("at")).await;
    let ub = userinfo(&w, b_tokens["access_token"].as_str().expect("at")).await;
    assert_eq!(ua["sub"], "zhangsan");
    assert_eq!(ua["name"], "张三");
    assert_eq!(ub["sub"], bz["sub"]);
    assert_eq!(ub["name"], bz["name"]);

    // A refresh asks the app the grant came from: each keeps its own person.
    let (status, ra) = refresh(&w, "rp-hq", a_tokens["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{ra}");
    assert_eq!(
        claims(ra["id_token"].as_str().expect("id_token"))["name"],
        "张三"
    );
    let (status, rb) = refresh(
        &w,
        "rp-branch",
        b_tokens["refresh_token"].as_str().expect("rt"),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{rb}");
    assert_eq!(
        claims(rb["id_token"].as_str().expect("id_token"))["name"],
        bz["name"]
    );

    // Corp B's zhangsan leaves: only B's grant ends; A's zhangsan is untouched.
    assert!(w.sim.set_member_status_in(CORP_B, "zhangsan", 5));
    let (status, body) = refresh(&w, "rp-branch", rb["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, ra2) = refresh(&w, "rp-hq", ra["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{ra2}");
    assert_eq!(
        claims(ra2["id_token"].as_str().expect("id_token"))["sub"],
        "zhangsan"
    );
}

/// Corp A's second app `ops` sees only 研发 (department 2, with 平台 below it).
async fn two_apps_of_one_corp() -> World {
    world(
        vec![hq(), app("ops", CORP_A, 1_000_010, "ops-app-secret")],
        |sim| {
            assert!(sim.add_app(
                CORP_A,
                spec(
                    1_000_010,
                    "ops-app-secret",
                    VisibleRange {
                        departments: vec![2],
                        ..VisibleRange::default()
                    },
                ),
            ));
        },
    )
    .await
}

#[tokio::test]
async fn a_session_serves_another_app_of_the_same_corp_only_for_people_in_its_visible_range() {
    let w = two_apps_of_one_corp().await;
    // zhangsan (平台, under 研发) is in ops's range: the hq session serves ops's client.
    let b = browser("Mozilla/5.0");
    login_tokens(&w, &b, "rp-hq", "openid", "zhangsan").await;
    let q = login(&w, &b, "rp-ops", "openid", None, Some("none"))
        .await
        .query();
    let t = redeem(&w, "rp-ops", &q).await;
    assert_eq!(
        claims(t["id_token"].as_str().expect("id_token"))["sub"],
        "zhangsan"
    );

    // lisi (市场) is not: the same shortcut answers access_denied, not a code.
    let b = browser("Mozilla/5.0");
    login_tokens(&w, &b, "rp-hq", "openid", "lisi").await;
    let q = login(&w, &b, "rp-ops", "openid", None, Some("none"))
        .await
        .query();
    assert_eq!(q["error"], "access_denied", "{q:?}");
    assert!(!q.contains_key("code"));
}

/// wecom-api.md §12: `getuserinfo` names the member, `user/get` refuses (60011). The person is
/// told why and who can change it; the client gets `access_denied` when they go back.
#[tokio::test]
async fn a_member_outside_the_visible_range_gets_an_explaining_page_and_access_denied() {
    let w = two_apps_of_one_corp().await;
    let b = browser("Mozilla/5.0");
    let outcome = login(&w, &b, "rp-ops", "openid", Some("lisi"), None).await;
    let Outcome::Page(status, body) = outcome else {
        panic!("expected our page, got {outcome:?}");
    };
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    assert!(body.contains("可见范围"), "{body}");
    assert!(body.contains("visible range"), "{body}");
    // The way back hands access_denied to the client, with its state and our issuer.
    let back = body
        .split("href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link back")
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let u = url::Url::parse(&back).expect("link URL");
    assert!(back.starts_with(REDIRECT_URI), "{back}");
    let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("access_denied"),
        "{back}"
    );
    assert_eq!(q.get("state").map(String::as_str), Some("s1"), "{back}");
    assert_eq!(q.get("iss"), Some(&w.issuer), "{back}");
}

#[tokio::test]
async fn a_grant_ends_at_refresh_once_the_member_leaves_the_visible_range() {
    let w = two_apps_of_one_corp().await;
    let b = browser("Mozilla/5.0");
    let t = login_tokens(&w, &b, "rp-ops", "openid offline_access", "zhangsan").await;
    assert!(w.sim.set_visible_range(
        CORP_A,
        1_000_010,
        VisibleRange {
            departments: vec![4],
            ..VisibleRange::default()
        },
    ));
    let (status, body) = refresh(&w, "rp-ops", t["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"], "invalid_grant",
        "not temporarily_unavailable: {body}"
    );
}

/// Group paths when the visible range is a sub-tree, a single deep department or single
/// members (docs/wecom.md "Visible range").
#[tokio::test]
async fn group_paths_follow_the_visible_range() {
    let w = world(
        vec![
            hq(),
            app("rd", CORP_A, 1_000_011, "rd-secret"),
            app("platform", CORP_A, 1_000_012, "platform-secret"),
            app("solo", CORP_A, 1_000_013, "solo-secret"),
        ],
        |sim| {
            let dept = |d: i64| VisibleRange {
                departments: vec![d],
                ..VisibleRange::default()
            };
            assert!(sim.add_app(CORP_A, spec(1_000_011, "rd-secret", dept(2))));
            assert!(sim.add_app(CORP_A, spec(1_000_012, "platform-secret", dept(3))));
            let solo = VisibleRange {
                users: vec!["zhangsan".into()],
                ..VisibleRange::default()
            };
            assert!(sim.add_app(CORP_A, spec(1_000_013, "solo-secret", solo)));
        },
    )
    .await;
    let groups = |t: &Value| -> Vec<String> {
        claims(t["id_token"].as_str().expect("id_token"))["groups"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let whole =
        groups(&login_tokens(&w, &browser("x"), "rp-hq", "openid groups", "zhangsan").await);
    assert!(whole.contains(&"/研发/平台".to_owned()), "{whole:?}");
    // Range 研发: its parent is the root, so paths stay complete.
    let rd = groups(&login_tokens(&w, &browser("x"), "rp-rd", "openid groups", "zhangsan").await);
    assert!(rd.contains(&"/研发/平台".to_owned()), "{rd:?}");
    assert!(
        !rd.contains(&"/平台".to_owned()),
        "never a path that looks rooted: {rd:?}"
    );
    // Range 平台 only: the hidden 研发 is written by id.
    let pf = groups(
        &login_tokens(
            &w,
            &browser("x"),
            "rp-platform",
            "openid groups",
            "zhangsan",
        )
        .await,
    );
    assert!(pf.contains(&"#2/平台".to_owned()), "{pf:?}");
    assert!(pf.contains(&"平台".to_owned()), "{pf:?}");
    assert!(
        !pf.iter().any(|g| g == "/平台" || g == "/研发/平台"),
        "{pf:?}"
    );
    // Range of one member: no department is visible, so no department paths.
    let solo =
        groups(&login_tokens(&w, &browser("x"), "rp-solo", "openid groups", "zhangsan").await);
    assert!(!solo.iter().any(|g| g.contains('/')), "{solo:?}");
}

/// A tag on a parent department covers the members of its sub-departments (docs/wecom.md).
#[tokio::test]
async fn a_tag_on_a_parent_department_reaches_members_of_its_sub_departments() {
    let w = hq_world(true).await;
    let t = login_tokens(&w, &browser("x"), "rp-hq", "openid groups", "zhangsan").await;
    let g = claims(t["id_token"].as_str().expect("id_token"))["groups"].clone();
    // The simulator's demo corp tags 研发 (2) as 研发全员; zhangsan is in 平台 (3), below it.
    assert!(
        g.as_array()
            .expect("groups")
            .iter()
            .any(|v| v == "研发全员"),
        "{g}"
    );
}

#[tokio::test]
async fn linked_corp_members_log_in_with_a_corp_qualified_sub() {
    let w = world(vec![hq()], |sim| {
        sim.add_corp(
            CORP_L,
            CorpSeed::Second,
            spec(1_000_020, "linked-own-secret", VisibleRange::whole_corp()),
        );
        assert!(sim.link_corp(CORP_A, CORP_L, Vec::new()));
    })
    .await;
    let linked = format!("{CORP_L}/lisi");
    let t = login_tokens(
        &w,
        &browser("x"),
        "rp-hq",
        "openid profile groups offline_access",
        &linked,
    )
    .await;
    let c = claims(t["id_token"].as_str().expect("id_token"));
    assert_eq!(c["sub"], linked);
    assert!(c["name"].as_str().is_some_and(|n| !n.is_empty()), "{c}");
    let groups = c["groups"].as_array().expect("groups");
    assert!(
        groups.iter().any(|g| g
            .as_str()
            .is_some_and(|g| g.starts_with(&format!("{CORP_L}/")))),
        "linked departments as LINKEDID/DEPTID: {c}"
    );
    // Refreshes re-read them through linkedcorp/user/get too.
    let (status, body) = refresh(&w, "rp-hq", t["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
}

/// wecom-api.md §1: `gettoken` works from an IP outside 企业可信IP while data APIs answer 60020.
#[tokio::test]
async fn readiness_fails_with_the_trusted_ip_fix_when_only_data_apis_refuse_the_ip() {
    let w = hq_world(false).await;
    let (status, body) = common::get(format!("{}/readyz", w.issuer)).await;
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("60020"), "{body}");
    assert!(body.contains("企业可信IP"), "{body}");

    w.sim.set_ip_trusted(CORP_A, 1_000_002, true);
    // The failure is remembered for a short while; a fresh provider over a trusting simulator
    // is ready.
    let ok = hq_world(true).await;
    let (status, _) = common::get(format!("{}/readyz", ok.issuer)).await;
    assert_eq!(status, reqwest::StatusCode::OK);
}

#[tokio::test]
async fn check_reports_data_apis_refusing_the_ip_although_gettoken_works() {
    let w = hq_world(false).await;
    let toml = format!(
        r#"
issuer = "https://sso.example.com"
[wecom]
corp_id = "{CORP_A}"
agent_id = 1000002
secret = "demo-wecom-app-secret"
api_base = "{base}"
oauth_base = "{base}"
sso_base = "{base}"
[[clients]]
id = "rp"
secret = "{SECRET}"
redirect_uris = ["https://rp.example.com/cb"]
"#,
        base = format!("{}/wecom-sim", w.issuer)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wecom-oidc.toml");
    std::fs::write(&path, toml).expect("write config");
    let report = wecom_oidc::commands::doctor::check_file(&path, Arc::new(SystemClock)).await;
    assert!(!report.passed(), "{}", report.render());
    let finding = report.wecom_error(60020).expect("a 60020 finding");
    let text = report.render();
    assert!(text.contains("gettoken works"), "{text}");
    assert!(text.contains("企业可信IP"), "{text} / {finding:?}");
}

/// wecom-api.md §1: after 45009 WeCom blocks the API for a minute; calling again at once only
/// spends quota. The second login must not call WeCom (the injected fault is spent after one
/// call, so a call would have succeeded).
#[tokio::test]
async fn a_rate_limited_api_is_not_called_again_during_its_block() {
    let w = hq_world(true).await;
    w.sim.fail_next("/cgi-bin/user/get", 45009, 1);
    for _ in 0..2 {
        let outcome = login(&w, &browser("x"), "rp-hq", "openid", Some("zhangsan"), None).await;
        let Outcome::Page(status, body) = outcome else {
            panic!("expected the rate-limit page, got {outcome:?}");
        };
        assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("一分钟") || body.contains("minute"), "{body}");
    }
    let metrics = common::get_text(format!("{}/metrics", w.issuer)).await;
    assert!(
        common::has_metric_line(&metrics, &["/cgi-bin/user/get", "backoff"]),
        "the second login was answered by the back-off: {metrics}"
    );
}

/// wecom-api.md §5: an expired (84014) or invalid (84015) `user_ticket` does not fail the
/// login; the private claims are just absent.
#[tokio::test]
async fn user_ticket_errors_log_in_without_the_private_profile() {
    for errcode in [84014, 84015] {
        let mut hq = hq();
        hq.customize = |s| s.privateinfo = PrivateInfo::Always;
        let w = world(vec![hq], |_| {}).await;
        w.sim.fail_next("/cgi-bin/auth/getuserdetail", errcode, 1);
        let wecom_ua = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 MicroMessenger/8.0 wxwork/4.1.0";
        let t = login_tokens(
            &w,
            &browser(wecom_ua),
            "rp-hq",
            "openid profile email",
            "zhangsan",
        )
        .await;
        let c = claims(t["id_token"].as_str().expect("id_token"));
        assert_eq!(c["sub"], "zhangsan", "{errcode}");
        assert!(c.get("picture").is_none(), "{errcode}: {c}");
    }
}

/// A corp of 50,000 members: the directory walk (simplelist + department/get on the member's
/// lineage) fits the login's time limit. The figure is printed, not asserted (machines are
/// shared); the limit that matters is the connector's own timeout, which a slow walk would hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50000_member_corp_logs_in_with_groups_inside_the_timeout() {
    let built = Instant::now();
    let w = world(vec![app("big", CORP_BIG, 1_000_030, "big-secret")], |sim| {
        sim.add_corp(
            CORP_BIG,
            CorpSeed::Large { members: 50_000 },
            spec(1_000_030, "big-secret", VisibleRange::whole_corp()),
        );
    })
    .await;
    eprintln!(
        "50,000-member simulator corp built in {:?}",
        built.elapsed()
    );
    // (u00001 is the head of the corp, in the root department, which has no path.)
    for member in ["u00002", "u25000", "u50000"] {
        let started = Instant::now();
        let t = login_tokens(&w, &browser("x"), "rp-big", "openid groups", member).await;
        let elapsed = started.elapsed();
        eprintln!("login of {member} with groups in a 50,000-member corp: {elapsed:?}");
        let c = claims(t["id_token"].as_str().expect("id_token"));
        assert_eq!(c["sub"], member);
        let groups = c["groups"].as_array().expect("groups");
        assert!(
            groups
                .iter()
                .any(|g| g.as_str().is_some_and(|g| g.starts_with('/'))),
            "a department path: {c}"
        );
    }
}
