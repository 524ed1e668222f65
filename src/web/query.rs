//! The query string as [`Params`], so that handlers apply RFC 6749 §3.1 (empty means omitted,
//! a repeated parameter has no value) to it as they do to a form body.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::provider::params::Params;

/// Extractor: the request's query string decoded (none is an empty one); never rejects.
pub struct QueryParams(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(Params::parse(parts.uri.query().unwrap_or(""))))
    }
}
