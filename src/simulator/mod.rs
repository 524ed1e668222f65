//! The WeCom simulator: same paths, parameters, JSON field names, error codes and expiries as
//! WeCom's real API (`../shared/wecom-api.md`), for the demo and the tests.
//!
//! It is written from the reference alone and shares no code or types with the WeCom connector
//! (`src/connector/wecom/`), so a wrong field name or error code on either side shows up when
//! the two meet in the end-to-end tests.
//!
//! Where the reference marks a behaviour "unconfirmed", the simulator picks the variant that is
//! strictest for a client and lets tests switch to the other through [`SimulatorQuirks`].

mod api;
mod callbacks;
mod directory;
mod pages;
mod reply;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::routing::get;
use axum::Router;

use crate::clock::SharedClock;
use crate::random;
pub use callbacks::{seal_callback, CallbackTarget, Delivery};
use directory::Directory;

/// How long a `user_ticket` from `snsapi_privateinfo` stays valid, in seconds (wecom-api.md §4).
const USER_TICKET_TTL: i64 = 1800;

/// Simulator-only path (relative to the mount point) answering [`SimulatorStats`] as JSON. WeCom
/// has no such path; it exists so that a load generator in another process (`examples/bench.rs`)
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

/// Settings of one simulated corp and its one self-built app.
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
    /// When `Some(userid)`, the login pages complete at once as that member.
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
    fn is_trusted_domain(&self, domain: &str) -> bool {
        self.trusted_domains.is_empty()
            || self
                .trusted_domains
                .iter()
                .any(|t| t.eq_ignore_ascii_case(domain))
    }
}

impl std::fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("corp_id", &self.corp_id)
            .field("agent_id", &self.agent_id)
            .field("secret", &"<redacted>")
            .field("public_base", &self.public_base)
            .field("trusted_domains", &self.trusted_domains)
            .field("auto_login", &self.auto_login)
            .field("token_ttl", &self.token_ttl)
            .field("code_ttl", &self.code_ttl)
            .field("legacy_app", &self.legacy_app)
            .finish()
    }
}

/// Switches for behaviours the reference marks "unconfirmed". The defaults are the variants
/// strictest for a client; flip them to check that a client copes with the other one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulatorQuirks {
    /// `errcode` of `getuserdetail` for a missing, unknown or expired `user_ticket` (§5:
    /// unconfirmed). Default 40029 ("invalid code"): the ticket is a code-like credential, and a
    /// code that is not a token error keeps a client from refreshing its `access_token` and
    /// retrying in a loop; it must simply fail the login.
    pub user_ticket_errcode: i64,
    /// For a new app (`legacy_app == false`), send the withheld privacy fields of `user/get` as
    /// empty strings instead of dropping the keys (§6: unconfirmed). Default `false` (dropped).
    pub privacy_fields_empty: bool,
    /// `snsapi_privateinfo` without `agentid` (§2: unconfirmed whether it errors or falls back
    /// to `snsapi_base`). Default `false`: the authorize page shows error 40056 and never
    /// redirects; `true`: the login proceeds as `snsapi_base` (no `user_ticket`).
    pub privateinfo_without_agentid_falls_back: bool,
}

impl Default for SimulatorQuirks {
    fn default() -> Self {
        Self {
            user_ticket_errcode: 40029,
            privacy_fields_empty: false,
            privateinfo_without_agentid_falls_back: false,
        }
    }
}

/// Who a code stands for.
#[derive(Debug, Clone)]
enum Subject {
    /// A corp member, by userid.
    Member(String),
    /// A WeChat user who is not a member (§4: `openid`, maybe `external_userid`).
    NonMember {
        openid: String,
        external_userid: Option<String>,
    },
}

/// What the simulator remembers about an OAuth code until it is redeemed or expires.
#[derive(Debug, Clone)]
struct CodeGrant {
    subject: Subject,
    /// Whether the code came from `snsapi_privateinfo`, which earns a `user_ticket`.
    private_info: bool,
    /// `host[:port]` of the redirect URI the code was issued for; `None` if it had none.
    redirect_domain: Option<String>,
    /// The legacy endpoint's `DeviceId`: set for in-app logins, empty for web logins.
    device_id: String,
    expires_at: i64,
}

/// A `user_ticket` for `getuserdetail`.
#[derive(Debug, Clone)]
struct TicketGrant {
    userid: String,
    expires_at: i64,
}

/// A pending injected failure.
#[derive(Debug, Clone, Copy)]
struct Fault {
    errcode: i64,
    remaining: u32,
}

/// Everything that changes while the simulator runs. Codes, tokens and tickets are keyed by
/// their SHA-256 ([`random::hash_secret`]) so the state never holds a usable credential in a
/// form that a debug dump could leak.
#[derive(Debug)]
struct State {
    directory: Directory,
    /// token hash → expiry (unix seconds).
    tokens: HashMap<String, i64>,
    codes: HashMap<String, CodeGrant>,
    tickets: HashMap<String, TicketGrant>,
    faults: HashMap<String, Fault>,
    /// Path (or `*`) → delay added before answering.
    latency: HashMap<String, std::time::Duration>,
    quirks: SimulatorQuirks,
}

struct Inner {
    config: SimulatorConfig,
    clock: SharedClock,
    /// The one non-member WeChat user of this corp (openid is unique within a corp, §4).
    non_member_openid: String,
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
    /// Issued for a redirect domain the app does not trust: 50001.
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

/// `host[:port]` of a URL, the form trusted domains are written in (§2, §9). The port appears
/// only when the URL names a non-default one.
fn redirect_domain(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

impl Simulator {
    /// A simulator for `config`, reading time from `clock` (tests pass a `ManualClock`).
    pub fn new(mut config: SimulatorConfig, clock: SharedClock) -> Self {
        config.public_base = config.public_base.trim_end_matches('/').to_string();
        Self {
            inner: Arc::new(Inner {
                config,
                clock,
                // WeChat openids are 28 characters starting with "o".
                non_member_openid: format!("o{}", random::alphanumeric(27)),
                gettoken_calls: AtomicU64::new(0),
                state: Mutex::new(State {
                    directory: Directory::seed(),
                    tokens: HashMap::new(),
                    codes: HashMap::new(),
                    tickets: HashMap::new(),
                    faults: HashMap::new(),
                    latency: HashMap::new(),
                    quirks: SimulatorQuirks::default(),
                }),
            }),
        }
    }

    /// The routes, with WeCom's paths relative to the mount point: the `/cgi-bin/…` API, the
    /// in-app OAuth page `/connect/oauth2/authorize`, the web login pages `/wwlogin/sso/login`
    /// and `/wwopen/sso/qrConnect`. Anything else answers 404 with an empty body, like WeCom.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/cgi-bin/gettoken", get(api::gettoken))
            .route("/cgi-bin/auth/getuserinfo", get(api::auth_getuserinfo))
            .route("/cgi-bin/user/getuserinfo", get(api::user_getuserinfo))
            .route("/cgi-bin/user/get", get(api::user_get))
            .route(
                "/cgi-bin/auth/getuserdetail",
                axum::routing::post(api::getuserdetail),
            )
            .route("/cgi-bin/department/list", get(api::department_list))
            .route(
                "/cgi-bin/department/simplelist",
                get(api::department_simplelist),
            )
            .route("/cgi-bin/department/get", get(api::department_get))
            .route("/cgi-bin/tag/list", get(api::tag_list))
            .route("/cgi-bin/tag/get", get(api::tag_get))
            .route(
                "/connect/oauth2/authorize",
                get(pages::authorize_page).post(pages::authorize_submit),
            )
            .route(
                "/wwlogin/sso/login",
                get(pages::sso_login_page).post(pages::sso_login_submit),
            )
            .route(
                "/wwopen/sso/qrConnect",
                get(pages::qr_connect_page).post(pages::qr_connect_submit),
            )
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

    /// The configuration this simulator was built with.
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

    /// Mints a code as if member `userid` had logged in through a page with `scope`
    /// (`snsapi_privateinfo` earns a `user_ticket`; anything else, e.g. `snsapi_base` or `""`
    /// for a web login, does not) and been sent to `redirect_uri`. The redirect domain is *not*
    /// checked here: redeeming a code issued for an untrusted domain answers 50001. An unknown
    /// userid is kept as given, so a client's handling of a vanished member can be tested.
    pub fn issue_code(&self, userid: &str, scope: &str, redirect_uri: &str) -> String {
        let canonical = self
            .lock()
            .directory
            .member(userid)
            .map(|m| m.userid.clone())
            .unwrap_or_else(|| userid.to_string());
        let domain = url::Url::parse(redirect_uri)
            .ok()
            .and_then(|u| redirect_domain(&u));
        let in_app = !scope.is_empty();
        self.mint_code(
            Subject::Member(canonical),
            scope == "snsapi_privateinfo",
            domain,
            in_app,
        )
    }

    /// Mints a code for a WeChat user who is not a member: `getuserinfo` answers `openid`
    /// (§4), nothing else.
    pub fn issue_non_member_code(&self, redirect_uri: &str) -> String {
        self.issue_external_code(redirect_uri, None)
    }

    /// Mints a non-member code whose `getuserinfo` answer also carries `external_userid`, as
    /// for a customer of a member (§4). Additive to the agreed API.
    pub fn issue_external_contact_code(&self, redirect_uri: &str, external_userid: &str) -> String {
        self.issue_external_code(redirect_uri, Some(external_userid.to_string()))
    }

    /// Revokes every access token early, as WeCom may (§1): the next use gets 40014.
    pub fn revoke_all_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Sets a member's `status` (1 active, 2 disabled, 4 not activated, 5 left). Returns
    /// `false`, changing nothing, when the member does not exist or `status` is not one of
    /// those values.
    pub fn set_member_status(&self, userid: &str, status: i64) -> bool {
        if !directory::is_known_status(status) {
            return false;
        }
        match self.lock().directory.member_mut(userid) {
            Some(member) => {
                member.status = status;
                true
            }
            None => false,
        }
    }

    /// Fault injection: the next `times` calls to the JSON endpoint `path` (e.g.
    /// `"/cgi-bin/gettoken"`, leading slash optional) answer `errcode` (-1 system busy, 45009
    /// rate limit, …) before any other check, with the endpoint's usual error body. `times == 0`
    /// or `errcode == 0` cancels a pending fault. The login pages ignore faults.
    pub fn fail_next(&self, path: &str, errcode: i64, times: u32) {
        let key = normalize_path(path);
        let mut state = self.lock();
        if times == 0 || errcode == 0 {
            state.faults.remove(&key);
        } else {
            state.faults.insert(
                key,
                Fault {
                    errcode,
                    remaining: times,
                },
            );
        }
    }

    /// Switches behaviours the reference leaves unconfirmed (see [`SimulatorQuirks`]).
    /// Additive to the agreed API.
    pub fn set_quirks(&self, quirks: SimulatorQuirks) {
        self.lock().quirks = quirks;
    }

    /// The quirks in force.
    pub fn quirks(&self) -> SimulatorQuirks {
        self.lock().quirks
    }

    // ---- internals shared by the API handlers and the pages ----

    fn now(&self) -> i64 {
        self.inner.clock.now()
    }

    /// The state lock. A panic elsewhere while holding it cannot leave the maps half-written
    /// in a way that matters to a simulator, so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn issue_external_code(&self, redirect_uri: &str, external_userid: Option<String>) -> String {
        let domain = url::Url::parse(redirect_uri)
            .ok()
            .and_then(|u| redirect_domain(&u));
        self.mint_code(
            Subject::NonMember {
                openid: self.inner.non_member_openid.clone(),
                external_userid,
            },
            false,
            domain,
            false,
        )
    }

    fn mint_code(
        &self,
        subject: Subject,
        private_info: bool,
        redirect_domain: Option<String>,
        in_app: bool,
    ) -> String {
        let now = self.now();
        let code = random::token(32);
        let device_id = if in_app {
            random::alphanumeric(32).to_ascii_lowercase()
        } else {
            String::new()
        };
        let mut state = self.lock();
        // Expired codes answer 40029 exactly like unknown ones, so they can go.
        state.codes.retain(|_, g| g.expires_at > now);
        state.codes.insert(
            random::hash_secret(&code),
            CodeGrant {
                subject,
                private_info,
                redirect_domain,
                device_id,
                expires_at: now + self.inner.config.code_ttl,
            },
        );
        code
    }

    /// Takes one pending fault for `path`, if any.
    fn take_fault(&self, path: &str) -> Option<i64> {
        let mut state = self.lock();
        let fault = state.faults.get_mut(path)?;
        let errcode = fault.errcode;
        fault.remaining = fault.remaining.saturating_sub(1);
        if fault.remaining == 0 {
            state.faults.remove(path);
        }
        Some(errcode)
    }

    /// Mints an access token valid for `token_ttl` seconds.
    fn mint_token(&self) -> (String, i64) {
        let now = self.now();
        let ttl = self.inner.config.token_ttl;
        let token = random::token(48);
        let mut state = self.lock();
        // Keep expired tokens for one more lifetime so that their use answers 42001 rather
        // than 40014; older ones are dropped to bound memory.
        state.tokens.retain(|_, exp| *exp + ttl > now);
        state.tokens.insert(random::hash_secret(&token), now + ttl);
        (token, ttl)
    }

    /// Checks an `access_token` from the query string (§1: never from a header or body).
    fn check_token(&self, token: Option<&str>) -> Result<(), TokenError> {
        let token = token.ok_or(TokenError::Missing)?;
        let now = self.now();
        match self.lock().tokens.get(&random::hash_secret(token)) {
            None => Err(TokenError::Unknown),
            Some(exp) if *exp <= now => Err(TokenError::Expired),
            Some(_) => Ok(()),
        }
    }

    /// Redeems a code once (§2: single use, 5 minutes). The code is consumed even when the
    /// domain check fails, so a failed redemption cannot be retried with the same code.
    fn redeem_code(&self, code: &str) -> Result<CodeGrant, CodeError> {
        let now = self.now();
        let grant = self
            .lock()
            .codes
            .remove(&random::hash_secret(code))
            .ok_or(CodeError::Invalid)?;
        if grant.expires_at <= now {
            return Err(CodeError::Invalid);
        }
        let trusted = match &grant.redirect_domain {
            Some(d) => self.inner.config.is_trusted_domain(d),
            None => self.inner.config.trusted_domains.is_empty(),
        };
        if !trusted {
            return Err(CodeError::UntrustedDomain);
        }
        Ok(grant)
    }

    /// Mints a `user_ticket` for `userid`, valid 1800 s (§4).
    fn mint_ticket(&self, userid: &str) -> String {
        let now = self.now();
        let ticket = random::token(64);
        let mut state = self.lock();
        state.tickets.retain(|_, t| t.expires_at > now);
        state.tickets.insert(
            random::hash_secret(&ticket),
            TicketGrant {
                userid: userid.to_string(),
                expires_at: now + USER_TICKET_TTL,
            },
        );
        ticket
    }

    /// The userid behind a live `user_ticket`. Tickets stay usable until they expire.
    fn ticket_user(&self, ticket: &str) -> Option<String> {
        let now = self.now();
        self.lock()
            .tickets
            .get(&random::hash_secret(ticket))
            .filter(|t| t.expires_at > now)
            .map(|t| t.userid.clone())
    }
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
            sim.lock().directory.member("zhangsan").map(|m| m.status),
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
        let d = |s: &str| url::Url::parse(s).ok().and_then(|u| redirect_domain(&u));
        assert_eq!(d("http://127.0.0.1:8080/cb"), Some("127.0.0.1:8080".into()));
        assert_eq!(
            d("https://sso.example.com/cb"),
            Some("sso.example.com".into())
        );
        assert_eq!(
            d("https://sso.example.com:443/cb"),
            Some("sso.example.com".into())
        );
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

        let url = format!(
            "{base}/cgi-bin/gettoken?corpid=ww7f3c2a1b9d8e6f50&corpsecret=demo-wecom-app-secret"
        );
        let ok: serde_json::Value = http
            .get(url)
            .send()
            .await
            .expect("gettoken answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(ok["errcode"], serde_json::json!(0));

        let bad = http
            .get(format!("{base}/cgi-bin/gettoken?corpid=x"))
            .send()
            .await
            .expect("gettoken answers");
        assert_eq!(bad.status(), reqwest::StatusCode::OK);
        let bad: serde_json::Value = bad.json().await.expect("JSON");
        let msg = bad["errmsg"].as_str().unwrap_or("");
        assert!(msg.contains("from ip: 127.0.0.1,"), "{msg}");

        let missing = http
            .get(format!("{base}/cgi-bin/no/such/api"))
            .send()
            .await
            .expect("answers");
        assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
        assert!(missing.bytes().await.expect("body").is_empty());
        assert_eq!(sim.gettoken_calls(), 2);

        // The simulator-only counter endpoint reports the same count, and nothing secret.
        let stats = http
            .get(format!("{base}{STATS_PATH}"))
            .send()
            .await
            .expect("stats answer");
        assert_eq!(stats.status(), reqwest::StatusCode::OK);
        let text = stats.text().await.expect("body");
        assert!(!text.contains("demo-wecom-app-secret"), "{text}");
        let stats: SimulatorStats = serde_json::from_str(&text).expect("stats JSON");
        assert_eq!(stats, SimulatorStats { gettoken_calls: 2 });
        server.abort();
    }
}
