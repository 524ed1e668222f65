//! The token endpoint's logic (RFC 6749 §4.1.3, OIDC Core §3.1.3): client authentication, the
//! `authorization_code` grant with PKCE, and the one signature each response costs.

use serde::Serialize;
use serde_json::{Map, Value};

use super::claims::{requested_claims, user_claims};
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::{pkce, Client, ClientCredentials, Provider};
use crate::random;
use crate::storage::{AccessToken, AuthCode, StorageError};
use crate::tokens::{at_hash, SigningAlg};

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The opaque access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
    /// The signed id_token.
    pub id_token: String,
    /// Granted scopes, space-separated.
    pub scope: String,
}

/// A failed token request, with whether the client tried HTTP Basic (RFC 6749 §5.2: a 401 with
/// a `WWW-Authenticate` challenge answers failed Basic authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// The OAuth error.
    pub error: OAuthError,
    /// Whether the client used `Authorization: Basic`.
    pub used_basic: bool,
}

impl Provider {
    /// Handles a token request.
    pub async fn token(
        &self,
        p: &Params,
        creds: &ClientCredentials,
    ) -> Result<TokenResponse, TokenError> {
        let used_basic = creds.used_basic();
        let err = |error: OAuthError| TokenError { error, used_basic };
        let client = self.authenticate_client(p, creds).map_err(err)?;
        if let Some(name) = p.first_repeated() {
            return Err(err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            ))));
        }
        match p.get("grant_type") {
            None => Err(err(OAuthError::invalid_request("grant_type is missing"))),
            Some("authorization_code") => self.exchange_code(client, p).map_err(err),
            Some(_) => Err(err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "supported grant types: authorization_code",
            ))),
        }
    }

    /// Authenticates the client (RFC 6749 §2.3.1): `client_secret_basic`, `client_secret_post`,
    /// or `none` for public clients. Using two methods at once is refused (RFC 6749 §2.3).
    pub fn authenticate_client(
        &self,
        p: &Params,
        creds: &ClientCredentials,
    ) -> Result<&Client, OAuthError> {
        if p.is_repeated("client_id") || p.is_repeated("client_secret") {
            return Err(OAuthError::invalid_request(
                "client credentials are repeated",
            ));
        }
        let unknown = || OAuthError::invalid_client("client authentication failed");
        match (
            &creds.basic,
            &creds.body_client_id,
            &creds.body_client_secret,
        ) {
            (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
                "use only one client authentication method",
            )),
            (Some((id, secret)), body_id, None) => {
                if body_id.as_deref().is_some_and(|b| b != id) {
                    return Err(OAuthError::invalid_request(
                        "client_id in the body differs from the Basic credentials",
                    ));
                }
                let client = self.clients.get(id).ok_or_else(unknown)?;
                match &client.secret {
                    Some(expected) if expected.matches(secret.expose()) => Ok(client),
                    _ => Err(unknown()),
                }
            }
            (None, Some(id), secret) => {
                let client = self.clients.get(id).ok_or_else(unknown)?;
                match (&client.secret, secret) {
                    (Some(expected), Some(given)) if expected.matches(given.expose()) => Ok(client),
                    (None, None) => Ok(client),
                    _ => Err(unknown()),
                }
            }
            (None, None, _) => Err(OAuthError::invalid_client(
                "client authentication is required",
            )),
        }
    }

    fn exchange_code(&self, client: &Client, p: &Params) -> Result<TokenResponse, OAuthError> {
        let code = p
            .get("code")
            .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
        let redirect_uri = p
            .get("redirect_uri")
            .ok_or_else(|| OAuthError::invalid_request("redirect_uri is missing"))?;
        let now = self.now();
        // Redeeming first makes the code single use even when the rest of the request is
        // wrong: a code that was presented once is spent.
        let record: AuthCode = match self.store.redeem_auth_code(&random::hash_secret(code)) {
            Ok(r) => r,
            Err(StorageError::NotFound) => {
                return Err(OAuthError::invalid_grant(
                    "the authorization code is invalid or expired",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        if record.redeemed {
            // RFC 6749 §4.1.2 / RFC 9700 §4.2.4: a replayed code revokes what it issued.
            self.store.revoke_grant(
                &record.grant_id,
                now + self.lifetimes.access_token.max(self.lifetimes.code),
            )?;
            tracing::warn!(client_id = %client.id, "authorization code replayed; grant revoked");
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used",
            ));
        }
        if record.expires_at <= now {
            return Err(OAuthError::invalid_grant(
                "the authorization code has expired",
            ));
        }
        if record.client_id != client.id {
            return Err(OAuthError::invalid_grant(
                "the authorization code was issued to another client",
            ));
        }
        if record.redirect_uri != redirect_uri {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        match (&record.code_challenge, p.get("code_verifier")) {
            (Some(challenge), Some(verifier)) => {
                if !pkce::verify_s256(verifier, challenge) {
                    return Err(OAuthError::invalid_grant("PKCE verification failed"));
                }
            }
            (Some(_), None) => {
                return Err(OAuthError::invalid_grant("code_verifier is missing"));
            }
            // RFC 9700 §2.1.1: a verifier without a challenge is a PKCE downgrade attempt.
            (None, Some(_)) => {
                return Err(OAuthError::invalid_grant(
                    "code_verifier sent but the authorization request had no code_challenge",
                ));
            }
            (None, None) => {}
        }
        self.issue_tokens(client, &record, now)
    }

    fn issue_tokens(
        &self,
        client: &Client,
        grant: &AuthCode,
        now: i64,
    ) -> Result<TokenResponse, OAuthError> {
        let access_token = random::token(32);
        self.store.create_access_token(
            &random::hash_secret(&access_token),
            &AccessToken {
                client_id: client.id.clone(),
                grant_id: grant.grant_id.clone(),
                scopes: grant.scopes.clone(),
                identity: grant.identity.clone(),
                auth_time: grant.auth_time,
                userinfo_claims: grant.claims.userinfo.clone(),
                issued_at: now,
                expires_at: now + self.lifetimes.access_token,
            },
        )?;

        let keys = self.keys();
        let mut claims: Map<String, Value> = user_claims(&grant.identity, &grant.scopes);
        // OIDC Core §5.5: claims asked for one by one, beside the scopes' own.
        claims.extend(requested_claims(&grant.identity, &grant.claims.id_token));
        claims.insert("iss".into(), self.issuer().into());
        claims.insert("aud".into(), client.id.clone().into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + self.lifetimes.id_token).into());
        claims.insert("auth_time".into(), grant.auth_time.into());
        if let Some(nonce) = &grant.nonce {
            claims.insert("nonce".into(), nonce.clone().into());
        }
        // Back-Channel Logout 1.0 §2.1 / Front-Channel §3: the session the login came from.
        if let Some(sid) = &grant.sid {
            claims.insert("sid".into(), sid.clone().into());
        }
        let alg = self.id_token_alg(client);
        claims.insert(
            "at_hash".into(),
            at_hash(&access_token, alg.as_str()).into(),
        );
        let id_token = keys.sign_jwt_with(alg, "JWT", &claims).map_err(|e| {
            tracing::error!(error = %e, "id_token signing failed");
            OAuthError::server_error()
        })?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.lifetimes.access_token,
            id_token,
            scope: grant.scopes.join(" "),
        })
    }

    /// The algorithm of `client`'s id_tokens: its `id_token_signed_response_alg`, else the
    /// provider's default. Startup checked that a key exists for every configured one.
    pub fn id_token_alg(&self, client: &Client) -> SigningAlg {
        client
            .settings
            .id_token_signed_response_alg
            .filter(|a| self.keys.has_alg(*a))
            .unwrap_or_else(|| {
                self.keys
                    .signing_algs()
                    .first()
                    .copied()
                    .unwrap_or(SigningAlg::Rs256)
            })
    }

    /// Looks up a live access token: present, not expired, grant not revoked.
    pub fn find_live_access_token(&self, token: &str) -> Result<AccessToken, OAuthError> {
        let invalid = || OAuthError::new(ErrorCode::InvalidToken, "the access token is invalid");
        let record = match self.store.find_access_token(&random::hash_secret(token)) {
            Ok(r) => r,
            Err(StorageError::NotFound) => return Err(invalid()),
            Err(e) => return Err(e.into()),
        };
        if record.expires_at <= self.now() {
            return Err(OAuthError::new(
                ErrorCode::InvalidToken,
                "the access token has expired",
            ));
        }
        if self.store.is_grant_revoked(&record.grant_id)? {
            return Err(OAuthError::new(
                ErrorCode::InvalidToken,
                "the access token has been revoked",
            ));
        }
        Ok(record)
    }
}
