//! End-to-end tests of provider sessions, prompts, form_post, logout (RP-initiated and
//! back-channel) and signing algorithms, against the demo server (provider + WeCom simulator)
//! on 127.0.0.1:0. Redirects are walked by hand so each hop can be checked.
//!
//! Run with `cargo test --test sessions`.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use wecom_oidc::clock::ManualClock;
use wecom_oidc::demo::{RunningDemo, SIMULATOR_PATH};
use wecom_oidc::provider::client::ClientSettings;
use wecom_oidc::provider::Client;
use wecom_oidc::tokens::{KeyStore, SigningAlg};

use openidconnect::core::{
    CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, Nonce};

mod common;

use common::{browser, claims_of, header_of, Walk};

const SECRET: &str = "sessions-test-client-secret-0123456789";
const START: i64 = 1_800_000_000;

fn client(id: &str, settings: ClientSettings) -> Client {
    common::client(id, Some(SECRET), &redirect_uri(id), settings)
}

/// Never fetched: the walk stops when the provider sends the browser there.
fn redirect_uri(id: &str) -> String {
    format!("http://127.0.0.1:9/{id}/cb")
}

struct Env {
    demo: RunningDemo,
    clock: ManualClock,
    browser: reqwest::Client,
}

async fn start_with(clients: Vec<Client>, data_dir: Option<std::path::PathBuf>) -> Env {
    start_at(START, clients, data_dir).await
}

async fn start_at(now: i64, clients: Vec<Client>, data_dir: Option<std::path::PathBuf>) -> Env {
    let clock = ManualClock::new(now);
    let demo =
        common::start_demo_with(Some("zhangsan"), clients, data_dir, Arc::new(clock.clone())).await;
    Env {
        demo,
        clock,
        browser: browser(),
    }
}

/// `app-a` and `app-b` with default settings.
fn two_clients() -> Vec<Client> {
    vec![
        client("app-a", ClientSettings::default()),
        client("app-b", ClientSettings::default()),
    ]
}

async fn start() -> Env {
    start_with(two_clients(), None).await
}

/// [`start`], then a first login of `app-a` through WeCom: the browser has a session. Returns
/// the id_token `app-a` got.
async fn start_signed_in() -> (Env, String) {
    signed_in_with(two_clients()).await
}

/// [`start_signed_in`], then `secs` pass: the browser's session (and the id_token) is that old.
async fn session_aged(secs: i64) -> (Env, String) {
    let (env, id_token) = start_signed_in().await;
    env.clock.advance(secs);
    (env, id_token)
}

/// [`start_with`] `clients`, then a first login of `app-a` through WeCom; returns the id_token
/// `app-a` got.
async fn signed_in_with(clients: Vec<Client>) -> (Env, String) {
    let env = start_with(clients, None).await;
    let id_token = login(&env, "app-a").await;
    (env, id_token)
}

/// Follows redirects from `start` until one leads to `http://127.0.0.1:9/` (a client redirect
/// URI) or a response is not a redirect.
async fn walk(http: &reqwest::Client, start: &str) -> Walk {
    common::walk(http, start, "http://127.0.0.1:9/").await
}

/// Walks `/authorize` of `client_id` with `extra` in the test's browser.
async fn authorize(env: &Env, client_id: &str, extra: &[(&str, &str)]) -> Walk {
    walk(&env.browser, &authorize_url(env, client_id, extra)).await
}

fn authorize_url(env: &Env, client_id: &str, extra: &[(&str, &str)]) -> String {
    authorize_url_scoped(env, client_id, "openid profile", extra)
}

fn authorize_url_scoped(env: &Env, client_id: &str, scope: &str, extra: &[(&str, &str)]) -> String {
    let client = (client_id, redirect_uri(client_id));
    let (issuer, state_and_nonce) = (&env.demo.issuer, ("st-123", "n-456"));
    common::code_request_url(issuer, (client.0, &client.1), scope, state_and_nonce, extra)
}

/// Redeems `code` for `client_id`; returns the token response.
async fn redeem(env: &Env, client_id: &str, code: &str) -> Value {
    let cb = redirect_uri(client_id);
    let form = common::code_form(code, &cb, &[]);
    let (status, body) = common::token(&env.demo.issuer, (client_id, SECRET), &form).await;
    assert_eq!(status, 200, "token endpoint refused the code: {body}");
    body
}

/// A full first login of `client_id` through WeCom; returns its id_token.
async fn login(env: &Env, client_id: &str) -> String {
    login_with(env, &env.browser, client_id).await
}

/// A full first login of `client_id` through WeCom in browser `http`.
async fn login_with(env: &Env, http: &reqwest::Client, client_id: &str) -> String {
    let w = walk(http, &authorize_url(env, client_id, &[])).await;
    assert!(w.went_through_wecom(), "first login goes through WeCom");
    id_token_of(env, client_id, &w).await
}

/// Asserts the walk `w` ended at the client with the OAuth `error`.
fn assert_error(w: &Walk, error: &str) {
    assert_eq!(w.param("error").as_deref(), Some(error), "{}", w.end);
}

/// `app-b` asks for a login without interaction (`prompt=none`) with `hint` as its
/// `id_token_hint` (OIDC Core §3.1.2.1).
async fn silently_with_hint(env: &Env, hint: &str) -> Walk {
    authorize(env, "app-b", &[("prompt", "none"), ("id_token_hint", hint)]).await
}

/// The id_token `client_id` gets for the code the walk `w` ended with.
async fn id_token_of(env: &Env, client_id: &str, w: &Walk) -> String {
    let code = w.param("code").expect("code for the client");
    redeem(env, client_id, &code).await["id_token"]
        .as_str()
        .expect("id_token")
        .to_string()
}

#[tokio::test]
async fn second_client_signs_in_from_the_session_without_wecom() {
    let (env, first) = session_aged(30).await;
    let w = authorize(&env, "app-b", &[]).await;
    assert!(
        !w.went_through_wecom(),
        "SSO must skip WeCom: {:?}",
        w.visited
    );
    assert_eq!(w.visited.len(), 1, "straight from /authorize to the client");
    assert_eq!(w.param("state").as_deref(), Some("st-123"));
    assert_eq!(w.param("iss").as_deref(), Some(env.demo.issuer.as_str()));
    let tokens = redeem(&env, "app-b", &w.param("code").expect("code")).await;
    let second_jwt = tokens["id_token"].as_str().expect("id_token");
    assert_eq!(header_of(second_jwt)["alg"], "RS256", "default algorithm");
    let second = claims_of(second_jwt);
    let first = claims_of(&first);
    assert_eq!(second["sub"], first["sub"]);
    // OIDC Core §2: auth_time is when the person authenticated, not when the session was used.
    assert_eq!(second["auth_time"], first["auth_time"]);
    assert_eq!(second["auth_time"], START);
    assert_eq!(second["nonce"], "n-456");
    assert_eq!(second["sid"], first["sid"], "one session, one sid");
    assert!(second["sid"].is_string());
}

#[tokio::test]
async fn session_cookie_is_httponly_samesite_lax_on_root_path() {
    let env = start().await;
    let w = authorize(&env, "app-a", &[]).await;
    let cookie = w
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("wecom_oidc_session="))
        .expect("session cookie set on the callback's redirect")
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "http issuer: no Secure");
}

#[tokio::test]
async fn prompt_none_without_session_returns_login_required_oidc_core_3_1_2_6() {
    let env = start().await;
    let w = authorize(&env, "app-a", &[("prompt", "none")]).await;
    assert!(!w.went_through_wecom());
    assert_error(&w, "login_required");
    assert_eq!(w.param("state").as_deref(), Some("st-123"));
    assert_eq!(w.param("iss").as_deref(), Some(env.demo.issuer.as_str()));
}

#[tokio::test]
async fn prompt_none_with_session_returns_a_code_without_ui() {
    let (env, _) = start_signed_in().await;
    let w = authorize(&env, "app-b", &[("prompt", "none")]).await;
    assert!(!w.went_through_wecom());
    assert!(w.param("error").is_none(), "{}", w.end);
    redeem(&env, "app-b", &w.param("code").expect("code")).await;
}

#[tokio::test]
async fn prompt_login_forces_wecom_even_with_a_session() {
    let (env, _) = session_aged(100).await;
    let w = authorize(&env, "app-a", &[("prompt", "login")]).await;
    assert!(w.went_through_wecom(), "prompt=login must re-authenticate");
    let tokens = redeem(&env, "app-a", &w.param("code").expect("code")).await;
    let claims = claims_of(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(
        claims["auth_time"],
        START + 100,
        "auth_time of the new login"
    );
}

#[tokio::test]
async fn max_age_zero_forces_re_authentication_and_old_sessions_re_login() {
    let (env, _) = session_aged(5).await;
    let w = authorize(&env, "app-b", &[("max_age", "0")]).await;
    assert!(w.went_through_wecom(), "max_age=0 acts as prompt=login");
    // A recent enough login is reused; an older one is not.
    env.clock.advance(50);
    let w = authorize(&env, "app-b", &[("max_age", "3600")]).await;
    assert!(!w.went_through_wecom());
    let claims = claims_of(&id_token_of(&env, "app-b", &w).await);
    assert_eq!(
        claims["auth_time"],
        START + 5,
        "auth_time REQUIRED with max_age"
    );
    let w = authorize(&env, "app-b", &[("max_age", "10"), ("prompt", "none")]).await;
    assert_error(&w, "login_required");
}

/// A login of `client_id` in `http` as WeCom member `userid`: the simulator's page is skipped
/// and a code for `userid` is minted for the state the provider sent there.
async fn login_as(env: &Env, http: &reqwest::Client, client_id: &str, userid: &str) -> String {
    let resp = http
        .get(authorize_url(env, client_id, &[("prompt", "login")]))
        .send()
        .await
        .expect("authorize");
    assert!(resp.status().is_redirection());
    let to_wecom =
        url::Url::parse(resp.headers()["location"].to_str().expect("ascii")).expect("upstream URL");
    assert!(to_wecom.path().starts_with(SIMULATOR_PATH));
    let get = |name: &str| {
        to_wecom
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .expect("upstream login parameter")
    };
    let (state, callback) = (get("state"), get("redirect_uri"));
    let code = env.demo.simulator.issue_code(userid, "", &callback);
    let mut back = url::Url::parse(&callback).expect("callback URL");
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    id_token_of(env, client_id, &walk(http, back.as_str()).await).await
}

#[tokio::test]
async fn id_token_hint_for_another_user_is_login_required_with_prompt_none() {
    let (env, zhangsan) = start_signed_in().await;
    // The hint verifies (our signature, our iss) and names the session's user: SSO.
    let w = silently_with_hint(&env, &zhangsan).await;
    assert!(w.param("code").is_some(), "{}", w.end);
    // lisi's id_token, from another browser, as the hint in zhangsan's browser.
    let lisi = login_as(&env, &browser(), "app-a", "lisi").await;
    assert_eq!(claims_of(&lisi)["sub"], "lisi");
    let w = silently_with_hint(&env, &lisi).await;
    assert_error(&w, "login_required");
    // Without prompt=none the person is sent to log in again.
    let w = authorize(&env, "app-b", &[("id_token_hint", &lisi)]).await;
    assert!(w.went_through_wecom());
}

#[tokio::test]
async fn id_token_hint_not_signed_by_us_is_refused() {
    let (env, id_token) = start_signed_in().await;
    // Same header and signature, different sub: the signature no longer verifies.
    let mut parts: Vec<String> = id_token.split('.').map(str::to_string).collect();
    let mut claims = claims_of(&id_token);
    claims["sub"] = Value::from("lisi");
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
    let forged = parts.join(".");
    let w = silently_with_hint(&env, &forged).await;
    assert_error(&w, "invalid_request");
}

#[tokio::test]
async fn expired_id_token_hint_is_still_accepted_oidc_core_3_1_2_1() {
    // The id_token has expired (1 h), the session is alive (8 h).
    let (env, id_token) = session_aged(2 * 3600).await;
    let w = silently_with_hint(&env, &id_token).await;
    assert!(w.param("code").is_some(), "{}", w.end);
}

#[tokio::test]
async fn session_expires_after_its_ttl() {
    let (env, _) = session_aged(8 * 3600).await;
    let w = authorize(&env, "app-b", &[("prompt", "none")]).await;
    assert_error(&w, "login_required");
}

#[tokio::test]
async fn form_post_success_is_an_auto_submitting_form_with_strict_csp() {
    let (env, _) = start_signed_in().await;
    let w = authorize(&env, "app-b", &[("response_mode", "form_post")]).await;
    let body = w.body.as_deref().expect("a page, not a redirect");
    assert!(
        body.contains(r#"<form method="post" action="http://127.0.0.1:9/app-b/cb">"#),
        "{body}"
    );
    assert!(body.contains(r#"<input type="hidden" name="code" value=""#));
    assert!(body.contains(r#"name="state" value="st-123""#));
    assert!(
        body.contains(&format!(r#"name="iss" value="{}""#, env.demo.issuer))
            || body.contains(r#"name="iss""#)
    );
    assert!(
        body.contains(r#"<button type="submit">"#),
        "usable with JavaScript off"
    );
    let csp = w.headers["content-security-policy"].to_str().expect("csp");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("form-action http://127.0.0.1:9;"), "{csp}");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(w.headers["x-frame-options"], "DENY");
    assert_eq!(w.headers["referrer-policy"], "no-referrer");
    assert_eq!(w.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn form_post_errors_use_the_requested_mode_form_post_2() {
    let env = start().await;
    let w = authorize(
        &env,
        "app-a",
        &[("response_mode", "form_post"), ("prompt", "none")],
    )
    .await;
    let body = w.body.as_deref().expect("a page, not a redirect");
    assert!(
        body.contains(r#"name="error" value="login_required""#),
        "{body}"
    );
    assert!(body.contains(r#"name="state" value="st-123""#), "{body}");
}

// ---- RP-Initiated Logout 1.0 and Back-Channel Logout 1.0 ----

fn logout_client(id: &str, backchannel: Option<String>) -> Client {
    let mut settings = ClientSettings::default();
    settings.post_logout_redirect_uris = vec![format!("http://127.0.0.1:9/{id}/bye")];
    settings.backchannel_logout_uri = backchannel;
    settings.backchannel_logout_session_required = true;
    client(id, settings)
}

/// [`logout`] with `id_token_hint` and `post_logout_redirect_uri`, then `extra`.
async fn logout_to(
    env: &Env,
    id_token_hint: &str,
    post_logout_redirect_uri: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut params = vec![
        ("id_token_hint", id_token_hint),
        ("post_logout_redirect_uri", post_logout_redirect_uri),
    ];
    params.extend_from_slice(extra);
    logout(env, &params).await
}

/// `GET /logout` with `params` (RP-Initiated Logout 1.0 §2) in the test browser.
async fn logout(env: &Env, params: &[(&str, &str)]) -> reqwest::Response {
    let mut u = url::Url::parse(&format!("{}/logout", env.demo.issuer)).expect("url");
    u.query_pairs_mut().extend_pairs(params);
    env.browser.get(u).send().await.expect("logout")
}

#[tokio::test]
async fn logout_redirects_to_registered_post_logout_uri_with_state_and_ends_session() {
    let env = start_with(
        vec![
            logout_client("app-a", None),
            client("app-b", ClientSettings::default()),
        ],
        None,
    )
    .await;
    let id_token = login(&env, "app-a").await;
    let bye = "http://127.0.0.1:9/app-a/bye";
    let resp = logout_to(&env, &id_token, bye, &[("state", "bye-1")]).await;
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"],
        "http://127.0.0.1:9/app-a/bye?state=bye-1"
    );
    let cleared = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("wecom_oidc_session=;") && c.contains("Max-Age=0"));
    assert!(cleared, "the session cookie is cleared");
    // The session is gone server-side too, whatever the browser keeps.
    let w = authorize(&env, "app-b", &[("prompt", "none")]).await;
    assert_error(&w, "login_required");
}

#[tokio::test]
async fn logout_with_unregistered_post_logout_uri_shows_our_page_and_never_redirects() {
    let (env, id_token) = signed_in_with(vec![logout_client("app-a", None)]).await;
    let extra = [("state", "bye-1"), ("ui_locales", "zh-CN")];
    let resp = logout_to(&env, &id_token, "https://evil.example/", &extra).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("location").is_none());
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body = resp.text().await.expect("body");
    assert!(body.contains("您已退出登录"), "{body}");
    assert!(body.contains("You are signed out"), "bilingual: {body}");
    let w = authorize(&env, "app-a", &[("prompt", "none")]).await;
    assert_error(&w, "login_required");
}

#[tokio::test]
async fn logout_refuses_an_id_token_hint_we_did_not_sign() {
    let (env, id_token) = signed_in_with(vec![logout_client("app-a", None)]).await;
    let mut forged: Vec<&str> = id_token.split('.').collect();
    forged[2] = "AAAA";
    let bye = "http://127.0.0.1:9/app-a/bye";
    let resp = logout_to(&env, &forged.join("."), bye, &[]).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
}

/// Verifies `jwt` against the provider's JWKS the way a relying party would.
async fn verify_with_jwks(env: &Env, jwt: &str) -> serde_json::Map<String, Value> {
    let jwks = common::get_json(format!("{}/jwks", env.demo.issuer)).await;
    match common::verified_jws(&jwks, jwt).1 {
        Value::Object(claims) => claims,
        other => panic!("claims are not an object: {other}"),
    }
}

#[tokio::test]
async fn backchannel_logout_token_reaches_every_client_of_the_session_and_verifies() {
    let (bcl_a, got_a) = common::logout_receiver().await;
    let (bcl_b, got_b) = common::logout_receiver().await;
    let env = start_with(
        vec![
            logout_client("app-a", Some(bcl_a)),
            logout_client("app-b", Some(bcl_b)),
            client("app-c", ClientSettings::default()),
        ],
        None,
    )
    .await;
    let id_token = login(&env, "app-a").await;
    let sid = claims_of(&id_token)["sid"].clone();
    // app-b and app-c log in through the session (SSO).
    for id in ["app-b", "app-c"] {
        let w = authorize(&env, id, &[]).await;
        assert!(!w.went_through_wecom());
    }
    let resp = env
        .browser
        .post(format!("{}/logout", env.demo.issuer))
        .form(&[("id_token_hint", id_token.as_str()), ("client_id", "app-a")])
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 200, "no redirect asked for: our page");
    // Delivery is awaited (bounded) before the logout answers, so it has happened by now.
    for (client_id, got) in [("app-a", &got_a), ("app-b", &got_b)] {
        let bodies = got.lock().expect("lock").clone();
        assert_eq!(bodies.len(), 1, "{client_id} notified once");
        let token = url::form_urlencoded::parse(bodies[0].as_bytes())
            .find(|(k, _)| k == "logout_token")
            .map(|(_, v)| v.into_owned())
            .expect("logout_token form field");
        assert_eq!(header_of(&token)["typ"], "logout+jwt");
        let claims = verify_with_jwks(&env, &token).await;
        assert_eq!(claims["iss"], env.demo.issuer.as_str());
        assert_eq!(claims["aud"], client_id);
        assert_eq!(claims["sub"], "zhangsan");
        assert_eq!(claims["sid"], sid);
        assert!(claims["jti"].is_string());
        assert!(claims["iat"].is_i64() && claims["exp"].as_i64() > claims["iat"].as_i64());
        assert_eq!(
            claims["events"],
            serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}})
        );
        assert!(!claims.contains_key("nonce"), "BCL §2.4: no nonce");
    }
}

#[tokio::test]
async fn logout_does_not_hang_on_an_unreachable_backchannel_endpoint() {
    // A listener that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let uri = format!("http://{}/bcl", silent.local_addr().expect("addr"));
    let env = start_with(vec![logout_client("app-a", Some(uri))], None).await;
    let id_token = login(&env, "app-a").await;
    let started = std::time::Instant::now();
    let resp = logout(&env, &[("id_token_hint", &id_token)]).await;
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "logout waited {:?}",
        started.elapsed()
    );
    drop(silent);
}

// ---- Signing algorithms and key rotation ----

fn real_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

fn alg_client(id: &str, alg: SigningAlg) -> Client {
    let mut settings = ClientSettings::default();
    settings.id_token_signed_response_alg = Some(alg);
    client(id, settings)
}

/// Verifies `jwt` as a relying party with the openidconnect crate: JWKS from the server, only
/// `alg` allowed, issuer, audience, nonce and expiry checked.
async fn verify_as_rp(env: &Env, client_id: &str, jwt: &str, alg: CoreJwsSigningAlgorithm) {
    let jwks = common::get_json(format!("{}/jwks", env.demo.issuer)).await;
    let jwks: CoreJsonWebKeySet = serde_json::from_value(jwks).expect("JWKS JSON");
    let verifier = CoreIdTokenVerifier::new_confidential_client(
        ClientId::new(client_id.into()),
        ClientSecret::new(SECRET.into()),
        IssuerUrl::new(env.demo.issuer.clone()).expect("issuer"),
        jwks,
    )
    .set_allowed_algs(vec![alg]);
    let token: CoreIdToken = jwt.parse().expect("id_token parses");
    let claims = token
        .claims(&verifier, &Nonce::new("n-456".into()))
        .expect("id_token verifies with the JWKS");
    assert_eq!(claims.subject().as_str(), "zhangsan");
}

#[tokio::test]
async fn es256_and_eddsa_clients_get_id_tokens_that_verify_with_the_jwks() {
    let data = tempfile::tempdir().expect("tempdir");
    let keys = data.path().join("keys");
    let clock = ManualClock::new(real_now());
    for alg in [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa] {
        KeyStore::generate_key(&keys, alg, &clock).expect("generate");
    }
    let env = start_at(
        real_now(),
        vec![
            alg_client("app-es", SigningAlg::Es256),
            alg_client("app-ed", SigningAlg::EdDsa),
            client("app-rs", ClientSettings::default()),
        ],
        Some(data.path().to_path_buf()),
    )
    .await;
    let discovery = common::get_json(format!(
        "{}/.well-known/openid-configuration",
        env.demo.issuer
    ))
    .await;
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "ES256", "EdDSA"]),
        "exactly the algorithms with keys"
    );
    for (id, alg, core) in [
        ("app-es", "ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256),
        ("app-ed", "EdDSA", CoreJwsSigningAlgorithm::EdDsa),
        (
            "app-rs",
            "RS256",
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        ),
    ] {
        let jwt = login_with(&env, &browser(), id).await;
        assert_eq!(header_of(&jwt)["alg"], alg, "{id}");
        verify_as_rp(&env, id, &jwt, core).await;
    }
}

#[tokio::test]
async fn client_alg_without_a_key_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        r#"
issuer = "http://127.0.0.1:9"
data_dir = "{data}"
keys_dir = "{keys}"
[wecom]
corp_id = "ww0000000000000001"
agent_id = 1000002
secret = "wecom-secret"
[[clients]]
id = "app-ed"
secret = "{SECRET}"
redirect_uris = ["http://127.0.0.1:9/cb"]
id_token_signed_response_alg = "EdDSA"
"#,
        data = dir.path().join("data").display(),
        keys = dir.path().join("keys").display(),
    );
    let config = wecom_oidc::config::parse(&text, "t.toml", &|_| None).expect("valid config");
    let err = wecom_oidc::app::build(&config, Arc::new(ManualClock::new(START)))
        .await
        .err()
        .expect("start refused: only an RS256 key is generated")
        .to_string();
    assert!(
        err.contains("EdDSA") && err.contains("keys generate"),
        "{err}"
    );
}

#[tokio::test]
async fn keys_rotate_keeps_the_old_kid_in_the_jwks_and_signs_with_the_new() {
    let data = tempfile::tempdir().expect("tempdir");
    let keys = data.path().join("keys");
    let clock = ManualClock::new(real_now());
    let old = KeyStore::generate_key(&keys, SigningAlg::Rs256, &clock).expect("generate");
    let rotation = KeyStore::rotate(&keys, SigningAlg::Rs256, 86_400, &clock).expect("rotate");
    let env = start_at(
        real_now(),
        vec![client("app-a", ClientSettings::default())],
        Some(data.path().to_path_buf()),
    )
    .await;
    let kids = common::kids_of(&common::get_json(format!("{}/jwks", env.demo.issuer)).await);
    // The demo adds its ES256 key; the RS256 ones are the rotated pair, the new one first.
    let rs256: Vec<&str> = kids
        .iter()
        .map(String::as_str)
        .filter(|k| *k == rotation.new_key.kid || *k == old.kid)
        .collect();
    assert_eq!(rs256, [rotation.new_key.kid.as_str(), old.kid.as_str()]);
    let jwt = login(&env, "app-a").await;
    assert_eq!(header_of(&jwt)["kid"], rotation.new_key.kid.as_str());
    verify_as_rp(
        &env,
        "app-a",
        &jwt,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    )
    .await;
}

#[tokio::test]
async fn error_page_follows_ui_locales_and_carries_security_headers() {
    let env = start().await;
    let mut u = url::Url::parse(&format!("{}/authorize", env.demo.issuer)).expect("url");
    u.query_pairs_mut()
        .append_pair("client_id", "no-such-client")
        .append_pair("ui_locales", "zh-CN en");
    let resp = env.browser.get(u).send().await.expect("authorize");
    assert_eq!(resp.status(), 400);
    for (name, want) in [
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(resp.headers()[name], want, "{name}");
    }
    assert!(resp.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .contains("frame-ancestors 'none'"));
    let body = resp.text().await.expect("body");
    assert!(body.contains("无法完成登录"), "{body}");
}

/// [`start`] whose `app-a` has a back-channel logout endpoint: the environment and what the
/// endpoint receives.
async fn start_with_backchannel() -> (Env, common::Received) {
    let (bcl, got) = common::logout_receiver().await;
    let env = start_with(
        vec![
            logout_client("app-a", Some(bcl)),
            client("app-b", ClientSettings::default()),
        ],
        None,
    )
    .await;
    (env, got)
}

#[tokio::test]
async fn another_users_login_in_the_same_browser_ends_the_first_session_for_its_clients() {
    let (env, got) = start_with_backchannel().await;
    login(&env, "app-a").await; // zhangsan's session, app-a in it
    let lisi = login_as(&env, &env.browser, "app-b", "lisi").await;
    assert_eq!(claims_of(&lisi)["sub"], "lisi");
    let bodies = got.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1, "app-a is told zhangsan's session ended");
}

#[tokio::test]
async fn claims_parameter_adds_requested_claims_to_id_token_and_userinfo_oidc_core_5_5() {
    let env = start().await;
    let claims = r#"{"id_token":{"name":null,"phone_number":{"essential":true}},
                     "userinfo":{"preferred_username":null}}"#;
    let w = walk(
        &env.browser,
        &authorize_url_scoped(&env, "app-a", "openid", &[("claims", claims)]),
    )
    .await;
    let tokens = redeem(&env, "app-a", &w.param("code").expect("code")).await;
    let id = claims_of(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(id["name"], "张三", "requested for the id_token");
    assert!(
        id.get("preferred_username").is_none(),
        "asked for userinfo only"
    );
    assert!(id.get("phone_number").is_none(), "no data, no claim");
    let info: Value = reqwest::Client::new()
        .get(format!("{}/userinfo", env.demo.issuer))
        .bearer_auth(tokens["access_token"].as_str().expect("access_token"))
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("json");
    assert_eq!(info["preferred_username"], "zhangsan");
    assert!(
        info.get("name").is_none(),
        "scope openid only, name not asked at userinfo"
    );
    // A malformed claims parameter is an invalid_request back to the client.
    let w = authorize(&env, "app-a", &[("claims", "[1]")]).await;
    assert_error(&w, "invalid_request");
}

// ---- [session] recheck_after: old sessions ask WeCom again ----

#[tokio::test]
async fn a_session_older_than_recheck_after_re_reads_the_member_and_still_serves_an_active_one() {
    let (env, _) = session_aged(15 * 60).await;
    let w = authorize(&env, "app-b", &[("prompt", "none")]).await;
    assert!(w.param("code").is_some(), "{:?}", w.end);
    assert!(
        !w.went_through_wecom(),
        "re-read server to server, not a login"
    );
}

#[tokio::test]
async fn without_callbacks_a_disabled_member_is_signed_out_when_the_session_passes_recheck_after() {
    let (env, got) = start_with_backchannel().await;
    login(&env, "app-a").await;
    // Disabled in WeCom, and no callback tells us.
    assert!(env.demo.simulator.set_member_status("zhangsan", 2));
    // Until recheck_after (default 15 min) the session is trusted as it is: that is the bound.
    env.clock.advance(15 * 60 - 1);
    let w = authorize(&env, "app-b", &[("prompt", "none")]).await;
    assert!(w.param("code").is_some(), "{:?}", w.end);
    env.clock.advance(1);
    let w = authorize(&env, "app-b", &[("prompt", "none")]).await;
    assert_eq!(
        w.param("error").as_deref(),
        Some("login_required"),
        "{:?}",
        w.end
    );
    let tokens = common::wait_for_logout_tokens(&got, 1, std::time::Duration::from_secs(5)).await;
    assert_eq!(tokens.len(), 1, "app-a is told: {tokens:?}");
    assert_eq!(common::claims_of(&tokens[0])["sub"], "zhangsan");
    let events = env.demo.store.list_login_events(10).await.expect("events");
    let signed_out = events
        .iter()
        .find(|e| e.outcome == "signed_out")
        .expect("the sign-out is in the login event log");
    let reason = signed_out.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("session re-check") && reason.contains("disabled"),
        "{reason}"
    );
}
