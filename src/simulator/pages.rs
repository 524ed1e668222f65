//! The simulator's login pages: in-app OAuth (`/connect/oauth2/authorize`, wecom-api.md §2), the
//! PC/web QR login (`/wwlogin/sso/login`, §3) and the legacy `/wwopen/sso/qrConnect` — parameter
//! validation as WeCom does it, the trusted-domain rule, and the redirect back with
//! `code`/`state`. Instead of a phone scanning a QR code, the tester picks a seeded member.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::corp::AppKey;
use super::directory::{self, Member};
use super::reply::Params;
use super::{redirect_domain, Simulator, Subject};

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

/// Page language (§3 `lang`: `zh` or `en`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Zh,
    En,
}

impl Lang {
    fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    fn texts(self) -> &'static Texts {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    /// `lang=zh|en` wins; otherwise the first of zh/en in `Accept-Language`; otherwise Chinese,
    /// WeCom's default.
    fn pick(param: Option<&str>, headers: &HeaderMap) -> Lang {
        match param {
            Some("en") => return Lang::En,
            Some("zh") => return Lang::Zh,
            _ => {}
        }
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Browsers list languages in preference order; q-values only restate that order.
        for tag in accept.split(',') {
            let tag = tag
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("en") {
                return Lang::En;
            }
            if tag.starts_with("zh") {
                return Lang::Zh;
            }
        }
        Lang::Zh
    }
}

/// Every string the pages show, per language.
struct Texts {
    html_lang: &'static str,
    title_in_app: &'static str,
    title_qr: &'static str,
    title_confirm: &'static str,
    title_error: &'static str,
    intro_in_app: &'static str,
    intro_qr: &'static str,
    app_label: &'static str,
    redirect_label: &'static str,
    act_in_app: &'static str,
    act_qr: &'static str,
    non_member: &'static str,
    cancel: &'static str,
    confirm_intro: &'static str,
    confirm_fields: &'static str,
    agree: &'static str,
    deny: &'static str,
    status_active: &'static str,
    status_disabled: &'static str,
    status_not_activated: &'static str,
    status_left: &'static str,
    errcode_label: &'static str,
    other_lang: &'static str,
    footer: &'static str,
}

const ZH: Texts = Texts {
    html_lang: "zh-CN",
    title_in_app: "企业微信授权",
    title_qr: "企业微信扫码登录",
    title_confirm: "授权确认",
    title_error: "无法登录",
    intro_in_app: "在企业微信中打开此应用。选择以哪位成员的身份打开：",
    intro_qr: "请使用企业微信扫描二维码登录。模拟器中，选择扫码的成员：",
    app_label: "应用",
    redirect_label: "登录后跳转到",
    act_in_app: "以此身份打开",
    act_qr: "扫码登录为",
    non_member: "非企业成员（外部微信用户）",
    cancel: "取消",
    confirm_intro: "该应用申请获取你的以下信息：",
    confirm_fields: "姓名、性别、头像、手机、邮箱、企业邮箱、地址、个人二维码",
    agree: "同意",
    deny: "拒绝",
    status_active: "已激活",
    status_disabled: "已禁用",
    status_not_activated: "未激活",
    status_left: "已退出企业",
    errcode_label: "错误码",
    other_lang: "English",
    footer: "企业微信模拟器 · 仅用于开发和测试",
};

const EN: Texts = Texts {
    html_lang: "en",
    title_in_app: "WeCom authorization",
    title_qr: "Log in with WeCom",
    title_confirm: "Confirm access",
    title_error: "Cannot log in",
    intro_in_app: "Opening this app inside WeCom. Choose which member opens it:",
    intro_qr: "Scan the QR code with WeCom to log in. In the simulator, choose who scans:",
    app_label: "App",
    redirect_label: "Redirects to",
    act_in_app: "Open as",
    act_qr: "Scan as",
    non_member: "Not a member (external WeChat user)",
    cancel: "Cancel",
    confirm_intro: "This app asks for the following information:",
    confirm_fields: "name, gender, avatar, mobile, email, business email, address, QR code",
    agree: "Allow",
    deny: "Deny",
    status_active: "active",
    status_disabled: "disabled",
    status_not_activated: "not activated",
    status_left: "left the company",
    errcode_label: "Error code",
    other_lang: "中文",
    footer: "WeCom simulator · for development and testing only",
};

/// Why a login page refuses a request. WeCom shows an error page and never redirects.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PageError {
    /// `appid` is no simulated corp's CorpID: 40013.
    BadAppid,
    /// `agentid` absent where required, or no app of the corp: 40056.
    BadAgentid,
    /// `login_type` other than `CorpApp` (third-party `ServiceApp` is not simulated).
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

fn pick(zh: bool, a: &'static str, b: &'static str) -> &'static str {
    if zh {
        a
    } else {
        b
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
                .filter(|m| m.department.iter().any(|d| shared.contains(d)))
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

/// GET: validate, then either complete at once (`auto_login`, primary corp only) or show the
/// member picker.
fn show(sim: &Simulator, flow: Flow, p: &Params, headers: &HeaderMap) -> Response {
    let lang = Lang::pick(p.get("lang"), headers);
    let switch = other_lang_url(sim, flow, p, lang);
    let valid = match validate(sim, flow, p) {
        Ok(v) => v,
        Err(e) => return error_page(lang, &e, switch),
    };
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
            .map(|m| m.userid.clone());
        return match member {
            Some(userid) => {
                let private_info = valid.private_info;
                complete(sim, &valid, Subject::Member(userid), private_info)
            }
            None => error_page(lang, &PageError::UnknownMember(userid.clone()), switch),
        };
    }
    let t = lang.texts();
    let (title, intro, act) = match flow {
        Flow::InApp => (t.title_in_app, t.intro_in_app, t.act_in_app),
        Flow::WebLogin | Flow::LegacyQr => (t.title_qr, t.intro_qr, t.act_qr),
    };
    let page = LoginPage {
        t,
        title,
        intro,
        act,
        app: app_line(sim, &valid.app),
        redirect_host: redirect_domain(&valid.redirect).unwrap_or_default(),
        action: format!("{}{}", sim.config().public_base, flow.path()),
        hidden: hidden_fields(flow, p, lang),
        members: member_rows(sim, &valid.app, t),
        other_lang_url: switch,
    };
    render(&page, StatusCode::OK)
}

/// POST from our own forms: `choice` is `member:<userid>`, `agree:<userid>`, `external`,
/// `cancel` or `deny` (`<userid>` may be `LINKEDCORPID/userid`).
fn submit(sim: &Simulator, flow: Flow, p: &Params, headers: &HeaderMap) -> Response {
    let lang = Lang::pick(p.get("lang"), headers);
    let switch = other_lang_url(sim, flow, p, lang);
    let valid = match validate(sim, flow, p) {
        Ok(v) => v,
        Err(e) => return error_page(lang, &e, switch),
    };
    let choice = p.get("choice").unwrap_or("");
    match choice.split_once(':') {
        // §3: refusing returns only `state`; the client reads a callback without `code` as
        // "the user cancelled". Denying the privateinfo screen is treated the same way.
        None if choice == "cancel" || choice == "deny" => redirect(callback_url(&valid, None)),
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
            complete(sim, &valid, subject, false)
        }
        // Inactive members (disabled, not activated, left) are offered and accepted on
        // purpose: WeCom would not let them scan, but a provider must check `status` from
        // `user/get` itself (§6), and letting them through is how the demo and tests show it.
        // Members outside the app's visible range are accepted too: §4 gives their userid.
        Some((kind @ ("member" | "agree"), userid)) => {
            let t = lang.texts();
            let Some((row, subject)) = chosen_member(sim, &valid.app, userid, t) else {
                return error_page(lang, &PageError::UnknownMember(userid.to_string()), switch);
            };
            if kind == "member" && valid.private_info {
                return confirm_page(sim, &valid, flow, p, lang, row);
            }
            let private_info = valid.private_info;
            complete(sim, &valid, subject, private_info)
        }
        _ => error_page(lang, &PageError::BadChoice, switch),
    }
}

/// The `snsapi_privateinfo` consent screen (§2: "the member must confirm").
fn confirm_page(
    sim: &Simulator,
    valid: &Valid,
    flow: Flow,
    p: &Params,
    lang: Lang,
    member: MemberRow,
) -> Response {
    let t = lang.texts();
    let page = ConfirmPage {
        t,
        title: t.title_confirm,
        app: app_line(sim, &valid.app),
        action: format!("{}{}", sim.config().public_base, flow.path()),
        hidden: hidden_fields(flow, p, lang),
        agree_value: format!("agree:{}", member.userid),
        member,
        other_lang_url: String::new(),
    };
    render(&page, StatusCode::OK)
}

fn query(raw: Option<String>) -> Params {
    Params::parse(raw.as_deref().unwrap_or("").as_bytes())
}

/// `GET /connect/oauth2/authorize` (§2). The real page only works inside the WeCom client
/// (ordinary browsers get an "open in client" prompt, unconfirmed); the simulator serves every
/// browser so that end-to-end tests can drive it.
pub(super) async fn authorize_page(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    show(&sim, Flow::InApp, &query(raw), &headers)
}

/// `POST /connect/oauth2/authorize`: the simulator's own member-picker form.
pub(super) async fn authorize_submit(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    submit(&sim, Flow::InApp, &Params::parse(&body), &headers)
}

/// `GET /wwlogin/sso/login` (§3).
pub(super) async fn sso_login_page(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    show(&sim, Flow::WebLogin, &query(raw), &headers)
}

/// `POST /wwlogin/sso/login`: the simulator's own "scan as …" form.
pub(super) async fn sso_login_submit(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    submit(&sim, Flow::WebLogin, &Params::parse(&body), &headers)
}

/// `GET /wwopen/sso/qrConnect` (§3, legacy).
pub(super) async fn qr_connect_page(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    show(&sim, Flow::LegacyQr, &query(raw), &headers)
}

/// `POST /wwopen/sso/qrConnect`: the simulator's own "scan as …" form.
pub(super) async fn qr_connect_submit(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    submit(&sim, Flow::LegacyQr, &Params::parse(&body), &headers)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Method, Request};
    use tower::ServiceExt;

    use super::super::{AppSpec, CorpSeed, SimulatorConfig, SimulatorQuirks, VisibleRange};
    use super::*;
    use crate::clock::ManualClock;

    const CORP: &str = "ww7f3c2a1b9d8e6f50";
    const BASE: &str = "http://127.0.0.1:9/wecom-sim";

    fn setup(config: impl FnOnce(&mut SimulatorConfig)) -> Simulator {
        let mut c = SimulatorConfig::demo(BASE);
        c.trusted_domains = vec!["app.example.com:8080".into()];
        config(&mut c);
        Simulator::new(c, Arc::new(ManualClock::new(1_700_000_000)))
    }

    struct Answer {
        status: StatusCode,
        location: Option<String>,
        body: String,
    }

    async fn send(sim: &Simulator, req: Request<Body>) -> Answer {
        let res = match sim.router().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        };
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body is readable");
        Answer {
            status,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(sim: &Simulator, uri: &str) -> Answer {
        send(sim, Request::get(uri).body(Body::empty()).expect("valid")).await
    }

    async fn post(sim: &Simulator, path: &str, form: &[(&str, &str)]) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("valid");
        send(sim, req).await
    }

    fn encode(s: &str) -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }

    fn sso_form<'a>(
        redirect_uri: &'a str,
        state: &'a str,
        choice: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("login_type", "CorpApp"),
            ("appid", CORP),
            ("agentid", "1000002"),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("choice", choice),
        ]
    }

    fn oauth_form<'a>(
        scope: &'a str,
        redirect_uri: &'a str,
        choice: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("appid", CORP),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("scope", scope),
            ("state", "S1"),
            ("agentid", "1000002"),
            ("choice", choice),
        ]
    }

    /// Splits a callback URL into its base and its query pairs.
    fn callback(location: &str) -> (String, Vec<(String, String)>) {
        let url = url::Url::parse(location).expect("absolute callback URL");
        let pairs = url.query_pairs().into_owned().collect();
        let mut base = url.clone();
        base.set_query(None);
        (base.to_string(), pairs)
    }

    fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[tokio::test]
    async fn sso_login_page_lists_seeded_members_and_choices() {
        let sim = setup(|_| {});
        let uri = format!(
            "/wwlogin/sso/login?login_type=CorpApp&appid={CORP}&agentid=1000002&redirect_uri={}&state=abc&lang=zh",
            encode("http://app.example.com:8080/cb")
        );
        let a = get(&sim, &uri).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        for needle in [
            "张三",
            "value=\"member:zhangsan\"",
            "value=\"member:ZhouBa\"",
            "value=\"external\"",
            "value=\"cancel\"",
            "扫码登录为",
            "action=\"http://127.0.0.1:9/wecom-sim/wwlogin/sso/login\"",
            "name=\"state\" value=\"abc\"",
        ] {
            assert!(a.body.contains(needle), "missing {needle}");
        }
        assert!(!a.body.contains("src=\"http"), "no external assets");
    }

    #[tokio::test]
    async fn scanning_as_member_redirects_with_code_and_state() {
        let sim = setup(|_| {});
        let form = sso_form(
            "http://app.example.com:8080/cb",
            "xyz123",
            "member:zhangsan",
        );
        let a = post(&sim, "/wwlogin/sso/login", &form).await;
        assert_eq!(a.status, StatusCode::FOUND);
        let (base, pairs) = callback(a.location.as_deref().expect("Location"));
        assert_eq!(base, "http://app.example.com:8080/cb");
        assert_eq!(value(&pairs, "state"), Some("xyz123"));
        let code = value(&pairs, "code").expect("code");
        assert!(code.len() <= 512);
        let grant = sim.redeem_code(code).expect("the code is live");
        assert!(matches!(grant.subject, Subject::Member(ref u) if u == "zhangsan"));
        assert!(!grant.private_info, "web login codes carry no user_ticket");
    }

    #[tokio::test]
    async fn callback_joins_existing_query_with_ampersand_and_keeps_empty_state() {
        let sim = setup(|_| {});
        let form = sso_form("http://app.example.com:8080/cb?x=1", "", "member:lisi");
        let a = post(&sim, "/wwlogin/sso/login", &form).await;
        let location = a.location.expect("Location");
        assert!(
            location.starts_with("http://app.example.com:8080/cb?x=1&code="),
            "{location}"
        );
        assert!(
            location.ends_with("&state="),
            "state is always present: {location}"
        );
    }

    #[tokio::test]
    async fn cancel_has_no_code() {
        let sim = setup(|_| {});
        let form = sso_form("http://app.example.com:8080/cb", "st", "cancel");
        let a = post(&sim, "/wwlogin/sso/login", &form).await;
        assert_eq!(a.status, StatusCode::FOUND);
        assert_eq!(
            a.location.as_deref(),
            Some("http://app.example.com:8080/cb?state=st")
        );
    }

    #[tokio::test]
    async fn not_a_member_choice_yields_a_non_member_code() {
        let sim = setup(|_| {});
        let form = sso_form("http://app.example.com:8080/cb", "st", "external");
        let a = post(&sim, "/wwlogin/sso/login", &form).await;
        let (_, pairs) = callback(a.location.as_deref().expect("Location"));
        let grant = sim
            .redeem_code(value(&pairs, "code").expect("code"))
            .expect("live");
        assert!(matches!(
            grant.subject,
            Subject::NonMember {
                external_userid: None,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn untrusted_redirect_domain_is_not_redirected_to() {
        let sim = setup(|_| {});
        let evil = "http://evil.example.com/cb";
        let uri = format!(
            "/connect/oauth2/authorize?appid={CORP}&redirect_uri={}&response_type=code&scope=snsapi_base&state=s&agentid=1000002",
            encode(evil)
        );
        let a = get(&sim, &uri).await;
        assert!(a.location.is_none());
        assert!(!a.status.is_redirection());
        assert!(
            a.body.contains("redirect_uri需使用应用可信域名"),
            "{}",
            a.body
        );
        // The port is part of the domain: same host, other port is untrusted too.
        let form = sso_form("http://app.example.com:9999/cb", "s", "member:zhangsan");
        let a = post(&sim, "/wwlogin/sso/login", &form).await;
        assert!(a.location.is_none());
        assert!(a.body.contains("redirect_uri需使用应用可信域名"));
        // auto_login does not bypass the domain rule.
        let sim = setup(|c| c.auto_login = Some("zhangsan".into()));
        let a = get(&sim, &uri).await;
        assert!(a.location.is_none());
    }

    #[tokio::test]
    async fn auto_login_redirects_at_once_as_the_member() {
        let sim = setup(|c| c.auto_login = Some("ZHANGSAN".into()));
        let uri = format!(
            "/connect/oauth2/authorize?appid={CORP}&redirect_uri={}&response_type=code&scope=snsapi_privateinfo&state=abc&agentid=1000002",
            encode("http://app.example.com:8080/cb")
        );
        let a = get(&sim, &uri).await;
        assert_eq!(a.status, StatusCode::FOUND);
        let (base, pairs) = callback(a.location.as_deref().expect("Location"));
        assert_eq!(base, "http://app.example.com:8080/cb");
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].0, "code");
        assert_eq!(pairs[1], ("state".to_string(), "abc".to_string()));
        let grant = sim.redeem_code(&pairs[0].1).expect("live");
        assert!(matches!(grant.subject, Subject::Member(ref u) if u == "zhangsan"));
        assert!(grant.private_info);
    }

    #[tokio::test]
    async fn auto_login_as_unknown_member_shows_an_error() {
        let sim = setup(|c| c.auto_login = Some("nobody".into()));
        let uri = format!(
            "/wwopen/sso/qrConnect?appid={CORP}&agentid=1000002&redirect_uri={}&state=a",
            encode("http://app.example.com:8080/cb")
        );
        let a = get(&sim, &uri).await;
        assert!(a.location.is_none());
        assert!(a.body.contains("nobody"));
    }

    #[tokio::test]
    async fn privateinfo_asks_for_confirmation_before_redirecting() {
        let sim = setup(|_| {});
        let cb = "http://app.example.com:8080/cb";
        let a = post(
            &sim,
            "/connect/oauth2/authorize",
            &oauth_form("snsapi_privateinfo", cb, "member:zhangsan"),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.location.is_none());
        assert!(a.body.contains("value=\"agree:zhangsan\""), "{}", a.body);
        assert!(a.body.contains("value=\"deny\""));
        let a = post(
            &sim,
            "/connect/oauth2/authorize",
            &oauth_form("snsapi_privateinfo", cb, "agree:zhangsan"),
        )
        .await;
        let (_, pairs) = callback(a.location.as_deref().expect("Location"));
        let grant = sim
            .redeem_code(value(&pairs, "code").expect("code"))
            .expect("live");
        assert!(grant.private_info);
        assert!(!grant.device_id.is_empty(), "in-app logins have a DeviceId");
        let a = post(
            &sim,
            "/connect/oauth2/authorize",
            &oauth_form("snsapi_privateinfo", cb, "deny"),
        )
        .await;
        assert_eq!(
            a.location.as_deref(),
            Some("http://app.example.com:8080/cb?state=S1")
        );
    }

    #[tokio::test]
    async fn base_scope_redirects_without_confirmation() {
        let sim = setup(|_| {});
        let cb = "http://app.example.com:8080/cb";
        let a = post(
            &sim,
            "/connect/oauth2/authorize",
            &oauth_form("snsapi_base", cb, "member:lisi"),
        )
        .await;
        let (_, pairs) = callback(a.location.as_deref().expect("Location"));
        let grant = sim
            .redeem_code(value(&pairs, "code").expect("code"))
            .expect("live");
        assert!(!grant.private_info);
    }

    #[tokio::test]
    async fn privateinfo_without_agentid_errors_unless_fallback_is_configured() {
        let sim = setup(|_| {});
        let form = |choice| {
            vec![
                ("appid", CORP),
                ("redirect_uri", "http://app.example.com:8080/cb"),
                ("response_type", "code"),
                ("scope", "snsapi_privateinfo"),
                ("choice", choice),
            ]
        };
        let a = post(&sim, "/connect/oauth2/authorize", &form("member:zhangsan")).await;
        assert!(a.location.is_none());
        assert!(a.body.contains("40056"));
        sim.set_quirks(SimulatorQuirks {
            privateinfo_without_agentid_falls_back: true,
            ..SimulatorQuirks::default()
        });
        let a = post(&sim, "/connect/oauth2/authorize", &form("member:zhangsan")).await;
        let (_, pairs) = callback(a.location.as_deref().expect("falls back to snsapi_base"));
        let grant = sim
            .redeem_code(value(&pairs, "code").expect("code"))
            .expect("live");
        assert!(!grant.private_info);
    }

    #[tokio::test]
    async fn invalid_parameters_show_an_error_and_never_redirect() {
        let sim = setup(|_| {});
        let cb = encode("http://app.example.com:8080/cb");
        let long_state = "a".repeat(129);
        let cases = [
            (format!("/connect/oauth2/authorize?appid=wwother&redirect_uri={cb}&response_type=code&scope=snsapi_base"), "40013"),
            (format!("/connect/oauth2/authorize?appid={CORP}&redirect_uri={cb}&response_type=token&scope=snsapi_base"), "response_type"),
            (format!("/connect/oauth2/authorize?appid={CORP}&redirect_uri={cb}&response_type=code&scope=snsapi_userinfo"), "scope"),
            (format!("/connect/oauth2/authorize?appid={CORP}&redirect_uri={cb}&response_type=code&scope=snsapi_base&agentid=1"), "40056"),
            (format!("/connect/oauth2/authorize?appid={CORP}&redirect_uri={cb}&response_type=code&scope=snsapi_base&state=a-b"), "state"),
            (format!("/connect/oauth2/authorize?appid={CORP}&redirect_uri={cb}&response_type=code&scope=snsapi_base&state={long_state}"), "state"),
            (format!("/connect/oauth2/authorize?appid={CORP}&redirect_uri=notaurl&response_type=code&scope=snsapi_base"), "redirect_uri"),
            (format!("/wwlogin/sso/login?login_type=ServiceApp&appid={CORP}&agentid=1000002&redirect_uri={cb}"), "login_type"),
            (format!("/wwlogin/sso/login?login_type=CorpApp&appid={CORP}&redirect_uri={cb}"), "40056"),
            (format!("/wwopen/sso/qrConnect?appid={CORP}&agentid=1000002&redirect_uri=javascript%3Aalert(1)"), "redirect_uri"),
        ];
        for (uri, needle) in cases {
            let a = get(&sim, &uri).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}");
            assert!(a.location.is_none(), "{uri}");
            assert!(a.body.contains(needle), "{uri}: {}", a.body);
        }
        let a = post(
            &sim,
            "/wwlogin/sso/login",
            &sso_form("http://app.example.com:8080/cb", "s", "member:nobody"),
        )
        .await;
        assert!(a.location.is_none());
        let a = post(
            &sim,
            "/wwlogin/sso/login",
            &sso_form("http://app.example.com:8080/cb", "s", "bogus"),
        )
        .await;
        assert!(a.location.is_none());
    }

    #[tokio::test]
    async fn page_language_follows_lang_then_accept_language() {
        let sim = setup(|_| {});
        let base = format!(
            "/wwopen/sso/qrConnect?appid={CORP}&agentid=1000002&redirect_uri={}&state=a",
            encode("http://app.example.com:8080/cb")
        );
        let a = get(&sim, &format!("{base}&lang=en")).await;
        assert!(a.body.contains("Scan as") && a.body.contains("lang=\"en\""));
        let req = Request::get(&base)
            .header(header::ACCEPT_LANGUAGE, "en-US,en;q=0.9,zh-CN;q=0.8")
            .body(Body::empty())
            .expect("valid");
        assert!(send(&sim, req)
            .await
            .body
            .contains("Not a member (external WeChat user)"));
        let a = get(&sim, &base).await;
        assert!(a.body.contains("扫码登录为") && a.body.contains("lang=\"zh-CN\""));
        let a = post(
            &sim,
            "/wwopen/sso/qrConnect",
            &[("appid", CORP), ("lang", "en")],
        )
        .await;
        assert!(
            a.body.contains("Cannot log in"),
            "error pages are translated too"
        );
    }

    #[tokio::test]
    async fn page_escapes_reflected_parameters() {
        let sim = setup(|c| c.trusted_domains.clear());
        let cb = encode("http://app.example.com/cb?x=\"><script>");
        let a = get(
            &sim,
            &format!("/wwopen/sso/qrConnect?appid={CORP}&agentid=1000002&redirect_uri={cb}"),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(!a.body.contains("<script>"));
    }

    #[test]
    fn state_rule_is_alphanumeric_up_to_128_bytes() {
        assert!(is_valid_state(""));
        assert!(is_valid_state(&"Z9".repeat(64)));
        assert!(!is_valid_state(&"a".repeat(129)));
        assert!(!is_valid_state("a b"));
        assert!(!is_valid_state("状态"));
    }

    const SECOND: &str = "ww2b2b2b2b2b2b2b2b";

    fn second_corp(sim: &Simulator) {
        sim.add_corp(
            SECOND,
            CorpSeed::Second,
            AppSpec {
                agent_id: 1_000_005,
                secret: "second-secret".into(),
                visible_range: VisibleRange::whole_corp(),
                trusted_domains: vec!["rp.second.example".into()],
                legacy_app: false,
            },
        );
    }

    #[tokio::test]
    async fn pages_serve_every_corp_and_app_and_bind_codes_to_it() {
        let sim = setup(|_| {});
        second_corp(&sim);
        let cb = "https://rp.second.example/cb";
        let uri = format!(
            "/wwlogin/sso/login?login_type=CorpApp&appid={SECOND}&agentid=1000005&redirect_uri={}&state=s",
            encode(cb)
        );
        let a = get(&sim, &uri).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert!(a.body.contains("张三丰") && a.body.contains("远航贸易"));
        assert!(
            !a.body.contains("孙七"),
            "the primary corp's members are not listed"
        );
        let a = get(&sim, &uri.replace("1000005", "1000002")).await;
        assert!(
            a.body.contains("40056"),
            "the primary corp's agentid is not this corp's"
        );
        let a = get(
            &sim,
            &uri.replace("rp.second.example", "app.example.com%3A8080"),
        )
        .await;
        assert!(a.location.is_none(), "each app has its own trusted domains");
        let form = [
            ("login_type", "CorpApp"),
            ("appid", SECOND),
            ("agentid", "1000005"),
            ("redirect_uri", cb),
            ("state", "s"),
            ("choice", "member:zhangsan"),
        ];
        let a = post(&sim, "/wwlogin/sso/login", &form).await;
        let (_, pairs) = callback(a.location.as_deref().expect("Location"));
        let code = value(&pairs, "code").expect("code");
        assert!(matches!(
            sim.redeem_code(code),
            Err(super::super::CodeError::UntrustedDomain)
        ));
        let a = post(&sim, "/wwlogin/sso/login", &form).await;
        let (_, pairs) = callback(a.location.as_deref().expect("Location"));
        let app = AppKey {
            corp_id: SECOND.into(),
            agent_id: 1_000_005,
        };
        let grant = sim
            .redeem_code_as(value(&pairs, "code").expect("code"), &app)
            .expect("live");
        assert!(matches!(grant.subject, Subject::Member(ref u) if u == "zhangsan"));
    }

    #[tokio::test]
    async fn auto_login_applies_to_the_primary_corp_only() {
        let sim = setup(|c| c.auto_login = Some("zhangsan".into()));
        second_corp(&sim);
        let uri = format!(
            "/wwopen/sso/qrConnect?appid={SECOND}&agentid=1000005&redirect_uri={}&state=a",
            encode("https://rp.second.example/cb")
        );
        let a = get(&sim, &uri).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(
            a.location.is_none(),
            "the other corp's zhangsan is another person"
        );
    }

    #[tokio::test]
    async fn linked_members_are_listed_and_log_in_as_corp_slash_userid() {
        let sim = setup(|_| {});
        second_corp(&sim);
        assert!(sim.link_corp(CORP, SECOND, vec![3]));
        let cb = "http://app.example.com:8080/cb";
        let a = get(
            &sim,
            &format!(
                "/wwopen/sso/qrConnect?appid={CORP}&agentid=1000002&redirect_uri={}&state=a",
                encode(cb)
            ),
        )
        .await;
        assert!(
            a.body
                .contains(&format!("value=\"member:{SECOND}/wangfang\"")),
            "{}",
            a.body
        );
        assert!(
            !a.body.contains(&format!("member:{SECOND}/zhangsan")),
            "销售 is not shared"
        );
        let a = post(
            &sim,
            "/connect/oauth2/authorize",
            &[
                ("appid", CORP),
                ("redirect_uri", cb),
                ("response_type", "code"),
                ("scope", "snsapi_base"),
                ("agentid", "1000002"),
                ("choice", &format!("member:{SECOND}/WANGFANG")),
            ],
        )
        .await;
        let (_, pairs) = callback(a.location.as_deref().expect("Location"));
        let grant = sim
            .redeem_code(value(&pairs, "code").expect("code"))
            .expect("live");
        assert!(
            matches!(grant.subject, Subject::Linked { ref corp_id, ref userid } if corp_id == SECOND && userid == "wangfang")
        );
        let a = post(
            &sim,
            "/wwopen/sso/qrConnect",
            &[
                ("appid", CORP),
                ("agentid", "1000002"),
                ("redirect_uri", cb),
                ("choice", &format!("member:{SECOND}/zhangsan")),
            ],
        )
        .await;
        assert!(
            a.location.is_none(),
            "a member outside the shared departments cannot pick"
        );
    }

    #[tokio::test]
    async fn large_corp_page_lists_a_bounded_number_of_members() {
        let sim = setup(|_| {});
        sim.add_corp(
            "wwlarge",
            CorpSeed::Large { members: 1_000 },
            AppSpec {
                agent_id: 7,
                secret: "s".into(),
                visible_range: VisibleRange::whole_corp(),
                trusted_domains: vec![],
                legacy_app: false,
            },
        );
        let a = get(
            &sim,
            &format!(
                "/wwopen/sso/qrConnect?appid=wwlarge&agentid=7&redirect_uri={}",
                encode("http://app.example.com:8080/cb")
            ),
        )
        .await;
        assert_eq!(
            a.body.matches("value=\"member:").count(),
            MAX_LISTED_MEMBERS
        );
    }
}
