//! Middleware that writes one login event per WeCom callback into the store: who (from the
//! connector's note, [`crate::events`]), which client (from where the answer redirects), when,
//! from which address, the outcome and the reason. Listed by `wecom-oidc events`. It runs inside
//! [`super::ops::observe`], the one middleware that looks at every routed request.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::ops::{login_outcome, FormPostSent};
use super::request_log;
use crate::clock::SharedClock;
use crate::events;
use crate::storage::{LoginEvent, Store};

/// What the recorder needs.
#[derive(Clone)]
pub struct EventLogState {
    /// Where events go.
    pub store: Arc<dyn Store>,
    /// The clock.
    pub clock: SharedClock,
    /// How long events are kept, seconds.
    pub retention: i64,
    /// Each client's id and redirect URIs, to tell which client a redirect goes to.
    pub clients: Arc<Vec<(String, Vec<String>)>>,
}

/// The client whose registered redirect URI `location` extends (RFC 6749 §4.1.2: parameters are
/// added to the registered URI's query).
fn client_of(clients: &[(String, Vec<String>)], location: &str) -> Option<String> {
    clients
        .iter()
        .find(|(_, uris)| {
            uris.iter().any(|u| {
                location
                    .strip_prefix(u.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['?', '&']))
            })
        })
        .map(|(id, _)| id.clone())
}

/// Runs a request to the login callback (`next`) and records its event; called by
/// [`super::ops::observe`] for that route only.
pub(crate) async fn record_callback(s: &EventLogState, request: Request, next: Next) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string());
    let request_id = request_log::request_id(request.headers()).map(str::to_owned);
    let (response, note) = events::scope(next.run(request)).await;

    let outcome = login_outcome(&response);
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok());
    // A form_post page (response_mode=form_post) says where it posts and what, instead.
    let form_post = response.extensions().get::<FormPostSent>();
    let client_id = location
        .or(form_post.map(|f| f.redirect_uri.as_str()))
        .and_then(|l| client_of(&s.clients, l));
    let description = location
        .and_then(|l| url::Url::parse(l).ok())
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "error_description")
                .map(|(_, v)| v.into_owned())
        })
        .or_else(|| form_post.and_then(|f| f.error_description.clone()));
    let reason = note.reason.or(description).or_else(|| {
        (outcome != "success").then(|| {
            format!(
                "refused by the provider with HTTP {} (see the request log)",
                response.status().as_u16()
            )
        })
    });
    let at = s.clock.now();
    let event = LoginEvent {
        at,
        user_id: note.user_id,
        client_id,
        address,
        outcome: outcome.to_owned(),
        reason,
        request_id,
        expires_at: at.saturating_add(s.retention),
    };
    if let Err(e) = s.store.create_login_event(&event).await {
        tracing::warn!(error = %e, "cannot record the login event");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_one_whose_redirect_uri_the_answer_extends() {
        let clients = vec![
            ("a".to_owned(), vec!["https://a.example/cb".to_owned()]),
            ("b".to_owned(), vec!["https://b.example/cb?x=1".to_owned()]),
        ];
        assert_eq!(
            client_of(&clients, "https://a.example/cb?code=1").as_deref(),
            Some("a")
        );
        assert_eq!(
            client_of(&clients, "https://b.example/cb?x=1&code=1").as_deref(),
            Some("b")
        );
        assert_eq!(client_of(&clients, "https://a.example/cb2?code=1"), None);
    }
}
