//! End-to-end tests of grants and tokens: refresh tokens (OIDC Core §11-12, RFC 6749 §6,
//! RFC 9700 §4.14), revocation (RFC 7009), introspection (RFC 7662), JWT access tokens
//! (RFC 9068), client authentication (RFC 7523 `private_key_jwt`, hashed secrets), CORS and the
//! token endpoint's rate limit, against the real server and the WeCom simulator.
//! Run with `cargo test --test grants`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use josekit::jwk::alg::ec::EcCurve;
use josekit::jwk::Jwk;
use josekit::jws::{JwsHeader, ES256};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wecom_oidc::demo::RunningDemo;
use wecom_oidc::provider::client::{AccessTokenFormat, ClientSettings};

mod common;

use common::{
    app_client, browser, claims_of as unverified_claims, client, str_of, APP, APP_CB, APP_SECRET,
    CHALLENGE, VERIFIER,
};

const OTHER: &str = "other";
const OTHER_SECRET: &str = "other-secret-0123456789abcdef";
const OTHER_CB: &str = "http://127.0.0.1:9/other/callback";
/// HTTP Basic credentials of `OTHER`.
const AS_OTHER: Option<(&str, &str)> = Some((OTHER, OTHER_SECRET));
const SPA: &str = "spa";
const SPA_ORIGIN: &str = "http://localhost:5173";
const SPA_CB: &str = "http://localhost:5173/callback";
const JWT_APP: &str = "jwt-app";
const JWT_APP_CB: &str = "http://127.0.0.1:9/jwt/callback";
const JWT_AUDIENCE: &str = "https://api.example.com";
const HASHED: &str = "hashed";
const HASHED_SECRET: &str = "hashed-secret-Zx8Qm1Vt0Ls9Kp2Nw7Ry4Ub6";
const HASHED_CB: &str = "http://127.0.0.1:9/hashed/callback";
const PKJ: &str = "pkj";
const PKJ_CB: &str = "http://127.0.0.1:9/pkj/callback";

struct Env {
    d: RunningDemo,
    /// The private key of the `private_key_jwt` client.
    pkj_key: Jwk,
}

async fn start() -> Env {
    let pkj_key = Jwk::generate_ec_key(EcCurve::P256).unwrap();
    let mut public = pkj_key.to_public_key().unwrap();
    public.set_key_id("pkj-1");

    let mut jwt_settings = ClientSettings::default();
    jwt_settings.access_token_format = AccessTokenFormat::Jwt;
    jwt_settings.access_token_audience = Some(JWT_AUDIENCE.into());
    let mut hashed = ClientSettings::default();
    hashed.secret_sha256 = Some(Sha256::digest(HASHED_SECRET.as_bytes()).to_vec());
    let mut pkj = ClientSettings::default();
    pkj.jwks = Some(json!({ "keys": [Value::Object(public.as_ref().clone())] }));

    let d = common::start_demo(
        Some("zhangsan"),
        vec![
            app_client(),
            client(
                OTHER,
                Some(OTHER_SECRET),
                OTHER_CB,
                ClientSettings::default(),
            ),
            client(SPA, None, SPA_CB, ClientSettings::default()),
            client(JWT_APP, Some(APP_SECRET), JWT_APP_CB, jwt_settings),
            client(HASHED, None, HASHED_CB, hashed),
            client(PKJ, None, PKJ_CB, pkj),
        ],
    )
    .await;
    Env { d, pkj_key }
}

/// Walks the login of `client_id` through the simulator and returns the authorization code.
async fn login_code(d: &RunningDemo, client_id: &str, cb: &str, scope: &str) -> String {
    let state_and_nonce = ("st", "n-original");
    let pkce = common::pkce(CHALLENGE);
    let url = common::code_request_url(&d.issuer, (client_id, cb), scope, state_and_nonce, &pkce);
    let w = common::walk(&browser(), &url, cb).await;
    w.redirect_query()
        .remove("code")
        .unwrap_or_else(|| panic!("no code: {}", w.end))
}

/// Redeems `code` at `/token` with the PKCE verifier, `extra` added to the form.
async fn redeem(
    d: &RunningDemo,
    redirect_uri: &str,
    code: &str,
    extra: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut form = common::code_form(code, redirect_uri, &[("code_verifier", VERIFIER)]);
    form.extend_from_slice(extra);
    post(d, "/token", &form, basic).await
}

async fn post(
    d: &RunningDemo,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    common::post_form(&format!("{}{path}", d.issuer), form, basic).await
}

/// [`post`] as `APP` (HTTP Basic).
async fn post_as_app(
    d: &RunningDemo,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    post(d, path, form, Some((APP, APP_SECRET))).await
}

/// The form of a revocation or introspection request: `token` with its `token_type_hint`
/// (RFC 7009 §2.1, RFC 7662 §2.1).
fn hinted<'a>(token: &'a str, hint: &'a str) -> [(&'a str, &'a str); 2] {
    [("token", token), ("token_type_hint", hint)]
}

/// Logs in `APP` with `scope` and redeems the code.
async fn app_tokens(d: &RunningDemo, scope: &str) -> Value {
    let code = login_code(d, APP, APP_CB, scope).await;
    let (s, h, body) = redeem(d, APP_CB, &code, &[], Some((APP, APP_SECRET))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(h["cache-control"], "no-store");
    body
}

async fn refresh(d: &RunningDemo, token: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = common::refresh_form(token).to_vec();
    form.extend_from_slice(extra);
    let (s, h, body) = post(d, "/token", &form, Some((APP, APP_SECRET))).await;
    assert_eq!(h["cache-control"], "no-store");
    (s, body)
}

/// A demo where `APP` has logged in with `openid offline_access`: the demo and the tokens.
async fn granted() -> (RunningDemo, Value) {
    let Env { d, .. } = start().await;
    let tokens = app_tokens(&d, "openid offline_access").await;
    (d, tokens)
}

/// Asserts that userinfo refuses `access_token` (401).
async fn assert_access_refused(d: &RunningDemo, access_token: &str) {
    assert_eq!(
        userinfo_status(d, access_token).await,
        StatusCode::UNAUTHORIZED
    );
}

async fn userinfo_status(d: &RunningDemo, access_token: &str) -> StatusCode {
    common::userinfo(&d.issuer, access_token).await.status()
}

/// The claims of a JWT, verified against the provider's JWKS with josekit (not our own code).
async fn verified_claims(d: &RunningDemo, jwt: &str) -> (Value, Value) {
    let jwks = common::get_json(format!("{}/jwks", d.issuer)).await;
    let (header, claims) = common::verified_jws(&jwks, jwt);
    assert_eq!(header["alg"], "RS256");
    (header, claims)
}

#[tokio::test]
async fn refresh_token_is_issued_for_offline_access_and_rotated_on_every_use_rfc9700_4_14_2() {
    let Env { d, .. } = start().await;
    let first = app_tokens(&d, "openid profile offline_access").await;
    let rt1 = str_of(&first, "refresh_token").to_string();
    let (s, second) = refresh(&d, &rt1, &[]).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    let rt2 = str_of(&second, "refresh_token").to_string();
    assert_ne!(rt1, rt2, "a refresh must rotate the refresh token");
    assert_eq!(
        userinfo_status(&d, str_of(&second, "access_token")).await,
        StatusCode::OK
    );
    let (s, third) = refresh(&d, &rt2, &[]).await;
    assert_eq!(s, StatusCode::OK, "{third}");
    assert_eq!(str_of(&third, "scope"), "openid profile offline_access");
}

#[tokio::test]
async fn no_refresh_token_without_offline_access_oidc_core_11() {
    let Env { d, .. } = start().await;
    let tokens = app_tokens(&d, "openid profile").await;
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
}

#[tokio::test]
async fn offline_access_is_ignored_for_a_public_client_without_permission_oidc_core_11() {
    let Env { d, .. } = start().await;
    let code = login_code(&d, SPA, SPA_CB, "openid offline_access").await;
    let (s, _, body) = redeem(&d, SPA_CB, &code, &[("client_id", SPA)], None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(str_of(&body, "scope"), "openid");
}

#[tokio::test]
async fn reused_refresh_token_revokes_the_whole_grant_rfc9700_4_14_2() {
    let (d, first) = granted().await;
    let rt1 = str_of(&first, "refresh_token").to_string();
    let (_, second) = refresh(&d, &rt1, &[]).await;
    let rt2 = str_of(&second, "refresh_token").to_string();
    let at2 = str_of(&second, "access_token").to_string();

    let (s, body) = refresh(&d, &rt1, &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    // The legitimate holder's tokens die with the grant.
    let (s, body) = refresh(&d, &rt2, &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(userinfo_status(&d, &at2).await, StatusCode::UNAUTHORIZED);
    assert_access_refused(&d, str_of(&first, "access_token")).await;
}

#[tokio::test]
async fn concurrent_uses_of_one_refresh_token_succeed_exactly_once_and_revoke_the_grant() {
    let (d, first) = granted().await;
    let rt = str_of(&first, "refresh_token").to_string();
    let attempts = (0..6).map(|_| refresh(&d, &rt, &[]));
    let results = futures_util::future::join_all(attempts).await;
    let winners = common::winners(&results);
    assert_eq!(winners.len(), 1, "refreshes that succeeded with one token");
    // The other uses were reuse (RFC 9700 §4.14.2): the winner's new tokens die with the grant.
    let (s, _) = refresh(&d, str_of(winners[0], "refresh_token"), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn replayed_code_also_revokes_the_refresh_token_it_issued_rfc6749_4_1_2() {
    let Env { d, .. } = start().await;
    let code = login_code(&d, APP, APP_CB, "openid offline_access").await;
    let form = common::code_form(&code, APP_CB, &[("code_verifier", VERIFIER)]);
    let (s, _, first) = post(&d, "/token", &form, Some((APP, APP_SECRET))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = post(&d, "/token", &form, Some((APP, APP_SECRET))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, body) = refresh(&d, str_of(&first, "refresh_token"), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn refresh_may_narrow_the_scope_but_never_widen_it_rfc6749_6() {
    let Env { d, .. } = start().await;
    let first = app_tokens(&d, "openid profile offline_access").await;
    let rt1 = str_of(&first, "refresh_token").to_string();

    let (s, body) = refresh(&d, &rt1, &[("scope", "openid email")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");

    // The refused widening did not spend the token.
    let (s, narrowed) = refresh(&d, &rt1, &[("scope", "openid")]).await;
    assert_eq!(s, StatusCode::OK, "{narrowed}");
    assert_eq!(str_of(&narrowed, "scope"), "openid");
    let info: Value = common::userinfo(&d.issuer, str_of(&narrowed, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        info.get("name").is_none(),
        "profile was narrowed away: {info}"
    );

    // The rotated token keeps the original scope: profile may be asked for again.
    let rt2 = str_of(&narrowed, "refresh_token").to_string();
    let (s, again) = refresh(&d, &rt2, &[("scope", "openid profile")]).await;
    assert_eq!(s, StatusCode::OK, "{again}");
}

#[tokio::test]
async fn refreshed_id_token_keeps_iss_sub_aud_and_auth_time_without_nonce_oidc_core_12_2() {
    let (d, first) = granted().await;
    let (_, original) = verified_claims(&d, str_of(&first, "id_token")).await;
    assert_eq!(original["nonce"], "n-original");
    let (s, second) = refresh(&d, str_of(&first, "refresh_token"), &[]).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    let (_, refreshed) = verified_claims(&d, str_of(&second, "id_token")).await;
    for claim in ["iss", "sub", "aud", "auth_time"] {
        assert_eq!(refreshed[claim], original[claim], "{claim}");
    }
    assert!(refreshed.get("nonce").is_none(), "{refreshed}");
}

#[tokio::test]
async fn refresh_is_refused_and_the_grant_ended_when_the_member_is_disabled_upstream() {
    let (d, first) = granted().await;
    assert!(d.simulator.set_member_status("zhangsan", 2));
    let (s, body) = refresh(&d, str_of(&first, "refresh_token"), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    // Re-enabling the member does not bring the grant back.
    assert!(d.simulator.set_member_status("zhangsan", 1));
    let (s, _) = refresh(&d, str_of(&first, "refresh_token"), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_access_refused(&d, str_of(&first, "access_token")).await;
}

#[tokio::test]
async fn refresh_token_of_another_client_is_invalid_grant_and_stays_usable_rfc6749_6() {
    let (d, first) = granted().await;
    let rt = str_of(&first, "refresh_token");
    let (s, _, body) = post(&d, "/token", &common::refresh_form(rt), AS_OTHER).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (s, _) = refresh(&d, rt, &[]).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_grant_rfc7009_2_1() {
    let (d, first) = granted().await;
    let rt = str_of(&first, "refresh_token");
    let (s, h, _) = post_as_app(&d, "/revoke", &hinted(rt, "refresh_token")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["cache-control"], "no-store");
    let (s, body) = refresh(&d, rt, &[]).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_access_refused(&d, str_of(&first, "access_token")).await;
}

#[tokio::test]
async fn revoked_access_token_is_refused_at_userinfo_even_with_a_wrong_hint_rfc7009_2_1() {
    let (d, first) = granted().await;
    let at = str_of(&first, "access_token");
    assert_eq!(userinfo_status(&d, at).await, StatusCode::OK);
    let (s, _, _) = post_as_app(&d, "/revoke", &hinted(at, "refresh_token")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(userinfo_status(&d, at).await, StatusCode::UNAUTHORIZED);
    // Revoking an access token leaves the refresh token (RFC 7009 §2.1 makes that optional).
    let (s, _) = refresh(&d, str_of(&first, "refresh_token"), &[]).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn revocation_of_unknown_or_another_clients_token_answers_200_and_revokes_nothing_rfc7009_2_2(
) {
    let (d, first) = granted().await;
    let (s, _, _) = post_as_app(&d, "/revoke", &[("token", "no-such-token")]).await;
    assert_eq!(s, StatusCode::OK);
    for token in [
        str_of(&first, "access_token"),
        str_of(&first, "refresh_token"),
    ] {
        let (s, _, _) = post(&d, "/revoke", &[("token", token)], AS_OTHER).await;
        assert_eq!(s, StatusCode::OK);
    }
    assert_eq!(
        userinfo_status(&d, str_of(&first, "access_token")).await,
        StatusCode::OK
    );
    let (s, _) = refresh(&d, str_of(&first, "refresh_token"), &[]).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn revocation_requires_client_authentication_rfc7009_2_1() {
    let Env { d, .. } = start().await;
    let first = app_tokens(&d, "openid").await;
    let at = str_of(&first, "access_token");
    let (s, h, body) = post(&d, "/revoke", &[("token", at)], Some((APP, "wrong"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(h.contains_key("www-authenticate"));
    // A confidential client cannot pass itself off as public.
    let (s, _, _) = post(&d, "/revoke", &[("token", at), ("client_id", APP)], None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(userinfo_status(&d, at).await, StatusCode::OK);
    let (s, _, body) = post_as_app(&d, "/revoke", &[]).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

#[tokio::test]
async fn public_client_revokes_its_own_token_with_client_id_rfc7009_2_1() {
    let Env { d, .. } = start().await;
    let code = login_code(&d, SPA, SPA_CB, "openid").await;
    let (_, _, body) = redeem(&d, SPA_CB, &code, &[("client_id", SPA)], None).await;
    let at = str_of(&body, "access_token");
    let (s, _, _) = post(&d, "/revoke", &[("token", at), ("client_id", SPA)], None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(userinfo_status(&d, at).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn introspection_reports_active_tokens_then_inactive_after_revocation_rfc7662_2_2() {
    let Env { d, .. } = start().await;
    let first = app_tokens(&d, "openid profile offline_access").await;
    let at = str_of(&first, "access_token");
    let (s, h, body) = post_as_app(&d, "/introspect", &[("token", at)]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(body["active"], true);
    assert_eq!(body["scope"], "openid profile offline_access");
    assert_eq!(body["client_id"], APP);
    assert_eq!(body["username"], "zhangsan");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["sub"], "zhangsan");
    assert_eq!(body["aud"], APP);
    assert_eq!(body["iss"], d.issuer.as_str());
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());

    let rt = str_of(&first, "refresh_token");
    let (_, _, body) = post_as_app(&d, "/introspect", &hinted(rt, "refresh_token")).await;
    assert_eq!(body["active"], true, "{body}");

    // Another client learns nothing about this client's tokens.
    let (_, _, body) = post(&d, "/introspect", &[("token", at)], AS_OTHER).await;
    assert_eq!(body, json!({ "active": false }));

    post_as_app(&d, "/revoke", &[("token", rt)]).await;
    for token in [at, rt, "never-issued"] {
        let (s, _, body) = post_as_app(&d, "/introspect", &[("token", token)]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(body, json!({ "active": false }));
    }
}

#[tokio::test]
async fn public_client_is_refused_at_introspection_with_401_rfc7662_2_3() {
    let Env { d, .. } = start().await;
    let (s, h, body) = post(
        &d,
        "/introspect",
        &[("token", "whatever"), ("client_id", SPA)],
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(h.contains_key("www-authenticate"));
    let (s, _, _) = post(&d, "/introspect", &[("token", "whatever")], None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn jwt_access_token_has_typ_at_jwt_verifies_with_the_jwks_and_works_at_userinfo_rfc9068() {
    let Env { d, .. } = start().await;
    let code = login_code(&d, JWT_APP, JWT_APP_CB, "openid profile").await;
    let (s, _, body) = redeem(&d, JWT_APP_CB, &code, &[], Some((JWT_APP, APP_SECRET))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let at = str_of(&body, "access_token");
    let (header, claims) = verified_claims(&d, at).await;
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["iss"], d.issuer.as_str());
    assert_eq!(claims["aud"], JWT_AUDIENCE);
    assert_eq!(claims["sub"], "zhangsan");
    assert_eq!(claims["client_id"], JWT_APP);
    assert_eq!(claims["scope"], "openid profile");
    for claim in ["exp", "iat", "auth_time"] {
        assert!(claims[claim].is_i64(), "{claim}: {claims}");
    }
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 32));
    assert_eq!(userinfo_status(&d, at).await, StatusCode::OK);

    // The id_token is not an access token, although signed with the same key (RFC 9068 §4).
    assert_access_refused(&d, str_of(&body, "id_token")).await;
    let (_, _, intro) = post(
        &d,
        "/introspect",
        &[("token", at)],
        Some((JWT_APP, APP_SECRET)),
    )
    .await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["aud"], JWT_AUDIENCE);

    let (s, _, _) = post(&d, "/revoke", &[("token", at)], Some((JWT_APP, APP_SECRET))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(userinfo_status(&d, at).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tampered_jwt_access_token_is_refused_at_userinfo() {
    let Env { d, .. } = start().await;
    let code = login_code(&d, JWT_APP, JWT_APP_CB, "openid").await;
    let (_, _, body) = redeem(&d, JWT_APP_CB, &code, &[], Some((JWT_APP, APP_SECRET))).await;
    let at = str_of(&body, "access_token");
    let mut claims = unverified_claims(at);
    claims["scope"] = json!("openid profile email");
    let parts: Vec<&str> = at.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(userinfo_status(&d, &forged).await, StatusCode::UNAUTHORIZED);
}

/// A client assertion for `PKJ` signed with `key`, with `claims` merged over good defaults.
fn assertion(env: &Env, overrides: Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = json!({
        "iss": PKJ,
        "sub": PKJ,
        "aud": format!("{}/token", env.d.issuer),
        "exp": now + 60,
        "iat": now,
        "jti": wecom_oidc::random::token(16),
    });
    for (k, v) in overrides.as_object().unwrap() {
        claims[k] = v.clone();
    }
    sign_es256(&env.pkj_key, &claims)
}

fn sign_es256(key: &Jwk, claims: &Value) -> String {
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id("pkj-1");
    let signer = ES256.signer_from_jwk(key).unwrap();
    josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, &signer).unwrap()
}

async fn pkj_exchange(env: &Env, code: &str, assertion: &str) -> (StatusCode, Value) {
    let (s, _, body) = redeem(
        &env.d,
        PKJ_CB,
        code,
        &[
            ("client_id", PKJ),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
        None,
    )
    .await;
    (s, body)
}

#[tokio::test]
async fn private_key_jwt_authenticates_and_its_jti_is_single_use_rfc7523_3() {
    let env = start().await;
    let a = assertion(&env, json!({}));
    let code = login_code(&env.d, PKJ, PKJ_CB, "openid").await;
    let (s, body) = pkj_exchange(&env, &code, &a).await;
    assert_eq!(s, StatusCode::OK, "{body}");

    let code = login_code(&env.d, PKJ, PKJ_CB, "openid").await;
    let (s, body) = pkj_exchange(&env, &code, &a).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "replayed assertion: {body}");
    assert_eq!(body["error"], "invalid_client");
    // A fresh assertion still works.
    let code = login_code(&env.d, PKJ, PKJ_CB, "openid").await;
    let (s, _) = pkj_exchange(&env, &code, &assertion(&env, json!({}))).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn private_key_jwt_with_wrong_aud_expired_or_foreign_key_is_invalid_client_rfc7523_3() {
    let env = start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Good claims, signed with a key that is not the client's registered one.
    let foreign = {
        let stranger = Jwk::generate_ec_key(EcCurve::P256).unwrap();
        let claims = unverified_claims(&assertion(&env, json!({})));
        sign_es256(&stranger, &claims)
    };
    let cases = [
        (
            "wrong aud",
            assertion(&env, json!({"aud": "https://elsewhere.example/token"})),
        ),
        (
            "expired",
            assertion(&env, json!({"exp": now - 5, "iat": now - 65})),
        ),
        (
            "far future exp",
            assertion(&env, json!({"exp": now + 86400})),
        ),
        ("no jti", assertion(&env, json!({"jti": null}))),
        (
            "sub differs",
            assertion(&env, json!({"sub": "someone-else"})),
        ),
        ("foreign key", foreign),
    ];
    for (why, a) in cases {
        let code = login_code(&env.d, PKJ, PKJ_CB, "openid").await;
        let (s, body) = pkj_exchange(&env, &code, &a).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{why}: {body}");
        assert_eq!(body["error"], "invalid_client", "{why}");
    }
    // The issuer itself is an accepted audience (RFC 7523 §3 item 3).
    let code = login_code(&env.d, PKJ, PKJ_CB, "openid").await;
    let (s, body) = pkj_exchange(&env, &code, &assertion(&env, json!({"aud": env.d.issuer}))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn private_key_jwt_client_cannot_fall_back_to_no_authentication_oidc_core_9() {
    let env = start().await;
    let code = login_code(&env.d, PKJ, PKJ_CB, "openid").await;
    let (s, _, body) = redeem(&env.d, PKJ_CB, &code, &[("client_id", PKJ)], None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn client_secret_stored_as_sha256_authenticates_basic_and_post_and_refuses_others() {
    let Env { d, .. } = start().await;
    for (i, basic) in [true, false].into_iter().enumerate() {
        let code = login_code(&d, HASHED, HASHED_CB, "openid").await;
        let mut form = common::code_form(&code, HASHED_CB, &[("code_verifier", VERIFIER)]);
        if !basic {
            form.push(("client_id", HASHED));
            form.push(("client_secret", HASHED_SECRET));
        }
        let (s, _, body) = post(
            &d,
            "/token",
            &form,
            basic.then_some((HASHED, HASHED_SECRET)),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "attempt {i}: {body}");
    }
    let code = login_code(&d, HASHED, HASHED_CB, "openid").await;
    let (s, _, body) = redeem(
        &d,
        HASHED_CB,
        &code,
        &[],
        Some((HASHED, "hashed-secret-Zx8Qm1Vt0Ls9Kp2Nw7Ry4Ub7")),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
}

/// A CORS preflight (`OPTIONS`, Fetch standard §3.2.2) of `url` from `origin` for `method`,
/// with `headers` as the request headers it would send.
async fn preflight(
    http: &reqwest::Client,
    url: &str,
    origin: &str,
    method: &str,
    headers: Option<&str>,
) -> reqwest::Response {
    let mut req = http
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", method);
    if let Some(headers) = headers {
        req = req.header("access-control-request-headers", headers);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn cors_preflight_allows_the_registered_spa_origin_on_token_userinfo_and_revoke() {
    let Env { d, .. } = start().await;
    let http = reqwest::Client::new();
    for path in ["/token", "/userinfo", "/revoke"] {
        let url = format!("{}{path}", d.issuer);
        let headers = Some("authorization, content-type");
        let resp = preflight(&http, &url, SPA_ORIGIN, "POST", headers).await;
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        let h = resp.headers();
        assert_eq!(h["access-control-allow-origin"], SPA_ORIGIN, "{path}");
        assert!(h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST"));
        let allowed = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"));
        assert!(!h.contains_key("access-control-allow-credentials"));

        let url = format!("{}{path}", d.issuer);
        let evil = preflight(&http, &url, "https://evil.example", "POST", None).await;
        assert!(
            !evil.headers().contains_key("access-control-allow-origin"),
            "{path}"
        );
    }
    // The actual response carries the header too.
    let resp = http
        .post(format!("{}/token", d.issuer))
        .header("origin", SPA_ORIGIN)
        .form(&[("grant_type", "authorization_code"), ("client_id", SPA)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], SPA_ORIGIN);
}

#[tokio::test]
async fn cors_allows_any_origin_on_discovery_and_jwks_but_none_on_authorize() {
    let Env { d, .. } = start().await;
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    for path in ["/.well-known/openid-configuration", "/jwks"] {
        let url = format!("{}{path}", d.issuer);
        let pre = preflight(&http, &url, "https://anyone.example", "GET", None).await;
        assert!(pre.status().is_success(), "{path}");
        assert_eq!(pre.headers()["access-control-allow-origin"], "*");
        let get = http.get(&url).header("origin", "https://anyone.example");
        let get = get.send().await.unwrap();
        assert_eq!(get.headers()["access-control-allow-origin"], "*");
        assert_eq!(get.headers()["x-content-type-options"], "nosniff");
        let length = get.content_length().expect("a Content-Length");
        assert_eq!(get.bytes().await.unwrap().len() as u64, length, "{path}");
    }
    let authorize = http.get(format!("{}/authorize?client_id={SPA}", d.issuer));
    let resp = authorize.header("origin", SPA_ORIGIN).send().await.unwrap();
    assert!(!resp.headers().contains_key("access-control-allow-origin"));
}

/// The public documents and `/userinfo` say their length over HTTP/2 as over HTTP/1 (RFC 9113
/// §8.1.1 allows it; RFC 9110 §8.6), an empty challenge included: the server's own edge answers
/// these and must write what the router's answers carry.
#[tokio::test]
async fn public_documents_and_userinfo_carry_their_length_over_http2_too() {
    let Env { d, .. } = start().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for (path, status) in [
        ("/.well-known/openid-configuration", StatusCode::OK),
        ("/jwks", StatusCode::OK),
        ("/userinfo", StatusCode::UNAUTHORIZED),
    ] {
        let resp = h2.get(format!("{}{path}", d.issuer)).send().await.unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2, "{path}");
        assert_eq!(resp.status(), status, "{path}");
        let length = resp.headers().get("content-length").cloned();
        let body = resp.bytes().await.unwrap();
        let length = length.unwrap_or_else(|| panic!("{path}: no Content-Length"));
        assert_eq!(length.to_str().unwrap(), body.len().to_string(), "{path}");
    }
}

#[tokio::test]
async fn token_endpoint_rate_limit_lets_a_burst_through_then_answers_429_with_retry_after_rfc6585_4(
) {
    let Env { d, .. } = start().await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..400 {
        let resp = http
            .post(format!("{}/token", d.issuer))
            .basic_auth(APP, Some(APP_SECRET))
            .form(&common::code_form("bogus", APP_CB, &[]))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "temporarily_unavailable");
            statuses.push(status);
            break;
        }
        statuses.push(status);
    }
    let first_limited = statuses
        .iter()
        .position(|s| *s == StatusCode::TOO_MANY_REQUESTS)
        .expect("the limit was never reached");
    assert!(
        first_limited >= 50,
        "a burst of 50 must pass, limited after {first_limited}"
    );
    // Other clients from the same address have their own bucket.
    let (s, _, _) = post(
        &d,
        "/token",
        &common::code_form("bogus", OTHER_CB, &[]),
        AS_OTHER,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn discovery_advertises_refresh_revocation_introspection_and_private_key_jwt() {
    let Env { d, .. } = start().await;
    let meta: Value =
        common::get_json(format!("{}/.well-known/openid-configuration", d.issuer)).await;
    let has = |key: &str, value: &str| {
        meta[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} missing"))
            .iter()
            .any(|v| v == value)
    };
    assert!(has("grant_types_supported", "refresh_token"));
    assert!(has("scopes_supported", "offline_access"));
    assert!(has(
        "token_endpoint_auth_methods_supported",
        "private_key_jwt"
    ));
    assert!(has(
        "token_endpoint_auth_signing_alg_values_supported",
        "ES256"
    ));
    assert!(!has(
        "token_endpoint_auth_signing_alg_values_supported",
        "none"
    ));
    assert_eq!(meta["revocation_endpoint"], format!("{}/revoke", d.issuer));
    assert_eq!(
        meta["introspection_endpoint"],
        format!("{}/introspect", d.issuer)
    );
}

#[tokio::test]
async fn login_callback_rate_limit_answers_429_with_retry_after_rfc6585_4() {
    let Env { d, .. } = start().await;
    let http = reqwest::Client::new();
    let mut limited_after = None;
    for i in 0..400 {
        let resp = http
            .get(format!(
                "{}/callback/wecom?state=unknown{i}&code=x",
                d.issuer
            ))
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(resp.headers().contains_key("retry-after"));
            assert!(resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"));
            limited_after = Some(i);
            break;
        }
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
    let n = limited_after.expect("the callback limit was never reached");
    assert!(n >= 50, "a burst of 50 logins must pass, limited after {n}");
}

#[tokio::test]
async fn openidconnect_rp_refreshes_and_verifies_the_new_id_token_oidc_core_12() {
    use openidconnect::{
        AuthorizationCode, Nonce, OAuth2TokenResponse, PkceCodeVerifier, RefreshToken,
        TokenResponse,
    };
    let Env { d, .. } = start().await;
    let (rp, http) = common::discover_rp(&d.issuer, APP, APP_SECRET, APP_CB).await;
    let code = login_code(&d, APP, APP_CB, "openid profile offline_access").await;
    let first = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new(VERIFIER.into()))
        .request_async(&http)
        .await
        .unwrap();
    let verifier = rp.id_token_verifier();
    let original = first
        .id_token()
        .unwrap()
        .claims(&verifier, &Nonce::new("n-original".into()))
        .unwrap()
        .clone();
    let refreshed = rp
        .exchange_refresh_token(&RefreshToken::new(
            first.refresh_token().unwrap().secret().clone(),
        ))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        first.refresh_token().unwrap().secret()
    );
    // No nonce at refresh: the verifier is told not to expect one.
    let claims = refreshed
        .id_token()
        .unwrap()
        .claims(&verifier, |n: Option<&Nonce>| match n {
            None => Ok(()),
            Some(_) => Err("a refreshed id_token carries no nonce".to_string()),
        })
        .unwrap();
    assert_eq!(claims.subject(), original.subject());
    assert_eq!(claims.auth_time(), original.auth_time());
    assert_eq!(claims.issuer(), original.issuer());
}
