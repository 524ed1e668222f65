//! Provider sessions (single sign-on across clients) and the decisions that depend on them:
//! `prompt`, `max_age` and `id_token_hint` (OIDC Core §3.1.2.1, §3.1.2.3), and verification of
//! id_tokens we issued when a client hands one back (`id_token_hint` at `/authorize` and at the
//! end-session endpoint).
//!
//! A session starts after every successful upstream login. Its secret is a random cookie value;
//! the store keeps only its hash, so a copy of the database logs nobody in. While a session is
//! live, another client's `/authorize` gets a code at once, without a round trip to WeCom.
//!
//! Choices where the specification leaves room:
//! - `prompt=consent` is satisfied without a page: clients are registered by the operator, who
//!   consents on the organisation's behalf, and we never ask the person.
//! - `prompt=select_account` sends the person to WeCom again, where the account is chosen.
//! - A session older than `[session] recheck_after` (default 15 min) re-reads its person
//!   upstream each time it serves a client; a person the upstream refuses is signed out
//!   everywhere (`offboarding`). Upstream events (a WeCom callback) do it within seconds.

use serde_json::{Map, Value};

use super::error::{ErrorCode, OAuthError};
pub use super::request::Prompt;
use super::request::{CodeGrant, ValidAuthorizeRequest};
use super::response::{AuthorizationResponse, ErrorRedirect};
use super::Provider;
use crate::connector::{ConnectorError, Identity};

/// What another upstream app of the session's realm says of the session's person.
enum Recheck {
    /// The person may use it; their identity as that app sees it.
    Confirmed(Box<Identity>),
    /// Its access rules leave the person out.
    Refused,
    /// It belongs to another realm: the session says nothing about its people.
    OtherRealm,
    /// It could not be asked.
    Unavailable,
}
use crate::random;
use crate::storage::{NewLogin, Session, StorageError};

/// Session lifetimes (`[session]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// Seconds a session lives after the upstream login, however much it is used.
    pub ttl: i64,
    /// Seconds without use after which a session ends; `None`: only `ttl` applies.
    pub idle_timeout: Option<i64>,
    /// Seconds after the upstream login past which the session re-reads its person upstream
    /// before it serves a client (a member removed without a callback reaching us is signed
    /// out then).
    pub recheck_after: i64,
}

/// Default `[session] recheck_after`: 15 minutes.
pub const DEFAULT_RECHECK_AFTER: i64 = 15 * 60;

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            ttl: 8 * 3600,
            idle_timeout: None,
            recheck_after: DEFAULT_RECHECK_AFTER,
        }
    }
}

/// What [`Provider::start_login_session`] started.
pub(crate) struct StartedSession {
    /// The new session cookie's value.
    pub(crate) cookie: String,
    /// The browser's previous session when it was another person's (its clients must be told
    /// of its end).
    pub(crate) replaced: Option<Session>,
    /// The code issued from the session, when a grant was given.
    pub(crate) code: Option<String>,
}

/// The facts we use from an id_token we issued and a client handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// `sub`.
    pub sub: String,
    /// `aud`, as a list.
    pub aud: Vec<String>,
    /// `sid`, if the token carried one.
    pub sid: Option<String>,
}

/// What `/authorize` does next once the request is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeNext {
    /// Answer the client now with a code from the live session (no upstream round trip).
    Respond(AuthorizationResponse),
    /// Send the browser to the upstream login.
    Login,
}

impl Provider {
    /// Session lifetimes.
    pub fn session_settings(&self) -> SessionSettings {
        **self.session.load()
    }

    /// The live session whose cookie value is `cookie`, with its store key: present, within
    /// its lifetime and not idle for longer than the idle timeout.
    pub async fn live_session(&self, cookie: &str) -> Option<(String, Session)> {
        let key = random::hash_secret(cookie);
        let session = match self.store.find_session(&key).await {
            Ok(s) => s,
            Err(StorageError::NotFound) => return None,
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed; treating as logged out");
                return None;
            }
        };
        let now = self.now();
        let idle = self
            .session_settings()
            .idle_timeout
            .is_some_and(|t| session.last_seen.saturating_add(t) <= now);
        if session.expires_at <= now || idle {
            return None;
        }
        // Taken out of the store by a sign-out everywhere; the mark also covers a session a
        // login racing with the sign-out created after it.
        match self
            .is_session_signed_out(
                &session.connector_id,
                &session.identity.user_id,
                session.auth_time,
            )
            .await
        {
            Ok(false) => Some((key, session)),
            Ok(true) => None,
            Err(e) => {
                tracing::error!(error = %e, "sign-out mark lookup failed; treating as logged out");
                None
            }
        }
    }

    /// Starts a session for `identity` after an upstream login and returns the cookie value,
    /// the session, and the session it replaced when that was another person's (whose clients
    /// must be told of its end). When the browser already had a session for the same person, its
    /// clients carry over so a later logout still reaches them; the old record is removed either
    /// way.
    #[cfg(test)]
    pub(crate) async fn start_session(
        &self,
        identity: &Identity,
        connector_id: &str,
        previous_cookie: Option<&str>,
    ) -> Result<(String, Session, Option<Session>), OAuthError> {
        let started = self
            .start_login_session(identity, connector_id, previous_cookie, "", None)
            .await?;
        let session = self
            .store
            .find_session(&random::hash_secret(&started.cookie))
            .await?;
        Ok((started.cookie, session, started.replaced))
    }

    /// Starts a session for `identity` after an upstream login to `client_id` (recorded in the
    /// session; empty: none), ending the browser's previous session (`previous_cookie`), with
    /// the code of `grant` issued from it: all in one store call
    /// ([`crate::storage::Store::start_login`]), one transaction where the store has them. The
    /// previous session's clients carry over when it was the same person's, so a later logout
    /// still reaches them; when it was another person's, it comes back as `replaced` (its
    /// clients must be told of its end).
    pub(crate) async fn start_login_session(
        &self,
        identity: &Identity,
        connector_id: &str,
        previous_cookie: Option<&str>,
        client_id: &str,
        grant: Option<&CodeGrant<'_>>,
    ) -> Result<StartedSession, OAuthError> {
        let now = self.now();
        let cookie = random::token(32);
        let mut session = Session {
            sid: random::token(16),
            identity: identity.clone(),
            connector_id: connector_id.to_string(),
            auth_time: now,
            last_seen: now,
            expires_at: now.saturating_add(self.session_settings().ttl),
            clients: Vec::new(),
        };
        if !client_id.is_empty() {
            session.touch(client_id, now);
        }
        let code = grant
            .map(|g| self.new_code(g, identity.clone(), now, Some(session.sid.clone())))
            .transpose()?;
        let session_key = random::hash_secret(&cookie);
        let previous_key = previous_cookie.map(random::hash_secret);
        let code_key = code.as_ref().map(|(c, _)| random::hash_secret(c));
        let login = NewLogin {
            previous: previous_key.as_deref(),
            session_key: &session_key,
            session: &session,
            code: code_key.as_deref().zip(code.as_ref().map(|(_, r)| r)),
        };
        // Inside a login callback, its event is written with the login (one commit).
        let event = match client_id {
            "" => None,
            client_id => crate::login_events::success_event(now, client_id, grant.is_none()),
        };
        let previous = match &event {
            Some(event) => self.store.start_login_recorded(&login, event).await?,
            None => self.store.start_login(&login).await?,
        };
        let replaced = previous.filter(|p| !session.is_same_person(p));
        Ok(StartedSession {
            cookie,
            replaced,
            code: code.map(|(c, _)| c),
        })
    }

    /// Decides what a valid authorization request gets, given the browser's session cookie:
    /// a code straight away from a live session, an upstream login, or (with `prompt=none`)
    /// `login_required` (OIDC Core §3.1.2.6).
    pub async fn authorize_with_session(
        &self,
        req: &ValidAuthorizeRequest,
        session_cookie: Option<&str>,
    ) -> Result<AuthorizeNext, ErrorRedirect> {
        let fail = |code: ErrorCode, msg: &str| req.error_redirect(OAuthError::new(code, msg));
        let login_required = |msg: &str| {
            if req.prompt.none {
                Err(fail(ErrorCode::LoginRequired, msg))
            } else {
                Ok(AuthorizeNext::Login)
            }
        };
        // `prompt=login` (never combined with `none`) asks for an upstream login whatever the
        // session: no store read decides anything here (OIDC Core §3.1.2.1).
        if req.prompt.forces_login() {
            return Ok(AuthorizeNext::Login);
        }
        let live = match session_cookie {
            Some(c) => self.live_session(c).await,
            None => None,
        };
        let Some((key, session)) = live else {
            return login_required("the user is not logged in");
        };
        // A session vouches for clients of its own upstream app. A client of another app of the
        // same realm (another WeCom app of the same corp) is served once that app has re-checked
        // the person — its own access rules (visible range) may leave them out. Across realms
        // (another corp) an id names another person: a new login through the client's app.
        let client_connector = self.connector_id_for_client(&req.client_id);
        let identity = if session.connector_id == client_connector {
            if self.now().saturating_sub(session.auth_time) < self.session_settings().recheck_after
            {
                session.identity.clone()
            } else {
                // An old session asks the upstream again before it serves a client: a member
                // who left or was disabled without a callback reaching us ends here.
                match self.recheck_own(&session).await {
                    Recheck::Confirmed(identity) => *identity,
                    Recheck::Refused => {
                        return login_required("the upstream no longer lets the user in; the session has ended")
                    }
                    Recheck::OtherRealm | Recheck::Unavailable => {
                        return Err(fail(
                            ErrorCode::TemporarilyUnavailable,
                            "the identity provider could not be reached to re-check the session; retry later",
                        ))
                    }
                }
            }
        } else {
            match self.recheck_in(&client_connector, &session).await {
                Recheck::Confirmed(identity) => *identity,
                Recheck::OtherRealm | Recheck::Unavailable => {
                    return login_required("the user is not logged in with this client's upstream app")
                }
                Recheck::Refused => {
                    return Err(fail(
                        ErrorCode::AccessDenied,
                        "the account may not use this application (outside its upstream app's access rules)",
                    ))
                }
            }
        };
        // OIDC Core §3.1.2.1: max_age=0 is equivalent to prompt=login, hence `>=`.
        if req
            .max_age
            .is_some_and(|m| self.now().saturating_sub(session.auth_time) >= m)
        {
            return login_required("the last login is older than max_age");
        }
        if let Some(sub) = &req.id_token_hint_sub {
            if !random::constant_time_eq(sub.as_bytes(), session.identity.user_id.as_bytes()) {
                return login_required("the logged-in user is not the one id_token_hint names");
            }
        }
        let session = self
            .store
            .touch_session(&key, &req.client_id, self.now())
            .await
            .map_err(|e| req.error_redirect(e.into()))?;
        let code = self
            .issue_code_for(
                &req.code_grant(),
                identity,
                session.auth_time,
                Some(session.sid.clone()),
            )
            .await
            .map_err(|error| req.error_redirect(error))?;
        tracing::info!(client_id = %req.client_id, "signed in from the provider session");
        Ok(AuthorizeNext::Respond(self.code_response(
            &req.redirect_uri,
            req.response_mode,
            &code,
            req.state.as_deref(),
        )))
    }

    /// Asks the session's own connector about its person, signing them out everywhere the
    /// refusal reaches when it refuses them.
    async fn recheck_own(&self, session: &Session) -> Recheck {
        let Some(connector) = self.connectors.get(&session.connector_id) else {
            return Recheck::Unavailable;
        };
        match connector.refresh(&session.identity).await {
            Ok(mut identity) if identity.user_id == session.identity.user_id => {
                identity.connector_id.clone_from(&session.connector_id);
                Recheck::Confirmed(Box::new(identity))
            }
            Ok(_) => Recheck::Refused,
            Err(refusal @ (ConnectorError::AccessDenied(_) | ConnectorError::NotPermitted(_))) => {
                self.sign_out_refused(
                    &session.connector_id,
                    &session.identity.user_id,
                    &refusal,
                    "session re-check",
                )
                .await;
                Recheck::Refused
            }
            Err(e) => {
                tracing::warn!(error = %e, connector = %session.connector_id, "could not re-check an old session's person");
                Recheck::Unavailable
            }
        }
    }

    /// Asks `connector_id` about the person of `session`, which another connector vouched for.
    async fn recheck_in(&self, connector_id: &str, session: &Session) -> Recheck {
        let (Some(theirs), Some(ours)) = (
            self.connectors.get(connector_id),
            self.connectors.get(&session.connector_id),
        ) else {
            return Recheck::Unavailable;
        };
        if theirs.realm() != ours.realm() {
            return Recheck::OtherRealm;
        }
        match theirs.refresh(&session.identity).await {
            Ok(mut identity) if identity.user_id == session.identity.user_id => {
                identity.connector_id = connector_id.to_string();
                Recheck::Confirmed(Box::new(identity))
            }
            Ok(_) | Err(ConnectorError::AccessDenied(_) | ConnectorError::NotPermitted(_)) => {
                Recheck::Refused
            }
            Err(e) => {
                tracing::warn!(error = %e, connector = connector_id, "could not re-check a session's person with another app; asking for a login");
                Recheck::Unavailable
            }
        }
    }

    /// Verifies that `jwt` is an id_token we issued: signed by one of our published keys, `iss`
    /// is us, `sub` and `aud` present. Expiry is not checked: OIDC Core §3.1.2.1 and RP-Initiated
    /// Logout §2 accept an expired `id_token_hint`.
    pub fn verify_own_id_token(&self, jwt: &str) -> Result<IdTokenHint, OAuthError> {
        let invalid = || {
            OAuthError::invalid_request("id_token_hint is not an id_token issued by this provider")
        };
        let (typ, claims): (Option<String>, Map<String, Value>) = self
            .keys()
            .verify_jwt_with_typ(jwt)
            .map_err(|_| invalid())?;
        // Our id_tokens are typed `JWT`; access tokens (`at+jwt`) and logout tokens
        // (`logout+jwt`) signed with the same keys must not pass as one.
        if typ.as_deref() != Some("JWT") {
            return Err(invalid());
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer()) {
            return Err(invalid());
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(invalid)?
            .to_string();
        let aud = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(invalid)?,
            _ => return Err(invalid()),
        };
        // A logout token is a JWT we signed too; it must not pass as an id_token.
        if claims.contains_key("events") {
            return Err(invalid());
        }
        let sid = claims
            .get("sid")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(IdTokenHint { sub, aud, sid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::testing::{harness_with_sessions, Harness};
    use crate::provider::Lifetimes;
    use crate::tokens::SigningAlg;

    /// A provider with sessions as `settings` say, and its clock.
    fn provider(settings: SessionSettings) -> Harness {
        harness_with_sessions(Vec::new(), Lifetimes::default(), settings)
    }

    fn zhangsan() -> Identity {
        Identity {
            user_id: "zhangsan".into(),
            username: "zhangsan".into(),
            ..Identity::default()
        }
    }

    #[tokio::test]
    async fn session_ends_after_ttl_and_after_idle_timeout_but_use_keeps_it_alive() {
        let h = provider(SessionSettings {
            ttl: 3_600,
            idle_timeout: Some(600),
            ..SessionSettings::default()
        });
        let (p, clock) = (&h.provider, &h.clock);
        let (cookie, _, _) = p
            .start_session(&zhangsan(), "none", None)
            .await
            .expect("start");
        assert!(p.live_session(&cookie).await.is_some());
        assert!(p.live_session("not-a-session").await.is_none());
        // Used every 500 s: the idle timeout never fires, the ttl still does.
        for _ in 0..7 {
            clock.advance(500);
            let (key, _) = p.live_session(&cookie).await.expect("alive while used");
            p.store
                .touch_session(&key, "c", p.now())
                .await
                .expect("touch");
        }
        clock.advance(100);
        assert!(
            p.live_session(&cookie).await.is_none(),
            "ttl reached (3600 s)"
        );

        let (idle, _, _) = p
            .start_session(&zhangsan(), "none", None)
            .await
            .expect("start");
        clock.advance(599);
        assert!(p.live_session(&idle).await.is_some());
        clock.advance(1);
        assert!(p.live_session(&idle).await.is_none(), "idle for 600 s");
    }

    #[tokio::test]
    async fn new_login_of_the_same_person_keeps_the_clients_of_the_old_session() {
        let h = provider(SessionSettings::default());
        let p = &h.provider;
        let (old, _, _) = p
            .start_session(&zhangsan(), "none", None)
            .await
            .expect("start");
        p.store
            .touch_session(&random::hash_secret(&old), "app-a", p.now())
            .await
            .expect("touch");
        let (new, s, replaced) = p
            .start_session(&zhangsan(), "none", Some(&old))
            .await
            .expect("restart");
        assert_eq!(s.clients, vec!["app-a"]);
        assert!(replaced.is_none());
        assert!(
            p.live_session(&old).await.is_none(),
            "the old cookie is dead"
        );
        assert!(p.live_session(&new).await.is_some());
        let lisi = Identity {
            user_id: "lisi".into(),
            ..zhangsan()
        };
        let (_, s, replaced) = p
            .start_session(&lisi, "none", Some(&new))
            .await
            .expect("other");
        assert!(
            s.clients.is_empty(),
            "another person's clients do not carry over"
        );
        assert_eq!(replaced.map(|r| r.clients), Some(vec!["app-a".to_string()]));
    }

    #[test]
    fn own_id_token_verifies_even_when_expired_but_not_from_another_issuer() {
        let h = provider(SessionSettings::default());
        let p = &h.provider;
        let mut claims = Map::new();
        claims.insert("iss".into(), p.issuer().into());
        claims.insert("sub".into(), "zhangsan".into());
        claims.insert("aud".into(), serde_json::json!(["app-a", "app-b"]));
        claims.insert("exp".into(), 1.into());
        let jwt = p.keys().sign_jwt(&claims).expect("sign");
        let hint = p.verify_own_id_token(&jwt).expect("expired hint accepted");
        assert_eq!(hint.sub, "zhangsan");
        assert_eq!(hint.aud, vec!["app-a", "app-b"]);
        let typed = p
            .keys()
            .sign_jwt_with(SigningAlg::Es256, "at+jwt", &claims)
            .expect("sign");
        assert!(
            p.verify_own_id_token(&typed).is_err(),
            "an access token is no id_token"
        );
        claims.insert("iss".into(), "https://other.example".into());
        let jwt = p.keys().sign_jwt(&claims).expect("sign");
        assert!(p.verify_own_id_token(&jwt).is_err());
    }

    #[test]
    fn default_session_lives_eight_hours_without_idle_timeout() {
        let s = SessionSettings::default();
        assert_eq!(s.ttl, 28_800);
        assert_eq!(s.idle_timeout, None);
    }
}
