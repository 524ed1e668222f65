//! The userinfo endpoint's logic (OIDC Core §5.3).

use super::claims::{user_claims, UserClaims};
use super::error::OAuthError;
use super::Provider;

impl Provider {
    /// The claims for a bearer access token, by its granted scopes and `claims` request.
    pub async fn userinfo(&self, access_token: &str) -> Result<UserClaims, OAuthError> {
        let record = self.find_live_access_token(access_token).await?;
        if record.client_only {
            // OIDC Core §5.3: userinfo returns claims about a person; this token has none.
            return Err(OAuthError::new(
                super::ErrorCode::InvalidToken,
                "this access token was issued to a client, not for a person",
            ));
        }
        let mut claims = user_claims(&record.identity, &record.scopes);
        // OIDC Core §5.5: claims the `claims` parameter asked for at userinfo.
        claims.add_requested(&record.identity, &record.userinfo_claims);
        Ok(claims)
    }
}
