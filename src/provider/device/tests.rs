use super::*;
use crate::provider::client::ClientSettings;
use crate::provider::testing::{app_basic as basic, app_client, harness, params, Harness};
use crate::provider::Lifetimes;

fn device_client() -> Client {
    let mut client = app_client(ClientSettings::default());
    client.settings.grant_types = Some(vec![GrantType::DeviceCode, GrantType::RefreshToken]);
    client
}

async fn start(h: &Harness) -> DeviceAuthorizationResponse {
    h.provider
        .device_authorization(
            &params(&[("scope", "openid profile offline_access")]),
            &basic(),
        )
        .await
        .expect("device authorization")
}

/// The provider with a device client, and a device authorization it started.
async fn started() -> (Harness, DeviceAuthorizationResponse) {
    let h = harness(vec![device_client()], Lifetimes::default());
    let d = start(&h).await;
    (h, d)
}

/// Asserts that a poll with `device_code` now is refused with `expected` (RFC 8628 §3.5).
async fn assert_poll_refused(h: &Harness, device_code: &str, expected: ErrorCode) {
    let got = poll_once(h, device_code).await.map(|_| "tokens");
    assert_eq!(got, Err(expected));
}

async fn poll_once(h: &Harness, device_code: &str) -> Result<TokenResponse, ErrorCode> {
    h.provider
        .token(
            &params(&[
                ("grant_type", GrantType::DeviceCode.as_str()),
                ("device_code", device_code),
            ]),
            &basic(),
        )
        .await
        .map_err(|e| e.error.code)
}

/// Approves `user_code` as the person of a fresh session of the default connector.
async fn approve(
    h: &Harness,
    user_code: &str,
    approve: bool,
) -> Result<DeviceRequest, DevicePageError> {
    let identity = crate::connector::Identity {
        user_id: "zhangsan".into(),
        username: "zhangsan".into(),
        connector_id: "stub".into(),
        ..Default::default()
    };
    let (cookie, _, _) = h
        .provider
        .start_session(&identity, "stub", None)
        .await
        .expect("session");
    h.provider
        .device_answer(user_code, Some(&cookie), approve)
        .await
}

#[test]
fn user_codes_use_the_unambiguous_alphabet_and_normalize_rfc8628_6_1() {
    for _ in 0..200 {
        let code = random::from_alphabet(USER_CODE_ALPHABET, USER_CODE_LEN);
        assert!(
            code.bytes().all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)),
            "{code}"
        );
    }
    for typed in ["bcdf-ghjk", " BCDF GHJK ", "BcDfGhJk"] {
        assert_eq!(
            normalize_user_code(typed).as_deref(),
            Some("BCDF-GHJK"),
            "{typed}"
        );
    }
    for bad in [
        "",
        "BCDF-GHJ",
        "BCDF-GHJKL",
        "ABCD-EFGH",
        "0000-0000",
        "BCDF-GHJ1",
    ] {
        assert_eq!(normalize_user_code(bad), None, "{bad}");
    }
}

#[tokio::test]
async fn polling_answers_pending_slow_down_then_tokens_once_rfc8628_3_5() {
    let (h, d) = started().await;
    assert_eq!(d.interval, 5);
    assert!(d
        .verification_uri_complete
        .ends_with(&format!("/device?user_code={}", d.user_code)));
    assert_poll_refused(&h, &d.device_code, ErrorCode::AuthorizationPending).await;
    h.clock.advance(2);
    assert_poll_refused(&h, &d.device_code, ErrorCode::SlowDown).await;
    // The interval grew by 5 s: 7 s later is still too soon, 10 s is not.
    h.clock.advance(7);
    assert_poll_refused(&h, &d.device_code, ErrorCode::SlowDown).await;
    h.clock.advance(15);
    assert_poll_refused(&h, &d.device_code, ErrorCode::AuthorizationPending).await;
    approve(&h, &d.user_code, true).await.expect("approved");
    h.clock.advance(15);
    let tokens = poll_once(&h, &d.device_code).await.expect("tokens");
    assert!(tokens.id_token.is_some() && tokens.refresh_token.is_some());
    assert_eq!(tokens.scope, "openid profile offline_access");
    h.clock.advance(15);
    assert_poll_refused(&h, &d.device_code, ErrorCode::InvalidGrant).await;
}

#[tokio::test]
async fn a_user_code_is_answered_once_and_denial_is_access_denied_rfc8628_3_5() {
    let (h, d) = started().await;
    approve(&h, &d.user_code, false).await.expect("denied");
    assert_eq!(
        approve(&h, &d.user_code, true).await,
        Err(DevicePageError::Invalid)
    );
    assert_eq!(
        h.provider.device_request(&d.user_code).await,
        Err(DevicePageError::Invalid)
    );
    assert_poll_refused(&h, &d.device_code, ErrorCode::AccessDenied).await;
}

#[tokio::test]
async fn expired_device_codes_answer_expired_token_and_cannot_be_approved_rfc8628_3_5() {
    let (h, d) = started().await;
    h.clock.advance(600);
    assert_eq!(
        approve(&h, &d.user_code, true).await,
        Err(DevicePageError::Invalid)
    );
    assert_poll_refused(&h, &d.device_code, ErrorCode::ExpiredToken).await;
}

#[tokio::test]
async fn answering_needs_a_session_and_clients_without_the_grant_are_refused() {
    let (h, d) = started().await;
    assert_eq!(
        h.provider.device_answer(&d.user_code, None, true).await,
        Err(DevicePageError::LoginRequired)
    );
    assert_eq!(
        h.provider
            .device_answer(&d.user_code, Some("no-such-session"), true)
            .await,
        Err(DevicePageError::LoginRequired)
    );
    let plain = harness(
        vec![app_client(ClientSettings::default())],
        Lifetimes::default(),
    );
    let err = plain
        .provider
        .device_authorization(&params(&[]), &basic())
        .await
        .expect_err("not enabled");
    assert_eq!(err.error.code, ErrorCode::UnauthorizedClient);
    assert_poll_refused(&plain, "whatever", ErrorCode::UnauthorizedClient).await;
}
