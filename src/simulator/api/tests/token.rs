//! Tests of the simulator's `gettoken` and the checks every token-protected endpoint shares (§1):
//! token expiry and revocation, faults, blocks, trusted IPs, unknown paths, stats.

use super::*;
use axum::body::Body;
use axum::http::{header, Request};

use super::{
    assert_err, get_json, keys, post_json, send, set, setup, spec, token, user_get, AGENT, CB,
    CORP, SECOND, SECOND_SECRET, SECRET,
};
use crate::simulator::CorpSeed;

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
        get_json(&sim, crate::simulator::STATS_PATH).await,
        json!({"gettoken_calls": 0})
    );
    token(&sim).await;
    get_json(&sim, "/cgi-bin/gettoken?corpid=x").await;
    // Failed calls count too: WeCom rate-limits calls, not successes (§1).
    assert_eq!(
        get_json(&sim, crate::simulator::STATS_PATH).await,
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

#[tokio::test]
async fn gettoken_picks_the_app_by_secret_and_refuses_another_corps_secret() {
    let (sim, _) = setup(|_| {});
    sim.add_corp(SECOND, CorpSeed::Second, spec(1_000_005, SECOND_SECRET));
    let uri =
        |corp: &str, secret: &str| format!("/cgi-bin/gettoken?corpid={corp}&corpsecret={secret}");
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
