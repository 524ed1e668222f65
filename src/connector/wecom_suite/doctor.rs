//! `wecom-oidc check` for a WeCom suite: has a `suite_ticket` arrived (it cannot work before),
//! does WeCom accept the suite secret with it (`get_suite_token`), and which corps have
//! installed the app. Reads the deployment's store when `check` could open it.

use std::sync::Arc;

use super::{AppKind, SuiteConnector, SuiteSettings, NO_TICKET};
use crate::check::{Finding, Level};
use crate::connector::registry::{CheckContext, OpenDeps};
use crate::connector::ConnectorError;
use crate::metrics::Metrics;
use crate::storage::UpstreamStore;

/// Every finding for the suite `s`.
pub(super) async fn check(s: &SuiteSettings, ctx: &CheckContext<'_>) -> Vec<Finding> {
    let topic = format!("wecom-suite{}", ctx.label);
    let mut out = vec![Finding::new(
        Level::Pass,
        &topic,
        format!(
            "set the command callback URL (指令回调URL) of suite {} to {}/callback/{}/events",
            s.suite_id, ctx.issuer, s.id
        ),
        format!(
            "第三方应用 {} 的指令回调URL应为 {}/callback/{}/events",
            s.suite_id, ctx.issuer, s.id
        ),
    )];
    let Some(store) = ctx.store.clone() else {
        out.push(Finding::new(
            Level::Warn,
            &topic,
            "cannot read the store (a running server holds the sled data dir): suite_ticket and installs not checked",
            "无法读取存储（运行中的服务占用了 sled 数据目录）：未检查 suite_ticket 和授权企业",
        ));
        return out;
    };
    out.extend(check_with_store(s, store, ctx).await);
    out
}

/// The findings that need the store.
pub(super) async fn check_with_store(
    s: &SuiteSettings,
    store: Arc<dyn UpstreamStore>,
    ctx: &CheckContext<'_>,
) -> Vec<Finding> {
    let topic = format!("wecom-suite{}", ctx.label);
    let deps = OpenDeps {
        store,
        clock: ctx.clock.clone(),
        metrics: Arc::new(Metrics::new()),
    };
    let connector = match SuiteConnector::open(s.clone(), &deps) {
        Ok(c) => c,
        Err(e) => {
            return vec![Finding::new(
                Level::Fail,
                &topic,
                e.to_string(),
                format!("配置无法使用：{e}"),
            )]
        }
    };
    match connector.secrets.ticket().await {
        Ok(None) => {
            return vec![Finding::new(
                Level::Fail,
                &topic,
                NO_TICKET.replace("{id}", &s.id),
                format!(
                    "尚未收到 suite_ticket：请在服务商管理后台为第三方应用配置并验证指令回调URL（/callback/{}/events），企业微信每 10 分钟推送一次",
                    s.id
                ),
            )]
        }
        Err(e) => {
            return vec![Finding::new(
                Level::Fail,
                &topic,
                format!("the stored suite_ticket cannot be read: {e}"),
                format!("无法读取已保存的 suite_ticket：{e}"),
            )]
        }
        Ok(Some(_)) => {}
    }
    let suite_token = connector.suite_access_token().await;
    let token_ok = suite_token.is_ok();
    let mut out = match suite_token {
        Ok(_) => vec![Finding::new(
            Level::Pass,
            &topic,
            "a suite_ticket has arrived and get_suite_token accepts the suite secret",
            "已收到 suite_ticket，get_suite_token 接受 Secret",
        )],
        Err(ConnectorError::Upstream { code, message }) if code == super::api::STALE_TICKET => {
            vec![Finding::new(
                Level::Fail,
                &topic,
                format!(
                    "get_suite_token refused the stored suite_ticket ({code}, too old): the server \
                     missed WeCom's pushes; a new ticket arrives within 10 minutes once \
                     {}/callback/{}/events is reachable: {message}",
                    ctx.issuer, s.id
                ),
                format!("get_suite_token 拒绝了已保存的 suite_ticket（{code}，已过期）：请确认指令回调URL可访问，企业微信每 10 分钟推送新的 suite_ticket"),
            )
            .with_errcode(code)]
        }
        Err(ConnectorError::Upstream { code, message }) => {
            vec![Finding::new(
                Level::Fail,
                &topic,
                format!(
                    "get_suite_token refused ({code}): check suite_id and suite_secret in the vendor console (服务商管理后台 → 应用管理): {message}"
                ),
                format!("get_suite_token 失败（{code}）：请核对服务商管理后台中的 SuiteID 与 Secret"),
            )
            .with_errcode(code)]
        }
        Err(e) => vec![Finding::new(
            Level::Fail,
            &topic,
            format!("get_suite_token failed: {e}"),
            format!("get_suite_token 失败：{e}"),
        )],
    };
    out.extend(check_corps(s, &connector, &topic, token_ok).await);
    out
}

/// The corps the configuration names (the 代开发 app's corp, or `allowed_corps`): installed,
/// and (when the suite token could be had) their token obtainable with the stored permanent
/// code.
async fn check_corps(
    s: &SuiteSettings,
    c: &SuiteConnector,
    topic: &str,
    try_tokens: bool,
) -> Vec<Finding> {
    let corps: Vec<&str> = match s.kind {
        AppKind::Customised => vec![s.corp_id.as_str()],
        AppKind::ThirdParty => s.allowed_corps.iter().map(String::as_str).collect(),
    };
    let mut out = Vec::new();
    for corp in corps {
        let installed = match c.secrets.installation(corp).await {
            Ok(i) => i,
            Err(e) => {
                out.push(Finding::new(
                    Level::Fail,
                    topic,
                    format!("corp {corp}: the stored installation cannot be read: {e}"),
                    format!("企业 {corp}：无法读取已保存的授权信息：{e}"),
                ));
                continue;
            }
        };
        let Some((record, _)) = installed else {
            out.push(Finding::new(
                Level::Fail,
                topic,
                format!(
                    "corp {corp} has not installed the app (no create_auth received, or it was \
                     removed): its admin installs it from the app marketplace or the 代开发 \
                     authorisation link; WeCom then pushes create_auth to the command callback"
                ),
                format!("企业 {corp} 尚未安装（或已移除）此应用：请该企业管理员安装/授权后，企业微信会向指令回调URL推送 create_auth"),
            ));
            continue;
        };
        if s.kind == AppKind::Customised && record.agent_id != s.agent_id {
            out.push(Finding::new(
                Level::Fail,
                topic,
                format!(
                    "corp {corp} authorised the app as AgentId {}, but agent_id is {}",
                    record.agent_id, s.agent_id
                ),
                format!(
                    "企业 {corp} 授权的应用 AgentId 为 {}，配置中的 agent_id 为 {}",
                    record.agent_id, s.agent_id
                ),
            ));
            continue;
        }
        if !try_tokens {
            continue;
        }
        out.push(match c.corp_access_token(corp).await {
            Ok(_) => Finding::new(
                Level::Pass,
                topic,
                format!(
                    "corp {corp} ({}) has installed the app; its token is obtainable",
                    record.corp_name
                ),
                format!(
                    "企业 {corp}（{}）已安装此应用，可获取其 access_token",
                    record.corp_name
                ),
            ),
            Err(e) => Finding::new(
                Level::Fail,
                topic,
                format!("corp {corp}: get_corp_token failed: {e}"),
                format!("企业 {corp}：get_corp_token 失败：{e}"),
            ),
        });
    }
    out
}
