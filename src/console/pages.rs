//! The console's pages: upstream health, login events with their chart, sessions, clients,
//! keys and the audit log, plus the one message page (refusals, action results).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::session::ConsoleSession;
use super::{chart, Console, CONSOLE_CLIENT_ID};
use crate::commands::login_events::utc;
use crate::connector::{Bilingual, Connector, StatusLine};
use crate::login_events::UpstreamFault;
use crate::storage::{AuditEvent, LoginEvent, Session};
use crate::tokens::KeyStatus;
use crate::web::cookies::cookie_value as cookie;

/// The cookie that keeps the language switch's choice.
pub(super) const LANG_COOKIE: &str = "wecom_oidc_admin_lang";

/// Whether the page is shown in Chinese: the switch's choice, else `Accept-Language`.
pub(super) fn is_zh(headers: &HeaderMap) -> bool {
    match cookie(headers, LANG_COOKIE).as_deref() {
        Some("zh") => true,
        Some("en") => false,
        _ => crate::web::error_page::prefers_chinese(headers, None),
    }
}

/// How many login events the events page reads (the chart's 24 hours and the filters).
const EVENTS_READ: usize = 10_000;
/// How many rows a list shows.
const ROWS: usize = 200;

/// What every page's frame shows.
pub(super) struct Frame {
    pub zh: bool,
    pub active: &'static str,
    pub user: String,
    pub csrf: String,
}

impl Frame {
    fn new(zh: bool, active: &'static str, s: &ConsoleSession) -> Self {
        Frame {
            zh,
            active,
            user: s
                .identity
                .name
                .clone()
                .map(|n| format!("{n} ({})", s.identity.user_id))
                .unwrap_or_else(|| s.identity.user_id.clone()),
            csrf: s.csrf.clone(),
        }
    }

    /// The path the language switch returns to.
    pub fn here(&self) -> String {
        match self.active {
            "overview" => "/admin".to_owned(),
            other => format!("/admin/{other}"),
        }
    }

    /// `zh` or `en` text.
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        if self.zh {
            zh
        } else {
            en
        }
    }

    /// A bilingual text in the page's language.
    pub fn b<'a>(&self, text: &'a Bilingual) -> &'a str {
        self.t(&text.zh, &text.en)
    }
}

/// The message page (refusals, errors, action results).
#[derive(Template)]
#[template(path = "console/message.html")]
pub(super) struct Message {
    zh: bool,
    title: String,
    text: String,
    link: Option<(String, String)>,
    refresh: Option<String>,
    error: bool,
}

impl Message {
    pub fn new(zh: bool, title_zh: &str, title_en: &str, text_zh: &str, text_en: &str) -> Self {
        let pick = |a: &str, b: &str| if zh { a.to_owned() } else { b.to_owned() };
        Message {
            zh,
            title: pick(title_zh, title_en),
            text: pick(text_zh, text_en),
            link: None,
            refresh: None,
            error: false,
        }
    }

    pub fn with_link(mut self, href: &str, zh: &str, en: &str) -> Self {
        self.link = Some((href.to_owned(), if self.zh { zh } else { en }.to_owned()));
        self
    }

    pub fn refreshing_to(mut self, href: &str) -> Self {
        self.refresh = Some(href.to_owned());
        self
    }

    pub fn marked_as_error(mut self) -> Self {
        self.error = true;
        self
    }
}

/// Renders `t` with the security headers of every page.
fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => crate::web::html::page(status, body, crate::web::html::PAGE_CSP),
        Err(e) => {
            tracing::error!(error = %e, "console template failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The message page with `status`.
pub(super) fn message(status: StatusCode, m: &Message) -> Response {
    render(status, m)
}

/// The signed-in operator and the language of the page: where every page starts. Without a
/// console session the browser is sent to sign in.
pub(super) struct Operator {
    session: ConsoleSession,
    zh: bool,
}

impl FromRequestParts<Arc<Console>> for Operator {
    type Rejection = Redirect;

    async fn from_request_parts(parts: &mut Parts, c: &Arc<Console>) -> Result<Self, Redirect> {
        let session = c
            .sessions
            .current(&parts.headers, c.parts.clock.now())
            .ok_or_else(|| Redirect::to("/admin/login"))?;
        Ok(Operator {
            session,
            zh: is_zh(&parts.headers),
        })
    }
}

impl Operator {
    /// The frame of the page `active`.
    fn frame(&self, active: &'static str) -> Frame {
        Frame::new(self.zh, active, &self.session)
    }
}

/// One upstream app as the overview shows it.
pub(super) struct AppHealth {
    pub id: String,
    pub summary: Vec<(String, String)>,
    pub status: Vec<StatusLine>,
    pub faults: Vec<UpstreamFault>,
    pub readiness: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct Overview {
    f: Frame,
    apps: Vec<AppHealth>,
    sessions: usize,
    logins_24h: u32,
    failures_24h: u32,
}

/// The last [`EVENTS_READ`] login events, newest first (none when the store fails: the page
/// still shows the rest).
async fn recent_events(c: &Console) -> Vec<LoginEvent> {
    c.parts
        .store
        .list_login_events(EVENTS_READ)
        .await
        .unwrap_or_default()
}

/// A snapshot of the readiness probe's last failure per upstream app: when, and why.
fn readiness_failures(c: &Console) -> HashMap<String, (i64, String)> {
    c.parts
        .readiness_failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// `GET /admin`: each upstream app's health.
pub(super) async fn overview(State(c): State<Arc<Console>>, op: Operator) -> Response {
    let now = c.parts.clock.now();
    let failures = readiness_failures(&c);
    let mut apps = Vec::new();
    for (conn, row) in c.parts.connectors.iter().zip(&c.parts.connector_rows) {
        apps.push(AppHealth {
            id: row.id.clone(),
            summary: row.summary.clone(),
            status: conn.status().await,
            faults: conn.recent_faults(),
            readiness: failures
                .get(&row.id)
                .map(|(at, why)| (utc(*at), why.clone())),
        });
    }
    let sessions = c
        .parts
        .store
        .list_sessions(now, usize::MAX)
        .await
        .map(|v| v.len())
        .unwrap_or(0);
    let events = recent_events(&c).await;
    let b = chart::buckets(&events, now);
    render(
        StatusCode::OK,
        &Overview {
            f: op.frame("overview"),
            apps,
            sessions,
            logins_24h: b.iter().map(|x| x.0).sum(),
            failures_24h: b.iter().map(|x| x.1).sum(),
        },
    )
}

/// A login event row.
pub(super) struct EventRow {
    pub at: String,
    pub user: String,
    pub client: String,
    pub outcome: String,
    pub ok: bool,
    pub reason: String,
    pub address: String,
}

#[derive(Template)]
#[template(path = "console/events.html")]
struct Events {
    f: Frame,
    chart: String,
    person: String,
    client: String,
    outcome: String,
    reason: String,
    rows: Vec<EventRow>,
    matched: usize,
}

fn matches(e: &LoginEvent, q: &HashMap<String, String>) -> bool {
    let want = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let contains = |have: Option<&str>, k: &str| match want(k) {
        None => true,
        Some(w) => have.is_some_and(|h| h.to_lowercase().contains(&w.to_lowercase())),
    };
    let outcome_ok = match want("outcome") {
        None => true,
        Some("failure") => e.outcome != "success",
        Some(o) => e.outcome == o,
    };
    outcome_ok
        && contains(e.user_id.as_deref(), "person")
        && contains(e.client_id.as_deref(), "client")
        && contains(e.reason.as_deref(), "reason")
}

/// `GET /admin/events?person=&client=&outcome=&reason=`: the newest login events, filtered,
/// under the 24-hour chart of every login.
pub(super) async fn events(
    State(c): State<Arc<Console>>,
    op: Operator,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = c.parts.clock.now();
    let events = recent_events(&c).await;
    let chart = chart::svg(&chart::buckets(&events, now), op.zh);
    let matching: Vec<&LoginEvent> = events.iter().filter(|e| matches(e, &q)).collect();
    let rows = matching
        .iter()
        .take(ROWS)
        .map(|e| EventRow {
            at: utc(e.at),
            user: e.user_id.clone().unwrap_or_default(),
            client: e.client_id.clone().unwrap_or_default(),
            ok: e.outcome == "success",
            outcome: e.outcome.clone(),
            reason: e.reason.clone().unwrap_or_default(),
            address: e.address.clone().unwrap_or_default(),
        })
        .collect();
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    render(
        StatusCode::OK,
        &Events {
            f: op.frame("events"),
            chart,
            person: get("person"),
            client: get("client"),
            outcome: get("outcome"),
            reason: get("reason"),
            matched: matching.len(),
            rows,
        },
    )
}

/// A session row.
pub(super) struct SessionRow {
    pub user: String,
    pub name: String,
    pub connector: String,
    pub clients: String,
    pub since: String,
    pub last_seen: String,
}

#[derive(Template)]
#[template(path = "console/sessions.html")]
struct Sessions {
    f: Frame,
    rows: Vec<SessionRow>,
}

fn session_row(s: &Session) -> SessionRow {
    SessionRow {
        user: s.identity.user_id.clone(),
        name: s.identity.name.clone().unwrap_or_default(),
        connector: s.connector_id.clone(),
        clients: s
            .clients
            .iter()
            .filter(|c| *c != CONSOLE_CLIENT_ID)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        since: utc(s.auth_time),
        last_seen: utc(s.last_seen),
    }
}

/// `GET /admin/sessions`: who is signed in now, each with "sign out everywhere".
pub(super) async fn sessions(State(c): State<Arc<Console>>, op: Operator) -> Response {
    let now = c.parts.clock.now();
    let rows = c
        .parts
        .store
        .list_sessions(now, ROWS)
        .await
        .unwrap_or_default()
        .iter()
        .map(session_row)
        .collect();
    render(
        StatusCode::OK,
        &Sessions {
            f: op.frame("sessions"),
            rows,
        },
    )
}

/// A client row: no secret field exists here, so none can be shown.
pub(super) struct ClientRow {
    pub id: String,
    pub name: String,
    pub public: bool,
    pub connector: String,
    pub redirect_uris: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/clients.html")]
struct Clients {
    f: Frame,
    rows: Vec<ClientRow>,
}

/// `GET /admin/clients`: the registered clients (never their secrets).
pub(super) async fn clients(State(c): State<Arc<Console>>, op: Operator) -> Response {
    let rows = c
        .parts
        .provider
        .clients()
        .all()
        .into_iter()
        .filter(|cl| cl.id != CONSOLE_CLIENT_ID)
        .map(|cl| ClientRow {
            id: cl.id.clone(),
            name: cl.name.clone(),
            public: cl.is_public(),
            connector: cl.settings.connector.clone().unwrap_or_default(),
            redirect_uris: cl.redirect_uris.clone(),
        })
        .collect();
    render(
        StatusCode::OK,
        &Clients {
            f: op.frame("clients"),
            rows,
        },
    )
}

/// A key row.
pub(super) struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub active: bool,
    pub age_days: String,
    pub retire_at: String,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct Keys {
    f: Frame,
    rows: Vec<KeyRow>,
}

/// `GET /admin/keys`: the published signing keys (kid, alg, age) and the rotation form.
pub(super) async fn keys(State(c): State<Arc<Console>>, op: Operator) -> Response {
    let now = c.parts.clock.now();
    let rows = c
        .parts
        .provider
        .keys()
        .keys()
        .iter()
        .map(|k| KeyRow {
            kid: k.kid.clone(),
            alg: k.alg.as_str().to_owned(),
            active: k.status == KeyStatus::Active,
            age_days: k
                .created_at
                .map(|t| format!("{:.1}", (now - t).max(0) as f64 / 86_400.0))
                .unwrap_or_else(|| "?".to_owned()),
            retire_at: k.retire_at.map(utc).unwrap_or_default(),
        })
        .collect();
    render(
        StatusCode::OK,
        &Keys {
            f: op.frame("keys"),
            rows,
        },
    )
}

/// An audit row.
pub(super) struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ok: bool,
    pub outcome: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct Audit {
    f: Frame,
    rows: Vec<AuditRow>,
}

fn audit_row(e: &AuditEvent) -> AuditRow {
    AuditRow {
        at: utc(e.at),
        actor: e.actor.clone(),
        action: e.action.clone(),
        target: e.target.clone().unwrap_or_default(),
        ok: e.outcome == "ok",
        outcome: e.outcome.clone(),
        detail: e.detail.clone().unwrap_or_default(),
    }
}

/// `GET /admin/audit`: every operator action, from the console and the CLI.
pub(super) async fn audit(State(c): State<Arc<Console>>, op: Operator) -> Response {
    let rows = c
        .parts
        .store
        .list_audit_events(ROWS)
        .await
        .unwrap_or_default()
        .iter()
        .map(audit_row)
        .collect();
    render(
        StatusCode::OK,
        &Audit {
            f: op.frame("audit"),
            rows,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_filters_match_person_client_outcome_and_reason() {
        let e = crate::testkit::refused_login(1, Some("ZhangSan"), "outside the visible range");
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(matches(&e, &q(&[])));
        assert!(matches(&e, &q(&[("person", "zhang"), ("client", "graf")])));
        assert!(matches(
            &e,
            &q(&[("outcome", "failure"), ("reason", "VISIBLE")])
        ));
        assert!(matches(&e, &q(&[("outcome", "access_denied")])));
        assert!(!matches(&e, &q(&[("outcome", "success")])));
        assert!(!matches(&e, &q(&[("person", "lisi")])));
        assert!(!matches(&e, &q(&[("client", "gitlab")])));
    }
}
