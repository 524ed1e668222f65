//! The WeCom (企业微信) connector: one self-built WeCom app as an upstream behind [`Connector`],
//! built from `wecom-api.md` alone (it shares no code with the simulator, so a mismatch between
//! the two shows up in the end-to-end tests).
//!
//! A login sends the browser to WeCom's in-app OAuth link or to the PC login page
//! ([`login_url`]), then redeems the returned code with `auth/getuserinfo` and reads the member
//! with `user/get` ([`api`]), using the app's cached access_token ([`token_cache`]).

mod api;
mod login_url;
mod token_cache;

#[cfg(test)]
mod fake;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use self::api::ApiClient;
use self::login_url::LinkParams;
use self::token_cache::TokenCache;
use crate::clock::SharedClock;
use crate::connector::{Connector, ConnectorError, Identity, LoginRequest};
use crate::metrics::Metrics;
use crate::storage::Store;

/// WeCom's `access_token` is invalid (wecom-api.md §10): refresh and retry once.
const TOKEN_INVALID: i64 = 40014;
/// WeCom's `access_token` has expired (wecom-api.md §10): refresh and retry once.
const TOKEN_EXPIRED: i64 = 42001;
/// The OAuth code was reused, is older than 5 minutes or is not a code (wecom-api.md §4).
const CODE_INVALID: i64 = 40029;
/// The redirect domain is not a trusted domain of the app behind the token (wecom-api.md §2).
const DOMAIN_UNTRUSTED: i64 = 50001;
/// The member is outside the app's permission range (wecom-api.md §10).
const MEMBER_OUT_OF_RANGE: i64 = 50002;
/// The userid is not in the app's visible range (wecom-api.md §10).
const USER_NOT_VISIBLE: i64 = 60021;
/// The userid does not exist (wecom-api.md §6).
const USER_NOT_FOUND: i64 = 60111;
/// WeCom codes are at most 512 bytes (wecom-api.md §2); anything longer is not worth a call.
const MAX_CODE_BYTES: usize = 512;
/// `user/get` `status` of an active member (wecom-api.md §6).
const STATUS_ACTIVE: i64 = 1;

/// Settings of the WeCom connector: which corp and app, and where WeCom is.
#[derive(Clone)]
pub struct WeComSettings {
    /// The CorpID (企业ID), e.g. `ww1436e0e65a779aee`.
    pub corp_id: String,
    /// The AgentId of the self-built app that logs people in.
    pub agent_id: i64,
    /// The app's Secret. Redacted in `Debug`.
    pub secret: String,
    /// Base of the server API, without a trailing slash ([`Self::DEFAULT_API_BASE`]).
    pub api_base: String,
    /// Base of the in-app OAuth link ([`Self::DEFAULT_OAUTH_BASE`]).
    pub oauth_base: String,
    /// Base of the PC login page ([`Self::DEFAULT_SSO_BASE`]).
    pub sso_base: String,
    /// Limit on each HTTP call to WeCom, connecting included.
    pub timeout: Duration,
}

impl WeComSettings {
    /// WeCom's server API host (wecom-api.md "Conventions").
    pub const DEFAULT_API_BASE: &str = "https://qyapi.weixin.qq.com";
    /// Host of the OAuth link opened inside the WeCom app (wecom-api.md §2).
    pub const DEFAULT_OAUTH_BASE: &str = "https://open.weixin.qq.com";
    /// Host of the PC / external-browser login page (wecom-api.md §3).
    pub const DEFAULT_SSO_BASE: &str = "https://login.work.weixin.qq.com";
    /// Default limit on each HTTP call.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Settings for WeCom's real hosts with the default timeout.
    pub fn new(corp_id: impl Into<String>, agent_id: i64, secret: impl Into<String>) -> Self {
        Self {
            corp_id: corp_id.into(),
            agent_id,
            secret: secret.into(),
            api_base: Self::DEFAULT_API_BASE.to_owned(),
            oauth_base: Self::DEFAULT_OAUTH_BASE.to_owned(),
            sso_base: Self::DEFAULT_SSO_BASE.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Every problem with these settings, empty when they are usable.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.corp_id.trim().is_empty() {
            problems.push("corp_id is empty".to_owned());
        } else if !self.corp_id.bytes().all(|b| b.is_ascii_graphic()) {
            problems.push("corp_id contains spaces or non-ASCII characters".to_owned());
        }
        if self.agent_id <= 0 {
            problems.push(format!("agent_id {} is not a WeCom AgentId", self.agent_id));
        }
        if self.secret.trim().is_empty() {
            problems.push("secret is empty".to_owned());
        }
        for (name, value) in [
            ("api_base", &self.api_base),
            ("oauth_base", &self.oauth_base),
            ("sso_base", &self.sso_base),
        ] {
            if let Some(problem) = base_url_problem(value) {
                problems.push(format!("{name} {value:?} {problem}"));
            }
        }
        if self.timeout.is_zero() {
            problems.push("timeout is zero".to_owned());
        }
        problems
    }
}

/// Why `value` cannot serve as a base URL, if it cannot.
fn base_url_problem(value: &str) -> Option<&'static str> {
    match url::Url::parse(value) {
        Err(_) => Some("is not a URL"),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Some("is not an http(s) URL"),
        Ok(u) if u.host_str().is_none() => Some("has no host"),
        Ok(u) if u.query().is_some() || u.fragment().is_some() => {
            Some("must not have a query or a fragment")
        }
        Ok(_) => None,
    }
}

impl std::fmt::Debug for WeComSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeComSettings")
            .field("corp_id", &self.corp_id)
            .field("agent_id", &self.agent_id)
            .field("secret", &"[redacted]")
            .field("api_base", &self.api_base)
            .field("oauth_base", &self.oauth_base)
            .field("sso_base", &self.sso_base)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// One WeCom self-built app as a login upstream.
#[derive(Debug)]
pub struct WeComConnector {
    settings: WeComSettings,
    api: ApiClient,
    tokens: TokenCache,
}

impl WeComConnector {
    /// A connector for `settings`, caching the app's access_token in `store`.
    ///
    /// Invalid settings fail with [`ConnectorError::Unavailable`] listing every problem at once.
    /// Trailing slashes on the base URLs are dropped. No call is made to WeCom here.
    pub fn new(
        settings: WeComSettings,
        store: Arc<dyn Store>,
        clock: SharedClock,
    ) -> Result<Self, ConnectorError> {
        Self::with_metrics(settings, store, clock, Arc::new(Metrics::new()))
    }

    /// Like [`Self::new`], counting WeCom API calls and token cache hits into `metrics`.
    pub fn with_metrics(
        settings: WeComSettings,
        store: Arc<dyn Store>,
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
        let api =
            ApiClient::new(&settings.api_base, settings.timeout)?.with_metrics(metrics.clone());
        let tokens = TokenCache::new(
            api.clone(),
            store,
            clock,
            &settings.corp_id,
            settings.agent_id,
            &settings.secret,
        )
        .with_metrics(metrics);
        Ok(Self {
            settings,
            api,
            tokens,
        })
    }

    /// The app's access_token: cached in memory and in the store, fetched with `gettoken` when
    /// missing or about to expire. For health checks; never show or log it.
    pub async fn access_token(&self) -> Result<String, ConnectorError> {
        self.tokens.get().await
    }

    /// Runs `call` with the cached token; when WeCom says the token is invalid or expired
    /// (40014 / 42001, wecom-api.md §1: WeCom may revoke a token early), replaces it and
    /// retries exactly once.
    async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, ConnectorError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, ConnectorError>>,
    {
        let token = self.tokens.get().await?;
        match call(token.clone()).await {
            Err(ConnectorError::Upstream {
                code: TOKEN_INVALID | TOKEN_EXPIRED,
                ..
            }) => {
                let fresh = self.tokens.replace(&token).await?;
                call(fresh).await
            }
            other => other,
        }
    }

    /// The member's UserId for `code` (wecom-api.md §4).
    async fn redeem_code(&self, code: &str) -> Result<String, ConnectorError> {
        let info = self
            .with_token(|token| async move { self.api.get_user_info(&token, code).await })
            .await
            .map_err(|e| match e {
                ConnectorError::Upstream {
                    code: CODE_INVALID,
                    message,
                } => ConnectorError::InvalidCode(message),
                ConnectorError::Upstream {
                    code: DOMAIN_UNTRUSTED,
                    message,
                } => ConnectorError::Upstream {
                    code: DOMAIN_UNTRUSTED,
                    message: format!(
                        "the callback domain is not a trusted domain (可信域名) of this app: \
                         {message}"
                    ),
                },
                other => other,
            })?;
        if let Some(userid) = non_empty(info.userid) {
            return Ok(userid);
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

    /// The member's profile as an [`Identity`], refusing members who may not log in.
    async fn read_member(&self, userid: String) -> Result<Identity, ConnectorError> {
        let uid = userid.as_str();
        let user = self
            .with_token(|token| async move { self.api.get_user(&token, uid).await })
            .await
            .map_err(|e| match e {
                ConnectorError::Upstream {
                    code: USER_NOT_FOUND,
                    ..
                } => ConnectorError::AccessDenied("the WeCom member does not exist".to_owned()),
                ConnectorError::Upstream {
                    code: USER_NOT_VISIBLE | MEMBER_OUT_OF_RANGE,
                    ..
                } => ConnectorError::AccessDenied(
                    "the WeCom member is outside this app's visible range".to_owned(),
                ),
                other => other,
            })?;
        // wecom-api.md §6: 1 active, 2 disabled, 4 not activated, 5 left. An absent status is
        // accepted: getuserinfo has just vouched for the member.
        match user.status {
            None | Some(STATUS_ACTIVE) => {}
            Some(status) => {
                let why = match status {
                    2 => "disabled".to_owned(),
                    4 => "not activated".to_owned(),
                    5 => "no longer in the corp".to_owned(),
                    other => format!("not active (status {other})"),
                };
                return Err(ConnectorError::AccessDenied(format!(
                    "the WeCom member is {why}"
                )));
            }
        }
        Ok(Identity {
            username: userid.clone(),
            user_id: userid,
            name: non_empty(user.name),
            email: non_empty(user.email).or_else(|| non_empty(user.biz_mail)),
            // Nothing in user/get says WeCom verified the address.
            email_verified: false,
            groups: Vec::new(),
        })
    }
}

/// `None` for absent, empty or blank strings: WeCom may send removed fields as `""`
/// (wecom-api.md §6, 2022 privacy change).
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[async_trait]
impl Connector for WeComConnector {
    fn id(&self) -> &str {
        "wecom"
    }

    /// The in-app OAuth link inside WeCom's browser, the PC login page elsewhere
    /// (wecom-api.md §9). WeCom has no parameter for `login_hint`, so it is not passed on.
    fn login_url(&self, req: &LoginRequest<'_>) -> Result<String, ConnectorError> {
        let params = LinkParams {
            corp_id: &self.settings.corp_id,
            agent_id: self.settings.agent_id,
            redirect_uri: req.callback_url,
            state: req.state,
        };
        if login_url::is_wecom_browser(req.user_agent) {
            login_url::in_app_url(&self.settings.oauth_base, &params)
        } else {
            let lang = login_url::page_lang(req.ui_locales);
            login_url::pc_url(&self.settings.sso_base, &params, lang)
        }
    }

    /// Ready when the app's access_token is cached or `gettoken` hands out a new one: a cached
    /// token costs no WeCom call, so `/readyz` probes do not eat into the rate limit (§1).
    async fn check_ready(&self) -> Result<(), ConnectorError> {
        self.access_token().await.map(|_| ())
    }

    /// Redeems the callback's `code`. A callback without one is a refusal (wecom-api.md §3).
    /// `scopes` do not change what is asked of WeCom: the link uses `snsapi_base`, and the
    /// profile comes from `user/get`.
    async fn handle_callback(
        &self,
        params: &HashMap<String, String>,
        _scopes: &[String],
    ) -> Result<Identity, ConnectorError> {
        let code = match params.get("code").map(String::as_str) {
            None | Some("") => return Err(ConnectorError::Cancelled),
            Some(code) => code,
        };
        if code.len() > MAX_CODE_BYTES {
            return Err(ConnectorError::InvalidCode(format!(
                "the code is longer than WeCom's {MAX_CODE_BYTES} bytes"
            )));
        }
        let userid = self.redeem_code(code).await?;
        self.read_member(userid).await
    }
}

#[cfg(test)]
mod tests;
