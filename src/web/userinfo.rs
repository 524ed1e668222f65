//! `GET|POST /userinfo` (OIDC Core §5.3) with bearer tokens (RFC 6750).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::WebState;
use crate::provider::params::Params;
use crate::provider::{ErrorCode, OAuthError};

/// Where the UserInfo endpoint is served (`userinfo_endpoint` of the discovery document).
pub const PATH: &str = "/userinfo";

/// The bearer token from `Authorization: Bearer` (RFC 6750 §2.1), borrowed from the header.
pub(crate) fn bearer_from_header(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
    match s.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(OAuthError::invalid_request(
            "the Authorization header must use the Bearer scheme",
        )),
    }
}

/// A 401/400 with the RFC 6750 §3 `WWW-Authenticate` challenge.
fn challenge(e: Option<&OAuthError>) -> Response {
    let (status, value) = match e {
        // §3.1: a request without any token gets the bare challenge.
        None => (
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"wecom-oidc\"".to_string(),
        ),
        Some(e) => {
            let status = match e.code {
                ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
                ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
                ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            (
                status,
                format!(
                    "Bearer realm=\"wecom-oidc\", error=\"{}\", error_description=\"{}\"",
                    e.code.as_str(),
                    e.description.replace(['"', '\\'], "'")
                ),
            )
        }
    };
    let mut resp = (
        status,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

async fn answer(s: &WebState, token: Result<Option<&str>, OAuthError>) -> Response {
    let token = match token {
        Ok(Some(t)) => t,
        Ok(None) => return challenge(None),
        Err(e) => return challenge(Some(&e)),
    };
    match s.provider.userinfo(token).await {
        // The claims are serialised here, borrowing the token's record; the response is built
        // directly rather than through `Json` and a header tuple's `IntoResponseParts`.
        Ok(info) => match serde_json::to_vec(&info.claims()) {
            Ok(json) => {
                let mut response = Response::new(Body::from(json));
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
            Err(e) => {
                tracing::error!(error = %e, "userinfo claims cannot be serialised");
                challenge(Some(&OAuthError::server_error()))
            }
        },
        Err(e) => challenge(Some(&e)),
    }
}

/// `GET /userinfo`, as a service: the router serves it, and so does the edge without the
/// router ([`super::hot_routes`]). Takes the request whole: a `HeaderMap` would copy every
/// header.
#[derive(Clone)]
pub struct UserinfoGet {
    state: Arc<WebState>,
}

impl UserinfoGet {
    /// The endpoint of `state`.
    pub fn new(state: WebState) -> Self {
        Self {
            state: Arc::new(state),
        }
    }
}

impl tower::Service<Request> for UserinfoGet {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move { Ok(answer(&state, bearer_from_header(request.headers())).await) })
    }
}

/// `POST /userinfo`: the token in the header or, per RFC 6750 §2.2, in a form body.
pub async fn userinfo_post(
    State(s): State<WebState>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header_token = bearer_from_header(&headers);
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form = is_form.then(|| Params::parse(&body));
    if form.as_ref().is_some_and(|p| p.is_repeated("access_token")) {
        return challenge(Some(&OAuthError::invalid_request(
            "access_token is repeated",
        )));
    }
    let body_token = form.as_ref().and_then(|p| p.get("access_token"));
    let token = match (header_token, body_token) {
        // RFC 6750 §2: a client MUST NOT use more than one method.
        (Ok(Some(_)), Some(_)) => Err(OAuthError::invalid_request(
            "send the access token in one place only",
        )),
        (Ok(None), Some(b)) => Ok(Some(b)),
        (h, None) => h,
        (Err(e), Some(_)) => Err(e),
    };
    answer(&s, token).await
}
