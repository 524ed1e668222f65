//! The `wecom` connector type's configuration: a `[[connectors]]` table with `type = "wecom"`
//! (or the older `[wecom]` / `[[wecom]]`), parsed and validated here with the shared validator,
//! and its entry in the connector registry.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use toml::{Table, Value};

use super::{
    assign_home_corp, subject_problems, CallbackSettings, ClaimSource, EmailPolicy, GroupOptions,
    PrivateInfo, ProfileMapping, SubjectMode, WeComConnector, WeComSettings,
};
use crate::check::Finding;
use crate::connector::registry::{CheckContext, ConnectorConfig, ConnectorType, OpenDeps};
use crate::connector::{Connector, ConnectorError};
use crate::validate::Validator;

pub(crate) const WECOM_KEYS: &[&str] = &[
    "name",
    "corp_id",
    "agent_id",
    "secret",
    "secret_env",
    "api_base",
    "oauth_base",
    "sso_base",
    "timeout_secs",
    "proxy",
    "privateinfo",
    "email",
    "email_template",
    "email_verified",
    "name_claim",
    "username_claim",
    "sub",
    "groups",
    "groups_cache_secs",
    "callback_token",
    "callback_token_env",
    "callback_aes_key",
    "callback_aes_key_env",
    "verify_files",
    "pairwise_salt",
    "pairwise_salt_env",
];

/// Where WeCom is and how it is reached, as [`Validator::wecom_hosts`] read it.
pub(crate) struct WeComHosts {
    pub(crate) api_base: Option<String>,
    pub(crate) oauth_base: Option<String>,
    pub(crate) sso_base: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) proxy: Option<String>,
}

impl Validator<'_> {
    pub(crate) fn wecom(&mut self, w: &Table) -> Option<WeComSettings> {
        self.unknown_keys(w, "wecom", WECOM_KEYS);
        let id = match self.string(w, "wecom.name", "name") {
            None => Some(WeComSettings::DEFAULT_ID.to_string()),
            Some(n) if crate::connector::wecom::is_app_id(&n) => Some(n),
            Some(n) => {
                self.problem(
                    "wecom.name",
                    format!("{n:?} must be 1-32 lower-case letters, digits, '-' or '_'"),
                );
                None
            }
        };
        let corp_id = self.required_string(w, "wecom.corp_id", "corp_id");
        let agent_id = self.integer(w, "wecom.agent_id", "agent_id");
        if agent_id.is_none() && !w.contains_key("agent_id") {
            self.problem(
                "wecom.agent_id",
                "is required (the AgentId of the WeCom app)",
            );
        }
        let secret = self.secret(w, "wecom");
        if secret.is_none() && !w.contains_key("secret") && !w.contains_key("secret_env") {
            self.problem(
                "wecom.secret_env",
                "the app secret is required: set secret_env = \"WECOM_SECRET\" (or secret)",
            );
        }
        let hosts = self.wecom_hosts(w, "wecom");
        if let Some(id) = agent_id {
            if id <= 0 {
                self.problem("wecom.agent_id", "must be a positive integer");
            }
        }
        let defaults = WeComSettings::new("", 0, "");
        let privateinfo = self.choice(
            w,
            "wecom.privateinfo",
            "privateinfo",
            defaults.privateinfo,
            PrivateInfo::parse,
            "never, always, when_requested",
        );
        let profile = self.profile_mapping(w);
        let subject = self.choice(
            w,
            "wecom.sub",
            "sub",
            defaults.subject,
            SubjectMode::parse,
            "userid, lowercase, pairwise",
        );
        let groups = self.group_options(w);
        let callback = self.callback_settings(w);
        let verify_files = self.verify_files(w);
        let pairwise_salt = self.secret_pair(w, "wecom", "pairwise_salt");
        if subject == Some(SubjectMode::Pairwise) {
            if let Some(salt) = pairwise_salt.as_ref() {
                if salt.as_ref().is_none_or(|s| s.len() < 16) {
                    self.problem(
                        "wecom.pairwise_salt_env",
                        "sub = \"pairwise\" needs a secret pairwise_salt of at least 16 characters (never change it: every sub would change)",
                    );
                }
            }
        }
        Some(WeComSettings {
            id: id?,
            corp_id: corp_id?,
            agent_id: agent_id.filter(|i| *i > 0)?,
            secret: secret?.expose().to_string(),
            api_base: hosts.api_base?,
            oauth_base: hosts.oauth_base?,
            sso_base: hosts.sso_base?,
            timeout: hosts.timeout?,
            proxy: hosts.proxy,
            privateinfo: privateinfo?,
            profile: profile?,
            subject: subject?,
            groups: groups?,
            callback: callback?,
            verify_files: verify_files?,
            pairwise_salt: pairwise_salt?,
            home_corp_id: None,
        })
    }

    /// `api_base`, `oauth_base`, `sso_base` (http(s) URLs; WeCom's own hosts when absent),
    /// `timeout_secs` (1 to 60) and `proxy` of the table `t` at `key`: the keys every WeCom
    /// connector type shares. `None` in a field that had a problem.
    pub(crate) fn wecom_hosts(&mut self, t: &Table, key: &str) -> WeComHosts {
        let at = |name: &str| format!("{key}.{name}");
        let mut base = |name: &str, default: &str| -> Option<String> {
            let s = self
                .string(t, &at(name), name)
                .unwrap_or_else(|| default.to_string());
            let s = s.trim_end_matches('/').to_string();
            match url::Url::parse(&s) {
                Ok(u) if u.scheme() == "https" || u.scheme() == "http" => Some(s),
                _ => {
                    self.problem(&at(name), format!("{s:?} is not an http(s) URL"));
                    None
                }
            }
        };
        let api_base = base("api_base", WeComSettings::DEFAULT_API_BASE);
        let oauth_base = base("oauth_base", WeComSettings::DEFAULT_OAUTH_BASE);
        let sso_base = base("sso_base", WeComSettings::DEFAULT_SSO_BASE);
        let timeout = match self.integer(t, &at("timeout_secs"), "timeout_secs") {
            None => Some(WeComSettings::DEFAULT_TIMEOUT),
            Some(n) if (1..=60).contains(&n) => Some(Duration::from_secs(n.unsigned_abs())),
            Some(_) => {
                self.problem(&at("timeout_secs"), "must be between 1 and 60");
                None
            }
        };
        let proxy = self.string(t, &at("proxy"), "proxy");
        // The value is not repeated: a proxy URL may carry a password.
        if let Some(problem) = proxy
            .as_deref()
            .and_then(crate::connector::wecom::proxy::proxy_problem)
        {
            self.problem(&at("proxy"), problem);
        }
        WeComHosts {
            api_base,
            oauth_base,
            sso_base,
            timeout,
            proxy,
        }
    }

    /// `callback_token(_env)` and `callback_aes_key(_env)`: both or neither.
    fn callback_settings(&mut self, w: &Table) -> Option<Option<CallbackSettings>> {
        let token = self.secret_pair(w, "wecom", "callback_token");
        let aes = self.secret_pair(w, "wecom", "callback_aes_key");
        match (token?, aes?) {
            (None, None) => Some(None),
            (Some(token), Some(encoding_aes_key)) => {
                let settings = CallbackSettings {
                    token,
                    encoding_aes_key,
                };
                match settings.problem() {
                    None => Some(Some(settings)),
                    Some(problem) => {
                        self.problem("wecom.callback_aes_key", problem);
                        None
                    }
                }
            }
            (Some(_), None) => {
                self.problem(
                    "wecom.callback_aes_key_env",
                    "is required with callback_token (the EncodingAESKey of the callback URL)",
                );
                None
            }
            (None, Some(_)) => {
                self.problem(
                    "wecom.callback_token_env",
                    "is required with callback_aes_key (the Token of the callback URL)",
                );
                None
            }
        }
    }

    /// `verify_files = ["path/WW_verify_<token>.txt"]` (wecom-api.md §9). Only the name is
    /// checked here; the files are read at startup.
    fn verify_files(&mut self, w: &Table) -> Option<Vec<PathBuf>> {
        let list = self.array(
            w,
            "wecom.verify_files",
            "verify_files",
            "a list of file paths",
        )?;
        let mut out = Vec::new();
        let mut ok = true;
        for (key, v) in list {
            let Some(path) = v.as_str() else {
                self.problem(&key, "must be a string");
                ok = false;
                continue;
            };
            let path = PathBuf::from(path);
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !crate::connector::wecom::is_verify_file_name(name) {
                self.problem(
                    &key,
                    "the file name must be WW_verify_<letters and digits>.txt, as downloaded from the WeCom admin console",
                );
                ok = false;
                continue;
            }
            out.push(path);
        }
        ok.then_some(out)
    }

    /// `email`, `email_template`, `email_verified`, `name_claim`, `username_claim`.
    fn profile_mapping(&mut self, w: &Table) -> Option<ProfileMapping> {
        let d = ProfileMapping::default();
        let name = self.choice(
            w,
            "wecom.name_claim",
            "name_claim",
            d.name,
            ClaimSource::parse,
            ClaimSource::NAMES,
        );
        let preferred_username = self.choice(
            w,
            "wecom.username_claim",
            "username_claim",
            d.preferred_username,
            ClaimSource::parse,
            ClaimSource::NAMES,
        );
        let template = self.string(w, "wecom.email_template", "email_template");
        let email = match (self.string(w, "wecom.email", "email").as_deref(), template) {
            (None | Some("upstream"), None) => Some(EmailPolicy::Upstream),
            (Some("template"), Some(t)) => match EmailPolicy::template_problem(&t) {
                None => Some(EmailPolicy::Template(t)),
                Some(problem) => {
                    self.problem("wecom.email_template", problem);
                    None
                }
            },
            (Some("template"), None) => {
                self.problem(
                    "wecom.email_template",
                    "is required with email = \"template\" (e.g. \"{userid_lower}@corp.example.com\")",
                );
                None
            }
            (None | Some("upstream"), Some(_)) => {
                self.problem(
                    "wecom.email_template",
                    "is only used with email = \"template\"",
                );
                None
            }
            (Some(other), _) => {
                self.problem(
                    "wecom.email",
                    format!("{other:?} is not one of: upstream, template"),
                );
                None
            }
        };
        let email_verified = self
            .boolean(w, "wecom.email_verified", "email_verified")
            .unwrap_or(d.email_verified);
        Some(ProfileMapping {
            name: name?,
            preferred_username: preferred_username?,
            email: email?,
            email_verified,
        })
    }

    /// `groups = ["names", "paths", "ids", "tags"]` and `groups_cache_secs`.
    fn group_options(&mut self, w: &Table) -> Option<GroupOptions> {
        let mut options = GroupOptions::default();
        match w.get("groups") {
            None => {}
            Some(Value::Array(a)) => {
                let mut kinds = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v.as_str() {
                        Some(s) => kinds.push(s),
                        None => self.problem(&format!("wecom.groups[{i}]"), "must be a string"),
                    }
                }
                match options.with_kinds(kinds) {
                    Ok(o) => options = o,
                    Err(e) => {
                        self.problem("wecom.groups", e);
                        return None;
                    }
                }
            }
            Some(_) => {
                self.problem(
                    "wecom.groups",
                    "must be a list such as [\"names\", \"paths\", \"tags\"]",
                );
                return None;
            }
        }
        match self.integer(w, "wecom.groups_cache_secs", "groups_cache_secs") {
            None => {}
            Some(n) if (10..=86_400).contains(&n) => {
                options.cache_ttl = Duration::from_secs(n.unsigned_abs())
            }
            Some(_) => {
                self.problem("wecom.groups_cache_secs", "must be between 10 and 86400");
                return None;
            }
        }
        Some(options)
    }
}

/// The profile keys (`email`, `email_template`, `email_verified`, `name_claim`,
/// `username_claim`) of a file's WeCom app — its `[wecom]` table or first `type = "wecom"`
/// `[[connectors]]` table — for the demo, whose own app is simulated; `Ok(None)` when the file
/// has neither. Every other key of the table is ignored.
pub fn demo_profile(file: &Table) -> Result<Option<ProfileMapping>, Vec<String>> {
    let table = match file.get("wecom") {
        Some(Value::Table(t)) => Some(t),
        _ => file
            .get("connectors")
            .and_then(Value::as_array)
            .and_then(|list| {
                list.iter()
                    .filter_map(Value::as_table)
                    .find(|t| t.get("type").and_then(Value::as_str) == Some(CONNECTOR_TYPE.name))
            }),
    };
    let Some(table) = table else {
        return Ok(None);
    };
    let env = |_: &str| None;
    let mut v = Validator::new(&env);
    match v.profile_mapping(table) {
        Some(p) if v.problems.is_empty() => Ok(Some(p)),
        _ => Err(v.problems),
    }
}

/// The `wecom` entry of the connector registry ([`crate::connector::catalog::TYPES`]).
pub(crate) const CONNECTOR_TYPE: ConnectorType = ConnectorType {
    name: "wecom",
    parse,
    finish,
    legacy_section: Some("wecom"),
};

/// One WeCom app: a `[[connectors]]` table (its `id` given) or a `[wecom]` / `[[wecom]]` table
/// (its `name` read here). Problems are named under `key`.
fn parse(
    v: &mut Validator<'_>,
    t: &Table,
    key: &str,
    id: Option<&str>,
) -> Option<Box<dyn ConnectorConfig>> {
    let mut own = t.clone();
    if let Some(id) = id {
        if own.contains_key("name") {
            v.problem(
                &format!("{key}.name"),
                "is the [wecom] form of id; a [[connectors]] table has id only",
            );
            return None;
        }
        own.insert("name".to_owned(), Value::String(id.to_owned()));
    }
    let settings = v.renamed("wecom", key, |v| v.wecom(&own))?;
    Some(Box::new(settings))
}

/// Across the WeCom apps of one configuration: the first app's corp is every app's home corp,
/// and setups that would give one person two subjects (or two people one) are refused.
fn finish(configs: &mut [Box<dyn ConnectorConfig>]) -> Vec<String> {
    let mut apps: Vec<WeComSettings> = configs
        .iter()
        .filter_map(|c| c.as_any().downcast_ref::<WeComSettings>().cloned())
        .collect();
    assign_home_corp(&mut apps);
    let problems = subject_problems(&apps);
    for (config, app) in configs.iter_mut().zip(apps) {
        if let Some(slot) = config.as_any_mut().downcast_mut::<WeComSettings>() {
            *slot = app;
        }
    }
    problems
}

#[async_trait]
impl ConnectorConfig for WeComSettings {
    fn id(&self) -> &str {
        &self.id
    }

    fn type_name(&self) -> &'static str {
        CONNECTOR_TYPE.name
    }

    fn open(&self, deps: &OpenDeps) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(Arc::new(WeComConnector::with_metrics(
            self.clone(),
            deps.store.clone(),
            deps.clock.clone(),
            deps.metrics.clone(),
        )?))
    }

    fn summary(&self) -> Vec<(String, String)> {
        vec![
            (
                "type".to_owned(),
                "WeCom self-built app (企业微信自建应用)".to_owned(),
            ),
            ("CorpID".to_owned(), self.corp_id.clone()),
            ("AgentId".to_owned(), self.agent_id.to_string()),
            (
                "sub".to_owned(),
                format!("{:?}", self.subject).to_lowercase(),
            ),
            ("API".to_owned(), self.api_base.clone()),
        ]
    }

    fn root_files(&self) -> Vec<PathBuf> {
        self.verify_files.clone()
    }

    fn claim_origins(&self) -> Vec<crate::connector::ClaimOrigin> {
        super::origins::claim_origins(self)
    }

    fn is_pairwise(&self) -> bool {
        self.subject == SubjectMode::Pairwise
    }

    async fn check(&self, ctx: &CheckContext<'_>) -> Vec<Finding> {
        super::doctor::check(self, ctx).await
    }
}
