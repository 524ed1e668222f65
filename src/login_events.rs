//! The login event log's capture side. A login callback runs inside [`scope`]; the
//! [`RecordingConnector`] around the real connector notes there who the upstream authenticated
//! or why it refused; the web layer then stores one [`LoginEvent`](crate::storage::LoginEvent)
//! per callback with the client, the address, the outcome and that note.
//!
//! A task-local keeps the OIDC core out of it: it never decides what is logged. It asks once,
//! for a login it completes, for the callback's success event ([`success_event`]), so that the
//! store writes the event in the login's own transaction (one commit, not two); the web layer
//! then stores only the events of callbacks that did not end so.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::clock::SharedClock;
use crate::connector::{
    Connector, ConnectorError, EventError, EventReply, FailureNotice, Handoff, Identity,
    LoginRequest, UpstreamEvent,
};
use crate::storage::LoginEvent;

/// What the connector learnt during one callback.
#[derive(Debug, Clone, Default)]
pub struct LoginNote {
    /// The upstream user id, when the upstream authenticated someone.
    pub user_id: Option<String>,
    /// Why the upstream part failed, when it did.
    pub reason: Option<String>,
    /// Whether a [`success_event`] was handed out, to be stored with the login: the web layer
    /// stores no second event for a callback that succeeded.
    pub recorded: bool,
    /// What the web layer knew before the callback ran.
    context: CallbackContext,
}

/// What the web layer knows of a callback before it runs, for [`success_event`].
#[derive(Debug, Clone, Default)]
pub struct CallbackContext {
    /// The address the browser came from.
    pub address: Option<String>,
    /// The callback's request id.
    pub request_id: Option<String>,
    /// How long events are kept, seconds.
    pub retention: i64,
}

tokio::task_local! {
    static NOTE: Arc<Mutex<LoginNote>>;
}

/// Runs `fut` (a callback) with a fresh note; returns its output and what was noted.
pub async fn scope<F: Future>(context: CallbackContext, fut: F) -> (F::Output, LoginNote) {
    let note = Arc::new(Mutex::new(LoginNote {
        context,
        ..LoginNote::default()
    }));
    let out = NOTE.scope(note.clone(), fut).await;
    let noted = note.lock().unwrap_or_else(|p| p.into_inner()).clone();
    (out, noted)
}

/// The event of the callback running in this task if it succeeds at `at` for `client_id`
/// (`device`: the sign-in of a device verification page), for the store to write in the login's
/// transaction; `None` outside a callback. Afterwards the callback counts as recorded.
pub fn success_event(at: i64, client_id: &str, device: bool) -> Option<LoginEvent> {
    NOTE.try_with(|n| {
        let mut n = n.lock().unwrap_or_else(|p| p.into_inner());
        n.recorded = true;
        LoginEvent {
            at,
            user_id: n.user_id.clone(),
            client_id: Some(client_id.to_owned()),
            address: n.context.address.clone(),
            outcome: "success".to_owned(),
            grant: device.then(|| "device_code".to_owned()),
            reason: n.reason.clone(),
            request_id: n.context.request_id.clone(),
            expires_at: at.saturating_add(n.context.retention),
        }
    })
    .ok()
}

fn note(update: impl FnOnce(&mut LoginNote)) {
    // Outside a scope (e.g. a refresh) there is nothing to note into.
    let _ = NOTE.try_with(|n| update(&mut n.lock().unwrap_or_else(|p| p.into_inner())));
}

/// Wraps a connector and notes each callback's identity or failure, and keeps the last few
/// upstream faults with their fix for the operator's console.
pub struct RecordingConnector {
    inner: Arc<dyn Connector>,
    clock: SharedClock,
    faults: Mutex<VecDeque<UpstreamFault>>,
}

/// An upstream failure that is not the person's doing (a rejected secret, an unreachable
/// upstream, an untrusted IP …), as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamFault {
    /// When it happened (Unix seconds).
    pub at: i64,
    /// What failed (never a code, token or secret: connector errors carry none).
    pub error: String,
    /// What to change, when the connector knows.
    pub fix: Option<String>,
}

/// How many faults each connector keeps.
const KEPT_FAULTS: usize = 5;

impl RecordingConnector {
    /// Wraps `inner`; faults are timed by `clock`.
    pub fn new(inner: Arc<dyn Connector>, clock: SharedClock) -> Self {
        Self {
            inner,
            clock,
            faults: Mutex::new(VecDeque::new()),
        }
    }

    /// The last upstream faults, newest first.
    pub fn recent_faults(&self) -> Vec<UpstreamFault> {
        let faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        faults.iter().rev().cloned().collect()
    }

    /// Keeps `error` when it is the upstream's or the deployment's fault, not the person's.
    fn keep_fault(&self, error: &ConnectorError) {
        let notice = self.inner.failure_notice(error);
        let is_fault = notice.is_some()
            || matches!(
                error,
                ConnectorError::Upstream { .. } | ConnectorError::Unavailable(_)
            );
        if !is_fault {
            return;
        }
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        if faults.len() >= KEPT_FAULTS {
            faults.pop_front();
        }
        faults.push_back(UpstreamFault {
            at: self.clock.now(),
            error: error.to_string(),
            fix: notice.map(|n| n.operator),
        });
    }
}

#[async_trait]
impl Connector for RecordingConnector {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn login_url(&self, req: &LoginRequest<'_>) -> Result<String, ConnectorError> {
        self.inner.login_url(req)
    }

    fn callback_state<'a>(&self, params: &'a HashMap<String, String>) -> Option<&'a str> {
        self.inner.callback_state(params)
    }

    fn handoff(&self, req: &LoginRequest<'_>) -> Result<Option<Handoff>, ConnectorError> {
        self.inner.handoff(req)
    }

    async fn handle_callback(
        &self,
        params: &HashMap<String, String>,
        scopes: &[String],
    ) -> Result<Identity, ConnectorError> {
        let result = self.inner.handle_callback(params, scopes).await;
        match &result {
            Ok(identity) => note(|n| n.user_id = Some(identity.user_id.clone())),
            // ConnectorError messages carry no codes, tokens or secrets (connector contract).
            Err(e) => {
                note(|n| n.reason = Some(e.to_string()));
                self.keep_fault(e);
            }
        }
        result
    }

    // Everything below is passed through unchanged: the wrapper only watches callbacks, so a
    // connector behaves the same with the event log as without it.
    fn failure_notice(&self, error: &ConnectorError) -> Option<FailureNotice> {
        self.inner.failure_notice(error)
    }

    fn realm(&self) -> &str {
        self.inner.realm()
    }

    fn is_pairwise(&self) -> bool {
        self.inner.is_pairwise()
    }

    fn signs_in_silently(&self, user_agent: Option<&str>) -> bool {
        self.inner.signs_in_silently(user_agent)
    }

    fn pairwise_subject(&self, identity: &Identity, sector: &str) -> Option<String> {
        self.inner.pairwise_subject(identity, sector)
    }

    async fn handle_event(&self, event: &UpstreamEvent<'_>) -> Result<EventReply, EventError> {
        self.inner.handle_event(event).await
    }

    async fn local_user_id(&self, upstream_id: &str) -> Result<String, ConnectorError> {
        self.inner.local_user_id(upstream_id).await
    }

    async fn refresh(&self, identity: &Identity) -> Result<Identity, ConnectorError> {
        let result = self.inner.refresh(identity).await;
        if let Err(e) = &result {
            self.keep_fault(e);
        }
        result
    }

    async fn check_ready(&self) -> Result<(), ConnectorError> {
        let result = self.inner.check_ready().await;
        if let Err(e) = &result {
            self.keep_fault(e);
        }
        result
    }

    async fn status(&self) -> Vec<crate::connector::StatusLine> {
        self.inner.status().await
    }

    async fn readiness_note(&self) -> Option<String> {
        self.inner.readiness_note().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notes_are_collected_inside_a_scope_only() {
        note(|n| n.user_id = Some("outside".into()));
        let ((), noted) = scope(CallbackContext::default(), async {
            note(|n| n.user_id = Some("zhangsan".into()));
        })
        .await;
        assert_eq!(noted.user_id.as_deref(), Some("zhangsan"));
        assert!(!noted.recorded, "no success event was asked for");
    }

    #[tokio::test]
    async fn a_success_event_carries_the_callbacks_context_and_marks_it_recorded() {
        assert!(
            success_event(100, "app", false).is_none(),
            "outside a callback"
        );
        let context = CallbackContext {
            address: Some("192.0.2.7".into()),
            request_id: Some("req-1".into()),
            retention: 50,
        };
        let (event, noted) = scope(context, async {
            note(|n| n.user_id = Some("zhangsan".into()));
            success_event(100, "app", true)
        })
        .await;
        assert!(noted.recorded);
        assert_eq!(
            event,
            Some(LoginEvent {
                at: 100,
                user_id: Some("zhangsan".into()),
                client_id: Some("app".into()),
                address: Some("192.0.2.7".into()),
                outcome: "success".into(),
                grant: Some("device_code".into()),
                reason: None,
                request_id: Some("req-1".into()),
                expires_at: 150,
            })
        );
    }

    struct Failing;

    #[async_trait]
    impl Connector for Failing {
        fn id(&self) -> &str {
            "failing"
        }
        fn login_url(&self, _: &LoginRequest<'_>) -> Result<String, ConnectorError> {
            Ok(String::new())
        }
        async fn handle_callback(
            &self,
            params: &HashMap<String, String>,
            _: &[String],
        ) -> Result<Identity, ConnectorError> {
            Err(match params.get("why").map(String::as_str) {
                Some("denied") => ConnectorError::AccessDenied("not a member".into()),
                _ => ConnectorError::Upstream {
                    code: 60020,
                    message: "not allow to access from your ip".into(),
                },
            })
        }
        fn failure_notice(&self, e: &ConnectorError) -> Option<FailureNotice> {
            matches!(e, ConnectorError::Upstream { .. }).then(|| FailureNotice {
                zh: String::new(),
                en: String::new(),
                operator: "add the server's IP to the trusted IPs".into(),
                temporary: false,
            })
        }
    }

    #[tokio::test]
    async fn upstream_faults_are_kept_with_their_fix_but_a_persons_refusal_is_not() {
        let clock = Arc::new(crate::clock::ManualClock::new(1_000));
        let c = RecordingConnector::new(Arc::new(Failing), clock.clone());
        let denied: HashMap<String, String> = [("why".to_owned(), "denied".to_owned())].into();
        let _ = c.handle_callback(&denied, &[]).await;
        assert!(c.recent_faults().is_empty(), "a refused person is no fault");
        for _ in 0..KEPT_FAULTS + 2 {
            clock.advance(1);
            let _ = c.handle_callback(&HashMap::new(), &[]).await;
        }
        let faults = c.recent_faults();
        assert_eq!(faults.len(), KEPT_FAULTS);
        assert_eq!(faults[0].at, 1_000 + KEPT_FAULTS as i64 + 2, "newest first");
        assert!(faults[0].error.contains("60020"), "{faults:?}");
        assert_eq!(
            faults[0].fix.as_deref(),
            Some("add the server's IP to the trusted IPs")
        );
    }
}
