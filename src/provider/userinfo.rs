//! The userinfo endpoint's logic (OIDC Core §5.3).

use serde_json::{Map, Value};

use super::claims::{requested_claims, user_claims};
use super::error::OAuthError;
use super::Provider;

impl Provider {
    /// The claims for a bearer access token, by its granted scopes and `claims` request.
    pub async fn userinfo(&self, access_token: &str) -> Result<Map<String, Value>, OAuthError> {
        let record = self.find_live_access_token(access_token).await?;
        let mut claims = user_claims(&record.identity, &record.scopes);
        // OIDC Core §5.5: claims the `claims` parameter asked for at userinfo.
        claims.extend(requested_claims(&record.identity, &record.userinfo_claims));
        Ok(claims)
    }
}
