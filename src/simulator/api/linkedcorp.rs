//! The linked-corp reads (§12): `linkedcorp/user/get` and `linkedcorp/department/list`, for apps
//! of a corp linked to the member's corp, limited to the shared departments.

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{json, Value};

use super::{fields, Call, NO_PRIVILEGE};
use crate::simulator::corp::{AppKey, Corp, Link};
use crate::simulator::State;

/// Splits `"LINKEDCORPID/ID"`.
fn split_linked(s: &str) -> Option<(&str, &str)> {
    s.split_once('/')
        .filter(|(c, id)| !c.is_empty() && !id.is_empty())
}

/// The link from the token's corp to `linked_corp_id`, and that corp: 60011 when the two are
/// not linked.
fn linked_corp<'s>(
    state: &'s State,
    key: &AppKey,
    linked_corp_id: &str,
) -> Result<(&'s Link, &'s Corp), i64> {
    let corp = state.corp(&key.corp_id).ok_or(40014)?;
    let link = corp.link(linked_corp_id).ok_or(NO_PRIVILEGE)?;
    Ok((link, state.corp(&link.corp_id).ok_or(NO_PRIVILEGE)?))
}

/// `POST /cgi-bin/linkedcorp/user/get?access_token=` with `{"userid":"CORPID/USERID"}` (§12).
///
/// Answers `user_info` (the wrapper is unconfirmed in §12; the field list is the confirmed one
/// of `linkedcorp/user/list`, see `Member::linked_user_info`). Only for apps of a corp linked to
/// `CORPID`, and only for members in the shared departments: otherwise 60011. A userid without
/// `CORPID/`, or one the linked corp does not have or who left it (status 5), is 60111.
pub(in crate::simulator) async fn linkedcorp_user_get(call: Call, body: Bytes) -> Response {
    call.reply_json(
        "/cgi-bin/linkedcorp/user/get",
        &body,
        json!({}),
        |sim, key, body| {
            let userid = body
                .get("userid")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                .ok_or(41009)?;
            let (linked_corp_id, bare) = split_linked(userid).ok_or(60111)?;
            let qualified = sim.quirks().linked_userid_qualified;
            let state = sim.lock();
            let (link, linked) = linked_corp(&state, key, linked_corp_id)?;
            let member = linked
                .directory
                .member(bare)
                .filter(|m| m.status != crate::simulator::directory::STATUS_LEFT)
                .ok_or(60111)?;
            let (member, departments) = state
                .linked_member(&key.corp_id, &link.corp_id, &member.userid)
                .ok_or(NO_PRIVILEGE)?;
            Ok(fields(json!({
                "user_info": member.linked_user_info(&link.corp_id, &departments, qualified),
            })))
        },
    )
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
pub(in crate::simulator) async fn linkedcorp_department_list(call: Call, body: Bytes) -> Response {
    call.reply_json(
        "/cgi-bin/linkedcorp/department/list",
        &body,
        json!({"department_list": []}),
        |sim, key, body| {
            let (linked_corp_id, id) = body
                .get("department_id")
                .and_then(Value::as_str)
                .and_then(split_linked)
                .ok_or(60123)?;
            let id: i64 = id.parse().map_err(|_| 60123)?;
            let state = sim.lock();
            let (link, linked) = linked_corp(&state, key, linked_corp_id)?;
            let subtree = linked.directory.subtree(id).ok_or(60123)?;
            let shared = crate::simulator::corp::shared_departments(&linked.directory, link);
            if !shared.contains(&id) {
                return Err(NO_PRIVILEGE);
            }
            let list: Vec<Value> = subtree
                .iter()
                .filter(|d| shared.contains(&d.id))
                .map(|d| d.to_linked_json(&link.corp_id))
                .collect();
            Ok(fields(json!({ "department_list": list })))
        },
    )
}
