//! What the relying party does once someone is signed in: keeps their tokens (in memory, under
//! a cookie of its own) so the result page's buttons can refresh them (OIDC Core §12), call
//! userinfo again (§5.3) and log out at the provider (RP-Initiated Logout 1.0 §2), and shows
//! each claim with where it came from upstream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreIdTokenClaims, CoreTokenResponse, CoreUserInfoClaims};
use openidconnect::{
    AccessToken, AccessTokenHash, Nonce, OAuth2TokenResponse, RefreshToken, TokenResponse,
};

use super::{failure, home, html, insert_bounded, DemoOidcClient, DemoRp, ResultPage};
use crate::provider::claims::TOKEN_CLAIMS;
use crate::random;

/// The relying party's own session cookie.
const COOKIE: &str = "demo_rp_session";
/// How long a signed-in browser's tokens are kept.
const KEEP: Duration = Duration::from_secs(3600);
/// The most signed-in browsers kept; the oldest go first.
const MAX_KEPT: usize = 1000;
/// One claim of the result page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClaimRow {
    pub claim: String,
    pub value: String,
    /// Where it came from, in Chinese and English.
    pub from_zh: String,
    pub from_en: String,
}

/// A signed-in browser's tokens and the page they made.
#[derive(Clone)]
pub(super) struct Held {
    access: AccessToken,
    refresh: Option<RefreshToken>,
    id_token: String,
    page: ResultPage,
    since: Instant,
}

/// Signed-in browsers by cookie.
#[derive(Default)]
pub(super) struct SignedIn(Mutex<HashMap<String, Held>>);

/// The claim rows of `claims` then of `userinfo` (those the id_token lacks).
fn claim_rows(
    rp: &DemoRp,
    claims: &serde_json::Value,
    userinfo: &serde_json::Value,
) -> Vec<ClaimRow> {
    let mut rows: Vec<ClaimRow> = Vec::new();
    for source in [claims, userinfo] {
        for (claim, value) in source.as_object().into_iter().flatten() {
            if rows.iter().any(|r| &r.claim == claim) {
                continue;
            }
            // The claims this provider sets itself about the token (the result page is of a
            // login at this provider).
            let (from_zh, from_en) = if TOKEN_CLAIMS.contains(&claim.as_str()) {
                (
                    "wecom-oidc（本提供方）".to_owned(),
                    "wecom-oidc (this provider)".to_owned(),
                )
            } else if let Some(o) = rp.origins.iter().find(|o| &o.claim == claim) {
                (o.from.zh.clone(), o.from.en.clone())
            } else {
                (String::new(), String::new())
            };
            rows.push(ClaimRow {
                claim: claim.clone(),
                value: match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
                from_zh,
                from_en,
            });
        }
    }
    rows
}

/// Verifies the id_token of `token` (signature, iss, aud, exp; the nonce when `nonce` is given —
/// a refreshed id_token carries none to check, OIDC Core §12.2; at_hash), calls userinfo, and
/// builds the result page.
pub(super) async fn page_of(
    rp: &DemoRp,
    client: &DemoOidcClient,
    token: &CoreTokenResponse,
    nonce: Option<&str>,
) -> Result<(ResultPage, Held), String> {
    let id_token = token
        .id_token()
        .ok_or("the token response has no id_token")?;
    let verifier = client.id_token_verifier();
    let nonce_ok = |got: Option<&Nonce>| match nonce {
        None => Ok(()),
        Some(want)
            if got.is_some_and(|g| {
                random::constant_time_eq(g.secret().as_bytes(), want.as_bytes())
            }) =>
        {
            Ok(())
        }
        Some(_) => Err("nonce does not match".to_owned()),
    };
    let claims: &CoreIdTokenClaims = id_token
        .claims(&verifier, nonce_ok)
        .map_err(|e| format!("id_token rejected: {e}"))?;
    let alg = id_token.signing_alg().map_err(|e| e.to_string())?;
    if let Some(expected) = claims.access_token_hash() {
        let signing_key = id_token.signing_key(&verifier).map_err(|e| e.to_string())?;
        let actual = AccessTokenHash::from_token(token.access_token(), alg, signing_key)
            .map_err(|e| e.to_string())?;
        if &actual != expected {
            return Err("at_hash does not match the access token".into());
        }
    }
    let userinfo = call_userinfo(rp, client, token.access_token()).await?;
    let raw = id_token.to_string();
    let header_json = raw
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_default();
    let claims_json = serde_json::to_value(claims).map_err(|e| e.to_string())?;
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let page = ResultPage {
        home: home(rp),
        base: rp.base.clone(),
        ok: true,
        subject: claims.subject().to_string(),
        alg: serde_json::to_value(alg)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        header: pretty(&header_json),
        claims: pretty(&claims_json),
        rows: claim_rows(rp, &claims_json, &userinfo),
        userinfo: pretty(&userinfo),
        has_refresh: token.refresh_token().is_some(),
        notice: String::new(),
        error: String::new(),
    };
    let held = Held {
        access: token.access_token().clone(),
        refresh: token.refresh_token().cloned(),
        id_token: raw,
        page: page.clone(),
        since: Instant::now(),
    };
    Ok((page, held))
}

async fn call_userinfo(
    rp: &DemoRp,
    client: &DemoOidcClient,
    access: &AccessToken,
) -> Result<serde_json::Value, String> {
    let userinfo: CoreUserInfoClaims = client
        .user_info(access.clone(), None)
        .map_err(|e| e.to_string())?
        .request_async(&rp.http)
        .await
        .map_err(|e| format!("userinfo failed: {e}"))?;
    serde_json::to_value(&userinfo).map_err(|e| e.to_string())
}

/// Shows `page` and keeps `held` for its buttons under a fresh cookie.
pub(super) fn keep(rp: &DemoRp, page: ResultPage, held: Held) -> Response {
    let cookie = random::token(32);
    insert_bounded(
        &mut rp.signed_in.0.lock().unwrap_or_else(|p| p.into_inner()),
        cookie.clone(),
        held,
        MAX_KEPT,
        KEEP,
        |h| h.since,
    );
    let mut r = html(&page);
    // Strict: the buttons post from our own page; no other site's form carries it.
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={cookie}; Path={}; HttpOnly; SameSite=Strict",
        rp.base
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn held_of(rp: &DemoRp, headers: &HeaderMap) -> Option<(String, Held)> {
    let cookie = crate::web::cookies::cookie_value(headers, COOKIE)?;
    let all = rp.signed_in.0.lock().unwrap_or_else(|p| p.into_inner());
    let held = all
        .get(&cookie)
        .filter(|h| h.since.elapsed() < KEEP)?
        .clone();
    Some((cookie, held))
}

fn store(rp: &DemoRp, cookie: &str, held: Held) {
    rp.signed_in
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(cookie.to_owned(), held);
}

fn not_signed_in(rp: &DemoRp) -> Response {
    failure(
        rp,
        "not signed in here (or the sign-in is over an hour old): sign in again",
    )
}

/// `POST {base}/refresh`: a refresh token grant (OIDC Core §12), the id_token re-verified.
async fn refresh(State(rp): State<Arc<DemoRp>>, headers: HeaderMap) -> Response {
    let Some((cookie, held)) = held_of(&rp, &headers) else {
        return not_signed_in(&rp);
    };
    let Some(refresh_token) = held.refresh.clone() else {
        let mut page = held.page.clone();
        page.notice = "没有刷新令牌：登录时请勾选 offline_access · No refresh token: tick offline_access when signing in".into();
        return html(&page);
    };
    let client = match rp.client().await {
        Ok(c) => c,
        Err(e) => return failure(&rp, e),
    };
    let answer = match client.exchange_refresh_token(&refresh_token) {
        Ok(request) => request
            .request_async(&rp.http)
            .await
            .map_err(|e| format!("refresh failed: {e}")),
        Err(e) => Err(e.to_string()),
    };
    let token = match answer {
        Ok(t) => t,
        Err(e) => return failure(&rp, e),
    };
    match page_of(&rp, client, &token, None).await {
        Ok((mut page, mut fresh)) => {
            page.notice = "已用刷新令牌换取新令牌（旧刷新令牌已作废）· Refreshed: new tokens issued, the old refresh token is spent".into();
            fresh.page = page.clone();
            store(&rp, &cookie, fresh);
            html(&page)
        }
        Err(e) => failure(&rp, e),
    }
}

/// `POST {base}/userinfo`: calls userinfo again with the access token held.
async fn userinfo(State(rp): State<Arc<DemoRp>>, headers: HeaderMap) -> Response {
    let Some((cookie, mut held)) = held_of(&rp, &headers) else {
        return not_signed_in(&rp);
    };
    let client = match rp.client().await {
        Ok(c) => c,
        Err(e) => return failure(&rp, e),
    };
    match call_userinfo(&rp, client, &held.access).await {
        Ok(info) => {
            let claims: serde_json::Value =
                serde_json::from_str(&held.page.claims).unwrap_or_default();
            held.page.rows = claim_rows(&rp, &claims, &info);
            held.page.userinfo = serde_json::to_string_pretty(&info).unwrap_or_default();
            held.page.notice = "已重新调用 userinfo · userinfo called again".into();
            let page = held.page.clone();
            store(&rp, &cookie, held);
            html(&page)
        }
        Err(e) => failure(&rp, e),
    }
}

/// `POST {base}/logout`: forgets the tokens here and sends the browser to the provider's
/// end_session endpoint with the id_token as hint (RP-Initiated Logout 1.0 §2), which ends
/// the provider session and comes back to this relying party's home.
async fn logout(State(rp): State<Arc<DemoRp>>, headers: HeaderMap) -> Response {
    let Some((cookie, held)) = held_of(&rp, &headers) else {
        return not_signed_in(&rp);
    };
    rp.signed_in
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&cookie);
    let back = format!("{}{}", rp.issuer, home(&rp).trim_end_matches('/'));
    let back = if back == rp.issuer {
        format!("{back}/")
    } else {
        back
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &held.id_token)
        .append_pair("post_logout_redirect_uri", &back)
        .append_pair("client_id", &rp.client_id)
        .finish();
    let mut r = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("{}/logout?{query}", rp.issuer))],
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{COOKIE}=; Path={}; Max-Age=0", rp.base)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The buttons' routes under `base`.
pub(super) fn routes(base: &str) -> Router<Arc<DemoRp>> {
    Router::new()
        .route(&format!("{base}/refresh"), post(refresh))
        .route(&format!("{base}/userinfo"), post(userinfo))
        .route(&format!("{base}/logout"), post(logout))
}
