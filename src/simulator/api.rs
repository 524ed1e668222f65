//! The simulator's JSON API (`/cgi-bin/…`): `gettoken`, both `getuserinfo` flavours,
//! `getuserdetail`, `user/get`, departments and tags, each with WeCom's field names, casing and
//! error codes (wecom-api.md §1, §4–§7).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::reply::{failure, success, ClientIp, Params};
use super::{CodeGrant, Simulator, Subject};

/// The answer of one endpoint: its fields on success, or an `errcode`.
type Outcome = Result<Map<String, Value>, i64>;

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Simulator {
    /// Runs the checks every token-protected endpoint shares, in WeCom's order: injected fault,
    /// then the `access_token` from the query string (§1), then the endpoint itself.
    fn guarded(
        &self,
        path: &str,
        query: &Params,
        endpoint: impl FnOnce(&Simulator) -> Outcome,
    ) -> Outcome {
        if let Some(errcode) = self.take_fault(path) {
            return Err(errcode);
        }
        self.check_token(query.get("access_token"))
            .map_err(|e| e.errcode())?;
        endpoint(self)
    }

    /// Turns an outcome into WeCom's HTTP 200 JSON answer.
    fn answer(&self, ip: &ClientIp, defaults: Value, outcome: Outcome) -> Response {
        match outcome {
            Ok(body) => success(body),
            Err(code) => failure(code, fields(defaults), &ip.0, self.now()),
        }
    }
}

fn query(raw: Option<String>) -> Params {
    Params::parse(raw.as_deref().unwrap_or("").as_bytes())
}

/// Unknown paths: HTTP 404 with an empty body, like WeCom.
pub(super) async fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// `GET /cgi-bin/gettoken?corpid=&corpsecret=` (§1).
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
        if let Some(errcode) = sim.take_fault("/cgi-bin/gettoken") {
            return Err(errcode);
        }
        let config = sim.config();
        // §1: "corpsecret missing" comes first when both are absent.
        let secret = q.get("corpsecret").ok_or(41004)?;
        let corpid = q.get("corpid").ok_or(41002)?;
        if corpid != config.corp_id {
            return Err(40013);
        }
        if !crate::random::constant_time_eq(secret.as_bytes(), config.secret.as_bytes()) {
            return Err(40001);
        }
        let (token, ttl) = sim.mint_token();
        Ok(fields(json!({"access_token": token, "expires_in": ttl})))
    })();
    sim.answer(&ip, json!({}), outcome)
}

/// Redeems `code` for either `getuserinfo` flavour; `legacy` picks the casing.
fn getuserinfo(sim: &Simulator, q: &Params, path: &str, legacy: bool) -> Outcome {
    sim.guarded(path, q, |sim| {
        // WeCom's global code 41008 is "missing oauth code".
        let code = q.get("code").ok_or(41008)?;
        let grant = sim.redeem_code(code).map_err(|e| e.errcode())?;
        Ok(identity_fields(sim, grant, legacy))
    })
}

/// The identity fields of §4: lower-case on `/cgi-bin/auth/getuserinfo`, `UserId`/`OpenId`/
/// `DeviceId` on the legacy `/cgi-bin/user/getuserinfo`.
fn identity_fields(sim: &Simulator, grant: CodeGrant, legacy: bool) -> Map<String, Value> {
    let mut m = Map::new();
    match grant.subject {
        Subject::Member(userid) => {
            if legacy {
                m.insert("UserId".into(), json!(userid));
                m.insert("DeviceId".into(), json!(grant.device_id));
            } else {
                m.insert("userid".into(), json!(userid));
            }
            // §4: a user_ticket only for snsapi_privateinfo (all members are in the app's
            // visible range here); web-login codes never carry one.
            if grant.private_info {
                m.insert("user_ticket".into(), json!(sim.mint_ticket(&userid)));
                m.insert("expires_in".into(), json!(super::USER_TICKET_TTL));
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

/// `POST /cgi-bin/auth/getuserdetail?access_token=` with `{"user_ticket":"…"}` (§5).
pub(super) async fn getuserdetail(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/auth/getuserdetail", &q, |sim| {
        // WeCom's global code 47001 is "data format error" (unparsable JSON).
        let body: Value = serde_json::from_slice(&body).map_err(|_| 47001)?;
        let ticket_error = sim.quirks().user_ticket_errcode;
        let ticket = body
            .get("user_ticket")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or(ticket_error)?;
        let userid = sim.ticket_user(ticket).ok_or(ticket_error)?;
        let state = sim.lock();
        Ok(match state.directory.member(&userid) {
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

/// `GET /cgi-bin/user/get?access_token=&userid=` (§6).
pub(super) async fn user_get(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/user/get", &q, |sim| {
        // WeCom's global code 41009 is "missing userid".
        let userid = q.get("userid").ok_or(41009)?;
        let privacy_fields_empty = sim.quirks().privacy_fields_empty;
        let state = sim.lock();
        let member = state.directory.member(userid).ok_or(60111)?;
        Ok(member.user_get_fields(sim.config().legacy_app, privacy_fields_empty))
    });
    // §6 / Conventions: error bodies keep the endpoint's default empty fields.
    let defaults = json!({
        "department": [], "order": [], "is_leader_in_dept": [], "direct_leader": [],
    });
    sim.answer(&ip, defaults, outcome)
}

/// Parses a department id; anything but an existing integer id is 60123.
fn department_id(q: &Params) -> Result<Option<i64>, i64> {
    match q.get("id") {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| 60123),
    }
}

/// `GET /cgi-bin/department/list?access_token=&id=` (§7): the department and all below it;
/// without `id`, the whole tree.
pub(super) async fn department_list(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/department/list", &q, |sim| {
        let id = department_id(&q)?.unwrap_or(1);
        let state = sim.lock();
        let list = state.directory.subtree(id).ok_or(60123)?;
        let list: Vec<Value> = list.iter().map(|d| d.to_json()).collect();
        Ok(fields(json!({ "department": list })))
    });
    sim.answer(&ip, json!({"department": []}), outcome)
}

/// `GET /cgi-bin/department/simplelist?access_token=&id=` (§7).
pub(super) async fn department_simplelist(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/department/simplelist", &q, |sim| {
        let id = department_id(&q)?.unwrap_or(1);
        let state = sim.lock();
        let list = state.directory.subtree(id).ok_or(60123)?;
        let list: Vec<Value> = list.iter().map(|d| d.to_simple_json()).collect();
        Ok(fields(json!({ "department_id": list })))
    });
    sim.answer(&ip, json!({"department_id": []}), outcome)
}

/// `GET /cgi-bin/department/get?access_token=&id=` (§7); `id` is required.
pub(super) async fn department_get(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/department/get", &q, |sim| {
        let id = department_id(&q)?.ok_or(60123)?;
        let state = sim.lock();
        let dept = state.directory.department(id).ok_or(60123)?;
        Ok(fields(json!({ "department": dept.to_json() })))
    });
    sim.answer(&ip, json!({}), outcome)
}

/// `GET /cgi-bin/tag/list?access_token=` (§7).
pub(super) async fn tag_list(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/tag/list", &q, |sim| {
        let state = sim.lock();
        let list: Vec<Value> = state
            .directory
            .tags
            .iter()
            .map(|t| json!({"tagid": t.tagid, "tagname": t.tagname}))
            .collect();
        Ok(fields(json!({ "taglist": list })))
    });
    sim.answer(&ip, json!({"taglist": []}), outcome)
}

/// `GET /cgi-bin/tag/get?access_token=&tagid=` (§7). A missing, malformed or unknown tagid is
/// WeCom's global code 40068 "invalid tagid".
pub(super) async fn tag_get(
    State(sim): State<Simulator>,
    ip: ClientIp,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query(raw);
    let outcome = sim.guarded("/cgi-bin/tag/get", &q, |sim| {
        let tagid: i64 = q.get("tagid").and_then(|s| s.parse().ok()).ok_or(40068)?;
        let state = sim.lock();
        let tag = state.directory.tag(tagid).ok_or(40068)?;
        let userlist: Vec<Value> = tag
            .users
            .iter()
            .filter_map(|u| state.directory.member(u))
            .map(|m| json!({"userid": m.userid, "name": m.name}))
            .collect();
        Ok(fields(json!({
            "tagname": tag.tagname,
            "userlist": userlist,
            "partylist": tag.parties,
        })))
    });
    sim.answer(&ip, json!({"userlist": [], "partylist": []}), outcome)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{header, Method, Request};
    use tower::ServiceExt;

    use super::super::{SimulatorConfig, SimulatorQuirks};
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
    async fn getuserdetail_rejects_bad_or_expired_ticket_with_configured_code() {
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
            40029,
            "invalid code",
        );
        assert_err(&post_json(&sim, &uri, r#"{}"#).await, 40029, "invalid code");
        assert_err(
            &post_json(&sim, &uri, "not json").await,
            47001,
            "data format error",
        );
        clock.advance(1800);
        let t = token(&sim).await;
        let uri = format!("/cgi-bin/auth/getuserdetail?access_token={t}");
        let body = format!(r#"{{"user_ticket":"{ticket}"}}"#);
        assert_err(&post_json(&sim, &uri, &body).await, 40029, "invalid code");
        sim.set_quirks(SimulatorQuirks {
            user_ticket_errcode: 40014,
            ..SimulatorQuirks::default()
        });
        assert_err(
            &post_json(&sim, &uri, &body).await,
            40014,
            "invalid access_token",
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
            json!([{"tagid": 1, "tagname": "管理员"}, {"tagid": 2, "tagname": "值班"}])
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
}
