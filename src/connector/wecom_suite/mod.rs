//! The `wecom-suite` connector: a WeCom third-party app (第三方应用, a "suite") that many customer
//! corps install, as one login upstream (wecom-api.md §8, §11, §12).
//!
//! WeCom pushes the `suite_ticket` and install events to the command callback
//! (`/callback/{id}/events`, [`Connector::handle_event`]); the latest ticket and each corp's
//! `permanent_code` are kept in the store, sealed ([`vault`]). The `suite_access_token` and each
//! corp's access token go through the shared [`TokenCache`] (one fetch per lifetime, cluster
//! wide). A login sends the browser to the in-app link (`appid` = SuiteID) or the web login
//! (`login_type=ServiceApp`), redeems the code with `getuserinfo3rd`, and reads the member with
//! the corp's token (`user/get`), which refuses people outside the app's visible range.
//!
//! With `kind = "customised"` the same connector serves a 代开发 app built from the suite (the
//! 代开发 template) for one customer corp: the template's ticket and the corp's permanent code
//! give the corp token, and people log in as to that corp's self-built app (`CorpApp` link,
//! `auth/getuserinfo`, §12 "App kinds").
//!
//! Everything outside this folder that names the type is its line in the registry.

mod api;
mod config;
mod doctor;
mod groups;
mod notice;
mod secrets;
mod vault;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use self::api::{SuiteApi, DEPARTMENT_GET, GETTOKEN, USER_GET, USER_INFO, USER_INFO_3RD};
use self::groups::NameCache;
use self::secrets::{Keys, Secrets};
use self::vault::Vault;
use crate::clock::SharedClock;
use crate::connector::registry::OpenDeps;
use crate::connector::token_cache::{TokenCache, TokenSource};
use crate::connector::wecom::{callback_code, xml_field, CallbackCrypto, RecentMessages};
use crate::connector::{
    Connector, ConnectorError, EventError, EventReply, FailureNotice, Identity, LoginRequest,
    UpstreamEvent,
};
use crate::metrics::Metrics;
use crate::storage::UpstreamStore;

pub(crate) use self::config::CONNECTOR_TYPE;
pub use self::config::{AppKind, CorpTokenApi, SuiteSettings, SuiteSubject};

/// The OAuth code was reused, is older than 5 minutes or is not a code (§4).
const CODE_INVALID: i64 = 40029;
/// Invalid / expired `suite_access_token` (§10): replace it and retry once.
const SUITE_TOKEN_INVALID: i64 = 40082;
const SUITE_TOKEN_EXPIRED: i64 = 42009;
/// Invalid / expired corp `access_token` (§1): replace it and retry once.
const TOKEN_INVALID: i64 = 40014;
const TOKEN_EXPIRED: i64 = 42001;
/// A member outside the app's visible range (§6, §12).
const OUT_OF_RANGE: [i64; 3] = [60011, 60021, 50002];
/// An invalid department id (§10).
const DEPARTMENT_INVALID: i64 = 60123;
/// The userid does not exist (§6).
const USER_NOT_FOUND: i64 = 60111;
/// `user/get` `status` of an active member (§6).
const STATUS_ACTIVE: i64 = 1;
/// The claim naming the person's corp (with the `profile` scope).
const CORP_ID_CLAIM: &str = "corp_id";

/// Why a person was refused (the start of a `NotPermitted` message, read back by
/// [`notice::for_error`] to say the right thing).
const NOT_ALLOWED: &str = "not among this connector's allowed_corps";
const NOT_INSTALLED: &str = "has not installed this WeCom app";
const OUT_OF_RANGE_WHY: &str = "outside the app's visible range";

fn unavailable(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Unavailable(e.to_string())
}

/// What a suite says before its first ticket arrived (for logs, `check` and the error page).
pub(crate) const NO_TICKET: &str = "no suite_ticket received yet: WeCom pushes one to the command \
     callback URL (指令回调URL, /callback/{id}/events) every 10 minutes once the URL is verified";

/// `get_suite_token` with the latest stored ticket.
struct SuiteTokenSource {
    api: SuiteApi,
    secrets: Secrets,
    suite_id: String,
    suite_secret: String,
}

#[async_trait]
impl TokenSource for SuiteTokenSource {
    async fn fetch(&self) -> Result<(String, i64), ConnectorError> {
        let ticket = self
            .secrets
            .ticket()
            .await?
            .ok_or_else(|| ConnectorError::Unavailable(NO_TICKET.to_owned()))?;
        let t = self
            .api
            .suite_token(&self.suite_id, &self.suite_secret, &ticket)
            .await?;
        Ok((t.access_token, t.expires_in))
    }
}

/// `get_corp_token` with the corp's permanent code.
struct CorpTokenSource {
    api: SuiteApi,
    secrets: Secrets,
    suite_tokens: Arc<TokenCache>,
    corp: String,
    via: CorpTokenApi,
}

#[async_trait]
impl TokenSource for CorpTokenSource {
    async fn fetch(&self) -> Result<(String, i64), ConnectorError> {
        let (_, permanent_code) =
            self.secrets
                .installation(&self.corp)
                .await?
                .ok_or_else(|| {
                    ConnectorError::NotPermitted(format!("corp {} {NOT_INSTALLED}", self.corp))
                })?;
        let (api, corp, code) = (&self.api, self.corp.as_str(), permanent_code.as_str());
        let t = match self.via {
            CorpTokenApi::GetCorpToken => {
                with_suite_token(&self.suite_tokens, |token| async move {
                    api.corp_token(&token, corp, code).await
                })
                .await?
            }
            CorpTokenApi::Gettoken => api.get(GETTOKEN, [corp, code]).await?,
        };
        Ok((t.access_token, t.expires_in))
    }
}

/// Runs `call` with the suite token, replacing it once when WeCom rejects it (§8: 42009).
async fn with_suite_token<T, F, Fut>(cache: &TokenCache, call: F) -> Result<T, ConnectorError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, ConnectorError>>,
{
    cache
        .call_with(&[SUITE_TOKEN_INVALID, SUITE_TOKEN_EXPIRED], call)
        .await
}

/// Runs `call` with a corp's token from `cache`, replacing it once when WeCom rejects it
/// (§1: 40014, 42001).
async fn with_corp_token<T, F, Fut>(cache: &TokenCache, call: F) -> Result<T, ConnectorError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, ConnectorError>>,
{
    cache.call_with(&[TOKEN_INVALID, TOKEN_EXPIRED], call).await
}

/// One WeCom suite as a login upstream.
pub struct SuiteConnector {
    settings: SuiteSettings,
    api: SuiteApi,
    secrets: Secrets,
    crypto: CallbackCrypto,
    suite_tokens: Arc<TokenCache>,
    corp_tokens: Mutex<HashMap<String, Arc<TokenCache>>>,
    /// Department names per corp, for `groups`.
    names: NameCache,
    store: Arc<dyn UpstreamStore>,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    /// Callback messages processed lately: WeCom retries a delivery it did not see answered in
    /// time (§11), and a retried `create_auth` carries an AuthCode already spent.
    processed: RecentMessages,
}

crate::secret::debug_showing!(SuiteConnector: settings);

impl SuiteConnector {
    /// Opens the suite over `deps`; no call is made to WeCom.
    pub fn open(settings: SuiteSettings, deps: &OpenDeps) -> Result<Self, ConnectorError> {
        let problems = settings.problems();
        if !problems.is_empty() {
            return Err(ConnectorError::Unavailable(format!(
                "invalid wecom-suite settings: {}",
                problems.join("; ")
            )));
        }
        let api = SuiteApi::new(
            &settings.api_base,
            settings.timeout,
            settings.proxy.as_deref(),
        )?
        .with_metrics(deps.metrics.clone());
        let secrets = Secrets {
            store: deps.store.clone(),
            vault: Vault::new(&settings.store_key),
            keys: Keys {
                suite_id: settings.suite_id.clone(),
            },
        };
        let suite_tokens = Arc::new(
            TokenCache::new(
                Box::new(SuiteTokenSource {
                    api: api.clone(),
                    secrets: secrets.clone(),
                    suite_id: settings.suite_id.clone(),
                    suite_secret: settings.suite_secret.clone(),
                }),
                deps.store.clone(),
                deps.clock.clone(),
                secrets.keys.suite_token(),
            )
            .with_metrics(deps.metrics.clone(), crate::connector::wecom::METRICS_NAME),
        );
        // §8: suite callbacks are encrypted for the SuiteID, not a CorpID.
        let crypto = CallbackCrypto::new(&settings.callback, &settings.suite_id)
            .map_err(|e| unavailable(format!("invalid callback settings: {e}")))?;
        Ok(Self {
            settings,
            api,
            secrets,
            crypto,
            suite_tokens,
            corp_tokens: Mutex::new(HashMap::new()),
            names: NameCache::default(),
            store: deps.store.clone(),
            clock: deps.clock.clone(),
            metrics: deps.metrics.clone(),
            processed: RecentMessages::default(),
        })
    }

    /// The `suite_access_token` (for `check`; never show or log it).
    pub async fn suite_access_token(&self) -> Result<String, ConnectorError> {
        self.suite_tokens.get().await
    }

    /// The token cache of `corp`'s access token, made on first use.
    fn corp_cache(&self, corp: &str) -> Arc<TokenCache> {
        let mut map = self.corp_tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(corp.to_owned())
            .or_insert_with(|| {
                Arc::new(
                    TokenCache::new(
                        Box::new(CorpTokenSource {
                            api: self.api.clone(),
                            secrets: self.secrets.clone(),
                            suite_tokens: self.suite_tokens.clone(),
                            corp: corp.to_owned(),
                            via: self.settings.corp_token,
                        }),
                        self.store.clone(),
                        self.clock.clone(),
                        self.secrets.keys.corp_token(corp),
                    )
                    .with_metrics(self.metrics.clone(), crate::connector::wecom::METRICS_NAME),
                )
            })
            .clone()
    }

    /// Forgets `corp`'s token in memory (after a new install or a removal).
    fn forget_corp(&self, corp: &str) {
        self.corp_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(corp);
    }

    /// `corp`'s access token (never show or log it).
    pub async fn corp_access_token(&self, corp: &str) -> Result<String, ConnectorError> {
        self.corp_cache(corp).get().await
    }

    /// Whether people of `corp` may log in here: the corp is allowed by the configuration
    /// and has the app installed. Refusals are `NotPermitted` (an access-denied page; a grant
    /// ends at refresh).
    async fn admit_corp(&self, corp: &str) -> Result<(), ConnectorError> {
        let allowed = &self.settings.allowed_corps;
        let customised_for_another =
            self.settings.kind == AppKind::Customised && corp != self.settings.corp_id;
        if customised_for_another || (!allowed.is_empty() && !allowed.iter().any(|c| c == corp)) {
            return Err(ConnectorError::NotPermitted(format!(
                "corp {corp} is {NOT_ALLOWED}"
            )));
        }
        if self.secrets.installation(corp).await?.is_none() {
            return Err(ConnectorError::NotPermitted(format!(
                "corp {corp} {NOT_INSTALLED} (or removed it)"
            )));
        }
        Ok(())
    }

    /// Reads the member with the corp's token: gone, inactive or outside the visible range
    /// ends the login or the grant.
    async fn member(&self, corp: &str, userid: &str) -> Result<api::Member, ConnectorError> {
        let api = &self.api;
        let member = with_corp_token(&self.corp_cache(corp), |token| async move {
            api.get(USER_GET, [&token, userid]).await
        })
        .await
        .map_err(|e| match e {
            ConnectorError::Upstream { code, .. } if OUT_OF_RANGE.contains(&code) => {
                ConnectorError::NotPermitted(format!(
                    "WeCom answered {code}: the member is {OUT_OF_RANGE_WHY} in corp {corp}"
                ))
            }
            ConnectorError::Upstream {
                code: USER_NOT_FOUND,
                ..
            } => ConnectorError::AccessDenied("the WeCom member does not exist".to_owned()),
            other => other,
        })?;
        match member.status {
            None | Some(STATUS_ACTIVE) => Ok(member),
            Some(s) => Err(ConnectorError::AccessDenied(format!(
                "the WeCom member is not active (status {s})"
            ))),
        }
    }

    /// The identity of `userid` of `corp`.
    fn identity(
        &self,
        corp: &str,
        userid: &str,
        open_userid: &str,
        name: Option<String>,
    ) -> Identity {
        let sub = match self.settings.subject {
            SuiteSubject::OpenUserid => open_userid.to_owned(),
            SuiteSubject::CorpUserid => format!("{corp}/{userid}"),
        };
        let mut extra_claims = std::collections::BTreeMap::new();
        if self.settings.corp_id_claim {
            extra_claims.insert(CORP_ID_CLAIM.to_owned(), corp.to_owned());
        }
        Identity {
            user_id: sub,
            username: userid.to_owned(),
            name: name.filter(|n| !n.is_empty()),
            // Refresh finds the person again by CorpID/userid (§12: a userid alone is no one).
            upstream_id: Some(format!("{corp}/{userid}")),
            connector_id: self.settings.id.clone(),
            extra_claims,
            ..Identity::default()
        }
    }

    /// The `groups` of a member of `corp` in `departments` ([`groups`]).
    async fn groups(&self, corp: &str, departments: &[i64]) -> Vec<String> {
        let cache = self.corp_cache(corp);
        let api = &self.api;
        let cache = &cache;
        let read = |id: i64| async move {
            let answer = with_corp_token(cache, |token| async move {
                api.get(DEPARTMENT_GET, [&token, &id.to_string()]).await
            })
            .await;
            match answer {
                Ok(a) => Ok(a.department.map(|d| d.name).filter(|n| !n.is_empty())),
                // Outside what the app may read: no name to be had (§7, §12).
                Err(ConnectorError::Upstream { code, .. })
                    if OUT_OF_RANGE.contains(&code) || code == DEPARTMENT_INVALID =>
                {
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        };
        self.names
            .groups(&self.clock, corp, departments, read)
            .await
    }

    /// The code of a 代开发 login, redeemed with the corp's token (`auth/getuserinfo`, §4):
    /// the member's userid.
    async fn customised_userid(&self, code: &str) -> Result<String, ConnectorError> {
        let corp = self.settings.corp_id.as_str();
        self.admit_corp(corp).await?;
        let api = &self.api;
        let info = with_corp_token(&self.corp_cache(corp), |token| async move {
            api.get(USER_INFO, [&token, code]).await
        })
        .await
        .map_err(invalid_code)?;
        if info.userid.is_empty() {
            // §4: an `openid` is someone outside the corp.
            return Err(ConnectorError::AccessDenied(
                "not a member of the corp of this WeCom app".to_owned(),
            ));
        }
        Ok(info.userid)
    }

    /// The code of a third-party login (`getuserinfo3rd`, §8): CorpID, userid, open_userid.
    async fn third_party_user(
        &self,
        code: &str,
    ) -> Result<(String, String, String), ConnectorError> {
        let api = &self.api;
        let info = with_suite_token(&self.suite_tokens, |token| async move {
            api.get(USER_INFO_3RD, [&token, code]).await
        })
        .await
        .map_err(invalid_code)?;
        if info.userid.is_empty() || info.corpid.is_empty() {
            // §4, §8: an `openid` is someone outside every installing corp.
            return Err(ConnectorError::AccessDenied(
                "not a member of a corp that installed this WeCom app".to_owned(),
            ));
        }
        if self.settings.subject == SuiteSubject::OpenUserid && info.open_userid.is_empty() {
            return Err(ConnectorError::Unavailable(
                "getuserinfo3rd answered without open_userid".to_owned(),
            ));
        }
        self.admit_corp(&info.corpid).await?;
        Ok((info.corpid, info.userid, info.open_userid))
    }

    async fn on_message(&self, message: &str) -> Result<(), ConnectorError> {
        let info_type = xml_field(message, "InfoType").unwrap_or_default();
        match info_type.as_str() {
            "suite_ticket" => {
                let ticket = xml_field(message, "SuiteTicket")
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| unavailable("suite_ticket without SuiteTicket"))?;
                self.secrets.save_ticket(&ticket).await?;
                tracing::info!(suite = %self.settings.suite_id, "WeCom suite_ticket received");
            }
            "create_auth" | "reset_permanent_code" => {
                let auth_code = xml_field(message, "AuthCode")
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| unavailable("create_auth without AuthCode"))?;
                let api = &self.api;
                let answer = with_suite_token(&self.suite_tokens, |token| {
                    let auth_code = auth_code.clone();
                    async move { api.permanent_code(&token, &auth_code).await }
                })
                .await?;
                let corp = answer.auth_corp_info.corpid;
                if corp.is_empty() || answer.permanent_code.is_empty() {
                    return Err(unavailable(
                        "get_permanent_code answered without corpid or permanent_code",
                    ));
                }
                let agent_id = answer.auth_info.agent.first().map_or(0, |a| a.agentid);
                self.secrets
                    .save_installation(
                        &corp,
                        &answer.auth_corp_info.corp_name,
                        agent_id,
                        &answer.permanent_code,
                    )
                    .await?;
                // A re-install has a new permanent code: the old corp token must go.
                self.store
                    .delete_upstream_token(&self.secrets.keys.corp_token(&corp))
                    .await
                    .map_err(unavailable)?;
                self.forget_corp(&corp);
                tracing::info!(corp = %corp, "WeCom suite installed by a corp");
            }
            "cancel_auth" => {
                let corp = xml_field(message, "AuthCorpId")
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| unavailable("cancel_auth without AuthCorpId"))?;
                self.secrets.remove_installation(&corp).await?;
                self.forget_corp(&corp);
                self.names.forget(&corp);
                tracing::info!(corp = %corp, "WeCom suite removed by a corp");
            }
            // The visible range is read live (`user/get`) at every login and refresh; what is
            // cached from the old authorisation is the department names (a 代开发 admin may
            // just have authorised them), so they are read again.
            "change_auth" => {
                let corp = xml_field(message, "AuthCorpId")
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| unavailable("change_auth without AuthCorpId"))?;
                self.names.forget(&corp);
                tracing::info!(corp = %corp, "WeCom suite authorisation changed");
            }
            other => tracing::debug!(info_type = %other, "WeCom suite event ignored"),
        }
        Ok(())
    }
}

/// A rejected login code is the person's problem (start again), not the server's (§4).
fn invalid_code(e: ConnectorError) -> ConnectorError {
    match e {
        ConnectorError::Upstream {
            code: CODE_INVALID,
            message,
        } => ConnectorError::InvalidCode(message),
        other => other,
    }
}

/// Parses `CorpID/userid`.
fn split_upstream(id: &str) -> Option<(&str, &str)> {
    id.split_once('/')
        .filter(|(c, u)| !c.is_empty() && !u.is_empty())
}

#[async_trait]
impl Connector for SuiteConnector {
    fn id(&self) -> &str {
        &self.settings.id
    }

    fn login_url(&self, req: &LoginRequest<'_>) -> Result<String, ConnectorError> {
        let in_app = req
            .user_agent
            .is_some_and(|ua| ua.to_ascii_lowercase().contains("wxwork"));
        // Third-party: `appid` = SuiteID (§8); 代开发: the customer corp's own app (§12).
        let customised = self.settings.kind == AppKind::Customised;
        let appid = if customised {
            &self.settings.corp_id
        } else {
            &self.settings.suite_id
        };
        let agent_id = self.settings.agent_id.to_string();
        let url = if in_app {
            // §2.
            let mut u = url::Url::parse(&format!(
                "{}/connect/oauth2/authorize",
                self.settings.oauth_base
            ))
            .map_err(unavailable)?;
            {
                let mut q = u.query_pairs_mut();
                q.append_pair("appid", appid)
                    .append_pair("redirect_uri", req.callback_url)
                    .append_pair("response_type", "code")
                    .append_pair("scope", "snsapi_base")
                    .append_pair("state", req.state);
                if customised {
                    q.append_pair("agentid", &agent_id);
                }
            }
            u.set_fragment(Some("wechat_redirect"));
            u
        } else {
            // §3: `ServiceApp` with the SuiteID, or `CorpApp` with CorpID and AgentId.
            let mut u = url::Url::parse(&format!("{}/wwlogin/sso/login", self.settings.sso_base))
                .map_err(unavailable)?;
            {
                let mut q = u.query_pairs_mut();
                if customised {
                    q.append_pair("login_type", "CorpApp")
                        .append_pair("appid", appid)
                        .append_pair("agentid", &agent_id);
                } else {
                    q.append_pair("login_type", "ServiceApp")
                        .append_pair("appid", appid);
                }
                q.append_pair("redirect_uri", req.callback_url)
                    .append_pair("state", req.state);
            }
            u
        };
        Ok(url.to_string())
    }

    fn failure_notice(&self, error: &ConnectorError) -> Option<FailureNotice> {
        notice::for_error(&self.settings, error)
    }

    /// Ready once the suite token can be had. Before the first `suite_ticket` the instance
    /// stays ready: WeCom must be able to reach the command callback to push that ticket, and
    /// a load balancer that took an unready instance out would never let it arrive.
    async fn check_ready(&self) -> Result<(), ConnectorError> {
        if self.secrets.ticket().await?.is_none() {
            return Ok(());
        }
        self.suite_access_token().await.map(|_| ())
    }

    async fn readiness_note(&self) -> Option<String> {
        match self.secrets.ticket().await {
            Ok(None) => Some(format!(
                "{} — logins fail until it arrives",
                NO_TICKET.replace("{id}", &self.settings.id)
            )),
            _ => None,
        }
    }

    async fn handle_callback(
        &self,
        params: &HashMap<String, String>,
        scopes: &[String],
    ) -> Result<Identity, ConnectorError> {
        let code = callback_code(params)?;
        let (corp, userid, open_userid) = match self.settings.kind {
            AppKind::ThirdParty => self.third_party_user(code).await?,
            AppKind::Customised => {
                let userid = self.customised_userid(code).await?;
                (self.settings.corp_id.clone(), userid, String::new())
            }
        };
        let member = self.member(&corp, &userid).await?;
        let mut identity = self.identity(&corp, &userid, &open_userid, member.name);
        if scopes.iter().any(|s| s == "groups") {
            identity.groups = self.groups(&corp, &member.department).await;
        }
        Ok(identity)
    }

    /// The corp must still be allowed and installed (after `cancel_auth` the grant ends), and
    /// the member still active and in the visible range.
    async fn refresh(&self, identity: &Identity) -> Result<Identity, ConnectorError> {
        let (corp, userid) = identity
            .upstream_id
            .as_deref()
            .and_then(split_upstream)
            .ok_or_else(|| {
                ConnectorError::AccessDenied("the grant does not name a WeCom corp".to_owned())
            })?;
        let not_permitted = |e| match e {
            ConnectorError::NotPermitted(why) => ConnectorError::AccessDenied(why),
            other => other,
        };
        self.admit_corp(corp).await.map_err(not_permitted)?;
        let member = self.member(corp, userid).await.map_err(not_permitted)?;
        let mut fresh = identity.clone();
        if let Some(name) = member.name.filter(|n| !n.is_empty()) {
            fresh.name = Some(name);
        }
        if !identity.groups.is_empty() {
            fresh.groups = self.groups(corp, &member.department).await;
        }
        Ok(fresh)
    }

    async fn handle_event(&self, event: &UpstreamEvent<'_>) -> Result<EventReply, EventError> {
        let q = |k: &str| event.query.get(k).map(String::as_str).unwrap_or_default();
        let reject = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "WeCom suite callback refused");
            EventError::Rejected(e.to_string())
        };
        if !event.is_post {
            // URL verification of the command callback: decrypted with the SuiteID as receive
            // id (§8, §11). Unconfirmed whether WeCom verifies a suite's command URL with the
            // SuiteID or a CorpID; the SuiteID is the stricter choice.
            return self
                .crypto
                .open(q("msg_signature"), q("timestamp"), q("nonce"), q("echostr"))
                .map(EventReply::body)
                .map_err(|e| reject(&e));
        }
        let body = std::str::from_utf8(event.body).map_err(|e| reject(&e))?;
        let encrypted = xml_field(body, "Encrypt").ok_or_else(|| reject(&"no Encrypt"))?;
        let message = self
            .crypto
            .open(q("msg_signature"), q("timestamp"), q("nonce"), &encrypted)
            .map_err(|e| reject(&e))?;
        // A retry of a message already processed is acknowledged again and changes nothing (its
        // AuthCode is spent). A failure is not remembered: WeCom's retry gets another chance.
        let digest = crate::random::hash_secret(&encrypted);
        if !self.processed.contains(&digest) {
            self.on_message(&message).await.map_err(|e| {
                tracing::error!(error = %e, "WeCom suite callback not processed");
                EventError::Rejected(e.to_string())
            })?;
            self.processed.insert(&digest);
        }
        // §11: third-party suite callbacks answer the literal `success`.
        Ok(EventReply::body("success"))
    }
}

#[cfg(test)]
mod tests;
