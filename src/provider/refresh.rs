//! The `refresh_token` grant (RFC 6749 §6, OIDC Core §12): rotation on every use, reuse
//! detection that revokes the grant (RFC 9700 §4.14.2), scope narrowing, and a re-check of the
//! person with the connector.

use super::claims::ClaimsRequest;
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::token::{Issue, TokenResponse};
use super::{scopes, Client, Provider};
use crate::connector::ConnectorError;
use crate::random;
use crate::storage::{Rotation, StorageError};

impl Provider {
    /// Exchanges a refresh token for new tokens.
    ///
    /// Order matters: everything that can be checked without spending the token is checked
    /// first (owner, expiry, revocation, scope, the upstream) and the new tokens are signed, so
    /// that a malformed request or an upstream outage does not cost the client its refresh
    /// token; then one atomic store call spends it and stores its successor, so of two racing
    /// uses exactly one succeeds and the other is treated as reuse, and a store failure spends
    /// nothing.
    pub(crate) async fn refresh(
        &self,
        client: &Client,
        token: &str,
        p: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let key = random::hash_secret(token);
        let invalid = || OAuthError::invalid_grant("the refresh token is invalid or expired");
        let record = match self.store.find_refresh_token(&key).await {
            Ok(r) => r,
            Err(StorageError::NotFound) => return Err(invalid()),
            Err(e) => return Err(e.into()),
        };
        // RFC 6749 §6: the token must have been issued to the authenticated client. Another
        // client's attempt neither spends nor revokes it.
        if record.client_id != client.id {
            return Err(invalid());
        }
        let now = self.now();
        if record.spent {
            return Err(self
                .refresh_token_reused(client, &record.grant_id, now)
                .await?);
        }
        if record.expires_at <= now {
            return Err(invalid());
        }
        if self.store.is_grant_revoked(&record.grant_id).await?
            || self
                .is_signed_out(&record.identity, record.auth_time, &client.id)
                .await?
        {
            return Err(OAuthError::invalid_grant("the grant has been revoked"));
        }
        if !client.allows_offline_access() {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client may no longer use refresh tokens",
            ));
        }
        let scopes = narrowed_scopes(p, &record.scopes)?;

        // The person may have left or been disabled upstream since the login.
        // Only the connector that vouched for the person may speak for them: the same upstream
        // id names another person in another upstream app (another WeCom corp). Records written
        // before the connector was kept came from their client's own connector.
        let connector_id = if record.identity.connector_id.is_empty() {
            &self.connector_id_for_client(&client.id)
        } else {
            record.identity.connector_id.as_str()
        };
        let Some(connector) = self.connector(connector_id) else {
            // The upstream app was removed from the configuration: nobody can vouch any more.
            self.end_grant(&record.grant_id, now).await?;
            tracing::info!(client_id = %client.id, connector = connector_id, "refresh for a removed upstream app; grant ended");
            return Err(OAuthError::invalid_grant(
                "the grant's upstream app is no longer configured; the grant has ended",
            ));
        };
        let identity = match connector.refresh(&record.identity).await {
            // The subject of a grant never changes (OIDC Core §12.2: same `sub`).
            Ok(mut identity) if identity.user_id == record.identity.user_id => {
                identity.connector_id = connector_id.to_string();
                identity
            }
            Ok(_) => {
                self.end_grant(&record.grant_id, now).await?;
                tracing::info!(client_id = %client.id, "refresh answered for another person; grant ended");
                return Err(OAuthError::invalid_grant(
                    "the user may no longer sign in; the grant has ended",
                ));
            }
            Err(refusal @ (ConnectorError::AccessDenied(_) | ConnectorError::NotPermitted(_))) => {
                self.end_grant(&record.grant_id, now).await?;
                tracing::info!(client_id = %client.id, "refresh refused upstream; grant ended");
                // What the upstream said holds for everything the person holds, not only this
                // grant.
                self.sign_out_refused(
                    connector_id,
                    &record.identity.user_id,
                    &refusal,
                    "refresh re-check",
                )
                .await;
                return Err(OAuthError::invalid_grant(
                    "the user may no longer sign in; the grant has ended",
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "upstream check at refresh failed");
                return Err(OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the identity provider could not be reached; retry later",
                ));
            }
        };

        // OIDC Core §12.2: the new id_token keeps iss, sub, aud and the original auth_time. It
        // carries no nonce: the nonce binds an id_token to one authentication request, and a
        // refresh is not one (§12.2 has no nonce rule; §3.1.3.6 ties it to the request).
        let issue = Issue {
            grant_id: &record.grant_id,
            scopes: &scopes,
            identity: &identity,
            auth_time: record.auth_time,
            nonce: None,
            // RFC 6749 §6: the new refresh token has exactly the old one's scope.
            refresh_scopes: Some(&record.scopes),
            // Refresh tokens outlive the session; their id_tokens carry no sid and only the
            // scopes' claims.
            sid: None,
            claims: &ClaimsRequest::default(),
            client_only: false,
        };
        let mut minted = self.mint_tokens(client, &issue, now)?;
        let successor = self.mint_refresh_token(client, &issue, &record.scopes, now);
        // One store call spends the old token and stores the new ones, all or nothing: if the
        // store fails (the database went away, the disk is full) the old token stays unspent
        // and the client, told `temporarily_unavailable`, retries with it. Two separate writes
        // would leave a window where the old token is spent and its successor never stored.
        let rotation = Rotation {
            refresh_key: &successor.key,
            refresh: &successor.record,
            access_key: &minted.access_key,
            access: &minted.access,
        };
        let before = match self.store.rotate_refresh_token(&key, &rotation).await {
            Ok(r) => r,
            // Swept between the two reads: it had expired.
            Err(StorageError::NotFound) => return Err(invalid()),
            Err(e) => return Err(e.into()),
        };
        if before.spent {
            return Err(self
                .refresh_token_reused(client, &record.grant_id, now)
                .await?);
        }
        minted.response.refresh_token = Some(successor.token);
        Ok(minted.response)
    }

    /// A spent refresh token came back: someone holds a copy. RFC 9700 §4.14.2: revoke the whole
    /// grant, so both the attacker's and the legitimate client's tokens stop working.
    async fn refresh_token_reused(
        &self,
        client: &Client,
        grant_id: &str,
        now: i64,
    ) -> Result<OAuthError, OAuthError> {
        self.end_grant(grant_id, now).await?;
        tracing::warn!(client_id = %client.id, "refresh token reused; grant revoked");
        Ok(OAuthError::invalid_grant(
            "the refresh token was already used; the grant has been revoked",
        ))
    }
}

/// The scopes for the new access token: the requested `scope`, which must be a subset of the
/// grant's (RFC 6749 §6: "MUST NOT include any scope not originally granted"), or all of them.
fn narrowed_scopes(p: &Params, granted: &[String]) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = p.get("scope") else {
        return Ok(granted.to_vec());
    };
    let scopes = scopes::within(requested, granted).map_err(|_| {
        OAuthError::new(
            ErrorCode::InvalidScope,
            "the requested scope exceeds the scope originally granted",
        )
    })?;
    if scopes.is_empty() {
        return Ok(granted.to_vec());
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::client::ClientSettings;
    use crate::provider::testing::{app_client, harness, harness_on, Harness, RefreshAnswer};
    use crate::provider::{ClientCredentials, Lifetimes};
    use crate::secret::Secret;
    use crate::storage::outage::Outage;
    use crate::storage::MemoryStore;
    use std::sync::Arc;

    fn creds() -> ClientCredentials {
        ClientCredentials {
            basic: Some(("app".into(), Secret::new("app-secret"))),
            ..ClientCredentials::default()
        }
    }

    /// The provider with the confidential `app` client and default lifetimes, a refresh token
    /// of grant `g1`, and the upstream answering `upstream`.
    async fn seeded(upstream: RefreshAnswer) -> (Harness, String) {
        let h = harness(
            vec![app_client(ClientSettings::default())],
            Lifetimes::default(),
        );
        let token = h.seed_refresh_token("app", "g1").await;
        h.upstream(upstream);
        (h, token)
    }

    async fn use_token(h: &Harness, token: &str) -> Result<TokenResponse, OAuthError> {
        let p = Params::from_pairs([
            ("grant_type".to_string(), "refresh_token".to_string()),
            ("refresh_token".to_string(), token.to_string()),
        ]);
        h.provider.token(&p, &creds()).await.map_err(|e| e.error)
    }

    async fn is_revoked(h: &Harness, grant_id: &str) -> bool {
        h.provider
            .store()
            .is_grant_revoked(grant_id)
            .await
            .expect("store")
    }

    #[tokio::test]
    async fn access_denied_from_the_connector_ends_the_grant() {
        let (h, token) = seeded(RefreshAnswer::Denied).await;
        let err = use_token(&h, &token).await.expect_err("denied");
        assert_eq!(err.code, ErrorCode::InvalidGrant);
        assert!(is_revoked(&h, "g1").await);
    }

    #[tokio::test]
    async fn upstream_outage_at_refresh_does_not_spend_the_token() {
        let (h, token) = seeded(RefreshAnswer::Down).await;
        let err = use_token(&h, &token).await.expect_err("down");
        assert_eq!(err.code, ErrorCode::TemporarilyUnavailable);
        h.upstream(RefreshAnswer::Same);
        let ok = use_token(&h, &token)
            .await
            .expect("usable after the outage");
        assert!(ok.refresh_token.is_some());
    }

    /// Wherever the store goes away during a refresh (before the rotation, or after any number
    /// of writes), the client either gets its new tokens or `temporarily_unavailable` with its
    /// old token still good: never a spent token without a successor (RFC 9700 §4.14.2, RFC 6749
    /// §5.2). A refresh that spent its token in one write and stored the successor in another
    /// fails here at the cut between them.
    #[tokio::test]
    async fn a_store_outage_at_any_point_of_a_refresh_keeps_the_grant() {
        for cut in 0..4 {
            let outage = Arc::new(Outage::new(Arc::new(MemoryStore::new())));
            let h = harness_on(
                vec![app_client(ClientSettings::default())],
                Lifetimes::default(),
                Default::default(),
                outage.clone(),
            );
            let token = h.seed_refresh_token("app", "g1").await;
            outage.cut_after_writes(cut);
            let answer = use_token(&h, &token).await;
            outage.restore();
            let next = match answer {
                Ok(tokens) => tokens.refresh_token.expect("rotated"),
                Err(err) => {
                    assert_eq!(err.code, ErrorCode::TemporarilyUnavailable, "cut {cut}");
                    let retried = use_token(&h, &token)
                        .await
                        .unwrap_or_else(|e| panic!("cut {cut}: the token was lost: {e}"));
                    retried.refresh_token.expect("rotated")
                }
            };
            // The grant lives on: its newest token works, and it was not revoked.
            use_token(&h, &next)
                .await
                .unwrap_or_else(|e| panic!("cut {cut}: the successor fails: {e}"));
            assert!(!is_revoked(&h, "g1").await);
        }
    }

    #[tokio::test]
    async fn expired_refresh_token_is_invalid_grant() {
        let (h, token) = seeded(RefreshAnswer::Same).await;
        h.clock.advance(Lifetimes::default().refresh_token);
        let err = use_token(&h, &token).await.expect_err("expired");
        assert_eq!(err.code, ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn grant_max_lifetime_caps_every_rotated_refresh_token() {
        let lifetimes = Lifetimes {
            grant: Some(3600),
            ..Lifetimes::default()
        };
        let h = harness(vec![app_client(ClientSettings::default())], lifetimes);
        let mut token = h.seed_refresh_token("app", "g1").await;
        // Rotations keep the grant alive only until an hour after the login.
        for _ in 0..3 {
            h.clock.advance(1000);
            token = use_token(&h, &token)
                .await
                .expect("within the grant lifetime")
                .refresh_token
                .expect("rotated");
        }
        h.clock.advance(1000);
        let err = use_token(&h, &token)
            .await
            .expect_err("grant lifetime over");
        assert_eq!(err.code, ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn client_that_lost_offline_access_cannot_refresh() {
        let settings = ClientSettings {
            allow_offline_access: Some(false),
            ..ClientSettings::default()
        };
        let h = harness(vec![app_client(settings)], Lifetimes::default());
        let token = h.seed_refresh_token("app", "g1").await;
        let err = use_token(&h, &token).await.expect_err("not allowed");
        assert_eq!(err.code, ErrorCode::UnauthorizedClient);
    }

    fn granted() -> Vec<String> {
        ["openid", "profile", "offline_access"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn omitted_scope_keeps_the_grant_rfc6749_6() {
        assert_eq!(
            narrowed_scopes(&Params::parse(""), &granted()).expect("ok"),
            granted()
        );
    }

    #[test]
    fn scope_may_be_narrowed_rfc6749_6() {
        assert_eq!(
            narrowed_scopes(&Params::parse("scope=openid"), &granted()).expect("ok"),
            vec!["openid".to_string()]
        );
    }

    #[test]
    fn scope_may_not_be_widened_rfc6749_6() {
        let err = narrowed_scopes(&Params::parse("scope=openid+email"), &granted())
            .expect_err("widening");
        assert_eq!(err.code, ErrorCode::InvalidScope);
    }
}
