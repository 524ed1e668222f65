//! Middleware that writes one login event per WeCom callback into the store: who (from the
//! connector's note, [`crate::login_events`]), which client (from where the answer redirects), when,
//! from which address, the outcome and the reason. Listed by `wecom-oidc events`. A callback
//! that succeeded already had its event written with its session and code (the login asked
//! [`crate::login_events::success_event`] for it); this writes the others. It runs inside
//! [`super::observe`], the one layer that looks at every routed request, which
//! also counts each callback under its [`login_outcome`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::header;
use axum::response::Response;

use super::request_log;
use crate::clock::SharedClock;
use crate::login_events;
use crate::provider::ClientRegistry;
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
    /// The registered clients (as a reload leaves them), to tell which client a redirect
    /// goes to.
    pub clients: ClientRegistry,
}

/// The client whose registered redirect URI `location` extends (RFC 6749 §4.1.2: parameters are
/// added to the registered URI's query).
fn client_of<'a>(
    clients: impl IntoIterator<Item = (&'a str, &'a [String])>,
    location: &str,
) -> Option<String> {
    clients
        .into_iter()
        .find(|(_, uris)| {
            uris.iter().any(|u| {
                location
                    .strip_prefix(u.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['?', '&']))
            })
        })
        .map(|(id, _)| id.to_owned())
}

/// Runs a request to the login callback (`run`) and records its event; called by
/// [`super::observe`] for that route only.
pub(crate) async fn record_callback<F: Future<Output = Response>>(
    s: &EventLogState,
    request: Request,
    run: impl FnOnce(Request) -> F,
) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string());
    let request_id = request_log::request_id(request.headers()).map(str::to_owned);
    let context = login_events::CallbackContext {
        address,
        request_id,
        retention: s.retention,
    };
    let (response, note) = login_events::scope(context.clone(), run(request)).await;

    let outcome = login_outcome(&response);
    // Stored with the login's session and code, in their transaction.
    if note.recorded && outcome == "success" {
        return response;
    }
    let login_events::CallbackContext {
        address,
        request_id,
        ..
    } = context;
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok());
    // A form_post page (response_mode=form_post) says where it posts and what, instead.
    let form_post = response.extensions().get::<FormPostSent>();
    // A device verification page's sign-in goes back to that page, not to a client.
    let device = response.extensions().get::<DeviceLogin>();
    let client_id = location
        .or(form_post.map(|f| f.redirect_uri.as_str()))
        .and_then(|l| {
            let clients = s.clients.all();
            client_of(
                clients
                    .iter()
                    .map(|c| (c.id.as_str(), c.redirect_uris.as_slice())),
                l,
            )
        })
        .or_else(|| device.map(|d| d.client_id.clone()));
    let grant = device.map(|_| "device_code".to_owned());
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
    // The login was stored with a success event, then failed before its answer (its writes
    // could not be made durable): this event says so, so the log does not read as a success.
    let reason = match (note.recorded, reason) {
        (true, reason) => Some(format!(
            "{}; the success recorded with the login was never answered",
            reason.unwrap_or_else(|| "failed after the login was stored".to_owned())
        )),
        (false, reason) => reason,
    };
    let at = s.clock.now();
    let event = LoginEvent {
        at,
        user_id: note.user_id,
        client_id,
        address,
        outcome: outcome.to_owned(),
        grant,
        reason,
        request_id,
        expires_at: at.saturating_add(s.retention),
    };
    if let Err(e) = s.store.create_login_event(&event).await {
        tracing::warn!(error = %e, "cannot record the login event");
    }
    response
}

/// Attached to the answer of a device verification page's sign-in (RFC 8628 §3.3): the
/// device's client, for the event log.
#[derive(Debug, Clone)]
pub(crate) struct DeviceLogin {
    /// The device's client.
    pub(crate) client_id: String,
}

/// What a form_post page sends the client (OAuth 2.0 Form Post Response Mode §2), attached to
/// the page's response for the login metrics and event log: a page has no `Location` to read the
/// outcome from. Holds no code or token.
#[derive(Debug, Clone)]
pub(crate) struct FormPostSent {
    /// Where the page posts to (the registered redirect URI).
    pub(crate) redirect_uri: String,
    /// The OAuth `error`, when the answer is one.
    pub(crate) error: Option<String>,
    /// The `error_description`, when given.
    pub(crate) error_description: Option<String>,
}

impl FormPostSent {
    /// The non-secret parts of `params` posted to `redirect_uri`.
    pub(crate) fn new(redirect_uri: &str, params: &[(String, String)]) -> Self {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        Self {
            redirect_uri: redirect_uri.to_owned(),
            error: get("error"),
            error_description: get("error_description"),
        }
    }
}

/// The outcome of a login callback from its answer: a redirect or form_post page carrying
/// `error` is that OAuth error (Core §3.1.2.6), any other redirect or form_post page is a
/// success, an error page is `rejected` (4xx) or `server_error` (5xx).
pub(crate) fn login_outcome(response: &Response) -> &'static str {
    let status = response.status();
    let error = if status.is_redirection() {
        response
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url::Url::parse(l).ok())
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "error")
                    .map(|(_, v)| v.into_owned())
            })
    } else if let Some(sent) = response.extensions().get::<FormPostSent>() {
        sent.error.clone()
    } else if status.is_success() {
        return "success";
    } else if status.is_server_error() {
        return "server_error";
    } else {
        return "rejected";
    };
    match error.as_deref() {
        None => "success",
        Some("access_denied") => "access_denied",
        Some("login_required") => "login_required",
        Some("temporarily_unavailable") => "temporarily_unavailable",
        Some("server_error") => "server_error",
        Some(_) => "other_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, StatusCode};
    use axum::response::IntoResponse;

    fn pairs(clients: &[(String, Vec<String>)]) -> impl Iterator<Item = (&str, &[String])> {
        clients
            .iter()
            .map(|(id, uris)| (id.as_str(), uris.as_slice()))
    }

    #[test]
    fn the_client_is_the_one_whose_redirect_uri_the_answer_extends() {
        let clients = vec![
            ("a".to_owned(), vec!["https://a.example/cb".to_owned()]),
            ("b".to_owned(), vec!["https://b.example/cb?x=1".to_owned()]),
        ];
        assert_eq!(
            client_of(pairs(&clients), "https://a.example/cb?code=1").as_deref(),
            Some("a")
        );
        assert_eq!(
            client_of(pairs(&clients), "https://b.example/cb?x=1&code=1").as_deref(),
            Some("b")
        );
        assert_eq!(
            client_of(pairs(&clients), "https://a.example/cb2?code=1"),
            None
        );
    }

    fn redirect(location: &str) -> Response {
        let mut r = StatusCode::FOUND.into_response();
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_str(location).unwrap());
        r
    }

    #[test]
    fn login_outcome_reads_the_oauth_error_of_the_redirect_core_3_1_2_6() {
        assert_eq!(
            login_outcome(&redirect("https://rp.example/cb?code=x&state=y")),
            "success"
        );
        assert_eq!(
            login_outcome(&redirect(
                "https://rp.example/cb?error=access_denied&state=y"
            )),
            "access_denied"
        );
        assert_eq!(
            login_outcome(&redirect("https://rp.example/cb?error=weird")),
            "other_error"
        );
        assert_eq!(
            login_outcome(&StatusCode::BAD_REQUEST.into_response()),
            "rejected"
        );
        assert_eq!(
            login_outcome(&StatusCode::SERVICE_UNAVAILABLE.into_response()),
            "server_error"
        );
    }

    fn form_post(params: &[(&str, &str)]) -> Response {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut r = StatusCode::OK.into_response();
        r.extensions_mut()
            .insert(FormPostSent::new("https://rp.example/cb", &params));
        r
    }

    #[test]
    fn login_outcome_reads_the_oauth_error_of_a_form_post_page_form_post_2() {
        assert_eq!(
            login_outcome(&form_post(&[("code", "x"), ("state", "y")])),
            "success"
        );
        assert_eq!(
            login_outcome(&form_post(&[("error", "access_denied"), ("state", "y")])),
            "access_denied"
        );
    }
}
