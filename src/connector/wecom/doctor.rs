//! `wecom-oidc check` for a WeCom app: asks WeCom for the app's access_token (`gettoken`,
//! wecom-api.md §1) and one data API, loads its login page, and turns each WeCom error code into
//! plain Chinese and English: what is wrong and where in the admin console (管理后台) to fix it.
//! The token lives in a throw-away memory store and is never shown.

use std::sync::Arc;

use super::{WeComConnector, WeComSettings};
use crate::check::{Finding, Level};
use crate::clock::SharedClock;
use crate::connector::registry::CheckContext;
use crate::connector::ConnectorError;
use crate::storage::MemoryStore;

/// Every finding for the app `w`.
pub(super) async fn check(w: &WeComSettings, ctx: &CheckContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    check_wecom(w, ctx.label, ctx.clock.clone(), &mut out).await;
    check_login_page(ctx, w, &mut out).await;
    out
}

/// `base` with the app's label: `wecom`, or `wecom (branch)` when there are several apps.
fn topic(label: &str, base: &str) -> String {
    format!("{base}{label}")
}

/// WeCom's wording when the redirect domain is not the app's trusted domain (wecom-api.md §2).
const DOMAIN_ERROR_TEXT: &str = "redirect_uri需使用应用可信域名";

/// Loads WeCom's PC login page (wecom-api.md §3) for our callback, without following redirects,
/// and looks for WeCom's refusals: an untrusted callback domain (the `uriconfirm` page with
/// `err_type=domain_err`, or its wording) or a wrong AgentId (40056). WeCom renders this page for
/// browsers, so a page without a known refusal is reported as "nothing found", not as proof.
async fn check_login_page(ctx: &CheckContext<'_>, w: &WeComSettings, out: &mut Vec<Finding>) {
    let label = ctx.label;
    let callback = format!("{}/callback/{}", ctx.issuer, w.id);
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
            out.push(Finding::new(
                Level::Warn,
                topic(label, "wecom login page"),
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
    let domain = ctx.trusted_domain.unwrap_or_default().to_owned();
    if location.contains("domain_err") || body.contains(DOMAIN_ERROR_TEXT) {
        out.push(Finding::new(
            Level::Fail,
            topic(label, "wecom login page"),
            format!(
                "WeCom refuses the callback domain {domain}: enter it exactly (port included) as                  the app's trusted domain: 应用管理 → 自建 → the app → 网页授权及JS-SDK → 可信域名,                  and 企业微信授权登录 → Web网页 → 授权回调域"
            ),
            format!(
                "企业微信拒绝回调域名 {domain}：请在「应用管理 → 自建 → 该应用 → 网页授权及JS-SDK → 可信域名」                 以及「企业微信授权登录 → Web网页 → 授权回调域」中准确填写（含端口）"
            ),
        ));
    } else if body.contains("40056") || body.contains("agentid参数错误") {
        out.push(Finding::new(
            Level::Fail,
            topic(label, "wecom login page"),
            format!(
                "WeCom does not know AgentId {} in this corp: copy the AgentId from 应用管理 → 自建                  → the app into wecom.agent_id",
                w.agent_id
            ),
            format!(
                "企业微信不认识 AgentId {}：请从「应用管理 → 自建 → 该应用」复制 AgentId 到 wecom.agent_id",
                w.agent_id
            ),
        )
        .with_errcode(40056));
    } else {
        out.push(Finding::new(
            Level::Pass,
            topic(label, "wecom login page"),
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

/// Calls `gettoken` with a throw-away store, so a cached token cannot hide a wrong secret.
async fn check_wecom(w: &WeComSettings, label: &str, clock: SharedClock, out: &mut Vec<Finding>) {
    let connector = match WeComConnector::new(
        w.clone(),
        crate::storage::upstream_role(Arc::new(MemoryStore::new())),
        clock,
    ) {
        Ok(c) => c,
        Err(e) => {
            out.push(Finding::new(
                Level::Fail,
                topic(label, "wecom"),
                e.to_string(),
                format!("企业微信设置有误：{e}"),
            ));
            return;
        }
    };
    match connector.access_token().await {
        Ok(_) => {
            out.push(Finding::new(
                Level::Pass,
                topic(label, "wecom"),
                format!(
                    "gettoken succeeded: corp {} accepts the app secret",
                    w.corp_id
                ),
                format!("gettoken 成功：企业 {} 与应用 Secret 匹配", w.corp_id),
            ));
            check_wecom_data_api(&connector, w, label, out).await;
        }
        Err(ConnectorError::Upstream { code, message }) => {
            let (en, zh) = explain(code, &message, w.agent_id);
            out.push(
                Finding::new(
                    Level::Fail,
                    topic(label, "wecom"),
                    format!("gettoken failed with {code}: {en}"),
                    format!("gettoken 失败（{code}）：{zh}"),
                )
                .with_errcode(code),
            );
        }
        Err(e) => out.push(Finding::new(
            Level::Fail,
            topic(label, "wecom"),
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
    label: &str,
    out: &mut Vec<Finding>,
) {
    match connector.probe_data_api().await {
        Ok(0) => out.push(Finding::new(
            Level::Warn,
            topic(label, "wecom"),
            "the data APIs answer, but the app's visible range (可见范围) covers no department: \
             only the members listed in it can log in, and groups carry no department names"
                .to_owned(),
            "数据接口可用，但应用的可见范围不含任何部门：只有可见范围中列出的成员能登录，groups 中没有部门名称".to_owned(),
        )),
        Ok(n) => out.push(Finding::new(
            Level::Pass,
            topic(label, "wecom"),
            format!("data API answered (department/simplelist): the visible range shows {n} department(s)"),
            format!("数据接口可用（department/simplelist）：可见范围内有 {n} 个部门"),
        )),
        Err(ConnectorError::Upstream { code, message }) => {
            let (en, zh) = explain(code, &message, w.agent_id);
            out.push(Finding::new(
                Level::Fail,
                topic(label, "wecom"),
                format!(
                    "gettoken works but the data APIs fail with {code}, so every login would fail: {en}"
                ),
                format!("gettoken 成功，但数据接口返回 {code}，所有登录都会失败：{zh}"),
            )
            .with_errcode(code));
        }
        Err(e) => out.push(Finding::new(
            Level::Fail,
            topic(label, "wecom"),
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
