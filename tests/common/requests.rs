//! Requests to the provider: token and userinfo calls, the `openidconnect` relying party, JWT
//! decoding.

use super::*;

/// POSTs `form` to `url`, with HTTP Basic credentials when given: the status, the headers and
/// the JSON body (`Null` when the body is not JSON).
pub async fn post_form(
    url: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = reqwest::Client::new().post(url).form(form);
    if let Some((user, password)) = basic {
        req = req.basic_auth(user, Some(password));
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

/// The form of the authorization_code grant (RFC 6749 §4.1.3) for `code` and `redirect_uri`,
/// with `extra` parameters after it.
pub fn code_form<'a>(
    code: &'a str,
    redirect_uri: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    form.extend_from_slice(extra);
    form
}

/// The form of the refresh_token grant (RFC 6749 §6) for `refresh_token`.
pub fn refresh_form(refresh_token: &str) -> [(&str, &str); 2] {
    [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ]
}

/// A token request of `client` (HTTP Basic with `secret`) at `issuer`: status and JSON body.
pub async fn token(
    issuer: &str,
    (client, secret): (&str, &str),
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let (status, _, body) =
        post_form(&format!("{issuer}/token"), form, Some((client, secret))).await;
    (status, body)
}

/// [`token`] as [`APP`]; a 429 of the `/token` rate limit is waited out (bounded: 15 s), so
/// that floods of requests measure the provider rather than the limiter. `Err` on a transport
/// error (the server is gone).
pub async fn app_token_patiently(
    http: &reqwest::Client,
    issuer: &str,
    form: &[(&str, &str)],
) -> Result<(StatusCode, Value), reqwest::Error> {
    for _ in 0..100 {
        let resp = http
            .post(format!("{issuer}/token"))
            .basic_auth(APP, Some(APP_SECRET))
            .form(form)
            .send()
            .await?;
        let status = resp.status();
        if status != StatusCode::TOO_MANY_REQUESTS {
            return Ok((status, resp.json().await.unwrap_or(Value::Null)));
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    panic!("the /token rate limit never let the request through");
}

/// The bodies of the answers in `results` that were 200 (for races where exactly one may win).
pub fn winners(results: &[(StatusCode, Value)]) -> Vec<&Value> {
    results
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, body)| body)
        .collect()
}

/// Whether one line of a Prometheus exposition (`/metrics`) contains every one of `parts`.
pub fn has_metric_line(metrics: &str, parts: &[&str]) -> bool {
    metrics
        .lines()
        .any(|l| parts.iter().all(|part| l.contains(part)))
}

/// `GET url`: the status and the body as text.
pub async fn get(url: impl reqwest::IntoUrl) -> (StatusCode, String) {
    let resp = reqwest::get(url).await.expect("GET");
    let status = resp.status();
    (status, resp.text().await.expect("body"))
}

/// `GET url`, which must answer JSON whatever its status: the status and the JSON.
pub async fn get_json_answer(url: impl reqwest::IntoUrl) -> (StatusCode, Value) {
    let (status, text) = get(url).await;
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, json)
}

/// `GET url`, which must answer: its body as text.
pub async fn get_text(url: impl reqwest::IntoUrl) -> String {
    get(url).await.1
}

/// `GET url`, which must answer JSON: the JSON.
pub async fn get_json(url: impl reqwest::IntoUrl) -> Value {
    let text = get_text(url).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `GET url` with `http` (a browser or a client with settings of its own), which must
/// answer: its body as text.
pub async fn get_text_with(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    let resp = http.get(url).send().await.expect("GET");
    resp.text().await.expect("body")
}

/// `GET url` with `http` (a browser or a client with settings of its own): the JSON.
pub async fn get_json_with(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> Value {
    let resp = http.get(url).send().await.expect("GET");
    resp.json().await.expect("JSON")
}

/// The `kid`s of a JWK Set, in order.
pub fn kids_of(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("no keys in {jwks}"))
        .iter()
        .map(|k| str_of(k, "kid").to_owned())
        .collect()
}

/// `GET {issuer}/userinfo` with `access_token` as the bearer token.
pub async fn userinfo(issuer: &str, access_token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{issuer}/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo request")
}

/// A relying party of the `openidconnect` crate, as a client application would set it up.
pub type Rp = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The `openidconnect` relying party of client `client_id`, set up from `issuer`'s discovery
/// document, and the HTTP client (following no redirects) it talks with.
pub async fn discover_rp(
    issuer: &str,
    client_id: &str,
    secret: &str,
    redirect_uri: &str,
) -> (Rp, reqwest::Client) {
    use openidconnect::core::{CoreClient, CoreProviderMetadata};
    use openidconnect::{ClientId, ClientSecret, IssuerUrl, RedirectUrl};
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let issuer = IssuerUrl::new(issuer.to_owned()).expect("issuer URL");
    let meta = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .expect("discovery");
    let rp = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(client_id.into()),
        Some(ClientSecret::new(secret.into())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect_uri.into()).expect("redirect URI"));
    (rp, http)
}

/// Where a login of an `openidconnect` relying party ended ([`rp_login`]).
pub struct RpLogin {
    /// The relying party.
    pub rp: Rp,
    /// The HTTP client it talks with.
    pub http: reqwest::Client,
    /// The authorization request it sent the browser to.
    pub auth_url: url::Url,
    /// The query of the redirect back to it (its `state` checked already).
    pub query: HashMap<String, String>,
    /// The nonce it sent, to verify the id_token with.
    pub nonce: openidconnect::Nonce,
    /// The token response to its code.
    pub token: openidconnect::core::CoreTokenResponse,
}

/// A login of the `openidconnect` relying party of `client` (id, secret, redirect URI) at
/// `issuer`, as a client application does it: discovery, authorization with the `profile`
/// scope, PKCE S256 and a nonce, a browser's walk to the redirect URI (its `state` must come
/// back, OIDC Core §3.1.2.5), the code exchanged with the verifier. The id_token is left to the
/// caller to verify.
pub async fn rp_login(
    issuer: &str,
    (client_id, secret, redirect_uri): (&str, &str, &str),
) -> RpLogin {
    use openidconnect::core::CoreResponseType;
    use openidconnect::{
        AuthenticationFlow, AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, Scope,
    };
    let (rp, http) = discover_rp(issuer, client_id, secret, redirect_uri).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = rp
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let query = walk(&browser(), auth_url.as_str(), redirect_uri)
        .await
        .redirect_query();
    assert_eq!(query["state"], *csrf.secret());
    let token = rp
        .exchange_code(AuthorizationCode::new(query["code"].clone()))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token response");
    RpLogin {
        rp,
        http,
        auth_url,
        query,
        nonce,
        token,
    }
}

/// The JOSE header and the claims of the compact JWS `jwt`, whose signature must verify with
/// the key of its `kid` in `jwks` (verified with josekit, not with the provider's own code).
pub fn verified_jws(jwks: &Value, jwt: &str) -> (Value, Value) {
    use josekit::jwk::Jwk;
    use josekit::jws::{EdDSA, JwsVerifier, ES256, RS256};
    let header = header_of(jwt);
    let key = jwks["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("no keys in {jwks}"))
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap_or_else(|| panic!("the kid of {header} is not in the JWKS"));
    let jwk = Jwk::from_map(key.as_object().expect("a JWK object").clone()).expect("JWK");
    let alg = str_of(&header, "alg");
    let verifier: Box<dyn JwsVerifier> = match alg {
        "RS256" => Box::new(RS256.verifier_from_jwk(&jwk).expect("an RS256 key")),
        "ES256" => Box::new(ES256.verifier_from_jwk(&jwk).expect("an ES256 key")),
        "EdDSA" => Box::new(EdDSA.verifier_from_jwk(&jwk).expect("an EdDSA key")),
        other => panic!("unexpected alg {other}"),
    };
    let (payload, _) =
        josekit::jws::deserialize_compact(jwt, verifier.as_ref()).expect("signature verifies");
    (
        header,
        serde_json::from_slice(&payload).expect("claims JSON"),
    )
}

/// `v[key]`, which must be a string.
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// The claims of a JWT, unverified (the tests that need it verify signatures separately).
pub fn claims_of(jwt: &str) -> Value {
    jwt_part(jwt, 1)
}

/// The JOSE header of a JWT.
pub fn header_of(jwt: &str) -> Value {
    jwt_part(jwt, 0)
}

fn jwt_part(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).expect("a JWT part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}
