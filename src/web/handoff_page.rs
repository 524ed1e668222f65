//! The hand-off page: shown instead of the upstream redirect when the connector says this
//! browser cannot log in upstream by itself (a phone outside WeCom). It names the app to continue
//! in, offers the application's address to copy (a copy button when scripts run, a selectable
//! field when they do not) and the upstream's own page for this login, so it never dead-ends.
//! Bilingual by `ui_locales`, then `Accept-Language`.

use askama::Template;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::error_page::prefers_chinese;
use crate::provider::handoff::HandoffPage;

/// The page's one script: shows the copy button and copies the link. The CSP allows exactly it
/// by hash; without scripts the button stays hidden and the field can be selected by hand.
const COPY_SCRIPT: &str = "(function(){var b=document.getElementById('copy'),\
f=document.getElementById('link');if(!b||!f){return;}b.hidden=false;\
f.addEventListener('focus',function(){f.select();});\
b.addEventListener('click',function(){f.focus();f.select();f.setSelectionRange(0,f.value.length);\
var done=function(){b.textContent=b.getAttribute('data-done');};\
var fallback=function(){try{document.execCommand('copy');done();}catch(e){}};\
if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(f.value).then(done,fallback);}\
else{fallback();}});})();";

#[derive(Template)]
#[template(path = "handoff.html")]
struct Page<'a> {
    lang: &'a str,
    zh: bool,
    client_name: &'a str,
    app_zh: &'a str,
    app_en: &'a str,
    why_zh: &'a str,
    why_en: &'a str,
    how_zh: &'a str,
    how_en: &'a str,
    app_address: Option<&'a str>,
    other_device_url: &'a str,
    other_device_label_zh: &'a str,
    other_device_label_en: &'a str,
    script: &'a str,
}

/// `'sha256-…'` of the copy script, for `script-src`.
fn script_hash() -> String {
    format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(COPY_SCRIPT.as_bytes()))
    )
}

/// Renders `p` (200) in the language of its `ui_locales`, else of `Accept-Language`.
pub fn render(p: &HandoffPage, headers: &HeaderMap) -> Response {
    let zh = prefers_chinese(headers, p.ui_locales.as_deref());
    let h = &p.handoff;
    let page = Page {
        lang: if zh { "zh-CN" } else { "en" },
        zh,
        client_name: &p.client_name,
        app_zh: &h.app_name.zh,
        app_en: &h.app_name.en,
        why_zh: &h.why.zh,
        why_en: &h.why.en,
        how_zh: &h.how.zh,
        how_en: &h.how.en,
        app_address: p.app_address.as_deref(),
        other_device_url: &h.other_device_url,
        other_device_label_zh: &h.other_device_label.zh,
        other_device_label_en: &h.other_device_label.en,
        script: COPY_SCRIPT,
    };
    // Nothing loads and no form goes anywhere; the one script is allowed by its hash.
    let csp = format!(
        "default-src 'none'; script-src {}; style-src 'unsafe-inline'; form-action 'none'; \
         frame-ancestors 'none'; base-uri 'none'",
        script_hash()
    );
    match page.render() {
        Ok(body) => super::html::page(StatusCode::OK, body, &csp),
        Err(e) => {
            tracing::error!(error = %e, "hand-off page failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::{Bilingual, Handoff};
    use crate::web::testing::{body, csp};
    use axum::http::{header, HeaderValue};

    fn page(app_address: Option<&str>) -> HandoffPage {
        HandoffPage {
            handoff: Handoff {
                app_name: Bilingual::new("企业微信", "WeCom"),
                why: Bilingual::new("原因", "Because"),
                how: Bilingual::new("做法", "Like this"),
                other_device_url: "https://sso.example/login?a=1&state=S".into(),
                other_device_label: Bilingual::new("扫码页", "QR page"),
            },
            client_name: "<Grafana>".into(),
            app_address: app_address.map(str::to_owned),
            ui_locales: None,
        }
    }

    #[tokio::test]
    async fn handoff_page_offers_the_address_to_copy_and_the_upstream_page_escaped() {
        let r = render(&page(Some("https://grafana.example/")), &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        let csp = csp(&r);
        assert!(
            csp.contains(&format!("script-src {};", script_hash())),
            "{csp}"
        );
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let html = body(r).await;
        assert!(html.contains("<html lang=\"en\">"), "{html}");
        assert!(
            html.contains(r#"readonly value="https://grafana.example/""#),
            "works with scripts off: {html}"
        );
        assert!(
            html.contains(r#"<button id="copy" type="button" hidden"#),
            "{html}"
        );
        assert!(html.contains(&format!("<script>{COPY_SCRIPT}</script>")));
        assert!(
            html.contains(r#"href="https://sso.example/login?a=1&#38;state=S""#),
            "{html}"
        );
        assert!(!html.contains("<Grafana>"), "client name escaped: {html}");
        assert!(html.contains("Like this") && html.contains("Because"));
    }

    #[tokio::test]
    async fn handoff_page_speaks_the_ui_locales_then_accept_language() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("zh-CN,zh;q=0.9"),
        );
        let html = body(render(&page(None), &headers)).await;
        assert!(html.contains("<html lang=\"zh-CN\">") && html.contains("原因"));
        let mut p = page(None);
        p.ui_locales = Some("en".into());
        let html = body(render(&p, &headers)).await;
        assert!(html.contains("<html lang=\"en\">") && html.contains("Because"));
        // Without a web address there is nothing to copy, but the QR page is still offered.
        assert!(!html.contains("id=\"link\""));
        assert!(html.contains("QR page"));
    }
}
