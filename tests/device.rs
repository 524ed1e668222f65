//! The device authorization grant (RFC 8628) and the `client_credentials` grant (RFC 6749 §4.4)
//! end to end: the demo (provider + WeCom simulator) on an ephemeral port, a device client that
//! polls `/token`, and a browser that goes through the verification page and the simulated
//! WeCom login.

mod common;

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;
use wecom_oidc::clock::{ManualClock, SharedClock, SystemClock};
use wecom_oidc::demo::RunningDemo;
use wecom_oidc::provider::client::{ClientSettings, GrantType};
use wecom_oidc::provider::Client;
use wecom_oidc::web::rate_limit::RateLimits;

use common::{browser_as, claims_of, post_form, str_of, token, walk};

const DEVICE: (&str, &str) = ("cli", "cli-secret");
const SERVICE: (&str, &str) = ("svc", "svc-secret");
const WEB: (&str, &str) = ("web", "web-secret");
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const WECOM_UA: &str = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 MicroMessenger/8.0 wxwork/4.1.0";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

fn with_grants(id: &str, secret: &str, grants: &[GrantType]) -> Client {
    let mut settings = ClientSettings::default();
    settings.grant_types = Some(grants.to_vec());
    if grants.contains(&GrantType::ClientCredentials) {
        settings.client_credentials_scopes = vec!["metrics:read".into(), "deploy".into()];
        settings.access_token_format = wecom_oidc::provider::AccessTokenFormat::Jwt;
        settings.access_token_audience = Some("https://api.example.com".into());
    }
    let mut c =
        wecom_oidc::testkit::client(id, Some(secret), "https://unused.example/cb", settings);
    c.redirect_uris.clear();
    c
}

fn clients() -> Vec<Client> {
    vec![
        with_grants(
            DEVICE.0,
            DEVICE.1,
            &[GrantType::DeviceCode, GrantType::RefreshToken],
        ),
        with_grants(SERVICE.0, SERVICE.1, &[GrantType::ClientCredentials]),
        wecom_oidc::testkit::client(
            WEB.0,
            Some(WEB.1),
            "https://web.example/cb",
            ClientSettings::default(),
        ),
    ]
}

async fn start(clock: SharedClock, limits: RateLimits) -> RunningDemo {
    common::start_demo_with_limits(Some("zhangsan"), clients(), None, clock, limits).await
}

/// Starts a device authorization as the device client.
async fn authorize_device(issuer: &str, scope: &str) -> Value {
    let (status, _, body) = post_form(
        &format!("{issuer}/device_authorization"),
        &[("scope", scope)],
        Some(DEVICE),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn poll(issuer: &str, device_code: &str) -> (StatusCode, Value) {
    token(
        issuer,
        DEVICE,
        &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
    )
    .await
}

/// The value of the hidden field `name` of a page.
fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + marker.len();
    body[start..][..body[start..].find('"').expect("quote")].to_string()
}

/// Submits the confirmation form of `page` with `decision`.
async fn answer(
    b: &reqwest::Client,
    issuer: &str,
    page: &str,
    decision: &str,
) -> (StatusCode, String) {
    let resp = b
        .post(format!("{issuer}/device"))
        .form(&[
            ("user_code", hidden(page, "user_code").as_str()),
            ("csrf", hidden(page, "csrf").as_str()),
            ("decision", decision),
        ])
        .send()
        .await
        .expect("answer");
    let status = resp.status();
    (status, resp.text().await.expect("body"))
}

/// Signs in on a desktop browser through the verification page: the code page (with its QR
/// code), then "sign in", the simulated WeCom login, and back on the confirmation.
async fn desktop_confirmation(issuer: &str, complete: &str) -> (reqwest::Client, String) {
    let b = browser_as(DESKTOP);
    let first = walk(&b, complete, "").await;
    let page = first.body.expect("page");
    assert_eq!(first.status, StatusCode::OK, "{page}");
    assert!(
        page.contains("<svg") && page.contains("/device/login?user_code="),
        "{page}"
    );
    let start = page.find("/device/login?user_code=").expect("login link");
    let link = &page[start..][..page[start..].find('"').expect("quote")];
    let confirm = walk(&b, &format!("{issuer}{link}"), "").await;
    assert!(confirm.went_through_wecom(), "{:?}", confirm.visited);
    let body = confirm.body.expect("confirmation page");
    assert_eq!(confirm.status, StatusCode::OK, "{body}");
    assert!(body.contains("name=\"csrf\""), "{body}");
    (b, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_logs_in_after_the_person_approves_on_the_verification_page_rfc8628_3() {
    let d = start(Arc::new(SystemClock), RateLimits::demo()).await;
    let issuer = &d.issuer;
    let auth = authorize_device(issuer, "openid profile offline_access").await;
    let user_code = str_of(&auth, "user_code");
    assert_eq!(user_code.len(), 9);
    assert!(user_code
        .chars()
        .all(|c| c == '-' || "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
    assert_eq!(
        str_of(&auth, "verification_uri"),
        format!("{issuer}/device")
    );
    let complete = str_of(&auth, "verification_uri_complete");
    assert_eq!(complete, format!("{issuer}/device?user_code={user_code}"));
    assert_eq!(auth["interval"], 5);
    assert_eq!(auth["expires_in"], 600);
    let device_code = str_of(&auth, "device_code");
    let (status, body) = poll(issuer, device_code).await;
    assert_eq!(
        (status, str_of(&body, "error")),
        (StatusCode::BAD_REQUEST, "authorization_pending")
    );

    let (b, page) = desktop_confirmation(issuer, complete).await;
    assert!(page.contains(user_code) && page.contains("cli"), "{page}");
    let (status, done) = answer(&b, issuer, &page, "approve").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    // The sign-in is a login event like others, for the device's client and with its grant.
    let events = d.store.list_login_events(10).await.expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.client_id.as_deref() == Some(DEVICE.0)
                && e.grant.as_deref() == Some("device_code")
                && e.user_id.as_deref() == Some("zhangsan")
                && e.outcome == "success"),
        "{events:?}"
    );

    // The approval is single use: the tokens come once, with the person's sub.
    let (status, tokens) = poll(issuer, device_code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id_token = claims_of(str_of(&tokens, "id_token"));
    assert_eq!(id_token["sub"], "zhangsan");
    assert_eq!(id_token["aud"], DEVICE.0);
    assert!(tokens["refresh_token"].is_string());
    let (status, again) = poll(issuer, device_code).await;
    assert_eq!(
        (status, str_of(&again, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let info = common::userinfo(issuer, str_of(&tokens, "access_token")).await;
    assert_eq!(info.status(), StatusCode::OK);
    // The refresh token works like any other.
    let (status, refreshed) = token(
        issuer,
        DEVICE,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", str_of(&tokens, "refresh_token")),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_wecom_the_code_link_signs_in_silently_and_one_tap_answers() {
    let d = start(Arc::new(SystemClock), RateLimits::demo()).await;
    let auth = authorize_device(&d.issuer, "openid").await;
    let b = browser_as(WECOM_UA);
    let w = walk(&b, str_of(&auth, "verification_uri_complete"), "").await;
    assert!(w.went_through_wecom(), "{:?}", w.visited);
    let page = w.body.expect("confirmation");
    assert!(
        page.contains("name=\"decision\" value=\"approve\""),
        "{page}"
    );
    // Denied: the device hears access_denied (RFC 8628 §3.5).
    let (status, _) = answer(&b, &d.issuer, &page, "deny").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = poll(&d.issuer, str_of(&auth, "device_code")).await;
    assert_eq!(
        (status, str_of(&body, "error")),
        (StatusCode::BAD_REQUEST, "access_denied")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_expired_and_forged_answers_are_refused_rfc8628_5() {
    let clock = ManualClock::new(1_900_000_000);
    let d = start(Arc::new(clock.clone()), RateLimits::demo()).await;
    let issuer = &d.issuer;

    // Reused: a user code answered once cannot be answered, or even shown, again.
    let auth = authorize_device(issuer, "openid").await;
    let b = browser_as(WECOM_UA);
    let page = walk(&b, str_of(&auth, "verification_uri_complete"), "")
        .await
        .body
        .expect("page");
    assert_eq!(answer(&b, issuer, &page, "approve").await.0, StatusCode::OK);
    let (status, body) = answer(&b, issuer, &page, "deny").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let shown = walk(&b, str_of(&auth, "verification_uri_complete"), "").await;
    assert_eq!(shown.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        poll(issuer, str_of(&auth, "device_code")).await.0,
        StatusCode::OK
    );

    // Forged: without the page's anti-forgery value, or from another browser, nothing changes.
    let auth = authorize_device(issuer, "openid").await;
    let page = walk(&b, str_of(&auth, "verification_uri_complete"), "")
        .await
        .body
        .expect("page");
    let forged = b
        .post(format!("{issuer}/device"))
        .form(&[
            ("user_code", str_of(&auth, "user_code")),
            ("decision", "approve"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let stranger = browser_as(WECOM_UA);
    assert_eq!(
        answer(&stranger, issuer, &page, "approve").await.0,
        StatusCode::FORBIDDEN
    );
    let (_, body) = poll(issuer, str_of(&auth, "device_code")).await;
    assert_eq!(str_of(&body, "error"), "authorization_pending");

    // Polling faster than the interval: slow_down, and the interval grows (§3.5).
    clock.advance(1);
    let (_, body) = poll(issuer, str_of(&auth, "device_code")).await;
    assert_eq!(str_of(&body, "error"), "slow_down");

    // Expired: the page refuses the code and the device hears expired_token.
    clock.advance(600);
    let shown = walk(&b, str_of(&auth, "verification_uri_complete"), "").await;
    assert_eq!(shown.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer(&b, issuer, &page, "approve").await.0,
        StatusCode::BAD_REQUEST
    );
    let (_, body) = poll(issuer, str_of(&auth, "device_code")).await;
    assert_eq!(str_of(&body, "error"), "expired_token");
    // Another client's device code is not this client's grant.
    let (status, body) = token(
        issuer,
        WEB,
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", str_of(&auth, "device_code")),
        ],
    )
    .await;
    assert_eq!(
        (status, str_of(&body, "error")),
        (StatusCode::BAD_REQUEST, "unauthorized_client")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessed_user_codes_learn_nothing_and_are_limited_per_address_rfc8628_5_1() {
    const BURST: u32 = 5;
    let limits = RateLimits {
        device_burst: BURST,
        device_per_minute: 1,
        ..RateLimits::demo()
    };
    let d = start(Arc::new(SystemClock), limits).await;
    let auth = authorize_device(&d.issuer, "openid").await;
    let b = browser_as(DESKTOP);
    // Unknown, malformed and lower-case guesses: one answer, the code entry with an error.
    for guess in ["BCDF-GHJK", "not-a-code", "bcdfghjk", "XXXX-XXXX"] {
        let w = walk(&b, &format!("{}/device?user_code={guess}", d.issuer), "").await;
        assert_eq!(w.status, StatusCode::BAD_REQUEST, "{guess}");
        assert!(w.body.expect("page").contains("name=\"user_code\""));
    }
    // The budget is spent: even the right code waits now.
    let mut limited = false;
    for _ in 0..2 {
        let w = walk(&b, str_of(&auth, "verification_uri_complete"), "").await;
        limited |= w.status == StatusCode::TOO_MANY_REQUESTS;
        if limited {
            assert!(w.headers.contains_key("retry-after"));
        }
    }
    assert!(limited, "no 429 after {BURST} guesses");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_issue_a_service_token_only_to_clients_that_enable_it_rfc6749_4_4() {
    let d = start(Arc::new(SystemClock), RateLimits::demo()).await;
    let issuer = &d.issuer;
    let (status, body) = token(
        issuer,
        SERVICE,
        &[("grant_type", "client_credentials"), ("scope", "deploy")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.get("refresh_token").is_none() && body.get("id_token").is_none(),
        "{body}"
    );
    assert_eq!(body["scope"], "deploy");
    let at = claims_of(str_of(&body, "access_token"));
    assert_eq!(at["sub"], SERVICE.0);
    assert_eq!(at["aud"], "https://api.example.com");
    assert!(at.get("auth_time").is_none(), "{at}");
    // No person stands behind it: no userinfo.
    let info = common::userinfo(issuer, str_of(&body, "access_token")).await;
    assert_eq!(info.status(), StatusCode::UNAUTHORIZED);
    // A scope not configured for the client.
    let (status, body) = token(
        issuer,
        SERVICE,
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    )
    .await;
    assert_eq!(
        (status, str_of(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );
    // Clients that did not enable the grant, and the device client for the code grant.
    for (client, grant) in [
        (WEB, "client_credentials"),
        (DEVICE, "client_credentials"),
        (SERVICE, DEVICE_GRANT),
    ] {
        let (status, body) = token(
            issuer,
            client,
            &[("grant_type", grant), ("device_code", "x")],
        )
        .await;
        assert_eq!(
            (status, str_of(&body, "error")),
            (StatusCode::BAD_REQUEST, "unauthorized_client"),
            "{}",
            client.0
        );
    }
    let (status, _, body) =
        post_form(&format!("{issuer}/device_authorization"), &[], Some(WEB)).await;
    assert_eq!(
        (status, str_of(&body, "error")),
        (StatusCode::BAD_REQUEST, "unauthorized_client")
    );
    // Wrong secret: invalid_client, as on every grant.
    let (status, _) = token(
        issuer,
        (SERVICE.0, "wrong"),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Discovery advertises both grants and the device endpoint (RFC 8628 §4).
    let meta: Value = common::get_json(format!("{issuer}/.well-known/openid-configuration")).await;
    assert_eq!(
        meta["device_authorization_endpoint"],
        format!("{issuer}/device_authorization")
    );
    let grants = meta["grant_types_supported"].as_array().expect("grants");
    assert!(
        grants.iter().any(|g| g == DEVICE_GRANT)
            && grants.iter().any(|g| g == "client_credentials")
    );
}
