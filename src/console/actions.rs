//! The console's actions: each checks the session and its CSRF token, then calls the admin
//! router in-process (`tower::ServiceExt::oneshot`), so the CLI and the console share one
//! implementation and one audit trail, and shows the answer — an error, including a route this
//! server does not offer, in words.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::auth::CheckedForm;
use super::pages::{message, Message};
use super::Console;

/// Calls `path` of the admin router with `body`; the status and the JSON answer.
async fn call_admin(
    c: &Console,
    path: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    crate::admin::post_in_process(c.parts.admin.clone(), path, body.to_string()).await
}

/// The strings listed under `key` in an admin answer.
fn strings<'a>(answer: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    answer
        .get(key)
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|p| p.as_str()).collect())
        .unwrap_or_default()
}

/// The result page of an action.
fn outcome(
    zh: bool,
    what: (&str, &str),
    status: StatusCode,
    answer: &serde_json::Value,
    done: (String, String),
) -> Response {
    let back = |m: Message| m.with_link("/admin", "返回控制台", "Back to the console");
    if status.is_success() {
        return message(
            StatusCode::OK,
            &back(Message::new(zh, what.0, what.1, &done.0, &done.1)),
        );
    }
    let (zh_text, en_text) = if status == StatusCode::NOT_FOUND {
        (
            "本服务器不提供此操作（管理接口回答 404）。请升级 wecom-oidc 后再试。".to_owned(),
            "This server does not offer this action (the admin API answered 404). Upgrade wecom-oidc and try again.".to_owned(),
        )
    } else {
        let code = answer
            .get("error")
            .and_then(|v| v.as_str())
            .unwrap_or("error");
        let desc = answer
            .get("error_description")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let problems = strings(answer, "problems");
        let detail = if problems.is_empty() {
            format!("{code}: {desc}")
        } else {
            format!("{code}: {}", problems.join("; "))
        };
        (
            format!("操作失败（{}）：{detail}", status.as_u16()),
            format!("The action failed ({}): {detail}", status.as_u16()),
        )
    };
    message(
        if status.is_client_error() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::BAD_GATEWAY
        },
        &back(Message::new(
            zh,
            "操作失败",
            "Action failed",
            &zh_text,
            &en_text,
        ))
        .marked_as_error(),
    )
}

/// The form field `name`, trimmed; `None` when absent or blank.
fn text<'f>(form: &'f HashMap<String, String>, name: &str) -> Option<&'f str> {
    form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// `POST /admin/signout`: signs a person out everywhere (`POST /v1/signout`).
pub(super) async fn signout(
    State(c): State<Arc<Console>>,
    CheckedForm { session, zh, form }: CheckedForm,
) -> Response {
    let user = text(&form, "user").unwrap_or_default().to_owned();
    if user.is_empty() {
        return outcome(
            zh,
            ("退出登录", "Sign out"),
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"error": "invalid_request", "error_description": "no person named"}),
            Default::default(),
        );
    }
    let mut body = serde_json::json!({
        "user": user,
        "reason": text(&form, "reason").unwrap_or("signed out from the console"),
        "actor": session.actor(),
    });
    if let Some(connector) = form.get("connector").filter(|c| !c.is_empty()) {
        body["connector"] = serde_json::json!(connector);
    }
    let (status, answer) = call_admin(&c, "/v1/signout", body).await;
    let n = |k: &str| answer.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
    outcome(
        zh,
        ("已退出登录", "Signed out everywhere"),
        status,
        &answer,
        (
            format!("{user}：结束了 {} 个会话、{} 个授权、{} 个刷新令牌，通知了 {} 个应用。", n("sessions"), n("grants"), n("refresh_tokens"), n("logout_notifications")),
            format!("{user}: {} sessions, {} grants and {} refresh tokens ended; {} applications notified.", n("sessions"), n("grants"), n("refresh_tokens"), n("logout_notifications")),
        ),
    )
}

/// `POST /admin/keys/rotate`: a new signing key (`POST /v1/keys/rotate`).
pub(super) async fn rotate(
    State(c): State<Arc<Console>>,
    CheckedForm { session, zh, form }: CheckedForm,
) -> Response {
    let alg = form
        .get("alg")
        .cloned()
        .unwrap_or_else(|| "RS256".to_owned());
    let (status, answer) = call_admin(
        &c,
        "/v1/keys/rotate",
        serde_json::json!({"alg": alg, "actor": session.actor()}),
    )
    .await;
    let kid = answer
        .get("kid")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    outcome(
        zh,
        ("已轮换密钥", "Key rotated"),
        status,
        &answer,
        (
            format!("新的 {alg} 签名密钥 {kid} 已启用；旧密钥在宽限期内继续公布。"),
            format!("The new {alg} signing key {kid} is active; the previous one stays published for the grace period."),
        ),
    )
}

/// `POST /admin/reload`: re-reads the configuration (`POST /v1/reload`).
pub(super) async fn reload(
    State(c): State<Arc<Console>>,
    CheckedForm { session, zh, .. }: CheckedForm,
) -> Response {
    let (status, answer) = call_admin(
        &c,
        "/v1/reload",
        serde_json::json!({"actor": session.actor()}),
    )
    .await;
    let changes = strings(&answer, "changes");
    let listed = if changes.is_empty() {
        "-".to_owned()
    } else {
        changes.join("; ")
    };
    outcome(
        zh,
        ("已重新加载配置", "Configuration reloaded"),
        status,
        &answer,
        (format!("变更：{listed}"), format!("Changes: {listed}")),
    )
}
