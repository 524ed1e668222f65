//! Browsers and redirect walks: cookie-keeping browsers that follow no redirects, and walks
//! that follow them by hand so that each hop can be checked.

use super::*;

/// What every test browser is: it keeps cookies and walks redirects by hand, so each hop can be
/// checked.
pub fn browser_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
}

/// A browser with its own cookie jar (per host: one session cookie serves every instance on
/// 127.0.0.1) that follows no redirects.
pub fn browser() -> reqwest::Client {
    browser_builder().build().expect("client")
}

/// A [`browser`] that sends `user_agent` (WeCom's in-app browser, or a desktop one).
pub fn browser_as(user_agent: &str) -> reqwest::Client {
    browser_builder()
        .user_agent(user_agent)
        .build()
        .expect("client")
}

/// The `Location` of a redirect, which must have one.
pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location in a {} answer", resp.status()))
        .to_str()
        .expect("ASCII Location")
        .to_owned()
}

/// The query parameters of `url`.
pub fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .expect("URL")
        .query_pairs()
        .into_owned()
        .collect()
}

/// `{issuer}/authorize` with `params`, in order.
pub fn authorize_url(issuer: &str, params: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&format!("{issuer}/authorize")).expect("issuer URL");
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

/// `{issuer}/authorize` asking for a code (RFC 6749 §4.1.1) for `client_id` at `redirect_uri`
/// with `scope`, `state` and `nonce` (OIDC Core §3.1.2.1), then `extra` parameters.
pub fn code_request_url(
    issuer: &str,
    (client_id, redirect_uri): (&str, &str),
    scope: &str,
    (state, nonce): (&str, &str),
    extra: &[(&str, &str)],
) -> String {
    let mut params = vec![
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("response_type", "code"),
        ("scope", scope),
        ("state", state),
        ("nonce", nonce),
    ];
    params.extend_from_slice(extra);
    authorize_url(issuer, &params)
}

/// The PKCE parameters of an authorization request with the S256 `challenge` (RFC 7636 §4.3).
pub fn pkce(challenge: &str) -> [(&str, &str); 2] {
    [
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

/// Where a walk of redirects ended.
#[derive(Debug)]
pub struct Walk {
    /// Every URL requested, in order.
    pub visited: Vec<String>,
    /// The redirect target the walk stopped at, or the URL of the page it ended on.
    pub end: String,
    /// The status of the last response.
    pub status: StatusCode,
    /// The body of the final page, when the walk ended on one (not on a redirect).
    pub body: Option<String>,
    /// The headers of the last response.
    pub headers: HeaderMap,
}

impl Walk {
    /// Whether the walk went through the demo's WeCom simulator.
    pub fn went_through_wecom(&self) -> bool {
        self.visited
            .iter()
            .any(|u| u.contains(demo::SIMULATOR_PATH))
    }

    /// A query parameter of the URL the walk ended at.
    pub fn param(&self, name: &str) -> Option<String> {
        query(&self.end).remove(name)
    }

    /// The query of the redirect the walk stopped at; panics when it ended on a page.
    pub fn redirect_query(&self) -> HashMap<String, String> {
        if let Some(body) = &self.body {
            panic!(
                "expected a redirect, the walk ended on a {} page at {}: {body}",
                self.status, self.end
            );
        }
        query(&self.end)
    }
}

/// Where a browser's login ends: the RP callback's query, or a page we showed instead.
#[derive(Debug)]
pub enum Outcome {
    /// At the client's redirect URI, with this query.
    Redirect(HashMap<String, String>),
    /// On a page of ours.
    Page(StatusCode, String),
}

impl Outcome {
    /// The query of the client redirect; panics on a page.
    pub fn query(self) -> HashMap<String, String> {
        match self {
            Outcome::Redirect(q) => q,
            Outcome::Page(status, body) => panic!("a page {status} instead of a redirect: {body}"),
        }
    }
}

impl From<Walk> for Outcome {
    fn from(w: Walk) -> Outcome {
        match w.body {
            None => Outcome::Redirect(query(&w.end)),
            Some(body) => Outcome::Page(w.status, body),
        }
    }
}

/// Follows redirects from `start` (relative ones against the URL that sent them) until one
/// points at a URL starting with `stop`, or an answer is not a redirect (with an empty `stop`,
/// until a page).
pub async fn walk(b: &reqwest::Client, start: &str, stop: &str) -> Walk {
    walk_rewriting(b, start, stop, |_| None).await
}

/// The page that `b` reaches from `start` through redirects, which must answer 200: its body.
pub async fn page_after_redirects(b: &reqwest::Client, start: &str) -> String {
    let w = walk(b, start, "").await;
    assert_eq!(w.status, StatusCode::OK, "{:?}", w.visited);
    w.body.expect("a page")
}

/// Like [`walk`]; a redirect for which `rewrite` returns a URL goes there instead (a test that
/// stands in for the member at WeCom's login page mints the code here).
pub async fn walk_rewriting(
    b: &reqwest::Client,
    start: &str,
    stop: &str,
    rewrite: impl FnMut(&str) -> Option<String>,
) -> Walk {
    try_walk(b, start, stop, rewrite).await.expect("request")
}

/// Like [`walk_rewriting`]; `Err` on a transport error (the server is gone).
pub async fn try_walk(
    b: &reqwest::Client,
    start: &str,
    stop: &str,
    mut rewrite: impl FnMut(&str) -> Option<String>,
) -> Result<Walk, reqwest::Error> {
    let mut url = url::Url::parse(start).expect("start URL");
    let mut visited = Vec::new();
    for _ in 0..12 {
        visited.push(url.to_string());
        let resp = b.get(url.clone()).send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if !status.is_redirection() {
            let body = resp.text().await?;
            return Ok(Walk {
                visited,
                end: url.to_string(),
                status,
                body: Some(body),
                headers,
            });
        }
        let next = url.join(&location(&resp)).expect("Location URL");
        if !stop.is_empty() && next.as_str().starts_with(stop) {
            return Ok(Walk {
                visited,
                end: next.to_string(),
                status,
                body: None,
                headers,
            });
        }
        url = match rewrite(next.as_str()) {
            Some(other) => url::Url::parse(&other).expect("rewritten URL"),
            None => next,
        };
    }
    panic!("too many redirects: {visited:?}");
}
