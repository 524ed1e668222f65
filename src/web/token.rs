//! `POST /token` (RFC 6749 §3.2, §4.1.3): client credentials are parsed here, the grant is the
//! core's business.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;

use super::WebState;
use crate::provider::params::Params;
use crate::provider::{ClientCredentials, ErrorCode, OAuthError};
use crate::secret::Secret;

/// RFC 6749 §5.2 error body.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

const NO_STORE: [(header::HeaderName, HeaderValue); 2] = [
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    (header::PRAGMA, HeaderValue::from_static("no-cache")),
];

/// An OAuth error as JSON with the status RFC 6749 §5.2 asks for.
pub fn oauth_error_response(e: &OAuthError, used_basic: bool) -> Response {
    let status = match e.code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut resp = (
        status,
        NO_STORE,
        Json(ErrorBody {
            error: e.code.as_str(),
            error_description: &e.description,
        }),
    )
        .into_response();
    if e.code == ErrorCode::InvalidClient {
        let challenge = if used_basic {
            "Basic realm=\"wecom-oidc\", charset=\"UTF-8\""
        } else {
            "Basic realm=\"wecom-oidc\""
        };
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    resp
}

/// Parses `Authorization: Basic` per RFC 6749 §2.3.1: base64 of
/// `urlencode(client_id) ":" urlencode(client_secret)`.
pub(crate) fn basic_credentials(
    headers: &HeaderMap,
) -> Result<Option<(String, Secret)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client("malformed Basic credentials");
    let s = value.to_str().map_err(|_| bad())?;
    let Some((scheme, rest)) = s.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "only HTTP Basic client authentication is accepted in the Authorization header",
        ));
    }
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let decode = |x: &str| -> Result<String, OAuthError> {
        let plus = x.replace('+', " ");
        percent_encoding::percent_decode_str(&plus)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad())
    };
    let id = decode(id)?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok(Some((id, Secret::new(decode(secret)?))))
}

/// Whether the body is a form: `Content-Type: application/x-www-form-urlencoded`, whatever its
/// parameters and letter case (RFC 9110 §8.3.1).
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        })
}

/// Parses a client's form POST to `/token`, `/revoke` or `/introspect`: the form body and the
/// client credentials (RFC 6749 §2.3.1). A request that is not a form, or has malformed Basic
/// credentials, is answered with the OAuth error response.
#[allow(clippy::result_large_err)] // the Err is the finished response, returned at once
pub fn client_form(
    headers: &HeaderMap,
    body: &str,
) -> Result<(Params, ClientCredentials), Response> {
    let used_basic = headers.contains_key(header::AUTHORIZATION);
    if !is_form(headers) {
        return Err(oauth_error_response(
            &OAuthError::invalid_request("the request must be application/x-www-form-urlencoded"),
            used_basic,
        ));
    }
    let params = Params::parse(body);
    let basic = basic_credentials(headers).map_err(|e| oauth_error_response(&e, used_basic))?;
    let creds = ClientCredentials {
        basic,
        body_client_id: params.get("client_id").map(str::to_string),
        body_client_secret: params.get("client_secret").map(Secret::new),
    };
    Ok((params, creds))
}

/// `POST /token`.
pub async fn token(State(s): State<WebState>, headers: HeaderMap, body: String) -> Response {
    let (params, creds) = match client_form(&headers, &body) {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let result = s.provider.token(&params, &creds).await;
    // Durable before the answer: the new tokens and the spent code or refresh token (and a
    // grant revoked on replay, RFC 6749 §4.1.2 / RFC 9700 §4.14.2) must survive a crash once
    // the client has seen the response. One barrier, shared by concurrent requests.
    let durable = super::durable(&s).await;
    match result {
        Ok(t) => match durable {
            Ok(()) => (StatusCode::OK, NO_STORE, Json(t)).into_response(),
            Err(e) => oauth_error_response(&e, creds.used_basic()),
        },
        Err(e) => {
            tracing::info!(error = e.error.code.as_str(), description = %e.error.description, "token request refused");
            oauth_error_response(&e.error, e.used_basic)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(raw))).unwrap(),
        );
        h
    }

    #[test]
    fn basic_credentials_are_form_urldecoded_rfc6749_2_3_1() {
        let (id, secret) = basic_credentials(&basic("my%3Aclient:p%40ss+word"))
            .unwrap()
            .unwrap();
        assert_eq!(id, "my:client");
        assert_eq!(secret.expose(), "p@ss word");
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        assert!(basic_credentials(&basic("no-colon")).is_err());
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(
            basic_credentials(&h).unwrap_err().code,
            ErrorCode::InvalidClient
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(basic_credentials(&h).is_err());
    }
}
