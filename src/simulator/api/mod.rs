//! The simulator's JSON API (`/cgi-bin/…`): `gettoken`, both `getuserinfo` flavours,
//! `getuserdetail`, `user/get`, departments, tags and the linked-corp reads, each with WeCom's
//! field names, casing and error codes (wecom-api.md §1, §4–§7, §12), and each answering only
//! what the calling app's visible range allows.

mod directory;
mod identity;
mod linkedcorp;

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::corp::{AppKey, Corp, Scope};
use super::reply::{failure, success, ClientIp, Params};
use super::Simulator;

pub(super) use directory::{
    department_get, department_list, department_simplelist, tag_get, tag_list,
};
pub(super) use identity::{auth_getuserinfo, getuserdetail, user_get, user_getuserinfo};
pub(super) use linkedcorp::{linkedcorp_department_list, linkedcorp_user_get};

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

impl Call {
    /// Answers a token-protected endpoint at `path`: the checks of [`Simulator::guarded`], then
    /// `endpoint`; an error answer carries the endpoint's `defaults` fields (§6: e.g.
    /// `"department":[]`).
    fn reply(
        &self,
        path: &str,
        defaults: Value,
        endpoint: impl FnOnce(&Simulator, &AppKey) -> Outcome,
    ) -> Response {
        let outcome = self.sim.guarded(path, &self.q, endpoint);
        self.sim.answer(&self.ip, defaults, outcome)
    }

    /// [`Call::reply`] for the POST endpoints, whose parameters come as a JSON body: once the
    /// shared checks pass, a body that does not parse is WeCom's global 47001 "data format
    /// error".
    fn reply_json(
        &self,
        path: &str,
        body: &[u8],
        defaults: Value,
        endpoint: impl FnOnce(&Simulator, &AppKey, Value) -> Outcome,
    ) -> Response {
        self.reply(path, defaults, |sim, key| {
            let body: Value = serde_json::from_slice(body).map_err(|_| 47001)?;
            endpoint(sim, key, body)
        })
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

/// What every API handler starts from: the simulator, the caller's IP (WeCom names it in
/// `errmsg`) and the query string's parameters.
pub(in crate::simulator) struct Call {
    pub(in crate::simulator) sim: Simulator,
    pub(in crate::simulator) ip: ClientIp,
    pub(in crate::simulator) q: Params,
}

impl FromRequestParts<Simulator> for Call {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, sim: &Simulator) -> Result<Call, Infallible> {
        let ip = ClientIp::from_request_parts(parts, sim).await?;
        let q = Params::parse(parts.uri.query().unwrap_or("").as_bytes());
        Ok(Call {
            sim: sim.clone(),
            ip,
            q,
        })
    }
}

/// Unknown paths: HTTP 404 with an empty body, like WeCom.
pub(super) async fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// `GET /cgi-bin/gettoken?corpid=&corpsecret=` (§1). The secret picks the app: each app of a
/// corp has its own, and the token is bound to that app.
pub(super) async fn gettoken(Call { sim, ip, q }: Call) -> Response {
    sim.inner
        .gettoken_calls
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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

#[cfg(test)]
mod tests;
