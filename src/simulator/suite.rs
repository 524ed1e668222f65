//! The simulator as a WeCom service provider (服务商, wecom-api.md §8, §11, §12): third-party apps
//! ("suites") and 代开发 templates (customised apps) that simulated corps install, change and
//! remove. It pushes the `suite_ticket` and the `create_auth` / `change_auth` / `cancel_auth`
//! commands to the suite's command callback (encrypted as §11 with the SuiteID as receive id)
//! when a test asks, and serves `get_suite_token`, `get_permanent_code`, `get_corp_token` and
//! `getuserinfo3rd`. Installing a suite adds an app to the corp with the granted visible range,
//! so the corp token it hands out reads the directory (`user/get`, …) exactly as a self-built
//! app's token does — except department names (§7): a third-party app gets the id in place of
//! the name, a 代开发 app no name until an admin authorises names.
//!
//! A 代开发 app is an app of the customer corp: its people log in through the corp's ordinary
//! login pages (`appid` = CorpID, `agentid`), its codes are redeemed with `auth/getuserinfo`.
//! §12 says its token comes from `get_corp_token` with the permanent code; WeCom's 代开发 pages
//! are also read as `gettoken` with `corpsecret` = the permanent code. The simulator serves
//! both: the permanent code is the app's secret.
//!
//! Written from the reference alone, like the rest of the simulator. Where §8 names no error
//! code, the code below is the one WeCom's service-provider docs use, marked unconfirmed.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::api::Call;
use super::callbacks::post_signed;
use super::corp::{App, AppKey, DepartmentNames};
use super::reply::{failure, success, ClientIp};
use super::{expiry, CallbackTarget, Delivery, Simulator, VisibleRange};
use crate::random;

/// Missing token (§1).
const TOKEN_MISSING: i64 = 41001;
/// Invalid / expired `suite_access_token` (§10).
const SUITE_TOKEN_INVALID: i64 = 40082;
const SUITE_TOKEN_EXPIRED: i64 = 42009;
/// Invalid code (§4); a code of another suite: 50001 (§4: the code came from another app).
const CODE_INVALID: i64 = 40029;
const CODE_OTHER_APP: i64 = 50001;
/// Wrong secret (§1).
const BAD_SECRET: i64 = 40001;
/// Unconfirmed (not in §10): invalid suite_id, suite_ticket, auth_code, permanent_code and a
/// body that is not JSON, as WeCom's service-provider error list numbers them.
const BAD_SUITE_ID: i64 = 40089;
const BAD_TICKET: i64 = 40085;
const BAD_AUTH_CODE: i64 = 40078;
const BAD_PERMANENT_CODE: i64 = 40084;
const BAD_JSON: i64 = 47001;
/// How long a pushed `suite_ticket` is accepted, seconds (see `Suite::tickets`).
const TICKET_TTL: i64 = 1800;
/// First AgentId given to an installed suite in a corp.
const FIRST_SUITE_AGENT: i64 = 3_000_001;

/// What kind of app a suite is (§12 "App kinds").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SuiteKind {
    /// A third-party app (第三方应用): `ServiceApp` web login, `getuserinfo3rd`, department ids
    /// in place of names.
    #[default]
    ThirdParty,
    /// A 代开发 template: each install is a customised app of that corp, logged in to like a
    /// self-built one; department names withheld until authorised.
    Customised,
}

/// A third-party app (or 代开发 template) of the simulated service provider.
#[derive(Clone)]
pub struct SuiteSpec {
    /// The SuiteID.
    pub suite_id: String,
    /// Third-party app or 代开发 template.
    pub kind: SuiteKind,
    /// The suite secret `get_suite_token` accepts.
    pub suite_secret: String,
    /// The command callback (指令回调URL) with its Token and EncodingAESKey.
    pub callback: CallbackTarget,
}

crate::secret::debug_showing!(SuiteSpec: suite_id);

/// One installation of a suite in a corp.
#[derive(Debug, Clone)]
struct Install {
    agent_id: i64,
    /// SHA-256 of the permanent code.
    permanent_code: String,
}

#[derive(Debug)]
struct Suite {
    spec: SuiteSpec,
    /// SHA-256 and push time of each ticket pushed, newest last. §8 says only that the latest
    /// is what `get_suite_token` needs; a ticket pushed shortly before may still be in flight
    /// to the provider while a newer one is minted, so the simulator accepts every ticket for
    /// [`TICKET_TTL`] (WeCom's service-provider pages give a ticket 30 minutes), or with the
    /// quirk `latest_suite_ticket_only` the latest alone.
    tickets: Vec<(String, i64)>,
    installs: HashMap<String, Install>,
}

/// A code of a suite login.
#[derive(Debug, Clone)]
struct SuiteCode {
    suite_id: String,
    corp_id: String,
    /// The member; `None` for a WeChat user who is no member (§8: `openid` only).
    userid: Option<String>,
    expires_at: i64,
}

/// The service provider's state (inside the simulator's state).
#[derive(Debug, Default)]
pub(super) struct Suites {
    suites: Vec<Suite>,
    /// Hash of a suite token → (SuiteID, expiry).
    tokens: HashMap<String, (String, i64)>,
    /// Hash of an auth code → (SuiteID, CorpID, expiry); one use.
    auth_codes: HashMap<String, (String, String, i64)>,
    /// Hash of a login code → the login.
    codes: HashMap<String, SuiteCode>,
    /// `get_suite_token` calls, successful or not.
    suite_token_calls: u64,
    /// `get_corp_token` calls, successful or not.
    corp_token_calls: u64,
}

impl Suites {
    fn suite(&self, id: &str) -> Option<&Suite> {
        self.suites.iter().find(|s| s.spec.suite_id == id)
    }
    fn suite_mut(&mut self, id: &str) -> Option<&mut Suite> {
        self.suites.iter_mut().find(|s| s.spec.suite_id == id)
    }
}

/// `open_userid` of a member: stable across the provider's apps and unique per corp (§8).
fn open_userid(corp_id: &str, userid: &str) -> String {
    let h = random::hash_secret(&format!(
        "open_userid\0{corp_id}\0{}",
        userid.to_ascii_lowercase()
    ));
    format!(
        "wo{}",
        &h.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(30)
            .collect::<String>()
    )
}

impl Simulator {
    /// Registers a suite of the simulated service provider.
    pub fn add_suite(&self, spec: SuiteSpec) {
        self.lock().suites.suites.push(Suite {
            spec,
            tickets: Vec::new(),
            installs: HashMap::new(),
        });
    }

    /// How many `get_suite_token` and `get_corp_token` calls were made.
    pub fn suite_calls(&self) -> (u64, u64) {
        let s = self.lock();
        (s.suites.suite_token_calls, s.suites.corp_token_calls)
    }

    /// Pushes a new `suite_ticket` (§8) to the suite's command callback.
    pub async fn push_suite_ticket(&self, suite_id: &str) -> Result<Delivery, String> {
        let ticket = random::token(32);
        let target = {
            let mut state = self.lock();
            let suite = state.suites.suite_mut(suite_id).ok_or("unknown suite")?;
            let now = self.now();
            suite.tickets.retain(|(_, at)| now - at < TICKET_TTL);
            suite.tickets.push((random::hash_secret(&ticket), now));
            suite.spec.callback.clone()
        };
        let msg = format!(
            "<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType>\
             <TimeStamp>{}</TimeStamp><SuiteTicket><![CDATA[{ticket}]]></SuiteTicket></xml>",
            self.now()
        );
        self.deliver_suite(suite_id, &target, &msg).await
    }

    /// Pushes a new `suite_ticket` to suite `suite_id` every `interval`, as WeCom does every 10
    /// minutes (§8; tests pass a short interval), until the returned task is aborted. A failed
    /// delivery is tried again at the next tick, as WeCom would.
    pub fn push_suite_tickets_every(
        &self,
        suite_id: &str,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let (sim, suite_id) = (self.clone(), suite_id.to_owned());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            loop {
                ticks.tick().await;
                if let Err(e) = sim.push_suite_ticket(&suite_id).await {
                    tracing::debug!(error = %e, "simulated suite_ticket push failed");
                }
            }
        })
    }

    /// Corp `corp_id` installs suite `suite_id` with visible range `range`: the corp gets an
    /// app for it and the suite's command callback gets `create_auth` with an `AuthCode`.
    pub async fn install_suite(
        &self,
        suite_id: &str,
        corp_id: &str,
        range: VisibleRange,
    ) -> Result<Delivery, String> {
        let auth_code = random::token(32);
        let target = {
            let now = self.now();
            let ttl = self.config().code_ttl;
            let mut state = self.lock();
            let corp = state.corp_mut(corp_id).ok_or("unknown corp")?;
            let agent_id = (FIRST_SUITE_AGENT..)
                .find(|a| corp.app(*a).is_none())
                .ok_or("no AgentId left")?;
            let kind = state
                .suites
                .suite(suite_id)
                .ok_or("unknown suite")?
                .spec
                .kind;
            let corp = state.corp_mut(corp_id).ok_or("unknown corp")?;
            let mut app = App::from_spec(super::AppSpec {
                agent_id,
                secret: random::token(32),
                visible_range: range,
                trusted_domains: Vec::new(),
                legacy_app: false,
            });
            app.department_names = match kind {
                SuiteKind::ThirdParty => DepartmentNames::Ids,
                SuiteKind::Customised => DepartmentNames::Withheld,
            };
            corp.apps.push(app);
            let suites = &mut state.suites;
            let grant = (suite_id.to_owned(), corp_id.to_owned(), now + ttl);
            let (key, cap) = (random::hash_secret(&auth_code), expiry::MAX_AUTH_CODES);
            expiry::insert(&mut suites.auth_codes, now, 0, cap, key, grant, |g| g.2);
            let suite = suites.suite_mut(suite_id).ok_or("unknown suite")?;
            suite.installs.insert(
                corp_id.to_owned(),
                Install {
                    agent_id,
                    permanent_code: String::new(),
                },
            );
            suite.spec.callback.clone()
        };
        let msg = format!(
            "<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId><AuthCode><![CDATA[{auth_code}]]></AuthCode>\
             <InfoType><![CDATA[create_auth]]></InfoType><TimeStamp>{}</TimeStamp></xml>",
            self.now()
        );
        self.deliver_suite(suite_id, &target, &msg).await
    }

    /// Corp `corp_id` removes suite `suite_id`: its app, tokens and permanent code end, and the
    /// command callback gets `cancel_auth`.
    pub async fn cancel_suite(&self, suite_id: &str, corp_id: &str) -> Result<Delivery, String> {
        let target = {
            let mut state = self.lock();
            let suite = state.suites.suite_mut(suite_id).ok_or("unknown suite")?;
            let install = suite.installs.remove(corp_id).ok_or("not installed")?;
            let target = suite.spec.callback.clone();
            let key = AppKey {
                corp_id: corp_id.to_owned(),
                agent_id: install.agent_id,
            };
            state.tokens.retain(|_, t| t.app != key);
            if let Some(corp) = state.corp_mut(corp_id) {
                corp.apps.retain(|a| a.agent_id != install.agent_id);
            }
            target
        };
        let msg = format!(
            "<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId><InfoType><![CDATA[cancel_auth]]></InfoType>\
             <TimeStamp>{}</TimeStamp><AuthCorpId><![CDATA[{corp_id}]]></AuthCorpId></xml>",
            self.now()
        );
        self.deliver_suite(suite_id, &target, &msg).await
    }

    /// A login code of `userid` (a member of `corp_id`) for suite `suite_id`, as its in-app or
    /// `ServiceApp` login page would mint it. An unknown member or a corp that has not
    /// installed the suite gets a code that was never issued (40029).
    pub fn issue_suite_code(&self, suite_id: &str, corp_id: &str, userid: &str) -> String {
        self.mint_suite_code(suite_id, corp_id, Some(userid))
            .unwrap_or_else(|| random::token(32))
    }

    /// Whether corp `corp_id` has installed suite `suite_id`.
    pub(super) fn has_installed(&self, suite_id: &str, corp_id: &str) -> bool {
        self.lock()
            .suites
            .suite(suite_id)
            .is_some_and(|s| s.installs.contains_key(corp_id))
    }

    /// The kind of suite `suite_id`, `None` when there is no such suite.
    pub(super) fn suite_kind(&self, suite_id: &str) -> Option<SuiteKind> {
        self.lock().suites.suite(suite_id).map(|s| s.spec.kind)
    }

    /// The corps that installed suite `suite_id`, in install order of the simulator's corps.
    pub(super) fn installing_corps(&self, suite_id: &str) -> Vec<String> {
        let state = self.lock();
        let Some(suite) = state.suites.suite(suite_id) else {
            return Vec::new();
        };
        state
            .corps
            .iter()
            .filter(|c| suite.installs.contains_key(&c.corp_id))
            .map(|c| c.corp_id.clone())
            .collect()
    }

    /// Mints a code of a suite login: of member `userid` of `corp_id` (the userid as the
    /// directory spells it), or of a non-member with `None`. `None` when the corp has not
    /// installed the suite or the member does not exist.
    pub(super) fn mint_suite_code(
        &self,
        suite_id: &str,
        corp_id: &str,
        userid: Option<&str>,
    ) -> Option<String> {
        let code = random::token(32);
        let now = self.now();
        let ttl = self.config().code_ttl;
        if !self.has_installed(suite_id, corp_id) {
            return None;
        }
        let mut state = self.lock();
        let userid = match userid {
            Some(u) => Some(state.corp(corp_id)?.directory.member(u)?.userid.clone()),
            None => None,
        };
        let grant = SuiteCode {
            suite_id: suite_id.to_owned(),
            corp_id: corp_id.to_owned(),
            userid,
            expires_at: now + ttl,
        };
        let (key, cap) = (random::hash_secret(&code), expiry::MAX_CODES);
        let codes = &mut state.suites.codes;
        expiry::insert(codes, now, 0, cap, key, grant, |g| g.expires_at);
        Some(code)
    }

    /// Corp `corp_id` changes what it granted suite `suite_id` (§8 `change_auth`): the app's
    /// visible range becomes `range`, and the command callback gets `change_auth`.
    pub async fn change_suite_auth(
        &self,
        suite_id: &str,
        corp_id: &str,
        range: VisibleRange,
    ) -> Result<Delivery, String> {
        let target = self.change_installed_app(suite_id, corp_id, |app| app.range = range)?;
        self.push_change_auth(suite_id, corp_id, &target).await
    }

    /// Applies `change` to suite `suite_id`'s app in corp `corp_id`; the suite's command
    /// callback, to tell it.
    fn change_installed_app(
        &self,
        suite_id: &str,
        corp_id: &str,
        change: impl FnOnce(&mut App),
    ) -> Result<CallbackTarget, String> {
        let mut state = self.lock();
        let suite = state.suites.suite(suite_id).ok_or("unknown suite")?;
        let agent_id = suite.installs.get(corp_id).ok_or("not installed")?.agent_id;
        let target = suite.spec.callback.clone();
        let app = state
            .corp_mut(corp_id)
            .and_then(|c| c.app_mut(agent_id))
            .ok_or("no app")?;
        change(app);
        Ok(target)
    }

    /// The admin of `corp_id` authorises the 代开发 app of `suite_id` to read department names
    /// (§7, §12). Whether WeCom then pushes `change_auth` is not in the reference: with
    /// `notify` the simulator does, without it nothing is pushed (a provider must then see the
    /// names within its cache lifetime).
    pub async fn authorise_department_names(
        &self,
        suite_id: &str,
        corp_id: &str,
        notify: bool,
    ) -> Result<Option<Delivery>, String> {
        let target = self.change_installed_app(suite_id, corp_id, |app| {
            app.department_names = DepartmentNames::Shown;
        })?;
        if !notify {
            return Ok(None);
        }
        self.push_change_auth(suite_id, corp_id, &target)
            .await
            .map(Some)
    }

    async fn push_change_auth(
        &self,
        suite_id: &str,
        corp_id: &str,
        target: &CallbackTarget,
    ) -> Result<Delivery, String> {
        let msg = format!(
            "<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId><InfoType><![CDATA[change_auth]]></InfoType>\
             <TimeStamp>{}</TimeStamp><AuthCorpId><![CDATA[{corp_id}]]></AuthCorpId></xml>",
            self.now()
        );
        self.deliver_suite(suite_id, target, &msg).await
    }

    /// The AgentId of suite `suite_id`'s app in corp `corp_id`, once installed.
    pub fn suite_agent_id(&self, suite_id: &str, corp_id: &str) -> Option<i64> {
        self.lock()
            .suites
            .suite(suite_id)?
            .installs
            .get(corp_id)
            .map(|i| i.agent_id)
    }

    /// The suite of a `suite_access_token`.
    fn check_suite_token(&self, token: Option<&str>) -> Result<String, i64> {
        let token = token.ok_or(TOKEN_MISSING)?;
        let now = self.now();
        match self.lock().suites.tokens.get(&random::hash_secret(token)) {
            None => Err(SUITE_TOKEN_INVALID),
            Some((_, exp)) if *exp <= now => Err(SUITE_TOKEN_EXPIRED),
            Some((id, _)) => Ok(id.clone()),
        }
    }

    async fn deliver_suite(
        &self,
        suite_id: &str,
        target: &CallbackTarget,
        msg: &str,
    ) -> Result<Delivery, String> {
        let timestamp = self.now().to_string();
        let nonce = random::alphanumeric(10);
        // §8, §11: suite callbacks are encrypted for the SuiteID.
        let (signature, encrypted) = super::seal_callback(
            &target.token,
            &target.encoding_aes_key,
            suite_id,
            &timestamp,
            &nonce,
            msg,
        )?;
        let body = format!(
            "<xml><ToUserName><![CDATA[{suite_id}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
        );
        post_signed(target, [&signature, &timestamp, &nonce], body).await
    }

    fn reply(&self, ip: &ClientIp, outcome: Result<Value, i64>) -> Response {
        match outcome {
            Ok(Value::Object(m)) => success(m),
            Ok(_) => success(Map::new()),
            Err(code) => failure(code, Map::new(), &ip.0, self.now()),
        }
    }
}

fn body_json(body: &[u8]) -> Result<Map<String, Value>, i64> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(BAD_JSON),
    }
}

fn field<'a>(m: &'a Map<String, Value>, name: &str) -> &'a str {
    m.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// `POST /cgi-bin/service/get_suite_token` body `{suite_id, suite_secret, suite_ticket}` (§8).
pub(super) async fn get_suite_token(
    State(sim): State<Simulator>,
    ip: ClientIp,
    body: Bytes,
) -> Response {
    let outcome = (|| {
        sim.lock().suites.suite_token_calls += 1;
        let b = body_json(&body)?;
        let (id, secret, ticket) = (
            field(&b, "suite_id"),
            field(&b, "suite_secret"),
            field(&b, "suite_ticket"),
        );
        {
            let state = sim.lock();
            let suite = state.suites.suite(id).ok_or(BAD_SUITE_ID)?;
            if !random::constant_time_eq(secret.as_bytes(), suite.spec.suite_secret.as_bytes()) {
                return Err(BAD_SECRET);
            }
            let presented = random::hash_secret(ticket);
            let now = sim.now();
            let latest_only = state.quirks.latest_suite_ticket_only;
            let valid = suite.tickets.iter().enumerate().any(|(i, (hash, at))| {
                *hash == presented
                    && now - at < TICKET_TTL
                    && (!latest_only || i + 1 == suite.tickets.len())
            });
            if !valid {
                return Err(BAD_TICKET);
            }
        }
        let token = random::token(48);
        let ttl = sim.config().token_ttl;
        // Expired suite tokens stay one more lifetime so that their use answers 42009
        // rather than 40082.
        let now = sim.now();
        let (key, cap) = (random::hash_secret(&token), expiry::MAX_TOKENS);
        let tokens = &mut sim.lock().suites.tokens;
        expiry::insert(
            tokens,
            now,
            ttl,
            cap,
            key,
            (id.to_owned(), now + ttl),
            |t| t.1,
        );
        // §8: the success body carries no errcode in WeCom's docs; the simulator sends the
        // usual `errcode: 0`, which a client must accept as well.
        Ok(json!({"suite_access_token": token, "expires_in": ttl}))
    })();
    sim.reply(&ip, outcome)
}

/// `POST /cgi-bin/service/get_permanent_code?suite_access_token=` body `{auth_code}` (§8).
pub(super) async fn get_permanent_code(Call { sim, ip, q }: Call, body: Bytes) -> Response {
    let outcome = (|| {
        let suite_id = sim.check_suite_token(q.get("suite_access_token"))?;
        let b = body_json(&body)?;
        let now = sim.now();
        let mut state = sim.lock();
        let (owner, corp_id, exp) = state
            .suites
            .auth_codes
            .remove(&random::hash_secret(field(&b, "auth_code")))
            .ok_or(BAD_AUTH_CODE)?;
        if owner != suite_id || exp <= now {
            return Err(BAD_AUTH_CODE);
        }
        let corp_name = match state.corp(&corp_id) {
            Some(c) if c.corp_id == sim.config().corp_id => "示例科技".to_owned(),
            Some(_) => format!("企业 {corp_id}"),
            None => return Err(BAD_AUTH_CODE),
        };
        let permanent_code = random::token(40);
        let suite = state.suites.suite_mut(&suite_id).ok_or(BAD_AUTH_CODE)?;
        let kind = suite.spec.kind;
        let install = suite.installs.get_mut(&corp_id).ok_or(BAD_AUTH_CODE)?;
        install.permanent_code = random::hash_secret(&permanent_code);
        let agent_id = install.agent_id;
        if kind == SuiteKind::Customised {
            // A 代开发 app's permanent code is its secret (`gettoken`, see the module note).
            if let Some(app) = state.corp_mut(&corp_id).and_then(|c| c.app_mut(agent_id)) {
                app.secret = permanent_code.clone();
            }
        }
        let key = AppKey {
            corp_id: corp_id.clone(),
            agent_id,
        };
        let range = state
            .app(&key)
            .map(|(_, a)| a.range.clone())
            .unwrap_or_default();
        drop(state);
        let (token, ttl) = sim.mint_token(key);
        Ok(json!({
            "access_token": token,
            "expires_in": ttl,
            "permanent_code": permanent_code,
            "auth_corp_info": {"corpid": corp_id, "corp_name": corp_name},
            "auth_info": {"agent": [{
                "agentid": agent_id,
                "privilege": {
                    "allow_user": range.users,
                    "allow_party": range.departments,
                    "allow_tag": range.tags,
                },
            }]},
        }))
    })();
    sim.reply(&ip, outcome)
}

/// `POST /cgi-bin/service/get_corp_token?suite_access_token=` body
/// `{auth_corpid, permanent_code}` (§8): an ordinary access token of the suite's app in that
/// corp.
pub(super) async fn get_corp_token(Call { sim, ip, q }: Call, body: Bytes) -> Response {
    let outcome = (|| {
        sim.lock().suites.corp_token_calls += 1;
        let suite_id = sim.check_suite_token(q.get("suite_access_token"))?;
        let b = body_json(&body)?;
        let corp_id = field(&b, "auth_corpid").to_owned();
        let agent_id = {
            let state = sim.lock();
            let install = state
                .suites
                .suite(&suite_id)
                .and_then(|s| s.installs.get(&corp_id))
                .ok_or(BAD_PERMANENT_CODE)?;
            let presented = random::hash_secret(field(&b, "permanent_code"));
            if install.permanent_code.is_empty()
                || !random::constant_time_eq(
                    presented.as_bytes(),
                    install.permanent_code.as_bytes(),
                )
            {
                return Err(BAD_PERMANENT_CODE);
            }
            install.agent_id
        };
        let (token, ttl) = sim.mint_token(AppKey { corp_id, agent_id });
        Ok(json!({"access_token": token, "expires_in": ttl}))
    })();
    sim.reply(&ip, outcome)
}

/// `GET /cgi-bin/service/auth/getuserinfo3rd?suite_access_token=&code=` (§8): `corpid`,
/// `userid`, `open_userid` (web-login form: no `user_ticket`). Serves codes of the in-app link
/// and of the `ServiceApp` web login alike: §8 leaves the web login's redemption unconfirmed,
/// and the connector makes the same choice.
pub(super) async fn getuserinfo3rd(Call { sim, ip, q }: Call) -> Response {
    let outcome = (|| {
        let suite_id = sim.check_suite_token(q.get("suite_access_token"))?;
        let code = q.get("code").ok_or(CODE_INVALID)?;
        let now = sim.now();
        let mut state = sim.lock();
        let key = random::hash_secret(code);
        let grant = state.suites.codes.get(&key).cloned().ok_or(CODE_INVALID)?;
        if grant.suite_id != suite_id {
            return Err(CODE_OTHER_APP);
        }
        state.suites.codes.remove(&key);
        if grant.expires_at <= now {
            return Err(CODE_INVALID);
        }
        Ok(match &grant.userid {
            Some(userid) => json!({
                "corpid": grant.corp_id,
                "userid": userid,
                "open_userid": open_userid(&grant.corp_id, userid),
            }),
            // §8: a non-member gets `openid` only (unique within the corp, as in §4).
            None => {
                json!({"openid": state.corp(&grant.corp_id).map(|c| c.non_member_openid.clone())})
            }
        })
    })();
    sim.reply(&ip, outcome)
}

/// A suite whose command callback nothing listens on (tests): a push to it fails, and the
/// state change it announces (an install, a ticket) is made before the push.
#[cfg(test)]
pub(super) fn unreachable_suite(suite_id: &str, kind: SuiteKind) -> SuiteSpec {
    SuiteSpec {
        suite_id: suite_id.into(),
        kind,
        suite_secret: "s".into(),
        callback: CallbackTarget {
            url: "http://127.0.0.1:9/events".into(),
            token: "t".into(),
            encoding_aes_key: "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// Login codes a suite's pages minted and nobody redeemed, and install auth codes nobody
    /// exchanged, go once expired (wecom-api.md §8: codes live 5 minutes) instead of staying
    /// for the life of the process.
    #[tokio::test]
    async fn unredeemed_suite_codes_and_auth_codes_are_dropped_once_expired() {
        let clock = ManualClock::new(1_700_000_000);
        let config = super::super::SimulatorConfig::demo("http://127.0.0.1:9/wecom-sim");
        let corp = config.corp_id.clone();
        let ttl = config.code_ttl;
        let sim = Simulator::new(config, std::sync::Arc::new(clock.clone()));
        for suite_id in ["wwsuite1", "wwsuite2"] {
            sim.add_suite(unreachable_suite(suite_id, SuiteKind::ThirdParty));
        }
        let _ = sim
            .install_suite("wwsuite1", &corp, VisibleRange::whole_corp())
            .await;
        for _ in 0..3 {
            sim.issue_suite_code("wwsuite1", &corp, "zhangsan");
        }
        assert_eq!(sim.lock().suites.codes.len(), 3);
        clock.advance(ttl);
        sim.issue_suite_code("wwsuite1", &corp, "zhangsan");
        let _ = sim
            .install_suite("wwsuite2", &corp, VisibleRange::whole_corp())
            .await;
        let state = sim.lock();
        assert_eq!(state.suites.codes.len(), 1, "the three expired codes went");
        assert_eq!(
            state.suites.auth_codes.len(),
            1,
            "the expired auth code went"
        );
    }

    #[test]
    fn open_userid_is_per_corp_and_case_insensitive() {
        assert_eq!(
            open_userid("wwa", "ZhangSan"),
            open_userid("wwa", "zhangsan")
        );
        assert_ne!(
            open_userid("wwa", "zhangsan"),
            open_userid("wwb", "zhangsan")
        );
        assert!(open_userid("wwa", "x").len() <= 64);
    }
}
