//! The simulator's login pages: in-app OAuth (`/connect/oauth2/authorize`, wecom-api.md §2), the
//! PC/web QR login (`/wwlogin/sso/login`, §3) and the legacy `/wwopen/sso/qrConnect` — parameter
//! validation as WeCom does it, the trusted-domain rule, and the redirect back with
//! `code`/`state`. Instead of a phone scanning a QR code, the tester picks a seeded member.
//! A third-party suite's pages (`login_type=ServiceApp`, `appid` = SuiteID) are in [`suite`].

mod suite;
mod texts;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::corp::AppKey;
use super::directory::Member;
use super::reply::Params;
use super::{directory, redirect_domain, Simulator, Subject};
use texts::{pick, Lang, Texts};

/// At most this many members are listed on a login page: a generated corp of 50,000 would
/// make a page of megabytes. The forms still accept any member of the corp.
const MAX_LISTED_MEMBERS: usize = 200;

/// Which WeCom login page is being simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// `open.weixin.qq.com/connect/oauth2/authorize` inside the WeCom app (§2).
    InApp,
    /// `login.work.weixin.qq.com/wwlogin/sso/login` (§3).
    WebLogin,
    /// The legacy `open.work.weixin.qq.com/wwopen/sso/qrConnect` (§3).
    LegacyQr,
}

impl Flow {
    const ALL: [Flow; 3] = [Flow::InApp, Flow::WebLogin, Flow::LegacyQr];

    fn path(self) -> &'static str {
        match self {
            Flow::InApp => "/connect/oauth2/authorize",
            Flow::WebLogin => "/wwlogin/sso/login",
            Flow::LegacyQr => "/wwopen/sso/qrConnect",
        }
    }

    /// The WeCom parameters of this page, carried through the simulator's own forms.
    fn params(self) -> &'static [&'static str] {
        match self {
            Flow::InApp => &[
                "appid",
                "redirect_uri",
                "response_type",
                "scope",
                "state",
                "agentid",
            ],
            Flow::WebLogin => &["login_type", "appid", "agentid", "redirect_uri", "state"],
            Flow::LegacyQr => &["appid", "agentid", "redirect_uri", "state"],
        }
    }
}

/// Why a login page refuses a request. WeCom shows an error page and never redirects.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PageError {
    /// `appid` is no simulated corp's CorpID: 40013.
    BadAppid,
    /// `agentid` absent where required, or no app of the corp: 40056.
    BadAgentid,
    /// `login_type` other than `CorpApp` (or `ServiceApp`, which [`suite`] serves).
    BadLoginType,
    /// `response_type` other than `code`.
    BadResponseType,
    /// `scope` other than `snsapi_base` / `snsapi_privateinfo`.
    BadScope,
    /// `redirect_uri` missing or not an absolute http(s) URL.
    BadRedirectUri,
    /// The redirect host is not a trusted domain (§2 "Domain rule", uriconfirm `domain_err`).
    UntrustedDomain(String),
    /// `state` has characters outside `a-zA-Z0-9` or is longer than 128 bytes (§2).
    BadState,
    /// The chosen (or `auto_login`) member does not exist.
    UnknownMember(String),
    /// The form was not one of ours.
    BadChoice,
}

impl PageError {
    fn errcode(&self) -> Option<i64> {
        match self {
            PageError::BadAppid => Some(40013),
            PageError::BadAgentid => Some(40056),
            PageError::UnknownMember(_) => Some(60111),
            _ => None,
        }
    }

    fn message(&self, lang: Lang) -> String {
        let zh = lang == Lang::Zh;
        match self {
            PageError::BadAppid => pick(zh, "appid参数错误", "invalid appid (CorpID)").into(),
            PageError::BadAgentid => pick(zh, "agentid参数错误", "invalid or missing agentid").into(),
            PageError::BadLoginType => {
                pick(zh, "login_type参数错误", "invalid login_type (expected CorpApp)").into()
            }
            PageError::BadResponseType => {
                pick(zh, "response_type参数错误", "invalid response_type (expected code)").into()
            }
            PageError::BadScope => pick(zh, "scope参数错误", "invalid scope").into(),
            PageError::BadRedirectUri => pick(zh, "redirect_uri参数错误", "invalid redirect_uri").into(),
            // WeCom's own wording is Chinese on both pages; the English gloss is added for en.
            PageError::UntrustedDomain(domain) if zh => {
                format!("redirect_uri需使用应用可信域名（{domain}）")
            }
            PageError::UntrustedDomain(domain) => format!(
                "redirect_uri需使用应用可信域名 — the redirect domain {domain} is not a trusted domain of this app"
            ),
            PageError::BadState => pick(
                zh,
                "state参数错误：只能包含a-zA-Z0-9，且不超过128字节",
                "invalid state: only a-zA-Z0-9, at most 128 bytes",
            )
            .into(),
            PageError::UnknownMember(userid) if zh => format!("成员不存在：{userid}"),
            PageError::UnknownMember(userid) => format!("no such member: {userid}"),
            PageError::BadChoice => pick(zh, "请求无效", "invalid request").into(),
        }
    }
}

/// A request that passed WeCom's checks.
#[derive(Debug)]
struct Valid {
    flow: Flow,
    /// The corp (`appid`) and app (`agentid`) the page logs in to; its codes are bound to it.
    app: AppKey,
    redirect: url::Url,
    state: String,
    /// `snsapi_privateinfo` in force: confirm screen, then a `user_ticket`.
    private_info: bool,
}

/// WeCom's `state` rule (§2): `a-zA-Z0-9`, at most 128 bytes; empty is allowed.
fn is_valid_state(state: &str) -> bool {
    state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Checks a page's parameters the way WeCom does, on the GET and again on every POST (the form's
/// hidden fields are as untrusted as the original query).
fn validate(sim: &Simulator, flow: Flow, p: &Params) -> Result<Valid, PageError> {
    let corp_id = p.get("appid").ok_or(PageError::BadAppid)?;
    if sim.lock().corp(corp_id).is_none() {
        return Err(PageError::BadAppid);
    }
    if flow == Flow::WebLogin && p.get("login_type") != Some("CorpApp") {
        return Err(PageError::BadLoginType);
    }
    let mut private_info = false;
    if flow == Flow::InApp {
        if p.get("response_type") != Some("code") {
            return Err(PageError::BadResponseType);
        }
        private_info = match p.get("scope") {
            Some("snsapi_base") => false,
            Some("snsapi_privateinfo") => true,
            _ => return Err(PageError::BadScope),
        };
    }
    let agent_id = match p.get("agentid") {
        Some(a) => Some(a.parse::<i64>().map_err(|_| PageError::BadAgentid)?),
        // §3: agentid is required for CorpApp web login.
        None if flow != Flow::InApp => return Err(PageError::BadAgentid),
        // §2: whether snsapi_privateinfo without agentid errors or falls back to snsapi_base
        // is unconfirmed; see `SimulatorQuirks::privateinfo_without_agentid_falls_back`.
        None if private_info => {
            if sim.quirks().privateinfo_without_agentid_falls_back {
                private_info = false;
                None
            } else {
                return Err(PageError::BadAgentid);
            }
        }
        None => None,
    };
    // §2 recommends but does not require `agentid` in the in-app link; without it the
    // simulator logs in to the corp's first app (the primary app for the primary corp).
    let app = {
        let state = sim.lock();
        let corp = state.corp(corp_id).ok_or(PageError::BadAppid)?;
        match agent_id {
            Some(id) => corp.app(id),
            None => corp.apps.first(),
        }
        .cloned()
        .ok_or(PageError::BadAgentid)?
    };
    let redirect = p
        .get("redirect_uri")
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or(PageError::BadRedirectUri)?;
    let domain = redirect_domain(&redirect).ok_or(PageError::BadRedirectUri)?;
    if !app.is_trusted_domain(&domain) {
        return Err(PageError::UntrustedDomain(domain));
    }
    let agent_id = app.agent_id;
    let state = p.get("state").unwrap_or("").to_string();
    if !is_valid_state(&state) {
        return Err(PageError::BadState);
    }
    Ok(Valid {
        flow,
        app: AppKey {
            corp_id: corp_id.to_string(),
            agent_id,
        },
        redirect,
        state,
        private_info,
    })
}

/// `redirect_uri?code=CODE&state=STATE` (`&`-joined onto an existing query); `state` is always
/// present, empty if none was sent; no `code` when the user cancelled (§2, §3).
fn callback_url(valid: &Valid, code: Option<&str>) -> String {
    let mut url = valid.redirect.clone();
    {
        let mut query = url.query_pairs_mut();
        if let Some(code) = code {
            query.append_pair("code", code);
        }
        query.append_pair("state", &valid.state);
    }
    url.to_string()
}

fn redirect(location: String) -> Response {
    match HeaderValue::try_from(location) {
        Ok(value) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, value),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        // A serialized `url::Url` is always ASCII; this arm only guards against surprises.
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// Mints a code for `subject` and sends the browser back to the client.
fn complete(sim: &Simulator, valid: &Valid, subject: Subject, private_info: bool) -> Response {
    let code = sim.mint_code(
        valid.app.clone(),
        subject,
        private_info,
        redirect_domain(&valid.redirect),
        valid.flow == Flow::InApp,
    );
    redirect(callback_url(valid, Some(&code)))
}

/// A member as the pages list them.
struct MemberRow {
    userid: String,
    name: String,
    alias: String,
    department: String,
    status: &'static str,
    is_active: bool,
    initial: String,
}

impl MemberRow {
    /// `userid` as the page shows and posts it (`LINKEDCORPID/userid` for a linked member).
    fn new(m: &Member, userid: &str, department: &str, t: &Texts) -> Self {
        Self {
            userid: userid.to_string(),
            name: m.name.clone(),
            alias: m.alias.clone(),
            department: department.to_string(),
            status: match m.status {
                directory::STATUS_ACTIVE => t.status_active,
                directory::STATUS_DISABLED => t.status_disabled,
                directory::STATUS_NOT_ACTIVATED => t.status_not_activated,
                _ => t.status_left,
            },
            is_active: m.status == directory::STATUS_ACTIVE,
            initial: m.name.chars().next().map(String::from).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "simulator/login.html")]
struct LoginPage {
    t: &'static Texts,
    title: &'static str,
    intro: &'static str,
    act: &'static str,
    app: String,
    redirect_host: String,
    action: String,
    hidden: Vec<(String, String)>,
    members: Vec<MemberRow>,
    other_lang_url: String,
}

#[derive(Template)]
#[template(path = "simulator/confirm.html")]
struct ConfirmPage {
    t: &'static Texts,
    title: &'static str,
    app: String,
    action: String,
    hidden: Vec<(String, String)>,
    member: MemberRow,
    agree_value: String,
    other_lang_url: String,
}

#[derive(Template)]
#[template(path = "simulator/error.html")]
struct ErrorPage {
    t: &'static Texts,
    title: &'static str,
    message: String,
    errcode: Option<i64>,
    other_lang_url: String,
}

/// Renders a page with headers fit for a login screen: never cached, no external resources.
fn render(page: &impl Template, status: StatusCode) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [
                (header::CACHE_CONTROL, "no-store"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'",
                ),
            ],
            Html(html),
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "simulator page failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The error page. WeCom's HTTP status for these pages is not documented; 400 tells a browser
/// test plainly that nothing was granted, and no client logic can depend on it.
fn error_page(lang: Lang, error: &PageError, other_lang_url: String) -> Response {
    let t = lang.texts();
    let page = ErrorPage {
        t,
        title: t.title_error,
        message: error.message(lang),
        errcode: error.errcode(),
        other_lang_url,
    };
    render(&page, StatusCode::BAD_REQUEST)
}

/// The hidden fields that carry the page's WeCom parameters (and the language) through a form.
fn hidden_fields(flow: Flow, p: &Params, lang: Lang) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = flow
        .params()
        .iter()
        .filter_map(|k| p.get(k).map(|v| (k.to_string(), v.to_string())))
        .collect();
    out.push(("lang".to_string(), lang.code().to_string()));
    out
}

/// The same page in the other language (GET pages only).
fn other_lang_url(sim: &Simulator, flow: Flow, p: &Params, lang: Lang) -> String {
    let other = match lang {
        Lang::Zh => Lang::En,
        Lang::En => Lang::Zh,
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in hidden_fields(flow, p, other) {
        query.append_pair(&k, &v);
    }
    format!(
        "{}{}?{}",
        sim.config().public_base,
        flow.path(),
        query.finish()
    )
}

fn app_line(sim: &Simulator, app: &AppKey) -> String {
    let corp = sim
        .lock()
        .corp(&app.corp_id)
        .map(|c| c.directory.corp_name().to_string())
        .unwrap_or_default();
    format!("{corp} · {} · AgentId {}", app.corp_id, app.agent_id)
}

/// Who may pick a member on the page of `app`'s corp: its own members and the members of its
/// linked corps in the shared departments (shown as `LINKEDCORPID/userid`, §4), at most
/// [`MAX_LISTED_MEMBERS`] in all.
fn member_rows(sim: &Simulator, app: &AppKey, t: &'static Texts) -> Vec<MemberRow> {
    let state = sim.lock();
    let Some(corp) = state.corp(&app.corp_id) else {
        return Vec::new();
    };
    let directory = &corp.directory;
    let mut rows: Vec<MemberRow> = directory
        .members()
        .iter()
        .take(MAX_LISTED_MEMBERS)
        .map(|m| MemberRow::new(m, &m.userid, directory.main_department_name(m), t))
        .collect();
    for link in &corp.links {
        let Some(linked) = state.corp(&link.corp_id) else {
            continue;
        };
        let shared = super::corp::shared_departments(&linked.directory, link);
        let room = MAX_LISTED_MEMBERS.saturating_sub(rows.len());
        rows.extend(
            linked
                .directory
                .members()
                .iter()
                .filter(|m| m.departments().any(|d| shared.contains(&d)))
                .take(room)
                .map(|m| {
                    let userid = format!("{}/{}", link.corp_id, m.userid);
                    let department = format!(
                        "{} · {}",
                        linked.directory.corp_name(),
                        linked.directory.main_department_name(m)
                    );
                    MemberRow::new(m, &userid, &department, t)
                }),
        );
    }
    rows
}

/// The member a page choice names: a member of the app's corp, or `LINKEDCORPID/userid` of a
/// linked corp within the shared departments. Its row and the code's subject.
fn chosen_member(
    sim: &Simulator,
    app: &AppKey,
    userid: &str,
    t: &'static Texts,
) -> Option<(MemberRow, Subject)> {
    let state = sim.lock();
    match userid.split_once('/') {
        Some((linked, id)) => {
            let (m, _) = state.linked_member(&app.corp_id, linked, id)?;
            let directory = &state.corp(linked)?.directory;
            let shown = format!("{linked}/{}", m.userid);
            let department = format!(
                "{} · {}",
                directory.corp_name(),
                directory.main_department_name(m)
            );
            let subject = Subject::Linked {
                corp_id: linked.to_string(),
                userid: m.userid.clone(),
            };
            Some((MemberRow::new(m, &shown, &department, t), subject))
        }
        None => {
            let directory = &state.corp(&app.corp_id)?.directory;
            let m = directory.member(userid)?;
            let row = MemberRow::new(m, &m.userid, directory.main_department_name(m), t);
            Some((row, Subject::Member(m.userid.clone())))
        }
    }
}

/// One request to a login page: the simulator, which page, its parameters (query or form) and
/// the language it answers in.
struct Page<'a> {
    sim: &'a Simulator,
    flow: Flow,
    p: &'a Params,
    lang: Lang,
}

impl<'a> Page<'a> {
    fn new(sim: &'a Simulator, flow: Flow, p: &'a Params, headers: &HeaderMap) -> Self {
        let lang = Lang::pick(p.get("lang"), headers);
        Self { sim, flow, p, lang }
    }

    /// Answers with `handle`, or with the error page when the request is refused (WeCom shows
    /// an error page and never redirects).
    fn answer(&self, handle: fn(&Page) -> Result<Response, PageError>) -> Response {
        handle(self).unwrap_or_else(|e| error_page(self.lang, &e, self.other_lang_url()))
    }

    /// The same page in the other language.
    fn other_lang_url(&self) -> String {
        other_lang_url(self.sim, self.flow, self.p, self.lang)
    }

    /// Where the page's form posts to: the page itself.
    fn action(&self) -> String {
        format!("{}{}", self.sim.config().public_base, self.flow.path())
    }

    /// The member picker: who logs in to `app`, with the page's parameters carried through
    /// its form.
    fn picker(&self, app: String, valid: &Valid, members: Vec<MemberRow>) -> Response {
        let t = self.lang.texts();
        let (title, intro, act) = match self.flow {
            Flow::InApp => (t.title_in_app, t.intro_in_app, t.act_in_app),
            Flow::WebLogin | Flow::LegacyQr => (t.title_qr, t.intro_qr, t.act_qr),
        };
        let page = LoginPage {
            t,
            title,
            intro,
            act,
            app,
            redirect_host: redirect_domain(&valid.redirect).unwrap_or_default(),
            action: self.action(),
            hidden: hidden_fields(self.flow, self.p, self.lang),
            members,
            other_lang_url: self.other_lang_url(),
        };
        render(&page, StatusCode::OK)
    }

    /// The `snsapi_privateinfo` consent screen (§2: "the member must confirm").
    fn confirm(&self, valid: &Valid, member: MemberRow) -> Response {
        let t = self.lang.texts();
        let page = ConfirmPage {
            t,
            title: t.title_confirm,
            app: app_line(self.sim, &valid.app),
            action: self.action(),
            hidden: hidden_fields(self.flow, self.p, self.lang),
            agree_value: format!("agree:{}", member.userid),
            member,
            other_lang_url: String::new(),
        };
        render(&page, StatusCode::OK)
    }
}

/// GET: validate, then either complete at once (`auto_login`, primary corp only) or show the
/// member picker.
fn show(page: &Page) -> Result<Response, PageError> {
    if suite::is_suite_request(page) {
        return suite::show(page);
    }
    let sim = page.sim;
    let valid = validate(sim, page.flow, page.p)?;
    // `auto_login` names a member of the primary corp: another corp may have a member with the
    // same userid, a different person (§12), who must not be logged in by it.
    let auto_login = sim
        .config()
        .auto_login
        .as_ref()
        .filter(|_| valid.app.corp_id == sim.config().corp_id);
    if let Some(userid) = auto_login {
        let member = sim
            .lock()
            .primary()
            .directory
            .member(userid)
            .map(|m| m.userid.clone())
            .ok_or_else(|| PageError::UnknownMember(userid.clone()))?;
        let private_info = valid.private_info;
        return Ok(complete(sim, &valid, Subject::Member(member), private_info));
    }
    let members = member_rows(sim, &valid.app, page.lang.texts());
    Ok(page.picker(app_line(sim, &valid.app), &valid, members))
}

/// POST from our own forms: `choice` is `member:<userid>`, `agree:<userid>`, `external`,
/// `cancel` or `deny` (`<userid>` may be `LINKEDCORPID/userid`).
fn submit(page: &Page) -> Result<Response, PageError> {
    if suite::is_suite_request(page) {
        return suite::submit(page);
    }
    let sim = page.sim;
    let valid = validate(sim, page.flow, page.p)?;
    let choice = page.p.get("choice").unwrap_or("");
    match choice.split_once(':') {
        // §3: refusing returns only `state`; the client reads a callback without `code` as
        // "the user cancelled". Denying the privateinfo screen is treated the same way.
        None if choice == "cancel" || choice == "deny" => Ok(redirect(callback_url(&valid, None))),
        None if choice == "external" => {
            let openid = sim
                .lock()
                .corp(&valid.app.corp_id)
                .map(|c| c.non_member_openid.clone())
                .unwrap_or_default();
            let subject = Subject::NonMember {
                openid,
                external_userid: None,
            };
            Ok(complete(sim, &valid, subject, false))
        }
        // Inactive members (disabled, not activated, left) are offered and accepted on
        // purpose: WeCom would not let them scan, but a provider must check `status` from
        // `user/get` itself (§6), and letting them through is how the demo and tests show it.
        // Members outside the app's visible range are accepted too: §4 gives their userid.
        Some((kind @ ("member" | "agree"), userid)) => {
            let (row, subject) = chosen_member(sim, &valid.app, userid, page.lang.texts())
                .ok_or_else(|| PageError::UnknownMember(userid.to_string()))?;
            if kind == "member" && valid.private_info {
                return Ok(page.confirm(&valid, row));
            }
            let private_info = valid.private_info;
            Ok(complete(sim, &valid, subject, private_info))
        }
        _ => Err(PageError::BadChoice),
    }
}

fn query(raw: Option<String>) -> Params {
    Params::parse(raw.as_deref().unwrap_or("").as_bytes())
}

/// The login pages, one path per [`Flow`]: `GET` shows the page (§2, §3), `POST` takes the
/// simulator's own member-picker form ("scan as …"). The real in-app page only works inside the
/// WeCom client (ordinary browsers get an "open in client" prompt, unconfirmed); the simulator
/// serves every browser so that end-to-end tests can drive it.
pub(super) fn routes() -> Router<Simulator> {
    Flow::ALL.into_iter().fold(Router::new(), |router, flow| {
        let page = move |State(sim): State<Simulator>, headers: HeaderMap, RawQuery(raw)| async move {
            Page::new(&sim, flow, &query(raw), &headers).answer(show)
        };
        let form = move |State(sim): State<Simulator>, headers: HeaderMap, body: Bytes| async move {
            Page::new(&sim, flow, &Params::parse(&body), &headers).answer(submit)
        };
        router.route(flow.path(), get(page).post(form))
    })
}

#[cfg(test)]
mod tests;
