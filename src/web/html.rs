//! What every HTML page we render shares: the security headers (a strict Content-Security-Policy,
//! no framing, no referrer, no caching), redirects under the same no-referrer, no-store rule,
//! and the form_post response page (OAuth 2.0 Form Post
//! Response Mode §2), which sends the authorization response to the client as an auto-submitting
//! form that also works with JavaScript off.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::provider::response::AuthorizationResponse;

/// CSP of our pages: nothing loads, inline styles only, no framing (clickjacking), forms only to
/// us. Pages that need more build their own (see [`form_post`]).
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The one script of the form_post page; CSP allows exactly it by hash.
const SUBMIT_SCRIPT: &str = "document.forms[0].submit();";

/// An HTML response with `status`, `body` and the security headers, `csp` as its policy.
pub fn page(status: StatusCode, body: String, csp: &str) -> Response {
    let csp = HeaderValue::from_str(csp).unwrap_or(HeaderValue::from_static(PAGE_CSP));
    (
        status,
        [
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        Html(body),
    )
        .into_response()
}

/// A redirect to `url` that is neither cached nor followed with a `Referer` (the URL may carry
/// a code or state); `None` when `url` cannot be a header value.
pub fn redirect(status: StatusCode, url: &str) -> Option<Response> {
    let location = HeaderValue::from_str(url).ok()?;
    Some(
        (
            status,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ),
            ],
        )
            .into_response(),
    )
}

/// One hidden form field.
struct Field<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostPage<'a> {
    lang: &'a str,
    zh: bool,
    action: &'a str,
    fields: Vec<Field<'a>>,
    script: &'a str,
}

/// `'sha256-…'` of the submit script, for `script-src`.
fn script_hash() -> String {
    format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(SUBMIT_SCRIPT.as_bytes()))
    )
}

/// The CSP source for the origin the form posts to: `scheme://host:port` of a web URI, or
/// `scheme:` for a private-use scheme (native apps, RFC 8252 §7.1).
pub(crate) fn form_action_source(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(u) => match u.origin() {
            o @ url::Origin::Tuple(..) => o.ascii_serialization(),
            url::Origin::Opaque(_) => format!("{}:", u.scheme()),
        },
        // Registered redirect URIs are validated absolute URIs; this only guards the header.
        Err(_) => "'none'".to_string(),
    }
}

/// The form_post page for `resp` (OAuth 2.0 Form Post Response Mode §2): an HTML form that
/// POSTs the parameters to the redirect URI, submitted by a script the CSP allows by hash, with
/// a visible button when scripts are off. The CSP lets the form go only to the redirect URI's
/// origin.
pub fn form_post(resp: &AuthorizationResponse, zh: bool) -> Response {
    let page_tpl = FormPostPage {
        lang: if zh { "zh-CN" } else { "en" },
        zh,
        action: &resp.redirect_uri,
        fields: resp
            .params
            .iter()
            .map(|(name, value)| Field { name, value })
            .collect(),
        script: SUBMIT_SCRIPT,
    };
    let csp = format!(
        "default-src 'none'; script-src {}; style-src 'unsafe-inline'; form-action {}; \
         frame-ancestors 'none'; base-uri 'none'",
        script_hash(),
        form_action_source(&resp.redirect_uri)
    );
    match page_tpl.render() {
        Ok(body) => page(StatusCode::OK, body, &csp),
        Err(e) => {
            tracing::error!(error = %e, "form_post page failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::response::ResponseMode;
    use crate::web::testing::{body, csp};

    #[test]
    fn redirects_are_not_cached_and_send_no_referrer() {
        let r = redirect(StatusCode::SEE_OTHER, "https://rp.example/cb?code=c").expect("redirect");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            r.headers()[header::LOCATION],
            "https://rp.example/cb?code=c"
        );
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(r.headers()[header::REFERRER_POLICY], "no-referrer");
        assert!(redirect(StatusCode::FOUND, "https://rp.example/\n").is_none());
    }

    fn resp() -> AuthorizationResponse {
        AuthorizationResponse {
            redirect_uri: "https://rp.example:8443/cb?x=1".into(),
            response_mode: ResponseMode::FormPost,
            params: vec![
                ("code".into(), "abc".into()),
                ("state".into(), "\"><script>alert(1)</script>".into()),
            ],
        }
    }

    #[tokio::test]
    async fn form_post_page_posts_escaped_fields_to_the_redirect_uri_form_post_2() {
        let r = form_post(&resp(), false);
        assert_eq!(r.status(), StatusCode::OK);
        let csp = csp(&r);
        assert!(
            csp.contains("form-action https://rp.example:8443;"),
            "{csp}"
        );
        assert!(
            csp.contains(&format!("script-src {};", script_hash())),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let html = body(r).await;
        assert!(
            html.contains(r#"<form method="post" action="https://rp.example:8443/cb?x&#61;1">"#)
                || html.contains(r#"action="https://rp.example:8443/cb?x=1""#),
            "{html}"
        );
        assert!(html.contains(r#"name="code" value="abc""#), "{html}");
        assert!(
            !html.contains("<script>alert(1)"),
            "state must be escaped: {html}"
        );
        assert!(
            html.contains(r#"<button type="submit">"#),
            "works with JS off"
        );
        assert!(html.contains(&format!("<script>{SUBMIT_SCRIPT}</script>")));
    }

    #[test]
    fn form_action_of_a_private_use_scheme_is_the_scheme() {
        assert_eq!(
            form_action_source("com.example.app:/cb"),
            "com.example.app:"
        );
        assert_eq!(
            form_action_source("http://127.0.0.1:9000/cb"),
            "http://127.0.0.1:9000"
        );
    }
}
