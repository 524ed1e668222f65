//! The HTML error page, for errors that must not be redirected to a client (unknown client,
//! unregistered redirect URI, a broken or replayed login callback). It says what happened, what
//! the person can do, and carries a request id that also appears in our log.

use askama::Template;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use crate::provider::response::{AuthorizationResponse, ResponseMode};
use crate::provider::OAuthError;
use crate::random;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    lang: &'a str,
    zh: bool,
    what_zh: &'a str,
    what_en: &'a str,
    code: &'a str,
    description: &'a str,
    request_id: &'a str,
    /// A refusal rather than a failure: no "try again".
    denied: bool,
    /// A link back to the client carrying the error (query response mode).
    back_url: Option<&'a str>,
    /// A form back to the client carrying the error (form_post response mode).
    back_action: Option<&'a str>,
    back_fields: Vec<(&'a str, &'a str)>,
}

impl<'a> ErrorPage<'a> {
    /// A failure page (no way back) in Chinese when `zh`.
    fn new(
        zh: bool,
        what_zh: &'a str,
        what_en: &'a str,
        error: &'a OAuthError,
        request_id: &'a str,
    ) -> Self {
        Self {
            lang: if zh { "zh-CN" } else { "en" },
            zh,
            what_zh,
            what_en,
            code: error.code.as_str(),
            description: &error.description,
            request_id,
            denied: false,
            back_url: None,
            back_action: None,
            back_fields: Vec::new(),
        }
    }
}

/// The id of this request's log line (web::request_log), so the operator finds it; a fresh one
/// when the request has none.
fn request_id_of(headers: &HeaderMap) -> String {
    super::request_log::request_id(headers)
        .map(str::to_owned)
        .unwrap_or_else(|| random::alphanumeric(12))
}

/// Whether the person prefers Chinese, from `ui_locales` (if given) or `Accept-Language`.
pub fn prefers_chinese(headers: &HeaderMap, ui_locales: Option<&str>) -> bool {
    if let Some(first) = ui_locales.and_then(|l| l.split(' ').find(|s| !s.is_empty())) {
        return first.to_ascii_lowercase().starts_with("zh");
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| first.trim().to_ascii_lowercase().starts_with("zh"))
}

/// Renders the error page with `status`, logging the error under a fresh request id.
pub fn render(status: StatusCode, error: &OAuthError, headers: &HeaderMap) -> Response {
    render_full(
        status,
        error,
        headers,
        None,
        DEFAULT_WHAT_ZH,
        DEFAULT_WHAT_EN,
    )
}

/// The 415 error page for a `request` (`"POST /logout"`) whose body is not a form, or nothing
/// when it is one.
#[allow(clippy::result_large_err)] // the Err is the finished response, returned at once
pub fn require_form(headers: &HeaderMap, request: &str) -> Result<(), Response> {
    if super::token::is_form(headers) {
        return Ok(());
    }
    Err(render(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        &OAuthError::invalid_request(format!(
            "{request} needs an application/x-www-form-urlencoded body"
        )),
        headers,
    ))
}

const DEFAULT_WHAT_ZH: &str = "登录请求无效，或者登录链接已过期、已被使用。";
const DEFAULT_WHAT_EN: &str =
    "The sign-in request is invalid, or the sign-in link has expired or was already used.";

/// Renders the error page with `status` and its own explanation in Chinese and English.
pub fn render_text(
    status: StatusCode,
    error: &OAuthError,
    headers: &HeaderMap,
    what_zh: &str,
    what_en: &str,
) -> Response {
    render_full(status, error, headers, None, what_zh, what_en)
}

/// [`render`] in the language of the request's `ui_locales` (OIDC Core §3.1.2.1), if it names
/// one, else of `Accept-Language`.
pub fn render_localized(
    status: StatusCode,
    error: &OAuthError,
    headers: &HeaderMap,
    ui_locales: Option<&str>,
) -> Response {
    render_full(
        status,
        error,
        headers,
        ui_locales,
        DEFAULT_WHAT_ZH,
        DEFAULT_WHAT_EN,
    )
}

/// The error page in the language of `ui_locales` or `Accept-Language`, with its own text.
pub fn render_full(
    status: StatusCode,
    error: &OAuthError,
    headers: &HeaderMap,
    ui_locales: Option<&str>,
    what_zh: &str,
    what_en: &str,
) -> Response {
    let request_id = request_id_of(headers);
    tracing::warn!(
        request_id = %request_id,
        error = error.code.as_str(),
        description = %error.description,
        status = status.as_u16(),
        "showing error page"
    );
    let zh = prefers_chinese(headers, ui_locales);
    let page = ErrorPage::new(zh, what_zh, what_en, error, &request_id);
    let body = page
        .render()
        .unwrap_or_else(|_| format!("Sign-in error: {} (request id {request_id})", error.code));
    super::html::page(status, body, super::html::PAGE_CSP)
}

/// The page for a person the upstream app's access rules leave out (403): what happened and
/// who can change it, in the language of `ui_locales` or `Accept-Language`, and a way back
/// that hands `back` (the `access_denied` error response) to the client — a link in the query
/// response mode, a form in form_post (whose CSP then allows exactly the client's origin).
pub fn render_denied(
    error: &OAuthError,
    headers: &HeaderMap,
    ui_locales: Option<&str>,
    what_zh: &str,
    what_en: &str,
    back: &AuthorizationResponse,
) -> Response {
    let request_id = request_id_of(headers);
    tracing::info!(request_id = %request_id, error = error.code.as_str(), "showing the access-denied page");
    let zh = prefers_chinese(headers, ui_locales);
    let url = back.to_url();
    let form_post = back.response_mode == ResponseMode::FormPost;
    let page = ErrorPage {
        denied: true,
        back_url: (!form_post).then_some(url.as_str()),
        back_action: form_post.then_some(back.redirect_uri.as_str()),
        back_fields: if form_post {
            back.params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        } else {
            Vec::new()
        },
        ..ErrorPage::new(zh, what_zh, what_en, error, &request_id)
    };
    let body = page
        .render()
        .unwrap_or_else(|_| format!("Access denied (request id {request_id})"));
    let csp = if form_post {
        format!(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; \
             base-uri 'none'; form-action {}",
            super::html::form_action_source(&back.redirect_uri)
        )
    } else {
        super::html::PAGE_CSP.to_owned()
    };
    super::html::page(StatusCode::FORBIDDEN, body, &csp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn language_follows_accept_language() {
        let mut h = HeaderMap::new();
        assert!(!prefers_chinese(&h, None));
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("zh-CN,zh;q=0.9,en;q=0.8"),
        );
        assert!(prefers_chinese(&h, None));
        assert!(!prefers_chinese(&h, Some("en-US zh")));
    }

    #[test]
    fn only_a_form_body_passes_require_form_and_others_get_415() {
        let with = |ct: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            h
        };
        for ok in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
        ] {
            assert!(require_form(&with(ok), "POST /logout").is_ok(), "{ok}");
        }
        for bad in ["application/json", "application/x-www-form-urlencodedx"] {
            let page = require_form(&with(bad), "POST /logout").expect_err(bad);
            assert_eq!(page.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
        let none = require_form(&HeaderMap::new(), "POST /authorize").expect_err("no type");
        assert_eq!(none.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn error_page_escapes_descriptions() {
        let e = OAuthError::invalid_request("<script>alert(1)</script>");
        let resp = render(StatusCode::BAD_REQUEST, &e, &HeaderMap::new());
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        // Security headers on every HTML page.
        let csp = crate::web::testing::csp(&resp);
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(resp.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(resp.headers()[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    }
}
