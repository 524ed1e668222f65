//! The WeCom simulator: same paths, parameters, JSON field names, error codes and expiries as
//! WeCom's real API (`../shared/wecom-api.md`), for the demo and the tests.
//!
//! It is written from the reference alone and shares no code or types with the WeCom connector
//! (`src/connector/wecom/`), so a wrong field name or error code on either side shows up when
//! the two meet in the end-to-end tests.
//!
//! One simulator hosts several corps (the primary one from [`SimulatorConfig`], more through
//! [`Simulator::add_corp`]), each with its own directory and self-built apps; every app has its
//! own secret, token, trusted domains and visible range (§12), and a corp may have linked corps
//! whose members log in as `LINKEDCORPID/userid`.
//!
//! Where the reference marks a behaviour "unconfirmed", the simulator picks the variant that is
//! strictest for a client and lets tests switch to the other through [`SimulatorQuirks`].

mod api;
mod callbacks;
mod control;
mod corp;
mod credentials;
mod directory;
mod expiry;
mod member_events;
mod pages;
mod reply;
mod suite;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::clock::SharedClock;
use crate::random;
pub use callbacks::{seal_callback, CallbackTarget, Delivery};
use corp::{App, AppKey, Corp};
pub use corp::{AppSpec, CorpSeed, VisibleRange};
use directory::Member;
pub use suite::{SuiteKind, SuiteSpec};

/// How long a `user_ticket` from `snsapi_privateinfo` stays valid, in seconds (wecom-api.md §4).
const USER_TICKET_TTL: i64 = 1800;

/// Simulator-only path (relative to the mount point) answering [`SimulatorStats`] as JSON. WeCom
/// has no such path; it exists so that a load generator in another process (`examples/bench/`)
/// can check that the provider calls `gettoken` once per token lifetime. It shows counters only,
/// never a token, code or secret.
pub const STATS_PATH: &str = "/_stats";

/// Counters of a running simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SimulatorStats {
    /// `gettoken` calls so far, successful or failed.
    pub gettoken_calls: u64,
}

/// `GET {STATS_PATH}`: the counters, simulator-only.
async fn stats(
    axum::extract::State(sim): axum::extract::State<Simulator>,
) -> axum::Json<SimulatorStats> {
    axum::Json(sim.stats())
}

/// Settings of the primary simulated corp and its first self-built app (more corps and apps:
/// [`Simulator::add_corp`], [`Simulator::add_app`]).
#[derive(Clone)]
pub struct SimulatorConfig {
    /// The CorpID (`appid` of the login links, `corpid` of `gettoken`), e.g. `"ww7f3c2a1b9d8e6f50"`.
    pub corp_id: String,
    /// The app's AgentId, e.g. `1000002`.
    pub agent_id: i64,
    /// The app secret `gettoken` accepts.
    pub secret: String,
    /// Absolute URL where the router is mounted, without trailing slash (e.g.
    /// `"http://127.0.0.1:8080/wecom-sim"`); the pages use it for their own links and forms.
    pub public_base: String,
    /// `host[:port]` accepted as OAuth redirect domains (可信域名, §2, §9); empty accepts any.
    pub trusted_domains: Vec<String>,
    /// When `Some(userid)`, the login pages of the primary corp complete at once as that member.
    pub auto_login: Option<String>,
    /// Lifetime of an `access_token`, seconds (WeCom: 7200).
    pub token_ttl: i64,
    /// Lifetime of an unused OAuth code, seconds (WeCom: 300).
    pub code_ttl: i64,
    /// `true` for an app created before 2022-06-20, which still receives avatar, gender, mobile,
    /// email, biz_mail, qr_code and address from `user/get` (§6).
    pub legacy_app: bool,
}

impl SimulatorConfig {
    /// The demo corp: CorpID `ww7f3c2a1b9d8e6f50`, AgentId `1000002`, secret
    /// `"demo-wecom-app-secret"`, tokens 7200 s, codes 300 s, any redirect domain, a new app.
    pub fn demo(public_base: impl Into<String>) -> Self {
        let public_base: String = public_base.into();
        Self {
            corp_id: "ww7f3c2a1b9d8e6f50".to_string(),
            agent_id: 1_000_002,
            secret: "demo-wecom-app-secret".to_string(),
            public_base: public_base.trim_end_matches('/').to_string(),
            trusted_domains: Vec::new(),
            auto_login: None,
            token_ttl: 7200,
            code_ttl: 300,
            legacy_app: false,
        }
    }

    /// Whether `domain` (`host[:port]` of a redirect URI) is one of the app's trusted domains.
    /// Matching is exact, port included (§2 "Domain rule"); hosts compare case-insensitively as
    /// DNS names do.
    #[cfg(test)]
    fn is_trusted_domain(&self, domain: &str) -> bool {
        corp::is_trusted(&self.trusted_domains, domain)
    }

    /// The primary corp's first app, as [`Simulator::add_app`] would take it.
    fn first_app(&self) -> App {
        App::from_spec(AppSpec {
            agent_id: self.agent_id,
            secret: self.secret.clone(),
            visible_range: VisibleRange::whole_corp(),
            trusted_domains: self.trusted_domains.clone(),
            legacy_app: self.legacy_app,
        })
    }
}

// The secret never reaches a log line.
crate::secret::debug_showing! {
    SimulatorConfig: corp_id, agent_id, public_base, trusted_domains, auto_login, token_ttl,
    code_ttl, legacy_app
}

/// Switches for behaviours the reference marks "unconfirmed" (and a few it documents more than
/// one code for). The defaults are the variants strictest for a client; flip them to check that
/// a client copes with the other one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulatorQuirks {
    /// `errcode` of `getuserdetail` for every bad `user_ticket`. `0` (the default) answers as
    /// §5 says: 84014 for an expired ticket, 84015 for an invalid one (unknown, forged, missing,
    /// or issued to another app). Any other value replaces both, e.g. 40029 (the simulator's
    /// default before §5 was corrected).
    pub user_ticket_errcode: i64,
    /// For a new app (`legacy_app == false`), send the withheld privacy fields of `user/get` as
    /// empty strings instead of dropping the keys (§6: unconfirmed). Default `false` (dropped).
    pub privacy_fields_empty: bool,
    /// `snsapi_privateinfo` without `agentid` (§2: unconfirmed whether it errors or falls back
    /// to `snsapi_base`). Default `false`: the authorize page shows error 40056 and never
    /// redirects; `true`: the login proceeds as `snsapi_base` (no `user_ticket`).
    pub privateinfo_without_agentid_falls_back: bool,
    /// `errcode` of `user/get` for a member outside the app's visible range (§6: 60011 "most
    /// likely"; 60021 and 50002 are documented for the same case on other APIs). Default 60011.
    pub out_of_range_errcode: i64,
    /// Whether an app whose range lists single members sees those members' own departments in
    /// `department/*` and `user/get`'s `department`. §7 says department calls answer only
    /// departments *inside* the range; default `false` (strictest: no department at all).
    pub member_range_shows_own_departments: bool,
    /// `linkedcorp/user/get`'s `user_info.userid` as `CORPID/USERID` instead of the bare userid
    /// beside `corpid` (§12: unconfirmed). Default `false` (bare, the stricter form).
    pub linked_userid_qualified: bool,
    /// `get_suite_token` accepts only the latest `suite_ticket` pushed instead of every ticket
    /// of the last 30 minutes (§8 names no validity; WeCom's service-provider pages give 30
    /// minutes). Default `false`.
    pub latest_suite_ticket_only: bool,
}

impl Default for SimulatorQuirks {
    fn default() -> Self {
        Self {
            user_ticket_errcode: 0,
            privacy_fields_empty: false,
            privateinfo_without_agentid_falls_back: false,
            out_of_range_errcode: 60011,
            member_range_shows_own_departments: false,
            linked_userid_qualified: false,
            latest_suite_ticket_only: false,
        }
    }
}

/// Who a code stands for.
#[derive(Debug, Clone)]
enum Subject {
    /// A member of the code's corp, by userid.
    Member(String),
    /// A member of a corp linked to the code's corp (§4, §12): `getuserinfo` answers
    /// `userid` = `corp_id/userid` and never a `user_ticket`.
    Linked { corp_id: String, userid: String },
    /// A WeChat user who is not a member (§4: `openid`, maybe `external_userid`).
    NonMember {
        openid: String,
        external_userid: Option<String>,
    },
}

/// What the simulator remembers about an OAuth code until it is redeemed or expires.
#[derive(Debug, Clone)]
struct CodeGrant {
    /// The app whose login page issued the code; only that app's token redeems it (§4: 50001).
    app: AppKey,
    subject: Subject,
    /// Whether the code came from `snsapi_privateinfo`, which earns a `user_ticket`.
    private_info: bool,
    /// `host[:port]` of the redirect URI the code was issued for; `None` if it had none.
    redirect_domain: Option<String>,
    /// The legacy endpoint's `DeviceId`: set for in-app logins, empty for web logins.
    device_id: String,
    expires_at: i64,
}

/// A `user_ticket` for `getuserdetail`, bound to the app that redeemed the code.
#[derive(Debug, Clone)]
struct TicketGrant {
    app: AppKey,
    userid: String,
    expires_at: i64,
}

/// An `access_token`, bound to its app (§1: tokens are per app).
#[derive(Debug, Clone)]
struct TokenGrant {
    app: AppKey,
    expires_at: i64,
}

/// A pending injected failure.
#[derive(Debug, Clone, Copy)]
struct Fault {
    errcode: i64,
    remaining: u32,
}

/// A rate-limit block: every call answers `errcode` while the clock reads before `until`.
#[derive(Debug, Clone, Copy)]
struct Block {
    errcode: i64,
    until: i64,
}

/// Everything that changes while the simulator runs. Codes, tokens and tickets are keyed by
/// their SHA-256 ([`random::hash_secret`]) so the state never holds a usable credential in a
/// form that a debug dump could leak.
#[derive(Debug)]
struct State {
    /// Every corp; the primary one (from [`SimulatorConfig`]) is first and never removed.
    corps: Vec<Corp>,
    tokens: HashMap<String, TokenGrant>,
    codes: HashMap<String, CodeGrant>,
    tickets: HashMap<String, TicketGrant>,
    faults: HashMap<String, Fault>,
    blocks: HashMap<String, Block>,
    /// Path (or `*`) → delay added before answering.
    latency: HashMap<String, std::time::Duration>,
    quirks: SimulatorQuirks,
    /// The service provider's suites (§8).
    suites: suite::Suites,
}

impl State {
    /// The primary corp (always `corps[0]`: `Simulator::new` puts it there and nothing removes
    /// a corp).
    fn primary(&self) -> &Corp {
        &self.corps[0]
    }

    fn primary_mut(&mut self) -> &mut Corp {
        &mut self.corps[0]
    }

    fn corp(&self, corp_id: &str) -> Option<&Corp> {
        self.corps.iter().find(|c| c.corp_id == corp_id)
    }

    fn corp_mut(&mut self, corp_id: &str) -> Option<&mut Corp> {
        self.corps.iter_mut().find(|c| c.corp_id == corp_id)
    }

    /// The corp and app behind `key`.
    fn app(&self, key: &AppKey) -> Option<(&Corp, &App)> {
        let corp = self.corp(&key.corp_id)?;
        Some((corp, corp.app(key.agent_id)?))
    }

    /// Member `userid` of corp `linked_corp_id` as corp `corp_id` may see it through a link
    /// (§12): the member and its departments shared with `corp_id`. `None` when the corps are
    /// not linked, the member does not exist, or sits outside the shared departments.
    fn linked_member(
        &self,
        corp_id: &str,
        linked_corp_id: &str,
        userid: &str,
    ) -> Option<(&Member, Vec<i64>)> {
        let link = self.corp(corp_id)?.link(linked_corp_id)?;
        let linked = &self.corp(linked_corp_id)?.directory;
        let member = linked.member(userid)?;
        let shared = corp::shared_departments(linked, link);
        let departments: Vec<i64> = member
            .departments()
            .filter(|d| shared.contains(d))
            .collect();
        (!departments.is_empty()).then_some((member, departments))
    }
}

struct Inner {
    config: SimulatorConfig,
    clock: SharedClock,
    gettoken_calls: AtomicU64,
    state: Mutex<State>,
}

/// A running simulated WeCom: cheap to clone, all clones share the same state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused (§1 errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenError {
    Missing,
    Unknown,
    Expired,
}

impl TokenError {
    fn errcode(self) -> i64 {
        match self {
            TokenError::Missing => 41001,
            TokenError::Unknown => 40014,
            TokenError::Expired => 42001,
        }
    }
}

/// Why a code could not be redeemed (§4 errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodeError {
    /// Unknown, reused or expired: 40029.
    Invalid,
    /// Issued for a redirect domain the app does not trust, or by another app than the one
    /// whose token redeems it: 50001.
    UntrustedDomain,
}

impl CodeError {
    fn errcode(self) -> i64 {
        match self {
            CodeError::Invalid => 40029,
            CodeError::UntrustedDomain => 50001,
        }
    }
}

/// Why a `user_ticket` was refused (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TicketError {
    /// 84014 票据过期.
    Expired,
    /// 84015 票据无效: unknown, forged, or issued to another app.
    Invalid,
}

/// `host[:port]` of a URL, the form trusted domains are written in (§2, §9). The port appears
/// only when the URL names a non-default one.
fn redirect_domain(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// A new corp with `directory` and first app `app`.
fn new_corp(corp_id: &str, directory: directory::Directory, app: App) -> Corp {
    Corp {
        corp_id: corp_id.to_string(),
        directory,
        apps: vec![app],
        links: Vec::new(),
        // WeChat openids are 28 characters starting with "o".
        non_member_openid: format!("o{}", random::alphanumeric(27)),
    }
}

impl Simulator {
    /// A simulator for `config`, reading time from `clock` (tests pass a `ManualClock`). The
    /// primary corp has the [`CorpSeed::Demo`] directory and one app, the one `config` describes.
    pub fn new(mut config: SimulatorConfig, clock: SharedClock) -> Self {
        config.public_base = config.public_base.trim_end_matches('/').to_string();
        let primary = new_corp(
            &config.corp_id,
            directory::Directory::seed(),
            config.first_app(),
        );
        Self {
            inner: Arc::new(Inner {
                config,
                clock,
                gettoken_calls: AtomicU64::new(0),
                state: Mutex::new(State {
                    corps: vec![primary],
                    tokens: HashMap::new(),
                    codes: HashMap::new(),
                    tickets: HashMap::new(),
                    faults: HashMap::new(),
                    blocks: HashMap::new(),
                    latency: HashMap::new(),
                    quirks: SimulatorQuirks::default(),
                    suites: suite::Suites::default(),
                }),
            }),
        }
    }

    /// The routes, with WeCom's paths relative to the mount point: the `/cgi-bin/…` API, the
    /// in-app OAuth page `/connect/oauth2/authorize`, the web login pages `/wwlogin/sso/login`
    /// and `/wwopen/sso/qrConnect`. Anything else answers 404 with an empty body, like WeCom.
    pub fn router(&self) -> Router {
        api_routes()
            .into_iter()
            .fold(Router::new(), |router, (path, answer)| {
                router.route(&format!("/cgi-bin/{path}"), answer)
            })
            .merge(pages::routes())
            // Simulator-only, not a WeCom path: lets a benchmark in another process read the
            // call counters (see `stats`).
            .route(STATS_PATH, get(stats))
            .fallback(api::not_found)
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                inject_latency,
            ))
            .with_state(self.clone())
    }

    /// Latency injection: every request to `path` (`"*"` for all paths, leading slash optional)
    /// waits `delay` before it is answered, as a slow or distant WeCom would. `Duration::ZERO`
    /// removes the delay.
    pub fn set_latency(&self, path: &str, delay: std::time::Duration) {
        let key = if path == "*" {
            path.to_string()
        } else {
            normalize_path(path)
        };
        let mut state = self.lock();
        if delay.is_zero() {
            state.latency.remove(&key);
        } else {
            state.latency.insert(key, delay);
        }
    }

    /// The configuration this simulator was built with (the primary corp and app).
    pub fn config(&self) -> &SimulatorConfig {
        &self.inner.config
    }

    /// How many `gettoken` calls were made, successful or failed.
    pub fn gettoken_calls(&self) -> u64 {
        self.inner.gettoken_calls.load(Ordering::SeqCst)
    }

    /// The simulator's counters, as served at [`STATS_PATH`].
    pub fn stats(&self) -> SimulatorStats {
        SimulatorStats {
            gettoken_calls: self.gettoken_calls(),
        }
    }
}

/// WeCom's JSON API: each path below `/cgi-bin/` and what answers it (wecom-api.md §1,
/// §4–§8, §12).
fn api_routes() -> [(&'static str, MethodRouter<Simulator>); 16] {
    [
        ("gettoken", get(api::gettoken)),
        ("auth/getuserinfo", get(api::auth_getuserinfo)),
        ("user/getuserinfo", get(api::user_getuserinfo)),
        ("user/get", get(api::user_get)),
        ("auth/getuserdetail", post(api::getuserdetail)),
        ("department/list", get(api::department_list)),
        ("department/simplelist", get(api::department_simplelist)),
        ("department/get", get(api::department_get)),
        ("tag/list", get(api::tag_list)),
        ("tag/get", get(api::tag_get)),
        ("linkedcorp/user/get", post(api::linkedcorp_user_get)),
        (
            "linkedcorp/department/list",
            post(api::linkedcorp_department_list),
        ),
        ("service/get_suite_token", post(suite::get_suite_token)),
        (
            "service/get_permanent_code",
            post(suite::get_permanent_code),
        ),
        ("service/get_corp_token", post(suite::get_corp_token)),
        ("service/auth/getuserinfo3rd", get(suite::getuserinfo3rd)),
    ]
}

/// Sleeps for the latency configured for the request's path (see [`Simulator::set_latency`]).
async fn inject_latency(
    axum::extract::State(sim): axum::extract::State<Simulator>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let delay = {
        let state = sim.lock();
        state
            .latency
            .get(request.uri().path())
            .or_else(|| state.latency.get("*"))
            .copied()
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    next.run(request).await
}

fn normalize_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn sim() -> (Simulator, ManualClock) {
        let clock = ManualClock::new(1_700_000_000);
        let sim = Simulator::new(
            SimulatorConfig::demo("http://127.0.0.1:9/wecom-sim/"),
            Arc::new(clock.clone()),
        );
        (sim, clock)
    }

    #[test]
    fn demo_config_has_the_seeded_defaults() {
        let c = SimulatorConfig::demo("http://h/wecom-sim/");
        assert_eq!(c.corp_id, "ww7f3c2a1b9d8e6f50");
        assert_eq!(c.agent_id, 1_000_002);
        assert_eq!(c.secret, "demo-wecom-app-secret");
        assert_eq!((c.token_ttl, c.code_ttl), (7200, 300));
        assert_eq!(c.public_base, "http://h/wecom-sim");
        assert!(!c.legacy_app);
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let (sim, _) = sim();
        assert!(!format!("{sim:?}").contains("demo-wecom-app-secret"));
        assert!(!format!("{:?}", sim.config()).contains("demo-wecom-app-secret"));
    }

    #[test]
    fn set_member_status_rejects_unknown_members_and_statuses() {
        let (sim, _) = sim();
        assert!(sim.set_member_status("ZHANGSAN", 2));
        assert_eq!(
            sim.lock()
                .primary()
                .directory
                .member("zhangsan")
                .map(|m| m.status),
            Some(2)
        );
        assert!(!sim.set_member_status("nobody", 1));
        assert!(!sim.set_member_status("zhangsan", 3));
    }

    #[test]
    fn fault_is_consumed_after_the_given_number_of_calls() {
        let (sim, _) = sim();
        sim.fail_next("cgi-bin/gettoken", -1, 2);
        assert_eq!(sim.take_fault("/cgi-bin/gettoken"), Some(-1));
        assert_eq!(sim.take_fault("/cgi-bin/gettoken"), Some(-1));
        assert_eq!(sim.take_fault("/cgi-bin/gettoken"), None);
        sim.fail_next("/cgi-bin/user/get", 45009, 1);
        sim.fail_next("/cgi-bin/user/get", 45009, 0);
        assert_eq!(sim.take_fault("/cgi-bin/user/get"), None);
    }

    #[test]
    fn redirect_domain_includes_only_explicit_ports() {
        for (url, domain) in [
            ("http://127.0.0.1:8080/cb", "127.0.0.1:8080"),
            ("https://sso.example.com/cb", "sso.example.com"),
            ("https://sso.example.com:443/cb", "sso.example.com"),
        ] {
            let parsed = url::Url::parse(url).expect("a URL");
            assert_eq!(redirect_domain(&parsed).as_deref(), Some(domain), "{url}");
        }
    }

    #[test]
    fn trusted_domain_match_is_exact_including_port() {
        let mut c = SimulatorConfig::demo("http://h");
        c.trusted_domains = vec!["sso.example.com:8443".into()];
        assert!(c.is_trusted_domain("SSO.example.com:8443"));
        assert!(!c.is_trusted_domain("sso.example.com"));
        assert!(!c.is_trusted_domain("www.sso.example.com:8443"));
    }
}

/// The simulator behind a real socket, nested the way the demo mounts it.
#[cfg(test)]
mod served_tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::clock::SystemClock;

    /// The JSON body of an answer that must be HTTP 200 (WeCom's status even for errors).
    async fn ok_json(answer: reqwest::Response) -> serde_json::Value {
        assert_eq!(answer.status(), reqwest::StatusCode::OK);
        answer.json().await.expect("JSON")
    }

    #[tokio::test]
    async fn nested_router_serves_wecom_paths_and_names_the_caller_ip() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("local addr");
        let base = format!("http://{addr}/wecom-sim");
        let sim = Simulator::new(SimulatorConfig::demo(base.clone()), Arc::new(SystemClock));
        let app = Router::new().nest("/wecom-sim", sim.router());
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        let http = reqwest::Client::new();
        let get = |path: &str| {
            let answer = http.get(format!("{base}{path}")).send();
            async { answer.await.expect("the simulator answers") }
        };

        let ok =
            get("/cgi-bin/gettoken?corpid=ww7f3c2a1b9d8e6f50&corpsecret=demo-wecom-app-secret");
        assert_eq!(ok_json(ok.await).await["errcode"], serde_json::json!(0));

        let bad = ok_json(get("/cgi-bin/gettoken?corpid=x").await).await;
        let msg = bad["errmsg"].as_str().unwrap_or("");
        assert!(msg.contains("from ip: 127.0.0.1,"), "{msg}");

        let missing = get("/cgi-bin/no/such/api").await;
        assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
        assert!(missing.bytes().await.expect("body").is_empty());
        assert_eq!(sim.gettoken_calls(), 2);

        // The simulator-only counter endpoint reports the same count, and nothing secret.
        let stats = ok_json(get(STATS_PATH).await).await;
        assert!(
            !stats.to_string().contains("demo-wecom-app-secret"),
            "{stats}"
        );
        let stats: SimulatorStats = serde_json::from_value(stats).expect("stats JSON");
        assert_eq!(stats, SimulatorStats { gettoken_calls: 2 });
        server.abort();
    }
}
