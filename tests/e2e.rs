//! End-to-end tests of the spine: the real server on an ephemeral port with the WeCom simulator,
//! a real relying party (the `openidconnect` crate), and the negative cases each rule protects.
//! Run with `cargo test --test e2e`.

use openidconnect::core::{CoreIdTokenClaims, CoreUserInfoClaims};
use openidconnect::{AccessTokenHash, Nonce, OAuth2TokenResponse, TokenResponse};
use reqwest::StatusCode;
use serde_json::Value;
use wecom_oidc::demo::RunningDemo;
use wecom_oidc::provider::Client;

mod common;

use common::{
    app_client, browser, client, code_form, location, query, APP, APP_CB, APP_SECRET, CHALLENGE,
    VERIFIER,
};

const SPA: &str = "spa";
const SPA_CB: &str = "http://127.0.0.1:9/spa/callback";

fn clients() -> Vec<Client> {
    vec![app_client(), client(SPA, None, SPA_CB, Default::default())]
}

async fn start(auto_login: Option<&str>) -> RunningDemo {
    common::start_demo(auto_login, clients()).await
}

/// Follows redirects until one points at a URL starting with `stop`; returns that URL.
async fn follow_until(b: &reqwest::Client, start: &str, stop: &str) -> String {
    let w = common::walk(b, start, stop).await;
    w.redirect_query();
    w.end
}

fn authorize_url(d: &RunningDemo, client_id: &str, cb: &str, extra: &[(&str, &str)]) -> String {
    let (scope, state_and_nonce) = ("openid profile", ("st-123", "n-456"));
    common::code_request_url(&d.issuer, (client_id, cb), scope, state_and_nonce, extra)
}

/// Runs a login for the confidential test client and returns the code.
async fn login_code(d: &RunningDemo, b: &reqwest::Client, extra: &[(&str, &str)]) -> String {
    let url = follow_until(b, &authorize_url(d, APP, APP_CB, extra), APP_CB).await;
    let q = query(&url);
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"));
    assert_eq!(q.get("iss"), Some(&d.issuer), "RFC 9207 iss parameter");
    q.get("code").cloned().expect("no code in redirect")
}

async fn token(
    d: &RunningDemo,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    common::post_form(&format!("{}/token", d.issuer), form, basic).await
}

async fn exchange(d: &RunningDemo, code: &str) -> (StatusCode, Value) {
    common::token(&d.issuer, (APP, APP_SECRET), &code_form(code, APP_CB, &[])).await
}

async fn userinfo(d: &RunningDemo, access_token: &str) -> reqwest::Response {
    common::userinfo(&d.issuer, access_token).await
}

#[tokio::test]
async fn openidconnect_rp_logs_in_with_pkce_nonce_and_verified_id_token() {
    let d = start(Some("zhangsan")).await;
    let login = common::rp_login(&d.issuer, (APP, APP_SECRET, APP_CB)).await;
    let (rp, http, token, nonce) = (&login.rp, &login.http, &login.token, &login.nonce);
    let id_token = token.id_token().expect("id_token");
    let verifier = rp.id_token_verifier();
    // Signature (against /jwks), iss, aud, exp and nonce are checked by the RP library.
    let claims: &CoreIdTokenClaims = id_token.claims(&verifier, nonce).unwrap();
    assert_eq!(claims.subject().as_str(), "zhangsan");
    assert!(claims.auth_time().is_some());
    let alg = id_token.signing_alg().unwrap();
    let key = id_token.signing_key(&verifier).unwrap();
    assert_eq!(
        claims.access_token_hash(),
        Some(&AccessTokenHash::from_token(token.access_token(), alg, key).unwrap())
    );
    let info: CoreUserInfoClaims = rp
        .user_info(token.access_token().clone(), None)
        .unwrap()
        .request_async(http)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), "zhangsan");
    let name = info.name().and_then(|n| n.get(None)).map(|n| n.to_string());
    assert_eq!(name.as_deref(), Some("张三"));
    let pu = info.preferred_username().map(|u| u.to_string());
    assert_eq!(pu.as_deref(), Some("zhangsan"));
}

#[tokio::test]
async fn a_wrong_nonce_makes_the_rp_reject_the_id_token() {
    let d = start(Some("lisi")).await;
    let login = common::rp_login(&d.issuer, (APP, APP_SECRET, APP_CB)).await;
    let claims = login
        .token
        .id_token()
        .unwrap()
        .claims(&login.rp.id_token_verifier(), &Nonce::new("another".into()));
    assert!(claims.is_err(), "a mismatched nonce must fail verification");
}

#[tokio::test]
async fn public_client_logs_in_with_pkce_and_no_secret() {
    let d = start(Some("zhangsan")).await;
    let b = browser();
    let url = authorize_url(
        &d,
        SPA,
        SPA_CB,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    );
    let back = follow_until(&b, &url, SPA_CB).await;
    let code = query(&back)["code"].clone();
    let form = code_form(
        &code,
        SPA_CB,
        &[("client_id", SPA), ("code_verifier", VERIFIER)],
    );
    let (s, _, body) = token(&d, &form, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
}

#[tokio::test]
async fn public_client_without_pkce_is_refused_rfc9700_2_1_1() {
    let d = start(Some("zhangsan")).await;
    let resp = browser()
        .get(authorize_url(&d, SPA, SPA_CB, &[]))
        .send()
        .await
        .unwrap();
    let q = query(&location(&resp));
    assert!(location(&resp).starts_with(SPA_CB));
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st-123");
}

#[tokio::test]
async fn pkce_plain_is_refused() {
    let d = start(Some("zhangsan")).await;
    let resp = browser()
        .get(authorize_url(
            &d,
            APP,
            APP_CB,
            &[
                ("code_challenge", VERIFIER),
                ("code_challenge_method", "plain"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&resp))["error"], "invalid_request");
}

#[tokio::test]
async fn unregistered_redirect_uri_is_never_redirected_to() {
    let d = start(Some("zhangsan")).await;
    for cb in [
        "https://evil.example/cb",
        "http://127.0.0.1:9/app/callback/",
        "http://127.0.0.1:9/app/callback?x=1",
        "HTTP://127.0.0.1:9/app/callback",
    ] {
        let resp = browser()
            .get(authorize_url(&d, APP, cb, &[]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{cb}");
        assert!(resp.headers().get("location").is_none(), "{cb}");
        let body = resp.text().await.unwrap();
        assert!(body.contains("redirect_uri"), "{body}");
    }
}

#[tokio::test]
async fn unknown_or_missing_client_gets_an_error_page_not_a_redirect() {
    let d = start(Some("zhangsan")).await;
    for url in [
        authorize_url(&d, "nobody", APP_CB, &[]),
        format!(
            "{}/authorize?redirect_uri={APP_CB}&response_type=code&scope=openid",
            d.issuer
        ),
        format!("{}/authorize", d.issuer),
        format!(
            "{}/authorize?client_id=app&client_id=app&redirect_uri={APP_CB}",
            d.issuer
        ),
    ] {
        let resp = browser().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(resp.headers().get("location").is_none(), "{url}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/html"), "{ct}");
    }
}

#[tokio::test]
async fn authorize_errors_after_a_valid_redirect_uri_go_to_the_client_oidc_3_1_2_6() {
    let d = start(Some("zhangsan")).await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("prompt", "none")], "login_required"),
        (&[("request", "eyJ")], "request_not_supported"),
        (
            &[("request_uri", "https://x.example/r")],
            "request_uri_not_supported",
        ),
        (&[("max_age", "-1")], "invalid_request"),
        (&[("nonce", "again")], "invalid_request"),
    ];
    for (extra, expected) in cases {
        let mut u = url::Url::parse(&authorize_url(&d, APP, APP_CB, &[])).unwrap();
        let mut pairs: Vec<(String, String)> = u
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k) || *k == "nonce")
            .collect();
        for (k, v) in *extra {
            pairs.push((k.to_string(), v.to_string()));
        }
        u.query_pairs_mut().clear().extend_pairs(pairs);
        let resp = browser().get(u.as_str()).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND, "{extra:?}");
        let loc = location(&resp);
        assert!(loc.starts_with(APP_CB), "{loc}");
        let q = query(&loc);
        assert_eq!(q["error"], *expected, "{extra:?}");
        assert_eq!(q["state"], "st-123");
        assert_eq!(q["iss"], d.issuer);
    }
    // Missing openid scope.
    let url = authorize_url(&d, APP, APP_CB, &[]).replace("scope=openid+profile", "scope=profile");
    let resp = browser().get(url).send().await.unwrap();
    assert_eq!(query(&location(&resp))["error"], "invalid_scope");
}

/// `/authorize` of [`APP`] from a browser that sends `user_agent`.
async fn authorize_as(d: &RunningDemo, user_agent: &str) -> reqwest::Response {
    let url = authorize_url(d, APP, APP_CB, &[]);
    common::browser_as(user_agent)
        .get(url)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn browser_goes_to_the_qr_page_on_pc_and_the_in_app_link_inside_wecom() {
    let d = start(None).await;
    let pc = authorize_as(&d, "Mozilla/5.0 (X11; Linux x86_64) Chrome/120").await;
    let loc = location(&pc);
    assert!(loc.contains("/wwlogin/sso/login?"), "{loc}");
    assert!(loc.contains("login_type=CorpApp"), "{loc}");
    assert!(pc
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().contains("HttpOnly")));
    let in_app = "Mozilla/5.0 (iPhone) AppleWebKit MicroMessenger/8.0 wxwork/4.1.0 Language/zh";
    let app = authorize_as(&d, in_app).await;
    let loc = location(&app);
    assert!(loc.contains("/connect/oauth2/authorize?"), "{loc}");
    assert!(loc.ends_with("#wechat_redirect"), "{loc}");
    assert!(loc.contains("scope=snsapi_base"), "{loc}");
}

#[tokio::test]
async fn post_authorize_is_supported_and_answers_303() {
    let d = start(Some("zhangsan")).await;
    let b = browser();
    let resp = b
        .post(format!("{}/authorize", d.issuer))
        .form(&[
            ("client_id", APP),
            ("redirect_uri", APP_CB),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "st-123"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let back = follow_until(&b, &location(&resp), APP_CB).await;
    assert!(query(&back).contains_key("code"));
}

#[tokio::test]
async fn token_and_userinfo_responses_are_no_store_and_complete_oidc_core_5_3_2() {
    let d = start(Some("zhangsan")).await;
    let code = login_code(&d, &browser(), &[]).await;
    let in_body = [("client_id", APP), ("client_secret", APP_SECRET)];
    let (s, headers, body) = token(&d, &code_form(&code, APP_CB, &in_body), None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["pragma"], "no-cache");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert!(body["access_token"].as_str().unwrap().len() >= 43);
    assert_eq!(body["id_token"].as_str().unwrap().split('.').count(), 3);
    // OIDC Core §5.3.2: the UserInfo answer is a JSON object; like the token, never cached.
    let resp = userinfo(&d, body["access_token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let claims: Value = resp.json().await.unwrap();
    assert_eq!(claims["sub"], "zhangsan");
}

#[tokio::test]
async fn code_cannot_be_redeemed_twice_and_replay_revokes_its_tokens() {
    let d = start(Some("zhangsan")).await;
    let code = login_code(&d, &browser(), &[]).await;
    let (s, first) = exchange(&d, &code).await;
    assert_eq!(s, StatusCode::OK);
    let at = first["access_token"].as_str().unwrap().to_string();
    assert_eq!(userinfo(&d, &at).await.status(), StatusCode::OK);
    let (s, second) = exchange(&d, &code).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(second["error"], "invalid_grant");
    // RFC 6749 §4.1.2: tokens issued from a replayed code are revoked.
    let resp = userinfo(&d, &at).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

#[tokio::test]
async fn wrong_redirect_uri_at_token_is_invalid_grant() {
    let d = start(Some("zhangsan")).await;
    let code = login_code(&d, &browser(), &[]).await;
    let form = code_form(&code, "http://127.0.0.1:9/other", &[]);
    let (s, _, body) = token(&d, &form, Some((APP, APP_SECRET))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn pkce_verifier_mismatch_or_absence_is_invalid_grant() {
    let d = start(Some("zhangsan")).await;
    let pkce = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for verifier in [Some("wrong-verifier-wrong-verifier-wrong-verifier-x"), None] {
        let code = login_code(&d, &browser(), &pkce).await;
        let verifier_param: Vec<_> = verifier.map(|v| ("code_verifier", v)).into_iter().collect();
        let form = code_form(&code, APP_CB, &verifier_param);
        let (s, _, body) = token(&d, &form, Some((APP, APP_SECRET))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant", "{verifier:?}");
    }
    // A verifier without a challenge is a downgrade attempt (RFC 9700 §2.1.1).
    let code = login_code(&d, &browser(), &[]).await;
    let form = code_form(&code, APP_CB, &[("code_verifier", VERIFIER)]);
    let (_, _, body) = token(&d, &form, Some((APP, APP_SECRET))).await;
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_client_with_401() {
    let d = start(Some("zhangsan")).await;
    let code = login_code(&d, &browser(), &[]).await;
    let form = code_form(&code, APP_CB, &[]);
    let (s, headers, body) = token(&d, &form, Some((APP, "wrong"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    // No authentication at all for a confidential client.
    let (s, _, body) = token(&d, &form, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    // Public client id pretending to be the confidential one.
    let with_id = code_form(&code, APP_CB, &[("client_id", APP)]);
    let (s, _, body) = token(&d, &with_id, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn token_endpoint_rejects_malformed_requests_with_oauth_json() {
    let d = start(Some("zhangsan")).await;
    let (s, _, body) = token(&d, &[("grant_type", "password")], Some((APP, APP_SECRET))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
    let (_, _, body) = token(&d, &[], Some((APP, APP_SECRET))).await;
    assert_eq!(body["error"], "invalid_request");
    let (_, _, body) = token(&d, &code_form("nope", APP_CB, &[]), Some((APP, APP_SECRET))).await;
    assert_eq!(body["error"], "invalid_grant");
    let resp = reqwest::Client::new()
        .post(format!("{}/token", d.issuer))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

/// `url` with its `code` parameter replaced by `code` (`None`: without one).
fn with_code(url: &str, code: Option<String>) -> String {
    let mut q = query(url);
    q.remove("code");
    q.extend(code.map(|c| ("code".to_owned(), c)));
    let mut u = url::Url::parse(url).unwrap();
    u.query_pairs_mut().clear().extend_pairs(q.iter());
    u.to_string()
}

/// Starts a flow and stops at the provider's callback URL (the simulator auto-logs in).
async fn callback_url(d: &RunningDemo, b: &reqwest::Client) -> String {
    // prompt=login: with a provider session the browser would otherwise skip WeCom (SSO).
    follow_until(
        b,
        &authorize_url(d, APP, APP_CB, &[("prompt", "login")]),
        &format!("{}/callback/wecom", d.issuer),
    )
    .await
}

#[tokio::test]
async fn replayed_or_tampered_state_at_the_callback_shows_an_error_page() {
    let d = start(Some("zhangsan")).await;
    let b = browser();
    let cb = callback_url(&d, &b).await;
    let first = b.get(&cb).send().await.unwrap();
    assert!(location(&first).starts_with(APP_CB));
    // Replay: the state is single use.
    let again = b.get(&cb).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(again.headers().get("location").is_none());
    // Tampered state.
    let cb2 = callback_url(&d, &b).await;
    let mut q = query(&cb2);
    let st = q.get_mut("state").unwrap();
    st.replace_range(0..1, if st.starts_with('A') { "B" } else { "A" });
    let mut u = url::Url::parse(&cb2).unwrap();
    u.query_pairs_mut().clear().extend_pairs(q.iter());
    let resp = b.get(u.as_str()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
    // No state at all.
    let resp = b
        .get(format!("{}/callback/wecom?code=abc", d.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn callback_in_another_browser_is_refused() {
    let d = start(Some("zhangsan")).await;
    let cb = callback_url(&d, &browser()).await;
    let resp = browser().get(&cb).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
}

#[tokio::test]
async fn wecom_40029_reaches_the_client_as_access_denied() {
    let d = start(Some("zhangsan")).await;
    let b = browser();
    let used = callback_url(&d, &b).await;
    assert!(location(&b.get(&used).send().await.unwrap()).starts_with(APP_CB));
    // A fresh flow whose callback carries the already-redeemed WeCom code.
    let fresh = callback_url(&d, &b).await;
    let replayed = with_code(&fresh, Some(query(&used)["code"].clone()));
    let resp = b.get(replayed).send().await.unwrap();
    let loc = location(&resp);
    assert!(loc.starts_with(APP_CB), "{loc}");
    let q = query(&loc);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn non_member_is_refused() {
    let d = start(Some("zhangsan")).await;
    let b = browser();
    let fresh = callback_url(&d, &b).await;
    let cb_base = format!("{}/callback/wecom", d.issuer);
    let outsider = with_code(&fresh, Some(d.simulator.issue_non_member_code(&cb_base)));
    let loc = location(&b.get(outsider).send().await.unwrap());
    assert_eq!(query(&loc)["error"], "access_denied");
}

#[tokio::test]
async fn disabled_member_is_refused() {
    let d = start(Some("zhangsan")).await;
    assert!(d.simulator.set_member_status("zhangsan", 2));
    let b = browser();
    let cb = callback_url(&d, &b).await;
    let loc = location(&b.get(&cb).send().await.unwrap());
    assert_eq!(query(&loc)["error"], "access_denied");
}

#[tokio::test]
async fn cancelled_wecom_login_reaches_the_client_as_access_denied() {
    let d = start(Some("zhangsan")).await;
    let b = browser();
    let cb = callback_url(&d, &b).await;
    let loc = location(&b.get(with_code(&cb, None)).send().await.unwrap());
    let q = query(&loc);
    assert_eq!(q["error"], "access_denied");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn userinfo_requires_a_valid_bearer_token_rfc6750_3() {
    let d = start(Some("zhangsan")).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/userinfo", d.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let resp = userinfo(&d, "not-a-token").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    // POST with the token in the form body (RFC 6750 §2.2) works too.
    let code = login_code(&d, &browser(), &[]).await;
    let (_, tok) = exchange(&d, &code).await;
    let in_form = [("access_token", common::str_of(&tok, "access_token"))];
    let (status, _, body) =
        common::post_form(&format!("{}/userinfo", d.issuer), &in_form, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sub"], "zhangsan");
    assert_eq!(body["name"], "张三");
}

#[tokio::test]
async fn discovery_and_jwks_are_true_of_the_server() {
    let d = start(Some("zhangsan")).await;
    let http = reqwest::Client::new();
    let meta = common::get_json(format!("{}/.well-known/openid-configuration", d.issuer)).await;
    assert_eq!(meta["issuer"], d.issuer);
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        let url = meta[key].as_str().unwrap();
        assert!(url.starts_with(&d.issuer), "{key}");
        let status = http.get(url).send().await.unwrap().status();
        assert_ne!(status, StatusCode::NOT_FOUND, "{key} {url}");
    }
    let jwks = common::get_json(common::str_of(&meta, "jwks_uri")).await;
    let keys = jwks["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    let algs: Vec<&str> = meta["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!algs.contains(&"none"));
    for k in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                k.get(private).is_none(),
                "private member {private} published"
            );
        }
        // RFC 7638: kid is the JWK thumbprint.
        assert_eq!(
            k["kid"].as_str().unwrap(),
            wecom_oidc::tokens::jwk_thumbprint(k).unwrap()
        );
        assert!(algs.contains(&k["alg"].as_str().unwrap()));
    }
}

#[tokio::test]
async fn demo_client_completes_the_flow_and_shows_claims() {
    let d = start(Some("lisi")).await;
    let b = browser();
    let page = common::page_after_redirects(&b, &format!("{}/demo/login", d.issuer)).await;
    assert!(page.contains("id=\"sub\">lisi<"), "{page}");
    assert!(page.contains("李四"), "{page}");
}

/// Serve mode (no demo) with a simulator mounted beside it; `playground` toggles `[ui]`.
async fn serve_mode(playground: bool) -> common::Served {
    let options = common::ServeOptions {
        auto_login: Some("zhangsan"),
        clients: vec![app_client()],
        playground,
        ..Default::default()
    };
    common::serve_with_simulator(options, |sim, base| {
        vec![common::demo_app(sim, base, "wecom")]
    })
    .await
}

#[tokio::test]
async fn playground_runs_a_real_login_in_serve_mode_and_is_off_by_default() {
    let off = serve_mode(false).await;
    let resp = browser()
        .get(format!("{}/playground", off.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let served = serve_mode(true).await;
    let issuer = &served.issuer;
    let b = browser();
    let page = common::get_text_with(&b, format!("{issuer}/playground")).await;
    assert!(page.contains("/playground/login"), "{page}");
    assert!(page.contains(APP), "lists the configured clients: {page}");
    assert!(!page.contains(APP_SECRET), "never shows secrets");
    let result = common::page_after_redirects(&b, &format!("{issuer}/playground/login")).await;
    assert!(result.contains("id=\"sub\">zhangsan<"), "{result}");
    assert!(result.contains("RS256"), "{result}");
    assert!(result.contains("&#34;preferred_username&#34;"), "{result}");
}

#[tokio::test]
async fn demo_scope_picker_asks_the_provider_for_the_picked_scopes() {
    let d = start(None).await;
    let index = common::get_text_with(&browser(), format!("{}/", d.issuer)).await;
    for scope in ["profile", "email", "phone", "groups", "offline_access"] {
        assert!(
            index.contains(&format!("value=\"{scope}\"")),
            "{scope} in the picker: {index}"
        );
    }
    let resp = browser()
        .get(format!("{}/demo/login?scope=phone&scope=groups", d.issuer))
        .send()
        .await
        .unwrap();
    let to = common::query(&location(&resp));
    assert_eq!(to["scope"], "openid phone groups");
}

/// The demo's result page: each claim with its WeCom source, and buttons that refresh
/// (OIDC Core §12), call userinfo (§5.3) and log out (RP-Initiated Logout 1.0 §2).
#[tokio::test]
async fn demo_result_shows_claim_sources_and_its_buttons_refresh_call_userinfo_and_log_out() {
    let d = start(Some("qianjiu")).await;
    let b = browser();
    let w = common::walk(
        &b,
        &format!(
            "{}/demo/login?scope=profile&scope=email&scope=offline_access",
            d.issuer
        ),
        "",
    )
    .await;
    let page = w.body.expect("the result page");
    assert!(page.contains("id=\"sub\">qianjiu<"), "{page}");
    assert!(page.contains("钱九"), "{page}");
    // A member without any e-mail address gets no email claim, not an empty one.
    assert!(!page.contains("<code>email</code>"), "{page}");
    assert!(page.contains("user/get name"), "name's source: {page}");
    assert!(
        page.contains("wecom-oidc (this provider)"),
        "iss's source: {page}"
    );
    let post = |path: &str| b.post(format!("{}{path}", d.issuer)).send();
    let r = post("/demo/userinfo").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("userinfo called again"));
    let r = post("/demo/refresh").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let refreshed = r.text().await.unwrap();
    assert!(
        refreshed.contains("Refreshed: new tokens issued"),
        "{refreshed}"
    );
    let r = post("/demo/logout").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r);
    assert!(to.starts_with(&format!("{}/logout?", d.issuer)), "{to}");
    let end = common::walk(&b, &to, "").await;
    assert!(
        end.end.starts_with(&format!("{}/", d.issuer)),
        "{:?}",
        end.visited
    );
    // The tokens are forgotten here.
    let r = post("/demo/userinfo").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn demo_refuses_a_disabled_member() {
    let d = start(Some("wangwu")).await;
    let w = common::walk(&browser(), &format!("{}/demo/login", d.issuer), "").await;
    let page = w.body.unwrap_or_default();
    assert!(
        !page.contains("id=\"sub\""),
        "wangwu must not sign in: {page}"
    );
}
