//! The browser-binding cookie that ties an upstream login to the browser that started it
//! (RFC 9700 §4.7: CSRF protection of the redirect back from the upstream).

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};

use crate::random;

/// Cookie name.
pub const BROWSER_COOKIE: &str = "wecom_oidc_browser";

/// The provider session cookie (see `provider::session`).
pub const SESSION_COOKIE: &str = "wecom_oidc_session";

/// The browser-binding value from the request's cookies, if well-formed.
pub fn browser_binding(headers: &HeaderMap) -> Option<String> {
    token_cookie(headers, BROWSER_COOKIE)
}

/// The provider session cookie's value, if present and well-formed.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    token_cookie(headers, SESSION_COOKIE)
}

/// Where our cookies apply: `Secure` when the issuer is https, and `Path` the issuer's path
/// (`/` for an issuer without one), so a provider at `https://corp.example.com/sso` does not
/// send its cookies to the other applications of that host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieScope {
    /// Whether cookies carry `Secure`.
    pub secure: bool,
    /// The cookies' `Path`; shared, because the state holding it is cloned for every request.
    pub path: std::sync::Arc<str>,
}

impl CookieScope {
    /// The scope for `issuer`.
    pub fn for_issuer(issuer: &str) -> Self {
        let path = super::issuer_path::of(issuer);
        Self {
            secure: issuer.starts_with("https://"),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
        }
    }

    fn attributes(&self) -> String {
        format!(
            "Path={}; HttpOnly; SameSite=Lax{}",
            self.path,
            if self.secure { "; Secure" } else { "" }
        )
    }
}

/// `Set-Cookie` for a new session: HttpOnly (no script reads it), SameSite=Lax (sent on the
/// top-level GET redirects of a login from another site, not on cross-site subrequests or
/// POSTs), Secure on https, the issuer's path and a Max-Age equal to the session lifetime.
pub fn set_session_cookie(value: &str, scope: &CookieScope, max_age: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; {}; Max-Age={max_age}",
        scope.attributes()
    ))
    .ok()
}

/// `Set-Cookie` that removes the session cookie (logout).
pub fn clear_session_cookie(scope: &CookieScope) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; {}; Max-Age=0",
        scope.attributes()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("wecom_oidc_session=; Path=/; Max-Age=0"))
}

/// The value of cookie `name` as sent, whatever its shape.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The value of cookie `name` if it has the shape of a `random::token(32)` (43 base64url
/// characters); anything else is ignored rather than looked up.
pub(crate) fn token_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    for value in headers.get_all(COOKIE) {
        let Ok(s) = value.to_str() else { continue };
        for pair in s.split(';') {
            let pair = pair.trim();
            if let Some(v) = pair.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                if v.len() == 43
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Some(v.to_string());
                }
            }
        }
    }
    None
}

/// The existing binding, or a fresh one with the `Set-Cookie` header that installs it.
pub fn ensure_browser_binding(
    headers: &HeaderMap,
    scope: &CookieScope,
) -> (String, Option<HeaderValue>) {
    if let Some(v) = browser_binding(headers) {
        return (v, None);
    }
    let v = random::token(32);
    // SameSite=Lax: the upstream returns the browser with a top-level GET, which carries Lax
    // cookies; cross-site subresource requests do not.
    let cookie = format!("{BROWSER_COOKIE}={v}; {}", scope.attributes());
    let header = HeaderValue::from_str(&cookie).ok();
    (v, header)
}

/// Header name for setting cookies.
pub const SET_COOKIE_HEADER: axum::http::HeaderName = SET_COOKIE;

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(secure: bool) -> CookieScope {
        CookieScope {
            secure,
            path: "/".into(),
        }
    }

    #[test]
    fn new_binding_cookie_is_httponly_lax_and_secure_on_https() {
        let (v, h) = ensure_browser_binding(&HeaderMap::new(), &scope(true));
        let h = h.unwrap();
        let s = h.to_str().unwrap();
        assert!(s.starts_with(&format!("{BROWSER_COOKIE}={v}")));
        assert!(s.contains("HttpOnly"));
        assert!(s.contains("SameSite=Lax"));
        assert!(s.contains("Secure"));
        let (_, h) = ensure_browser_binding(&HeaderMap::new(), &scope(false));
        assert!(!h.unwrap().to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn existing_binding_is_reused_and_malformed_is_ignored() {
        let mut headers = HeaderMap::new();
        let v = random::token(32);
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("a=b; {BROWSER_COOKIE}={v}")).unwrap(),
        );
        assert_eq!(ensure_browser_binding(&headers, &scope(false)), (v, None));
        let mut bad = HeaderMap::new();
        bad.insert(COOKIE, HeaderValue::from_static("wecom_oidc_browser=short"));
        assert!(browser_binding(&bad).is_none());
    }

    #[test]
    fn session_cookie_is_httponly_lax_root_path_and_secure_on_https() {
        let v = random::token(32);
        let h = set_session_cookie(&v, &scope(true), 28_800).unwrap();
        let s = h.to_str().unwrap();
        assert!(s.starts_with(&format!("{SESSION_COOKIE}={v};")), "{s}");
        for part in [
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Secure",
            "Max-Age=28800",
        ] {
            assert!(s.contains(part), "{part} missing in {s}");
        }
        assert!(!set_session_cookie(&v, &scope(false), 1)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Secure"));
        assert!(clear_session_cookie(&scope(true))
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{BROWSER_COOKIE}=x; {SESSION_COOKIE}={v}")).unwrap(),
        );
        assert_eq!(session_cookie(&headers), Some(v));
    }
}
