//! `/authorize` and the upstream's return to `/callback/{connector}`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::cookies::{browser_binding, ensure_browser_binding, session_cookie, set_session_cookie};
use super::query::QueryParams;
use super::rate_limit::AuthorizeBudget;
use super::{error_page, html, WebState};
use crate::provider::authorize::AuthorizeRejection;
use crate::provider::handoff::{LoginBrowser, LoginStart};
use crate::provider::params::Params;
use crate::provider::response::{AuthorizationResponse, ErrorRedirect, ResponseMode};
use crate::provider::session::AuthorizeNext;
use crate::random;

/// `GET /authorize` (OIDC Core §3.1.2.1).
pub async fn authorize_get(
    State(s): State<WebState>,
    budget: Option<Extension<AuthorizeBudget>>,
    headers: HeaderMap,
    QueryParams(query): QueryParams,
) -> Response {
    authorize(&s, budget.as_deref(), &headers, &query, StatusCode::FOUND).await
}

/// `POST /authorize` with a form body (OIDC Core §3.1.2.1).
pub async fn authorize_post(
    State(s): State<WebState>,
    budget: Option<Extension<AuthorizeBudget>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(page) = error_page::require_form(&headers, "POST /authorize") {
        return page;
    }
    // 303: the browser must follow with GET, not re-POST (RFC 9700 §4.12).
    authorize(
        &s,
        budget.as_deref(),
        &headers,
        &Params::parse(&body),
        StatusCode::SEE_OTHER,
    )
    .await
}

async fn authorize(
    s: &WebState,
    budget: Option<&AuthorizeBudget>,
    headers: &HeaderMap,
    params: &Params,
    redirect: StatusCode,
) -> Response {
    let provider = &s.provider;
    let req = match provider.validate_authorize(params) {
        Ok(r) => r,
        Err(AuthorizeRejection::Page(e)) => {
            return error_page::render_localized(
                StatusCode::BAD_REQUEST,
                &e,
                headers,
                params.get("ui_locales"),
            )
        }
        Err(rejection) => return reject(s, rejection, headers, redirect, params.get("ui_locales")),
    };
    let zh = error_page::prefers_chinese(headers, req.ui_locales.as_deref());
    match provider
        .authorize_with_session(&req, session_cookie(headers).as_deref())
        .await
    {
        Ok(AuthorizeNext::Respond(resp)) => {
            // A code issued from the session: durable before the client can redeem it. If not,
            // the client hears `temporarily_unavailable` (RFC 6749 §4.1.2.1) instead of a code.
            if let Err(error) = super::durable(s).await {
                let e = req.error_redirect(error);
                return respond(&e.to_response(provider.issuer()), redirect, zh);
            }
            return respond(&resp, redirect, zh);
        }
        Ok(AuthorizeNext::Login) => {}
        Err(e) => return respond(&e.to_response(provider.issuer()), redirect, zh),
    }
    // Only a request that is about to store a pending authorization spends the address's
    // budget (`web::rate_limit`); over it, the client hears `temporarily_unavailable`
    // (RFC 6749 §4.1.2.1) at its validated redirect URI.
    if let Some(Err(retry_after)) = budget.map(AuthorizeBudget::take) {
        let e = req.error_redirect(crate::provider::OAuthError::new(
            crate::provider::ErrorCode::TemporarilyUnavailable,
            "too many sign-in requests from this network; try again in a moment",
        ));
        let mut resp = respond(&e.to_response(provider.issuer()), redirect, zh);
        resp.headers_mut().insert(header::RETRY_AFTER, retry_after);
        return resp;
    }
    let (binding, set_cookie) = ensure_browser_binding(headers, &s.cookies);
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    match provider
        .begin_login(
            &req,
            LoginBrowser {
                binding: &random::hash_secret(&binding),
                user_agent,
            },
        )
        .await
    {
        Ok(start) => {
            let mut resp = match start {
                LoginStart::Redirect(url) => redirect_to(redirect, &url),
                LoginStart::Handoff(page) => super::handoff_page::render(&page, headers),
            };
            if let Some(c) = set_cookie {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        Err(e) => respond(&e.to_response(provider.issuer()), redirect, zh),
    }
}

/// Sends an authorization response in its mode: a redirect (query) or the form_post page.
fn respond(resp: &AuthorizationResponse, redirect: StatusCode, zh: bool) -> Response {
    match resp.response_mode {
        ResponseMode::Query => redirect_to(redirect, &resp.to_url()),
        ResponseMode::FormPost => {
            let mut page = html::form_post(resp, zh);
            page.extensions_mut()
                .insert(super::login_events::FormPostSent::new(
                    &resp.redirect_uri,
                    &resp.params,
                ));
            page
        }
    }
}

/// `GET /callback/{connector}`: the upstream sends the browser back here.
pub async fn callback(
    State(s): State<WebState>,
    Path(connector): Path<String>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let binding = browser_binding(&headers);
    let previous = session_cookie(&headers);
    match s
        .provider
        .finish_login(&connector, &params, binding.as_deref(), previous.as_deref())
        .await
    {
        Ok(done) => {
            // The form_post page speaks the language the client asked for.
            let zh = error_page::prefers_chinese(&headers, done.ui_locales.as_deref());
            // The code and the new session are durable before the browser carries them on; if
            // not, the client gets `temporarily_unavailable` (RFC 6749 §4.1.2.1), not the code.
            if let Err(error) = super::durable(&s).await {
                let state = done
                    .response
                    .params
                    .iter()
                    .find(|(k, _)| k == "state")
                    .map(|(_, v)| v.clone());
                let e = ErrorRedirect {
                    redirect_uri: done.response.redirect_uri.clone(),
                    state,
                    response_mode: done.response.response_mode,
                    error,
                };
                return respond(&e.to_response(s.provider.issuer()), StatusCode::FOUND, zh);
            }
            super::logout::deliver_all(&s.http, done.ended_session_logouts).await;
            let mut resp = respond(&done.response, StatusCode::FOUND, zh);
            if let Some(client_id) = done.device_client {
                resp.extensions_mut()
                    .insert(super::login_events::DeviceLogin { client_id });
            }
            let max_age = s.provider.session_settings().ttl;
            if let Some(c) = set_session_cookie(&done.session_cookie, &s.cookies, max_age) {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        // Before the login request is found its `ui_locales` is unknown; an upstream failure
        // carries it.
        Err(rejection) => reject(&s, rejection, &headers, StatusCode::FOUND, None),
    }
}

fn reject(
    s: &WebState,
    rejection: AuthorizeRejection,
    headers: &HeaderMap,
    redirect: StatusCode,
    ui_locales: Option<&str>,
) -> Response {
    match rejection {
        AuthorizeRejection::Page(e) => {
            let status = if matches!(
                e.code,
                crate::provider::ErrorCode::ServerError
                    | crate::provider::ErrorCode::TemporarilyUnavailable
            ) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_REQUEST
            };
            error_page::render_localized(status, &e, headers, ui_locales)
        }
        // A deployment fault at the upstream (untrusted IP or domain, wrong secret, rate
        // limit): the client could only show an opaque `server_error`, so the person gets our
        // page saying it is not their fault and what happens next; the operator's fix is logged.
        AuthorizeRejection::Upstream {
            error,
            notice,
            ui_locales: requested,
        } => {
            let status = if notice.temporary {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_GATEWAY
            };
            error_page::render_full(
                status,
                &error,
                headers,
                requested.as_deref().or(ui_locales),
                &notice.zh,
                &notice.en,
            )
        }
        // The person may not use this client: our page says why and who can change it; its
        // way back hands `access_denied` to the client.
        AuthorizeRejection::Denied {
            redirect,
            notice,
            ui_locales: requested,
        } => error_page::render_denied(
            &redirect.error,
            headers,
            requested.as_deref().or(ui_locales),
            &notice.zh,
            &notice.en,
            &redirect.to_response(s.provider.issuer()),
        ),
        AuthorizeRejection::Redirect(r) => {
            tracing::info!(error = r.error.code.as_str(), description = %r.error.description, "authorization error returned to client");
            respond(
                &r.to_response(s.provider.issuer()),
                redirect,
                error_page::prefers_chinese(headers, ui_locales),
            )
        }
    }
}

fn redirect_to(status: StatusCode, url: &str) -> Response {
    html::redirect(status, url).unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
