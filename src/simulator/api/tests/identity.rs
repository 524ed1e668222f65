//! Tests of the simulator's identity reads: `getuserinfo` (§4), `getuserdetail` (§5), `user/get` (§6).

use super::*;

use super::{
    assert_err, getuserinfo, keys, log_in, post_json, read, ready, set, token, user_get, CB,
};
use crate::simulator::SimulatorQuirks;

/// `user/get` fields every app sees (§6).
const USER_GET_FIELDS: &[&str] = &[
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
    "external_profile",
];

/// Fields `user/get` sends only to apps created before the 2022-06-20 privacy change (§6).
const USER_GET_PRIVACY_FIELDS: &[&str] = &[
    "mobile",
    "gender",
    "email",
    "biz_mail",
    "avatar",
    "thumb_avatar",
    "address",
    "qr_code",
];

async fn legacy_getuserinfo(sim: &Simulator, t: &str, code: &str) -> Value {
    read(sim, t, &format!("user/getuserinfo?code={code}")).await
}

/// The `user_ticket` of a `snsapi_privateinfo` login of `userid`, and the `getuserdetail` URI
/// with the same token.
async fn ticket(sim: &Simulator, t: &str, userid: &str) -> (String, String) {
    let v = log_in(sim, t, userid, "snsapi_privateinfo").await;
    let ticket = v["user_ticket"].as_str().expect("ticket").to_string();
    (
        ticket,
        format!("/cgi-bin/auth/getuserdetail?access_token={t}"),
    )
}

fn ticket_body(ticket: &str) -> String {
    format!(r#"{{"user_ticket":"{ticket}"}}"#)
}

#[tokio::test]
async fn member_code_gives_lowercase_userid_only() {
    let (sim, _, t) = ready(|_| {}).await;
    let v = log_in(&sim, &t, "ZhangSan", "snsapi_base").await;
    assert_eq!(keys(&v), set(&["errcode", "errmsg", "userid"]));
    assert_eq!(v["userid"], json!("zhangsan"), "canonical userid");
}

#[tokio::test]
async fn privateinfo_code_adds_user_ticket_valid_1800s() {
    let (sim, _, t) = ready(|_| {}).await;
    let v = log_in(&sim, &t, "zhangsan", "snsapi_privateinfo").await;
    let fields = ["errcode", "errmsg", "userid", "user_ticket", "expires_in"];
    assert_eq!(keys(&v), set(&fields));
    assert_eq!(v["expires_in"], json!(1800));
    assert!(v["user_ticket"].as_str().expect("ticket").len() <= 512);
}

#[tokio::test]
async fn web_login_code_gives_userid_only() {
    let (sim, _, t) = ready(|_| {}).await;
    let v = log_in(&sim, &t, "lisi", "").await;
    assert_eq!(keys(&v), set(&["errcode", "errmsg", "userid"]));
}

#[tokio::test]
async fn non_member_code_gives_openid_and_nothing_else() {
    let (sim, _, t) = ready(|_| {}).await;
    let v = getuserinfo(&sim, &t, &sim.issue_non_member_code(CB)).await;
    assert_eq!(keys(&v), set(&["errcode", "errmsg", "openid"]));
    let openid = v["openid"].as_str().unwrap_or("");
    assert!(!openid.is_empty() && openid.len() <= 64);
    let code = sim.issue_external_contact_code(CB, "wmEXTERNAL");
    let v = getuserinfo(&sim, &t, &code).await;
    let external = ["errcode", "errmsg", "openid", "external_userid"];
    assert_eq!(keys(&v), set(&external));
}

#[tokio::test]
async fn legacy_getuserinfo_uses_legacy_casing() {
    let (sim, _, t) = ready(|_| {}).await;
    let code = sim.issue_code("zhangsan", "snsapi_privateinfo", CB);
    let v = legacy_getuserinfo(&sim, &t, &code).await;
    let member = [
        "errcode",
        "errmsg",
        "UserId",
        "DeviceId",
        "user_ticket",
        "expires_in",
    ];
    assert_eq!(keys(&v), set(&member));
    assert_eq!(v["UserId"], json!("zhangsan"));
    let code = sim.issue_non_member_code(CB);
    let v = legacy_getuserinfo(&sim, &t, &code).await;
    assert_eq!(keys(&v), set(&["errcode", "errmsg", "OpenId", "DeviceId"]));
}

#[tokio::test]
async fn code_cannot_be_redeemed_twice() {
    let (sim, _, t) = ready(|_| {}).await;
    let code = sim.issue_code("zhangsan", "snsapi_base", CB);
    assert_eq!(getuserinfo(&sim, &t, &code).await["errcode"], json!(0));
    assert_err(&getuserinfo(&sim, &t, &code).await, 40029, "invalid code");
    let legacy = legacy_getuserinfo(&sim, &t, &code).await;
    assert_err(&legacy, 40029, "invalid code");
}

#[tokio::test]
async fn code_expires_after_code_ttl() {
    let (sim, clock, t) = ready(|_| {}).await;
    let fresh = sim.issue_code("zhangsan", "snsapi_base", CB);
    let stale = sim.issue_code("zhangsan", "snsapi_base", CB);
    clock.advance(299);
    assert_eq!(getuserinfo(&sim, &t, &fresh).await["errcode"], json!(0));
    clock.advance(1);
    assert_err(&getuserinfo(&sim, &t, &stale).await, 40029, "invalid code");
}

#[tokio::test]
async fn unknown_or_missing_code_is_rejected() {
    let (sim, _, t) = ready(|_| {}).await;
    assert_err(&getuserinfo(&sim, &t, "nope").await, 40029, "invalid code");
    let v = read(&sim, &t, "auth/getuserinfo").await;
    assert_err(&v, 41008, "missing code");
}

#[tokio::test]
async fn code_for_untrusted_domain_gets_50001() {
    let (sim, _, t) = ready(|c| c.trusted_domains = vec!["app.example.com:8080".into()]).await;
    let code = sim.issue_code("zhangsan", "snsapi_base", "http://app.example.com/callback");
    let v = getuserinfo(&sim, &t, &code).await;
    assert_err(&v, 50001, "redirect_uri unauthorized");
    let v = log_in(&sim, &t, "zhangsan", "snsapi_base").await;
    assert_eq!(v["errcode"], json!(0));
}

#[tokio::test]
async fn getuserdetail_returns_string_fields_for_the_ticket_member() {
    let (sim, _, t) = ready(|_| {}).await;
    let (ticket, uri) = ticket(&sim, &t, "zhangsan").await;
    let d = post_json(&sim, &uri, &ticket_body(&ticket)).await;
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
    let again = post_json(&sim, &uri, &ticket_body(&ticket)).await;
    assert_eq!(again["errcode"], json!(0), "reusable in 1800 s");
}

#[tokio::test]
async fn ticket_expired_is_84014_and_invalid_is_84015_unless_configured() {
    let (sim, clock, t) = ready(|_| {}).await;
    let (ticket, uri) = ticket(&sim, &t, "zhangsan").await;
    for body in [ticket_body("forged"), "{}".to_string()] {
        let v = post_json(&sim, &uri, &body).await;
        assert_err(&v, 84015, "invalid user_ticket");
    }
    let v = post_json(&sim, &uri, "not json").await;
    assert_err(&v, 47001, "data format error");
    clock.advance(1799);
    let body = ticket_body(&ticket);
    assert_eq!(post_json(&sim, &uri, &body).await["errcode"], json!(0));
    clock.advance(1);
    let t = token(&sim).await;
    let uri = format!("/cgi-bin/auth/getuserdetail?access_token={t}");
    let v = post_json(&sim, &uri, &body).await;
    assert_err(&v, 84014, "user_ticket expired");
    sim.set_quirks(SimulatorQuirks {
        user_ticket_errcode: 40029,
        ..SimulatorQuirks::default()
    });
    for body in [body, ticket_body("forged")] {
        let v = post_json(&sim, &uri, &body).await;
        assert_err(&v, 40029, "invalid code");
    }
}

#[tokio::test]
async fn user_get_new_app_has_the_field_list_without_privacy_fields() {
    let (sim, _, t) = ready(|_| {}).await;
    let v = user_get(&sim, &t, "ZHANGSAN").await;
    assert_eq!(keys(&v), set(USER_GET_FIELDS));
    assert_eq!(v["userid"], json!("zhangsan"));
    assert_eq!(v["name"], json!("张三"));
    assert_eq!(v["department"], json!([3]));
    assert_eq!(v["main_department"], json!(3));
    assert_eq!(v["status"], json!(1));
}

#[tokio::test]
async fn user_get_legacy_app_has_the_full_field_list() {
    let (sim, _, t) = ready(|c| c.legacy_app = true).await;
    let v = user_get(&sim, &t, "zhangsan").await;
    let all = &set(USER_GET_FIELDS) | &set(USER_GET_PRIVACY_FIELDS);
    assert_eq!(keys(&v), all);
    assert_eq!(v["gender"], json!("1"), "gender is a string");
    assert_eq!(v["email"], json!("zhangsan@example.com"));
}

#[tokio::test]
async fn user_get_reports_status_changes() {
    let (sim, _, t) = ready(|_| {}).await;
    assert_eq!(user_get(&sim, &t, "wangwu").await["status"], json!(2));
    assert!(sim.set_member_status("zhangsan", 5));
    assert_eq!(user_get(&sim, &t, "zhangsan").await["status"], json!(5));
}

#[tokio::test]
async fn user_get_unknown_userid_is_60111_with_default_fields() {
    let (sim, _, t) = ready(|_| {}).await;
    let v = user_get(&sim, &t, "nobody").await;
    assert_err(&v, 60111, "userid not found");
    assert_eq!(v["department"], json!([]));
    assert!(v.get("userid").is_none());
    assert_err(&read(&sim, &t, "user/get").await, 41009, "missing userid");
}
