//! `wecom-oidc check`: a doctor for the configuration. It validates the file, asks WeCom for the
//! app's access_token (`gettoken`, wecom-api.md §1) and turns each WeCom error code into plain
//! Chinese and English: what is wrong and where in the WeCom admin console (管理后台) to fix it.
//! It prints the exact trusted domain (可信域名, host[:port]) and callback URL to enter there,
//! and checks that the issuer, the clients' redirect URIs and the signing keys fit together.
//!
//! It never writes: missing keys are reported, not generated, and the token it obtains lives in
//! a throw-away memory store and is never shown.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::{self, Config};
use crate::connector::wecom::{WeComConnector, WeComSettings};
use crate::connector::ConnectorError;
use crate::storage::MemoryStore;
use crate::tokens::KeyStore;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Checked and fine.
    Pass,
    /// Works, but deserves attention.
    Warn,
    /// Logins will fail until this is fixed.
    Fail,
}

/// One finding, in both languages.
#[derive(Debug, Clone)]
pub struct Finding {
    /// How serious.
    pub level: Level,
    /// What was checked (`config`, `wecom`, `keys`, `issuer`, `clients[0]` …).
    pub topic: String,
    /// What was found, in English.
    pub en: String,
    /// What was found, in Chinese.
    pub zh: String,
    /// WeCom's error code when the finding comes from a WeCom answer.
    pub wecom_errcode: Option<i64>,
}

impl Finding {
    fn new(
        level: Level,
        topic: impl Into<String>,
        en: impl Into<String>,
        zh: impl Into<String>,
    ) -> Self {
        Self {
            level,
            topic: topic.into(),
            en: en.into(),
            zh: zh.into(),
            wecom_errcode: None,
        }
    }
}

/// The doctor's verdict.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every finding, in the order checked.
    pub findings: Vec<Finding>,
    /// The trusted domain (host[:port]) to enter in the WeCom console, when the issuer is valid.
    pub trusted_domain: Option<String>,
    /// The callback URL WeCom sends browsers back to.
    pub callback_url: Option<String>,
}

impl Report {
    /// True when nothing failed (warnings allowed).
    pub fn passed(&self) -> bool {
        !self.findings.iter().any(|f| f.level == Level::Fail)
    }

    /// The first finding with WeCom error `code`, if any.
    pub fn wecom_error(&self, code: i64) -> Option<&Finding> {
        self.findings.iter().find(|f| f.wecom_errcode == Some(code))
    }

    /// The report as the terminal shows it: one block per finding, English then Chinese, then
    /// what to enter in the WeCom admin console, then the verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let tag = match f.level {
                Level::Pass => "[ OK ]",
                Level::Warn => "[WARN]",
                Level::Fail => "[FAIL]",
            };
            let _ = writeln!(out, "{tag} {}: {}", f.topic, f.en);
            let _ = writeln!(out, "       {}", f.zh);
        }
        if let (Some(domain), Some(callback)) = (&self.trusted_domain, &self.callback_url) {
            out.push_str("\nEnter in the WeCom admin console / 在企业微信管理后台填写:\n");
            let _ = writeln!(
                out,
                "  App → 网页授权及JS-SDK → 可信域名 (trusted domain):        {domain}"
            );
            let _ = writeln!(
                out,
                "  App → 企业微信授权登录 → Web网页 → 授权回调域 (callback domain): {domain}"
            );
            let _ = writeln!(
                out,
                "  Callback URL used by wecom-oidc / 回调地址: {callback}"
            );
        }
        let fails = self
            .findings
            .iter()
            .filter(|f| f.level == Level::Fail)
            .count();
        let warns = self
            .findings
            .iter()
            .filter(|f| f.level == Level::Warn)
            .count();
        if fails == 0 {
            let _ = writeln!(
                out,
                "\nPASS: ready for logins ({warns} warning(s)). / 检查通过（{warns} 个警告）。"
            );
        } else {
            let _ = writeln!(
                out,
                "\nFAIL: {fails} problem(s) to fix before logins can work. / 有 {fails} 个问题需要修复。"
            );
        }
        out
    }
}

/// Reads, validates and checks the configuration file at `path`.
pub async fn check_file(path: &Path, clock: SharedClock) -> Report {
    match config::load(path) {
        Ok(cfg) => {
            let mut report = check(&cfg, clock).await;
            report.findings.insert(
                0,
                Finding::new(
                    Level::Pass,
                    "config",
                    format!("{} is valid", path.display()),
                    format!("配置文件 {} 格式正确", path.display()),
                ),
            );
            report
        }
        Err(errors) => Report {
            findings: errors
                .problems
                .iter()
                .map(|p| {
                    Finding::new(
                        Level::Fail,
                        "config",
                        format!("{}: {p}", errors.file),
                        format!("配置文件 {} 有误：{p}", errors.file),
                    )
                })
                .collect(),
            ..Report::default()
        },
    }
}

/// Checks a validated configuration: issuer, redirect URIs, keys, and WeCom `gettoken`.
pub async fn check(cfg: &Config, clock: SharedClock) -> Report {
    let mut report = Report::default();
    check_issuer(cfg, &mut report);
    check_clients(cfg, &mut report);
    check_keys(&cfg.keys_dir, &mut report);
    // Every WeCom app (`[[wecom]]` may list several) needs its secret and trusted domain right.
    for w in std::iter::once(&cfg.wecom).chain(&cfg.more_wecom_apps) {
        let label = AppLabel::new(cfg, w);
        check_wecom(w, &label, clock.clone(), &mut report).await;
        check_login_page(cfg, w, &label, &mut report).await;
    }
    report
}

/// Names a WeCom app's findings: `wecom`, or `wecom (branch)` when there are several apps.
struct AppLabel {
    /// Appended to topics; empty with a single app.
    suffix: String,
}

impl AppLabel {
    fn new(cfg: &Config, w: &WeComSettings) -> Self {
        let suffix = if cfg.more_wecom_apps.is_empty() {
            String::new()
        } else {
            format!(" ({})", w.id)
        };
        Self { suffix }
    }

    fn topic(&self, base: &str) -> String {
        format!("{base}{}", self.suffix)
    }
}

/// WeCom's wording when the redirect domain is not the app's trusted domain (wecom-api.md §2).
const DOMAIN_ERROR_TEXT: &str = "redirect_uri需使用应用可信域名";

/// Loads WeCom's PC login page (wecom-api.md §3) for our callback, without following redirects,
/// and looks for WeCom's refusals: an untrusted callback domain (the `uriconfirm` page with
/// `err_type=domain_err`, or its wording) or a wrong AgentId (40056). WeCom renders this page for
/// browsers, so a page without a known refusal is reported as "nothing found", not as proof.
async fn check_login_page(cfg: &Config, w: &WeComSettings, label: &AppLabel, report: &mut Report) {
    let callback = format!("{}/callback/{}", cfg.issuer, w.id);
    let Ok(mut url) = url::Url::parse(&format!("{}/wwlogin/sso/login", w.sso_base)) else {
        return;
    };
    url.query_pairs_mut()
        .append_pair("login_type", "CorpApp")
        .append_pair("appid", &w.corp_id)
        .append_pair("agentid", &w.agent_id.to_string())
        .append_pair("redirect_uri", &callback)
        .append_pair("state", "wecomoidccheck");
    // Through the same proxy as the WeCom calls: the page must be reachable the same way.
    let proxy = w.proxy.as_deref();
    let Ok(builder) = crate::connector::wecom::proxy::with_proxy(reqwest::Client::builder(), proxy)
    else {
        return;
    };
    let http = match builder
        .redirect(reqwest::redirect::Policy::none())
        .timeout(w.timeout)
        .build()
    {
        Ok(h) => h,
        Err(_) => return,
    };
    let response = match http.get(url).send().await {
        Ok(r) => r,
        Err(e) => {
            report.findings.push(Finding::new(
                Level::Warn,
                label.topic("wecom login page"),
                format!(
                    "could not load WeCom's login page at {} to check the trusted domain: {}",
                    w.sso_base,
                    e.without_url()
                ),
                format!("无法打开企业微信登录页 {}，未能检查可信域名", w.sso_base),
            ));
            return;
        }
    };
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // The page is small; a cap keeps an odd answer from filling memory.
    let body: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(256 * 1024)
        .collect();
    let domain = report.trusted_domain.clone().unwrap_or_default();
    if location.contains("domain_err") || body.contains(DOMAIN_ERROR_TEXT) {
        report.findings.push(Finding::new(
            Level::Fail,
            label.topic("wecom login page"),
            format!(
                "WeCom refuses the callback domain {domain}: enter it exactly (port included) as                  the app's trusted domain: 应用管理 → 自建 → the app → 网页授权及JS-SDK → 可信域名,                  and 企业微信授权登录 → Web网页 → 授权回调域"
            ),
            format!(
                "企业微信拒绝回调域名 {domain}：请在「应用管理 → 自建 → 该应用 → 网页授权及JS-SDK → 可信域名」                 以及「企业微信授权登录 → Web网页 → 授权回调域」中准确填写（含端口）"
            ),
        ));
    } else if body.contains("40056") || body.contains("agentid参数错误") {
        let mut f = Finding::new(
            Level::Fail,
            label.topic("wecom login page"),
            format!(
                "WeCom does not know AgentId {} in this corp: copy the AgentId from 应用管理 → 自建                  → the app into wecom.agent_id",
                w.agent_id
            ),
            format!(
                "企业微信不认识 AgentId {}：请从「应用管理 → 自建 → 该应用」复制 AgentId 到 wecom.agent_id",
                w.agent_id
            ),
        );
        f.wecom_errcode = Some(40056);
        report.findings.push(f);
    } else {
        report.findings.push(Finding::new(
            Level::Pass,
            label.topic("wecom login page"),
            format!(
                "WeCom's login page reported no problem with AgentId {} and {domain}",
                w.agent_id
            ),
            format!(
                "企业微信登录页未报告 AgentId {} 或域名 {domain} 的问题",
                w.agent_id
            ),
        ));
    }
}

/// The issuer gives the trusted domain and the callback URL (wecom-api.md §2 domain rule: exact
/// host, port included when it is not the scheme's default).
fn check_issuer(cfg: &Config, report: &mut Report) {
    let Ok(url) = url::Url::parse(&cfg.issuer) else {
        report.findings.push(Finding::new(
            Level::Fail,
            "issuer",
            format!("{:?} is not a URL", cfg.issuer),
            format!("issuer {:?} 不是合法的 URL", cfg.issuer),
        ));
        return;
    };
    let Some(host) = url.host_str() else {
        report.findings.push(Finding::new(
            Level::Fail,
            "issuer",
            "has no host",
            "issuer 缺少主机名",
        ));
        return;
    };
    let domain = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    report.trusted_domain = Some(domain.clone());
    report.callback_url = Some(format!("{}/callback/{}", cfg.issuer, cfg.wecom.id));
    if url.scheme() == "https" {
        report.findings.push(Finding::new(
            Level::Pass,
            "issuer",
            format!("{} (https); WeCom trusted domain is {domain}", cfg.issuer),
            format!("{}（https）；企业微信可信域名应为 {domain}", cfg.issuer),
        ));
    } else {
        report.findings.push(Finding::new(
            Level::Warn,
            "issuer",
            format!(
                "{} uses plain http: fine for a local trial, but real WeCom trusted domains must \
                 be ICP-registered public hosts and clients expect https (OIDC Discovery §3)",
                cfg.issuer
            ),
            format!(
                "{} 使用 http：仅适合本机试用；正式环境的可信域名须为已备案域名并使用 https",
                cfg.issuer
            ),
        ));
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        report.findings.push(Finding::new(
            Level::Warn,
            "issuer",
            "the issuer host is an IP address: WeCom only accepts a registered domain name as \
             trusted domain",
            "issuer 的主机是 IP 地址：企业微信的可信域名只能是已备案的域名",
        ));
    }
}

/// Redirect URIs: exact absolute URIs (RFC 6749 §3.1.2), https except on loopback
/// (RFC 6749 §3.1.2.1), and never our own callback (that would loop the login).
fn check_clients(cfg: &Config, report: &mut Report) {
    let our_callback = format!("{}/callback/", cfg.issuer);
    for (i, c) in cfg.clients.iter().enumerate() {
        let topic = format!("clients[{i}] {}", c.id);
        let mut ok = true;
        for uri in &c.redirect_uris {
            let Ok(u) = url::Url::parse(uri) else {
                continue;
            };
            let loopback = matches!(
                u.host_str(),
                Some("localhost") | Some("127.0.0.1") | Some("[::1]")
            );
            if u.scheme() == "http" && !loopback {
                ok = false;
                report.findings.push(Finding::new(
                    Level::Warn,
                    topic.clone(),
                    format!(
                        "redirect URI {uri} uses plain http: codes travel in clear (RFC 6749 §3.1.2.1 asks for TLS)"
                    ),
                    format!("回调地址 {uri} 使用 http，授权码会明文传输，应改用 https"),
                ));
            }
            if uri.starts_with(&our_callback) {
                ok = false;
                report.findings.push(Finding::new(
                    Level::Fail,
                    topic.clone(),
                    format!(
                        "redirect URI {uri} is wecom-oidc's own WeCom callback: put the \
                         application's callback there, not ours"
                    ),
                    format!(
                        "回调地址 {uri} 是 wecom-oidc 自己的企业微信回调，应填写应用自己的回调地址"
                    ),
                ));
            }
        }
        if ok {
            report.findings.push(Finding::new(
                Level::Pass,
                topic,
                format!(
                    "{} client, {} redirect URI(s)",
                    if c.is_public() {
                        "public (PKCE)"
                    } else {
                        "confidential"
                    },
                    c.redirect_uris.len()
                ),
                format!(
                    "{}客户端，{} 个回调地址",
                    if c.is_public() {
                        "公开（PKCE）"
                    } else {
                        "机密"
                    },
                    c.redirect_uris.len()
                ),
            ));
        }
    }
}

/// Keys are loaded when present and reported missing otherwise: the doctor never generates.
fn check_keys(dir: &Path, report: &mut Report) {
    let has_any = std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name == "keys.json" || name.ends_with(".pem")
            })
        })
        .unwrap_or(false);
    if !has_any {
        report.findings.push(Finding::new(
            Level::Warn,
            "keys",
            format!(
                "no signing key in {}: one is generated at first start; back it up, relying \
                 parties cache it",
                dir.display()
            ),
            format!(
                "{} 中还没有签名密钥：首次启动时会自动生成，请备份",
                dir.display()
            ),
        ));
        return;
    }
    match KeyStore::load_or_generate(dir) {
        Ok(keys) => report.findings.push(Finding::new(
            Level::Pass,
            "keys",
            format!(
                "{} key(s) in {}, active kid {} ({})",
                keys.keys().len(),
                dir.display(),
                keys.active_kid(),
                keys.signing_alg()
            ),
            format!(
                "{} 中有 {} 个密钥，当前签名密钥 {}（{}）",
                dir.display(),
                keys.keys().len(),
                keys.active_kid(),
                keys.signing_alg()
            ),
        )),
        Err(e) => report.findings.push(Finding::new(
            Level::Fail,
            "keys",
            format!("cannot load the signing keys: {e}"),
            format!("无法加载签名密钥：{e}"),
        )),
    }
}

/// Calls `gettoken` with a throw-away store, so a cached token cannot hide a wrong secret.
async fn check_wecom(w: &WeComSettings, label: &AppLabel, clock: SharedClock, report: &mut Report) {
    let connector = match WeComConnector::new(w.clone(), Arc::new(MemoryStore::new()), clock) {
        Ok(c) => c,
        Err(e) => {
            report.findings.push(Finding::new(
                Level::Fail,
                label.topic("wecom"),
                e.to_string(),
                format!("企业微信设置有误：{e}"),
            ));
            return;
        }
    };
    match connector.access_token().await {
        Ok(_) => {
            report.findings.push(Finding::new(
                Level::Pass,
                label.topic("wecom"),
                format!(
                    "gettoken succeeded: corp {} accepts the app secret",
                    w.corp_id
                ),
                format!("gettoken 成功：企业 {} 与应用 Secret 匹配", w.corp_id),
            ));
            check_wecom_data_api(&connector, w, label, report).await;
        }
        Err(ConnectorError::Upstream { code, message }) => {
            let (en, zh) = explain(code, &message, w.agent_id);
            let mut f = Finding::new(
                Level::Fail,
                label.topic("wecom"),
                format!("gettoken failed with {code}: {en}"),
                format!("gettoken 失败（{code}）：{zh}"),
            );
            f.wecom_errcode = Some(code);
            report.findings.push(f);
        }
        Err(e) => report.findings.push(Finding::new(
            Level::Fail,
            label.topic("wecom"),
            format!(
                "cannot reach WeCom at {}: {e}. Check DNS, the firewall and any HTTP proxy for \
                 outgoing HTTPS to qyapi.weixin.qq.com:443 (wecom.api_base)",
                w.api_base
            ),
            format!(
                "无法访问企业微信接口 {}：{e}。请检查 DNS、防火墙和代理是否允许访问 \
                 qyapi.weixin.qq.com:443",
                w.api_base
            ),
        )),
    }
}

/// `gettoken` can succeed from an IP outside 企业可信IP while every data API answers 60020
/// (wecom-api.md §1), so one token-protected, read-only call (`department/simplelist`) tells
/// whether logins can work at all.
async fn check_wecom_data_api(
    connector: &WeComConnector,
    w: &WeComSettings,
    label: &AppLabel,
    report: &mut Report,
) {
    match connector.probe_data_api().await {
        Ok(0) => report.findings.push(Finding::new(
            Level::Warn,
            label.topic("wecom"),
            "the data APIs answer, but the app's visible range (可见范围) covers no department: \
             only the members listed in it can log in, and groups carry no department names"
                .to_owned(),
            "数据接口可用，但应用的可见范围不含任何部门：只有可见范围中列出的成员能登录，groups 中没有部门名称".to_owned(),
        )),
        Ok(n) => report.findings.push(Finding::new(
            Level::Pass,
            label.topic("wecom"),
            format!("data API answered (department/simplelist): the visible range shows {n} department(s)"),
            format!("数据接口可用（department/simplelist）：可见范围内有 {n} 个部门"),
        )),
        Err(ConnectorError::Upstream { code, message }) => {
            let (en, zh) = explain(code, &message, w.agent_id);
            let mut f = Finding::new(
                Level::Fail,
                label.topic("wecom"),
                format!(
                    "gettoken works but the data APIs fail with {code}, so every login would fail: {en}"
                ),
                format!("gettoken 成功，但数据接口返回 {code}，所有登录都会失败：{zh}"),
            );
            f.wecom_errcode = Some(code);
            report.findings.push(f);
        }
        Err(e) => report.findings.push(Finding::new(
            Level::Fail,
            label.topic("wecom"),
            format!("the data API department/simplelist failed: {e}"),
            format!("数据接口 department/simplelist 调用失败：{e}"),
        )),
    }
}

/// The IP WeCom saw, from an `errmsg` like `"…, from ip: 1.2.3.4, more info at …"`.
pub fn ip_from_errmsg(message: &str) -> Option<&str> {
    let rest = &message[message.find("from ip:")? + "from ip:".len()..];
    let ip = rest.trim_start().split([',', ' ']).next()?.trim();
    (!ip.is_empty()).then_some(ip)
}

/// What a `gettoken` error code means and where to fix it, in English and Chinese
/// (codes from wecom-api.md §1 and §10).
pub fn explain(code: i64, message: &str, agent_id: i64) -> (String, String) {
    match code {
        40013 => (
            "the CorpID is wrong. Copy it from the admin console: 我的企业 (My Company) → 企业信息 \
             (Company Info) → 企业ID, into wecom.corp_id."
                .into(),
            "企业ID（CorpID）错误。请在管理后台「我的企业 → 企业信息」底部复制企业ID，填入 wecom.corp_id。"
                .into(),
        ),
        40001 => (
            format!(
                "the app secret is wrong or was reset, or the app is disabled. In the admin \
                 console open 应用管理 (Apps) → 自建 (Self-built) → the app with AgentId \
                 {agent_id} → Secret → 查看 (View; it is sent to the admin's WeCom), and put it \
                 in wecom.secret / the variable named by wecom.secret_env. Make sure the app is \
                 enabled (not 已停用)."
            ),
            format!(
                "应用 Secret 错误或已重置，或应用已停用。请在管理后台「应用管理 → 自建 → AgentId 为 \
                 {agent_id} 的应用 → Secret → 查看」获取（会发送到管理员的企业微信），填入 \
                 wecom.secret 或 wecom.secret_env 指定的环境变量；并确认应用未停用。"
            ),
        ),
        40091 => (
            "the secret is not a secret of this corp (e.g. another company's app, or the \
             contacts/customer-contact secret). Use the Secret of the self-built app itself: \
             应用管理 → 自建 → the app → Secret."
                .into(),
            "Secret 不属于该企业（例如其他企业的应用，或通讯录/客户联系的 Secret）。请使用该自建应用本身的 \
             Secret：「应用管理 → 自建 → 该应用 → Secret」。"
                .into(),
        ),
        41002 | 41004 => (
            "the corp id or the secret is missing: set wecom.corp_id and wecom.secret_env.".into(),
            "缺少企业ID或 Secret：请设置 wecom.corp_id 和 wecom.secret_env。".into(),
        ),
        60020 => {
            let ip = ip_from_errmsg(message).unwrap_or("(not given by WeCom)");
            (
                format!(
                    "WeCom refuses calls from this server's IP {ip}. Self-built apps must list \
                     the server's public IP: 应用管理 → 自建 → the app → 企业可信IP (Trusted \
                     IPs) → add {ip}. If the server sits behind NAT or a proxy, add the address \
                     WeCom saw, as shown here."
                ),
                format!(
                    "企业微信拒绝来自本服务器 IP {ip} 的调用。自建应用须配置服务器出口 IP：「应用管理 → 自建 → \
                     该应用 → 企业可信IP」中添加 {ip}（经过 NAT 或代理时，以此处显示的 IP 为准）。"
                ),
            )
        }
        50003 => (
            format!(
                "the app is disabled. Enable it: 应用管理 → 自建 → the app with AgentId \
                 {agent_id} → 启用 (Enable)."
            ),
            format!("应用已停用。请在「应用管理 → 自建 → AgentId 为 {agent_id} 的应用」中启用。"),
        ),
        45009 => (
            "WeCom's call rate limit was hit; repeated wrong secrets ban the IP from gettoken \
             for one hour. Fix the secret, then wait before trying again."
                .into(),
            "触发了企业微信的调用频率限制；多次使用错误 Secret 会使该 IP 在一小时内无法调用 gettoken。请先修正 \
             Secret，稍后再试。"
                .into(),
        ),
        48002 => (
            "this app may not call the API (api forbidden): check the app's permissions in \
             the admin console."
                .into(),
            "该应用无权调用此接口：请在管理后台检查应用的接口权限。".into(),
        ),
        -1 => (
            "WeCom is busy (system busy); try again in a moment.".into(),
            "企业微信系统繁忙，请稍后重试。".into(),
        ),
        _ => (
            format!(
                "WeCom answered: {message}. Look the code up at \
                 https://open.work.weixin.qq.com/devtool/query?e={code}"
            ),
            format!(
                "企业微信返回：{message}。可在 https://open.work.weixin.qq.com/devtool/query?e={code} 查询该错误码。"
            ),
        ),
    }
}

/// `wecom-oidc check`: prints the report; an error (non-zero exit) when anything failed.
pub async fn run(config_path: Option<&Path>, clock: SharedClock) -> Result<(), String> {
    let path = config_path.unwrap_or(Path::new("wecom-oidc.toml"));
    let report = check_file(path, clock).await;
    print!("{}", report.render());
    if report.passed() {
        Ok(())
    } else {
        Err("the check found problems (see above)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ip_wecom_saw_is_read_from_errmsg() {
        let m = "not allow to access from your ip, hint: [1_2], from ip: 203.0.113.9, more info \
                 at https://open.work.weixin.qq.com/devtool/query?e=60020";
        assert_eq!(ip_from_errmsg(m), Some("203.0.113.9"));
        assert_eq!(ip_from_errmsg("from ip: 2001:db8::1"), Some("2001:db8::1"));
        assert_eq!(ip_from_errmsg("not allow to access from your ip"), None);
        assert_eq!(ip_from_errmsg("from ip:"), None);
    }

    #[test]
    fn every_console_error_is_explained_in_both_languages_with_where_to_fix() {
        for code in [40013, 40001, 40091, 60020, 50003, 45009] {
            let (en, zh) = explain(code, "x, from ip: 198.51.100.7, more", 1000002);
            assert!(!en.is_empty() && !zh.is_empty());
            assert!(zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
        }
        assert!(explain(60020, "from ip: 198.51.100.7,", 1)
            .0
            .contains("198.51.100.7"));
        assert!(explain(60020, "from ip: 198.51.100.7,", 1)
            .1
            .contains("企业可信IP"));
        assert!(explain(40001, "", 1000002).0.contains("1000002"));
        assert!(explain(99999, "odd", 1).0.contains("e=99999"));
    }
}
