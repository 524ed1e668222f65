//! The login pages of a third-party app (wecom-api.md §8): the in-app OAuth link with `appid` =
//! the SuiteID (§2 parameters) and the web login with `login_type=ServiceApp` (§3). The person
//! picks a member of any corp that installed the suite (shown as `CORPID/userid`); the code
//! they get is redeemed with `getuserinfo3rd` by that suite's token.
//!
//! A 代开发 template has no such pages: its apps are apps of the customer corp and log in
//! through the corp's own pages (`appid` = CorpID, `agentid`).

use axum::http::HeaderMap;
use axum::response::Response;

use super::texts::Lang;
use super::{
    callback_url, error_page, is_valid_state, other_lang_url, picker, redirect, Flow, MemberRow,
    PageError, Valid, MAX_LISTED_MEMBERS,
};
use crate::simulator::corp::AppKey;
use crate::simulator::reply::Params;
use crate::simulator::suite::SuiteKind;
use crate::simulator::Simulator;

/// Whether the request is for a suite's page: `login_type=ServiceApp` on the web login, or an
/// in-app link whose `appid` is a third-party suite's SuiteID rather than a CorpID.
pub(super) fn is_suite_request(sim: &Simulator, flow: Flow, p: &Params) -> bool {
    match flow {
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
    lang: Lang,
    switch: String,
) -> Response {
    match sim.mint_suite_code(suite_id, corp_id, userid) {
        Some(code) => redirect(callback_url(valid, Some(&code))),
        None => error_page(
            lang,
            &PageError::UnknownMember(format!("{corp_id}/{}", userid.unwrap_or_default())),
            switch,
        ),
    }
}

/// GET: the member picker, or at once `auto_login`'s member of the primary corp when that corp
/// installed the suite.
pub(super) fn show(sim: &Simulator, flow: Flow, p: &Params, headers: &HeaderMap) -> Response {
    let lang = Lang::pick(p.get("lang"), headers);
    let switch = other_lang_url(sim, flow, p, lang);
    let (suite_id, valid) = match validate(sim, flow, p) {
        Ok(v) => v,
        Err(e) => return error_page(lang, &e, switch),
    };
    let primary = sim.config().corp_id.clone();
    if let Some(userid) = sim.config().auto_login.clone() {
        if sim.has_installed(&suite_id, &primary) {
            return complete(
                sim,
                &suite_id,
                &valid,
                &primary,
                Some(&userid),
                lang,
                switch,
            );
        }
    }
    let members = rows(sim, &suite_id, lang);
    picker(
        sim,
        flow,
        p,
        lang,
        format!("SuiteID {suite_id}"),
        &valid,
        members,
        switch,
    )
}

/// POST from the picker: `member:CORPID/userid`, `external` (a non-member of the first
/// installing corp) or `cancel`.
pub(super) fn submit(sim: &Simulator, flow: Flow, p: &Params, headers: &HeaderMap) -> Response {
    let lang = Lang::pick(p.get("lang"), headers);
    let switch = other_lang_url(sim, flow, p, lang);
    let (suite_id, valid) = match validate(sim, flow, p) {
        Ok(v) => v,
        Err(e) => return error_page(lang, &e, switch),
    };
    let choice = p.get("choice").unwrap_or("");
    if choice == "cancel" || choice == "deny" {
        return redirect(callback_url(&valid, None));
    }
    if choice == "external" {
        let Some(corp_id) = sim.installing_corps(&suite_id).into_iter().next() else {
            return error_page(lang, &PageError::BadChoice, switch);
        };
        return complete(sim, &suite_id, &valid, &corp_id, None, lang, switch);
    }
    match choice
        .strip_prefix("member:")
        .and_then(|who| who.split_once('/'))
    {
        Some((corp_id, userid)) => {
            complete(sim, &suite_id, &valid, corp_id, Some(userid), lang, switch)
        }
        None => error_page(lang, &PageError::BadChoice, switch),
    }
}
