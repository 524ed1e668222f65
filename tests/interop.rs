//! Checks of the interop suite's own files (`tests/interop/`), run by `cargo test` so that a change
//! to the configuration format or the demo breaks here, at once, rather than only in
//! `tests/interop/run` (which needs Node, Apache and a few minutes).
//!
//! - `clients.toml` is a valid `wecom-oidc demo --config` file, and its redirect URIs are the ones
//!   the openid-client suite and the Apache config use;
//! - the Apache client logs in through `demo::spawn` exactly as mod_auth_openidc does it: to its
//!   registered redirect URI with `code`, `state` and `iss`, then a `client_secret_basic` token
//!   request with PKCE.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod common;

use wecom_oidc::config;
use wecom_oidc::provider::Client;
use wecom_oidc::random;

/// The port `run` would substitute for `@APACHE_PORT@`; any valid port does for these checks.
const APACHE_PORT: u16 = 47123;
const OPENID_CLIENT_REDIRECT: &str = "http://127.0.0.1/interop/openid-client/callback";

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

fn read(name: &str) -> String {
    let path = interop_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `clients.toml` as `run` renders it, parsed with a secret for every `secret_env`.
fn interop_clients(secrets: &HashMap<String, String>) -> Vec<Client> {
    let text = read("clients.toml").replace("@APACHE_PORT@", &APACHE_PORT.to_string());
    config::parse_clients(&text, "tests/interop/clients.toml", &|name| {
        secrets.get(name).cloned()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn secrets() -> HashMap<String, String> {
    [
        "INTEROP_OPENID_CLIENT_SECRET",
        "INTEROP_APACHE_SECRET",
        "INTEROP_OPENID_CLIENT_ES256_SECRET",
        "INTEROP_GO_OIDC_SECRET",
        "INTEROP_DEVICE_SECRET",
        "INTEROP_SERVICE_SECRET",
    ]
    .iter()
    .map(|n| (n.to_string(), random::token(24)))
    .collect()
}

/// The value of the first `Directive value` line of the Apache config.
fn apache_directive(conf: &str, directive: &str) -> String {
    conf.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(directive).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("httpd.conf has no {directive}"))
}

#[test]
fn interop_clients_toml_is_a_valid_demo_config_with_exact_redirect_uris() {
    let clients = interop_clients(&secrets());
    let by_id: HashMap<&str, &Client> = clients.iter().map(|c| (c.id.as_str(), c)).collect();
    let oc = by_id["interop-openid-client"];
    assert!(
        !oc.is_public(),
        "openid-client runs as a confidential client"
    );
    assert_eq!(oc.redirect_uris, vec![OPENID_CLIENT_REDIRECT.to_string()]);
    // `run` hands the suite this very URI; a drift would make every login stop at the provider.
    assert!(read("run").contains(&format!("--redirect-uri \"{OPENID_CLIENT_REDIRECT}\"")));
    let apache = by_id["interop-apache"];
    assert!(!apache.is_public());
    assert_eq!(
        apache.redirect_uris,
        vec![format!(
            "http://127.0.0.1:{APACHE_PORT}/protected/redirect_uri"
        )]
    );
    // The RFC 8628 and RFC 6749 §4.4 checks: each client has its grant only, and `run` hands the
    // suite their ids and exports their secrets.
    use wecom_oidc::provider::GrantType;
    let device = by_id["interop-device"];
    assert!(device.allows_grant(GrantType::DeviceCode));
    assert!(!device.allows_grant(GrantType::AuthorizationCode));
    let service = by_id["interop-service"];
    assert!(service.allows_grant(GrantType::ClientCredentials));
    assert!(
        !oc.allows_grant(GrantType::ClientCredentials) && !oc.allows_grant(GrantType::DeviceCode)
    );
    let run = read("run");
    let wanted = [
        "--device-client-id interop-device",
        "--service-client-id interop-service",
        "INTEROP_DEVICE_SECRET=",
        "INTEROP_SERVICE_SECRET=",
    ];
    let missing: Vec<&str> = wanted.into_iter().filter(|w| !run.contains(w)).collect();
    assert!(missing.is_empty(), "run lacks {missing:?}");
    // Its [tokens] shortens the device flow so that slow_down and expiry are seen in seconds.
    let s = secrets();
    let text = read("clients.toml").replace("@APACHE_PORT@", &APACHE_PORT.to_string());
    let (_, _, lifetimes) = config::parse_demo_file(&text, "clients.toml", &|n| s.get(n).cloned())
        .unwrap_or_else(|e| panic!("{e}"));
    let lifetimes = lifetimes.expect("[tokens]");
    assert_eq!(
        (lifetimes.device_poll_interval, lifetimes.device_code),
        (2, 12)
    );
}

#[test]
fn apache_config_uses_the_registered_client_id_and_redirect_uri() {
    let conf = read("apache/httpd.conf");
    let clients = interop_clients(&secrets());
    let client_id = apache_directive(&conf, "OIDCClientID");
    let client = clients
        .iter()
        .find(|c| c.id == client_id)
        .unwrap_or_else(|| panic!("OIDCClientID {client_id} is not in clients.toml"));
    let redirect = apache_directive(&conf, "OIDCRedirectURI")
        .replace("${INTEROP_APACHE_PORT}", &APACHE_PORT.to_string());
    // RFC 9700 §4.1.1: the provider compares redirect URIs exactly.
    assert!(
        client.has_redirect_uri(&redirect),
        "OIDCRedirectURI {redirect} is not registered for {client_id}"
    );
    // The protected page the suite reads lies under the same protected directory as the
    // redirect URI, which mod_auth_openidc requires.
    assert!(redirect.contains("/protected/"));
    assert!(interop_dir()
        .join("apache/htdocs/protected/claims.shtml")
        .is_file());
    assert_eq!(apache_directive(&conf, "OIDCPKCEMethod"), "S256");
}

#[test]
fn es256_clients_file_has_no_problem_but_the_pending_algorithm_setting() {
    // clients-es256.toml is used once discovery advertises ES256. Until the per-client algorithm
    // setting exists, the only problem it may have is that key; afterwards it must parse.
    let s = secrets();
    match config::parse_clients(&read("clients-es256.toml"), "clients-es256.toml", &|n| {
        s.get(n).cloned()
    }) {
        Ok(clients) => {
            assert_eq!(clients.len(), 1);
            assert_eq!(clients[0].id, "interop-openid-client-es256");
            assert_eq!(clients[0].redirect_uris, vec![OPENID_CLIENT_REDIRECT]);
        }
        Err(e) => {
            assert!(
                e.problems
                    .iter()
                    .all(|p| p.contains("id_token_signed_response_alg")),
                "{e}"
            );
        }
    }
}

#[tokio::test]
async fn apache_client_login_reaches_its_redirect_uri_with_code_state_and_iss_rfc9207() {
    let secrets = secrets();
    let clients = interop_clients(&secrets);
    let running = common::start_demo(Some("zhangsan"), clients).await;
    let redirect_uri = format!("http://127.0.0.1:{APACHE_PORT}/protected/redirect_uri");
    let http = common::browser();

    let state = random::token(16);
    let nonce = random::token(16);
    let verifier = random::token(32);
    let authorize = common::authorize_url(
        &running.issuer,
        &[
            ("response_type", "code"),
            ("client_id", "interop-apache"),
            ("redirect_uri", &redirect_uri),
            ("scope", "openid profile email"),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &random::hash_secret(&verifier)),
            ("code_challenge_method", "S256"),
        ],
    );

    let login = common::walk(&http, &authorize, &redirect_uri).await;
    let params = login.redirect_query();
    assert_eq!(login.end.split('?').next(), Some(redirect_uri.as_str()));
    assert_eq!(params.get("state"), Some(&state));
    assert_eq!(params.get("iss"), Some(&running.issuer));
    let code = params
        .get("code")
        .expect("code in the authorization response");

    // The token request as mod_auth_openidc sends it: client_secret_basic and the PKCE verifier.
    let res = http
        .post(format!("{}/token", running.issuer))
        .basic_auth("interop-apache", Some(&secrets["INTEROP_APACHE_SECRET"]))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = res.json().await.expect("JSON");
    assert!(body["id_token"].is_string(), "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}
