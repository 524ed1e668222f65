//! The userinfo endpoint's logic (OIDC Core §5.3).

use std::sync::Arc;

use super::claims::{user_claims, UserClaims};
use super::error::OAuthError;
use super::Provider;
use crate::storage::AccessToken;

/// The record of a live access token that speaks for a person: what `/userinfo` answers from.
pub struct Userinfo(Arc<AccessToken>);

impl Userinfo {
    /// The claims of the token's granted scopes and of its `claims` request, borrowed from the
    /// record for the one serialisation of the answer.
    pub fn claims(&self) -> UserClaims<'_> {
        let record = &*self.0;
        let mut claims = user_claims(&record.identity, &record.scopes);
        // OIDC Core §5.5: claims the `claims` parameter asked for at userinfo.
        claims.add_requested(&record.identity, &record.userinfo_claims);
        claims
    }
}

impl Provider {
    /// The userinfo answer for a bearer access token ([`Userinfo::claims`]).
    pub async fn userinfo(&self, access_token: &str) -> Result<Userinfo, OAuthError> {
        let record = self.find_live_access_token(access_token).await?;
        if record.client_only {
            // OIDC Core §5.3: userinfo returns claims about a person; this token has none.
            return Err(OAuthError::new(
                super::ErrorCode::InvalidToken,
                "this access token was issued to a client, not for a person",
            ));
        }
        Ok(Userinfo(record))
    }
}
