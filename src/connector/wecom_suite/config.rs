//! The `wecom-suite` connector type's configuration: a `[[connectors]]` table with
//! `type = "wecom-suite"`, parsed and validated with the shared validator, and its entry in the
//! connector registry.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use toml::{Table, Value};

use super::SuiteConnector;
use crate::check::Finding;
use crate::connector::registry::{CheckContext, ConnectorConfig, ConnectorType, OpenDeps};
use crate::connector::wecom::CallbackSettings;
use crate::connector::{Connector, ConnectorError};
use crate::validate::Validator;

/// Keys of a `type = "wecom-suite"` table (besides `type` and `id`).
const KEYS: &[&str] = &[
    "suite_id",
    "suite_secret",
    "suite_secret_env",
    "callback_token",
    "callback_token_env",
    "callback_aes_key",
    "callback_aes_key_env",
    "store_key",
    "store_key_env",
    "api_base",
    "oauth_base",
    "sso_base",
    "timeout_secs",
    "proxy",
    "sub",
    "allowed_corps",
    "kind",
    "corp_id",
    "agent_id",
    "corp_id_claim",
    "corp_token",
];

/// The shortest `store_key` accepted: it is hashed to the AES-256 key, so it must carry about
/// as much entropy as one.
const MIN_STORE_KEY_CHARS: usize = 32;

/// What `sub` is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SuiteSubject {
    /// `open_userid`: stable across one service provider's apps (wecom-api.md §8).
    #[default]
    OpenUserid,
    /// `CorpID/userid`: readable, but a userid can change once (§8, doc 93997).
    CorpUserid,
}

impl SuiteSubject {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "open_userid" => Some(Self::OpenUserid),
            "corp_userid" => Some(Self::CorpUserid),
            _ => None,
        }
    }
}

/// Which kind of service-provider app the connector serves (wecom-api.md §12 "App kinds").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppKind {
    /// A third-party app (第三方应用): every installing corp, `ServiceApp` web login,
    /// `getuserinfo3rd`.
    #[default]
    ThirdParty,
    /// A 代开发 (customised) app built from the suite (the 代开发 template) for one corp: logged
    /// in to like that corp's self-built app (`CorpApp`, `auth/getuserinfo`) with the token of
    /// its permanent code.
    Customised,
}

impl AppKind {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "third-party" => Some(Self::ThirdParty),
            "customised" => Some(Self::Customised),
            _ => None,
        }
    }
}

/// How a 代开发 app's corp token is fetched. wecom-api.md §12 says `service/get_corp_token`
/// (the template's suite token and the permanent code); WeCom's 代开发 pages are also read as
/// `gettoken` with `corpsecret` = the permanent code. The reference's way is the default; the
/// other is one setting away, and the simulator serves both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CorpTokenApi {
    /// `POST /cgi-bin/service/get_corp_token?suite_access_token=` (§8, §12).
    #[default]
    GetCorpToken,
    /// `GET /cgi-bin/gettoken?corpid=&corpsecret=PERMANENT_CODE` (§1), 代开发 only.
    Gettoken,
}

impl CorpTokenApi {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "get_corp_token" => Some(Self::GetCorpToken),
            "gettoken" => Some(Self::Gettoken),
            _ => None,
        }
    }
}

/// Settings of one WeCom third-party app (suite), or of a 代开发 app of one corp.
#[derive(Clone)]
pub struct SuiteSettings {
    /// The connector id (`/callback/{id}`, a client's `connector`).
    pub id: String,
    /// The SuiteID (`ww…` / `tj…`): `appid` of the login links, receive id of the callbacks.
    pub suite_id: String,
    /// The suite secret. Redacted in `Debug`.
    pub suite_secret: String,
    /// Token and EncodingAESKey of the command callback URL (指令回调URL).
    pub callback: CallbackSettings,
    /// Secret from which the key sealing tickets and permanent codes in the store is derived.
    /// Redacted in `Debug`; changing it makes every stored permanent code unreadable.
    pub store_key: String,
    /// Base of the server API.
    pub api_base: String,
    /// Base of the in-app OAuth link.
    pub oauth_base: String,
    /// Base of the web login page.
    pub sso_base: String,
    /// Limit on each HTTP call to WeCom.
    pub timeout: Duration,
    /// Proxy of every call to WeCom (as `[wecom] proxy`).
    pub proxy: Option<String>,
    /// The form of `sub`.
    pub subject: SuiteSubject,
    /// CorpIDs whose people may log in; empty: every corp that installed the app.
    pub allowed_corps: Vec<String>,
    /// Third-party app or 代开发 app.
    pub kind: AppKind,
    /// 代开发: the customer corp's CorpID (`appid` of its login links); empty otherwise.
    pub corp_id: String,
    /// 代开发: the app's AgentId in that corp (`get_permanent_code`'s `auth_info.agent`).
    pub agent_id: i64,
    /// Whether tokens carry a `corp_id` claim (with the `profile` scope) naming the person's
    /// corp.
    pub corp_id_claim: bool,
    /// How corp tokens are fetched (`gettoken` only for 代开发).
    pub corp_token: CorpTokenApi,
}

impl std::fmt::Debug for SuiteSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuiteSettings")
            .field("id", &self.id)
            .field("suite_id", &self.suite_id)
            .field("suite_secret", &"[redacted]")
            .field("callback", &self.callback)
            .field("store_key", &"[redacted]")
            .field("api_base", &self.api_base)
            .field("oauth_base", &self.oauth_base)
            .field("sso_base", &self.sso_base)
            .field("timeout", &self.timeout)
            .field("proxy", &self.proxy.is_some())
            .field("subject", &self.subject)
            .field("allowed_corps", &self.allowed_corps)
            .field("kind", &self.kind)
            .field("corp_id", &self.corp_id)
            .field("agent_id", &self.agent_id)
            .field("corp_id_claim", &self.corp_id_claim)
            .field("corp_token", &self.corp_token)
            .finish()
    }
}

impl SuiteSettings {
    /// Settings for WeCom's real hosts (tests override the bases).
    pub fn new(
        id: impl Into<String>,
        suite_id: impl Into<String>,
        suite_secret: impl Into<String>,
        callback: CallbackSettings,
        store_key: impl Into<String>,
    ) -> Self {
        use crate::connector::wecom::WeComSettings as W;
        Self {
            id: id.into(),
            suite_id: suite_id.into(),
            suite_secret: suite_secret.into(),
            callback,
            store_key: store_key.into(),
            api_base: W::DEFAULT_API_BASE.to_owned(),
            oauth_base: W::DEFAULT_OAUTH_BASE.to_owned(),
            sso_base: W::DEFAULT_SSO_BASE.to_owned(),
            timeout: W::DEFAULT_TIMEOUT,
            proxy: None,
            subject: SuiteSubject::default(),
            allowed_corps: Vec::new(),
            kind: AppKind::ThirdParty,
            corp_id: String::new(),
            agent_id: 0,
            corp_id_claim: true,
            corp_token: CorpTokenApi::GetCorpToken,
        }
    }

    /// These settings as a 代开发 app built from the template `suite_id` for corp `corp_id`,
    /// app `agent_id` there.
    pub fn customised(self, corp_id: impl Into<String>, agent_id: i64) -> Self {
        Self {
            kind: AppKind::Customised,
            corp_id: corp_id.into(),
            agent_id,
            subject: SuiteSubject::CorpUserid,
            ..self
        }
    }

    /// Every problem, empty when usable.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !crate::connector::wecom::is_app_id(&self.id) {
            p.push(format!(
                "id {:?} must be 1-32 lower-case letters, digits, '-' or '_'",
                self.id
            ));
        }
        if self.suite_id.is_empty() || !self.suite_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            p.push("suite_id must be the SuiteID (letters and digits)".to_owned());
        }
        if self.suite_secret.is_empty() {
            p.push("suite_secret is empty".to_owned());
        }
        if let Some(problem) = self.callback.problem() {
            p.push(problem.to_owned());
        }
        if self.store_key.chars().count() < MIN_STORE_KEY_CHARS {
            p.push(format!(
                "store_key must be at least {MIN_STORE_KEY_CHARS} characters (a random secret)"
            ));
        }
        if self.timeout.is_zero() {
            p.push("timeout is zero".to_owned());
        }
        if self.kind == AppKind::Customised {
            if self.corp_id.is_empty() || !self.corp_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                p.push(
                    "corp_id must be the customer corp's CorpID (kind = \"customised\")".to_owned(),
                );
            }
            if self.agent_id <= 0 {
                p.push(
                    "agent_id must be the 代开发 app's AgentId (kind = \"customised\")".to_owned(),
                );
            }
            // auth/getuserinfo names no open_userid (§4): the subject is CorpID/userid.
            if self.subject == SuiteSubject::OpenUserid {
                p.push("sub = \"open_userid\" needs a third-party app: a 代开发 app's logins carry no open_userid (use corp_userid)".to_owned());
            }
        } else if !self.corp_id.is_empty()
            || self.agent_id != 0
            || self.corp_token != CorpTokenApi::GetCorpToken
        {
            p.push("corp_id, agent_id and corp_token belong to kind = \"customised\"".to_owned());
        }
        p
    }
}

/// The `wecom-suite` entry of the connector registry.
pub(crate) const CONNECTOR_TYPE: ConnectorType = ConnectorType {
    name: "wecom-suite",
    parse,
    finish,
    legacy_section: None,
};

fn parse(
    v: &mut Validator<'_>,
    t: &Table,
    key: &str,
    id: Option<&str>,
) -> Option<Box<dyn ConnectorConfig>> {
    let id = id?.to_owned();
    v.unknown_keys(t, key, KEYS);
    let at = |name: &str| format!("{key}.{name}");
    let suite_id = v.required_string(t, &at("suite_id"), "suite_id");
    let required = |v: &mut Validator<'_>, name: &str, what: &str| -> Option<String> {
        match v.secret_pair(t, key, name) {
            Some(Some(s)) => Some(s),
            Some(None) => {
                v.problem(
                    &format!("{key}.{name}_env"),
                    format!("is required ({what})"),
                );
                None
            }
            None => None,
        }
    };
    let suite_secret = required(v, "suite_secret", "the suite Secret");
    let token = required(v, "callback_token", "the Token of the command callback URL");
    let aes = required(
        v,
        "callback_aes_key",
        "the EncodingAESKey of the command callback URL",
    );
    let store_key = required(
        v,
        "store_key",
        "a random secret of 32+ characters sealing permanent codes in the store",
    );
    let hosts = v.wecom_hosts(t, key);
    let kind = v.choice(
        t,
        &at("kind"),
        "kind",
        AppKind::default(),
        AppKind::parse,
        "third-party, customised",
    );
    // A 代开发 app has no open_userid: its default subject is CorpID/userid.
    let default_subject = match kind {
        Some(AppKind::Customised) => SuiteSubject::CorpUserid,
        _ => SuiteSubject::default(),
    };
    let subject = v.choice(
        t,
        &at("sub"),
        "sub",
        default_subject,
        SuiteSubject::parse,
        "open_userid, corp_userid",
    );
    let corp_id = v.string(t, &at("corp_id"), "corp_id").unwrap_or_default();
    let agent_id = v.integer(t, &at("agent_id"), "agent_id").unwrap_or(0);
    let corp_token = v.choice(
        t,
        &at("corp_token"),
        "corp_token",
        CorpTokenApi::default(),
        CorpTokenApi::parse,
        "get_corp_token, gettoken",
    );
    let corp_id_claim = v
        .boolean(t, &at("corp_id_claim"), "corp_id_claim")
        .unwrap_or(true);
    let allowed_corps = match t.get("allowed_corps") {
        None => Some(Vec::new()),
        Some(Value::Array(a)) if a.iter().all(|c| c.as_str().is_some_and(|s| !s.is_empty())) => {
            Some(
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect(),
            )
        }
        Some(_) => {
            v.problem(
                &at("allowed_corps"),
                "must be a list of CorpIDs, e.g. [\"wwa1b2c3…\"]",
            );
            None
        }
    };
    let settings = SuiteSettings {
        id,
        suite_id: suite_id?,
        suite_secret: suite_secret?,
        callback: CallbackSettings {
            token: token?,
            encoding_aes_key: aes?,
        },
        store_key: store_key?,
        api_base: hosts.api_base?,
        oauth_base: hosts.oauth_base?,
        sso_base: hosts.sso_base?,
        timeout: hosts.timeout?,
        proxy: hosts.proxy,
        subject: subject?,
        allowed_corps: allowed_corps?,
        kind: kind?,
        corp_id,
        agent_id,
        corp_id_claim,
        corp_token: corp_token?,
    };
    let problems = settings.problems();
    for p in &problems {
        v.problem(key, p);
    }
    problems
        .is_empty()
        .then(|| Box::new(settings) as Box<dyn ConnectorConfig>)
}

/// Two connectors of one suite would share its ticket and tokens: allowed (they are keyed by
/// SuiteID), so nothing is checked across them.
fn finish(_: &mut [Box<dyn ConnectorConfig>]) -> Vec<String> {
    Vec::new()
}

#[async_trait]
impl ConnectorConfig for SuiteSettings {
    fn id(&self) -> &str {
        &self.id
    }

    fn type_name(&self) -> &'static str {
        CONNECTOR_TYPE.name
    }

    fn open(&self, deps: &OpenDeps) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(Arc::new(SuiteConnector::open(self.clone(), deps)?))
    }

    fn summary(&self) -> Vec<(String, String)> {
        let mut rows = vec![
            (
                "type".to_owned(),
                match self.kind {
                    AppKind::ThirdParty => "WeCom third-party app (企业微信第三方应用)",
                    AppKind::Customised => "WeCom customised app (企业微信代开发应用)",
                }
                .to_owned(),
            ),
            ("SuiteID".to_owned(), self.suite_id.clone()),
            (
                "sub".to_owned(),
                match self.subject {
                    SuiteSubject::OpenUserid => "open_userid",
                    SuiteSubject::CorpUserid => "corp_userid",
                }
                .to_owned(),
            ),
            ("API".to_owned(), self.api_base.clone()),
            (
                "suite_ticket".to_owned(),
                "pushed by WeCom every 10 minutes to the callback URL + /events (指令回调URL); \
                 no login works before the first one arrives — /readyz says whether it has \
                 (收到首个 suite_ticket 之前无法登录)"
                    .to_owned(),
            ),
        ];
        if self.kind == AppKind::Customised {
            rows.push((
                "corp".to_owned(),
                format!("{} · AgentId {}", self.corp_id, self.agent_id),
            ));
        }
        rows
    }

    async fn check(&self, ctx: &CheckContext<'_>) -> Vec<Finding> {
        super::doctor::check(self, ctx).await
    }

    fn check_reads_store(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> Table {
        s.parse().expect("toml")
    }

    #[test]
    fn every_missing_secret_is_named_at_once() {
        let env = |_: &str| None;
        let mut v = Validator::new(&env);
        let out = parse(
            &mut v,
            &table("suite_id = \"wwsuite1\""),
            "connectors[0]",
            Some("suite"),
        );
        assert!(out.is_none());
        let all = v.problems.join("\n");
        for key in [
            "suite_secret_env",
            "callback_token_env",
            "callback_aes_key_env",
            "store_key_env",
        ] {
            assert!(all.contains(key), "{all}");
        }
    }

    #[test]
    fn a_full_table_parses_with_secrets_from_the_environment() {
        let env = |name: &str| match name {
            "S" => Some("suite-secret".to_owned()),
            "K" => Some("k".repeat(40)),
            _ => None,
        };
        let mut v = Validator::new(&env);
        let out = parse(
            &mut v,
            &table(
                "suite_id = \"wwsuite1\"\nsuite_secret_env = \"S\"\nstore_key_env = \"K\"\n\
                 callback_token = \"tok\"\n\
                 callback_aes_key = \"6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt\"\n\
                 sub = \"corp_userid\"\nallowed_corps = [\"wwa\"]",
            ),
            "connectors[0]",
            Some("suite"),
        )
        .expect("parses");
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        let s = out.as_any().downcast_ref::<SuiteSettings>().expect("suite");
        assert_eq!(s.subject, SuiteSubject::CorpUserid);
        assert_eq!(s.allowed_corps, vec!["wwa".to_owned()]);
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("suite-secret") && !debug.contains("kkkk"),
            "{debug}"
        );
    }

    const SECRETS: &str = "suite_id = \"wwsuite1\"\nsuite_secret = \"s\"\n\
         store_key = \"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\"\ncallback_token = \"tok\"\n\
         callback_aes_key = \"6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt\"\n";

    fn parse_text(extra: &str) -> (Option<Box<dyn ConnectorConfig>>, Vec<String>) {
        let env = |_: &str| None;
        let mut v = Validator::new(&env);
        let out = parse(
            &mut v,
            &table(&format!("{SECRETS}{extra}")),
            "connectors[0]",
            Some("acme"),
        );
        (out, v.problems)
    }

    #[test]
    fn a_customised_app_names_its_corp_and_agent_and_defaults_to_corp_userid() {
        let (out, problems) = parse_text(
            "kind = \"customised\"\ncorp_id = \"wwcustomer\"\nagent_id = 1000017\n\
             corp_token = \"gettoken\"\ncorp_id_claim = false",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let out = out.expect("parses");
        let s = out.as_any().downcast_ref::<SuiteSettings>().expect("suite");
        assert_eq!(s.kind, AppKind::Customised);
        assert_eq!((s.corp_id.as_str(), s.agent_id), ("wwcustomer", 1_000_017));
        assert_eq!(s.subject, SuiteSubject::CorpUserid);
        assert_eq!(s.corp_token, CorpTokenApi::Gettoken);
        assert!(!s.corp_id_claim);
    }

    #[test]
    fn customised_settings_without_corp_or_with_open_userid_are_refused() {
        let (out, problems) = parse_text("kind = \"customised\"\nsub = \"open_userid\"");
        assert!(out.is_none());
        let all = problems.join("\n");
        for needle in ["corp_id must be", "agent_id must be", "no open_userid"] {
            assert!(all.contains(needle), "{needle}: {all}");
        }
        let (out, problems) = parse_text("corp_id = \"wwcustomer\"");
        assert!(out.is_none());
        assert!(
            problems.join("\n").contains("belong to kind"),
            "{problems:?}"
        );
        let (out, problems) = parse_text("kind = \"bespoke\"");
        assert!(out.is_none());
        assert!(
            problems.join("\n").contains("third-party, customised"),
            "{problems:?}"
        );
    }
}
