//! Entry points for the `cargo fuzz` targets in `fuzz/` (issue 8, hostile input): each takes
//! the fuzzer's bytes, feeds them to the real parser, and then through the real router of a
//! provider built once per process, asserting that nothing panics and nothing answers 500.
//!
//! Not a runtime API: nothing here is used by the server. It is public only so the separate
//! `fuzz/` crate can reach parsers that are otherwise private (`Authorization: Basic` and
//! `Bearer` parsing). It is compiled only with the `testkit` feature (which fuzz/ enables) and in
//! unit tests, so that clippy (`--all-features`) and the seed-corpus test
//! (`tests::every_seed_of_the_fuzz_corpus_runs_clean`) keep it working on stable Rust while the
//! shipped binary does without it.
//!
//! JWT targets get the fuzzer's bytes as *claims*: the harness signs them with a key the
//! server trusts (the provider's own key for `id_token_hint`, the registered client key for a
//! `private_key_jwt` assertion), so mutations reach the claim checks behind the signature; the
//! same bytes are also sent as the raw token.

use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use josekit::jwk::Jwk;
use percent_encoding::{AsciiSet, CONTROLS};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use crate::clock::ManualClock;
use crate::connector::wecom::{CallbackSettings, WeComSettings};
use crate::provider::client::{AuthMethod, ClientSettings};
use crate::provider::params::Params;
use crate::provider::Provider;
use crate::storage::{MemoryStore, Store};
use crate::testkit;
use crate::web::rate_limit::RateLimits;

/// The fixed time of the fuzzing provider's clock: runs are reproducible.
const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "https://sso.example.com";
const APP_CB: &str = "https://app.example/cb";
const APP_BYE: &str = "https://app.example/bye";
const PUBLIC_CB: &str = "http://127.0.0.1:8400/cb";
const CORP_ID: &str = "wwfuzz0000000000";
const CALLBACK_TOKEN: &str = "fuzz-callback-token";
const CALLBACK_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What may stand raw in a request target's query; everything else (and every non-ASCII
/// byte) is percent-encoded, so any input becomes a valid URI whose query decodes to it.
pub const QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

/// Encodes a value for a form or query (everything but unreserved characters).
const VALUE: &AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

struct Fixture {
    router: crate::web::edge::Edge,
    provider: std::sync::Arc<Provider>,
    runtime: tokio::runtime::Runtime,
    /// The private key of the `private_key_jwt` client `jwt`.
    client_key: Jwk,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("fuzzing runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let client_key =
            Jwk::generate_ec_key(josekit::jwk::alg::ec::EcCurve::P256).expect("client key");
        let mut public = client_key.to_public_key().expect("public key");
        public.set_key_id("fuzz-1");
        let app = ClientSettings {
            post_logout_redirect_uris: vec![APP_BYE.into()],
            ..Default::default()
        };
        let jwt = ClientSettings {
            token_endpoint_auth_method: Some(AuthMethod::PrivateKeyJwt),
            jwks: Some(json!({ "keys": [Value::Object(public.as_ref().clone())] })),
            ..Default::default()
        };
        // The upstream is never reached: a login callback needs a state the fuzzer cannot
        // guess, so WeCom points at a closed loopback port.
        let wecom = WeComSettings {
            callback: Some(CallbackSettings {
                token: CALLBACK_TOKEN.into(),
                encoding_aes_key: CALLBACK_AES_KEY.into(),
            }),
            ..testkit::wecom_app("http://127.0.0.1:9", CORP_ID, 1_000_002, "fuzz-secret")
        };
        let mut config = testkit::config(
            ISSUER,
            "127.0.0.1:0".parse().expect("addr"),
            dir.path(),
            vec![std::sync::Arc::new(wecom)],
            vec![
                testkit::client("app", Some("app-secret"), APP_CB, app),
                testkit::client("pub", None, PUBLIC_CB, ClientSettings::default()),
                testkit::client("jwt", None, APP_CB, jwt),
            ],
        );
        // Every request comes from the same (unknown) address: no rate limit may turn the run
        // into a stream of 429s.
        config.limits = RateLimits::demo();
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(MemoryStore::new());
        let built = {
            let _enter = runtime.enter();
            crate::app::build_with_store(&config, std::sync::Arc::new(ManualClock::new(NOW)), store)
                .expect("fuzzing provider")
        };
        Fixture {
            router: crate::app::with_middleware(built.router).with_hot_routes(built.hot),
            provider: built.provider,
            runtime,
            client_key,
            _dir: dir,
        }
    })
}

/// Sends `req` through the router; panics (a fuzzer crash) on a 500.
fn send(req: Request<Body>) -> (StatusCode, Bytes) {
    let f = fixture();
    let what = format!("{} {}", req.method(), req.uri());
    let (status, body) = f.runtime.block_on(async {
        let resp = f
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        (status, body)
    });
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{what} answered 500: {}",
        String::from_utf8_lossy(&body)
    );
    (status, body)
}

fn query_of(data: &[u8]) -> String {
    percent_encoding::percent_encode(data, QUERY).to_string()
}

fn value_of(data: &[u8]) -> String {
    percent_encoding::percent_encode(data, VALUE).to_string()
}

fn get(path: &str, query: &str) -> (StatusCode, Bytes) {
    let req = Request::get(format!("{path}?{query}"))
        .body(Body::empty())
        .expect("an encoded query is a valid URI");
    send(req)
}

fn post_form(path: &str, authorization: Option<HeaderValue>, body: Vec<u8>) -> StatusCode {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(a) = authorization {
        req = req.header(header::AUTHORIZATION, a);
    }
    send(req.body(Body::from(body)).expect("request")).0
}

fn authorization(value: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(value) {
        h.insert(header::AUTHORIZATION, v);
    }
    h
}

/// The `/authorize` query or form (OIDC Core §3.1.2.1): `Params::parse` and
/// `Provider::validate_authorize` directly, then `GET /authorize?<data>` and the same bytes as
/// a `POST` form. A fuzzed query naming a registered client and redirect URI reaches every
/// later check.
pub fn authorize_query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let params = Params::parse(&text);
    if let Some(name) = params.first_repeated() {
        assert!(params.is_repeated(name));
    }
    let _ = fixture().provider.validate_authorize(&params);
    let (status, _) = get("/authorize", &query_of(data));
    assert!(
        status.is_redirection() || status.is_client_error() || status == StatusCode::OK,
        "/authorize answered {status}"
    );
    post_form("/authorize", None, data.to_vec());
}

/// The `/token` form (RFC 6749 §3.2): the first line is the `Authorization` header value (empty
/// = none), the rest the form body.
pub fn token_form(data: &[u8]) {
    let (auth, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let headers = authorization(auth);
    let form = String::from_utf8_lossy(body);
    let mut h = headers.clone();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let _ = crate::web::token::client_form(&h, &form);
    let auth = headers.get(header::AUTHORIZATION).cloned();
    for path in ["/token", "/revoke", "/introspect"] {
        post_form(path, auth.clone(), body.to_vec());
    }
}

/// `Authorization: Basic` (RFC 6749 §2.3.1): the header value as given, and base64 of the
/// bytes as the credentials (so mutations reach the `id:secret` split and the percent
/// decoding).
pub fn basic_credentials(data: &[u8]) {
    use base64::Engine;
    let encoded = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(data)
    );
    for value in [data, encoded.as_bytes()] {
        let headers = authorization(value);
        if let Ok(Some((id, _secret))) = crate::web::token::basic_credentials(&headers) {
            assert!(!id.is_empty(), "an empty client_id was accepted");
        }
        if let Some(v) = headers.get(header::AUTHORIZATION).cloned() {
            let status = post_form(
                "/token",
                Some(v),
                b"grant_type=refresh_token&refresh_token=x".to_vec(),
            );
            assert!(status.is_client_error(), "/token answered {status}");
        }
    }
}

/// `Authorization: Bearer` (RFC 6750 §2.1) at `/userinfo`, GET and POST, and the token as the
/// form's `access_token` (§2.2).
pub fn bearer_header(data: &[u8]) {
    let headers = authorization(data);
    if let Ok(Some(token)) = crate::web::userinfo::bearer_from_header(&headers) {
        assert!(!token.is_empty() && token.trim() == token);
    }
    if let Some(v) = headers.get(header::AUTHORIZATION).cloned() {
        let req = Request::get("/userinfo")
            .header(header::AUTHORIZATION, v.clone())
            .body(Body::empty())
            .expect("request");
        let (status, _) = send(req);
        assert!(status.is_client_error(), "/userinfo answered {status}");
        post_form("/userinfo", Some(v), Vec::new());
    }
    let mut form = b"access_token=".to_vec();
    form.extend_from_slice(value_of(data).as_bytes());
    post_form("/userinfo", None, form);
}

/// WeCom's return to `/callback/wecom` (the login callback query) and, for the event callback
/// (`/callback/wecom/events`, wecom-api.md §11): the bytes as the query, as the POST body, and
/// as a plaintext message encrypted and signed the way WeCom does, so mutations reach the
/// connector's decryption and XML parsing.
pub fn wecom_callback(data: &[u8]) {
    let query = query_of(data);
    get("/callback/wecom", &query);
    get("/callback/wecom/events", &query);
    let req = Request::post(format!("/callback/wecom/events?{query}"))
        .body(Body::from(data.to_vec()))
        .expect("request");
    send(req);

    let message = String::from_utf8_lossy(data);
    let Ok((signature, encrypted)) = crate::simulator::seal_callback(
        CALLBACK_TOKEN,
        CALLBACK_AES_KEY,
        CORP_ID,
        "1800000000",
        "fuzznonce",
        &message,
    ) else {
        return;
    };
    let q = format!(
        "msg_signature={signature}&timestamp=1800000000&nonce=fuzznonce&echostr={}",
        value_of(encrypted.as_bytes())
    );
    let (status, _) = get("/callback/wecom/events", &q);
    assert_eq!(status, StatusCode::OK, "a well-signed echostr was refused");
    let body = format!("<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>");
    let req = Request::post(format!(
        "/callback/wecom/events?msg_signature={signature}&timestamp=1800000000&nonce=fuzznonce"
    ))
    .body(Body::from(body))
    .expect("request");
    send(req);
}

/// The fuzzer's claims over `base`: a JSON object overrides (or with `null`, removes) base
/// claims; anything else replaces the claims with `{"x": <text>}`.
fn claims(base: Value, data: &[u8]) -> Map<String, Value> {
    let Value::Object(mut claims) = base else {
        unreachable!("base claims are an object")
    };
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(overrides)) => {
            for (k, v) in overrides {
                if v.is_null() {
                    claims.remove(&k);
                } else {
                    claims.insert(k, v);
                }
            }
            claims
        }
        _ => {
            let mut m = Map::new();
            m.insert(
                "x".into(),
                Value::String(String::from_utf8_lossy(data).into()),
            );
            m
        }
    }
}

/// Every `id_token_hint` we parse: at `/authorize` (OIDC Core §3.1.2.1, with `prompt=none`)
/// and at `/logout` (RP-Initiated Logout §2), as the raw bytes and as claims signed with the
/// provider's own key.
pub fn id_token_hint(data: &[u8]) {
    let f = fixture();
    let signed = signed_hint(data);
    let _ = f
        .provider
        .verify_own_id_token(&String::from_utf8_lossy(data));
    let _ = f.provider.verify_own_id_token(&signed);
    for hint in [value_of(data), signed] {
        get(
            "/authorize",
            &format!(
                "client_id=app&redirect_uri={}&response_type=code&scope=openid&prompt=none&state=s&id_token_hint={hint}",
                value_of(APP_CB.as_bytes())
            ),
        );
        get(
            "/logout",
            &format!(
                "id_token_hint={hint}&post_logout_redirect_uri={}&state=s",
                value_of(APP_BYE.as_bytes())
            ),
        );
    }
}

/// The fuzzer's claims over a valid id_token of client `app`, signed with the provider's key.
fn signed_hint(data: &[u8]) -> String {
    fixture()
        .provider
        .keys()
        .sign_jwt(&claims(
            json!({"iss": ISSUER, "aud": "app", "sub": "zhangsan", "iat": NOW, "exp": NOW + 600,
                   "auth_time": NOW, "sid": "s"}),
            data,
        ))
        .expect("sign")
}

/// `private_key_jwt` client assertions (RFC 7523 §3) at `/token`: the raw bytes, and claims
/// signed with the client's registered key.
pub fn client_assertion(data: &[u8]) {
    for assertion in [value_of(data), signed_assertion(data)] {
        for client_id in ["&client_id=jwt", ""] {
            let status = post_form("/token", None, assertion_form(&assertion, client_id));
            assert!(status.is_client_error(), "/token answered {status}");
        }
    }
}

fn assertion_form(assertion: &str, client_id: &str) -> Vec<u8> {
    format!(
        "grant_type=authorization_code&code=x&redirect_uri={}{client_id}&client_assertion_type={}&client_assertion={assertion}",
        value_of(APP_CB.as_bytes()),
        value_of(JWT_BEARER.as_bytes()),
    )
    .into_bytes()
}

/// The fuzzer's claims over a valid assertion of client `jwt`, signed with its key.
fn signed_assertion(data: &[u8]) -> String {
    let f = fixture();
    let claims = claims(
        json!({"iss": "jwt", "sub": "jwt", "aud": format!("{ISSUER}/token"), "iat": NOW,
               "exp": NOW + 300, "jti": crate::random::token(12)}),
        data,
    );
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id("fuzz-1");
    let signer = josekit::jws::ES256
        .signer_from_jwk(&f.client_key)
        .expect("signer");
    josekit::jws::serialize_compact(
        Value::Object(claims).to_string().as_bytes(),
        &header,
        &signer,
    )
    .expect("sign")
}

/// A fuzz target: takes the fuzzer's bytes, panics on a failure.
pub type Target = fn(&[u8]);

/// The fuzz targets by name (the folder names under `fuzz/corpus/`).
pub const TARGETS: [(&str, Target); 7] = [
    ("authorize_query", authorize_query),
    ("token_form", token_form),
    ("basic_credentials", basic_credentials),
    ("bearer_header", bearer_header),
    ("wecom_callback", wecom_callback),
    ("id_token_hint", id_token_hint),
    ("client_assertion", client_assertion),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed of the repository's fuzz corpus (`fuzz/corpus/<target>/`) runs through its
    /// target without a panic or a 500, on stable Rust in every `cargo test`: the harness and
    /// the corpus cannot rot while the nightly-only fuzzer is not run.
    #[test]
    fn every_seed_of_the_fuzz_corpus_runs_clean() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let mut seeds = 0;
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
                let path = entry.expect("entry").path();
                target(&std::fs::read(&path).expect("seed"));
                seeds += 1;
            }
            assert!(seeds >= 3, "{name}: only {seeds} seeds");
        }
    }

    /// The harness reaches the handlers: a valid authorization request is redirected to the
    /// upstream, a signed hint for another client is refused at `/authorize` — so the targets
    /// test parsers, not a 404.
    #[test]
    fn the_fuzzing_harness_reaches_the_handlers() {
        let (status, _) = get(
            "/authorize",
            &format!(
                "client_id=app&redirect_uri={}&response_type=code&scope=openid&state=s",
                value_of(APP_CB.as_bytes())
            ),
        );
        assert_eq!(status, StatusCode::FOUND);
        let (status, _) = get("/callback/wecom/events", "echostr=x");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // A signed assertion passes client authentication: the grant is what fails.
        let req = Request::post("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(assertion_form(&signed_assertion(b"{}"), "")))
            .expect("request");
        let (status, body) = send(req);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            String::from_utf8_lossy(&body).contains("invalid_grant"),
            "{body:?}"
        );
        // A signed hint passes the signature check: mutations reach the claim checks.
        assert!(fixture()
            .provider
            .verify_own_id_token(&signed_hint(b"{}"))
            .is_ok());
    }
}
