//! The simulator's JSON API (`/cgi-bin/…`): `gettoken`, both `getuserinfo` flavours,
//! `getuserdetail`, `user/get`, departments, tags and the linked-corp reads, each with WeCom's
//! field names, casing and error codes (wecom-api.md §1, §4–§7, §12), and each answering only
//! what the calling app's visible range allows.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::corp::{AppKey, Corp, Scope};
use super::directory::Department;
use super::reply::{failure, success, ClientIp, Params};
use super::{CodeGrant, Simulator, Subject, TicketError};

/// The answer of one endpoint: its fields on success, or an `errcode`.
type Outcome = Result<Map<String, Value>, i64>;

/// 60011 "no privilege to access/modify contact/party/agent": the official text ("指定的成员/
/// 部门/标签参数无权限") covers members, departments and tags alike, so the simulator answers it
/// for every read outside the app's visible range (§6, §7).
const NO_PRIVILEGE: i64 = 60011;

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Simulator {
    /// Runs the checks every token-protected endpoint shares, in WeCom's order: injected fault,
    /// rate-limit block, then the `access_token` from the query string (§1), then the trusted
    /// IP of the token's app (§1: checked on data APIs), then the endpoint itself with the app
    /// the token belongs to.
    fn guarded(
        &self,
        path: &str,
        query: &Params,
        endpoint: impl FnOnce(&Simulator, &AppKey) -> Outcome,
    ) -> Outcome {
        if let Some(errcode) = self.take_fault(path) {
            return Err(errcode);
        }
        if let Some(errcode) = self.blocked(path) {
            return Err(errcode);
        }
        let app = self
            .check_token(query.get("access_token"))
            .map_err(|e| e.errcode())?;
        let ip_trusted = self
            .lock()
            .app(&app)
            .map(|(_, a)| a.ip_trusted)
            .unwrap_or(true);
        if !ip_trusted {
            return Err(60020);
        }
        endpoint(self, &app)
    }

    /// Turns an outcome into WeCom's HTTP 200 JSON answer.
    fn answer(&self, ip: &ClientIp, defaults: Value, outcome: Outcome) -> Response {
        match outcome {
            Ok(body) => success(body),
            Err(code) => failure(code, fields(defaults), &ip.0, self.now()),
        }
    }
}

/// Runs `read` on the token's corp with the app's [`Scope`] and its `legacy_app` flag.
fn with_scope<T>(
    sim: &Simulator,
    key: &AppKey,
    read: impl FnOnce(&Corp, &Scope, bool) -> Result<T, i64>,
) -> Result<T, i64> {
    let members_add_departments = sim.quirks().member_range_shows_own_departments;
    let state = sim.lock();
    // A token always names an app that exists: apps are never removed.
    let (corp, app) = state.app(key).ok_or(40014)?;
    let scope = Scope::of(&corp.directory, &app.range, members_add_departments);
    read(corp, &scope, app.legacy_app)
}

fn query(raw: Option<String>) -> Params {
    Params::parse(raw.as_deref().unwrap_or("").as_bytes())
}

/// Unknown paths: HTTP 404 with an empty body, like WeCom.
pub(super) async fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// `GET /cgi-bin/gettoken?corpid=&corpsecret=` (§1). The secret picks the app: each app of a
/// corp has its own, and the token is bound to that app.
pub(super) async fn gettoken(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    sim.inner
        .gettoken_calls
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let q = query(raw);
    let outcome = (|| {
        let path = "/cgi-bin/gettoken";
        if let Some(errcode) = sim.take_fault(path) {
            return Err(errcode);
        }
        if let Some(errcode) = sim.blocked(path) {
            return Err(errcode);
        }
        // §1: "corpsecret missing" comes first when both are absent.
        let secret = q.get("corpsecret").ok_or(41004)?;
        let corpid = q.get("corpid").ok_or(41002)?;
        let matches = |s: &str| crate::random::constant_time_eq(secret.as_bytes(), s.as_bytes());
        let key = {
            let state = sim.lock();
            let corp = state.corp(corpid).ok_or(40013)?;
            match corp.apps.iter().find(|a| matches(&a.secret)) {
                Some(app) => AppKey {
                    corp_id: corp.corp_id.clone(),
                    agent_id: app.agent_id,
                },
                // §1: another corp's secret is 40091, a wrong one 40001.
                None if state
                    .corps
                    .iter()
                    .flat_map(|c| c.apps.iter())
                    .any(|a| matches(&a.secret)) =>
                {
                    return Err(40091)
                }
                None => return Err(40001),
            }
        };
        let (token, ttl) = sim.mint_token(key);
        Ok(fields(json!({"access_token": token, "expires_in": ttl})))
    })();
    sim.answer(&ip, json!({}), outcome)
}

/// Redeems `code` for either `getuserinfo` flavour; `legacy` picks the casing.
fn getuserinfo(sim: &Simulator, q: &Params, path: &str, legacy: bool) -> Outcome {
    sim.guarded(path, q, |sim, key| {
        // WeCom's global code 41008 is "missing oauth code".
        let code = q.get("code").ok_or(41008)?;
        let grant = sim.redeem_code_as(code, key).map_err(|e| e.errcode())?;
        Ok(identity_fields(sim, key, grant, legacy))
    })
}

/// Whether corp member `userid` is in the visible range of app `key` (§4: a `user_ticket` only
/// for members in range). A userid the directory does not know (only via `issue_code`) counts
/// as in range only for a whole-corp app.
fn in_range(sim: &Simulator, key: &AppKey, userid: &str) -> bool {
    with_scope(sim, key, |corp, scope, _| {
        Ok(match corp.directory.member(userid) {
            Some(m) => scope.sees_member(m),
            None => scope.is_whole_corp(),
        })
    })
    .unwrap_or(false)
}

/// The identity fields of §4: lower-case on `/cgi-bin/auth/getuserinfo`, `UserId`/`OpenId`/
/// `DeviceId` on the legacy `/cgi-bin/user/getuserinfo`.
fn identity_fields(
    sim: &Simulator,
    key: &AppKey,
    grant: CodeGrant,
    legacy: bool,
) -> Map<String, Value> {
    let mut m = Map::new();
    let userid_key = if legacy { "UserId" } else { "userid" };
    match grant.subject {
        Subject::Member(userid) => {
            m.insert(userid_key.into(), json!(userid));
            if legacy {
                m.insert("DeviceId".into(), json!(grant.device_id));
            }
            // §4: `userid` whether or not the member is in the app's visible range; a
            // user_ticket only for snsapi_privateinfo *and* a member in range. Web-login codes
            // never carry one.
            if grant.private_info && in_range(sim, key, &userid) {
                m.insert("user_ticket".into(), json!(sim.mint_ticket(key, &userid)));
                m.insert("expires_in".into(), json!(super::USER_TICKET_TTL));
            }
        }
        // §4, §12: a linked corp's member arrives as `CorpId/userid`, never with a ticket.
        Subject::Linked { corp_id, userid } => {
            m.insert(userid_key.into(), json!(format!("{corp_id}/{userid}")));
            if legacy {
                m.insert("DeviceId".into(), json!(grant.device_id));
            }
        }
        Subject::NonMember {
            openid,
            external_userid,
        } => {
            if legacy {
                m.insert("OpenId".into(), json!(openid));
                m.insert("DeviceId".into(), json!(grant.device_id));
            } else {
                m.insert("openid".into(), json!(openid));
            }
            if let Some(external) = external_userid {
                m.insert("external_userid".into(), json!(external));
            }
        }
    }
    m
}

/// `GET /cgi-bin/auth/getuserinfo?access_token=&code=` (§4, current endpoint).
pub(super) async fn auth_getuserinfo(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = getuserinfo(&sim, &q, "/cgi-bin/auth/getuserinfo", false);
    sim.answer(&ip, json!({}), outcome)
}

/// `GET /cgi-bin/user/getuserinfo?access_token=&code=` (§4, legacy casing).
pub(super) async fn user_getuserinfo(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = getuserinfo(&sim, &q, "/cgi-bin/user/getuserinfo", true);
    sim.answer(&ip, json!({}), outcome)
}

/// `POST /cgi-bin/auth/getuserdetail?access_token=` with `{"user_ticket":"…"}` (§5). An expired
/// ticket answers 84014, an invalid one (unknown, forged, missing, or another app's) 84015,
/// unless `SimulatorQuirks::user_ticket_errcode` says otherwise.
pub(super) async fn getuserdetail(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/auth/getuserdetail", &q, |sim, key| {
        // WeCom's global code 47001 is "data format error" (unparsable JSON).
        let body: Value = serde_json::from_slice(&body).map_err(|_| 47001)?;
        let configured = sim.quirks().user_ticket_errcode;
        let errcode = |e: TicketError| match (configured, e) {
            (0, TicketError::Expired) => 84014,
            (0, TicketError::Invalid) => 84015,
            (code, _) => code,
        };
        let ticket = body
            .get("user_ticket")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or(errcode(TicketError::Invalid))?;
        let userid = sim.ticket_user(key, ticket).map_err(errcode)?;
        let state = sim.lock();
        let member = state
            .corp(&key.corp_id)
            .and_then(|c| c.directory.member(&userid));
        Ok(match member {
            Some(member) => member.detail_fields(),
            // A ticket for a userid the directory does not know (only via `issue_code`):
            // §5's "nothing shared" answer, gender "0" and everything else empty.
            None => fields(json!({
                "userid": userid, "gender": "0", "avatar": "", "qr_code": "",
                "mobile": "", "email": "", "biz_mail": "", "address": "",
            })),
        })
    });
    sim.answer(&ip, json!({}), outcome)
}

/// `GET /cgi-bin/user/get?access_token=&userid=` (§6). A member outside the app's visible
/// range answers `SimulatorQuirks::out_of_range_errcode` (60011 by default); `department`
/// lists only departments the app may view.
pub(super) async fn user_get(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/user/get", &q, |sim, key| {
        // WeCom's global code 41009 is "missing userid".
        let userid = q.get("userid").ok_or(41009)?;
        // §12: `user/get` cannot read linked members (`CorpId/userid`). Which code WeCom gives
        // is not documented; no userid of the corp contains a '/', so the simulator answers
        // what it answers for any userid it does not have: 60111. A client must read them with
        // `linkedcorp/user/get` instead.
        if userid.contains('/') {
            return Err(60111);
        }
        let quirks = sim.quirks();
        with_scope(sim, key, |corp, scope, legacy_app| {
            let member = corp.directory.member(userid).ok_or(60111)?;
            if !scope.sees_member(member) {
                return Err(quirks.out_of_range_errcode);
            }
            Ok(member.user_get_fields(
                corp.directory.corp_name(),
                legacy_app,
                quirks.privacy_fields_empty,
                &|d| scope.sees_department(d),
            ))
        })
    });
    // §6 / Conventions: error bodies keep the endpoint's default empty fields.
    let defaults = json!({
        "department": [], "order": [], "is_leader_in_dept": [], "direct_leader": [],
    });
    sim.answer(&ip, defaults, outcome)
}

/// Parses a department id; anything but an integer is 60123.
fn department_id(q: &Params) -> Result<Option<i64>, i64> {
    match q.get("id") {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| 60123),
    }
}

/// The departments of `department/list` and `department/simplelist` (§7), parents before
/// children: with `id`, that department and everything below it; without, everything the app
/// may see — for a whole-corp app the tree from the root, otherwise each visible sub-tree
/// from its top, whose `parentid` the app cannot see (§7: "the answer starts at 研发"). An
/// unknown `id` is 60123, one outside the range 60011.
fn visible_departments<'a>(
    corp: &'a Corp,
    scope: &Scope,
    id: Option<i64>,
) -> Result<Vec<&'a Department>, i64> {
    let directory = &corp.directory;
    let tops: Vec<i64> = match id {
        Some(id) => {
            directory.department(id).ok_or(60123)?;
            if !scope.sees_department(id) {
                return Err(NO_PRIVILEGE);
            }
            vec![id]
        }
        None if scope.is_whole_corp() => vec![1],
        None => directory
            .departments()
            .iter()
            .filter(|d| scope.sees_department(d.id) && !scope.sees_department(d.parentid))
            .map(|d| d.id)
            .collect(),
    };
    Ok(tops
        .into_iter()
        .filter_map(|top| directory.subtree(top))
        .flatten()
        .filter(|d| scope.sees_department(d.id))
        .collect())
}

/// `GET /cgi-bin/department/list?access_token=&id=` (§7): the department and all below it;
/// without `id`, every department the app may see.
pub(super) async fn department_list(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/department/list", &q, |sim, key| {
        let id = department_id(&q)?;
        with_scope(sim, key, |corp, scope, _| {
            let list: Vec<Value> = visible_departments(corp, scope, id)?
                .iter()
                .map(|d| d.to_json())
                .collect();
            Ok(fields(json!({ "department": list })))
        })
    });
    sim.answer(&ip, json!({"department": []}), outcome)
}

/// `GET /cgi-bin/department/simplelist?access_token=&id=` (§7), same scope as `list`.
pub(super) async fn department_simplelist(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/department/simplelist", &q, |sim, key| {
        let id = department_id(&q)?;
        with_scope(sim, key, |corp, scope, _| {
            let list: Vec<Value> = visible_departments(corp, scope, id)?
                .iter()
                .map(|d| d.to_simple_json())
                .collect();
            Ok(fields(json!({ "department_id": list })))
        })
    });
    sim.answer(&ip, json!({"department_id": []}), outcome)
}

/// `GET /cgi-bin/department/get?access_token=&id=` (§7); `id` is required. Unknown: 60123;
/// outside the app's range: 60011.
pub(super) async fn department_get(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/department/get", &q, |sim, key| {
        let id = department_id(&q)?.ok_or(60123)?;
        with_scope(sim, key, |corp, scope, _| {
            let dept = corp.directory.department(id).ok_or(60123)?;
            if !scope.sees_department(id) {
                return Err(NO_PRIVILEGE);
            }
            Ok(fields(json!({ "department": dept.to_json() })))
        })
    });
    sim.answer(&ip, json!({}), outcome)
}

/// `GET /cgi-bin/tag/list?access_token=` (§7): the tags the app may see (whole corp: all;
/// otherwise the tags of its range).
pub(super) async fn tag_list(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/tag/list", &q, |sim, key| {
        with_scope(sim, key, |corp, scope, _| {
            let list: Vec<Value> = corp
                .directory
                .tags()
                .iter()
                .filter(|t| scope.sees_tag(t.tagid))
                .map(|t| json!({"tagid": t.tagid, "tagname": t.tagname}))
                .collect();
            Ok(fields(json!({ "taglist": list })))
        })
    });
    sim.answer(&ip, json!({"taglist": []}), outcome)
}

/// `GET /cgi-bin/tag/get?access_token=&tagid=` (§7). A missing, malformed or unknown tagid is
/// WeCom's global code 40068 "invalid tagid"; a tag the app may not see is 60011 (whose
/// official text names tags). `partylist` is the tagged department ids as the admin set them,
/// not expanded to sub-departments (see `directory::Tag`).
pub(super) async fn tag_get(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/tag/get", &q, |sim, key| {
        let tagid: i64 = q.get("tagid").and_then(|s| s.parse().ok()).ok_or(40068)?;
        with_scope(sim, key, |corp, scope, _| {
            let directory = &corp.directory;
            let tag = directory.tag(tagid).ok_or(40068)?;
            if !scope.sees_tag(tagid) {
                return Err(NO_PRIVILEGE);
            }
            let userlist: Vec<Value> = tag
                .users
                .iter()
                .filter_map(|u| directory.member(u))
                .map(|m| json!({"userid": m.userid, "name": m.name}))
                .collect();
            Ok(fields(json!({
                "tagname": tag.tagname,
                "userlist": userlist,
                "partylist": tag.parties,
            })))
        })
    });
    sim.answer(&ip, json!({"userlist": [], "partylist": []}), outcome)
}

/// Splits `"LINKEDCORPID/ID"`.
fn split_linked(s: &str) -> Option<(&str, &str)> {
    s.split_once('/')
        .filter(|(c, id)| !c.is_empty() && !id.is_empty())
}

/// `POST /cgi-bin/linkedcorp/user/get?access_token=` with `{"userid":"CORPID/USERID"}` (§12).
///
/// Answers `user_info` (the wrapper is unconfirmed in §12; the field list is the confirmed one
/// of `linkedcorp/user/list`, see `Member::linked_user_info`). Only for apps of a corp linked to
/// `CORPID`, and only for members in the shared departments: otherwise 60011. A userid without
/// `CORPID/`, or one the linked corp does not have or who left it (status 5), is 60111.
pub(super) async fn linkedcorp_user_get(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/linkedcorp/user/get", &q, |sim, key| {
        let body: Value = serde_json::from_slice(&body).map_err(|_| 47001)?;
        let userid = body
            .get("userid")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .ok_or(41009)?;
        let (linked_corp_id, bare) = split_linked(userid).ok_or(60111)?;
        let qualified = sim.quirks().linked_userid_qualified;
        let state = sim.lock();
        let corp = state.corp(&key.corp_id).ok_or(40014)?;
        let link = corp.link(linked_corp_id).ok_or(NO_PRIVILEGE)?;
        let linked = state.corp(&link.corp_id).ok_or(NO_PRIVILEGE)?;
        let member = linked
            .directory
            .member(bare)
            .filter(|m| m.status != super::directory::STATUS_LEFT)
            .ok_or(60111)?;
        let (member, departments) = state
            .linked_member(&key.corp_id, &link.corp_id, &member.userid)
            .ok_or(NO_PRIVILEGE)?;
        Ok(fields(json!({
            "user_info": member.linked_user_info(&link.corp_id, &departments, qualified),
        })))
    });
    sim.answer(&ip, json!({}), outcome)
}

/// `POST /cgi-bin/linkedcorp/department/list?access_token=` with
/// `{"department_id":"LINKEDID/DEPTID"}`: that department of a linked corp and every shared
/// department below it, as `department_list: [{department_id, department_name, parentid,
/// order}]` with ids written `"LINKEDID/ID"` (the root's parent is `"LINKEDID/0"`).
///
/// Unconfirmed: the reference (§12) names only `linkedcorp/user/get` and `user/list`; this
/// shape follows WeCom's naming for the linked-corp family and is here so that a client can
/// name a linked member's departments. Not linked or outside the shared departments: 60011;
/// unknown or malformed department: 60123.
pub(super) async fn linkedcorp_department_list(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/linkedcorp/department/list", &q, |sim, key| {
        let body: Value = serde_json::from_slice(&body).map_err(|_| 47001)?;
        let (linked_corp_id, id) = body
            .get("department_id")
            .and_then(Value::as_str)
            .and_then(split_linked)
            .ok_or(60123)?;
        let id: i64 = id.parse().map_err(|_| 60123)?;
        let state = sim.lock();
        let corp = state.corp(&key.corp_id).ok_or(40014)?;
        let link = corp.link(linked_corp_id).ok_or(NO_PRIVILEGE)?;
        let linked = state.corp(&link.corp_id).ok_or(NO_PRIVILEGE)?;
        let subtree = linked.directory.subtree(id).ok_or(60123)?;
        let shared = super::corp::shared_departments(&linked.directory, link);
        if !shared.contains(&id) {
            return Err(NO_PRIVILEGE);
        }
        let list: Vec<Value> = subtree
            .iter()
            .filter(|d| shared.contains(&d.id))
            .map(|d| d.to_linked_json(&link.corp_id))
            .collect();
        Ok(fields(json!({ "department_list": list })))
    });
    sim.answer(&ip, json!({"department_list": []}), outcome)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{header, Method, Request};
    use tower::ServiceExt;

    use super::super::{AppSpec, CorpSeed, SimulatorConfig, SimulatorQuirks, VisibleRange};
    use super::*;
    use crate::clock::ManualClock;

    const CORP: &str = "ww7f3c2a1b9d8e6f50";
    const SECRET: &str = "demo-wecom-app-secret";
    const CB: &str = "http://app.example.com:8080/callback";

    fn setup(config: impl FnOnce(&mut SimulatorConfig)) -> (Simulator, ManualClock) {
        let clock = ManualClock::new(1_700_000_000);
        let mut c = SimulatorConfig::demo("http://127.0.0.1:9/wecom-sim");
        config(&mut c);
        (Simulator::new(c, Arc::new(clock.clone())), clock)
    }

    async fn send(sim: &Simulator, req: Request<Body>) -> (StatusCode, Vec<u8>) {
        let res = match sim.router().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        };
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body is readable");
        (status, body.to_vec())
    }

    async fn get_json(sim: &Simulator, uri: &str) -> Value {
        let req = Request::get(uri)
            .body(Body::empty())
            .expect("valid request");
        let (status, body) = send(sim, req).await;
        assert_eq!(status, StatusCode::OK, "WeCom answers HTTP 200 for {uri}");
        serde_json::from_slice(&body).expect("JSON body")
    }

    async fn post_json(sim: &Simulator, uri: &str, body: &str) -> Value {
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("valid request");
        let (status, body) = send(sim, req).await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_slice(&body).expect("JSON body")
    }

    async fn token(sim: &Simulator) -> String {
        let v = get_json(
            sim,
            &format!("/cgi-bin/gettoken?corpid={CORP}&corpsecret={SECRET}"),
        )
        .await;
        v["access_token"].as_str().expect("token").to_string()
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn assert_err(v: &Value, code: i64, msg: &str) {
        assert_eq!(v["errcode"], json!(code), "{v}");
        let m = v["errmsg"].as_str().unwrap_or("");
        assert!(m.starts_with(&format!("{msg}, hint: [")), "{v}");
        assert!(
            m.ends_with(&format!(
                "more info at https://open.work.weixin.qq.com/devtool/query?e={code}"
            )),
            "{v}"
        );
    }

    #[tokio::test]
    async fn gettoken_success_has_wecom_fields() {
        let (sim, _) = setup(|_| {});
        let v = get_json(
            &sim,
            &format!("/cgi-bin/gettoken?corpid={CORP}&corpsecret={SECRET}"),
        )
        .await;
        assert_eq!(
            keys(&v),
            set(&["errcode", "errmsg", "access_token", "expires_in"])
        );
        assert_eq!(
            (v["errcode"].clone(), v["errmsg"].clone()),
            (json!(0), json!("ok"))
        );
        assert_eq!(v["expires_in"], json!(7200));
        let t = v["access_token"].as_str().unwrap_or("");
        assert!(!t.is_empty() && t.len() <= 512);
        assert_ne!(token(&sim).await, t, "tokens are random");
        assert_eq!(sim.gettoken_calls(), 2);
    }

    #[tokio::test]
    async fn stats_endpoint_counts_every_gettoken_call_and_shows_only_counters() {
        let (sim, _) = setup(|_| {});
        assert_eq!(
            get_json(&sim, super::super::STATS_PATH).await,
            json!({"gettoken_calls": 0})
        );
        token(&sim).await;
        get_json(&sim, "/cgi-bin/gettoken?corpid=x").await;
        // Failed calls count too: WeCom rate-limits calls, not successes (§1).
        assert_eq!(
            get_json(&sim, super::super::STATS_PATH).await,
            json!({"gettoken_calls": 2})
        );
    }

    #[tokio::test]
    async fn gettoken_errors_come_in_wecom_order() {
        let (sim, _) = setup(|_| {});
        assert_err(
            &get_json(&sim, "/cgi-bin/gettoken").await,
            41004,
            "corpsecret missing",
        );
        assert_err(
            &get_json(&sim, "/cgi-bin/gettoken?corpid=x&corpsecret=").await,
            41004,
            "corpsecret missing",
        );
        assert_err(
            &get_json(&sim, "/cgi-bin/gettoken?corpsecret=x").await,
            41002,
            "corpid missing",
        );
        assert_err(
            &get_json(
                &sim,
                &format!("/cgi-bin/gettoken?corpid=wwother&corpsecret={SECRET}"),
            )
            .await,
            40013,
            "invalid corpid",
        );
        let v = get_json(
            &sim,
            &format!("/cgi-bin/gettoken?corpid={CORP}&corpsecret=wrong"),
        )
        .await;
        assert_err(&v, 40001, "invalid credential");
        assert!(v.get("access_token").is_none());
        assert_eq!(sim.gettoken_calls(), 5, "failed calls count too");
    }

    #[tokio::test]
    async fn token_expires_after_ttl_with_42001() {
        let (sim, clock) = setup(|_| {});
        let t = token(&sim).await;
        clock.advance(7199);
        let ok = get_json(&sim, &format!("/cgi-bin/tag/list?access_token={t}")).await;
        assert_eq!(ok["errcode"], json!(0));
        clock.advance(1);
        let v = get_json(&sim, &format!("/cgi-bin/tag/list?access_token={t}")).await;
        assert_err(&v, 42001, "access_token expired");
        assert_eq!(
            v["taglist"],
            json!([]),
            "error keeps the default empty fields"
        );
    }

    #[tokio::test]
    async fn revoked_token_gets_40014() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        sim.revoke_all_tokens();
        let v = get_json(
            &sim,
            &format!("/cgi-bin/user/get?access_token={t}&userid=zhangsan"),
        )
        .await;
        assert_err(&v, 40014, "invalid access_token");
        let v = get_json(
            &sim,
            "/cgi-bin/user/get?access_token=made-up&userid=zhangsan",
        )
        .await;
        assert_err(&v, 40014, "invalid access_token");
    }

    #[tokio::test]
    async fn access_token_in_header_only_gets_41001() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let req = Request::get("/cgi-bin/user/get?userid=zhangsan")
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .body(Body::empty())
            .expect("valid request");
        let (status, body) = send(&sim, req).await;
        assert_eq!(status, StatusCode::OK);
        let v: Value = serde_json::from_slice(&body).expect("JSON");
        assert_err(&v, 41001, "access_token missing");
        assert_eq!(v["department"], json!([]));
    }

    #[tokio::test]
    async fn access_token_in_json_body_gets_41001() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let body = format!(r#"{{"access_token":"{t}","user_ticket":"x"}}"#);
        let v = post_json(&sim, "/cgi-bin/auth/getuserdetail", &body).await;
        assert_err(&v, 41001, "access_token missing");
    }

    #[tokio::test]
    async fn unknown_path_is_404_with_empty_body() {
        let (sim, _) = setup(|_| {});
        let req = Request::get("/cgi-bin/nope?access_token=x")
            .body(Body::empty())
            .expect("valid request");
        let (status, body) = send(&sim, req).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn member_code_gives_lowercase_userid_only() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let code = sim.issue_code("ZhangSan", "snsapi_base", CB);
        let v = get_json(
            &sim,
            &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={code}"),
        )
        .await;
        assert_eq!(keys(&v), set(&["errcode", "errmsg", "userid"]));
        assert_eq!(v["userid"], json!("zhangsan"), "canonical userid");
    }

    #[tokio::test]
    async fn privateinfo_code_adds_user_ticket_valid_1800s() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let code = sim.issue_code("zhangsan", "snsapi_privateinfo", CB);
        let v = get_json(
            &sim,
            &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={code}"),
        )
        .await;
        assert_eq!(
            keys(&v),
            set(&["errcode", "errmsg", "userid", "user_ticket", "expires_in"])
        );
        assert_eq!(v["expires_in"], json!(1800));
        let ticket = v["user_ticket"].as_str().expect("ticket");
        assert!(ticket.len() <= 512);
    }

    #[tokio::test]
    async fn web_login_code_gives_userid_only() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let code = sim.issue_code("lisi", "", CB);
        let v = get_json(
            &sim,
            &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={code}"),
        )
        .await;
        assert_eq!(keys(&v), set(&["errcode", "errmsg", "userid"]));
    }

    #[tokio::test]
    async fn non_member_code_gives_openid_and_nothing_else() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let code = sim.issue_non_member_code(CB);
        let v = get_json(
            &sim,
            &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={code}"),
        )
        .await;
        assert_eq!(keys(&v), set(&["errcode", "errmsg", "openid"]));
        assert!(v["openid"]
            .as_str()
            .is_some_and(|o| !o.is_empty() && o.len() <= 64));
        let code = sim.issue_external_contact_code(CB, "wmEXTERNAL");
        let v = get_json(
            &sim,
            &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={code}"),
        )
        .await;
        assert_eq!(
            keys(&v),
            set(&["errcode", "errmsg", "openid", "external_userid"])
        );
    }

    #[tokio::test]
    async fn legacy_getuserinfo_uses_legacy_casing() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let code = sim.issue_code("zhangsan", "snsapi_privateinfo", CB);
        let v = get_json(
            &sim,
            &format!("/cgi-bin/user/getuserinfo?access_token={t}&code={code}"),
        )
        .await;
        assert_eq!(
            keys(&v),
            set(&[
                "errcode",
                "errmsg",
                "UserId",
                "DeviceId",
                "user_ticket",
                "expires_in"
            ])
        );
        assert_eq!(v["UserId"], json!("zhangsan"));
        let code = sim.issue_non_member_code(CB);
        let v = get_json(
            &sim,
            &format!("/cgi-bin/user/getuserinfo?access_token={t}&code={code}"),
        )
        .await;
        assert_eq!(keys(&v), set(&["errcode", "errmsg", "OpenId", "DeviceId"]));
    }

    #[tokio::test]
    async fn code_cannot_be_redeemed_twice() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let code = sim.issue_code("zhangsan", "snsapi_base", CB);
        let uri = format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={code}");
        assert_eq!(get_json(&sim, &uri).await["errcode"], json!(0));
        assert_err(&get_json(&sim, &uri).await, 40029, "invalid code");
        let legacy = format!("/cgi-bin/user/getuserinfo?access_token={t}&code={code}");
        assert_err(&get_json(&sim, &legacy).await, 40029, "invalid code");
    }

    #[tokio::test]
    async fn code_expires_after_code_ttl() {
        let (sim, clock) = setup(|_| {});
        let t = token(&sim).await;
        let fresh = sim.issue_code("zhangsan", "snsapi_base", CB);
        let stale = sim.issue_code("zhangsan", "snsapi_base", CB);
        clock.advance(299);
        let v = get_json(
            &sim,
            &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={fresh}"),
        )
        .await;
        assert_eq!(v["errcode"], json!(0));
        clock.advance(1);
        let v = get_json(
            &sim,
            &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={stale}"),
        )
        .await;
        assert_err(&v, 40029, "invalid code");
    }

    #[tokio::test]
    async fn unknown_or_missing_code_is_rejected() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let v = get_json(
            &sim,
            &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code=nope"),
        )
        .await;
        assert_err(&v, 40029, "invalid code");
        let v = get_json(&sim, &format!("/cgi-bin/auth/getuserinfo?access_token={t}")).await;
        assert_err(&v, 41008, "missing code");
    }

    #[tokio::test]
    async fn code_for_untrusted_domain_gets_50001() {
        let (sim, _) = setup(|c| c.trusted_domains = vec!["app.example.com:8080".into()]);
        let t = token(&sim).await;
        let code = sim.issue_code("zhangsan", "snsapi_base", "http://app.example.com/callback");
        let v = get_json(
            &sim,
            &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={code}"),
        )
        .await;
        assert_err(&v, 50001, "redirect_uri unauthorized");
        let code = sim.issue_code("zhangsan", "snsapi_base", CB);
        let v = get_json(
            &sim,
            &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={code}"),
        )
        .await;
        assert_eq!(v["errcode"], json!(0));
    }

    #[tokio::test]
    async fn getuserdetail_returns_string_fields_for_the_ticket_member() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let code = sim.issue_code("zhangsan", "snsapi_privateinfo", CB);
        let v = get_json(
            &sim,
            &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={code}"),
        )
        .await;
        let ticket = v["user_ticket"].as_str().expect("ticket").to_string();
        let body = format!(r#"{{"user_ticket":"{ticket}"}}"#);
        let uri = format!("/cgi-bin/auth/getuserdetail?access_token={t}");
        let d = post_json(&sim, &uri, &body).await;
        assert_eq!(
            keys(&d),
            set(&[
                "errcode", "errmsg", "userid", "gender", "avatar", "qr_code", "mobile", "email",
                "biz_mail", "address"
            ])
        );
        for (k, v) in d.as_object().into_iter().flatten() {
            if k != "errcode" {
                assert!(v.is_string(), "{k} must be a string");
            }
        }
        assert_eq!(d["gender"], json!("1"));
        assert_eq!(d["email"], json!("zhangsan@example.com"));
        assert_eq!(
            post_json(&sim, &uri, &body).await["errcode"],
            json!(0),
            "reusable in 1800 s"
        );
    }

    #[tokio::test]
    async fn ticket_expired_is_84014_and_invalid_is_84015_unless_configured() {
        let (sim, clock) = setup(|_| {});
        let t = token(&sim).await;
        let code = sim.issue_code("zhangsan", "snsapi_privateinfo", CB);
        let v = get_json(
            &sim,
            &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={code}"),
        )
        .await;
        let ticket = v["user_ticket"].as_str().expect("ticket").to_string();
        let uri = format!("/cgi-bin/auth/getuserdetail?access_token={t}");
        assert_err(
            &post_json(&sim, &uri, r#"{"user_ticket":"forged"}"#).await,
            84015,
            "invalid user_ticket",
        );
        assert_err(
            &post_json(&sim, &uri, r#"{}"#).await,
            84015,
            "invalid user_ticket",
        );
        assert_err(
            &post_json(&sim, &uri, "not json").await,
            47001,
            "data format error",
        );
        clock.advance(1799);
        let body = format!(r#"{{"user_ticket":"{ticket}"}}"#);
        assert_eq!(post_json(&sim, &uri, &body).await["errcode"], json!(0));
        clock.advance(1);
        let t = token(&sim).await;
        let uri = format!("/cgi-bin/auth/getuserdetail?access_token={t}");
        assert_err(
            &post_json(&sim, &uri, &body).await,
            84014,
            "user_ticket expired",
        );
        sim.set_quirks(SimulatorQuirks {
            user_ticket_errcode: 40029,
            ..SimulatorQuirks::default()
        });
        assert_err(&post_json(&sim, &uri, &body).await, 40029, "invalid code");
        assert_err(
            &post_json(&sim, &uri, r#"{"user_ticket":"forged"}"#).await,
            40029,
            "invalid code",
        );
    }

    #[tokio::test]
    async fn user_get_new_app_has_the_field_list_without_privacy_fields() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let v = get_json(
            &sim,
            &format!("/cgi-bin/user/get?access_token={t}&userid=ZHANGSAN"),
        )
        .await;
        assert_eq!(
            keys(&v),
            set(&[
                "errcode",
                "errmsg",
                "userid",
                "name",
                "department",
                "order",
                "position",
                "is_leader_in_dept",
                "direct_leader",
                "telephone",
                "alias",
                "main_department",
                "extattr",
                "status",
                "external_position",
                "external_profile"
            ])
        );
        assert_eq!(v["userid"], json!("zhangsan"));
        assert_eq!(v["name"], json!("张三"));
        assert_eq!(v["department"], json!([3]));
        assert_eq!(v["main_department"], json!(3));
        assert_eq!(v["status"], json!(1));
    }

    #[tokio::test]
    async fn user_get_legacy_app_has_the_full_field_list() {
        let (sim, _) = setup(|c| c.legacy_app = true);
        let t = token(&sim).await;
        let v = get_json(
            &sim,
            &format!("/cgi-bin/user/get?access_token={t}&userid=zhangsan"),
        )
        .await;
        assert_eq!(
            keys(&v),
            set(&[
                "errcode",
                "errmsg",
                "userid",
                "name",
                "department",
                "order",
                "position",
                "mobile",
                "gender",
                "email",
                "biz_mail",
                "is_leader_in_dept",
                "direct_leader",
                "avatar",
                "thumb_avatar",
                "telephone",
                "alias",
                "address",
                "main_department",
                "extattr",
                "status",
                "qr_code",
                "external_position",
                "external_profile"
            ])
        );
        assert_eq!(v["gender"], json!("1"), "gender is a string");
        assert_eq!(v["email"], json!("zhangsan@example.com"));
    }

    #[tokio::test]
    async fn user_get_reports_status_changes() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let v = get_json(
            &sim,
            &format!("/cgi-bin/user/get?access_token={t}&userid=wangwu"),
        )
        .await;
        assert_eq!(v["status"], json!(2));
        assert!(sim.set_member_status("zhangsan", 5));
        let v = get_json(
            &sim,
            &format!("/cgi-bin/user/get?access_token={t}&userid=zhangsan"),
        )
        .await;
        assert_eq!(v["status"], json!(5));
    }

    #[tokio::test]
    async fn user_get_unknown_userid_is_60111_with_default_fields() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let v = get_json(
            &sim,
            &format!("/cgi-bin/user/get?access_token={t}&userid=nobody"),
        )
        .await;
        assert_err(&v, 60111, "userid not found");
        assert_eq!(v["department"], json!([]));
        assert!(v.get("userid").is_none());
        let v = get_json(&sim, &format!("/cgi-bin/user/get?access_token={t}")).await;
        assert_err(&v, 41009, "missing userid");
    }

    #[tokio::test]
    async fn department_endpoints_have_section7_shapes() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let v = get_json(
            &sim,
            &format!("/cgi-bin/department/list?access_token={t}&id=2"),
        )
        .await;
        let list = v["department"].as_array().expect("array");
        assert_eq!(list.len(), 2, "recursive: 研发 and 平台");
        assert_eq!(
            keys(&list[0]),
            set(&[
                "id",
                "name",
                "name_en",
                "department_leader",
                "parentid",
                "order"
            ])
        );
        assert_eq!(list[1]["name"], json!("平台"));
        let v = get_json(&sim, &format!("/cgi-bin/department/list?access_token={t}")).await;
        assert_eq!(v["department"].as_array().map(Vec::len), Some(4));

        let v = get_json(
            &sim,
            &format!("/cgi-bin/department/simplelist?access_token={t}&id=1"),
        )
        .await;
        let list = v["department_id"].as_array().expect("array");
        assert_eq!(list.len(), 4);
        assert_eq!(keys(&list[0]), set(&["id", "parentid", "order"]));

        let v = get_json(
            &sim,
            &format!("/cgi-bin/department/get?access_token={t}&id=4"),
        )
        .await;
        assert_eq!(v["department"]["name"], json!("市场"));
        assert_eq!(v["department"]["parentid"], json!(1));
        assert_eq!(
            keys(&v["department"]),
            set(&[
                "id",
                "name",
                "name_en",
                "department_leader",
                "parentid",
                "order"
            ])
        );
    }

    #[tokio::test]
    async fn invalid_department_id_is_60123() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        for uri in [
            format!("/cgi-bin/department/get?access_token={t}&id=99"),
            format!("/cgi-bin/department/get?access_token={t}&id=abc"),
            format!("/cgi-bin/department/get?access_token={t}"),
            format!("/cgi-bin/department/list?access_token={t}&id=99"),
            format!("/cgi-bin/department/simplelist?access_token={t}&id=99"),
        ] {
            assert_err(&get_json(&sim, &uri).await, 60123, "invalid department id");
        }
    }

    #[tokio::test]
    async fn tag_endpoints_have_section7_shapes() {
        let (sim, _) = setup(|_| {});
        let t = token(&sim).await;
        let v = get_json(&sim, &format!("/cgi-bin/tag/list?access_token={t}")).await;
        assert_eq!(
            v["taglist"],
            json!([
                {"tagid": 1, "tagname": "管理员"},
                {"tagid": 2, "tagname": "值班"},
                {"tagid": 3, "tagname": "研发全员"}
            ])
        );
        let v = get_json(&sim, &format!("/cgi-bin/tag/get?access_token={t}&tagid=1")).await;
        assert_eq!(
            keys(&v),
            set(&["errcode", "errmsg", "tagname", "userlist", "partylist"])
        );
        assert_eq!(
            v["userlist"],
            json!([{"userid": "zhangsan", "name": "张三"}])
        );
        let v = get_json(&sim, &format!("/cgi-bin/tag/get?access_token={t}&tagid=2")).await;
        assert_eq!(v["partylist"], json!([4]));
        let v = get_json(&sim, &format!("/cgi-bin/tag/get?access_token={t}&tagid=9")).await;
        assert_err(&v, 40068, "invalid tagid");
        assert_eq!(v["userlist"], json!([]));
    }

    #[tokio::test]
    async fn injected_fault_answers_errcode_then_clears() {
        let (sim, _) = setup(|_| {});
        sim.fail_next("/cgi-bin/gettoken", -1, 1);
        let uri = format!("/cgi-bin/gettoken?corpid={CORP}&corpsecret={SECRET}");
        assert_err(&get_json(&sim, &uri).await, -1, "system busy");
        let t = token(&sim).await;
        assert_eq!(sim.gettoken_calls(), 2);
        sim.fail_next("/cgi-bin/user/get", 45009, 2);
        let uri = format!("/cgi-bin/user/get?access_token={t}&userid=zhangsan");
        let v = get_json(&sim, &uri).await;
        assert_err(&v, 45009, "api freq out of limit");
        assert_eq!(v["department"], json!([]));
        assert_eq!(get_json(&sim, &uri).await["errcode"], json!(45009));
        assert_eq!(get_json(&sim, &uri).await["errcode"], json!(0));
    }

    #[tokio::test]
    async fn errmsg_names_the_caller_ip_when_known() {
        let (sim, _) = setup(|_| {});
        let mut req = Request::get("/cgi-bin/gettoken")
            .body(Body::empty())
            .expect("valid");
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [10, 1, 2, 3],
                5555,
            ))));
        let (_, body) = send(&sim, req).await;
        let v: Value = serde_json::from_slice(&body).expect("JSON");
        assert!(
            v["errmsg"]
                .as_str()
                .unwrap_or("")
                .contains("from ip: 10.1.2.3,"),
            "{v}"
        );
    }

    // ---- several corps and apps, visible ranges, linked corps (§1, §4–§7, §12) ----

    const AGENT: i64 = 1_000_002;
    const SECOND: &str = "ww2b2b2b2b2b2b2b2b";
    const SECOND_SECRET: &str = "second-corp-app-secret";
    const LINKED: &str = "wwl1nked0c0rp00001";

    fn spec(agent_id: i64, secret: &str) -> AppSpec {
        AppSpec {
            agent_id,
            secret: secret.to_string(),
            visible_range: VisibleRange::whole_corp(),
            trusted_domains: Vec::new(),
            legacy_app: false,
        }
    }

    async fn token_for(sim: &Simulator, corp: &str, secret: &str) -> String {
        let v = get_json(
            sim,
            &format!("/cgi-bin/gettoken?corpid={corp}&corpsecret={secret}"),
        )
        .await;
        v["access_token"].as_str().expect("token").to_string()
    }

    async fn user_get(sim: &Simulator, t: &str, userid: &str) -> Value {
        get_json(
            sim,
            &format!("/cgi-bin/user/get?access_token={t}&userid={userid}"),
        )
        .await
    }

    async fn getuserinfo(sim: &Simulator, t: &str, code: &str) -> Value {
        get_json(
            sim,
            &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={code}"),
        )
        .await
    }

    fn ids(v: &Value, list: &str, field: &str) -> Vec<i64> {
        v[list]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d[field].as_i64()).collect())
            .unwrap_or_default()
    }

    fn range(users: &[&str], departments: &[i64], tags: &[i64]) -> VisibleRange {
        VisibleRange {
            users: users.iter().map(|s| s.to_string()).collect(),
            departments: departments.to_vec(),
            tags: tags.to_vec(),
        }
    }

    #[tokio::test]
    async fn two_corps_with_one_userid_answer_two_different_people() {
        let (sim, _) = setup(|_| {});
        sim.add_corp(SECOND, CorpSeed::Second, spec(1_000_005, SECOND_SECRET));
        let (ta, tb) = (
            token(&sim).await,
            token_for(&sim, SECOND, SECOND_SECRET).await,
        );
        let (a, b) = (
            user_get(&sim, &ta, "zhangsan").await,
            user_get(&sim, &tb, "zhangsan").await,
        );
        assert_eq!(
            (a["name"].clone(), a["department"].clone()),
            (json!("张三"), json!([3]))
        );
        assert_eq!(
            (b["name"].clone(), b["department"].clone()),
            (json!("张三丰"), json!([2]))
        );
        assert_eq!(
            b["external_profile"]["external_corp_name"],
            json!("远航贸易")
        );
        assert_err(
            &user_get(&sim, &tb, "sunqi").await,
            60111,
            "userid not found",
        );
        // Codes are bound to the issuing corp's app.
        let code = sim.issue_code_for(SECOND, 1_000_005, "ZHANGSAN", "snsapi_base", CB);
        assert_err(
            &getuserinfo(&sim, &ta, &code).await,
            50001,
            "redirect_uri unauthorized",
        );
        let code = sim.issue_code_for(SECOND, 1_000_005, "ZHANGSAN", "snsapi_base", CB);
        assert_eq!(
            getuserinfo(&sim, &tb, &code).await["userid"],
            json!("zhangsan")
        );
        // Each corp's own tag 1.
        let v = get_json(&sim, &format!("/cgi-bin/tag/get?access_token={tb}&tagid=1")).await;
        assert_eq!(v["tagname"], json!("销售精英"));
        // Statuses are per corp.
        assert!(sim.set_member_status_in(SECOND, "zhangsan", 2));
        assert_eq!(user_get(&sim, &tb, "zhangsan").await["status"], json!(2));
        assert_eq!(user_get(&sim, &ta, "zhangsan").await["status"], json!(1));
        assert!(!sim.set_member_status_in("wwnone", "zhangsan", 2));
    }

    #[tokio::test]
    async fn gettoken_picks_the_app_by_secret_and_refuses_another_corps_secret() {
        let (sim, _) = setup(|_| {});
        sim.add_corp(SECOND, CorpSeed::Second, spec(1_000_005, SECOND_SECRET));
        let uri = |corp: &str, secret: &str| {
            format!("/cgi-bin/gettoken?corpid={corp}&corpsecret={secret}")
        };
        assert_err(
            &get_json(&sim, &uri(CORP, SECOND_SECRET)).await,
            40091,
            "secret is invalid",
        );
        assert_err(
            &get_json(&sim, &uri(SECOND, "wrong")).await,
            40001,
            "invalid credential",
        );
        assert_err(
            &get_json(&sim, &uri("wwunknown", SECRET)).await,
            40013,
            "invalid corpid",
        );
        assert!(sim.add_app(CORP, spec(1_000_003, "second-app-secret")));
        assert!(
            !sim.add_app(CORP, spec(1_000_003, "again")),
            "agent_id taken"
        );
        assert!(!sim.add_app("wwunknown", spec(1, "x")));
        let v = get_json(&sim, &uri(CORP, "second-app-secret")).await;
        assert_eq!(v["errcode"], json!(0));
    }

    #[tokio::test]
    async fn a_code_of_another_app_is_50001() {
        let (sim, _) = setup(|_| {});
        assert!(sim.add_app(CORP, spec(1_000_003, "second-app-secret")));
        let t1 = token(&sim).await;
        let t2 = token_for(&sim, CORP, "second-app-secret").await;
        let code = sim.issue_code_for(CORP, 1_000_003, "zhangsan", "snsapi_base", CB);
        assert_err(
            &getuserinfo(&sim, &t1, &code).await,
            50001,
            "redirect_uri unauthorized",
        );
        assert_err(&getuserinfo(&sim, &t2, &code).await, 40029, "invalid code");
        let code = sim.issue_code_for(CORP, 1_000_003, "zhangsan", "snsapi_base", CB);
        assert_eq!(
            getuserinfo(&sim, &t2, &code).await["userid"],
            json!("zhangsan")
        );
        let code = sim.issue_code("zhangsan", "snsapi_base", CB);
        assert_err(
            &getuserinfo(&sim, &t2, &code).await,
            50001,
            "redirect_uri unauthorized",
        );
        let code = sim.issue_code_for("wwunknown", 1, "zhangsan", "snsapi_base", CB);
        assert_err(&getuserinfo(&sim, &t1, &code).await, 40029, "invalid code");
    }

    #[tokio::test]
    async fn out_of_range_member_gets_a_userid_but_user_get_refuses_with_60011() {
        let (sim, _) = setup(|_| {});
        assert!(sim.set_visible_range(CORP, AGENT, range(&[], &[4], &[])));
        assert!(!sim.set_visible_range(CORP, 42, VisibleRange::whole_corp()));
        let t = token(&sim).await;
        let code = sim.issue_code("zhangsan", "snsapi_privateinfo", CB);
        let v = getuserinfo(&sim, &t, &code).await;
        assert_eq!(
            keys(&v),
            set(&["errcode", "errmsg", "userid"]),
            "no user_ticket out of range"
        );
        let code = sim.issue_code("zhangsan", "snsapi_privateinfo", CB);
        let v = get_json(
            &sim,
            &format!("/cgi-bin/user/getuserinfo?access_token={t}&code={code}"),
        )
        .await;
        assert_eq!(v["UserId"], json!("zhangsan"));
        let v = user_get(&sim, &t, "zhangsan").await;
        assert_err(
            &v,
            60011,
            "no privilege to access/modify contact/party/agent",
        );
        assert_eq!(v["department"], json!([]));
        assert!(v.get("name").is_none());
        let code = sim.issue_code("lisi", "snsapi_privateinfo", CB);
        assert!(getuserinfo(&sim, &t, &code).await["user_ticket"].is_string());
        assert_eq!(user_get(&sim, &t, "lisi").await["name"], json!("李四"));
        let v = user_get(&sim, &t, "zhaoliu").await;
        assert_eq!(
            v["department"],
            json!([4]),
            "only the departments the app may view"
        );
        assert_eq!(v["order"], json!([0]));
        for code in [60021, 50002] {
            sim.set_quirks(SimulatorQuirks {
                out_of_range_errcode: code,
                ..SimulatorQuirks::default()
            });
            assert_eq!(user_get(&sim, &t, "zhangsan").await["errcode"], json!(code));
        }
    }

    #[tokio::test]
    async fn subtree_range_lists_from_the_subtree_top_whose_parent_is_invisible() {
        let (sim, _) = setup(|_| {});
        sim.set_visible_range(CORP, AGENT, range(&[], &[2], &[]));
        let t = token(&sim).await;
        let v = get_json(&sim, &format!("/cgi-bin/department/list?access_token={t}")).await;
        assert_eq!(ids(&v, "department", "id"), vec![2, 3]);
        assert_eq!(
            v["department"][0]["parentid"],
            json!(1),
            "研发's parent, which the app cannot see"
        );
        let v = get_json(
            &sim,
            &format!("/cgi-bin/department/simplelist?access_token={t}"),
        )
        .await;
        assert_eq!(ids(&v, "department_id", "id"), vec![2, 3]);
        let v = get_json(
            &sim,
            &format!("/cgi-bin/department/list?access_token={t}&id=3"),
        )
        .await;
        assert_eq!(ids(&v, "department", "id"), vec![3]);
        for uri in [
            format!("/cgi-bin/department/get?access_token={t}&id=1"),
            format!("/cgi-bin/department/get?access_token={t}&id=4"),
            format!("/cgi-bin/department/list?access_token={t}&id=1"),
            format!("/cgi-bin/department/simplelist?access_token={t}&id=1"),
        ] {
            let v = get_json(&sim, &uri).await;
            assert_err(
                &v,
                60011,
                "no privilege to access/modify contact/party/agent",
            );
        }
        let v = get_json(
            &sim,
            &format!("/cgi-bin/department/list?access_token={t}&id=1"),
        )
        .await;
        assert_eq!(v["department"], json!([]));
        assert_err(
            &get_json(
                &sim,
                &format!("/cgi-bin/department/get?access_token={t}&id=99"),
            )
            .await,
            60123,
            "invalid department id",
        );
        let v = get_json(
            &sim,
            &format!("/cgi-bin/department/get?access_token={t}&id=3"),
        )
        .await;
        assert_eq!(v["department"]["name"], json!("平台"));
        assert_eq!(
            user_get(&sim, &t, "zhangsan").await["department"],
            json!([3])
        );
        assert_eq!(
            user_get(&sim, &t, "zhaoliu").await["department"],
            json!([2])
        );
        assert_eq!(user_get(&sim, &t, "lisi").await["errcode"], json!(60011));
        assert_eq!(user_get(&sim, &t, "ZhouBa").await["errcode"], json!(60011));
        let v = get_json(&sim, &format!("/cgi-bin/tag/list?access_token={t}")).await;
        assert_eq!(v["taglist"], json!([]), "no tag in the range");
    }

    #[tokio::test]
    async fn single_department_range_sees_that_department_and_its_members_only() {
        let (sim, _) = setup(|_| {});
        sim.set_visible_range(CORP, AGENT, range(&[], &[3], &[]));
        let t = token(&sim).await;
        let v = get_json(&sim, &format!("/cgi-bin/department/list?access_token={t}")).await;
        assert_eq!(ids(&v, "department", "id"), vec![3]);
        assert_eq!(v["department"][0]["parentid"], json!(2));
        assert_eq!(user_get(&sim, &t, "zhangsan").await["errcode"], json!(0));
        assert_eq!(user_get(&sim, &t, "sunqi").await["errcode"], json!(0));
        assert_eq!(user_get(&sim, &t, "wangwu").await["errcode"], json!(60011));
    }

    #[tokio::test]
    async fn single_member_range_sees_no_department_unless_configured() {
        let (sim, _) = setup(|_| {});
        sim.set_visible_range(CORP, AGENT, range(&["LiSi"], &[], &[]));
        let t = token(&sim).await;
        let v = get_json(&sim, &format!("/cgi-bin/department/list?access_token={t}")).await;
        assert_eq!(
            (v["errcode"].clone(), v["department"].clone()),
            (json!(0), json!([]))
        );
        let v = get_json(
            &sim,
            &format!("/cgi-bin/department/simplelist?access_token={t}"),
        )
        .await;
        assert_eq!(v["department_id"], json!([]));
        let v = user_get(&sim, &t, "lisi").await;
        assert_eq!(
            (v["errcode"].clone(), v["department"].clone()),
            (json!(0), json!([]))
        );
        assert_eq!(v["main_department"], json!(4), "sent as it is");
        assert_eq!(
            user_get(&sim, &t, "zhangsan").await["errcode"],
            json!(60011)
        );
        assert_eq!(user_get(&sim, &t, "ZhouBa").await["errcode"], json!(60011));
        sim.set_quirks(SimulatorQuirks {
            member_range_shows_own_departments: true,
            ..SimulatorQuirks::default()
        });
        let v = get_json(&sim, &format!("/cgi-bin/department/list?access_token={t}")).await;
        assert_eq!(ids(&v, "department", "id"), vec![4]);
        assert_eq!(user_get(&sim, &t, "lisi").await["department"], json!([4]));
        assert_eq!(
            user_get(&sim, &t, "zhaoliu").await["errcode"],
            json!(60011),
            "showing 市场 does not put its members in range"
        );
    }

    #[tokio::test]
    async fn tag_range_shows_its_tags_and_members_under_a_tagged_parent() {
        let (sim, _) = setup(|_| {});
        sim.set_visible_range(CORP, AGENT, range(&[], &[], &[3]));
        let t = token(&sim).await;
        let v = get_json(&sim, &format!("/cgi-bin/tag/list?access_token={t}")).await;
        assert_eq!(v["taglist"], json!([{"tagid": 3, "tagname": "研发全员"}]));
        let v = get_json(&sim, &format!("/cgi-bin/tag/get?access_token={t}&tagid=3")).await;
        assert_eq!(v["partylist"], json!([2]), "the tagged ids, not expanded");
        assert_eq!(v["userlist"], json!([]));
        let v = get_json(&sim, &format!("/cgi-bin/tag/get?access_token={t}&tagid=1")).await;
        assert_err(
            &v,
            60011,
            "no privilege to access/modify contact/party/agent",
        );
        assert_eq!(v["userlist"], json!([]));
        assert_eq!(
            user_get(&sim, &t, "zhangsan").await["errcode"],
            json!(0),
            "平台 sits under the tagged 研发"
        );
        assert_eq!(user_get(&sim, &t, "lisi").await["errcode"], json!(60011));
        let v = get_json(&sim, &format!("/cgi-bin/department/list?access_token={t}")).await;
        assert_eq!(ids(&v, "department", "id"), vec![2, 3]);
        // A tag of members only: those members, no department.
        sim.set_visible_range(CORP, AGENT, range(&[], &[], &[1]));
        assert_eq!(
            user_get(&sim, &t, "zhangsan").await["department"],
            json!([])
        );
        assert_eq!(user_get(&sim, &t, "ZhouBa").await["errcode"], json!(60011));
        // Whole corp again: all tags.
        sim.set_visible_range(CORP, AGENT, VisibleRange::whole_corp());
        let v = get_json(&sim, &format!("/cgi-bin/tag/list?access_token={t}")).await;
        assert_eq!(v["taglist"].as_array().map(Vec::len), Some(3));
    }

    #[tokio::test]
    async fn linked_member_logs_in_as_corp_slash_userid_and_is_read_with_linkedcorp_user_get() {
        let (sim, _) = setup(|_| {});
        sim.add_corp(LINKED, CorpSeed::Second, spec(1_000_009, "linked-secret"));
        sim.add_corp(SECOND, CorpSeed::Demo, spec(1_000_005, SECOND_SECRET));
        assert!(sim.link_corp(CORP, LINKED, vec![2]), "销售 and 华东区");
        assert!(!sim.link_corp(CORP, "wwunknown", vec![]));
        assert!(!sim.link_corp(CORP, CORP, vec![]));
        let t = token(&sim).await;
        let code = sim.issue_code_for(
            CORP,
            AGENT,
            &format!("{LINKED}/ZhangSan"),
            "snsapi_privateinfo",
            CB,
        );
        let v = getuserinfo(&sim, &t, &code).await;
        assert_eq!(
            keys(&v),
            set(&["errcode", "errmsg", "userid"]),
            "never a user_ticket"
        );
        assert_eq!(v["userid"], json!(format!("{LINKED}/zhangsan")));
        let code = sim.issue_code_for(
            CORP,
            AGENT,
            &format!("{LINKED}/wangfang"),
            "snsapi_base",
            CB,
        );
        let v = get_json(
            &sim,
            &format!("/cgi-bin/user/getuserinfo?access_token={t}&code={code}"),
        )
        .await;
        assert_eq!(v["UserId"], json!(format!("{LINKED}/wangfang")));

        assert_err(
            &user_get(&sim, &t, &format!("{LINKED}/zhangsan")).await,
            60111,
            "userid not found",
        );

        let uri = format!("/cgi-bin/linkedcorp/user/get?access_token={t}");
        let body = |u: &str| format!(r#"{{"userid":"{u}"}}"#);
        let v = post_json(&sim, &uri, &body(&format!("{LINKED}/zhangsan"))).await;
        assert_eq!(keys(&v), set(&["errcode", "errmsg", "user_info"]));
        assert_eq!(
            keys(&v["user_info"]),
            set(&[
                "userid",
                "corpid",
                "name",
                "department",
                "mobile",
                "telephone",
                "email",
                "position",
                "extattr"
            ])
        );
        assert_eq!(v["user_info"]["userid"], json!("zhangsan"));
        assert_eq!(v["user_info"]["corpid"], json!(LINKED));
        assert_eq!(v["user_info"]["name"], json!("张三丰"));
        assert_eq!(v["user_info"]["department"], json!([format!("{LINKED}/2")]));
        assert_eq!(v["user_info"]["extattr"], json!({"attrs": []}));
        let v = post_json(&sim, &uri, &body(&format!("{LINKED}/lisi"))).await;
        assert_err(
            &v,
            60011,
            "no privilege to access/modify contact/party/agent",
        );
        let v = post_json(&sim, &uri, &body(&format!("{LINKED}/nobody"))).await;
        assert_err(&v, 60111, "userid not found");
        assert_eq!(
            post_json(&sim, &uri, &body("zhangsan")).await["errcode"],
            json!(60111)
        );
        assert_eq!(
            post_json(&sim, &uri, &body(&format!("{SECOND}/zhangsan"))).await["errcode"],
            json!(60011)
        );
        // Another corp's app does not have the link.
        let tb = token_for(&sim, SECOND, SECOND_SECRET).await;
        let other = format!("/cgi-bin/linkedcorp/user/get?access_token={tb}");
        assert_eq!(
            post_json(&sim, &other, &body(&format!("{LINKED}/zhangsan"))).await["errcode"],
            json!(60011)
        );
        // Disabled: still answered (no status field); left: 60111.
        assert!(sim.set_member_status_in(LINKED, "zhangsan", 2));
        assert_eq!(
            post_json(&sim, &uri, &body(&format!("{LINKED}/zhangsan"))).await["errcode"],
            json!(0)
        );
        assert!(sim.set_member_status_in(LINKED, "zhangsan", 5));
        assert_eq!(
            post_json(&sim, &uri, &body(&format!("{LINKED}/zhangsan"))).await["errcode"],
            json!(60111)
        );
        sim.set_quirks(SimulatorQuirks {
            linked_userid_qualified: true,
            ..SimulatorQuirks::default()
        });
        let v = post_json(&sim, &uri, &body(&format!("{LINKED}/wangfang"))).await;
        assert_eq!(
            v["user_info"]["userid"],
            json!(format!("{LINKED}/wangfang"))
        );
        assert_eq!(v["user_info"]["department"], json!([format!("{LINKED}/3")]));
    }

    #[tokio::test]
    async fn linkedcorp_department_list_answers_the_shared_departments() {
        let (sim, _) = setup(|_| {});
        sim.add_corp(LINKED, CorpSeed::Second, spec(1_000_009, "linked-secret"));
        sim.link_corp(CORP, LINKED, vec![2]);
        let t = token(&sim).await;
        let uri = format!("/cgi-bin/linkedcorp/department/list?access_token={t}");
        let body = |d: &str| format!(r#"{{"department_id":"{d}"}}"#);
        let v = post_json(&sim, &uri, &body(&format!("{LINKED}/2"))).await;
        assert_eq!(
            v["department_list"],
            json!([
                {"department_id": format!("{LINKED}/2"), "department_name": "销售", "parentid": format!("{LINKED}/1"), "order": 100_000_000},
                {"department_id": format!("{LINKED}/3"), "department_name": "华东区", "parentid": format!("{LINKED}/2"), "order": 100_000_000},
            ])
        );
        assert_eq!(
            post_json(&sim, &uri, &body(&format!("{LINKED}/4"))).await["errcode"],
            json!(60011)
        );
        assert_eq!(
            post_json(&sim, &uri, &body(&format!("{LINKED}/99"))).await["errcode"],
            json!(60123)
        );
        assert_eq!(
            post_json(&sim, &uri, &body("2")).await["errcode"],
            json!(60123)
        );
    }

    #[tokio::test]
    async fn untrusted_ip_passes_gettoken_but_data_apis_answer_60020() {
        let (sim, _) = setup(|_| {});
        assert!(sim.set_ip_trusted(CORP, AGENT, false));
        assert!(!sim.set_ip_trusted(CORP, 42, false));
        let t = token(&sim).await;
        let code = sim.issue_code("zhangsan", "snsapi_base", CB);
        for uri in [
            format!("/cgi-bin/user/get?access_token={t}&userid=zhangsan"),
            format!("/cgi-bin/department/simplelist?access_token={t}"),
            format!("/cgi-bin/department/list?access_token={t}"),
            format!("/cgi-bin/tag/list?access_token={t}"),
            format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={code}"),
        ] {
            assert_err(
                &get_json(&sim, &uri).await,
                60020,
                "not allow to access from your ip",
            );
        }
        assert_err(
            &get_json(&sim, "/cgi-bin/department/simplelist?access_token=bad").await,
            40014,
            "invalid access_token",
        );
        assert!(sim.set_ip_trusted(CORP, AGENT, true));
        assert_eq!(user_get(&sim, &t, "zhangsan").await["errcode"], json!(0));
    }

    #[tokio::test]
    async fn blocked_api_answers_45009_until_the_clock_passes_the_block() {
        let (sim, clock) = setup(|_| {});
        let t = token(&sim).await;
        sim.block_api(
            "cgi-bin/user/get",
            45009,
            std::time::Duration::from_secs(60),
        );
        sim.block_api(
            "/cgi-bin/gettoken",
            45033,
            std::time::Duration::from_secs(60),
        );
        let uri = format!("/cgi-bin/user/get?access_token={t}&userid=zhangsan");
        for _ in 0..3 {
            let v = get_json(&sim, &uri).await;
            assert_err(&v, 45009, "api freq out of limit");
            assert_eq!(v["department"], json!([]));
        }
        let v = get_json(
            &sim,
            &format!("/cgi-bin/gettoken?corpid={CORP}&corpsecret={SECRET}"),
        )
        .await;
        assert_err(&v, 45033, "api concurrent out of limit");
        clock.advance(59);
        assert_eq!(get_json(&sim, &uri).await["errcode"], json!(45009));
        clock.advance(1);
        assert_eq!(get_json(&sim, &uri).await["errcode"], json!(0));
        assert!(!token(&sim).await.is_empty());
        sim.block_api(
            "/cgi-bin/user/get",
            45009,
            std::time::Duration::from_secs(3600),
        );
        sim.block_api("/cgi-bin/user/get", 45009, std::time::Duration::ZERO);
        assert_eq!(get_json(&sim, &uri).await["errcode"], json!(0));
    }

    #[tokio::test]
    async fn large_corp_builds_fast_and_answers_simplelist() {
        let (sim, _) = setup(|_| {});
        let started = std::time::Instant::now();
        sim.add_corp(
            "wwlarge",
            CorpSeed::Large { members: 50_000 },
            spec(1_000_002, "large-secret"),
        );
        let built = started.elapsed();
        assert!(
            built < std::time::Duration::from_secs(10),
            "built in {built:?}"
        );
        let t = token_for(&sim, "wwlarge", "large-secret").await;
        let started = std::time::Instant::now();
        let v = get_json(
            &sim,
            &format!("/cgi-bin/department/simplelist?access_token={t}"),
        )
        .await;
        let listed = ids(&v, "department_id", "id");
        assert_eq!(listed.len(), 2_000);
        assert_eq!(listed[0], 1);
        assert_eq!(v["department_id"][0]["parentid"], json!(0));
        let v = user_get(&sim, &t, "U49999").await;
        assert_eq!(v["userid"], json!("u49999"));
        let dept = v["department"][0].as_i64().expect("a department");
        let d = get_json(
            &sim,
            &format!("/cgi-bin/department/get?access_token={t}&id={dept}"),
        )
        .await;
        assert_eq!(d["errcode"], json!(0));
        let v = get_json(&sim, &format!("/cgi-bin/tag/get?access_token={t}&tagid=1")).await;
        assert_eq!(v["userlist"].as_array().map(Vec::len), Some(1_000));
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // The primary corp is unchanged, and the large corp's agent id may repeat it.
        assert_eq!(
            user_get(&sim, &token(&sim).await, "zhangsan").await["name"],
            json!("张三")
        );
    }
}
