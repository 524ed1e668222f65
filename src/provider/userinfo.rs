//! The userinfo endpoint's logic (OIDC Core §5.3).

use serde_json::{Map, Value};

use super::claims::user_claims;
use super::error::OAuthError;
use super::Provider;

impl Provider {
    /// The claims for a bearer access token, by its granted scopes.
    pub fn userinfo(&self, access_token: &str) -> Result<Map<String, Value>, OAuthError> {
        let record = self.find_live_access_token(access_token)?;
        Ok(user_claims(&record.identity, &record.scopes))
    }
}
