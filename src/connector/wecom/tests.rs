//! Tests of the WeCom connector against the fake WeCom in `fake.rs` (never the simulator).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::fake::{codes, FakeState, FakeWeCom, TokenStore, AGENT_ID, CORP_ID, SECRET};
use super::*;
use crate::clock::ManualClock;

const START: i64 = 1_700_000_000;
const STORE_KEY: &str = "wecom:wwfakecorp0001:1000002";

struct Harness {
    fake: FakeWeCom,
    store: Arc<TokenStore>,
    clock: ManualClock,
}

impl Harness {
    async fn start() -> Self {
        Self {
            fake: FakeWeCom::start().await,
            store: Arc::new(TokenStore::default()),
            clock: ManualClock::new(START),
        }
    }

    fn settings(&self) -> WeComSettings {
        WeComSettings {
            api_base: self.fake.base.clone(),
            oauth_base: "https://oauth.example".to_owned(),
            sso_base: "https://sso.example/".to_owned(),
            timeout: Duration::from_millis(500),
            ..WeComSettings::new(CORP_ID, AGENT_ID, SECRET)
        }
    }

    /// A connector (a fresh one each call, as after a restart) on the harness's store.
    fn connector_with(&self, settings: WeComSettings) -> WeComConnector {
        WeComConnector::new(settings, self.store.clone(), Arc::new(self.clock.clone()))
            .expect("valid settings")
    }

    fn connector(&self) -> WeComConnector {
        self.connector_with(self.settings())
    }

    /// The error fetching a token ends in when WeCom's API is looked for at `api_base`.
    async fn token_refused_at(&self, api_base: String) -> ConnectorError {
        let settings = WeComSettings {
            api_base,
            ..self.settings()
        };
        self.connector_with(settings)
            .access_token()
            .await
            .expect_err("no token")
    }

    /// The error a login with `code` on a fresh connector ends in.
    async fn refused(&self, code: &str) -> ConnectorError {
        login(&self.connector(), code)
            .await
            .expect_err("the login is refused")
    }
}

fn callback(code: &str) -> HashMap<String, String> {
    HashMap::from([
        ("code".to_owned(), code.to_owned()),
        ("state".to_owned(), "st4te".to_owned()),
    ])
}

async fn login(c: &WeComConnector, code: &str) -> Result<Identity, ConnectorError> {
    c.handle_callback(&callback(code), &["openid".to_owned()])
        .await
}

fn request<'a>(user_agent: Option<&'a str>, ui_locales: Option<&'a str>) -> LoginRequest<'a> {
    LoginRequest {
        state: "Abc123",
        callback_url: "https://idp.example/callback/wecom",
        scopes: &[],
        user_agent,
        login_hint: None,
        ui_locales,
    }
}

#[tokio::test]
async fn wecom_browser_gets_the_in_app_oauth_link() {
    let h = Harness::start().await;
    let c = h.connector();
    let ua = "Mozilla/5.0 (Linux; Android 13) MicroMessenger/8.0 wxwork/4.1.22";
    let url = c.login_url(&request(Some(ua), Some("en"))).expect("url");
    assert_eq!(
        url,
        "https://oauth.example/connect/oauth2/authorize?appid=wwfakecorp0001\
         &redirect_uri=https%3A%2F%2Fidp.example%2Fcallback%2Fwecom&response_type=code\
         &scope=snsapi_base&state=Abc123&agentid=1000002#wechat_redirect"
    );
}

#[tokio::test]
async fn other_browsers_get_the_pc_login_page_in_the_asked_language() {
    let h = Harness::start().await;
    let c = h.connector();
    let url = c
        .login_url(&request(
            Some("Mozilla/5.0 Firefox/130.0"),
            Some("en-GB zh"),
        ))
        .expect("url");
    assert_eq!(
        url,
        "https://sso.example/wwlogin/sso/login?login_type=CorpApp&appid=wwfakecorp0001\
         &agentid=1000002&redirect_uri=https%3A%2F%2Fidp.example%2Fcallback%2Fwecom\
         &state=Abc123&lang=en"
    );
    let url = c.login_url(&request(None, None)).expect("url");
    assert!(url.ends_with("&lang=zh"), "{url}");
    assert_eq!(c.id(), "wecom");
}

#[tokio::test]
async fn member_login_yields_identity_with_biz_mail_when_email_is_empty() {
    let h = Harness::start().await;
    let id = login(&h.connector(), codes::ALICE).await.expect("login");
    assert_eq!(
        id,
        Identity {
            user_id: "alice".to_owned(),
            username: "alice".to_owned(),
            name: Some("张三 Alice".to_owned()),
            email: Some("alice@corp.example".to_owned()),
            email_verified: false,
            groups: vec![],
            connector_id: "wecom".to_owned(),
            ..Identity::default()
        }
    );
}

#[tokio::test]
async fn empty_name_is_absent_and_email_wins_over_biz_mail() {
    let h = Harness::start().await;
    let id = login(&h.connector(), codes::CAROL).await.expect("login");
    assert_eq!(id.name, None);
    assert_eq!(id.email.as_deref(), Some("carol@example.com"));
}

#[tokio::test]
async fn callback_without_code_is_a_cancellation() {
    let h = Harness::start().await;
    let c = h.connector();
    let only_state = HashMap::from([("state".to_owned(), "st4te".to_owned())]);
    assert!(matches!(
        c.handle_callback(&only_state, &[]).await,
        Err(ConnectorError::Cancelled)
    ));
    assert!(matches!(
        login(&c, "").await,
        Err(ConnectorError::Cancelled)
    ));
    assert_eq!(h.fake.state.gettoken(), 0, "no upstream call for a refusal");
}

#[tokio::test]
async fn oversized_code_is_rejected_without_calling_wecom() {
    let h = Harness::start().await;
    let code = "c".repeat(513);
    assert!(matches!(
        login(&h.connector(), &code).await,
        Err(ConnectorError::InvalidCode(_))
    ));
    assert_eq!(h.fake.state.getuserinfo(), 0);
}

#[tokio::test]
async fn rejected_code_40029_is_invalid_code_and_message_hides_code_and_token() {
    let h = Harness::start().await;
    let code = "used-code/+?&=";
    let err = login(&h.connector(), code).await.expect_err("40029");
    let ConnectorError::InvalidCode(message) = &err else {
        panic!("expected InvalidCode, got {err:?}");
    };
    assert!(message.contains("invalid code"), "{message}");
    let token = h.fake.state.last_token().expect("a token was issued");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(code), "{text}");
        assert!(!text.contains("used-code"), "{text}");
        assert!(!text.contains(&token), "{text}");
    }
}

#[tokio::test]
async fn non_member_with_only_openid_is_denied() {
    let h = Harness::start().await;
    let err = h.refused(codes::GUEST).await;
    assert!(
        matches!(&err, ConnectorError::AccessDenied(m) if m == "not a member of this WeCom corp"),
        "{err:?}"
    );
}

#[tokio::test]
async fn disabled_member_is_denied() {
    let h = Harness::start().await;
    let err = h.refused(codes::BOB).await;
    assert!(
        matches!(&err, ConnectorError::AccessDenied(m) if m.contains("disabled")),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_member_60111_is_denied() {
    let h = Harness::start().await;
    let err = h.refused(codes::GHOST).await;
    assert!(matches!(err, ConnectorError::AccessDenied(_)), "{err:?}");
}

#[tokio::test]
async fn untrusted_domain_50001_is_an_upstream_error() {
    let h = Harness::start().await;
    h.fake.state.script_getuserinfo(&[50001]);
    let err = h.refused(codes::ALICE).await;
    assert!(
        matches!(err, ConnectorError::Upstream { code: 50001, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn token_is_fetched_once_for_ten_sequential_logins() {
    let h = Harness::start().await;
    let c = h.connector();
    for _ in 0..10 {
        login(&c, codes::ALICE).await.expect("login");
    }
    assert_eq!(h.fake.state.gettoken(), 1);
    assert_eq!(h.fake.state.getuserinfo(), 10);
}

#[tokio::test]
async fn token_is_fetched_once_for_twenty_concurrent_logins() {
    let h = Harness::start().await;
    let c = Arc::new(h.connector());
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..20 {
        let c = c.clone();
        logins.spawn(async move { login(&c, &format!("{}-{i}", codes::ALICE_PREFIX)).await });
    }
    while let Some(result) = logins.join_next().await {
        assert_eq!(result.expect("task").expect("login").user_id, "alice");
    }
    assert_eq!(h.fake.state.gettoken(), 1);
}

#[tokio::test]
async fn token_survives_a_restart_through_the_store() {
    let h = Harness::start().await;
    login(&h.connector(), codes::ALICE).await.expect("login");
    let saved = h.store.saved(STORE_KEY).expect("token persisted");
    assert_eq!(Some(saved.token.clone()), h.fake.state.last_token());
    // A new connector on the same store: as after a restart.
    let restarted = h.connector();
    login(&restarted, codes::ALICE).await.expect("login");
    assert_eq!(restarted.access_token().await.expect("token"), saved.token);
    assert_eq!(h.fake.state.gettoken(), 1, "no gettoken after the restart");
}

#[tokio::test]
async fn token_expiry_by_the_clock_fetches_a_new_token() {
    let h = Harness::start().await;
    let c = h.connector();
    login(&c, codes::ALICE).await.expect("login");
    // Still well inside the 7200 s lifetime: reused.
    h.clock.advance(6000);
    login(&c, codes::ALICE).await.expect("login");
    assert_eq!(h.fake.state.gettoken(), 1);
    h.clock.advance(1200);
    login(&c, codes::ALICE).await.expect("login");
    assert_eq!(h.fake.state.gettoken(), 2);
}

#[tokio::test]
async fn stored_token_past_its_expiry_is_not_reused_after_restart() {
    let h = Harness::start().await;
    login(&h.connector(), codes::ALICE).await.expect("login");
    h.clock.advance(7200);
    login(&h.connector(), codes::ALICE).await.expect("login");
    assert_eq!(h.fake.state.gettoken(), 2);
}

#[tokio::test]
async fn token_expired_42001_or_invalid_40014_is_refreshed_and_the_call_retried_once() {
    type Reject = fn(&FakeState, &str);
    let rejections: [(i64, Reject); 2] = [
        (42001, FakeState::expire_token),
        (40014, FakeState::invalidate_token),
    ];
    for (errcode, reject) in rejections {
        let h = Harness::start().await;
        let c = h.connector();
        login(&c, codes::ALICE).await.expect("login");
        let old = h.fake.state.last_token().expect("token");
        reject(&h.fake.state, &old);

        login(&c, codes::ALICE).await.expect("login after refresh");
        assert_eq!(h.fake.state.gettoken(), 2, "{errcode}");
        assert_eq!(
            h.fake.state.getuserinfo(),
            3,
            "{errcode}: 1 + the rejected call + its retry"
        );
        let new = h.fake.state.last_token().expect("token");
        assert_ne!(new, old, "{errcode}");
        assert_eq!(
            h.store.saved(STORE_KEY).map(|t| t.token),
            Some(new),
            "{errcode}"
        );
    }
}

#[tokio::test]
async fn expired_token_on_user_get_is_refreshed_and_the_call_retried_once() {
    let h = Harness::start().await;
    let c = h.connector();
    h.fake.state.script_user_get(&[42001]);
    login(&c, codes::ALICE).await.expect("login after refresh");
    assert_eq!(h.fake.state.gettoken(), 2);
    assert_eq!(h.fake.state.getuserinfo(), 1);
    assert_eq!(h.fake.state.user_get(), 2);
}

#[tokio::test]
async fn token_rejected_again_after_refresh_is_not_retried_a_second_time() {
    let h = Harness::start().await;
    h.fake.state.reject_every_token_with(42001);
    let err = h.refused(codes::ALICE).await;
    assert!(
        matches!(err, ConnectorError::Upstream { code: 42001, .. }),
        "{err:?}"
    );
    assert_eq!(h.fake.state.gettoken(), 2, "one fetch, one refresh");
    assert_eq!(h.fake.state.getuserinfo(), 2, "one call, one retry");
    let token = h.fake.state.last_token().expect("token");
    assert!(!err.to_string().contains(&token), "{err}");
}

#[tokio::test]
async fn concurrent_rejections_of_one_token_cost_one_refresh() {
    let h = Harness::start().await;
    let c = Arc::new(h.connector());
    login(&c, codes::ALICE).await.expect("login");
    let old = h.fake.state.last_token().expect("token");
    h.fake.state.expire_token(&old);
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..10 {
        let c = c.clone();
        logins.spawn(async move { login(&c, &format!("{}-{i}", codes::ALICE_PREFIX)).await });
    }
    while let Some(result) = logins.join_next().await {
        result.expect("task").expect("login");
    }
    assert_eq!(h.fake.state.gettoken(), 2);
}

#[tokio::test]
async fn system_busy_is_retried_up_to_three_times() {
    let h = Harness::start().await;
    let c = h.connector();
    h.fake.state.script_getuserinfo(&[-1, -1, -1]);
    login(&c, codes::ALICE).await.expect("third retry succeeds");
    assert_eq!(h.fake.state.getuserinfo(), 4);

    h.fake.state.script_getuserinfo(&[-1, -1, -1, -1]);
    let err = login(&c, codes::ALICE).await.expect_err("still busy");
    assert!(
        matches!(err, ConnectorError::Upstream { code: -1, .. }),
        "{err:?}"
    );
    assert_eq!(h.fake.state.getuserinfo(), 8);
}

#[tokio::test]
async fn bad_secret_40001_is_an_upstream_error_that_hides_the_secret() {
    let h = Harness::start().await;
    let settings = WeComSettings {
        secret: "wrong-secret-value".to_owned(),
        ..h.settings()
    };
    let c = h.connector_with(settings);
    let err = login(&c, codes::ALICE).await.expect_err("40001");
    let ConnectorError::Upstream { code, message } = &err else {
        panic!("expected Upstream, got {err:?}");
    };
    assert_eq!(*code, 40001);
    assert!(message.contains("invalid credential"), "{message}");
    assert!(!err.to_string().contains("wrong-secret-value"), "{err}");
    assert!(matches!(
        c.access_token().await,
        Err(ConnectorError::Upstream { code: 40001, .. })
    ));
    assert!(h.store.saved(STORE_KEY).is_none());
}

#[tokio::test]
async fn wecom_that_does_not_answer_in_time_is_unavailable_and_message_hides_secrets() {
    let h = Harness::start().await;
    let settings = WeComSettings {
        timeout: Duration::from_millis(200),
        ..h.settings()
    };
    let err = login(&h.connector_with(settings), codes::SLOW)
        .await
        .expect_err("timeout");
    let ConnectorError::Unavailable(message) = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    let token = h.fake.state.last_token().expect("token");
    assert!(!message.contains(codes::SLOW), "{message}");
    assert!(!message.contains(&token), "{message}");
    assert!(!message.contains("access_token"), "{message}");
}

#[tokio::test]
async fn unreachable_wecom_is_unavailable() {
    // Bind then drop a listener: nothing accepts on that port any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let h = Harness::start().await;
    let err = h.token_refused_at(format!("http://{addr}")).await;
    assert!(matches!(err, ConnectorError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains(SECRET), "{err}");
}

#[tokio::test]
async fn wrong_api_base_answering_404_is_unavailable() {
    let h = Harness::start().await;
    let err = h.token_refused_at(format!("{}/nowhere", h.fake.base)).await;
    assert!(
        matches!(&err, ConnectorError::Unavailable(m) if m.contains("404")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_sharing_one_store_fetch_one_token_for_all_of_them() {
    let h = Harness::start().await;
    // Four connectors on one store: four instances of a cluster, each with its own memory.
    let instances: Vec<Arc<WeComConnector>> = (0..4).map(|_| Arc::new(h.connector())).collect();
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..24 {
        let c = instances[i % instances.len()].clone();
        logins.spawn(async move { login(&c, &format!("{}-{i}", codes::ALICE_PREFIX)).await });
    }
    while let Some(result) = logins.join_next().await {
        assert_eq!(result.expect("task").expect("login").user_id, "alice");
    }
    assert_eq!(
        h.fake.state.gettoken(),
        1,
        "one gettoken for the whole cluster"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_sharing_one_store_replace_a_rejected_token_once() {
    let h = Harness::start().await;
    let instances: Vec<Arc<WeComConnector>> = (0..3).map(|_| Arc::new(h.connector())).collect();
    for c in &instances {
        login(c, codes::ALICE).await.expect("login");
    }
    assert_eq!(h.fake.state.gettoken(), 1);
    let old = h.fake.state.last_token().expect("token");
    h.fake.state.expire_token(&old);
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..12 {
        let c = instances[i % instances.len()].clone();
        logins.spawn(async move { login(&c, &format!("{}-{i}", codes::ALICE_PREFIX)).await });
    }
    while let Some(result) = logins.join_next().await {
        result.expect("task").expect("login");
    }
    assert_eq!(
        h.fake.state.gettoken(),
        2,
        "one replacement for the whole cluster"
    );
    let saved = h.store.saved(STORE_KEY).expect("stored");
    assert_ne!(saved.token, old, "the rejected token is not kept");
}

#[tokio::test]
async fn a_caller_waits_for_the_token_another_instance_is_fetching() {
    let h = Harness::start().await;
    // Another instance holds the gettoken lease and is fetching.
    let lease = format!("{STORE_KEY}:gettoken");
    h.store.hold_lease(&lease, "other-instance", START + 15);
    let c = Arc::new(h.connector());
    let waiting = {
        let c = c.clone();
        tokio::spawn(async move { c.access_token().await })
    };
    // … and stores its token (the waiter polls the store; no timing is assumed here).
    h.store.put(
        STORE_KEY,
        crate::storage::UpstreamToken {
            token: "token-of-the-other-instance".into(),
            expires_at: START + 7000,
        },
    );
    let token = waiting.await.expect("task").expect("token");
    assert_eq!(token, "token-of-the-other-instance");
    assert_eq!(
        h.fake.state.gettoken(),
        0,
        "the waiter never called gettoken"
    );
}

#[tokio::test]
async fn a_lapsed_gettoken_lease_of_a_dead_instance_is_taken_over() {
    let h = Harness::start().await;
    let lease = format!("{STORE_KEY}:gettoken");
    // Taken by an instance that died before storing a token; lapsed now.
    h.store.hold_lease(&lease, "dead-instance", START);
    let c = h.connector();
    c.access_token().await.expect("token");
    assert_eq!(h.fake.state.gettoken(), 1);
}

#[tokio::test]
async fn broken_token_store_does_not_cost_extra_gettokens() {
    let h = Harness::start().await;
    h.store.fail();
    let c = h.connector();
    c.access_token().await.expect("token");
    c.access_token().await.expect("token");
    assert_eq!(h.fake.state.gettoken(), 1, "the memory cache still serves");
}

#[tokio::test]
async fn broken_store_fails_the_login_rather_than_guess_a_renamed_members_subject() {
    let h = Harness::start().await;
    h.store.fail();
    let err = h.refused(codes::ALICE).await;
    assert!(matches!(err, ConnectorError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn renamed_member_keeps_the_subject_and_the_old_id_is_not_handed_to_a_newcomer() {
    let h = Harness::start().await;
    let c = h.connector();
    assert_eq!(
        c.record_rename("bob", "alice").await.expect("rename"),
        "bob"
    );
    let id = login(&c, codes::ALICE).await.expect("login");
    assert_eq!(id.user_id, "bob", "alice was bob: same sub");
    assert_eq!(id.upstream_id.as_deref(), Some("alice"));
    // Someone who now gets the retired id "bob" is a different person with a different sub.
    let newcomer = c.subject_of("BOB").await.expect("subject");
    assert_ne!(newcomer, "bob");
    assert!(newcomer.starts_with("BOB."), "{newcomer}");
    assert_eq!(c.subject_of("bob").await.expect("stable"), newcomer);
}

#[tokio::test]
async fn connector_debug_shows_neither_secret_nor_token() {
    let h = Harness::start().await;
    let c = h.connector();
    let token = c.access_token().await.expect("token");
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(SECRET), "{dbg}");
    assert!(!dbg.contains(&token), "{dbg}");
}

#[test]
fn settings_debug_redacts_the_secret() {
    let s = WeComSettings::new(CORP_ID, AGENT_ID, SECRET);
    let dbg = format!("{s:?}");
    assert!(!dbg.contains(SECRET), "{dbg}");
    assert!(dbg.contains(CORP_ID));
}

#[test]
fn settings_defaults_point_at_wecom() {
    let s = WeComSettings::new(CORP_ID, AGENT_ID, SECRET);
    assert_eq!(s.api_base, "https://qyapi.weixin.qq.com");
    assert_eq!(s.oauth_base, "https://open.weixin.qq.com");
    assert_eq!(s.sso_base, "https://login.work.weixin.qq.com");
    assert_eq!(s.timeout, Duration::from_secs(5));
    assert!(s.problems().is_empty());
}

#[test]
fn invalid_settings_report_every_problem_at_once() {
    let s = WeComSettings {
        corp_id: String::new(),
        agent_id: 0,
        secret: " ".to_owned(),
        api_base: "ftp://x".to_owned(),
        oauth_base: "not a url".to_owned(),
        sso_base: "https://sso.example/?q=1".to_owned(),
        timeout: Duration::ZERO,
        ..WeComSettings::new("", 0, "")
    };
    assert_eq!(s.problems().len(), 7, "{:?}", s.problems());
    let err = WeComConnector::new(
        s,
        Arc::new(TokenStore::default()),
        Arc::new(ManualClock::new(START)),
    )
    .expect_err("invalid");
    let text = err.to_string();
    assert!(
        text.contains("corp_id") && text.contains("timeout"),
        "{text}"
    );
    assert!(!text.contains(SECRET));
}

#[tokio::test]
async fn deployment_faults_get_a_notice_telling_the_operator_what_to_fix() {
    let h = Harness::start().await;
    let c = h.connector();
    let notice = |code: i64| {
        c.failure_notice(&ConnectorError::Upstream {
            code,
            message: "x".to_owned(),
        })
    };
    let ip = notice(60020).expect("60020 is a configuration fault");
    assert!(ip.operator.contains("企业可信IP"), "{}", ip.operator);
    assert!(!ip.temporary);
    assert!(notice(50001).expect("50001").operator.contains("可信域名"));
    assert!(notice(40001).expect("40001").operator.contains("Secret"));
    assert!(notice(40013).expect("40013").operator.contains("corp_id"));
    assert!(notice(45009).expect("45009").temporary);
    // Ordinary login failures go back to the client instead.
    assert!(notice(40029).is_none());
    assert!(c
        .failure_notice(&ConnectorError::AccessDenied("left".to_owned()))
        .is_none());
    // The operator text never carries the secret.
    for code in [60020, 50001, 40001, 40013, 45009] {
        assert!(!notice(code).expect("notice").operator.contains(SECRET));
    }
}

#[tokio::test]
async fn a_member_without_user_get_visibility_is_refused_not_accepted_unchecked() {
    // Linked-corp ids (`CorpId/userid`) that user/get will not show behave like GHOST here;
    // a member outside the app's range (60011, 60021, 50002) is not permitted either.
    let h = Harness::start().await;
    let err = h.refused(codes::GHOST).await;
    assert!(matches!(err, ConnectorError::AccessDenied(_)), "{err:?}");
    for code in [60011, 60021, 50002] {
        h.fake.state.script_user_get(&[code]);
        let err = h.refused(codes::ALICE).await;
        assert!(
            matches!(err, ConnectorError::NotPermitted(_)),
            "{code}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_delete_user_event_reports_the_member_at_every_delivery_so_a_failed_sign_out_is_retried()
{
    let h = Harness::start().await;
    let (token, key) = (
        "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
        "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    );
    let c = h.connector_with(WeComSettings {
        callback: Some(CallbackSettings {
            token: token.into(),
            encoding_aes_key: key.into(),
        }),
        ..h.settings()
    });
    let msg = format!(
        "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
         <CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>\
         <ChangeType>delete_user</ChangeType><UserID><![CDATA[ZhangSan]]></UserID></xml>"
    );
    let (signature, encrypted) =
        crate::simulator::seal_callback(token, key, CORP_ID, "1", "2", &msg).expect("sealed");
    let query: HashMap<String, String> = [
        ("msg_signature", signature.as_str()),
        ("timestamp", "1"),
        ("nonce", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let body = format!("<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>");
    let event = UpstreamEvent {
        is_post: true,
        query: &query,
        body: body.as_bytes(),
    };
    for delivery in 0..2 {
        let reply = c.handle_event(&event).await.expect("accepted");
        assert_eq!(
            reply.departures,
            vec![crate::connector::Departure {
                user_id: "ZhangSan".into(),
                whole_realm: true,
                reason: "WeCom reports the member deleted from the corp".into(),
            }],
            "delivery {delivery}"
        );
    }
}
