//! Who logged in and who they are: both `getuserinfo` flavours (§4), `getuserdetail` (§5) and
//! `user/get` (§6), each answering only what the calling app's visible range allows.

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{fields, with_scope, Call};
use crate::simulator::corp::AppKey;
use crate::simulator::{CodeGrant, Simulator, Subject, TicketError};

/// Redeems `code` for either `getuserinfo` flavour; `legacy` picks the casing.
fn getuserinfo(call: &Call, path: &str, legacy: bool) -> Response {
    call.reply(path, json!({}), |sim, key| {
        // WeCom's global code 41008 is "missing oauth code".
        let code = call.q.get("code").ok_or(41008)?;
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
                m.insert(
                    "expires_in".into(),
                    json!(crate::simulator::USER_TICKET_TTL),
                );
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
pub(in crate::simulator) async fn auth_getuserinfo(call: Call) -> Response {
    getuserinfo(&call, "/cgi-bin/auth/getuserinfo", false)
}

/// `GET /cgi-bin/user/getuserinfo?access_token=&code=` (§4, legacy casing).
pub(in crate::simulator) async fn user_getuserinfo(call: Call) -> Response {
    getuserinfo(&call, "/cgi-bin/user/getuserinfo", true)
}

/// `POST /cgi-bin/auth/getuserdetail?access_token=` with `{"user_ticket":"…"}` (§5). An expired
/// ticket answers 84014, an invalid one (unknown, forged, missing, or another app's) 84015,
/// unless `SimulatorQuirks::user_ticket_errcode` says otherwise.
pub(in crate::simulator) async fn getuserdetail(call: Call, body: Bytes) -> Response {
    call.reply_json(
        "/cgi-bin/auth/getuserdetail",
        &body,
        json!({}),
        |sim, key, body| {
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
        },
    )
}

/// `GET /cgi-bin/user/get?access_token=&userid=` (§6). A member outside the app's visible
/// range answers `SimulatorQuirks::out_of_range_errcode` (60011 by default); `department`
/// lists only departments the app may view.
pub(in crate::simulator) async fn user_get(call: Call) -> Response {
    // §6 / Conventions: error bodies keep the endpoint's default empty fields.
    let defaults = json!({
        "department": [], "order": [], "is_leader_in_dept": [], "direct_leader": [],
    });
    call.reply("/cgi-bin/user/get", defaults, |sim, key| {
        // WeCom's global code 41009 is "missing userid".
        let userid = call.q.get("userid").ok_or(41009)?;
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
    })
}
