//! A client's back-channel logout endpoint, and what a person still holds after a sign-out.

use super::*;

/// Bodies a client's back-channel logout endpoint received, in order.
pub type Received = Arc<std::sync::Mutex<Vec<String>>>;

/// A client's back-channel logout endpoint (Back-Channel Logout 1.0 §2.5) on `127.0.0.1:0`
/// that answers 200 and keeps every body: its URL and what it received.
pub async fn logout_receiver() -> (String, Received) {
    use axum::routing::post;
    let got: Received = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/bcl",
        post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("lock").push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = ephemeral_listener().await;
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/bcl"), got)
}

/// The `logout_token`s `got` has received so far.
pub fn logout_tokens(got: &Received) -> Vec<String> {
    got.lock()
        .expect("lock")
        .iter()
        .filter_map(|body| {
            url::form_urlencoded::parse(body.as_bytes())
                .find(|(k, _)| k == "logout_token")
                .map(|(_, v)| v.into_owned())
        })
        .collect()
}

/// Waits (polling, at most `limit`) until `got` has received `n` logout tokens; returns them.
pub async fn wait_for_logout_tokens(
    got: &Received,
    n: usize,
    limit: std::time::Duration,
) -> Vec<String> {
    let until = std::time::Instant::now() + limit;
    loop {
        let tokens = logout_tokens(got);
        if tokens.len() >= n || std::time::Instant::now() >= until {
            return tokens;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// What a person holds at a provider, to check after a sign-out everywhere.
pub struct Held<'a> {
    /// A client and its secret, which hold `access` and `refresh`.
    pub client: (&'a str, &'a str),
    /// An access token.
    pub access: String,
    /// A refresh token; replaced by its successor whenever a check refreshes successfully.
    pub refresh: String,
    /// A client id and redirect URI the browser's session would give a code silently.
    pub silent: (&'a str, &'a str),
}

/// What of `held` still works at the provider at `base` for `browser`: the access token at
/// userinfo and at introspection (RFC 7662 `active`), the refresh token, the session (a
/// `prompt=none` request answered with a code).
/// Empty once the person is signed out everywhere.
pub async fn still_working(
    base: &str,
    browser: &reqwest::Client,
    held: &mut Held<'_>,
) -> Vec<&'static str> {
    let mut working = Vec::new();
    if userinfo(base, &held.access).await.status() == StatusCode::OK {
        working.push("access token at userinfo");
    }
    let (_, _, introspection) = post_form(
        &format!("{base}/introspect"),
        &[("token", &held.access)],
        Some(held.client),
    )
    .await;
    if introspection["active"] == true {
        working.push("access token at introspection");
    }
    let (client, redirect_uri) = held.silent;
    let silent = authorize_url(
        base,
        &[
            ("client_id", client),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
        ],
    );
    let resp = browser.get(&silent).send().await.expect("authorize");
    if resp.status().is_redirection() && query(&location(&resp)).contains_key("code") {
        working.push("session");
    }
    let (status, body) = token(
        base,
        held.client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &held.refresh),
        ],
    )
    .await;
    if status == StatusCode::OK {
        working.push("refresh token");
        held.refresh = str_of(&body, "refresh_token").to_owned();
    }
    working
}
