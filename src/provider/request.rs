//! A validated authorization request (OIDC Core §3.1.2.1) and what a code is bound to: the
//! values `/authorize` checks once and every later step (upstream login, session answer,
//! hand-off page, code issue) reads.

use super::claims::ClaimsRequest;
use super::error::OAuthError;
use super::response::{ErrorRedirect, ResponseMode};
use crate::connector::Identity;
use crate::random;
use crate::storage::AuthCode;

/// The `prompt` values of an authorization request (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: no user interaction at all.
    pub none: bool,
    /// `login`: re-authenticate even with a live session.
    pub login: bool,
    /// `consent`: satisfied without a page (see the module docs).
    pub consent: bool,
    /// `select_account`: treated as `login`.
    pub select_account: bool,
}

impl Prompt {
    /// Parses the space-separated `prompt` value. Unknown values and `none` combined with
    /// anything else are refused (OIDC Core §3.1.2.1: "If this parameter contains none with any
    /// other value, an error is returned").
    pub fn parse(value: Option<&str>) -> Result<Prompt, &'static str> {
        let mut p = Prompt::default();
        let mut count = 0;
        for v in value.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
            count += 1;
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                "select_account" => p.select_account = true,
                _ => return Err(
                    "unsupported prompt value (supported: none, login, consent, select_account)",
                ),
            }
        }
        if p.none && count > 1 {
            return Err("prompt=none cannot be combined with other values");
        }
        Ok(p)
    }

    /// Whether the person must log in upstream whatever the session.
    pub fn forces_login(self) -> bool {
        self.login || self.select_account
    }
}

/// What an authorization code is bound to (RFC 6749 §4.1.3, RFC 7636 §4.4).
pub(crate) struct CodeGrant<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) redirect_uri: &'a str,
    pub(crate) scopes: &'a [String],
    pub(crate) nonce: Option<&'a str>,
    pub(crate) code_challenge: Option<&'a str>,
    pub(crate) claims: &'a ClaimsRequest,
}

impl CodeGrant<'_> {
    /// The record of a new code bound to this grant, for `identity` as the client sees it, in
    /// a new grant (RFC 6749 §4.1.2: a code is single use and short-lived).
    pub(crate) fn record(
        &self,
        identity: Identity,
        auth_time: i64,
        sid: Option<String>,
        expires_at: i64,
    ) -> AuthCode {
        AuthCode {
            client_id: self.client_id.to_string(),
            redirect_uri: self.redirect_uri.to_string(),
            scopes: self.scopes.to_vec(),
            nonce: self.nonce.map(str::to_string),
            code_challenge: self.code_challenge.map(str::to_string),
            identity,
            auth_time,
            grant_id: random::token(16),
            expires_at,
            redeemed: false,
            sid,
            claims: self.claims.clone(),
        }
    }
}

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAuthorizeRequest {
    /// The client.
    pub client_id: String,
    /// The registered redirect URI.
    pub redirect_uri: String,
    /// Granted scopes (always contains `openid`).
    pub scopes: Vec<String>,
    /// Client state.
    pub state: Option<String>,
    /// Client nonce.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Response mode.
    pub response_mode: ResponseMode,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// `login_hint`.
    pub login_hint: Option<String>,
    /// `ui_locales`.
    pub ui_locales: Option<String>,
    /// `prompt` (OIDC Core §3.1.2.1).
    pub prompt: Prompt,
    /// The `sub` of a verified `id_token_hint`.
    pub id_token_hint_sub: Option<String>,
    /// The `claims` parameter (OIDC Core §5.5), reduced to claims we can supply.
    pub claims: ClaimsRequest,
}

impl ValidAuthorizeRequest {
    /// `error`, sent back to this request's redirect URI in its response mode, with its
    /// `state` (OIDC Core §3.1.2.6).
    pub(crate) fn error_redirect(&self, error: OAuthError) -> ErrorRedirect {
        ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            response_mode: self.response_mode,
            error,
        }
    }

    /// What a code issued for this request is bound to.
    pub(crate) fn code_grant(&self) -> CodeGrant<'_> {
        CodeGrant {
            client_id: &self.client_id,
            redirect_uri: &self.redirect_uri,
            scopes: &self.scopes,
            nonce: self.nonce.as_deref(),
            code_challenge: self.code_challenge.as_deref(),
            claims: &self.claims,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_none_cannot_be_combined_oidc_core_3_1_2_1() {
        assert!(Prompt::parse(Some("none login")).is_err());
        assert!(Prompt::parse(Some("none")).is_ok_and(|p| p.none && !p.forces_login()));
        assert!(Prompt::parse(Some("login consent")).is_ok_and(|p| p.login && p.consent));
        assert!(Prompt::parse(Some("select_account")).is_ok_and(|p| p.forces_login()));
        assert_eq!(Prompt::parse(None), Ok(Prompt::default()));
        assert!(Prompt::parse(Some("bogus")).is_err());
    }
}
