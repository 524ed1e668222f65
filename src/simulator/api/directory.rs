//! The directory reads of §7: `department/list`, `department/simplelist`, `department/get`,
//! `tag/list` and `tag/get`, limited to the calling app's visible range.

use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{fields, with_scope, Call, NO_PRIVILEGE};
use crate::simulator::corp::{AppKey, Corp, DepartmentNames, Scope};
use crate::simulator::directory::Department;
use crate::simulator::reply::Params;
use crate::simulator::Simulator;

/// Parses a department id; anything but an integer is 60123.
pub(super) fn department_id(q: &Params) -> Result<Option<i64>, i64> {
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

/// A department's JSON as the calling app may read it (§7): a 代开发 app gets no `name` until
/// an admin authorised names, a third-party app gets the id in place of the name. `name_en`
/// goes with `name` (the reference says nothing of it; withholding it too is the safe reading).
fn department_json(sim: &Simulator, key: &AppKey, d: &Department) -> Value {
    let mode = sim
        .lock()
        .app(key)
        .map_or(DepartmentNames::Shown, |(_, a)| a.department_names);
    let mut json = d.to_json();
    if let Value::Object(m) = &mut json {
        match mode {
            DepartmentNames::Shown => {}
            DepartmentNames::Withheld => {
                m.remove("name");
                m.remove("name_en");
            }
            DepartmentNames::Ids => {
                m.insert("name".into(), Value::String(d.id.to_string()));
                m.remove("name_en");
            }
        }
    }
    json
}

/// `GET /cgi-bin/department/list?access_token=&id=` (§7): the department and all below it;
/// without `id`, every department the app may see.
pub(in crate::simulator) async fn department_list(call: Call) -> Response {
    departments(
        &call,
        "/cgi-bin/department/list",
        "department",
        department_json,
    )
}

/// `GET /cgi-bin/department/simplelist?access_token=&id=` (§7), same scope as `list`.
pub(in crate::simulator) async fn department_simplelist(call: Call) -> Response {
    departments(
        &call,
        "/cgi-bin/department/simplelist",
        "department_id",
        |_, _, d| d.to_simple_json(),
    )
}

/// The [`visible_departments`] of `list` and `simplelist`, each shown by `show`, as the array
/// `field` (empty in an error answer).
fn departments(
    call: &Call,
    path: &str,
    field: &str,
    show: fn(&Simulator, &AppKey, &Department) -> Value,
) -> Response {
    let named = |list: Vec<Value>| Map::from_iter([(field.to_owned(), Value::Array(list))]);
    call.reply(path, Value::Object(named(Vec::new())), |sim, key| {
        let id = department_id(&call.q)?;
        // Cloned out of the scope first: `show` may read the app (and take the lock) itself.
        let visible: Vec<Department> = with_scope(sim, key, |corp, scope, _| {
            Ok(visible_departments(corp, scope, id)?
                .into_iter()
                .cloned()
                .collect())
        })?;
        Ok(named(visible.iter().map(|d| show(sim, key, d)).collect()))
    })
}

/// `GET /cgi-bin/department/get?access_token=&id=` (§7); `id` is required. Unknown: 60123;
/// outside the app's range: 60011.
pub(in crate::simulator) async fn department_get(call: Call) -> Response {
    call.reply("/cgi-bin/department/get", json!({}), |sim, key| {
        let id = department_id(&call.q)?.ok_or(60123)?;
        let dept = with_scope(sim, key, |corp, scope, _| {
            let dept = corp.directory.department(id).ok_or(60123)?;
            if !scope.sees_department(id) {
                return Err(NO_PRIVILEGE);
            }
            Ok(dept.clone())
        })?;
        Ok(fields(
            json!({ "department": department_json(sim, key, &dept) }),
        ))
    })
}

/// `GET /cgi-bin/tag/list?access_token=` (§7): the tags the app may see (whole corp: all;
/// otherwise the tags of its range).
pub(in crate::simulator) async fn tag_list(call: Call) -> Response {
    call.reply("/cgi-bin/tag/list", json!({"taglist": []}), |sim, key| {
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
    })
}

/// `GET /cgi-bin/tag/get?access_token=&tagid=` (§7). A missing, malformed or unknown tagid is
/// WeCom's global code 40068 "invalid tagid"; a tag the app may not see is 60011 (whose
/// official text names tags). `partylist` is the tagged department ids as the admin set them,
/// not expanded to sub-departments (see `directory::Tag`).
pub(in crate::simulator) async fn tag_get(call: Call) -> Response {
    let defaults = json!({"userlist": [], "partylist": []});
    call.reply("/cgi-bin/tag/get", defaults, |sim, key| {
        let tagid: i64 = call
            .q
            .get("tagid")
            .and_then(|s| s.parse().ok())
            .ok_or(40068)?;
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
    })
}
