//! `/callback/{connector}/events`: requests the upstream pushes on its own (WeCom's callback
//! URL, wecom-api.md §11), handed to the connector as they came.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use super::WebState;
use crate::connector::{EventError, UpstreamEvent};

/// Query parameters, percent-decoded but with `+` kept: WeCom's `echostr` is standard base64,
/// and form decoding would turn its `+` into a space (wecom-api.md §11 step 1).
pub fn raw_query_params(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode_str(k).decode_utf8().ok()?;
            let v = percent_decode_str(v).decode_utf8().ok()?;
            Some((k.into_owned(), v.into_owned()))
        })
        .collect()
}

/// `GET` (URL verification) and `POST` (messages) of the upstream's callback.
pub async fn upstream_event(
    State(s): State<WebState>,
    Path(connector): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let query = raw_query_params(query.as_deref().unwrap_or_default());
    let event = UpstreamEvent {
        is_post: method == Method::POST,
        query: &query,
        body: &body,
    };
    match s.provider.upstream_event(&connector, &event).await {
        // §11: the body is exactly the decrypted message (no quotes, no newline).
        Ok(reply) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            reply,
        )
            .into_response(),
        Err(EventError::NotSupported) => StatusCode::NOT_FOUND.into_response(),
        Err(EventError::Rejected(_)) => (StatusCode::BAD_REQUEST, "rejected\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_signs_survive_and_percent_escapes_are_decoded() {
        let q = raw_query_params("echostr=a+b%2Bc%3D%3D&nonce=1&flag");
        assert_eq!(q["echostr"], "a+b+c==");
        assert_eq!(q["nonce"], "1");
        assert_eq!(q["flag"], "");
    }
}
