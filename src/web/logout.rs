//! `GET|POST /logout`, the end-session endpoint (RP-Initiated Logout 1.0), and the delivery of
//! back-channel logout tokens (Back-Channel Logout 1.0 §2.5).

use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use super::cookies::{clear_session_cookie, session_cookie};
use super::query::QueryParams;
use super::{error_page, html, WebState};
use crate::provider::logout::BackchannelLogout;
use crate::provider::params::Params;

/// The longest a logout waits for the clients' back-channel endpoints before answering the
/// browser; deliveries still running then finish (or time out) in the background.
pub const BACKCHANNEL_WAIT: Duration = Duration::from_secs(3);
/// Timeout of one back-channel request.
pub const BACKCHANNEL_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Template)]
#[template(path = "logged_out.html")]
struct LoggedOutPage<'a> {
    lang: &'a str,
    zh: bool,
}

/// `GET /logout`.
pub async fn logout_get(
    State(s): State<WebState>,
    headers: HeaderMap,
    QueryParams(params): QueryParams,
) -> Response {
    logout(&s, &headers, &params, StatusCode::FOUND).await
}

/// `POST /logout` with a form body (RP-Initiated Logout 1.0 §2 allows both).
pub async fn logout_post(State(s): State<WebState>, headers: HeaderMap, body: String) -> Response {
    if let Err(page) = error_page::require_form(&headers, "POST /logout") {
        return page;
    }
    logout(&s, &headers, &Params::parse(&body), StatusCode::SEE_OTHER).await
}

async fn logout(s: &WebState, headers: &HeaderMap, p: &Params, redirect: StatusCode) -> Response {
    let outcome = match s
        .provider
        .end_session(p, session_cookie(headers).as_deref())
        .await
    {
        Ok(o) => o,
        // A store that cannot be reached is no fault of the request.
        Err(e) if e.code == crate::provider::ErrorCode::TemporarilyUnavailable => {
            return error_page::render(StatusCode::SERVICE_UNAVAILABLE, &e, headers)
        }
        Err(e) => return error_page::render(StatusCode::BAD_REQUEST, &e, headers),
    };
    // The session's end must survive a crash before the person is told they are signed out.
    if let Err(e) = super::durable(s).await {
        return error_page::render(StatusCode::SERVICE_UNAVAILABLE, &e, headers);
    }
    if outcome.ended_session {
        tracing::info!(
            notified = outcome.backchannel.len(),
            "provider session ended by logout"
        );
    }
    deliver_all(&s.http, outcome.backchannel).await;
    let mut resp = match &outcome.redirect {
        Some(url) => html::redirect(redirect, url)
            .unwrap_or_else(|| logged_out_page(headers, outcome.ui_locales.as_deref())),
        None => logged_out_page(headers, outcome.ui_locales.as_deref()),
    };
    // Cleared even when no session was found: a stale cookie is worth nothing either.
    resp.headers_mut()
        .append(header::SET_COOKIE, clear_session_cookie(&s.cookies));
    resp
}

fn logged_out_page(headers: &HeaderMap, ui_locales: Option<&str>) -> Response {
    let zh = error_page::prefers_chinese(headers, ui_locales);
    let page = LoggedOutPage {
        lang: if zh { "zh-CN" } else { "en" },
        zh,
    };
    let body = page
        .render()
        .unwrap_or_else(|_| "You are signed out. 您已退出登录。".to_string());
    html::page(StatusCode::OK, body, html::PAGE_CSP)
}

/// Sends the logout tokens of a sign-out everywhere ([`crate::provider::offboarding`]) the way
/// `/logout` sends its own: [`deliver_all`].
pub struct HttpLogoutNotifier {
    http: reqwest::Client,
}

impl HttpLogoutNotifier {
    /// With the server's outgoing client (no redirects, [`BACKCHANNEL_TIMEOUT`]).
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }
}

#[async_trait::async_trait]
impl crate::provider::offboarding::LogoutNotifier for HttpLogoutNotifier {
    async fn deliver(&self, deliveries: Vec<BackchannelLogout>) {
        deliver_all(&self.http, deliveries).await;
    }
}

/// POSTs every logout token at once and waits at most [`BACKCHANNEL_WAIT`] for them: a slow
/// or dead client must not keep the person's logout hanging. Failures are logged (client and
/// status, never the token).
pub async fn deliver_all(http: &reqwest::Client, deliveries: Vec<BackchannelLogout>) {
    if deliveries.is_empty() {
        return;
    }
    let handles: Vec<_> = deliveries
        .into_iter()
        .map(|d| tokio::spawn(deliver(http.clone(), d)))
        .collect();
    let all = async {
        for h in handles {
            let _ = h.await;
        }
    };
    if tokio::time::timeout(BACKCHANNEL_WAIT, all).await.is_err() {
        tracing::warn!("back-channel logout deliveries still running; not waiting for them");
    }
}

/// One delivery (Back-Channel Logout 1.0 §2.5): a form POST of `logout_token`; 200 or 204 is
/// success.
async fn deliver(http: reqwest::Client, d: BackchannelLogout) {
    let result = http
        .post(&d.uri)
        .timeout(BACKCHANNEL_TIMEOUT)
        .header(header::CACHE_CONTROL, "no-store")
        .form(&[("logout_token", d.logout_token.as_str())])
        .send()
        .await;
    match result {
        Ok(r) if r.status() == StatusCode::OK || r.status() == StatusCode::NO_CONTENT => {
            tracing::info!(client_id = %d.client_id, "back-channel logout delivered");
        }
        Ok(r) => tracing::warn!(
            client_id = %d.client_id,
            status = r.status().as_u16(),
            "back-channel logout refused by the client"
        ),
        // reqwest's error names the URL and the failure, not the body.
        Err(e) => tracing::warn!(
            client_id = %d.client_id,
            error = %e.without_url(),
            "back-channel logout delivery failed"
        ),
    }
}
