//! The login event log's capture side. A login callback runs inside [`scope`]; the
//! [`RecordingConnector`] around the real connector notes there who the upstream authenticated
//! or why it refused; the web layer then stores one [`LoginEvent`](crate::storage::LoginEvent)
//! per callback with the client, the address, the outcome and that note.
//!
//! A task-local keeps the OIDC core out of it: it neither knows nor cares that logins are logged.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::connector::{
    Connector, ConnectorError, EventError, FailureNotice, Handoff, Identity, LoginRequest,
    UpstreamEvent,
};

/// What the connector learnt during one callback.
#[derive(Debug, Clone, Default)]
pub struct LoginNote {
    /// The upstream user id, when the upstream authenticated someone.
    pub user_id: Option<String>,
    /// Why the upstream part failed, when it did.
    pub reason: Option<String>,
}

tokio::task_local! {
    static NOTE: Arc<Mutex<LoginNote>>;
}

/// Runs `fut` with a fresh note; returns its output and what was noted.
pub async fn scope<F: Future>(fut: F) -> (F::Output, LoginNote) {
    let note = Arc::new(Mutex::new(LoginNote::default()));
    let out = NOTE.scope(note.clone(), fut).await;
    let noted = note.lock().unwrap_or_else(|p| p.into_inner()).clone();
    (out, noted)
}

fn note(update: impl FnOnce(&mut LoginNote)) {
    // Outside a scope (e.g. a refresh) there is nothing to note into.
    let _ = NOTE.try_with(|n| update(&mut n.lock().unwrap_or_else(|p| p.into_inner())));
}

/// Wraps a connector and notes each callback's identity or failure.
pub struct RecordingConnector {
    inner: Arc<dyn Connector>,
}

impl RecordingConnector {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Connector>) -> Self {
        Self { inner }
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
            Err(e) => note(|n| n.reason = Some(e.to_string())),
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

    fn pairwise_subject(&self, identity: &Identity, sector: &str) -> Option<String> {
        self.inner.pairwise_subject(identity, sector)
    }

    async fn handle_event(&self, event: &UpstreamEvent<'_>) -> Result<String, EventError> {
        self.inner.handle_event(event).await
    }

    async fn refresh(&self, identity: &Identity) -> Result<Identity, ConnectorError> {
        self.inner.refresh(identity).await
    }

    async fn check_ready(&self) -> Result<(), ConnectorError> {
        self.inner.check_ready().await
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
        let ((), noted) = scope(async {
            note(|n| n.user_id = Some("zhangsan".into()));
        })
        .await;
        assert_eq!(noted.user_id.as_deref(), Some("zhangsan"));
    }
}
