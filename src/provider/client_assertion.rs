//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, RFC 7521 §4.2, OIDC Core §9):
//! the client signs a short-lived JWT with its private key; we check it against the JWK Set
//! registered for the client in the configuration.

use std::sync::Arc;

use serde_json::Value;

use super::error::OAuthError;
use super::params::Params;
use super::{Client, Provider};
use crate::random;
use crate::storage::StorageError;
use crate::tokens::verify::decode_unverified_claims;
use crate::tokens::JwksVerifier;

/// The only `client_assertion_type` (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The furthest in the future an assertion's `exp` may lie, in seconds. Assertions are meant to
/// be used at once; a bound also bounds how long each used `jti` must be remembered.
pub const MAX_ASSERTION_LIFETIME: i64 = 600;

/// Tolerated clock difference with clients for `nbf` and `iat`, in seconds.
const CLOCK_SKEW: i64 = 60;

impl Provider {
    /// Verifies the request's client assertion and returns the client it authenticates.
    /// Every failure is `invalid_client` (RFC 7521 §4.2.1), except a missing part of the pair
    /// (`invalid_request`).
    pub(crate) async fn verify_client_assertion(
        &self,
        p: &Params,
        body_client_id: Option<&str>,
    ) -> Result<Arc<Client>, OAuthError> {
        let (assertion, kind) = match (p.get("client_assertion"), p.get("client_assertion_type")) {
            (Some(a), Some(t)) => (a, t),
            _ => {
                return Err(OAuthError::invalid_request(
                    "client_assertion and client_assertion_type must be sent together",
                ))
            }
        };
        if kind != JWT_BEARER {
            return Err(OAuthError::invalid_client(
                "unsupported client_assertion_type (expected jwt-bearer)",
            ));
        }
        let fail = |why: &str| OAuthError::invalid_client(format!("client assertion: {why}"));
        // The unverified `iss` only picks the key set; nothing is trusted before the signature.
        let unverified = decode_unverified_claims(assertion).map_err(|_| fail("malformed JWT"))?;
        let iss = unverified
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("iss is missing"))?;
        if body_client_id.is_some_and(|id| id != iss) {
            return Err(fail("client_id differs from the assertion's iss"));
        }
        let client = self
            .clients
            .get(iss)
            .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?;
        let jwks = client
            .settings
            .jwks
            .as_ref()
            .ok_or_else(|| fail("no keys are registered for this client"))?;
        let verifier = JwksVerifier::from_jwks(jwks).map_err(|e| {
            tracing::error!(client_id = %client.id, error = %e, "registered client JWKS unusable");
            fail("no usable keys are registered for this client")
        })?;
        let (_, claims) = verifier
            .verify(assertion)
            .map_err(|_| fail("signature does not verify"))?;

        // RFC 7523 §3 items 1-2: iss and sub are both the client id.
        if claims.get("iss").and_then(Value::as_str) != Some(client.id.as_str())
            || claims.get("sub").and_then(Value::as_str) != Some(client.id.as_str())
        {
            return Err(fail("iss and sub must both be the client_id"));
        }
        // Item 3 and OIDC Core §9: the audience is our token endpoint. RFC 7523 §3 allows any
        // value that identifies the authorization server, so the issuer and the URLs of the other
        // endpoints that take client authentication (revocation, introspection) are accepted too.
        let ours = [
            self.url("/token"),
            self.url("/revoke"),
            self.url("/introspect"),
        ];
        let audience_ok = |a: &str| a == self.issuer() || ours.iter().any(|u| u == a);
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => audience_ok(a),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(audience_ok),
            _ => false,
        };
        if !aud_ok {
            return Err(fail("aud must be the token endpoint URL or the issuer"));
        }
        // Item 4: exp is required and in the future; we also refuse far-future ones.
        let now = self.now();
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| fail("exp is missing"))?;
        if exp <= now {
            return Err(fail("it has expired"));
        }
        if exp > now + MAX_ASSERTION_LIFETIME {
            return Err(fail("exp is too far in the future"));
        }
        // Item 5: nbf, if present, is not in the future.
        if let Some(nbf) = claims.get("nbf") {
            if nbf.as_i64().is_none_or(|n| n > now + CLOCK_SKEW) {
                return Err(fail("it is not valid yet (nbf)"));
            }
        }
        if let Some(iat) = claims.get("iat") {
            if iat.as_i64().is_none_or(|n| n > now + CLOCK_SKEW) {
                return Err(fail("iat is in the future"));
            }
        }
        // Item 7 and OIDC Core §9 (jti REQUIRED): single use, remembered until exp. Recorded
        // only after the signature checked out, so nobody else can burn a client's jtis.
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|j| !j.is_empty())
            .ok_or_else(|| fail("jti is missing"))?;
        let key = random::hash_secret(&format!("{}\n{jti}", client.id));
        match self.store.create_used_jti(&key, exp).await {
            Ok(()) => Ok(client),
            Err(StorageError::AlreadyExists) => {
                tracing::warn!(client_id = %client.id, "client assertion replayed");
                Err(fail("jti was already used"))
            }
            Err(e) => Err(e.into()),
        }
    }
}
