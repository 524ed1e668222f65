//! Offboarding: signing one person out everywhere, the one implementation behind the upstream's
//! "this person is gone" events (a WeCom member deleted, disabled or taken out of an app's
//! visible range), the operator's sign-out (admin socket, console) and the re-check of an old
//! session.
//!
//! A sign-out, in this order:
//! 1. marks the person "not valid before now" ([`Store::save_subject_mark`]) for each upstream
//!    app it reaches: every credential from an earlier login — a session, a code not yet
//!    redeemed, an access token (opaque or JWT), a refresh token — is refused by every instance
//!    from then on, including ones issued by a request racing with the sign-out;
//! 2. takes their sessions out of the store (sessions live only there, so no instance keeps
//!    serving one);
//! 3. revokes every grant of their codes, access and refresh tokens;
//! 4. waits for the writes to be durable, records the sign-out in the login event log, and
//!    sends a logout token (Back-Channel Logout 1.0 §2.5) to every client of the ended sessions.
//!
//! The mark is set one second past now: the clock counts whole seconds, and a credential issued
//! in the same second as the sign-out must not survive it. A person signed back in (re-enabled
//! upstream) within that second is asked to log in once more.

use std::sync::Arc;

use super::logout::BackchannelLogout;
use super::Provider;
use crate::connector::ConnectorError;
use crate::identity::Identity;
use crate::storage::{
    subject_mark_key as mark_key, LoginEvent, StorageError, Subject, SubjectMarks,
};

/// How far a sign-out reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every upstream app of the connector's realm (for WeCom: every app of the corp): the
    /// person left, or was disabled.
    Realm,
    /// Only this upstream app: its own access rules (a WeCom app's visible range) leave the
    /// person out, while other apps of the realm may still let them in.
    Connector,
}

/// Who is signed out, why, and at whose request.
#[derive(Debug, Clone)]
pub struct SignOut<'a> {
    /// The connector that names the person.
    pub connector_id: &'a str,
    /// Their `Identity::user_id` (as that connector gives it; not a pairwise `sub`).
    pub user_id: &'a str,
    /// How far it reaches.
    pub reach: Reach,
    /// Why, in words, for the event log.
    pub reason: &'a str,
    /// Who asked (an operator, the upstream's callback, the session re-check).
    pub actor: &'a str,
}

/// What a sign-out ended (the admin API's answer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignOutSummary {
    /// Provider sessions ended.
    pub sessions: usize,
    /// Grants revoked (each with its access and refresh tokens).
    pub grants: usize,
    /// Live refresh tokens among them.
    pub refresh_tokens: usize,
    /// Logout tokens sent to clients' back-channel logout URIs.
    pub logout_notifications: usize,
}

/// Why a sign-out could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SignOutError {
    /// No connector has that id.
    #[error("no upstream app (connector) {0:?} is configured")]
    UnknownConnector(String),
    /// The store failed; part of the sign-out may be done, and repeating it is safe.
    #[error("the store failed: {0}")]
    Store(#[from] StorageError),
}

/// Delivers logout tokens to clients. Delivering is HTTP, which the core does not do: the web
/// layer implements this and the provider hands it the tokens of a sign-out.
#[async_trait::async_trait]
pub trait LogoutNotifier: Send + Sync {
    /// POSTs each token to its client; failures are the implementation's to log.
    async fn deliver(&self, deliveries: Vec<BackchannelLogout>);
}

impl Provider {
    /// Signs the person of `req` out everywhere (module docs) and returns what ended.
    pub async fn sign_out(&self, req: &SignOut<'_>) -> Result<SignOutSummary, SignOutError> {
        let connectors = self.reach_of(req.connector_id, req.reach)?;
        let now = self.now();
        let not_before = now.saturating_add(1);
        let keep_until = now.saturating_add(self.longest_credential_lifetime());
        for c in &connectors {
            self.store
                .save_subject_mark(&mark_key(c, req.user_id), not_before, keep_until)
                .await?;
        }
        let subject = Subject {
            user_id: req.user_id.to_owned(),
            connectors,
        };
        let sessions = self.store.take_sessions_of(&subject).await?;
        let grants = self.store.find_grants_of(&subject, now).await?;
        for grant in &grants.grant_ids {
            self.store.revoke_grant(grant, keep_until).await?;
        }
        let deliveries: Vec<BackchannelLogout> = sessions
            .iter()
            .flat_map(|s| self.logout_tokens(s))
            .collect();
        // The person is told nothing, but the operator and the upstream are: what they were
        // told has ended must stay ended after a crash.
        self.durable().await?;
        let summary = SignOutSummary {
            sessions: sessions.len(),
            grants: grants.grant_ids.len(),
            refresh_tokens: grants.live_refresh_tokens,
            logout_notifications: deliveries.len(),
        };
        self.record_sign_out(req, &summary, now).await;
        tracing::info!(
            connector = req.connector_id,
            actor = req.actor,
            sessions = summary.sessions,
            grants = summary.grants,
            notified = summary.logout_notifications,
            "signed a person out everywhere"
        );
        self.notify(deliveries);
        Ok(summary)
    }

    /// Whether a credential of `identity` from a login at `auth_time` was voided by a sign-out.
    /// `client_id` names the connector of records that do not name their own (older records
    /// came from their client's connector).
    pub(crate) async fn is_signed_out(
        &self,
        identity: &Identity,
        auth_time: i64,
        client_id: &str,
    ) -> Result<bool, StorageError> {
        let connector = if identity.connector_id.is_empty() {
            self.connector_id_for_client(client_id)
        } else {
            identity.connector_id.clone()
        };
        if self
            .is_session_signed_out(&connector, &identity.user_id, auth_time)
            .await?
        {
            return Ok(true);
        }
        match self.pairwise_own_id(identity, &connector) {
            Some(own) => self.is_session_signed_out(&connector, own, auth_time).await,
            None => Ok(false),
        }
    }

    /// [`Self::is_signed_out`] with the marks the store read with the credential
    /// ([`SubjectMarks`]); only a record that names no connector needs reads of its own.
    pub(crate) async fn is_signed_out_marked(
        &self,
        identity: &Identity,
        auth_time: i64,
        client_id: &str,
        marks: &SubjectMarks,
    ) -> Result<bool, StorageError> {
        if identity.connector_id.is_empty() {
            return self.is_signed_out(identity, auth_time, client_id).await;
        }
        let voids = |mark: Option<i64>| mark.is_some_and(|not_before| auth_time < not_before);
        // The upstream id's mark before the connector lookup: it is almost always absent.
        Ok(voids(marks.of_user)
            || (voids(marks.of_upstream)
                && self
                    .pairwise_own_id(identity, &identity.connector_id)
                    .is_some()))
    }

    /// For a client with pairwise subjects `user_id` is the client's `sub`; the person's own id
    /// is kept as `upstream_id`, and its mark counts too.
    fn pairwise_own_id<'a>(&self, identity: &'a Identity, connector: &str) -> Option<&'a str> {
        let pairwise = self
            .connectors
            .get(connector)
            .is_some_and(|c| c.is_pairwise());
        identity
            .upstream_id
            .as_deref()
            .filter(|own| pairwise && *own != identity.user_id)
    }

    /// [`Self::is_signed_out`] for a session (which always names its connector).
    pub(crate) async fn is_session_signed_out(
        &self,
        connector_id: &str,
        user_id: &str,
        auth_time: i64,
    ) -> Result<bool, StorageError> {
        match self
            .store
            .find_subject_mark(&mark_key(connector_id, user_id))
            .await
        {
            Ok(not_before) => Ok(auth_time < not_before),
            Err(StorageError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Signs out the person `connector_id` just refused (`AccessDenied`: they are gone, in the
    /// whole realm; `NotPermitted`: only this app's access rules leave them out). Other errors
    /// say nothing about the person and change nothing. A failure is logged: the caller refuses
    /// the request in hand either way.
    pub(crate) async fn sign_out_refused(
        &self,
        connector_id: &str,
        user_id: &str,
        refusal: &ConnectorError,
        actor: &str,
    ) {
        let (reach, why) = match refusal {
            ConnectorError::AccessDenied(why) => (Reach::Realm, why),
            ConnectorError::NotPermitted(why) => (Reach::Connector, why),
            _ => return,
        };
        let done = self
            .sign_out(&SignOut {
                connector_id,
                user_id,
                reach,
                reason: why,
                actor,
            })
            .await;
        if let Err(e) = done {
            tracing::error!(error = %e, actor, "could not sign out a person the upstream refused");
        }
    }

    /// The connector ids a sign-out through `connector_id` reaches.
    fn reach_of(&self, connector_id: &str, reach: Reach) -> Result<Vec<String>, SignOutError> {
        let connector = self
            .connectors
            .get(connector_id)
            .ok_or_else(|| SignOutError::UnknownConnector(connector_id.to_owned()))?;
        let mut ids: Vec<String> = match reach {
            Reach::Connector => vec![connector_id.to_owned()],
            Reach::Realm => self
                .connectors
                .iter()
                .filter(|(_, c)| c.realm() == connector.realm())
                .map(|(id, _)| id.clone())
                .collect(),
        };
        ids.sort();
        Ok(ids)
    }

    /// The longest any credential from before a sign-out can stay valid without it: the mark
    /// must last that long.
    fn longest_credential_lifetime(&self) -> i64 {
        let l = self.lifetimes();
        [
            l.auth_request,
            l.code,
            l.access_token,
            l.id_token,
            l.refresh_token,
            self.session_settings().ttl,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
        .max(l.grant.unwrap_or(0))
    }

    /// One entry in the login event log: who was signed out, by whom, why, and what ended.
    async fn record_sign_out(&self, req: &SignOut<'_>, summary: &SignOutSummary, now: i64) {
        let event = LoginEvent {
            at: now,
            user_id: Some(req.user_id.to_owned()),
            client_id: None,
            address: None,
            outcome: "signed_out".to_owned(),
            grant: None,
            reason: Some(format!(
                "signed out everywhere by {}: {} ({} sessions, {} grants, {} clients notified)",
                req.actor,
                req.reason,
                summary.sessions,
                summary.grants,
                summary.logout_notifications
            )),
            request_id: None,
            expires_at: now.saturating_add(self.event_retention),
        };
        // The sign-out itself is done and durable; a lost log line must not undo or fail it.
        if let Err(e) = self.store.create_login_event(&event).await {
            tracing::error!(error = %e, "could not record a sign-out in the login event log");
        }
    }

    /// Hands the logout tokens to the notifier in the background: the upstream's callback must
    /// be answered within seconds, whatever the clients' endpoints do.
    fn notify(&self, deliveries: Vec<BackchannelLogout>) {
        if deliveries.is_empty() {
            return;
        }
        match &self.notifier {
            Some(n) => {
                let n: Arc<dyn LogoutNotifier> = n.clone();
                tokio::spawn(async move { n.deliver(deliveries).await });
            }
            None => tracing::warn!(
                count = deliveries.len(),
                "no back-channel logout sender configured; clients not told of the sign-out"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::client::ClientSettings;
    use crate::provider::testing::{app_client, harness, StubConnector, T0};
    use crate::provider::Lifetimes;

    fn person(connector: &str) -> Identity {
        Identity {
            user_id: "zhangsan".into(),
            connector_id: connector.into(),
            ..Identity::default()
        }
    }

    fn sign_out<'a>(connector_id: &'a str, reach: Reach) -> SignOut<'a> {
        SignOut {
            connector_id,
            user_id: "zhangsan",
            reach,
            reason: "left",
            actor: "test",
        }
    }

    #[tokio::test]
    async fn a_sign_out_voids_credentials_from_logins_up_to_its_second_and_not_later_ones() {
        let h = harness(
            vec![app_client(ClientSettings::default())],
            Lifetimes::default(),
        );
        let p = &h.provider;
        h.seed_refresh_token("app", "grant-1").await;
        assert!(!p.is_signed_out(&person(""), T0, "app").await.unwrap());
        let summary = p.sign_out(&sign_out("stub", Reach::Realm)).await.unwrap();
        assert_eq!(
            summary,
            SignOutSummary {
                sessions: 0,
                grants: 1,
                refresh_tokens: 1,
                logout_notifications: 0
            }
        );
        assert!(p.store().is_grant_revoked("grant-1").await.unwrap());
        // Older records name no connector: their client's connector ("stub") is theirs.
        assert!(p.is_signed_out(&person(""), T0, "app").await.unwrap());
        assert!(p.is_signed_out(&person("stub"), T0, "app").await.unwrap());
        assert!(!p
            .is_signed_out(&person("stub"), T0 + 1, "app")
            .await
            .unwrap());
        let lisi = Identity {
            user_id: "lisi".into(),
            ..person("stub")
        };
        assert!(!p.is_signed_out(&lisi, T0, "app").await.unwrap());
        let events = p.store().list_login_events(5).await.unwrap();
        assert_eq!(events[0].outcome, "signed_out");
        assert_eq!(events[0].user_id.as_deref(), Some("zhangsan"));
        assert!(events[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("by test: left"));
    }

    #[tokio::test]
    async fn a_realm_sign_out_reaches_every_app_of_the_realm_and_an_app_one_only_that_app() {
        let mut h = harness(Vec::new(), Lifetimes::default());
        h.provider = h
            .provider
            .with_connector(Arc::new(StubConnector::named("a", "corp-1")))
            .with_connector(Arc::new(StubConnector::named("b", "corp-1")))
            .with_connector(Arc::new(StubConnector::named("c", "corp-2")));
        let p = &h.provider;
        p.sign_out(&sign_out("a", Reach::Connector)).await.unwrap();
        let voided =
            |c: &'static str| async move { p.is_signed_out(&person(c), T0, "app").await.unwrap() };
        assert!(voided("a").await);
        assert!(
            !voided("b").await,
            "another app of the corp may still let them in"
        );
        h.clock.advance(10);
        p.sign_out(&sign_out("b", Reach::Realm)).await.unwrap();
        assert!(voided("a").await && voided("b").await);
        assert!(
            !voided("c").await,
            "another corp's zhangsan is another person"
        );
        assert!(matches!(
            p.sign_out(&sign_out("nope", Reach::Realm)).await,
            Err(SignOutError::UnknownConnector(_))
        ));
    }

    /// The stub, giving each client its own `sub`.
    #[derive(Debug)]
    struct Pairwise(StubConnector);

    #[async_trait::async_trait]
    impl crate::connector::Connector for Pairwise {
        fn id(&self) -> &str {
            self.0.id()
        }
        fn realm(&self) -> &str {
            self.0.realm()
        }
        fn login_url(
            &self,
            r: &crate::connector::LoginRequest<'_>,
        ) -> Result<String, ConnectorError> {
            self.0.login_url(r)
        }
        async fn handle_callback(
            &self,
            q: &std::collections::HashMap<String, String>,
            s: &[String],
        ) -> Result<Identity, ConnectorError> {
            self.0.handle_callback(q, s).await
        }
        async fn refresh(&self, identity: &Identity) -> Result<Identity, ConnectorError> {
            self.0.refresh(identity).await
        }
        fn is_pairwise(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn marks_read_with_a_credential_void_exactly_what_the_separate_reads_void() {
        let mut h = harness(
            vec![app_client(ClientSettings::default())],
            Lifetimes::default(),
        );
        h.provider = h
            .provider
            .with_connector(Arc::new(Pairwise(StubConnector::named("pw", "corp-2"))));
        let p = &h.provider;
        let (own, other) = (person("stub"), person("pw"));
        // A pairwise client's record: its `sub` as user_id, the person's own id as upstream_id;
        // a renamed person's record elsewhere carries their current id the same way.
        let as_pairwise = |connector: &str| Identity {
            user_id: "pairwise-sub".into(),
            upstream_id: Some("zhangsan".into()),
            ..person(connector)
        };
        let people = &[
            own.clone(),
            other,
            person(""),
            as_pairwise("pw"),
            as_pairwise("stub"),
        ];
        let agree = |label: &'static str| async move {
            for identity in people {
                let marks = SubjectMarks::read(p.store().as_ref(), identity)
                    .await
                    .unwrap();
                for auth_time in [T0 - 1, T0, T0 + 1, T0 + 20] {
                    let separate = p.is_signed_out(identity, auth_time, "app").await.unwrap();
                    let marked = p
                        .is_signed_out_marked(identity, auth_time, "app", &marks)
                        .await
                        .unwrap();
                    assert_eq!(marked, separate, "{label}: {identity:?} at {auth_time}");
                }
            }
        };
        agree("nobody signed out").await;
        p.sign_out(&sign_out("pw", Reach::Connector)).await.unwrap();
        agree("signed out of the pairwise app").await;
        let voided = |identity: Identity| async move {
            let marks = SubjectMarks::read(p.store().as_ref(), &identity)
                .await
                .unwrap();
            p.is_signed_out_marked(&identity, T0, "app", &marks)
                .await
                .unwrap()
        };
        assert!(
            voided(as_pairwise("pw")).await,
            "the person's own id counts"
        );
        assert!(!voided(own.clone()).await);
        h.clock.advance(10);
        p.sign_out(&sign_out("stub", Reach::Connector))
            .await
            .unwrap();
        agree("signed out of both").await;
        assert!(voided(own).await);
        assert!(
            !voided(as_pairwise("stub")).await,
            "upstream_id is the person's own id only for a pairwise connector"
        );
    }
}
