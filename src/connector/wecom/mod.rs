//! The WeCom (企业微信) connector: one self-built WeCom app as an upstream behind [`Connector`],
//! built from `wecom-api.md` alone (it shares no code with the simulator, so a mismatch between
//! the two shows up in the end-to-end tests).
//!
//! A login sends the browser to WeCom's in-app OAuth link or to the PC login page
//! ([`login_url`]), then redeems the returned code with `auth/getuserinfo` and reads the member
//! with `user/get` ([`api`]), using the app's cached access_token ([`token_cache`]).

pub(crate) mod api;
mod backoff;
mod callback;
mod config;
mod doctor;
mod groups;
mod login_url;
mod members;
mod origins;
mod profile;
pub mod proxy;
mod settings;
mod status;
mod subjects;

#[cfg(test)]
mod fake;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use self::api::ApiClient;
pub(crate) use self::callback::{xml_field, CallbackCrypto, RecentMessages};
use self::groups::DirectoryCache;
use self::login_url::LinkParams;
use self::profile::{non_empty, MemberProfile};
use crate::clock::SharedClock;
use crate::connector::token_cache::{TokenCache, TokenSource};
use crate::connector::{
    Connector, ConnectorError, EventError, EventReply, FailureNotice, Handoff, Identity,
    LoginRequest, UpstreamEvent,
};
use crate::metrics::{Metrics, Upstream};

/// How WeCom is named in metric families (`wecom_oidc_wecom_api_calls_total`): every connector
/// that talks to WeCom's API, self-built or third-party, counts under it.
pub(crate) const METRICS_NAME: Upstream = Upstream::new("wecom");
use crate::storage::UpstreamStore;

pub use self::callback::{signature as callback_signature, CallbackSettings};
pub use self::config::demo_profile;
pub(crate) use self::config::CONNECTOR_TYPE;
pub use self::groups::GroupOptions;
pub use self::profile::{
    pairwise_subject, ClaimSource, EmailPolicy, PrivateInfo, ProfileMapping, SubjectMode,
};
pub use self::settings::{
    assign_home_corp, is_app_id, is_verify_file_name, subject_problems, WeComSettings,
};

/// WeCom's `access_token` is invalid (wecom-api.md §10): refresh and retry once.
const TOKEN_INVALID: i64 = 40014;
/// WeCom's `access_token` has expired (wecom-api.md §10): refresh and retry once.
const TOKEN_EXPIRED: i64 = 42001;
/// The OAuth code was reused, is older than 5 minutes or is not a code (wecom-api.md §4).
const CODE_INVALID: i64 = 40029;
/// The redirect domain is not a trusted domain of the app behind the token (wecom-api.md §2).
const DOMAIN_UNTRUSTED: i64 = 50001;
/// Rate limited (wecom-api.md §1 limits; §10).
const RATE_LIMITED: i64 = 45009;
/// The calling IP is not a trusted IP (企业可信IP) of the app (wecom-api.md §1).
const IP_UNTRUSTED: i64 = 60020;
/// Wrong or reset secret, or the app is disabled (wecom-api.md §1).
const BAD_SECRET: i64 = 40001;
/// Wrong CorpID (wecom-api.md §1).
const BAD_CORPID: i64 = 40013;
/// A secret of another corp (wecom-api.md §1).
const FOREIGN_SECRET: i64 = 40091;
/// Wrong AgentId (wecom-api.md §10).
const BAD_AGENTID: i64 = 40056;
/// The app is disabled (wecom-api.md §10).
const APP_DISABLED: i64 = 50003;
/// The member is outside the app's permission range (wecom-api.md §10).
const MEMBER_OUT_OF_RANGE: i64 = 50002;
/// The userid is not in the app's visible range (wecom-api.md §10).
const USER_NOT_VISIBLE: i64 = 60021;
/// The userid does not exist (wecom-api.md §6).
const USER_NOT_FOUND: i64 = 60111;
/// No permission for this member, department or tag (wecom-api.md §6, §12): for a member,
/// the most likely answer when they are outside the app's visible range.
const NO_PRIVILEGE: i64 = 60011;
/// Invalid department id (wecom-api.md §10).
const DEPARTMENT_INVALID: i64 = 60123;
/// The `user_ticket` has expired (wecom-api.md §5).
const TICKET_EXPIRED: i64 = 84014;
/// The `user_ticket` is invalid (wecom-api.md §5).
const TICKET_INVALID: i64 = 84015;
/// How long a passed data-API probe of [`WeComConnector::check_ready`] is trusted, so that
/// frequent `/readyz` probes cost WeCom one call a minute at most.
const DATA_PROBE_TTL_SECS: i64 = 60;
/// Prefix of a UserId's link once the member renamed away from it, followed by the random
/// suffix its next holder's `sub` gets ([`WeComConnector::subject_of`]). Chosen at the rename, so
/// concurrent first logins of that next holder all derive the same `sub`. Starts with a NUL,
/// which no UserId or `sub` contains, so it cannot be confused with a recorded `sub`.
const RETIRED_USERID: &str = "\u{0}retired:";
/// `user/get` `status` of an active member (wecom-api.md §6).
const STATUS_ACTIVE: i64 = 1;

/// The `code` of a login callback, for either WeCom type: without one the person refused
/// (wecom-api.md §3), and one longer than WeCom's 512 bytes (§2) is not worth a call.
pub(crate) fn callback_code(params: &HashMap<String, String>) -> Result<&str, ConnectorError> {
    const MAX_CODE_BYTES: usize = 512;
    match params.get("code").map(String::as_str) {
        None | Some("") => Err(ConnectorError::Cancelled),
        Some(code) if code.len() > MAX_CODE_BYTES => Err(ConnectorError::InvalidCode(format!(
            "the code is longer than WeCom's {MAX_CODE_BYTES} bytes"
        ))),
        Some(code) => Ok(code),
    }
}

/// One WeCom self-built app as a login upstream.
pub struct WeComConnector {
    settings: WeComSettings,
    api: ApiClient,
    tokens: Arc<TokenCache>,
    directory: Arc<DirectoryCache>,
    store: Arc<dyn UpstreamStore>,
    callback: Option<CallbackCrypto>,
    /// Callback messages handled lately (WeCom retries a delivery).
    recent_events: RecentMessages,
    clock: SharedClock,
    /// When a token-protected API last answered the readiness probe (unix seconds).
    data_probe_passed_at: std::sync::atomic::AtomicI64,
    /// When the last authentic callback message arrived (unix seconds; `i64::MIN`: none yet).
    last_event_at: std::sync::atomic::AtomicI64,
}

crate::secret::debug_showing!(WeComConnector: settings);

impl WeComConnector {
    /// A connector for `settings`, caching the app's access_token in `store`.
    ///
    /// Invalid settings fail with [`ConnectorError::Unavailable`] listing every problem at once.
    /// Trailing slashes on the base URLs are dropped. No call is made to WeCom here.
    pub fn new(
        settings: WeComSettings,
        store: Arc<dyn UpstreamStore>,
        clock: SharedClock,
    ) -> Result<Self, ConnectorError> {
        Self::with_metrics(settings, store, clock, Arc::new(Metrics::new()))
    }

    /// Like [`Self::new`], counting WeCom API calls and token cache hits into `metrics`.
    pub fn with_metrics(
        settings: WeComSettings,
        store: Arc<dyn UpstreamStore>,
        clock: SharedClock,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ConnectorError> {
        let problems = settings.problems();
        if !problems.is_empty() {
            return Err(ConnectorError::Unavailable(format!(
                "invalid WeCom settings: {}",
                problems.join("; ")
            )));
        }
        let mut settings = settings;
        for base in [
            &mut settings.api_base,
            &mut settings.oauth_base,
            &mut settings.sso_base,
        ] {
            let trimmed = base.trim_end_matches('/').len();
            base.truncate(trimmed);
        }
        let api = ApiClient::new(
            &settings.api_base,
            settings.timeout,
            settings.proxy.as_deref(),
        )?
        .with_metrics(metrics.clone());
        let tokens = Arc::new(
            TokenCache::new(
                Box::new(GetToken {
                    api: api.clone(),
                    corp_id: settings.corp_id.clone(),
                    secret: settings.secret.clone(),
                }),
                store.clone(),
                clock.clone(),
                format!("wecom:{}:{}", settings.corp_id, settings.agent_id),
            )
            .with_metrics(metrics, METRICS_NAME),
        );
        let directory =
            DirectoryCache::new(api.clone(), tokens.clone(), clock.clone(), settings.groups);
        let callback = match &settings.callback {
            Some(c) => Some(CallbackCrypto::new(c, &settings.corp_id).map_err(|e| {
                ConnectorError::Unavailable(format!("invalid WeCom callback settings: {e}"))
            })?),
            None => None,
        };
        Ok(Self {
            settings,
            api,
            tokens,
            directory,
            store,
            callback,
            recent_events: RecentMessages::default(),
            clock,
            data_probe_passed_at: std::sync::atomic::AtomicI64::new(i64::MIN),
            last_event_at: std::sync::atomic::AtomicI64::new(i64::MIN),
        })
    }

    /// The app's access_token: cached in memory and in the store, fetched with `gettoken` when
    /// missing or about to expire. For health checks; never show or log it.
    pub async fn access_token(&self) -> Result<String, ConnectorError> {
        self.tokens.get().await
    }

    /// Calls one token-protected, read-only API (`department/simplelist`) and returns how many
    /// departments the app's visible range shows (0 when it covers none: 60011). This is what
    /// catches an IP outside 企业可信IP: `gettoken` may work from it while every data API
    /// answers 60020 (wecom-api.md §1).
    pub async fn probe_data_api(&self) -> Result<usize, ConnectorError> {
        match self
            .with_token(|token| async move { self.api.list_departments_simple(&token).await })
            .await
        {
            Ok(list) => Ok(list.department_id.len()),
            Err(ConnectorError::Upstream {
                code: NO_PRIVILEGE, ..
            }) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Runs `call` with the cached token, replacing a rejected token once ([`with_token_in`]).
    async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, ConnectorError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, ConnectorError>>,
    {
        with_token_in(&self.tokens, call).await
    }

    /// The member's UserId for `code` and, after `snsapi_privateinfo`, the `user_ticket`
    /// (wecom-api.md §4).
    async fn redeem_code(&self, code: &str) -> Result<(String, Option<String>), ConnectorError> {
        let info = self
            .with_token(|token| async move { self.api.get_user_info(&token, code).await })
            .await
            .map_err(|e| match e {
                ConnectorError::Upstream {
                    code: CODE_INVALID,
                    message,
                } => ConnectorError::InvalidCode(message),
                other => other,
            })?;
        if let Some(userid) = non_empty(info.userid) {
            return Ok((userid, non_empty(info.user_ticket)));
        }
        if non_empty(info.openid).is_some() {
            // wecom-api.md §4: an `openid` is someone outside the corp; never an employee.
            return Err(ConnectorError::AccessDenied(
                "not a member of this WeCom corp".to_owned(),
            ));
        }
        Err(ConnectorError::Unavailable(
            "WeCom getuserinfo answered with neither userid nor openid".to_owned(),
        ))
    }

    /// `user/get` for `userid`, refusing members who may not log in: unknown, outside the
    /// app's visible range, or not active (wecom-api.md §6: 1 active, 2 disabled, 4 not
    /// activated, 5 left).
    async fn active_member(&self, userid: &str) -> Result<api::UserGetResponse, ConnectorError> {
        let user = self
            .with_token(|token| async move { self.api.get_user(&token, userid).await })
            .await
            .map_err(|e| {
                refuse_unreadable_member(e, "the WeCom member does not exist", |code| {
                    format!(
                        "WeCom answered {code} for this member: outside the visible range of app {}",
                        self.settings.agent_id
                    )
                })
            })?;
        // An absent status is accepted: getuserinfo has just vouched for the member.
        match user.status {
            None | Some(STATUS_ACTIVE) => Ok(user),
            Some(status) => Err(ConnectorError::AccessDenied(format!(
                "the WeCom member is {}",
                status_words(status)
            ))),
        }
    }

    /// The member's sensitive profile for `ticket` (wecom-api.md §5). A failure here never
    /// fails the login: the claims it would feed are simply absent.
    async fn user_detail(&self, ticket: &str) -> Option<api::UserDetailResponse> {
        match self
            .with_token(|token| async move { self.api.get_user_detail(&token, ticket).await })
            .await
        {
            Ok(d) => Some(d),
            // wecom-api.md §5: the ticket expired (84014) or is invalid (84015). Not a token
            // problem, nothing to retry: the login goes on with what user/get gave.
            Err(ConnectorError::Upstream {
                code: code @ (TICKET_EXPIRED | TICKET_INVALID),
                ..
            }) => {
                tracing::warn!(
                    errcode = code,
                    "WeCom refused the user_ticket (84014 expired / 84015 invalid); logging in without the private profile"
                );
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "WeCom getuserdetail failed; logging in without the private profile");
                None
            }
        }
    }

    /// The member as an [`Identity`]: profile from `user/get`, overlaid with `getuserdetail`
    /// when a ticket came with the code, and `groups` when asked for.
    async fn read_member(
        &self,
        userid: &str,
        ticket: Option<&str>,
        with_groups: bool,
    ) -> Result<Identity, ConnectorError> {
        if let Some((corp, _)) = linked_userid(userid) {
            return self.read_linked_member(userid, corp, with_groups).await;
        }
        let user = self.active_member(userid).await?;
        let mut profile = MemberProfile::from_user(userid, &user);
        if let Some(ticket) = ticket {
            if let Some(detail) = self.user_detail(ticket).await {
                profile.merge_detail(detail);
            }
        }
        let subject = self.subject_of(userid).await?;
        let mut identity = profile.to_identity(&self.settings.profile, subject);
        if with_groups {
            identity.groups = self.directory.groups(userid, &user.department).await;
        }
        identity.connector_id.clone_from(&self.settings.id);
        Ok(identity)
    }

    /// A member of a linked corp (互联企业 / 上下游), whose UserId arrives as `CorpId/userid`
    /// (wecom-api.md §4, §12). `user/get` cannot read them; `linkedcorp/user/get` can, when the
    /// app has the linked-corp directory permission. Its departments are `LINKEDID/DEPTID`
    /// strings and go into `groups` as they are (their names would need an unconfirmed API).
    /// No status is documented for linked members: a member the call cannot find (60111) or
    /// may not read (60011 …) is refused.
    async fn read_linked_member(
        &self,
        userid: &str,
        corp: &str,
        with_groups: bool,
    ) -> Result<Identity, ConnectorError> {
        let answer = self
            .with_token(|token| async move { self.api.get_linked_user(&token, userid).await })
            .await
            .map_err(|e| {
                refuse_unreadable_member(
                    e,
                    "the linked-corp member does not exist (any more)",
                    |code| {
                        format!(
                            "WeCom answered {code} for a linked-corp member: app {} may not read linked corp {corp}",
                            self.settings.agent_id
                        )
                    },
                )
            })?;
        let Some(info) = answer.user_info else {
            return Err(ConnectorError::Unavailable(
                "WeCom linkedcorp/user/get answered without user_info".to_owned(),
            ));
        };
        // The answer must be about the person the code named (corpid, when given, agrees).
        if info
            .corpid
            .as_deref()
            .is_some_and(|c| !c.is_empty() && !c.eq_ignore_ascii_case(corp))
        {
            return Err(ConnectorError::Unavailable(
                "WeCom linkedcorp/user/get answered about another corp".to_owned(),
            ));
        }
        let mut profile = MemberProfile {
            userid: userid.to_owned(),
            name: non_empty(info.name),
            position: non_empty(info.position),
            ..MemberProfile::default()
        };
        profile.merge_detail(api::UserDetailResponse {
            email: info.email,
            mobile: info.mobile,
            ..Default::default()
        });
        // An e-mail template names addresses of our corp's domain, not of a linked corp's.
        let mut mapping = self.settings.profile.clone();
        mapping.email = EmailPolicy::Upstream;
        let subject = self.subject_of(userid).await?;
        let mut identity = profile.to_identity(&mapping, subject);
        if with_groups
            && (self.settings.groups.names
                || self.settings.groups.paths
                || self.settings.groups.ids)
        {
            identity.groups = info
                .department
                .into_iter()
                .filter(|d| !d.is_empty())
                .collect();
        }
        identity.connector_id.clone_from(&self.settings.id);
        Ok(identity)
    }
}

/// What a failed read of one member means for the login: a member WeCom does not know
/// (60111) is refused with `gone`; one the app may not read is not
/// permitted (60011, 60021, 50002), `out_of_range` saying why from the errcode; any other
/// failure stays as it came.
fn refuse_unreadable_member(
    e: ConnectorError,
    gone: &str,
    out_of_range: impl FnOnce(i64) -> String,
) -> ConnectorError {
    match e {
        ConnectorError::Upstream {
            code: USER_NOT_FOUND,
            ..
        } => ConnectorError::AccessDenied(gone.to_owned()),
        ConnectorError::Upstream {
            code: code @ (NO_PRIVILEGE | USER_NOT_VISIBLE | MEMBER_OUT_OF_RANGE),
            ..
        } => ConnectorError::NotPermitted(out_of_range(code)),
        other => other,
    }
}

/// A `user/get` `status` other than active, in words (wecom-api.md §6).
fn status_words(status: i64) -> String {
    match status {
        2 => "disabled".to_owned(),
        4 => "not activated".to_owned(),
        5 => "no longer in the corp".to_owned(),
        other => format!("not active (status {other})"),
    }
}

/// WeCom's `gettoken` (wecom-api.md §1) as the token cache's source: one token per app.
struct GetToken {
    api: ApiClient,
    corp_id: String,
    secret: String,
}

/// WeCom's documented maximum length of an access_token (wecom-api.md §1).
const MAX_TOKEN_BYTES: usize = 512;

#[async_trait]
impl TokenSource for GetToken {
    async fn fetch(&self) -> Result<(String, i64), ConnectorError> {
        let response = self.api.get_token(&self.corp_id, &self.secret).await?;
        let token = response
            .access_token
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_BYTES)
            .ok_or_else(|| {
                ConnectorError::Unavailable("WeCom gettoken answered without a usable token".into())
            })?;
        let lifetime = response.expires_in.filter(|s| *s > 0).ok_or_else(|| {
            ConnectorError::Unavailable("WeCom gettoken answered without expires_in".into())
        })?;
        Ok((token, lifetime))
    }
}

/// The corp and the bare UserId of a linked-corp member's `CorpId/userid` (wecom-api.md §4);
/// `None` for an ordinary UserId (which never contains `/`).
fn linked_userid(userid: &str) -> Option<(&str, &str)> {
    userid
        .split_once('/')
        .filter(|(corp, bare)| !corp.is_empty() && !bare.is_empty())
}

/// Runs `call` with the cached token; when WeCom says the token is invalid or expired
/// (40014 / 42001, wecom-api.md §1: WeCom may revoke a token early), replaces it and retries
/// exactly once.
pub(crate) async fn with_token_in<T, F, Fut>(
    tokens: &TokenCache,
    call: F,
) -> Result<T, ConnectorError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, ConnectorError>>,
{
    tokens
        .call_with(&[TOKEN_INVALID, TOKEN_EXPIRED], call)
        .await
}

#[async_trait]
impl Connector for WeComConnector {
    fn id(&self) -> &str {
        &self.settings.id
    }

    /// The CorpID: a UserId names one person within one corp (wecom-api.md §12).
    fn realm(&self) -> &str {
        &self.settings.corp_id
    }

    /// The in-app OAuth link inside WeCom's browser, the PC login page elsewhere
    /// (wecom-api.md §9). WeCom has no parameter for `login_hint`, so it is not passed on.
    ///
    /// `snsapi_privateinfo` is asked for per [`PrivateInfo`]. It exists only on the in-app link:
    /// WeCom's PC login yields a UserId and never a `user_ticket` (wecom-api.md §4), so a PC
    /// login gets what `user/get` gives, and the private claims are absent rather than the
    /// login failing.
    fn login_url(&self, req: &LoginRequest<'_>) -> Result<String, ConnectorError> {
        let params = LinkParams {
            corp_id: &self.settings.corp_id,
            agent_id: self.settings.agent_id,
            redirect_uri: req.callback_url,
            state: req.state,
            private_info: self.settings.privateinfo.wanted(req.scopes),
        };
        if login_url::is_wecom_browser(req.user_agent) {
            login_url::in_app_url(&self.settings.oauth_base, &params)
        } else {
            let lang = login_url::page_lang(req.ui_locales);
            login_url::pc_url(&self.settings.sso_base, &params, lang)
        }
    }

    /// Inside WeCom the OAuth link signs the person in without a page (wecom-api.md §9).
    fn signs_in_silently(&self, user_agent: Option<&str>) -> bool {
        login_url::is_wecom_browser(user_agent)
    }

    /// A phone's ordinary browser (or WeChat's) can use neither link (wecom-api.md §9): it gets
    /// a hand-off whose fallback is the PC login page of this login.
    fn handoff(&self, req: &LoginRequest<'_>) -> Result<Option<Handoff>, ConnectorError> {
        if !login_url::is_phone_outside_wecom(req.user_agent) {
            return Ok(None);
        }
        let pc = self.login_url(&LoginRequest {
            user_agent: None,
            ..req.clone()
        })?;
        Ok(Some(login_url::phone_handoff(pc)))
    }

    /// Ready when the app has an access_token (cached, or handed out by `gettoken`) **and** a
    /// token-protected API answers with it: `gettoken` can succeed from an IP outside 企业可信IP
    /// while every data API answers 60020 (wecom-api.md §1), and then every login fails. The
    /// probe is `department/simplelist` (cheap, read-only); a pass is trusted for a minute so
    /// frequent `/readyz` probes cost WeCom at most one call a minute. A visible range without
    /// departments answers 60011 there: the API answered, so that counts as reachable.
    async fn check_ready(&self) -> Result<(), ConnectorError> {
        use std::sync::atomic::Ordering;
        self.access_token().await?;
        let now = self.clock.now();
        let passed = self.data_probe_passed_at.load(Ordering::Relaxed);
        if now.saturating_sub(passed) < DATA_PROBE_TTL_SECS && passed <= now {
            return Ok(());
        }
        self.probe_data_api().await?;
        self.data_probe_passed_at.store(now, Ordering::Relaxed);
        Ok(())
    }

    /// Redeems the callback's `code`. A callback without one is a refusal (wecom-api.md §3).
    /// The directory is read for `groups` only when the client asked for that scope.
    async fn handle_callback(
        &self,
        params: &HashMap<String, String>,
        scopes: &[String],
    ) -> Result<Identity, ConnectorError> {
        let (userid, ticket) = self.redeem_code(callback_code(params)?).await?;
        let with_groups = scopes.iter().any(|s| s == "groups");
        self.read_member(&userid, ticket.as_deref(), with_groups)
            .await
    }

    fn is_pairwise(&self) -> bool {
        self.settings.subject == SubjectMode::Pairwise
    }

    /// OIDC Core §8.1, over the local id (the lower-cased first UserId, which follows renames).
    fn pairwise_subject(&self, identity: &Identity, sector: &str) -> Option<String> {
        let salt = self.settings.pairwise_salt.as_deref()?;
        self.is_pairwise()
            .then(|| pairwise_subject(sector, &identity.user_id, salt))
    }

    /// Configuration faults and rate limiting become a clear page for the person and a log
    /// line telling the operator what to change in the WeCom admin console (wecom-api.md §1,
    /// §2, §10). The person cannot fix these, and the client could only show `server_error`.
    fn failure_notice(&self, error: &ConnectorError) -> Option<FailureNotice> {
        let s = &self.settings;
        if let ConnectorError::NotPermitted(why) = error {
            return Some(FailureNotice {
                zh: "您的企业微信账号不在此应用的可见范围内，因此不能用它登录。请联系企业微信管理员：在管理后台「应用管理」中打开此应用，在「可见范围」中加入您本人、您所在的部门或标签。".to_owned(),
                en: "Your WeCom account is not in this app's visible range, so it cannot sign in here. Ask your WeCom administrator to add you, your department or a tag of yours to the app's visible range (admin console → 应用管理 (Apps) → the app → 可见范围 (Visible range)).".to_owned(),
                operator: format!(
                    "{why}. To let this person in: WeCom admin console → 应用管理 → app {} → \
                     可见范围 (visible range): add the member, one of their departments or a tag. \
                     Linked-corp members also need the app's 互联企业/上下游 directory permission.",
                    s.agent_id
                ),
                temporary: false,
            });
        }
        let ConnectorError::Upstream { code, .. } = error else {
            return None;
        };
        let admin_zh = "这是登录服务的配置问题，与您的账号无关。请联系管理员；管理员可在日志中按请求编号找到修复方法。";
        let admin_en = "This is a configuration problem of the sign-in service, not of your account. Please tell your administrator; the log says how to fix it.";
        let (zh, en, operator, temporary) = match *code {
            RATE_LIMITED => (
                "企业微信暂时限制了本服务的调用频率，请一分钟后再试。".to_owned(),
                "WeCom is rate-limiting this sign-in service for a moment. Please try again in a minute.".to_owned(),
                format!(
                    "WeCom answered 45009 (api freq out of limit) for corp {} app {}: calls are                      blocked for 60 s (minute limit) or 60 min (hour limit); repeated wrong                      secrets also ban the IP from gettoken for an hour. Check for other                      services calling gettoken with this app's secret.",
                    s.corp_id, s.agent_id
                ),
                true,
            ),
            IP_UNTRUSTED => (
                admin_zh.to_owned(),
                admin_en.to_owned(),
                format!(
                    "WeCom answered 60020 (not allow to access from your ip): in the WeCom admin                      console, app {} → 企业可信IP (trusted IPs), add this server's public egress                      IP (WeCom's errmsg names it after \"from ip:\").",
                    s.agent_id
                ),
                false,
            ),
            DOMAIN_UNTRUSTED => (
                admin_zh.to_owned(),
                admin_en.to_owned(),
                format!(
                    "WeCom answered 50001 (redirect_uri unauthorized): in the WeCom admin console,                      app {} → 网页授权及JS-SDK → 可信域名 (trusted domain), and 企业微信授权登录 for                      PC logins, must be exactly this issuer's host, port included; the code must                      come from the same app whose secret is configured.",
                    s.agent_id
                ),
                false,
            ),
            BAD_SECRET | FOREIGN_SECRET => (
                admin_zh.to_owned(),
                admin_en.to_owned(),
                format!(
                    "WeCom answered {code} (invalid secret): wecom.secret must be the Secret of                      app {} in corp {} (admin console → 应用管理 → the app → Secret); it was                      reset, belongs to another app or corp, or the app is disabled.",
                    s.agent_id, s.corp_id
                ),
                false,
            ),
            BAD_CORPID => (
                admin_zh.to_owned(),
                admin_en.to_owned(),
                format!(
                    "WeCom answered 40013 (invalid corpid): wecom.corp_id {:?} is not a CorpID                      (admin console → 我的企业 → 企业ID).",
                    s.corp_id
                ),
                false,
            ),
            BAD_AGENTID | APP_DISABLED => (
                admin_zh.to_owned(),
                admin_en.to_owned(),
                format!(
                    "WeCom answered {code}: wecom.agent_id {} is not an enabled app of corp {}                      (admin console → 应用管理 → the app → AgentId; enable the app).",
                    s.agent_id, s.corp_id
                ),
                false,
            ),
            _ => return None,
        };
        Some(FailureNotice {
            zh,
            en,
            operator,
            temporary,
        })
    }

    /// WeCom's callback URL (wecom-api.md §11): `GET` is the URL verification (answer the
    /// decrypted `echostr`), `POST` a message. Events about a member are acted on
    /// ([`Self::on_member_event`]: renames recorded, members gone reported); others are
    /// acknowledged and ignored. All of it is a few store writes and at most one `user/get`,
    /// done before answering within WeCom's 5 s so a failure is retried by WeCom.
    async fn handle_event(&self, event: &UpstreamEvent<'_>) -> Result<EventReply, EventError> {
        let crypto = self.callback.as_ref().ok_or(EventError::NotSupported)?;
        let q = |k: &str| event.query.get(k).map(String::as_str).unwrap_or_default();
        let reject = |e: callback::CallbackError| {
            tracing::warn!(error = %e, "WeCom callback refused");
            EventError::Rejected(e.to_string())
        };
        if !event.is_post {
            return crypto
                .open(q("msg_signature"), q("timestamp"), q("nonce"), q("echostr"))
                .map(EventReply::body)
                .map_err(reject);
        }
        let body =
            std::str::from_utf8(event.body).map_err(|_| reject(callback::CallbackError::Xml))?;
        let encrypted = callback::xml_field(body, "Encrypt")
            .ok_or_else(|| reject(callback::CallbackError::Xml))?;
        let message = crypto
            .open(q("msg_signature"), q("timestamp"), q("nonce"), &encrypted)
            .map_err(reject)?;
        self.last_event_at
            .store(self.clock.now(), std::sync::atomic::Ordering::Relaxed);
        let digest = crate::random::hash_secret(&encrypted);
        if !self.recent_events.insert(&digest) {
            return Ok(EventReply::default());
        }
        match self
            .on_member_event(callback::contact_event(&message))
            .await
        {
            Ok(departures) => {
                if !departures.is_empty() {
                    // The core signs these people out after this returns; if that fails, the
                    // event fails and WeCom's retry must not be taken for a duplicate. A
                    // sign-out done twice changes nothing the second time.
                    self.recent_events.forget(&digest);
                }
                Ok(EventReply {
                    body: String::new(),
                    departures,
                })
            }
            Err(e) => {
                // Forget the message so WeCom's retry gets another chance.
                self.recent_events.forget(&digest);
                tracing::error!(error = %e, "cannot act on a WeCom callback");
                Err(EventError::Rejected(e.to_string()))
            }
        }
    }

    /// The UserId's `sub`: the member's own after a rename ([`Self::subject_of`]).
    async fn local_user_id(&self, upstream_id: &str) -> Result<String, ConnectorError> {
        self.subject_of(upstream_id).await
    }

    async fn status(&self) -> Vec<crate::connector::StatusLine> {
        status::lines(
            &self.tokens,
            &self.directory,
            self.callback.is_some(),
            self.last_event_at
                .load(std::sync::atomic::Ordering::Relaxed),
            self.clock.now(),
        )
        .await
    }

    /// Re-reads the member (following a recorded rename): a member who left, was disabled or
    /// is no longer visible to the app is refused (`AccessDenied`). What only `getuserdetail`
    /// gave at login (there is no ticket now) is kept from `identity`.
    async fn refresh(&self, identity: &Identity) -> Result<Identity, ConnectorError> {
        let userid = self.current_userid(identity).await?;
        let with_groups = !identity.groups.is_empty();
        let mut fresh = self.read_member(&userid, None, with_groups).await?;
        // `sub` never changes within a grant (it may be pairwise, computed by the provider).
        fresh.upstream_id = Some(userid);
        fresh.user_id.clone_from(&identity.user_id);
        let keep = |new: &mut Option<String>, old: &Option<String>| {
            if new.is_none() {
                new.clone_from(old);
            }
        };
        keep(&mut fresh.picture, &identity.picture);
        keep(&mut fresh.gender, &identity.gender);
        keep(&mut fresh.phone_number, &identity.phone_number);
        keep(&mut fresh.address, &identity.address);
        if fresh.email.is_none() {
            fresh.email.clone_from(&identity.email);
            fresh.email_verified = identity.email_verified;
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests;
