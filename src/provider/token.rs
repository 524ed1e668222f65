//! The token endpoint's logic (RFC 6749 §4.1.3, OIDC Core §3.1.3): client authentication, the
//! `authorization_code` grant with PKCE, and the one signature each response costs.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::claims::{user_claims, AccessTokenClaims, ClaimsRequest, IdTokenClaims, JwtClaims};
use super::client::{AccessTokenFormat, AuthMethod};
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::{pkce, Client, ClientCredentials, GrantType, Provider};
use crate::connector::Identity;
use crate::random::{self, SecretHash};
use crate::storage::{AccessToken, AuthCode, RefreshToken, StorageError, SubjectMarks};
use crate::tokens::{at_hash, SigningAlg};

/// The scope that asks for a refresh token (OIDC Core §11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// What a token response is issued from: a redeemed code or a refreshed grant.
pub(crate) struct Issue<'a> {
    /// The grant every issued token belongs to.
    pub grant_id: &'a str,
    /// The access token's (and id_token's claims') scopes.
    pub scopes: &'a [String],
    /// Who the tokens speak for.
    pub identity: &'a Identity,
    /// When the person authenticated upstream.
    pub auth_time: i64,
    /// The authorization request's nonce (OIDC Core §3.1.3.6); `None` at refresh.
    pub nonce: Option<&'a str>,
    /// The scopes of a refresh token to issue with the response, if one is due.
    pub refresh_scopes: Option<&'a [String]>,
    /// The provider session of the login (the id_token's `sid`).
    pub sid: Option<&'a str>,
    /// Claims the `claims` parameter asked for (OIDC Core §5.5).
    pub claims: &'a ClaimsRequest,
    /// Issued to the client itself (`client_credentials`): no person, no `auth_time`.
    pub client_only: bool,
}

/// A token response signed and ready ([`Provider::mint_tokens`]), and the access token record
/// that must be stored before it leaves.
pub(crate) struct Minted {
    /// The response, without a refresh token.
    pub response: TokenResponse,
    /// The access token's store key (the token's hash, or its `jti`'s).
    pub access_key: String,
    /// The access token's record.
    pub access: AccessToken,
}

/// A refresh token made but not yet stored ([`Provider::mint_refresh_token`]).
pub(crate) struct NewRefreshToken {
    /// The token, for the response.
    pub token: String,
    /// Its store key (the token's hash).
    pub key: String,
    /// Its record.
    pub record: RefreshToken,
}

/// The JOSE `typ` of JWT access tokens (RFC 9068 §2.1).
pub const JWT_ACCESS_TOKEN_TYP: &str = "at+jwt";

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The opaque access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
    /// The signed id_token; absent at refresh when the narrowed scope drops `openid`
    /// (OIDC Core §12.2: the refresh response "might not contain an id_token").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// A refresh token, when `offline_access` was granted (OIDC Core §11, RFC 6749 §5.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
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

impl TokenError {
    /// `error`, answered to a client that authenticated with `creds`.
    pub fn new(error: OAuthError, creds: &ClientCredentials) -> Self {
        Self {
            error,
            used_basic: creds.used_basic(),
        }
    }
}

impl Provider {
    /// Handles a token request.
    pub async fn token(
        &self,
        p: &Params,
        creds: &ClientCredentials,
    ) -> Result<TokenResponse, TokenError> {
        self.for_client(p, creds, |client| self.grant_tokens(client, p))
            .await
    }

    /// Answers a token-endpoint-style request (`/token`, RFC 8628's `/device_authorization`)
    /// with `answer` once its client is authenticated and no parameter is repeated (RFC 6749
    /// §2.3, §3.2); every error carries whether the client tried HTTP Basic.
    pub(crate) async fn for_client<T, F>(
        &self,
        p: &Params,
        creds: &ClientCredentials,
        answer: impl FnOnce(Arc<Client>) -> F,
    ) -> Result<T, TokenError>
    where
        F: std::future::Future<Output = Result<T, OAuthError>>,
    {
        let answered = async {
            let client = self.authenticate_client(p, creds).await?;
            p.refuse_repeated()?;
            answer(client).await
        };
        answered
            .await
            .map_err(|error| TokenError::new(error, creds))
    }

    /// The grant of a token request by `client`, with the parameter each grant needs.
    async fn grant_tokens(
        &self,
        client: Arc<Client>,
        p: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let Some(grant) = GrantType::parse(p.required("grant_type")?) else {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!(
                    "supported grant types: {}",
                    GrantType::ALL.map(GrantType::as_str).join(", ")
                ),
            ));
        };
        // RFC 6749 §5.2: a grant the client is not registered for. The grants below rely on
        // this check.
        if !client.allows_grant(grant) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!("this client may not use the {} grant", grant.as_str()),
            ));
        }
        match grant {
            // RFC 6749 §4.1.3.
            GrantType::AuthorizationCode => {
                self.exchange_code(&client, p.required("code")?, p).await
            }
            // RFC 6749 §6.
            GrantType::RefreshToken => self.refresh(&client, p.required("refresh_token")?, p).await,
            // RFC 8628 §3.4.
            GrantType::DeviceCode => self.device_token(&client, p.required("device_code")?).await,
            // RFC 6749 §4.4.2.
            GrantType::ClientCredentials => self.client_credentials(&client, p.get("scope")).await,
        }
    }

    /// Authenticates the client (RFC 6749 §2.3.1, OIDC Core §9): `client_secret_basic`,
    /// `client_secret_post`, `private_key_jwt` (RFC 7523 §2.2), or `none` for public clients,
    /// each only if the client is registered for it. Using two methods at once is refused
    /// (RFC 6749 §2.3).
    pub async fn authenticate_client(
        &self,
        p: &Params,
        creds: &ClientCredentials,
    ) -> Result<Arc<Client>, OAuthError> {
        if [
            "client_id",
            "client_secret",
            "client_assertion",
            "client_assertion_type",
        ]
        .iter()
        .any(|n| p.is_repeated(n))
        {
            return Err(OAuthError::invalid_request(
                "client credentials are repeated",
            ));
        }
        let unknown = || OAuthError::invalid_client("client authentication failed");
        let uses_assertion = p.has("client_assertion") || p.has("client_assertion_type");
        let methods = usize::from(creds.basic.is_some())
            + usize::from(creds.body_client_secret.is_some())
            + usize::from(uses_assertion);
        if methods > 1 {
            return Err(OAuthError::invalid_request(
                "use only one client authentication method",
            ));
        }
        let accepts = |client: &Client, method: AuthMethod| -> Result<(), OAuthError> {
            if client.accepts_auth_method(method) {
                Ok(())
            } else {
                Err(OAuthError::invalid_client(format!(
                    "this client must not authenticate with {}",
                    method.as_str()
                )))
            }
        };
        if uses_assertion {
            let client = self
                .verify_client_assertion(p, creds.body_client_id.as_deref())
                .await?;
            accepts(&client, AuthMethod::PrivateKeyJwt)?;
            return Ok(client);
        }
        match (
            &creds.basic,
            &creds.body_client_id,
            &creds.body_client_secret,
        ) {
            (Some((id, secret)), body_id, None) => {
                if body_id.as_deref().is_some_and(|b| b != id) {
                    return Err(OAuthError::invalid_request(
                        "client_id in the body differs from the Basic credentials",
                    ));
                }
                let client = self.clients.get(id).ok_or_else(unknown)?;
                if !client.secret_matches(secret.expose()) {
                    return Err(unknown());
                }
                accepts(&client, AuthMethod::ClientSecretBasic)?;
                Ok(client)
            }
            (None, Some(id), Some(secret)) => {
                let client = self.clients.get(id).ok_or_else(unknown)?;
                if !client.secret_matches(secret.expose()) {
                    return Err(unknown());
                }
                accepts(&client, AuthMethod::ClientSecretPost)?;
                Ok(client)
            }
            (None, Some(id), None) => {
                let client = self.clients.get(id).ok_or_else(unknown)?;
                if !client.accepts_auth_method(AuthMethod::None) {
                    return Err(unknown());
                }
                Ok(client)
            }
            (None, None, _) | (Some(_), _, Some(_)) => Err(OAuthError::invalid_client(
                "client authentication is required",
            )),
        }
    }

    /// Redeems `code` for `client` (RFC 6749 §4.1.3), with the request's `redirect_uri` and PKCE
    /// `code_verifier` (RFC 7636 §4.5).
    async fn exchange_code(
        &self,
        client: &Client,
        code: &str,
        p: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let redirect_uri = p.required("redirect_uri")?;
        let now = self.now();
        // Redeeming first makes the code single use even when the rest of the request is
        // wrong: a code that was presented once is spent.
        let (record, marks): (AuthCode, SubjectMarks) = match self
            .store
            .redeem_auth_code_marked(&random::hash_secret(code))
            .await
        {
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
            // The horizon covers refresh tokens too, which the grant may have issued.
            self.end_grant(&record.grant_id, now).await?;
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
        // The person was signed out everywhere after this code's login.
        if self
            .is_signed_out_marked(&record.identity, record.auth_time, &client.id, &marks)
            .await?
        {
            return Err(OAuthError::invalid_grant(
                "the user has been signed out since this code was issued",
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
        // OIDC Core §11: a refresh token only for a granted offline_access, and only while the
        // client is still allowed to have one.
        let refresh_scopes = (record.scopes.iter().any(|s| s == OFFLINE_ACCESS)
            && client.allows_offline_access())
        .then_some(record.scopes.as_slice());
        self.issue_tokens(
            client,
            &Issue {
                grant_id: &record.grant_id,
                scopes: &record.scopes,
                identity: &record.identity,
                auth_time: record.auth_time,
                nonce: record.nonce.as_deref(),
                refresh_scopes,
                sid: record.sid.as_deref(),
                claims: &record.claims,
                client_only: false,
            },
            now,
        )
        .await
    }

    /// Revokes grant `grant_id` at `now`, remembered until every token the grant may have
    /// issued so far has expired, plus a minute for a refresh racing the revocation.
    pub(crate) async fn end_grant(&self, grant_id: &str, now: i64) -> crate::storage::Result<()> {
        let l = &self.lifetimes();
        let horizon = now
            + l.access_token
                .max(l.code)
                .max(l.refresh_token)
                .max(l.id_token)
            + 60;
        self.store.revoke_grant(grant_id, horizon).await
    }

    /// Signs and stores the tokens of one response.
    pub(crate) async fn issue_tokens(
        &self,
        client: &Client,
        grant: &Issue<'_>,
        now: i64,
    ) -> Result<TokenResponse, OAuthError> {
        let mut minted = self.mint_tokens(client, grant, now)?;
        self.store
            .create_access_token(&minted.access_key, &minted.access)
            .await?;
        if let Some(scopes) = grant.refresh_scopes {
            let refresh = self.mint_refresh_token(client, grant, scopes, now);
            self.store
                .create_refresh_token(&refresh.key, &refresh.record)
                .await?;
            minted.response.refresh_token = Some(refresh.token);
        }
        Ok(minted.response)
    }

    /// The response for `grant` — access token, id_token, signed — without a refresh token, and
    /// the access token's record, which the caller stores before the response may leave.
    /// Everything that can fail short of the store is done here, so that a refresh spends its
    /// token only once nothing is left to fail but the one store write.
    pub(crate) fn mint_tokens(
        &self,
        client: &Client,
        grant: &Issue<'_>,
        now: i64,
    ) -> Result<Minted, OAuthError> {
        let expires_at = now + self.lifetimes().access_token;
        let access = AccessToken {
            client_id: client.id.clone(),
            grant_id: grant.grant_id.to_string(),
            scopes: grant.scopes.to_vec(),
            identity: grant.identity.clone(),
            auth_time: grant.auth_time,
            userinfo_claims: grant.claims.userinfo.clone(),
            client_only: grant.client_only,
            issued_at: now,
            expires_at,
        };
        let (access_token, access_key) = match client.settings.access_token_format {
            AccessTokenFormat::Opaque => {
                let token = random::token(32);
                let key = random::hash_secret(&token);
                (token, key)
            }
            AccessTokenFormat::Jwt => {
                // RFC 9068 §2.2. The record is stored under the hash of the jti so that
                // revocation and userinfo work exactly as for opaque tokens.
                let jti = random::token(32);
                let audience = self.access_token_audience(client);
                let scope = grant.scopes.join(" ");
                let claims = AccessTokenClaims {
                    jwt: JwtClaims {
                        iss: self.issuer(),
                        aud: &audience,
                        iat: now,
                        exp: expires_at,
                    },
                    sub: &grant.identity.user_id,
                    client_id: &client.id,
                    jti: &jti,
                    scope: &scope,
                    // RFC 9068 §2.2.1: auth_time only when a person authenticated.
                    auth_time: (!grant.client_only).then_some(grant.auth_time),
                };
                let token = self
                    .keys()
                    .sign_jwt_typed(&claims, JWT_ACCESS_TOKEN_TYP)
                    .map_err(|e| {
                        tracing::error!(error = %e, "access token signing failed");
                        OAuthError::server_error()
                    })?;
                (token, random::hash_secret(&jti))
            }
        };

        let id_token = if grant.scopes.iter().any(|s| s == "openid") {
            let keys = self.keys();
            let mut user = user_claims(grant.identity, grant.scopes);
            // OIDC Core §5.5: claims asked for one by one, beside the scopes' own.
            user.add_requested(grant.identity, &grant.claims.id_token);
            let alg = self.id_token_alg(client);
            let claims = IdTokenClaims {
                jwt: JwtClaims {
                    iss: self.issuer(),
                    aud: &client.id,
                    iat: now,
                    exp: now + self.lifetimes().id_token,
                },
                auth_time: grant.auth_time,
                nonce: grant.nonce,
                // Back-Channel Logout 1.0 §2.1: the session the login came from.
                sid: grant.sid,
                at_hash: at_hash(&access_token, alg.as_str()),
                user,
            };
            Some(keys.sign_jwt_with(alg, "JWT", &claims).map_err(|e| {
                tracing::error!(error = %e, "id_token signing failed");
                OAuthError::server_error()
            })?)
        } else {
            None
        };
        Ok(Minted {
            response: TokenResponse {
                access_token,
                token_type: "Bearer",
                expires_in: self.lifetimes().access_token,
                id_token,
                scope: grant.scopes.join(" "),
                refresh_token: None,
            },
            access_key,
            access,
        })
    }

    /// The algorithm of `client`'s id_tokens: its `id_token_signed_response_alg`, else the
    /// provider's default. Startup checked that a key exists for every configured one.
    pub fn id_token_alg(&self, client: &Client) -> SigningAlg {
        client
            .settings
            .id_token_signed_response_alg
            .filter(|a| self.keys().has_alg(*a))
            .unwrap_or_else(|| {
                self.keys()
                    .signing_algs()
                    .first()
                    .copied()
                    .unwrap_or(SigningAlg::Rs256)
            })
    }

    /// A new refresh token for `grant` with `scopes`, not yet stored. It lives
    /// `refresh_token_ttl`, but never beyond the grant's absolute lifetime from the login.
    pub(crate) fn mint_refresh_token(
        &self,
        client: &Client,
        grant: &Issue<'_>,
        scopes: &[String],
        now: i64,
    ) -> NewRefreshToken {
        let mut expires_at = now + self.lifetimes().refresh_token;
        if let Some(max) = self.lifetimes().grant {
            expires_at = expires_at.min(grant.auth_time + max);
        }
        let token = random::token(32);
        NewRefreshToken {
            key: random::hash_secret(&token),
            token,
            record: RefreshToken {
                client_id: client.id.clone(),
                grant_id: grant.grant_id.to_string(),
                scopes: scopes.to_vec(),
                identity: grant.identity.clone(),
                auth_time: grant.auth_time,
                issued_at: now,
                expires_at,
                spent: false,
            },
        }
    }

    /// The `aud` of `client`'s JWT access tokens.
    pub(crate) fn access_token_audience(&self, client: &Client) -> String {
        client
            .settings
            .access_token_audience
            .clone()
            .unwrap_or_else(|| client.id.clone())
    }

    /// The store key of an access token: the hash of an opaque token, or of a JWT access
    /// token's `jti` once its signature (by one of our published keys) and `typ` are checked.
    /// `None` for a JWT that is not ours.
    pub(crate) fn access_token_key(&self, token: &str) -> Option<SecretHash> {
        if !token.contains('.') {
            return Some(SecretHash::of(token));
        }
        let keys = self.keys();
        let verifier = keys.jwks_verifier()?;
        let (header, claims) = verifier.verify(token).ok()?;
        // RFC 9068 §4: the typ tells access tokens from id_tokens signed with the same keys.
        let typ = header.get("typ").and_then(Value::as_str)?;
        if !typ.eq_ignore_ascii_case(JWT_ACCESS_TOKEN_TYP)
            && !typ.eq_ignore_ascii_case("application/at+jwt")
        {
            return None;
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer()) {
            return None;
        }
        let jti = claims.get("jti").and_then(Value::as_str)?;
        Some(SecretHash::of(jti))
    }

    /// Looks up a live access token: present, not expired, grant not revoked. Shared, not
    /// copied: a store may hand out the record it decoded before (`storage::decode_cache`).
    pub async fn find_live_access_token(
        &self,
        token: &str,
    ) -> Result<Arc<AccessToken>, OAuthError> {
        let invalid = || OAuthError::new(ErrorCode::InvalidToken, "the access token is invalid");
        let key = self.access_token_key(token).ok_or_else(invalid)?;
        let checked = match self.store.find_access_token_checked(&key).await {
            Ok(r) => r,
            Err(StorageError::NotFound) => return Err(invalid()),
            Err(e) => return Err(e.into()),
        };
        let record = checked.token;
        if record.expires_at <= self.now() {
            return Err(OAuthError::new(
                ErrorCode::InvalidToken,
                "the access token has expired",
            ));
        }
        if checked.grant_revoked
            || self
                .is_signed_out_marked(
                    &record.identity,
                    record.auth_time,
                    &record.client_id,
                    &checked.marks,
                )
                .await?
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidToken,
                "the access token has been revoked",
            ));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::client::ClientSettings;
    use crate::provider::params::Params;
    use crate::provider::testing::{app_client, harness, params, Harness};
    use crate::provider::Lifetimes;
    use crate::secret::Secret;

    /// The error code the client authentication of `p` with `creds` is refused with.
    async fn refusal(h: &Harness, p: &Params, creds: &ClientCredentials) -> ErrorCode {
        let result = h.provider.authenticate_client(p, creds).await;
        result.expect_err("the client must be refused").code
    }

    /// A request authenticating with a `client_assertion` of `kind` (RFC 7521 §4.2).
    fn with_assertion(kind: &str, assertion: &str) -> Params {
        params(&[
            ("client_assertion_type", kind),
            ("client_assertion", assertion),
        ])
    }

    #[tokio::test]
    async fn two_authentication_methods_at_once_are_refused_rfc6749_2_3() {
        let h = harness(
            vec![app_client(ClientSettings::default())],
            Lifetimes::default(),
        );
        let creds = ClientCredentials {
            basic: Some(("app".into(), Secret::new("app-secret"))),
            body_client_id: Some("app".into()),
            body_client_secret: Some(Secret::new("app-secret")),
        };
        assert_eq!(
            refusal(&h, &params(&[]), &creds).await,
            ErrorCode::InvalidRequest
        );
        let creds = ClientCredentials {
            basic: Some(("app".into(), Secret::new("app-secret"))),
            ..ClientCredentials::default()
        };
        let p = with_assertion(super::super::client_assertion::JWT_BEARER, "a.b.c");
        assert_eq!(refusal(&h, &p, &creds).await, ErrorCode::InvalidRequest);
    }

    #[tokio::test]
    async fn a_pinned_method_refuses_the_other_secret_method_oidc_core_9() {
        let settings = ClientSettings {
            token_endpoint_auth_method: Some(AuthMethod::ClientSecretPost),
            ..ClientSettings::default()
        };
        let h = harness(vec![app_client(settings)], Lifetimes::default());
        let basic = ClientCredentials {
            basic: Some(("app".into(), Secret::new("app-secret"))),
            ..ClientCredentials::default()
        };
        assert_eq!(
            refusal(&h, &params(&[]), &basic).await,
            ErrorCode::InvalidClient
        );
        let post = ClientCredentials {
            body_client_id: Some("app".into()),
            body_client_secret: Some(Secret::new("app-secret")),
            ..ClientCredentials::default()
        };
        assert!(h
            .provider
            .authenticate_client(&params(&[]), &post)
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn malformed_client_assertions_are_invalid_client_not_panics_rfc7521_4_2_1() {
        let h = harness(
            vec![app_client(ClientSettings::default())],
            Lifetimes::default(),
        );
        for assertion in [
            "",
            "x",
            "a.b.c",
            "..",
            "e30.e30.",
            "eyJhbGciOiJub25lIn0.e30.",
        ] {
            let p = with_assertion(super::super::client_assertion::JWT_BEARER, assertion);
            let code = refusal(&h, &p, &ClientCredentials::default()).await;
            assert!(
                matches!(code, ErrorCode::InvalidClient | ErrorCode::InvalidRequest),
                "{assertion}: {code:?}"
            );
        }
        let p = with_assertion("urn:example:other", "a.b.c");
        assert_eq!(
            refusal(&h, &p, &ClientCredentials::default()).await,
            ErrorCode::InvalidClient
        );
    }
}
