//! Token introspection (RFC 7662) for confidential clients: is this token active, and what does
//! it say?

use serde::Serialize;

use super::error::OAuthError;
use super::params::Params;
use super::{Client, Provider};

/// An introspection answer (RFC 7662 §2.2): `{"active":false}` alone for a token that is not
/// active or not the caller's, else what the token says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// What an active token says; nothing for one that is not.
    #[serde(flatten)]
    pub token: Option<ActiveToken>,
}

/// What an active token says (RFC 7662 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveToken {
    /// The granted scopes, space-separated.
    pub scope: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The person's username.
    pub username: String,
    /// `Bearer` for access tokens; absent for refresh tokens, since §2.2 defines it by
    /// RFC 6749 §5.1's access token types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Expiry.
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// The subject.
    pub sub: String,
    /// The audience.
    pub aud: String,
    /// The issuer.
    pub iss: String,
    /// When the person logged in upstream.
    pub auth_time: i64,
}

impl Introspection {
    /// `{"active":false}`.
    pub fn inactive() -> Self {
        Self::default()
    }

    /// `"active":true` and what `token` says.
    fn active(token: ActiveToken) -> Self {
        Self {
            active: true,
            token: Some(token),
        }
    }
}

impl Provider {
    /// Introspects `token` for the authenticated `client` (RFC 7662 §2).
    ///
    /// Only confidential clients may introspect (public clients get `invalid_client`, which the
    /// web layer answers with 401, §2.3 ). A client sees only tokens issued to it or, for JWT
    /// access tokens, addressed to it as their audience; any other token is `{"active":false}`
    /// (§2.2 allows this, and it keeps one client from reading another's tokens).
    pub async fn introspect(
        &self,
        client: &Client,
        p: &Params,
    ) -> Result<Introspection, OAuthError> {
        if client.is_public() {
            return Err(OAuthError::invalid_client(
                "introspection is only for confidential clients",
            ));
        }
        let (token, hint) = super::revoke::token_and_hint(p)?;
        let found = if hint == Some("refresh_token") {
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
        Ok(found.unwrap_or_else(Introspection::inactive))
    }

    async fn introspect_access_token(
        &self,
        caller: &Client,
        token: &str,
    ) -> Result<Option<Introspection>, OAuthError> {
        let Some((_, record)) = self.stored_access_token(token).await? else {
            return Ok(None);
        };
        if record.expires_at <= self.now()
            || self.store.is_grant_revoked(&record.grant_id).await?
            || self
                .is_signed_out(&record.identity, record.auth_time, &record.client_id)
                .await?
        {
            return Ok(None);
        }
        let aud = match self.clients.get(&record.client_id) {
            Some(owner) => self.access_token_audience(&owner),
            None => record.client_id.clone(),
        };
        if record.client_id != caller.id && aud != caller.id {
            return Ok(None);
        }
        Ok(Some(Introspection::active(ActiveToken {
            scope: record.scopes.join(" "),
            client_id: record.client_id,
            username: record.identity.username,
            token_type: Some("Bearer"),
            exp: record.expires_at,
            iat: record.issued_at,
            sub: record.identity.user_id,
            aud,
            iss: self.issuer().to_owned(),
            auth_time: record.auth_time,
        })))
    }

    async fn introspect_refresh_token(
        &self,
        caller: &Client,
        token: &str,
    ) -> Result<Option<Introspection>, OAuthError> {
        let Some(record) = self.stored_refresh_token(token).await? else {
            return Ok(None);
        };
        if record.spent
            || record.expires_at <= self.now()
            || record.client_id != caller.id
            || self.store.is_grant_revoked(&record.grant_id).await?
            || self
                .is_signed_out(&record.identity, record.auth_time, &record.client_id)
                .await?
        {
            return Ok(None);
        }
        Ok(Some(Introspection::active(ActiveToken {
            scope: record.scopes.join(" "),
            username: record.identity.username,
            token_type: None,
            exp: record.expires_at,
            iat: record.issued_at,
            sub: record.identity.user_id,
            aud: record.client_id.clone(),
            client_id: record.client_id,
            iss: self.issuer().to_owned(),
            auth_time: record.auth_time,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inactive_answer_says_only_active_false_rfc7662_2_2() {
        assert_eq!(
            serde_json::to_value(Introspection::inactive()).expect("serializes"),
            serde_json::json!({ "active": false })
        );
    }

    #[test]
    fn an_active_answer_says_what_the_token_says_rfc7662_2_2() {
        let answer = Introspection::active(ActiveToken {
            scope: "openid".into(),
            client_id: "app".into(),
            username: "zhangsan".into(),
            token_type: None,
            exp: 2,
            iat: 1,
            sub: "zhangsan".into(),
            aud: "app".into(),
            iss: "https://op.example".into(),
            auth_time: 1,
        });
        assert_eq!(
            serde_json::to_value(answer).expect("serializes"),
            serde_json::json!({
                "active": true, "scope": "openid", "client_id": "app", "username": "zhangsan",
                "exp": 2, "iat": 1, "sub": "zhangsan", "aud": "app", "iss": "https://op.example",
                "auth_time": 1
            })
        );
    }
}
