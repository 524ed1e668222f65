//! The HTML error page, for errors that must not be redirected to a client (unknown client,
//! unregistered redirect URI, a broken or replayed login callback). It says what happened, what
//! the person can do, and carries a request id that also appears in our log.

use askama::Template;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

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
    // The id of this request's log line (web::request_log), so the operator finds it.
    let request_id = super::request_log::request_id(headers)
        .map(str::to_owned)
        .unwrap_or_else(|| random::alphanumeric(12));
    tracing::warn!(
        request_id = %request_id,
        error = error.code.as_str(),
        description = %error.description,
        status = status.as_u16(),
        "showing error page"
    );
    let zh = prefers_chinese(headers, None);
    let page = ErrorPage {
        lang: if zh { "zh-CN" } else { "en" },
        zh,
        what_zh: "登录请求无效，或者登录链接已过期、已被使用。",
        what_en:
            "The sign-in request is invalid, or the sign-in link has expired or was already used.",
        code: error.code.as_str(),
        description: &error.description,
        request_id: &request_id,
    };
    let body = page
        .render()
        .unwrap_or_else(|_| format!("Sign-in error: {} (request id {request_id})", error.code));
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(body),
    )
        .into_response()
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
    fn error_page_escapes_descriptions() {
        let e = OAuthError::invalid_request("<script>alert(1)</script>");
        let resp = render(StatusCode::BAD_REQUEST, &e, &HeaderMap::new());
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
}
