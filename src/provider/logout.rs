//! Logout: the end-session endpoint's logic (OpenID Connect RP-Initiated Logout 1.0) and the
//! logout tokens of Back-Channel Logout 1.0. Delivering those tokens is HTTP, so the web layer
//! does it; this module decides who gets one and signs them.
//!
//! Choice left open by RP-Initiated Logout §2 ("the OP SHOULD ask the End-User whether to log out
//! of the OP as well"): we log out at once, without a confirmation page. A forged logout link can
//! only end a session (no data is disclosed, nothing is granted), and a confirmation step would
//! stand between every relying party and a working single logout. Redirection after logout is
//! only ever to a URI the client registered, by exact match (§3).

use serde::Serialize;
use serde_json::{Map, Value};

use super::claims::JwtClaims;
use super::error::OAuthError;
use super::params::Params;
use super::response::success_redirect;
use super::Provider;
use crate::random;
use crate::storage::{Session, StorageError};

/// Back-Channel Logout 1.0 §2.4: the event that marks a JWT as a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a logout token is valid (Back-Channel Logout 1.0 §2.4 recommends at most two
/// minutes).
pub const LOGOUT_TOKEN_TTL: i64 = 120;

/// One logout token to POST to a client (Back-Channel Logout 1.0 §2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackchannelLogout {
    /// The client.
    pub client_id: String,
    /// Its registered `backchannel_logout_uri`.
    pub uri: String,
    /// The signed logout token (a credential: never logged).
    pub logout_token: String,
}

/// What the end-session endpoint does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutOutcome {
    /// Where to send the browser: the verified `post_logout_redirect_uri` with `state`; `None`
    /// shows our own "you are signed out" page.
    pub redirect: Option<String>,
    /// Logout tokens for the clients the ended session had logged into.
    pub backchannel: Vec<BackchannelLogout>,
    /// `ui_locales` of the request, for the page's language.
    pub ui_locales: Option<String>,
    /// Whether a session was ended (false: the browser had none).
    pub ended_session: bool,
}

impl Provider {
    /// Handles an end-session request (RP-Initiated Logout 1.0 §2–3) from the browser holding
    /// `session_cookie`. Errors are for our error page: a request we cannot trust is never
    /// redirected.
    pub async fn end_session(
        &self,
        p: &Params,
        session_cookie: Option<&str>,
    ) -> Result<LogoutOutcome, OAuthError> {
        p.refuse_repeated()?;
        // §2: the hint must be an id_token we issued; an expired one is fine.
        let hint = match p.get("id_token_hint") {
            Some(h) => Some(self.verify_own_id_token(h)?),
            None => None,
        };
        let client = match (p.get("client_id"), &hint) {
            (Some(id), hint) => {
                let c = self.clients.get(id).ok_or_else(|| {
                    OAuthError::invalid_request("client_id is not a registered client")
                })?;
                // §2: when both are given, the client must be the one the id_token was issued to.
                if hint
                    .as_ref()
                    .is_some_and(|h| !h.aud.iter().any(|a| a == id))
                {
                    return Err(OAuthError::invalid_request(
                        "client_id is not the audience of id_token_hint",
                    ));
                }
                Some(c)
            }
            (None, Some(h)) => h.aud.iter().find_map(|a| self.clients.get(a)),
            (None, None) => None,
        };
        let state = p.get("state");
        let redirect = match p.get("post_logout_redirect_uri") {
            None => None,
            Some(uri) => match client {
                Some(c) if c.has_post_logout_redirect_uri(uri) => {
                    Some(success_redirect(uri, &[("state", state)]))
                }
                Some(c) => {
                    // §3: no redirection to an unregistered URI; the person still logs out.
                    tracing::warn!(client_id = %c.id, "post_logout_redirect_uri is not registered for the client; showing our page");
                    None
                }
                None => {
                    tracing::warn!("post_logout_redirect_uri without client_id or id_token_hint; showing our page");
                    None
                }
            },
        };

        let session = match session_cookie {
            Some(c) => match self.store.take_session(&random::hash_secret(c)).await {
                Ok(s) => Some(s),
                Err(StorageError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        if let (Some(h), Some(s)) = (&hint, &session) {
            if h.sub != s.identity.user_id {
                // The person at this browser asked to log out; they are, whoever the client
                // thought was logged in.
                tracing::info!(
                    "id_token_hint names another user than the session's; session ended anyway"
                );
            }
        }
        let backchannel = match &session {
            Some(s) => self.logout_tokens(s),
            None => Vec::new(),
        };
        Ok(LogoutOutcome {
            redirect,
            backchannel,
            ui_locales: p.get("ui_locales").map(str::to_string),
            ended_session: session.is_some(),
        })
    }

    /// A signed logout token (Back-Channel Logout 1.0 §2.4) for each client of `session` that
    /// registered a `backchannel_logout_uri`. A token that cannot be signed is logged and
    /// skipped: the user's logout must not fail because one client cannot be told.
    pub fn logout_tokens(&self, session: &Session) -> Vec<BackchannelLogout> {
        let now = self.now();
        let mut out = Vec::new();
        for id in &session.clients {
            let Some(client) = self.clients.get(id) else {
                continue;
            };
            let Some(uri) = &client.settings.backchannel_logout_uri else {
                continue;
            };
            let jti = random::token(16);
            let claims = LogoutTokenClaims {
                jwt: JwtClaims {
                    iss: self.issuer(),
                    aud: &client.id,
                    iat: now,
                    exp: now + LOGOUT_TOKEN_TTL,
                },
                jti: &jti,
                sub: &session.identity.user_id,
                sid: &session.sid,
                events: LogoutEvents::default(),
            };
            let alg = self.id_token_alg(&client);
            match self.keys().sign_jwt_with(alg, "logout+jwt", &claims) {
                Ok(logout_token) => out.push(BackchannelLogout {
                    client_id: client.id.clone(),
                    uri: uri.clone(),
                    logout_token,
                }),
                Err(e) => {
                    tracing::error!(client_id = %client.id, error = %e, "could not sign a logout token")
                }
            }
        }
        out
    }
}

/// The claims of a logout token (Back-Channel Logout 1.0 §2.4). It has no `nonce`: §2.4
/// forbids one.
#[derive(Debug, Serialize)]
pub struct LogoutTokenClaims<'a> {
    /// `iss`, `aud` (the client told of the logout), `iat`, `exp`.
    #[serde(flatten)]
    pub jwt: JwtClaims<'a>,
    /// `jti`.
    pub jti: &'a str,
    /// `sub`: the person whose session ended.
    pub sub: &'a str,
    /// `sid`: the session that ended.
    pub sid: &'a str,
    /// `events`: names the logout event.
    pub events: LogoutEvents,
}

/// The `events` claim of a logout token: `{"http://schemas.openid.net/event/backchannel-logout":
/// {}}` ([`BACKCHANNEL_LOGOUT_EVENT`], Back-Channel Logout 1.0 §2.4).
#[derive(Debug, Default, Serialize)]
pub struct LogoutEvents {
    /// The logout event, an empty JSON object.
    #[serde(rename = "http://schemas.openid.net/event/backchannel-logout")]
    pub backchannel_logout: EmptyObject,
}

/// Serializes as `{}`.
#[derive(Debug, Default, Serialize)]
pub struct EmptyObject {}

/// Whether `claims` are shaped like a logout token (used by tests and by anyone checking ours).
pub fn is_logout_token(claims: &Map<String, Value>) -> bool {
    claims
        .get("events")
        .and_then(Value::as_object)
        .is_some_and(|e| e.contains_key(BACKCHANNEL_LOGOUT_EVENT))
        && !claims.contains_key("nonce")
        && (claims.contains_key("sub") || claims.contains_key("sid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_logout_token_claims_have_the_shape_of_bcl_2_4() {
        let claims = LogoutTokenClaims {
            jwt: JwtClaims {
                iss: "https://op.example",
                aud: "app",
                iat: 1,
                exp: 121,
            },
            jti: "j",
            sub: "zhangsan",
            sid: "s",
            events: LogoutEvents::default(),
        };
        let Value::Object(m) = serde_json::to_value(&claims).expect("serializes") else {
            panic!("not an object");
        };
        assert!(is_logout_token(&m));
        assert_eq!(m["events"], json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
        assert_eq!(m.len(), 8);
    }

    #[test]
    fn logout_token_shape_requires_the_event_and_forbids_nonce_bcl_2_4() {
        let mut c = Map::new();
        c.insert("sid".into(), "s".into());
        assert!(!is_logout_token(&c));
        c.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
        assert!(is_logout_token(&c));
        c.insert("nonce".into(), "n".into());
        assert!(!is_logout_token(&c));
    }
}
