//! Unit tests of the suite connector without an upstream (the end-to-end ones, against the
//! simulator's service provider, are in `tests/suite.rs`).

use std::sync::Arc;

use super::*;
use crate::check::Level;
use crate::clock::ManualClock;
use crate::connector::registry::CheckContext;
use crate::connector::wecom::CallbackSettings;
use crate::storage::{upstream_role, MemoryStore};

fn settings() -> SuiteSettings {
    SuiteSettings::new(
        "suite",
        "wwsuite0001",
        "suite-secret",
        CallbackSettings {
            token: "tok".into(),
            encoding_aes_key: "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt".into(),
        },
        "a-long-store-key-for-the-suite-tests-0123",
    )
}

fn deps() -> OpenDeps {
    OpenDeps {
        store: upstream_role(Arc::new(MemoryStore::new())),
        clock: Arc::new(ManualClock::new(1_700_000_000)),
        metrics: Arc::new(Metrics::new()),
    }
}

/// What `check` is given, over `d`'s store.
fn check_context(d: &OpenDeps) -> CheckContext<'static> {
    CheckContext {
        issuer: "https://sso.example.com",
        trusted_domain: Some("sso.example.com"),
        label: "",
        clock: d.clock.clone(),
        store: Some(d.store.clone()),
    }
}

#[tokio::test]
async fn check_explains_that_no_suite_ticket_was_received_yet() {
    let d = deps();
    let ctx = check_context(&d);
    let findings = doctor::check(&settings(), &ctx).await;
    let fail = findings
        .iter()
        .find(|f| f.level == Level::Fail)
        .expect("a failure");
    assert!(
        fail.en.contains("no suite_ticket received yet"),
        "{}",
        fail.en
    );
    assert!(fail.en.contains("/callback/suite/events"), "{}", fail.en);
}

#[tokio::test]
async fn suite_token_before_the_first_ticket_says_why() {
    let c = SuiteConnector::open(settings(), &deps()).expect("opens");
    match c.suite_access_token().await {
        Err(ConnectorError::Unavailable(why)) => assert!(why.contains("no suite_ticket")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn login_urls_carry_the_suite_id_and_service_app() {
    let c = SuiteConnector::open(settings(), &deps()).expect("opens");
    let req = |ua| LoginRequest {
        state: "abc",
        callback_url: "https://sso.example.com/callback/suite",
        scopes: &[],
        user_agent: ua,
        login_hint: None,
        ui_locales: None,
    };
    let web = c.login_url(&req(Some("Mozilla/5.0"))).expect("url");
    assert!(
        web.contains("/wwlogin/sso/login?login_type=ServiceApp&appid=wwsuite0001"),
        "{web}"
    );
    let app = c
        .login_url(&req(Some("Mozilla/5.0 wxwork/4.1 MicroMessenger/7")))
        .expect("url");
    assert!(
        app.contains("/connect/oauth2/authorize?appid=wwsuite0001"),
        "{app}"
    );
    assert!(app.ends_with("#wechat_redirect"), "{app}");
}

#[tokio::test]
async fn permanent_codes_are_sealed_in_the_store_and_removal_empties_them() {
    let d = deps();
    let c = SuiteConnector::open(settings(), &d).expect("opens");
    c.secrets
        .save_installation("wwcorp", "Corp", 1, "the-permanent-code")
        .await
        .expect("saves");
    let raw = d
        .store
        .find_user_link("wecom-suite:wwsuite0001:auth:wwcorp")
        .await
        .expect("stored");
    assert!(!raw.contains("the-permanent-code"), "{raw}");
    let (_, code) = c
        .secrets
        .installation("wwcorp")
        .await
        .expect("reads")
        .expect("installed");
    assert_eq!(code, "the-permanent-code");
    c.secrets
        .remove_installation("wwcorp")
        .await
        .expect("removes");
    assert!(c
        .secrets
        .installation("wwcorp")
        .await
        .expect("reads")
        .is_none());
    assert!(!format!("{c:?}").contains("suite-secret"));
}

/// `check` against the simulator's service provider: a wrong suite secret is named as such
/// (§8 `get_suite_token` refuses it), and a corp of `allowed_corps` that never installed the
/// app is named too.
#[tokio::test]
async fn check_names_a_wrong_suite_secret_and_a_corp_that_has_not_installed() {
    use crate::simulator::{CallbackTarget, Simulator, SimulatorConfig, SuiteKind, SuiteSpec};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let d = deps();
    let sim = Simulator::new(SimulatorConfig::demo(base.clone()), d.clock.clone());
    sim.add_suite(SuiteSpec {
        suite_id: "wwsuite0001".into(),
        kind: SuiteKind::ThirdParty,
        suite_secret: "the-right-secret".into(),
        callback: CallbackTarget {
            url: "http://127.0.0.1:9/unused".into(),
            token: "tok".into(),
            encoding_aes_key: "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt".into(),
        },
    });
    let router = sim.router();
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    let mut s = settings();
    s.api_base = base;
    s.allowed_corps = vec!["wwnotinstalled".into()];
    let c = SuiteConnector::open(s.clone(), &d).expect("opens");
    c.secrets.save_ticket("a-ticket").await.expect("saved");
    let ctx = check_context(&d);
    let findings = doctor::check(&s, &ctx).await;
    let fails: Vec<&str> = findings
        .iter()
        .filter(|f| f.level == Level::Fail)
        .map(|f| f.en.as_str())
        .collect();
    assert!(
        fails
            .iter()
            .any(|f| f.contains("get_suite_token refused (40001)") && f.contains("suite_secret")),
        "{fails:?}"
    );
    assert!(
        fails
            .iter()
            .any(|f| f.contains("corp wwnotinstalled has not installed the app")),
        "{fails:?}"
    );
    server.abort();
}
