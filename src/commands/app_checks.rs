//! `check` knows the applications: for each client whose application is declared (`app =
//! "grafana"`) or recognised from its redirect URI, it warns where the provider's settings
//! will break that application — an application that needs an e-mail address while `[wecom]`
//! has no e-mail source, oauth2-proxy and `email_verified: false`, Kubernetes and e-mail
//! usernames, `offline_access` the client may not have — and, given the application's own
//! configuration file (`app_config`, read for Grafana), that the groups its role rules name
//! are produced by some WeCom department or tag (asked of WeCom when it is reachable).
//!
//! What each application does is written down, with the source it was checked against, in
//! `docs/integrations/`; the per-application facts live in [`SnippetApp`].

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Deserialize;

use crate::check::{Finding, Level};
use crate::clock::SharedClock;
use crate::commands::snippet::{EmailNeed, ProviderFacts, SnippetApp};
use crate::config::Config;
use crate::connector::wecom::{ClaimSource, WeComConnector, WeComSettings};
use crate::provider::Client;
use crate::storage::MemoryStore;

/// The WeCom app a client's logins go through (its `connector`, else the first), when that
/// connector is a WeCom app.
pub fn wecom_app_of<'a>(cfg: &'a Config, client: &Client) -> Option<&'a WeComSettings> {
    let connector = match client.settings.connector.as_deref() {
        Some(id) => cfg.connectors.iter().find(|c| c.id() == id)?,
        None => cfg.connectors.first()?,
    };
    connector.as_any().downcast_ref::<WeComSettings>()
}

/// The application of `client`: declared, else recognised from its redirect URIs.
pub fn app_of(client: &Client) -> Option<(SnippetApp, bool)> {
    let declared = client
        .settings
        .app
        .as_ref()
        .and_then(|a| a.name.as_deref())
        .and_then(SnippetApp::parse);
    match declared {
        Some(app) => Some((app, true)),
        None => SnippetApp::infer(client).map(|app| (app, false)),
    }
}

/// A client whose `app` names no application `check` knows (a typo would silently turn the
/// application's checks off).
fn unknown_apps(clients: &[Client]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let declared = client.settings.app.as_ref().and_then(|a| a.name.as_deref());
        if let Some(name) = declared.filter(|n| SnippetApp::parse(n).is_none()) {
            let known: Vec<&str> = SnippetApp::ALL.iter().map(|a| a.name()).collect();
            out.push(Finding::new(
                Level::Fail,
                format!("clients[{i}].app"),
                format!("{name:?} is not one of {}", known.join(", ")),
                format!("{name:?} 不是已知的应用：{}", known.join(", ")),
            ));
        }
    }
    out
}

/// The application findings of every client.
pub async fn check(cfg: &Config, clock: SharedClock) -> Vec<Finding> {
    let mut out = unknown_apps(&cfg.clients);
    // The directory is read at most once per WeCom app, and only when a rule needs it.
    let mut directories: Vec<(String, Result<BTreeSet<String>, String>)> = Vec::new();
    for (i, client) in cfg.clients.iter().enumerate() {
        let Some((app, declared)) = app_of(client) else {
            continue;
        };
        let topic = format!("clients[{i}] {} ({})", client.id, app.name());
        let Some(wecom) = wecom_app_of(cfg, client) else {
            continue;
        };
        let mut findings = static_findings(app, declared, client, wecom);
        let app_config = client
            .settings
            .app
            .as_ref()
            .and_then(|a| a.config.as_deref());
        if let (SnippetApp::Grafana, Some(path)) = (app, app_config) {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let ini = GrafanaOAuth::parse(&text);
                    findings.retain(|f| !(ini.has_email_fallback() && f.0 == Kind::NoEmail));
                    findings.extend(ini.findings(client));
                    let names = ini.group_names();
                    if !names.is_empty() {
                        let entry = match directories.iter().position(|(id, _)| *id == wecom.id) {
                            Some(p) => p,
                            None => {
                                let d = directory_groups(wecom, clock.clone()).await;
                                directories.push((wecom.id.clone(), d));
                                directories.len() - 1
                            }
                        };
                        findings.extend(group_findings(&names, &directories[entry].1));
                    }
                }
                Err(e) => findings.push((
                    Kind::Other,
                    format!("cannot read app_config {}: {e}", path.display()),
                    format!("无法读取 app_config {}：{e}", path.display()),
                )),
            }
        }
        if findings.is_empty() {
            out.push(finding(
                Level::Pass,
                &topic,
                format!(
                    "{} settings fit this provider (see {})",
                    app.name(),
                    app.guide()
                ),
                format!("{} 的设置与本服务匹配（见 {}）", app.name(), app.guide()),
            ));
        }
        for (_, en, zh) in findings {
            out.push(finding(Level::Warn, &topic, en, zh));
        }
    }
    out
}

fn finding(level: Level, topic: &str, en: String, zh: String) -> Finding {
    Finding {
        level,
        topic: topic.to_owned(),
        en,
        zh,
        wecom_errcode: None,
    }
}

/// Why a finding was made, where a later source may withdraw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NoEmail,
    Other,
}

type Found = (Kind, String, String);

/// What the provider's settings alone say about `app` for `client`.
fn static_findings(
    app: SnippetApp,
    declared: bool,
    client: &Client,
    wecom: &WeComSettings,
) -> Vec<Found> {
    let facts = ProviderFacts::of(wecom);
    let mut out = Vec::new();
    // A client without the code grant (kubelogin's device code, RFC 8628) redirects nowhere.
    if declared
        && app != SnippetApp::ModAuthOpenidc
        && client.allows_grant(crate::provider::GrantType::AuthorizationCode)
        && !client.redirect_uris.iter().any(|u| app.is_callback(u))
    {
        out.push((
            Kind::Other,
            format!(
                "no redirect URI of the form {}, which {} sends: its logins will end in \
                 invalid_request",
                app.callback_hint(),
                app.name()
            ),
            format!(
                "没有 {} 形式的回调地址（{} 使用该地址），登录会失败",
                app.callback_hint(),
                app.name()
            ),
        ));
    }
    let no_email = facts.email_domain().is_none();
    match app.email_need() {
        EmailNeed::HasFallback if no_email => {
            let (en, zh) = match app {
                SnippetApp::Grafana => (
                    "Grafana needs an e-mail address and [wecom] has no e-mail source: members \
                     without a WeCom address fail with \"Error getting email address\" (Grafana \
                     then asks api_url + \"/emails\"). Set [wecom] email = \"template\" with \
                     email_template = \"{userid_lower}@YOUR-MAIL-DOMAIN\", or give Grafana a \
                     fallback in email_attribute_path (see the guide)",
                    "Grafana 需要邮箱，而 [wecom] 没有邮箱来源：没有邮箱的成员登录失败。请设置 [wecom] email = \
                     \"template\"（email_template 用企业邮箱域名），或在 email_attribute_path 中设置后备",
                ),
                SnippetApp::Gitlab => (
                    "GitLab needs an e-mail address and [wecom] has no e-mail source: members \
                     without a WeCom address get temp-email-for-oauth-USER@gitlab.localhost and \
                     are asked for a real one. Set [wecom] email = \"template\" to spare them",
                    "GitLab 需要邮箱，而 [wecom] 没有邮箱来源：没有邮箱的成员会得到临时邮箱并被要求填写。请设置 \
                     [wecom] email = \"template\"",
                ),
                SnippetApp::Gitea => (
                    "Gitea/Forgejo needs an e-mail address and [wecom] has no e-mail source: \
                     members without a WeCom address are shown a form asking for one at first \
                     login. Set [wecom] email = \"template\" to register them automatically",
                    "Gitea/Forgejo 需要邮箱，而 [wecom] 没有邮箱来源：没有邮箱的成员首次登录时须手工填写。请设置 \
                     [wecom] email = \"template\"",
                ),
                _ => (
                    "JumpServer needs an e-mail address and [wecom] has no e-mail source: \
                     members without a WeCom address become USERID@EMAIL_SUFFIX (example.com \
                     unless set). Set EMAIL_SUFFIX in JumpServer or [wecom] email = \"template\"",
                    "JumpServer 需要邮箱，而 [wecom] 没有邮箱来源：没有邮箱的成员会得到 USERID@EMAIL_SUFFIX。\
                     请在 JumpServer 设置 EMAIL_SUFFIX 或设置 [wecom] email = \"template\"",
                ),
            };
            out.push((Kind::NoEmail, en.to_owned(), zh.to_owned()));
        }
        EmailNeed::Required => {
            if no_email {
                out.push((
                    Kind::NoEmail,
                    "oauth2-proxy keys its session on the email claim and [wecom] has no e-mail \
                     source: members without a WeCom address are refused (\"neither the \
                     id_token nor the profileURL set an email\") unless oidc_email_claim = \
                     \"preferred_username\" (what `wecom-oidc snippet oauth2-proxy` writes)"
                        .to_owned(),
                    "oauth2-proxy 以 email 声明为会话主键，而 [wecom] 没有邮箱来源：请设置 oidc_email_claim = \
                     \"preferred_username\"（snippet 已如此生成）"
                        .to_owned(),
                ));
            } else if !facts.email_verified {
                out.push((
                    Kind::Other,
                    "oauth2-proxy refuses an id_token whose email_verified is false (\"email in \
                     id_token isn't verified\"), and addresses WeCom holds are sent with \
                     email_verified: false ([wecom] email_verified = false). Set \
                     insecure_oidc_allow_unverified_email = true in oauth2-proxy (the snippet \
                     does), or [wecom] email_verified = true if the corp's mail system verifies them"
                        .to_owned(),
                    "oauth2-proxy 拒绝 email_verified 为 false 的 id_token，而企业微信中的邮箱以 false 发送。\
                     请在 oauth2-proxy 设置 insecure_oidc_allow_unverified_email = true，或设置 [wecom] \
                     email_verified = true"
                        .to_owned(),
                ));
            }
        }
        _ => {}
    }
    if app == SnippetApp::Kubernetes {
        if matches!(
            wecom.profile.preferred_username,
            ClaimSource::Email | ClaimSource::EmailLocalPart
        ) {
            out.push((
                Kind::Other,
                "[wecom] username_claim takes preferred_username from the e-mail address, \
                 which Kubernetes usernames (RBAC subjects) are made of: a member without an \
                 address falls back to the userid, and a changed address is a new user. Keep \
                 username_claim = \"userid\" and --oidc-username-claim=preferred_username; \
                 never --oidc-username-claim=email (the apiserver refuses email_verified: false)"
                    .to_owned(),
                "[wecom] username_claim 取自邮箱，会成为 Kubernetes 用户名：没有邮箱的成员退回 userid，邮箱变更即\
                 成为新用户。请保持 username_claim = \"userid\"，不要用 --oidc-username-claim=email"
                    .to_owned(),
            ));
        }
        if !client.is_public() {
            out.push((
                Kind::Other,
                "kubelogin runs on every user's machine, where a client secret is no secret: \
                 register this client with public = true (PKCE)"
                    .to_owned(),
                "kubelogin 运行在每个用户的电脑上，无法保管密钥：请将该客户端设为 public = true（PKCE）"
                    .to_owned(),
            ));
        }
    }
    if app.refreshes() && !client.allows_offline_access() {
        out.push(offline_finding(app.name()));
    }
    out
}

fn offline_finding(app: &str) -> Found {
    (
        Kind::Other,
        format!(
            "{app} asks for offline_access, which this client may not have: the scope is \
             dropped, no refresh token is issued and sessions end with the access token. Set \
             allow_offline_access = true"
        ),
        format!(
            "{app} 请求 offline_access，但该客户端不允许：不会签发刷新令牌。请设置 allow_offline_access = true"
        ),
    )
}

/// Grafana's `[auth.generic_oauth]` section, as far as `check` reads it.
#[derive(Debug, Default)]
struct GrafanaOAuth {
    scopes: Vec<String>,
    email_attribute_path: Option<String>,
    role_attribute_path: Option<String>,
    allowed_groups: Vec<String>,
}

impl GrafanaOAuth {
    fn parse(text: &str) -> Self {
        let mut out = Self::default();
        let mut in_section = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
                continue;
            }
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_section = s.trim() == "auth.generic_oauth";
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            if !in_section {
                continue;
            }
            let v = v.trim().to_owned();
            match k.trim() {
                // Grafana splits scopes on spaces and commas.
                "scopes" => {
                    out.scopes = v
                        .split([' ', ','])
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                "email_attribute_path" => out.email_attribute_path = Some(v),
                "role_attribute_path" => out.role_attribute_path = Some(v),
                "allowed_groups" => {
                    out.allowed_groups = v
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .split([',', ' '])
                        .map(|s| s.trim().trim_matches('"').trim_matches('\''))
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                _ => {}
            }
        }
        out
    }

    /// An `email_attribute_path` with an alternative gives every member an address.
    fn has_email_fallback(&self) -> bool {
        self.email_attribute_path
            .as_deref()
            .is_some_and(|p| p.contains("||"))
    }

    fn findings(&self, client: &Client) -> Vec<Found> {
        let mut out = Vec::new();
        if self.scopes.iter().any(|s| s == "offline_access") && !client.allows_offline_access() {
            out.push(offline_finding("Grafana"));
        }
        let personal: Vec<&str> = self
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|s| matches!(*s, "phone" | "address"))
            .collect();
        if !personal.is_empty() {
            out.push((
                Kind::Other,
                format!(
                    "Grafana's scopes ask for {}: staff phone numbers and addresses would flow \
                     to Grafana, which does not use them. Ask for openid profile email groups",
                    personal.join(" and ")
                ),
                format!(
                    "Grafana 的 scopes 请求了 {}：Grafana 不使用这些个人信息，请只请求 openid profile email groups",
                    personal.join("、")
                ),
            ));
        }
        out
    }

    /// The group names the role rule and `allowed_groups` compare with: quoted literals of the
    /// JMESPath expression that are not Grafana role names.
    fn group_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.allowed_groups.clone();
        if let Some(rule) = &self.role_attribute_path {
            let mut parts = rule.split('\'');
            parts.next();
            // Odd pieces are inside quotes.
            for (i, piece) in parts.enumerate() {
                if i % 2 == 0
                    && !matches!(
                        piece,
                        "Admin" | "Editor" | "Viewer" | "GrafanaAdmin" | "None" | ""
                    )
                    && !names.iter().any(|n| n == piece)
                {
                    names.push(piece.to_owned());
                }
            }
        }
        names
    }
}

/// Findings for group names no department or tag produces.
fn group_findings(names: &[String], directory: &Result<BTreeSet<String>, String>) -> Vec<Found> {
    let groups = match directory {
        Ok(g) => g,
        Err(e) => {
            return vec![(
                Kind::Other,
                format!(
                    "could not read the WeCom directory to check the group names of Grafana's \
                     role rule ({}): {e}",
                    names.join(", ")
                ),
                format!("无法读取企业微信通讯录，未能检查 Grafana 角色规则中的组名：{e}"),
            )]
        }
    };
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        // A name ending in "/" is a prefix test (starts_with(@, '/研发/')).
        .filter(|n| {
            if n.ends_with('/') {
                !groups.iter().any(|g| g.starts_with(n))
            } else {
                !groups.contains(*n)
            }
        })
        .collect();
    if unknown.is_empty() {
        return Vec::new();
    }
    vec![(
        Kind::Other,
        format!(
            "Grafana's role rule or allowed_groups name {} — no WeCom department (name or full \
             path such as /研发/平台) or tag produces that group, so the rule never matches",
            unknown
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "Grafana 角色规则或 allowed_groups 中的 {} 不是任何企业微信部门（名称或完整路径）或标签，规则不会生效",
            unknown.join("、")
        ),
    )]
}

/// A directory answer: WeCom's `errcode` / `errmsg` around the list asked for.
#[derive(Deserialize)]
struct Listed<T> {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    #[serde(flatten)]
    list: T,
}

#[derive(Deserialize)]
struct DepartmentList {
    #[serde(default)]
    department: Vec<Department>,
}

#[derive(Deserialize)]
struct Department {
    id: i64,
    name: String,
    #[serde(default)]
    parentid: i64,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    taglist: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    tagname: String,
}

/// Every string the `groups` claim can carry in this corp: department names, full paths below
/// the root (wecom-api.md: `department/list`), department ids and tag names (`tag/list`).
async fn directory_groups(
    w: &WeComSettings,
    clock: SharedClock,
) -> Result<BTreeSet<String>, String> {
    let connector = WeComConnector::new(
        w.clone(),
        crate::storage::upstream_role(Arc::new(MemoryStore::new())),
        clock,
    )
    .map_err(|e| e.to_string())?;
    let token = connector.access_token().await.map_err(|e| e.to_string())?;
    let http = reqwest::Client::builder()
        .timeout(w.timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let departments: DepartmentList = list(&http, &w.api_base, &token, "department/list").await?;
    let tags: TagList = list(&http, &w.api_base, &token, "tag/list").await?;
    Ok(group_names(&departments.department, &tags.taglist))
}

/// One GET of `{api_base}/cgi-bin/{path}`, decoded, its `errcode` checked.
async fn list<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    api_base: &str,
    token: &str,
    path: &str,
) -> Result<T, String> {
    let reply: Listed<T> = http
        .get(format!("{api_base}/cgi-bin/{path}"))
        .query(&[("access_token", token)])
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?
        .json()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if reply.errcode != 0 {
        return Err(format!("{path}: {} {}", reply.errcode, reply.errmsg));
    }
    Ok(reply.list)
}

fn group_names(departments: &[Department], tags: &[Tag]) -> BTreeSet<String> {
    let by_id: std::collections::HashMap<i64, &Department> =
        departments.iter().map(|d| (d.id, d)).collect();
    let mut out = BTreeSet::new();
    for d in departments {
        out.insert(d.name.clone());
        out.insert(d.id.to_string());
        // The path from just below the topmost visible department (the corp's root).
        let mut names = Vec::new();
        let mut current = d;
        for _ in 0..64 {
            match by_id.get(&current.parentid) {
                Some(parent) => {
                    names.push(current.name.as_str());
                    current = parent;
                }
                None => break,
            }
        }
        if !names.is_empty() {
            names.reverse();
            out.insert(format!("/{}", names.join("/")));
        }
    }
    out.extend(tags.iter().map(|t| t.tagname.clone()));
    out
}

/// Reads `path` relative to nothing: a helper for tests that write a Grafana ini.
#[cfg(test)]
fn grafana_from(path: &std::path::Path) -> GrafanaOAuth {
    GrafanaOAuth::parse(&std::fs::read_to_string(path).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::wecom::EmailPolicy;
    use crate::provider::client::ClientApp;
    use crate::secret::Secret;
    use std::path::Path;

    fn client(uri: &str) -> Client {
        Client {
            id: "c".into(),
            name: "c".into(),
            secret: Some(Secret::new("s")),
            redirect_uris: vec![uri.into()],
            settings: Default::default(),
        }
    }

    fn wecom() -> WeComSettings {
        WeComSettings::new("ww1", 1000002, "secret")
    }

    fn messages(found: &[Found]) -> String {
        found
            .iter()
            .map(|f| f.1.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn grafana_and_gitlab_without_an_email_source_are_warned_about() {
        for (uri, needle) in [
            (
                "https://g.example/login/generic_oauth",
                "Error getting email address",
            ),
            (
                "https://gl.example/users/auth/openid_connect/callback",
                "temp-email-for-oauth",
            ),
        ] {
            let c = client(uri);
            let (app, declared) = app_of(&c).unwrap();
            let found = static_findings(app, declared, &c, &wecom());
            assert!(messages(&found).contains(needle), "{uri}");
            let mut w = wecom();
            w.profile.email = EmailPolicy::Template("{userid}@corp.example.com".into());
            assert!(static_findings(app, declared, &c, &w).is_empty(), "{uri}");
        }
    }

    #[test]
    fn oauth2_proxy_with_unverified_email_is_warned_about() {
        let c = client("https://a.example/oauth2/callback");
        let mut w = wecom();
        w.profile.email = EmailPolicy::Template("{userid}@corp.example.com".into());
        let found = static_findings(SnippetApp::Oauth2Proxy, false, &c, &w);
        assert!(messages(&found).contains("insecure_oidc_allow_unverified_email"));
        w.profile.email_verified = true;
        assert!(static_findings(SnippetApp::Oauth2Proxy, false, &c, &w).is_empty());
    }

    #[test]
    fn kubernetes_with_email_usernames_a_secret_or_no_offline_access_is_warned_about() {
        let mut c = client("http://localhost:8000");
        c.settings.allow_offline_access = Some(false);
        let mut w = wecom();
        w.profile.preferred_username = ClaimSource::Email;
        let text = messages(&static_findings(SnippetApp::Kubernetes, false, &c, &w));
        assert!(text.contains("username_claim"));
        assert!(text.contains("public = true"));
        assert!(text.contains("allow_offline_access"));
        c.secret = None;
        c.settings.allow_offline_access = Some(true);
        assert!(static_findings(SnippetApp::Kubernetes, false, &c, &wecom()).is_empty());
    }

    #[test]
    fn client_keys_app_and_app_config_are_read_and_unknown_apps_refused() {
        let text = "[[clients]]\nid = \"k\"\npublic = true\napp = \"kubelogin\"\n\
                    app_config = \"/etc/x.ini\"\nredirect_uris = [\"http://localhost:8000\"]\n";
        let clients = crate::config::parse_clients(text, "t.toml", &|_| None).unwrap();
        let app = clients[0].settings.app.clone().unwrap();
        assert_eq!(app.name.as_deref(), Some("kubelogin"));
        assert_eq!(app.config.as_deref(), Some(Path::new("/etc/x.ini")));
        assert_eq!(app_of(&clients[0]), Some((SnippetApp::Kubernetes, true)));
        let typo =
            crate::config::parse_clients(&text.replace("kubelogin", "kubelet"), "t.toml", &|_| {
                None
            })
            .unwrap();
        let found = unknown_apps(&typo);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].level, Level::Fail);
        assert_eq!(found[0].topic, "clients[0].app");
        assert!(
            found[0].en.contains("\"kubelet\" is not one of"),
            "{found:?}"
        );
    }

    #[test]
    fn a_declared_app_without_its_redirect_uri_is_warned_about() {
        let mut c = client("https://x.example/cb");
        c.settings.app = Some(ClientApp {
            name: Some("harbor".into()),
            config: None,
        });
        let (app, declared) = app_of(&c).unwrap();
        assert_eq!(app, SnippetApp::Harbor);
        assert!(
            messages(&static_findings(app, declared, &c, &wecom())).contains("/c/oidc/callback")
        );
    }

    #[test]
    fn a_device_code_kubelogin_client_needs_no_redirect_uri_rfc8628() {
        let mut c = client("https://x.example/cb");
        c.redirect_uris.clear();
        c.settings.app = Some(ClientApp {
            name: Some("kubernetes".into()),
            config: None,
        });
        let (app, declared) = app_of(&c).unwrap();
        let found = |c: &Client| messages(&static_findings(app, declared, c, &wecom()));
        assert!(found(&c).contains("no redirect URI"), "{}", found(&c));
        c.settings.grant_types = Some(vec![crate::provider::GrantType::DeviceCode]);
        assert!(!found(&c).contains("no redirect URI"), "{}", found(&c));
    }

    #[test]
    fn grafana_role_rule_names_are_checked_against_departments_and_tags() {
        let dir = tempfile::tempdir().unwrap();
        let ini = dir.path().join("grafana.ini");
        std::fs::write(
            &ini,
            "[server]\nroot_url = https://g.example/\n[auth.generic_oauth]\n\
             scopes = openid profile email groups offline_access phone\n\
             email_attribute_path = email || join('', [preferred_username, '@x.invalid'])\n\
             role_attribute_path = contains(groups[*], '/研发/平台') && 'Admin' || \
             contains(groups[*], 'grafana-admins') && 'Editor' || \
             length(groups[?starts_with(@, '/研发/')]) > `0` && 'Viewer' || 'None'\n\
             allowed_groups = [\"/运维\"]\n",
        )
        .unwrap();
        let g = grafana_from(&ini);
        assert!(g.has_email_fallback());
        assert_eq!(
            g.group_names(),
            ["/运维", "/研发/平台", "grafana-admins", "/研发/"]
        );
        let departments = vec![
            Department {
                id: 1,
                name: "示例科技".into(),
                parentid: 0,
            },
            Department {
                id: 2,
                name: "研发".into(),
                parentid: 1,
            },
            Department {
                id: 3,
                name: "平台".into(),
                parentid: 2,
            },
        ];
        let groups = group_names(
            &departments,
            &[Tag {
                tagname: "管理员".into(),
            }],
        );
        assert!(
            groups.contains("/研发/平台") && groups.contains("平台") && groups.contains("管理员")
        );
        assert!(
            !groups.iter().any(|g| g == "/示例科技"),
            "the root has no path"
        );
        let text = messages(&group_findings(&g.group_names(), &Ok(groups)));
        assert!(text.contains("\"grafana-admins\"") && text.contains("\"/运维\""));
        assert!(!text.contains("\"/研发/平台\"") && !text.contains("\"/研发/\""));
        let c = client("https://g.example/login/generic_oauth");
        let text = messages(&g.findings(&c));
        assert!(text.contains("phone"));
        let mut public = c.clone();
        public.secret = None;
        assert!(messages(&g.findings(&public)).contains("offline_access"));
    }
}
