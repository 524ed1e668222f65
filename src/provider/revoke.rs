//! Token revocation (RFC 7009): a refresh token ends its whole grant, an access token ends
//! itself.

use super::error::OAuthError;
use super::params::Params;
use super::{Client, Provider};
use crate::random;
use crate::random::SecretHash;
use crate::storage::{AccessToken, RefreshToken, StorageError};

/// The `token` and `token_type_hint` of a revocation (RFC 7009 §2.1) or introspection (RFC 7662
/// §2.1) request: `invalid_request` when the token is missing or any parameter is repeated
/// (RFC 6749 §3.1: "parameters MUST NOT be included more than once").
pub(super) fn token_and_hint(p: &Params) -> Result<(&str, Option<&str>), OAuthError> {
    p.refuse_repeated()?;
    Ok((p.required("token")?, p.get("token_type_hint")))
}

impl Provider {
    /// Revokes `token` for the authenticated `client` (RFC 7009 §2.1).
    ///
    /// `token_type_hint` only decides which kind is looked up first: a wrong or unknown hint
    /// still finds the token (§2.1 "MUST extend its search across all of its supported token
    /// types"). Unknown, expired or already revoked tokens succeed (§2.2: "invalid tokens do not
    /// cause an error response"). A token issued to another client also answers success but
    /// is left alone: to the caller it is not a token it holds, so by §2.2 it is an invalid
    /// token, and answering the same as for an unknown token tells the caller nothing about
    /// other clients' tokens (§2.1 would also allow refusing it with an error; we prefer not to
    /// confirm that the token exists).
    pub async fn revoke(&self, client: &Client, p: &Params) -> Result<(), OAuthError> {
        let (token, hint) = token_and_hint(p)?;
        let access_first = hint == Some("access_token");
        if access_first {
            if self.revoke_access_token(client, token).await? {
                return Ok(());
            }
            self.revoke_refresh_token(client, token).await?;
        } else {
            if self.revoke_refresh_token(client, token).await? {
                return Ok(());
            }
            self.revoke_access_token(client, token).await?;
        }
        Ok(())
    }

    /// The stored record of a presented refresh token, or `None` when we do not know it.
    pub(super) async fn stored_refresh_token(
        &self,
        token: &str,
    ) -> Result<Option<RefreshToken>, OAuthError> {
        match self
            .store
            .find_refresh_token(&random::hash_secret(token))
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(StorageError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The store key and record of a presented access token, or `None` when we do not know it.
    pub(super) async fn stored_access_token(
        &self,
        token: &str,
    ) -> Result<Option<(SecretHash, AccessToken)>, OAuthError> {
        let Some(key) = self.access_token_key(token) else {
            return Ok(None);
        };
        match self.store.find_access_token(&key).await {
            Ok(r) => Ok(Some((key, r))),
            Err(StorageError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `token` is a refresh token we know; revokes its grant if it is `client`'s.
    async fn revoke_refresh_token(&self, client: &Client, token: &str) -> Result<bool, OAuthError> {
        let Some(record) = self.stored_refresh_token(token).await? else {
            return Ok(false);
        };
        if record.client_id == client.id {
            // §2.1: revoking a refresh token SHOULD also revoke the access tokens of the same
            // grant; revoking the grant does both.
            self.end_grant(&record.grant_id, self.now()).await?;
            tracing::info!(client_id = %client.id, "refresh token revoked; grant ended");
        } else {
            tracing::warn!(client_id = %client.id, "revocation of another client's refresh token ignored");
        }
        Ok(true)
    }

    /// Whether `token` is an access token we know; deletes it if it is `client`'s.
    async fn revoke_access_token(&self, client: &Client, token: &str) -> Result<bool, OAuthError> {
        let Some((key, record)) = self.stored_access_token(token).await? else {
            return Ok(false);
        };
        if record.client_id == client.id {
            self.store.delete_access_token(&key).await?;
            tracing::info!(client_id = %client.id, "access token revoked");
        } else {
            tracing::warn!(client_id = %client.id, "revocation of another client's access token ignored");
        }
        Ok(true)
    }
}
