//! The login pages of a third-party app (wecom-api.md §8): the in-app OAuth link with `appid` =
//! the SuiteID (§2 parameters) and the web login with `login_type=ServiceApp` (§3). The person
//! picks a member of any corp that installed the suite (shown as `CORPID/userid`); the code
//! they get is redeemed with `getuserinfo3rd` by that suite's token.
//!
//! A 代开发 template has no such pages: its apps are apps of the customer corp and log in
//! through the corp's own pages (`appid` = CorpID, `agentid`).

use axum::response::Response;

use super::texts::Lang;
use super::{
    callback_url, is_valid_state, redirect, Flow, MemberRow, Page, PageError, Valid,
    MAX_LISTED_MEMBERS,
};
use crate::simulator::corp::AppKey;
use crate::simulator::reply::Params;
use crate::simulator::suite::SuiteKind;
use crate::simulator::Simulator;

/// Whether the request is for a suite's page: `login_type=ServiceApp` on the web login, or an
/// in-app link whose `appid` is a third-party suite's SuiteID rather than a CorpID.
pub(super) fn is_suite_request(page: &Page) -> bool {
    let (sim, p) = (page.sim, page.p);
    match page.flow {
        Flow::WebLogin => p.get("login_type") == Some("ServiceApp"),
        Flow::InApp => p
            .get("appid")
            .is_some_and(|id| sim.suite_kind(id) == Some(SuiteKind::ThirdParty)),
        Flow::LegacyQr => false,
    }
}

/// Checks a suite page's parameters. `agentid` is not part of a suite's links (§8) and is
/// ignored; the redirect domain is not checked (the simulated suites have no trusted domain).
fn validate(sim: &Simulator, flow: Flow, p: &Params) -> Result<(String, Valid), PageError> {
    let suite_id = p.get("appid").ok_or(PageError::BadAppid)?;
    if sim.suite_kind(suite_id) != Some(SuiteKind::ThirdParty) {
        return Err(PageError::BadAppid);
    }
    if flow == Flow::InApp {
        if p.get("response_type") != Some("code") {
            return Err(PageError::BadResponseType);
        }
        // §8 gives a suite's in-app codes a `user_ticket` for privateinfo; the simulator's
        // `getuserinfo3rd` answers the web-login form for both scopes (no ticket).
        if !matches!(p.get("scope"), Some("snsapi_base" | "snsapi_privateinfo")) {
            return Err(PageError::BadScope);
        }
    }
    let redirect = p
        .get("redirect_uri")
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or(PageError::BadRedirectUri)?;
    let state = p.get("state").unwrap_or("").to_string();
    if !is_valid_state(&state) {
        return Err(PageError::BadState);
    }
    let valid = Valid {
        flow,
        // Not an app of one corp: the corp is the one the person picks.
        app: AppKey {
            corp_id: String::new(),
            agent_id: 0,
        },
        redirect,
        state,
        private_info: false,
    };
    Ok((suite_id.to_string(), valid))
}

/// Members of every installing corp, as `CORPID/userid`.
fn rows(sim: &Simulator, suite_id: &str, lang: Lang) -> Vec<MemberRow> {
    let t = lang.texts();
    let mut out = Vec::new();
    for corp_id in sim.installing_corps(suite_id) {
        let state = sim.lock();
        let Some(corp) = state.corp(&corp_id) else {
            continue;
        };
        let d = &corp.directory;
        let room = MAX_LISTED_MEMBERS.saturating_sub(out.len());
        out.extend(d.members().iter().take(room).map(|m| {
            let department = format!("{} · {}", d.corp_name(), d.main_department_name(m));
            MemberRow::new(m, &format!("{corp_id}/{}", m.userid), &department, t)
        }));
    }
    out
}

/// Mints the code of `corp_id`'s `userid` (or of a non-member) and sends the browser back.
fn complete(
    sim: &Simulator,
    suite_id: &str,
    valid: &Valid,
    corp_id: &str,
    userid: Option<&str>,
) -> Result<Response, PageError> {
    let code = sim
        .mint_suite_code(suite_id, corp_id, userid)
        .ok_or_else(|| {
            PageError::UnknownMember(format!("{corp_id}/{}", userid.unwrap_or_default()))
        })?;
    Ok(redirect(callback_url(valid, Some(&code))))
}

/// GET: the member picker, or at once `auto_login`'s member of the primary corp when that corp
/// installed the suite.
pub(super) fn show(page: &Page) -> Result<Response, PageError> {
    let sim = page.sim;
    let (suite_id, valid) = validate(sim, page.flow, page.p)?;
    let primary = &sim.config().corp_id;
    if let Some(userid) = &sim.config().auto_login {
        if sim.has_installed(&suite_id, primary) {
            return complete(sim, &suite_id, &valid, primary, Some(userid));
        }
    }
    let members = rows(sim, &suite_id, page.lang);
    Ok(page.picker(format!("SuiteID {suite_id}"), &valid, members))
}

/// POST from the picker: `member:CORPID/userid`, `external` (a non-member of the first
/// installing corp) or `cancel`.
pub(super) fn submit(page: &Page) -> Result<Response, PageError> {
    let sim = page.sim;
    let (suite_id, valid) = validate(sim, page.flow, page.p)?;
    let choice = page.p.get("choice").unwrap_or("");
    if choice == "cancel" || choice == "deny" {
        return Ok(redirect(callback_url(&valid, None)));
    }
    if choice == "external" {
        let corp_id = sim
            .installing_corps(&suite_id)
            .into_iter()
            .next()
            .ok_or(PageError::BadChoice)?;
        return complete(sim, &suite_id, &valid, &corp_id, None);
    }
    let (corp_id, userid) = choice
        .strip_prefix("member:")
        .and_then(|who| who.split_once('/'))
        .ok_or(PageError::BadChoice)?;
    complete(sim, &suite_id, &valid, corp_id, Some(userid))
}
