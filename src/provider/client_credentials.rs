//! The `client_credentials` grant (RFC 6749 §4.4): a service asks for a token for itself. No
//! person stands behind it: `sub` is the client id, no id_token, no refresh token (§4.4.3), and
//! only the scopes the client was configured with.

use super::error::{ErrorCode, OAuthError};
use super::token::{Issue, TokenResponse};
use super::{scopes, Client, Provider};
use crate::connector::Identity;
use crate::random;
use crate::storage::ClaimsRequest;

impl Provider {
    /// Issues a token to `client` itself, authenticated and allowed the grant ([`Self::token`]
    /// checked; a public client never is, [`Client::allows_grant`]).
    pub(super) async fn client_credentials(
        &self,
        client: &Client,
        scope: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let scopes = service_scopes(client, scope)?;
        let identity = Identity {
            user_id: client.id.clone(),
            username: client.id.clone(),
            ..Identity::default()
        };
        let now = self.now();
        self.issue_tokens(
            client,
            &Issue {
                grant_id: &random::token(16),
                scopes: &scopes,
                identity: &identity,
                auth_time: now,
                nonce: None,
                refresh_scopes: None,
                sid: None,
                claims: &ClaimsRequest::default(),
                client_only: true,
            },
            now,
        )
        .await
    }
}

/// The scopes of a service token: those asked for, each configured for the client
/// (`invalid_scope` otherwise, RFC 6749 §5.2), or all configured ones when none is asked for
/// (§3.3 lets the server pick a default).
fn service_scopes(client: &Client, asked: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let allowed = &client.settings.client_credentials_scopes;
    let Some(asked) = asked else {
        return Ok(allowed.clone());
    };
    scopes::within(asked, allowed).map_err(|s| {
        OAuthError::new(
            ErrorCode::InvalidScope,
            format!("scope {s:?} is not configured for this client"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::client::ClientSettings;
    use crate::provider::testing::{app_basic as basic, app_client, harness, params};
    use crate::provider::{GrantType, Lifetimes};

    fn service(grants: Option<Vec<GrantType>>) -> Client {
        let mut client = app_client(ClientSettings::default());
        client.settings.grant_types = grants;
        client.settings.client_credentials_scopes = vec!["read".into(), "write".into()];
        client
    }

    #[tokio::test]
    async fn client_credentials_is_refused_unless_enabled_rfc6749_5_2() {
        let h = harness(vec![service(None)], Lifetimes::default());
        let err = h
            .provider
            .token(&params(&[("grant_type", "client_credentials")]), &basic())
            .await
            .expect_err("not enabled");
        assert_eq!(err.error.code, ErrorCode::UnauthorizedClient);
    }

    #[tokio::test]
    async fn client_credentials_gives_only_configured_scopes_and_no_refresh_or_id_token_rfc6749_4_4_3(
    ) {
        let h = harness(
            vec![service(Some(vec![GrantType::ClientCredentials]))],
            Lifetimes::default(),
        );
        let all = h
            .provider
            .token(&params(&[("grant_type", "client_credentials")]), &basic())
            .await
            .expect("issued");
        assert_eq!(all.scope, "read write");
        assert!(all.refresh_token.is_none() && all.id_token.is_none());
        let one = h
            .provider
            .token(
                &params(&[("grant_type", "client_credentials"), ("scope", "read")]),
                &basic(),
            )
            .await
            .expect("issued");
        assert_eq!(one.scope, "read");
        for scope in ["openid", "read admin", "offline_access"] {
            let err = h
                .provider
                .token(
                    &params(&[("grant_type", "client_credentials"), ("scope", scope)]),
                    &basic(),
                )
                .await
                .expect_err(scope);
            assert_eq!(err.error.code, ErrorCode::InvalidScope, "{scope}");
        }
        // The token speaks for the client and opens no userinfo.
        let record = h
            .provider
            .find_live_access_token(&one.access_token)
            .await
            .expect("live");
        assert_eq!(record.identity.user_id, "app");
        assert!(h.provider.userinfo(&one.access_token).await.is_err());
    }

    #[test]
    fn a_public_client_never_uses_client_credentials_rfc6749_4_4() {
        let mut client = service(Some(vec![GrantType::ClientCredentials]));
        client.secret = None;
        assert!(client.is_public());
        assert!(!client.allows_grant(GrantType::ClientCredentials));
    }
}
