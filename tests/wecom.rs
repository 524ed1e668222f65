//! End-to-end tests of the WeCom connector against the WeCom simulator, through the real HTTP
//! server (`demo::spawn` on `127.0.0.1:0`): token caching under concurrency and across
//! restarts, early token revocation, profile and e-mail policies, groups, inactive members,
//! and the error pages for deployment faults (issue 3, "Done when").
//!
//! Run with `cargo test --test wecom`.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use wecom_oidc::clock::SystemClock;
use wecom_oidc::connector::wecom::{
    CallbackSettings, EmailPolicy, PrivateInfo, SubjectMode, WeComSettings,
};
use wecom_oidc::demo::{self, RunningDemo};
use wecom_oidc::provider::Client;
use wecom_oidc::simulator::{CallbackTarget, SimulatorConfig};

mod common;

use common::{browser_as as browser, Outcome};

const CLIENT_ID: &str = "rp";
const CLIENT_SECRET: &str = "rp-secret-for-tests";
/// Never contacted: the tests read the code from the redirect's `Location`.
const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
/// WeCom's in-app browser (wecom-api.md §9): gets the OAuth link, where privateinfo exists.
const WECOM_UA: &str = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 MicroMessenger/8.0 wxwork/4.1.0";

fn rp_client() -> Client {
    Client {
        name: "test RP".into(),
        ..common::client(
            CLIENT_ID,
            Some(CLIENT_SECRET),
            REDIRECT_URI,
            Default::default(),
        )
    }
}

async fn start_with(
    auto_login: &str,
    data_dir: Option<std::path::PathBuf>,
    customize: impl FnOnce(&mut WeComSettings, &mut SimulatorConfig),
) -> RunningDemo {
    let options = common::demo_options(
        Some(auto_login),
        vec![rp_client()],
        data_dir,
        Arc::new(SystemClock),
    )
    .await;
    demo::spawn_with(options, customize)
        .await
        .expect("demo starts")
}

async fn start(auto_login: &str) -> RunningDemo {
    start_with(auto_login, None, |_, _| {}).await
}

/// Walks `/authorize` → simulator → `/callback/wecom` → RP redirect URI.
async fn login(demo: &RunningDemo, scope: &str, user_agent: &str) -> Outcome {
    login_via(demo, scope, user_agent, None).await
}

/// Like [`login`]; with `as_member`, the simulator's page is skipped and the member's code is
/// minted with `Simulator::issue_code`, as if they had logged in there.
async fn login_via(
    demo: &RunningDemo,
    scope: &str,
    user_agent: &str,
    as_member: Option<&str>,
) -> Outcome {
    let challenge = common::s256(&"v".repeat(50));
    let client = (CLIENT_ID, REDIRECT_URI);
    let pkce = common::pkce(&challenge);
    let url = common::code_request_url(&demo.issuer, client, scope, ("s1", "n1"), &pkce);
    let callback = format!("{}/callback/wecom", demo.issuer);
    let stand_in = |location: &str| {
        let member = as_member.filter(|_| location.contains(demo::SIMULATOR_PATH))?;
        let state = common::query(location).remove("state").expect("state");
        let code = demo.simulator.issue_code(member, "", &callback);
        Some(format!("{callback}?code={code}&state={state}"))
    };
    common::walk_rewriting(&browser(user_agent), &url, REDIRECT_URI, stand_in)
        .await
        .into()
}

/// Tokens for a login that must succeed: (id_token claims, userinfo).
async fn login_ok(demo: &RunningDemo, scope: &str, user_agent: &str) -> (Value, Value) {
    tokens_for(demo, login(demo, scope, user_agent).await).await
}

/// WeCom member `member` logs in with `scope` (the simulator's page stood in for): the
/// id_token's claims and the userinfo answer ([`tokens_for`]).
async fn tokens_of_member(demo: &RunningDemo, scope: &str, member: &str) -> (Value, Value) {
    let outcome = login_via(demo, scope, "Mozilla/5.0", Some(member)).await;
    tokens_for(demo, outcome).await
}

/// A connector of the demo's WeCom app over the demo's store, as a restarted provider would
/// open it (nothing in memory).
fn connector_on_store(demo: &RunningDemo) -> wecom_oidc::connector::wecom::WeComConnector {
    let sim_base = format!("{}{}", demo.issuer, demo::SIMULATOR_PATH);
    let settings = common::demo_app(&demo.simulator, &sim_base, WeComSettings::DEFAULT_ID);
    wecom_oidc::connector::wecom::WeComConnector::new(
        settings,
        wecom_oidc::storage::upstream_role(demo.store.clone()),
        Arc::new(SystemClock),
    )
    .expect("connector")
}

/// The simulator renames `from` to `to` and tells `target` (the `update_user` callback, §11).
async fn rename(
    demo: &RunningDemo,
    from: &str,
    to: &str,
    target: &CallbackTarget,
) -> wecom_oidc::simulator::Delivery {
    demo.simulator
        .rename_member_and_notify(from, to, target)
        .await
        .expect("delivered")
}

async fn tokens_for(demo: &RunningDemo, outcome: Outcome) -> (Value, Value) {
    let query = match outcome {
        Outcome::Redirect(q) => q,
        Outcome::Page(status, body) => panic!("login showed a page {status}: {body}"),
    };
    let code = query
        .get("code")
        .unwrap_or_else(|| panic!("no code in {query:?}"));
    let verifier = "v".repeat(50);
    let form = common::code_form(code, REDIRECT_URI, &[("code_verifier", &verifier)]);
    let (_, token) = common::token(&demo.issuer, (CLIENT_ID, CLIENT_SECRET), &form).await;
    let claims = common::claims_of(token["id_token"].as_str().expect("id_token"));
    let access_token = token["access_token"].as_str().expect("access_token");
    let userinfo: Value = common::userinfo(&demo.issuer, access_token)
        .await
        .json()
        .await
        .expect("userinfo JSON");
    (claims, userinfo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_logins_cause_exactly_one_gettoken() {
    let demo = Arc::new(start("zhangsan").await);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let demo = demo.clone();
        tasks.push(tokio::spawn(async move {
            login_ok(&demo, "openid", "Mozilla/5.0").await.0["sub"].clone()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), "zhangsan");
    }
    assert_eq!(demo.simulator.gettoken_calls(), 1);
}

#[tokio::test]
async fn a_restarted_connector_reuses_the_token_persisted_in_the_store() {
    let demo = start("zhangsan").await;
    login_ok(&demo, "openid", "Mozilla/5.0").await;
    assert_eq!(demo.simulator.gettoken_calls(), 1);
    // A new connector on the same store has nothing in memory, as after a restart.
    let restarted = connector_on_store(&demo);
    restarted.access_token().await.expect("token");
    assert_eq!(
        demo.simulator.gettoken_calls(),
        1,
        "the cached token is reused"
    );
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_and_the_login_still_succeeds() {
    let demo = start("zhangsan").await;
    login_ok(&demo, "openid", "Mozilla/5.0").await;
    demo.simulator.revoke_all_tokens();
    let (claims, _) = login_ok(&demo, "openid", "Mozilla/5.0").await;
    assert_eq!(claims["sub"], "zhangsan");
    assert_eq!(demo.simulator.gettoken_calls(), 2);
}

#[tokio::test]
async fn system_busy_is_retried_and_the_login_succeeds() {
    let demo = start("zhangsan").await;
    demo.simulator.fail_next("/cgi-bin/user/get", -1, 2);
    let (claims, _) = login_ok(&demo, "openid", "Mozilla/5.0").await;
    assert_eq!(claims["sub"], "zhangsan");
}

#[tokio::test]
async fn member_without_email_logs_in_under_the_upstream_policy_without_an_email_claim() {
    // A post-2022 app: user/get carries no email (wecom-api.md §6), and privateinfo is off.
    let demo = start("zhangsan").await;
    let (claims, userinfo) = login_ok(&demo, "openid email profile", "Mozilla/5.0").await;
    for c in [&claims, &userinfo] {
        assert!(c.get("email").is_none(), "{c}");
        assert!(c.get("email_verified").is_none(), "{c}");
        assert_eq!(c["name"], "张三");
    }
}

#[tokio::test]
async fn member_without_email_logs_in_under_the_template_policy_with_a_verified_address() {
    let demo = start_with("ZhouBa", None, |w, _| {
        w.profile.email = EmailPolicy::Template("{userid_lower}@corp.example.com".into());
    })
    .await;
    let (claims, userinfo) = login_ok(&demo, "openid email", "Mozilla/5.0").await;
    for c in [&claims, &userinfo] {
        assert_eq!(c["email"], "zhouba@corp.example.com");
        assert_eq!(c["email_verified"], true);
    }
}

#[tokio::test]
async fn privateinfo_when_requested_feeds_email_phone_address_picture_gender_from_getuserdetail() {
    let demo = start_with("zhangsan", None, |w, _| {
        w.privateinfo = PrivateInfo::WhenRequested;
    })
    .await;
    let (claims, userinfo) = login_ok(&demo, "openid profile email phone address", WECOM_UA).await;
    for c in [&claims, &userinfo] {
        assert_eq!(c["email"], "zhangsan@example.com", "{c}");
        assert_eq!(c["email_verified"], false);
        assert_eq!(c["phone_number"], "13800130001");
        assert_eq!(
            c["address"],
            serde_json::json!({"formatted": "北京市海淀区示例路1号"})
        );
        assert_eq!(c["gender"], "male");
        assert!(c["picture"].as_str().is_some_and(|p| p.starts_with("http")));
    }
    // Without those scopes the login stays silent: no ticket, no private claims.
    let (claims, _) = login_ok(&demo, "openid profile", WECOM_UA).await;
    assert!(claims.get("picture").is_none(), "{claims}");
}

#[tokio::test]
async fn groups_arrive_in_id_token_and_userinfo_as_names_paths_and_tags() {
    let demo = start("zhangsan").await;
    let (claims, userinfo) = login_ok(&demo, "openid groups", "Mozilla/5.0").await;
    // 研发全员 tags 研发, the parent of zhangsan's 平台: a tag covers sub-departments.
    let expected = serde_json::json!(["平台", "/研发/平台", "管理员", "研发全员"]);
    assert_eq!(claims["groups"], expected);
    assert_eq!(userinfo["groups"], expected);
    // Without the scope there is no claim.
    let (claims, _) = login_ok(&demo, "openid", "Mozilla/5.0").await;
    assert!(claims.get("groups").is_none());
}

#[tokio::test]
async fn the_directory_is_walked_once_not_per_login() {
    let demo = start("lisi").await;
    for _ in 0..3 {
        let (claims, _) = login_ok(&demo, "openid groups", "Mozilla/5.0").await;
        assert_eq!(
            claims["groups"],
            serde_json::json!(["市场", "/市场", "值班"])
        );
    }
    // A walk that would now fail is never attempted: the cache (TTL 600 s) serves.
    demo.simulator
        .fail_next("/cgi-bin/department/simplelist", 48002, 1);
    demo.simulator
        .fail_next("/cgi-bin/department/get", 48002, 1);
    let (claims, _) = login_ok(&demo, "openid groups", "Mozilla/5.0").await;
    assert_eq!(
        claims["groups"],
        serde_json::json!(["市场", "/市场", "值班"])
    );
}

#[tokio::test]
async fn inactive_members_are_refused_at_login() {
    for who in ["wangwu", "zhaoliu", "sunqi"] {
        let demo = start(who).await;
        match login(&demo, "openid", "Mozilla/5.0").await {
            Outcome::Redirect(q) => assert_eq!(
                q.get("error").map(String::as_str),
                Some("access_denied"),
                "{who}"
            ),
            Outcome::Page(s, b) => panic!("{who}: page {s}: {b}"),
        }
    }
}

#[tokio::test]
async fn a_member_disabled_after_login_is_refused_at_refresh() {
    use wecom_oidc::connector::Connector;
    let demo = start("zhangsan").await;
    let connector = connector_on_store(&demo);
    let identity = wecom_oidc::connector::Identity {
        user_id: "zhangsan".into(),
        username: "zhangsan".into(),
        ..Default::default()
    };
    let fresh = connector
        .refresh(&identity)
        .await
        .expect("active member refreshes");
    assert_eq!(fresh.name.as_deref(), Some("张三"));
    assert!(demo.simulator.set_member_status("zhangsan", 5));
    assert!(matches!(
        connector.refresh(&identity).await,
        Err(wecom_oidc::connector::ConnectorError::AccessDenied(_))
    ));
}

#[tokio::test]
async fn configuration_faults_show_a_bilingual_page_instead_of_a_redirect() {
    let demo = start("zhangsan").await;
    for (code, status) in [
        (60020, 502),
        (50001, 502),
        (40001, 502),
        (40013, 502),
        (45009, 503),
    ] {
        demo.simulator
            .fail_next("/cgi-bin/auth/getuserinfo", code, 1);
        match login(&demo, "openid", "Mozilla/5.0").await {
            Outcome::Page(s, body) => {
                assert_eq!(s.as_u16(), status, "{code}");
                // The page explains in both languages (one primary, one secondary line).
                assert!(
                    body.contains("无法完成登录")
                        || body.contains("Sign-in could not be completed")
                );
                if code == 45009 {
                    assert!(
                        body.contains("rate-limiting") || body.contains("调用频率"),
                        "{body}"
                    );
                } else {
                    assert!(
                        body.contains("configuration problem") || body.contains("配置问题"),
                        "{body}"
                    );
                }
            }
            Outcome::Redirect(q) => panic!("{code}: redirected with {q:?}"),
        }
    }
}

const CALLBACK_TOKEN: &str = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
const CALLBACK_AES_KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";

async fn start_with_callbacks(auto_login: &str) -> (RunningDemo, CallbackTarget) {
    let demo = start_with(auto_login, None, |w, _| {
        w.callback = Some(CallbackSettings {
            token: CALLBACK_TOKEN.into(),
            encoding_aes_key: CALLBACK_AES_KEY.into(),
        });
    })
    .await;
    let target = CallbackTarget {
        url: format!("{}/callback/wecom/events", demo.issuer),
        token: CALLBACK_TOKEN.into(),
        encoding_aes_key: CALLBACK_AES_KEY.into(),
    };
    (demo, target)
}

#[tokio::test]
async fn callback_url_verification_answers_the_decrypted_echostr_wecom_api_11() {
    let (demo, target) = start_with_callbacks("zhangsan").await;
    // Several rounds: random echostrs regularly contain `+`, which must survive decoding.
    for _ in 0..8 {
        assert!(demo
            .simulator
            .verify_callback_url(&target)
            .await
            .expect("delivered"));
    }
    let wrong = CallbackTarget {
        token: "not-the-token".into(),
        ..target
    };
    assert!(!demo
        .simulator
        .verify_callback_url(&wrong)
        .await
        .expect("delivered"));
}

#[tokio::test]
async fn a_renamed_member_keeps_the_same_sub_after_the_update_user_callback() {
    let (demo, target) = start_with_callbacks("zhangsan").await;
    let (before, _) = login_ok(&demo, "openid", "Mozilla/5.0").await;
    assert_eq!(before["sub"], "zhangsan");
    let delivery = rename(&demo, "zhangsan", "zhangsan001", &target).await;
    assert_eq!(delivery.status, 200);
    // WeCom retries: a second delivery of a rename is harmless.
    let (after, userinfo) = tokens_of_member(&demo, "openid profile", "zhangsan001").await;
    assert_eq!(
        after["sub"], "zhangsan",
        "old and new UserId map to the same sub"
    );
    assert_eq!(userinfo["sub"], "zhangsan");
    assert_eq!(after["preferred_username"], "zhangsan001");
}

#[tokio::test]
async fn callbacks_with_a_bad_signature_are_rejected_and_change_nothing() {
    let (demo, target) = start_with_callbacks("zhangsan").await;
    let forged = CallbackTarget {
        token: "forged".into(),
        ..target
    };
    let delivery = rename(&demo, "lisi", "lisi001", &forged).await;
    assert_eq!(delivery.status, 400);
    let (claims, _) = tokens_of_member(&demo, "openid", "lisi001").await;
    assert_eq!(claims["sub"], "lisi001", "no rename was recorded");
}

#[tokio::test]
async fn events_endpoint_is_not_found_when_no_callback_is_configured() {
    let demo = start("zhangsan").await;
    let (status, _) = common::get(format!("{}/callback/wecom/events?echostr=x", demo.issuer)).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lowercase_sub_option_folds_wecom_userid_case() {
    let demo = start_with("ZhouBa", None, |w, _| w.subject = SubjectMode::Lowercase).await;
    let (claims, _) = login_ok(&demo, "openid profile", "Mozilla/5.0").await;
    assert_eq!(claims["sub"], "zhouba");
    assert_eq!(claims["preferred_username"], "ZhouBa");
}

#[tokio::test]
async fn verify_files_are_served_at_the_root_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("WW_verify_Ab12Cd34.txt");
    std::fs::write(&path, b"Ab12Cd34xyz").expect("write");
    let demo = start_with("zhangsan", None, |w, _| w.verify_files = vec![path]).await;
    let resp = reqwest::get(format!("{}/WW_verify_Ab12Cd34.txt", demo.issuer))
        .await
        .expect("answers");
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    assert_eq!(&resp.bytes().await.expect("body")[..], b"Ab12Cd34xyz");
    let (status, _) = common::get(format!("{}/WW_verify_Zz.txt", demo.issuer)).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_slow_wecom_times_out_into_temporarily_unavailable_not_a_hang() {
    let demo = start_with("zhangsan", None, |w, _| {
        w.timeout = std::time::Duration::from_millis(300);
    })
    .await;
    demo.simulator
        .set_latency("/cgi-bin/gettoken", std::time::Duration::from_secs(2));
    let started = std::time::Instant::now();
    match login(&demo, "openid", "Mozilla/5.0").await {
        Outcome::Redirect(q) => {
            assert_eq!(
                q.get("error").map(String::as_str),
                Some("temporarily_unavailable")
            )
        }
        Outcome::Page(s, b) => panic!("page {s}: {b}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    demo.simulator
        .set_latency("/cgi-bin/gettoken", std::time::Duration::ZERO);
    login_ok(&demo, "openid", "Mozilla/5.0").await;
}

#[tokio::test]
async fn pairwise_sub_is_the_sector_hash_oidc_core_8_1_and_is_advertised() {
    let salt = "a-long-secret-pairwise-salt";
    let demo = start_with("ZhangSan", None, |w, _| {
        w.subject = SubjectMode::Pairwise;
        w.pairwise_salt = Some(salt.into());
    })
    .await;
    let (first, userinfo) = login_ok(&demo, "openid", "Mozilla/5.0").await;
    let expected = wecom_oidc::connector::wecom::pairwise_subject("127.0.0.1", "zhangsan", salt);
    assert_eq!(first["sub"], expected.as_str());
    assert_eq!(userinfo["sub"], expected.as_str());
    let (second, _) = login_ok(&demo, "openid", "Mozilla/5.0").await;
    assert_eq!(second["sub"], first["sub"], "stable for the same client");
    let meta: Value =
        common::get_json(format!("{}/.well-known/openid-configuration", demo.issuer)).await;
    assert_eq!(
        meta["subject_types_supported"],
        serde_json::json!(["public", "pairwise"])
    );
}

#[tokio::test]
async fn each_client_logs_in_through_the_wecom_app_it_names() {
    let served = common::serve_branch_app(rp_client(), "lisi").await;
    let issuer = &served.issuer;

    let authorize = format!(
        "{issuer}/authorize?client_id={CLIENT_ID}&redirect_uri={}&response_type=code&scope=openid&state=s",
        url::form_urlencoded::byte_serialize(REDIRECT_URI.as_bytes()).collect::<String>()
    );
    let w = common::walk(&browser("Mozilla/5.0"), &authorize, REDIRECT_URI).await;
    let query = w.redirect_query();
    let saw_branch_callback = w
        .visited
        .iter()
        .any(|u| u.starts_with(&format!("{issuer}/callback/branch?")));
    assert!(
        saw_branch_callback,
        "the login came back through the branch app"
    );
    assert!(query.contains_key("code"), "{query:?}");
}

/// wecom-api.md §11 vectors A1 (URL verification) and D (`update_user` rename), sent over HTTP
/// exactly as WeCom would, to a provider configured with the vectors' corp and keys.
#[tokio::test]
async fn callback_endpoint_accepts_the_reference_vectors_a1_and_d() {
    let demo = start_with("zhangsan", None, |w, sim| {
        sim.corp_id = "ww1436e0e65a779aee".into();
        w.corp_id = "ww1436e0e65a779aee".into();
        w.callback = Some(CallbackSettings {
            token: CALLBACK_TOKEN.into(),
            encoding_aes_key: CALLBACK_AES_KEY.into(),
        });
    })
    .await;
    let events = format!("{}/callback/wecom/events", demo.issuer);
    // A1: echostr arrives percent-encoded; its `+` must not become a space.
    let echostr =
        "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==";
    let url = format!(
        "{events}?msg_signature=012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb&timestamp=1476416373&nonce=47744683&echostr={}",
        url::form_urlencoded::byte_serialize(echostr.as_bytes()).collect::<String>()
    );
    let resp = reqwest::get(url).await.expect("A1 answers");
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    assert_eq!(resp.text().await.expect("body"), "1288432023552776189");

    // D: the rename zhangsan → zhangsan001.
    let encrypt = "/K4xJYsBwQssQzE/v2nbvPiz8m9hNp0ww+8LDzsdpZ/NcqD8q6xAFVzsVUG1+zQYNvItjZgVzmFxrX71LjPP6f4P0nQemIw9Ks2isQHNpdUWKB4HRsJhA3NV9m5ZBh759awIau6jPTl3NQjYVtMBWtv4elmfhreeMdmj6P7ZB0NTgomgnFW08h+SDi2hIenXgWEX/BIGJUAM2JRBx3hqH8CLmxCjWi4JpB6Kl0dItCaOLyZ0xtyQXJSE7z3Vjfo7H31qcVTqpM+/F+EVB3+aeFHqYgCEXc7hco3uxYlA/G1XyPN3nUCo2pwCQYKQbZQhRSXVJVS8tdn5HkRdIwCACexDFMPHVB5A33juhIGLBxp1peKLuvvfxOOCJzvRMhOVLCgRrGrUUy5o0GqltbI7Gufn5GGjqhUNIX0ZTt4j8fJsdVF3OVGQE7RsB1hMw3R1jgjJLuJFbKfrhsoOaz1550LTdhAjoXRpUqXOEXXiTpzjcXQ+FJlm5YlSq52FdjKHQSXXyp0y9kmnaDCHBvEFiWgsa7lMIPq2OrZvXrnTOgs=";
    let body = format!(
        "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
    );
    let post = format!(
        "{events}?msg_signature=5527913e6e2607115d352e341a1e1f99e1e00e09&timestamp=1700000000&nonce=1372623149"
    );
    let http = reqwest::Client::new();
    for _ in 0..2 {
        // The second delivery is WeCom's retry: acknowledged, nothing changes.
        let resp = http
            .post(&post)
            .body(body.clone())
            .send()
            .await
            .expect("D answers");
        assert_eq!(resp.status(), reqwest::StatusCode::OK);
    }
    // The simulated directory follows (its own delivery of the same rename is idempotent).
    let target = CallbackTarget {
        url: events,
        token: CALLBACK_TOKEN.into(),
        encoding_aes_key: CALLBACK_AES_KEY.into(),
    };
    let again = rename(&demo, "zhangsan", "zhangsan001", &target).await;
    assert_eq!(again.status, 200);
    let (claims, _) = tokens_of_member(&demo, "openid", "zhangsan001").await;
    assert_eq!(claims["sub"], "zhangsan");
}

#[tokio::test]
async fn a_pre_2022_app_gets_the_profile_from_user_get_without_privateinfo() {
    let demo = start_with("zhangsan", None, |_, sim| sim.legacy_app = true).await;
    let (claims, _) = login_ok(&demo, "openid profile email phone", "Mozilla/5.0").await;
    assert_eq!(claims["email"], "zhangsan@example.com");
    assert_eq!(claims["phone_number"], "13800130001");
    assert_eq!(claims["gender"], "male");
}

#[tokio::test]
async fn privacy_fields_sent_as_empty_strings_are_absent_claims_not_empty_ones() {
    let demo = start("zhangsan").await;
    demo.simulator
        .set_quirks(wecom_oidc::simulator::SimulatorQuirks {
            privacy_fields_empty: true,
            ..Default::default()
        });
    let (claims, userinfo) =
        login_ok(&demo, "openid profile email phone address", "Mozilla/5.0").await;
    for c in [&claims, &userinfo] {
        for absent in ["email", "phone_number", "address", "picture", "gender"] {
            assert!(c.get(absent).is_none(), "{absent} in {c}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Phones outside WeCom (wecom-api.md §9): a hand-off page instead of a QR code nobody can scan.

const IPHONE_SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const WECHAT_ANDROID: &str = "Mozilla/5.0 (Linux; Android 13; V2183A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64";
const DESKTOP_CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/// `/authorize` for the test RP (PKCE, so the code can be redeemed by [`tokens_for`]).
fn authorize_url(demo: &RunningDemo, extra: &[(&str, &str)]) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest("v".repeat(50).as_bytes()));
    let mut url = url::Url::parse(&format!("{}/authorize", demo.issuer)).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", "s1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

/// The `href` of the hand-off page's link to WeCom's own login page, unescaped.
fn qr_link(page: &str) -> String {
    let start = page
        .find("<a class=\"button\" href=\"")
        .expect("the QR page link")
        + 24;
    let end = start + page[start..].find('"').expect("closing quote");
    page[start..end].replace("&#38;", "&").replace("&amp;", "&")
}

#[tokio::test]
async fn a_phone_outside_wecom_gets_the_handoff_page_and_can_still_finish_through_the_qr_page() {
    let demo = start("zhangsan").await;
    for (ua, lang, expect) in [
        (IPHONE_SAFARI, "en", "Open this in WeCom"),
        (WECHAT_ANDROID, "zh-CN", "请在企业微信中打开"),
    ] {
        let http = browser(ua);
        let resp = http
            .get(authorize_url(&demo, &[("ui_locales", lang)]))
            .send()
            .await
            .expect("authorize");
        assert_eq!(resp.status(), 200, "{ua}: a page, not a redirect");
        let csp = resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'sha256-"), "{csp}");
        let page = resp.text().await.expect("body");
        assert!(page.contains(expect), "{ua}: {page}");
        // The application's address, to open inside WeCom (selectable without scripts) …
        assert!(
            page.contains(r#"readonly value="http://127.0.0.1:9/""#),
            "{page}"
        );
        assert!(page.contains(r#"id="copy""#), "{page}");
        // … and WeCom's own login page for this very login.
        let qr = qr_link(&page);
        let sso = format!("{}{}/wwlogin/sso/login?", demo.issuer, demo::SIMULATOR_PATH);
        assert!(qr.starts_with(&sso), "{qr}");
        assert!(qr.contains("login_type=CorpApp"), "{qr}");
        // Following it in the same browser completes this login (the simulator logs
        // zhangsan in), so the page is never a dead end.
        let mut next = qr;
        let code = loop {
            let resp = http.get(&next).send().await.expect("walk");
            assert!(resp.status().is_redirection(), "{}", resp.status());
            let location = resp.headers()["location"].to_str().unwrap().to_owned();
            if let Some(query) = location.strip_prefix(&format!("{REDIRECT_URI}?")) {
                let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect();
                assert_eq!(q.get("state").map(String::as_str), Some("s1"));
                break q;
            }
            next = location;
        };
        let (claims, _) = tokens_for(&demo, Outcome::Redirect(code)).await;
        assert_eq!(claims["sub"], "zhangsan");
    }
}

#[tokio::test]
async fn desktop_browsers_still_go_to_the_qr_page_and_wecom_to_the_in_app_link() {
    let demo = start("zhangsan").await;
    for (ua, path) in [
        (DESKTOP_CHROME, "/wwlogin/sso/login?"),
        (WECOM_UA, "/connect/oauth2/authorize?"),
    ] {
        let resp = browser(ua)
            .get(authorize_url(&demo, &[]))
            .send()
            .await
            .expect("authorize");
        assert_eq!(resp.status(), 302, "{ua}");
        let location = resp.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with(&format!("{}{}{path}", demo.issuer, demo::SIMULATOR_PATH)),
            "{ua}: {location}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// `[wecom] proxy`: every WeCom call through one egress proxy.

/// A forward proxy on loopback that notes the request line of everything it is asked.
/// Absolute-form plain-HTTP requests are forwarded in origin form with `Connection: close` (so
/// each request is one connection, and is counted); `CONNECT` is noted and refused.
struct CountingProxy {
    url: String,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

impl CountingProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let noted = seen.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let noted = noted.clone();
                tokio::spawn(async move {
                    let _ = proxy_one(conn, noted).await;
                });
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn proxy_one(
    mut conn: tokio::net::TcpStream,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end - 4]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    seen.lock().unwrap().push(request_line.clone());
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method == "CONNECT" {
        conn.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
        return Ok(());
    }
    let Ok(url) = url::Url::parse(target) else {
        conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    let authority = format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(80)
    );
    let mut upstream = tokio::net::TcpStream::connect(authority).await?;
    let origin_form = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let mut out = format!("{method} {origin_form} HTTP/1.1\r\n");
    for line in lines {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        if name != "connection" && name != "proxy-connection" && name != "keep-alive" {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    upstream.write_all(out.as_bytes()).await?;
    upstream.write_all(&buf[head_end..]).await?;
    tokio::io::copy_bidirectional(&mut conn, &mut upstream).await?;
    Ok(())
}

#[tokio::test]
async fn a_login_goes_through_the_configured_wecom_proxy() {
    let proxy = CountingProxy::start().await;
    let proxy_url = proxy.url.clone();
    let demo = start_with("zhangsan", None, move |w, _| w.proxy = Some(proxy_url)).await;
    let (claims, _) = login_ok(&demo, "openid", DESKTOP_CHROME).await;
    assert_eq!(claims["sub"], "zhangsan");
    let seen = proxy.seen();
    let sim = format!("{}{}", demo.issuer, demo::SIMULATOR_PATH);
    for path in [
        "/cgi-bin/gettoken?",
        "/cgi-bin/auth/getuserinfo?",
        "/cgi-bin/user/get?",
    ] {
        assert!(
            seen.iter()
                .any(|l| l.starts_with(&format!("GET {sim}{path}"))),
            "{path} went through the proxy: {seen:?}"
        );
    }
}

/// A config file for `wecom-oidc check` with `[wecom] api_base` (and the login page) at `base`
/// and `[wecom] proxy`.
fn proxied_config(dir: &tempfile::TempDir, base: &str, proxy: &str) -> std::path::PathBuf {
    common::config_file_with(dir, base, None, None, &format!("proxy = \"{proxy}\"\n"))
}

#[tokio::test]
async fn check_goes_through_the_proxy_plain_http_forwarded_and_https_by_connect() {
    use wecom_oidc::commands::doctor;
    let proxy = CountingProxy::start().await;
    // Plain HTTP (the simulator on loopback): forwarded, and `check` passes through it.
    let demo = start("zhangsan").await;
    let sim = format!("{}{}", demo.issuer, demo::SIMULATOR_PATH);
    let dir = tempfile::tempdir().unwrap();
    let report = doctor::check_file(
        &proxied_config(&dir, &sim, &proxy.url),
        Arc::new(SystemClock),
    )
    .await;
    assert!(
        report.findings.iter().any(|f| f.topic == "wecom"
            && f.level == doctor::Level::Pass
            && f.en.contains("gettoken succeeded")),
        "{}",
        report.render()
    );
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&format!("GET {sim}/cgi-bin/gettoken?"))),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&format!("GET {sim}/wwlogin/sso/login?"))),
        "the login page check uses the proxy too: {seen:?}"
    );
    // HTTPS: the proxy is asked to CONNECT (it refuses), and nothing is resolved or dialled
    // directly — the host below does not exist.
    let dir = tempfile::tempdir().unwrap();
    let report = doctor::check_file(
        &proxied_config(&dir, "https://qyapi.wecom-oidc.invalid", &proxy.url),
        Arc::new(SystemClock),
    )
    .await;
    assert!(!report.passed(), "{}", report.render());
    assert!(
        proxy
            .seen()
            .iter()
            .any(|l| l.starts_with("CONNECT qyapi.wecom-oidc.invalid:443 ")),
        "{:?}",
        proxy.seen()
    );
}

#[test]
fn wecom_proxy_must_be_an_http_url_with_a_host() {
    let base = |proxy: &str| {
        format!(
            "issuer = \"https://sso.example.com\"\n[wecom]\ncorp_id = \"ww1\"\nagent_id = 1000002\n\
             secret = \"s\"\nproxy = \"{proxy}\"\n[[clients]]\nid = \"a\"\nsecret = \"b\"\n\
             redirect_uris = [\"https://a.example.com/cb\"]\n"
        )
    };
    let env = |_: &str| None;
    let ok = wecom_oidc::config::parse(&base("http://10.0.0.8:3128"), "t.toml", &env)
        .expect("a valid proxy");
    let app = ok.connectors[0]
        .as_any()
        .downcast_ref::<WeComSettings>()
        .expect("a WeCom app");
    assert_eq!(app.proxy.as_deref(), Some("http://10.0.0.8:3128"));
    for bad in [
        "socks5://10.0.0.8:1080",
        "10.0.0.8:3128",
        "http://10.0.0.8:3128/x",
    ] {
        let err = wecom_oidc::config::parse(&base(bad), "t.toml", &env).expect_err(bad);
        assert!(
            err.problems.iter().any(|p| p.contains("wecom.proxy")),
            "{bad}: {:?}",
            err.problems
        );
    }
}

// ---- Offboarding: members removed in WeCom are signed out everywhere ----

/// A client that registered a back-channel logout URI.
const BCL_CLIENT: &str = "bcl-rp";

/// The demo with callbacks and [`BCL_CLIENT`], whose back-channel logout endpoint is the
/// returned receiver; logins complete as zhangsan.
/// A `change_contact` event (wecom-api.md §11) of the demo corp: `change_type` with `fields`.
fn change_contact(demo: &RunningDemo, change_type: &str, fields: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
         <CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType>\
         <Event><![CDATA[change_contact]]></Event><ChangeType>{change_type}</ChangeType>{fields}</xml>",
        demo.simulator.config().corp_id
    )
}

/// Delivers callback `xml` to `target`, which must answer 200.
async fn delivered_ok(demo: &RunningDemo, target: &CallbackTarget, xml: &str) {
    let d = demo
        .simulator
        .deliver(target, xml)
        .await
        .expect("delivered");
    assert_eq!(d.status, 200, "{}", d.body);
}

/// [`start_offboarding`] with zhangsan signed in ([`signed_in`]) in a browser: the demo, the
/// callback target, the logout receipts, the browser and what zhangsan holds.
async fn offboarding_signed_in() -> (
    RunningDemo,
    CallbackTarget,
    common::Received,
    reqwest::Client,
    common::Held<'static>,
) {
    let (demo, target, got) = start_offboarding().await;
    let b = common::browser();
    let held = signed_in(&demo, &b).await;
    (demo, target, got, b, held)
}

async fn start_offboarding() -> (RunningDemo, CallbackTarget, common::Received) {
    let (bcl, got) = common::logout_receiver().await;
    let mut settings = wecom_oidc::provider::client::ClientSettings::default();
    settings.backchannel_logout_uri = Some(bcl);
    let bcl_client = common::client(BCL_CLIENT, Some(CLIENT_SECRET), REDIRECT_URI, settings);
    let options = common::demo_options(
        Some("zhangsan"),
        vec![rp_client(), bcl_client],
        None,
        Arc::new(SystemClock),
    )
    .await;
    let demo = demo::spawn_with(options, |w, _| {
        w.callback = Some(CallbackSettings {
            token: CALLBACK_TOKEN.into(),
            encoding_aes_key: CALLBACK_AES_KEY.into(),
        });
    })
    .await
    .expect("demo starts");
    let target = CallbackTarget {
        url: format!("{}/callback/wecom/events", demo.issuer),
        token: CALLBACK_TOKEN.into(),
        encoding_aes_key: CALLBACK_AES_KEY.into(),
    };
    (demo, target, got)
}

/// Logs zhangsan in for [`BCL_CLIENT`] in `browser`; what they then hold.
async fn signed_in(demo: &RunningDemo, browser: &reqwest::Client) -> common::Held<'static> {
    let url = common::authorize_url(
        &demo.issuer,
        &[
            ("client_id", BCL_CLIENT),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("scope", "openid offline_access"),
            ("state", "s1"),
        ],
    );
    let q = common::walk(browser, &url, REDIRECT_URI)
        .await
        .redirect_query();
    let (status, tokens) = common::token(
        &demo.issuer,
        (BCL_CLIENT, CLIENT_SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    common::Held {
        client: (BCL_CLIENT, CLIENT_SECRET),
        access: common::str_of(&tokens, "access_token").to_owned(),
        refresh: common::str_of(&tokens, "refresh_token").to_owned(),
        silent: (CLIENT_ID, REDIRECT_URI),
    }
}

/// Asserts that zhangsan's session, refresh token and access token are refused, that
/// [`BCL_CLIENT`] got one logout token for them, and that the event log says why.
async fn assert_signed_out(
    demo: &RunningDemo,
    browser: &reqwest::Client,
    held: &mut common::Held<'_>,
    got: &common::Received,
    why: &str,
) {
    let working = common::still_working(&demo.issuer, browser, held).await;
    assert!(working.is_empty(), "still working: {working:?}");
    let tokens = common::wait_for_logout_tokens(got, 1, std::time::Duration::from_secs(5)).await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let claims = common::claims_of(&tokens[0]);
    assert_eq!(claims["sub"], "zhangsan");
    assert_eq!(claims["aud"], BCL_CLIENT);
    let events = demo.store.list_login_events(20).await.expect("events");
    let event = events
        .iter()
        .find(|e| e.outcome == "signed_out" && e.user_id.as_deref() == Some("zhangsan"))
        .expect("the sign-out is in the login event log");
    let reason = event.reason.as_deref().unwrap_or_default();
    assert!(reason.contains(why), "{reason}");
}

#[tokio::test]
async fn a_member_disabled_in_wecom_is_signed_out_everywhere_at_the_update_user_callback() {
    let (demo, target, got, b, mut held) = offboarding_signed_in().await;
    let delivery = demo
        .simulator
        .set_member_status_and_notify("zhangsan", 2, &target)
        .await
        .expect("delivered");
    assert_eq!(delivery.status, 200, "{}", delivery.body);
    assert_signed_out(&demo, &b, &mut held, &got, "disabled").await;
}

#[tokio::test]
async fn a_member_taken_out_of_the_visible_range_is_signed_out_and_others_are_not() {
    let (demo, target, got, b, mut held) = offboarding_signed_in().await;
    let agent = demo.simulator.config().agent_id;
    // Narrowed to zhangsan and lisi: the others are told they left the range; zhangsan keeps
    // everything (an `unsubscribe` is checked against WeCom before anyone is signed out).
    let range = |users: &[&str]| wecom_oidc::simulator::VisibleRange {
        users: users.iter().map(|u| u.to_string()).collect(),
        ..Default::default()
    };
    let deliveries = demo
        .simulator
        .set_visible_range_and_notify(agent, range(&["zhangsan", "lisi"]), &target)
        .await
        .expect("delivered");
    assert!(!deliveries.is_empty() && deliveries.iter().all(|d| d.status == 200));
    let working = common::still_working(&demo.issuer, &b, &mut held).await;
    assert_eq!(working.len(), 4, "zhangsan is still in range: {working:?}");
    assert!(common::logout_tokens(&got).is_empty());
    // Now without zhangsan.
    let deliveries = demo
        .simulator
        .set_visible_range_and_notify(agent, range(&["lisi"]), &target)
        .await
        .expect("delivered");
    assert_eq!(deliveries.len(), 1, "one member left the range");
    assert_eq!(deliveries[0].status, 200, "{}", deliveries[0].body);
    assert_signed_out(&demo, &b, &mut held, &got, "visible range").await;
}

#[tokio::test]
async fn a_member_deleted_in_wecom_is_signed_out_and_a_retried_callback_changes_nothing() {
    let (demo, target, got, b, mut held) = offboarding_signed_in().await;
    let delivery = demo
        .simulator
        .delete_member_and_notify("zhangsan", &target)
        .await
        .expect("delivered");
    assert_eq!(delivery.status, 200, "{}", delivery.body);
    assert_signed_out(&demo, &b, &mut held, &got, "deleted").await;
    // WeCom sends an event again when it missed our answer: acknowledged, and nobody is told
    // twice (the sessions are gone already).
    let msg = change_contact(
        &demo,
        "delete_user",
        "<UserID><![CDATA[zhangsan]]></UserID>",
    );
    delivered_ok(&demo, &target, &msg).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(common::logout_tokens(&got).len(), 1);
}

#[tokio::test]
async fn an_update_user_without_status_re_reads_the_member_and_signs_out_only_a_refused_one() {
    let (demo, target, got, b, mut held) = offboarding_signed_in().await;
    // Callback URLs saved after 2022-08-15 get UserID and Department only (wecom-api.md §11).
    let department_change = change_contact(
        &demo,
        "update_user",
        "<UserID><![CDATA[zhangsan]]></UserID><Department><![CDATA[1,2]]></Department>",
    );
    delivered_ok(&demo, &target, &department_change).await;
    let working = common::still_working(&demo.issuer, &b, &mut held).await;
    assert_eq!(
        working.len(),
        4,
        "an active member keeps everything: {working:?}"
    );
    // Disabled without a status in the event: the re-read finds out.
    assert!(demo.simulator.set_member_status("zhangsan", 2));
    let d = demo
        .simulator
        .deliver(&target, &department_change.replace("1,2", "2"))
        .await
        .expect("delivered");
    assert_eq!(d.status, 200, "{}", d.body);
    assert_signed_out(&demo, &b, &mut held, &got, "disabled").await;
}
