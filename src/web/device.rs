//! The device authorization grant over HTTP (RFC 8628): `POST /device_authorization` for the
//! device, and the verification page `/device` where a person enters or confirms the user code,
//! signs in upstream, and allows or denies with one tap. Bilingual by `Accept-Language`.

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::cookies::{ensure_browser_binding, session_cookie};
use super::error_page::prefers_chinese;
use super::query::QueryParams;
use super::token::{client_form, oauth_error_response};
use super::WebState;
use crate::provider::device::{normalize_user_code, DevicePageError, DeviceRequest};
use crate::provider::handoff::{LoginBrowser, LoginStart};
use crate::provider::params::Params;
use crate::random;

/// `POST /device_authorization` (RFC 8628 §3.1–3.2).
pub async fn device_authorization(
    State(s): State<WebState>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (params, creds) = match client_form(&headers, &body) {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let result = s.provider.device_authorization(&params, &creds).await;
    // The device code must survive a crash once the device has it (it will poll with it).
    let durable = super::durable(&s).await;
    match (result, durable) {
        (Ok(r), Ok(())) => (StatusCode::OK, no_store(), Json(r)).into_response(),
        (Ok(_), Err(e)) => oauth_error_response(&e, creds.used_basic()),
        (Err(e), _) => {
            tracing::info!(error = e.error.code.as_str(), description = %e.error.description, "device authorization refused");
            oauth_error_response(&e.error, e.used_basic)
        }
    }
}

fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// A text in both languages.
struct Text {
    zh: &'static str,
    en: &'static str,
}

const INVALID_CODE: Text = Text {
    zh: "代码无效、已过期或已使用。请检查设备上显示的代码，或在设备上重新开始。",
    en: "That code is unknown, expired or already used. Check the code on your device, or start again there.",
};

const LOGIN_FAILED: Text = Text {
    zh: "登录未完成。请重新输入设备上显示的代码再试一次。",
    en: "The sign-in did not complete. Enter the code from your device to try again.",
};

#[derive(Template)]
#[template(path = "device.html")]
struct Page<'a> {
    lang: &'a str,
    zh: bool,
    mode: &'a str,
    user_code: &'a str,
    client_name: &'a str,
    error: Option<&'a Text>,
    login_url: String,
    qr_svg: String,
    person: &'a str,
    scopes: Vec<Text>,
    csrf: String,
    approved: bool,
}

impl<'a> Page<'a> {
    fn new(headers: &HeaderMap, mode: &'a str) -> Self {
        let zh = prefers_chinese(headers, None);
        Self {
            lang: if zh { "zh-CN" } else { "en" },
            zh,
            mode,
            user_code: "",
            client_name: "",
            error: None,
            login_url: String::new(),
            qr_svg: String::new(),
            person: "",
            scopes: Vec::new(),
            csrf: String::new(),
            approved: false,
        }
    }

    fn respond(&self, status: StatusCode) -> Response {
        // Nothing loads and no script runs; forms go to this server only.
        const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                           frame-ancestors 'none'; base-uri 'none'";
        match self.render() {
            Ok(body) => super::html::page(status, body, CSP),
            Err(e) => {
                tracing::error!(error = %e, "device page failed to render");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// The page that asks for a user code, with `error` if the last one failed.
fn enter_page(
    headers: &HeaderMap,
    typed: &str,
    error: Option<&Text>,
    status: StatusCode,
) -> Response {
    let mut page = Page::new(headers, "enter");
    page.user_code = typed;
    page.error = error;
    page.respond(status)
}

/// What each scope lets the client have, for the confirmation.
fn scope_text(scope: &str) -> Text {
    let (zh, en) = match scope {
        "openid" => ("确认你的身份", "Confirm who you are"),
        "profile" => ("你的姓名和账号", "Your name and account"),
        "email" => ("你的邮箱地址", "Your e-mail address"),
        "phone" => ("你的手机号", "Your phone number"),
        "address" => ("你的地址", "Your address"),
        "groups" => ("你所在的部门和标签", "Your departments and tags"),
        "offline_access" => ("保持登录（刷新令牌）", "Stay signed in (refresh tokens)"),
        _ => ("其他权限", "Other access"),
    };
    Text { zh, en }
}

/// An SVG QR code of `text` (no script, no image request: inline markup).
fn qr_svg(text: &str) -> String {
    use qrcode::render::svg;
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => {
            let image = code
                .render::<svg::Color<'_>>()
                .min_dimensions(192, 192)
                .quiet_zone(true)
                .build();
            // Inline in HTML: without the XML declaration.
            image
                .find("<svg")
                .map_or(image.clone(), |at| image[at..].to_string())
        }
        Err(e) => {
            tracing::warn!(error = %e, "no QR code for the verification URI");
            String::new()
        }
    }
}

/// The anti-forgery value of the confirmation form: bound to the session cookie (which a
/// forging site cannot read) and to the user code.
fn csrf_token(session_cookie: &str, user_code: &str) -> String {
    random::hash_secret(&format!("device-csrf\0{session_cookie}\0{user_code}"))
}

/// `GET /device`: the code entry, then (for a live code) the sign-in offer with its QR code, or
/// the confirmation once the person is signed in.
pub async fn page(
    State(s): State<WebState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams,
) -> Response {
    if q.has("error") {
        // A failed upstream login comes back here (its `state` is the user code).
        let typed = q.get("state").unwrap_or("");
        return enter_page(
            &headers,
            typed,
            Some(&LOGIN_FAILED),
            StatusCode::BAD_REQUEST,
        );
    }
    let Some(typed) = q.get("user_code") else {
        return enter_page(&headers, "", None, StatusCode::OK);
    };
    let request = match s.provider.device_request(typed).await {
        Ok(r) => r,
        Err(e) => return page_error(&headers, typed, e),
    };
    let cookie = session_cookie(&headers);
    match s
        .provider
        .device_session(&request.client_id, cookie.as_deref())
        .await
    {
        Ok(session) => {
            let person = session
                .identity
                .name
                .clone()
                .unwrap_or_else(|| session.identity.username.clone());
            let mut page = Page::new(&headers, "confirm");
            page.user_code = &request.user_code;
            page.client_name = &request.client_name;
            page.person = &person;
            page.scopes = request.scopes.iter().map(|s| scope_text(s)).collect();
            page.csrf = csrf_token(cookie.as_deref().unwrap_or(""), &request.user_code);
            page.respond(StatusCode::OK)
        }
        Err(DevicePageError::LoginRequired) => {
            let user_agent = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok());
            if s.provider
                .device_signs_in_silently(&request.client_id, user_agent)
            {
                // Inside the upstream's app the sign-in needs no page: go at once, so the
                // person's only tap is "Allow".
                return start_login(&s, &headers, &request.user_code).await;
            }
            sign_in_page(&headers, &request)
        }
        Err(e) => page_error(&headers, typed, e),
    }
}

fn sign_in_page(headers: &HeaderMap, request: &DeviceRequest) -> Response {
    let mut page = Page::new(headers, "signin");
    page.user_code = &request.user_code;
    page.client_name = &request.client_name;
    page.qr_svg = qr_svg(&request.verification_uri_complete);
    page.login_url = format!("/device/login?user_code={}", request.user_code);
    page.respond(StatusCode::OK)
}

fn page_error(headers: &HeaderMap, typed: &str, e: DevicePageError) -> Response {
    match e {
        DevicePageError::Server(e) => {
            super::error_page::render(StatusCode::SERVICE_UNAVAILABLE, &e, headers)
        }
        // Unknown, expired or answered: one answer for all (a guess learns nothing).
        _ => {
            let shown: String = typed.chars().take(16).collect();
            enter_page(
                headers,
                &shown,
                Some(&INVALID_CODE),
                StatusCode::BAD_REQUEST,
            )
        }
    }
}

/// `GET /device/login?user_code=…`: starts the upstream login that ends back on `/device`.
pub async fn login(
    State(s): State<WebState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams,
) -> Response {
    let typed = q.get("user_code").unwrap_or("");
    start_login(&s, &headers, typed).await
}

async fn start_login(s: &WebState, headers: &HeaderMap, typed: &str) -> Response {
    let (binding, set_cookie) = ensure_browser_binding(headers, &s.cookies);
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let mut resp = match s
        .provider
        .device_login(
            typed,
            LoginBrowser {
                binding: &random::hash_secret(&binding),
                user_agent,
            },
        )
        .await
    {
        Ok(LoginStart::Redirect(url)) => super::html::redirect(StatusCode::FOUND, &url)
            .unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        Ok(LoginStart::Handoff(page)) => super::handoff_page::render(&page, headers),
        Err(e) => return page_error(headers, typed, e),
    };
    if let Some(c) = set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// `POST /device`: the person's answer (form with `user_code`, `csrf`, `decision`).
pub async fn answer(State(s): State<WebState>, headers: HeaderMap, body: String) -> Response {
    if let Err(resp) = super::error_page::require_form(&headers, "POST /device") {
        return resp;
    }
    let p = Params::parse(&body);
    let typed = p.get("user_code").unwrap_or("");
    let approve = match p.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => return enter_page(&headers, typed, None, StatusCode::BAD_REQUEST),
    };
    let cookie = session_cookie(&headers);
    let canonical = normalize_user_code(typed).unwrap_or_default();
    let expected = csrf_token(cookie.as_deref().unwrap_or(""), &canonical);
    let given = p.get("csrf").unwrap_or("");
    if cookie.is_none() || !random::constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        tracing::warn!("device answer without a valid anti-forgery value");
        return enter_page(&headers, typed, Some(&INVALID_CODE), StatusCode::FORBIDDEN);
    }
    let request = match s
        .provider
        .device_answer(typed, cookie.as_deref(), approve)
        .await
    {
        Ok(r) => r,
        Err(DevicePageError::LoginRequired) => {
            // The session ended meanwhile: sign in again on the page of this code.
            let to = format!("/device?user_code={canonical}");
            return super::html::redirect(StatusCode::SEE_OTHER, &to)
                .unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        Err(e) => return page_error(&headers, typed, e),
    };
    // The answer is durable before the person is told it was taken.
    if let Err(e) = super::durable(&s).await {
        return super::error_page::render(StatusCode::SERVICE_UNAVAILABLE, &e, &headers);
    }
    let mut page = Page::new(&headers, "done");
    page.client_name = &request.client_name;
    page.approved = approve;
    page.respond(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_code_is_inline_svg_without_xml_declaration() {
        let svg = qr_svg("https://sso.example.com/device?user_code=BCDF-GHJK");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("</svg>"));
    }

    #[test]
    fn csrf_token_depends_on_session_and_code() {
        let a = csrf_token("cookie-a", "BCDF-GHJK");
        assert_eq!(a, csrf_token("cookie-a", "BCDF-GHJK"));
        assert_ne!(a, csrf_token("cookie-b", "BCDF-GHJK"));
        assert_ne!(a, csrf_token("cookie-a", "BCDF-GHJL"));
    }
}
