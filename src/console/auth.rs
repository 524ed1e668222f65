//! Signing in to the console through the upstream (a code flow of the console's own client,
//! redeemed in-process), signing out, and the language switch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::pages::{is_zh, message, Message, LANG_COOKIE};
use super::session::ConsoleSession;
use super::{session, Console, CONSOLE_CLIENT_ID, CONSOLE_PATH};
use crate::bounded::insert_evicting_oldest;
use crate::identity::Identity;
use crate::provider::params::Params;
use crate::provider::ClientCredentials;
use crate::random;
use crate::secret::Secret;
use crate::web::cookies::cookie_value as cookie;

/// The cookie binding a console login to the browser that started it (RFC 9700 §4.7).
const LOGIN_COOKIE: &str = "wecom_oidc_admin_login";
/// The language switch's cookie.
/// A console login not finished within this many seconds is forgotten.
const LOGIN_TTL: i64 = 600;
/// The most console logins in flight at once; the oldest go first.
const MAX_PENDING: usize = 1000;

/// Console logins in flight: state → (PKCE verifier, started at).
#[derive(Default)]
pub(super) struct PendingLogins(Mutex<HashMap<String, (String, i64)>>);

/// The session of a form post, once its CSRF token (and, when the browser sends one, its
/// `Origin`) proves it came from a console page.
pub(super) fn checked(
    c: &Console,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<ConsoleSession, Box<Response>> {
    let zh = is_zh(headers);
    let refused = |zh_text: &str, en_text: &str| {
        message(
            StatusCode::FORBIDDEN,
            &Message::new(zh, "操作被拒绝", "Action refused", zh_text, en_text).with_link(
                "/admin",
                "返回控制台",
                "Back to the console",
            ),
        )
    };
    let Some(session) = c.sessions.current(headers, c.parts.clock.now()) else {
        return Err(Box::new(refused(
            "控制台会话已过期，请重新登录。",
            "Your console session has ended; sign in again.",
        )));
    };
    let origin_ok = match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(origin) => url::Url::parse(c.parts.provider.issuer())
            .is_ok_and(|u| u.origin().ascii_serialization() == origin),
    };
    let token_ok = form
        .get("csrf")
        .is_some_and(|t| random::constant_time_eq(t.as_bytes(), session.csrf.as_bytes()));
    if !origin_ok || !token_ok {
        tracing::warn!(user = %session.identity.user_id, "console form refused: CSRF check failed");
        return Err(Box::new(refused(
            "表单校验失败（可能来自其他网站）。请从控制台页面重新操作。",
            "The form failed its check (it may have come from another site). Use the console page again.",
        )));
    }
    Ok(session)
}

/// A console form post that passed [`checked`]: the operator, the page language and the form.
/// Every action starts here; a post that fails the check gets the refusal page.
pub(super) struct CheckedForm {
    pub(super) session: ConsoleSession,
    pub(super) zh: bool,
    pub(super) form: HashMap<String, String>,
}

impl FromRequest<Arc<Console>> for CheckedForm {
    type Rejection = Response;

    async fn from_request(req: Request, c: &Arc<Console>) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let axum::Form(form) = axum::Form::<HashMap<String, String>>::from_request(req, c)
            .await
            .map_err(IntoResponse::into_response)?;
        let session = checked(c, &headers, &form).map_err(|r| *r)?;
        Ok(CheckedForm {
            session,
            zh: is_zh(&headers),
            form,
        })
    }
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// `GET /admin/lang?to=zh|en&back=/admin/...`: remembers the language, goes back.
pub(super) async fn language(Query(q): Query<HashMap<String, String>>) -> Response {
    let to = if q.get("to").map(String::as_str) == Some("zh") {
        "zh"
    } else {
        "en"
    };
    // Only back into the console: never an open redirect.
    let back = q
        .get("back")
        .filter(|b| b.starts_with("/admin") && !b.contains("//") && !b.contains('\\'))
        .cloned()
        .unwrap_or_else(|| CONSOLE_PATH.to_owned());
    let mut r = see_other(&back);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={to}; Path=/admin; SameSite=Strict; Max-Age=31536000"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `GET /admin/login`: starts a code flow of the console's client (state bound to this browser,
/// PKCE S256, RFC 7636 §4) at this provider's own `/authorize`.
pub(super) async fn login(State(c): State<Arc<Console>>) -> Response {
    let now = c.parts.clock.now();
    let state = random::token(32);
    let verifier = random::token(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    {
        let mut pending = c.logins.0.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, (_, at)| now < at.saturating_add(LOGIN_TTL));
        let entry = (verifier, now);
        insert_evicting_oldest(
            &mut *pending,
            MAX_PENDING,
            state.clone(),
            entry,
            |(_, at)| *at,
        );
    }
    let issuer = c.parts.provider.issuer();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", CONSOLE_CLIENT_ID)
        .append_pair("redirect_uri", &redirect_uri(issuer))
        // `groups`: admins may be named by department or tag.
        .append_pair("scope", "openid profile groups")
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let mut r = see_other(&format!("{issuer}/authorize?{query}"));
    // Lax: it must come back with the top-level redirect from the upstream's login page.
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={state}; Path=/admin; HttpOnly; SameSite=Lax; Max-Age={LOGIN_TTL}{}",
        if c.secure { "; Secure" } else { "" }
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn redirect_uri(issuer: &str) -> String {
    format!("{issuer}{CONSOLE_PATH}/callback")
}

/// `GET /admin/callback`: checks the state against this browser, redeems the code in-process,
/// and lets an admin in; anyone else gets a refusal page.
pub(super) async fn callback(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let zh = is_zh(&headers);
    let fail = |status, zh_text: &str, en_text: &str| {
        message(
            status,
            &Message::new(
                zh,
                "无法登录控制台",
                "Cannot sign in to the console",
                zh_text,
                en_text,
            )
            .with_link("/admin/login", "重新登录", "Sign in again"),
        )
    };
    if let Some(err) = p.get("error") {
        let why = p.get("error_description").cloned().unwrap_or_default();
        return fail(
            StatusCode::FORBIDDEN,
            &format!("登录未完成：{err} {why}"),
            &format!("The sign-in did not complete: {err} {why}"),
        );
    }
    let (Some(code), Some(state)) = (p.get("code"), p.get("state")) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "回调缺少 code 或 state。",
            "The callback carries no code or state.",
        );
    };
    // RFC 9207 §2.4: the response must come from this issuer.
    if p.get("iss").map(String::as_str) != Some(c.parts.provider.issuer()) {
        return fail(
            StatusCode::BAD_REQUEST,
            "回调的 iss 与本服务不符。",
            "The callback's iss is not this issuer.",
        );
    }
    let bound = cookie(&headers, LOGIN_COOKIE)
        .is_some_and(|v| random::constant_time_eq(v.as_bytes(), state.as_bytes()));
    let pending = c
        .logins
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(state.as_str());
    let now = c.parts.clock.now();
    let verifier = match pending {
        Some((verifier, at)) if bound && now < at.saturating_add(LOGIN_TTL) => verifier,
        _ => return fail(
            StatusCode::BAD_REQUEST,
            "登录链接已过期、已被使用，或不是在这个浏览器中发起的。",
            "The sign-in link has expired, was already used, or was started in another browser.",
        ),
    };
    let identity = match redeem(&c, code, &verifier).await {
        Ok(identity) => identity,
        Err(why) => {
            tracing::warn!(error = %why, "console sign-in failed");
            return fail(StatusCode::BAD_REQUEST, &why, &why);
        }
    };
    if !c.parts.settings.admits(&identity) {
        tracing::warn!(user = %identity.user_id, connector = %identity.connector_id, "console sign-in refused: not an admin");
        let who = identity
            .name
            .clone()
            .unwrap_or_else(|| identity.user_id.clone());
        return message(
            StatusCode::FORBIDDEN,
            &Message::new(
                zh,
                "你不是本服务的管理员",
                "You are not an administrator of this service",
                &format!("{who}（{}）不在 [admin] 配置的管理员名单（users、groups）中。请联系运维人员把你加入。", identity.user_id),
                &format!("{who} ({}) is not among the administrators the [admin] section names (users, groups). Ask whoever runs this service to add you.", identity.user_id),
            ),
        );
    }
    tracing::info!(user = %identity.user_id, connector = %identity.connector_id, "console sign-in");
    let value = c.sessions.start(identity, now);
    // A page, not a redirect: a SameSite=Strict cookie set at the end of a redirect chain that
    // began on the upstream's site is not sent on that chain's next hop, but it is on a
    // navigation this page starts.
    let mut r = message(
        StatusCode::OK,
        &Message::new(
            zh,
            "已登录",
            "Signed in",
            "正在进入控制台……",
            "Opening the console…",
        )
        .with_link(CONSOLE_PATH, "进入控制台", "Open the console")
        .refreshing_to(CONSOLE_PATH),
    );
    if let Some(v) = session::set_cookie(&value, c.secure) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{LOGIN_COOKIE}=; Path=/admin; Max-Age=0")) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Redeems the console's code at the provider's token logic (client authentication, PKCE,
/// single use, redirect URI) and reads whom the access token speaks for; the grant is then
/// revoked, since the console keeps its own session and needs no token.
async fn redeem(c: &Console, code: &str, verifier: &str) -> Result<Identity, String> {
    let provider = &c.parts.provider;
    let params = Params::from_pairs([
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), code.to_owned()),
        ("redirect_uri".to_owned(), redirect_uri(provider.issuer())),
        ("code_verifier".to_owned(), verifier.to_owned()),
        ("client_id".to_owned(), CONSOLE_CLIENT_ID.to_owned()),
    ]);
    let creds = ClientCredentials {
        basic: None,
        body_client_id: Some(CONSOLE_CLIENT_ID.to_owned()),
        body_client_secret: Some(Secret::new(c.parts.client_secret.clone())),
    };
    let tokens = provider
        .token(&params, &creds)
        .await
        .map_err(|e| format!("the code was refused: {}", e.error))?;
    let record = provider
        .find_live_access_token(&tokens.access_token)
        .await
        .map_err(|e| format!("the access token was refused: {e}"))?;
    if let Err(e) = provider
        .store()
        .revoke_grant(&record.grant_id, record.expires_at)
        .await
    {
        tracing::warn!(error = %e, "cannot revoke the console's sign-in grant");
    }
    Ok(record.identity.clone())
}

/// `POST /admin/logout`: ends the console session (CSRF-checked like every form).
pub(super) async fn logout(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    if checked(&c, &headers, &form).is_ok() {
        c.sessions.end(&headers);
    }
    let zh = is_zh(&headers);
    let mut r = message(
        StatusCode::OK,
        &Message::new(
            zh,
            "已退出",
            "Signed out",
            "你已退出控制台。",
            "You have left the console.",
        )
        .with_link("/admin/login", "重新登录", "Sign in again"),
    );
    if let Some(v) = session::clear_cookie(c.secure) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
