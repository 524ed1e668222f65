//! The WeCom connector's settings: which corp and app, where WeCom is, and how people are
//! mapped to claims; their checks, alone and across the apps of one configuration.

use std::time::Duration;

use super::proxy;
use super::{
    CallbackSettings, EmailPolicy, GroupOptions, PrivateInfo, ProfileMapping, SubjectMode,
};

/// Settings of the WeCom connector: which corp and app, and where WeCom is.
#[derive(Clone)]
pub struct WeComSettings {
    /// The connector id: the app's name in `/callback/{id}` and in a client's `wecom_app`
    /// ([`Self::DEFAULT_ID`] for the single-`[wecom]` configuration).
    pub id: String,
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
    /// The HTTP(S) proxy every call to WeCom goes through (`[wecom] proxy`); `None`: the
    /// environment's `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` ([`proxy`]).
    pub proxy: Option<String>,
    /// When to ask for `snsapi_privateinfo` (and so `getuserdetail`).
    pub privateinfo: PrivateInfo,
    /// Which WeCom field feeds which claim, and the e-mail policy.
    pub profile: ProfileMapping,
    /// The form of `sub`.
    pub subject: SubjectMode,
    /// What the `groups` claim carries and how long the directory is cached.
    pub groups: GroupOptions,
    /// Token and EncodingAESKey of the app's callback URL (接收事件服务器), when contact-change
    /// callbacks are to be received at `/callback/wecom/events`.
    pub callback: Option<CallbackSettings>,
    /// `WW_verify_<token>.txt` files to serve at the domain root (wecom-api.md §9).
    pub verify_files: Vec<std::path::PathBuf>,
    /// The secret salt of pairwise subjects; required with [`SubjectMode::Pairwise`] and never
    /// to be changed afterwards (every `sub` would change). Redacted in `Debug`.
    pub pairwise_salt: Option<String>,
    /// The home corp: the CorpID whose members get a bare `sub` (their UserId). Members of any
    /// other corp — this app's own when it belongs to another corp, or a linked corp — get
    /// `CorpID/UserId`, so two corps' `zhangsan` never share a `sub` (wecom-api.md §12). `None`
    /// means this app's own corp (a single-corp deployment).
    pub home_corp_id: Option<String>,
}

impl WeComSettings {
    /// The id of the single WeCom app of a `[wecom]` configuration.
    pub const DEFAULT_ID: &str = "wecom";
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
            id: Self::DEFAULT_ID.to_owned(),
            corp_id: corp_id.into(),
            agent_id,
            secret: secret.into(),
            api_base: Self::DEFAULT_API_BASE.to_owned(),
            oauth_base: Self::DEFAULT_OAUTH_BASE.to_owned(),
            sso_base: Self::DEFAULT_SSO_BASE.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
            proxy: None,
            privateinfo: PrivateInfo::default(),
            profile: ProfileMapping::default(),
            subject: SubjectMode::default(),
            groups: GroupOptions::default(),
            callback: None,
            verify_files: Vec::new(),
            pairwise_salt: None,
            home_corp_id: None,
        }
    }

    /// Every problem with these settings, empty when they are usable.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !is_app_id(&self.id) {
            problems.push(format!(
                "id {:?} must be 1-32 lower-case letters, digits, '-' or '_'",
                self.id
            ));
        }
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
        if let Some(problem) = self.proxy.as_deref().and_then(proxy::proxy_problem) {
            problems.push(format!("proxy {problem}"));
        }
        if self.timeout.is_zero() {
            problems.push("timeout is zero".to_owned());
        }
        if let EmailPolicy::Template(t) = &self.profile.email {
            if let Some(problem) = EmailPolicy::template_problem(t) {
                problems.push(format!("email template {t:?} {problem}"));
            }
        }
        if let Some(problem) = self.callback.as_ref().and_then(CallbackSettings::problem) {
            problems.push(problem.to_owned());
        }
        if self.subject == SubjectMode::Pairwise
            && self.pairwise_salt.as_deref().is_none_or(|s| s.len() < 16)
        {
            problems.push(
                "pairwise subjects need a pairwise_salt of at least 16 characters".to_owned(),
            );
        }
        if self.groups.cache_ttl.is_zero() {
            problems.push("groups cache TTL is zero".to_owned());
        }
        problems
    }
}

/// Makes the first app's corp the home corp of every app: its members keep a bare `sub`, every
/// other corp's members get `CorpID/UserId` (see [`WeComSettings::home_corp_id`]). The order of
/// `[[wecom]]` apps therefore matters and is documented: the first one's corp is the home corp.
pub fn assign_home_corp(apps: &mut [WeComSettings]) {
    let Some(home) = apps.first().map(|a| a.corp_id.clone()) else {
        return;
    };
    for app in apps {
        app.home_corp_id = Some(home.clone());
    }
}

/// Setups in which one person could get two subjects, or two people one: apps of one corp must
/// write subjects alike (same form, same pairwise salt), no app may be listed twice, and
/// pairwise and public subjects are not mixed (a public UserId could equal someone's pairwise
/// value).
pub fn subject_problems(apps: &[WeComSettings]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, a) in apps.iter().enumerate() {
        for b in &apps[..i] {
            if !a.corp_id.eq_ignore_ascii_case(&b.corp_id) {
                continue;
            }
            if a.agent_id == b.agent_id {
                problems.push(format!(
                    "apps {:?} and {:?} are the same WeCom app (corp {}, agent {}): list it once",
                    b.id, a.id, a.corp_id, a.agent_id
                ));
            } else if a.subject != b.subject || a.pairwise_salt != b.pairwise_salt {
                problems.push(format!(
                    "apps {:?} and {:?} belong to one corp ({}) and must use the same subject form \
                     (sub) and pairwise_salt: otherwise one person gets two subjects",
                    b.id, a.id, a.corp_id
                ));
            }
        }
    }
    let pairwise = apps
        .iter()
        .filter(|a| a.subject == SubjectMode::Pairwise)
        .count();
    if pairwise != 0 && pairwise != apps.len() {
        problems.push(
            "some apps use pairwise subjects and others public ones: use one form for every app"
                .to_owned(),
        );
    }
    problems
}

/// Whether `id` can name a WeCom app in URLs and config (`/callback/{id}`).
pub fn is_app_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Whether `name` is a WeCom domain-verification file name, `WW_verify_<token>.txt`
/// (wecom-api.md §9), so that only such names are ever served at the domain root.
pub fn is_verify_file_name(name: &str) -> bool {
    name.strip_prefix("WW_verify_")
        .and_then(|rest| rest.strip_suffix(".txt"))
        .is_some_and(|token| {
            !token.is_empty()
                && token.len() <= 64
                && token.bytes().all(|b| b.is_ascii_alphanumeric())
        })
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
            .field("id", &self.id)
            .field("corp_id", &self.corp_id)
            .field("agent_id", &self.agent_id)
            .field("secret", &"[redacted]")
            .field("api_base", &self.api_base)
            .field("oauth_base", &self.oauth_base)
            .field("sso_base", &self.sso_base)
            .field("timeout", &self.timeout)
            .field("proxy", &self.proxy.as_deref().map(proxy::redacted))
            .field("privateinfo", &self.privateinfo)
            .field("profile", &self.profile)
            .field("subject", &self.subject)
            .field("groups", &self.groups)
            .field("callback", &self.callback)
            .field("verify_files", &self.verify_files)
            .field(
                "pairwise_salt",
                &self.pairwise_salt.as_ref().map(|_| "[redacted]"),
            )
            .field("home_corp_id", &self.home_corp_id)
            .finish()
    }
}
