//! WeCom third-party apps (suites) end to end: the provider with a `wecom-suite` connector and
//! the simulator's service provider, served on ephemeral ports. Customer corps install the
//! suite (the simulator pushes `create_auth` to our command callback), WeCom's `suite_ticket`
//! arrives there too, and members of several corps log in to one client (wecom-api.md §8,
//! §11, §12).
//!
//! Logins mint the member's code with `Simulator::issue_suite_code` for the suite the provider
//! sent the browser to, as the suite's `ServiceApp` login page would.
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
use wecom_oidc::connector::wecom_suite::SuiteSettings;
use wecom_oidc::provider::Client;
use wecom_oidc::secret::Secret;
use wecom_oidc::simulator::{
    AppSpec, CallbackTarget, CorpSeed, Simulator, SimulatorConfig, SuiteSpec, VisibleRange,
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
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let sim = Simulator::new(SimulatorConfig::demo(base.clone()), Arc::new(clock.clone()));
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
        suite_id: SUITE_ID.into(),
        suite_secret: SUITE_SECRET.into(),
        callback: CallbackTarget {
            url: format!("{issuer}/callback/suite/events"),
            token: CALLBACK_TOKEN.into(),
            encoding_aes_key: AES_KEY.into(),
        },
    });
    Provider { issuer, stop, done }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Mozilla/5.0 (X11; Linux x86_64)")
        .build()
        .expect("client")
}

/// Where a login ends: the RP callback's query, or a page we showed instead.
#[derive(Debug)]
enum Outcome {
    Redirect(HashMap<String, String>),
    Page(reqwest::StatusCode, String),
}

/// `/authorize` → the suite's `ServiceApp` login page (where `member` of `corp` logs in) →
/// our callback → the RP.
async fn login(p: &Provider, sim: &Simulator, corp: &str, member: &str) -> Outcome {
    let b = browser();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let mut url = url::Url::parse(&format!("{}/authorize", p.issuer)).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile offline_access")
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
        if location.contains("/wwlogin/sso/login") {
            let u = url::Url::parse(&location).expect("login page URL");
            let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
            assert_eq!(q["login_type"], "ServiceApp", "{location}");
            assert_eq!(q["appid"], SUITE_ID, "{location}");
            let code = sim.issue_suite_code(&q["appid"], corp, member);
            next = format!("{}?code={code}&state={}", q["redirect_uri"], q["state"]);
            continue;
        }
        next = location;
    }
    panic!("too many redirects");
}

async fn tokens(p: &Provider, sim: &Simulator, corp: &str, member: &str) -> Value {
    let q = match login(p, sim, corp, member).await {
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

fn sub(token_response: &Value) -> String {
    let jwt = token_response["id_token"].as_str().expect("id_token");
    let payload = jwt.split('.').nth(1).expect("payload");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("JSON");
    claims["sub"].as_str().expect("sub").to_owned()
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
    assert_eq!(
        sim.suite_calls(),
        (1, 2),
        "(get_suite_token, get_corp_token) calls"
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
        Outcome::Redirect(q) => assert_eq!(
            q.get("error").map(String::as_str),
            Some("access_denied"),
            "{q:?}"
        ),
        Outcome::Page(status, body) => assert!(status.is_client_error(), "{status} {body}"),
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

    let d = sim.cancel_suite(SUITE_ID, CORP_B).await.expect("delivered");
    assert_eq!((d.status, d.body.as_str()), (200, "success"));

    let (status, body) = refresh(&p, b["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    match login(&p, &sim, CORP_B, "zhangsan").await {
        Outcome::Redirect(q) => {
            assert!(q.contains_key("error") && !q.contains_key("code"), "{q:?}")
        }
        Outcome::Page(status, body) => assert!(status.is_client_error(), "{status} {body}"),
    }
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
    let (sim, base) = simulator(&clock).await;
    let p = provider(&sim, &base, &clock, dir.path(), |_| {}).await;
    ticket_and_installs(&sim).await;
    let before = tokens(&p, &sim, CORP_B, "zhangsan").await;
    p.stop().await;

    let p = provider(&sim, &base, &clock, dir.path(), |_| {}).await;
    clock.advance(7200 * 2);
    let after = tokens(&p, &sim, CORP_B, "zhangsan").await;
    assert_eq!(sub(&before), sub(&after));
    tokens(&p, &sim, CORP_A, "zhangsan").await;
    let (suite_calls, corp_calls) = sim.suite_calls();
    assert_eq!(suite_calls, 2, "one suite token before, one after expiry");
    assert_eq!(corp_calls, 3, "B before; B and A after expiry");
    p.stop().await;
}
