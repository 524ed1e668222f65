//! OAuth 2.0 / OIDC error values. The core returns these; the HTTP layer alone decides whether an
//! error becomes JSON, a redirect to the client, or an HTML page.

use std::fmt;

/// The registered error codes we use (RFC 6749 §4.1.2.1, §5.2; OIDC Core §3.1.2.6; RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is missing a parameter, repeats one, or is otherwise malformed.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// The grant (code, refresh token) is invalid, expired, revoked or was issued to another client.
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// The response type is not supported.
    UnsupportedResponseType,
    /// The requested scope is invalid.
    InvalidScope,
    /// The resource owner or the server denied the request.
    AccessDenied,
    /// An unexpected condition on our side.
    ServerError,
    /// A temporary overload or an upstream outage.
    TemporarilyUnavailable,
    /// `prompt=none` but the person must log in (OIDC Core §3.1.2.6).
    LoginRequired,
    /// The `request` parameter is not supported (OIDC Core §6).
    RequestNotSupported,
    /// The `request_uri` parameter is not supported (OIDC Core §6).
    RequestUriNotSupported,
    /// The `registration` parameter is not supported (OIDC Core §7.2.1).
    RegistrationNotSupported,
    /// The access token is invalid, expired or revoked (RFC 6750 §3.1).
    InvalidToken,
    /// The person has not answered the device authorization yet (RFC 8628 §3.5).
    AuthorizationPending,
    /// The device polls too fast: wait 5 seconds longer between polls (RFC 8628 §3.5).
    SlowDown,
    /// The device code has expired (RFC 8628 §3.5).
    ExpiredToken,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::RegistrationNotSupported => "registration_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error with a human-readable description (safe to show to the client: it never
/// carries secrets or internal details).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The error code.
    pub code: ErrorCode,
    /// `error_description`: ASCII, no secrets (RFC 6749 §5.2 restricts its character set).
    pub description: String,
}

impl OAuthError {
    /// A new error.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_client`.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    /// `server_error`, for failures whose detail stays in our logs.
    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }
}

impl From<crate::storage::StorageError> for OAuthError {
    fn from(e: crate::storage::StorageError) -> Self {
        match e {
            // A store that is down or full is the server being "temporarily unable to handle
            // the request" (RFC 6749 §4.1.2.1, and the registered code §11.4 lets /token use
            // it too): the client may retry, and the HTTP layer says when (Retry-After).
            crate::storage::StorageError::Unavailable(_) => {
                crate::storage::unavailable::note(&e);
                Self::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the server cannot reach its store right now; try again shortly",
                )
            }
            _ => {
                tracing::error!(error = %e, "storage failure");
                Self::server_error()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageError;

    #[test]
    fn an_unavailable_store_is_temporarily_unavailable_rfc6749_4_1_2_1_and_a_broken_one_a_server_error(
    ) {
        let down: OAuthError = StorageError::Unavailable("connection refused".into()).into();
        assert_eq!(down.code, ErrorCode::TemporarilyUnavailable);
        assert!(!down.description.contains("refused"), "no detail leaks");
        let broken: OAuthError = StorageError::Backend("cannot decode".into()).into();
        assert_eq!(broken.code, ErrorCode::ServerError);
    }
}
