//! The built-in relying party: a real OIDC client built on the `openidconnect` crate that
//! discovers this provider, logs in with PKCE + nonce + state, verifies the id_token against the
//! JWKS and calls userinfo. `wecom-oidc demo` mounts it at `/` and `/demo/*` ([`demo_router`]);
//! `serve` with `[ui] playground = true` mounts it at `/playground` ([`playground_router`]) on a
//! client of its own ([`playground_client`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope,
};
use tokio::sync::OnceCell;

use crate::connector::ClaimOrigin;
use crate::provider::Client;
use crate::random;
use crate::secret::Secret;

mod signed_in;

const STATE_COOKIE: &str = "demo_rp_state";

type DemoOidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

struct Pending {
    verifier: String,
    nonce: String,
    created: Instant,
}

/// What the start page shows of each client: never its secret.
fn client_rows(clients: &[Client]) -> Vec<ClientRow> {
    clients
        .iter()
        .map(|c| ClientRow {
            id: c.id.clone(),
            public: c.is_public(),
            redirect_uris: c.redirect_uris.clone(),
        })
        .collect()
}

struct ClientRow {
    id: String,
    public: bool,
    redirect_uris: Vec<String>,
}

/// The demo relying party; also the operators' "try a login" playground in `serve` mode.
pub(crate) struct DemoRp {
    /// Path prefix of its pages as the browser sees them: `/demo` in the demo, `/playground`
    /// (after the issuer's path, if it has one) in serve mode.
    base: String,
    client_id: String,
    issuer: String,
    client_secret: String,
    redirect_uri: String,
    http: reqwest::Client,
    oidc: OnceCell<DemoOidcClient>,
    pending: Mutex<HashMap<String, Pending>>,
    clients: Vec<ClientRow>,
    auto_login: Option<String>,
    /// The WeCom simulator's address, linked from the demo's index page.
    simulator: Option<String>,
    /// Where each claim comes from upstream (the default connector's account of itself).
    origins: Vec<ClaimOrigin>,
    /// Who is signed in to this relying party, by its session cookie.
    signed_in: signed_in::SignedIn,
}

/// At most this many logins may be in flight in the demo; older ones are dropped.
const MAX_PENDING: usize = 1000;
/// How long a login may stay in flight.
const PENDING_TTL: Duration = Duration::from_secs(600);

impl DemoRp {
    async fn client(&self) -> Result<&DemoOidcClient, String> {
        self.oidc
            .get_or_try_init(|| async {
                let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| e.to_string())?;
                let meta = CoreProviderMetadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(|e| format!("discovery failed: {e}"))?;
                let redirect =
                    RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| e.to_string())?;
                Ok::<_, String>(
                    CoreClient::from_provider_metadata(
                        meta,
                        ClientId::new(self.client_id.clone()),
                        Some(ClientSecret::new(self.client_secret.clone())),
                    )
                    .set_redirect_uri(redirect),
                )
            })
            .await
    }
}

/// The demo's relying party (`wecom-oidc demo`): its index at `/`, its login and callback under
/// `/demo`, on the client `client_id` whose secret is `client_secret` and redirect URI
/// `redirect_uri`. The index lists `clients` and links the WeCom simulator at `simulator`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn demo_router(
    issuer: &str,
    client_id: &str,
    client_secret: String,
    redirect_uri: String,
    http: reqwest::Client,
    clients: &[Client],
    auto_login: Option<String>,
    simulator: String,
    origins: Vec<ClaimOrigin>,
) -> Router {
    let rp = DemoRp {
        base: "/demo".to_owned(),
        client_id: client_id.to_owned(),
        issuer: issuer.to_owned(),
        client_secret,
        redirect_uri,
        http,
        oidc: OnceCell::new(),
        pending: Mutex::new(HashMap::new()),
        clients: client_rows(clients),
        auto_login,
        simulator: Some(simulator),
        origins,
        signed_in: Default::default(),
    };
    rp_routes(rp, "/", "/demo")
}

/// The client id of the playground's own internal client (serve mode, `[ui] playground`).
pub const PLAYGROUND_CLIENT_ID: &str = "wecom-oidc-playground";

/// The playground's internal client: confidential, a fresh secret per process, redirected to
/// `/playground/callback` on this issuer.
pub fn playground_client(issuer: &str) -> (Client, String) {
    let secret = random::token(24);
    (
        Client {
            id: PLAYGROUND_CLIENT_ID.into(),
            name: "wecom-oidc playground".into(),
            secret: Some(Secret::new(secret.clone())),
            redirect_uris: vec![format!("{issuer}/playground/callback")],
            settings: crate::provider::client::ClientSettings {
                post_logout_redirect_uris: vec![format!("{issuer}/playground")],
                ..Default::default()
            },
        },
        secret,
    )
}

/// The operators' "try a login" playground (`[ui] playground = true`): a real relying party on
/// its own client that runs a code flow (PKCE, nonce, state) against this provider and shows the
/// id_token header and claims, the verified signature and the userinfo answer.
pub fn playground_router(
    issuer: &str,
    client_secret: String,
    clients: &[Client],
    origins: Vec<ClaimOrigin>,
) -> Router {
    let rp = DemoRp {
        base: format!("{}/playground", crate::web::issuer_path::of(issuer)),
        client_id: PLAYGROUND_CLIENT_ID.into(),
        issuer: issuer.to_string(),
        client_secret,
        redirect_uri: format!("{issuer}/playground/callback"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default(),
        oidc: OnceCell::new(),
        pending: Mutex::new(HashMap::new()),
        clients: client_rows(clients),
        auto_login: None,
        simulator: None,
        origins,
        signed_in: Default::default(),
    };
    rp_routes(rp, "/playground", "/playground")
}

/// The routes of `rp`: its index page at `index`, its login, callback and buttons under
/// `prefix`.
fn rp_routes(rp: DemoRp, index_path: &str, prefix: &str) -> Router {
    Router::new()
        .route(index_path, get(index))
        .route(&format!("{prefix}/login"), get(login))
        .route(&format!("{prefix}/callback"), get(callback))
        .merge(signed_in::routes(prefix))
        .with_state(Arc::new(rp))
}

/// Inserts `value` under `key` into `map`, whose entries live `ttl` from `since`: expired ones
/// go first, then the oldest while the map holds `max` or more, so the map stays bounded.
fn insert_bounded<V>(
    map: &mut HashMap<String, V>,
    key: String,
    value: V,
    max: usize,
    ttl: Duration,
    since: impl Fn(&V) -> Instant,
) {
    map.retain(|_, v| since(v).elapsed() < ttl);
    crate::bounded::insert_evicting_oldest(map, max, key, value, since);
}

#[derive(Template)]
#[template(path = "demo/index.html")]
struct IndexPage<'a> {
    scopes: &'static [&'static str],
    issuer: &'a str,
    simulator: Option<String>,
    login_url: &'a str,
    clients: &'a [ClientRow],
    auto_login: Option<&'a str>,
}

#[derive(Template, Clone, Default)]
#[template(path = "demo/result.html")]
struct ResultPage {
    home: String,
    /// Where the result's buttons post (`/demo`, `/playground`).
    base: String,
    ok: bool,
    subject: String,
    alg: String,
    header: String,
    claims: String,
    /// Each claim of the id_token and userinfo, with where it came from upstream.
    rows: Vec<signed_in::ClaimRow>,
    userinfo: String,
    /// Whether a refresh token is held (the refresh button works).
    has_refresh: bool,
    /// What the last button did.
    notice: String,
    error: String,
}

fn html(t: &impl Template) -> Response {
    match t.render() {
        // The demo's pages get the same security headers as the provider's own.
        Ok(body) => crate::web::html::page(StatusCode::OK, body, crate::web::html::PAGE_CSP),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

async fn index(State(rp): State<Arc<DemoRp>>) -> Response {
    let login_url = format!("{}/login", rp.base);
    html(&IndexPage {
        scopes: PICKABLE_SCOPES,
        issuer: &rp.issuer,
        simulator: rp.simulator.clone(),
        login_url: &login_url,
        clients: &rp.clients,
        auto_login: rp.auto_login.as_deref(),
    })
}

fn home(rp: &DemoRp) -> String {
    if rp.base == "/demo" {
        "/".to_owned()
    } else {
        rp.base.clone()
    }
}

fn failure(rp: &DemoRp, msg: impl Into<String>) -> Response {
    let mut r = html(&ResultPage {
        home: home(rp),
        base: rp.base.clone(),
        error: msg.into(),
        ..ResultPage::default()
    });
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r
}

/// The scopes the index page's picker offers (besides `openid`, always asked for).
pub(crate) const PICKABLE_SCOPES: &[&str] =
    &["profile", "email", "phone", "groups", "offline_access"];

/// The scopes picked on the index page (`?scope=…` repeated), in the picker's order; none
/// picked (a plain link to the login) asks for `profile` and `email`.
fn picked_scopes(query: Option<&str>) -> Vec<&'static str> {
    let asked: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    if asked.is_empty() {
        return vec!["profile", "email"];
    }
    PICKABLE_SCOPES
        .iter()
        .copied()
        .filter(|s| asked.iter().any(|a| a == s))
        .collect()
}

async fn login(State(rp): State<Arc<DemoRp>>, RawQuery(query): RawQuery) -> Response {
    let client = match rp.client().await {
        Ok(c) => c,
        Err(e) => return failure(&rp, e),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client.authorize_url(
        AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in picked_scopes(query.as_deref()) {
        request = request.add_scope(Scope::new(scope.into()));
    }
    let (url, csrf, nonce) = request.set_pkce_challenge(challenge).url();
    insert_bounded(
        &mut rp.pending.lock().unwrap_or_else(|p| p.into_inner()),
        csrf.secret().clone(),
        Pending {
            verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
            created: Instant::now(),
        },
        MAX_PENDING,
        PENDING_TTL,
        |p| p.created,
    );
    let cookie = format!(
        "{STATE_COOKIE}={}; Path={}; HttpOnly; SameSite=Lax",
        csrf.secret(),
        rp.base
    );
    let mut resp = (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn callback(
    State(rp): State<Arc<DemoRp>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(err) = params.get("error") {
        return failure(
            &rp,
            format!(
                "{err}: {}",
                params
                    .get("error_description")
                    .map(String::as_str)
                    .unwrap_or("")
            ),
        );
    }
    let (Some(code), Some(state)) = (params.get("code"), params.get("state")) else {
        return failure(&rp, "the callback carries no code or state");
    };
    if params.get("iss").map(String::as_str) != Some(rp.issuer.as_str()) {
        return failure(
            &rp,
            "the callback's iss does not match the issuer (RFC 9207)",
        );
    }
    let cookie_ok = crate::web::cookies::cookie_value(&headers, STATE_COOKIE)
        .is_some_and(|c| random::constant_time_eq(c.as_bytes(), state.as_bytes()));
    if !cookie_ok {
        return failure(&rp, "state does not match this browser's login");
    }
    let Some(pending) = rp
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(state)
    else {
        return failure(&rp, "unknown or already used state");
    };
    match finish(&rp, code, pending).await {
        Ok((page, held)) => signed_in::keep(&rp, page, held),
        Err(e) => failure(&rp, e),
    }
}

async fn finish(
    rp: &DemoRp,
    code: &str,
    pending: Pending,
) -> Result<(ResultPage, signed_in::Held), String> {
    let client = rp.client().await?;
    let token = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&rp.http)
        .await
        .map_err(|e| format!("token request failed: {e}"))?;
    signed_in::page_of(rp, client, &token, Some(&pending.nonce)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_maps_drop_expired_entries_then_the_oldest_when_full() {
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        let mut map = HashMap::new();
        for (key, age) in [("expired", 61), ("old", 30), ("new", 1)] {
            map.insert(key.to_owned(), now - Duration::from_secs(age));
        }
        insert_bounded(&mut map, "a".into(), now, 3, ttl, |t| *t);
        let mut keys: Vec<_> = map.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["a", "new", "old"]);
        insert_bounded(&mut map, "b".into(), now, 3, ttl, |t| *t);
        assert!(!map.contains_key("old") && map.contains_key("b") && map.len() == 3);
    }

    #[test]
    fn the_picker_asks_for_the_picked_known_scopes_only_in_its_order() {
        assert_eq!(picked_scopes(None), ["profile", "email"]);
        assert_eq!(
            picked_scopes(Some("scope=groups&scope=phone&scope=admin")),
            ["phone", "groups"]
        );
        assert_eq!(
            picked_scopes(Some("scope=offline_access+email")),
            ["email", "offline_access"]
        );
    }
}
