//! Token introspection (RFC 7662) for confidential clients: is this token active, and what does
//! it say?

use serde_json::{json, Map, Value};

use super::error::OAuthError;
use super::params::Params;
use super::{Client, Provider};
use crate::random;
use crate::storage::StorageError;

impl Provider {
    /// Introspects `token` for the authenticated `client` (RFC 7662 §2).
    ///
    /// Only confidential clients may introspect (public clients get `invalid_client`, which the
    /// web layer answers with 401, §2.3 ). A client sees only tokens issued to it or, for JWT
    /// access tokens, addressed to it as their audience; any other token is `{"active":false}`
    /// (§2.2 allows this, and it keeps one client from reading another's tokens).
    pub async fn introspect(&self, client: &Client, p: &Params) -> Result<Value, OAuthError> {
        if client.is_public() {
            return Err(OAuthError::invalid_client(
                "introspection is only for confidential clients",
            ));
        }
        if let Some(name) = p.first_repeated() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            )));
        }
        let token = p
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        let found = if p.get("token_type_hint") == Some("refresh_token") {
            match self.introspect_refresh_token(client, token).await? {
                Some(v) => Some(v),
                None => self.introspect_access_token(client, token).await?,
            }
        } else {
            match self.introspect_access_token(client, token).await? {
                Some(v) => Some(v),
                None => self.introspect_refresh_token(client, token).await?,
            }
        };
        Ok(found.unwrap_or_else(|| json!({ "active": false })))
    }

    async fn introspect_access_token(
        &self,
        caller: &Client,
        token: &str,
    ) -> Result<Option<Value>, OAuthError> {
        let Some(key) = self.access_token_key(token) else {
            return Ok(None);
        };
        let record = match self.store.find_access_token(&key).await {
            Ok(r) => r,
            Err(StorageError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if record.expires_at <= self.now() || self.store.is_grant_revoked(&record.grant_id).await? {
            return Ok(None);
        }
        let aud = match self.clients.get(&record.client_id) {
            Some(owner) => self.access_token_audience(owner),
            None => record.client_id.clone(),
        };
        if record.client_id != caller.id && aud != caller.id {
            return Ok(None);
        }
        let mut m = Map::new();
        m.insert("active".into(), true.into());
        m.insert("scope".into(), record.scopes.join(" ").into());
        m.insert("client_id".into(), record.client_id.clone().into());
        m.insert("username".into(), record.identity.username.clone().into());
        m.insert("token_type".into(), "Bearer".into());
        m.insert("exp".into(), record.expires_at.into());
        m.insert("iat".into(), record.issued_at.into());
        m.insert("sub".into(), record.identity.user_id.clone().into());
        m.insert("aud".into(), aud.into());
        m.insert("iss".into(), self.issuer().into());
        m.insert("auth_time".into(), record.auth_time.into());
        Ok(Some(Value::Object(m)))
    }

    async fn introspect_refresh_token(
        &self,
        caller: &Client,
        token: &str,
    ) -> Result<Option<Value>, OAuthError> {
        let record = match self
            .store
            .find_refresh_token(&random::hash_secret(token))
            .await
        {
            Ok(r) => r,
            Err(StorageError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if record.spent
            || record.expires_at <= self.now()
            || record.client_id != caller.id
            || self.store.is_grant_revoked(&record.grant_id).await?
        {
            return Ok(None);
        }
        // No token_type: RFC 7662 §2.2 defines it by RFC 6749 §5.1's access token types.
        Ok(Some(json!({
            "active": true,
            "scope": record.scopes.join(" "),
            "client_id": record.client_id,
            "username": record.identity.username,
            "exp": record.expires_at,
            "iat": record.issued_at,
            "sub": record.identity.user_id,
            "aud": record.client_id,
            "iss": self.issuer(),
            "auth_time": record.auth_time,
        })))
    }
}
