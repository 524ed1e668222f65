//! OpenID Provider metadata (Discovery 1.0 §3), built with the openidconnect crate's types and
//! serialized once: every value advertised here is true of this server.

use openidconnect::core::{
    CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthUrl, IssuerUrl, JsonWebKeySetUrl, ProviderMetadata,
    ResponseTypes, Scope, TokenUrl, UserInfoUrl,
};
use serde::{Deserialize, Serialize};

use super::claims::supported_claims;
use super::client::AuthMethod;
use super::scopes::SUPPORTED_SCOPES;
use crate::tokens::verify::VERIFY_ALGS;

/// The client assertion algorithms we verify (`private_key_jwt`).
fn assertion_algs() -> Vec<String> {
    VERIFY_ALGS.iter().map(|a| a.to_string()).collect()
}

/// Metadata defined outside OIDC Discovery itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraMetadata {
    /// RFC 8414 §2: PKCE methods; we accept only S256.
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207 §3: we send `iss` in every authorization response (mix-up defence,
    /// RFC 9700 §4.4).
    pub authorization_response_iss_parameter_supported: bool,
    /// RP-Initiated Logout 1.0 §2.1.
    pub end_session_endpoint: String,
    /// Back-Channel Logout 1.0 §2.1: logout tokens are POSTed to clients that register a
    /// `backchannel_logout_uri`.
    pub backchannel_logout_supported: bool,
    /// Back-Channel Logout 1.0 §2.1: `sid` is in id_tokens and logout tokens.
    pub backchannel_logout_session_supported: bool,
    /// Front-Channel Logout 1.0 §3: not implemented, said explicitly.
    pub frontchannel_logout_supported: bool,
    /// RFC 8414 §2: the RFC 7009 revocation endpoint.
    pub revocation_endpoint: String,
    /// RFC 8414 §2: client authentication methods at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 8414 §2: JWS algorithms for `private_key_jwt` at the revocation endpoint.
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// RFC 8414 §2: the RFC 7662 introspection endpoint.
    pub introspection_endpoint: String,
    /// RFC 8414 §2: client authentication methods at the introspection endpoint (no `none`:
    /// public clients may not introspect).
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 8414 §2: JWS algorithms for `private_key_jwt` at the introspection endpoint.
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// RFC 8628 §4: the device authorization endpoint.
    pub device_authorization_endpoint: String,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

/// Our provider metadata type.
pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    openidconnect::core::CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJweKeyManagementAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

// Keep the Core alias in use so a change in the crate's defaults shows up at compile time.
const _: fn(CoreProviderMetadata) = |_| {};

/// Errors building the metadata (an issuer that is not a valid URL).
#[derive(Debug, thiserror::Error)]
#[error("invalid URL in provider metadata: {0}")]
pub struct DiscoveryError(String);

/// The metadata for `issuer`, its signing algorithms and whether pairwise subjects are issued.
pub fn metadata_full(
    issuer: &str,
    signing_algs: &[&str],
    pairwise: bool,
) -> Result<Metadata, DiscoveryError> {
    let mut subject_types = vec![CoreSubjectIdentifierType::Public];
    if pairwise {
        subject_types.push(CoreSubjectIdentifierType::Pairwise);
    }
    let url = |p: &str| format!("{issuer}{p}");
    let e = |x: url::ParseError| DiscoveryError(x.to_string());
    let algs = signing_algs
        .iter()
        .map(|a| {
            serde_json::from_value::<CoreJwsSigningAlgorithm>(serde_json::Value::String(
                a.to_string(),
            ))
            .map_err(|x| DiscoveryError(x.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let meta = Metadata::new(
        IssuerUrl::new(issuer.to_string()).map_err(e)?,
        AuthUrl::new(url("/authorize")).map_err(e)?,
        JsonWebKeySetUrl::new(url("/jwks")).map_err(e)?,
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        subject_types,
        algs,
        ExtraMetadata {
            code_challenge_methods_supported: vec!["S256".into()],
            authorization_response_iss_parameter_supported: true,
            end_session_endpoint: url("/logout"),
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
            frontchannel_logout_supported: false,
            revocation_endpoint: url("/revoke"),
            revocation_endpoint_auth_methods_supported: AuthMethod::ALL
                .iter()
                .map(|m| m.as_str().to_string())
                .collect(),
            revocation_endpoint_auth_signing_alg_values_supported: assertion_algs(),
            introspection_endpoint: url("/introspect"),
            introspection_endpoint_auth_methods_supported: AuthMethod::ALL
                .iter()
                .filter(|m| **m != AuthMethod::None)
                .map(|m| m.as_str().to_string())
                .collect(),
            introspection_endpoint_auth_signing_alg_values_supported: assertion_algs(),
            device_authorization_endpoint: url("/device_authorization"),
        },
    )
    .set_token_endpoint(Some(TokenUrl::new(url("/token")).map_err(e)?))
    .set_userinfo_endpoint(Some(UserInfoUrl::new(url("/userinfo")).map_err(e)?))
    .set_scopes_supported(Some(
        SUPPORTED_SCOPES
            .iter()
            .map(|s| Scope::new(s.to_string()))
            .collect(),
    ))
    .set_response_modes_supported(Some(vec![
        CoreResponseMode::Query,
        CoreResponseMode::FormPost,
    ]))
    // Each client uses only those of its `grant_types`; discovery lists what the server has.
    .set_grant_types_supported(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
        CoreGrantType::DeviceCode,
        CoreGrantType::ClientCredentials,
    ]))
    .set_token_endpoint_auth_methods_supported(Some(vec![
        CoreClientAuthMethod::ClientSecretBasic,
        CoreClientAuthMethod::ClientSecretPost,
        CoreClientAuthMethod::PrivateKeyJwt,
        CoreClientAuthMethod::None,
    ]))
    .set_token_endpoint_auth_signing_alg_values_supported(Some(
        VERIFY_ALGS
            .iter()
            .map(|a| {
                serde_json::from_value(serde_json::Value::String(a.to_string()))
                    .map_err(|x| DiscoveryError(x.to_string()))
            })
            .collect::<Result<Vec<CoreJwsSigningAlgorithm>, _>>()?,
    ))
    .set_claim_types_supported(Some(vec![CoreClaimType::Normal]))
    .set_claims_supported(Some(
        supported_claims()
            .map(|c| CoreClaimName::new(c.to_string()))
            .collect(),
    ))
    // OIDC Core §5.5, for the claims of REQUESTABLE_CLAIMS (see claims.rs).
    .set_claims_parameter_supported(Some(true))
    // Discovery §3: request_uri_parameter_supported defaults to true, so say false explicitly.
    .set_request_parameter_supported(Some(false))
    .set_request_uri_parameter_supported(Some(false));
    Ok(meta)
}

/// [`metadata_full`] serialized to JSON bytes, once at startup.
pub fn metadata_json_full(
    issuer: &str,
    signing_algs: &[&str],
    pairwise: bool,
) -> Result<bytes::Bytes, DiscoveryError> {
    let meta = metadata_full(issuer, signing_algs, pairwise)?;
    serde_json::to_vec(&meta)
        .map(bytes::Bytes::from)
        .map_err(|x| DiscoveryError(x.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://sso.example.com";

    #[test]
    fn metadata_advertises_exactly_what_we_support() {
        let json: serde_json::Value =
            serde_json::from_slice(&metadata_json_full(ISSUER, &["RS256"], false).unwrap())
                .unwrap();
        assert_eq!(json["issuer"], "https://sso.example.com");
        assert_eq!(
            json["authorization_endpoint"],
            "https://sso.example.com/authorize"
        );
        assert_eq!(json["token_endpoint"], "https://sso.example.com/token");
        assert_eq!(
            json["userinfo_endpoint"],
            "https://sso.example.com/userinfo"
        );
        assert_eq!(json["jwks_uri"], "https://sso.example.com/jwks");
        assert_eq!(
            json["response_types_supported"],
            serde_json::json!(["code"])
        );
        assert_eq!(
            json["response_modes_supported"],
            serde_json::json!(["query", "form_post"])
        );
        assert_eq!(
            json["end_session_endpoint"],
            "https://sso.example.com/logout"
        );
        assert_eq!(json["backchannel_logout_supported"], true);
        assert_eq!(json["backchannel_logout_session_supported"], true);
        assert_eq!(json["frontchannel_logout_supported"], false);
        assert_eq!(
            json["grant_types_supported"],
            serde_json::json!([
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code",
                "client_credentials"
            ])
        );
        // RFC 8628 §4.
        assert_eq!(
            json["device_authorization_endpoint"],
            "https://sso.example.com/device_authorization"
        );
        // Exactly the scopes /authorize understands; Discovery §3: "openid" among them.
        assert_eq!(
            json["scopes_supported"],
            serde_json::json!(SUPPORTED_SCOPES)
        );
        assert!(SUPPORTED_SCOPES.contains(&"openid"));
        assert_eq!(
            json["token_endpoint_auth_methods_supported"],
            serde_json::json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "none"
            ])
        );
        assert_eq!(
            json["token_endpoint_auth_signing_alg_values_supported"],
            serde_json::json!(VERIFY_ALGS)
        );
        assert_eq!(
            json["revocation_endpoint"],
            "https://sso.example.com/revoke"
        );
        assert_eq!(
            json["introspection_endpoint"],
            "https://sso.example.com/introspect"
        );
        assert_eq!(
            json["introspection_endpoint_auth_methods_supported"],
            serde_json::json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt"
            ])
        );
        assert_eq!(
            json["revocation_endpoint_auth_methods_supported"],
            json["token_endpoint_auth_methods_supported"]
        );
        assert_eq!(
            json["subject_types_supported"],
            serde_json::json!(["public"])
        );
        assert_eq!(
            json["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256"])
        );
        assert_eq!(
            json["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(json["request_uri_parameter_supported"], false);
        assert_eq!(json["request_parameter_supported"], false);
        assert_eq!(json["claims_parameter_supported"], true);
        assert_eq!(json["authorization_response_iss_parameter_supported"], true);
        for claim in ["picture", "gender", "phone_number", "address", "groups"] {
            assert!(
                json["claims_supported"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|c| c == claim)),
                "claims_supported lacks {claim}"
            );
        }
        assert!(json.get("registration_endpoint").is_none());
        let pairwise: serde_json::Value =
            serde_json::from_slice(&metadata_json_full(ISSUER, &["RS256"], true).unwrap()).unwrap();
        assert_eq!(
            pairwise["subject_types_supported"],
            serde_json::json!(["public", "pairwise"])
        );
        assert!(json.get("jwks").is_none());
    }

    #[test]
    fn signing_algs_are_exactly_those_with_keys_never_none() {
        let json: serde_json::Value = serde_json::from_slice(
            &metadata_json_full(ISSUER, &["RS256", "ES256", "EdDSA"], false).unwrap(),
        )
        .unwrap();
        assert_eq!(
            json["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256", "ES256", "EdDSA"])
        );
    }
}
